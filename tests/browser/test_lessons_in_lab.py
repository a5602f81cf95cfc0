"""The lessons as a student sees them: each notebook opened in JupyterLab in headless Chromium, every cell run.

nbval proves the kernel side; these tests look at the page: no cell shows an error, every visualiser renders
as a widget (not as its text fallback), the chimera's tree and parameter table show the right names and
counts, graphs are drawn by Graphviz, and the Explorer's buttons go to the kernel and back. A screenshot of
every notebook (and of each Explorer after its buttons were pressed) is saved in the artifacts folder.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / 'notebooks'
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
RUN_SECONDS = 240     # the longest a lesson's cells may take together (lesson 4 trains an MLP live)
WAIT_MS = 15_000      # the longest a widget may take to appear or to answer a click
VIEWPORT = {'width': 1280, 'height': 900}
MAX_HEIGHT = 30_000   # the tallest screenshot of a whole notebook, in pixels

# ---- JavaScript run in the page (JupyterLab is reachable as window.jupyterapp: --expose-app-in-browser) ----
READY = """(name) => {
    const app = window.jupyterapp;
    const panel = app && Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === name);
    const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!kernel || kernel.status !== 'idle' || !panel.context.isReady) return false;
    window.lesson = panel;
    return true;
}"""
IDLE = "() => window.lesson.sessionContext.session.kernel.status === 'idle'"
RUN_ALL = """async (ms) => {
    jupyterapp.shell.activateById(lesson.id);
    await jupyterapp.commands.execute('notebook:clear-all-cell-outputs');  // no stored output can pass for a new one
    const late = new Promise(resolve => setTimeout(() => resolve('timeout'), ms));
    return await Promise.race([jupyterapp.commands.execute('notebook:run-all-cells'), late]);
}"""
CELLS = """() => lesson.content.widgets.map(cell => {
    if (cell.model.type !== 'code') return null;
    const outputs = Array.from({length: cell.model.outputs.length}, (_, k) => cell.model.outputs.get(k).toJSON());
    const shown = cell.node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    return {count: cell.model.executionCount,
            errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
            stderr: Array.from(shown, node => node.textContent.trim())};
})"""
OVERFLOW = """() => {  // how much taller the notebook's content is than its scrolling pane
    const pane = lesson.content.node.querySelector('.jp-WindowedPanel-outer') || lesson.content.node;
    return pane.scrollHeight - pane.clientHeight;
}"""


@dataclass
class Cell:
    """A code cell as stored in the .ipynb file."""
    index: int        # position among all cells, markdown included (as in JupyterLab)
    source: str
    tags: list
    widget: str       # the visualiser class its stored output shows ('Explorer', ...), or ''
    error: str        # the exception name a `raises-exception` cell shows, or ''

    def __str__(self) -> str:
        return f'cell {self.index} ({self.source.splitlines()[0] if self.source else "empty"})'


def read_cells(path: Path) -> list:
    cells = []
    for index, cell in enumerate(json.loads(path.read_text())['cells']):
        if cell['cell_type'] != 'code':
            continue
        outputs = cell.get('outputs', [])
        widgets = [re.match(r'\w+', ''.join(o['data']['text/plain']))[0]  # 'Explorer(children=...' -> 'Explorer'
                   for o in outputs if WIDGET_MIME in o.get('data', {})]
        errors = [o['ename'] for o in outputs if o['output_type'] == 'error']
        cells.append(Cell(index, ''.join(cell['source']), cell.get('metadata', {}).get('tags', []),
                          widgets[0] if widgets else '', errors[0] if errors else ''))
    return cells


LESSONS = {path.stem: read_cells(path) for path in sorted(NOTEBOOKS.glob('[0-9][0-9]_*.ipynb'))}
WITH_WIDGETS = [stem for stem, cells in LESSONS.items() if any(c.widget for c in cells)]
EXPLORERS = [pytest.param(stem, c.index, id=f'{stem}-cell{c.index}')
             for stem, cells in LESSONS.items() for c in cells if c.widget == 'Explorer']


class Lesson:
    """One lesson open in JupyterLab with all its cells run; its screenshot taken."""

    def __init__(self, lab, browser, stem: str, artifacts: Path):
        self.stem, self.cells = stem, LESSONS[stem]
        self.page = browser.new_page(viewport=VIEWPORT)
        self.page_errors = []
        self.page.on('pageerror', lambda error: self.page_errors.append(str(error)))
        try:
            self.page.goto(f'{lab.url}/lab/tree/{stem}.ipynb?reset')
            self.page.wait_for_function(READY, arg=f'{stem}.ipynb', timeout=90_000)
            if self.page.evaluate(RUN_ALL, RUN_SECONDS * 1000) == 'timeout':
                raise AssertionError(f'{stem}: cells still running after {RUN_SECONDS} s')
            self.page.wait_for_function(IDLE, timeout=WAIT_MS)
            self.report = self.page.evaluate(CELLS)
            for cell in self.widget_cells():  # widgets appear 0.1-1 s after their cell ran
                try:
                    self.widget(cell.index).wait_for(timeout=WAIT_MS)
                except Exception:  # Playwright's TimeoutError: test_every_visualiser_renders_as_a_widget reports it
                    pass
            self.screenshot(artifacts / f'{stem}.png')
        except Exception:
            with contextlib.suppress(Exception):  # the picture helps; the error above is what matters
                self.page.screenshot(path=artifacts / f'{stem}-failed.png')
            self.page.close()
            raise

    def widget_cells(self) -> list:
        return [c for c in self.cells if c.widget]

    def cell_with(self, source: str) -> Cell:
        found = [c for c in self.cells if source in c.source]
        assert found, f'{self.stem} has no code cell containing {source!r} any more: update this test'
        return found[0]

    def output(self, index: int):
        return self.page.locator('.jp-Notebook .jp-Cell').nth(index).locator('.jp-OutputArea')

    def widget(self, index: int):
        """The top widget a cell's output shows."""
        return self.output(index).locator('.jp-OutputArea-output > .jupyter-widgets').first

    def screenshot(self, path: Path) -> None:
        """The whole notebook in one picture: the notebook scrolls inside the page, so grow the page to hold it."""
        self.page.evaluate('() => jupyterapp.shell.collapseLeft()')
        for _ in range(5):  # cells get their real heights once shown: measure again
            missing = self.page.evaluate(OVERFLOW)
            height = self.page.viewport_size['height']
            if missing <= 0 or height >= MAX_HEIGHT:
                break
            self.page.set_viewport_size({'width': VIEWPORT['width'], 'height': min(height + missing, MAX_HEIGHT)})
            self.page.wait_for_timeout(300)
        self.page.screenshot(path=path)

    def close(self) -> None:
        """Shut the kernel down and close the page, without saving the notebook."""
        try:
            self.page.evaluate('() => lesson.sessionContext.shutdown()')
        finally:
            self.page.close()


class Lessons:
    """Each lesson is opened and run once, by the first test that asks for it; later tests look at the same page."""

    def __init__(self, lab, browser, artifacts: Path):
        self.lab, self.browser, self.artifacts, self.opened = lab, browser, artifacts, {}

    def __call__(self, stem: str) -> Lesson:
        if stem not in self.opened:
            try:
                self.opened[stem] = Lesson(self.lab, self.browser, stem, self.artifacts)
            except Exception as error:
                self.opened[stem] = error
                raise
        lesson = self.opened[stem]
        if isinstance(lesson, Exception):
            pytest.fail(f'{stem} could not be run in JupyterLab: {lesson}', pytrace=False)
        return lesson

    def close(self) -> None:
        while self.opened:
            lesson = self.opened.popitem()[1]
            if isinstance(lesson, Lesson):
                lesson.close()


@pytest.fixture(scope='module')
def lessons(lab, browser, artifacts):
    opened = Lessons(lab, browser, artifacts)
    yield opened
    opened.close()


def expect(*args, **kwargs):
    from playwright.sync_api import expect as playwright_expect  # imported late: the fixtures skip without it
    return playwright_expect(*args, **kwargs)


# ---- every cell ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('stem', LESSONS)
def test_every_cell_runs_without_an_error(lessons, stem):
    """Every code cell ran; none shows an error or stderr, except raises-exception cells, which show theirs."""
    lesson, problems = lessons(stem), []
    for cell in lesson.cells:
        got = lesson.report[cell.index]
        if got['count'] is None:
            problems.append(f'{cell} did not run')
        if 'raises-exception' in cell.tags:
            expected = cell.error or 'an error'
            if not any(e.startswith(cell.error) for e in got['errors']) or not got['stderr']:
                problems.append(f'{cell} is tagged raises-exception but does not show {expected}: {got["errors"]}')
        elif got['errors'] or got['stderr']:
            problems.append(f'{cell} shows an error or a warning: {got["errors"] or got["stderr"][0][-500:]}')
    assert not problems, '\n'.join(problems)


# ---- every visualiser --------------------------------------------------------------------------------------
def check_module_tree(widget) -> None:
    expect(widget).to_contain_text('unique parameters (each counted once)')
    expect(widget.locator('select option').first).to_be_attached()


def check_grad_flow(widget) -> None:
    expect(widget).to_contain_text("of each parameter's gradient")


def check_graph_view(widget) -> None:
    expect(widget.locator('.widget-html svg g.node').first).to_be_visible()  # drawn by Graphviz
    expect(widget).to_contain_text(re.compile(r'\d+ ops · \d+ nodes shown'))
    expect(widget).not_to_contain_text('is not installed')


def check_explorer(widget) -> None:
    for name in ('forward', 'backward', 'step', 'zero_grad', 'modules', 'gradients', 'graph'):  # the last 3: tabs
        expect(widget.get_by_role('button', name=name, exact=True)).to_be_visible()
    expect(widget).to_contain_text(re.compile(r'loss \S+, \d+ values? recorded'))


CHECKS = {'ModuleTree': check_module_tree, 'GradFlow': check_grad_flow, 'GraphView': check_graph_view,
          'Explorer': check_explorer,
          'ForeignExplorer': check_explorer}  # lesson 1.8's Explorer of a PyTorch or Flax model: the same controls


@pytest.mark.parametrize('stem', WITH_WIDGETS)
def test_every_visualiser_renders_as_a_widget(lessons, stem):
    """Each cell whose stored output is a widget shows that widget, with its content, not its text fallback."""
    lesson, problems = lessons(stem), []
    for cell in lesson.widget_cells():
        output, widget = lesson.output(cell.index), lesson.widget(cell.index)
        try:
            expect(widget).to_be_visible(timeout=WAIT_MS)
            for wrong in ('Loading widget', 'Error displaying widget', f'{cell.widget}(children='):
                expect(output).not_to_contain_text(wrong, timeout=500)
            CHECKS[cell.widget](widget)
            expect(widget).not_to_contain_text(' failed:', timeout=500)  # an error a widget callback caught
        except AssertionError as error:
            problems.append(f'{cell}, a {cell.widget}: {str(error).splitlines()[0]}')
    problems += [f'JavaScript error in the page: {error}' for error in lesson.page_errors]
    assert not problems, '\n'.join(problems)


# ---- the chimera (lesson 1) ----------------------------------------------------------------------------------
# after its first call a LazyLinear is a Linear (PyTorch's class swap), so the tree names Linear
CHIMERA_TREE = ['▾ (model) Sequential · 4,712', '▾ 0 NestMLP · 3,952', '▸ net Sequential · 3,424',
                '· linear Linear · 528', '· 1 Linear · 340', '▾ 2 FixedHiddenMLP · 420 [plain tensor]',
                '· linear Linear · 420 [called]']


def test_chimera_tree_and_parameter_table(lessons):
    """Lesson 1's Explorer(chimera, X): the module tree, totals, notes and 2.linear's parameter table."""
    lesson = lessons('01_layers_and_modules')
    explorer = lesson.widget(lesson.cell_with('Explorer(chimera, X)').index)
    explorer.get_by_role('button', name='modules', exact=True).click()
    tree = explorer.locator('.widget-select select')
    expect(tree.locator('option')).to_have_count(len(CHIMERA_TREE))
    assert [' '.join(text.split()) for text in tree.locator('option').all_inner_texts()] == CHIMERA_TREE
    for text in ['Sequential run on input (2, 20)', 'unique parameters (each counted once): 4,712',
                 'counted once per call: 5,132', '400 numbers in plain tensor attributes',
                 '2.rand_weight: a plain tensor attribute of shape (20, 20)', '2.linear: ran 2 times in one forward']:
        expect(explorer).to_contain_text(text)

    tree.select_option(index=CHIMERA_TREE.index('· linear Linear · 420 [called]'))  # the kernel redraws
    details = explorer.locator('.widget-html', has_text='parameters in this subtree')
    expect(details).to_contain_text('2.linear Linear(in_features=20, out_features=20, bias=True)',
                                    timeout=WAIT_MS)
    expect(details).to_contain_text('420 parameters in this subtree, 420 its own; ran 2 times in the last forward')
    grad_norm = re.compile(r'^\d+(\.\d+)?(e[-+]\d+)?$')
    expect(details.locator('tbody tr').nth(0).locator('td')).to_have_text(['weight', '(20, 20)', '400', grad_norm])
    expect(details.locator('tbody tr').nth(1).locator('td')).to_have_text(['bias', '(20,)', '20', grad_norm])

    explorer.get_by_role('button', name='graph', exact=True).click()
    expect(explorer.locator('.widget-html svg g.node').first).to_be_visible()


# ---- the Explorer's buttons ------------------------------------------------------------------------------------
def loss_caption(explorer) -> tuple:
    """(the last loss as shown, how many losses are recorded), read from the Explorer's loss caption."""
    match = re.search(r'loss (\S+), (\d+) values? recorded', explorer.inner_text())
    assert match, f'no loss caption in the Explorer: {explorer.inner_text()[:300]!r}'
    return match[1], int(match[2])


def press(explorer, button: str, status: str) -> None:
    """Click a button and wait until the kernel's answer shows in the status line."""
    explorer.get_by_role('button', name=button, exact=True).click()
    expect(explorer).to_contain_text(re.compile(status), timeout=WAIT_MS)
    expect(explorer).not_to_contain_text(' failed:', timeout=500)


@pytest.mark.parametrize('stem, index', EXPLORERS)
def test_explorer_buttons_change_what_it_shows(lessons, artifacts, stem, index):
    """forward records a loss, backward changes the gradient bars, step changes the weights (the next loss)."""
    lesson = lessons(stem)
    explorer = lesson.widget(index)
    explorer.get_by_role('button', name='gradients', exact=True).click()
    bars = explorer.locator('.widget-html', has_text="of each parameter's gradient")
    expect(bars).to_be_visible()

    loss, recorded = loss_caption(explorer)
    press(explorer, 'forward', r'forward: output')
    expect(explorer).to_contain_text(f'{recorded + 1} values recorded', timeout=WAIT_MS)

    before = bars.inner_text()
    press(explorer, 'backward', r'backward: gradients added into \.grad')
    expect(bars).not_to_have_text(before, timeout=WAIT_MS)  # gradients accumulate: every bar's value grows

    loss, recorded = loss_caption(explorer)
    press(explorer, 'step', r'step \d+: p -= [\d.e-]+ \* p\.grad')
    press(explorer, 'forward', r'forward: output')
    expect(explorer).to_contain_text(f'{recorded + 1} values recorded', timeout=WAIT_MS)
    assert loss_caption(explorer)[0] != loss, f'the loss is still {loss} after a step: the weights did not change'
    explorer.screenshot(path=artifacts / f'{stem}-explorer-cell{index}.png')


# ---- and nothing left behind -------------------------------------------------------------------------------------
def test_the_run_leaves_the_repository_unchanged(lessons, lab, repo_guard):
    """After the kernels and the server are stopped, git status and notebooks/ are as they were before."""
    lessons.close()
    lab.stop()
    assert not repo_guard.changes(), '\n'.join(repo_guard.changes())
