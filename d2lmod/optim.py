"""Optimizers: turn each parameter's .grad into a step, p <- p - lr * (something made of the gradients)."""
from __future__ import annotations

import numpy as np

from .tensor import Tensor


class Optimizer:
    """Holds the parameters to train; step() updates the ones that have a gradient, zero_grad() clears them."""

    def __init__(self, params, lr: float):
        if hasattr(params, 'named_parameters'):  # a Module, passed where its parameters belong
            raise TypeError(f"{type(self).__name__} expects the tensors to train, got the {type(params).__name__} "
                            "itself; pass its parameters: net.parameters()")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; did the model register its "
                             "layers? (modules kept in a plain Python list are invisible: use nn.ModuleList)")
        for p in self.params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} expects tensors (e.g. net.parameters()), "
                                f"got a {type(p).__name__}")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr, self.state = lr, {}  # state: id(parameter) -> that parameter's running numbers

    def __repr__(self):  # e.g. SGD(lr=0.1, momentum=0.0, weight_decay=0.0): the settings, not a memory address
        settings = ', '.join(f'{k}={v}' for k, v in vars(self).items() if k not in ('params', 'state'))
        return f'{type(self).__name__}({settings})'

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p in self.params:
            if p.grad is not None and p._data is not None:  # a lazy parameter waits for its first call
                self._update(p, p.grad._data)
                if p._vc is not None:  # an in-place write, counted as PyTorch counts it: a rule that kept
                    p._vc[0] += 1      # p's values (and so made its counter) will refuse to run

    def _update(self, p, g) -> None:
        """Change p._data in place, given its gradient g (a NumPy array)."""
        raise NotImplementedError

    def _state(self, p) -> dict:
        """p's running numbers (momentum, Adam's averages), kept between steps."""
        return self.state.setdefault(id(p), {})


class SGD(Optimizer):
    """p <- p - lr * v,  v = momentum * v + (g + weight_decay * p)   (v = g when momentum is 0)"""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay

    def _update(self, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p._data
        if self.momentum:
            state = self._state(p)
            state['v'] = g.copy() if 'v' not in state else self.momentum * state['v'] + g
            g = state['v']
        p._data -= self.lr * g  # lr is a Python float, so NumPy keeps g's dtype: float32 stays float32


class Adam(Optimizer):
    """Steps by a running mean of gradients divided by the root of a running mean of their squares."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def _update(self, p, g):
        b1, b2, state = *self.betas, self._state(p)
        if self.weight_decay:
            g = g + self.weight_decay * p._data
        if not state:
            state.update(t=0, m=np.zeros_like(p._data), v=np.zeros_like(p._data))
        state['t'] += 1
        state['m'] = b1 * state['m'] + (1 - b1) * g        # m = mean of g
        state['v'] = b2 * state['v'] + (1 - b2) * g * g    # v = mean of g^2
        m_hat = state['m'] / (1 - b1 ** state['t'])        # undo the bias towards the zero start
        v_hat = state['v'] / (1 - b2 ** state['t'])
        p._data -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)
