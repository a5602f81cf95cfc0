"""Making tensors: from data, filled with a value, evenly spaced, or random from one seeded generator.

Every factory takes its size as PyTorch's do (zeros(2, 3), zeros((2, 3)) or zeros(size=(2, 3))) and the
keywords dtype=, device= and requires_grad=.
"""
from __future__ import annotations

import numpy as np

from .device import as_device
from .tensor import Tensor, infer_array

# one generator for rand, randn, the initialisers and dropout; PyTorch's default seed, so runs repeat unseeded
_generator = np.random.default_rng(67280421310721)


def manual_seed(seed: int) -> None:
    """Restart the random numbers of rand, randn, the initialisers and dropout from seed."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _generator


def _size(size: tuple, keyword) -> tuple:
    """The size from zeros(2, 3), zeros((2, 3)), zeros([2, 3]) or zeros(size=(2, 3))."""
    if keyword is not None:
        size = (keyword,)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in size):
        raise TypeError(f"a size is whole numbers, given as zeros(2, 3), zeros((2, 3)) or zeros(size=(2, 3)); "
                        f"got {size!r}")
    return tuple(int(n) for n in size)


def _make(values: np.ndarray, dtype, device, requires_grad) -> Tensor:
    """A tensor of values in dtype, on device (the CPU; a GPU fails as in PyTorch without one)."""
    if device is not None and as_device(device) is None:
        raise RuntimeError(f"unknown device {device!r}; use 'cpu' or dm.device('cpu')")
    return Tensor(values if dtype is None else values.astype(dtype, copy=False), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """Uniform numbers in [0, 1)."""
    values = _generator.random(_size(size, kw.pop('size', None)), dtype=np.float64).astype(np.float32)
    return _make(values, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """Standard normal numbers (mean 0, variance 1)."""
    values = _generator.standard_normal(_size(size, kw.pop('size', None))).astype(np.float32)
    return _make(values, dtype, device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    return _make(np.zeros(_size(size, kw.pop('size', None)), dtype or np.float32), None, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    return _make(np.ones(_size(size, kw.pop('size', None)), dtype or np.float32), None, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """PyTorch leaves the memory as it was; d2lmod gives zeros, so that runs repeat."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad, **kw)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """size filled with fill_value; its dtype follows fill_value (bool, int64 or float32) unless given."""
    return _make(np.full(_size((size,), None), fill_value, dtype or infer_array(fill_value).dtype), None, device,
                 requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """start, start + step, ... up to end (excluded); int64 if all three are integers, else float32."""
    start, end = (0, start) if end is None else (start, end)
    whole = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    return _make(np.arange(start, end, step, dtype=dtype or (np.int64 if whole else np.float32)), None, device,
                 requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """steps numbers evenly spaced from start to end (both included)."""
    return _make(np.linspace(start, end, steps).astype(dtype or np.float32), None, device, requires_grad)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of data, typed as PyTorch types it: bools bool, integers int64, floats float32
    (a NumPy array keeps its dtype)."""
    return _make(np.array(infer_array(data, dtype)), None, device, requires_grad)


def _like(make):
    def like(input: Tensor, *args, dtype=None, device=None, requires_grad=False, **kwargs) -> Tensor:
        return make(input.shape, *args, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad,
                    **kwargs)
    return like  # zeros_like(x) is zeros(x.shape, dtype=x.dtype), and so on


zeros_like, ones_like, empty_like = _like(zeros), _like(ones), _like(empty)
rand_like, randn_like, full_like = _like(rand), _like(randn), _like(full)
