"""Convolution: the conv2d op (im2col over a strided view, and its backward), Conv2d and LazyConv2d."""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter, UninitializedParameter, is_lazy


def _pair(v, name: str) -> tuple:
    """3 -> (3, 3); (3, 5) stays: PyTorch accepts either for every size of a 2-d layer."""
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(n, (int, np.integer)) for n in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return tuple(int(n) for n in pair)


def windows(xp: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, out_hw: tuple) -> np.ndarray:
    """Every kernel window of xp without copying: (N, H, W, C) -> a view of shape (N, OH, OW, kh, kw, C).

    Window (i, j) starts at row i*stride_h, column j*stride_w; its element (p, q) is dilation_h*p rows and
    dilation_w*q columns further on. Moving by one in any of the six axes is a fixed step in memory, so the
    view is one as_strided call; reading it into a matrix (reshape) is the copy that im2col makes.
    """
    sN, sH, sW, sC = xp.strides
    shape = (xp.shape[0], out_hw[0], out_hw[1], kernel[0], kernel[1], xp.shape[3])
    strides = (sN, sH * stride[0], sW * stride[1], sH * dilation[0], sW * dilation[1], sC)
    return as_strided(xp, shape, strides, writeable=False)


def add_windows(dxp: np.ndarray, dwin: np.ndarray, stride: tuple, dilation: tuple) -> None:
    """The adjoint of windows() (col2im): add the windows' gradients dwin (kh, kw, N, OH, OW, C) onto dxp (N, H, W, C).

    dwin[p, q] holds, for every window, the gradient of its element (p, q); a pixel that lies in several
    windows gets the sum of their gradients. One strided slice per kernel position covers every window.
    """
    kh, kw, _, OH, OW, _ = dwin.shape
    for p in range(kh):
        for q in range(kw):
            r, c = p * dilation[0], q * dilation[1]
            dxp[:, r:r + stride[0] * (OH - 1) + 1:stride[0], c:c + stride[1] * (OW - 1) + 1:stride[1]] += dwin[p, q]


def channels_last_padded(x: np.ndarray, pads) -> np.ndarray:
    """(N, C, H, W) -> (N, H + top + bottom, W + left + right, C) with zeros around: each pixel's C channels side
    by side in memory, so that im2col copies runs of C numbers (the arrays conv2d returns are laid out so too)."""
    N, C, H, W = x.shape
    (top, bottom), (left, right) = pads
    xp = np.zeros((N, H + top + bottom, W + left + right, C), x.dtype)
    xp[:, top:top + H, left:left + W] = x.transpose(0, 2, 3, 1)
    return xp


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """Cross-correlation of input with weight, as PyTorch's conv2d.  (N, C, H, W), (O, C, kh, kw) -> (N, O, OH, OW)"""
    stride, dilation = _pair(stride, 'stride'), _pair(dilation, 'dilation')
    if groups != 1:
        raise NotImplementedError("conv2d: d2lmod implements groups=1 only (every output channel sees every "
                                  "input channel); split the channels and use several convolutions instead")
    x, w = input._data, weight._data
    if w is None:
        raise ValueError("conv2d: the weight is not initialized yet; a LazyConv2d sets its in_channels on its "
                         "first call, so run the model once on an input first")
    if x.ndim != 4:
        raise RuntimeError(f"conv2d expects a 4-d input (N, C, H, W), got shape {tuple(x.shape)}; add the batch "
                           "dimension with x.reshape(1, *x.shape) for a single image")
    O, C, kh, kw = w.shape
    if x.shape[1] != C:
        raise RuntimeError(f"conv2d: weight of shape {w.shape} expects input with in_channels={C} channels, got "
                           f"input of shape {x.shape} with {x.shape[1]}; make in_channels match the input "
                           "(or use LazyConv2d, which learns it from the first input)")
    if x.dtype != w.dtype:
        raise RuntimeError(f"conv2d: got a {x.dtype} input but the weights are {w.dtype}; convert the input with "
                           f".to(dm.{w.dtype}) or the model with .to()")
    if padding == 'same':
        total = [d * (k - 1) for d, k in zip(dilation, (kh, kw))]
        pads = [(t // 2, t - t // 2) for t in total]  # an odd total puts the extra row at the bottom, as torch
    elif padding == 'valid':
        pads = [(0, 0), (0, 0)]
    else:
        pads = [(p, p) for p in _pair(padding, 'padding')]
    N, H, W = x.shape[0], x.shape[2], x.shape[3]
    OH = (H + sum(pads[0]) - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (W + sum(pads[1]) - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if OH < 1 or OW < 1:
        raise RuntimeError(f"conv2d: input of shape {x.shape} (padded by {pads}) is smaller than the kernel "
                           f"{(kh, kw)} with dilation {dilation}; pad it more or use a smaller kernel")
    xp = channels_last_padded(x, pads)
    # im2col: one row per output pixel (n, i, j), holding its window (p, q, c) flattened
    cols = windows(xp, (kh, kw), stride, dilation, (OH, OW)).reshape(N * OH * OW, kh * kw * C)
    w2 = w.transpose(0, 2, 3, 1).reshape(O, kh * kw * C)  # each filter flattened in the same (p, q, c) order
    # out[n, o, i, j] = sum_{c,p,q} x[n, c, i*s + p*d, j*s + q*d] w[o, c, p, q]  (+ b[o]): one matmul
    out = cols @ w2.T
    if bias is not None:
        out += bias._data
    out = out.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)  # (N, O, OH, OW), each pixel's channels side by side
    need_x = input.requires_grad

    def backward(g):
        g2 = g.transpose(0, 2, 3, 1).reshape(N * OH * OW, O)   # one row per output pixel, as cols
        dw = (g2.T @ cols).reshape(O, kh, kw, C).transpose(0, 3, 1, 2)  # dL/dw = sum over pixels of g (x) window
        db = g2.sum(0) if bias is not None else None           # dL/db = sum of g over batch and pixels
        dx = None
        if need_x:                                             # dL/dwindow = g @ w, then each window to its pixels
            wk = w.transpose(2, 3, 0, 1).reshape(kh * kw, O, C)  # one (O, C) matrix per kernel position (p, q)
            dwin = np.matmul(g2, wk).reshape(kh, kw, N, OH, OW, C)  # dL/d(element (p, q) of each window)
            dxp = np.zeros(xp.shape, g.dtype)
            add_windows(dxp, dwin, stride, dilation)
            dx = dxp[:, pads[0][0]:pads[0][0] + H, pads[1][0]:pads[1][0] + W].transpose(0, 3, 1, 2)
        return (dx, dw) if bias is None else (dx, dw, db)
    parents = (input, weight) if bias is None else (input, weight, bias)
    return Tensor._result(out, parents, 'conv2d', backward)


class Conv2d(Module):
    """A 2-d convolution with out_channels filters of shape (in_channels, kh, kw).  (N, C, H, W) -> (N, O, OH, OW)"""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = 'zeros'):
        super().__init__()
        if groups != 1 or padding_mode != 'zeros':
            raise NotImplementedError("Conv2d: d2lmod implements groups=1 and padding_mode='zeros' only; "
                                      f"got groups={groups}, padding_mode={padding_mode!r}")
        if isinstance(padding, str) and padding not in ('same', 'valid'):
            raise ValueError(f"Invalid padding string {padding!r}, should be one of ['valid', 'same']")
        if padding == 'same' and _pair(stride, 'stride') != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        self.out_channels, self.kernel_size = out_channels, _pair(kernel_size, 'kernel_size')
        self.stride, self.dilation, self.groups = _pair(stride, 'stride'), _pair(dilation, 'dilation'), groups
        self.padding = padding if isinstance(padding, str) else _pair(padding, 'padding')
        self.padding_mode = padding_mode
        if in_channels is None:  # LazyConv2d: the sizes come with the first input (see initialize_parameters)
            self.weight = UninitializedParameter()
            self.bias = UninitializedParameter() if bias else None
        else:
            self.weight = Parameter(np.empty((out_channels, in_channels) + self.kernel_size, np.float32))
            self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
            self.reset_parameters()

    @property
    def in_channels(self) -> int:
        return 0 if is_lazy(self.weight) else self.weight.shape[1]  # 0 until a lazy layer's first call, as in torch

    def reset_parameters(self) -> None:
        """PyTorch's default: uniform in +-1/sqrt(fan_in), fan_in = in_channels * kh * kw, for weight and bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = uniform(+-1/sqrt(fan_in))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__} expects a d2lmod Tensor as input, got a {type(input).__name__}")
        if input.ndim == 3:  # one image (C, H, W): as a batch of one, as PyTorch does
            out = self.forward(input.reshape(1, *input.shape))
            return out.reshape(out.shape[1:])
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}'
        if self.padding != (0, 0):
            s += f', padding={self.padding}'
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        return s + (', bias=False' if self.bias is None else '')


class LazyConv2d(Conv2d):
    """A Conv2d that learns in_channels from its first input; until then its parameters are uninitialized."""
    cls_to_become = Conv2d  # PyTorch's lazy class swap: after its first call it is a Conv2d
    in_channels = 0  # as in PyTorch: 0 until the first call turns it into a Conv2d (even after a load)

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = 'zeros'):
        super().__init__(None, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)

    def initialize_parameters(self, input: Tensor) -> None:
        """Give the parameters their shapes and values from the first input (PyTorch's name for this step)."""
        if not isinstance(input, Tensor) or input.ndim not in (3, 4):
            raise RuntimeError("LazyConv2d expects an input of shape (N, C, H, W) or (C, H, W), got "
                               f"{getattr(input, 'shape', type(input).__name__)}")
        # the same Parameter objects get their values, so an optimizer made before the first call trains them
        self.weight.materialize((self.out_channels, input.shape[-3]) + self.kernel_size)
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()
