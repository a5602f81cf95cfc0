"""Errors teach: each bad input gets one sentence that says where, what was expected, what came, and how to fix.

The tests assert on the message's content (the module's dotted path, the shapes, the dtypes, the fix), on
the exception's type (what PyTorch raises, or close: ValueError for values and shapes, TypeError for types),
and on the traceback: a module adds its path to the message in place, so the student's own forward line is
still in the traceback.
"""
from __future__ import annotations

import traceback

import numpy as np
import pytest
from chapter_models import CHAPTER_MODELS, make_chimera, make_input

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F


def raised(kind, fn, *args, **kwargs):
    """Call fn, expect an exception of exactly type kind, return it."""
    with pytest.raises(BaseException) as info:
        fn(*args, **kwargs)
    assert type(info.value) is kind, f'{type(info.value).__name__}: {info.value}'
    return info.value


def assert_says(error, *fragments):
    """The message is one line and contains every fragment."""
    message = str(error)
    assert '\n' not in message, message
    for fragment in fragments:
        assert fragment in message, f'{fragment!r} not in {message!r}'


# ---- where: the dotted path of the module that failed ----------------------------------------------------
def test_a_shape_mismatch_names_the_failing_modules_path():
    net = nn.Sequential(nn.Linear(20, 10), nn.ReLU(), nn.Sequential(nn.Linear(9, 2)))
    error = raised(ValueError, net, dm.randn(2, 20))
    assert_says(error, 'at 2.0 ', 'Linear(in_features=9, out_features=2', 'in_features=9', 'got shape (2, 10)',
                'feed it 9 features')


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 3)

    def forward(self, X):
        return self.linear(X)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Inner()

    def forward(self, X):
        return self.net(X)


def test_a_shape_mismatch_inside_a_custom_module_names_the_attribute_path():
    error = raised(ValueError, Outer(), dm.ones(2, 4))
    assert_says(error, 'Outer at net.linear (Linear(in_features=5', 'got shape (2, 4)')


def test_a_lazy_layer_keeps_the_size_of_its_first_input():
    net = make_chimera()
    net(make_input())
    error = raised(ValueError, net, dm.ones(2, 30))
    assert_says(error, 'at 0.net.0 (Linear(in_features=20', 'in_features=20', 'got shape (2, 30)',
                'first call')


def test_the_path_is_added_once_even_through_nested_calls():
    error = raised(ValueError, nn.Sequential(Outer()), dm.ones(2, 4))
    assert str(error).count(' at ') == 1 and 'at 0.net.linear ' in str(error)


def test_a_layer_called_on_its_own_names_itself():
    error = raised(ValueError, nn.Linear(3, 2), dm.ones(4, 5))
    assert_says(error, 'Linear(in_features=3, out_features=2, bias=True): expected', 'got shape (4, 5)')


def test_the_message_is_prefixed_in_place_so_the_traceback_shows_the_students_line():
    class Projector(nn.Module):
        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(dm.ones(4, 5))

        def forward(self, X):
            return X @ self.W  # the student's line

    net = nn.Sequential(nn.ReLU(), Projector())
    with pytest.raises(ValueError) as info:
        net(dm.ones(2, 3))
    assert_says(info.value, 'at 1 (Projector)', 'matmul', '(2, 3) @ (4, 5)', '(3)', '(4)')
    assert not info.value.__suppress_context__ and info.value.__cause__ is None  # not re-raised from None
    lines = [frame.line for frame in traceback.extract_tb(info.tb)]
    assert 'return X @ self.W  # the student\'s line' in lines


# ---- wrong inputs --------------------------------------------------------------------------------------
@pytest.mark.parametrize('bad', [np.ones((2, 3), np.float32), [[1.0, 2.0, 3.0]]], ids=['ndarray', 'list'])
@pytest.mark.parametrize('layer', [lambda: nn.Linear(3, 2), nn.ReLU, nn.Sigmoid, nn.Tanh,
                                   lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 2))],
                         ids=['Linear', 'ReLU', 'Sigmoid', 'Tanh', 'Sequential'])
def test_a_numpy_array_or_list_passed_to_a_layer(layer, bad):
    error = raised(TypeError, layer(), bad)
    assert_says(error, 'Tensor', type(bad).__name__, 'dm.tensor(')


def test_float64_input_into_a_float32_layer():
    error = raised(TypeError, nn.Sequential(nn.Linear(3, 2)), dm.tensor(np.ones((2, 3))))
    assert_says(error, 'at 0 ', 'float64 input', 'weights are float32', '.to(dm.float32)')


def test_cross_entropy_with_float_labels():
    scores = dm.randn(2, 3)
    error = raised(TypeError, F.cross_entropy, scores, dm.tensor([0.0, 2.0]))
    assert_says(error, 'integer class labels', 'float32', '.long()')
    error = raised(TypeError, nn.CrossEntropyLoss(), scores, dm.tensor([0.0, 2.0]))
    assert_says(error, 'CrossEntropyLoss', 'integer class labels')


@pytest.mark.parametrize('labels', [[0, 3], [-1, 0]])
def test_cross_entropy_with_labels_out_of_range(labels):
    error = raised(IndexError, F.cross_entropy, dm.randn(2, 3), dm.tensor(labels, dtype=dm.int64))
    assert_says(error, '0..2', str(min(labels)), str(max(labels)))


def test_cross_entropy_with_one_label_too_few():
    error = raised(ValueError, F.cross_entropy, dm.randn(3, 4), dm.tensor([1, 2], dtype=dm.int64))
    assert_says(error, '3 rows', '(2,)', 'one label per row')


# ---- autograd -------------------------------------------------------------------------------------------
def test_backward_on_a_non_scalar_without_a_gradient():
    y = dm.ones(2, 3, requires_grad=True) * 2
    assert_says(raised(RuntimeError, y.backward), 'shape (2, 3)', 'y.sum().backward()', 'y.backward(g)')


def test_backward_on_something_that_does_not_require_grad():
    assert_says(raised(RuntimeError, (dm.ones(3) * 2).sum().backward), 'does not require grad',
                'requires_grad=True')
    w = dm.ones(3, requires_grad=True)
    with dm.no_grad():
        y = (w * 2).sum()
    assert_says(raised(RuntimeError, y.backward), 'outside of no_grad()')


def test_in_place_change_of_a_parameter_while_recording():
    layer = nn.Linear(2, 2)

    def step():
        layer.weight -= 0.1

    assert_says(raised(RuntimeError, step), 'a leaf Variable that requires grad', 'in-place', 'with dm.no_grad():')


def test_bool_of_a_multi_element_tensor():
    X = dm.ones(2, 3)
    assert_says(raised(RuntimeError, bool, X > 0), 'shape (2, 3)', 'ambiguous', '.all()', 'x.sum() > 1')


def test_item_of_a_multi_element_tensor():
    assert_says(raised(RuntimeError, dm.ones(2).item), 'shape (2,)', '.sum()')


def test_requires_grad_on_an_integer_tensor():
    assert_says(raised(RuntimeError, dm.tensor([1, 2], dtype=dm.int64).requires_grad_), 'int64', '.float()')


# ---- building modules -------------------------------------------------------------------------------------
@pytest.mark.parametrize('value', [lambda: nn.Parameter(dm.ones(2)), lambda: nn.Linear(2, 2)],
                         ids=['Parameter', 'Module'])
def test_assigning_before_super_init(value):
    class Broken(nn.Module):
        def __init__(self):
            self.layer = value()
            super().__init__()

    error = raised(AttributeError, Broken)
    assert_says(error, "'layer'", 'before Module.__init__()', 'super().__init__() first in Broken.__init__')


def test_a_module_that_never_calls_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.size = 3

        def forward(self, X):
            return X

    assert_says(raised(AttributeError, Forgetful(), dm.ones(1)), 'super().__init__() first in Forgetful.__init__')


def test_a_misspelled_attribute_suggests_the_right_name():
    net = CHAPTER_MODELS['MLP']()
    error = raised(AttributeError, getattr, net, 'hiden')
    assert_says(error, "'MLP' object has no attribute 'hiden'", "did you mean 'hidden'?")
    assert not hasattr(net, 'hiden') and getattr(net, 'hiden', None) is None  # still a real AttributeError


def test_a_module_without_forward():
    class NoForward(nn.Module):
        def foward(self, X):  # misspelled
            return X

    error = raised(NotImplementedError, NoForward(), dm.ones(1))
    assert_says(error, 'Module [NoForward] is missing the required "forward" function', 'define forward(self, X)')


def test_a_function_in_a_sequential():
    assert_says(raised(TypeError, nn.Sequential, nn.Linear(2, 2), F.relu), 'function', 'nn.ReLU()')


def test_registering_the_wrong_kind_of_thing():
    m = nn.Module()
    assert_says(raised(TypeError, m.add_module, 'x', np.ones(2)), "add_module('x'", 'Module', 'ndarray')
    assert_says(raised(TypeError, m.register_parameter, 'w', dm.ones(2)), "parameter 'w'", 'Parameter or None required',
                'nn.Parameter(value)')


# ---- ops inside a custom forward -----------------------------------------------------------------------------
def test_matmul_shape_mismatch():
    error = raised(ValueError, lambda: dm.ones(2, 3) @ dm.ones(4, 5))
    assert_says(error, 'matmul', '(2, 3) @ (4, 5)', "left's last size (3)", "right's second-to-last (4)")


def test_broadcasting_mismatch():
    error = raised(ValueError, lambda: dm.ones(2, 3) + dm.ones(4))
    assert_says(error, 'add', '(2, 3) and (4,)', 'do not broadcast', 'reshape')

    class Shift(nn.Module):
        def forward(self, X):
            return X * dm.ones(4)

    assert_says(raised(ValueError, nn.Sequential(Shift()), dm.ones(2, 3)), 'at 0 (Shift)', 'mul', 'broadcast')


def test_reshape_to_the_wrong_number_of_elements():
    assert_says(raised(ValueError, dm.ones(2, 3).reshape, 4, 2), '(2, 3)', '6 elements', '(4, 2)')


# ---- containers, optimizers, lazy parameters ------------------------------------------------------------------
@pytest.mark.parametrize('index', [3, -4])
def test_sequential_index_out_of_range(index):
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    assert_says(raised(IndexError, net.__getitem__, index), f'index {index}', 'Sequential of 3 modules')


def test_sequential_index_of_the_wrong_type():
    assert_says(raised(TypeError, nn.Sequential(nn.ReLU()).__getitem__, '0'), 'integers or slices', 'str')


def test_an_optimizer_given_an_empty_parameter_list():
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2)]  # a plain list: not registered

    error = raised(ValueError, dm.optim.SGD, Hidden().parameters(), lr=0.1)
    assert_says(error, 'SGD got an empty parameter list', 'nn.ModuleList')


def test_an_optimizer_given_the_module_instead_of_its_parameters():
    for net in (CHAPTER_MODELS['MLP'](), nn.Sequential(nn.Linear(2, 2))):
        assert_says(raised(TypeError, dm.optim.SGD, net, lr=0.1), 'net.parameters()')


@pytest.mark.parametrize('use', [
    lambda w: w.sum(),
    lambda w: w * 2,
    lambda w: dm.ones(2, 3) @ w.T,
    lambda w: w @ dm.ones(3),
    lambda w: w[0],
    lambda w: w.numel(),
    lambda w: w.detach(),
    lambda w: np.asarray(w),
    lambda w: nn.init.normal_(w),
    lambda w: nn.init.xavier_uniform_(w),
    lambda w: nn.init.constant_(w, 1.0),
], ids=['sum', 'mul', 'rmatmul', 'matmul', 'index', 'numel', 'detach', 'asarray', 'normal_', 'xavier', 'constant_'])
def test_a_lazy_parameter_used_before_initialization(use):
    weight = nn.LazyLinear(4).weight
    error = raised(ValueError, use, weight)  # PyTorch raises ValueError for an uninitialized parameter too
    assert_says(error, 'uninitialized parameter' if 'initialise' not in str(error) else 'uninitialized',
                'run the model once')


def test_dropout_probability_out_of_range():
    assert_says(raised(ValueError, nn.Dropout, 1.5), 'between 0 and 1', '1.5')


def test_a_tensor_from_something_that_is_not_numbers():
    assert_says(raised(TypeError, dm.tensor, 'abc'), 'str', 'NumPy array')


# ---- names, loading, modes and dtypes: PyTorch's exception and phrase, plus where and how to fix it -----------
@pytest.mark.parametrize('call, kind, fragments', [
    (lambda m: m.register_parameter('lin.weight', nn.Parameter(dm.ones(1))), KeyError,
     ['parameter name can', 't contain ".", got: lin.weight', 'underscore', 'e.g. lin_weight']),
    (lambda m: m.register_buffer('', dm.ones(1)), KeyError, ['buffer name can', 't be empty string', 'give it a name']),
    (lambda m: m.add_module('forward', nn.ReLU()), KeyError,
     ["attribute 'forward' already exists in Linear", 'would hide it', 'choose another name']),
    (lambda m: m.register_buffer(3, dm.ones(1)), TypeError, ['buffer name should be a string. Got int']),
])
def test_a_bad_name_is_refused_and_nothing_is_registered(call, kind, fragments):
    m = nn.Linear(2, 2)
    error = raised(kind, call, m)
    for fragment in fragments:
        assert fragment in str(error), (fragment, str(error))
    assert list(m.state_dict()) == ['weight', 'bias'] and list(m.children()) == []


def test_loading_a_file_name_says_to_read_the_file_first():
    error = raised(TypeError, nn.Linear(2, 2).load_state_dict, 'ckpt.npz')
    assert_says(error, "Expected state_dict to be dict-like, got <class 'str'>.", 'net.load_state_dict(dm.load(path))')


def test_a_load_names_every_bad_key_and_its_fix():
    net = nn.Sequential(nn.Linear(2, 2))
    message = str(raised(RuntimeError, net.load_state_dict, {'0.weight': np.ones((2, 2)), '0.bias': dm.zeros(3)}))
    for fragment in ('Error(s) in loading state_dict for Sequential (nothing was loaded)', '"0.weight"',
                     "received <class 'numpy.ndarray'>", 'size mismatch for 0.bias', 'dm.tensor(value)',
                     'sizes of the saved one'):
        assert fragment in message, fragment


def test_train_with_a_string_and_to_an_integer_dtype():
    assert_says(raised(ValueError, nn.Linear(2, 2).train, 'eval'), 'training mode is expected to be boolean',
                "'eval'", 'net.eval()')
    assert_says(raised(TypeError, nn.Linear(2, 2).to, dm.int64),
                'nn.Module.to only accepts floating point or complex dtypes', 'int64')


def test_a_non_leaf_tensor_cannot_become_a_parameter():
    layer = nn.Linear(2, 2)
    error = raised(TypeError, setattr, layer, 'weight', layer.weight * 2)
    assert_says(error, "parameter 'weight'", 'nn.Parameter(value)')
