"""Containers: Sequential runs its children in order; ModuleList and ModuleDict just hold and register them."""
from __future__ import annotations

from collections import OrderedDict

from .module import Module


def _index(container: Module, i: int) -> int:
    """A position in the container, counting from the end when negative, with a clear range error."""
    n = len(container._modules)
    if not isinstance(i, int):
        raise TypeError(f"{type(container).__name__} indices must be integers or slices, not {type(i).__name__}")
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of range for a {type(container).__name__} of {n} modules")
    return i % n


class Sequential(Module):
    """Calls its children one after another, each on the previous one's output."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            self.add(*modules)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def add(self, *modules: Module) -> Sequential:
        """Append modules (Gluon's spelling of append)."""
        for module in modules:
            self.append(module)
        return self

    def append(self, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules, got a {type(module).__name__}; "
                            "wrap functions in a Module (e.g. nn.ReLU() rather than F.relu)")
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        items = list(self._modules.items())
        if isinstance(i, slice):
            return type(self)(OrderedDict(items[i]))
        return items[_index(self, i)][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules that, unlike a plain Python list, registers them (parameters, state_dict, to())."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, i):
        items = list(self._modules.values())
        return ModuleList(items[i]) if isinstance(i, slice) else items[_index(self, i)]

    def __setitem__(self, i: int, module: Module) -> None:
        self.add_module(list(self._modules)[_index(self, i)], module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules that registers them under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in dict(modules or {}).items():
            self[name] = module

    def __getitem__(self, name: str) -> Module:
        if name not in self._modules:
            raise KeyError(f"ModuleDict has no module '{name}'; it has {list(self._modules)}")
        return self._modules[name]

    def __setitem__(self, name: str, module: Module) -> None:
        self.add_module(name, module)

    def __contains__(self, name: str) -> bool:
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
