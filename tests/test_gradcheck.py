"""Every differentiable op of d2lmod, checked two ways.

1. Against calculus: nudge one input number by +-eps, see how the output moves, and compare that slope
   (a central difference) with what backward() says. gradcheck() does this for every number of every
   input, in float64 so the slope is accurate to about eight digits.
2. Against PyTorch: the same expression on the same float64 inputs gives the same value and gradients.

An op is checked with broadcasting ((3, 1) with (1, 4), (4,) with (3, 4), scalar tensors) and with
reused inputs (x * x, x @ x.T, a + a), where a wrong backward most often hides.
"""
from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import d2lmod as dm

# hypothesis explores shapes and values, but the same few examples every run: fast and reproducible
FAST = settings(derandomize=True, max_examples=12, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# ---- the checker ---------------------------------------------------------------------------------------------
def cotangent(shape, seed: int = 1) -> np.ndarray:
    """Fixed random weights w: the checks differentiate the scalar sum(w * output).

    Random weights, not plain sum(output), so that a backward that mixes up positions (a wrong transpose,
    a gradient sent to the wrong slice) cannot hide behind equal weights.
    """
    return np.asarray(np.random.default_rng(seed).standard_normal(shape))


def central_difference(fn, arrays, arg: int, index: tuple, weights, eps: float = 1e-6) -> float:
    """d(sum(w * fn(inputs)))/d(inputs[arg][index]) ~ (f(x + eps) - f(x - eps)) / (2 eps)."""
    def loss(shift):
        nudged = [a.copy() for a in arrays]
        nudged[arg][index] += shift
        return float((fn(*[dm.tensor(a) for a in nudged])._data * weights).sum())
    return (loss(eps) - loss(-eps)) / (2 * eps)


def gradcheck(fn: Callable, *inputs, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """backward() of fn at inputs agrees with central differences, for every input number."""
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    tensors = [dm.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    # the value must not depend on whether autograd records it
    np.testing.assert_allclose(out._data, fn(*[dm.tensor(a) for a in arrays])._data, rtol=1e-12,
                               err_msg="the output differs when the inputs require grad")
    weights = cotangent(out.shape)
    out.backward(weights)
    for arg, (array, t) in enumerate(zip(arrays, tensors)):
        got = np.zeros_like(array) if t.grad is None else t.grad._data
        assert got.shape == array.shape and got.dtype == np.float64, (
            f"argument {arg}: gradient has shape {got.shape} and dtype {got.dtype}, expected {array.shape} float64")
        for index in np.ndindex(array.shape):
            expected = central_difference(fn, arrays, arg, index, weights)
            assert np.isclose(got[index], expected, rtol=rtol, atol=atol), (
                f"argument {arg}, index {index}: backward gave {got[index]:.8g}, "
                f"central difference gave {expected:.8g}")


def test_gradcheck_catches_a_wrong_backward():
    """The checker itself can fail: a rule that forgets the 2 in d(x^2) = 2x dx is caught at 1.5 (at 0 both are 0)."""
    def bad_square(x):
        return dm.Tensor._result(x._data ** 2, (x,), 'bad_square', lambda g: (g * x._data,))
    with pytest.raises(AssertionError, match=r"argument 0, index \(1,\): backward gave .*central difference"):
        gradcheck(bad_square, [0.0, 1.5])


# ---- the ops, each written once for both frameworks ----------------------------------------------------------
# fw is the framework: fw.F is its nn.functional, fw.cat its cat, fw.ints(list) an integer index tensor.
DM = SimpleNamespace(F=dm.nn.functional, cat=dm.cat, ints=lambda values: dm.tensor(np.array(values, dtype=np.int64)))


def torch_framework():
    """(torch, PyTorch shaped like DM); skips the calling test when PyTorch is not installed."""
    torch = pytest.importorskip("torch")
    return torch, SimpleNamespace(F=torch.nn.functional, cat=torch.cat, ints=torch.tensor)


@dataclass
class Case:
    name: str
    fn: Callable            # fn(fw, *tensors) -> tensor
    inputs: tuple           # shapes (random numbers) or explicit arrays
    positive: bool = False  # draw inputs from [0.2, 2] (for log, a divisor, a power's base)

    def arrays(self) -> list:
        """Inputs away from the kinks of abs, relu and max (|x| >= 0.2), the same every run."""
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        made = []
        for spec in self.inputs:
            if isinstance(spec, tuple):
                size = rng.uniform(0.2, 2.0, spec)
                made.append(size if self.positive else size * rng.choice([-1.0, 1.0], spec))
            else:
                made.append(np.array(spec, dtype=np.float64))
        return made


def inplace_div_add(fw, a, b):
    x = a * 1   # a non-leaf copy of a: in-place ops on it are recorded
    x /= 2
    x += b      # b (4,) broadcasts over x's rows
    return x


def inplace_mul_sub_self(fw, a, b):
    x = a * 1
    x *= b
    x -= b
    x += x      # both operands are the same tensor
    return x


def used_before_inplace(fw, a):
    x = a * 1
    y = x * 2   # y was computed from x's value before the update below...
    x *= 3      # ...so y's gradient must not pass through this *3
    return y + x


def inplace_into_constant(a, b):
    x = a.detach() * 0  # a tensor that needs no gradient...
    x += b              # ...until b is added into it
    return x


CASES = [
    # arithmetic, with broadcasting
    Case('add (3,1)+(1,4)', lambda fw, a, b: a + b, [(3, 1), (1, 4)]),
    Case('sub (4,)-(3,4)', lambda fw, a, b: a - b, [(4,), (3, 4)]),
    Case('mul ()*(3,4)', lambda fw, a, b: a * b, [(), (3, 4)]),
    Case('mul (2,1,4)*(3,1)', lambda fw, a, b: a * b, [(2, 1, 4), (3, 1)]),
    Case('div (3,4)/(3,1)', lambda fw, a, b: a / b, [(3, 4), (3, 1)], positive=True),
    Case('div ()/(4,)', lambda fw, a, b: a / b, [(), (4,)], positive=True),
    Case('pow tensor**2', lambda fw, a: a ** 2, [(3, 4)]),
    Case('pow tensor**0.5', lambda fw, a: a ** 0.5, [(3, 4)], positive=True),
    Case('pow tensor**-1.5', lambda fw, a: a ** -1.5, [(5,)], positive=True),
    Case('pow tensor**tensor (3,4)**(4,)', lambda fw, a, b: a ** b, [(3, 4), (4,)], positive=True),
    Case('pow tensor**scalar tensor', lambda fw, a, b: a ** b, [(3,), ()], positive=True),
    Case('neg', lambda fw, a: -a, [(3, 4)]),
    Case('number ops', lambda fw, a: (a + 2) * 3 - 1 / 4 + a / 4, [(3, 4)]),
    Case('reverse sub 2-x', lambda fw, a: 2 - a, [(3, 4)]),
    Case('reverse div 2/x', lambda fw, a: 2 / a, [(3, 4)], positive=True),
    Case('reverse pow 2**x', lambda fw, a: 2 ** a, [(3, 4)]),
    Case('reverse add and mul', lambda fw, a: 1 + 3 * a, [(3, 4)]),
    # reused inputs: both uses add into one gradient
    Case('reuse x*x', lambda fw, a: a * a, [(3, 4)]),
    Case('reuse a+a', lambda fw, a: a + a, [(3, 4)]),
    Case('reuse x*x*x/x', lambda fw, a: a * a * a / a, [(2, 3)], positive=True),
    Case('reuse x@x.T', lambda fw, a: a @ a.T, [(3, 4)]),
    # matmul
    Case('matmul 2-D', lambda fw, a, b: a @ b, [(3, 4), (4, 5)]),
    Case('matmul batched', lambda fw, a, b: a @ b, [(2, 3, 4), (2, 4, 5)]),
    Case('matmul batch broadcast', lambda fw, a, b: a @ b, [(2, 3, 4), (4, 5)]),
    Case('matmul matrix@vector', lambda fw, a, b: a @ b, [(3, 4), (4,)]),
    Case('matmul vector@matrix', lambda fw, a, b: a @ b, [(4,), (4, 5)]),
    Case('matmul vector@vector', lambda fw, a, b: a @ b, [(4,), (4,)]),
    Case('matmul batched@vector', lambda fw, a, b: a @ b, [(2, 3, 4), (4,)]),
    Case('matmul vector@batched', lambda fw, a, b: a @ b, [(4,), (2, 4, 5)]),
    # elementwise functions
    Case('abs', lambda fw, a: a.abs(), [(3, 4)]),
    Case('exp', lambda fw, a: a.exp(), [(3, 4)]),
    Case('log', lambda fw, a: a.log(), [(3, 4)], positive=True),
    Case('relu', lambda fw, a: fw.F.relu(a), [(3, 4)]),
    Case('relu method', lambda fw, a: a.relu(), [(2, 3)]),
    Case('sigmoid', lambda fw, a: fw.F.sigmoid(a), [(3, 4)]),
    Case('sigmoid method', lambda fw, a: a.sigmoid(), [(2, 3)]),
    Case('tanh', lambda fw, a: fw.F.tanh(a), [(3, 4)]),
    Case('tanh method', lambda fw, a: a.tanh(), [(2, 3)]),
    # reductions
    Case('sum all', lambda fw, a: a.sum(), [(3, 4)]),
    Case('sum dim=0', lambda fw, a: a.sum(dim=0), [(3, 4)]),
    Case('sum dim=1 keepdim', lambda fw, a: a.sum(dim=1, keepdim=True), [(3, 4)]),
    Case('sum dim=-1 of 3-D', lambda fw, a: a.sum(dim=-1), [(2, 3, 4)]),
    Case('sum dims (0, 2)', lambda fw, a: a.sum(dim=(0, 2)), [(2, 3, 4)]),
    Case('mean all', lambda fw, a: a.mean(), [(3, 4)]),
    Case('mean dim=0', lambda fw, a: a.mean(dim=0), [(3, 4)]),
    Case('mean dim=1 keepdim', lambda fw, a: a.mean(dim=1, keepdim=True), [(3, 4)]),
    Case('mean dims (0, 2) keepdim', lambda fw, a: a.mean(dim=(0, 2), keepdim=True), [(2, 3, 4)]),
    Case('max all', lambda fw, a: a.max(), [(3, 4)]),
    Case('max all with a tie', lambda fw, a: a.max(), [[[1.0, 3.0], [3.0, 2.0]]]),  # the two 3s share it
    Case('max dim=1 values', lambda fw, a: a.max(dim=1)[0], [(3, 4)]),
    Case('max dim=0 keepdim values', lambda fw, a: a.max(0, keepdim=True)[0], [(3, 4)]),
    Case('max dim=-1 of 3-D', lambda fw, a: a.max(dim=-1)[0], [(2, 3, 4)]),
    # shapes
    Case('reshape', lambda fw, a: a.reshape(2, -1) * a.reshape((2, 6)), [(3, 4)]),
    Case('view', lambda fw, a: a.view(-1), [(3, 4)]),
    Case('flatten', lambda fw, a: a.flatten(1), [(2, 3, 4)]),
    Case('clone', lambda fw, a: a.clone() * a, [(3, 4)]),
    Case('transpose 3-D', lambda fw, a: a.transpose(0, 2), [(2, 3, 4)]),
    Case('.T', lambda fw, a: a.T, [(3, 4)]),
    # indexing: every picked element gets its gradient, one picked twice gets both
    Case('index slices', lambda fw, a: a[1:, ::2], [(3, 4)]),
    Case('index int and negative', lambda fw, a: a[:, 1] + a[-1], [(4, 4)]),
    Case('index None (new axis)', lambda fw, a: a[:, None], [(3, 4)]),
    Case('index int array with repeats', lambda fw, a: a[fw.ints([0, 2, 0, 0])], [(3, 4)]),
    Case('index Python list with repeats', lambda fw, a: a[[1, 1, 0]], [(3, 4)]),
    Case('index two int arrays', lambda fw, a: a[fw.ints([0, 2, 0]), fw.ints([1, 1, 3])], [(3, 4)]),
    Case('index boolean mask', lambda fw, a: a[a > 0], [(3, 4)]),
    Case('cat dim=0', lambda fw, a, b: fw.cat([a, b], dim=0), [(2, 4), (3, 4)]),
    Case('cat dim=1 reused', lambda fw, a, b: fw.cat([a, b, a], dim=1), [(3, 2), (3, 1)]),
    # softmax and friends
    Case('log_softmax dim=1', lambda fw, a: fw.F.log_softmax(a, dim=1), [(3, 4)]),
    Case('log_softmax dim=0', lambda fw, a: fw.F.log_softmax(a, dim=0), [(3, 4)]),
    Case('log_softmax method 3-D', lambda fw, a: a.log_softmax(-1), [(2, 3, 4)]),
    Case('log_softmax large scores', lambda fw, a: fw.F.log_softmax(a * 300, dim=1), [(2, 3)]),  # no overflow
    Case('softmax dim=1', lambda fw, a: fw.F.softmax(a, dim=1), [(3, 4)]),
    Case('softmax dim=0', lambda fw, a: fw.F.softmax(a, dim=0), [(3, 4)]),
    # the layers' functions
    Case('linear with bias', lambda fw, x, w, b: fw.F.linear(x, w, b), [(2, 3), (4, 3), (4,)]),
    Case('linear without bias', lambda fw, x, w: fw.F.linear(x, w), [(2, 3), (4, 3)]),
    Case('linear 3-D input', lambda fw, x, w, b: fw.F.linear(x, w, b), [(2, 5, 3), (4, 3), (4,)]),
    Case('linear 1-D input', lambda fw, x, w, b: fw.F.linear(x, w, b), [(3,), (4, 3), (4,)]),
    Case('linear reused input', lambda fw, x, w: fw.F.linear(x, w) * x, [(3, 3), (3, 3)]),
    Case('cross_entropy', lambda fw, a: fw.F.cross_entropy(a, fw.ints([1, 0, 3])), [(3, 4)]),
    Case('cross_entropy repeated label', lambda fw, a: fw.F.cross_entropy(a, fw.ints([2, 2])), [(2, 3)]),
    Case('mse_loss', lambda fw, a, b: fw.F.mse_loss(a, b), [(3, 4), (3, 4)]),
    # in-place ops on non-leaf tensors
    Case('in-place x/=2; x+=b', inplace_div_add, [(3, 4), (4,)]),
    Case('in-place x*=b; x-=b; x+=x', inplace_mul_sub_self, [(3, 4), (3, 1)]),
    Case('in-place after another use', used_before_inplace, [(3, 4)]),
    Case('in-place into a constant', lambda fw, a, b: inplace_into_constant(a, b) * a, [(3, 4), (4,)]),
]
CASE_IDS = [case.name for case in CASES]


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_backward_matches_central_differences(case: Case):
    gradcheck(lambda *xs: case.fn(DM, *xs), *case.arrays())


@pytest.mark.torch
@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_forward_and_backward_match_pytorch(case: Case):
    torch, TORCH = torch_framework()
    arrays = case.arrays()
    ours = [dm.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = case.fn(DM, *ours), case.fn(TORCH, *theirs)
    assert out.shape == tuple(expected.shape) and out.dtype == np.float64
    np.testing.assert_allclose(out._data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = cotangent(out.shape)
    out.backward(weights)
    expected.backward(torch.tensor(weights))
    for arg, (t, tt) in enumerate(zip(ours, theirs)):
        assert (t.grad is None) == (tt.grad is None), f"argument {arg}: d2lmod grad {t.grad}, torch grad {tt.grad}"
        if t.grad is not None:
            np.testing.assert_allclose(t.grad._data, tt.grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"gradient of argument {arg}")


KINKS = {'relu at 0': lambda fw, x: fw.F.relu(x), 'abs at 0': lambda fw, x: x.abs(),
         'max with a tie': lambda fw, x: x.max(), 'max over dim': lambda fw, x: x.max(dim=1)[0]}


@pytest.mark.torch
@pytest.mark.parametrize('kink', list(KINKS))
def test_gradients_at_kinks_match_pytorch(kink):
    """Where the slope is undefined (relu and abs at 0, a tie for the max) the convention is PyTorch's."""
    torch, TORCH = torch_framework()
    values = [[0.0, -1.0, 2.0], [2.0, 0.0, -3.0]]  # two zeros; the largest value, 2, twice
    x, xt = dm.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    KINKS[kink](DM, x).sum().backward()
    KINKS[kink](TORCH, xt).sum().backward()
    np.testing.assert_array_equal(x.grad._data, xt.grad.numpy())


@pytest.mark.torch
def test_max_over_a_dim_returns_pytorchs_indices_too():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).permutation(24).reshape(2, 3, 4).astype(np.float64)  # no ties
    for dim, keepdim in [(0, False), (1, True), (-1, False)]:
        ours, theirs = dm.tensor(values).max(dim, keepdim), torch.tensor(values).max(dim, keepdim)
        np.testing.assert_array_equal(ours[0]._data, theirs[0].numpy())
        np.testing.assert_array_equal(ours[1]._data, theirs[1].numpy())
        assert ours[1].dtype == np.int64


EXTREMES = {'sigmoid': lambda fw, x: fw.F.sigmoid(x), 'tanh': lambda fw, x: x.tanh(),
            'softmax': lambda fw, x: fw.F.softmax(x, dim=1), 'log_softmax': lambda fw, x: fw.F.log_softmax(x, dim=1),
            'cross_entropy': lambda fw, x: fw.F.cross_entropy(x, fw.ints([0, 2]))}


@pytest.mark.torch
@pytest.mark.parametrize('op', list(EXTREMES))
def test_extreme_scores_match_pytorch_without_warnings(op):
    """Scores of +-1000 (a diverging model) give PyTorch's values and gradients, and no overflow warning."""
    torch, TORCH = torch_framework()
    values = [[-1000.0, 0.0, 1000.0], [1000.0, 999.0, -1000.0]]
    x, xt = dm.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # NumPy's "overflow encountered in exp" becomes a failure
        out = EXTREMES[op](DM, x)
        out.backward(np.ones(out.shape, np.float32))
    expected = EXTREMES[op](TORCH, xt)
    expected.backward(torch.ones(expected.shape))
    np.testing.assert_allclose(out._data, expected.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad._data, xt.grad.numpy(), rtol=1e-6, atol=1e-7)


# ---- the same ops over many shapes and values (hypothesis) ---------------------------------------------------
def away_from_zero(shape, positive: bool = False):
    """Arrays of numbers with 0.2 <= |x| <= 2 (positive: only the positive ones)."""
    size = st.floats(0.2, 2.0)
    return hnp.arrays(np.float64, shape, elements=size if positive else st.one_of(size, size.map(lambda v: -v)))


BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b,
          '/': lambda a, b: a / b, '**': lambda a, b: a ** b}
UNARY = {'neg': lambda a: -a, 'abs': dm.Tensor.abs, 'exp': dm.Tensor.exp, 'relu': dm.nn.functional.relu,
         'sigmoid': dm.nn.functional.sigmoid, 'tanh': dm.nn.functional.tanh, 'log of |x|': lambda a: a.abs().log(),
         'x**3': lambda a: a ** 3, '2**x': lambda a: 2 ** a, 'softmax': dm.nn.functional.softmax}


@FAST
@given(op=st.sampled_from(sorted(BINARY)), data=st.data(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_binary_ops_broadcast_any_shapes(op, shapes, data):
    """Each input gets a gradient of its own shape: the broadcast copies' gradients summed back."""
    a_shape, b_shape = shapes.input_shapes
    a = data.draw(away_from_zero(a_shape, positive=op == '**'), label='a')
    b = data.draw(away_from_zero(b_shape), label='b')
    gradcheck(BINARY[op], a, b)


@FAST
@given(op=st.sampled_from(sorted(UNARY)), data=st.data(),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_elementwise_functions_any_shape(op, shape, data):
    gradcheck(UNARY[op], data.draw(away_from_zero(shape), label='x'))


@FAST
@given(data=st.data(), reduce=st.sampled_from(['sum', 'mean', 'max']), keepdim=st.booleans(),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_reductions_over_any_dim(reduce, shape, keepdim, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label='dim')
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2), unique=True), label='x')  # no ties for max
    if reduce == 'max':
        gradcheck(lambda a: a.max(dim, keepdim)[0], x)
    else:
        gradcheck(lambda a: getattr(a, reduce)(dim=dim, keepdim=keepdim), x)


@FAST
@given(data=st.data(), batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=2),
       sizes=st.tuples(*[st.integers(1, 3)] * 3))
def test_matmul_any_sizes(batch, sizes, data):
    n, k, m = sizes
    a = data.draw(away_from_zero(batch + (n, k)), label='a')
    b = data.draw(away_from_zero((k, m)), label='b')
    gradcheck(lambda a, b: a @ b, a, b)
    gradcheck(lambda a, b: b.T @ a.transpose(-1, -2), a, b)


@FAST
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))
def test_indexing_with_repeated_integers(shape, data):
    picks = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6), label='picks')
    x = data.draw(away_from_zero(shape), label='x')
    gradcheck(lambda a: a[np.array(picks)], x)


# ---- what the table cannot say -----------------------------------------------------------------------------
def test_dropout_sends_gradient_only_through_kept_elements():
    """Dropout is random, so the check reseeds before each call: every call drops the same elements."""
    def dropped(x):
        dm.manual_seed(0)
        return dm.nn.functional.dropout(x, p=0.4)
    x = np.random.default_rng(0).uniform(0.5, 1.5, (4, 5))
    gradcheck(dropped, x)
    out = dropped(dm.tensor(x))._data
    kept = out != 0
    assert 0 < kept.sum() < x.size
    np.testing.assert_allclose(out[kept], x[kept] / 0.6)  # survivors scaled by 1/(1-p)


def test_a_dtype_change_sends_the_gradient_back_in_the_input_dtype():
    x = dm.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad._data, [3.0, 3.0])


def test_comparisons_carry_no_gradient():
    x = dm.tensor([-1.0, 2.0], requires_grad=True)
    for mask in (x > 0, x >= 0, x < 0, x <= 0, x == 2, x != 2):
        assert mask.dtype == np.bool_ and not mask.requires_grad


def test_gradients_accumulate_over_backward_calls():
    """backward() adds to .grad, as in PyTorch: two calls give twice the gradient until it is zeroed."""
    x = dm.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad._data, 2 * 2 * x._data)


@pytest.mark.torch
def test_values_used_before_an_inplace_update_keep_their_gradient_like_pytorch():
    """y = x * 2 is made before x *= 3; PyTorch's y still differentiates to 2, and so must ours."""
    torch = pytest.importorskip("torch")
    grads = []
    for lib, tensor in ((dm, dm.tensor), (torch, torch.tensor)):
        a = tensor([1.0, 2.0], requires_grad=True)
        x = a * 1
        y = x * 2
        x *= 3
        y.sum().backward()
        grads.append(np.asarray(a.grad.tolist()))
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], [2.0, 2.0])


def test_backward_on_a_leaf_itself_fills_its_grad_with_a_copy_of_the_gradient():
    w = dm.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([3.0, 4.0], np.float32)
    w.backward(g)
    np.testing.assert_array_equal(w.grad._data, g)
    g[0] = 0  # changing the caller's array later must not change w.grad
    np.testing.assert_array_equal(w.grad._data, [3.0, 4.0])


def test_no_two_leaves_share_a_gradient_array_and_none_is_a_view():
    """add sends the same array to both inputs, reshape and cat send views; every .grad must be its own array."""
    a, b = dm.ones(2, 3, requires_grad=True), dm.ones(2, 3, requires_grad=True)
    c, d = dm.ones(6, requires_grad=True), dm.ones(1, 3, requires_grad=True)
    (a + b + c.reshape(2, 3) + dm.cat([d, d * 2], 0)).sum().backward()
    grads = [t.grad._data for t in (a, b, c, d)]
    assert all(g.base is None and g.flags.writeable for g in grads)
    assert not any(np.shares_memory(g, h) for i, g in enumerate(grads) for h in grads[i + 1:])
    np.testing.assert_array_equal(d.grad._data, [[3.0, 3.0, 3.0]])


@pytest.mark.torch
def test_several_inplace_updates_with_uses_in_between_match_pytorch():
    """x is changed in place twice, with values taken from it before, between and after the updates."""
    torch = pytest.importorskip("torch")
    grads = []
    for lib, tensor in ((dm, dm.tensor), (torch, torch.tensor)):
        a = tensor([1.0, 2.0, 3.0], requires_grad=True)
        x = a * 1
        before = x * 2
        x *= a              # x = a^2
        between = x * 3
        x += 1              # x = a^2 + 1
        (before.sum() + between.sum() + (x * x).sum()).backward()
        grads.append(np.asarray(a.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)
