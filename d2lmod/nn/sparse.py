"""Embedding: a lookup table of learned vectors, one row per token id; the embedding op beside its backward."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from . import init
from .module import Module, Parameter


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Row input[...] of weight for every id.  ids (*) integers, weight (V, D) -> (*, D)"""
    ids = np.asarray(input._data if isinstance(input, Tensor) else input)
    if ids.dtype.kind not in 'iu':
        raise RuntimeError(f"embedding expects integer token ids, got {ids.dtype}; convert them with .long()")
    V = weight.shape[0]
    if ids.size and (ids.min() < -V or ids.max() >= V):
        raise IndexError(f"embedding: ids must lie in 0..{V - 1} (num_embeddings={V}), got values from "
                         f"{ids.min()} to {ids.max()}; make num_embeddings larger than every id")
    ids = ids % V  # -1 is the last row, as NumPy indexing reads it
    wd = weight._data

    def backward(g):
        # each row gets the sum of the gradients of every place it was looked up (an id used twice gets both)
        dw = np.zeros_like(wd)
        np.add.at(dw, ids.reshape(-1), g.reshape(-1, wd.shape[1]))
        if padding_idx is not None:
            dw[padding_idx % V] = 0  # the padding row is never trained
        return (dw,)
    return Tensor._result(wd[ids], (weight,), 'embedding', backward)


class Embedding(Module):
    """num_embeddings vectors of size embedding_dim, looked up by integer id.  ids (*) -> (*, embedding_dim)"""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: d2lmod implements max_norm=None, scale_grad_by_freq=False and "
                                      "sparse=False only")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.weight = Parameter(np.zeros((num_embeddings, embedding_dim), np.float32))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every number standard normal; the padding row zero."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, input) -> Tensor:
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f'{self.num_embeddings}, {self.embedding_dim}'
        return s + (f', padding_idx={self.padding_idx}' if self.padding_idx is not None else '')
