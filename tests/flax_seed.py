"""The `000` seed's Flax code (the chapter in JAX / Flax linen), copied verbatim below the stand-in for d2l.

The seed imports `from d2l import jax as d2l` only for `d2l.get_key()`; the d2l package is not installed
here (it pins old versions of everything), so `d2l` below is a stand-in with the same behaviour: every call
returns a fresh key split off a global one. Importing this module needs jax and flax.
"""
from typing import List

import jax
from flax import linen as nn
from jax import numpy as jnp


class d2l:  # noqa: N801 (spelled as the seed uses it)
    """Stand-in for `from d2l import jax as d2l`: get_key() splits a fresh key off a global one each call."""
    key = jax.random.PRNGKey(0)

    @classmethod
    def get_key(cls):
        cls.key, subkey = jax.random.split(cls.key)
        return subkey


# ---- the seed, verbatim -------------------------------------------------------------------------------------
class FixedHiddenMLP(nn.Module):
    def setup(self):
        # Random weight parameters that will not compute gradients and
        # therefore keep constant during training
        self.rand_weight = jax.random.uniform(d2l.get_key(), (20, 20))
        self.dense = nn.Dense(20)

    def __call__(self, X):
        X = self.dense(X)
        X = nn.relu(X @ self.rand_weight + 1)
        # Reuse the fully connected layer. This is equivalent to sharing
        # parameters with two fully connected layers
        X = self.dense(X)
        # Control flow
        while jnp.abs(X).sum() > 1:
            X /= 2
        return X.sum()


class NestMLP(nn.Module):
    def setup(self):
        self.net = nn.Sequential([nn.Dense(64), nn.relu,
                                  nn.Dense(32), nn.relu])
        self.dense = nn.Dense(16)

    def __call__(self, X):
        return self.dense(self.net(X))


chimera = nn.Sequential([NestMLP(), nn.Dense(20), FixedHiddenMLP()])
