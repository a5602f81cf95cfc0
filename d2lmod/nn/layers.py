"""The layers: Linear and LazyLinear, the activations, Flatten, Identity, Dropout and the losses."""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _need_tensor(x, layer: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer} expects a d2lmod Tensor as input, got a {type(x).__name__}; "
                        "wrap it first: dm.tensor(x)")
    return x


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch.  x: (N, in) -> (N, out)"""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.out_features = out_features
        self.weight = Parameter(shape=(out_features, in_features))
        self.bias = Parameter(shape=(out_features,)) if bias else None
        if in_features is not None:
            self.reset_parameters(in_features)

    @property
    def in_features(self):
        return self.weight.shape[1]

    def reset_parameters(self, in_features: int) -> None:
        """PyTorch's default: every number uniform in [-1/sqrt(in_features), +1/sqrt(in_features)]."""
        self.weight._data = np.zeros((self.out_features, in_features), np.float32)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = uniform(+-1/sqrt(in_features))
        if self.bias is not None:
            self.bias._data = np.zeros(self.out_features, np.float32)
            bound = 1 / math.sqrt(in_features) if in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(_need_tensor(x, type(self).__name__), self.weight, self.bias)

    def extra_repr(self) -> str:
        size = '?' if self.in_features is None else self.in_features
        return f'in_features={size}, out_features={self.out_features}, bias={self.bias is not None}'


class LazyLinear(Linear):
    """A Linear that learns in_features from its first input; until then its parameters are uninitialized."""

    def __init__(self, out_features: int, bias: bool = True):
        super().__init__(None, out_features, bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.weight._data is None:
            if _need_tensor(x, 'LazyLinear').ndim == 0:
                raise ValueError("expected an input of shape (..., in_features), got a scalar")
            self.reset_parameters(x.shape[-1])  # the same Parameter objects get their values: optimizers keep them
        return super().forward(x)


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Identity(Module):
    def forward(self, x):
        return x


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)"""

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return x.flatten(self.start_dim)


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p); in eval, do nothing."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f'p={self.p}'


class MSELoss(Module):
    """mean((input - target)^2)"""

    def forward(self, input, target):
        return F.mse_loss(input, target)


class CrossEntropyLoss(Module):
    """-mean(log softmax(logits)[i, target_i]): logits (N, C), integer class labels target (N,)"""

    def forward(self, input, target):
        return F.cross_entropy(input, target)
