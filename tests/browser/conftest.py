"""Fixtures for the browser tests: a JupyterLab server of their own, headless Chromium, an artifacts folder.

The server serves a temporary copy of notebooks/ with its own settings, workspace, runtime, data and config
folders, so nothing a lesson or the browser writes (saved notebooks, checkpoints, lesson 3's files) can reach
the repository. Chromium is Debian's package, driven by Playwright; `playwright install` is never needed.
Without Chromium or Playwright the tests skip, unless the environment variable CI is set: then they fail.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / 'notebooks'
ARTIFACTS = Path(os.environ.get('D2LMOD_BROWSER_ARTIFACTS', REPO / 'test-artifacts' / 'browser'))
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 # no name but the loopback address resolves: nothing can leave the machine, service workers too
                 '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']
# JupyterLab settings for a quiet, deterministic run: no news toast over the screenshots, no autosave, and
# no empty space after the last cell (so a screenshot of the whole notebook ends with it).
LAB_SETTINGS = {
    '@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False},
    '@jupyterlab/docmanager-extension/plugin': {'autosave': False},
    '@jupyterlab/notebook-extension/tracker': {'scrollPastEnd': False},
}
LAB_KEY = pytest.StashKey['Lab']()


def unavailable(reason: str):
    """Skip with reason; under CI (the variable CI is set) fail instead, so that CI cannot skip silently."""
    if os.environ.get('CI'):
        pytest.fail(f'{reason} (CI is set, so the browser tests fail instead of skipping)', pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server started by the tests, serving a copy of the lessons; stop() is safe to call twice."""

    def __init__(self, tmp: Path, log_path: Path):
        self.root, self.log_path = tmp / 'notebooks', log_path
        shutil.copytree(NOTEBOOKS, self.root, ignore=shutil.ignore_patterns('src', '.ipynb_checkpoints'))
        settings = tmp / 'settings'
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f'{plugin}.jupyterlab-settings'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        for var in ('JUPYTER_RUNTIME_DIR', 'JUPYTER_DATA_DIR', 'JUPYTER_CONFIG_DIR', 'IPYTHONDIR'):
            env[var] = str(tmp / var.lower())
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = open(log_path, 'w')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyterlab', '--no-browser', f'--port={self.port}', '--ip=127.0.0.1',
             '--ServerApp.token=', '--ServerApp.password=', '--allow-root', f'--notebook-dir={self.root}',
             '--expose-app-in-browser', f'--LabApp.user_settings_dir={settings}',
             f'--LabApp.workspaces_dir={tmp / "workspaces"}'],
            cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_until_up(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}')
            try:
                with urllib.request.urlopen(f'{self.url}/api/status', timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f'JupyterLab did not answer {self.url}/api/status in {seconds:g} s:\n{self.log_tail()}')

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors='replace').splitlines()
        return '\n'.join(text[-lines:]) + f'\n(whole log: {self.log_path})'

    def stop(self) -> None:
        """Stop the server (it shuts down its kernels on SIGTERM); kill it if it takes too long."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope='session')
def artifacts() -> Path:
    """The folder for screenshots and the server log; earlier runs' files in it are removed first."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob('*.png'), ARTIFACTS / 'jupyterlab.log']:
        old.unlink(missing_ok=True)
    return ARTIFACTS


def chromium():
    """Headless Debian Chromium, driven by Playwright (tests/conftest.py makes it the session's `browser`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable('playwright is not installed: pip install playwright (never `playwright install`)')
    if not Path(CHROMIUM).exists():
        unavailable(f'no Chromium at {CHROMIUM}: apt-get install chromium (./dev.sh test does it on Debian)')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class RepoGuard:
    """What the repository looked like when the browser tests began, to compare with at the end.

    A browser run could change the repository only by saving a notebook or by a lesson writing files into the
    kernel's folder, so it compares every file under notebooks/ and the files git does not track. Edits to
    tracked files elsewhere are not compared: work in progress on them may go on while the tests run."""

    def __init__(self):
        self.before = self.state()

    @staticmethod
    def state() -> tuple:
        """(untracked files and every status line under notebooks/, the bytes of every file under notebooks/)."""
        status = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.splitlines()
        watched = {line for line in status if line.startswith('??') or line[3:].startswith('notebooks/')}
        files = {str(p.relative_to(REPO)): p.read_bytes() for p in sorted(NOTEBOOKS.rglob('*')) if p.is_file()}
        return watched, files

    def changes(self) -> list:
        """What changed since the start, one line each ([] when nothing did)."""
        (status, files), (status_before, files_before) = self.state(), self.before
        lines = [f'git status now also says: {line}' for line in sorted(status - status_before)]
        lines += [f'git status no longer says: {line}' for line in sorted(status_before - status)]
        lines += [f'{path}: {"new" if path not in files_before else "gone" if path not in files else "changed"}'
                  for path in sorted(files.keys() | files_before.keys()) if files.get(path) != files_before.get(path)]
        return lines


@pytest.fixture(scope='session')
def repo_guard() -> RepoGuard:
    return RepoGuard()


@pytest.fixture(scope='session')
def lab(request, tmp_path_factory, artifacts, browser, repo_guard):
    """A JupyterLab server on a free loopback port, serving a temporary copy of notebooks/."""
    server = Lab(tmp_path_factory.mktemp('lab'), artifacts / 'jupyterlab.log')
    request.config.stash[LAB_KEY] = server
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test shows the end of the server's log."""
    report = yield
    server = item.config.stash.get(LAB_KEY, None)
    if report.failed and server is not None and item.get_closest_marker('browser'):
        report.sections.append(('JupyterLab server log (end)', server.log_tail()))
    return report


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(LAB_KEY, None) is not None:
        terminalreporter.write_line(f'browser tests: screenshots and the JupyterLab log are in {ARTIFACTS}')
