"""Initialisers: fill a tensor in place (no gradient is recorded) with numbers from the seeded generator."""
from __future__ import annotations

import math

import numpy as np

from ..factories import generator
from ..tensor import Tensor


def _shape(tensor: Tensor) -> tuple:
    """The shape to fill; a lazy parameter has none yet."""
    if tensor._data is None:
        raise ValueError("Attempted to use an uninitialized parameter in an initialiser: its lazy layer does not "
                         "know its size yet; run the model once on an input first, then initialise (e.g. with "
                         "net.apply(init_fn))")
    return tensor.shape


def _fill(tensor: Tensor, values) -> Tensor:
    _shape(tensor)  # a lazy parameter has nothing to fill yet
    tensor._data[...] = values
    return tensor


def _fans(tensor: Tensor):
    """fan_in, fan_out of a weight of shape (out_features, in_features)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan-in and fan-out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    field = int(np.prod(tensor.shape[2:]))
    return tensor.shape[1] * field, tensor.shape[0] * field


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(tensor, generator().uniform(a, b, _shape(tensor)))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(tensor, generator().normal(mean, std, _shape(tensor)))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Uniform in +-gain * sqrt(6 / (fan_in + fan_out)): keeps the variance equal forwards and backwards."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Normal with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = 'fan_in', nonlinearity: str = 'leaky_relu') -> Tensor:
    """Uniform in +-gain * sqrt(3 / fan): keeps the variance of ReLU-family layers' outputs steady."""
    fan_in, fan_out = _fans(tensor)
    gains = {'relu': math.sqrt(2.0), 'leaky_relu': math.sqrt(2.0 / (1 + a * a)), 'linear': 1.0,
             'sigmoid': 1.0, 'tanh': 5.0 / 3}
    if nonlinearity not in gains or mode not in ('fan_in', 'fan_out'):
        raise ValueError(f"kaiming_uniform_: nonlinearity must be one of {sorted(gains)} and mode 'fan_in' or "
                         f"'fan_out', got {nonlinearity!r}, {mode!r}")
    fan = fan_in if mode == 'fan_in' else fan_out
    bound = gains[nonlinearity] * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform_(tensor, -bound, bound)
