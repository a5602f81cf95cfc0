"""Parameter and Module: how a model registers, finds, saves and reports the tensors it trains."""
from __future__ import annotations

import difflib
import inspect
import itertools
from collections import OrderedDict, namedtuple

import numpy as np

from .. import ops  # noqa: F401  (installs the Tensor methods that Parameter checks below)
from ..tensor import Tensor, _State, as_array, no_grad, resolve_to


class Parameter(Tensor):
    """A Tensor that a Module registers and optimizers train (requires_grad=True by default).

    A lazy layer's parameters start uninitialized: data is None and the unknown sizes of shape are None.
    """

    def __init__(self, data=None, requires_grad: bool = True, shape: tuple | None = None):
        if data is None:
            Tensor.__init__(self, np.zeros(0, np.float32))
            self._data, self._lazy_shape, self.requires_grad = None, tuple(shape), requires_grad
        else:
            Tensor.__init__(self, data._data if isinstance(data, Tensor) else data, requires_grad)

    @property
    def shape(self) -> tuple:
        return self._lazy_shape if self._data is None else self._data.shape

    @property
    def dtype(self):
        return np.dtype(np.float32) if self._data is None else self._data.dtype

    def __repr__(self):
        if self._data is None:
            return f'Parameter(uninitialized, shape={_shape_str(self.shape)})'
        return 'Parameter containing:\n' + Tensor.__repr__(self)


def _shape_str(shape) -> str:
    """(256, None) -> '(256, ?)': the unknown size of a lazy parameter shows as '?'."""
    sizes = ['?' if n is None else str(n) for n in shape]
    return '(' + ', '.join(sizes) + (',)' if len(sizes) == 1 else ')')


def _needs_values(method):
    """method, but an uninitialized lazy parameter says so instead of failing deep inside NumPy."""
    def checked(self, *args, **kwargs):
        if self._data is None:
            raise ValueError(f"this parameter is not initialized yet (shape {_shape_str(self.shape)}); "
                             "run the model once on an input so its lazy layers learn their input size")
        return method(self, *args, **kwargs)
    return checked


# As in PyTorch, using a lazy parameter's values before the first call is an error that says so: every public
# Tensor method and property that reads .data is checked on Parameter (shape, dtype and repr still work).
for _name, _member in list(vars(Tensor).items()):
    if _name in ('__init__', '__repr__', 'requires_grad_', 'size', 'is_leaf') or _name in vars(Parameter) \
            or (_name.startswith('_') and not _name.startswith('__')):
        continue
    if inspect.isfunction(_member):
        setattr(Parameter, _name, _needs_values(_member))
    elif isinstance(_member, property):
        setattr(Parameter, _name, property(_needs_values(_member.fget), _member.fset))


class ModuleCall:
    """One run of a module's forward. Tensors made during it point here; the visualiser groups by it."""
    __slots__ = ('module', 'parent', 'index')  # one is made per module call: keep it small and quick
    _counter = itertools.count()

    def __init__(self, module, parent):
        self.module, self.parent, self.index = module, parent, next(ModuleCall._counter)


class RemovableHandle:
    """Returned by register_forward_hook; .remove() takes the hook away again."""
    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self.hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __repr__(self):
        return f'RemovableHandle(id={self.id})'


class IncompatibleKeys(namedtuple('IncompatibleKeys', ['missing_keys', 'unexpected_keys'])):
    """What load_state_dict did not match; shown as PyTorch shows it when everything matched."""

    def __repr__(self):
        return '<All keys matched successfully>' if self == ([], []) else super().__repr__()


class Module:
    """The base of every layer, block and model: subclass it, create children in __init__, write forward."""

    def __init__(self):
        # object.__setattr__ skips our own __setattr__, which needs these dicts to exist already
        object.__setattr__(self, '_parameters', OrderedDict())
        object.__setattr__(self, '_buffers', OrderedDict())
        object.__setattr__(self, '_non_persistent', set())
        object.__setattr__(self, '_modules', OrderedDict())
        object.__setattr__(self, '_forward_hooks', OrderedDict())
        object.__setattr__(self, 'training', True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward(self, X) to say "
                                  "what the module computes")

    # ---- calling: forward, hooks, and errors that say where they happened ------------------------------
    def __call__(self, *args, **kwargs):
        parent = _State.module_call
        _State.module_call = ModuleCall(self, parent)
        try:
            out = self.forward(*args, **kwargs)
            if self._forward_hooks:
                for hook in list(self._forward_hooks.values()):
                    changed = hook(self, args, out)
                    out = out if changed is None else changed
            return out
        except Exception as error:
            if '_d2lmod_module' not in error.__dict__:
                error._d2lmod_module = self          # the innermost module the error came through
            if parent is None:
                _say_where(self, error)              # the outermost call names it by its dotted path
            raise
        finally:
            _State.module_call = parent

    def register_forward_hook(self, hook) -> RemovableHandle:
        """hook(module, inputs, output) runs after every forward; a non-None result replaces the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ---- registration by attribute assignment ----------------------------------------------------------
    # A registered parameter, buffer or child lives in two places: its registry (_parameters, _buffers or
    # _modules: the kind and the order that parameters(), state_dict() and to() walk) and the instance's
    # __dict__, so that reading self.weight in forward is an ordinary attribute lookup. (PyTorch keeps it in
    # the registry only and finds it through __getattr__, which costs about 2 us per read.) _register and
    # _forget are the only places that write them, so the two always agree.
    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get('_parameters')
        if params is None and isinstance(value, (Parameter, Module)):
            raise AttributeError(f"cannot assign {type(value).__name__} '{name}' before Module.__init__() "
                                 f"has run; call super().__init__() first in {type(self).__name__}.__init__")
        if isinstance(value, Parameter):
            self._register(params, name, value)
        elif isinstance(value, Module):
            self._register(self._modules, name, value)
        elif params is not None and name in self._buffers:
            self._register(self._buffers, name, None if value is None else _checked(value, f"buffer '{name}'", Tensor))
        elif params is not None and name in params:
            self._register(params, name, None if value is None else _checked(value, f"parameter '{name}'", Parameter))
        elif params is not None and name in self._modules:
            self._register(self._modules, name, None if value is None else _checked(value, f"submodule '{name}'", Module))
        else:  # a plain attribute; a Tensor here is NOT registered (not a parameter, not saved, not moved)
            object.__setattr__(self, name, value)

    def _register(self, registry: dict, name: str, value) -> None:
        """Put value under name in registry (where an old entry of it stood) and in __dict__; nowhere else."""
        self._forget(name, keep=registry)
        registry[name] = value
        object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict | None = None) -> None:
        """Drop name from __dict__ and every registry but keep, whose entry stays in place (the order stays, as in torch)."""
        for registry in (self.__dict__, self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        if keep is not self._buffers:
            self._non_persistent.discard(name)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: look in the registries (written directly), else explain
        registries = [self.__dict__.get(r) for r in ('_parameters', '_buffers', '_modules')]
        if registries[0] is None:
            raise AttributeError(f"{type(self).__name__} has no attribute '{name}': Module.__init__() has not "
                                 f"run; call super().__init__() first in {type(self).__name__}.__init__")
        for registry in registries:
            if name in registry:
                return registry[name]
        known = [n for n in itertools.chain(dir(type(self)), self.__dict__, *registries) if not n.startswith('_')]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ''
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'{hint}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register module as a child called name (what attribute assignment does, for computed names)."""
        if not isinstance(name, str) or not name or '.' in name:
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}', ...) expects a Module, got {type(module).__name__}")
        if name in self.__dict__ and name not in self._modules:
            raise KeyError(f"'{name}' is already an attribute of {type(self).__name__}")
        self._register(self._modules, name, module)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None:
            _checked(param, f"parameter '{name}'", Parameter)
        self._register(self._parameters, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor the module owns but does not train: moved by to(), saved in state_dict if persistent."""
        if tensor is not None:
            _checked(tensor, f"buffer '{name}'", Tensor)
        self._register(self._buffers, name, tensor)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    # ---- one traversal serves every listing ------------------------------------------------------------
    def named_modules(self, prefix: str = '', remove_duplicate: bool = True):
        """(dotted path, module) for self and every descendant, depth first; a shared module once.

        remove_duplicate=False lists a shared module under every path (as state_dict needs). A module
        registered inside its own subtree is never entered twice on one path, so nothing loops forever.
        """
        seen, stack = set(), [(prefix, self, frozenset())]
        while stack:
            path, module, ancestors = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield path, module
            ancestors = ancestors | {id(module)}
            children = [(f'{path}.{name}' if path else name, child, ancestors)
                        for name, child in module._modules.items()
                        if child is not None and id(child) not in ancestors]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        modules = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for path, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f'{path}.{name}' if path else name), t

    def named_parameters(self, prefix: str = '', recurse: bool = True, remove_duplicate: bool = True):
        """(dotted name, Parameter) pairs; a parameter shared by two layers is listed once."""
        return self._named_members('_parameters', prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = '', recurse: bool = True):
        return self._named_members('_buffers', prefix, recurse)

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ---- saving and loading ----------------------------------------------------------------------------
    def state_dict(self, keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer under every path (a shared one under each of its names)."""
        out = OrderedDict()
        for path, module in self.named_modules(remove_duplicate=False):
            entries = list(module._parameters.items()) + [
                (n, b) for n, b in module._buffers.items() if n not in module._non_persistent]
            for name, t in entries:
                if t is not None:
                    out[f'{path}.{name}' if path else name] = t if keep_vars or t._data is None else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into this model's tensors; every missing, unexpected and mis-shaped key is reported at once."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        values, problems, lazy = {}, [], []
        for key, target in own.items():
            if key in state_dict:
                if isinstance(state_dict[key], Tensor) and state_dict[key]._data is None:
                    lazy.append(f"{key}: the dict holds an uninitialized lazy parameter (run its model once first)")
                    continue
                value = as_array(state_dict[key])
                known = all(a in (b, None) for a, b in zip(target.shape, value.shape))
                if len(target.shape) != value.ndim or not known:
                    problems.append(f"{key}: the checkpoint has shape {value.shape}, the model {_shape_str(target.shape)}")
                values[key] = value
        fixes = ["build the model the same way as the saved one"]
        if problems:  # strict=False does not help here: a wrong shape is an error either way, as in PyTorch
            fixes.append("leave the mis-shaped keys out of the dict")
        if strict and (missing or unexpected):
            problems = [f"missing key {k}" for k in missing] + [f"unexpected key {k}" for k in unexpected] + problems
            fixes.append("pass strict=False to load only the matching keys")
        problems += lazy
        if problems:
            raise RuntimeError(f"load_state_dict into {type(self).__name__} failed, nothing was loaded: "
                               + '; '.join(problems) + ". To fix it, " + ', or '.join(fixes))
        with no_grad():
            for key, value in values.items():
                own[key]._data = np.array(value, dtype=own[key].dtype)  # a copy, cast to the model's dtype
        return IncompatibleKeys(missing, unexpected)

    # ---- moving, modes, gradients -----------------------------------------------------------------------
    def to(self, target=None, dtype=None, device=None) -> Module:
        """to(dm.float64) casts floating parameters and buffers in place; 'cpu' is the only device."""
        resolve_to(device)
        dtype = resolve_to(dtype if dtype is not None else target)
        if dtype is not None:
            for t in list(self.parameters()) + list(self.buffers()):
                if t._data is not None and t.dtype.kind == 'f':
                    t._data = t._data.astype(dtype)
                    if t.grad is not None:
                        t.grad = Tensor(t.grad._data.astype(dtype))
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, 'training', mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def apply(self, fn) -> Module:
        """fn(module) for every module once, each child before its parent, in PyTorch's order (custom init)."""
        seen = set()

        def visit(module):
            seen.add(id(module))
            for child in module.children():
                if id(child) not in seen:  # a shared module once; a module inside itself does not loop
                    visit(child)
            fn(module)
        visit(self)
        return self

    # ---- printing ----------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """What goes inside a layer's parentheses, e.g. 'in_features=20, out_features=256, bias=True'."""
        return ''

    def __repr__(self):
        return self._repr(frozenset())

    def _repr(self, ancestors) -> str:
        ancestors = ancestors | {id(self)}
        lines = [f'({name}): ' + ('None' if child is None else
                                  f'<{type(child).__name__}: contains itself>' if id(child) in ancestors else
                                  child._repr(ancestors)).replace('\n', '\n  ')
                 for name, child in self._modules.items()]
        if not lines:
            return f'{type(self).__name__}({self.extra_repr()})'
        extra = [self.extra_repr()] if self.extra_repr() else []
        return f'{type(self).__name__}(\n  ' + '\n  '.join(extra + lines) + '\n)'


def _checked(value, what: str, kind: type):
    if not isinstance(value, kind):
        raise TypeError(f"cannot assign a {type(value).__name__} as {what}: expected a {kind.__name__} or None")
    return value


def _say_where(root: Module, error: Exception) -> None:
    """Prefix the error's message with the dotted path of the module it came from, inside root."""
    culprit = error.__dict__.pop('_d2lmod_module')
    if type(error).__str__ is not BaseException.__str__ or len(error.args) != 1 or not isinstance(error.args[0], str):
        return  # a message we cannot safely extend (e.g. KeyError quotes it): leave it as it is
    path = next((p for p, m in root.named_modules() if m is culprit), None)
    layer = type(culprit).__name__ + (f'({culprit.extra_repr()})' if culprit.extra_repr() else '')
    where = f'{type(root).__name__} at {path} ({layer})' if path else layer
    error.args = (f'{where}: {error.args[0]}',)
