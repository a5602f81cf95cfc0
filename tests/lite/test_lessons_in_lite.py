"""Every lesson in the offline in-browser site (build/lite/, JupyterLite + xeus-python) in headless Chromium.

The site is served on loopback and the browser may reach nothing else. Each lesson is opened, its stored outputs
cleared, and every cell run by the Python that runs inside the page. Checked: every code cell ran, no cell shows
an error or stderr (except `raises-exception` cells, which must show theirs), every widget a cell outputs
renders (and every cell that shows a widget in the stored notebook shows one here too), GraphView says the
built-in drawing is used rather than how to install Graphviz, and not one request went to another host.
Screenshots go to test-artifacts/lite/.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

# browser too: every command that leaves the browser tests out (the quick loop) leaves these out as well
pytestmark = [pytest.mark.lite, pytest.mark.browser]

NOTEBOOKS = Path(__file__).resolve().parents[2] / 'notebooks'
LESSONS = sorted(path.name for path in NOTEBOOKS.glob('*.ipynb'))  # the site holds every notebook
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
KERNEL_SECONDS = 120   # the in-browser Python loads (~66 MB) and starts: ~15 s here
RUN_SECONDS = 420      # all cells of one lesson (WebAssembly NumPy is slower than native)
WAIT_MS = 15_000       # the longest a widget may take to appear

# the JupyterLab browser tests' page scripts: find the lesson's panel when its kernel is idle, run all cells
LAB_TEST = Path(__file__).resolve().parents[1] / 'browser' / 'test_lessons_in_lab.py'
_spec = importlib.util.spec_from_file_location('d2lmod_lab_test', LAB_TEST)
_lab_test = sys.modules['d2lmod_lab_test'] = importlib.util.module_from_spec(_spec)  # (its dataclass needs it)
_spec.loader.exec_module(_lab_test)
READY, IDLE, RUN_ALL = _lab_test.READY, _lab_test.IDLE, _lab_test.RUN_ALL
CELLS = """() => lesson.content.widgets.map((cell, index) => {
    if (cell.model.type !== 'code') return null;
    const outputs = Array.from({length: cell.model.outputs.length}, (_, k) => cell.model.outputs.get(k).toJSON());
    return {index, count: cell.model.executionCount,
            source: cell.model.sharedModel.getSource().split('\\n')[0],
            errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
            stderr: outputs.filter(o => o.output_type === 'stream' && o.name === 'stderr').map(o => o.text),
            widgets: outputs.filter(o => o.data && o.data['%s']).length};
})""" % WIDGET_MIME


def stored(name: str) -> dict:
    """{cell index: (tags, shows a widget)} of the code cells of the notebook as saved."""
    cells = json.loads((NOTEBOOKS / name).read_text())['cells']
    return {i: (c.get('metadata', {}).get('tags', []),
                any(WIDGET_MIME in o.get('data', {}) for o in c.get('outputs', [])))
            for i, c in enumerate(cells) if c['cell_type'] == 'code'}


def run_lesson(context, origin: str, name: str, artifacts: Path):
    """Open name in the site, run all its cells, wait for its widgets; (page, report of every code cell)."""
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda error: errors.append(f'{error} {(error.stack or "")[:600]}'))
    try:
        page.goto(f'{origin}/lab/index.html?path={name}')
        page.wait_for_function(READY, arg=name, timeout=KERNEL_SECONDS * 1000, polling=500)
        if page.evaluate(RUN_ALL, RUN_SECONDS * 1000) == 'timeout':
            raise AssertionError(f'{name}: cells still running after {RUN_SECONDS} s')
        page.wait_for_function(IDLE, timeout=WAIT_MS)
        report = [cell for cell in page.evaluate(CELLS) if cell]
        for cell in report:
            if cell['widgets']:
                with contextlib.suppress(Exception):  # the test below reports a widget that never came
                    widget_of(page, cell['index']).wait_for(timeout=WAIT_MS)
        page.evaluate('() => jupyterapp.shell.collapseLeft()')
        page.screenshot(path=artifacts / f'{Path(name).stem}.png')  # the lesson's top, as a student opens it
        for cell in report:   # and every widget it drew, scrolled into view
            if cell['widgets']:
                with contextlib.suppress(Exception):
                    output = page.locator('.jp-Notebook .jp-Cell').nth(cell['index']).locator('.jp-OutputArea')
                    output.screenshot(path=artifacts / f'{Path(name).stem}-cell{cell["index"]}.png', timeout=5000)
        return page, report, errors
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=artifacts / f'{Path(name).stem}-failed.png')
        page.close()
        raise


def widget_of(page, index: int):
    return page.locator('.jp-Notebook .jp-Cell').nth(index).locator('.jp-OutputArea-output > .jupyter-widgets').first


def test_the_site_ships_python_numpy_and_d2lmod(site):
    """The build's own record: every lesson is in it, and so are the packages the lessons import."""
    assert site['lessons'] == LESSONS
    assert site['python'].startswith('3.') and site['numpy']
    assert {'d2lmod', 'ipywidgets'} <= set(site['added'])


# A cell run only where PyTorch or JAX is installed (lesson 1's `if torch is not None:`, after
# d2lmod.widgets.frameworks.optional said what is missing) shows nothing in the site, which cannot have them.
OPTIONAL_GUARD = re.compile(r'if \w+ is not None:')


@pytest.mark.parametrize('name', LESSONS)
def test_lesson_runs_offline_in_the_browser(offline, server, artifacts, name):
    from playwright.sync_api import expect
    page, report, page_errors = run_lesson(offline.context, server, name, artifacts)
    try:
        problems, saved = [], stored(name)
        for cell in report:
            where = f'cell {cell["index"]} ({cell["source"]})'
            tags, had_widget = saved.get(cell['index'], ([], False))
            if cell['count'] is None:
                problems.append(f'{where} did not run')
            if 'raises-exception' in tags:
                if not cell['errors']:
                    problems.append(f'{where} is tagged raises-exception but shows no error')
            elif cell['errors'] or cell['stderr']:
                problems.append(f'{where} shows an error or stderr: {(cell["errors"] or cell["stderr"])[0][-500:]}')
            if had_widget and not cell['widgets'] and not OPTIONAL_GUARD.match(cell['source']):
                problems.append(f'{where} showed a widget in the saved notebook but none here')
            if cell['widgets']:
                widget = widget_of(page, cell['index'])
                try:
                    expect(widget).to_be_visible(timeout=WAIT_MS)
                    output = page.locator('.jp-Notebook .jp-Cell').nth(cell['index']).locator('.jp-OutputArea')
                    for wrong in ('Loading widget', 'Error displaying widget', '(children=', ' failed:',
                                  'apt-get install'):
                        expect(output).not_to_contain_text(wrong, timeout=500)
                except AssertionError as error:
                    problems.append(f'{where}: its widget does not render: {str(error).splitlines()[0]}')
        problems += [f'JavaScript error in the page: {error}' for error in page_errors]
        problems += [f'a request to another host was needed (and refused): {url}' for url in offline.refused]
        assert not problems, f'{name}:\n' + '\n'.join(problems)
    finally:
        with contextlib.suppress(Exception):
            page.evaluate('() => lesson.sessionContext.shutdown()')
        page.close()


def test_the_gate_refuses_other_hosts(probe, server):
    """The check above can fail: a page of the site that asks another host gets nothing, and it is recorded."""
    page = probe.context.new_page()
    page.goto(f'{server}/jupyter-lite.json')
    got = page.evaluate("""async () => {
        try { await fetch('https://cdn.jsdelivr.net/pyodide/v0.27.0/full/pyodide.js'); return 'loaded'; }
        catch (error) { return 'refused'; }
    }""")
    assert got == 'refused'
    assert probe.refused == ['https://cdn.jsdelivr.net/pyodide/v0.27.0/full/pyodide.js']


def test_no_request_left_the_loopback_server(offline):
    """Runs last in this file: over all lessons, not one request went to a host other than the site's."""
    assert not offline.refused, '\n'.join(offline.refused[:20])
