"""Build lesson notebooks from their sources in jupytext "percent" format (nbformat only, no jupytext).

    python notebooks/src/build.py                    # every notebooks/src/*.py but this one -> notebooks/*.ipynb
    python notebooks/src/build.py 01_layers_and_modules.py ...   # just these (a path or a bare file name)
    python notebooks/src/build.py --execute [...]    # then run them in place with notebooks/execute.py

The format, one cell per marker line:

    # %%                                   a code cell; the lines below it, as they are
    # %% tags=["nbval-ignore-output"]      a code cell with cell tags
    # %% [markdown]                        a markdown cell; each line below loses its leading "# " (or "#")

Anything above the first marker (e.g. a module docstring for the editor) is not part of the notebook.
Blank lines at the start and end of a cell are dropped. Cell ids are derived from the file name and the
cell's position, so building twice gives the same file. The notebook is written without outputs: run it
(--execute, or notebooks/execute.py) before committing, since nbval compares against stored outputs.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SRC = Path(__file__).resolve().parent
NOTEBOOKS = SRC.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LANGUAGE_INFO = {
    "name": "python",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
# "# %%", optionally "[markdown]", optionally key=value options (only tags=[...] is used)
MARKER = re.compile(r'^# %%(?P<kind>\s*\[(?:markdown|md)\])?(?P<options>.*)$')
TAGS = re.compile(r'\btags\s*=\s*(\[[^\]]*\])')


def _uncomment(line: str) -> str:
    """A markdown line as written in the source ('# text', '#' or blank) -> 'text'."""
    if not line.strip():
        return ''
    if line.startswith('# '):
        return line[2:]
    if line.startswith('#'):
        return line[1:]
    raise ValueError(f"markdown lines must start with '#', got {line!r}")


def _trim(lines: list) -> str:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return '\n'.join(lines)


def parse(text: str, name: str = '<source>') -> list:
    """The cells of a percent-format source, as nbformat cells."""
    cells, current = [], None  # current: (kind, tags, lines, line number of the marker)
    for number, line in enumerate(text.splitlines(), 1):
        match = MARKER.match(line)
        if match:
            if current is not None:
                cells.append(current)
            tags_match = TAGS.search(match['options'])
            try:
                tags = json.loads(tags_match[1]) if tags_match else []
            except json.JSONDecodeError:
                raise ValueError(f"{name}:{number}: tags must be a JSON list of strings, e.g. "
                                 f'tags=["nbval-ignore-output"]; got {tags_match[1]}') from None
            current = ('markdown' if match['kind'] else 'code', tags, [], number)
        elif current is not None:
            current[2].append(line)
    if current is not None:
        cells.append(current)

    out = []
    for kind, tags, lines, number in cells:
        try:
            source = _trim([_uncomment(l) for l in lines] if kind == 'markdown' else lines)
        except ValueError as error:
            raise ValueError(f"{name}: the markdown cell at line {number}: {error}") from None
        if not source:
            raise ValueError(f"{name}: the cell at line {number} is empty")
        cell = new_markdown_cell(source) if kind == 'markdown' else new_code_cell(source)
        if tags:
            cell.metadata['tags'] = tags
        out.append(cell)
    return out


def build(src: Path) -> Path:
    """Write notebooks/<src stem>.ipynb from src; return its path."""
    cells = parse(src.read_text(encoding='utf-8'), src.name)
    if not cells:
        raise ValueError(f"{src.name}: no cells (cells start with a '# %%' line)")
    for i, cell in enumerate(cells):
        cell.id = f'{src.stem[:50]}-{i:03d}'.replace('.', '-')  # stable ids: rebuilding changes nothing
    nb = new_notebook(cells=cells, metadata={'kernelspec': dict(KERNELSPEC),
                                             'language_info': dict(LANGUAGE_INFO)})
    nbformat.validate(nb)
    out = NOTEBOOKS / (src.stem + '.ipynb')
    nbformat.write(nb, out)
    return out


def sources(names: list) -> list:
    """The sources named on the command line (paths or bare names in notebooks/src), else all of them."""
    if not names:
        found = sorted(p for p in SRC.glob('*.py') if p.name != Path(__file__).name)
        if not found:
            raise SystemExit(f"build.py: no sources in {SRC}")
        return found
    paths = []
    for name in names:
        path = Path(name)
        path = path if path.suffix == '.py' and path.exists() else SRC / (path.stem + '.py')  # NN_x.ipynb works too
        if not path.exists():
            raise SystemExit(f"build.py: no source {name!r} (looked in . and {SRC})")
        paths.append(path.resolve())
    return paths


def main(argv: list) -> int:
    run = '--execute' in argv
    built = []
    for src in sources([a for a in argv if a != '--execute']):
        built.append(build(src))
        print(f"built {built[-1].relative_to(NOTEBOOKS.parent)}", flush=True)
    if run:
        spec = importlib.util.spec_from_file_location('execute', NOTEBOOKS / 'execute.py')
        execute = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(execute)
        return execute.main([str(p) for p in built])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
