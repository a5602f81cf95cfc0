"""d2lmod.nn: modules, layers, containers, functions and initialisers, with PyTorch's names."""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (CrossEntropyLoss, Dropout, Flatten, Identity, LazyLinear, Linear, MSELoss, ReLU,
                     Sigmoid, Tanh)
from .module import Module, Parameter

__all__ = ['Module', 'Parameter', 'Linear', 'LazyLinear', 'ReLU', 'Sigmoid', 'Tanh', 'Flatten', 'Identity',
           'Dropout', 'Sequential', 'ModuleList', 'ModuleDict', 'MSELoss', 'CrossEntropyLoss',
           'functional', 'init']
from .conv import Conv2d, LazyConv2d  # noqa: E402
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: E402
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, LazyBatchNorm1d, LazyBatchNorm2d  # noqa: E402
from .sparse import Embedding  # noqa: E402
from .attention import MultiheadAttention  # noqa: E402
from .activation import GELU, Softmax  # noqa: E402

__all__ += ['Conv2d', 'LazyConv2d', 'MaxPool2d', 'AvgPool2d', 'AdaptiveAvgPool2d', 'BatchNorm1d', 'BatchNorm2d',
            'LazyBatchNorm1d', 'LazyBatchNorm2d', 'LayerNorm', 'Embedding', 'MultiheadAttention', 'GELU', 'Softmax']
