"""In-place updates (x += y, x.fill_(0), x[i] = v): they write into the tensor's own memory, as PyTorch's do.

Three rules, all PyTorch's:
- a leaf that requires grad (a parameter) may be changed in place only under no_grad() (optimizers, nn.init);
- every write bumps the tensor's version counter (shared with its views), so that backward can refuse to run
  a rule whose kept values were overwritten since (see Tensor.backward);
- a recorded update gives the tensor a new history whose parent is the tensor as it was (a node of its own
  that keeps the old history), so ops that used the old value still find it (see Tensor._inputs); when the
  update's own rule needs the old values (x *= w needs x for w's gradient), that node keeps a copy of them.
"""
from __future__ import annotations

import numpy as np

from . import factories, ops
from .tensor import Tensor, _clock, _State


def update(self: Tensor, name: str, compute, *others, cast: bool = False, leaf: str = 'a leaf Variable') -> Tensor:
    """Write compute(self, *others), an ordinary op, into self's memory; record it when autograd needs to."""
    others = (ops.lift(others[0], self),) if others else ()  # every update takes one operand or none
    recording = _State.grad_enabled and (self.requires_grad or (others and others[0].requires_grad))
    old = self
    if recording:
        base = self._base
        if base is not None and base.requires_grad and not base._parents:
            leaf = 'a view of a leaf Variable'  # w[0] += 1 writes into w itself
        elif not (self.requires_grad and not self._parents):
            leaf = None
        if leaf:
            raise RuntimeError(f"{leaf} that requires grad is being used in an in-place operation. (d2lmod: {name} "
                               "changes a parameter: do it under `with dm.no_grad():`, as optimizers and nn.init do)")
        old = Tensor.__new__(Tensor)
        old.__dict__.update(self.__dict__)  # self's history so far (its memory is about to be overwritten)
        old._vc = [0]                       # its own counter: tells below whether the rule reads old
        others = (_alias(self, old),) if others and others[0] is self else others  # x /= x
    new = compute(old, *others)
    if recording:
        for counter, _ in new._saved:
            if counter is old._vc:  # the rule reads the old values (x *= w): it gets a copy of its own
                old._data = self._data.copy()
                new = compute(old, *others)
                break
    if new._data.shape != self._data.shape:
        raise RuntimeError(f"in-place {name}: the result has shape {new.shape} but the tensor has shape {self.shape}; "
                           f"an in-place op cannot change a tensor's shape, write x = x {name} y instead")
    if not cast and new.dtype != self.dtype and not np.can_cast(new.dtype, self.dtype, 'same_kind'):
        raise RuntimeError(f"result type {new.dtype} can't be cast to the desired output type {self.dtype}; "
                           f"write x = x {name} y for a new tensor, or convert x first (x.float())")
    self._data[...] = new._data
    self._bump()
    if recording:  # self now holds new's history; ops that used it before find the old one through _before
        self.requires_grad, self._parents, self._backward = True, new._parents, new._backward
        self._op, self._saved, self._call, self._made_at = new._op, new._saved, new._call, new._made_at
        _clock[0] += 1
        self._changed_at, self._before = _clock[0], old
    return self


def _alias(self: Tensor, old: Tensor) -> Tensor:
    """x /= x: the other operand is x as it is, history and memory; a rule that keeps it will find it changed
    (PyTorch refuses that backward too; x += x keeps nothing and works)."""
    alias = Tensor.__new__(Tensor)
    alias.__dict__.update(old.__dict__)
    alias._vc = self._version_now()[0]
    return alias


def setitem(self: Tensor, index, value) -> None:
    """x[index] = value, recorded (as PyTorch's index_put_) when x or value needs a gradient."""
    index = ops.unwrap(index)
    slot = np.shape(self._data[index])

    def index_put(a, v):
        out = a._data.copy()
        out[index] = _fit(v._data, slot)

        def backward(g):  # the overwritten places get no gradient; value gets the gradient of its places
            ga = g.copy()
            ga[index] = 0
            gv = g[index]
            return ga, gv.reshape(v.shape) if gv.ndim < v.ndim else gv
        return ops.result(out, (a, v), 'index_put', backward)
    if not (_State.grad_enabled and (self.requires_grad or getattr(value, 'requires_grad', False))):
        self._data[index] = _fit(value._data if isinstance(value, Tensor) else np.asarray(value), slot)
        self._bump()  # nothing to record: just write
        return
    update(self, 'index_put', index_put, value, cast=True, leaf='a view of a leaf Variable')


def _fit(values: np.ndarray, slot: tuple) -> np.ndarray:
    """values without the leading sizes of 1 that the slot lacks (PyTorch puts a (1,) tensor into one element)."""
    extra = values.ndim - len(slot)
    return values.reshape(values.shape[extra:]) if extra > 0 and values.shape[:extra] == (1,) * extra else values


def _fill(a, v):
    """a filled with the number v: a gets no gradient, v the sum of all."""
    return ops.result(np.full(a.shape, v._data, a.dtype), (a, v), 'fill', lambda g: (np.zeros_like(g), g.sum()))


def _random(draw, name):
    """a replaced by random numbers (normal_, uniform_): nothing flows back to a."""
    return lambda a: ops.result(draw(a.shape).astype(a.dtype), (a,), name, lambda g: (np.zeros_like(g),))


def _copy(a, src):
    """a replaced by src (broadcast, cast to a's dtype): src gets the whole gradient."""
    return ops.result(np.broadcast_to(src._data, a.shape).astype(a.dtype), (a, src), 'copy',
                      lambda g: (np.zeros_like(g), g))


Tensor.__iadd__ = lambda self, other: update(self, '+', ops.add, other)
Tensor.__isub__ = lambda self, other: update(self, '-', ops.sub, other)
Tensor.__imul__ = lambda self, other: update(self, '*', ops.mul, other)
Tensor.__itruediv__ = lambda self, other: update(self, '/', ops.div, other)
Tensor.__setitem__ = setitem
Tensor.fill_ = lambda self, value: update(self, 'fill_', _fill, value, cast=True)
Tensor.zero_ = lambda self: update(self, 'zero_', _fill, 0, cast=True)
Tensor.copy_ = lambda self, src: update(self, 'copy_', _copy, src, cast=True)
Tensor.clamp_ = lambda self, min=None, max=None: update(self, 'clamp_', lambda a: ops.clamp(a, min, max))
Tensor.normal_ = lambda self, mean=0.0, std=1.0: update(
    self, 'normal_', _random(lambda shape: factories.generator().normal(mean, std, shape), 'normal'))
Tensor.uniform_ = lambda self, a=0.0, b=1.0: update(
    self, 'uniform_', _random(lambda shape: factories.generator().uniform(a, b, shape), 'uniform'))
Tensor.add_, Tensor.sub_, Tensor.mul_, Tensor.div_ = (Tensor.__iadd__, Tensor.__isub__, Tensor.__imul__,
                                                      Tensor.__itruediv__)
