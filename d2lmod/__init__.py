"""d2lmod: a small NumPy autograd and a PyTorch-flavoured module system, for learning how both work."""
from . import ops  # noqa: F401  (installs the Tensor operators)
from . import func, nn, optim
from .factories import manual_seed, ones, rand, randn, tensor, zeros
from .io import load, save
from .ops import cat
from .tensor import Tensor, bool_, float32, float64, int64, is_grad_enabled, no_grad

__version__ = '0.1.0'
__all__ = ['Tensor', 'tensor', 'rand', 'randn', 'zeros', 'ones', 'cat', 'manual_seed', 'no_grad',
           'is_grad_enabled', 'save', 'load', 'nn', 'optim', 'func', 'float32', 'float64', 'int64', 'bool_']
