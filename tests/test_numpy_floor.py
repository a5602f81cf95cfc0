"""The oldest NumPy d2lmod supports (pyproject: numpy>=1.25), which is also the in-browser site's (1.25.2).

NumPy 1.x promotes differently from 2.x: a float32 scalar combined with a Python number gives float64. This
builds a venv with numpy==1.25.2, installs this checkout into it (not editable: the tests import the installed
copy), and runs every test that needs neither PyTorch nor a browser there (core, visualiser, errors, I/O).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NUMPY = '1.25.2'
# what the tests below import, besides d2lmod[widgets]; no torch (its tests skip), no browser
TEST_PACKAGES = ['pytest', 'hypothesis', 'nbformat']
TESTS = ['test_gradcheck.py', 'test_module_api.py', 'test_errors.py', 'test_io.py', 'test_memory.py',
         'test_datasets.py', 'test_graph.py', 'test_widgets.py', 'test_exercises.py']


def run(args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kwargs)


def test_the_core_and_visualiser_tests_pass_under_numpy_1_25(tmp_path):
    env_dir = tmp_path / 'np125'
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / 'bin' / 'python'
    source = tmp_path / 'src'  # a copy, so building the package leaves nothing in the checkout
    for name in ('d2lmod', 'widgets', 'tests', 'bench'):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns('__pycache__', 'browser', 'lite'))
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy2(REPO / name, source / name)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    installed = run([python, '-m', 'pip', 'install', '-q', f'numpy=={NUMPY}', f'{source}[widgets]', *TEST_PACKAGES],
                    env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    shutil.rmtree(source / 'd2lmod')  # the tests must import the installed copy
    shutil.rmtree(source / 'widgets')
    version = run([python, '-c', 'import numpy, d2lmod; print(numpy.__version__, d2lmod.__file__)'], cwd=tmp_path)
    assert version.stdout.split()[0] == NUMPY, version.stdout + version.stderr
    assert str(env_dir) in version.stdout, f'd2lmod not imported from the venv: {version.stdout}'
    # tests/ reads the lessons and data next to it: point it at this checkout's notebooks/
    (source / 'notebooks').symlink_to(REPO / 'notebooks')
    result = run([python, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider', '-o', 'addopts=',
                  '-m', 'not torch and not slow', *(source / 'tests' / t for t in TESTS)],
                 cwd=tmp_path, env=dict(env, PYTHONHASHSEED='0'))
    tail = '\n'.join(result.stdout.splitlines()[-30:])
    assert result.returncode == 0, f'under NumPy {NUMPY}:\n{tail}\n{result.stderr[-2000:]}'
    assert ' passed' in tail and ' failed' not in tail, tail
