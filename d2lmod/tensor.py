"""Tensor: a NumPy array that remembers how it was made, and backward() to differentiate it."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

float32, float64, int64, bool_ = np.float32, np.float64, np.int64, np.bool_


class _State:
    """What autograd reads while it records (the documented globals of d2lmod)."""
    grad_enabled = True   # False inside `with no_grad():`
    module_call = None    # the innermost running Module call; new tensors point to it (see nn/module.py)
    inplace_clock = 0     # how many recorded in-place updates (x *= 2) have happened so far (see Tensor._inputs)


class no_grad:
    """`with no_grad():` computes values without recording how (used for optimizer steps and evaluation)."""

    def __enter__(self):
        self._before, _State.grad_enabled = _State.grad_enabled, False

    def __exit__(self, *exc):
        _State.grad_enabled = self._before

    def __call__(self, fn):  # also usable as a decorator
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled() -> bool:
    return _State.grad_enabled


def as_array(data, dtype=None) -> np.ndarray:
    """NumPy arrays keep their dtype; Python numbers and lists become float32 (d2lmod's default)."""
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    try:
        return np.asarray(data, dtype=np.float32 if dtype is None else dtype)
    except (TypeError, ValueError):
        raise TypeError(f"cannot make a tensor from {type(data).__name__} {data!r:.60}; "
                        "pass a number, a (nested) list of numbers or a NumPy array") from None


def resolve_to(target):
    """What .to(target) means: None for the CPU (the only device here), else a dtype."""
    if target == 'cpu' or target is None:
        return None
    try:
        dtype = np.dtype(target)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in 'fiub':
        raise RuntimeError(f"d2lmod runs on the CPU only, so {target!r} is not a device or dtype it can move to; "
                           "use .to('cpu'), a dtype such as dm.float64, or drop the .to() call")
    return dtype


class Tensor:
    """An n-dimensional array with reverse-mode autodiff; float32 unless told otherwise."""

    # What every tensor starts with; an op (or backward) sets its own values on the tensors it touches.
    requires_grad = False
    grad = None          # a Tensor once backward() has reached this leaf
    _parents = ()        # the tensors this one was computed from (a tuple: order is stable)
    _backward = None     # g -> one gradient per parent (set by the op that made this tensor)
    _made_at = 0         # the in-place clock when this tensor was computed (see _inputs)
    _changed_at = 0      # the in-place clock when an in-place update last changed this tensor (0: never)
    _before = None       # after such an update: this tensor as it was before it, a tensor of its own
    _op = ''             # the op's name, for repr and the visualiser
    _call = None         # the module call that made it
    _grad_parts = None   # after backward, for a leaf used more than once: [(module call, gradient)]

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self._data = data if type(data) is np.ndarray and dtype is None else as_array(data, dtype)
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _result(cls, data, parents, op, backward):
        """The output of an op: records its parents and backward rule when a parent needs a gradient."""
        out = cls.__new__(cls)
        if type(data) is not np.ndarray:  # NumPy reductions return scalars; keep .data an array
            data = np.asarray(data)
        out._data, out._op, out._call = data, op, _State.module_call
        if _State.grad_enabled:
            for p in parents:
                if p.requires_grad:  # at least one parent needs a gradient: remember how out was made
                    out.requires_grad, out._parents, out._backward = True, parents, backward
                    out._made_at = _State.inplace_clock
                    break
        return out

    def _inputs(self) -> tuple:
        """The parents as they were when self was computed: one changed in place since hands over its old self."""
        made_at, parents = self._made_at, self._parents
        if made_at == _State.inplace_clock:
            return parents  # the usual case: no in-place update anywhere since
        for p in parents:
            if p._changed_at > made_at:
                break
        else:
            return parents  # none of self's parents was changed since
        inputs = []
        for p in parents:
            while p._changed_at > made_at:  # y = x * 2; x *= 3: y's gradient goes to x as it was before the *3
                p = p._before
            inputs.append(p)
        return tuple(inputs)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.dtype.kind != 'f':
            raise RuntimeError(f"only floating-point tensors can require gradients, this one is {self.dtype}; "
                               "convert it first with .float()")
        self.requires_grad = flag
        return self

    # ---- what it is -------------------------------------------------------------------------------
    # The values live in self._data, a NumPy array that ops read directly. .data is PyTorch's view of them:
    # a tensor sharing the same memory but cut from the graph, so changes made through it are not recorded.
    @property
    def data(self) -> Tensor:
        return Tensor(self._data)

    @data.setter
    def data(self, value) -> None:
        self._data = value._data if isinstance(value, Tensor) else as_array(value)

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    device = 'cpu'

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self):
        return len(self._data)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"item() needs a tensor with one element, this one has shape {self.shape}; "
                               "reduce it first (e.g. .sum() or .mean()) or index one element")
        return self._data.reshape(-1)[0].item()

    def __float__(self):  # float(loss), as in PyTorch: a one-element tensor's value
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                               "reduce it to one element first, e.g. (x > 0).all() or x.sum() > 1")
        return bool(self._data)

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("numpy() on a tensor that requires grad would leave autograd behind; "
                               "call .detach().numpy() to say you mean it")
        return self._data

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def detach(self) -> Tensor:
        """The same values (shared memory), cut from the graph."""
        return Tensor(self._data)

    def tolist(self):
        return self._data.tolist()

    # ---- results that carry no gradient ----------------------------------------------------------------
    def long(self) -> Tensor:
        return Tensor(self._data.astype(np.int64))

    def argmax(self, dim=None, keepdim=False) -> Tensor:
        return Tensor(np.argmax(self._data, axis=dim, keepdims=keepdim))

    def any(self) -> Tensor:
        return Tensor(self._data.any())

    def all(self) -> Tensor:
        return Tensor(self._data.all())

    def __repr__(self):
        body = np.array2string(self._data, precision=4, separator=', ', prefix='tensor(')
        extras = [f'dtype={self.dtype}'] if self.dtype != np.float32 else []
        if self._op and self._parents:  # recorded history only (not under no_grad, not from constants)
            extras.append(f'grad_fn=<{self._op}>')
        elif self.requires_grad:
            extras.append('requires_grad=True')
        return 'tensor(' + ', '.join([body] + extras) + ')'

    __array_ufunc__ = None  # ndarray + Tensor calls Tensor.__radd__ (keeping the graph), not NumPy's add
    __hash__ = object.__hash__  # hash by identity (as PyTorch does): == builds a tensor, so sets and dicts
    # of tensors only ever compare identities, never call == (distinct live objects never share a hash)

    # ---- reverse-mode autodiff --------------------------------------------------------------------
    def backward(self, gradient=None) -> None:
        """Fill .grad of every leaf that requires grad with d(self)/d(leaf), added to what is there."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad, so there is nothing to "
                               "differentiate; compute it from parameters (or tensors with requires_grad=True) "
                               "outside of no_grad()")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward() without an argument needs a one-element output, this one has "
                                   f"shape {self.shape}; reduce it first (e.g. y.sum().backward()) or pass "
                                   "a gradient of that shape: y.backward(g)")
            gradient = np.ones(self._data.shape, self._data.dtype)
        else:
            gradient = as_array(gradient, self.dtype)  # a copy, cast to our dtype
        if gradient.shape != self.shape:
            raise RuntimeError(f"backward(gradient): the gradient has shape {gradient.shape} but the tensor "
                               f"has shape {self.shape}; they must match")
        grads = {self: gradient}       # d(self)/d(t) for the tensors reached so far (keyed by identity)
        uses = defaultdict(list)       # leaf -> [(module call, gradient)], one entry per use of the leaf
        for node, inputs in reversed(self._topological_order()):  # from self back to the leaves
            g = grads.pop(node, None)  # complete now: every tensor computed from node has sent its share
            if g is None:
                continue
            for parent, pg in zip(inputs, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent._data.shape:
                    pg = unbroadcast(pg, parent._data.shape)
                # chain rule: a tensor used twice gets the sum of both uses' gradients
                grads[parent] = grads[parent] + pg if parent in grads else pg
                if not parent._parents:
                    uses[parent].append((node._call, pg))
        # What is left in grads belongs to leaves: they keep it in .grad (intermediate tensors do not, as in PyTorch).
        kept = set()  # ids of the arrays leaves keep: a leaf handed one of them, or a view, keeps a copy
        for leaf, g in grads.items():
            if g.base is not None or id(g) in kept or g.dtype != leaf._data.dtype:
                g = g.astype(leaf._data.dtype)
            kept.add(id(g))
            leaf.grad = Tensor(g) if leaf.grad is None else Tensor(leaf.grad._data + g)
            parts = uses.get(leaf, ())
            leaf._grad_parts = parts if len(parts) > 1 else None  # a shared parameter's split, for the visualiser

    def _topological_order(self) -> list:
        """(tensor, its inputs) for self and every computed (non-leaf) tensor it depends on that needs a
        gradient, each after its inputs. A depth-first search without recursion, so any depth fits."""
        if not self._parents:
            return []  # a leaf: backward() leaves its gradient in grads, for the leaves' loop
        order, seen = [], {self}
        inputs = self._inputs()
        stack = [(self, inputs, iter(inputs))]
        while stack:
            node, inputs, todo = stack[-1]
            for p in todo:
                if p._parents and p.requires_grad and p not in seen:  # visit p's inputs first, then come back
                    seen.add(p)
                    p_inputs = p._inputs()
                    stack.append((p, p_inputs, iter(p_inputs)))
                    break
            else:  # all of node's inputs are in order
                stack.pop()
                order.append((node, inputs))
        return order


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g down to shape: a value broadcast to many places gets the sum of their gradients."""
    if g.shape == shape:
        return g
    if g.ndim > len(shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g
