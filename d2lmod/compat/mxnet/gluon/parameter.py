"""gluon.Constant: numbers a Block keeps and saves but never trains; in d2lmod terms, a persistent buffer."""
from __future__ import annotations

import numpy as np

from ....tensor import Tensor


class Constant(Tensor):
    """A fixed array registered on its Block: in state_dict(), moved by to(), no gradient, no optimizer step."""
    grad_req = 'null'  # Gluon's way of saying: never trained

    def __init__(self, value):
        values = value._data if isinstance(value, Tensor) else np.asarray(value, dtype=np.float32)
        super().__init__(np.array(values))  # its own copy

    def data(self, ctx=None) -> Tensor:
        """The values, as Gluon's Parameter.data() returns them (a Constant never needs a gradient)."""
        return self

    def __repr__(self):
        return f'Constant (shape={self.shape}, dtype={self.dtype})'
