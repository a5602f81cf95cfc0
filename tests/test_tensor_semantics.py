"""Tensor semantics checked against PyTorch: .data, in-place updates and their rules, version counters,
freeing the graph after backward, dtype promotion, factories, devices, and per-thread autograd state.

Each test runs the same lines on d2lmod and on torch (2.13, CPU) and compares what a user would see: values,
dtypes, shapes, gradients, and the kind and opening words of an error.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import d2lmod as dm
from d2lmod import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

DTYPES = {'bool': (np.bool_, torch.bool), 'int32': (np.int32, torch.int32), 'int64': (np.int64, torch.int64),
          'float32': (np.float32, torch.float32), 'float64': (np.float64, torch.float64)}


def same_dtype(ours, theirs) -> bool:
    return str(ours.dtype) == str(theirs.dtype).replace('torch.', '')


def outcome(fn, lib):
    """('ok', value) or ('error', exception type, its first words), the same for both libraries."""
    try:
        value = fn(lib)
    except Exception as error:  # noqa: BLE001 (any kind: the kinds are compared)
        return ('error', type(error).__name__, ' '.join(str(error).split()[:6]))
    return ('ok', value)


def grads_of(tensors):
    return [None if t.grad is None else np.asarray(t.grad.tolist(), dtype=float) for t in tensors]


def assert_same_outcome(program):
    """program(lib) -> leaves: run on both; same error kind and words, or same leaf gradients."""
    ours, theirs = outcome(program, dm), outcome(program, torch)
    if ours[0] == 'error' or theirs[0] == 'error':
        assert ours == theirs
        return
    for a, b in zip(grads_of(ours[1]), grads_of(theirs[1])):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---- in-place updates: the leaf rule, the version counter, and history --------------------------------------
def leaf(lib, values=(1.0, -2.0, 3.0)):
    return lib.tensor(list(values), requires_grad=True)


IN_PLACE_ON_A_LEAF = {
    'fill_': lambda x: x.fill_(2.0), 'zero_': lambda x: x.zero_(), 'normal_': lambda x: x.normal_(),
    'uniform_': lambda x: x.uniform_(), 'copy_': lambda x: x.copy_(x.detach() * 2), 'clamp_': lambda x: x.clamp_(0, 1),
    '+=': lambda x: x.__iadd__(1), '-=': lambda x: x.__isub__(1), '*=': lambda x: x.__imul__(2),
    '/=': lambda x: x.__itruediv__(2), 'setitem': lambda x: x.__setitem__(0, 5.0),
    'view +=': lambda x: x[0].__iadd__(1), 'view fill_': lambda x: x.reshape(3, 1).fill_(0.0),
}


@pytest.mark.parametrize('name', sorted(IN_PLACE_ON_A_LEAF))
def test_in_place_on_a_leaf_that_requires_grad_fails_as_in_torch_and_works_under_no_grad(name):
    change = IN_PLACE_ON_A_LEAF[name]
    ours, theirs = outcome(lambda lib: change(leaf(lib)), dm), outcome(lambda lib: change(leaf(lib)), torch)
    assert ours[:2] == theirs[:2] == ('error', 'RuntimeError')
    assert ours[2] == theirs[2]  # the same opening words
    for lib in (dm, torch):
        x = leaf(lib)
        with lib.no_grad():
            out = change(x)
        assert x._version == 1 and x.requires_grad and x.is_leaf
        assert out is None or out is x or 'view' in name


def test_in_place_values_agree_with_torch():
    for name, change in IN_PLACE_ON_A_LEAF.items():
        if name in ('normal_', 'uniform_'):
            continue
        results = []
        for lib in (dm, torch):
            x = lib.tensor([0.5, -2.0, 3.0])
            change(x)
            results.append(x.tolist())
        np.testing.assert_allclose(*results, err_msg=name)


def test_data_shares_memory_but_not_the_version_counter_and_detach_shares_both():
    for lib in (dm, torch):
        w = leaf(lib)
        d, det = w.data, w.detach()
        assert type(d) is lib.Tensor and not d.requires_grad
        d[0] = 10.0                          # through .data: allowed, not counted on w
        assert w[0].item() == 10.0 and w._version == 0 and d._version == 1
        with lib.no_grad():
            w.mul_(2) if lib is torch else w.__imul__(2)
        assert det[0].item() == 20.0 and det._version == w._version == 1


def test_the_books_data_idioms_write_through_to_the_parameter():
    for lib in (dm, torch):
        layer = lib.nn.Linear(3, 2)
        layer.weight.data.fill_(-6.0)
        layer.weight.data[0, 0] = 42.0
        layer.weight.data[:] += 1
        layer.weight.data *= layer.weight.data.abs() >= 6
        assert layer.weight.tolist() == [[43.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        assert layer.weight.requires_grad and layer.weight.grad is None


PROGRAMS = {
    'y = x*2; x *= 3': lambda lib: _p1(lib),
    'x*x then x += 1 (mul kept x)': lambda lib: _p2(lib),
    'exp kept its output, then it changed': lambda lib: _p3(lib),
    'x[1] = b (index_put)': lambda lib: _p4(lib),
    'x[0] += b[0] through a view': lambda lib: _p5(lib),
    'x *= a then x += 1, uses between': lambda lib: _p6(lib),
    'fill_ a computed tensor': lambda lib: _p7(lib),
    'copy_ from a tensor that requires grad': lambda lib: _p8(lib),
    'clamp_ a computed tensor': lambda lib: _p9(lib),
    'relu output changed in place': lambda lib: _p10(lib),
    'x += x': lambda lib: _p11(lib),
    'detached copy changed in place': lambda lib: _p12(lib),
}


def _p1(lib):
    a = leaf(lib)
    x = a * 1
    y = x * 2
    x *= 3
    (y.sum() + x.sum()).backward()
    return [a]


def _p2(lib):
    a = leaf(lib)
    x = a * 1
    y = x * x
    x += 1
    y.sum().backward()
    return [a]


def _p3(lib):
    a = leaf(lib)
    y = a.exp()
    y += 1
    y.sum().backward()
    return [a]


def _p4(lib):
    a, b = leaf(lib), lib.tensor([7.0], requires_grad=True)
    x = a * 2
    x[1] = b * 3
    (x * x).sum().backward()
    return [a, b]


def _p5(lib):
    a, b = leaf(lib), leaf(lib, (4.0, 5.0, 6.0))
    x = a * 1
    x[0] += b[0] * 2
    (x * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    return [a, b]


def _p6(lib):
    a = leaf(lib)
    x = a * 1
    before = x * 2
    x *= a
    between = x * 3
    x += 1
    (before.sum() + between.sum() + (x * x).sum()).backward()
    return [a]


def _p7(lib):
    a = leaf(lib)
    x = a * 2
    x.fill_(3.0)
    (x * a).sum().backward()
    return [a]


def _p8(lib):
    a, b = leaf(lib), leaf(lib, (0.5, 0.25, 2.0))
    x = a * 2
    x.copy_(b * b)
    (x * 3).sum().backward()
    return [a, b]


def _p9(lib):
    a = leaf(lib)
    x = a * 2
    x.clamp_(-1.0, 4.0)
    (x * x).sum().backward()
    return [a]


def _p10(lib):
    a = leaf(lib)
    r = lib.relu(a)
    r *= 2
    r.sum().backward()
    return [a]


def _p11(lib):
    a = leaf(lib)
    x = a * a
    x += x
    x.sum().backward()
    return [a]


def _p12(lib):
    a = leaf(lib)
    y = a * a
    d = y.detach()
    d += 1  # shares y's version counter: mul kept a, not y, so backward still works
    z = a.exp()
    z.detach().zero_()  # exp kept its output, which changed through the detached view
    (y.sum() + z.sum()).backward()
    return [a]


@pytest.mark.parametrize('name', sorted(PROGRAMS))
def test_in_place_programs_give_torchs_gradients_or_torchs_error(name):
    assert_same_outcome(PROGRAMS[name])


def test_the_version_error_names_the_op_and_says_what_to_do():
    a = leaf(dm)
    y = a.exp()
    y += 1
    with pytest.raises(RuntimeError, match='^one of the variables needed for gradient computation has been '
                                           'modified by an inplace operation: .*exp.*version 1; expected version 0'):
        y.sum().backward()


# ---- freeing the graph: retain_graph -----------------------------------------------------------------------
def test_a_second_backward_fails_like_torch_unless_retain_graph():
    for lib in (dm, torch):
        a = leaf(lib)
        loss = (a * a).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        assert a.grad.tolist() == [4.0, -8.0, 12.0]
        with pytest.raises(RuntimeError, match='^Trying to backward through the graph a second time'):
            loss.backward()


def test_a_graph_without_kept_values_can_be_run_again_as_in_torch():
    for lib in (dm, torch):
        a = leaf(lib)
        loss = (a + 1).sum()
        loss.backward()
        loss.backward()
        assert a.grad.tolist() == [2.0, 2.0, 2.0]


def test_backward_frees_what_the_rules_kept():
    a = leaf(dm)
    y = a * a
    y.sum().backward()
    assert y._backward is None and y._saved is None


# ---- dtypes: PyTorch's promotion, checked on random inputs -------------------------------------------------
def test_the_issues_examples():
    assert dm.tensor([True, False]).__add__(1).tolist() == [2, 1]
    assert (dm.tensor([True, False]) + 1).dtype == np.int64
    assert (dm.tensor([1, 2]) / 2).dtype == np.float32 and (dm.tensor([1, 2]) > 1).dtype == np.bool_
    assert dm.tensor([1, 2, 3]).dtype == np.int64 and dm.tensor([1.0]).dtype == np.float32


@st.composite
def operand(draw):
    """A tensor (with dimensions or 0-dim) of a random dtype, or a Python number."""
    kind = draw(st.sampled_from(['dims', 'zero', 'number']))
    if kind == 'number':
        return draw(st.one_of(st.booleans(), st.integers(-5, 5), st.floats(-4, 4, width=32)))
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    shape = () if kind == 'zero' else draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    elements = {'bool': st.booleans()}.get(dtype, st.integers(-5, 5) if 'int' in dtype else
                                           st.floats(-4, 4, width=32))
    return draw(hnp.arrays(DTYPES[dtype][0], shape, elements=elements))


def to_lib(x, lib):
    if not isinstance(x, np.ndarray):
        return x
    return dm.tensor(x) if lib is dm else torch.from_numpy(x.copy())


BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b, '/': lambda a, b: a / b,
          '<': lambda a, b: a < b, '>=': lambda a, b: a >= b, '==': lambda a, b: a == b}


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # 1/0 is inf in both, as NumPy warns
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), op=st.sampled_from(sorted(BINARY)))
def test_binary_ops_promote_and_broadcast_like_torch(data, op):
    a, b = data.draw(operand()), data.draw(operand())
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        a = np.asarray(a, np.float32)
    fn = BINARY[op]
    results = []
    for lib in (dm, torch):
        x, y = to_lib(a, lib), to_lib(b, lib)
        results.append(outcome(lambda _: fn(x, y), lib))
    ours, theirs = results
    assert ours[0] == theirs[0], (a, b, ours, theirs)
    if ours[0] == 'error':
        return
    ours, theirs = ours[1], theirs[1]
    assert same_dtype(ours, theirs), (op, a, b, ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(np.asarray(ours.tolist(), float), np.asarray(theirs.tolist(), float), rtol=1e-6)


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # 1/0 is inf in both, as NumPy warns
@settings(max_examples=150, deadline=None)
@given(x=st.sampled_from([np.bool_, np.int32, np.int64, np.float32, np.float64]).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                             elements=st.booleans() if dtype is np.bool_ else st.integers(-3, 3))),
       dim=st.sampled_from([None, 0, -1]), keepdim=st.booleans(),
       reduce=st.sampled_from(['sum', 'mean', 'max', 'abs', 'relu', 'exp', 'neg']))
def test_reductions_and_elementwise_ops_keep_torchs_dtypes(x, dim, keepdim, reduce):
    def run(lib):
        t = to_lib(x, lib)
        if reduce in ('sum', 'mean'):
            out = getattr(t, reduce)() if dim is None else getattr(t, reduce)(dim, keepdim)
        elif reduce == 'max':
            out = t.max() if dim is None else t.max(dim, keepdim)[0]
        elif reduce == 'neg':
            out = -t
        else:
            out = getattr(lib, reduce)(t)
        return out
    ours, theirs = outcome(run, dm), outcome(run, torch)
    assert ours[0] == theirs[0], (x.dtype, reduce, ours, theirs)
    if ours[0] == 'ok':
        assert same_dtype(ours[1], theirs[1]), (x.dtype, reduce, ours[1].dtype, theirs[1].dtype)
        assert tuple(ours[1].shape) == tuple(theirs[1].shape)
        np.testing.assert_allclose(np.asarray(ours[1].tolist(), float), np.asarray(theirs[1].tolist(), float),
                                   rtol=1e-5)


# ---- factories and devices ----------------------------------------------------------------------------------
FACTORIES = [
    lambda lib: lib.zeros(2, 3), lambda lib: lib.ones((2, 3)), lambda lib: lib.rand(size=(2, 4)),
    lambda lib: lib.randn([3]), lambda lib: lib.empty(2, 1), lambda lib: lib.full((2, 2), 7),
    lambda lib: lib.full((2,), 1.5), lambda lib: lib.full((1,), True), lambda lib: lib.arange(4),
    lambda lib: lib.arange(1, 7, 2), lambda lib: lib.arange(0, 1, 0.25), lambda lib: lib.linspace(0, 1, 5),
    lambda lib: lib.zeros(2, dtype=lib.int64), lambda lib: lib.ones(2, 2, dtype=lib.float64),
    lambda lib: lib.zeros_like(lib.ones(2, dtype=lib.int64)), lambda lib: lib.ones_like(lib.zeros(3)),
    lambda lib: lib.full_like(lib.zeros(2, 2), 3), lambda lib: lib.rand_like(lib.zeros(3, 1)),
    lambda lib: lib.randn_like(lib.zeros(2)), lambda lib: lib.empty_like(lib.zeros(2, dtype=lib.float64)),
    lambda lib: lib.tensor([1, 2, 3]), lambda lib: lib.tensor([[True], [False]]), lambda lib: lib.tensor(2.5),
    lambda lib: lib.tensor([1, 2], dtype=lib.float32), lambda lib: lib.rand(2, device='cpu'),
    lambda lib: lib.ones(2, device=lib.device('cpu'), requires_grad=True),
    lambda lib: lib.tensor([1.0], requires_grad=True, device='cpu'),
]


@pytest.mark.parametrize('k', range(len(FACTORIES)))
def test_factories_give_torchs_shapes_dtypes_and_flags(k):
    ours, theirs = FACTORIES[k](dm), FACTORIES[k](torch)
    assert tuple(ours.shape) == tuple(theirs.shape) and same_dtype(ours, theirs)
    assert ours.requires_grad == theirs.requires_grad and ours.device == dm.device('cpu')
    if not any(name.startswith(('rand', 'empty')) for name in FACTORIES[k].__code__.co_names):
        assert ours.tolist() == theirs.tolist()


def test_devices_print_and_compare_as_in_torch():
    for spelling in (('cpu',), ('cuda',), ('cuda:1',), ('cuda', 1), ('cuda', 0)):
        ours, theirs = dm.device(*spelling), torch.device(*spelling)
        assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
        assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert dm.device('cuda:0') == dm.device('cuda', 0) != dm.device('cuda')
    assert (dm.device('cpu') == 'cpu') == (torch.device('cpu') == 'cpu')
    assert dm.cuda.is_available() == torch.cuda.is_available() is False
    assert dm.cuda.device_count() == torch.cuda.device_count() == 0
    assert repr(dm.ones(1).device) == repr(torch.ones(1).device) == "device(type='cpu')"


@pytest.mark.parametrize('send', [
    lambda lib: lib.ones(2, device='cuda'), lambda lib: lib.rand(2, 3, device=lib.device('cuda', 1)),
    lambda lib: lib.ones(2).to('cuda'), lambda lib: lib.ones(2).cuda(), lambda lib: lib.ones(2).cuda(1),
    lambda lib: lib.nn.Linear(2, 2).to(lib.device('cuda:0')), lambda lib: lib.device('gpu'),
    lambda lib: lib.ones(2).to('mps')])
def test_a_gpu_fails_as_in_torch_on_this_machine_and_says_what_to_do(send):
    with pytest.raises(Exception) as theirs:
        send(torch)
    with pytest.raises(type(theirs.value)) as ours:
        send(dm)
    if 'device string' not in str(theirs.value):
        assert 'no GPU' in str(ours.value) and "dm.device('cpu')" in str(ours.value)


def test_to_cpu_is_the_tensor_itself_and_to_takes_a_device_and_a_dtype():
    x = dm.ones(2)
    assert x.to('cpu') is x and x.cpu() is x and x.to(dm.device('cpu')) is x and x.to(x) is x
    y = x.to('cpu', dm.float64)
    assert y.dtype == np.float64 and x.to(dtype=dm.int64).dtype == np.int64
    assert x.to(dm.device('cpu'), dtype=dm.float64).dtype == np.float64


def test_module_to_understands_device_objects():
    net = nn.Sequential(nn.LazyLinear(1))
    assert net.to(device=dm.device('cpu')) is net and net.to(dm.device('cpu')) is net


# ---- per-thread state --------------------------------------------------------------------------------------
def run_in_thread(fn):
    box = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join()
    return box[0]


def test_no_grad_in_one_thread_leaves_recording_on_in_another():
    a = leaf(dm)
    with dm.no_grad():
        assert not (a * 2).requires_grad
        assert run_in_thread(lambda: ((a * 2).requires_grad, dm.is_grad_enabled())) == (True, True)
    started, release = threading.Event(), threading.Event()

    def hold_no_grad():
        with dm.no_grad():
            started.set()
            release.wait(5)
    thread = threading.Thread(target=hold_no_grad)
    thread.start()
    started.wait(5)
    try:
        assert dm.is_grad_enabled() and (a * 2).requires_grad  # the other thread's no_grad is its own
    finally:
        release.set()
        thread.join()


def test_a_forward_in_another_thread_is_not_drawn_inside_this_threads_call():
    seen = {}

    class Outer(nn.Module):
        def forward(self, x):
            seen['other'] = run_in_thread(lambda: (dm.ones(1, requires_grad=True) * 2)._call)
            return x * 2

    x = leaf(dm)
    out = Outer()(x)
    assert out._call is not None and out._call.module.__class__ is Outer
    assert seen['other'] is None  # made outside any call of its own thread


# ---- random programs with in-place updates, against torch ------------------------------------------------------
STEP = st.one_of(
    st.tuples(st.just('binary'), st.sampled_from(['+', '-', '*', '/']), st.integers(0, 9), st.integers(0, 9)),
    st.tuples(st.just('scalar'), st.sampled_from(['+', '-', '*', '/']), st.integers(0, 9),
              st.sampled_from([0.5, 2.0, -3.0])),
    st.tuples(st.just('unary'), st.sampled_from(['exp', 'tanh', 'sigmoid', 'relu', 'abs']), st.integers(0, 9)),
    st.tuples(st.just('inplace'), st.sampled_from(['+=', '-=', '*=', '/=']), st.integers(0, 9), st.integers(0, 9)),
    st.tuples(st.just('inplace_scalar'), st.sampled_from(['+=', '*=', '/=']), st.integers(0, 9),
              st.sampled_from([0.5, 2.0])),
    st.tuples(st.just('clamp_'), st.integers(0, 9)),
    st.tuples(st.just('setitem'), st.integers(0, 9), st.integers(0, 2), st.integers(0, 9)),
    st.tuples(st.just('no_grad_inplace'), st.integers(0, 9)),
    st.tuples(st.just('detach_inplace'), st.integers(0, 9)),
)
INPLACE = {'+=': '__iadd__', '-=': '__isub__', '*=': '__imul__', '/=': '__itruediv__'}
OPS = {'+': '__add__', '-': '__sub__', '*': '__mul__', '/': '__truediv__'}


def run_program(lib, steps):
    """Leaves a, b; each step makes or changes a tensor; the loss sums every tensor that needs a gradient."""
    a = lib.tensor([0.5, -1.5, 2.0], dtype=lib.float64, requires_grad=True)
    b = lib.tensor([1.25, 0.75, -0.5], dtype=lib.float64, requires_grad=True)
    ts = [a, b]
    pick = lambda i: ts[i % len(ts)]  # noqa: E731
    for step in steps:
        kind = step[0]
        if kind == 'binary':  # (dividing by a tensor that may hold 0 would compare infinities: divide by 2 + x^2)
            other = pick(step[3]) if step[1] != '/' else pick(step[3]) * pick(step[3]) + 2
            ts.append(getattr(pick(step[2]), OPS[step[1]])(other))
        elif kind == 'scalar':
            ts.append(getattr(pick(step[2]), OPS[step[1]])(step[3]))
        elif kind == 'unary':
            ts.append(getattr(lib, step[1])(pick(step[2])))
        elif kind == 'inplace':  # on a computed tensor (a leaf would fail, as tested above)
            target = pick(step[2]) if not pick(step[2]).is_leaf else pick(step[2]) * 1
            other = pick(step[3]) if step[1] != '/=' or pick(step[3]) is target else pick(step[3]).exp()
            ts.append(getattr(target, INPLACE[step[1]])(other))
        elif kind == 'inplace_scalar':
            target = pick(step[2]) if not pick(step[2]).is_leaf else pick(step[2]) * 1
            ts.append(getattr(target, INPLACE[step[1]])(step[3]))
        elif kind == 'clamp_':
            target = pick(step[1]) if not pick(step[1]).is_leaf else pick(step[1]) * 1
            ts.append(target.clamp_(-1.0, 1.5))
        elif kind == 'setitem':
            target = pick(step[1]) if not pick(step[1]).is_leaf else pick(step[1]) * 1
            target[step[2]] = pick(step[3])[step[2]] * 2
            ts.append(target)
        elif kind == 'no_grad_inplace':
            with lib.no_grad():
                pick(step[1]).__imul__(1.5)
        elif kind == 'detach_inplace':
            pick(step[1]).detach().__iadd__(1.0)
    loss = sum(t.sum() for t in ts if t.requires_grad)
    loss.backward()
    return [a, b]


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_random_programs_with_in_place_updates_match_torch(steps):
    ours, theirs = outcome(lambda lib: run_program(lib, steps), dm), outcome(lambda lib: run_program(lib, steps), torch)
    if ours[0] == 'error' or theirs[0] == 'error':
        assert ours[:2] == theirs[:2], (steps, ours, theirs)
        assert ours[2].split()[:3] == theirs[2].split()[:3], (steps, ours, theirs)
        return
    for x, y in zip(grads_of(ours[1]), grads_of(theirs[1])):
        assert (x is None) == (y is None), steps
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9, err_msg=str(steps))


def test_more_of_torchs_spellings_behave_the_same():
    seen = []
    for lib in (dm, torch):
        x = lib.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
        by_row, by_column = x.max(1), x.min(0)
        (by_row.values.sum() + by_column.values.sum() + x.min() + x.t().pow(2).sum().div(10)).backward()
        with lib.no_grad():
            with lib.enable_grad():
                inner = (x * 2).requires_grad
        lib.set_grad_enabled(False)
        switched_off = (x * 2).requires_grad
        lib.set_grad_enabled(True)
        seen.append((by_row.indices.tolist(), by_column.indices.tolist(), np.round(x.grad.tolist(), 6).tolist(),
                     inner, switched_off, lib.is_grad_enabled(), lib.equal(x, x.detach().clone()),
                     lib.allclose(x, x + 1e-9), str(lib.zeros(1, dtype=lib.bool).dtype).replace('torch.', ''),
                     str(lib.ones(1, dtype=lib.long).dtype).replace('torch.', ''), str(x.int().dtype)[-5:]))
    assert seen[0] == seen[1]
