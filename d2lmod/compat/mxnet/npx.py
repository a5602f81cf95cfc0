"""mxnet.npx: the operators MXNet keeps outside NumPy's names (relu, sigmoid, softmax), and set_np()."""
from __future__ import annotations

from ...nn import functional as F
from ...tensor import Tensor

_np_semantics = False


def set_np() -> None:
    """Switch MXNet to NumPy-style arrays. d2lmod's Tensors always behave so; this records that it was asked."""
    global _np_semantics
    _np_semantics = True


def is_np_array() -> bool:
    return _np_semantics


def relu(data: Tensor) -> Tensor:
    return F.relu(data)


def sigmoid(data: Tensor) -> Tensor:
    return F.sigmoid(data)


def softmax(data: Tensor, axis: int = -1) -> Tensor:
    return F.softmax(data, axis)


def cpu(device_id: int = 0) -> str:
    """The CPU, the only device d2lmod computes on."""
    return 'cpu'


def num_gpus() -> int:
    return 0  # d2lmod runs on the CPU only
