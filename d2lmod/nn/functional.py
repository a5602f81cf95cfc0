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


# ---- layers of the chapter's closing claim: GELU, attention, and the ops of conv, pooling, norm, embedding ----
import math  # noqa: E402

from .conv import conv2d  # noqa: E402,F401
from .norm import batch_norm, layer_norm  # noqa: E402,F401
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: E402,F401
from .sparse import embedding  # noqa: E402,F401

_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf, element by element, is exact and plain


def gelu(input: Tensor, approximate: str = 'none') -> Tensor:
    """x * Phi(x), Phi the standard normal's CDF; approximate='tanh' uses PyTorch's tanh formula."""
    x = _tensor(input, 'gelu')._data
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


def attention(q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None = None, dropout_p: float = 0.0,
              scale: float | None = None) -> tuple:
    """(softmax(q k^T * scale + mask) v, the weights): q (..., L, E), k (..., S, E), v (..., S, Ev).

    mask is added to the scores: -inf where a query must not look (its weight becomes 0), else 0 or a bias.
    """
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale   # how well each query matches each key
    if mask is not None:
        scores = scores + Tensor(mask.astype(scores.dtype))
    weights = softmax(scores, dim=-1)            # each query's weights over the keys sum to 1
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return weights @ v, weights


def additive_mask(mask, dtype, allowed_if_true: bool) -> np.ndarray:
    """A boolean mask as 0 / -inf to add to scores (True: allowed, or True: blocked); a float mask as it is."""
    m = np.asarray(mask._data if isinstance(mask, Tensor) else mask)
    if m.dtype == np.bool_:
        blocked = ~m if allowed_if_true else m
        return np.where(blocked, -np.inf, 0.0).astype(dtype)
    return m.astype(dtype)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(q k^T / sqrt(E) + mask) v, as PyTorch's (a boolean attn_mask is True where attention is allowed)."""
    L, S = query.shape[-2], key.shape[-2]
    mask = None
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
        mask = additive_mask(np.tril(np.ones((L, S), bool)), query.dtype, allowed_if_true=True)
    elif attn_mask is not None:
        mask = additive_mask(attn_mask, query.dtype, allowed_if_true=True)
    return attention(query, key, value, mask, dropout_p, scale)[0]
