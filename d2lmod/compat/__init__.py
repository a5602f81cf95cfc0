"""Other frameworks' spellings on the d2lmod core, so that code written for them runs here (e.g. compat.mxnet).

Nothing in the core imports this package: it is a translation layer, not part of the chapter's path.
"""
