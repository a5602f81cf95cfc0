"""d2lmod, PyTorch and hand-written NumPy side by side: median time of one training step, in one run.

    .venv/bin/python bench/bench_core.py            # all workloads
    .venv/bin/python bench/bench_core.py W1 W2      # some of them

Each step is forward + loss + backward + SGD update, float32, on the same data and starting weights.
Every library runs with its default threads (BLAS may use both cores for the large matmuls).
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import d2lmod as dm
from d2lmod import nn

WORKLOADS = {  # name: (layer sizes, batch, loss)
    'W1 chapter MLP 20-256-10, batch 2': ([20, 256, 10], 2, 'mse'),
    'W3 digits 64-256-10, batch 256, cross-entropy': ([64, 256, 10], 256, 'ce'),
    'W4 784-1024-1024-10, batch 512': ([784, 1024, 1024, 10], 512, 'ce'),
}


def median_time(step, seconds=1.0, min_runs=5) -> float:
    """Median seconds per call of step(), after a warm-up, running for about `seconds`."""
    for _ in range(3):
        step()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def data(sizes, batch, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch) if loss == 'ce' else rng.standard_normal((batch, sizes[-1])).astype(np.float32)
    return X, y


def mlp_layers(sizes, seed=0):
    """The weights every framework starts from: (W, b) per layer, W of shape (out, in)."""
    rng = np.random.default_rng(seed)
    return [((rng.uniform(-1, 1, (o, i)) / np.sqrt(i)).astype(np.float32), np.zeros(o, np.float32))
            for i, o in zip(sizes[:-1], sizes[1:])]


def d2lmod_step(sizes, batch, loss):
    layers = []
    for i, (W, b) in enumerate(mlp_layers(sizes)):
        lin = nn.Linear(W.shape[1], W.shape[0])
        lin.load_state_dict({'weight': W, 'bias': b})
        layers += [lin, nn.ReLU()] if i < len(sizes) - 2 else [lin]
    net = nn.Sequential(*layers)
    X, y = data(sizes, batch, loss)
    X, y = dm.tensor(X), dm.tensor(y) if loss == 'mse' else dm.tensor(y, dtype=dm.int64)
    lossf = nn.functional.mse_loss if loss == 'mse' else nn.functional.cross_entropy
    opt = dm.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        lossf(net(X), y).backward()
        opt.step()
    return step


def torch_step(sizes, batch, loss):
    import torch
    layers = []
    for i, (W, b) in enumerate(mlp_layers(sizes)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        lin.load_state_dict({'weight': torch.from_numpy(W), 'bias': torch.from_numpy(b)})
        layers += [lin, torch.nn.ReLU()] if i < len(sizes) - 2 else [lin]
    net = torch.nn.Sequential(*layers)
    X, y = data(sizes, batch, loss)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    lossf = torch.nn.functional.mse_loss if loss == 'mse' else torch.nn.functional.cross_entropy
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        lossf(net(X), y).backward()
        opt.step()
    return step


def numpy_step(sizes, batch, loss):
    """The same MLP with its backward pass written out by hand: the floor any autograd pays above."""
    params = [(W.copy(), b.copy()) for W, b in mlp_layers(sizes)]
    X, y = data(sizes, batch, loss)

    def step():
        acts = [X]
        for i, (W, b) in enumerate(params):
            h = acts[-1] @ W.T + b
            acts.append(np.maximum(h, 0) if i < len(params) - 1 else h)
        out = acts[-1]
        if loss == 'mse':
            g = 2 * (out - y) / out.size
        else:
            p = np.exp(out - out.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(y)), y] -= 1
            g = p / len(y)
        for i in reversed(range(len(params))):
            W, b = params[i]
            gW, gb = g.T @ acts[i], g.sum(0)
            if i:
                g = (g @ W) * (acts[i] > 0)
            W -= 0.01 * gW
            b -= 0.01 * gb
    return step


def chimera_steps():
    """W2: the chapter's chimera (shared layer, constant weight, while loop), batch 2, SGD on its output."""
    import torch
    sys.path.insert(0, 'tests')
    from chapter_models import make_chimera, torch_twin  # noqa: E402
    X = np.random.default_rng(0).random((2, 20), dtype=np.float32)
    ours, theirs = make_chimera(), torch_twin('chimera')
    ours(dm.tensor(X)), theirs(torch.from_numpy(X))
    opt_d, opt_t = dm.optim.SGD(ours.parameters(), lr=0.01), torch.optim.SGD(theirs.parameters(), lr=0.01)
    Xd, Xt = dm.tensor(X), torch.from_numpy(X)

    def d2lmod():
        opt_d.zero_grad()
        ours(Xd).backward()
        opt_d.step()

    def pytorch():
        opt_t.zero_grad()
        theirs(Xt).backward()
        opt_t.step()
    return d2lmod, pytorch


def main(selected):
    rows = []
    for name, (sizes, batch, loss) in WORKLOADS.items():
        if selected and name.split()[0] not in selected:
            continue
        rows.append((name, median_time(d2lmod_step(sizes, batch, loss)),
                     median_time(torch_step(sizes, batch, loss)), median_time(numpy_step(sizes, batch, loss))))
    if not selected or 'W2' in selected:
        d2lmod_fn, torch_fn = chimera_steps()
        rows.insert(1, ('W2 chimera, batch 2', median_time(d2lmod_fn), median_time(torch_fn), float('nan')))
    print(f"{'workload':48} {'d2lmod':>10} {'PyTorch':>10} {'NumPy':>10} {'PyTorch/d2lmod':>15}")
    for name, ours, torch_t, numpy_t in rows:
        numpy_s = '-' if numpy_t != numpy_t else f'{numpy_t * 1e6:8.0f}us'
        print(f"{name:48} {ours * 1e6:8.0f}us {torch_t * 1e6:8.0f}us {numpy_s:>10} {torch_t / ours:14.2f}x")


if __name__ == '__main__':
    main(sys.argv[1:])
