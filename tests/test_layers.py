"""The layers behind the chapter's closing claim (conv, pooling, norm, embedding, attention, GELU, Softmax).

Each is checked three ways: against PyTorch with the same weights in float64 (output, input gradient and every
parameter gradient; state_dict keys; repr), against calculus (central differences, see test_gradcheck.py),
and on what a user notices: running statistics, train/eval, lazy sizes, errors that say what was expected.
"""
from __future__ import annotations

import numpy as np
import pytest
from chapter_models import digits_resnet
from test_gradcheck import cotangent, gradcheck

import d2lmod as dm
from d2lmod import nn
from d2lmod.datasets import load_digits
from d2lmod.nn import functional as F

TIGHT = dict(rtol=1e-10, atol=1e-12)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- comparing one layer with PyTorch's ---------------------------------------------------------------------
def twins(ours, theirs):
    """Both in float64, ours holding PyTorch's numbers (parameters and buffers) and in the same mode."""
    theirs.double()
    ours.double().load_state_dict({k: dm.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    ours.train(theirs.training)
    return ours, theirs


def compare(ours, theirs, *inputs, out_index=None, **kwargs):
    """Same output, input gradients and parameter gradients (of sum(w * output), w random)."""
    torch = pytest.importorskip('torch')
    xs = [dm.tensor(x, requires_grad=x.dtype.kind == 'f') for x in inputs]
    ts = [torch.tensor(x, requires_grad=x.dtype.kind == 'f') for x in inputs]
    out, expected = ours(*xs, **kwargs), theirs(*ts, **kwargs)
    if out_index is not None:
        out, expected = out[out_index], expected[out_index]
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out._data, expected.detach().numpy(), **TIGHT)
    w = cotangent(out.shape)
    out.backward(w)
    (expected * torch.tensor(w)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad._data, t.grad.numpy(), **TIGHT, err_msg=f'input {i}')
    theirs_p = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad._data, theirs_p[name].grad.numpy(), **TIGHT, err_msg=name)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return out, expected


# ---- convolution ------------------------------------------------------------------------------------------------
CONVS = [  # (in, out, kernel, stride, padding, dilation, bias, input shape)
    (1, 4, 3, 1, 0, 1, True, (2, 1, 6, 6)),
    (3, 5, 3, 2, 1, 1, True, (2, 3, 7, 8)),
    (2, 3, (2, 3), (2, 1), (1, 2), 1, False, (3, 2, 5, 6)),
    (2, 4, 3, 1, 'same', 2, True, (1, 2, 7, 5)),
    (3, 2, (3, 1), 1, 'valid', (1, 1), True, (2, 3, 4, 4)),
    (4, 6, 1, 3, 0, 1, False, (2, 4, 7, 7)),
    (2, 3, (2, 4), 1, 'same', 1, True, (2, 2, 5, 6)),  # an odd total padding: the extra row goes bottom/right
]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # PyTorch's note on its own speed
@pytest.mark.parametrize('cin,cout,k,s,p,d,bias,shape', CONVS)
def test_conv2d_matches_pytorch(cin, cout, k, s, p, d, bias, shape):
    torch = pytest.importorskip('torch')
    ours, theirs = twins(nn.Conv2d(cin, cout, k, s, p, d, bias=bias), torch.nn.Conv2d(cin, cout, k, s, p, d, bias=bias))
    compare(ours, theirs, rand(*shape))
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize('cin,cout,k,s,p,d,bias,shape', CONVS[:4])
def test_conv2d_gradients_are_central_differences(cin, cout, k, s, p, d, bias, shape):
    small = (1,) + shape[1:2] + tuple(min(n, 5) for n in shape[2:])
    args = [rand(*small), rand(cout, cin, *((k, k) if isinstance(k, int) else k), seed=1)] + ([rand(cout, seed=2)] if bias else [])
    gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, stride=s, padding=p, dilation=d), *args)


def test_conv2d_init_is_pytorchs_kaiming_uniform():
    dm.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / np.sqrt(16 * 9)
    w, b = conv.weight._data, conv.bias._data
    assert w.shape == (32, 16, 3, 3) and w.dtype == np.float32 and np.abs(w).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound  # uniform(-a, a) has std a / sqrt(3)
    assert np.abs(b).max() <= bound and b.std() > bound / 4


def test_lazy_conv2d_learns_in_channels_and_unbatched_input_works():
    conv = nn.LazyConv2d(4, 3, padding=1)
    assert repr(conv) == 'LazyConv2d(0, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))'  # as PyTorch
    assert isinstance(conv.weight, nn.UninitializedParameter) and conv.in_channels == 0
    out = conv(dm.randn(2, 5, 6, 6))
    assert out.shape == (2, 4, 6, 6) and conv.in_channels == 5 and conv.weight.shape == (4, 5, 3, 3)
    assert type(conv) is nn.Conv2d and type(conv.weight) is nn.Parameter  # the lazy class swap
    assert conv(dm.randn(5, 6, 6)).shape == (4, 6, 6)


def test_conv2d_dtype_mismatch_raises_like_pytorch():
    with pytest.raises(RuntimeError, match='float64 input but the weights are float32'):
        nn.Conv2d(1, 2, 3)(dm.tensor(rand(1, 1, 4, 4)))


def test_conv2d_wrong_channels_says_what_it_expected():
    net = nn.Sequential(nn.Conv2d(3, 8, 3))
    with pytest.raises(RuntimeError, match=r"in_channels=3 .*shape \(2, 1, 8, 8\) with 1"):
        net(dm.randn(2, 1, 8, 8))


# ---- pooling -------------------------------------------------------------------------------------------------------
POOLS = [  # (kernel, stride, padding, ceil_mode, input shape)
    (2, None, 0, False, (2, 3, 6, 6)),
    (3, 2, 1, False, (2, 2, 7, 8)),
    (3, 2, 1, True, (1, 2, 8, 6)),
    ((2, 3), (1, 2), (1, 1), True, (2, 1, 5, 7)),
    (2, 1, 0, False, (3, 5, 4)),  # unbatched (C, H, W)
]


@pytest.mark.torch
@pytest.mark.parametrize('k,s,p,ceil,shape', POOLS)
def test_max_pool2d_matches_pytorch(k, s, p, ceil, shape):
    torch = pytest.importorskip('torch')
    ours, theirs = nn.MaxPool2d(k, s, p, ceil_mode=ceil), torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil)
    compare(ours, theirs, rand(*shape))
    assert repr(ours) == repr(theirs)
    x = rand(*shape)
    _, idx = F.max_pool2d(dm.tensor(x), k, s, p, ceil_mode=ceil, return_indices=True)
    _, expected = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, ceil_mode=ceil, return_indices=True)
    np.testing.assert_array_equal(idx._data, expected.numpy())


@pytest.mark.torch
@pytest.mark.parametrize('k,s,p,ceil,shape', POOLS)
@pytest.mark.parametrize('include_pad', [True, False])
def test_avg_pool2d_matches_pytorch(k, s, p, ceil, shape, include_pad):
    torch = pytest.importorskip('torch')
    ours = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include_pad)
    theirs = torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include_pad)
    compare(ours, theirs, rand(*shape))
    assert repr(ours) == repr(theirs)


@pytest.mark.torch
def test_avg_pool2d_divisor_override_matches_pytorch():
    torch = pytest.importorskip('torch')
    compare(nn.AvgPool2d(3, 2, 1, divisor_override=4), torch.nn.AvgPool2d(3, 2, 1, divisor_override=4), rand(2, 2, 6, 5))


@pytest.mark.torch
@pytest.mark.parametrize('size,shape', [(1, (2, 3, 8, 8)), ((3, 2), (2, 2, 7, 5)), ((None, 2), (1, 2, 4, 5)),
                                        (4, (3, 6, 6))])
def test_adaptive_avg_pool2d_matches_pytorch(size, shape):
    torch = pytest.importorskip('torch')
    ours, theirs = nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size)
    compare(ours, theirs, rand(*shape))
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize('fn', [
    lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    lambda x: F.avg_pool2d(x, (2, 3), 1, (1, 1), count_include_pad=False),
    lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
])
def test_pooling_gradients_are_central_differences(fn):
    gradcheck(fn, rand(1, 2, 5, 5))  # random values: no ties for max to break


# ---- normalization -----------------------------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize('kind,shape', [('1d', (8, 3)), ('1d', (4, 3, 5)), ('2d', (4, 3, 5, 5))])
@pytest.mark.parametrize('momentum,affine,track', [(0.1, True, True), (None, True, True), (0.3, False, True),
                                                   (0.1, True, False)])
def test_batchnorm_matches_pytorch_in_training_and_eval(kind, shape, momentum, affine, track):
    torch = pytest.importorskip('torch')
    Ours, Theirs = (nn.BatchNorm1d, torch.nn.BatchNorm1d) if kind == '1d' else (nn.BatchNorm2d, torch.nn.BatchNorm2d)
    ours, theirs = twins(Ours(3, momentum=momentum, affine=affine, track_running_stats=track),
                         Theirs(3, momentum=momentum, affine=affine, track_running_stats=track))
    for step in range(4):  # several training steps: the running statistics follow PyTorch's
        ours.zero_grad(), theirs.zero_grad()
        compare(ours, theirs, rand(*shape, seed=step) * (step + 1) + step)
    for name, buffer in theirs.named_buffers():
        np.testing.assert_allclose(dict(ours.named_buffers())[name]._data, buffer.numpy(), **TIGHT, err_msg=name)
    if track:
        assert int(ours.num_batches_tracked) == 4
    ours.eval(), theirs.eval()
    ours.zero_grad(), theirs.zero_grad()
    compare(ours, theirs, rand(*shape, seed=9))  # eval: the running statistics, and the gradient through them
    assert repr(ours) == repr(theirs)


def test_batchnorm_train_and_eval_differ_and_buffers_are_saved_not_trained():
    bn = nn.BatchNorm2d(2)
    x = dm.randn(6, 2, 3, 3) * 3 + 1
    train_out = bn(x)
    assert abs(float(train_out.mean())) < 1e-5
    assert [n for n, _ in bn.named_parameters()] == ['weight', 'bias']
    assert list(bn.state_dict()) == ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    assert bn.running_mean.requires_grad is False and int(bn.num_batches_tracked) == 1
    bn.eval()
    eval_out = bn(x)
    assert not np.allclose(eval_out._data, train_out._data)
    assert int(bn.num_batches_tracked) == 1  # eval does not count


def test_batchnorm_gradients_are_central_differences():
    def train(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)
    gradcheck(train, rand(3, 2, 2, 2), rand(2, seed=1), rand(2, seed=2))
    gradcheck(lambda x: F.batch_norm(x, None, None, training=True), rand(4, 3))
    rm, rv = dm.tensor(rand(2, seed=3)), dm.tensor(np.abs(rand(2, seed=4)) + 0.5)
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), rand(3, 2, 2), rand(2), rand(2))


def test_batchnorm_errors_teach():
    with pytest.raises(ValueError, match=r'expected 4D input \(got 3D input\)'):
        nn.BatchNorm2d(3)(dm.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match=r'num_features=3 .*\(2, 4, 5, 5\)'):
        nn.BatchNorm2d(3)(dm.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        nn.BatchNorm1d(3)(dm.randn(1, 3))


def test_lazy_batchnorm_learns_num_features():
    for lazy, x in ((nn.LazyBatchNorm1d(), dm.randn(4, 6)), (nn.LazyBatchNorm2d(), dm.randn(4, 5, 3, 3))):
        assert isinstance(lazy.running_mean, nn.UninitializedBuffer) and f'{type(lazy).__name__}(0,' in repr(lazy)
        eager = type(lazy).cls_to_become
        lazy(x)
        C = x.shape[1]
        assert type(lazy) is eager and type(lazy.weight) is nn.Parameter  # the lazy class swap
        assert lazy.num_features == C and lazy.weight.shape == (C,) and lazy.running_var.shape == (C,)
        assert int(lazy.num_batches_tracked) == 1


@pytest.mark.torch
@pytest.mark.parametrize('ns,shape,affine,bias', [(5, (2, 5), True, True), ((3, 4), (2, 2, 3, 4), True, True),
                                                   (4, (3, 4), False, True), (4, (2, 3, 4), True, False)])
def test_layernorm_matches_pytorch(ns, shape, affine, bias):
    torch = pytest.importorskip('torch')
    ours, theirs = twins(nn.LayerNorm(ns, elementwise_affine=affine, bias=bias),
                         torch.nn.LayerNorm(ns, elementwise_affine=affine, bias=bias))
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(rand(*p.shape, seed=5)))  # not just ones and zeros
    ours.load_state_dict({k: dm.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    compare(ours, theirs, rand(*shape))
    assert repr(ours) == repr(theirs)


def test_layernorm_gradients_are_central_differences_and_errors_teach():
    gradcheck(lambda x, w, b: F.layer_norm(x, (3,), w, b), rand(2, 3), rand(3, seed=1), rand(3, seed=2))
    with pytest.raises(RuntimeError, match=r'normalized_shape=\[5\], expected input with shape \[\*, 5\]'):
        nn.LayerNorm(5)(dm.randn(2, 4))


# ---- embedding, activations, attention ----------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize('padding_idx', [None, 0, -1])
def test_embedding_matches_pytorch(padding_idx):
    torch = pytest.importorskip('torch')
    ours, theirs = twins(nn.Embedding(7, 3, padding_idx=padding_idx), torch.nn.Embedding(7, 3, padding_idx=padding_idx))
    ids = np.array([[0, 2, 2, 6], [1, 0, 6, 3]])  # repeated ids: their gradients add up
    compare(ours, theirs, ids)
    assert repr(ours) == repr(theirs)
    if padding_idx is not None:
        assert not nn.Embedding(7, 3, padding_idx=padding_idx).weight._data[padding_idx].any()
    with pytest.raises(IndexError, match='0..6'):
        ours(dm.tensor(np.array([7])))


@pytest.mark.torch
@pytest.mark.parametrize('ours,theirs_name,args', [(nn.GELU(), 'GELU', ()), (nn.GELU('tanh'), 'GELU', ('tanh',)),
                                                    (nn.Softmax(dim=1), 'Softmax', (1,))])
def test_activations_match_pytorch(ours, theirs_name, args):
    torch = pytest.importorskip('torch')
    theirs = getattr(torch.nn, theirs_name)(*args)
    compare(ours, theirs, rand(3, 4, 2) * 3)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize('approximate', ['none', 'tanh'])
def test_gelu_gradient_is_a_central_difference(approximate):
    gradcheck(lambda x: F.gelu(x, approximate), rand(3, 4) * 2)


MHA_CASES = [  # (batch_first, query shape, key length, masks, need_weights, average)
    (True, (2, 4, 6), 5, None, True, True),
    (False, (4, 2, 6), 3, None, True, False),
    (True, (2, 3, 6), 3, 'causal', True, True),
    (True, (2, 4, 6), 5, 'padding', False, True),
    (True, (4, 6), 5, 'float', True, True),  # unbatched
]


def _masks(kind, N, L, S, H):
    if kind == 'causal':
        return {'attn_mask': np.triu(np.ones((L, S), bool), 1)}
    if kind == 'padding':
        return {'key_padding_mask': np.array([[False] * (S - 2) + [True] * 2, [False] * S])}
    if kind == 'float':
        return {'attn_mask': rand(L, S, seed=7)}
    return {}


@pytest.mark.torch
@pytest.mark.parametrize('batch_first,shape,S,masks,need,average', MHA_CASES)
def test_multihead_attention_matches_pytorch(batch_first, shape, S, masks, need, average):
    torch = pytest.importorskip('torch')
    E, H = shape[-1], 2
    ours, theirs = twins(nn.MultiheadAttention(E, H, batch_first=batch_first),
                         torch.nn.MultiheadAttention(E, H, batch_first=batch_first))
    with torch.no_grad():  # nonzero biases, so that their gradients are checked too
        theirs.in_proj_bias.copy_(torch.tensor(rand(3 * E, seed=3)))
        theirs.out_proj.bias.copy_(torch.tensor(rand(E, seed=4)))
    ours.load_state_dict({k: dm.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']
    N = shape[0] if batch_first else shape[1] if len(shape) == 3 else 1
    L = shape[-2] if batch_first or len(shape) == 2 else shape[0]
    kshape = (shape[0], S, E) if batch_first and len(shape) == 3 else (S, shape[1], E) if len(shape) == 3 else (S, E)
    mask_kw = {k: torch.tensor(v) if False else v for k, v in _masks(masks, N, L, S, H).items()}
    q, k, v = rand(*shape), rand(*kshape, seed=1), rand(*kshape, seed=2)
    xs = [dm.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out, w = ours(*xs, need_weights=need, average_attn_weights=average,
                  **{n: dm.tensor(m) for n, m in mask_kw.items()})
    t_out, t_w = theirs(*ts, need_weights=need, average_attn_weights=average,
                        **{n: torch.tensor(m) for n, m in mask_kw.items()})
    np.testing.assert_allclose(out._data, t_out.detach().numpy(), **TIGHT)
    if need:
        np.testing.assert_allclose(w._data, t_w.detach().numpy(), **TIGHT)
    else:
        assert w is None and t_w is None
    g = cotangent(out.shape)
    out.backward(g)
    (t_out * torch.tensor(g)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad._data, t.grad.numpy(), **TIGHT)
    theirs_p = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad._data, theirs_p[name].grad.numpy(), **TIGHT, err_msg=name)


def test_attention_gradients_are_central_differences():
    mha = nn.MultiheadAttention(4, 2, batch_first=True).double()
    gradcheck(lambda q, k: mha(q, k, k)[0], rand(1, 3, 4), rand(1, 2, 4, seed=1))
    mask = np.array([[True, False, True], [True, True, False]])
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
              rand(2, 2, 3), rand(2, 3, 3, seed=1), rand(2, 3, 2, seed=2))


@pytest.mark.torch
def test_scaled_dot_product_attention_matches_pytorch():
    torch = pytest.importorskip('torch')
    q, k, v = rand(2, 2, 4, 3), rand(2, 2, 5, 3, seed=1), rand(2, 2, 5, 2, seed=2)
    for kw in ({}, {'is_causal': True}, {'attn_mask': rand(4, 5, seed=3) > 0}, {'scale': 0.3}):
        ours = F.scaled_dot_product_attention(*map(dm.tensor, (q, k, v)), **{
            n: (dm.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()})
        theirs = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), **{
            n: (torch.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()})
        np.testing.assert_allclose(ours._data, theirs.numpy(), **TIGHT, err_msg=str(kw))


def test_multihead_attention_checks_its_sizes():
    with pytest.raises(AssertionError, match='divisible'):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(AssertionError, match='embedding dimension of 6'):
        nn.MultiheadAttention(6, 2, batch_first=True)(dm.randn(2, 3, 4), dm.randn(2, 3, 4), dm.randn(2, 3, 4))


# ---- the chapter's closing claim: a ResNet is the same recursion ------------------------------------------------
@pytest.mark.torch
def test_a_small_resnet_trains_like_pytorchs():
    """Three SGD steps from the same weights: the same losses, weights and running statistics; then eval agrees."""
    torch = pytest.importorskip('torch')
    torch.manual_seed(0)
    ours, theirs = twins(digits_resnet(nn, c=4, blocks=1), digits_resnet(torch.nn, c=4, blocks=1))
    images, labels = load_digits()
    X, y = images[:32, None] / 16.0, labels[:32]
    opt, topt = dm.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad(), topt.zero_grad()
        loss = F.cross_entropy(ours(dm.tensor(X)), dm.tensor(y))
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(X)), torch.tensor(y))
        loss.backward(), tloss.backward()
        opt.step(), topt.step()
        np.testing.assert_allclose(float(loss), float(tloss.detach()), rtol=1e-10)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key]._data, value.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(dm.tensor(X))._data, theirs(torch.tensor(X)).detach().numpy(), rtol=1e-9, atol=1e-12)


def test_the_visualiser_reads_conv_and_batchnorm_models():
    from d2lmod.widgets import extract
    net = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.LazyLinear(10))
    before = extract.describe(net)
    assert before.totals.unique is None and before.totals.buffers is None  # lazy: sizes unknown until a call
    info = extract.describe(net, dm.randn(2, 3, 8, 8))
    assert info.totals.trainable == (4 * 3 * 9 + 4) + (4 + 4) + (4 * 10 + 10)
    assert info.totals.buffers == 4 + 4 + 1  # running_mean, running_var, num_batches_tracked
    assert {n.path for n in info.notes if n.tag == 'buffer'} == {'1.running_mean', '1.running_var',
                                                                 '1.num_batches_tracked'}
