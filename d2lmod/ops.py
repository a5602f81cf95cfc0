"""Every differentiable op: its forward value, and right below it the rule that sends gradients back.

Each rule receives g = d(loss)/d(output) and returns d(loss)/d(input) for each input, in order (None for
an input that gets no gradient). Rules capture NumPy arrays, never Tensors, so an in-place update of a
tensor (x /= 2) cannot change a gradient recorded before it. Broadcasting is undone in one place:
Tensor.backward calls unbroadcast() on every gradient.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor, _State, resolve_to

result = Tensor._result


def lift(x, like: Tensor) -> Tensor:
    """A Python number or array used next to a tensor becomes a constant tensor (a number keeps like's dtype)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float)) and not (isinstance(x, float) and like.dtype.kind != 'f'):
        return Tensor(np.asarray(x, dtype=like.dtype))
    if isinstance(x, (bool, int, float, list, np.ndarray, np.generic)):
        return Tensor(x)
    raise TypeError(f"cannot combine a Tensor with a {type(x).__name__}; use a number, a NumPy array "
                    "or a d2lmod Tensor")


def _binary(name, fn, a, b):
    """fn(a._data, b._data), turning NumPy's shape errors into one sentence that names the op."""
    try:
        return fn(a._data, b._data)
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


# ---- arithmetic -------------------------------------------------------------------------------------
# A rule computes a gradient only for an input that needs one (x * 2 sends nothing back to the 2).
def add(a, b):
    a, b = lift(a, b), lift(b, a)
    return result(_binary('add', np.add, a, b), (a, b), 'add', lambda g: (g, g))


def sub(a, b):
    a, b = lift(a, b), lift(b, a)
    need_b = b.requires_grad
    return result(_binary('sub', np.subtract, a, b), (a, b), 'sub', lambda g: (g, -g if need_b else None))


def mul(a, b):
    a, b = lift(a, b), lift(b, a)
    ad, bd, need_a, need_b = a._data, b._data, a.requires_grad, b.requires_grad
    # d(ab) = b da + a db
    return result(_binary('mul', np.multiply, a, b), (a, b), 'mul',
                  lambda g: (g * bd if need_a else None, g * ad if need_b else None))


def div(a, b):
    a, b = lift(a, b), lift(b, a)
    ad, bd, need_a, need_b = a._data, b._data, a.requires_grad, b.requires_grad
    # d(a/b) = da/b - a db/b^2
    return result(_binary('div', np.divide, a, b), (a, b), 'div',
                  lambda g: (g / bd if need_a else None, -g * ad / (bd * bd) if need_b else None))


def pow(a, b):
    a, b = lift(a, b), lift(b, a)
    ad, bd, b_needs_grad = a._data, b._data, b.requires_grad
    out = _binary('pow', np.power, a, b)
    # d(a^b)/da = b a^(b-1);  d(a^b)/db = a^b log(a)
    return result(out, (a, b), 'pow', lambda g: (g * bd * ad ** (bd - 1),
                                                 g * out * np.log(ad) if b_needs_grad else None))


def neg(a):
    return result(-a._data, (a,), 'neg', lambda g: (-g,))


def matmul(a, b):
    a, b = lift(a, b), lift(b, a)
    if a.ndim == 1 or b.ndim == 1:  # a vector is a one-row (or one-column) matrix
        left, right = a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b
        return matmul(left, right).reshape(matmul_shape(a.shape, b.shape))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: cannot multiply shapes {a.shape} @ {b.shape}: the left's last size "
                         f"({a.shape[-1]}) must equal the right's second-to-last ({b.shape[-2]})")
    ad, bd, need_a, need_b = a._data, b._data, a.requires_grad, b.requires_grad
    # d(a@b)/da = g @ b^T;  d(a@b)/db = a^T @ g  (each computed only if wanted: matmuls are the costly part)
    return result(_binary('matmul', np.matmul, a, b), (a, b), 'matmul',
                  lambda g: (g @ bd.swapaxes(-1, -2) if need_a else None,
                             ad.swapaxes(-1, -2) @ g if need_b else None))


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
        return g @ wd if need_x else None, g2.T @ x2, (g2.sum(0) if bias is not None else None)
    parents = (x, weight) if bias is None else (x, weight, bias)
    return result(out, parents, 'linear', backward)


# ---- elementwise functions ----------------------------------------------------------------------------
def exp(a):
    out = np.exp(a._data)
    return result(out, (a,), 'exp', lambda g: (g * out,))  # d e^a = e^a da


def log(a):
    ad = a._data
    return result(np.log(ad), (a,), 'log', lambda g: (g / ad,))  # d log a = da / a


def abs(a):
    ad = a._data
    return result(np.abs(ad), (a,), 'abs', lambda g: (g * np.sign(ad),))  # d|a| = sign(a) da (0 at 0)


def relu(a):
    mask = a._data > 0  # where a is positive: relu keeps a there, and passes g back there (one mask for both)
    return result(a._data * mask, (a,), 'relu', lambda g: (g * mask,))


def sigmoid(a):
    s = np.exp(-np.logaddexp(0, -a._data))  # 1 / (1 + e^-a) = e^(-log(1 + e^-a)): no overflow for a << 0
    return result(s, (a,), 'sigmoid', lambda g: (g * s * (1 - s),))  # s' = s (1 - s)


def tanh(a):
    t = np.tanh(a._data)
    return result(t, (a,), 'tanh', lambda g: (g * (1 - t * t),))  # tanh' = 1 - tanh^2


def to(a, target):
    """a.to(dm.float64) casts (the gradient is cast back); a.to('cpu') is a itself: the CPU is the only device."""
    dtype, before = resolve_to(target), a.dtype
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
    shape = a.shape
    return result(a._data.sum(axis=dim, keepdims=keepdim), (a,), 'sum',
                  lambda g: (_spread(g, shape, dim, keepdim),))


def mean(a, dim=None, keepdim=False):
    shape, total = a.shape, a._data.sum(axis=dim, keepdims=keepdim)
    n = a._data.size // total.size if total.size else 1  # how many inputs share each output
    n = np.asarray(n, total.dtype)  # NumPy < 2 turns float32 scalar / Python int into float64; this keeps float32
    return result(total / n, (a,), 'mean', lambda g: (_spread(g / n, shape, dim, keepdim),))


def max(a, dim=None, keepdim=False):
    """Without dim: the largest value (ties share the gradient). With dim: (values, indices), as PyTorch."""
    ad = a._data
    if dim is None:
        out = ad.max()
        mask = ad == out
        return result(out, (a,), 'max', lambda g: (g * mask / mask.sum(),))
    idx = np.expand_dims(ad.argmax(axis=dim), dim)
    values = np.take_along_axis(ad, idx, dim)

    def backward(g):
        full = np.zeros_like(ad)
        np.put_along_axis(full, idx, g if keepdim else np.expand_dims(g, dim), dim)
        return (full,)
    out = result(values if keepdim else values.squeeze(dim), (a,), 'max', backward)
    return out, Tensor(idx if keepdim else idx.squeeze(dim))


def log_softmax(a, dim=-1):
    """log softmax(a) = a - log sum exp(a), computed with the max subtracted so exp cannot overflow."""
    shifted = a._data - a._data.max(axis=dim, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    soft = np.exp(out)
    # d/da_i = g_i - softmax_i * sum_j g_j
    return result(out, (a,), 'log_softmax', lambda g: (g - soft * g.sum(axis=dim, keepdims=True),))


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
    return result(loss, (logits,), 'cross_entropy', backward)


# ---- shapes and indexing ----------------------------------------------------------------------------------
def reshape(a, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    before = a.shape
    try:
        out = a._data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot view shape {before} ({a._data.size} elements) as {shape}") from None
    return result(out, (a,), 'reshape', lambda g: (g.reshape(before),))


def transpose(a, dim0=-2, dim1=-1):
    return result(a._data.swapaxes(dim0, dim1), (a,), 'transpose', lambda g: (g.swapaxes(dim0, dim1),))


def T(a):
    return result(a._data.T, (a,), 'transpose', lambda g: (g.T,))


def getitem(a, index):
    index = tuple(i._data if isinstance(i, Tensor) else i for i in index) if isinstance(index, tuple) \
        else index._data if isinstance(index, Tensor) else index
    ad = a._data

    def backward(g):
        full = np.zeros_like(ad)
        np.add.at(full, index, g)  # add, not assign: an element picked twice gets both gradients
        return (full,)
    return result(ad[index], (a,), 'index', backward)


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


def compare(fn):
    """A comparison gives a boolean tensor and no gradient."""
    return lambda a, b: result(fn(a._data, b._data if isinstance(b, Tensor) else b), (), 'compare', None)


# ---- in-place updates ----------------------------------------------------------------------------------
def inplace(fn, symbol):
    """x += y changes x itself, as in PyTorch: x takes the new value and history; its old value stays a parent."""
    def update(self, other):
        new = fn(self, other)
        if new.shape != self.shape:
            raise RuntimeError(f"in-place {new._op}: the result has shape {new.shape} but the tensor has shape "
                               f"{self.shape}; an in-place op cannot change a tensor's shape, use x = x {symbol} y")
        if not new.requires_grad:  # nothing recorded: just overwrite the values
            self._data = new._data.astype(self.dtype, copy=False)
            return self
        if self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf tensor that requires grad (a parameter) cannot be changed in place while "
                               "autograd records; wrap the update in `with dm.no_grad():` as optimizers do")
        old = Tensor.__new__(Tensor)
        old.__dict__.update(self.__dict__)  # the value before the update, now a node of its own
        new._parents = tuple(old if p is self else p for p in new._parents)
        new._data = new._data.astype(self.dtype, copy=False)
        self.__dict__.update(new.__dict__)
        _State.inplace_clock += 1
        self._changed_at, self._before = _State.inplace_clock, old  # ops that used the old value still find it
        return self
    return update


def _rev(fn):
    return lambda a, b: fn(lift(b, a), a)


# ---- the Tensor methods are these ops ---------------------------------------------------------------------
Tensor.__add__, Tensor.__radd__ = add, _rev(add)
Tensor.__sub__, Tensor.__rsub__ = sub, _rev(sub)
Tensor.__mul__, Tensor.__rmul__ = mul, _rev(mul)
Tensor.__truediv__, Tensor.__rtruediv__ = div, _rev(div)
Tensor.__pow__, Tensor.__rpow__ = pow, _rev(pow)
Tensor.__matmul__, Tensor.__rmatmul__ = matmul, _rev(matmul)
Tensor.__neg__, Tensor.__getitem__ = neg, getitem
Tensor.__iadd__, Tensor.__isub__ = inplace(add, '+'), inplace(sub, '-')
Tensor.__imul__, Tensor.__itruediv__ = inplace(mul, '*'), inplace(div, '/')
Tensor.__lt__, Tensor.__le__ = compare(np.less), compare(np.less_equal)
Tensor.__gt__, Tensor.__ge__ = compare(np.greater), compare(np.greater_equal)
Tensor.__eq__, Tensor.__ne__ = compare(np.equal), compare(np.not_equal)
Tensor.abs, Tensor.exp, Tensor.log = abs, exp, log
Tensor.relu, Tensor.sigmoid, Tensor.tanh = relu, sigmoid, tanh
Tensor.sum, Tensor.mean, Tensor.max = sum, mean, max
Tensor.reshape = Tensor.view = reshape
Tensor.transpose, Tensor.T = transpose, property(T)
Tensor.log_softmax = log_softmax
Tensor.to, Tensor.clone = to, clone
Tensor.float = lambda self: to(self, np.float32)
Tensor.double = lambda self: to(self, np.float64)
Tensor.flatten = lambda self, start_dim=0: reshape(self, self.shape[:start_dim] + (-1,))
