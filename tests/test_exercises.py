"""The exercise checks of lesson 6: each accepts a right answer, and rejects each typical wrong one with the
sentence that says what is wrong (and never prints the answer).

The right answers below are what a student should arrive at; the wrong ones are the mistakes students make.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import d2lmod as dm
from d2lmod import nn
from d2lmod.widgets.exercises import Verdict, check_factory, check_parallel, check_registered

from chapter_models import ListSequential


def expect(verdict: Verdict, passed: bool, *phrases: str) -> None:
    assert isinstance(verdict, Verdict)
    assert verdict.passed is passed, str(verdict)
    assert str(verdict).startswith('Right: ' if passed else 'Not yet: ')
    for phrase in phrases:
        assert phrase in verdict.message, f'{phrase!r} not in {verdict.message!r}'
    assert verdict.message.count('. ') == 0, f'one sentence, please: {verdict.message!r}'


# ---- check_registered --------------------------------------------------------------------------------------
class AddModuleSequential(nn.Module):  # the chapter's answer
    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, X):
        for m in self.children():
            X = m(X)
        return X


class ModuleListSequential(nn.Module):  # also right
    def __init__(self, *modules):
        super().__init__()
        self.layers = nn.ModuleList(modules)

    def forward(self, X):
        for m in self.layers:
            X = m(X)
        return X


class PlainDictSequential(ListSequential):
    def __init__(self, *modules):
        super().__init__()
        self.layers = {str(i): m for i, m in enumerate(modules)}.values()


class OverwritingSequential(ListSequential):  # one attribute name reused: only the last module stays
    def __init__(self, *modules):
        super().__init__(*modules)
        for m in modules:
            self.layer = m


class OnlyParameterizedSequential(ListSequential):  # skips the ReLU
    def __init__(self, *modules):
        super().__init__(*modules)
        for i, m in enumerate(modules):
            if list(m.parameters()):
                self.add_module(str(i), m)


class ReversedSequential(AddModuleSequential):
    def __init__(self, *modules):
        super().__init__(*reversed(modules))


class NewLayersSequential(AddModuleSequential):  # builds its own layers besides the given ones
    def __init__(self, *modules):
        super().__init__(*modules, nn.Linear(3, 3))

    def forward(self, X):
        return super().forward(X)


class IdentityForwardSequential(AddModuleSequential):
    def forward(self, X):
        return X


class LastOnlySequential(AddModuleSequential):
    def forward(self, X):
        return list(self.children())[-1](X)


class DataForwardSequential(AddModuleSequential):  # right numbers, but autograd is bypassed
    def forward(self, X):
        x = X._data
        for m in self.children():
            x = m(dm.tensor(x))._data
        return dm.tensor(x)


class StubSequential(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        raise NotImplementedError

    def forward(self, X):
        raise NotImplementedError


class NoSuperSequential(nn.Module):
    def __init__(self, *modules):
        for i, m in enumerate(modules):
            self.add_module(str(i), m)


class VarargsMissingSequential(AddModuleSequential):
    def __init__(self, modules):
        super().__init__(*modules)


@pytest.mark.parametrize('cls', [AddModuleSequential, ModuleListSequential])
def test_registered_accepts_right_answers(cls):
    expect(check_registered(cls), True, f'{cls.__name__} registers all 3 modules in order')


@pytest.mark.parametrize('cls, phrases', [
    (ListSequential, ['.parameters() is empty', 'where the Module cannot see them', 'without any error']),
    (PlainDictSequential, ['.parameters() is empty']),
    (OverwritingSequential, ['lists only 2 of the 4 parameter tensors', 'overwrote']),
    (OnlyParameterizedSequential, ['the ReLU at position 1 is not registered']),
    (ReversedSequential, ['another order than the modules were given']),
    (NewLayersSequential, ['parameters of layers it was not given']),
    (IdentityForwardSequential, ['gives an output (of shape (4, 6)) that differs from running the modules',
                                 '(shape (4, 3))']),
    (LastOnlySequential, ['calling LastOnlySequential(Linear(6, 5), ReLU(), Linear(5, 3)) on an input of shape '
                          '(4, 6) raised ValueError', 'in_features=5']),
    (DataForwardSequential, ['some parameters have no gradient']),
    (StubSequential, ['raised NotImplementedError, so it is not written yet']),
    (NoSuperSequential, ['raised AttributeError', 'super().__init__()']),
    (VarargsMissingSequential, ['raised TypeError']),
])
def test_registered_rejects_wrong_answers(cls, phrases):
    expect(check_registered(cls), False, *phrases)


class OnlyOwnLayersSequential(AddModuleSequential):  # ignores what it is given
    def __init__(self, *modules):
        super().__init__(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


class BrokenParametersSequential(AddModuleSequential):  # fails where the check does not expect it
    def parameters(self, recurse=True):
        raise RuntimeError('oops')


def test_registered_says_what_it_saw():
    expect(check_registered(OnlyOwnLayersSequential), False,
           '.parameters() holds none of the weights of the modules it was given')
    expect(check_registered(BrokenParametersSequential), False,
           'checking BrokenParametersSequential raised RuntimeError: oops')


def test_registered_rejects_a_non_module():
    expect(check_registered(lambda *modules: list(modules)), False, 'gave a list, not a Module')


# ---- check_parallel ---------------------------------------------------------------------------------------
class Parallel(nn.Module):  # the right answer
    def __init__(self, net1, net2):
        super().__init__()
        self.net1, self.net2 = net1, net2

    def forward(self, X):
        return dm.cat([self.net1(X), self.net2(X)], dim=1)


class ParallelList(Parallel):
    def __init__(self, net1, net2):
        nn.Module.__init__(self)
        self.nets = [net1, net2]

    def forward(self, X):
        return dm.cat([n(X) for n in self.nets], dim=1)


class ParallelHalfRegistered(Parallel):
    def __init__(self, net1, net2):
        nn.Module.__init__(self)
        self.net1, self.others = net1, [net2]

    def forward(self, X):
        return dm.cat([self.net1(X), self.others[0](X)], dim=1)


class ParallelSum(Parallel):
    def forward(self, X):
        return self.net1(X) + self.net2(X)


class ParallelRows(Parallel):
    def forward(self, X):
        return dm.cat([self.net1(X), self.net2(X)], dim=0)


class ParallelChained(Parallel):
    def forward(self, X):
        return self.net2(self.net1(X))


class ParallelSwapped(Parallel):
    def forward(self, X):
        return dm.cat([self.net2(X), self.net1(X)], dim=1)


class ParallelTwiceNet1(Parallel):
    def forward(self, X):
        return dm.cat([self.net1(X), self.net1(X)], dim=1)


class ParallelNumpy(Parallel):
    def forward(self, X):
        return dm.tensor(np.concatenate([self.net1(X)._data, self.net2(X)._data], axis=1))


class ParallelTuple(Parallel):
    def forward(self, X):
        return self.net1(X), self.net2(X)


class ParallelStub(nn.Module):
    def __init__(self, net1, net2):
        super().__init__()
        raise NotImplementedError


class ParallelHalfGrad(Parallel):  # net2's part detached
    def forward(self, X):
        return dm.cat([self.net1(X), self.net2(X).detach()], dim=1)


def test_parallel_accepts_the_right_answer():
    expect(check_parallel(Parallel), True, 'runs both networks on the same input')


@pytest.mark.parametrize('cls, phrases', [
    (ParallelList, ['misses the weights of net1 and net2', 'the optimizer will never train it']),
    (ParallelHalfRegistered, ['misses the weights of net2']),
    (ParallelSum, ['gives an output of shape (4, 3)', 'it should be (4, 6)', 'side by side']),
    (ParallelRows, ['gives an output of shape (8, 3)', 'it should be (4, 6)']),
    (ParallelChained, ['raised ValueError']),
    (ParallelSwapped, ["starts with net2's columns"]),
    (ParallelTwiceNet1, ['the right shape but other numbers', 'both run on the same X']),
    (ParallelNumpy, ['have no gradient', 'not through .data or NumPy']),
    (ParallelHalfGrad, ['have no gradient']),
    (ParallelTuple, ['on an input of shape (4, 6) returned a tuple, not one Tensor']),
    (ParallelStub, ['not written yet']),
])
def test_parallel_rejects_wrong_answers(cls, phrases):
    expect(check_parallel(cls), False, *phrases)


# ---- check_factory ------------------------------------------------------------------------------------------
def make_blocks(make_block, n):  # the right answer
    return nn.Sequential(*[make_block() for _ in range(n)])


def make_blocks_copies(make_block, n):  # also right: deep copies have weights of their own
    block = make_block()
    return nn.Sequential(block, *[copy.deepcopy(block) for _ in range(n - 1)])


def make_blocks_repeated(make_block, n):  # the silent tie
    block = make_block()
    return nn.Sequential(*[block] * n)


def make_blocks_list(make_block, n):
    return [make_block() for _ in range(n)]


def make_blocks_fixed(make_block, n):
    return nn.Sequential(*[make_block() for _ in range(3)])


def make_blocks_hidden(make_block, n):
    return ListSequential(*[make_block() for _ in range(n)])


def make_blocks_stub(make_block, n):
    raise NotImplementedError


def make_blocks_wrong_width(make_block, n):
    return nn.Sequential(*[make_block() for _ in range(n)], nn.Linear(8, 4))


def test_factory_accepts_right_answers():
    expect(check_factory(make_blocks), True, 'make_blocks builds fresh blocks', '216 parameters for 3 blocks')
    expect(check_factory(make_blocks_copies), True)


@pytest.mark.parametrize('fn, phrases', [
    (make_blocks_repeated, ['make_blocks_repeated(make_block, 3) has 72 distinct parameters for 3 blocks',
                            'tied', 'silent tie']),
    (make_blocks_list, ['gave a list, not a Module']),
    (make_blocks_fixed, ['make_blocks_fixed(make_block, 1) holds 3 blocks', 'it should hold 1']),
    (make_blocks_hidden, ['has no parameters', 'not registered']),
    (make_blocks_stub, ['not written yet']),
    (make_blocks_wrong_width, ['holds 252 parameters, but 3 blocks', 'have 216']),
])
def test_factory_rejects_wrong_answers(fn, phrases):
    expect(check_factory(fn), False, *phrases)


# ---- what every check promises ----------------------------------------------------------------------------
def test_checks_leave_the_random_numbers_of_the_notebook_alone():
    dm.manual_seed(0)
    expected = dm.rand(3)._data
    dm.manual_seed(0)
    check_parallel(Parallel), check_factory(make_blocks_repeated), check_registered(StubSequential)
    np.testing.assert_array_equal(dm.rand(3)._data, expected)


def test_checks_are_deterministic():
    assert str(check_parallel(ParallelSwapped)) == str(check_parallel(ParallelSwapped))
    assert str(check_registered(ListSequential)) == str(check_registered(ListSequential))


def test_verdict_shows_its_sentence():
    v = Verdict(False, 'something is off')
    assert repr(v) == str(v) == 'Not yet: something is off' and not v
    assert Verdict(True, 'fine') and repr(Verdict(True, 'fine')) == 'Right: fine'
