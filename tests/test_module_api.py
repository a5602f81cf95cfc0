"""How a d2lmod Module behaves, checked against what PyTorch does with the same model.

Registration (an attribute that holds a Parameter or a Module is registered; a plain tensor is not), the
listings (a shared parameter once, state_dict every path), load_state_dict, to(), modes, hooks, repr,
the containers, lazy layers, seeding, tensor basics, no_grad and functional_call. Where PyTorch has an
answer, the test builds the same thing in PyTorch and asserts d2lmod gives the same one.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from chapter_models import CHAPTER_MODELS, FixedHiddenMLP, make_chimera, make_input, torch_twin

import d2lmod as dm
from d2lmod import nn
from d2lmod.func import functional_call
from d2lmod.nn import functional as F


@pytest.fixture
def torch():
    return pytest.importorskip('torch', reason='the comparisons with PyTorch need torch==2.13.0')


def names(pairs) -> list:
    return [name for name, _ in pairs]


def shared_layer_net(lib):
    """Linear -> ReLU -> shared -> ReLU -> shared -> Linear, in d2lmod or torch (same constructor names)."""
    shared = lib.Linear(4, 4)
    return lib.Sequential(lib.Linear(2, 4), lib.ReLU(), shared, lib.ReLU(), shared, lib.Linear(4, 1))


# ---- registration -----------------------------------------------------------------------------------------
class WithEverything(nn.Module):
    """A parameter, a child, a buffer, a non-persistent buffer and a plain tensor, all by their usual routes."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(dm.ones(3))
        self.linear = nn.Linear(3, 2)
        self.register_buffer('running', dm.zeros(3))
        self.register_buffer('scratch', dm.zeros(3), persistent=False)
        self.rand_weight = dm.rand(3, 3)  # plain attribute: PyTorch ignores it, so does d2lmod


def test_assigning_a_parameter_or_module_registers_it():
    m = WithEverything()
    assert names(m.named_parameters()) == ['scale', 'linear.weight', 'linear.bias']
    assert names(m.named_children()) == ['linear']
    assert m.scale is m._parameters['scale'] and m.linear is m._modules['linear']



def test_registered_things_are_plain_attributes_too_and_stay_in_step():
    """Module keeps each registered thing in __dict__ as well (fast reads); every change reaches both places."""
    m = WithEverything()
    registered = {'scale': m._parameters, 'running': m._buffers, 'scratch': m._buffers, 'linear': m._modules}
    for name, registry in registered.items():
        assert vars(m)[name] is registry[name]
    m.scale = nn.Parameter(dm.zeros(2))            # replaced: both places, order kept
    m.running = dm.ones(3)
    m.scratch = dm.ones(3)                         # still a non-persistent buffer, as in torch
    m.linear = None
    m.register_parameter('extra', nn.Parameter(dm.ones(1)))
    m.add_module('linear', nn.Linear(1, 1))        # add_module may replace a child, as in torch
    for name, registry in {**registered, 'extra': m._parameters}.items():
        assert vars(m)[name] is registry[name]
    assert list(m._parameters) == ['scale', 'extra'] and m.scale.shape == (2,)
    assert 'scratch' not in m.state_dict() and 'running' in m.state_dict()
    m.scale = None
    assert vars(m)['scale'] is None and m._parameters['scale'] is None
    del m.scale, m.running, m.linear
    for name in ('scale', 'running', 'linear'):
        assert name not in vars(m) and name not in m._parameters and name not in m._buffers \
            and name not in m._modules
    m.linear = dm.ones(2)                          # the name is free again: now a plain (unregistered) tensor
    assert 'linear' not in m._modules and m.linear.shape == (2,)


def test_registration_matches_torch(torch):
    class TorchWithEverything(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3))
            self.linear = torch.nn.Linear(3, 2)
            self.register_buffer('running', torch.zeros(3))
            self.register_buffer('scratch', torch.zeros(3), persistent=False)
            self.rand_weight = torch.rand(3, 3)

    ours, theirs = WithEverything(), TorchWithEverything()
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert names(ours.named_buffers()) == names(theirs.named_buffers()) == ['running', 'scratch']
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ['scale', 'running', 'linear.weight',
                                                                     'linear.bias']


def test_a_plain_tensor_attribute_is_not_a_parameter_not_saved_not_moved(torch):
    ours, theirs = FixedHiddenMLP(), torch_twin('FixedHiddenMLP')
    X = make_input()
    ours(X), theirs(torch.from_numpy(X.numpy()))
    assert names(ours.named_parameters()) == names(theirs.named_parameters()) == ['linear.weight', 'linear.bias']
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert not any(t is ours.rand_weight for t in ours.parameters())
    ours.to(dm.float64), theirs.to(torch.float64)
    assert ours.linear.weight.dtype == np.float64 and theirs.linear.weight.dtype == torch.float64
    assert ours.rand_weight.dtype == np.float32 and theirs.rand_weight.dtype == torch.float32  # left behind


def test_buffers_move_with_to_and_only_persistent_ones_are_saved():
    m = WithEverything().to(dm.float64)
    assert m.running.dtype == m.scratch.dtype == np.float64
    assert 'running' in m.state_dict() and 'scratch' not in m.state_dict()
    assert m.rand_weight.dtype == np.float32


def test_add_module_and_register_parameter_use_the_given_names():
    m = nn.Module()
    m.add_module('layer-1', nn.Linear(2, 2))  # any name without a dot, as in torch
    m.register_parameter('alpha', nn.Parameter(dm.tensor([0.5])))
    assert names(m.named_parameters()) == ['alpha', 'layer-1.weight', 'layer-1.bias']
    assert getattr(m, 'layer-1') is m._modules['layer-1']
    with pytest.raises(KeyError, match=r't contain "\."'):  # PyTorch's words
        m.add_module('a.b', nn.ReLU())


def test_assigning_a_plain_tensor_over_a_registered_parameter_is_refused(torch):
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        layer.weight = dm.ones(2, 2)
    with pytest.raises(TypeError):  # torch refuses it the same way
        torch.nn.Linear(2, 2).weight = torch.ones(2, 2)
    layer.bias = None  # None is allowed, and removes it from the listings
    assert names(layer.named_parameters()) == ['weight']


def test_replacing_a_child_or_parameter_keeps_its_place(torch):
    def replaced(lib):
        net = lib.Sequential(lib.Linear(2, 3), lib.ReLU(), lib.Linear(3, 1))
        setattr(net, '0', lib.Linear(2, 3, bias=False))  # the first layer stays first: forward order unchanged
        net[2].weight = lib.Parameter(net[2].weight.detach().clone())
        return net

    ours, theirs = replaced(nn), replaced(torch.nn)
    assert names(ours.named_parameters()) == names(theirs.named_parameters()) == ['0.weight', '2.weight', '2.bias']
    assert ours(dm.ones(4, 2)).shape == (4, 1)


def test_modules_in_a_plain_python_list_are_invisible():
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2), nn.Linear(2, 2)]

    class Registered(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])

    assert list(Hidden().parameters()) == [] and list(Hidden().state_dict()) == []
    assert names(Registered().named_parameters()) == ['layers.0.weight', 'layers.0.bias',
                                                      'layers.1.weight', 'layers.1.bias']


# ---- listings: one traversal, a shared thing once; state_dict every path --------------------------------
def test_shared_module_and_parameter_listed_once_but_saved_under_every_path(torch):
    ours, theirs = shared_layer_net(nn), shared_layer_net(torch.nn)
    for listing in ('named_parameters', 'named_modules', 'named_children'):
        assert names(getattr(ours, listing)()) == names(getattr(theirs, listing)()), listing
    assert names(ours.named_parameters()) == ['0.weight', '0.bias', '2.weight', '2.bias', '5.weight', '5.bias']
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert '4.weight' in ours.state_dict()
    assert len(list(ours.parameters())) == 6 and len(list(ours.modules())) == 6
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]


def test_a_parameter_tied_between_two_layers_is_listed_once(torch):
    def tied(lib):
        a, b = lib.Linear(3, 3), lib.Linear(3, 3)
        b.weight = a.weight
        return lib.Sequential(a, b)

    ours, theirs = tied(nn), tied(torch.nn)
    assert names(ours.named_parameters()) == names(theirs.named_parameters()) == ['0.weight', '0.bias', '1.bias']
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize('name', ['net', 'MLP', 'MySequential', 'NestMLP', 'chimera'])
def test_state_dict_keys_match_torch_for_chapter_models(torch, name):
    ours, theirs = CHAPTER_MODELS[name](), torch_twin(name)
    X = make_input()
    ours(X), theirs(torch.from_numpy(X.numpy()))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]


def test_chimera_paths_read_like_pytorch():
    net = make_chimera()
    net(make_input())
    assert list(net.state_dict())[:3] == ['0.net.0.weight', '0.net.0.bias', '0.net.2.weight']
    assert net.state_dict()['0.net.2.weight'].shape == (32, 64)
    assert [type(m).__name__ for m in net.children()] == ['NestMLP', 'Linear', 'FixedHiddenMLP']  # lazy no more
    assert names(net.named_modules())[:4] == ['', '0', '0.net', '0.net.0']


def test_state_dict_values_are_detached_copies_of_the_same_memory():
    layer = nn.Linear(2, 2)
    w = layer.state_dict()['weight']
    assert not w.requires_grad and np.shares_memory(w._data, layer.weight._data)  # torch shares memory too
    assert layer.state_dict(keep_vars=True)['weight'] is layer.weight


# ---- load_state_dict ----------------------------------------------------------------------------------------
def test_load_state_dict_copies_into_the_existing_tensors():
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    weight, alias = dst.weight, dst.weight.detach()  # a reference held elsewhere stays in step
    state = {'weight': src.weight.detach(), 'bias': dm.tensor(src.bias.detach().numpy().copy())}
    assert dst.load_state_dict(state) == ([], [])
    assert dst.weight is weight
    np.testing.assert_array_equal(dst.weight._data, src.weight._data)
    np.testing.assert_array_equal(alias._data, src.weight._data)
    state['bias']._data[:] = 7  # the model keeps its own copy
    assert not (dst.bias._data == 7).any()


def test_a_parameter_shared_under_two_keys_stays_shared_after_a_load():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    new = {k: dm.tensor(np.full(v.shape, 3.0, np.float32)) for k, v in net.state_dict().items()}
    net.load_state_dict(new)
    assert net[0] is net[2] and net[0].weight is net[2].weight and (net[2].weight._data == 3).all()


def test_load_state_dict_refuses_numpy_arrays_like_torch(torch):
    for lib, wrap in ((nn, dm.tensor), (torch.nn, torch.from_numpy)):
        layer = lib.Linear(2, 2, bias=False)
        with pytest.raises(RuntimeError, match='expected torch.Tensor or Tensor-like object from checkpoint'):
            layer.load_state_dict({'weight': np.ones((2, 2), np.float32)})
        layer.load_state_dict({'weight': wrap(np.ones((2, 2), np.float32))})


def test_load_state_dict_casts_to_the_models_dtype(torch):
    layer = nn.Linear(2, 2)
    layer.load_state_dict({k: dm.tensor(v.numpy().astype(np.float64)) for k, v in layer.state_dict().items()})
    assert layer.weight.dtype == np.float32  # torch copies into the existing float32 tensor as well


def test_strict_load_reports_every_problem_in_one_error_and_loads_nothing():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    bad = {'0.weight': dm.zeros(4, 3),          # fine, but must not be loaded either
           '0.bias': dm.zeros(5),                # mis-shaped
           '2.weight': dm.tensor(np.array([['a'] * 4] * 2)),  # strings: no number to copy
           '3.weight': dm.zeros(1)}               # unexpected; 2.bias is missing
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(bad)
    message = str(info.value)
    for fragment in ('Missing key(s) in state_dict: "2.bias"', 'Unexpected key(s) in state_dict: "3.weight"',
                     'size mismatch for 0.bias', '(5,)', '(4,)', '2.weight', 'strict=False', 'nothing was loaded'):
        assert fragment in message, fragment
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=f'{key} was partly loaded')


@pytest.mark.parametrize('bad', ['ckpt.npz', 2, None, [('weight', 1)]])
def test_load_state_dict_of_something_not_dict_like_is_a_type_error_like_torch(torch, bad):
    for lib in (nn, torch.nn):
        with pytest.raises(TypeError, match='Expected state_dict to be dict-like, got'):
            lib.Linear(2, 2).load_state_dict(bad)
    with pytest.raises(TypeError, match=r'load_state_dict\(dm.load\(path\)\)'):
        nn.Linear(2, 2).load_state_dict('ckpt.npz')


def test_non_strict_load_returns_missing_and_unexpected_like_torch(torch):
    def model(lib):
        return lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.Linear(4, 2))

    ours, theirs = model(nn), model(torch.nn)
    state = {'0.weight': np.ones((4, 3), np.float32), 'extra.bias': np.ones(2, np.float32)}
    ours_result = ours.load_state_dict({k: dm.tensor(v) for k, v in state.items()}, strict=False)
    theirs_result = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert ours_result.missing_keys == theirs_result.missing_keys == ['0.bias', '2.weight', '2.bias']
    assert ours_result.unexpected_keys == theirs_result.unexpected_keys == ['extra.bias']
    assert ours_result._fields == ('missing_keys', 'unexpected_keys')
    assert (ours[0].weight._data == 1).all()
    with pytest.raises(RuntimeError, match=r'0\.bias'):  # a wrong shape is an error even when not strict, as in torch
        ours.load_state_dict({'0.bias': dm.ones(5)}, strict=False)


def test_load_state_dict_result_reads_like_torch(torch):
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert repr(ours.load_state_dict(ours.state_dict())) == repr(theirs.load_state_dict(theirs.state_dict()))
    assert repr(ours.load_state_dict({}, strict=False)) == repr(theirs.load_state_dict({}, strict=False)) == \
        "_IncompatibleKeys(missing_keys=['weight', 'bias'], unexpected_keys=[])"


def test_a_pytorch_state_dict_loads_as_is(torch):
    theirs = torch_twin('chimera')
    X = make_input()
    expected = theirs(torch.from_numpy(X.numpy())).item()
    ours = make_chimera()
    ours.load_state_dict({k: dm.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    ours[2].rand_weight = dm.tensor(theirs[2].rand_weight.numpy())  # not in any state dict, as in torch
    assert ours(X).item() == pytest.approx(expected, rel=1e-5)


def test_loading_into_a_fresh_lazy_model_sets_its_shapes(torch):
    trained = CHAPTER_MODELS['net']()
    trained(make_input())
    fresh = CHAPTER_MODELS['net']()  # never called: in_features unknown until the load
    fresh.load_state_dict(trained.state_dict())
    assert fresh[0].weight.shape == (256, 20) and fresh[0].in_features == 0  # torch too: 0 until the first call
    np.testing.assert_array_equal(fresh(make_input(1))._data, trained(make_input(1))._data)
    assert type(fresh[0]) is dm.nn.Linear and fresh[0].in_features == 20
    twin = torch_twin('net')  # torch's lazy layers also take their shapes from a load
    twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in trained.state_dict().items()})
    assert tuple(twin[0].weight.shape) == (256, 20)


# ---- to(), modes, gradients, apply, hooks --------------------------------------------------------------------
@pytest.mark.parametrize('target', [dm.float64, 'float64', np.float64])
def test_to_a_dtype_casts_parameters_in_place_and_returns_the_module(target):
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    weight = net[0].weight
    assert net.to(target) is net
    assert weight is net[0].weight and weight.dtype == np.float64  # the same Parameter: an optimizer keeps it
    assert net(dm.ones(4, 2, dtype=dm.float64)).dtype == np.float64


def test_to_cpu_and_the_dtype_keyword():
    net = nn.Linear(2, 2)
    assert net.to('cpu') is net and net.weight.dtype == np.float32
    net.to(device='cpu', dtype=dm.float64)
    assert net.weight.dtype == np.float64


def test_to_also_casts_existing_gradients():
    net = nn.Linear(2, 1)
    net(dm.ones(1, 2)).sum().backward()
    net.to(dm.float64)
    assert net.weight.grad.dtype == np.float64


@pytest.mark.parametrize('device', ['cuda', 'mps', 'cuda:0'])
def test_to_a_gpu_fails_naming_the_device(device, torch):
    """The same kind of error as PyTorch on this CPU-only machine, naming the device and what to do instead."""
    for ours, theirs in ((nn.Linear(2, 2), torch.nn.Linear(2, 2)), (dm.ones(2), torch.ones(2))):
        with pytest.raises(Exception) as their_error:
            theirs.to(device)
        with pytest.raises(type(their_error.value), match=f"'{device}'.*no GPU.*dm.device"):
            ours.to(device)
    with pytest.raises((RuntimeError, AssertionError), match=device):
        nn.Linear(2, 2).to(device=device)


def test_zero_grad_clears_every_gradient_like_torch():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    net(dm.ones(4, 2)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())  # set_to_none, torch's default since 2.0


def test_train_and_eval_reach_every_child_and_dropout_obeys():
    net = nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.Dropout(0.5)))
    assert net.training and net[1][0].training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    X = dm.ones(4, 8)
    np.testing.assert_array_equal(net[1](X).numpy(), X.numpy())  # eval: dropout does nothing
    net.train()
    assert all(m.training for m in net.modules())
    out = net[1](X).numpy()
    assert set(np.unique(out)) <= {0.0, 2.0} and 0 < (out == 0).sum() < out.size  # train: drop, scale by 2


def test_apply_visits_children_first_in_torch_order(torch):
    def build(lib):
        return lib.Sequential(lib.Linear(1, 1), lib.Sequential(lib.ReLU(), lib.Tanh()), lib.Sigmoid())

    seen_ours, seen_theirs = [], []
    build(nn).apply(lambda m: seen_ours.append(type(m).__name__))
    build(torch.nn).apply(lambda m: seen_theirs.append(type(m).__name__))
    assert seen_ours == seen_theirs == ['Linear', 'ReLU', 'Tanh', 'Sequential', 'Sigmoid', 'Sequential']


def test_apply_initialises_every_linear():
    def init_constant(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    assert net.apply(init_constant) is net
    assert (net[0].weight._data == 0.5).all() and (net[2][0].weight._data == 0.5).all()


def test_forward_hook_sees_inputs_and_output_can_replace_it_and_can_be_removed():
    layer, calls = nn.Linear(2, 2), []
    X = dm.ones(1, 2)

    def hook(module, inputs, output):
        calls.append((module, inputs, output))
        return output * 0

    handle = layer.register_forward_hook(hook)
    out = layer(X)
    (module, inputs, output), = calls
    assert module is layer and isinstance(inputs, tuple) and inputs[0] is X
    assert output.shape == (1, 2) and (out._data == 0).all() and not (output._data == 0).all()
    handle.remove()
    assert not (layer(X)._data == 0).all() and len(calls) == 1


# ---- repr ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('build', [
    lambda lib: lib.Sequential(lib.Linear(20, 10), lib.ReLU(), lib.Sequential(lib.Linear(9, 2))),
    lambda lib: lib.Sequential(lib.Sequential(lib.Linear(4, 8, bias=False), lib.ReLU()), lib.Linear(8, 1)),
    lambda lib: lib.Linear(3, 5),
    lambda lib: lib.ReLU(),
    lambda lib: lib.Sequential(),
    lambda lib: lib.ModuleDict({'a': lib.Linear(2, 2), 'act': lib.ReLU()}),
    lambda lib: lib.Sequential(lib.Identity(), lib.Sigmoid(), lib.Tanh()),
], ids=['nested', 'deeper', 'linear', 'relu', 'empty', 'moduledict', 'activations'])
def test_repr_matches_torch(torch, build):
    assert repr(build(nn)) == repr(build(torch.nn))


def test_custom_module_repr_matches_torch(torch):
    ours, theirs = CHAPTER_MODELS['NestMLP'](), torch_twin('NestMLP')
    X = make_input()
    ours(X), theirs(torch.from_numpy(X.numpy()))
    # torch swaps a LazyLinear's class to Linear on its first call; d2lmod keeps the class (STYLE.md)
    assert repr(ours).replace('LazyLinear', 'Linear') == repr(theirs)


def test_a_custom_extra_repr_comes_before_the_children_like_torch(torch):
    def build(lib):
        class Scaled(lib.Module):
            def __init__(self):
                super().__init__()
                self.scale = 2.0
                self.inner = lib.Sequential(lib.Linear(2, 2), lib.ReLU())

            def extra_repr(self):
                return f'scale={self.scale}'

        return lib.Sequential(Scaled(), Scaled())

    assert repr(build(nn)) == repr(build(torch.nn))
    assert '(0): Scaled(\n    scale=2.0\n    (inner): Sequential(' in repr(build(nn))


def test_lazy_linear_shows_its_unknown_size_as_zero_like_torch(torch):
    ours = repr(CHAPTER_MODELS['net']())
    assert ours == repr(torch_twin('net'))  # torch prints 0 for the size it does not know yet
    assert '(0): LazyLinear(in_features=0, out_features=256, bias=True)' in ours


def test_no_repr_shows_a_memory_address():
    net = make_chimera()
    lazy = repr(net) + repr(net[1].weight)
    net(make_input())
    handle = net.register_forward_hook(lambda *args: None)
    things = [net, net[1].weight, net[1].weight.grad, make_input(), handle, net.load_state_dict(net.state_dict()),
              nn.ModuleList([nn.ReLU()]), dm.optim.SGD(net.parameters(), lr=0.1)]
    for text in [lazy] + [repr(t) for t in things]:
        assert '0x' not in text, text


# ---- containers ---------------------------------------------------------------------------------------------
def test_sequential_indexing_slicing_len_iteration(torch):
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    net = nn.Sequential(a, b, c)
    assert net[0] is a and net[-1] is c and net[-3] is a
    assert len(net) == 3 and list(net) == [a, b, c]
    tail = net[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == [b, c]
    twin = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    assert list(tail._modules) == list(twin[1:]._modules) == ['1', '2']  # slices keep the original names
    assert tail(dm.ones(1, 3)).shape == (1, 1)


def test_sequential_append_and_gluon_add():
    net = nn.Sequential()
    assert net.append(nn.Linear(4, 3)) is net
    assert net.add(nn.ReLU(), nn.Linear(3, 2)) is net  # Gluon's net.add(...) takes several at once
    assert names(net.named_children()) == ['0', '1', '2']
    assert net(dm.ones(5, 4)).shape == (5, 2)


def test_sequential_from_an_ordered_dict_keeps_the_names():
    net = nn.Sequential(OrderedDict(hidden=nn.Linear(2, 3), act=nn.ReLU(), out=nn.Linear(3, 1)))
    assert names(net.named_children()) == ['hidden', 'act', 'out'] and net[0] is net.hidden
    assert list(net.state_dict()) == ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']


def test_module_list_registers_indexes_and_slices():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and layers[-1] is list(layers)[2]
    layers.append(nn.ReLU()).extend([nn.Tanh()])
    assert names(layers.named_children()) == ['0', '1', '2', '3', '4']
    replacement = nn.Linear(2, 2)
    layers[0] = replacement
    assert layers[0] is replacement and names(layers.named_parameters())[:2] == ['0.weight', '0.bias']
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    with pytest.raises(IndexError, match='out of range'):
        layers[5]


def test_module_dict_registers_under_its_keys():
    heads = nn.ModuleDict({'cls': nn.Linear(4, 3), 'box': nn.Linear(4, 2)})
    assert 'cls' in heads and list(heads) == ['cls', 'box'] and len(heads) == 2
    assert names(heads.named_parameters()) == ['cls.weight', 'cls.bias', 'box.weight', 'box.bias']
    assert [k for k, _ in heads.items()] == list(heads.keys())
    with pytest.raises(KeyError, match="'reg'.*'cls', 'box'"):
        heads['reg']


# ---- a module registered inside itself ----------------------------------------------------------------------
def test_a_module_inside_itself_does_not_hang_anything():
    s = nn.Sequential(nn.Linear(2, 2))
    s.add_module('self', s)
    assert names(s.named_modules()) == ['', '0']
    assert len(list(s.modules())) == 2 and names(s.named_children()) == ['0', 'self']
    assert names(s.named_parameters()) == ['0.weight', '0.bias']
    assert list(s.state_dict()) == ['0.weight', '0.bias']
    assert repr(s) == ('Sequential(\n  (0): Linear(in_features=2, out_features=2, bias=True)\n'
                       '  (self): <Sequential: contains itself>\n)')
    visited = []
    s.apply(visited.append)
    assert visited == [s[0], s]
    assert s.to(dm.float64) is s and s[0].weight.dtype == np.float64
    s.train(False)
    assert not s.training and not s[0].training
    s.zero_grad()
    assert s.load_state_dict(s.state_dict()) == ([], [])


# ---- lazy layers --------------------------------------------------------------------------------------------
def test_lazy_linear_before_its_first_call():
    net = CHAPTER_MODELS['net']()
    params = list(net.named_parameters())
    assert names(params) == ['0.weight', '0.bias', '2.weight', '2.bias']  # they exist already
    assert all(isinstance(p, nn.UninitializedParameter) for _, p in params)
    assert net[0].in_features == 0
    assert 'in_features=0' in repr(net) and repr(net[0].weight) == '<UninitializedParameter>'  # the book's cell
    with pytest.raises(ValueError, match=r'uninitialized parameter.*run the model once'):
        sum(p.numel() for p in net.parameters())
    with pytest.raises(RuntimeError, match=r"shape of an uninitialized parameter.*run the model once"):
        net[0].weight.shape


def test_a_lazy_model_cannot_be_frozen_before_its_first_call_like_torch(torch):
    net = CHAPTER_MODELS['net']()
    with pytest.raises(ValueError, match='uninitialized parameter'):
        net.requires_grad_(False)
    with pytest.raises(ValueError, match='uninitialized parameter'):
        torch_twin('net').requires_grad_(False)


def test_lazy_linear_after_its_first_call_is_a_linear():
    net = CHAPTER_MODELS['net']()
    weight = net[0].weight
    assert net(make_input()).shape == (2, 10)
    assert net[0].weight is weight and weight.shape == (256, 20) and net[0].in_features == 20
    assert type(net[0]) is nn.Linear and type(weight) is nn.Parameter
    assert sum(p.numel() for p in net.parameters()) == 7946
    assert '(0): Linear(in_features=20, out_features=256, bias=True)' in repr(net)


def test_an_optimizer_built_before_the_first_call_trains_afterwards():
    dm.manual_seed(0)
    net = CHAPTER_MODELS['net']()
    opt = dm.optim.SGD(net.parameters(), lr=0.05)
    X, y = make_input(), dm.tensor([3, 7], dtype=dm.int64)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in net.parameters())


# ---- seeding --------------------------------------------------------------------------------------------------
def test_manual_seed_repeats_rand_randn_init_and_dropout():
    def draw():
        dm.manual_seed(42)
        layer = nn.Linear(3, 4)
        mask = nn.Dropout(0.5)(dm.ones(10, 10))
        return [dm.rand(2, 3), dm.randn(4), layer.weight, layer.bias, mask]

    first, second = draw(), draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a._data, b._data)
    dm.manual_seed(43)
    assert not np.array_equal(dm.rand(2, 3)._data, first[0]._data)


# ---- tensors ------------------------------------------------------------------------------------------------
def test_tensor_dtype_rules():
    assert dm.tensor(np.arange(3)).dtype == np.int64            # NumPy arrays keep their dtype
    assert dm.tensor(np.ones(2)).dtype == np.float64
    assert dm.tensor(np.ones(2, np.float32)).dtype == np.float32
    assert dm.tensor([1, 2, 3]).dtype == np.int64               # as torch.tensor: ints int64, floats float32
    assert dm.tensor([1.0, 2]).dtype == np.float32 and dm.tensor([True]).dtype == np.bool_
    assert dm.tensor(3).dtype == np.int64 and dm.tensor(3).shape == ()
    assert dm.tensor([1, 2], dtype=dm.int64).dtype == np.int64
    source = np.zeros(2)
    t = dm.tensor(source)
    source[0] = 5
    assert t._data[0] == 0  # dm.tensor copies, like torch.tensor


def test_tensor_basics_match_torch(torch):
    t, tt = dm.tensor([[1.0, -2.0], [3.0, 4.0]]), torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    assert type(t.shape) is tuple and t.shape == tuple(tt.shape) == (2, 2)
    assert t.sum().item() == tt.sum().item() == 6.0 and type(t.sum().item()) is float
    assert isinstance(t.numpy(), np.ndarray) and np.asarray(t).tolist() == tt.tolist()
    assert bool(dm.tensor([2.0]) > 1) is True and bool(dm.tensor(0.0)) is False
    mask = t > 0
    assert mask.dtype == np.bool_ and mask.tolist() == (tt > 0).tolist()
    assert (t == 3.0).tolist() == (tt == 3.0).tolist()


def test_detach_shares_memory_and_drops_history():
    x = dm.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d._data, y._data)
    with pytest.raises(RuntimeError, match=r'\.detach\(\)\.numpy\(\)'):
        y.numpy()


def test_in_place_ops_on_a_non_leaf_record_gradients_like_torch(torch):
    values = np.array([[0.9, -2.5], [3.0, 1.5]], np.float32)
    x, tx = dm.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)

    def updated(leaf):  # the same lines run on a d2lmod tensor and on a torch tensor
        X = leaf * 3
        X += leaf
        X -= 0.5
        X *= leaf
        while X.abs().sum() > 1:  # the chapter's data-dependent loop
            X /= 2
        X.sum().backward()
        return X

    np.testing.assert_allclose(updated(x)._data, updated(tx).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad._data, tx.grad.numpy(), rtol=1e-6)


def test_in_place_after_another_use_keeps_that_use_gradient_like_torch(torch):
    values = np.array([1.0, 2.0], np.float32)
    x, tx = dm.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    grads = []
    for leaf in (x, tx):
        Y = leaf * 1
        Z = Y * 3  # uses Y before the update: its gradient must still go to the old Y
        Y /= 2
        (Z.sum() + Y.sum()).backward()
        grads.append(np.asarray(leaf.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1])  # 3 + 0.5 per element


def test_in_place_on_a_leaf_that_requires_grad_is_refused_unless_no_grad():
    w = dm.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match='no_grad'):
        w += 1
    with dm.no_grad():
        w -= 0.5
    assert w.tolist() == [0.5, 0.5, 0.5] and w.is_leaf and w.requires_grad
    plain = dm.ones(2)
    plain *= 3  # a tensor that needs no gradient changes quietly
    assert plain.tolist() == [3.0, 3.0]


def test_no_grad_as_context_manager_and_decorator():
    w = dm.ones(2, requires_grad=True)
    with dm.no_grad():
        assert not (w * 2).requires_grad and not dm.is_grad_enabled()
    assert (w * 2).requires_grad and dm.is_grad_enabled()

    @dm.no_grad()
    def evaluate(t):
        return t * 2

    assert not evaluate(w).requires_grad and dm.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with dm.no_grad():
            1 / 0
    assert dm.is_grad_enabled()  # restored after an error too


# ---- functional_call ------------------------------------------------------------------------------------------
def test_functional_call_uses_the_given_tensors_and_leaves_the_module_alone():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    X = dm.randn(5, 3)
    own = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    params = {k: dm.tensor(v.numpy() + 1.0, requires_grad=True) for k, v in net.state_dict().items()}
    out = functional_call(net, params, X)
    twin = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    twin.load_state_dict(params)
    np.testing.assert_allclose(out._data, twin(X)._data, rtol=1e-6)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), own[key])
    out.sum().backward()
    assert all(p.grad is not None for p in params.values())
    assert all(p.grad is None for p in net.parameters())


def test_functional_call_restores_the_module_even_when_the_call_raises():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    originals = list(net.parameters())
    params = {'0.weight': dm.zeros(4, 3, requires_grad=True)}
    with pytest.raises(ValueError, match='in_features=3'):
        functional_call(net, params, dm.ones(1, 5))
    assert list(net.parameters()) == originals
    with pytest.raises(KeyError, match="no parameter or buffer '9.weight'"):
        functional_call(net, {'0.bias': dm.zeros(4), '9.weight': dm.zeros(1)}, dm.ones(1, 3))
    assert list(net.parameters()) == originals


@pytest.mark.parametrize('make_opt', [lambda ps: dm.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
                                      lambda ps: dm.optim.Adam(ps, lr=0.01, weight_decay=1e-4)])
def test_float32_stays_float32_through_a_training_step(make_opt):
    """No float64 sneaks into the hot path: every value, gradient and optimizer state stays float32."""
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    opt, X = make_opt(net.parameters()), dm.rand(4, 6)
    for _ in range(2):
        opt.zero_grad()
        loss = F.cross_entropy(net(X), dm.tensor([0, 1, 2, 0], dtype=dm.int64)) + (net(X) ** 2).mean() * 0.5
        loss.backward()
        opt.step()
    assert {t.dtype for t, _ in loss._topological_order()} == {np.dtype(np.float32)}
    assert {p.dtype for p in net.parameters()} == {p.grad.dtype for p in net.parameters()} == {np.dtype(np.float32)}
    states = [v for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray)]
    assert states and {v.dtype for v in states} == {np.dtype(np.float32)}


# ---- any depth: 5,000 nested modules ---------------------------------------------------------------------------
def nested(depth: int = 5000) -> nn.Module:
    net = nn.Linear(2, 2)
    for _ in range(depth):
        net = nn.Sequential(net)
    return net


def test_5000_nested_modules_print_list_save_load_and_move_without_recursion_error():
    net = nested()
    text = repr(net)
    assert text.startswith('Sequential(\n  (0): Sequential(\n    (0): Sequential(')
    assert ' ' * 10000 + '(0): Linear(in_features=2, out_features=2, bias=True)' in text
    assert text.endswith('\n  )\n)') and text.count('\n') == 2 * 5000
    paths = [p for p, _ in net.named_modules()]
    assert len(paths) == 5001 and paths[-1] == '.'.join(['0'] * 5000)
    visited = []
    net.apply(visited.append)
    assert type(visited[0]) is nn.Linear and visited[-1] is net  # children first, then self, as in torch
    state = net.state_dict()
    assert list(state) == ['.'.join(['0'] * 5000 + ['weight']), '.'.join(['0'] * 5000 + ['bias'])]
    fresh = {k: dm.tensor(np.full(v.shape, 2.0, np.float32)) for k, v in state.items()}
    assert net.load_state_dict(fresh) == ([], [])
    assert (visited[0].weight._data == 2).all()
    assert net.train(False) is net and not visited[0].training and not net.training
    assert net.to(dm.float64) is net and visited[0].weight.dtype == np.float64
    assert len(list(net.parameters())) == 2 and len(list(net.modules())) == 5001


def test_apply_follows_torch_order_and_torch_sharing(torch):
    def build(lib):
        shared = lib.Linear(2, 2)
        return lib.Sequential(lib.Sequential(lib.Linear(2, 2), shared), lib.ReLU(), lib.Sequential(shared)), shared

    orders = []
    for lib in (nn, torch.nn):
        net, _ = build(lib)
        names_of = {id(m): p for p, m in net.named_modules(remove_duplicate=False)}
        seen = []
        net.apply(lambda m: seen.append(names_of[id(m)]))
        orders.append(seen)
    assert orders[0] == orders[1]  # torch applies fn to a module shared by two parents twice


def test_a_lazy_layer_becomes_its_eager_class_for_the_books_initialisers():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    net(dm.rand(2, 4))

    def init_normal(m):
        if type(m) == nn.Linear:  # the book's test; it was silently skipped while the class stayed LazyLinear
            nn.init.normal_(m.weight, mean=0, std=0.01)
            nn.init.zeros_(m.bias)
    net.apply(init_normal)
    assert (net[0].bias._data == 0).all() and (net[2].bias._data == 0).all()


def test_names_that_would_hide_something_are_refused_and_nothing_is_registered(torch):
    for lib, T in ((nn, dm), (torch.nn, torch)):
        m = lib.Linear(2, 2)
        m.plain = 3
        for call, error in [(lambda: m.add_module('forward', lib.ReLU()), KeyError),
                            (lambda: m.register_buffer('training', T.zeros(1)), KeyError),
                            (lambda: m.register_parameter('plain', lib.Parameter(T.zeros(1))), KeyError),
                            (lambda: m.register_buffer('weight', T.zeros(1)), KeyError),
                            (lambda: m.register_parameter('lin.weight', lib.Parameter(T.zeros(1))), KeyError),
                            (lambda: setattr(m, 'lin.weight', lib.Parameter(T.zeros(1))), KeyError),
                            (lambda: m.register_parameter('', lib.Parameter(T.zeros(1))), KeyError),
                            (lambda: m.register_buffer(3, T.zeros(1)), TypeError),
                            (lambda: m.add_module(('a',), lib.ReLU()), TypeError)]:
            with pytest.raises(error):
                call()
        assert list(m.state_dict()) == ['weight', 'bias'] and list(m.children()) == []
        assert callable(m.forward) and m.training is True
    m = nn.Linear(2, 2)
    m.forward = nn.ReLU()  # torch registers it but the method still wins: the same here
    assert m._modules['forward'] is not None and not isinstance(m.forward, nn.Module)
    with pytest.raises(KeyError, match="attribute 'forward' already exists.*choose another name"):
        nn.Linear(2, 2).add_module('forward', nn.ReLU())


def test_train_with_a_non_boolean_and_to_an_integer_dtype_fail_like_torch(torch):
    for lib, T in ((nn, dm), (torch.nn, torch)):
        with pytest.raises(ValueError, match='training mode is expected to be boolean'):
            lib.Linear(2, 2).train('x')
        with pytest.raises(TypeError, match='nn.Module.to only accepts floating point or complex dtypes'):
            lib.Linear(2, 2).to(T.int64)


def test_get_submodule_parameter_buffer_errors_read_like_torch(torch):
    for lib, T in ((nn, dm), (torch.nn, torch)):
        net = lib.Sequential(lib.Linear(2, 2))
        net[0].register_buffer('b', T.zeros(1))
        assert net.get_submodule('0') is net[0] and net.get_submodule('') is net
        assert net.get_parameter('0.weight') is net[0].weight and net.get_buffer('0.b') is net[0].b
        for call, pattern in [(lambda: net.get_submodule('1'), 'Sequential has no attribute `1`'),
                              (lambda: net.get_submodule('0.weight'), '`weight` is not an nn.Module'),
                              (lambda: net.get_parameter('0.b'), '`b` is not an nn.Parameter'),
                              (lambda: net.get_buffer('0.weight'), '`weight` is not a buffer'),
                              (lambda: net.get_parameter('0.nope'), 'Linear has no attribute `nope`')]:
            with pytest.raises(AttributeError, match=pattern):
                call()


def test_state_dict_takes_torchs_arguments(torch):
    for lib in (nn, torch.nn):
        net = lib.Sequential(lib.Linear(2, 2))
        assert list(net.state_dict(prefix='model.')) == ['model.0.weight', 'model.0.bias']
        out = {}
        assert net.state_dict(destination=out) is out and list(out) == ['0.weight', '0.bias']
        assert net.state_dict(keep_vars=True)['0.weight'] is net[0].weight
        assert list(net.named_parameters(prefix='m')) [0][0] == 'm.0.weight'


def test_module_to_moves_parameters_and_buffers_but_not_plain_tensors():
    net = nn.Linear(2, 2)
    net.register_buffer('running', dm.zeros(2))
    net.plain = dm.zeros(2)
    net.to(dtype=dm.float64)
    assert net.weight.dtype == net.running.dtype == np.float64 and net.plain.dtype == np.float32
    assert net.cpu() is net and net.float() is net and net.weight.dtype == np.float32


def test_repr_of_containers_inside_a_model_matches_torch(torch):
    def build(lib, T):
        net = lib.Sequential(lib.ModuleList([lib.Linear(2, 2) for _ in range(3)] + [lib.ReLU()]), lib.Linear(2, 3))
        net.add_module('md', lib.ModuleDict({'a': lib.Sequential(lib.ReLU(), lib.ReLU())}))
        net.add_module('none', None)
        return net
    assert repr(build(nn, dm)) == repr(build(torch.nn, torch))
    assert '(0-2): 3 x Linear(in_features=2, out_features=2, bias=True)' in repr(build(nn, dm))


def test_5000_nested_module_lists_print_and_runs_of_identical_layers_fold_like_torch(torch):
    net = nn.Linear(2, 2)
    for _ in range(5000):
        net = nn.ModuleList([net])
    assert repr(net).count('ModuleList(') == 5000

    def build(lib):
        inner = [lib.ModuleList([lib.ReLU(), lib.ReLU()]) for _ in range(2)]
        return lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.Linear(3, 2), *inner, None])
    assert repr(build(nn)) == repr(build(torch.nn))


def test_an_always_called_hook_runs_once_whoever_raised_like_torch(torch):
    for lib, T in ((nn, dm), (torch.nn, torch)):
        calls = []

        def throw(m, i, o):
            raise RuntimeError('hook failed')

        layer = lib.Linear(2, 2)
        layer.register_forward_hook(throw)
        layer.register_forward_hook(lambda m, i, o: calls.append(o is None), always_call=True)
        with pytest.raises(RuntimeError, match='hook failed'):
            layer(T.ones(1, 2))
        assert calls == [False]  # it ran after the error, once, and saw the output
        with pytest.raises((RuntimeError, ValueError)):  # (the op's error type is the core's business)
            layer(T.ones(1, 3))  # forward itself fails: the hook still runs, with no output
        assert calls == [False, True]
