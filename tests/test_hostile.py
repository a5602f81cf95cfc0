"""The visualiser under hostile input: any size, any depth, any name, any number.

A careless student (or a big model) must never see a RecursionError, a cell that runs for a minute, 150 MB
of text, Graphviz's error output, or `width: nan%`. These tests check the structural limits (how many
rows, nodes and characters come out, what the reader is told); the times are measured in
bench/bench_widgets.py, never here.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import d2lmod as dm
from d2lmod import nn
from d2lmod.widgets import Explorer, GradFlow, ModuleTree, draw, extract, graph, render, summary
from d2lmod.widgets.graph_view import EVERY_OP, GraphView

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for bench/models.py
from bench.models import make_nested  # noqa: E402

HAVE_DOT = shutil.which('dot') is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
SVG = '{http://www.w3.org/2000/svg}'


def nested(depth: int):
    """depth modules, each holding a Linear and the next one (bench/models.py)."""
    return make_nested(depth)


@pytest.fixture
def deep_recursion():
    """Running a 5,000-deep forward needs Python's recursion limit raised (the visualiser itself does not)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, 60_000))
    yield
    sys.setrecursionlimit(before)


def no_dot(monkeypatch):
    monkeypatch.setattr(draw, 'dot_available', lambda: False)


def svg_of(html: str) -> ET.Element:
    return ET.fromstring(html[html.index('<svg'):html.rindex('</svg>') + len('</svg>')])


def svg_nodes(html: str) -> int:
    return sum((g.get('class') or '').split()[:1] == ['node'] for g in svg_of(html).iter(SVG + 'g'))


# ---- summaries: bounded, and still adding up ------------------------------------------------------------------
def assert_adds_up(s) -> None:
    """Every module is a row or folded into one; the rows' params are the total."""
    assert sum(1 + r.folded for r in s.rows) == len(s.info.modules)
    assert sum(r.params for r in s.rows) == s.totals.unique


def test_a_summary_of_5000_nested_modules_is_small_folded_and_adds_up():
    s = summary(nested(5000))
    text, html = str(s), s._repr_html_()
    assert len(text) < 100_000 and len(html) < 1_000_000, (len(text), len(html))
    assert_adds_up(s)
    assert max(r.depth for r in s.rows) == render.MAX_DEPTH
    assert f'nested more than {render.MAX_DEPTH} deep are folded' in text
    assert f'(+{len(s.info.modules) - 2 * render.MAX_DEPTH - 1})' in text  # the deepest row holds the rest


def test_explicit_depth_beyond_the_limit_is_folded_too():
    s = summary(nested(100), depth=90)
    assert max(r.depth for r in s.rows) == render.MAX_DEPTH and 'folded' in str(s)
    assert_adds_up(s)


def test_a_long_run_of_identical_rows_is_elided_with_its_sum():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(2000)])
    s = summary(model, dm.randn(2, 4))
    assert len(s.rows) == 4  # the model, the first layer, one line for the rest, the last layer
    assert_adds_up(s)
    assert sum(r.per_call for r in s.rows) == s.totals.per_call
    text = str(s)
    assert '… 1,998 more like the row above (1 … 1998)' in text and '39,960' in text  # 1,998 layers x 20
    assert 'long runs of identical rows' in text


def test_repeated_blocks_keep_their_first_and_last_block():
    blocks = nn.Sequential(*[nn.Sequential(nn.Linear(3, 3), nn.ReLU()) for _ in range(300)])
    s = summary(blocks)
    assert [r.path for r in s.rows][:4] == ['', '0', '0.0', '0.1'] and [r.path for r in s.rows][-3:] == [
        '299', '299.0', '299.1']
    assert len(s.rows) == 8
    assert_adds_up(s)


def test_a_chapter_sized_model_is_not_elided():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(render.MAX_RUN)])
    assert len(summary(model).rows) == render.MAX_RUN + 1


def test_a_wide_model_of_distinct_rows_stops_at_the_row_limit():
    model = nn.Sequential(*[nn.Linear(2, k + 1) for k in range(3000)])  # every row different
    s = summary(model)
    assert len(s.rows) == render.MAX_ROWS
    assert_adds_up(s)
    assert f'stops at {render.MAX_ROWS:,} rows' in str(s)


def test_long_names_are_shortened_everywhere_in_the_summary_and_tree():
    name = 'x' * 10_000
    model = nn.Sequential()
    inner = nn.Sequential()
    inner.add_module(name, nn.Linear(2, 2))
    model.add_module(name, inner)
    model.add_module('b', nn.Linear(2, 2))
    text = str(summary(model))
    assert len(text) < 5_000 and '…' in text
    tree = ModuleTree(model, depth=5)
    assert max(len(label) for label, _ in tree.list.options) < 200


def test_many_notes_are_grouped_and_capped():
    class Holder(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.extra = dm.ones(k + 1)  # a plain tensor attribute: one note each, all different

        def forward(self, x):
            return self.lin(x)
    model = nn.Sequential(*[Holder(k) for k in range(500)])
    text = str(summary(model))
    assert f'{500 - render.MAX_NOTES:,} more notes' in text and len(text) < 200_000


# ---- the graph: linear, bounded, drawable ----------------------------------------------------------------------
def test_the_trace_of_5000_nested_modules_has_no_recursion_limit_and_folds(deep_recursion, monkeypatch):
    model = nested(5000)
    y = model(dm.randn(1, 2)).sum()
    sys.setrecursionlimit(1000)  # tracing and drawing need no deep recursion
    data = graph.trace(y, model)
    assert len(data.clusters) == 10_000 and max(c.depth for c in data.clusters) == 5000
    fit = graph.collapse(data)
    assert max(c.depth for c in fit.clusters) < graph.MAX_DEPTH
    assert graph.op_count(fit) == graph.op_count(data)
    every = graph.fit(data)  # "every op": nests beyond MAX_DEPTH folded, then capped
    assert max(c.depth for c in every.clusters) < graph.MAX_DEPTH and len(every.nodes) <= graph.MAX_DRAWN + 1
    assert any('nested more than' in note for note in every.notes)
    assert len(draw.to_dot(every)) < 200_000
    no_dot(monkeypatch)
    view = GraphView(y, model)
    assert not view.error.value and svg_nodes(view.picture.value) == len(view._view().nodes)
    assert len(view.show.options) <= 3 + 2 * graph.MAX_DEPTH  # only modules a drawing can open (2 per level)


def stack_of_layers(n: int):
    dm.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(3, 3) if k % 2 == 0 else nn.ReLU() for k in range(n)])
    return model, model(dm.randn(2, 3)).sum()


def test_a_10000_layer_model_folds_its_repeated_run_into_one_node(monkeypatch):
    model, y = stack_of_layers(10_000)
    data = graph.trace(y, model)
    view = graph.fit(graph.collapse(data))
    assert len(view.nodes) <= 5
    run = next(n for n in view.nodes if '×5,000 in a row' in n.note)
    assert run.label.startswith('Linear(') and run.label.endswith('→ ReLU') and run.ops == 10_000
    assert graph.op_count(view) == graph.op_count(data)
    no_dot(monkeypatch)
    gv = GraphView(y, model)
    assert svg_nodes(gv.picture.value) == len(view.nodes) and 'repeat one after another' in gv.notes.value
    gv.show.value = EVERY_OP  # 20,000 nodes unfolded: capped, with an "N more" node
    assert svg_nodes(gv.picture.value) <= graph.MAX_DRAWN + 1
    assert 'more nodes' in gv.picture.value and 'stands for the others' in gv.notes.value


def test_5000_ops_outside_any_module_fold_and_cap(monkeypatch):
    x = dm.randn(3, requires_grad=True)
    for k in range(5000):
        x = x.relu() if k % 2 == 0 else x * 1.001 + k
    data = graph.trace(x.sum())
    assert graph.op_count(data) == 7501
    view = graph.fit(data)
    assert len(view.nodes) < 20 and graph.op_count(view) == 7501
    assert any(n.label == 'relu → mul → add' and '×2,500 in a row' in n.note for n in view.nodes)
    capped = graph.cap(data, 50)
    assert len(capped.nodes) == 51 and graph.op_count(capped) == 7501
    more = next(n for n in capped.nodes if n.kind == 'more')
    assert more.label == f'{len(data.nodes) - 50:,} more nodes'
    assert {e.src for e in capped.edges} | {e.dst for e in capped.edges} <= {n.id for n in capped.nodes}
    no_dot(monkeypatch)
    assert svg_nodes(GraphView(x.sum()).picture.value) < 20


def test_the_fold_keeps_inputs_and_shared_parameters_as_their_own_nodes():
    w = nn.Parameter(dm.randn(3, 3))
    x = dm.randn(2, 3)
    y = x
    for _ in range(10):
        y = (y @ w).relu()  # the same parameter feeds every step: it stays a node of its own
    view = graph.fold_repeats(graph.trace(y.sum()))
    kinds = sorted(n.kind for n in view.nodes)
    assert kinds.count('input') == 1 and kinds.count('parameter') == 1
    assert any('×10 in a row' in n.note for n in view.nodes)


# ---- Graphviz: clean labels, a time limit, a fallback that says why ------------------------------------------------
def hostile_names():
    long_name, control = 'n' * 10_000, 'bell\x07tab\tnul\x00esc\x1b[31m\u202eevil'
    model = nn.Sequential()
    model.add_module(long_name, nn.Linear(2, 2))
    model.add_module(control, nn.Linear(2, 2))
    return model, model(dm.randn(1, 2)).sum()


def test_labels_reach_dot_cleaned_and_shortened():
    model, y = hostile_names()
    data = graph.fit(graph.trace(y, model))
    dot = draw.to_dot(data)
    assert max(len(line) for line in dot.splitlines()) < 1000
    assert not any(c in dot for c in '\x07\x00\x1b\u202e')
    assert 'bell\\x07tab\\x09nul\\x00esc\\x1b[31m\\u202eevil' in dot  # shown, not interpreted
    svg = draw.to_svg_fallback(data)
    ET.fromstring(svg)  # control characters would make it invalid XML


@needs_dot
def test_dot_draws_hostile_names_without_falling_back():
    model, y = hostile_names()
    svg, why = draw.render(graph.fit(graph.trace(y, model)))
    assert why == '' and 'Generated by' not in svg
    ET.fromstring(svg)


@pytest.mark.parametrize('failure', ['exit', 'timeout', 'missing'])
def test_when_dot_fails_the_widget_falls_back_and_says_so_in_one_sentence(monkeypatch, failure):
    monkeypatch.setattr(draw, 'dot_available', lambda: True)
    calls = []

    def run(args, **kwargs):
        calls.append(kwargs)
        if failure == 'timeout':
            raise subprocess.TimeoutExpired(args, kwargs['timeout'])
        if failure == 'missing':
            raise FileNotFoundError(args[0])
        return subprocess.CompletedProcess(args, 1, b'', b'Error: syntax error in line 3 near "<"')
    monkeypatch.setattr(subprocess, 'run', run)
    model, y = stack_of_layers(4)
    view = GraphView(y, model)
    assert calls and all(0 < kwargs['timeout'] <= draw.DOT_TIMEOUT for kwargs in calls)
    assert svg_nodes(view.picture.value) > 0 and not view.error.value
    said = view.notes.value
    assert "so this is d2lmod&#39;s own simpler drawing" in said
    assert 'syntax error' not in said and 'CalledProcessError' not in said and 'Traceback' not in said
    if failure == 'timeout':
        assert f'longer than {draw.DOT_TIMEOUT:g} s' in said


# ---- numbers: NaN and inf ------------------------------------------------------------------------------------------
def grads_with(values: dict):
    """A 3-layer model after backward, with some gradients overwritten (path -> value)."""
    dm.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 1))
    model(dm.randn(2, 4)).sum().backward()
    params = dict(model.named_parameters())
    for path, value in values.items():
        params[path].grad._data[...] = value
    return model


@pytest.mark.parametrize('log', [False, True])
@pytest.mark.parametrize('stat', list(render.STATS))
def test_gradflow_draws_the_finite_bars_and_flags_nan_and_inf_in_words(stat, log):
    model = grads_with({'0.weight': np.nan, '2.bias': np.inf})
    html = render.gradflow_html(extract.grad_stats(model), stat, log)
    assert 'nan%' not in html and 'inf%' not in html
    widths = [float(w) for w in __import__('re').findall(r'width: ([^;]*)%', html)]
    assert len(widths) == 4 and all(np.isfinite(widths)) and max(widths) == 100.0  # the 4 finite parameters
    assert html.count('NaN or inf in this gradient') == 2 and '>NaN<' in html and '>inf<' in html
    assert '(NaN in this gradient)' in render.gradflow_text(extract.grad_stats(model), stat)


def test_the_gradflow_widget_and_the_explorer_show_nan_without_failing():
    model = grads_with({'3.weight': np.nan})
    flow = GradFlow(model)
    assert 'nan%' not in flow.bars.value and 'NaN or inf' in flow.bars.value and not flow.errors.value


@pytest.mark.parametrize('history', [
    [1.0, float('nan'), 0.5, float('inf'), 0.2], [float('nan')], [float('inf'), float('-inf')],
    [1e308, -1e308, 3.0], [2.0]], ids=['mixed', 'one nan', 'only infinities', 'huge', 'one value'])
def test_the_loss_curve_is_valid_svg_and_marks_non_finite_points(history):
    html = render.loss_svg(history)
    svg = svg_of(html)
    numbers = []
    for element in svg.iter():
        for name in ('points', 'cx', 'cy', 'x', 'y'):
            if element.get(name):
                numbers += [float(v) for v in element.get(name).replace(',', ' ').split()]
    assert all(np.isfinite(numbers)), html
    bad = sum(not np.isfinite(v) for v in history)
    marks = [t for t in svg.iter(SVG + 'text') if t.text == '×']
    assert len(marks) == bad
    assert (f'{bad} value' in html and 'not finite' in html) if bad else 'not finite' not in html


# ---- the Explorer ---------------------------------------------------------------------------------------------------
def test_an_explorer_of_a_model_without_parameters_says_so_plainly():
    ex = Explorer(nn.Sequential(nn.ReLU(), nn.ReLU()), dm.randn(2, 3))
    assert ex.errors.value == '' and 'has no parameters' in ex.status.value
    for button in ('forward', 'backward', 'step', 'zero_grad'):
        ex.buttons[button].click()
        assert ex.errors.value == '', button
    assert 'has no parameters' in ex.gradflow.bars.value


def test_explorer_update_picks_up_a_layer_appended_later():
    dm.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4))
    ex = Explorer(model, dm.randn(2, 3)).live(every_seconds=3600)
    assert ex.update(force=True)
    model.add_module('1', nn.Linear(4, 2))
    assert ex.update()  # a changed structure redraws at once, whatever the throttle says
    assert '1' in [value for _, value in ex.tree.list.options]
    assert '1' in {c.path for c in ex.graph._data.clusters}
    assert ex.info.totals.unique == 16 + 10 and not ex.errors.value
    assert not ex.update()  # unchanged again: the throttle holds


def test_a_10000_layer_explorer_sends_bounded_html(monkeypatch):
    no_dot(monkeypatch)
    model, _ = stack_of_layers(10_000)
    ex = Explorer(model, dm.randn(2, 3))
    assert not ex.errors.value
    assert len(ex.gradflow.bars.value) < 500_000 and len(ex.tree.list.options) <= 1001
    assert svg_nodes(ex.graph.picture.value) <= 5


def test_the_module_details_flag_a_non_finite_gradient():
    model = grads_with({'0.weight': np.inf})
    tree = ModuleTree(model)
    tree.selected = '0'
    assert '>inf<' in tree.details.value and 'nan' not in tree.details.value.lower()
