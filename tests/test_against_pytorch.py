"""Every chapter model, built in d2lmod and in PyTorch with the same weights, behaves the same.

The recipe of each test: build both (lazy), call both once so the lazy layers learn in_features, copy
PyTorch's state_dict into d2lmod with load_state_dict (and FixedHiddenMLP's rand_weight, a plain
attribute that no state_dict carries, by hand), then compare what a user sees: outputs, gradients,
state_dict keys, parameter counts, and a few steps of training.
"""
from __future__ import annotations

import numpy as np
import pytest

import d2lmod as dm
from chapter_models import CHAPTER_MODELS, FixedHiddenMLP, make_input, torch_twin
from d2lmod import nn

torch = pytest.importorskip("torch")  # the whole file compares with PyTorch; without it, skip it
pytestmark = pytest.mark.torch

NAMES = list(CHAPTER_MODELS)
CLOSE = dict(rtol=1e-5, atol=1e-6)  # float32: the two frameworks add in different orders


def as_torch(x: dm.Tensor):
    return torch.from_numpy(x.numpy().copy())


def build_twins(name: str, seed: int = 0):
    """(d2lmod model, PyTorch model) holding the same numbers, both already called once on a (2, 20) input."""
    torch.manual_seed(seed)
    ours, theirs = CHAPTER_MODELS[name](), torch_twin(name)
    ours(make_input(seed))  # the first call gives the lazy layers their input size
    theirs(as_torch(make_input(seed)))
    ours.load_state_dict({key: dm.tensor(value.numpy()) for key, value in theirs.state_dict().items()})
    their_modules = dict(theirs.named_modules())
    for path, module in ours.named_modules():
        if isinstance(module, FixedHiddenMLP):  # not in any state_dict: copy the constant by hand
            module.rand_weight = dm.tensor(their_modules[path].rand_weight.numpy())
    return ours, theirs


def check_same_gradients(ours, theirs) -> None:
    their_grads = {name: p.grad for name, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32, f"{name}: gradient {p.grad!r}"
        np.testing.assert_allclose(p.grad._data, their_grads[name].numpy(), **CLOSE, err_msg=name)


# ---- the chapter's models ------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', NAMES)
def test_same_weights_give_the_same_output(name):
    ours, theirs = build_twins(name)
    X = make_input(1)  # not the input the lazy layers were built on
    out, expected = ours(X), theirs(as_torch(X))
    assert out.shape == tuple(expected.shape) and out.dtype == np.float32
    np.testing.assert_allclose(out._data, expected.detach().numpy(), **CLOSE)


@pytest.mark.parametrize('name', NAMES)
def test_same_weights_give_the_same_gradients(name):
    """d(output.sum())/d(every parameter) and d/d(input) agree; in chimera the shared linear sums both uses."""
    ours, theirs = build_twins(name)
    X, Xt = dm.tensor(make_input(1).numpy(), requires_grad=True), as_torch(make_input(1)).requires_grad_()
    ours(X).sum().backward()
    theirs(Xt).sum().backward()
    check_same_gradients(ours, theirs)
    np.testing.assert_allclose(X.grad._data, Xt.grad.numpy(), **CLOSE, err_msg='the input')


@pytest.mark.parametrize('name', NAMES)
def test_state_dict_keys_are_pytorchs_in_the_same_order(name):
    ours, theirs = build_twins(name)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].shape == tuple(value.shape), key


@pytest.mark.parametrize('name, count', [('net', 7946), ('MLP', 7946), ('MySequential', 7946),
                                         ('FixedHiddenMLP', 420), ('NestMLP', 3952), ('chimera', 4712)])
def test_parameter_counts_are_the_chapters(name, count):
    """Unique trainable numbers: the reused linear counts once, the constant rand_weight not at all."""
    ours, theirs = build_twins(name)
    assert sum(p.numel() for p in ours.parameters()) == count
    assert sum(p.numel() for p in theirs.parameters()) == count


@pytest.mark.parametrize('name', NAMES)
def test_modules_and_parameters_have_pytorchs_dotted_names(name):
    ours, theirs = build_twins(name)
    assert [path for path, _ in ours.named_modules()] == [path for path, _ in theirs.named_modules()]
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]


def test_float_and_int_of_a_one_element_tensor_match_pytorch():
    """float(loss) is how training loops log a loss; a tensor of more numbers refuses, in both."""
    assert float(dm.tensor([2.5])) == float(torch.tensor([2.5])) == 2.5
    assert int(dm.tensor(7.9)) == int(torch.tensor(7.9)) == 7
    with pytest.raises(RuntimeError, match='one element'):
        float(dm.tensor([1.0, 2.0]))


# ---- FixedHiddenMLP: a constant, a reused layer, a loop ------------------------------------------------------
@pytest.mark.parametrize('name', ['FixedHiddenMLP', 'chimera'])
def test_the_constant_weight_is_not_a_parameter_and_gets_no_gradient(name):
    ours, theirs = build_twins(name)
    fixed, their_fixed = (ours, theirs) if name == 'FixedHiddenMLP' else (ours[2], theirs[2])
    for model, inner in ((ours, fixed), (theirs, their_fixed)):
        assert not any(p is inner.rand_weight for p in model.parameters())
        assert not any(key.endswith('rand_weight') for key in model.state_dict())
    ours(make_input(1)).backward()
    theirs(as_torch(make_input(1))).backward()
    assert fixed.rand_weight.grad is None and their_fixed.rand_weight.grad is None


def count_halvings(model, linear, X) -> int:
    """How many times forward's `while X.abs().sum() > 1: X /= 2` ran, seen from outside.

    A hook keeps the second output of linear; the loop halves that very tensor in place, so afterwards
    its sum has shrunk by 2**halvings.
    """
    seen = []
    handle = linear.register_forward_hook(lambda module, inputs, out: seen.append((out, out.abs().sum().item())))
    model(X)
    handle.remove()
    out, before = seen[-1]
    return round(np.log2(before / out.abs().sum().item()))


def test_the_while_loop_halves_as_often_in_both():
    ours, theirs = build_twins('FixedHiddenMLP')
    for seed in range(3):
        X = make_input(seed) * (10 ** seed)  # bigger inputs, more halvings
        ours_count = count_halvings(ours, ours.linear, X)
        assert ours_count == count_halvings(theirs, theirs.linear, as_torch(X))
        assert ours_count >= 1


class UntiedFixedHiddenMLP(nn.Module):
    """FixedHiddenMLP with its two uses of linear given two separate layers, holding the same numbers."""

    def __init__(self, tied: FixedHiddenMLP):
        super().__init__()
        self.rand_weight = tied.rand_weight
        self.first, self.second = nn.Linear(20, 20), nn.Linear(20, 20)
        self.first.load_state_dict(tied.linear.state_dict())
        self.second.load_state_dict(tied.linear.state_dict())

    def forward(self, X):
        X = self.first(X)
        X = nn.functional.relu(X @ self.rand_weight + 1)
        X = self.second(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


def test_a_shared_layer_gets_the_sum_of_both_uses_gradients():
    tied, _ = build_twins('FixedHiddenMLP')
    untied = UntiedFixedHiddenMLP(tied)
    X = make_input(1)
    tied(X).backward()
    untied(X).backward()
    for name in ('weight', 'bias'):
        both = getattr(untied.first, name).grad._data + getattr(untied.second, name).grad._data
        np.testing.assert_allclose(getattr(tied.linear, name).grad._data, both, **CLOSE, err_msg=name)
        assert not np.allclose(both, getattr(untied.second, name).grad._data)  # the first use really adds


# ---- training ------------------------------------------------------------------------------------------------
def small_mlp_twins():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    ours = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    ours.load_state_dict({key: dm.tensor(value.numpy()) for key, value in theirs.state_dict().items()})
    return ours, theirs


def fixed_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)


OPTIMIZERS = {
    'SGD': ('SGD', dict(lr=0.1)),
    'SGD momentum': ('SGD', dict(lr=0.1, momentum=0.9)),
    'SGD momentum weight_decay': ('SGD', dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    'Adam': ('Adam', dict(lr=0.01)),
    'Adam betas weight_decay': ('Adam', dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
}


def check_same_parameters(ours, theirs, step: int) -> None:
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p._data, their_params[name].detach().numpy(), **CLOSE,
                                   err_msg=f"{name} after step {step}")


@pytest.mark.parametrize('optimizer', list(OPTIMIZERS))
def test_training_steps_track_pytorch(optimizer):
    kind, options = OPTIMIZERS[optimizer]
    ours, theirs = small_mlp_twins()
    opt, their_opt = getattr(dm.optim, kind)(ours.parameters(), **options), \
        getattr(torch.optim, kind)(theirs.parameters(), **options)
    X, y = fixed_data()
    start = [p._data.copy() for p in ours.parameters()]
    for step in range(1, 6):
        for model, optim, loss_fn, inputs, labels in ((ours, opt, nn.functional.cross_entropy, dm.tensor(X), y),
                                                      (theirs, their_opt, torch.nn.functional.cross_entropy,
                                                       torch.from_numpy(X), torch.from_numpy(y))):
            optim.zero_grad()
            loss_fn(model(inputs), labels).backward()
            optim.step()
        check_same_parameters(ours, theirs, step)
    assert all(not np.allclose(p._data, before) for p, before in zip(ours.parameters(), start))


@pytest.mark.parametrize('kind', ['SGD', 'Adam'])
def test_an_optimizer_built_before_the_first_call_trains_lazy_parameters(kind):
    """The lazy layers' Parameter objects get their values on the first call, so the optimizer still holds them."""
    options = dict(lr=0.1, momentum=0.9) if kind == 'SGD' else dict(lr=0.01)
    torch.manual_seed(0)
    ours, theirs = CHAPTER_MODELS['net'](), torch_twin('net')
    opt = getattr(dm.optim, kind)(ours.parameters(), **options)  # every parameter still uninitialized
    their_opt = getattr(torch.optim, kind)(theirs.parameters(), **options)
    held = list(ours.parameters())
    assert all(p._data is None for p in held)

    X, y = make_input(0), np.array([3, 7])
    ours(X)  # the first call: now the parameters have shapes and values
    theirs(as_torch(X))
    ours.load_state_dict({key: dm.tensor(value.numpy()) for key, value in theirs.state_dict().items()})
    assert all(a is b for a, b in zip(held, ours.parameters()))
    start = [p._data.copy() for p in held]
    for step in range(1, 4):
        opt.zero_grad()
        nn.functional.cross_entropy(ours(X), y).backward()
        opt.step()
        their_opt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(as_torch(X)), torch.from_numpy(y)).backward()
        their_opt.step()
        check_same_parameters(ours, theirs, step)
    assert all(not np.allclose(p._data, before) for p, before in zip(held, start))
