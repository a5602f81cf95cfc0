"""Models for the benchmarks: a Transformer-shaped stack of about 1,000 modules, and a digits-sized MLP."""
from __future__ import annotations

import math

from d2lmod import nn
from d2lmod.nn import functional as F


class Attention(nn.Module):
    """Single-head self-attention: softmax(q k^T / sqrt(d)) v, then an output projection.  x: (B, T, d)"""

    def __init__(self, d: int):
        super().__init__()
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))
        self.scale = 1 / math.sqrt(d)

    def forward(self, x):
        scores = self.q(x) @ self.k(x).transpose(-2, -1) * self.scale  # (B, T, T)
        return self.out(F.softmax(scores, dim=-1) @ self.v(x))


class Block(nn.Module):
    """x + attention(x), then x + mlp(x); the mlp's first layer is lazy. Each branch is scaled down by
    `residual` so that activations stay finite through thousands of blocks (there is no normalization)."""

    def __init__(self, d: int, hidden: int, residual: float = 1.0):
        super().__init__()
        self.attn = Attention(d)
        self.mlp = nn.Sequential(nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, d), nn.Dropout(0.0))
        self.residual = residual

    def forward(self, x):
        x = x + self.attn(x) * self.residual
        return x + self.mlp(x) * self.residual


class TransformerLike(nn.Module):
    """embed -> blocks -> head; 11 modules per block, so 96 blocks make 1,060 modules."""

    def __init__(self, blocks: int, d: int, vocab: int):
        super().__init__()
        self.embed = nn.LazyLinear(d)
        self.blocks = nn.ModuleList([Block(d, 4 * d, residual=1 / math.sqrt(2 * blocks)) for _ in range(blocks)])
        self.head = nn.Linear(d, vocab)

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def make_transformer_like(blocks: int = 96, d: int = 32, vocab: int = 50) -> TransformerLike:
    """A Transformer-shaped model (Linear, LazyLinear, ModuleList, Sequential): input (B, T, features)."""
    return TransformerLike(blocks, d, vocab)


def make_digits_mlp() -> nn.Sequential:
    """64 -> 256 -> 10, the size of a classifier for 8x8 digit images."""
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


class Nest(nn.Module):
    """A Linear, then the next Nest inside it: nest them to any depth (the visualiser's deep-model checks)."""

    def __init__(self, inner=None):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        if inner is not None:
            self.inner = inner

    def forward(self, x):
        x = self.lin(x)
        return self.inner(x) if 'inner' in self._modules else x


def make_nested(depth: int) -> Nest:
    """depth Nests, each inside the one before: 2 * depth modules, depth Linear calls deep."""
    model = None
    for _ in range(depth):
        model = Nest(model)
    return model
