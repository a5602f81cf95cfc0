"""gluon.Block on d2lmod's Module: register_child, _children, initialize() with deferred initialization."""
from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict

from ....nn.module import Module
from .. import init as mx_init
from .parameter import Constant


class Block(Module):
    """Gluon's Block: a d2lmod Module with Gluon's names for registering children and initializing parameters."""

    def __init__(self, **kwargs):
        super().__init__()

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Constant):  # Gluon registers a Constant on assignment; d2lmod calls that a buffer
            self.register_buffer(name, value)
        else:
            super().__setattr__(name, value)

    def register_child(self, block: Module, name: str | None = None) -> None:
        """Register block as a child, named by its position unless name is given (Gluon's add_module)."""
        self.add_module(str(len(self._modules)) if name is None else name, block)

    @property
    def _children(self) -> OrderedDict:
        """name -> weak reference to the child, as Gluon 2 keeps them: call one, block(), to get the child."""
        return OrderedDict((name, weakref.ref(child)) for name, child in self._modules.items() if child is not None)

    def initialize(self, init=None, ctx=None, verbose: bool = False, force_reinit: bool = False) -> None:
        """Choose how every parameter below starts; one whose input size is unknown is filled on its first call.

        A parameter that names its own initializer (a bias: 'zeros') keeps it; the others use init
        (default: Uniform(0.07), Gluon's).
        """
        default = mx_init.Uniform() if init is None else mx_init.create(init)
        for module in self.modules():
            if hasattr(module, '_deferred_initialize'):
                module._deferred_initialize(default, force_reinit)

    def collect_params(self, select=None) -> OrderedDict:
        """Every parameter and Constant below, by dotted name (Gluon 2's structured names)."""
        found = OrderedDict(self.named_parameters())
        found.update((name, b) for name, b in self.named_buffers() if isinstance(b, Constant))
        return found

    def name_scope(self):
        """Gluon 1's naming context; d2lmod names parameters by their attribute path, so it has nothing to do."""
        return contextlib.nullcontext()
