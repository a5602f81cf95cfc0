"""Attention: scaled dot-product attention and MultiheadAttention (num_heads of them side by side), built from
recorded ops (matmul, softmax, linear), so autograd differentiates them with no rule of their own."""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Linear
from .module import Module, Parameter


def attention(q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None = None, dropout_p: float = 0.0,
              scale: float | None = None) -> tuple:
    """(softmax(q k^T * scale + mask) v, the weights): q (..., L, E), k (..., S, E), v (..., S, Ev).

    mask is added to the scores: -inf where a query must not look (its weight becomes 0), else 0 or a bias.
    """
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale   # how well each query matches each key
    if mask is not None:
        scores = scores + Tensor(mask.astype(scores.dtype))
    weights = F.softmax(scores, dim=-1)            # each query's weights over the keys sum to 1
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights


def additive_mask(mask, dtype, allowed_if_true: bool) -> np.ndarray:
    """A boolean mask as 0 / -inf to add to scores (True: allowed, or True: blocked); a float mask as it is."""
    m = np.asarray(mask._data if isinstance(mask, Tensor) else mask)
    if m.dtype == np.bool_:
        blocked = ~m if allowed_if_true else m
        return np.where(blocked, -np.inf, 0.0).astype(dtype)
    return m.astype(dtype)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(q k^T / sqrt(E) + mask) v, as PyTorch's (a boolean attn_mask is True where attention is allowed)."""
    L, S = query.shape[-2], key.shape[-2]
    mask = None
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
        mask = additive_mask(np.tril(np.ones((L, S), bool)), query.dtype, allowed_if_true=True)
    elif attn_mask is not None:
        mask = additive_mask(attn_mask, query.dtype, allowed_if_true=True)
    return attention(query, key, value, mask, dropout_p, scale)[0]


class MultiheadAttention(Module):
    """Attention of queries to keys/values, split into num_heads heads of size embed_dim // num_heads.

    query (N, L, E), key and value (N, S, E) with batch_first=True; (L, N, E), (S, N, E) otherwise (PyTorch's
    default); (L, E) and (S, E) without a batch. Returns (output like query, weights (N, L, S) or None).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False):
        super().__init__()
        if add_bias_kv or add_zero_attn or kdim not in (None, embed_dim) or vdim not in (None, embed_dim):
            raise NotImplementedError("MultiheadAttention: d2lmod implements kdim = vdim = embed_dim, "
                                      "add_bias_kv=False and add_zero_attn=False only")
        if embed_dim % num_heads:
            raise AssertionError(f"embed_dim must be divisible by num_heads, got {embed_dim} and {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        # the query, key and value projections stacked: rows [0, E) make q, [E, 2E) k, [2E, 3E) v
        self.in_proj_weight = Parameter(np.zeros((3 * embed_dim, embed_dim), np.float32))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, np.float32)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        init.xavier_uniform_(self.in_proj_weight)  # PyTorch's init; both biases start at 0
        if bias:
            init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, part: int) -> Tensor:
        """Project x (N, T, E) with rows part*E .. (part+1)*E of in_proj and split the heads: (N, H, T, d)."""
        E = self.embed_dim
        w = self.in_proj_weight[part * E:(part + 1) * E]
        b = None if self.in_proj_bias is None else self.in_proj_bias[part * E:(part + 1) * E]
        y = F.linear(x, w, b)
        return y.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint; pass the causal mask itself "
                               "(True above the diagonal)")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise AssertionError(f"query, key and value must all be 2-d (unbatched) or 3-d, got shapes "
                                 f"{query.shape}, {key.shape}, {value.shape}")
        if query.shape[-1] != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {query.shape[-1]}")
        if not batched:  # one sequence: a batch of one
            query, key, value = (t.reshape(1, *t.shape) for t in (query, key, value))
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        N, L, S, H = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        mask = np.zeros((N, H, L, S), query.dtype)  # added to the scores: -inf where a query must not look
        if attn_mask is not None:  # (L, S) or (N * H, L, S); a boolean one is True where NOT allowed
            m = additive_mask(attn_mask, query.dtype, allowed_if_true=False)
            mask = mask + (m if m.ndim == 2 else m.reshape(N, H, L, S))
        if key_padding_mask is not None:  # (N, S): True marks padding keys that no query may look at
            m = additive_mask(key_padding_mask, query.dtype, allowed_if_true=False)
            mask = mask + m.reshape(N, 1, 1, S)
        q, k, v = self._heads(query, 0), self._heads(key, 1), self._heads(value, 2)
        p = self.dropout if self.training else 0.0
        out, weights = attention(q, k, v, mask if attn_mask is not None or key_padding_mask is not None else None, p)
        out = self.out_proj(out.transpose(1, 2).reshape(N, L, self.embed_dim))  # heads side by side, mixed
        if batched and not self.batch_first:
            out = out.transpose(0, 1)
        elif not batched:
            out = out.reshape(L, self.embed_dim)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S): the heads' average
        return out, weights if batched else weights.reshape(weights.shape[1:])
