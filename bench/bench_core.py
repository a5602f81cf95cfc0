"""d2lmod, PyTorch and hand-written NumPy side by side: one training step, timed in one process.

    ./dev.sh bench                              # this table, then the visualiser's (bench_widgets.py)
    .venv/bin/python bench/bench_core.py        # only this table
    .venv/bin/python bench/bench_core.py W1 W2  # some workloads; --seconds S per workload (default 6)

A step is zero_grad, forward, loss, backward and an SGD update, in float32, from the same weights and
data in all three. Everything runs on one thread (BLAS and PyTorch alike). The three are interleaved:
short rounds of each in turn, so a busy machine slows all of them alike; the table shows each one's
median time per step over the rounds.

Before timing, each workload runs 5 steps with lr 0.01 in all three from the same start and checks that
they compute the same losses, so forward, backward and update agree (the NumPy floor is a correctness
reference too). The timed steps then use lr 0: the update is still computed and applied, but the weights
stay put, so every step does the same work (W1's loss, a plain sum, would otherwise run off to -inf and
NaN within a few thousand steps, and chimera's loop count would drift).

After the table: the time to `import d2lmod`, and the memory of 10,000 training steps with Python's cycle
collector switched off (it must stay flat: no step's graph may be kept alive by a reference cycle).
"""
from __future__ import annotations

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_var] = '1'  # before NumPy loads its BLAS: one thread everywhere

import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import d2lmod as dm  # noqa: E402
from d2lmod.datasets import load_digits  # noqa: E402
from d2lmod import nn  # noqa: E402
from d2lmod.nn import functional as F  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from chapter_models import digits_resnet, make_chimera, torch_twin  # noqa: E402

LR = 0.01  # the learning rate of the loss check; the timed steps use 0 (see the module docstring)

# name: (layer sizes, batch, loss, targets: the most d2lmod/PyTorch and d2lmod/NumPy may be)
MLPS = {
    'W1': ('chapter MLP 20-256-10, batch 2, loss = sum', [20, 256, 10], 2, 'sum', (0.30, 1.75)),
    'W3': ('digits 64-256-10, batch 256, cross-entropy', [64, 256, 10], 256, 'ce', (0.70, 1.2)),
    'W4': ('784-1024-1024-10, batch 512, cross-entropy', [784, 1024, 1024, 10], 512, 'ce', (1.10, 1.05)),
}
CHIMERA = ('chimera, batch 2 (shared layer, constant, loop)', (0.40, 2.3))


def training_step(opt, compute_loss):
    """One step, spelled the same in d2lmod and PyTorch: clear the gradients, forward, backward, update."""
    def step():
        opt.zero_grad()
        value = compute_loss()
        value.backward()
        opt.step()
        return value
    return step


# ---- the multilayer perceptrons (W1, W3, W4) ---------------------------------------------------------------
def mlp_start(sizes, batch, loss, seed=0):
    """Weights [(W, b)] with W of shape (out, in), inputs X and targets y: what all three start from."""
    rng = np.random.default_rng(seed)
    layers = [((rng.uniform(-1, 1, (o, i)) / np.sqrt(i)).astype(np.float32),
               (rng.uniform(-1, 1, o) / np.sqrt(i)).astype(np.float32)) for i, o in zip(sizes[:-1], sizes[1:])]
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return layers, X, y


def d2lmod_mlp(layers, X, y, loss, lr):
    mods = []
    for i, (W, b) in enumerate(layers):
        lin = nn.Linear(W.shape[1], W.shape[0])
        lin.load_state_dict({'weight': dm.tensor(W), 'bias': dm.tensor(b)})  # tensors, as PyTorch requires
        mods += [lin, nn.ReLU()] if i < len(layers) - 1 else [lin]
    net, X, y = nn.Sequential(*mods), dm.tensor(X), dm.tensor(y)
    lossf = (lambda out: out.sum()) if loss == 'sum' else (lambda out: F.cross_entropy(out, y))
    return training_step(dm.optim.SGD(net.parameters(), lr=lr), lambda: lossf(net(X)))


def torch_mlp(layers, X, y, loss, lr):
    mods = []
    for i, (W, b) in enumerate(layers):
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        lin.load_state_dict({'weight': torch.from_numpy(W), 'bias': torch.from_numpy(b)})
        mods += [lin, torch.nn.ReLU()] if i < len(layers) - 1 else [lin]
    net, X, y = torch.nn.Sequential(*mods), torch.from_numpy(X), torch.from_numpy(y)
    lossf = (lambda out: out.sum()) if loss == 'sum' else (lambda out: torch.nn.functional.cross_entropy(out, y))
    return training_step(torch.optim.SGD(net.parameters(), lr=lr), lambda: lossf(net(X)))


def cross_entropy_by_hand(out, y):
    """mean_i -log softmax(out)[i, y_i], and its gradient (softmax - onehot) / N."""
    rows = np.arange(len(y))
    shifted = out - out.max(1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(1, keepdims=True)
    g = e / total
    g[rows, y] -= 1
    return (np.log(total[:, 0]) - shifted[rows, y]).mean(), g / len(y)


def numpy_mlp(layers, X, y, loss, lr):
    """The same step with the backward pass written out by hand: the floor any autograd pays above."""
    params = [(W.copy(), b.copy()) for W, b in layers]
    rows = np.arange(len(y))

    def step():
        acts = [X]
        for i, (W, b) in enumerate(params):
            h = acts[-1] @ W.T + b
            acts.append(np.maximum(h, 0) if i < len(params) - 1 else h)
        out = acts[-1]
        if loss == 'sum':
            value, g = out.sum(), np.ones_like(out)
        else:
            value, g = cross_entropy_by_hand(out, y)
        for i in reversed(range(len(params))):
            W, b = params[i]
            gW, gb = g.T @ acts[i], g.sum(0)
            if i:
                g = g @ W
                g *= acts[i] > 0
            W -= lr * gW
            b -= lr * gb
        return value
    return step


# ---- chimera (W2) ---------------------------------------------------------------------------------------------
def chimera_start():
    """d2lmod's chimera after its first call (so the lazy layers have their sizes), and an input X."""
    X = np.random.default_rng(0).random((2, 20), dtype=np.float32)
    dm.manual_seed(0)
    net = make_chimera()
    net(dm.tensor(X))
    return net, X


def d2lmod_chimera(net, X, lr):
    X = dm.tensor(X)
    return training_step(dm.optim.SGD(net.parameters(), lr=lr), lambda: net(X))  # its output is the loss


def torch_chimera(net, X, lr):
    twin, X = torch_twin('chimera'), torch.from_numpy(X)
    twin(X)  # sizes the lazy layers
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in net.state_dict().items()})
    twin[2].rand_weight = torch.from_numpy(net[2].rand_weight.numpy().copy())
    return training_step(torch.optim.SGD(twin.parameters(), lr=lr), lambda: twin(X))


def numpy_chimera(net, X, lr):
    """chimera's step by hand: NestMLP (20-64-32-16), Linear(20), then FixedHiddenMLP with its loop."""
    w = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    (W1, b1), (W2, b2), (W3, b3) = [(w[f'0.{n}.weight'], w[f'0.{n}.bias']) for n in ('net.0', 'net.2', 'linear')]
    W4, b4, L, c = w['1.weight'], w['1.bias'], w['2.linear.weight'], w['2.linear.bias']
    R = net[2].rand_weight.numpy().copy()

    def step():
        h1 = np.maximum(X @ W1.T + b1, 0)
        h2 = np.maximum(h1 @ W2.T + b2, 0)
        h3 = h2 @ W3.T + b3
        h4 = h3 @ W4.T + b4
        a = h4 @ L.T + c           # the shared layer, first use
        r = a @ R + 1
        mask = r > 0
        r *= mask
        z = r @ L.T + c            # second use
        halvings = 0
        while np.abs(z).sum() > 1:
            z /= 2
            halvings += 1
        value = z.sum()
        gz = np.full_like(z, 0.5 ** halvings)            # d value / dz after the halvings
        gL, gc = gz.T @ r, gz.sum(0)                     # second use of L
        ga = ((gz @ L) * mask) @ R.T
        gL += ga.T @ h4                                  # first use adds into the same gradient
        gc += ga.sum(0)
        g4 = ga @ L
        g3 = g4 @ W4
        g2 = (g3 @ W3) * (h2 > 0)
        g1 = (g2 @ W2) * (h1 > 0)
        for p, gp in ((L, gL), (c, gc), (W4, g4.T @ h3), (b4, g4.sum(0)), (W3, g3.T @ h2), (b3, g3.sum(0)),
                      (W2, g2.T @ h1), (b2, g2.sum(0)), (W1, g1.T @ X), (b1, g1.sum(0))):
            p -= lr * gp
        return value
    return step


# ---- the digits ResNet (W5) ---------------------------------------------------------------------------------
RESNET = ('digits ResNet 1x8x8, 16 ch, 2 blocks, batch 256, CE', (1.0, 1.3))


def resnet_start(batch=256):
    """The weights (a d2lmod state_dict as NumPy arrays), 256 digits (N, 1, 8, 8) scaled to [0, 1], labels."""
    images, labels = load_digits()
    dm.manual_seed(0)
    state = {k: v.numpy().copy() for k, v in digits_resnet(nn).state_dict().items()}
    return state, (images[:batch, None] / 16).astype(np.float32), labels[:batch]


def d2lmod_resnet(state, X, y, lr):
    net = digits_resnet(nn)
    net.load_state_dict({k: dm.tensor(v) for k, v in state.items()})  # tensors, as PyTorch requires
    X, y = dm.tensor(X), dm.tensor(y)
    return training_step(dm.optim.SGD(net.parameters(), lr=lr), lambda: F.cross_entropy(net(X), y))


def torch_resnet(state, X, y, lr):
    net = digits_resnet(torch.nn)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    return training_step(torch.optim.SGD(net.parameters(), lr=lr), lambda: torch.nn.functional.cross_entropy(net(X), y))


def numpy_resnet(state, X, y, lr):
    """The ResNet's step by hand, with the best plain NumPy we know: images channels-last (N, H, W, C) throughout,
    im2col through a strided view, col2im by nine strided adds, per-channel sums as products with ones."""
    w = {k: v.copy() for k, v in state.items()}
    kernels = {k: np.ascontiguousarray(v.transpose(0, 2, 3, 1).reshape(len(v), -1)) for k, v in w.items()
               if v.ndim == 4}                                     # (O, 3*3*C), in the (p, q, c) order of cols
    N = len(y)
    x0 = X.transpose(0, 2, 3, 1).copy()                            # (N, 8, 8, 1)
    ones = np.ones(N * 64, np.float32)

    def conv(x, name):  # 3x3, padding 1, stride 1: (N, 8, 8, C) -> (N, 8, 8, O) through one matmul
        n, H, Wd, C = x.shape
        xp = np.zeros((n, H + 2, Wd + 2, C), x.dtype)
        xp[:, 1:-1, 1:-1] = x
        sN, sH, sW, sC = xp.strides
        cols = np.lib.stride_tricks.as_strided(xp, (n, H, Wd, 3, 3, C), (sN, sH, sW, sH, sW, sC)).reshape(n * H * Wd, -1)
        return (cols @ kernels[name].T).reshape(n, H, Wd, -1), cols

    def conv_back(g, cols, name, need_x=True):
        W2 = kernels[name]
        n, H, Wd, O = g.shape
        g2 = g.reshape(-1, O)
        grads[name] = (g2.T @ cols).reshape(O, 3, 3, -1).transpose(0, 3, 1, 2)
        if not need_x:
            return None
        dwin = np.matmul(g2, W2.reshape(O, 9, -1).transpose(1, 0, 2)).reshape(3, 3, n, H, Wd, -1)
        dxp = np.zeros((n, H + 2, Wd + 2, dwin.shape[-1]), g.dtype)
        for p in range(3):
            for q in range(3):
                dxp[:, p:p + H, q:q + Wd] += dwin[p, q]
        return dxp[:, 1:-1, 1:-1]

    def bn(x, name):
        rows2 = x.reshape(-1, x.shape[-1])                         # (N*H*W, C)
        k = len(rows2)
        mean = (ones @ rows2) / k
        xc = x - mean
        var = (ones @ (xc * xc).reshape(-1, x.shape[-1])) / k
        inv = 1 / np.sqrt(var + 1e-5)
        xhat = xc * inv
        m = 0.1
        w[name + '.running_mean'] = (1 - m) * w[name + '.running_mean'] + m * mean
        w[name + '.running_var'] = (1 - m) * w[name + '.running_var'] + m * var * k / (k - 1)
        w[name + '.num_batches_tracked'] = w[name + '.num_batches_tracked'] + 1
        return xhat * w[name + '.weight'] + w[name + '.bias'], (xhat, inv)

    def bn_back(g, cache, name):
        xhat, inv = cache
        C = g.shape[-1]
        grads[name + '.weight'] = ones @ (g * xhat).reshape(-1, C)
        grads[name + '.bias'] = ones @ g.reshape(-1, C)
        gx = g * w[name + '.weight']
        k = len(ones)
        return inv * (gx - (ones @ gx.reshape(-1, C)) / k - xhat * ((ones @ (gx * xhat).reshape(-1, C)) / k))

    grads = {}

    def step():
        caches = {}
        h, caches['c0'] = conv(x0, '0.weight')
        h, caches['b0'] = bn(h, '1')
        h = np.maximum(h, 0)
        acts = [h]
        for b in ('3', '4'):
            a, caches[b + 'c1'] = conv(h, b + '.conv1.weight')
            a, caches[b + 'b1'] = bn(a, b + '.bn1')
            a = np.maximum(a, 0)
            z, caches[b + 'c2'] = conv(a, b + '.conv2.weight')
            z, caches[b + 'b2'] = bn(z, b + '.bn2')
            h = np.maximum(h + z, 0)
            acts += [a, h]
        pooled = h.mean((1, 2))
        out = pooled @ w['7.weight'].T + w['7.bias']
        value, g = cross_entropy_by_hand(out, y)
        grads['7.weight'], grads['7.bias'] = g.T @ pooled, g.sum(0)
        gh = np.broadcast_to((g @ w['7.weight'])[:, None, None, :] / 64, h.shape)
        for i, b in ((2, '4'), (1, '3')):
            a, h_out = acts[2 * i - 1], acts[2 * i]
            gh = gh * (h_out > 0)                                  # through the block's last relu
            gz = bn_back(gh, caches[b + 'b2'], b + '.bn2')
            ga = conv_back(gz, caches[b + 'c2'], b + '.conv2.weight')
            ga = bn_back(ga * (a > 0), caches[b + 'b1'], b + '.bn1')
            gh = gh + conv_back(ga, caches[b + 'c1'], b + '.conv1.weight')  # the skip connection adds its gradient
        gh = bn_back(gh * (acts[0] > 0), caches['b0'], '1')
        conv_back(gh, caches['c0'], '0.weight', need_x=False)
        for name, gp in grads.items():
            w[name] -= lr * gp
            if name in kernels:
                kernels[name] = np.ascontiguousarray(w[name].transpose(0, 2, 3, 1).reshape(len(w[name]), -1))
        return value
    return step


def make_resnets(lr):
    start = resnet_start()
    return {'d2lmod': d2lmod_resnet(*start, lr), 'PyTorch': torch_resnet(*start, lr), 'NumPy': numpy_resnet(*start, lr)}


# ---- timing -----------------------------------------------------------------------------------------------------
def check_same_losses(steps: dict, n: int = 5) -> float:
    """Run n steps of each from the same start; their losses must agree. Returns the largest relative gap."""
    losses = {name: [step().item() for _ in range(n)] for name, step in steps.items()}
    reference = np.array(losses['NumPy'])
    worst = 0.0
    for name, values in losses.items():
        gap = float(np.max(np.abs(np.array(values) - reference) / np.maximum(np.abs(reference), 1e-6)))
        if gap > 1e-4:
            raise AssertionError(f"{name} computes other losses than hand-written NumPy: {values} vs {list(reference)}")
        worst = max(worst, gap)
    return worst


def interleaved_medians(steps: dict, seconds: float) -> dict:
    """Median seconds per step of each, from short rounds that take turns (about 20 ms each)."""
    per_round = {}
    for name, step in steps.items():  # warm up, and size a round to about 20 ms
        for _ in range(3):
            step()
        start = time.perf_counter()
        step()
        per_round[name] = max(1, int(0.02 / (time.perf_counter() - start)))
    times = {name: [] for name in steps}
    names, deadline, turn = list(steps), time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline or turn < 10:
        for name in names[turn % len(names):] + names[:turn % len(names)]:  # each goes first in turn
            step, n = steps[name], per_round[name]
            start = time.perf_counter()
            for _ in range(n):
                step()
            times[name].append((time.perf_counter() - start) / n)
        turn += 1
    return {name: statistics.median(t) for name, t in times.items()}


def workloads(selected):
    """(name, make(lr) -> {library: step}, targets) for each selected workload, in the table's order."""
    for key, (title, sizes, batch, loss, targets) in MLPS.items():
        if key == 'W3' and (not selected or 'W2' in selected):
            yield f'W2 {CHIMERA[0]}', make_chimeras, CHIMERA[1]
        if not selected or key in selected:
            start = mlp_start(sizes, batch, loss)
            yield f'{key} {title}', lambda lr, start=start, loss=loss: {
                'd2lmod': d2lmod_mlp(*start, loss, lr), 'PyTorch': torch_mlp(*start, loss, lr),
                'NumPy': numpy_mlp(*start, loss, lr)}, targets
    if not selected or 'W5' in selected:
        yield f'W5 {RESNET[0]}', make_resnets, RESNET[1]


def make_chimeras(lr):
    net, X = chimera_start()
    theirs, floor = torch_chimera(net, X, lr), numpy_chimera(net, X, lr)  # they copy the weights before training
    return {'d2lmod': d2lmod_chimera(net, X, lr), 'PyTorch': theirs, 'NumPy': floor}


def import_seconds(runs: int = 9) -> float:
    """Median time of `import d2lmod` (NumPy included) in a fresh interpreter."""
    code = 'import time; t = time.perf_counter(); import d2lmod; print(time.perf_counter() - t)'
    return statistics.median(float(subprocess.check_output([sys.executable, '-c', code])) for _ in range(runs))


def memory_over_steps(n: int = 10_000) -> tuple:
    """Resident memory (MB) after 1,000 and after n steps of W1, with the cycle collector off."""
    layers, X, y = mlp_start([20, 256, 10], 2, 'sum')
    step = d2lmod_mlp(layers, X, y, 'sum', 0.0)
    page_mb = os.sysconf('SC_PAGE_SIZE') / 2**20
    rss = lambda: int(open('/proc/self/statm').read().split()[1]) * page_mb  # noqa: E731
    gc.collect()
    gc.disable()  # anything kept alive only by a reference cycle would now pile up
    try:
        for i in range(n):
            step()
            if i == 999:
                early = rss()
        return early, rss()
    finally:
        gc.enable()


def main(argv):
    seconds = float(argv[argv.index('--seconds') + 1]) if '--seconds' in argv else 6.0
    selected = [a for a in argv if a.startswith('W')]
    print(f'd2lmod {dm.__version__}, PyTorch {torch.__version__}, NumPy {np.__version__}, '
          f'Python {platform.python_version()}; {platform.processor() or platform.machine()}, '
          f'{os.cpu_count()} cores, one thread used')
    print(f"{'workload':58} {'d2lmod':>9} {'PyTorch':>9} {'NumPy':>9}  {'d2lmod/PyTorch':>16}  {'d2lmod/NumPy':>14}")
    missed = []
    for name, make, (vs_torch, vs_numpy) in workloads(selected):
        check_same_losses(make(LR))
        t = interleaved_medians(make(0.0), seconds)
        r_torch, r_numpy = t['d2lmod'] / t['PyTorch'], t['d2lmod'] / t['NumPy']
        marks = [' ' if r_torch <= vs_torch else '!', ' ' if r_numpy <= vs_numpy else '!']
        missed += [f'{name.split()[0]} vs PyTorch'] * (marks[0] == '!') + [f'{name.split()[0]} vs NumPy'] * (marks[1] == '!')
        print(f"{name:58} {fmt(t['d2lmod'])} {fmt(t['PyTorch'])} {fmt(t['NumPy'])}  "
              f"{r_torch:5.2f} (<= {vs_torch:.2f}){marks[0]} {r_numpy:5.2f} (<= {vs_numpy:.2f}){marks[1]}")
    print('Losses agree in all three (5 steps, relative gap <= 1e-4). "!" marks a ratio above its target.')
    if missed:
        print('Targets missed:', ', '.join(missed))
    if selected:
        return
    print(f'import d2lmod (NumPy included), median of 9 fresh interpreters: {1000 * import_seconds():.0f} ms')
    early, late = memory_over_steps()
    print(f'memory of W1 with the cycle collector off: {early:.1f} MB after 1,000 steps, {late:.1f} MB after 10,000')


def fmt(seconds: float) -> str:
    return f'{seconds * 1e6:7.0f}us' if seconds < 1e-2 else f'{seconds * 1e3:7.2f}ms'


if __name__ == '__main__':
    main(sys.argv[1:])
