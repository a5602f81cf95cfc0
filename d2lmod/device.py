"""Devices: where a tensor's numbers live. d2lmod computes with NumPy, so the CPU is the only real one.

`device('cuda', 1)` can still be named, printed and compared, as in PyTorch on a machine without a GPU;
putting data there fails the way PyTorch fails on such a machine, with a sentence on what to do instead.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

KNOWN = ('cpu', 'cuda', 'mps', 'xpu', 'xla', 'meta', 'hip')  # what PyTorch can name (a short list)


class device:
    """A device name: device('cpu'), device('cuda'), device('cuda:1') or device('cuda', 1)."""

    def __init__(self, type, index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device() expects a string such as 'cpu' or 'cuda:0', got {type!r}")
        name, _, number = type.partition(':')
        if name not in KNOWN or (number and not number.isdigit()) or (number and index is not None):
            raise RuntimeError(f"Expected one of {', '.join(KNOWN)} device type at start of device string: "
                               f"{type}")
        self.type, self.index = name, int(number) if number else index

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f'{self.type}:{self.index}'

    def __eq__(self, other):
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


CPU = device('cpu')


def no_gpu(where: str, exc=AssertionError, kind: str = 'cuda'):
    """The error for data sent to a GPU: PyTorch's kind of error, and what to do on this machine."""
    said = 'Torch not compiled with CUDA enabled' if kind == 'cuda' else \
        f'PyTorch is not linked with support for {kind} devices'
    return exc(f"{where}: {said}: d2lmod computes with NumPy on the CPU and this machine has no GPU; use "
               "dm.device('cpu') (the book's try_gpu() falls back to it when dm.cuda.device_count() is 0)")


def as_device(target) -> device | None:
    """device('cpu') for anything naming the CPU (a string, a device), None for what is not a device (a dtype);
    any other device raises as PyTorch does on a machine without it."""
    if isinstance(target, str):
        try:
            target = device(target)
        except RuntimeError:
            if target not in np.sctypeDict:  # 'float64' is a dtype's name, not a device's
                raise
            return None
    if not isinstance(target, device):
        return None
    if target.type != 'cpu':
        raise no_gpu(f"device {str(target)!r}", AssertionError if target.type == 'cuda' else RuntimeError, target.type)
    return CPU


# dm.cuda: PyTorch's questions about GPUs, answered for a machine without one
cuda = SimpleNamespace(is_available=lambda: False, device_count=lambda: 0)
