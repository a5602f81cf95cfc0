"""need('torch'): the framework a test file needs; skipped with the reason when absent, failed under CI."""
from __future__ import annotations

import importlib
import os

import pytest

INSTALL = {'torch': 'pip install torch==2.13.0', 'jax': 'pip install jax flax', 'flax': 'pip install jax flax'}


def need(name: str):
    """Import name; when missing, skip the module (or fail when the variable CI is set: CI installs it)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        reason = f'{name} is not installed ({INSTALL[name]})'
        if os.environ.get('CI'):
            pytest.fail(f'{reason}; CI is set, so these tests fail instead of skipping', pytrace=False)
        pytest.skip(reason, allow_module_level=True)
