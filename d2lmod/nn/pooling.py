"""Pooling: max_pool2d, avg_pool2d and adaptive_avg_pool2d (each op beside its backward), and their layers.

Pooling works on each (image, channel) plane alone, so the ops view the input (..., H, W) as B planes
(B, H, W, 1) and reuse convolution's strided windows: (B, OH, OW, kh, kw, 1), without copying.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .conv import _pair, add_windows, windows
from .module import Module


def _pool_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """How many windows fit; with ceil_mode a last partial window counts if it starts inside input or left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    n = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def _setup(input: Tensor, kernel_size, stride, padding, dilation, ceil_mode, name: str):
    """The planes (B, H, W, 1), the sizes as pairs, and the output height and width, with checks."""
    x = input._data
    if x.ndim not in (3, 4):
        raise RuntimeError(f"{name} expects an input of shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    k = _pair(kernel_size, 'kernel_size')
    s = k if stride is None or stride == [] else _pair(stride, 'stride')
    p, d = _pair(padding, 'padding'), _pair(dilation, 'dilation')
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise RuntimeError(f"{name}: pad should be at most half of effective kernel size, but got pad={p} and "
                           f"kernel_size={k}")
    out = tuple(_pool_size(x.shape[i - 2], k[i], s[i], p[i], d[i], ceil_mode) for i in (0, 1))
    if min(out) < 1:
        raise RuntimeError(f"{name}: input of shape {x.shape} is too small for kernel {k} with padding {p}; "
                           f"the output would be {out}")
    return x.reshape(-1, *x.shape[-2:], 1), k, s, p, d, out


def _padded(planes: np.ndarray, k, s, p, d, out, fill: float) -> np.ndarray:
    """planes padded by p on each side with fill, plus what ceil_mode's last windows need on the right."""
    extra = [max(0, (out[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - planes.shape[i + 1] - 2 * p[i]) for i in (0, 1)]
    widths = ((0, 0), (p[0], p[0] + extra[0]), (p[1], p[1] + extra[1]), (0, 0))
    return np.pad(planes, widths, constant_values=fill) if any(map(any, widths)) else planes


def _unpad(dxp: np.ndarray, p, shape) -> np.ndarray:
    return dxp[:, p[0]:p[0] + shape[-2], p[1]:p[1] + shape[-1]].reshape(shape)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """The largest value of each window.  (N, C, H, W) -> (N, C, OH, OW)"""
    planes, k, s, p, d, (OH, OW) = _setup(input, kernel_size, stride, padding, dilation, ceil_mode, 'max_pool2d')
    xp = _padded(planes, k, s, p, d, (OH, OW), -np.inf)  # padding never wins a max
    win = windows(xp, k, s, d, (OH, OW)).reshape(len(planes), OH, OW, k[0] * k[1])
    arg = win.argmax(-1)[..., None]  # the first largest, as PyTorch picks
    shape_out = input.shape[:-2] + (OH, OW)
    out = np.take_along_axis(win, arg, -1).reshape(shape_out)

    def backward(g):
        # d max/d x = 1 at the window's largest element, 0 elsewhere; overlapping windows add up
        dwin = np.zeros(win.shape, g.dtype)
        np.put_along_axis(dwin, arg, g.reshape(len(planes), OH, OW, 1), -1)
        dxp = np.zeros(xp.shape, g.dtype)
        add_windows(dxp, np.moveaxis(dwin.reshape(len(planes), OH, OW, *k, 1), (3, 4), (0, 1)), s, d)
        return (_unpad(dxp, p, input.shape),)
    result = Tensor._result(out, (input,), 'max_pool2d', backward)
    if not return_indices:
        return result
    # PyTorch's indices: the flat position row * W + column of each maximum in its input plane
    i, j = np.arange(OH)[:, None], np.arange(OW)[None, :]
    rows = i * s[0] - p[0] + (arg[..., 0] // k[1]) * d[0]
    cols = j * s[1] - p[1] + (arg[..., 0] % k[1]) * d[1]
    return result, Tensor((rows * input.shape[-1] + cols).reshape(shape_out).astype(np.int64))


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """The mean of each window.  (N, C, H, W) -> (N, C, OH, OW)"""
    planes, k, s, p, d, (OH, OW) = _setup(input, kernel_size, stride, padding, 1, ceil_mode, 'avg_pool2d')
    xp = _padded(planes, k, s, p, d, (OH, OW), 0.0)
    total = windows(xp, k, s, d, (OH, OW)).sum(axis=(3, 4, 5))
    if divisor_override:
        divisor = np.asarray(divisor_override, xp.dtype)
    else:  # how many numbers each window averages: count the ones of a mask the way PyTorch counts
        H, W = input.shape[-2:]
        mask = np.zeros((1,) + xp.shape[1:], xp.dtype)
        if count_include_pad:
            mask[:, :H + 2 * p[0], :W + 2 * p[1]] = 1  # the padding counts, what ceil_mode adds does not
        else:
            mask[:, p[0]:p[0] + H, p[1]:p[1] + W] = 1
        divisor = windows(mask, k, s, d, (OH, OW)).sum(axis=(3, 4, 5))
    out = (total / divisor).astype(xp.dtype).reshape(input.shape[:-2] + (OH, OW))

    def backward(g):
        # d mean/d x = 1/divisor for every element of the window
        share = (g.reshape(len(planes), OH, OW) / divisor).astype(g.dtype)
        dwin = np.broadcast_to(share[None, None, :, :, :, None], k + (len(planes), OH, OW, 1))
        dxp = np.zeros(xp.shape, g.dtype)
        add_windows(dxp, dwin, s, d)
        return (_unpad(dxp, p, input.shape),)
    return Tensor._result(out, (input,), 'avg_pool2d', backward)


def _averaging_matrix(size: int, out: int, dtype) -> np.ndarray:
    """A of shape (out, size): row i averages input cells floor(i*size/out) .. ceil((i+1)*size/out) - 1."""
    A = np.zeros((out, size), dtype)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        A[i, start:end] = 1 / (end - start)
    return A


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average over a grid of output_size windows that covers the input.  (N, C, H, W) -> (N, C, *output_size)"""
    x = input._data
    if x.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d expects an input of shape (N, C, H, W) or (C, H, W), "
                           f"got {tuple(x.shape)}")
    sizes = (output_size, output_size) if isinstance(output_size, int) or output_size is None else output_size
    OH, OW = (x.shape[i - 2] if n is None else n for i, n in enumerate(sizes))
    # averaging a rectangle = averaging its rows, then its columns: out = A_h @ x @ A_w^T (per plane)
    Ah, Aw = _averaging_matrix(x.shape[-2], OH, x.dtype), _averaging_matrix(x.shape[-1], OW, x.dtype)
    out = Ah @ x @ Aw.T

    def backward(g):
        dx = np.empty_like(x)  # laid out in memory as x is (conv2d's outputs: channels last), so later ops stay fast
        dx[...] = Ah.T @ g @ Aw  # d(A_h x A_w^T)/dx = A_h^T g A_w
        return (dx,)
    return Tensor._result(out, (input,), 'adaptive_avg_pool2d', backward)


class MaxPool2d(Module):
    """The largest value of each kernel_size window, moved by stride (default: kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)

    def extra_repr(self):
        return (f'kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, '
                f'dilation={self.dilation}, ceil_mode={self.ceil_mode}')


class AvgPool2d(Module):
    """The mean of each kernel_size window, moved by stride (default: kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}'


class AdaptiveAvgPool2d(Module):
    """Averages to a fixed output_size whatever the input's height and width (1: global average pooling)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f'output_size={self.output_size}'
