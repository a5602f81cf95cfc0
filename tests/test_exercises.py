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
from d2lmod.nn import functional as F
from d2lmod.widgets.exercises import (Verdict, check_factory, check_parallel, check_reduction, check_registered,
                                      check_residual, check_try_gpu)

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


# ---- check_reduction (lesson 7) -----------------------------------------------------------------------------
class TensorReduction(nn.Module):  # the right answer
    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(dm.randn(in_features, in_features, out_features))

    def forward(self, X):
        n, d = X.shape
        XW = (X @ self.W.reshape(d, -1)).reshape(n, d, -1)
        return (XW * X.reshape(n, d, 1)).sum(dim=1)


class ReductionLoop(TensorReduction):  # also right: one output at a time, any parameter name
    def __init__(self, in_features, out_features):
        nn.Module.__init__(self)
        self.weights = nn.Parameter(dm.randn(in_features, in_features, out_features))

    def forward(self, X):
        cols = [((X @ self.weights[:, :, k]) * X).sum(dim=1, keepdim=True) for k in range(self.weights.shape[2])]
        return dm.cat(cols, dim=1)


class ReductionPlain(TensorReduction):
    def __init__(self, in_features, out_features):
        nn.Module.__init__(self)
        self.W = dm.randn(in_features, in_features, out_features)


class ReductionDiagonal(TensorReduction):  # only i == j
    def forward(self, X):
        d = X.shape[1]
        diag = dm.cat([self.W[i, i].reshape(1, -1) for i in range(d)], dim=0)   # (d, out)
        return (X * X) @ diag


class ReductionWrongShape(TensorReduction):
    def __init__(self, in_features, out_features):
        nn.Module.__init__(self)
        self.W = nn.Parameter(dm.randn(in_features, out_features))

    def forward(self, X):
        return X @ self.W


class ReductionWholeBatch(TensorReduction):  # mixes the examples of a batch
    def forward(self, X):
        n, d = X.shape
        XW = (X @ self.W.reshape(d, -1)).reshape(n, d, -1)
        return (XW * X.reshape(n, d, 1)).sum(dim=1).sum(dim=0, keepdim=True)


class ReductionNumpy(TensorReduction):
    def forward(self, X):
        return dm.tensor(np.einsum('ijk,ni,nj->nk', self.W._data, X._data, X._data))


class ReductionExtraBias(TensorReduction):
    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features)
        self.b = nn.Parameter(dm.zeros(out_features))


def test_reduction_accepts_right_answers():
    expect(check_reduction(TensorReduction), True, 'holds W as a parameter')
    expect(check_reduction(ReductionLoop), True)


@pytest.mark.parametrize('cls, phrases', [
    (ReductionPlain, ['ReductionPlain(4, 3).parameters() is empty', 'self.W is a plain attribute',
                       'nn.Parameter']),
    (ReductionDiagonal, ['sums only the terms with i = j']),
    (ReductionWrongShape, ['parameters of shapes (4, 3)', 'one W of shape (4, 4, 3)']),
    (ReductionWholeBatch, ['gives shape (1, 3)', 'should be (5, 3)']),
    (ReductionNumpy, ['W has no gradient', 'not through .data or NumPy']),
    (ReductionExtraBias, ['parameters of shapes (4, 4, 3), (3,)']),
])
def test_reduction_rejects_wrong_answers(cls, phrases):
    expect(check_reduction(cls), False, *phrases)


# ---- check_try_gpu (lesson 8) -------------------------------------------------------------------------------
def try_gpu(i=0):  # the right answer
    if dm.cuda.device_count() >= i + 1:
        return dm.device(f'cuda:{i}')
    return dm.device('cpu')


def try_all_gpus():
    return [dm.device(f'cuda:{i}') for i in range(dm.cuda.device_count())] or [dm.device('cpu')]


def try_gpu_first(i=0):
    return dm.device('cuda:0') if dm.cuda.is_available() else dm.device('cpu')


def try_gpu_off_by_one(i=0):
    return dm.device(f'cuda:{i}') if dm.cuda.device_count() > i + 1 else dm.device('cpu')


def try_gpu_always(i=0):
    return dm.device(f'cuda:{i}')


def try_gpu_string(i=0):
    return f'cuda:{i}' if dm.cuda.device_count() > i else 'cpu'


def try_all_gpus_empty():
    return [dm.device(f'cuda:{i}') for i in range(dm.cuda.device_count())]


def test_try_gpu_accepts_the_right_answer():
    expect(check_try_gpu(try_gpu, try_all_gpus), True, 'try_gpu and try_all_gpus give the right device')
    expect(check_try_gpu(try_gpu), True)


@pytest.mark.parametrize('fns, phrases', [
    ((try_gpu_first,), ['with 1 GPU ', 'try_gpu_first(1) returned cuda:0', 'it should return cpu']),
    ((try_gpu_off_by_one,), ['with 1 GPU ', 'try_gpu_off_by_one() returned cpu', 'should return cuda:0']),
    ((try_gpu_always,), ['with 0 GPUs', 'returned cuda:0', 'should return cpu']),
    ((try_gpu_string,), ['returned a str, not a device']),
    ((try_gpu, try_all_gpus_empty), ['with 0 GPUs, try_all_gpus_empty() returned []', 'should return [cpu]']),
])
def test_try_gpu_rejects_wrong_answers(fns, phrases):
    expect(check_try_gpu(*fns), False, *phrases)


def test_try_gpu_puts_the_machine_back():
    check_try_gpu(try_gpu_first)
    assert dm.cuda.device_count() == 0 and dm.cuda.is_available() is False


# ---- check_residual (lesson 9) ------------------------------------------------------------------------------
class Residual(nn.Module):  # the right answer
    def __init__(self, channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(channels, kernel_size=1, stride=stride) if use_1x1conv else None
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


class ResidualNoShortcut(Residual):
    def forward(self, X):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X))))))


class ResidualNoFinalRelu(Residual):
    def forward(self, X):
        Y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X)))))
        return Y + (X if self.conv3 is None else self.conv3(X))


class ResidualReluFirst(Residual):
    def forward(self, X):
        Y = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X))))))
        return Y + (X if self.conv3 is None else self.conv3(X))


class ResidualNoBatchNorm(Residual):
    def forward(self, X):
        Y = self.conv2(F.relu(self.conv1(X)))
        return F.relu(Y + (X if self.conv3 is None else self.conv3(X)))


class ResidualNoMiddleRelu(Residual):
    def forward(self, X):
        Y = self.bn2(self.conv2(self.bn1(self.conv1(X))))
        return F.relu(Y + (X if self.conv3 is None else self.conv3(X)))


class ResidualIgnoresFlag(Residual):  # never builds the 1x1 convolution
    def __init__(self, channels, use_1x1conv=False, stride=1):
        super().__init__(channels, False, stride)


class ResidualBnOrder(Residual):  # the first BatchNorm normalises the input, not the convolution's output
    def forward(self, X):
        Y = F.relu(self.conv1(self.bn1(X)))
        Y = self.bn2(self.conv2(Y))
        return F.relu(Y + (X if self.conv3 is None else self.conv3(X)))


def test_residual_accepts_the_right_answer():
    expect(check_residual(Residual), True, 'computes relu(BN(conv(relu(BN(conv(X))))) + shortcut)')


@pytest.mark.parametrize('cls, phrases', [
    (ResidualNoShortcut, ['returns the main path alone', 'add the shortcut']),
    (ResidualNoFinalRelu, ['misses the ReLU after the addition']),
    (ResidualReluFirst, ['applies the last ReLU before adding the shortcut']),
    (ResidualNoBatchNorm, ['calls conv3, conv3 on its main path', 'should call conv3, bn, conv3, bn']),
    (ResidualNoMiddleRelu, ['the second convolution should take the ReLU']),
    (ResidualIgnoresFlag, ['ResidualIgnoresFlag(6, True, 2) on an input of shape (2, 4, 6, 6) raised']),
    (ResidualBnOrder, ['calls bn, conv3, conv3, bn on its main path']),
])
def test_residual_rejects_wrong_answers(cls, phrases):
    expect(check_residual(cls), False, *phrases)


# ---- what every check promises ----------------------------------------------------------------------------
def test_checks_leave_the_random_numbers_of_the_notebook_alone():
    dm.manual_seed(0)
    expected = dm.rand(3)._data
    dm.manual_seed(0)
    check_parallel(Parallel), check_factory(make_blocks_repeated), check_registered(StubSequential)
    check_reduction(ReductionDiagonal), check_residual(ResidualNoShortcut)
    np.testing.assert_array_equal(dm.rand(3)._data, expected)


def test_checks_are_deterministic():
    assert str(check_parallel(ParallelSwapped)) == str(check_parallel(ParallelSwapped))
    assert str(check_registered(ListSequential)) == str(check_registered(ListSequential))


def test_verdict_shows_its_sentence():
    v = Verdict(False, 'something is off')
    assert repr(v) == str(v) == 'Not yet: something is off' and not v
    assert Verdict(True, 'fine') and repr(Verdict(True, 'fine')) == 'Right: fine'
