"""Functions of tensors that layers are made of: activations, softmax, losses, linear, dropout."""
from __future__ import annotations

import warnings

import numpy as np

from .. import factories, ops
from ..tensor import Tensor

linear = ops.linear            # y = x W^T + b
log_softmax = ops.log_softmax  # a - log sum exp(a)


def _tensor(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}() expects a d2lmod Tensor, got a {type(x).__name__}; wrap it first: dm.tensor(x)")
    return x


def relu(x: Tensor) -> Tensor:
    return _tensor(x, 'relu').relu()


def sigmoid(x: Tensor) -> Tensor:
    return _tensor(x, 'sigmoid').sigmoid()


def tanh(x: Tensor) -> Tensor:
    return _tensor(x, 'tanh').tanh()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along dim."""
    return ops.log_softmax(_tensor(x, 'softmax'), dim).exp()


def cross_entropy(input: Tensor, target) -> Tensor:
    """-mean_i log softmax(input)[i, target_i].  input: (N, C) scores, target: (N,) integer class labels."""
    labels = np.asarray(target._data if isinstance(target, Tensor) else target)
    if input.ndim != 2:
        raise ValueError(f"cross_entropy expects scores of shape (N, C), got {input.shape}")
    if labels.dtype.kind not in 'iu':
        raise TypeError(f"cross_entropy expects integer class labels, got {labels.dtype}; convert them with "
                        ".long() or dm.tensor(labels, dtype=dm.int64)")
    if labels.shape != input.shape[:1]:
        raise ValueError(f"cross_entropy: {input.shape[0]} rows of scores but labels of shape {labels.shape}; "
                         "pass one label per row")
    if labels.size and (labels.min() < 0 or labels.max() >= input.shape[1]):
        raise IndexError(f"cross_entropy: labels must lie in 0..{input.shape[1] - 1} (one per class), "
                         f"got values from {labels.min()} to {labels.max()}")
    return ops.cross_entropy(input, labels)


def mse_loss(input: Tensor, target) -> Tensor:
    """mean((input - target)^2)"""
    target = ops.lift(target, input)
    if input.shape != target.shape:
        warnings.warn(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ and will "
                      "be broadcast, which is rarely what you want; reshape them to match", stacklevel=2)
    diff = input - target
    return (diff * diff).mean()


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the survivors by 1/(1-p), so the mean stays the same."""
    if not training or p == 0:
        return x
    keep = factories.generator().random(x.shape) >= p
    return x * Tensor((keep / (1 - p)).astype(x.dtype)) if p < 1 else x * 0.0


# ---- the ops of the layers past the chapter's path, each defined in its layer family's file ----------------
from .activation import gelu  # noqa: E402,F401
from .attention import scaled_dot_product_attention  # noqa: E402,F401
from .conv import conv2d  # noqa: E402,F401
from .norm import batch_norm, layer_norm  # noqa: E402,F401
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: E402,F401
from .sparse import embedding  # noqa: E402,F401
