"""mxnet.gluon on d2lmod: Blocks are Modules, Constant is a buffer (saved, never trained)."""
from . import nn
from .block import Block
from .parameter import Constant

__all__ = ['Block', 'Constant', 'nn']
