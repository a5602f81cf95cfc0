"""The 002 seed's Gluon code runs on d2lmod.compat.mxnet with only `mxnet` changed in its import lines.

SEED below is the seed's code as written (MXNet Gluon 2, from /work/shared/seeds/002_*.txt; indentation
restored, the book's input X and its `.shape` cells added at the end); only the three import lines say
d2lmod.compat.mxnet where the seed says mxnet. The tests run it and check what a reader of the seed would
see: the shapes it prints, and the counts the visualiser shows (4,712 trainable parameters in the chimera,
plus the 400 numbers of the constant, saved but never trained).
"""
from __future__ import annotations

import contextlib
import io

import numpy
import pytest

import d2lmod as dm
from d2lmod.widgets import extract, summary

SEED = '''
from d2lmod.compat.mxnet import np, npx
from d2lmod.compat.mxnet.gluon import nn
npx.set_np()

class MLP(nn.Block):
    def __init__(self):
        # Call the constructor of the MLP parent class nn.Block to perform
        # the necessary initialization
        super().__init__()
        self.hidden = nn.Dense(256, activation='relu')
        self.out = nn.Dense(10)
    # Define the forward propagation of the model, that is, how to return the
    # required model output based on the input X
    def forward(self, X):
        return self.out(self.hidden(X))

class MySequential(nn.Block):
    def __init__(self):
        super().__init__()
        # Keep strong refs ourselves: _children in Gluon 2.0 holds weakrefs,
        # so we'd otherwise lose blocks to GC right after add() returns.
        self._layers = []
    def add(self, block):
        # block is an instance of a Block subclass. register_child tracks it
        # for parameter discovery; the strong ref in self._layers keeps it
        # alive (matches the upstream nn.Sequential pattern).
        self._layers.append(block)
        self.register_child(block)
    def forward(self, X):
        # _children.values() yields weakrefs; call them to dereference.
        for block in self._children.values():
            X = block()(X)
        return X

from d2lmod.compat.mxnet import gluon
class FixedHiddenMLP(nn.Block):
    def __init__(self):
        super().__init__()
        # Random weight parameters wrapped in gluon.Constant are not updated
        # during training (i.e., constant parameters)
        self.rand_weight = gluon.Constant(np.random.uniform(size=(20, 20)))
        self.dense = nn.Dense(20, activation='relu')
    def forward(self, X):
        X = self.dense(X)
        # Use the created constant parameters, as well as the relu and dot
        # functions
        X = npx.relu(np.dot(X, self.rand_weight.data()) + 1)
        # Reuse the fully connected layer. This is equivalent to sharing
        # parameters with two fully connected layers
        X = self.dense(X)
        # Control flow
        while np.abs(X).sum() > 1:
            X /= 2
        return X.sum()

class NestMLP(nn.Block):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential()
        self.net.add(nn.Dense(64, activation='relu'),
                     nn.Dense(32, activation='relu'))
        self.dense = nn.Dense(16, activation='relu')
    def forward(self, X):
        return self.dense(self.net(X))

X = np.random.uniform(size=(2, 20))
chimera = nn.Sequential()
chimera.add(NestMLP(), nn.Dense(20), FixedHiddenMLP())
chimera.initialize()
chimera(X)

net = MLP()
net.initialize()
print(net(X).shape)
net = MySequential()
net.add(nn.Dense(256, activation='relu'))
net.add(nn.Dense(10))
net.initialize()
print(net(X).shape)
net = FixedHiddenMLP()
net.initialize()
print(net(X).shape)
'''


def run_seed() -> tuple:
    """The seed's namespace after running it, and what it printed."""
    dm.manual_seed(0)
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SEED, 'seed_002', 'exec'), namespace)
    return namespace, out.getvalue()


def test_only_the_import_lines_name_the_compat_layer():
    lines = [line for line in SEED.splitlines() if 'd2lmod' in line]
    assert lines == ['from d2lmod.compat.mxnet import np, npx', 'from d2lmod.compat.mxnet.gluon import nn',
                     'from d2lmod.compat.mxnet import gluon']


def test_the_seed_runs_and_prints_the_books_shapes():
    _, printed = run_seed()
    assert printed.splitlines() == ['(2, 10)', '(2, 10)', '()']


def test_the_visualiser_counts_4712_trainable_parameters_and_400_constant_numbers():
    ns = run_seed()[0]
    info = extract.describe(ns['chimera'], ns['X'])
    assert (info.totals.trainable, info.totals.non_trainable, info.totals.buffers) == (4712, 0, 400)
    assert info.totals.plain == 0  # the constant is registered, not a stray plain tensor
    notes = [n for n in info.notes if n.tag == 'buffer']
    assert [n.path for n in notes] == ['2.rand_weight'] and 'not trained' in notes[0].text
    text = str(summary(ns['chimera'], ns['X']))
    assert '4,712' in text and '400 numbers in buffers' in text


def test_constant_is_saved_but_never_trained():
    ns = run_seed()[0]
    chimera, X = ns['chimera'], ns['X']
    state = chimera.state_dict()
    assert '2.rand_weight' in state and state['2.rand_weight'].shape == (20, 20)
    assert '2.rand_weight' not in dict(chimera.named_parameters())
    before = chimera[2].rand_weight.data()._data.copy()
    opt = dm.optim.SGD(chimera.parameters(), lr=0.1)
    chimera(X).backward()
    opt.step()
    numpy.testing.assert_array_equal(chimera[2].rand_weight._data, before)
    assert chimera[2].rand_weight.grad is None and chimera[2].dense.weight.grad is not None
    assert list(chimera.collect_params())[-1] == '2.rand_weight'


def test_deferred_initialization_and_gluon_repr():
    from d2lmod.compat.mxnet import init, np
    from d2lmod.compat.mxnet.gluon import nn
    net = nn.Sequential()
    net.add(nn.Dense(8, activation='relu'), nn.Dense(3))
    assert repr(net[0]) == 'Dense(-1 -> 8, Activation(relu))' and net[0].weight.shape == (8, None)
    with pytest.raises(RuntimeError, match=r'initialize\(\)'):
        net(np.ones((2, 5)))
    net.initialize(init.Normal(sigma=0.5))
    assert net[0].weight._data is None  # deferred: in_units is unknown until the first call
    assert net(np.ones((2, 1, 5))).shape == (2, 3)  # Dense flattens (N, 1, 5) to (N, 5)
    assert repr(net[1]) == 'Dense(8 -> 3, linear)'
    assert net[0].weight.shape == (8, 5) and 0.3 < float(net[0].weight._data.std()) < 0.7
    assert not net[0].bias._data.any()  # a bias keeps its own initializer, zeros
    known = nn.Dense(4, in_units=3)
    known.initialize(init.Constant(0.25))
    assert (known.weight._data == 0.25).all()  # in_units known: filled at once


def test_children_are_weak_references_as_in_gluon_2():
    from d2lmod.compat.mxnet.gluon import nn
    net = nn.Sequential()
    child = nn.Dense(2)
    net.add(child)
    assert list(net._children) == ['0'] and net._children['0']() is child
