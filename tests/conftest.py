"""The one Chromium of a test session, shared by the JupyterLab tests (tests/browser) and the in-browser site's
(tests/lite).

Playwright's sync API allows one instance per thread, and it keeps an event loop running in the main thread
until the session ends; so there is one instance for everybody, and tests that need asyncio of their own run
it in a thread of their own (tests/test_classroom.py).
"""
import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope='session')
def browser():
    """Headless Debian Chromium, driven by Playwright; skips (fails under CI) without it."""
    path = Path(__file__).parent / 'browser' / 'conftest.py'  # its helpers, loaded only when a test needs them
    spec = importlib.util.spec_from_file_location('d2lmod_browser_helpers', path)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    yield from helpers.chromium()
