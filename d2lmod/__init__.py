"""d2lmod: a small NumPy autograd and a PyTorch-flavoured module system, for learning how both work."""
from . import ops  # noqa: F401  (installs the Tensor operators)
from . import inplace  # noqa: F401  (installs x += y, x[i] = v, fill_, zero_, ... on Tensor)
from . import func, nn, optim
from .device import cuda, device
from .factories import (arange, empty, empty_like, full, full_like, linspace, manual_seed, ones, ones_like, rand,
                        rand_like, randn, randn_like, tensor, zeros, zeros_like)
from .io import load, save
from .ops import (abs, allclose, cat, clamp, equal, exp, log, matmul, max, mean, min, norm, relu, reshape,
                  result_type, sigmoid, sqrt, stack, sum, tanh)
from .tensor import (Tensor, bool_, enable_grad, float16, float32, float64, int8, int16, int32, int64,
                     is_grad_enabled, no_grad, set_grad_enabled, uint8)

bool, long, int, float, double, half = bool_, int64, int32, float32, float64, float16  # PyTorch's short names

mm = matmul
numel = Tensor.numel
__version__ = '0.1.0'
__all__ = ['Tensor', 'tensor', 'rand', 'randn', 'zeros', 'ones', 'cat', 'manual_seed', 'no_grad',
           'is_grad_enabled', 'save', 'load', 'nn', 'optim', 'func', 'float32', 'float64', 'int64', 'bool_',
           'device', 'cuda', 'arange', 'empty', 'full', 'linspace', 'zeros_like', 'ones_like', 'empty_like',
           'rand_like', 'randn_like', 'full_like', 'matmul', 'mm', 'stack', 'sum', 'mean', 'max', 'exp', 'log',
           'sqrt', 'abs', 'relu', 'sigmoid', 'tanh', 'clamp', 'norm', 'reshape', 'numel', 'result_type', 'min',
           'equal', 'allclose', 'enable_grad', 'set_grad_enabled', 'float16', 'int32', 'int16', 'int8', 'uint8']
# (dm.bool, dm.long, dm.int, dm.float, dm.double, dm.half are left out of __all__: a star import would hide
# Python's own bool, int and float)
