"""Checks for the exercises of lesson 6: each runs the student's code and says, in one sentence, what is right
or what is still wrong, without showing the answer.

    from d2lmod.widgets.exercises import check_registered, check_parallel, check_factory
    check_registered(MySequential)   # MySequential(*modules): registers its modules, runs them in order
    check_parallel(Parallel)         # Parallel(net1, net2): both on the same X, outputs side by side
    check_factory(make_blocks)       # make_blocks(make_block, n): n fresh blocks, run one after another

A check returns a Verdict: True or False, and its sentence. A cell that ends with a check shows
"Right: ..." or "Not yet: ...". Every check seeds its own random numbers and puts d2lmod's generator back
as it was, so running a check does not change the random numbers of the rest of a notebook.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

import d2lmod as dm
from d2lmod import nn
from d2lmod.factories import generator
from d2lmod.nn.module import Module
from d2lmod.tensor import Tensor

SEED = 1234


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: passed, and one sentence saying why."""
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return ('Right: ' if self.passed else 'Not yet: ') + self.message

    __repr__ = __str__  # a cell ending in a check shows the sentence


class _Stop(Exception):
    """Raised inside a check to end it with a failing verdict."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@contextlib.contextmanager
def _own_random_numbers():
    """Seeded random numbers inside the check; d2lmod's generator continues afterwards as if nothing ran."""
    state = generator().bit_generator.state
    generator().bit_generator.state = np.random.default_rng(SEED).bit_generator.state
    try:
        yield
    finally:
        generator().bit_generator.state = state


def _run(what: str, fn, *args):
    """fn(*args), or stop with a sentence naming what raised; an unwritten stub gets its own sentence."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _Stop(f'{what} raised NotImplementedError, so it is not written yet: replace each '
                    '`raise NotImplementedError` with your code') from None
    except Exception as error:  # the student's own mistake: say what it was, in their code's words
        raise _Stop(f'{what} raised {type(error).__name__}: {_clip(str(error))}') from None


def _clip(text: str, width: int = 240) -> str:
    text = ' '.join(text.split())
    return text if len(text) <= width else text[:width - 3] + '...'


def _checked(check):
    """Run check's body; a _Stop becomes a failing Verdict."""
    def run(*args, **kwargs) -> Verdict:
        try:
            with _own_random_numbers():
                return Verdict(True, check(*args, **kwargs))
        except _Stop as stop:
            return Verdict(False, stop.message)
        except Exception as error:  # the student's code failed somewhere the check did not expect
            return Verdict(False, f'checking {_name(args[0]) if args else "it"} raised {type(error).__name__}: '
                                  f'{_clip(str(error))}')
    run.__name__, run.__qualname__, run.__doc__ = check.__name__, check.__qualname__, check.__doc__
    return run


def _name(obj) -> str:
    return getattr(obj, '__name__', type(obj).__name__)


def _need_module(obj, what: str) -> Module:
    if not isinstance(obj, Module):
        raise _Stop(f'{what} gave a {type(obj).__name__}, not a Module: it must be a module you can call, '
                    'whose parameters() the optimizer can read')
    return obj


def _need_tensor(out, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise _Stop(f'{what} returned a {type(out).__name__}, not one Tensor')
    return out


def _missing(model: Module, expected: list) -> list:
    """The tensors of expected that model.parameters() does not list."""
    seen = {id(p) for p in model.parameters()}
    return [p for p in expected if id(p) not in seen]


def _grads(params: list) -> list:
    return [None if p.grad is None else p.grad._data.copy() for p in params]


def _backward(out: Tensor, gradient=None) -> None:
    """out.backward(gradient); an output that autograd did not record leaves every .grad as None."""
    if out.requires_grad:
        out.backward(gradient)


def _same(a, b) -> bool:
    return a is not None and b is not None and a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6)


# ---- exercise 1: children in a plain list -----------------------------------------------------------------
@_checked
def check_registered(MySequentialClass) -> str:
    """MySequentialClass(*modules) must register every module, in order, and run them one after another."""
    cls = _name(MySequentialClass)
    layers = [nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)]
    call = f'{cls}(Linear(6, 5), ReLU(), Linear(5, 3))'
    net = _need_module(_run(call, MySequentialClass, *layers), call)
    expected = [p for m in layers for p in m.parameters()]

    missing = _missing(net, expected)
    if len(missing) == len(expected):
        listed = 'is empty' if not list(net.parameters()) else 'holds none of the weights of the modules it was given'
        raise _Stop(f'{call}.parameters() {listed}: the modules are stored where the Module cannot see them, '
                    'so an optimizer, state_dict() and to() would all miss them, without any error')
    if missing:
        raise _Stop(f'{call}.parameters() lists only {len(expected) - len(missing)} of the {len(expected)} '
                    'parameter tensors of the modules it was given: some modules are stored where the Module '
                    'cannot see them, or one registration overwrote another')
    ids = [id(p) for p in expected]
    own = [p for p in net.parameters() if id(p) in ids]
    if len(list(net.parameters())) != len(expected):
        raise _Stop(f'{call}.parameters() holds parameters of layers it was not given: use the modules passed '
                    'in, do not build new ones')
    if [id(p) for p in own] != ids:
        raise _Stop(f'{call}.parameters() lists the weights in another order than the modules were given: '
                    'register them in the order of the arguments')
    registered = {id(m) for m in net.modules()}
    for i, m in enumerate(layers):
        if id(m) not in registered:
            raise _Stop(f'the {type(m).__name__} at position {i} is not registered: it has no parameters, but '
                        'modules() and train()/eval() should still reach every module')
    if len(net.state_dict()) != len(expected):
        raise _Stop(f'{call}.state_dict() has {len(net.state_dict())} entries instead of {len(expected)}')

    X = dm.rand(4, 6)
    what = f'calling {call} on an input of shape {X.shape}'
    out = _need_tensor(_run(what, net, X), what)
    want = layers[2](layers[1](layers[0](X)))
    if out.shape != want.shape or not _same(out._data, want._data):
        raise _Stop(f'{what} gives an output (of shape {out.shape}) that differs from running the modules one '
                    f'after another in the order given (shape {want.shape})')
    _backward(out.sum())
    if any(p.grad is None for p in expected):
        raise _Stop('after backward() some parameters have no gradient: forward must call the modules '
                    'themselves so that autograd records every step')
    return (f'{cls} registers all {len(layers)} modules in order, so parameters(), state_dict(), to() and '
            'the optimizer see every weight, and forward runs them one after another')


# ---- exercise 2: two networks side by side ------------------------------------------------------------------
@_checked
def check_parallel(ParallelClass) -> str:
    """ParallelClass(net1, net2)(X) must be net1(X) and net2(X) joined side by side: shape (N, out1 + out2)."""
    cls = _name(ParallelClass)
    for widths in ((3, 3), (3, 2)):  # equal widths catch a sum, different widths a mixed-up order
        net1, net2 = nn.Linear(6, widths[0]), nn.Linear(6, widths[1])
        call = f'{cls}(Linear(6, {widths[0]}), Linear(6, {widths[1]}))'
        model = _need_module(_run(call, ParallelClass, net1, net2), call)
        params = list(net1.parameters()) + list(net2.parameters())
        missing = _missing(model, params)
        if missing:
            whose = ' and '.join(n for n, net in (('net1', net1), ('net2', net2))
                                 if any(p is q for p in net.parameters() for q in missing))
            raise _Stop(f'{call}.parameters() misses the weights of {whose}: store each network where the '
                        'Module registers it, or the optimizer will never train it')

        X = dm.rand(4, 6)
        y1, y2 = net1(X), net2(X)
        G = dm.randn(4, sum(widths))._data
        y1.backward(G[:, :widths[0]])
        y2.backward(G[:, widths[0]:])
        want_grads = _grads(params)
        model.zero_grad()

        what = f'calling {call} on an input of shape {X.shape}'
        out = _need_tensor(_run(what, model, X), what)
        want_shape = (4, sum(widths))
        if out.shape != want_shape:
            raise _Stop(f'{call} gives an output of shape {out.shape} for an input of shape {X.shape}; with '
                        f'outputs of shapes {y1.shape} and {y2.shape} it should be {want_shape}: one row per '
                        'example, the features of both networks side by side')
        left, right = out._data[:, :widths[0]], out._data[:, widths[0]:]
        if _same(out._data[:, :widths[1]], y2._data):
            raise _Stop(f'the output of {call} starts with net2\'s columns: net1\'s output comes first')
        if not _same(left, y1._data) or not _same(right, y2._data):
            raise _Stop(f'the output of {call} has the right shape but other numbers: its first {widths[0]} '
                        f'columns should be net1(X) and the last {widths[1]} net2(X), both run on the same X')
        _backward(out, dm.tensor(G))
        got = _grads(params)
        if any(g is None for g in got):
            raise _Stop('after backward() some weights of the two networks have no gradient: build the output '
                        'with tensor operations that autograd records, not through .data or NumPy')
        if not all(_same(g, w) for g, w in zip(got, want_grads)):
            raise _Stop('the gradients that reach the two networks are not those of their own output columns')
    return (f'{cls} runs both networks on the same input and puts their outputs side by side, and the '
            'gradients flow back to both')


# ---- exercise 3: a factory of fresh blocks ------------------------------------------------------------------
BLOCK = 'nn.Sequential(nn.Linear(8, 8), nn.ReLU())'


def _make_block() -> Module:
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU())


@_checked
def check_factory(make_blocks) -> str:
    """make_blocks(make_block, n) must return one Module that runs n fresh blocks (own weights) in turn."""
    fn = _name(make_blocks)
    per_block = sum(p.numel() for p in _make_block().parameters())
    for n in (3, 1):
        made = []

        def make_block():
            made.append(_make_block())
            return made[-1]
        call = f'{fn}(make_block, {n})'
        net = _need_module(_run(call, make_blocks, make_block, n), call)
        by_path = sum(t.numel() for t in net.state_dict().values())
        unique = sum(p.numel() for p in net.parameters())
        if unique == 0:
            raise _Stop(f'{call} has no parameters: the blocks are not registered inside the module it returns')
        if by_path % per_block:
            raise _Stop(f'{call} holds {by_path} parameters, but {n} blocks of {BLOCK} have {n * per_block}: '
                        'the module should hold the blocks that make_block builds, and nothing else')
        if by_path != n * per_block:
            raise _Stop(f'{call} holds {by_path // per_block} blocks (each block, {BLOCK}, has {per_block} '
                        f'parameters); it should hold {n}')
        if unique != by_path:
            raise _Stop(f'{call} has {unique} distinct parameters for {n} blocks of {per_block}: the same block '
                        f'object sits at several positions, so those positions are tied and train as one, '
                        'a silent tie that no error reports')
        X = dm.rand(2, 8)
        what = f'calling {call} on an input of shape {X.shape}'
        out = _need_tensor(_run(what, net, X), what)
        if out.shape != X.shape:
            raise _Stop(f'{call} turns an input of shape {X.shape} into {out.shape}: each block keeps 8 '
                        'features, so the blocks run one after another should too')
        ids = {id(b) for b in made}
        blocks = [m for m in net.modules() if id(m) in ids]  # in registration order
        if len(blocks) == n:  # the blocks make_block built (a student may also copy them: then shape only)
            want = X
            for b in blocks:
                want = b(want)
            if not _same(out._data, want._data):
                raise _Stop(f'{call} does not give the output of its {n} blocks run one after another')
        _backward(out.sum())
        if any(p.grad is None for p in net.parameters()):
            raise _Stop(f'after backward() some parameters of {call} have no gradient: every block must run')
    return (f'{fn} builds fresh blocks with weights of their own ({3 * per_block} parameters for 3 blocks) and '
            'runs them one after another')
