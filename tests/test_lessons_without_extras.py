"""The lessons run where things are missing (an in-browser Python, a bare install): no matplotlib, no Graphviz,
no PyTorch, no JAX, no scikit-learn. Each lesson's code cells run in a fresh Python in which importing any of
those fails, as it would there; the figures then come out as SVG drawn by d2lmod.widgets.figures."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / 'notebooks' / 'src'
MISSING = ['matplotlib', 'graphviz', 'torch', 'jax', 'flax', 'sklearn']
LESSONS = sorted(p.stem for p in SRC.glob('[0-9][0-9]_*.py'))

RUNNER = """
import re, sys
for name in {missing!r}:
    sys.modules[name] = None                       # `import name` now raises ImportError
from d2lmod.widgets import figures
figures_seen = []
_plot = figures.plot
def plot(*args, **kwargs):
    p = _plot(*args, **kwargs)
    assert p._repr_png_() is None and p._repr_svg_().startswith('<svg'), 'no SVG without matplotlib'
    figures_seen.append(p)
    return p
figures.plot = plot
source = open({path!r}, encoding='utf-8').read()
namespace = {{'__name__': '__main__'}}
for cell in re.split(r'^# %%.*$', source, flags=re.M)[1:]:
    exec(compile(cell, {path!r}, 'exec'), namespace)
print('figures:', len(figures_seen))
"""


def test_lessons_never_import_the_optional_packages_themselves():
    pattern = re.compile(rf'^\s*(import|from)\s+({"|".join(MISSING)})\b', re.M)
    for lesson in LESSONS:
        code = (SRC / f'{lesson}.py').read_text(encoding='utf-8')
        assert not pattern.search(code), f'{lesson} imports {pattern.search(code)[2]}, which a browser may lack'


@pytest.mark.slow  # every lesson once more, in a fresh Python: seconds each, minutes in all
@pytest.mark.parametrize('lesson', LESSONS)
def test_lesson_runs_without_the_optional_packages(lesson, tmp_path):
    path = SRC / f'{lesson}.py'
    proc = subprocess.run([sys.executable, '-c', RUNNER.format(missing=MISSING, path=str(path))],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)  # lesson 3 writes files
    assert proc.returncode == 0, f'{lesson} failed without {", ".join(MISSING)}:\n{proc.stderr[-3000:]}'
    assert 'figures:' in proc.stdout
