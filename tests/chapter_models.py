"""The chapter's models, written once: in d2lmod, and (for the tests that compare) the same models in PyTorch.

    from chapter_models import CHAPTER_MODELS, make_input, torch_twin
    net = CHAPTER_MODELS['chimera']()      # a d2lmod model, lazy until its first call
    twin = torch_twin('chimera')           # the same model in PyTorch (imports torch only now)
    X = make_input(0)                      # a (2, 20) float32 d2lmod tensor, the chapter's input

The two spellings are kept line for line alike, so a reader can hold them side by side. This module
imports without PyTorch; only torch_twin() needs it.
"""
from __future__ import annotations

import numpy as np

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F


def make_input(seed: int = 0) -> dm.Tensor:
    """The chapter's X: (2, 20) float32 numbers uniform in [0, 1), from its own generator (not d2lmod's)."""
    return dm.tensor(np.random.default_rng(seed).random((2, 20), dtype=np.float32))


def make_net() -> nn.Sequential:
    """A layer, a block and a whole model are the same class: Sequential holds layers and calls them in turn."""
    return nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))


class MLP(nn.Module):
    """The same network as make_net(), written as a custom module: children named in __init__, then forward."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.LazyLinear(256)  # assigning a Module registers it as a child
        self.out = nn.LazyLinear(10)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))


class MySequential(nn.Module):
    """Sequential rebuilt by hand: add_module under the names '0', '1', ... and a loop over children()."""

    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self.add_module(str(idx), module)

    def forward(self, X):
        for module in self.children():  # in the order they were added
            X = module(X)
        return X


class ListSequential(nn.Module):
    """MySequential with its children in a plain list (the chapter's exercise): they run, nothing sees them."""

    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)  # a plain list: not registered, so no parameters(), state_dict() or to()

    def forward(self, X):
        for m in self.layers:
            X = m(X)
        return X


class FixedHiddenMLP(nn.Module):
    """forward is plain Python: a constant weight that never trains, one Linear used twice, a data-dependent loop."""

    def __init__(self):
        super().__init__()
        self.rand_weight = dm.rand(20, 20)  # a plain tensor attribute: not a parameter, not in state_dict
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)  # the same parameters again: both uses add into the same .grad
        while X.abs().sum() > 1:  # how often this runs depends on the data
            X /= 2
        return X.sum()


class NestMLP(nn.Module):
    """A module holding a Sequential: nesting goes to any depth."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


def make_my_sequential() -> MySequential:
    return MySequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))


def make_chimera() -> nn.Sequential:
    """Modules mixed freely: a custom module, a layer and a model with a loop, chained by a Sequential."""
    return nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())


CHAPTER_MODELS = {
    'net': make_net,
    'MLP': MLP,
    'MySequential': make_my_sequential,
    'FixedHiddenMLP': FixedHiddenMLP,
    'NestMLP': NestMLP,
    'chimera': make_chimera,
}


# ---- the same models in PyTorch (test-only; torch is imported on first use) -------------------------------
_torch_factories: dict = {}


def digits_resnet(nn, c: int = 16, blocks: int = 2):
    """The chapter's closing claim, in d2lmod or PyTorch (pass either's nn; the code is the same): conv + BatchNorm
    + ReLU, residual blocks of two of them, global average pooling, a linear classifier.  (N, 1, H, W) -> (N, 10)"""
    class Residual(nn.Module):
        """relu(x + bn2(conv2(relu(bn1(conv1(x))))))"""

        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
    return nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                         *[Residual() for _ in range(blocks)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def torch_twin(name: str):
    """A fresh PyTorch model built like CHAPTER_MODELS[name]() (lazy too); imports torch on first use."""
    if not _torch_factories:
        _torch_factories.update(_define_torch_models())
    if name not in _torch_factories:
        raise KeyError(f"torch_twin: no chapter model called {name!r}; the names are {list(_torch_factories)}")
    return _torch_factories[name]()


def _define_torch_models() -> dict:
    import torch
    from torch import nn
    from torch.nn import functional as F

    def make_net():
        return nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.LazyLinear(256)
            self.out = nn.LazyLinear(10)

        def forward(self, X):
            return self.out(F.relu(self.hidden(X)))

    class MySequential(nn.Module):
        def __init__(self, *args):
            super().__init__()
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

        def forward(self, X):
            for module in self.children():
                X = module(X)
            return X

    class FixedHiddenMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.rand_weight = torch.rand(20, 20)
            self.linear = nn.LazyLinear(20)

        def forward(self, X):
            X = self.linear(X)
            X = F.relu(X @ self.rand_weight + 1)
            X = self.linear(X)
            while X.abs().sum() > 1:
                X /= 2
            return X.sum()

    class NestMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
            self.linear = nn.LazyLinear(16)

        def forward(self, X):
            return self.linear(self.net(X))

    return {
        'net': make_net,
        'MLP': MLP,
        'MySequential': lambda: MySequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10)),
        'FixedHiddenMLP': FixedHiddenMLP,
        'NestMLP': NestMLP,
        'chimera': lambda: nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP()),
    }
