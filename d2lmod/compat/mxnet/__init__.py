"""MXNet Gluon's spelling on d2lmod, for the book's MXNet edition: replace `mxnet` by `d2lmod.compat.mxnet`.

    from d2lmod.compat.mxnet import gluon, init, np, npx
    from d2lmod.compat.mxnet.gluon import nn

Arrays are d2lmod Tensors (float32 by default, as in MXNet); Blocks are d2lmod Modules, so summary(), the
module tree and the other views show them like any d2lmod model. Only what the chapter's code uses is here.
"""
from . import gluon, init, np, npx

__all__ = ['gluon', 'init', 'np', 'npx']
