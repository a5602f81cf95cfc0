"""How long the visualiser takes on PyTorch models (the targets of issue 12).

    .venv/bin/python bench/bench_frameworks.py

1. summary and ModuleTree of a 1,000-module PyTorch model, together: target under 1 s;
2. GraphView of a ResNet-18-sized PyTorch model (built here by hand: torchvision would replace the pinned
   torch): target under 2 s, the model's own forward not counted;
3. a live Explorer on a PyTorch training loop (MLP 64-256-10, batch 256, cross_entropy, SGD), the same loop
   with and without explorer.update(loss): target at most 10 % of the training time.
Medians of a few runs; one thread.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_widgets  # noqa: E402
from d2lmod.widgets import Explorer, GraphView, ModuleTree, summary  # noqa: E402
from d2lmod.widgets.graph import trace  # noqa: E402


median_seconds = bench_widgets.median_seconds


def wide_model(blocks: int = 333) -> nn.Module:
    """blocks x Sequential(Linear, ReLU) in a Sequential: 1 + blocks * 3 modules (1,000 for 333 blocks)."""
    return nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.ReLU()) for _ in range(blocks)])


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with BatchNorm, and the shortcut (1x1 when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        return F.relu(Y + (self.down(X) if self.down is not None else X))


def resnet18(classes: int = 10) -> nn.Module:
    """ResNet-18 by hand: stem, 4 stages of 2 basic blocks (64-128-256-512 channels), pooling, Linear."""
    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def bench_tree() -> None:
    torch.manual_seed(0)
    model, X = wide_model(), torch.rand(2, 16)
    modules = len(list(model.modules()))
    t_summary = median_seconds(lambda: str(summary(model, X)))
    t_tree = median_seconds(lambda: ModuleTree(model, X))
    print(f'1. {modules:,}-module PyTorch model: summary(model, X) {1000 * t_summary:.0f} ms + '
          f'ModuleTree(model, X) {1000 * t_tree:.0f} ms = {t_summary + t_tree:.2f} s (target < 1 s)')


def bench_resnet() -> None:
    torch.manual_seed(0)
    model, X = resnet18(), torch.rand(1, 3, 224, 224)
    params = sum(p.numel() for p in model.parameters())
    out = model(X).sum()
    data = trace(out, model)
    t_forward = median_seconds(lambda: model(X).sum(), repeat=3)
    t_trace = median_seconds(lambda: trace(out, model), repeat=3)
    t_view = median_seconds(lambda: GraphView(out, model=model), repeat=3)
    print(f'2. ResNet-18 by hand ({params:,} parameters, {len(data.nodes)} nodes, {len(data.clusters)} module '
          f'calls): trace {1000 * t_trace:.0f} ms, GraphView (trace, fold, draw) {t_view:.2f} s (target < 2 s); '
          f'the forward itself {1000 * t_forward:.0f} ms')


def train(model, X, y, steps: int, explorer=None) -> tuple:
    """bench_widgets.train with PyTorch's SGD and cross_entropy."""
    return bench_widgets.train(model, X, y, steps, explorer, torch.optim.SGD, F.cross_entropy)


def bench_live(every_seconds: float = 0.5, rounds: int = 10, steps: int = 100) -> None:
    """The loop with and without update(loss), alternated in short rounds so machine load hits both alike."""
    torch.manual_seed(0)
    X, y = torch.rand(256, 64), torch.randint(0, 10, (256,))
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    explorer = Explorer(model, X[:2]).live(every_seconds)
    train(model, X, y, 50)  # warm up
    plain, watched, inside = 0.0, 0.0, 0.0
    for _ in range(rounds):
        plain += train(model, X, y, steps)[0]
        w, spent = train(model, X, y, steps, explorer)
        watched, inside = watched + w, inside + spent
    n = rounds * steps
    print(f'3. live Explorer on a PyTorch loop (MLP 64-256-10, batch 256, {n} steps each way): '
          f'{1e6 * plain / n:.0f} us/step without, {1e6 * watched / n:.0f} us/step with; inside update(loss) '
          f'{100 * inside / (watched - inside):.1f} % of the training time (target <= 10 %)')


if __name__ == '__main__':
    torch.set_num_threads(1)
    bench_tree()
    bench_resnet()
    bench_live()
