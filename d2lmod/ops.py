"""Every differentiable op: its forward value, and right below it the rule that sends gradients back.

Each rule receives g = d(loss)/d(output) and returns d(loss)/d(input) for each input, in order (None for
an input that gets no gradient). Rules capture NumPy arrays, never Tensors, so an in-place update of a
tensor (x /= 2) cannot change a gradient recorded before it. Broadcasting is undone in one place:
Tensor.backward calls unbroadcast() on every gradient.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .tensor import Tensor, _State, parse_to

result = Tensor._result
CATEGORY = {'b': 0, 'i': 1, 'u': 1, 'f': 2}  # bool < integer < floating point
NEVER_CHANGED = [0]  # the version counter of every constant made from a Python number (see lift)


def lift(x, like: Tensor) -> Tensor:
    """A Python number or array used next to a tensor becomes a constant tensor. A number takes like's dtype when
    its kind fits (bool into anything, int into ints and floats, float into floats), as PyTorch's do."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float)):
        kind = like._data.dtype.kind
        fits = isinstance(x, bool) or kind == 'f' or (kind in 'iu' and not isinstance(x, float))
        constant = Tensor(np.asarray(x, like._data.dtype if fits else np.float32 if isinstance(x, float) else np.int64))
        constant._vc = NEVER_CHANGED  # nobody else holds it, so nothing can change it in place
        return constant
    if isinstance(x, (list, np.ndarray, np.generic)):
        return Tensor(x)
    raise TypeError(f"cannot combine a Tensor with a {type(x).__name__}; use a number, a NumPy array "
                    "or a d2lmod Tensor")


def promote_types(a, b) -> np.dtype:
    """The dtype both fit in: the higher category wins (bool < int < float), else the wider of the two."""
    ca, cb = CATEGORY[a.kind], CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b) if ca < 2 else (a if a.itemsize >= b.itemsize else b)


def result_type(a, b) -> np.dtype:
    """torch.result_type: a tensor with dimensions decides, unless a 0-dim one (or a number) is of a higher
    category."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        a, b = (lift(a, b), b) if isinstance(b, Tensor) else (a, lift(b, a))
    da, db = a._data.dtype, b._data.dtype
    if da == db:
        return da
    if (a._data.ndim == 0) != (b._data.ndim == 0):  # one has dimensions: a number or 0-dim tensor only
        dims, zero = (da, db) if b._data.ndim == 0 else (db, da)  # lifts it to a higher category
        return dims if CATEGORY[dims.kind] >= CATEGORY[zero.kind] else promote_types(dims, zero)
    return promote_types(da, db)


def _binary(name, fn, a, b, dtype=None):
    """fn(a._data, b._data) in the dtype PyTorch would give (dtype, or result_type(a, b)), turning NumPy's
    shape errors into one sentence that names the op."""
    ad, bd = a._data, b._data
    if dtype is None and ad.dtype != bd.dtype:
        dtype = result_type(a, b)
    try:
        out = fn(ad, bd)
    except (ValueError, TypeError, AttributeError):
        for t in (a, b):
            if t._data is None:
                raise ValueError(f"{name}: {t!r} is not initialized yet; a lazy layer sets its parameters' "
                                 "shapes on its first call, so run the model once on an input first") from None
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not broadcast (sizes must match or "
                             "be 1, aligned from the right); reshape one of them") from None
        raise
    return out if dtype is None or out.dtype == dtype else out.astype(dtype)


def _floats(a: Tensor) -> np.ndarray:
    """a's values as floating point: integer and bool tensors become float32 (exp, log, /, ... of them)."""
    return a._data if a._data.dtype.kind == 'f' else a._data.astype(np.float32)


# ---- arithmetic -------------------------------------------------------------------------------------
# A rule computes a gradient only for an input that needs one (x * 2 sends nothing back to the 2), and
# names in saved= exactly the inputs whose values it reads, as PyTorch's nodes save them.
def add(a, b):
    a, b = lift(a, b), lift(b, a)
    return result(_binary('add', np.add, a, b), (a, b), 'add', lambda g: (g, g))


def sub(a, b):
    if any(isinstance(x, bool) or (isinstance(x, Tensor) and x._data.dtype == np.bool_) for x in (a, b)):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")
    a, b = lift(a, b), lift(b, a)
    need_b = b.requires_grad
    return result(_binary('sub', np.subtract, a, b), (a, b), 'sub', lambda g: (g, -g if need_b else None))


def mul(a, b):
    a, b = lift(a, b), lift(b, a)
    ad, bd, need_a, need_b = a._data, b._data, a.requires_grad, b.requires_grad
    # d(ab) = b da + a db
    return result(_binary('mul', np.multiply, a, b), (a, b), 'mul',
                  lambda g: (g * bd if need_a else None, g * ad if need_b else None),
                  (b,) * need_a + (a,) * need_b)


def div(a, b):
    a, b = lift(a, b), lift(b, a)
    ad, bd, need_a, need_b = a._data, b._data, a.requires_grad, b.requires_grad
    dtype = ad.dtype if ad.dtype == bd.dtype else result_type(a, b)  # integers divide into float32, as in PyTorch
    # d(a/b) = da/b - a db/b^2
    return result(_binary('div', np.true_divide, a, b, dtype if dtype.kind == 'f' else np.dtype(np.float32)),
                  (a, b), 'div', lambda g: (g / bd if need_a else None, -g * ad / (bd * bd) if need_b else None),
                  (b,) + (a,) * need_b)


def pow(a, b):
    a, b = lift(a, b), lift(b, a)
    ad, bd, b_needs_grad = a._data, b._data, b.requires_grad
    out = _binary('pow', np.power, a, b)
    # d(a^b)/da = b a^(b-1);  d(a^b)/db = a^b log(a)
    return result(out, (a, b), 'pow', lambda g: (g * bd * ad ** (bd - 1),
                                                 g * out * np.log(ad) if b_needs_grad else None),
                  (a, b) + (None,) * b_needs_grad)


def neg(a):
    if a._data.dtype == np.bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported; use ~mask instead")
    return result(-a._data, (a,), 'neg', lambda g: (-g,))


def matmul(a, b):
    a, b = lift(a, b), lift(b, a)
    if a.ndim == 1 or b.ndim == 1:  # a vector is a one-row (or one-column) matrix
        left, right = a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b
        return matmul(left, right).reshape(matmul_shape(a.shape, b.shape))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: cannot multiply shapes {a.shape} @ {b.shape}: the left's last size "
                         f"({a.shape[-1]}) must equal the right's second-to-last ({b.shape[-2]})")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype} != {b.dtype}; "
                           f"convert one with .to(), e.g. X.float() or X.to(dm.{b.dtype})")
    ad, bd, need_a, need_b = a._data, b._data, a.requires_grad, b.requires_grad
    # d(a@b)/da = g @ b^T;  d(a@b)/db = a^T @ g  (each computed only if wanted: matmuls are the costly part)
    return result(_binary('matmul', np.matmul, a, b), (a, b), 'matmul',
                  lambda g: (g @ bd.swapaxes(-1, -2) if need_a else None,
                             ad.swapaxes(-1, -2) @ g if need_b else None),
                  (b,) * need_a + (a,) * need_b)


def matmul_shape(sa, sb):
    return sa[:-1] + sb[1:] if len(sa) > 1 else sb[:-2] + sb[-1:] if len(sb) > 1 else ()


def linear(x, weight, bias=None):
    """y = x @ W^T + b as one op (one graph node per layer call).  x: (..., in) -> (..., out)"""
    xd, wd = x._data, weight._data
    if wd is None:
        raise ValueError(f"linear: {weight!r} is not initialized yet; a lazy layer sets its parameters' shapes "
                         "on its first call, so run the model once on an input first")
    if xd.ndim == 0 or xd.shape[-1] != wd.shape[1]:
        raise ValueError(f"expected input whose last dimension is in_features={wd.shape[1]}, got shape "
                         f"{xd.shape}; feed it {wd.shape[1]} features "
                         "(a LazyLinear fixes in_features on its first call)")
    if xd.dtype != wd.dtype:
        raise TypeError(f"got a {xd.dtype} input but the weights are {wd.dtype}; convert the input with "
                        f".to(dm.{wd.dtype}) (NumPy arrays default to float64) or the model with .to()")
    out = xd @ wd.T
    if bias is not None:
        out += bias._data  # in place: out is a fresh array, and one allocation fewer

    need_x = x.requires_grad  # the first layer's input (the data) needs no gradient: skip that matmul

    def backward(g):
        # dy/dx = g W;  dy/dW = g^T x (summed over the batch);  dy/db = sum of g over the batch
        g2, x2 = (g, xd) if g.ndim == 2 else (g.reshape(-1, g.shape[-1]), xd.reshape(-1, xd.shape[-1]))  # batch dims as one
        # (np.add.reduce(g2, 0) is g2.sum(0) without .sum()'s Python wrapper: ~0.6 us per layer call)
        return g @ wd if need_x else None, g2.T @ x2, (np.add.reduce(g2, 0) if bias is not None else None)
    parents = (x, weight) if bias is None else (x, weight, bias)
    return result(out, parents, 'linear', backward, (x, weight) if need_x else (x,))


# ---- elementwise functions ----------------------------------------------------------------------------
def exp(a):
    out = np.exp(_floats(a))
    return result(out, (a,), 'exp', lambda g: (g * out,), (None,))  # d e^a = e^a da


def log(a):
    ad = _floats(a)
    return result(np.log(ad), (a,), 'log', lambda g: (g / ad,), (a,))  # d log a = da / a


def sqrt(a):
    out = np.sqrt(_floats(a))
    return result(out, (a,), 'sqrt', lambda g: (g / (2 * out),), (None,))  # d sqrt(a) = da / (2 sqrt(a))


def abs(a):
    ad = a._data
    if ad.dtype == np.bool_:
        raise NotImplementedError('"abs_cpu" not implemented for \'Bool\'; convert the mask first with .float()')
    return result(np.abs(ad), (a,), 'abs', lambda g: (g * np.sign(ad),), (a,))  # d|a| = sign(a) da (0 at 0)


def relu(a):
    if a._data.dtype == np.bool_:
        raise RuntimeError("Boolean inputs not supported for relu; convert the mask first with .float()")
    mask = a._data > 0  # where a is positive: relu keeps a there, and passes g back there (one mask for both)
    # max(a, 0), not a * mask: relu(-1.5) is 0, not -0, and relu(nan) is nan. (g * mask is quicker than
    # PyTorch's np.where(mask, g, 0), and differs only for an infinite g: inf * 0 is nan)
    return result(np.maximum(a._data, 0), (a,), 'relu', lambda g: (g * mask,), (None,))


def sigmoid(a):
    s = np.exp(-np.logaddexp(0, -_floats(a)))  # 1 / (1 + e^-a) = e^(-log(1 + e^-a)): no overflow for a << 0
    return result(s, (a,), 'sigmoid', lambda g: (g * s * (1 - s),), (None,))  # s' = s (1 - s)


def tanh(a):
    t = np.tanh(_floats(a))
    return result(t, (a,), 'tanh', lambda g: (g * (1 - t * t),), (None,))  # tanh' = 1 - tanh^2


def clamp(a, min=None, max=None):
    """Values below min become min, above max become max; the gradient passes where a lies in [min, max]."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    ad, inside = a._data, np.ones(a.shape, bool)
    if min is not None:
        inside &= ad >= min
    if max is not None:
        inside &= ad <= max
    out = np.clip(ad, min, max).astype(ad.dtype, copy=False)
    return result(out, (a,), 'clamp', lambda g: (np.where(inside, g, 0),), (a,))


def to(a, *args, **kwargs):
    """a.to(dm.float64) casts (the gradient is cast back); a.to('cpu') is a itself: the CPU is the only device."""
    _, dtype = parse_to(*args, **kwargs)
    before = a.dtype
    if dtype is None or dtype == before:
        return a
    return result(a._data.astype(dtype), (a,), 'to', lambda g: (g.astype(before),))


def clone(a):
    return result(a._data.copy(), (a,), 'clone', lambda g: (g,))


# ---- reductions -----------------------------------------------------------------------------------------
def _spread(g, shape, dim, keepdim):
    """Undo a reduction over dim: every reduced element gets the output's gradient (a fresh array)."""
    if dim is not None and not keepdim:
        g = np.expand_dims(g, dim)
    full = np.empty(shape, g.dtype)
    full[...] = g  # broadcast g over the reduced dimensions
    return full


def sum(a, dim=None, keepdim=False):
    shape = a.shape  # bool and integer tensors sum to int64, as in PyTorch
    dtype = np.int64 if a._data.dtype.kind in 'biu' else None
    # np.add.reduce(array, axis, dtype, out, keepdims) is what .sum() runs, minus its Python wrapper and
    # keyword parsing (about 0.6 us a call; a loop like `while X.abs().sum() > 1` pays it every round)
    out = np.add.reduce(a._data, dim, dtype, None, keepdim)
    return result(out, (a,), 'sum', lambda g: (_spread(g, shape, dim, keepdim),))


def mean(a, dim=None, keepdim=False):
    if a._data.dtype.kind != 'f':
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point "
                           f"or complex dtype. Got: {a.dtype}; convert first with .float()")
    shape, total = a.shape, a._data.sum(axis=dim, keepdims=keepdim)
    n = a._data.size // total.size if total.size else 1  # how many inputs share each output
    n = np.asarray(n, total.dtype)  # NumPy < 2 turns float32 scalar / Python int into float64; this keeps float32
    return result(total / n, (a,), 'mean', lambda g: (_spread(g / n, shape, dim, keepdim),))


def norm(a, p='fro', dim=None, keepdim=False):
    """The Euclidean (Frobenius) norm sqrt(sum a^2): its gradient is a / norm."""
    if p not in ('fro', 2):
        raise NotImplementedError(f"norm(p={p!r}): d2lmod has the Euclidean norm only (p='fro' or 2)")
    return sqrt(sum(a * a, dim, keepdim))


def max(a, dim=None, keepdim=False):
    """Without dim: the largest value (ties share the gradient). With dim: (values, indices), as PyTorch."""
    ad = a._data
    if dim is None:
        out = ad.max()
        mask = ad == out
        return result(out, (a,), 'max', lambda g: (g * mask / mask.sum(),), (a, None))
    idx = np.expand_dims(ad.argmax(axis=dim), dim)
    values = np.take_along_axis(ad, idx, dim)

    shape, dtype = ad.shape, ad.dtype

    def backward(g):
        full = np.zeros(shape, dtype)
        np.put_along_axis(full, idx, g if keepdim else np.expand_dims(g, dim), dim)
        return (full,)
    out = result(values if keepdim else values.squeeze(dim), (a,), 'max', backward)
    return MaxMin(out, Tensor(idx if keepdim else idx.squeeze(dim)))


MaxMin = namedtuple('max', ['values', 'indices'])  # what max(dim) and min(dim) give, as PyTorch's


def min(a, dim=None, keepdim=False):
    """The smallest value: -max(-a), so the gradient goes where max's would."""
    if dim is None:
        return neg(max(neg(a)))
    values, indices = max(neg(a), dim, keepdim)
    return MaxMin(neg(values), indices)


def log_softmax(a, dim=-1):
    """log softmax(a) = a - log sum exp(a), computed with the max subtracted so exp cannot overflow."""
    shifted = a._data - a._data.max(axis=dim, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    soft = np.exp(out)
    # d/da_i = g_i - softmax_i * sum_j g_j
    return result(out, (a,), 'log_softmax', lambda g: (g - soft * g.sum(axis=dim, keepdims=True),), (None,))


def cross_entropy(logits, labels):
    """-mean_i log softmax(logits_i)[labels_i] as one op: a classifier's loss.  logits (N, C), labels (N,) ints"""
    a, rows = logits._data, np.arange(len(labels))
    row_max = a[rows, a.argmax(axis=1)]  # each row's largest score (NumPy's max along a short row is slower)
    shifted = a - row_max[:, None]       # the same softmax, and exp cannot overflow
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    # log softmax(a)_y = shifted_y - log sum_j exp(shifted_j)
    loss = (np.log(total[:, 0]) - shifted[rows, labels]).mean()

    def backward(g):
        # d loss / d logits_ij = (softmax_ij - [j == labels_i]) / N
        grad = e / total
        grad[rows, labels] -= 1
        return (grad * (g / len(labels)),)
    return result(loss, (logits,), 'cross_entropy', backward)  # keeps its own softmax, as PyTorch's does


# ---- shapes and indexing ----------------------------------------------------------------------------------
def _view(out: Tensor, a: Tensor) -> Tensor:
    """out shares a's memory (a NumPy view): then it shares a's version counter too, as PyTorch's views do."""
    base = a._data if a._data.base is None else a._data.base
    if out._data.base is base:
        out._vc = a._version_now()[0]
        out._base = a if a._base is None else a._base  # the tensor that owns the memory (see inplace.update)
    return out


def reshape(a, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    before = a.shape
    try:
        out = a._data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot view shape {before} ({a._data.size} elements) as {shape}") from None
    return _view(result(out, (a,), 'reshape', lambda g: (g.reshape(before),)), a)


def transpose(a, dim0=-2, dim1=-1):
    return _view(result(a._data.swapaxes(dim0, dim1), (a,), 'transpose', lambda g: (g.swapaxes(dim0, dim1),)), a)


def T(a):
    return _view(result(a._data.T, (a,), 'transpose', lambda g: (g.T,)), a)


def unwrap(index):
    """An index as NumPy takes it: tensors inside it become their arrays."""
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index._data if isinstance(index, Tensor) else index


def getitem(a, index):
    index, shape, dtype = unwrap(index), a.shape, a.dtype

    def backward(g):
        full = np.zeros(shape, dtype)
        np.add.at(full, index, g)  # add, not assign: an element picked twice gets both gradients
        return (full,)
    out = a._data[index]
    if type(out) is not np.ndarray:  # x[0] of a vector: a 0-dim view (as PyTorch's), not a NumPy scalar copy
        out = a._data[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
    return _view(result(out, (a,), 'index', backward), a)


def cat(tensors, dim=0):
    """Join tensors along dim; each gets back its own slice of the gradient."""
    tensors = list(tensors)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError("cat() takes a non-empty list of Tensors")
    try:
        out = np.concatenate([t._data for t in tensors], axis=dim)
    except ValueError:
        raise ValueError(f"cat: shapes {[t.shape for t in tensors]} can only differ in dimension {dim}") from None
    ends = np.cumsum([t.shape[dim] for t in tensors])[:-1]
    return result(out, tuple(tensors), 'cat', lambda g: tuple(np.split(g, ends, axis=dim)))


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension dim."""
    tensors = list(tensors)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError("stack() takes a non-empty list of Tensors")
    if len({t.shape for t in tensors}) > 1:
        raise RuntimeError(f"stack expects each tensor to be equal size, but got {[t.shape for t in tensors]}")
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def unsqueeze(a, dim):
    return reshape(a, np.expand_dims(a._data, dim).shape)


def squeeze(a, dim=None):
    shape = a.shape
    kept = [n for i, n in enumerate(shape) if n != 1 or (dim is not None and i != dim % len(shape))]
    return reshape(a, tuple(kept))


def equal(a, b) -> bool:
    """True when a and b have the same shape and the same values."""
    return a.shape == b.shape and bool((a._data == b._data).all())


def allclose(a, b, rtol=1e-05, atol=1e-08) -> bool:
    return bool(np.allclose(a._data, b._data, rtol=rtol, atol=atol))  # |a - b| <= atol + rtol |b|


def compare(fn):
    """A comparison gives a boolean tensor and no gradient (numbers compared in the promoted dtype)."""
    def op(a, b):  # NumPy compares a number with any dtype exactly, so only tensors need lifting
        return Tensor(_binary(fn.__name__, fn, a, b, np.bool_) if isinstance(b, Tensor) else fn(a._data, b))
    return op


def _rev(fn):
    return lambda a, b: fn(b, a)  # 2 - x: every op lifts a number on either side


# ---- the Tensor methods are these ops ---------------------------------------------------------------------
Tensor.__add__, Tensor.__radd__ = add, _rev(add)
Tensor.__sub__, Tensor.__rsub__ = sub, _rev(sub)
Tensor.__mul__, Tensor.__rmul__ = mul, _rev(mul)
Tensor.__truediv__, Tensor.__rtruediv__ = div, _rev(div)
Tensor.__pow__, Tensor.__rpow__ = pow, _rev(pow)
Tensor.__matmul__, Tensor.__rmatmul__ = matmul, _rev(matmul)
Tensor.__neg__, Tensor.__getitem__ = neg, getitem
Tensor.__lt__, Tensor.__le__ = compare(np.less), compare(np.less_equal)
Tensor.__gt__, Tensor.__ge__ = compare(np.greater), compare(np.greater_equal)
Tensor.__eq__, Tensor.__ne__ = compare(np.equal), compare(np.not_equal)
Tensor.abs, Tensor.exp, Tensor.log, Tensor.sqrt = abs, exp, log, sqrt
Tensor.relu, Tensor.sigmoid, Tensor.tanh, Tensor.clamp = relu, sigmoid, tanh, clamp
Tensor.sum, Tensor.mean, Tensor.max, Tensor.norm = sum, mean, max, norm
Tensor.unsqueeze, Tensor.squeeze, Tensor.matmul = unsqueeze, squeeze, matmul
Tensor.add, Tensor.sub, Tensor.mul, Tensor.div, Tensor.pow = add, sub, mul, div, pow
Tensor.min, Tensor.t = min, T
Tensor.bool, Tensor.int = (lambda self: to(self, np.bool_)), (lambda self: to(self, np.int32))
Tensor.reshape = Tensor.view = reshape
Tensor.transpose, Tensor.T = transpose, property(T)
Tensor.log_softmax = log_softmax
Tensor.to, Tensor.clone = to, clone
Tensor.float = lambda self: to(self, np.float32)
Tensor.double = lambda self: to(self, np.float64)
Tensor.flatten = lambda self, start_dim=0: reshape(self, self.shape[:start_dim] + (-1,))
