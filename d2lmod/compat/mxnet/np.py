"""mxnet.np: NumPy-style functions that return d2lmod Tensors (float32 unless told otherwise, as MXNet)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy

from ... import factories, ops
from ...tensor import Tensor, as_array

float32, float64, int32, int64 = numpy.float32, numpy.float64, numpy.int32, numpy.int64
ndarray = Tensor


def array(object, dtype=None) -> Tensor:
    """A new array holding a copy of object; float32 unless dtype says otherwise."""
    values = as_array(object)
    return Tensor(numpy.array(values, dtype=dtype or (numpy.float32 if values.dtype.kind == 'f' else None)))


def zeros(shape, dtype=numpy.float32) -> Tensor:
    return Tensor(numpy.zeros(shape, dtype))


def ones(shape, dtype=numpy.float32) -> Tensor:
    return Tensor(numpy.ones(shape, dtype))


def arange(start, stop=None, step=1, dtype=numpy.float32) -> Tensor:
    return Tensor(numpy.arange(start, stop, step, dtype=dtype))


def _tensor(x, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    raise TypeError(f"np.{name} expects an array made by d2lmod.compat.mxnet.np (a d2lmod Tensor), got a "
                    f"{type(x).__name__}; make one with np.array(x)")


def dot(a, b) -> Tensor:
    """The matrix product of 1-d or 2-d arrays (a vector with a vector: their inner product)."""
    a, b = _tensor(a, 'dot'), _tensor(b, 'dot')
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError(f"np.dot here takes 1-d or 2-d arrays, got shapes {a.shape} and {b.shape}; "
                         "use np.matmul (or @) for batches of matrices")
    return ops.matmul(a, b)


def matmul(a, b) -> Tensor:
    return ops.matmul(_tensor(a, 'matmul'), b)


def abs(x) -> Tensor:  # noqa: A001  (MXNet's name)
    return ops.abs(_tensor(x, 'abs'))


def exp(x) -> Tensor:
    return ops.exp(_tensor(x, 'exp'))


def log(x) -> Tensor:
    return ops.log(_tensor(x, 'log'))


def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    return ops.sum(_tensor(x, 'sum'), axis, keepdims)


def mean(x, axis=None, keepdims=False) -> Tensor:
    return ops.mean(_tensor(x, 'mean'), axis, keepdims)


def _uniform(low=0.0, high=1.0, size=None, dtype=None) -> Tensor:
    """Numbers uniform in [low, high) from d2lmod's seeded generator (dm.manual_seed restarts it)."""
    values = factories.generator().uniform(low, high, size)
    return Tensor(numpy.asarray(values, dtype=dtype or numpy.float32))


def _normal(loc=0.0, scale=1.0, size=None, dtype=None) -> Tensor:
    values = factories.generator().normal(loc, scale, size)
    return Tensor(numpy.asarray(values, dtype=dtype or numpy.float32))


random = SimpleNamespace(uniform=_uniform, normal=_normal)  # np.random.uniform(size=(2, 20)), as in MXNet
