"""d2lmod.nn: modules, layers, containers, functions and initialisers, with PyTorch's names."""
from . import functional, init, parameter
from .activation import GELU, Softmax
from .attention import MultiheadAttention
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv2d, LazyConv2d
from .layers import (CrossEntropyLoss, Dropout, Flatten, Identity, LazyLinear, Linear, MSELoss, ReLU,
                     Sigmoid, Tanh)
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, LazyBatchNorm1d, LazyBatchNorm2d
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding

__all__ = ['Module', 'Parameter', 'Buffer', 'UninitializedParameter', 'UninitializedBuffer',
           'Linear', 'LazyLinear', 'ReLU', 'Sigmoid', 'Tanh', 'GELU', 'Softmax', 'Flatten', 'Identity', 'Dropout',
           'Conv2d', 'LazyConv2d', 'MaxPool2d', 'AvgPool2d', 'AdaptiveAvgPool2d',
           'BatchNorm1d', 'BatchNorm2d', 'LazyBatchNorm1d', 'LazyBatchNorm2d', 'LayerNorm',
           'Embedding', 'MultiheadAttention',
           'Sequential', 'ModuleList', 'ModuleDict', 'ParameterList', 'ParameterDict',
           'MSELoss', 'CrossEntropyLoss', 'functional', 'init', 'parameter']
