"""mxnet.init: the initializers that initialize() accepts, each filling a parameter from d2lmod's seeded generator."""
from __future__ import annotations

import math

from ...nn import init as dm_init


class Initializer:
    """Fills a parameter in place; the subclass says how (MXNet's base class of initializers)."""

    def __call__(self, name: str, param) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not say how to fill {name}; use one of Uniform, "
                                  "Normal, Constant, Zero, One, Xavier")

    def __repr__(self):
        settings = ', '.join(f'{k}={v}' for k, v in vars(self).items())
        return f'{type(self).__name__}({settings})'


class Uniform(Initializer):
    """Uniform in [-scale, scale]: Gluon's default for weights (scale 0.07)."""

    def __init__(self, scale: float = 0.07):
        self.scale = scale

    def __call__(self, name, param):
        dm_init.uniform_(param, -self.scale, self.scale)


class Normal(Initializer):
    def __init__(self, sigma: float = 0.01):
        self.sigma = sigma

    def __call__(self, name, param):
        dm_init.normal_(param, 0.0, self.sigma)


class Constant(Initializer):
    def __init__(self, value: float):
        self.value = value

    def __call__(self, name, param):
        dm_init.constant_(param, self.value)


class Zero(Constant):
    def __init__(self):
        super().__init__(0.0)


class One(Constant):
    def __init__(self):
        super().__init__(1.0)


class Xavier(Initializer):
    """Uniform (or normal) with scale sqrt(magnitude / fan), fan the average of fan-in and fan-out by default."""

    def __init__(self, rnd_type: str = 'uniform', factor_type: str = 'avg', magnitude: float = 3):
        self.rnd_type, self.factor_type, self.magnitude = rnd_type, factor_type, magnitude

    def __call__(self, name, param):
        fan_in, fan_out = dm_init._fans(param)
        fan = {'avg': (fan_in + fan_out) / 2, 'in': fan_in, 'out': fan_out}[self.factor_type]
        scale = math.sqrt(self.magnitude / fan)
        if self.rnd_type == 'uniform':
            dm_init.uniform_(param, -scale, scale)
        else:
            dm_init.normal_(param, 0.0, scale)


def create(spec) -> Initializer:
    """An initializer from its Gluon name ('zeros', 'ones', 'uniform', ...) or itself."""
    if isinstance(spec, Initializer):
        return spec
    named = {'zeros': Zero, 'ones': One, 'uniform': Uniform, 'normal': Normal, 'xavier': Xavier}
    if spec not in named:
        raise ValueError(f"unknown initializer {spec!r}; use one of {sorted(named)} or an init.Initializer")
    return named[spec]()
