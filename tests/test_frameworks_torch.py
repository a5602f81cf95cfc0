"""The visualiser on real PyTorch models: the chapter's models read as a student sees them (text and HTML)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from chapter_models import torch_twin
from framework_needs import need

torch = need('torch')
pytestmark = pytest.mark.torch

from d2lmod.widgets import Explorer, GradFlow, GraphView, ModuleTree, graph, render, summary  # noqa: E402


def chimera_and_input(seed: int = 0):
    torch.manual_seed(seed)
    return torch_twin('chimera'), torch.rand(2, 20)


def test_chimera_summary_counts_unique_and_per_call():
    model, X = chimera_and_input()
    text = str(summary(model, X))
    assert re.search(r'^total\s+4,712\s+5,132$', text, re.M), text
    assert '[called] 2.linear: ran 2 times' in text
    assert '[plain tensor] 2.rand_weight: a plain tensor attribute of shape (20, 20) (400 numbers)' in text
    assert re.search(r'^2\.linear\s+Linear\s+\(2, 20\)\s+2\s+420\s+840\s+called', text, re.M), text


def test_module_tree_html_shows_counts_and_flags():
    model, X = chimera_and_input()
    tree = ModuleTree(model, X)
    header = tree.header.value
    assert '4,712' in header and '5,132' in header
    labels = [label for label, _ in tree.list.options]
    assert any('2' in label and 'FixedHiddenMLP' in label and 'plain tensor' in label for label in labels)
    tree.toggle('2')
    tree.selected = '2.linear'
    assert 'ran 2 times in the last forward' in tree.details.value


def test_lazy_before_the_first_call_then_sizes():
    model, _ = chimera_and_input()
    text = str(summary(model))
    assert re.search(r'^total\s+\?$', text, re.M)
    assert '[lazy] 0.net.0, 0.net.2, 0.linear, 1, 2.linear: lazy layer, not initialized yet' in text
    assert torch.nn.parameter.is_lazy(model[1].weight)  # describing did not run it


def test_shared_layer_gradient_split_adds_up_to_grad():
    model, X = chimera_and_input()
    model(X).backward()
    flow = GradFlow(model, X)
    (g,) = [g for g in flow.grads if g.path == '2.linear.weight']
    assert [p.call for p in g.parts] == [1, 2] and g.parts_note == ''
    from d2lmod.widgets.frameworks import torch as adapter
    parts = adapter._PARTS[model][0]['2.linear.weight']
    np.testing.assert_allclose(parts[0][1] + parts[1][1], model[2].linear.weight.grad.numpy(), atol=1e-5)
    assert 'call 1' in flow.bars.value and 'call 2' in flow.bars.value
    # after backward alone (no inputs) the bars still read every .grad
    assert all(g.has_grad for g in GradFlow(model).grads)


def test_buffers_and_plain_lists_are_flagged():
    class Listed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [torch.nn.Linear(20, 8), torch.nn.Linear(8, 4)]  # plain list: unregistered
            self.norm = torch.nn.BatchNorm1d(20)

        def forward(self, X):
            X = self.norm(X)
            for layer in self.layers:
                X = layer(X)
            return X
    torch.manual_seed(0)
    text = str(summary(Listed(), torch.rand(4, 20)))
    assert '[hidden] layers: a plain Python list holding 2 module(s) (Linear) with 204 parameters' in text
    assert '[buffer] norm.running_mean, norm.running_var: a buffer of shape (20,)' in text
    assert re.search(r'not parameters\s+no plain tensor attributes; 41 numbers in buffers', text), text


def test_graph_has_module_calls_and_a_folded_loop():
    model, X = chimera_and_input()
    out = model(X)
    data = graph.trace(out, model)
    titles = [c.title for c in data.clusters]
    assert '2.linear · call 1' in titles and '2.linear · call 2' in titles
    loops = [n for n in data.nodes if n.repeat > 1]
    assert len(loops) == 1 and loops[0].label == 'div' and loops[0].cluster == \
        next(c.id for c in data.clusters if c.path == '2')
    assert any(n.kind == 'plain' and n.label == '2.rand_weight' for n in data.nodes)
    view = GraphView(out, model=model)
    assert view.error.value == ''
    assert f'×{loops[0].repeat} (loop)' in view.picture.value
    assert '2.linear · call 2' in view.picture.value


def test_explorer_buttons_train_with_torch_sgd():
    model, X = chimera_and_input()
    ex = Explorer(model, X, loss_fn=lambda out: (out - 1) ** 2)
    assert ex.errors.value == '' and len(ex.history) == 1
    before = model[1].weight.detach().clone()
    ex.step()
    assert not torch.equal(before, model[1].weight.detach())
    ex.zero_grad()
    assert model[1].weight.grad is None
    ex.forward()
    ex.backward()
    assert ex.errors.value == '' and ex.history[1] < ex.history[0]
    assert '5,132' in ex.tree.header.value
    assert 'call 2' in ex.gradflow.bars.value




def test_summary_html_escapes_and_matches_text():
    model, X = chimera_and_input()
    html = render.summary_html(summary(model, X).info)
    assert '4,712' in html and '5,132' in html and '2.rand_weight' in html


@pytest.mark.parametrize('name', ['net', 'MLP', 'MySequential', 'FixedHiddenMLP', 'NestMLP', 'chimera'])
def test_every_chapter_model_reads_as_in_d2lmod(name):
    """Same rows (paths, outputs, calls, counts, flags) and totals as the d2lmod twin; only class names differ."""
    import d2lmod as dm
    from chapter_models import CHAPTER_MODELS, make_input
    dm.manual_seed(0)
    torch.manual_seed(0)
    ours = summary(CHAPTER_MODELS[name](), make_input())
    theirs = summary(torch_twin(name), torch.from_numpy(make_input().numpy().copy()))
    assert theirs.totals == ours.totals
    assert [(r.path, r.outputs, r.calls, r.params, r.per_call, r.tags) for r in theirs.rows] == \
        [(r.path, r.outputs, r.calls, r.params, r.per_call, r.tags) for r in ours.rows]


def test_tensors_kept_in_a_plain_list_are_flagged():
    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = [torch.nn.Parameter(torch.rand(3, 4)), torch.nn.Parameter(torch.rand(4))]

        def forward(self, X):
            return X @ self.weights[0] + 0
    text = ' '.join(str(summary(Holder(), torch.rand(2, 3))).split())
    assert '[hidden] weights: a plain Python list holding 2 tensor(s) (16 numbers)' in text
    assert re.search(r'unique parameters \(each counted once\)\s+0', text)


def test_graph_marks_parameters_of_unregistered_layers_and_works_without_a_model():
    class Listed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [torch.nn.Linear(4, 3)]  # a plain list: its Linear is not registered

        def forward(self, X):
            return self.layers[0](X).sum()
    model = Listed()
    out = model(torch.rand(2, 4))
    data = graph.trace(out, model)
    assert [n.note for n in data.nodes if n.kind == 'parameter'] == ['not in the model'] * 2
    assert any('not registered in the model' in note for note in data.notes)
    bare = graph.trace(out)  # no model: ops and leaves, no module calls
    assert bare.clusters == [] and sum(n.kind == 'op' for n in bare.nodes) >= 2


def test_explorer_graph_reads_like_the_users_own():
    """The Explorer's forward (one view of each parameter per call) draws the same graph as a plain forward."""
    model, X = chimera_and_input()
    ex = Explorer(model, X)
    plain = graph.trace(model(X), model)
    assert [(n.kind, n.label, n.repeat) for n in ex.graph._data.nodes] == \
        [(n.kind, n.label, n.repeat) for n in plain.nodes]
    assert [c.title for c in ex.graph._data.clusters] == [c.title for c in plain.clusters]


def test_split_from_another_loss_says_so():
    model, X = chimera_and_input()
    ((model(X) - 1) ** 2).backward()  # another loss than GradFlow's default output.sum()
    (g,) = [g for g in GradFlow(model, X).grads if g.path == '2.linear.weight']
    assert 'pass the same loss_fn' in g.parts_note
    (g,) = [g for g in GradFlow(model, X, loss_fn=lambda out: (out - 1) ** 2).grads if g.path == '2.linear.weight']
    assert g.parts_note == ''


def test_residual_blocks_keep_their_adds_and_relus():
    """Ops without parameters (a residual add, F.relu) are drawn in the block whose layers made their inputs."""
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)
            self.down = torch.nn.Sequential(torch.nn.Linear(4, 4))

        def forward(self, X):
            return torch.nn.functional.relu(self.lin(X) + self.down(X))
    torch.manual_seed(0)
    model = torch.nn.Sequential(Block(), Block())
    data = graph.trace(model(torch.rand(2, 4)).sum(), model)
    path = {c.id: c.path for c in data.clusters}
    assert [(n.label, path.get(n.cluster)) for n in data.nodes if n.label in ('add', 'relu')] == \
        [('add', '0'), ('relu', '0'), ('add', '1'), ('relu', '1')]


def test_a_long_model_graph_is_folded_and_capped_as_for_d2lmod():
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(400)])
    out = model(torch.rand(2, 3)).sum()
    view = GraphView(out, model=model)
    assert view.error.value == '' and '×400 in a row' in view.picture.value  # the fit view: one node for the run
    view.show.value = ('every op',)
    assert view.summary.value.startswith('801 ops') and f'{graph.MAX_DRAWN + 1} nodes shown' in view.summary.value
    assert 'more nodes' in view.picture.value and 'more nodes' in view.notes.value


def test_when_dot_times_out_a_torch_graph_falls_back_and_says_so(monkeypatch):
    import subprocess

    from d2lmod.widgets import draw
    monkeypatch.setattr(draw, 'dot_available', lambda: True)
    calls = []

    def run(args, **kwargs):
        calls.append(kwargs)
        raise subprocess.TimeoutExpired(args, kwargs['timeout'])
    monkeypatch.setattr(subprocess, 'run', run)
    model, X = chimera_and_input()
    view = GraphView(model(X), model=model)
    assert calls and all(0 < kwargs['timeout'] <= draw.DOT_TIMEOUT for kwargs in calls)
    assert '<svg' in view.picture.value and view.error.value == ''
    assert f'longer than {draw.DOT_TIMEOUT:g} s' in view.notes.value


def test_explorer_of_a_model_without_parameters_says_so_plainly():
    ex = Explorer(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Tanh()), torch.rand(2, 3))
    assert ex.errors.value == '' and 'has no parameters' in ex.status.value
    for button in ('forward', 'backward', 'step', 'zero_grad'):
        ex.buttons[button].click()
        assert ex.errors.value == '', button
    ex.backward()
    assert 'has no parameters' in ex.status.value


def test_explorer_backward_twice_adds_up_as_for_d2lmod():
    model, X = chimera_and_input()
    ex = Explorer(model, X)  # forward and backward once
    once = model[1].weight.grad.clone()
    ex.buttons['backward'].click()  # the same loss again: the kept graph lets it run, and .grad doubles
    assert ex.errors.value == '' and torch.allclose(model[1].weight.grad, 2 * once)
