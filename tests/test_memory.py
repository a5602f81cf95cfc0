"""A training step must not leave its graph behind: no reference cycle may keep tensors alive.

Python frees an object as soon as nothing refers to it, unless it sits in a reference cycle; those wait for
the cycle collector. With the collector switched off, anything in a cycle would pile up step after step, so
these tests switch it off and check that the step's tensors are gone the moment their last name is.
"""
from __future__ import annotations

import gc
import sys
import weakref
from pathlib import Path

import pytest

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chapter_models import make_chimera, make_input  # noqa: E402


@pytest.fixture
def no_cycle_collector():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def mlp_step():
    net = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
    opt, X, y = dm.optim.SGD(net.parameters(), lr=0.1), dm.rand(4, 20), dm.tensor([0, 1, 2, 0], dtype=dm.int64)

    def step():
        opt.zero_grad()
        hidden = net[1](net[0](X))
        loss = F.cross_entropy(net[2](hidden), y)
        loss.backward()
        opt.step()
        return weakref.ref(hidden), weakref.ref(loss)
    return step


def chimera_step():
    net, X = make_chimera(), make_input(0)
    net(X)
    opt = dm.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        out = net(X)                    # shared layer, a constant, and a loop of in-place halvings
        out.backward()
        opt.step()
        return (weakref.ref(out),)
    return step


@pytest.mark.parametrize('make_step', [mlp_step, chimera_step])
def test_a_training_steps_tensors_die_with_their_last_name(no_cycle_collector, make_step):
    step = make_step()
    refs = step()
    assert all(r() is None for r in refs), 'a tensor of the step outlived it: something holds it in a cycle'


@pytest.mark.parametrize('make_step', [mlp_step, chimera_step])
def test_many_steps_leave_no_objects_behind(no_cycle_collector, make_step):
    step = make_step()
    for _ in range(10):
        step()
    before = len(gc.get_objects())
    for _ in range(200):
        step()
    assert len(gc.get_objects()) - before < 50  # nothing grows with the number of steps


def test_a_graph_kept_for_the_visualiser_is_freed_with_it(no_cycle_collector):
    """A shared parameter's per-call gradient parts point at module calls, not back at the graph."""
    net, X = make_chimera(), make_input(0)
    out = net(X)
    out.backward()
    ref = weakref.ref(out)
    del out
    assert ref() is None
