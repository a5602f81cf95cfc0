"""The computation graph view: what trace() finds, what collapse() folds, and what the drawings say.

Everything here runs on plain data and strings: no kernel, no browser. Tests that ask Graphviz's `dot`
to read our DOT back are skipped when it is not installed; the fallback drawing is tested either way.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import draw, graph
from d2lmod.widgets.graph_view import MODULES, GraphView

from chapter_models import make_chimera, make_input

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for bench/models.py
from bench.models import make_transformer_like  # noqa: E402

HAVE_DOT = shutil.which('dot') is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
HOSTILE = '<img src=x onerror=alert(1)>'


def chimera_output(seed: int = 0, backward: bool = False, scale: float = 1.0):
    """A freshly built chimera (seeded), run on the chapter's input; returns (model, output)."""
    dm.manual_seed(seed)
    net = make_chimera()
    y = net(make_input(seed) * scale)
    if backward:
        y.backward()
    return net, y


def by_label(data, label):
    return [n for n in data.nodes if n.label == label]


def cluster_titles(data, node):
    return next(c.title for c in data.clusters if c.id == node.cluster)


def dot_svg(dot_text: str) -> str:
    return subprocess.run(['dot', '-Tsvg'], input=dot_text, capture_output=True, text=True, check=True).stdout


def svg_counts(svg: str) -> tuple:
    """(nodes, clusters) in an SVG from dot or from the fallback, read as XML (so it must be well formed)."""
    root = ET.fromstring(svg)
    classes = [g.get('class', '') for g in root.iter('{http://www.w3.org/2000/svg}g')]
    return sum(c.split()[:1] == ['node'] for c in classes), sum(c == 'cluster' for c in classes)


def svg_text(svg: str) -> str:
    """All the text a reader sees in an SVG (entities decoded)."""
    return '\n'.join(''.join(t.itertext()) for t in ET.fromstring(svg).iter('{http://www.w3.org/2000/svg}text'))


# ---- what trace() finds in chimera ------------------------------------------------------------------------------
def test_shared_weight_is_one_node_feeding_both_calls():
    net, y = chimera_output()
    data = graph.trace(y, net)
    [weight] = by_label(data, '2.linear.weight')
    assert weight.kind == 'parameter' and weight.shape == (20, 20)
    targets = [next(n for n in data.nodes if n.id == e.dst) for e in data.edges if e.src == weight.id]
    assert [t.label for t in targets] == ['linear', 'linear']
    assert [cluster_titles(data, t) for t in targets] == ['FixedHiddenMLP (2) › linear · call 1',
                                                          'FixedHiddenMLP (2) › linear · call 2']
    # the shared weight sits in FixedHiddenMLP's box, which holds both calls
    assert cluster_titles(data, weight) == 'Sequential › 2'


def test_parameters_inputs_and_constants_are_named():
    net, y = chimera_output()
    data = graph.trace(y, net)
    params = [n.label for n in data.nodes if n.kind == 'parameter']
    assert params == [name for name, _ in net.named_parameters()]  # every one, once, by its dotted name
    [rand_weight] = by_label(data, '2.rand_weight')
    assert rand_weight.kind == 'plain' and 'plain tensor: not a parameter' in draw.node_lines(rand_weight)
    assert [n.label for n in data.nodes if n.kind == 'input'] == ['input']
    assert sorted(n.label for n in data.nodes if n.kind == 'constant') == ['1', '2']  # `+ 1` and `X /= 2`


def test_names_are_inferred_from_the_outermost_call_without_a_model():
    net, y = chimera_output()
    assert graph.trace(y) == graph.trace(y, net)


def test_the_loop_is_one_node_that_says_how_often_it_ran():
    for seed, scale in [(0, 1.0), (1, 1.0), (2, 30.0)]:
        net, y = chimera_output(seed, scale=scale)
        halvings = 0  # run FixedHiddenMLP's loop again on the same numbers, and count
        with dm.no_grad():
            fixed = net[2]
            X = fixed.linear(net[1](net[0](make_input(seed) * scale)))
            X = fixed.linear(F.relu(X @ fixed.rand_weight + 1))
            while X.abs().sum() > 1:
                X /= 2
                halvings += 1
        data = graph.trace(y, net)
        divs = by_label(data, 'div')
        assert len(divs) == 1 and divs[0].repeat == halvings, (seed, halvings)
        if halvings > 1:
            assert draw.node_lines(divs[0])[0] == f'div ×{halvings} (loop)'
        assert graph.op_count(data) == 6 + 6 + halvings  # NestMLP 5, Linear 1; FixedHiddenMLP 6 and the loop


def test_nodes_show_shapes():
    net, y = chimera_output()
    data = graph.trace(y, net)
    shapes = {n.label: draw.shape_text(n.shape) for n in data.nodes if n.kind in ('parameter', 'input')}
    assert shapes['input'] == '(2, 20)' and shapes['0.net.0.weight'] == '(64, 20)' and shapes['0.net.0.bias'] == '(64,)'
    assert [draw.shape_text(n.shape) for n in data.nodes if n.kind == 'op'][:4] == ['(2, 64)', '(2, 64)',
                                                                                      '(2, 32)', '(2, 32)']
    [out] = [n for n in data.nodes if n.output]
    assert out.label == 'sum' and 'scalar' in draw.node_lines(out)


def test_gradient_norms_appear_after_backward_only():
    net, y = chimera_output()
    before = graph.trace(y, net)
    assert all(n.grad_norm is None for n in before.nodes)
    assert not any('‖grad‖' in line for n in before.nodes for line in draw.node_lines(n))
    assert any('backward()' in note for note in before.notes)
    y.backward()
    after = graph.trace(y, net)
    for n in after.nodes:
        if n.kind == 'parameter':
            p = dict(net.named_parameters())[n.label]
            assert n.grad_norm == pytest.approx(float((p.grad._data ** 2).sum() ** 0.5))
    # the shared weight: one norm per use, on the node and on its two edges
    [weight] = by_label(after, '2.linear.weight')
    assert len(weight.grad_parts) == 2
    assert [e.grad_norm for e in after.edges if e.src == weight.id] == list(weight.grad_parts)
    assert weight.grad_norm <= sum(weight.grad_parts) + 1e-6  # the two uses' gradients add up (as vectors)


def test_output_without_history_says_so():
    data = graph.trace(dm.ones(2, 3) * 2)
    assert [n.kind for n in data.nodes] == ['input'] and 'no recorded history' in data.notes[0]


def test_a_module_in_a_plain_list_is_flagged_as_unregistered():
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(20, 4)]  # a plain list: not registered

        def forward(self, x):
            return self.layers[0](x)
    y = Hidden()(make_input(0))
    data = graph.trace(y)
    assert '(unregistered Linear).weight' in [n.label for n in data.nodes]
    assert any('not registered' in note for note in data.notes)


# ---- folding module calls ----------------------------------------------------------------------------------------
def test_chimera_folds_to_its_three_children():
    net, y = chimera_output(backward=True)
    data = graph.trace(y, net)
    folded = graph.collapse(data, limit=0)
    assert [(n.kind, n.label) for n in folded.nodes] == [('input', 'input'), ('module', 'Sequential › 0'),
                                                         ('module', 'Sequential › 1'), ('module', 'Sequential › 2')]
    assert graph.op_count(folded) == graph.op_count(data)  # folded nodes keep count of every op inside
    fixed = folded.nodes[-1]
    assert fixed.output and '420 numbers' in fixed.note  # the shared weight is counted once
    assert graph.collapse(data) == data  # small enough: fit shows every op


def test_opening_a_module_shows_the_shared_weight_feeding_two_folded_calls():
    net, y = chimera_output()
    data = graph.trace(y, net)
    view = graph.collapse(data, expand=('2',), limit=0)
    [weight] = by_label(view, '2.linear.weight')
    targets = [next(n for n in view.nodes if n.id == e.dst) for e in view.edges if e.src == weight.id]
    assert [(t.kind, t.label) for t in targets] == [('module', 'FixedHiddenMLP (2) › linear · call 1'),
                                                    ('module', 'FixedHiddenMLP (2) › linear · call 2')]
    assert by_label(view, 'Sequential › 0')  # the other children stay folded


def test_a_thousand_module_model_stays_readable():
    dm.manual_seed(0)
    model = make_transformer_like(blocks=96)
    y = model(dm.randn(2, 4, 8)).sum()
    assert sum(1 for _ in model.modules()) >= 1000
    data = graph.trace(y, model)
    assert len(data.nodes) > 2000
    fit = graph.collapse(data)
    assert len(fit.nodes) < 120
    assert sum(n.kind == 'module' for n in fit.nodes) == 98  # embed, the 96 blocks, head
    assert graph.op_count(fit) == graph.op_count(data)
    # detail on demand: block 3 opened to its ops, the other blocks stay folded
    opened = graph.collapse(data, expand=('blocks.3',))
    assert by_label(opened, 'blocks.3.attn.q.weight') and not by_label(opened, 'blocks.4.attn.q.weight')
    assert by_label(opened, 'ModuleList (blocks) › 4')
    assert len(opened.nodes) < 200
    draw.to_svg_fallback(fit)  # both drawings cope
    if HAVE_DOT:
        assert svg_counts(draw.render_svg(fit))[0] == len(fit.nodes)


# ---- drawing: DOT and the fallback ------------------------------------------------------------------------------
def test_dot_has_a_box_per_call_with_readable_titles():
    net, y = chimera_output(backward=True)
    dot = draw.to_dot(graph.trace(y, net))
    assert '<b>FixedHiddenMLP (2) › linear · call 1</b>' in dot
    assert '<b>FixedHiddenMLP (2) › linear · call 2</b>' in dot
    assert '<b>div ×3 (loop)</b>' in dot and '<b>2.rand_weight</b>' in dot


@needs_dot
def test_dot_reads_our_dot_back_node_for_node():
    net, y = chimera_output(backward=True)
    data = graph.trace(y, net)
    svg = draw.render_svg(data)
    assert svg.startswith('<svg') and 'Generated by' not in svg  # no version comment to break nbval
    assert svg_counts(svg) == (len(data.nodes), len(data.clusters))
    assert 'FixedHiddenMLP (2) › linear · call 1' in svg_text(svg)


def hostile_model():
    """Names, a class name and an extra_repr chosen to break out of HTML, SVG and DOT."""
    evil_class = type('Evil"]; x [label="pwned', (nn.Module,), {
        'forward': lambda self, x: self.inner(x) @ getattr(self, 'w"}\\'),
        'extra_repr': lambda self: '<script>alert("x")</script> \\" }',
    })
    evil = evil_class()
    evil.add_module(HOSTILE, nn.Linear(4, 4))
    object.__setattr__(evil, 'inner', evil._modules[HOSTILE])
    setattr(evil, 'w"}\\', dm.rand(4, 4))  # a plain tensor attribute with a hostile name
    model = nn.Sequential()
    model.add_module('a"b', nn.Linear(20, 4))
    model.add_module('<b>bold</b>', evil)
    return model, model(make_input(0))


def test_hostile_names_stay_text_in_dot():
    model, y = hostile_model()
    data = graph.trace(y, model)
    labels = [n.label for n in data.nodes]
    assert f'<b>bold</b>.{HOSTILE}.weight' in labels and '<b>bold</b>.w"}\\' in labels
    assert any('<script>' in c.detail for c in data.clusters)
    dot = draw.to_dot(data)
    for raw in ('<img', '<script', '<b>bold', 'x [label="pwned'):
        assert raw not in dot
    assert '&lt;img src=x onerror=alert(1)&gt;' in dot
    if HAVE_DOT:  # dot parses it into exactly our nodes and boxes, and shows the names as plain text
        svg = dot_svg(dot)
        assert svg_counts(svg) == (len(data.nodes), len(data.clusters))
        assert HOSTILE + '.weight' in svg_text(svg) and '<img' not in svg


def test_hostile_names_stay_text_in_the_fallback_and_the_widget(monkeypatch):
    model, y = hostile_model()
    data = graph.trace(y, model)
    svg = draw.to_svg_fallback(data)
    assert '<img' not in svg and '<script' not in svg
    assert svg_counts(svg) == (len(data.nodes), len(data.clusters))  # well-formed XML, one <g> per node
    assert HOSTILE + '.weight' in svg_text(svg) and '<script>alert("x")</script>' in svg_text(svg)
    monkeypatch.setattr(draw, 'dot_available', lambda: False)
    view = GraphView(y, model)
    assert '<img' not in view.picture.value and '<script' not in view.picture.value and not view.error.value


def test_without_dot_the_fallback_draws_and_the_widget_says_how_to_get_dot(monkeypatch):
    monkeypatch.setattr(draw, 'dot_available', lambda: False)
    net, y = chimera_output(backward=True)
    data = graph.trace(y, net)
    svg = draw.render_svg(data)
    assert svg == draw.to_svg_fallback(data)
    text = svg_text(svg)
    for words in ('FixedHiddenMLP (2) › linear · call 1', '2.linear.weight', 'div ×3 (loop)',
                  '2.rand_weight', 'plain tensor: not a parameter', '‖grad‖'):
        assert words in text
    view = GraphView(y, net)
    assert 'apt-get install graphviz' in view.dot_note.value and '<svg' in view.picture.value
    note = view.dot_note.value
    view.update(y)
    view.show.value = MODULES
    assert view.dot_note.value == note  # said once, not once per picture


def test_two_identical_models_give_identical_output():
    runs = []
    for _ in range(2):
        net, y = chimera_output(backward=True)
        data = graph.trace(y, net)
        runs.append((dataclasses.asdict(data), draw.to_dot(data), draw.to_svg_fallback(data)))
    assert runs[0] == runs[1]
    for text in runs[0][1:]:
        assert not re.search(r'0x[0-9a-fA-F]{4,}', text)  # no memory addresses


# ---- the widget ------------------------------------------------------------------------------------------------
def test_graph_view_redraws_and_updates():
    net, y = chimera_output()
    view = GraphView(y, net)
    assert '<svg' in view.picture.value and not view.error.value
    assert view.summary.value.startswith('15 ops · 27 nodes')
    view.show.value = MODULES
    assert '4 nodes shown' in view.summary.value
    view.show.value = ('open', '2.linear')
    assert 'FixedHiddenMLP (2) › linear · call 2' in view.picture.value
    view.update(net(make_input(1)))
    assert view.show.value == ('open', '2.linear') and not view.error.value


def test_graph_view_shows_errors_inside(monkeypatch):
    net, y = chimera_output()
    view = GraphView(y, net)

    def broken(data):
        raise RuntimeError('drawing failed <here>')
    monkeypatch.setattr(draw, 'render', broken)
    view.show.value = MODULES
    assert 'RuntimeError: drawing failed &lt;here&gt;' in view.error.value
    view.update('not a tensor')
    assert 'TypeError' in view.error.value and 'trace() needs a d2lmod Tensor' in view.error.value


def test_two_vector_inputs_are_numbered_by_identity():
    a, b = dm.tensor([1., 2.], requires_grad=True), dm.tensor([1., 2.], requires_grad=True)  # equal values
    labels = [n.label for n in graph.trace(a * b + a).nodes]
    assert labels.count('input 1') == 1 and labels.count('input 2') == 1


def test_in_a_browser_the_fallback_note_says_nothing_can_be_installed(monkeypatch):
    """JupyterLite's Python reports sys.platform 'emscripten': no apt-get advice there, only what happens."""
    monkeypatch.setattr(draw, 'dot_available', lambda: False)
    monkeypatch.setattr(draw.sys, 'platform', 'emscripten')
    assert draw.in_browser()
    net, y = chimera_output(backward=True)
    note = GraphView(y, net).dot_note.value
    assert 'inside your web browser' in note and 'own simpler layout' in note
    for advice in ('apt-get', 'brew', 'conda', 'pip install'):
        assert advice not in note
