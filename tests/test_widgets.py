"""The visualiser: counts and notes for every chapter model, the per-call gradient split, escaping, and the
widgets built and driven in plain Python (no kernel, no browser, no Graphviz program needed)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import traitlets

import d2lmod as dm
from chapter_models import CHAPTER_MODELS, FixedHiddenMLP, ListSequential, make_chimera, make_input
from d2lmod import nn
from d2lmod.widgets import Explorer, GradFlow, ModuleTree, extract, render, summary

ROOT = Path(__file__).resolve().parents[1]
# CHAPTER.md's reference figures for input (2, 20): unique parameters, and counted once per call
PARAMETER_COUNTS = {'net': 7946, 'MLP': 7946, 'MySequential': 7946, 'FixedHiddenMLP': 420, 'NestMLP': 3952,
                    'chimera': 4712}
PER_CALL = {**PARAMETER_COUNTS, 'FixedHiddenMLP': 840, 'chimera': 5132}  # FixedHiddenMLP's Linear runs twice


def load_bench_models():
    spec = importlib.util.spec_from_file_location('bench_models', ROOT / 'bench' / 'models.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notes_of(info, tag):
    return [n.path for n in info.notes if n.tag == tag]


# ---- models that show one stumbling block each ---------------------------------------------------------
class Bypass(nn.Module):
    """A parameter read through .data (autograd never sees it) and a registered layer that never runs."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(dm.randn(20, 5))
        self.used = nn.Linear(20, 5)
        self.unused = nn.Linear(20, 5)

    def forward(self, X):
        return (X @ self.w._data + self.used(X)).sum()


class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(20, 4)
        self.register_buffer('running_mean', dm.zeros(4))
        self.register_buffer('scratch', dm.zeros(3), persistent=False)

    def forward(self, X):
        return self.linear(X) - self.running_mean


def tied():
    """Two Linears holding one weight Parameter (a tie), and one Linear module registered twice."""
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    shared = nn.Linear(4, 4)
    return nn.Sequential(a, b, nn.ReLU(), shared, nn.ReLU(), shared)


# ---- counts -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', list(CHAPTER_MODELS))
def test_counts_of_every_chapter_model(name):
    info = extract.describe(CHAPTER_MODELS[name](), make_input(0))
    assert info.totals.unique == PARAMETER_COUNTS[name]
    assert info.totals.per_call == PER_CALL[name]
    assert info.totals.trainable == PARAMETER_COUNTS[name] and info.totals.non_trainable == 0


@pytest.mark.parametrize('name', list(CHAPTER_MODELS))
@pytest.mark.parametrize('depth', [None, 0, 1, 2, 3])
def test_rows_add_up_to_the_totals_at_every_depth(name, depth):
    s = summary(CHAPTER_MODELS[name](), make_input(0), depth=depth)
    assert sum(r.params for r in s.rows) == s.totals.unique
    assert sum(r.per_call for r in s.rows) == s.totals.per_call
    assert all(r.depth <= depth for r in s.rows) if depth is not None else len(s.rows) == len(s.info.modules)


@pytest.mark.parametrize('name', list(CHAPTER_MODELS))
def test_lazy_models_before_their_first_call_show_question_marks(name):
    model = CHAPTER_MODELS[name]()
    s = summary(model)
    text = str(s)
    assert s.totals.unique is None and s.totals.lazy > 0
    assert '?' in text and 'pass an input' in text
    assert notes_of(s.info, 'lazy')
    assert all(p._data is None for p in model.parameters())  # summary without inputs runs nothing
    ModuleTree(model)
    assert 'no gradients yet' in GradFlow(model).bars.value


def test_chimera_summary_text_is_exact():
    assert str(summary(make_chimera(), make_input(0))) == CHIMERA_TEXT


def test_chimera_depth_one_folds_into_the_ancestors():
    s = summary(make_chimera(), make_input(0), depth=1)
    assert [(r.path, r.params, r.per_call, r.folded) for r in s.rows] == [
        ('', 0, 0, 0), ('0', 3952, 3952, 6), ('1', 340, 340, 0), ('2', 420, 840, 1)]
    assert 'called' in s.rows[3].tags and 'plain tensor' in s.rows[3].tags
    assert '0 (+6)' in str(s) and 'depth=1' in str(s)
    assert [r.params for r in summary(make_chimera(), make_input(0), depth=0).rows] == [4712]


def test_summary_repr_is_the_text_and_output_is_deterministic():
    a, b = summary(make_chimera(), make_input(0)), summary(make_chimera(), make_input(0))
    assert repr(a) == str(a) == str(b)
    assert a._repr_html_() == b._repr_html_()
    for text in (str(a), a._repr_html_()):
        assert '0x' not in text and 'object at' not in text


def test_the_fixed_hidden_mlp_notes_name_what_is_special():
    info = extract.describe(FixedHiddenMLP(), make_input(0))
    assert notes_of(info, 'called') == ['linear']
    assert notes_of(info, 'plain tensor') == ['rand_weight']
    assert info.totals.plain == 400
    assert info.module('linear').calls == 2 and info.module('linear').own_per_call == 840
    assert notes_of(info, 'lazy') == ['linear']


def test_modules_hidden_in_a_plain_list_are_flagged():
    model = ListSequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    s = summary(model, make_input(0))
    assert s.totals.unique == 0  # parameters() does not see them
    [note] = [n for n in s.notes if n.tag == 'hidden']
    assert note.path == 'layers' and '7,946 parameters' in note.text and 'nn.ModuleList' in note.text
    assert '[hidden] layers:' in str(s)


def test_a_tied_parameter_and_a_repeated_module_count_once():
    model = tied()
    s = summary(model, dm.randn(3, 4))
    assert s.totals.unique == 20 + 4 + 20  # a.weight + a.bias, b.bias, the shared Linear
    assert s.totals.per_call == 20 + 20 + 2 * 20
    assert notes_of(s.info, 'shared') == ['0.weight', '1.weight']
    assert notes_of(s.info, 'repeated') == ['5']
    assert notes_of(s.info, 'called') == ['3']
    five = s.info.module('5')
    assert five.same_as == '3' and five.own == 0 and five.own_per_call == 0


def test_buffers_frozen_and_unused_parameters_are_reported():
    model = WithBuffers()
    model.linear.bias.requires_grad_(False)
    s = summary(model, make_input(0))
    assert s.totals.buffers == 7 and s.totals.non_trainable == 4 and s.totals.trainable == 80
    texts = {n.path: n.text for n in s.notes if n.tag == 'buffer'}
    assert 'saved in state_dict()' in texts['running_mean'] and 'not saved' in texts['scratch']
    assert notes_of(s.info, 'frozen') == ['linear']
    assert notes_of(extract.describe(Bypass(), make_input(0)), 'not called') == ['unused']


def test_a_transformer_shaped_model_folds_by_depth():
    model = load_bench_models().make_transformer_like(blocks=3)
    s = summary(model, dm.randn(2, 5, 24), depth=2)
    assert sum(r.params for r in s.rows) == s.totals.unique == sum(p.numel() for p in model.parameters())
    assert [r.path for r in s.rows if r.folded] == ['blocks.0', 'blocks.1', 'blocks.2']


# ---- gradients -------------------------------------------------------------------------------------------
def test_a_shared_parameters_gradient_is_split_by_call():
    lin = nn.Linear(1, 1)
    lin.weight._data[:] = 2.0
    lin.bias._data[:] = 1.0
    y = lin(lin(dm.tensor([[3.0]])))  # y = w (w x + b) + b
    y.sum().backward()
    by_path = {g.path: g for g in extract.grad_stats(lin)}
    w = by_path['weight']
    assert w.norm == pytest.approx(13.0)  # dy/dw = w x + (w x + b) = 6 + 7
    assert [(p.call, p.module) for p in w.parts] == [(1, ''), (2, '')]  # '' is the model itself
    assert [p.norm for p in w.parts] == pytest.approx([6.0, 7.0])  # the inner call ran first
    assert w.parts_note == ''


def test_chimera_call_parts_add_up_to_grad():
    model, X = make_chimera(), make_input(0)
    model(X).backward()
    weight = model[2].linear.weight
    parts = weight._grad_parts
    assert len(parts) == 2
    np.testing.assert_allclose(sum(g for _, g in parts), weight.grad._data, rtol=1e-5, atol=1e-7)
    [g] = [g for g in extract.grad_stats(model) if g.path == '2.linear.weight']
    assert [(p.call, p.module) for p in g.parts] == [(1, '2.linear'), (2, '2.linear')]
    assert g.norm == pytest.approx(float(np.linalg.norm(weight.grad._data)), rel=1e-5)
    second = max(parts, key=lambda part: part[0].index)[1]  # backward meets the later call first
    assert g.parts[1].norm == pytest.approx(float(np.linalg.norm(second)), rel=1e-5)
    html = render.gradflow_html(extract.grad_stats(model))
    assert 'call 1 + call 2 = .grad' in html
    assert '  call 2 (2.linear)  ' in render.gradflow_text(extract.grad_stats(model))
    model(X).backward()  # a second backward without zero_grad: .grad holds both, the parts only the last
    [g] = [g for g in extract.grad_stats(model) if g.path == '2.linear.weight']
    assert 'zero_grad()' in g.parts_note


def test_missing_gradients_are_red_and_say_why():
    model, X = Bypass(), make_input(0)
    info = extract.describe(model, X)
    model(X).backward()
    calls = {m.path: m.calls for m in info.modules}
    why = {g.path: g.reason for g in extract.grad_stats(model, calls) if not g.has_grad}
    assert set(why) == {'w', 'unused.weight', 'unused.bias'}
    assert '.data' in why['w'] and 'did not run' in why['unused.weight']
    assert '.data' in {g.path: g.reason for g in extract.grad_stats(model)}['w']  # without call counts too
    html = render.gradflow_html(extract.grad_stats(model, calls))
    assert html.count('font-weight: bold">no grad</td>') == 3 and render.RED in html
    model.zero_grad()
    model.used.weight.requires_grad_(False)
    model(X).backward()
    assert 'requires_grad=False' in {g.path: g.reason for g in extract.grad_stats(model)}['used.weight']


def test_gradflow_bars_follow_the_stat_and_scale():
    model = make_chimera()
    model(make_input(0)).backward()
    grads = extract.grad_stats(model)
    for stat in render.STATS:
        for log in (False, True):
            html = render.gradflow_html(grads, stat, log)
            assert 'width: 100.0%' in html  # the largest bar is full
    with pytest.raises(ValueError, match='stat must be one of'):
        render.gradflow_html(grads, 'median')


# ---- escaping -------------------------------------------------------------------------------------------------
HOSTILE = '<img src=x onerror=alert(1)>'


def hostile_model():
    Evil = type('<script>alert(2)</script>', (nn.Linear,), {'extra_repr': lambda self: '<b>3</b>'})
    model = nn.Sequential()
    model.add_module(HOSTILE, Evil(2, 2))
    model.register_parameter('<i>p</i>', nn.Parameter(dm.ones(2)))
    return model


def test_user_strings_are_escaped_in_every_html():
    model, X = hostile_model(), dm.ones(1, 2)
    model(X).sum().backward()
    info = extract.describe(model, X)
    grads = extract.grad_stats(model)
    m = info.module(HOSTILE)
    pages = [summary(model, X)._repr_html_(), render.gradflow_html(grads),
             render.module_html(m, info.notes, {g.path: g for g in grads}), render.tree_header_html(info),
             render.error_html('forward', ValueError(HOSTILE))]
    for page in pages:
        for raw in (HOSTILE, '<script>', '<b>3</b>', '<i>p</i>'):
            assert raw not in page
    assert '&lt;img src=x onerror=alert(1)&gt;' in pages[0] and '&lt;script&gt;' in pages[0]
    assert '&lt;b&gt;3&lt;/b&gt;' in pages[2] and '&lt;i&gt;p&lt;/i&gt;' in pages[1]
    assert HOSTILE in str(summary(model, X))  # plain text shows the name as it is


# ---- the widgets, without a kernel ------------------------------------------------------------------------------
def test_module_tree_folds_selects_and_shows_details():
    model = make_chimera()
    model(make_input(0)).backward()
    tree = ModuleTree(model)
    paths = [p for _, p in tree.list.options]
    assert paths == ['', '0', '0.net', '0.linear', '1', '2', '2.linear']  # depth 2: 0.net starts folded
    assert '4,712' in tree.list.options[0][0] and '3,952' in tree.list.options[1][0]
    tree.toggle('0.net')
    assert '0.net.0' in [p for _, p in tree.list.options]
    tree.depth = 0
    assert [p for _, p in tree.list.options] == [''] and tree.depth_slider.value == 0
    tree.depth_slider.value = 3
    assert len(tree.list.options) == 11
    tree.list.value = '2.linear'  # what a click does
    assert tree.selected == '2.linear'
    assert 'weight' in tree.details.value and 'grad norm' in tree.details.value
    assert tree.errors.value == ''


def test_gradflow_widget_rerenders():
    model = make_chimera()
    flow = GradFlow(model)
    assert 'no gradients yet' in flow.bars.value
    model(make_input(0)).backward()
    flow.refresh_button.click()
    assert '2.linear.weight' in flow.bars.value and 'call 2' in flow.bars.value
    flow.log_box.value = True
    assert 'log scale' in flow.bars.value
    flow.stat = 'max_abs'
    assert flow.stat_menu.value == 'max_abs' and 'max |g|' in flow.bars.value
    with pytest.raises(traitlets.TraitError):
        flow.stat = 'median'


def test_callback_errors_are_shown_inside_the_widgets(monkeypatch):
    model = make_chimera()
    model(make_input(0)).backward()
    flow, tree = GradFlow(model), ModuleTree(model)

    def broken(*args, **kwargs):
        raise RuntimeError(f'broken {HOSTILE}')
    monkeypatch.setattr(extract, 'grad_stats', broken)
    monkeypatch.setattr(render, 'module_html', broken)
    flow.refresh_button.click()
    tree.list.value = '2.linear'
    for widget, where in ((flow, 'refresh failed'), (tree, 'selecting a module failed')):
        assert where in widget.errors.value and 'RuntimeError' in widget.errors.value
        assert HOSTILE not in widget.errors.value and '&lt;img' in widget.errors.value
    monkeypatch.undo()
    flow.refresh_button.click()
    assert flow.errors.value == ''  # the next success clears it


def test_explorer_buttons_run_forward_backward_and_step():
    model, X = make_chimera(), make_input(0)
    ex = Explorer(model, X, lr=0.5)
    ex.lr_slider.value = 0.05
    assert ex.lr == 0.05
    ex.buttons['backward'].click()  # runs forward first
    assert ex.errors.value == '' and len(ex.history) == 1
    assert ex.tree.info.totals.unique == 4712 and ex.tree.info.module('2.linear').calls == 2
    before = model[1].weight._data.copy()
    ex.buttons['step'].click()
    np.testing.assert_allclose(model[1].weight._data, before - 0.05 * model[1].weight.grad._data, rtol=1e-6)
    ex.buttons['forward'].click()
    assert len(ex.history) == 2 and '<svg' in ex.loss_plot.value
    ex.buttons['zero_grad'].click()
    assert all(p.grad is None for p in model.parameters()) and 'no gradients yet' in ex.gradflow.bars.value
    assert ex.graph is not None and ex.graph_pane.children == (ex.graph,)


def test_explorer_shows_a_callback_error():
    class Broken(nn.Module):
        def forward(self, X):
            raise ValueError(f'bad input {HOSTILE}')
    ex = Explorer(Broken(), make_input(0))
    ex.buttons['forward'].click()
    assert 'forward failed' in ex.errors.value and 'ValueError' in ex.errors.value
    assert HOSTILE not in ex.errors.value


def test_explorer_live_updates_are_throttled():
    ex = Explorer(make_chimera(), make_input(0)).live(every_seconds=60)
    assert len(ex.history) == 1  # the first look's forward
    assert ex.update(dm.tensor(2.0)) is True  # the first one draws
    assert ex.update(dm.tensor(1.0)) is False  # then not again for a minute
    assert ex.history[1:] == [2.0, 1.0]
    assert ex.update(force=True) is True and '3 values recorded' in ex.loss_plot.value


def test_explorer_shows_the_whole_chapter_at_once():
    model = make_chimera()
    ex = Explorer(model, make_input(0))
    assert ex.errors.value == '' and ex.tree.info.module('2.linear').calls == 2
    assert all(p.grad is not None for p in model.parameters())
    assert 'call 2' in ex.gradflow.bars.value and ex.graph is not None
    assert 'structure only' not in ex.tree.header.value and 'plain tensor' in ex.tree.details.value


def test_everything_works_without_graphviz(monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))  # no `dot` program
    monkeypatch.setitem(sys.modules, 'graphviz', None)  # and no Python bindings: import graphviz fails
    model, X = make_chimera(), make_input(0)
    assert '4,712' in str(summary(model, X))
    ex = Explorer(model, X)
    ex.forward()
    ex.backward()
    assert ex.errors.value == ex.tree.errors.value == ex.gradflow.errors.value == ''
    assert ex.graph.dot_note.value.count('apt-get install graphviz') == 1  # said once, by the graph pane
    ex.forward()
    assert ex.graph.dot_note.value.count('apt-get install graphviz') == 1


CHIMERA_TEXT = '''\
Sequential run on input (2, 20)

module    type            output   calls  params  per call  notes
--------  --------------  -------  -----  ------  --------  ------------
(model)   Sequential      ()           1       0         0
0         NestMLP         (2, 16)      1       0         0
0.net     Sequential      (2, 32)      1       0         0
0.net.0   Linear          (2, 64)      1   1,344     1,344  lazy
0.net.1   ReLU            (2, 64)      1       0         0
0.net.2   Linear          (2, 32)      1   2,080     2,080  lazy
0.net.3   ReLU            (2, 32)      1       0         0
0.linear  Linear          (2, 16)      1     528       528  lazy
1         Linear          (2, 20)      1     340       340  lazy
2         FixedHiddenMLP  ()           1       0         0  plain tensor
2.linear  Linear          (2, 20)      2     420       840  called, lazy
--------  --------------  -------  -----  ------  --------  ------------
total                                      4,712     5,132

unique parameters (each counted once)  4,712  trainable 4,712, non-trainable 0
counted once per call                  5,132  a module that runs twice counts twice
not parameters                                400 numbers in plain tensor attributes; no buffers

notes
  [lazy] 0.net.0, 0.net.2, 0.linear, 1, 2.linear: lazy layer: its input size was unknown until this
      summary ran the model on the input
  [plain tensor] 2.rand_weight: a plain tensor attribute of shape (20, 20) (400 numbers): not a
      parameter, not in state_dict(), not moved by to(); register_buffer registers it without
      training it
  [called] 2.linear: ran 2 times in one forward: its 420 parameters count once in "unique" and 2
      times in "per call"; the gradients of both uses add up in one .grad'''


def test_module_tree_with_an_input_shows_calls_and_shapes():
    bare, run = ModuleTree(make_chimera()), ModuleTree(make_chimera(), make_input(0))
    assert 'structure only' in bare.header.value and 'ModuleTree(model, X)' in bare.header.value
    assert 'structure only' not in run.header.value and run.info.module('2.linear').calls == 2
