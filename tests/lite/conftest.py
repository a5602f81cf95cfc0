"""Fixtures for the in-browser site test: a fresh build of build/lite/, a loopback static server, offline Chromium.

The site is built by `./dev.sh lite` (its own venv, .venv-lite) when build/lite/ is missing or older than its
inputs, and served by a static file server on a free 127.0.0.1 port in this process. Chromium (Debian's, driven
by Playwright; `playwright install` is never needed) may reach only that server: every other request is
recorded and aborted by route interception, and its host resolver maps every other name to nowhere (which
also covers requests a service worker makes). Without Chromium or Playwright the tests skip, unless CI is set.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get('D2LMOD_LITE_SITE', REPO / 'build' / 'lite'))
ARTIFACTS = Path(os.environ.get('D2LMOD_LITE_ARTIFACTS', REPO / 'test-artifacts' / 'lite'))


def load(name: str, path: Path):
    """A Python file of the repository as a module of its own (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The JupyterLab browser tests' helpers, reused; `browser`, the session's one Chromium (in which no name but the
# loopback address resolves), comes from tests/conftest.py.
lab = load('d2lmod_browser_conftest', REPO / 'tests' / 'browser' / 'conftest.py')
unavailable = lab.unavailable
BUILD_SECONDS = 900   # from nothing (venv, downloads, build) it takes about a minute here


def lite_build():
    """lite/build.py as a module (standard library only at import), for is_fresh()."""
    return load('d2lmod_lite_build', REPO / 'lite' / 'build.py')


@pytest.fixture(scope='session')
def site() -> dict:
    """build/lite/, rebuilt by ./dev.sh lite unless it is a complete build of the current lessons and package;
    returns the build's stamp (lessons, Python and NumPy versions, size)."""
    if 'D2LMOD_LITE_SITE' not in os.environ and not lite_build().is_fresh(SITE):
        result = subprocess.run(['./dev.sh', 'lite'], cwd=REPO, capture_output=True, text=True,
                                timeout=BUILD_SECONDS)
        assert result.returncode == 0, f'./dev.sh lite failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    stamp = SITE / 'd2lmod-lite.json'
    assert stamp.exists(), f'{SITE} is not a d2lmod lite build (no d2lmod-lite.json): run ./dev.sh lite'
    return json.loads(stamp.read_text())


class Quiet(SimpleHTTPRequestHandler):
    """Static files, with the types a browser insists on (WebAssembly), and no log line per request."""
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, '.wasm': 'application/wasm',
                      '.js': 'application/javascript', '.json': 'application/json', '.ipynb': 'application/json'}

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope='session')
def server(site):
    """The site on a free 127.0.0.1 port, served from a thread of this process; shut down at the end."""
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(SITE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope='session')
def artifacts() -> Path:
    """test-artifacts/lite/, emptied of earlier runs' screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob('*.png'):
        old.unlink()
    return ARTIFACTS


class Offline:
    """A browser context that may reach only the site: other requests are aborted and listed in .refused."""

    def __init__(self, browser, origin: str):
        self.origin, self.refused = origin, []
        self.context = browser.new_context(viewport={'width': 1280, 'height': 900})
        self.context.route('**/*', self.gate)

    def gate(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f'{parts.scheme}://{parts.netloc}' == self.origin or parts.scheme in ('data', 'blob'):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort('blockedbyclient')


@pytest.fixture(scope='session')
def offline(browser, server):
    context = Offline(browser, server)
    yield context
    context.context.close()


@pytest.fixture
def probe(browser, server):
    """A second gated context of its own, for checking the gate itself."""
    context = Offline(browser, server)
    yield context
    context.context.close()
