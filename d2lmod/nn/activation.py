"""Activations past the chapter's path: gelu (the op beside its derivative), GELU and Softmax as modules."""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from .module import Module

_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf, element by element, is exact and plain


def gelu(input: Tensor, approximate: str = 'none') -> Tensor:
    """x * Phi(x), Phi the standard normal's CDF; approximate='tanh' uses PyTorch's tanh formula."""
    x = F._tensor(input, 'gelu')._data
    if approximate == 'none':
        cdf = (0.5 * (1 + _erf(x / math.sqrt(2)).astype(np.float64))).astype(x.dtype)
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        # d(x Phi(x))/dx = Phi(x) + x phi(x)
        return Tensor._result(x * cdf, (input,), 'gelu', lambda g: (g * (cdf + x * pdf),))
    if approximate == 'tanh':
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x ** 3))
        # y = x (1 + t) / 2, t = tanh(c (x + 0.044715 x^3)):  dy/dx = (1 + t)/2 + x (1 - t^2) c (1 + 3 * 0.044715 x^2) / 2
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        return Tensor._result(0.5 * x * (1 + t), (input,), 'gelu', lambda g: (g * slope,))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


class GELU(Module):
    """x * Phi(x) (Phi: the standard normal's CDF); approximate='tanh' for the tanh formula."""

    def __init__(self, approximate: str = 'none'):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return gelu(input, self.approximate)

    def extra_repr(self):
        return f'approximate={self.approximate!r}'


class Softmax(Module):
    """exp(x_i) / sum_j exp(x_j) along dim: positive numbers that sum to 1."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        if self.dim is None:
            raise ValueError("Softmax() needs dim (PyTorch guesses it, with a deprecation warning): "
                             "write nn.Softmax(dim=-1) for the last dimension")
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f'dim={self.dim}'
