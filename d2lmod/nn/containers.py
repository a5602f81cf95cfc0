"""Containers: Sequential runs its children in order; ModuleList, ModuleDict, ParameterList and ParameterDict
hold and register what they are given, with the list and dict methods (and errors) of PyTorch."""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from ..tensor import Tensor
from .module import Module, Parameter


def _position(container, idx) -> int:
    """idx as a position from the start (negative counts from the end); a 0-d integer tensor works too."""
    try:
        idx = idx.item() if isinstance(idx, Tensor) and idx.dtype.kind in 'iu' else operator.index(idx)
    except TypeError:
        raise TypeError(f"{type(container).__name__} indices must be integers or slices, not "
                        f"{type(idx).__name__}") from None
    n = len(container)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a {type(container).__name__} of {n} modules")
    return idx % n


def _renumber(container: Module, modules: list) -> None:
    """Register modules under '0', '1', ... in this order (what PyTorch does after a delete or an insert)."""
    for name in list(container._modules):
        container._forget(name)
    for i, module in enumerate(modules):
        container.add_module(str(i), module)


class Sequential(Module):
    """Calls its children one after another, each on the previous one's output."""

    def __init__(self, *args: Module):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), _module(module, 'Sequential'))

    def forward(self, input):
        for module in self:
            input = module(input)
        return input

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_position(self, idx)]

    def __setitem__(self, idx, module: Module) -> None:
        setattr(self, list(self._modules)[_position(self, idx)], module)

    def __delitem__(self, idx) -> None:
        doomed = list(self._modules)[idx] if isinstance(idx, slice) else [list(self._modules)[_position(self, idx)]]
        _renumber(self, [m for name, m in self._modules.items() if name not in doomed])

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return self.extend(list(other))

    def __mul__(self, other: int) -> Sequential:
        return Sequential(*(list(self) * _factor(self, other)))

    __rmul__ = __mul__

    def __imul__(self, other: int) -> Sequential:
        return self.extend(list(self) * (_factor(self, other) - 1))

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), _module(module, 'Sequential'))
        return self

    def add(self, *modules: Module) -> Sequential:
        """Append modules (Gluon's spelling of append)."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        if not isinstance(module, Module):  # PyTorch asserts here
            raise AssertionError(f"module should be of type: {Module}, got {type(module).__name__}")
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"Index out of range: {index} (the Sequential has {n} modules)")
        modules = list(self)
        modules.insert(index, module)
        _renumber(self, modules)
        return self

    def extend(self, sequential) -> Sequential:
        for layer in sequential:
            self.append(layer)
        return self

    def pop(self, key):
        v = self[key]
        del self[key]
        return v


def _module(value, container: str) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{type(value).__name__} is not a Module subclass: a {container} holds Modules; "
                        "wrap a function in a Module (e.g. nn.ReLU() rather than F.relu)")
    return value


def _factor(container, other) -> int:
    if not isinstance(other, int):
        raise TypeError(f"unsupported operand type(s) for *: {type(container)} and {type(other)}")
    if other <= 0:
        raise ValueError(f"Non-positive multiplication factor {other} for {type(container)}")
    return other


class ModuleList(Module):
    """A list of modules that, unlike a plain Python list, registers them (parameters, state_dict, to())."""
    _repr_runs = True  # printed as PyTorch prints it: '(0-2): 3 x Linear(...)' for a run of identical layers

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_position(self, idx))]

    def __setitem__(self, idx, module: Module) -> None:
        setattr(self, str(_position(self, idx)), module)

    def __delitem__(self, idx) -> None:
        doomed = range(len(self))[idx] if isinstance(idx, slice) else [_position(self, idx)]
        _renumber(self, [m for i, m in enumerate(self) if i not in doomed])

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def insert(self, index: int, module: Module) -> None:
        modules = list(self)
        modules.insert(index, module)
        _renumber(self, modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def pop(self, key):
        v = self[key]
        del self[key]
        return v

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if not isinstance(modules, Iterable) or isinstance(modules, Module) and not hasattr(modules, '__iter__'):
            raise TypeError(f"ModuleList.extend should be called with an iterable, but got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self


class ModuleDict(Module):
    """A dict of modules that registers them under their keys (kept in insertion order)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; its keys are {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self[key]  # a KeyError that names the keys
        self._forget(key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        for key in list(self._modules):
            self._forget(key)

    def pop(self, key: str) -> Module:
        v = self[key]
        del self[key]
        return v

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        for key, module in _pairs(self, modules, ordered=True):
            self[key] = module


def _pairs(container, pairs, ordered: bool):
    """The (key, value) pairs of a mapping or a sequence of pairs, with PyTorch's errors for anything else."""
    kind = type(container).__name__
    if not isinstance(pairs, (Iterable, Tensor)) or isinstance(pairs, Module) and not hasattr(pairs, 'items'):
        raise TypeError(f"{kind}.update should be called with an iterable of key/value pairs, but got "
                        f"{type(pairs).__name__}")
    if isinstance(pairs, (OrderedDict, ModuleDict, ParameterDict)) or ordered and isinstance(pairs, Mapping):
        return list(pairs.items())
    if isinstance(pairs, Mapping):  # PyTorch sorts a plain dict's keys for ParameterDict
        return sorted(pairs.items())
    out = []
    for j, pair in enumerate(pairs):
        if not isinstance(pair, (Iterable, Tensor)):
            raise TypeError(f"{kind} update sequence element #{j} should be Iterable; is {type(pair).__name__}")
        if len(pair) != 2:
            raise ValueError(f"{kind} update sequence element #{j} has length {len(pair)}; 2 is required")
        out.append(tuple(pair))
    return out


def _describe(value) -> str:
    """One line per entry of a ParameterList or ParameterDict, as PyTorch prints them."""
    if not isinstance(value, Tensor):
        return f'Object of type: {type(value).__name__}'
    kind = 'Parameter containing' if isinstance(value, Parameter) else 'Tensor'
    return f"{kind}: [{value.dtype} of size {'x'.join(str(n) for n in value.shape)}]"


class ParameterList(Module):
    """A list of parameters that registers them; a plain tensor put in becomes a Parameter (as in PyTorch)."""

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)([self[i] for i in range(len(self))[idx]])
        return getattr(self, str(_position(self, idx)))

    def __setitem__(self, idx, param) -> None:
        if isinstance(param, Tensor) and not isinstance(param, Parameter):
            param = Parameter(param)
        setattr(self, str(_position(self, idx)), param)

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __iadd__(self, parameters) -> ParameterList:
        return self.extend(parameters)

    def append(self, value) -> ParameterList:
        self._size += 1
        self[self._size - 1] = value
        return self

    def extend(self, values) -> ParameterList:
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError(f"ParameterList.extend should be called with an iterable, but got {type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return '\n'.join(f'  ({i}): {_describe(p)}' for i, p in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called: it only holds parameters; use them in a forward")


class ParameterDict(Module):
    """A dict of parameters that registers them under their keys; a plain tensor put in becomes a Parameter."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = {}
        if parameters is not None:
            self.update(parameters)

    @staticmethod
    def _key(key) -> str:
        if not isinstance(key, str):
            raise TypeError("Index given to ParameterDict cannot be used as a key as it is not a string "
                            f"(type is '{type(key).__name__}'); use a string key")
        return key

    def __getitem__(self, key: str):
        if self._key(key) not in self._keys:  # PyTorch raises AttributeError here, not KeyError
            raise AttributeError(f"'ParameterDict' object has no attribute '{key}': its keys are {list(self._keys)}")
        return getattr(self, key)

    def __setitem__(self, key: str, value) -> None:
        if isinstance(value, Tensor) and not isinstance(value, Parameter):
            value = Parameter(value)
        setattr(self, self._key(key), value)
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, key)

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(list(self._keys))

    def __contains__(self, key) -> bool:
        return key in self._keys

    def copy(self) -> ParameterDict:
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def setdefault(self, key: str, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        for key in list(self._keys):
            del self[key]

    def pop(self, key: str):
        v = self[key]
        del self[key]
        return v

    def popitem(self):
        key = next(reversed(self._keys))
        return key, self.pop(key)

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def fromkeys(self, keys, default=None) -> ParameterDict:
        return ParameterDict((k, default) for k in keys)

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def update(self, parameters) -> None:
        for key, value in _pairs(self, parameters, ordered=False):
            self[key] = value

    def __or__(self, other: ParameterDict) -> ParameterDict:
        copy = self.copy()
        copy.update(other)
        return copy

    def __ror__(self, other: ParameterDict) -> ParameterDict:
        copy = other.copy()
        copy.update(self)
        return copy

    def __ior__(self, other: ParameterDict) -> ParameterDict:
        self.update(other)
        return self

    def extra_repr(self) -> str:
        return '\n'.join(f'  ({k}): {_describe(v)}' for k, v in self.items())

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called: it only holds parameters; use them in a forward")
