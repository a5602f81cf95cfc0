"""The small data sets the lessons train on, shipped inside the package so nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np

_DATA = Path(__file__).resolve().parent / 'data'


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 handwritten digits: (images uint8 (1797, 8, 8), pixels 0-16; labels int64 (1797,)).

    The same numbers as scikit-learn's load_digits(); see data/DIGITS_LICENSE.md for where they come from.
    """
    with np.load(_DATA / 'digits.npz', allow_pickle=False) as f:
        return f['images'].copy(), f['labels'].astype(np.int64)
