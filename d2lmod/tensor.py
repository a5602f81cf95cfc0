"""Tensor: a NumPy array that remembers how it was made, and backward() to differentiate it."""
from __future__ import annotations

import threading
from collections import defaultdict

import numpy as np

from .device import CPU, as_device, no_gpu

float32, float64, int64, bool_ = np.float32, np.float64, np.int64, np.bool_
float16, int32, int16, int8, uint8 = np.float16, np.int32, np.int16, np.int8, np.uint8


class _PerThread(threading.local):
    """What autograd reads while it records; each thread has its own (PyTorch's grad mode is per thread too)."""
    grad_enabled = True   # False inside `with no_grad():`
    module_call = None    # the innermost running Module call; new tensors point to it (see nn/module.py)


_State = _PerThread()
_clock = [0]      # how many recorded in-place updates (x *= 2) have happened, in any thread (see Tensor._inputs)


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


class set_grad_enabled(no_grad):
    """set_grad_enabled(False) switches recording off now (for this thread); `with set_grad_enabled(m):` for a block."""

    def __init__(self, mode: bool):
        self._before, self._mode = _State.grad_enabled, bool(mode)
        _State.grad_enabled = self._mode

    def __enter__(self):
        _State.grad_enabled = self._mode


class enable_grad(no_grad):
    """`with enable_grad():` records again inside a no_grad() block."""

    def __enter__(self):
        self._before, _State.grad_enabled = _State.grad_enabled, True


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


def infer_array(data, dtype=None) -> np.ndarray:
    """What dm.tensor(data) holds, typed as PyTorch types it: bools bool, integers int64, floats float32."""
    if dtype is not None or isinstance(data, (Tensor, np.ndarray, np.generic)):
        return as_array(data, dtype)
    try:
        array = np.asarray(data)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.dtype.kind not in 'biuf':
        raise TypeError(f"cannot make a tensor from {type(data).__name__} {data!r:.60}; "
                        "pass a number, a (nested) list of numbers or a NumPy array")
    return array.astype({'b': np.bool_, 'f': np.float32}.get(array.dtype.kind, np.int64), copy=False)


def parse_to(*args, **kwargs) -> tuple:
    """(device, dtype) from what .to() was given: a device or its name, a dtype, a tensor, or both."""
    device, dtype = kwargs.pop('device', None), kwargs.pop('dtype', None)
    kwargs.pop('non_blocking', None), kwargs.pop('copy', None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):  # x.to(other): other's device and dtype
            device, dtype = arg.device, arg.dtype
        elif arg is not None:        # a device (as_device raises for a GPU) or else a dtype
            device, dtype = (arg, dtype) if as_device(arg) is not None else (device, arg)
    return as_device(device), None if dtype is None else _dtype(dtype)


def _dtype(target) -> np.dtype:
    try:
        dtype = np.dtype(target)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in 'fiub':
        raise TypeError(f"to() expects a device ('cpu', dm.device('cpu')) or a dtype (dm.float32, dm.int64, ...), "
                        f"got {target!r}")
    return dtype


def resolve_to(target):
    """What .to(target) means for Module.to: None for a device (the CPU, the only one here), else a dtype."""
    return None if target is None or as_device(target) is not None else _dtype(target)


class Tensor:
    """An n-dimensional array with reverse-mode autodiff; float32 unless told otherwise."""

    # What every tensor starts with; an op (or backward) sets its own values on the tensors it touches.
    requires_grad = False
    grad = None          # a Tensor once backward() has reached this leaf
    _parents = ()        # the tensors this one was computed from (a tuple: order is stable)
    _backward = None     # g -> one gradient per parent (set by the op that made this tensor)
    _made_at = 0         # _clock[0] when this tensor was computed (see _inputs)
    _changed_at = 0      # _clock[0] when an in-place update last changed this tensor (0: never)
    _before = None       # after such an update: this tensor as it was before it, a tensor of its own
    _saved = ()          # ((version counter, version), ...) of the values its _backward reads; None once freed
    _vc = None           # version counter: [how many in-place writes its memory has had], shared with views
    _base = None         # for a view (x[0], x.reshape(...)): the tensor whose memory it shares
    _op = ''             # the op's name, for repr and the visualiser
    _call = None         # the module call that made it
    _grad_parts = None   # after backward, for a leaf used more than once: [(module call, gradient)]

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self._data = data if type(data) is np.ndarray and dtype is None else as_array(data, dtype)
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _result(cls, data, parents, op, backward, saved=()):
        """The output of an op: records its parents and backward rule when a parent needs a gradient.

        saved: the tensors whose values backward will read (None: the output itself); their versions now are
        kept, so that backward can refuse to use a value changed in place since (as PyTorch does)."""
        out = cls.__new__(cls)
        if type(data) is not np.ndarray:  # NumPy reductions return scalars; keep ._data an array
            data = np.asarray(data)
        out._data, out._op, out._call = data, op, _State.module_call
        if _State.grad_enabled:
            for p in parents:
                if p.requires_grad:  # at least one parent needs a gradient: remember how out was made
                    out.requires_grad, out._parents, out._backward = True, parents, backward
                    out._made_at = _clock[0]
                    if saved:
                        out._saved = _versions_now(saved, out)
                    break
        return out

    def _version_now(self) -> tuple:
        """(version counter, its value now): what a rule that reads self's values remembers."""
        return _versions_now((self,), self)[0]

    def _bump(self) -> None:
        """Count one more in-place write to self's memory."""
        self._vc = self._vc or [0]  # (a counter is a list of one number: never empty, never false)
        self._vc[0] += 1

    @property
    def _version(self) -> int:
        """How many times this tensor's memory was written in place (PyTorch's x._version)."""
        return 0 if self._vc is None else self._vc[0]

    def _inputs(self) -> tuple:
        """The parents as they were when self was computed: one changed in place since hands over its old self."""
        made_at, parents = self._made_at, self._parents
        if made_at == _clock[0]:
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
    # a tensor sharing the same memory but cut from the graph, so changes made through it are not recorded
    # (and, as in PyTorch, not counted by self's version counter either: that is what makes .data risky).
    @property
    def data(self) -> Tensor:
        return Tensor(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"x.data = ... expects a Tensor, got {type(value).__name__}; wrap it first: "
                            "x.data = dm.tensor(value)")
        self._data = value._data

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

    device = CPU  # where the numbers live: always the CPU here (see device.py)
    is_cuda = False

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device=None) -> Tensor:
        error = no_gpu(f"cuda({'' if device is None else device!r})")  # PyTorch's words for cuda() and cuda(1):
        if device is None:
            raise error
        raise RuntimeError('Cannot access accelerator device when none is available' + str(error).partition(
            ' enabled')[2])

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
        """The same values (shared memory, shared version counter), cut from the graph."""
        out = Tensor(self._data)
        out._vc = self._version_now()[0]
        return out

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
        extras = [] if self.dtype in (np.float32, np.int64, np.bool_) else [f'dtype={self.dtype}']
        if self._op and self._parents:  # recorded history only (not under no_grad, not from constants)
            extras.append(f'grad_fn=<{self._op}>')
        elif self.requires_grad:
            extras.append('requires_grad=True')
        return 'tensor(' + ', '.join([body] + extras) + ')'

    __array_ufunc__ = None  # ndarray + Tensor calls Tensor.__radd__ (keeping the graph), not NumPy's add
    __hash__ = object.__hash__  # hash by identity (as PyTorch does): == builds a tensor, so sets and dicts
    # of tensors only ever compare identities, never call == (distinct live objects never share a hash)

    # ---- reverse-mode autodiff --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool | None = None) -> None:
        """Fill .grad of every leaf that requires grad with d(self)/d(leaf), added to what is there.

        As in PyTorch, the values the rules kept are freed afterwards (unless retain_graph=True), so a second
        backward through the same ops fails; a value changed in place since an op kept it fails too."""
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
        order = self._topological_order()
        for node, inputs in reversed(order):  # from self back to the leaves
            g = grads.pop(node, None)  # complete now: every tensor computed from node has sent its share
            if g is None:
                continue
            saved = node._saved
            if saved is None:
                _check_saved(node)  # freed by an earlier backward: refuse
            for counter, version in saved:
                if counter[0] != version:
                    _check_saved(node)  # a kept value was changed in place since: refuse
            parent_grads = node._backward(g)
            if saved and not retain_graph:  # free what the rule kept (its arrays go with the closure)
                node._saved, node._backward = None, None
            for parent, pg in zip(inputs, parent_grads):
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
                    # p._inputs(), with its usual case (no in-place update anywhere since p) spared the call
                    p_inputs = p._parents if p._made_at == _clock[0] else p._inputs()
                    stack.append((p, p_inputs, iter(p_inputs)))
                    break
            else:  # all of node's inputs are in order
                stack.pop()
                order.append((node, inputs))
        return order


def _versions_now(saved: tuple, out: Tensor) -> tuple:
    """((version counter, version now), ...) of the tensors in saved (None stands for out)."""
    kept = []
    for t in saved:
        t = out if t is None else t
        counter = t._vc
        if counter is None:
            counter = t._vc = [0]
        kept.append((counter, counter[0]))
    return tuple(kept)


def _check_saved(node: Tensor) -> None:
    """Refuse to run a rule whose kept values are gone (freed by backward) or changed in place since."""
    if node._saved is None:
        raise RuntimeError("Trying to backward through the graph a second time (or directly access saved tensors "
                           "after they have already been freed). Saved intermediate values of the graph are freed "
                           "when you call .backward(); specify retain_graph=True if you need to backward through "
                           "the graph a second time")
    for counter, version in node._saved:
        if counter[0] != version:
            raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an "
                               f"inplace operation: a value that {node._op} (shape {node.shape}) kept for its "
                               f"gradient is at version {counter[0]}; expected version {version} instead. Use "
                               "x = x * 2 instead of x *= 2 (or .clone() first) where backward still needs x")


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g down to shape: a value broadcast to many places gets the sum of their gradients."""
    if g.shape == shape:
        return g
    if g.ndim > len(shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g
