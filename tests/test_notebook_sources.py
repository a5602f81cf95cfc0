"""Each lesson notebook is built from its source in notebooks/src: the two must not drift apart."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / 'notebooks'
_spec = importlib.util.spec_from_file_location('build', NOTEBOOKS / 'src' / 'build.py')
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = sorted(p for p in (NOTEBOOKS / 'src').glob('*.py') if p.name != 'build.py')


def test_every_notebook_has_a_source_and_back():
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS.glob('*.ipynb')}


@pytest.mark.parametrize('src', SOURCES, ids=lambda p: p.stem)
def test_notebook_cells_match_their_source(src):
    expected = build.parse(src.read_text(encoding='utf-8'), src.name)
    stored = nbformat.read(NOTEBOOKS / (src.stem + '.ipynb'), as_version=4).cells
    assert [(c.cell_type, c.source, c.metadata.get('tags', [])) for c in stored] == \
           [(c.cell_type, c.source, c.metadata.get('tags', [])) for c in expected], \
        f"notebooks/{src.stem}.ipynb differs from its source: run ./dev.sh execute {src.stem}"
    code = [c for c in stored if c.cell_type == 'code']
    assert all(c.execution_count is not None for c in code), \
        f"notebooks/{src.stem}.ipynb has unexecuted cells: run ./dev.sh execute {src.stem}"
