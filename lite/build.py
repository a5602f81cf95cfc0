"""Build every lesson as a static JupyterLite site in build/lite/ (./dev.sh lite runs it with .venv-lite's Python).

The site runs in the browser with no server and no internet: JupyterLite's front end, and the xeus-python
kernel, a Python 3.11 compiled to WebAssembly whose environment (NumPy included) ships inside the site as
.tar.gz packages. This script adds the pure-Python packages the lessons need to that environment (d2lmod built
from this checkout, ipywidgets), and gives the site copies of notebooks/*.ipynb set to that kernel.

    .venv-lite/bin/python lite/build.py [--output build/lite] [--force]

Without --force an existing build whose inputs (lessons, package, this folder) are unchanged is kept.
Only the standard library is imported at the top, so tests can import inputs_hash() from any Python.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LITE = REPO / 'lite'
OUTPUT = REPO / 'build' / 'lite'
CACHE = REPO / 'build' / 'lite-cache'   # downloaded wheels, kept between builds
STAMP = 'd2lmod-lite.json'              # in the site: what it was built from, and what it runs
KERNELSPEC = {'name': 'xeus-python', 'display_name': 'Python 3.11 (XPython, in the browser)', 'language': 'python'}
STATIC = Path('extensions') / '@jupyterlite' / 'xeus-python-kernel' / 'static'
# Pure-Python packages for the kernel, from PyPI. Not `comm`: the kernel has its own, which talks to the page.
KERNEL_WHEELS = ['ipywidgets==8.1.9']
# Everything the site is made from: a change to any of these makes a new build necessary.
INPUTS = ['notebooks/*.ipynb', 'd2lmod/**/*.py', 'd2lmod/data/*', 'widgets/**/*.py', 'pyproject.toml',
          'lite/*.py', 'lite/*.txt', 'lite/*.json']


def note(text: str) -> None:
    print(f'lite: {text}', file=sys.stderr, flush=True)


def lessons() -> list:
    """Every lesson, so a new notebooks/NN_*.ipynb is in the next build without a change here."""
    return sorted((REPO / 'notebooks').glob('*.ipynb'))


def inputs_hash() -> str:
    """sha256 over the names and bytes of every input file (INPUTS), in a fixed order."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in INPUTS for p in REPO.glob(pattern) if p.is_file() and '__pycache__' not in p.parts})
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b'\0' + path.read_bytes() + b'\0')
    return digest.hexdigest()


def is_fresh(output: Path = OUTPUT) -> bool:
    """True when output holds a complete build of the current inputs."""
    try:
        return json.loads((output / STAMP).read_text())['inputs'] == inputs_hash()
    except (OSError, ValueError, KeyError):
        return False


def run(*args, cwd: Path) -> None:
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f'lite: `{" ".join(map(str, args))}` failed ({result.returncode}):\n'
                         f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}')


def site_contents(into: Path) -> list:
    """Copies of the lessons, each set to the browser kernel (else JupyterLite asks which kernel to use)."""
    into.mkdir(parents=True)
    names = []
    for path in lessons():
        notebook = json.loads(path.read_text())
        notebook.setdefault('metadata', {})['kernelspec'] = dict(KERNELSPEC)
        (into / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + '\n')
        names.append(path.name)
    return names


def wheels(tmp: Path) -> list:
    """d2lmod built from this checkout (a copy, so the build leaves nothing here), and the cached PyPI wheels."""
    source = tmp / 'd2lmod-source'
    source.mkdir()
    for name in ('d2lmod', 'widgets'):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy2(REPO / name, source / name)
    out = tmp / 'wheels'
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', out, source, cwd=tmp)
    CACHE.mkdir(parents=True, exist_ok=True)
    for requirement in KERNEL_WHEELS:
        name, version = requirement.split('==')
        if not list(CACHE.glob(f'{name}-{version}-*.whl')):
            note(f'downloading {requirement} (pure Python) into {CACHE.relative_to(REPO)}')
            run(sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '-d', CACHE,
                requirement, cwd=tmp)
        out_wheel = list(CACHE.glob(f'{name}-{version}-*.whl'))
        if not out_wheel or not out_wheel[0].name.endswith('-py3-none-any.whl'):
            raise SystemExit(f'lite: no pure-Python wheel of {requirement} in {CACHE}')
        shutil.copy2(out_wheel[0], out)
    return sorted(out.glob('*.whl'))


def site_packages(static: Path, meta: dict) -> str:
    """Where the kernel's environment keeps packages ('lib/python3.11/site-packages'), read from one of them."""
    traitlets = next(p for p in meta['packages'] if p['name'] == 'traitlets')
    with tarfile.open(static / traitlets['filename']) as archive:
        for name in archive.getnames():
            if name.endswith('/site-packages/traitlets/__init__.py'):
                return name[:-len('/traitlets/__init__.py')]
    raise SystemExit('lite: cannot find site-packages in the kernel environment (another jupyterlite-xeus-python?)')


def add_wheel(wheel: Path, static: Path, meta: dict, prefix: str) -> dict:
    """Repack a pure-Python wheel as the kernel expects a package: a .tar.gz of prefix/<the wheel's files>."""
    name, version = wheel.name.split('-')[:2]
    stem = f'{name}-{version}-py_d2lmod'
    buffer = io.BytesIO()
    with zipfile.ZipFile(wheel) as zipped, tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        for item in sorted(zipped.infolist(), key=lambda i: i.filename):
            if item.is_dir():
                continue
            data = zipped.read(item)
            info = tarfile.TarInfo(f'{prefix}/{item.filename}')
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    (static / f'{stem}.tar.gz').write_bytes(buffer.getvalue())
    entry = {'name': name.lower().replace('_', '-'), 'version': version, 'build': 'py_d2lmod',
             'filename_stem': stem, 'filename': f'{stem}.tar.gz'}
    meta['packages'] = [p for p in meta['packages'] if p['name'] != entry['name']] + [entry]
    return entry


def build(output: Path) -> dict:
    started = time.monotonic()
    digest = inputs_hash()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='d2lmod-lite-') as name:
        tmp = Path(name)
        names = site_contents(tmp / 'contents')
        shutil.copy2(LITE / 'jupyter-lite.json', tmp / 'jupyter-lite.json')
        # settings: every cell drawn at once (JupyterLab 4.0's windowed notebook throws on opening a lesson)
        shutil.copy2(LITE / 'overrides.json', tmp / 'overrides.json')
        site = tmp / 'site'
        note(f'building the site of {len(names)} lessons (jupyter lite build)')
        # jupyterlite-core 0.2's command line is `jupyter lite`, next to this Python
        run(Path(sys.executable).parent / 'jupyter', 'lite', 'build', '--lite-dir', tmp, '--contents', tmp / 'contents',
            '--output-dir', site, '--disable-addons', 'jupyterlite-xeus-python', cwd=tmp)
        static = site / STATIC
        meta_path = static / 'empack_env_meta.json'
        if not meta_path.exists():
            raise SystemExit(f'lite: the build has no {STATIC}/empack_env_meta.json: is jupyterlite-xeus-python '
                             'installed in this Python (.venv-lite)?')
        meta = json.loads(meta_path.read_text())
        prefix = site_packages(static, meta)
        added = [add_wheel(wheel, static, meta, prefix) for wheel in wheels(tmp)]
        meta_path.write_text(json.dumps(meta, indent=2) + '\n')
        versions = {p['name']: p['version'] for p in meta['packages']}
        size = sum(p.stat().st_size for p in site.rglob('*') if p.is_file())
        stamp = {'inputs': digest, 'lessons': names, 'python': versions.get('python'),
                 'numpy': versions.get('numpy'), 'added': {p['name']: p['version'] for p in added},
                 'bytes': size, 'seconds': round(time.monotonic() - started, 1)}
        (site / STAMP).write_text(json.dumps(stamp, indent=2) + '\n')
        # replace the old site in one step: a half-written site is never left at output
        old = output.with_name(output.name + '.old')
        shutil.rmtree(old, ignore_errors=True)
        if output.exists():
            output.rename(old)
        shutil.move(str(site), str(output))
        shutil.rmtree(old, ignore_errors=True)
    return stamp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', type=Path, default=OUTPUT, help='where the site goes (default: build/lite)')
    parser.add_argument('--force', action='store_true', help='build even when the site is up to date')
    args = parser.parse_args()
    output = args.output.resolve()
    if not args.force and is_fresh(output):
        stamp = json.loads((output / STAMP).read_text())
        note(f'{output} is up to date (use --force to build again)')
    else:
        stamp = build(output)
        note(f'built in {stamp["seconds"]} s')
    note(f'{len(stamp["lessons"])} lessons, Python {stamp["python"]}, NumPy {stamp["numpy"]}, '
         f'{stamp["bytes"] / 1e6:.0f} MB; serve it with: python3 -m http.server -d {os.path.relpath(output)} '
         '--bind 127.0.0.1 8000, then open http://127.0.0.1:8000/lab/index.html')


if __name__ == '__main__':
    main()
