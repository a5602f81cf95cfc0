"""gluon.nn on d2lmod: Block, Sequential().add(...), Dense(units, activation=...) with deferred initialization."""
from __future__ import annotations

import numpy as np

from ....nn import functional as F
from ....nn.module import Parameter
from ....tensor import Tensor
from .. import init as mx_init
from .block import Block

__all__ = ['Block', 'Sequential', 'Dense', 'Activation']

ACTIVATIONS = {'relu': F.relu, 'sigmoid': F.sigmoid, 'tanh': F.tanh}


def _activation(name):
    if name is not None and name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, got {name!r}")
    return name


class Sequential(Block):
    """Runs its children in the order they were added."""

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            self.register_child(block)

    def forward(self, x, *args):
        for block in self._modules.values():
            x = block(x, *args)
            args = ()  # only the first child gets the extra arguments, as in Gluon
        return x

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)


class Activation(Block):
    """An activation function as a Block: Activation('relu')."""

    def __init__(self, activation: str, **kwargs):
        super().__init__()
        self.activation = _activation(activation)

    def forward(self, x):
        return ACTIVATIONS[self.activation](x)

    def extra_repr(self):
        return self.activation


class Dense(Block):
    """y = activation(x W^T + b), W of shape (units, in_units); in_units=0 means: learn it on the first call.

    As in Gluon, x of shape (N, d1, d2, ...) is flattened to (N, d1 * d2 * ...) unless flatten=False.
    """

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True, flatten: bool = True,
                 dtype='float32', weight_initializer=None, bias_initializer='zeros', in_units: int = 0, **kwargs):
        super().__init__()
        self.units, self.activation, self.flatten = units, _activation(activation), flatten
        self.weight = Parameter(shape=(units, in_units or None))
        self.bias = Parameter(shape=(units,)) if use_bias else None
        self._own_init = {'weight': weight_initializer, 'bias': bias_initializer}
        self._init = None  # the initializer initialize() chose; None: initialize() has not been called

    def _deferred_initialize(self, default, force_reinit: bool) -> None:
        """Remember how to fill the parameters, and fill the ones whose shape is known now."""
        if self._init is not None and not force_reinit:
            return
        self._init = default
        if self.weight.shape[1] is not None:
            self._fill(self.weight.shape[1])

    def _fill(self, in_units: int) -> None:
        for name, shape in (('weight', (self.units, in_units)), ('bias', (self.units,))):
            param = getattr(self, name)
            if param is not None:
                param._data = np.zeros(shape, np.float32)
                own = self._own_init[name]
                (self._init if own is None else mx_init.create(own))(name, param)

    def forward(self, x: Tensor) -> Tensor:
        if self._init is None:
            raise RuntimeError("Parameter 'weight' has not been initialized; call net.initialize() before the "
                               "first forward (Gluon's deferred initialization then sizes it on that call)")
        if self.flatten and x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        if self.weight._data is None:  # deferred initialization: in_units is now known
            self._fill(x.shape[-1])
        y = F.linear(x, self.weight, self.bias)
        return y if self.activation is None else ACTIVATIONS[self.activation](y)

    def extra_repr(self):
        size = -1 if self.weight.shape[1] is None else self.weight.shape[1]
        return f'{size} -> {self.units}, ' + (f'Activation({self.activation})' if self.activation else 'linear')
