"""Making tensors: from data, filled with zeros or ones, or random from one seeded generator."""
from __future__ import annotations

import numpy as np

from .tensor import Tensor, as_array

# one generator for rand, randn, the initialisers and dropout; PyTorch's default seed, so runs repeat unseeded
_generator = np.random.default_rng(67280421310721)


def manual_seed(seed: int) -> None:
    """Restart the random numbers of rand, randn, the initialisers and dropout from seed."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _generator


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size


def rand(*size, dtype=np.float32, requires_grad=False) -> Tensor:
    """Uniform numbers in [0, 1)."""
    return Tensor(_generator.random(_size(size), dtype=np.float64).astype(dtype), requires_grad)


def randn(*size, dtype=np.float32, requires_grad=False) -> Tensor:
    """Standard normal numbers (mean 0, variance 1)."""
    return Tensor(_generator.standard_normal(_size(size)).astype(dtype), requires_grad)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of data; a NumPy array keeps its dtype, numbers and lists become float32."""
    return Tensor(np.array(as_array(data, dtype)), requires_grad)


def zeros(*size, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_size(size), dtype=dtype), requires_grad)


def ones(*size, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_size(size), dtype=dtype), requires_grad)
