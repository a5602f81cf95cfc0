"""Module: how a model registers, finds, saves, loads and reports the tensors it trains."""
from __future__ import annotations

import difflib
import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from ..tensor import Tensor, _State, no_grad, resolve_to
from .hooks import RemovableHandle, add_hook, run_always_called, run_hooks, run_pre_hooks
from .printing import module_repr
from .parameter import Parameter, UninitializedBuffer, UninitializedParameter, is_lazy  # noqa: F401


class ModuleCall:
    """One run of a module's forward. Tensors made during it point here; the visualiser groups by it."""
    __slots__ = ('module', 'parent', 'index')  # one is made per module call: keep it small and quick
    _counter = itertools.count()

    def __init__(self, module, parent):
        self.module, self.parent, self.index = module, parent, next(ModuleCall._counter)


class _IncompatibleKeys(namedtuple('IncompatibleKeys', ['missing_keys', 'unexpected_keys'])):
    """What load_state_dict did not match; shown as PyTorch shows it."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return '<All keys matched successfully>'
        return f'_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})'

    __str__ = __repr__


class Module:
    """The base of every layer, block and model: subclass it, create children in __init__, write forward."""
    cls_to_become = None  # a lazy layer names here the class it turns into after its first call (see _infer_parameters)

    def __init__(self):
        # object.__setattr__ skips our own __setattr__, which needs these dicts to exist already
        for registry in ('_parameters', '_buffers', '_modules', '_forward_pre_hooks', '_forward_hooks'):
            object.__setattr__(self, registry, OrderedDict())
        object.__setattr__(self, '_non_persistent', set())
        object.__setattr__(self, 'training', True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function; "
                                  "define forward(self, X) to say what the module computes")

    # ---- calling: lazy sizes, hooks, forward, and errors that say where they happened -----------------
    def __call__(self, *args, **kwargs):
        parent = _State.module_call
        _State.module_call = ModuleCall(self, parent)
        out, called = None, ()
        try:
            if self.cls_to_become is not None:
                self._infer_parameters(args, kwargs)
            if self._forward_pre_hooks:
                args, kwargs = run_pre_hooks(self, self._forward_pre_hooks, args, kwargs)
            out = self.forward(*args, **kwargs)
            if self.cls_to_become is not None:
                self._infer_parameters(args, kwargs, after=True)
            if not self._forward_hooks:
                return out
            called = set()
            return run_hooks(self, self._forward_hooks, args, kwargs, out, called)
        except Exception as error:
            if self._forward_hooks:  # hooks registered with always_call=True run even now
                run_always_called(self, self._forward_hooks, args, kwargs, out, called)
            if '_d2lmod_module' not in error.__dict__:
                error._d2lmod_module = self          # the innermost module the error came through
            if parent is None:
                _say_where(self, error)              # the outermost call names it by its dotted path
            raise
        finally:
            _State.module_call = parent

    def _infer_parameters(self, args, kwargs, after: bool = False) -> None:
        """The lazy layers' class swap, for every lazy layer, here and nowhere else.

        Before the first forward a lazy layer's initialize_parameters(*inputs) (if it has one) reads the input
        size and materializes its UninitializedParameters; a layer may also do that inside its forward. Once
        nothing is uninitialized, the object's class becomes cls_to_become: a LazyLinear IS then a Linear, so
        `type(m) == nn.Linear` in an initialiser finds it, exactly as in PyTorch. The object and its
        parameters stay the same objects, so optimizers and references keep working.
        """
        if not after and self.has_uninitialized_params() and hasattr(self, 'initialize_parameters'):
            with no_grad():
                self.initialize_parameters(*args, **kwargs)
        if not self.has_uninitialized_params():
            for registry in (self._parameters, self._buffers):  # a layer that assigned values directly
                for t in registry.values():
                    if is_lazy(t):
                        t.__class__ = t.cls_to_become
            object.__setattr__(self, '__class__', self.cls_to_become)

    def has_uninitialized_params(self) -> bool:
        """True while a parameter or buffer of this module (not its children) still waits for its size."""
        return any(is_lazy(t) and t._data is None
                   for t in itertools.chain(self._parameters.values(), self._buffers.values()))

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, args) runs before every forward; a non-None result replaces the inputs."""
        return add_hook(self._forward_pre_hooks, (hook, with_kwargs, False), prepend)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """hook(module, args, output) runs after every forward; a non-None result replaces the output."""
        return add_hook(self._forward_hooks, (hook, with_kwargs, always_call), prepend)

    # ---- registration ------------------------------------------------------------------------------------
    # A registered parameter, buffer or child lives in two places: its registry (_parameters, _buffers or
    # _modules: the kind and the order that parameters(), state_dict() and to() walk) and the instance's
    # __dict__, so that reading self.weight in forward is an ordinary attribute lookup. (PyTorch keeps it in
    # the registry only and finds it through __getattr__, which costs about 2 us per read.) _register and
    # _forget are the only places that write them, so the two always agree. The routing follows PyTorch's.
    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get('_parameters')
        if params is None and isinstance(value, (Parameter, Module)):
            raise AttributeError(f"cannot assign {type(value).__name__} '{name}' before Module.__init__() call; "
                                 f"call super().__init__() first in {type(self).__name__}.__init__")
        if isinstance(value, Parameter):
            self._forget(name, keep=params)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            self.register_parameter(name, _checked(value, f"parameter '{name}'", Parameter))
        elif isinstance(value, Module) or params is not None and name in self._modules:
            self._register(self._modules, name, _checked(value, f"submodule '{name}'", Module))
        elif getattr(value, '_buffer_persistent', None) is not None:  # self.x = nn.Buffer(t)
            self._forget(name, keep=self._buffers)
            self.register_buffer(name, value, value._buffer_persistent)
        elif params is not None and name in self._buffers:
            self._register(self._buffers, name, _checked(value, f"buffer '{name}'", Tensor))
        else:  # a plain attribute; a Tensor here is NOT registered (not a parameter, not saved, not moved)
            object.__setattr__(self, name, value)

    def _register(self, registry: dict, name: str, value) -> None:
        """Put value under name in registry (where an old entry of it stood) and in __dict__; nowhere else."""
        self._forget(name, keep=registry)
        registry[name] = value
        if not hasattr(type(self), name):  # a child named like a method (PyTorch allows it) must not hide it
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict | None = None) -> None:
        """Drop name from __dict__ and every registry but keep, whose entry stays in place (its order too)."""
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

    def __dir__(self):
        """As PyTorch: the registered names too, but not the digit names of a Sequential's children."""
        keys = [*dir(type(self)), *self.__dict__, *self._parameters, *self._buffers, *self._modules]
        return sorted(key for key in set(keys) if not key[:1].isdigit())

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def _check_name(self, kind: str, name, registry: dict | None) -> None:
        """PyTorch's rules for a new name, checked before anything is registered."""
        if registry is None:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call; "
                                 f"call super().__init__() first in {type(self).__name__}.__init__")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if '.' in name:  # state_dict keys are dotted paths: a dotted name could not be found again
            raise KeyError(f"{kind} name can't contain \".\", got: {name}; use an underscore instead, e.g. "
                           f"{name.replace('.', '_')}")
        if name == '':
            raise KeyError(f"{kind} name can't be empty string \"\"; give it a name such as layer0")
        if name not in registry and (name in self.__dict__ or hasattr(type(self), name) or any(
                name in r for r in (self._parameters, self._buffers, self._modules))):
            raise KeyError(f"attribute '{name}' already exists in {type(self).__name__}; registering a {kind} "
                           "under that name would hide it, so choose another name")

    def add_module(self, name: str, module: Module | None) -> None:
        """Register module as a child called name (what attribute assignment does, for computed names)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass; add_module('{name}', ...) "
                            "expects a Module (e.g. nn.ReLU() rather than F.relu) or None")
        self._check_name('module', name, self.__dict__.get('_modules'))
        self._register(self._modules, name, module)

    register_module = add_module

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register param under name: trained by optimizers, saved in state_dict, moved by to()."""
        self._check_name('parameter', name, self.__dict__.get('_parameters'))
        if param is not None:
            _checked(param, f"parameter '{name}'", Parameter)
            if param._parents:
                raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}': it was computed from other "
                                 "tensors; make it a leaf with nn.Parameter(t.detach())")
        self._register(self._parameters, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor the module owns but does not train: moved by to(), saved in state_dict if persistent."""
        self._check_name('buffer', name, self.__dict__.get('_buffers'))
        self._register(self._buffers, name, _checked(tensor, f"buffer '{name}'", Tensor))
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def get_submodule(self, target: str) -> Module:
        """The module at a dotted path, e.g. net.get_submodule('0.net.2'); '' is the module itself."""
        module = self
        for name in target.split('.') if target else []:
            if not hasattr(module, name):
                raise AttributeError(f"{type(module).__name__} has no attribute `{name}` (looking for '{target}'; "
                                     "print the model to see its dotted names)")
            module = getattr(module, name)
            if not isinstance(module, Module):
                raise AttributeError(f"`{name}` is not an nn.Module (looking for '{target}')")
        return module

    def _get_member(self, target: str, registry: str, what: str):
        path, _, name = target.rpartition('.')
        module = self.get_submodule(path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}` (looking for '{target}')")
        if name not in getattr(module, registry):
            raise AttributeError(f"`{name}` is not {what} (looking for '{target}')")
        return getattr(module, registry)[name]

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, '_parameters', 'an nn.Parameter')

    def get_buffer(self, target: str) -> Tensor:
        return self._get_member(target, '_buffers', 'a buffer')

    # ---- one traversal serves every listing ------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = '', remove_duplicate: bool = True):
        """(dotted path, module) for self and every descendant, depth first as PyTorch; a shared module once.

        remove_duplicate=False lists a shared module under every path (as state_dict needs). An explicit
        stack instead of recursion, so any depth fits; a module inside its own subtree is not entered again.
        """
        memo = set() if memo is None else memo
        on_path, stack = set(), [(prefix, self)]
        while stack:
            path, module = stack.pop()
            if path is None:                  # the marker pushed below: we have left module's subtree
                on_path.discard(id(module))
                continue
            if remove_duplicate:
                if module in memo:
                    continue
                memo.add(module)
            yield path, module
            on_path.add(id(module))
            stack.append((None, module))
            stack.extend(reversed([(f'{path}.{name}' if path else name, child)
                                   for name, child in module._modules.items()
                                   if child is not None and id(child) not in on_path]))

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
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for path, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(t))
                yield (f'{path}.{name}' if path else name), t

    def named_parameters(self, prefix: str = '', recurse: bool = True, remove_duplicate: bool = True):
        """(dotted name, Parameter) pairs; a parameter shared by two layers is listed once."""
        return self._named_members('_parameters', prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = '', recurse: bool = True, remove_duplicate: bool = True):
        return self._named_members('_buffers', prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ---- saving and loading ----------------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix: str = '', keep_vars: bool = False):
        """Every parameter and persistent buffer under every path (a shared one under each of its names)."""
        destination, prefix, keep_vars = (list(args) + [destination, prefix, keep_vars][len(args):])[:3]
        out = OrderedDict() if destination is None else destination
        for path, module in self.named_modules(remove_duplicate=False):
            entries = list(module._parameters.items()) + [
                (n, b) for n, b in module._buffers.items() if n not in module._non_persistent]
            for name, t in entries:  # as PyTorch: prefix is put in front as it is ('model.' ends with its dot)
                if t is not None:
                    out[prefix + (f'{path}.{name}' if path else name)] = t if keep_vars or is_lazy(t) else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> _IncompatibleKeys:
        """Copy the values into this model's own tensors, in place; check everything first, load all or nothing."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}."
                            + (" To load a file, read it first: net.load_state_dict(dm.load(path))"
                               if isinstance(state_dict, str) else ""))
        if assign:
            raise NotImplementedError("load_state_dict(assign=True) is not offered by d2lmod: it always copies into "
                                      "the model's own tensors; drop assign=True")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, copies, fixes = [], [], []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                problems.append(f'While copying the parameter named "{key}", expected torch.Tensor or Tensor-like '
                                f"object from checkpoint but received {type(value)}")
                fixes.append("wrap NumPy arrays and lists in tensors first: dm.tensor(value)")
            elif is_lazy(value) and value._data is None:
                if not is_lazy(target):  # PyTorch raises right away here too, naming the shape
                    raise RuntimeError(f"Can't access the shape of an uninitialized parameter or buffer: "
                                       f"'{key}' in the state_dict belongs to a lazy layer that never ran; "
                                       "run that model once on an input before saving its state_dict")
            elif value._data.dtype.kind not in 'biuf':
                problems.append(f"{key}: the checkpoint holds {value._data.dtype} values, which do not convert to "
                                f"the model's {target.dtype}")
                fixes.append("save numbers, not text or objects")
            elif not (is_lazy(target) and target._data is None) and value.shape != target.shape:
                problems.append(f"size mismatch for {key}: copying a param with shape {value.shape} from "
                                f"checkpoint, the shape in current model is {target.shape}.")
                fixes.append("build the model with the sizes of the saved one (a shape never loads, even with "
                             "strict=False)")
            else:
                copies.append((target, value))
        if strict and unexpected:
            problems.insert(0, 'Unexpected key(s) in state_dict: ' + ', '.join(f'"{k}"' for k in unexpected) + '. ')
        if strict and missing:
            problems.insert(0, 'Missing key(s) in state_dict: ' + ', '.join(f'"{k}"' for k in missing) + '. ')
        if strict and (missing or unexpected):
            fixes.append("build the model with the saved one's names, or pass strict=False to load only the "
                         "matching keys")
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__} (nothing was loaded):\n\t"
                               + '\n\t'.join(problems) + "\nTo fix it, " + '; or '.join(dict.fromkeys(fixes)))
        with no_grad():
            for target, value in copies:  # into the existing arrays: every name and reference stays in step
                if is_lazy(target):
                    target.materialize(value.shape)
                target._data[...] = value._data
        return _IncompatibleKeys(missing, unexpected)

    # ---- moving, modes, gradients -----------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Module:
        """to(dtype), to(device), to(device, dtype), to(tensor), dtype=/device=: casts float tensors in place.

        Parameters and buffers only: a plain tensor attribute is not the module's, so it stays as it is.
        """
        dtype = _to_dtype(args, kwargs)
        if dtype is not None:
            for t in list(self.parameters()) + list(self.buffers()):
                if is_lazy(t) and t._data is None:
                    t._lazy_dtype = np.dtype(dtype)
                elif t.dtype.kind == 'f':
                    t._data = t._data.astype(dtype)
                    if t.grad is not None:
                        t.grad = Tensor(t.grad._data.astype(dtype))
        return self

    def cpu(self) -> Module:
        return self.to('cpu')

    def cuda(self, device=None) -> Module:
        return self.to('cuda' if device is None else device if isinstance(device, str) else f'cuda:{device}')

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}; use net.train() or net.eval()")
        for m in self.modules():
            object.__setattr__(m, 'training', mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (PyTorch 2's default: set them to None); set_to_none=False fills them with 0."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad._data[...] = 0  # in place, as PyTorch: a reference to the gradient sees the zeros

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn) -> Module:
        """fn(module) for every module once, each child before its parent, in PyTorch's order (custom init)."""
        stack, on_path = [(self, iter(list(self.children())))], {id(self)}  # PyTorch's recursion, unrolled
        while stack:
            module, todo = stack[-1]
            for child in todo:
                if id(child) not in on_path:  # a module inside its own subtree is not entered again
                    on_path.add(id(child))
                    stack.append((child, iter(list(child.children()))))
                    break
            else:
                stack.pop()
                on_path.discard(id(module))
                fn(module)
        return self

    # ---- printing ----------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """What goes inside a layer's parentheses, e.g. 'in_features=20, out_features=256, bias=True'."""
        return ''

    def __repr__(self):
        return module_repr(self, Module.__repr__)  # nn/printing.py: PyTorch's layout, any depth


def _to_dtype(args: tuple, kwargs: dict):
    """The dtype asked for by Module.to's arguments (PyTorch's signatures), or None; devices via resolve_to."""
    if kwargs.get('copy'):
        raise RuntimeError(".to() does not accept copy argument: a module's tensors are converted in place")
    resolved = [None if isinstance(a, bool) or a is None or isinstance(a, (list, dict, tuple)) else
                resolve_to(a.dtype if isinstance(a, Tensor) else a) for a in args]
    kinds = ['flag' if isinstance(a, bool) else 'bad' if a is None or isinstance(a, (list, dict, tuple)) else
             'device' if r is None else 'dtype' for a, r in zip(args, resolved)]
    if kinds not in ([], ['device'], ['dtype'], ['device', 'dtype'], ['dtype', 'flag'], ['device', 'dtype', 'flag']) \
            or set(kwargs) - {'device', 'dtype', 'non_blocking', 'memory_format', 'copy'}:
        raise TypeError(f"to() received an invalid combination of arguments: {args}, {kwargs}; use to(device), "
                        "to(dtype), to(device, dtype) or to(tensor), with non_blocking last")
    for key in ('device', 'dtype'):
        if kwargs.get(key) is not None:
            resolved.append(resolve_to(kwargs[key].dtype if isinstance(kwargs[key], Tensor) else kwargs[key]))
    dtype = next((r for r in reversed(resolved) if r is not None), None)
    if dtype is not None and np.dtype(dtype).kind not in 'fc':
        raise TypeError("nn.Module.to only accepts floating point or complex dtypes, but got desired "
                        f"dtype={dtype}; integer and bool tensors cannot hold what training changes")
    return dtype


def _checked(value, what: str, kind: type):
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"cannot assign '{type(value).__name__}' object to {what} ({kind.__name__} or None required)"
                        + ("; make it a parameter first: nn.Parameter(value)" if kind is Parameter and
                           isinstance(value, Tensor) else ""))
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
