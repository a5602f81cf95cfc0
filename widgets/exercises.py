"""Checks for the exercises of lesson 6 (which also poses those of lessons 7-9): each runs the student's code
and says, in one sentence, what is right or what is still wrong, without showing the answer.

    from d2lmod.widgets.exercises import check_registered, check_parallel, check_factory  # and the 3 below
    check_registered(MySequential)   # MySequential(*modules): registers its modules, runs them in order
    check_parallel(Parallel)         # Parallel(net1, net2): both on the same X, outputs side by side
    check_factory(make_blocks)       # make_blocks(make_block, n): n fresh blocks, run one after another
    check_reduction(TensorReduction) # lesson 7: y_k = sum_ij W_ijk x_i x_j, W an nn.Parameter
    check_try_gpu(try_gpu, try_all_gpus)  # lesson 8: the right device with 0, 1, 2 GPUs (pretended)
    check_residual(Residual)         # lesson 9: conv-BN-ReLU-conv-BN + shortcut, then ReLU

A check returns a Verdict: True or False, and its sentence. A cell that ends with a check shows
"Right: ..." or "Not yet: ...". Every check seeds its own random numbers and puts d2lmod's generator back
as it was, so running a check does not change the random numbers of the rest of a notebook.
"""
from __future__ import annotations

import contextlib
import inspect
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


# ---- lesson 7: a custom layer with a parameter ---------------------------------------------------------------
def _reduction(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """y[n, k] = sum_ij W[i, j, k] x[n, i] x[n, j]."""
    return np.einsum('ijk,ni,nj->nk', W, X, X)


@_checked
def check_reduction(ReductionClass) -> str:
    """ReductionClass(in_features, out_features)(X) must be y_k = sum_ij W_ijk x_i x_j for each row, W a Parameter."""
    cls = _name(ReductionClass)
    for d_in, d_out in ((4, 3), (3, 5)):
        call = f'{cls}({d_in}, {d_out})'
        layer = _need_module(_run(call, ReductionClass, d_in, d_out), call)
        params = list(layer.parameters())
        if not params:
            plain = [k for k, v in vars(layer).items() if isinstance(v, Tensor)]
            where = f' (the tensor in self.{plain[0]} is a plain attribute)' if plain else ''
            raise _Stop(f'{call}.parameters() is empty{where}: wrap W in nn.Parameter so that the optimizer, '
                        'state_dict() and to() see it')
        want_shape = (d_in, d_in, d_out)
        weights = [p for p in params if p.shape == want_shape]
        if len(params) != 1 or not weights:
            shapes = ', '.join(str(p.shape) for p in params)
            raise _Stop(f'{call} holds parameters of shapes {shapes}; it should hold one W of shape {want_shape}')
        W = weights[0]
        X = dm.randn(5, d_in)
        what = f'calling {call} on an input of shape {X.shape}'
        out = _need_tensor(_run(what, layer, X), what)
        want = _reduction(W._data, X._data)
        if out.shape != want.shape:
            raise _Stop(f'{what} gives shape {out.shape}; it should be {want.shape}: one row of '
                        f'{d_out} numbers per example')
        if not _same(out._data, want):
            diagonal = np.einsum('iik,ni->nk', W._data, X._data ** 2)
            if _same(out._data, diagonal):
                raise _Stop(f'{call} sums only the terms with i = j; the sum runs over every pair (i, j)')
            raise _Stop(f'{what} gives the right shape but other numbers than y_k = sum over i and j of '
                        'W[i, j, k] x_i x_j, computed for each row on its own')
        G = dm.randn(5, d_out)._data
        _backward(out, dm.tensor(G))
        if W.grad is None:
            raise _Stop(f'after backward() W has no gradient: compute y with tensor operations that autograd '
                        'records, not through .data or NumPy')
        if not _same(W.grad._data, np.einsum('nk,ni,nj->ijk', G, X._data, X._data)):
            raise _Stop(f"W's gradient after backward() is not that of the layer's output")
    return f'{cls} holds W as a parameter and computes sum_ij W_ijk x_i x_j for each example, gradient included'


# ---- lesson 8: try_gpu and try_all_gpus ----------------------------------------------------------------------
@contextlib.contextmanager
def _pretend_gpus(count: int):
    """dm.cuda.device_count() answers count (and is_available() count > 0) inside the block."""
    names = ('device_count', 'is_available')
    saved = [inspect.getattr_static(dm.cuda, name) for name in names]  # as stored (e.g. a staticmethod)
    dm.cuda.device_count, dm.cuda.is_available = staticmethod(lambda: count), staticmethod(lambda: count > 0)
    try:
        yield
    finally:
        for name, value in zip(names, saved):
            setattr(dm.cuda, name, value)


def _gpus(n: int) -> str:
    return f'{n} GPU' + ('' if n == 1 else 's')


@_checked
def check_try_gpu(try_gpu, try_all_gpus=None) -> str:
    """try_gpu(i=0): GPU i if the machine has it, else the CPU; try_all_gpus(): every GPU, or [cpu]."""
    device = type(dm.device('cpu'))
    fn = _name(try_gpu)
    for count in (0, 1, 2):
        with _pretend_gpus(count):
            for args in ((), (0,), (1,), (3,)):
                i = args[0] if args else 0
                want = f'cuda:{i}' if i < count else 'cpu'
                call = f'{fn}({", ".join(map(str, args))})'
                got = _run(f'{call} with {_gpus(count)}', try_gpu, *args)
                if not isinstance(got, device):
                    raise _Stop(f'{call} returned a {type(got).__name__}, not a device: return dm.device(...)')
                if str(got) != want:
                    raise _Stop(f'on a machine with {_gpus(count)} (the check makes dm.cuda.device_count() '
                                f'answer {count}), {call} returned {got}; it should return {want}')
            if try_all_gpus is not None:
                call = f'{_name(try_all_gpus)}()'
                got = _run(f'{call} with {_gpus(count)}', try_all_gpus)
                want = [f'cuda:{i}' for i in range(count)] or ['cpu']
                if not isinstance(got, (list, tuple)) or not all(isinstance(d, device) for d in got):
                    raise _Stop(f'{call} returned {type(got).__name__}; it should return a list of devices')
                if [str(d) for d in got] != want:
                    raise _Stop(f'on a machine with {_gpus(count)}, {call} returned [{", ".join(map(str, got))}]; '
                                f'it should return [{", ".join(want)}]')
    both = ' and try_all_gpus' if try_all_gpus is not None else ''
    return f'{fn}{both} give the right device with 0, 1 and 2 GPUs, falling back to the CPU'


# ---- lesson 9: a residual block ------------------------------------------------------------------------------
def _kind(m: Module) -> str:
    """'conv3', 'conv1', 'bn' or '' for a module of a residual block."""
    name = type(m).__name__
    if 'Conv' in name:
        size = getattr(m, 'kernel_size', None)
        size = size[0] if isinstance(size, (tuple, list)) else size
        return 'conv1' if size == 1 else 'conv3'
    return 'bn' if 'BatchNorm' in name else ''


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


@_checked
def check_residual(ResidualClass) -> str:
    """ResidualClass(channels, use_1x1conv, stride): relu(bn2(conv2(relu(bn1(conv1(X))))) + shortcut(X))."""
    cls = _name(ResidualClass)
    for args, shape, want_shape in (((4,), (2, 4, 5, 5), (2, 4, 5, 5)),
                                    ((6, True, 2), (2, 4, 6, 6), (2, 6, 3, 3))):
        call = f'{cls}({", ".join(map(str, args))})'
        block = _need_module(_run(call, ResidualClass, *args), call)
        X = dm.randn(*shape)
        what = f'calling {call} on an input of shape {shape}'
        out = _need_tensor(_run(what, block, X), what)  # the first call also sets lazy sizes
        if out.shape != want_shape:
            raise _Stop(f'{what} gives shape {out.shape}; it should be {want_shape}')
        calls = []
        handles = [m.register_forward_hook(lambda m, a, o: calls.append((_kind(m), a[0], o)))
                   for m in block.modules() if m is not block and _kind(m)]
        try:
            out = _run(what, block, X)
        finally:
            for h in handles:
                h.remove()
        main = [c for c in calls if c[0] != 'conv1']
        if [c[0] for c in main] != ['conv3', 'bn', 'conv3', 'bn']:
            raise _Stop(f'{what} calls {", ".join(c[0] for c in main) or "no convolution"} on its main path '
                        '(conv3: a 3 x 3 convolution, bn: BatchNorm); it should call conv3, bn, conv3, bn, in order')
        (_, _, c1), (_, b1_in, b1), (_, c2_in, c2), (_, b2_in, b2) = main
        if not _same(b1_in._data, c1._data) or not _same(b2_in._data, c2._data):
            raise _Stop(f'in {call} a BatchNorm does not take the output of the convolution just before it')
        if not _same(c2_in._data, _relu(b1._data)):
            raise _Stop(f'in {call} the second convolution should take the ReLU of the first BatchNorm\'s output')
        shortcut = [c for c in calls if c[0] == 'conv1']
        if len(args) > 1 and args[1]:
            if len(shortcut) != 1 or not _same(shortcut[0][1]._data, X._data):
                raise _Stop(f'{call} should send its input X through one 1 x 1 convolution on the shortcut')
            S = shortcut[0][2]._data
        else:
            if shortcut:
                raise _Stop(f'{call} (use_1x1conv False) should keep X itself as the shortcut, not convolve it')
            S = X._data
        if out.shape == b2.shape and _same(out._data, b2._data + S):
            raise _Stop(f'{call} adds the shortcut but misses the ReLU after the addition')
        if out.shape == b2.shape and _same(out._data, _relu(b2._data)):
            raise _Stop(f'{call} returns the main path alone: add the shortcut before the last ReLU')
        if out.shape == b2.shape and _same(out._data, _relu(b2._data) + S):
            raise _Stop(f'{call} applies the last ReLU before adding the shortcut; it belongs after the addition')
        if not _same(out._data, _relu(b2._data + S)):
            raise _Stop(f'{what} does not return relu(main path + shortcut)')
        _backward(out, dm.randn(*want_shape))
        if any(p.grad is None for p in block.parameters()):
            raise _Stop(f'after backward() some parameters of {call} have no gradient')
    return f'{cls} computes relu(BN(conv(relu(BN(conv(X))))) + shortcut), with a 1 x 1 shortcut when asked'
