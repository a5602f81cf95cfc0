"""Normalization: batch_norm and layer_norm (each op beside its backward), BatchNorm1d/2d, their lazy forms, LayerNorm.

Both normalize x over some axes to mean 0 and variance 1, then scale and shift per feature:
    xhat = (x - mean) / sqrt(var + eps),   y = weight * xhat + bias      (var: the biased one, divided by n)
BatchNorm takes the mean over the batch (and positions) of each channel; LayerNorm over the features of each
example. In training, BatchNorm also keeps running averages of the batch statistics (buffers: saved and moved
with the model, never trained) and uses them in eval mode instead of the batch's own.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .module import Module
from .parameter import Parameter, UninitializedBuffer, UninitializedParameter, is_lazy


def channel_sums(a: np.ndarray) -> np.ndarray:
    """a (N, C, *) summed over every axis but the channels' -> (1, C, 1, ...), ready to broadcast against a.

    The numbers become rows of a (positions, C) matrix (free for conv2d's outputs, which keep each pixel's
    channels side by side) and ones @ rows adds them up: BLAS does that many times faster than np.sum here.
    """
    rows = np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])
    return (np.ones(len(rows), a.dtype) @ rows).reshape((1, -1) + (1,) * (a.ndim - 2))


def _normalize(x: np.ndarray, mean, eps: float):
    """xhat = (x - mean) / sqrt(var + eps), and 1 / sqrt(var + eps); also the mean and the biased var.
    mean(a) averages a over the normalized axes, keeping them (size 1)."""
    mu = mean(x)
    xc = x - mu
    var = mean(xc * xc)
    invstd = 1 / np.sqrt(var + eps)
    return xc * invstd, invstd, mu, var


def _normalize_backward(gxhat: np.ndarray, xhat: np.ndarray, invstd: np.ndarray, mean) -> np.ndarray:
    """dL/dx from dL/dxhat, when mean and var were computed from x itself:
    dx = invstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))
    (the two means are what moving x does to its own mean and variance)."""
    return invstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) over the batch and positions.  (N, C, *) -> (N, C, *)

    training: use the batch's statistics and move the running ones towards them (in place):
        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var * n / (n - 1)   (the unbiased variance)
    otherwise: use running_mean and running_var.
    """
    x = input._data
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, ...), got {tuple(x.shape)}")
    C = x.shape[1]
    for name, t in (('running_mean', running_mean), ('running_var', running_var), ('weight', weight), ('bias', bias)):
        if t is not None and t.shape != (C,):
            raise RuntimeError(f"batch_norm: {name} has shape {tuple(t.shape)} but the input has {C} channels "
                               f"(shape {tuple(x.shape)}); make num_features match the input's dim 1")
    per = (1, C) + (1,) * (x.ndim - 2)  # a per-channel vector, broadcast against x
    w = None if weight is None else weight._data.reshape(per)
    n = x.size // C  # how many numbers each channel's statistics are taken over

    def mean(a):
        return channel_sums(a) / n
    if training:
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
        xhat, invstd, mu, var = _normalize(x, mean, eps)
        if running_mean is not None:
            running_mean._data[...] = (1 - momentum) * running_mean._data + momentum * mu.reshape(C)  # in place
        if running_var is not None:
            unbiased = var.reshape(C) * n / (n - 1)
            running_var._data[...] = (1 - momentum) * running_var._data + momentum * unbiased
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: evaluation needs running_mean and running_var; pass training=True "
                               "to use the batch's own statistics")
        invstd = (1 / np.sqrt(running_var._data + eps)).reshape(per)
        xhat = (x - running_mean._data.reshape(per)) * invstd
    out = xhat if w is None else xhat * w
    if bias is not None:
        out = out + bias._data.reshape(per)

    def backward(g):
        gxhat = g if w is None else g * w                                   # y = w xhat + b
        if training:
            dx = _normalize_backward(gxhat, xhat, invstd, mean)
        else:
            dx = gxhat * invstd                                             # fixed statistics: xhat is linear in x
        dw = None if weight is None else channel_sums(g * xhat).reshape(C)  # dL/dw = sum g xhat
        db = None if bias is None else channel_sums(g).reshape(C)           # dL/db = sum g
        return tuple(d for d, t in ((dx, input), (dw, weight), (db, bias)) if t is not None)
    parents = tuple(t for t in (input, weight, bias) if t is not None)
    return Tensor._result(out.astype(x.dtype, copy=False), parents, 'batch_norm', backward)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each example over its last len(normalized_shape) dims.  (*, *normalized_shape) -> same"""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = input._data
    if x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(map(str, shape))}], but got input of size {list(x.shape)}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    lead = tuple(range(x.ndim - len(shape)))  # the axes weight and bias are shared over

    def mean(a):
        return a.mean(axis=axes, keepdims=True)
    xhat, invstd, _, _ = _normalize(x, mean, eps)
    out = xhat if weight is None else xhat * weight._data
    if bias is not None:
        out = out + bias._data

    def backward(g):
        gxhat = g if weight is None else g * weight._data
        dx = _normalize_backward(gxhat, xhat, invstd, mean)
        dw = None if weight is None else (g * xhat).sum(axis=lead)
        db = None if bias is None else g.sum(axis=lead)
        return tuple(d for d, t in ((dx, input), (dw, weight), (db, bias)) if t is not None)
    parents = tuple(t for t in (input, weight, bias) if t is not None)
    return Tensor._result(out.astype(x.dtype, copy=False), parents, 'layer_norm', backward)


class _BatchNorm(Module):
    """What BatchNorm1d, BatchNorm2d and their lazy forms share; num_features=None waits for the first call."""
    _dims = ()   # the input dimensions the subclass accepts

    def __init__(self, num_features: int | None, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True):
        super().__init__()
        # a lazy form says 0 (as PyTorch) until its first call tells it the size
        self.num_features, self.eps, self.momentum = num_features or 0, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        lazy = num_features is None  # a lazy form: the sizes come with the first input (initialize_parameters)

        def parameter():
            return UninitializedParameter() if lazy else Parameter(np.empty(num_features, np.float32))

        def buffer():
            return UninitializedBuffer() if lazy else Tensor(np.empty(num_features, np.float32))
        self.weight = parameter() if affine else None
        self.bias = parameter() if affine and bias else None
        tracked = (buffer(), buffer(), Tensor(np.array(0, np.int64))) if track_running_stats else (None,) * 3
        for name, value in zip(('running_mean', 'running_var', 'num_batches_tracked'), tracked):
            self.register_buffer(name, value)  # all None without track_running_stats, as in PyTorch
        if not lazy:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight 1, bias 0 (start as the identity); running mean 0, variance 1, no batches counted."""
        for t, value in ((self.weight, 1), (self.bias, 0), (self.running_mean, 0), (self.running_var, 1),
                         (self.num_batches_tracked, 0)):
            if t is not None:
                t._data[...] = value

    def initialize_parameters(self, input: Tensor) -> None:
        """A lazy form learns num_features from the first input's channels (dim 1) (PyTorch's name for this step)."""
        if not isinstance(input, Tensor) or input.ndim not in self._dims:
            return  # forward() explains what it expects
        self.num_features = input.shape[1]
        for t in (self.weight, self.bias, self.running_mean, self.running_var):
            if t is not None and is_lazy(t):
                t.materialize((self.num_features,))
        self.reset_parameters()

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__} expects a d2lmod Tensor as input, got a {type(input).__name__}")
        if input.ndim not in self._dims:
            raise ValueError(f"expected {' or '.join(f'{d}D' for d in self._dims)} input (got {input.ndim}D input)")
        if self.num_features == 0:  # a lazy form whose tensors all came from load_state_dict: they know the size
            self.num_features = next((t.shape[0] for t in (self.weight, self.running_mean) if t is not None),
                                     input.shape[1])
        if input.shape[1] != self.num_features:
            raise RuntimeError(f"expected input with num_features={self.num_features} channels in dim 1, got "
                               f"shape {input.shape}; make num_features match the input")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1  # in place: a state dict or a reference sees the count
            if self.momentum is None:  # a plain average of all batches so far
                factor = 1.0 / float(self.num_batches_tracked._data)
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats  # which running stats the op may read and update
        return batch_norm(input, self.running_mean if keep else None, self.running_var if keep else None,
                          self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f'{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, '
                f'bias={self.bias is not None}, track_running_stats={self.track_running_stats}')


class BatchNorm1d(_BatchNorm):
    """Batch normalization of features (N, C) or of channels over positions (N, C, L)."""
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of the channels of images (N, C, H, W), over the batch and all positions."""
    _dims = (4,)


class LazyBatchNorm1d(_BatchNorm):
    """A BatchNorm1d that learns num_features from its first input."""
    _dims, cls_to_become = (2, 3), BatchNorm1d

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True):
        super().__init__(None, eps, momentum, affine, track_running_stats, bias=bias)


class LazyBatchNorm2d(_BatchNorm):
    """A BatchNorm2d that learns num_features from its first input."""
    _dims, cls_to_become = (4,), BatchNorm2d

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True):
        super().__init__(None, eps, momentum, affine, track_running_stats, bias=bias)


class LayerNorm(Module):
    """Normalize each example over its last dims (normalized_shape), then scale and shift elementwise."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = Parameter(np.ones(shape, np.float32)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, np.float32)) if elementwise_affine and bias else None

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f'{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, '
                f'bias={self.bias is not None}')
