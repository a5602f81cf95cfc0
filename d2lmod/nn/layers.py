"""The layers: Linear and LazyLinear, the activations, Flatten, Identity, Dropout and the losses."""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter, UninitializedParameter, is_lazy


def _need_tensor(x, layer: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer} expects a d2lmod Tensor as input, got a {type(x).__name__}; "
                        "wrap it first: dm.tensor(x)")
    return x


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch.  x: (N, in) -> (N, out)"""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.out_features = out_features
        self.weight = Parameter(np.zeros((out_features, in_features), np.float32 if dtype is None else dtype))
        if bias:
            self.bias = Parameter(np.zeros(out_features, self.weight.dtype))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    @property
    def in_features(self) -> int:
        """Read from the weight, so it is right after a lazy layer's first call or a load (0 until then)."""
        return 0 if is_lazy(self.weight) else self.weight.shape[1]

    def reset_parameters(self) -> None:
        """PyTorch's default: every number uniform in [-1/sqrt(in_features), +1/sqrt(in_features)]."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = uniform(+-1/sqrt(in_features))
        if self.bias is not None:
            fan_in = self.weight.shape[1]  # in_features (a LazyLinear still says 0 while this runs)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(_need_tensor(x, type(self).__name__), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}'


class LazyLinear(Linear):
    """A Linear that learns in_features from its first input, then becomes a Linear (see Module._infer_parameters).

    Until then weight and bias are UninitializedParameters: printing them works, using them says to run the model.
    """
    cls_to_become = Linear
    in_features = 0  # as in PyTorch: 0 until the first call turns it into a Linear (even after a load)

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        Module.__init__(self)
        self.out_features = out_features
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)
        else:
            self.register_parameter('bias', None)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        """Materialize weight (out_features, input.shape[-1]) and bias (out_features,), then initialise them."""
        if _need_tensor(input, 'LazyLinear').ndim == 0:
            raise ValueError("expected an input of shape (..., in_features), got a scalar")
        if self.has_uninitialized_params():
            self.weight.materialize((self.out_features, input.shape[-1]))
            if self.bias is not None:
                self.bias.materialize((self.out_features,))
            self.reset_parameters()


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
