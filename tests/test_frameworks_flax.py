"""The visualiser on the `000` seed's Flax code, run as written: summary text and the widgets' HTML."""
from __future__ import annotations

import re

import numpy as np
import pytest

from framework_needs import need

jax = need('jax')
need('flax')
pytestmark = pytest.mark.flax

import flax_seed  # noqa: E402
from d2lmod.widgets import Explorer, GradFlow, GraphView, ModuleTree, summary  # noqa: E402
from flax import linen as nn  # noqa: E402


@pytest.fixture(scope='module')
def seed_model():
    X = jax.random.uniform(jax.random.PRNGKey(1), (2, 20))
    return flax_seed.chimera, X, flax_seed.chimera.init(jax.random.PRNGKey(0), X)


def test_seed_chimera_summary(seed_model):
    chimera, X, variables = seed_model
    text = str(summary(chimera, X, variables=variables))
    assert re.search(r'^total\s+4,712\s+5,132$', text, re.M), text
    assert re.search(r'^layers_2\.dense\s+Dense\s+\(2, 20\)\s+2\s+420\s+840\s+called', text, re.M), text
    assert '[plain tensor] layers_2.rand_weight: an array of shape (20, 20) (400 numbers) made in setup' \
        in ' '.join(text.split())
    assert 'initialised here' not in text


def test_without_variables_it_initialises_with_prngkey0_and_says_so(seed_model):
    chimera, X, _ = seed_model
    text = str(summary(chimera, X))
    assert 'initialised here with Sequential.init(jax.random.PRNGKey(0), X)' in ' '.join(text.split())
    assert re.search(r'^total\s+4,712\s+5,132$', text, re.M)


def test_tree_html_and_shared_dense_split_by_call(seed_model):
    chimera, X, variables = seed_model
    tree = ModuleTree(chimera, X, variables=variables)
    assert '4,712' in tree.header.value and '5,132' in tree.header.value
    flow = GradFlow(chimera, X, variables=variables)
    (kernel,) = [g for g in flow.grads if g.path == 'layers_2.dense.kernel']
    assert [p.call for p in kernel.parts] == [1, 2] and kernel.parts_note == ''
    fm = flow.model
    parts = fm.parts['layers_2.dense.kernel']
    whole = np.asarray(fm.grads['layers_2']['dense']['kernel'])
    np.testing.assert_allclose(parts[0][1] + parts[1][1], whole, atol=1e-5)
    assert np.abs(parts[0][1]).sum() > 0 and np.abs(parts[1][1]).sum() > 0
    assert 'call 1' in flow.bars.value and 'call 2' in flow.bars.value


def test_graph_clusters_and_the_eager_while_loop_folded(seed_model):
    chimera, X, variables = seed_model
    view = GraphView(chimera, X, variables=variables)
    assert view.error.value == ''
    titles = [c.title for c in view._data.clusters]
    assert 'layers_2.dense · call 1' in titles and 'layers_2.dense · call 2' in titles
    loops = [n for n in view._data.nodes if n.repeat > 1]
    assert len(loops) == 1 and loops[0].label == 'div'
    assert f'×{loops[0].repeat} (loop)' in view.picture.value


def test_batch_stats_are_buffers():
    class WithNorm(nn.Module):
        @nn.compact
        def __call__(self, X):
            return nn.BatchNorm(use_running_average=False)(nn.Dense(8)(X))
    X = jax.random.uniform(jax.random.PRNGKey(1), (4, 20))
    variables = WithNorm().init(jax.random.PRNGKey(0), X)
    text = str(summary(WithNorm(), X, variables=variables))
    assert "[buffer] BatchNorm_0.mean, BatchNorm_0.var: in the 'batch_stats' collection" in ' '.join(text.split())
    assert '16 numbers in buffers' in text


def test_explorer_buttons_step_the_held_variables(seed_model):
    chimera, X, variables = seed_model
    ex = Explorer(chimera, X, variables=variables, loss_fn=lambda out: (out - 1) ** 2)
    assert ex.errors.value == '' and len(ex.history) == 1
    before = np.asarray(ex.model.variables['params']['layers_1']['kernel'])
    ex.step()
    assert not np.allclose(before, ex.model.variables['params']['layers_1']['kernel'])
    ex.zero_grad()
    assert ex.model.grads is None
    ex.forward()
    ex.backward()
    assert ex.errors.value == '' and ex.history[1] < ex.history[0]
    assert 'call 2' in ex.gradflow.bars.value


def test_structure_only_without_an_input(seed_model):
    chimera, _, variables = seed_model
    text = str(summary(chimera, variables=variables))
    assert re.search(r'^layers_2\s+FixedHiddenMLP\s+0\s+plain tensor$', text, re.M), text
    assert re.search(r'^total\s+4,712$', text, re.M)
    with pytest.raises(ValueError, match='pass variables='):
        summary(chimera)


def test_a_module_without_parameters_reads_and_explores_plainly():
    class Act(nn.Module):  # init makes no 'params' collection at all
        @nn.compact
        def __call__(self, x):
            return nn.relu(x) * 2

    X = jax.numpy.ones((2, 3))
    assert re.search(r'^total\s+0\s+0$', str(summary(Act(), X)), re.M)
    ex = Explorer(Act(), X)
    assert ex.errors.value == '' and 'has no parameters' in ex.status.value
    for button in ('forward', 'backward', 'step', 'zero_grad'):
        ex.buttons[button].click()
        assert ex.errors.value == '', button
    assert GraphView(Act(), X).error.value == ''
