"""PyTorch's own nn.Module tests, ported to d2lmod: the same assertions, with torch replaced by d2lmod.

Each test runs twice, once on d2lmod and once on torch==2.13.0 itself (the `lib` fixture), so every
assertion here is checked to be PyTorch's behaviour. Grouped by the file of pytorch/pytorch they come from;
the comment above each test names the original. Layers d2lmod does not have (Conv2d, BatchNorm, LSTM, ...)
are replaced by Linear, Tanh or Sigmoid; parts about CUDA, pickling, TorchScript or internal attributes
are left out and say so.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest

import d2lmod as dm


@pytest.fixture(params=['d2lmod', pytest.param('torch', marks=pytest.mark.torch)])
def lib(request):
    """d2lmod, or torch itself: T is the tensor library, nn its nn, cpu its CPU device."""
    if request.param == 'd2lmod':
        T = dm
    else:
        T = pytest.importorskip('torch', reason='running the ports on PyTorch needs torch==2.13.0')
    return SimpleNamespace(T=T, nn=T.nn, name=request.param,
                           cpu=T.device('cpu') if hasattr(T, 'device') else 'cpu')


def arr(t) -> np.ndarray:
    return np.array(t.detach().numpy())


def same_modules(a, b) -> bool:
    """PyTorch's assertEqual(seq1, seq2) on containers: the same children, in the same order."""
    return type(a) is type(b) and len(a) == len(b) and all(x is y for x, y in zip(a, b))


def names(pairs) -> list:
    return [k for k, _ in pairs]


def basic_net(lib):
    """torch.testing._internal.common_nn._create_basic_net: (Layer, Net holding it, Sequential holding Net)."""
    nn, T = lib.nn, lib.T

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer_dummy_param = nn.Parameter(T.zeros(3, 5))
            self.layer_dummy_buf = nn.Buffer(T.zeros(1, 3, 3, 7))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = Layer()
            self.dummy_param = nn.Parameter(T.zeros(3, 5))
            self.dummy_buf = nn.Buffer(T.zeros(7, 3, 3, 1))

    l = Layer()
    n = Net()
    return l, n, nn.Sequential(n)


# ==== test/test_nn.py (class TestNN) ==========================================================================
# test_to
def test_to(lib):
    m = lib.nn.Linear(3, 5)
    assert m is m.to('cpu')
    assert m is m.to('cpu', dtype=lib.T.float32)
    assert m.double() is m.to(lib.T.float64)
    with pytest.raises(RuntimeError):
        m.to('cpu', copy=True)


# test_zero_grad
def test_zero_grad(lib):
    T, nn = lib.T, lib.nn
    i = T.randn(2, 5, requires_grad=True)
    module = nn.Linear(5, 5)
    for p in module.parameters():
        p.requires_grad = False
    module.zero_grad()
    module.weight.requires_grad = True
    module.zero_grad()
    assert module.weight.grad is None  # uninitialized grad
    module(i).sum().backward()
    assert module.weight.grad is not None
    assert arr(module.weight.grad).__abs__().sum() > 0
    module.zero_grad()
    assert module.weight.grad is None  # PyTorch 2: set_to_none=True is the default
    module.bias.requires_grad = True
    module(i).sum().backward()
    assert module.weight.grad is not None and module.bias.grad is not None
    module.zero_grad(set_to_none=False)
    assert (arr(module.weight.grad) == 0).all() and (arr(module.bias.grad) == 0).all()
    module.zero_grad(set_to_none=True)
    assert module.weight.grad is None


# test_parameters_and_named_parameters
def test_parameters_and_named_parameters(lib):
    l, n, s = basic_net(lib)
    assert len(list(l.parameters())) == 1
    assert names(l.named_parameters()) == ['layer_dummy_param']
    assert len(list(n.parameters())) == 2
    assert names(n.named_parameters()) == ['dummy_param', 'l1.layer_dummy_param']
    assert len(list(n.parameters(recurse=False))) == 1
    assert names(n.named_parameters(recurse=False)) == ['dummy_param']
    assert len(list(s.parameters())) == 2
    assert names(s.named_parameters()) == ['0.dummy_param', '0.l1.layer_dummy_param']


# test_named_parameters_remove_duplicate
def test_named_parameters_remove_duplicate(lib):
    nn, T = lib.nn, lib.T

    class M1(nn.Module):
        def __init__(self):
            super().__init__()
            self.param1 = nn.Parameter(T.zeros(3, 3))
            self.param2 = self.param1

    m1 = M1()
    assert names(m1.named_parameters()) == ['param1']
    assert names(m1.named_parameters(remove_duplicate=False)) == ['param1', 'param2']

    class M2(nn.Module):
        def __init__(self):
            super().__init__()
            self.mod1 = nn.Linear(3, 4, bias=False)
            self.mod2 = self.mod1

    m2 = M2()
    assert names(m2.named_parameters()) == ['mod1.weight']
    assert names(m2.named_parameters(remove_duplicate=False)) == ['mod1.weight', 'mod2.weight']


# test_buffers_and_named_buffers
def test_buffers_and_named_buffers(lib):
    l, n, s = basic_net(lib)
    assert len(list(l.buffers())) == 1 and names(l.named_buffers()) == ['layer_dummy_buf']
    assert len(list(n.buffers())) == 2 and names(n.named_buffers()) == ['dummy_buf', 'l1.layer_dummy_buf']
    assert names(n.named_buffers(recurse=False)) == ['dummy_buf']
    assert names(s.named_buffers()) == ['0.dummy_buf', '0.l1.layer_dummy_buf']
    nn, T = lib.nn, lib.T

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('buffer1', T.zeros(3, 5))
            self.register_buffer('buffer2', self.buffer1)

    m = M()
    assert names(m.named_buffers()) == ['buffer1']
    assert names(m.named_buffers(remove_duplicate=False)) == ['buffer1', 'buffer2']


# test_children
def test_children(lib):
    nn = lib.nn
    l1, l2, l3, l4 = (nn.Linear(2, 2) for _ in range(4))
    subnet = nn.Sequential(l3, l4)
    s = nn.Sequential(l1, l2, l1, l2, subnet)
    assert list(s.children()) == [l1, l2, subnet]


# test_train_errors_for_invalid_mode
def test_train_errors_for_invalid_mode(lib):
    nn = lib.nn

    class SubclassNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(2, 2)

        def forward(self, inputs):
            return self.l1(inputs)

    for error_mode, module in itertools.product(['invalid_str', lib.cpu],
                                                [SubclassNet(), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))]):
        with pytest.raises(ValueError):
            module.train(error_mode)


# test_dir, test_dir_digit
def test_dir(lib):
    nn, T = lib.nn, lib.T
    linear = nn.Linear(2, 2)
    linear._test_submodule = nn.Linear(2, 2)
    linear._test_parameter = nn.Parameter(T.zeros(2, 2))
    linear.register_buffer('_test_buffer', T.zeros(2, 2))
    keys = dir(linear)
    assert {'_test_submodule', '_test_parameter', '_test_buffer'} <= set(keys)
    for key in keys:
        assert hasattr(linear, key)
    assert '0' not in dir(nn.Sequential(nn.Linear(2, 2)))


# test_repr
def test_repr(lib):
    nn = lib.nn
    assert repr(nn.Sequential()) == 'Sequential()'
    linear = nn.Linear(1, 1)
    assert repr(linear) == 'Linear(in_features=1, out_features=1, bias=True)'
    assert repr(nn.Sequential(linear)) == 'Sequential(\n  (0): Linear(in_features=1, out_features=1, bias=True)\n)'


# test_named_children
def test_named_children(lib):
    nn = lib.nn
    l1, l2, l3, l4 = (nn.Linear(2, 2) for _ in range(4))
    subnet = nn.Sequential(l3, l4)
    s = nn.Sequential()
    with pytest.raises(KeyError):
        s.add_module('', l1)
    with pytest.raises(KeyError):
        s.add_module('name.with.dot', l1)
    s.add_module('layer1', l1)
    s.add_module('layer2', l2)
    s.add_module('layer3', l1)
    s.add_module('layer4', l2)
    s.add_module('subnet', subnet)
    assert list(s.named_children()) == [('layer1', l1), ('layer2', l2), ('subnet', subnet)]


# test_modules, test_named_modules (the same Net; test_modules has no block)
def test_modules_and_named_modules(lib):
    nn, T = lib.nn, lib.T

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = l
            self.l2 = l
            self.param = T.zeros(3, 5)
            self.block = block

    l, l1, l2 = nn.Linear(10, 20), nn.Linear(10, 20), nn.Linear(10, 20)
    block = nn.Sequential()
    block.add_module('linear1', l1)
    block.add_module('linear2', l2)
    n = Net()
    assert list(nn.Sequential(n, n, n, n).modules())[2:] == [l, block, l1, l2]
    s = nn.Sequential(n, n)
    assert list(s.modules()) == [s, n, l, block, l1, l2]
    assert list(s.named_modules()) == [('', s), ('0', n), ('0.l1', l), ('0.block', block),
                                       ('0.block.linear1', l1), ('0.block.linear2', l2)]
    assert list(s.named_modules(remove_duplicate=False)) == [
        ('', s), ('0', n), ('0.l1', l), ('0.l2', l), ('0.block', block), ('0.block.linear1', l1),
        ('0.block.linear2', l2), ('1', n), ('1.l1', l), ('1.l2', l), ('1.block', block),
        ('1.block.linear1', l1), ('1.block.linear2', l2)]


# test_register_buffer_raises_error_if_name_is_not_string, test_register_parameter_raises_error_if_name_is_not_string
@pytest.mark.parametrize('kind', ['buffer', 'parameter'])
def test_register_raises_error_if_name_is_not_string(lib, kind):
    m = lib.nn.Module()
    register, value = registration(lib, m, kind)
    for name, type_name in ((1, 'int'), (None, 'NoneType')):
        with pytest.raises(TypeError, match=f'{kind} name should be a string. Got {type_name}'):
            register(name, value())


def registration(lib, m, kind):
    """The register method of kind and a maker of values for it (PyTorch's tests use rand(5) and Parameter())."""
    if kind == 'buffer':
        return m.register_buffer, lambda: lib.T.rand(5)
    if kind == 'parameter':
        return m.register_parameter, lambda: lib.nn.Parameter()
    return getattr(m, kind), lambda: lib.nn.Module()


# test_register_buffer_raises_error_if_attr_exists, test_register_parameter_raises_error_if_attr_exists,
# test_add_module_raises_error_if_attr_exists (add_module and register_module)
@pytest.mark.parametrize('kind', ['buffer', 'parameter', 'add_module', 'register_module'])
def test_register_raises_error_if_attr_exists(lib, kind):
    nn, T = lib.nn, lib.T
    m = nn.Module()
    register, value = registration(lib, m, kind)
    m.attribute_name = 5
    with pytest.raises(KeyError):
        register('attribute_name', value())
    others = {'buffer': lambda: m.register_buffer('attribute_name', T.rand(5)),
              'parameter': lambda: m.register_parameter('attribute_name', nn.Parameter()),
              'module': lambda: m.add_module('attribute_name', nn.Module())}
    for other, put in others.items():
        if other != kind and not (other == 'module' and kind.endswith('module')):
            del m.attribute_name
            put()
            with pytest.raises(KeyError):
                register('attribute_name', value())


# test_register_buffer_allows_overwriting_with_same_name, test_register_parameter_allows_overwriting_with_same_name
@pytest.mark.parametrize('kind', ['buffer', 'parameter'])
def test_register_allows_overwriting_with_same_name(lib, kind):
    m = lib.nn.Module()
    register, _ = registration(lib, m, kind)
    first = lib.T.rand(5) if kind == 'buffer' else lib.nn.Parameter(lib.T.rand(5))
    second = first + 5 if kind == 'buffer' else lib.nn.Parameter(first.data + 5)
    for value in (first, second, None):
        register('name', value)
        assert m.name is value


# test_register_buffer_raises_error_if_not_tensor
def test_register_buffer_raises_error_if_not_tensor(lib):
    with pytest.raises(TypeError):
        lib.nn.Module().register_buffer('attribute_name', 5)


# test_get_buffer, test_get_buffer_from_submodules
def test_get_buffer(lib):
    nn, T = lib.nn, lib.T
    m = nn.Module()
    buffer1, buffer2 = T.randn(2, 3), T.randn(4, 5)
    m.register_buffer('foo', buffer1)
    m.register_buffer('bar', buffer2)
    assert m.get_buffer('foo') is buffer1 and m.get_buffer('bar') is buffer2

    class SubSub(nn.Module):
        def __init__(self, bar):
            super().__init__()
            self.register_buffer('bar', bar)

    class Sub(nn.Module):
        def __init__(self, foo, bar):
            super().__init__()
            self.register_buffer('foo', foo)
            self.subsub = SubSub(bar)

    class MyModule(nn.Module):
        def __init__(self, foo, bar):
            super().__init__()
            self.sub = Sub(foo, bar)

    foo, bar = T.randn(2, 3), T.randn(4, 5)
    m = MyModule(foo, bar)
    assert m.get_buffer('sub.foo') is foo and m.get_buffer('sub.subsub.bar') is bar


# test_buffer_not_persistent, _del, _overwrite, _assign, _load
def test_buffer_not_persistent(lib):
    nn, T = lib.nn, lib.T
    m = nn.Module()
    m.register_buffer('buf', T.rand(5), persistent=False)
    assert len(list(m.buffers())) == 1 and len(m.state_dict()) == 0
    del m.buf
    assert len(list(m.buffers())) == 0

    m = nn.Module()
    m.register_buffer('buf', T.rand(5), persistent=False)
    m.register_buffer('buf', T.rand(5))
    assert len(list(m.buffers())) == 1 and len(m.state_dict()) == 1
    m.register_buffer('buf', T.rand(5), persistent=False)
    assert len(list(m.buffers())) == 1 and len(m.state_dict()) == 0

    m = nn.Module()
    m.register_buffer('buf', T.rand(5), persistent=False)
    m.buf = None
    assert len(list(m.buffers())) == 0 and len(m.state_dict()) == 0
    m.buf = T.rand(5)
    assert len(list(m.buffers())) == 1 and len(m.state_dict()) == 0
    m.buf = nn.Parameter(T.rand(5))
    assert len(list(m.buffers())) == 0 and len(m.state_dict()) == 1

    m = nn.Module()
    m.register_buffer('buf', T.rand(5), persistent=False)
    m.load_state_dict({})


# test_load_state_dict_invalid (also in test/nn/test_load_state_dict.py)
def test_load_state_dict_invalid(lib):
    m = lib.nn.Linear(2, 2, bias=False)
    for state_dict in ({'weight': np.random.randn(2, 2)}, {'weight': ((1.0, 1.0), (2.0, 2.0))}):
        with pytest.raises(RuntimeError, match='expected torch.Tensor or Tensor-like object from checkpoint but'):
            m.load_state_dict(state_dict)


# test_load_state_dict_type (also in test/nn/test_load_state_dict.py)
def test_load_state_dict_type(lib):
    m = lib.nn.Module()
    for bad in ('', 2):
        with pytest.raises(TypeError, match='Expected state_dict to be dict-like, got'):
            m.load_state_dict(bad)


# test_Sequential_getitem
def test_Sequential_getitem(lib):
    nn, T = lib.nn, lib.T
    l1, l2, l3, l4 = nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 40), nn.Linear(40, 50)
    n = nn.Sequential(l1, l2, l3, l4)
    assert n[0] is l1 and n[1] is l2 and n[2] is l3 and n[3] is l4
    assert n[T.tensor(3, dtype=T.int64)] is l4
    assert same_modules(n[1:], nn.Sequential(l2, l3, l4))
    assert same_modules(n[3:], nn.Sequential(l4))
    assert same_modules(n[:-1], nn.Sequential(l1, l2, l3))
    assert same_modules(n[:-3], nn.Sequential(l1))
    assert same_modules(n[::-1], nn.Sequential(l4, l3, l2, l1))


# test_Sequential_setitem, test_Sequential_setitem_named
def test_Sequential_setitem(lib):
    nn, T = lib.nn, lib.T
    l1, l2, l3, l4 = nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 40), nn.Linear(40, 50)
    n = nn.Sequential(l1, l2, l3)
    n[0] = l4
    n[-1] = l4
    n[T.tensor(1, dtype=T.int64)] = l1
    assert n[0] is l4 and n[1] is l1 and n[2] is l4
    n = nn.Sequential(OrderedDict([('linear1', l1), ('linear2', l2), ('linear3', l3)]))
    n[0] = l4
    n[-1] = l4
    assert n.linear1 is l4 and n.linear3 is l4


# test_Sequential_delitem
def test_Sequential_delitem(lib):
    nn = lib.nn
    l1, l2, l3, l4 = nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 40), nn.Linear(40, 50)
    n = nn.Sequential(l1, l2, l3, l4)
    del n[-1]
    assert same_modules(n, nn.Sequential(l1, l2, l3))
    del n[1::2]
    assert same_modules(n, nn.Sequential(l1, l3))


# test_Sequential_add, test_Sequential_iadd
def test_Sequential_add_and_iadd(lib):
    nn = lib.nn
    l1, l2, l3, l4 = nn.Linear(1, 2), nn.Linear(2, 3), nn.Linear(3, 4), nn.Linear(4, 5)
    assert same_modules(nn.Sequential(l1, l2) + nn.Sequential(l3, l4), nn.Sequential(l1, l2, l3, l4))
    n = nn.Sequential(l1, l2, l3)
    n2 = nn.Sequential(l4)
    n += n2
    n2 += n
    assert same_modules(n, nn.Sequential(l1, l2, l3, l4))
    assert same_modules(n2, nn.Sequential(l4, l1, l2, l3, l4))


# test_Sequential_mul, test_Sequential_rmul, test_Sequential_imul
def test_Sequential_mul_rmul_imul(lib):
    nn = lib.nn
    l1, l2, l3, l4 = nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 40), nn.Linear(40, 50)
    n = nn.Sequential(l1, l2, l3, l4)
    assert same_modules(n * 2, nn.Sequential(l1, l2, l3, l4, l1, l2, l3, l4))
    assert same_modules(2 * n, nn.Sequential(l1, l2, l3, l4, l1, l2, l3, l4))
    n *= 2
    assert same_modules(n, nn.Sequential(l1, l2, l3, l4, l1, l2, l3, l4))
    n *= 2
    assert same_modules(n, nn.Sequential(*[l1, l2, l3, l4] * 4))


# test_Sequential_append
def test_Sequential_append(lib):
    nn = lib.nn
    l1, l2, l3, l4 = nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 40), nn.Linear(40, 50)
    n = nn.Sequential(l1, l2, l3)
    n2 = n.append(l4)
    assert same_modules(n, nn.Sequential(l1, l2, l3, l4)) and n2 is n
    assert same_modules(nn.Sequential(l1).append(l2).append(l4), nn.Sequential(l1, l2, l4))


# test_Sequential_pop
def test_Sequential_pop(lib):
    nn = lib.nn
    l1, l2, l3, l4 = nn.Linear(1, 2), nn.Linear(2, 3), nn.Linear(3, 4), nn.Linear(4, 5)
    n1 = nn.Sequential(l1, l2, l3, l4)
    assert l4 is n1.pop(3)
    assert same_modules(n1, nn.Sequential(l1, l2, l3))
    for k, mod in zip(range(len(n1)), n1):
        assert n1[k] is mod


# test_Sequential_insert, test_Sequential_insert_fail_case
def test_Sequential_insert(lib):
    nn = lib.nn
    l1, l2, l3 = nn.Linear(1, 2), nn.Linear(2, 3), nn.Linear(3, 4)
    module_1 = nn.Linear(4, 5)
    assert same_modules(nn.Sequential(l1, l2, l3).insert(1, module_1), nn.Sequential(l1, module_1, l2, l3))
    module_2 = nn.Linear(5, 6)
    assert same_modules(nn.Sequential(l1, l2, l3).insert(-2, module_2), nn.Sequential(l1, module_2, l2, l3))
    n1 = nn.Sequential(l1, l2, l3)
    with pytest.raises(IndexError):
        n1.insert(-5, nn.Linear(5, 6))
    with pytest.raises(AssertionError):
        n1.insert(1, [nn.Linear(6, 7)])


# test_Sequential_extend
def test_Sequential_extend(lib):
    nn = lib.nn
    l1, l2, l3, l4 = nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 40), nn.Linear(40, 50)
    n1, n2, n3 = nn.Sequential(l1, l2), nn.Sequential(l3, l4), nn.Sequential(l1, l2)
    for layer in n2:
        n1.append(layer)
    n3.extend(n2)
    assert same_modules(n3, n1)


# test_ModuleList (Conv2d and GELU replaced by Linear and Tanh)
def test_ModuleList(lib):
    nn, T = lib.nn, lib.T
    modules = [nn.ReLU(), nn.Linear(5, 5)]
    module_list = nn.ModuleList(modules)

    def check():
        assert len(module_list) == len(modules)
        for m1, m2 in zip(modules, module_list):
            assert m1 is m2
        for m1, m2 in zip(modules, module_list.children()):
            assert m1 is m2
        for i in range(len(modules)):
            assert module_list[i] is modules[i]

    check()
    modules += [nn.Linear(3, 4)]
    module_list += [modules[-1]]
    check()
    modules = modules + [nn.Linear(3, 4, bias=False), nn.Tanh()]
    module_list = module_list + nn.ModuleList(modules[-2:])
    check()
    modules.insert(1, nn.Linear(3, 2))
    module_list.insert(1, modules[1])
    check()
    modules.append(nn.Tanh())
    module_list.append(modules[-1])
    check()
    next_modules = [nn.Linear(5, 5), nn.Sigmoid()]
    modules.extend(next_modules)
    module_list.extend(next_modules)
    check()
    modules[2] = nn.Linear(5, 3)
    module_list[2] = modules[2]
    check()
    modules[-1] = nn.Linear(5, 2)
    module_list[-1] = modules[-1]
    check()
    idx = T.tensor(2, dtype=T.int64)  # int32 in the original
    modules[2] = nn.Linear(5, 3)
    module_list[idx] = modules[2]
    assert module_list[idx] is modules[2]
    check()
    assert same_modules(module_list[1:], nn.ModuleList(modules[1:]))
    assert same_modules(module_list[3:], nn.ModuleList(modules[3:]))
    assert same_modules(module_list[:-1], nn.ModuleList(modules[:-1]))
    assert same_modules(module_list[:-3], nn.ModuleList(modules[:-3]))
    assert same_modules(module_list[::-1], nn.ModuleList(modules[::-1]))
    del module_list[-1]
    assert same_modules(module_list, nn.ModuleList(modules[:-1]))
    del module_list[1::2]
    assert same_modules(module_list, nn.ModuleList(modules[:-1][0::2]))
    with pytest.raises(TypeError):
        module_list += nn.ReLU()
    with pytest.raises(TypeError):
        module_list.extend(nn.ReLU())

    l1, l2, l3, l4 = nn.Linear(1, 2), nn.Linear(2, 3), nn.Linear(3, 2), nn.Linear(2, 3)
    subnet = nn.Sequential(l3, l4)
    s = nn.Sequential(OrderedDict([('layer1', l1), ('layer2', l2), ('layer3', l3), ('layer4', l4),
                                   ('subnet_layer', subnet)]))
    modules = list(s.modules())
    module_list = nn.ModuleList()
    module_list.extend(s.modules())
    check()

    modules = [nn.ReLU(), nn.Linear(5, 5), nn.Linear(3, 4)]
    module_list = nn.ModuleList(modules)
    assert modules.pop(1) is module_list.pop(1)
    assert list(module_list) == modules
    for k, mod in zip(range(len(module_list)), module_list):
        assert module_list[k] is mod
    with pytest.raises(NotImplementedError):  # a ModuleList has no forward
        module_list()
    with pytest.raises(NotImplementedError):
        module_list(T.rand(1, 3))


# test_ModuleDict (Conv2d replaced by Linear)
def test_ModuleDict(lib):
    nn, T = lib.nn, lib.T
    modules = OrderedDict([('act', nn.ReLU()), ('conv', nn.Linear(10, 10)), ('fc', nn.Linear(5, 5))])
    module_dict = nn.ModuleDict(modules)

    def check():
        assert len(module_dict) == len(modules)
        for k1, m2 in zip(modules, module_dict.children()):
            assert modules[k1] is m2
        for k1, k2 in zip(modules, module_dict):
            assert modules[k1] is module_dict[k2]
        for k in module_dict:
            assert module_dict[k] is modules[k]
        for k in module_dict.keys():
            assert module_dict[k] is modules[k]
        for k, v in module_dict.items():
            assert modules[k] is v
        for k1, m2 in zip(modules, module_dict.values()):
            assert modules[k1] is m2
        for k in modules.keys():
            assert k in module_dict

    check()
    modules['conv'] = nn.Linear(3, 4)
    module_dict['conv'] = modules['conv']
    check()
    next_modules = [('fc2', nn.Linear(5, 5)), ('act', nn.Sigmoid())]
    modules.update(next_modules)
    module_dict.update(next_modules)
    check()
    next_modules = OrderedDict([('fc3', nn.Linear(5, 5)), ('act2', nn.Sigmoid())])
    modules.update(next_modules)
    module_dict.update(next_modules)
    check()
    next_modules = {'fc4': nn.Linear(5, 5), 'act3': nn.Sigmoid()}
    modules.update(next_modules.items())
    module_dict.update(next_modules)
    check()
    next_modules = nn.ModuleDict([('fc5', nn.Linear(5, 5)), ('act4', nn.Sigmoid())])
    modules.update(next_modules)
    module_dict.update(next_modules)
    check()
    del module_dict['fc']
    del modules['fc']
    check()
    with pytest.raises(TypeError):
        module_dict.update(nn.ReLU())
    with pytest.raises(TypeError):
        module_dict.update([nn.ReLU()])
    with pytest.raises(ValueError):
        module_dict.update([[nn.ReLU()]])
    with pytest.raises(TypeError):
        module_dict[1] = nn.ReLU()
    s = nn.Sequential(modules)
    module_dict = nn.ModuleDict(s.named_children())
    check()
    c = module_dict.pop('conv')
    assert c is modules['conv']
    modules.pop('conv')
    check()
    module_dict.clear()
    assert len(module_dict) == 0
    modules.clear()
    check()
    with pytest.raises(NotImplementedError):
        module_dict()
    with pytest.raises(NotImplementedError):
        module_dict(T.rand(1, 3))


# test_ParameterList
def test_ParameterList(lib):
    nn, T = lib.nn, lib.T

    def make_param():
        return nn.Parameter(T.randn(2, 2))

    parameters = [make_param(), make_param()]
    param_list = nn.ParameterList(parameters)

    def check():
        assert len(parameters) == len(param_list)
        for p1, p2 in zip(parameters, param_list):
            assert p1 is p2
        for p1, p2 in zip(filter(lambda x: isinstance(x, nn.Parameter), parameters), param_list.parameters()):
            assert p1 is p2
        for i in range(len(parameters)):
            assert parameters[i] is param_list[i]

    check()
    parameters += [make_param()]
    param_list += [parameters[-1]]
    check()
    parameters.append(make_param())
    param_list.append(parameters[-1])
    check()
    next_params = [make_param(), make_param()]
    parameters.extend(next_params)
    param_list.extend(next_params)
    check()
    parameters[2] = make_param()
    param_list[2] = parameters[2]
    check()
    parameters[-1] = make_param()
    param_list[-1] = parameters[-1]
    check()
    idx = T.tensor(2, dtype=T.int64)  # int32 in the original
    parameters[2] = make_param()
    param_list[idx] = parameters[2]
    assert param_list[idx] is parameters[2]
    check()
    for part in (slice(1, None), slice(3, None), slice(None, -1), slice(None, -3), slice(None, None, -1)):
        assert list(param_list[part]) == parameters[part] and type(param_list[part]) is nn.ParameterList
    with pytest.raises(TypeError):
        param_list += make_param()
    with pytest.raises(TypeError):
        param_list.extend(make_param())

    l1, l2, l3, l4 = nn.Linear(1, 2), nn.Linear(2, 3), nn.Linear(3, 2), nn.Linear(2, 3)
    subnet = nn.Sequential(l3, l4)
    s = nn.Sequential(OrderedDict([('layer1', l1), ('layer2', l2), ('layer3', l3), ('layer4', l4),
                                   ('subnet_layer', subnet)]))
    parameters = list(s.parameters())
    param_list = nn.ParameterList()
    param_list.extend(s.parameters())
    check()
    param_list.append(T.rand(2, 2))
    assert isinstance(param_list[-1], nn.Parameter)
    parameters.append(param_list[-1])
    param_list.extend([T.rand(2, 2), 'foo'])
    assert isinstance(param_list[-2], nn.Parameter) and isinstance(param_list[-1], str)
    parameters.extend(param_list[-2:])
    param_list += ['bar', T.rand(2, 2)]
    assert isinstance(param_list[-2], str) and isinstance(param_list[-1], nn.Parameter)
    parameters += param_list[-2:]
    check()


# test_ParameterDict
def test_ParameterDict(lib):
    nn, T = lib.nn, lib.T

    def P():
        return nn.Parameter(T.randn(10, 10))

    parameters = OrderedDict([('p1', P()), ('p2', P()), ('p3', P())])
    parameter_dict = nn.ParameterDict(parameters)

    def check():
        assert len(parameter_dict) == len(parameters)
        for k1, (k2, m2) in zip(parameters, parameter_dict.named_parameters()):
            assert k1 == k2 and parameters[k1] is m2
        for k1, k2 in zip(parameters, parameter_dict):
            assert parameters[k1] is parameter_dict[k2]
        for k in parameter_dict:
            assert parameter_dict[k] is parameters[k]
        for k in parameter_dict.keys():
            assert parameter_dict[k] is parameters[k]
        for k, v in parameter_dict.items():
            assert v is parameters[k]
        for k1, m2 in zip(parameters, parameter_dict.values()):
            assert parameters[k1] is m2
        for k in parameters.keys():
            assert k in parameter_dict

    check()
    parameters['p4'] = P()
    parameter_dict['p4'] = parameters['p4']
    check()
    next_parameters = [('p5', P()), ('p2', P())]
    parameters.update(next_parameters)
    parameter_dict.update(next_parameters)
    check()
    next_parameters = OrderedDict([('p6', P()), ('p5', P())])
    parameters.update(next_parameters)
    parameter_dict.update(next_parameters)
    check()
    next_parameters = {'p8': P(), 'p7': P()}
    parameters.update(sorted(next_parameters.items()))
    parameter_dict.update(next_parameters)
    check()
    next_parameters = nn.ParameterDict([('p10', P()), ('p9', P())])
    parameters.update(next_parameters)
    parameter_dict.update(next_parameters)
    check()
    del parameter_dict['p3']
    del parameters['p3']
    check()
    with pytest.raises(TypeError):
        parameter_dict.update(1)
    with pytest.raises(TypeError):
        parameter_dict.update([1])
    with pytest.raises(ValueError):
        parameter_dict.update(P())
    p_pop = parameter_dict.pop('p4')
    assert p_pop is parameters['p4']
    parameters.pop('p4')
    check()
    forward, backward = list(iter(parameter_dict)), list(reversed(parameter_dict))
    assert forward == backward[::-1]
    copy = parameter_dict.copy()
    for key in parameter_dict:
        assert key in copy and parameter_dict[key] is copy[key]
    parameter_dict['p20'] = P()
    copy['p21'] = nn.Parameter(T.randn(9, 10))
    assert 'p20' in parameter_dict and 'p20' not in copy and 'p21' not in parameter_dict and 'p21' in copy
    parameter_dict.pop('p20')
    check()
    p = P()
    parameter_dict['p12'] = p
    p_popitem = parameter_dict.popitem()
    assert p_popitem[0] == 'p12' and p_popitem[1] is p
    check()
    parameters['p11'] = P()
    p_setdefault = parameter_dict.setdefault('p11', parameters['p11'])
    assert p_setdefault is parameters['p11'] is parameter_dict['p11']
    check()
    p = P()
    assert parameter_dict.setdefault('p11', p) is not p
    check()
    assert parameter_dict.setdefault('p26') is None
    del parameter_dict['p26']
    check()
    parameters2 = OrderedDict([('p13', P()), ('p2', P()), ('p3', P())])
    parameters.update(parameters2)
    parameter_dict |= nn.ParameterDict(parameters2)
    check()
    parameters2 = OrderedDict([('p20', P()), ('p21', P()), ('p22', P())])
    parameters.update(parameters2)
    parameter_dict = parameter_dict | nn.ParameterDict(parameters2)
    check()
    parameters2 = OrderedDict([('p23', P()), ('p24', P()), ('p25', P())])
    parameter_dict2 = nn.ParameterDict(parameters2)
    parameters2.update(parameters)
    parameters = parameters2
    parameter_dict = parameter_dict2 | parameter_dict
    check()
    parameters['p17'] = P()
    parameter_dict['p17'] = parameters['p17']
    temp_param = P()
    assert parameter_dict.get('p17') is parameters['p17'] and parameter_dict.get('p17', temp_param) is parameters['p17']
    assert parameter_dict.get('p18') is None and parameter_dict.get('p18', temp_param) is temp_param
    check()
    parameter_dict.clear()
    assert len(parameter_dict) == 0
    parameters.clear()
    check()
    assert dict(parameter_dict.fromkeys(['p19', 'p20']).items()) == {'p19': None, 'p20': None}
    assert dict(parameter_dict.fromkeys(['p19', 'p20'], temp_param).items()) == {'p19': temp_param, 'p20': temp_param}
    parameter_dict['p21'] = T.rand(2, 2)
    assert isinstance(parameter_dict['p21'], nn.Parameter)
    parameter_dict.update({'p22': T.rand(2, 2), 'foo': 'bar'})
    assert isinstance(parameter_dict['p22'], nn.Parameter) and isinstance(parameter_dict['foo'], str)


# test_add_module
def test_add_module(lib):
    nn = lib.nn
    for fn in ['add_module', 'register_module']:
        l = nn.Linear(10, 20)
        net = nn.Module()
        net.l = l
        net.l2 = l
        getattr(net, fn)('empty', None)
        assert net.l is l and net.l2 is l and net.empty is None
        getattr(net, fn)('l3', l)
        assert net.l3 is l
        l3 = nn.Linear(20, 10)
        getattr(net, fn)('l', l3)
        assert net.l is l3
        with pytest.raises(TypeError):
            getattr(net, fn)('x', 'non-module')
        with pytest.raises(TypeError, match='module name should be a string. Got int'):
            getattr(net, fn)(1, l)
        with pytest.raises(TypeError, match='module name should be a string. Got NoneType'):
            getattr(net, fn)(None, l)


# test_module_to_argparse
def test_module_to_argparse(lib):
    T, nn, cpu = lib.T, lib.nn, lib.cpu
    net = nn.Sequential(nn.Linear(3, 3))
    for call in (lambda: net.to(cpu, True), lambda: net.to(T.int64), lambda: net.to(None, True),
                 lambda: net.to(cpu, T.int64, True), lambda: net.to(cpu, dtype=T.int64, non_blocking=True),
                 lambda: net.to([]), lambda: net.to({}, non_blocking=True),
                 lambda: net.to(T.tensor(3, dtype=T.int64), non_blocking=True),
                 lambda: net.to(cpu, T.tensor(3, dtype=T.int64), non_blocking=True)):
        with pytest.raises(TypeError):
            call()


# test_type (CUDA and half precision left out)
def test_type(lib):
    T, nn = lib.T, lib.nn
    l = nn.Linear(10, 20)
    net = nn.Module()
    net.l = l
    net.l2 = l
    net.add_module('empty', None)
    net.register_buffer('indices', T.tensor([1], dtype=T.int64))
    net.float()
    assert l.weight.dtype == T.float32 and l.bias.dtype == T.float32 and net.indices.dtype == T.int64
    net.double()
    assert l.weight.dtype == T.float64 and l.bias.dtype == T.float64 and net.indices.dtype == T.int64
    net.to(T.float32)
    assert l.weight.dtype == T.float32 and net.indices.dtype == T.int64
    net.to(T.zeros(1, dtype=T.float64))
    assert l.weight.dtype == T.float64 and l.bias.dtype == T.float64


# test_non_leaf_parameters
def test_non_leaf_parameters(lib):
    nn, T = lib.nn, lib.T
    l1, l2 = nn.Linear(10, 10), nn.Linear(10, 10)
    with pytest.raises(TypeError):
        l2.weight = l1.weight + 2
    l2.weight = nn.Parameter(T.randn(10, 10))


# ==== test/nn/test_module_hooks.py (class TestModuleHooks) ====================================================
def toy_model(lib):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.seq1 = nn.Sequential(*[nn.Linear(10, 10) for _ in range(2)])
            self.seq2 = nn.Sequential(*[nn.Linear(10, 10) for _ in range(2)])

        def forward(self, x):
            return self.seq2(self.seq1(x))

    class ToyModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.net1 = Net()
            self.net2 = Net()

        def forward(self, x):
            return self.net2(self.net1(x))

    return ToyModel()


def forward_hook(fired_hooks, expected_module, hook_id, module, inp, out):
    fired_hooks.append(hook_id)
    assert id(module) == id(expected_module) and len(inp) == 1


def forward_pre_hook(fired_hooks, expected_module, hook_id, module, inp):
    fired_hooks.append(hook_id)
    assert id(module) == id(expected_module) and len(inp) == 1


# test_forward_hooks, test_forward_pre_hooks: hooks 0-4 on one submodule, some prepended; they fire in this
# order on every forward and never in backward
@pytest.mark.parametrize('kind, where, prepended, expected', [
    ('forward', ('net1', 'seq2'), {1, 4}, [4, 1, 0, 2, 3]),
    ('forward_pre', ('net2', 'seq1'), {0, 4}, [4, 0, 1, 2, 3])])
def test_forward_and_forward_pre_hooks(lib, kind, where, prepended, expected):
    fired_hooks = []
    model = toy_model(lib)
    x = lib.T.randn(10, 10)
    target = getattr(getattr(model, where[0]), where[1])
    hook = partial(forward_hook if kind == 'forward' else forward_pre_hook, fired_hooks, target)
    register = getattr(target, f'register_{kind}_hook')
    for hook_id in range(5):
        register(partial(hook, hook_id), prepend=hook_id in prepended)
    assert fired_hooks == []
    out = model(x)
    assert fired_hooks == expected
    out.sum().backward()
    assert fired_hooks == expected
    model(x).sum().backward()
    assert fired_hooks == expected + expected


def kwarg_model(lib):
    nn = lib.nn

    class KwargModel(nn.Module):
        def forward(self, x, bias=None):
            return x if bias is None else x + bias

        def internal_forward_hook(self, module, args, kwargs, out):
            return out + kwargs['bias']

    return KwargModel()


def kwarg_forward_pre_hook(fired_hooks, expected_module, hook_id, module, args, kwargs):
    fired_hooks.append(hook_id)
    assert id(module) == id(expected_module) and len(args) == 1
    kwargs['bias'] = 2 * kwargs['bias']
    return args, kwargs


def kwarg_forward_hook(fired_hooks, expected_module, hook_id, module, args, kwargs, out):
    fired_hooks.append(hook_id)
    assert id(module) == id(expected_module) and len(args) == 1
    return out + kwargs['bias']


# test_kwarg_hooks
def test_kwarg_hooks(lib):
    T = lib.T
    fired_hooks = []
    x, bias = T.ones(10, 10), T.ones(10, 10)
    model = kwarg_model(lib)
    model.register_forward_pre_hook(partial(kwarg_forward_pre_hook, fired_hooks, model, 0), with_kwargs=True)
    out = model(x, bias=bias)
    assert fired_hooks == [0]
    np.testing.assert_allclose(arr(out), arr(x + 2 * bias), atol=1e-5)

    fired_hooks = []
    model = kwarg_model(lib)
    model.register_forward_hook(partial(kwarg_forward_hook, fired_hooks, model, 1), with_kwargs=True)
    model.register_forward_pre_hook(partial(kwarg_forward_pre_hook, fired_hooks, model, 0), with_kwargs=True)
    out = model(x, bias=bias)
    assert fired_hooks == [0, 1]
    np.testing.assert_allclose(arr(out), arr(x + 4 * bias), atol=1e-5)

    model = kwarg_model(lib)
    model.register_forward_hook(model.internal_forward_hook, with_kwargs=True)
    np.testing.assert_allclose(arr(model(x, bias=bias)), arr(x + 2 * bias), atol=1e-5)


# test_remove_kwarg_hooks (its checks of the private _forward_hooks_with_kwargs sets are left out)
def test_remove_kwarg_hooks(lib):
    T = lib.T
    fired_hooks = []
    x, bias = T.ones(10, 10), T.ones(10, 10)
    model = kwarg_model(lib)
    forward_hook_handle = model.register_forward_hook(
        partial(kwarg_forward_hook, fired_hooks, model, 1), with_kwargs=True)
    forward_pre_hook_handle = model.register_forward_pre_hook(
        partial(kwarg_forward_pre_hook, fired_hooks, model, 0), with_kwargs=True)
    out = model(x, bias=bias)
    assert fired_hooks == [0, 1]
    np.testing.assert_allclose(arr(out), arr(x + 4 * bias), atol=1e-5)
    forward_hook_handle.remove()
    out = model(x, bias=bias)
    assert fired_hooks == [0, 1, 0]
    np.testing.assert_allclose(arr(out), arr(x + 2 * bias), atol=1e-5)
    forward_pre_hook_handle.remove()
    out = model(x, bias=bias)
    assert fired_hooks == [0, 1, 0]
    np.testing.assert_allclose(arr(out), arr(x + bias), atol=1e-5)


# test_always_called_forward_hooks (the hook registered with always_call runs when forward raises)
def test_always_called_forward_hooks(lib):
    nn = lib.nn
    x = lib.T.ones(10, 10)
    model = toy_model(lib)
    stack = []
    ctx = None

    def setup_context():
        nonlocal ctx
        ctx = object()

    def ctx_setup_hook(m, i):
        setup_context()
        stack.append(ctx)

    def ctx_setup_failure_hook(m, i):
        setup_context()
        stack.append(ctx)
        raise RuntimeError('failing in ctx setup')

    def ctx_shutdown_hook(m, i, o):
        stack.remove(ctx)

    def ctx_shutdown_failure_hook(m, i, o):
        stack.remove(ctx)
        raise RuntimeError('failing in ctx shutdown')

    def throw_hook(m, i, o):
        raise RuntimeError('failing in throw')

    forward_pre_hook_handle = model.register_forward_pre_hook(ctx_setup_hook)
    forward_hook_handle = model.register_forward_hook(ctx_shutdown_hook, always_call=True)
    assert len(model._forward_hooks) == 1
    model(x)
    assert len(stack) == 0
    model.register_forward_hook(throw_hook)
    with pytest.raises(RuntimeError):
        model(x)
    assert len(stack) == 0
    forward_pre_hook_handle.remove()
    forward_hook_handle.remove()
    assert len(model._forward_hooks) == 1  # the throw_hook is still there

    model = toy_model(lib)
    model.register_forward_pre_hook(ctx_setup_failure_hook)
    model.register_forward_hook(ctx_shutdown_hook, always_call=True)
    with pytest.raises(RuntimeError):
        model(x)
    assert len(stack) == 0

    model = toy_model(lib)
    model.register_forward_pre_hook(ctx_setup_hook)
    model.register_forward_hook(ctx_shutdown_failure_hook, always_call=True)
    with pytest.raises(RuntimeError):
        model(x)
    assert len(stack) == 0
    assert isinstance(model, nn.Module)


# test_hook_forward_preforward_writable (in test_nn.py): hooks may replace inputs and outputs
def test_hook_forward_preforward_writable(lib):
    T, F = lib.T, lib.nn.functional
    module = lib.nn.Sigmoid()
    x = T.randn(5, 5, requires_grad=True)
    module.register_forward_pre_hook(lambda m, inp: F.relu(inp[0]))
    module.register_forward_hook(lambda m, inp, out: -out)
    np.testing.assert_allclose(arr(module(x)), arr(-F.sigmoid(F.relu(x))), rtol=1e-6)


# handles remove their hook as a context manager too (torch.utils.hooks.RemovableHandle)
def test_hook_handle_as_context_manager(lib):
    fired = []
    layer = lib.nn.Linear(2, 2)
    with layer.register_forward_hook(lambda *args: fired.append(1)):
        layer(lib.T.ones(1, 2))
    layer(lib.T.ones(1, 2))
    assert fired == [1]


# ==== test/nn/test_load_state_dict.py (class TestLoadStateDict) ==============================================
# test_load_state_dict (Conv2d and BatchNorm2d replaced by Linear layers and a registered buffer)
def test_load_state_dict(lib):
    T, nn = lib.T, lib.nn
    l = nn.Linear(5, 5)
    block = nn.Module()
    block.conv1 = nn.Linear(3, 3, bias=True)
    block.conv2 = nn.Linear(3, 3, bias=False)
    net = nn.Module()
    net.linear1 = l
    net.linear2 = l
    net.bn = nn.Module()
    net.bn.register_buffer('running_mean', T.zeros(2))
    net.block = block
    net.add_module('empty', None)

    state_dict = net.state_dict()
    state_dict.update({'linear1.weight': T.ones(5, 5), 'block.conv1.bias': T.tensor([1.0, 2.0, 3.0]),
                       'bn.running_mean': T.randn(2)})
    incompatible_keys = net.load_state_dict(state_dict)
    assert len(incompatible_keys.missing_keys) == 0 and len(incompatible_keys.unexpected_keys) == 0
    assert 'Incompatible' not in str(incompatible_keys)
    assert (arr(net.linear1.weight) == arr(state_dict['linear1.weight'])).all()
    assert (arr(net.block.conv1.bias) == arr(state_dict['block.conv1.bias'])).all()
    assert (arr(net.bn.running_mean) == arr(state_dict['bn.running_mean'])).all()

    state_dict = net.state_dict()
    state_dict.update({'extra': T.ones(5)})
    with pytest.raises(RuntimeError):
        net.load_state_dict(state_dict)
    incompatible_keys = net.load_state_dict(state_dict, strict=False)
    assert incompatible_keys.missing_keys == [] and incompatible_keys.unexpected_keys == ['extra']
    assert 'Incompatible' in str(incompatible_keys)

    state_dict = net.state_dict()
    state_dict.update({'extra.param': T.ones(5)})
    with pytest.raises(RuntimeError):
        net.load_state_dict(state_dict)
    incompatible_keys = net.load_state_dict(state_dict, strict=False)
    assert incompatible_keys.missing_keys == [] and incompatible_keys.unexpected_keys == ['extra.param']

    state_dict = net.state_dict()
    del state_dict['linear1.weight']
    with pytest.raises(RuntimeError):
        net.load_state_dict(state_dict)
    incompatible_keys = net.load_state_dict(state_dict, strict=False)
    assert incompatible_keys.missing_keys == ['linear1.weight'] and incompatible_keys.unexpected_keys == []
    state_dict.update({'extra.param': T.ones(5)})
    with pytest.raises(RuntimeError):
        net.load_state_dict(state_dict)
    incompatible_keys = net.load_state_dict(state_dict, strict=False)
    assert incompatible_keys.missing_keys == ['linear1.weight']
    assert incompatible_keys.unexpected_keys == ['extra.param']

    state_dict = net.state_dict()
    state_dict.update({'bn.running_mean': T.rand(14, 4)})  # wrong size
    with pytest.raises(RuntimeError):
        net.load_state_dict(state_dict)
    with pytest.raises(RuntimeError):
        net.load_state_dict(state_dict, strict=False)

    old_state_dict = {k: arr(v).copy() for k, v in net.state_dict().items()}
    state_dict = {'linear1.weight': T.ones(5, 5), 'block.conv1.bias': T.tensor([1.0, 2.0, 3.0]),
                  'bn.running_mean': T.randn(2), 'nonexistent_key': T.rand(3)}
    net.load_state_dict(state_dict, strict=False)
    assert (arr(net.linear1.weight) == 1).all()
    assert (arr(net.block.conv1.bias) == [1, 2, 3]).all()
    new_state_dict = net.state_dict()
    for k in ('linear1.weight', 'linear2.weight', 'block.conv1.bias', 'bn.running_mean'):
        del old_state_dict[k]
    for k, v in old_state_dict.items():
        assert (v == arr(new_state_dict[k])).all()


# test_load_state_dict_child (its load_state_dict pre-hook is left out: d2lmod has no state-dict hooks)
def test_load_state_dict_child(lib):
    import copy
    model = lib.nn.Linear(1, 1)
    for _ in range(3):
        model = lib.nn.Sequential(*[copy.deepcopy(model) for _ in range(10)])
    assert model.load_state_dict(model.state_dict(), strict=True).missing_keys == []
    assert len(model.state_dict()) == 2 * 1000


# ==== test/nn/test_lazy_modules.py (class TestLazyModules) ===================================================
def lazy_module(lib):
    """torch's test builds LazyModule(LazyModuleMixin, Module); has_uninitialized_params is on every d2lmod Module."""
    if lib.name == 'torch':
        class LazyModule(lib.T.nn.modules.lazy.LazyModuleMixin, lib.nn.Module):
            pass
        return LazyModule()
    return lib.nn.Module()


# test_lazy_module_parameter, test_lazy_module_buffer
@pytest.mark.parametrize('kind', ['parameter', 'buffer'])
def test_lazy_module_parameter_and_buffer(lib, kind):
    T, nn = lib.T, lib.nn
    Uninitialized = nn.parameter.UninitializedParameter if kind == 'parameter' else nn.parameter.UninitializedBuffer

    def with_test_tensor(value):
        module = lazy_module(lib)
        if kind == 'parameter':
            module.register_parameter('test', value if value is None or isinstance(value, Uninitialized)
                                      else nn.Parameter(value))
        else:
            module.test = value if isinstance(value, Uninitialized) else nn.Buffer(value)  # as the original
        return module

    module = with_test_tensor(Uninitialized())
    assert module.has_uninitialized_params()
    state_dict = module.state_dict()
    assert isinstance(state_dict['test'], Uninitialized)
    with pytest.raises(RuntimeError, match='shape of an uninitialized'):  # into an initialized one
        with_test_tensor(T.ones(5, 5)).load_state_dict(state_dict)
    module.load_state_dict(with_test_tensor(T.ones(5, 5)).state_dict())  # a valid one overrides it
    assert (arr(module.test) == 1).all() and tuple(module.test.shape) == (5, 5)
    module = with_test_tensor(Uninitialized())
    module.load_state_dict(with_test_tensor(Uninitialized()).state_dict())  # left unchanged
    assert module.has_uninitialized_params()


# test_linear
def test_linear(lib):
    T, nn = lib.T, lib.nn
    UninitializedParameter = nn.parameter.UninitializedParameter
    module = nn.LazyLinear(10)
    assert isinstance(module.weight, UninitializedParameter) and isinstance(module.bias, UninitializedParameter)
    x = T.ones(5, 5)
    output = module(x)
    assert isinstance(module, nn.Linear) and not isinstance(module, nn.LazyLinear)
    assert tuple(module.weight.shape) == (10, 5) and tuple(module.bias.shape) == (10,)
    assert (arr(module.weight) != 0).any() and (arr(module.bias) != 0).any() and (arr(output) != 0).any()
    y = module(x)
    assert (arr(nn.functional.linear(x, module.weight, module.bias)) == arr(y)).all()


# test_linear_state (torch 2.13: a loaded LazyLinear keeps its class, and says in_features=0, until its first call)
def test_linear_state(lib):
    nn = lib.nn
    module = nn.Linear(5, 10)
    lazy = nn.LazyLinear(10)
    lazy.load_state_dict(module.state_dict())
    assert not lazy.has_uninitialized_params() and type(lazy) is nn.LazyLinear and lazy.in_features == 0
    assert tuple(lazy.weight.shape) == (10, 5) and tuple(lazy.bias.shape) == (10,)
    lazy(lib.T.randn(5, 5))
    assert lazy.in_features == 5 and type(lazy) is nn.Linear
    module = nn.Linear(5, 10)
    with pytest.raises(RuntimeError, match='shape of an uninitialized'):
        module.load_state_dict(nn.LazyLinear(10).state_dict())


# test_lazy_pre_forward_hook, test_lazy_forward_hook
def test_lazy_hooks(lib):
    T = lib.T
    base = (lib.T.nn.modules.lazy.LazyModuleMixin, lib.nn.Module) if lib.name == 'torch' else (lib.nn.Module,)

    class TestModule(*base):
        def initialize_parameters(self, input):
            return None

        def forward(self, input):
            return input

    module = TestModule()
    module.register_forward_pre_hook(lambda m, inp: inp[0] + 1)
    assert (arr(module(T.zeros(2, 2))) == 1).all()
    module = TestModule()
    module.register_forward_hook(lambda m, inp, out: inp[0] + 1)
    assert (arr(module(T.zeros(2, 2))) == 1).all()


# test_materialize_dtype (half precision replaced by float64)
def test_materialize_dtype(lib):
    T, nn = lib.T, lib.nn
    module = lazy_module(lib)
    module.register_parameter('test_param', nn.parameter.UninitializedParameter())
    module.test_param.materialize(10)
    assert module.test_param.dtype == T.float32
    module = lazy_module(lib)
    module.register_parameter('test_param', nn.parameter.UninitializedParameter())
    module.double()
    module.test_param.materialize(10)
    assert module.test_param.dtype == T.float64


# test_chained_initialization
def test_chained_initialization(lib):
    nn = lib.nn

    class MyNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_1 = nn.LazyLinear(15)
            self.linear_2 = nn.LazyLinear(10)

        def forward(self, x):
            return self.linear_2(self.linear_1(x))

    net = MyNetwork()
    net(lib.T.ones(5, 10))
    assert tuple(net.linear_1.weight.shape) == (15, 10) and tuple(net.linear_1.bias.shape) == (15,)
    assert tuple(net.linear_2.weight.shape) == (10, 15) and tuple(net.linear_2.bias.shape) == (10,)


# test_optimizer_pass (SGD and Adam, the optimizers d2lmod has; d2lmod's optimizers keep a flat .params list
# where PyTorch has param_groups)
def test_optimizer_pass(lib):
    T, nn = lib.T, lib.nn

    def held(optim):
        return optim.param_groups[0]['params'][0] if hasattr(optim, 'param_groups') else optim.params[0]

    for make in (lambda ps: T.optim.SGD(ps, lr=0.0), lambda ps: T.optim.Adam(ps)):
        module = lazy_module(lib)
        module.register_parameter('test_param', nn.parameter.UninitializedParameter())
        optim = make(module.parameters())
        assert isinstance(held(optim), nn.parameter.UninitializedParameter)
        module.test_param.materialize(10)
        assert isinstance(held(optim), nn.Parameter)
        assert not isinstance(held(optim), nn.parameter.UninitializedParameter)
        for p in module.parameters():
            p.grad = T.rand(*p.shape)
        optim.step()


# test_invalid_functions
def test_invalid_functions(lib):
    param = lib.nn.parameter.UninitializedParameter()
    with pytest.raises(ValueError, match='uninitialized parameter'):
        param + param
    with pytest.raises(ValueError, match='uninitialized parameter'):
        param.sum()


# nn.Buffer (torch.nn.Buffer, used by test_lazy_module_buffer): assigning one registers a buffer
def test_buffer_assignment(lib):
    nn, T = lib.nn, lib.T
    m = nn.Module()
    m.x = nn.Buffer(T.ones(2), persistent=False)
    m.y = nn.Buffer(T.zeros(1))
    assert names(m.named_buffers()) == ['x', 'y'] and list(m.state_dict()) == ['y']
    m.x = T.zeros(2)  # still a (non-persistent) buffer
    assert names(m.named_buffers()) == ['x', 'y'] and list(m.state_dict()) == ['y']
