"""How long the visualiser takes: against model size (10 to 5,000 modules), in detail on a 1,060-module model,
and the cost of live updates during training.

    .venv/bin/python bench/bench_widgets.py            # all of it (./dev.sh bench runs it too)
    .venv/bin/python bench/bench_widgets.py --sizes    # only the tables against model size and graph size

Prints the median of a few runs for each. Live-update overhead is measured on a 64-256-10 MLP, batch 256,
cross_entropy, plain SGD: the same training loop with and without explorer.update(loss) each step.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import d2lmod as dm  # noqa: E402
from d2lmod.nn import functional as F  # noqa: E402
from d2lmod.widgets import Explorer, GradFlow, GraphView, ModuleTree, summary  # noqa: E402
from d2lmod.widgets.graph import collapse, trace  # noqa: E402
from models import make_digits_mlp, make_nested, make_transformer_like  # noqa: E402
from d2lmod import nn  # noqa: E402


def median_seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sizes(blocks=(1, 8, 90, 454)) -> None:
    """summary, tree and graph of Transformer-shaped models from about 10 to about 5,000 modules."""
    print(f"{'modules':>8} {'graph ops':>10} {'summary':>10} {'ModuleTree':>11} {'trace':>9} {'collapse':>9} "
          f"{'GraphView':>10} {'forward':>9}   (median ms; the graph folds to at most 100 nodes)")
    for n in blocks:
        dm.manual_seed(0)
        model, x = make_transformer_like(blocks=n), dm.randn(2, 16, 24)
        out = model(x)
        graph = trace(out, model)
        ops = sum(node.kind == 'op' for node in graph.nodes)
        times = [median_seconds(fn, repeat=3) for fn in (
            lambda: str(summary(model)), lambda: ModuleTree(model), lambda: trace(out, model),
            lambda: collapse(graph), lambda: GraphView(out, model=model), lambda: model(x))]
        print(f'{len(list(model.modules())):8,} {ops:10,} ' + ' '.join(f'{1000 * t:{w}.1f}' for t, w in
                                                                     zip(times, (10, 11, 9, 9, 10, 9))))


def loose_ops(n: int):
    """n ops outside any module (relu, mul, add, again and again)."""
    x = dm.randn(3, requires_grad=True)
    for k in range(n * 2 // 3):
        x = x.relu() if k % 2 == 0 else x * 1.001 + k
    return x.sum()


def nest_output(n: int):
    """The output of n // 2 nested modules (n ops: a Linear each, and the sum)."""
    model = make_nested(n // 2)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20 * n))  # the forward recurses; tracing and drawing do not
    try:
        return model, model(dm.randn(1, 2)).sum()
    finally:
        sys.setrecursionlimit(limit)


def bench_graph_scaling(sizes=(1000, 2000, 4000, 8000)) -> None:
    """trace() and GraphView against the number of ops: linear (the time per op stays flat)."""
    print(f"{'ops':>6} {'shape':<24} {'trace':>9} {'per op':>8} {'GraphView':>10} {'nodes drawn':>12}"
          "   (median ms; per op in us)")
    for n in sizes:
        for shape, make in (('loose ops (no module)', lambda n=n: (None, loose_ops(n))),
                            ('nested modules', lambda n=n: nest_output(n))):
            model, out = make()
            ops = sum(node.ops for node in trace(out, model).nodes)
            t_trace = median_seconds(lambda: trace(out, model), repeat=3)
            view = GraphView(out, model=model)
            t_view = median_seconds(lambda: GraphView(out, model=model), repeat=1)
            print(f'{ops:6,} {shape:<24} {1000 * t_trace:9.1f} {1e6 * t_trace / ops:8.1f} {1000 * t_view:10.1f} '
                  f'{len(view._view().nodes):12,}')


def bench_hostile() -> None:
    """The two shapes that used to take 15-40 s: a 10,000-layer model, 5,000 ops outside any module."""
    dm.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(3, 3) if k % 2 == 0 else nn.ReLU() for k in range(10_000)])
    x = dm.randn(2, 3)
    out = model(x).sum()
    loose = loose_ops(7500)
    for name, fn in [('GraphView, 10,000 layers', lambda: GraphView(out, model=model)),
                     ('Explorer, 10,000 layers', lambda: Explorer(model, x)),
                     ('GraphView, 5,000 ops outside any module', lambda: GraphView(loose))]:
        print(f'  {name:<48} {1000 * median_seconds(fn, repeat=1):8.1f} ms')


def bench_big_model() -> None:
    dm.manual_seed(0)
    model = make_transformer_like(blocks=96)
    x = dm.randn(2, 16, 24)
    n = len(list(model.modules()))
    print(f'Transformer-like model, 96 blocks: {n:,} modules')
    rows = [('summary(model) before the first call (lazy)', lambda: str(summary(model)))]
    model(x)  # from here on the lazy layers know their sizes
    rows += [
        ('summary(model)', lambda: str(summary(model))),
        ('summary(model, x): runs the model once too', lambda: str(summary(model, x))),
        ('summary(model, x)._repr_html_()', lambda: summary(model, x)._repr_html_()),
        ('forward alone (for comparison)', lambda: model(x)),
        ('ModuleTree(model)', lambda: ModuleTree(model)),
    ]
    model(x).sum().backward()
    tree = ModuleTree(model)
    rows += [
        ('ModuleTree.refresh() after backward', tree.refresh),
        ('ModuleTree at depth 3 (all blocks open)', lambda: setattr(tree, 'depth', 3 if tree.depth != 3 else 2)),
        ('GradFlow(model) after backward', lambda: GradFlow(model)),
        ('Explorer(model, x)', lambda: Explorer(model, x)),
        ('Explorer: one live redraw (update(force=True))', lambda: explorer.update(force=True)),
    ]
    explorer = Explorer(model, x)
    for name, fn in rows:
        print(f'  {name:<48} {1000 * median_seconds(fn):8.1f} ms')


def train(model, X, y, steps: int, explorer=None, sgd=dm.optim.SGD, cross_entropy=F.cross_entropy):
    """(seconds for steps of SGD training, seconds of that spent in explorer.update(loss)); sgd and
    cross_entropy: the framework's (bench_frameworks.py passes PyTorch's)."""
    opt = sgd(model.parameters(), lr=0.1)
    in_update = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        if explorer is not None:
            before = time.perf_counter()
            explorer.update(loss)
            in_update += time.perf_counter() - before
    return time.perf_counter() - start, in_update


def bench_live(every_seconds: float = 0.5, rounds: int = 20, steps: int = 100) -> None:
    """The loop with and without update(loss), alternated in short rounds so machine load hits both alike."""
    rng = np.random.default_rng(0)
    X = dm.tensor(rng.random((256, 64), dtype=np.float32))
    y = dm.tensor(rng.integers(0, 10, 256))
    model = make_digits_mlp()
    explorer = Explorer(model, X[:2]).live(every_seconds)
    train(model, X, y, 50)  # warm up
    plain, watched, inside, ratios = 0.0, 0.0, 0.0, []
    for _ in range(rounds):
        p = train(model, X, y, steps)[0]
        w, spent = train(model, X, y, steps, explorer)
        plain, watched, inside = plain + p, watched + w, inside + spent
        ratios.append(w / p)
    one_draw = median_seconds(lambda: explorer.update(force=True), repeat=20)
    n = rounds * steps
    print(f'Live updates: MLP 64-256-10, batch 256, cross_entropy, SGD; {n} steps each way, '
          f'every_seconds={every_seconds}')
    print(f'  training without the explorer   {1e6 * plain / n:8.1f} us/step')
    print(f'  training with update(loss)      {1e6 * watched / n:8.1f} us/step')
    print(f'  time inside update(loss)        {1e6 * inside / n:8.1f} us/step = '
          f'{100 * inside / (watched - inside):.1f} % of the training time')
    print(f'  with / without, median round    {100 * (statistics.median(ratios) - 1):+8.1f} % '
          '(noisy when other processes share the CPU)')
    print(f'  one redraw (update(force=True)) {1000 * one_draw:8.1f} ms')


def bench_live_in_kernel() -> None:
    """bench_live() inside a real IPython kernel, where every widget change is sent as a comm message."""
    from jupyter_client.manager import start_new_kernel
    manager, client = start_new_kernel(kernel_name='python3')
    try:
        code = (f'import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n'
                'from bench_widgets import bench_live\nbench_live()')
        client.execute_interactive(code, timeout=600, output_hook=_print_stream)
    finally:
        client.stop_channels()
        manager.shutdown_kernel()


def _print_stream(msg) -> None:
    if msg['msg_type'] == 'stream':
        print(msg['content']['text'], end='')
    elif msg['msg_type'] == 'error':
        print('\n'.join(msg['content']['traceback']))


if __name__ == '__main__':
    bench_sizes()
    print()
    bench_graph_scaling()
    print()
    bench_hostile()
    if '--sizes' in sys.argv:
        sys.exit()
    print()
    bench_big_model()
    print()
    bench_live()
    print('\nThe same in an IPython kernel (widget changes sent as comm messages):')
    bench_live_in_kernel()
