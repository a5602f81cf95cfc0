"""d2lmod.nn: modules, layers, containers, functions and initialisers, with PyTorch's names."""
from . import functional, init, parameter
from .containers import ModuleDict, ModuleList, Sequential
from .containers import ParameterDict, ParameterList
from .layers import (CrossEntropyLoss, Dropout, Flatten, Identity, LazyLinear, Linear, MSELoss, ReLU,
                     Sigmoid, Tanh)
from .module import Module, Parameter
from .parameter import Buffer, UninitializedBuffer, UninitializedParameter

__all__ = ['Module', 'Parameter', 'Linear', 'LazyLinear', 'ReLU', 'Sigmoid', 'Tanh', 'Flatten', 'Identity',
           'Dropout', 'Sequential', 'ModuleList', 'ModuleDict', 'MSELoss', 'CrossEntropyLoss',
           'functional', 'init']
__all__ += ['ParameterList', 'ParameterDict', 'Buffer', 'UninitializedParameter', 'UninitializedBuffer', 'parameter']
