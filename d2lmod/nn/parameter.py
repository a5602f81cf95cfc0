"""Parameter, and the placeholders a lazy layer holds until its first call tells it the sizes."""
from __future__ import annotations

import inspect

import numpy as np

from .. import ops  # noqa: F401  (installs the Tensor methods that the placeholders below refuse)
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers and optimizers train (requires_grad=True by default)."""

    def __init__(self, data=None, requires_grad: bool = True):
        Tensor.__init__(self, np.zeros(0, np.float32) if data is None else
                        data._data if isinstance(data, Tensor) else data)  # shares the given tensor's memory
        if requires_grad:
            self.requires_grad_()

    def __repr__(self):
        return 'Parameter containing:\n' + Tensor.__repr__(self)


class Buffer:
    """nn.Buffer(t): t marked to become a buffer when assigned to a module attribute (self.x = nn.Buffer(t))."""

    def __new__(cls, data=None, *, persistent: bool = True):
        t = Tensor(np.zeros(0, np.float32)) if data is None else data.detach()  # a plain tensor, as in PyTorch
        t._buffer_persistent = persistent  # read by Module.__setattr__
        return t


class UninitializedParameter(Parameter):
    """A lazy layer's parameter before its first call: no shape and no values yet (PyTorch's class).

    materialize(shape) gives it values and turns it into a plain Parameter, the same object, so an
    optimizer built before the first call trains it afterwards.
    """
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        self._data, self.requires_grad = None, requires_grad
        self._lazy_dtype = np.dtype(np.float32 if dtype is None else dtype)

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give it zeros of shape (the layer then initialises them) and make it an ordinary tensor."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self._data = np.zeros(shape, self._lazy_dtype if dtype is None else dtype)
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter or buffer: its lazy layer learns "
                           "its sizes on its first call; run the model once on an input (e.g. net(X)) first")

    @property
    def dtype(self):
        return self._lazy_dtype

    def __repr__(self):
        return f'<{type(self).__name__}>'


class UninitializedBuffer(Tensor):
    """A lazy layer's buffer before its first call (e.g. a running mean whose size is not known yet)."""
    cls_to_become = Tensor
    _buffer_persistent = True  # like nn.Buffer: assigning one to a module attribute registers a buffer
    materialize, __repr__ = UninitializedParameter.materialize, UninitializedParameter.__repr__
    shape, dtype = UninitializedParameter.shape, UninitializedParameter.dtype

    def __init__(self, requires_grad: bool = False, device=None, dtype=None):
        UninitializedParameter.__init__(self, requires_grad, device, dtype)


def is_lazy(t) -> bool:
    """True for a parameter or buffer that has no values yet."""
    return isinstance(t, (UninitializedParameter, UninitializedBuffer))


def _refuse(name: str, member):
    """member, but on a placeholder it says that the model has to run once first."""
    def refused(self, *args, **kwargs):
        raise ValueError(f"Attempted to use an uninitialized parameter in {name}(): its lazy layer does not know "
                         "its input size yet; run the model once on an input (e.g. net(X)) before using it")
    return refused


# As in PyTorch, every use of a placeholder's values is an error that says what to do; repr, dtype and
# requires_grad still work (the book prints net[0].weight before the first call: <UninitializedParameter>).
for _name, _member in list(vars(Tensor).items()):
    if _name in ('__init__', '__repr__', 'dtype', 'shape', 'device', 'is_leaf', '__hash__', '__array_ufunc__') \
            or (_name.startswith('_') and not _name.startswith('__')):
        continue
    for _cls in (UninitializedParameter, UninitializedBuffer):
        if inspect.isfunction(_member):
            setattr(_cls, _name, _refuse(_name, _member))
        elif isinstance(_member, property):
            setattr(_cls, _name, property(_refuse(_name, _member), _member.fset))
