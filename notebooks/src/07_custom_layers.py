"""Lesson 7: custom layers. Build with `python notebooks/src/build.py 07_custom_layers.py`."""

# %% [markdown]
# # 7. Custom layers
#
# `nn.Linear`, `nn.ReLU` and the rest are not special: each is a `Module` subclass of a few lines, exactly like
# the `MLP` you wrote in lesson 1. Sooner or later you need a layer that no library has (a new normalisation, a
# gate, an unusual attention), and then you write it the same way. This lesson writes two: one that only
# computes, and one that learns. Both go into `Sequential` like any built-in layer, and the visualiser shows
# them like any built-in layer, as long as their parameters are registered.
#
# **After this lesson you can**
#
# - write a layer without parameters and use it inside `Sequential`;
# - write a layer with parameters, created with `nn.Parameter` so that the module registers them;
# - say what `parameters()`, `state_dict()`, `summary` and `GradFlow` show for your layer, and what they show
#   when you forget `nn.Parameter`;
# - compare your layer with the built-in one: same job, different weight layout, and what `load_state_dict`
#   says about it.

# %%
import numpy as np

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import GradFlow, GraphView, ModuleTree, summary

dm.manual_seed(0)


# %% [markdown]
# ## 7.1 A layer that only computes: `CenteredLayer`
#
# Our first layer subtracts the mean from its input, so that its output always averages to zero. It holds no
# numbers of its own, so its `__init__` has nothing to do beyond `super().__init__()`: all the work is in
# `forward`.

# %%
class CenteredLayer(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, X):
        return X - X.mean()


layer = CenteredLayer()
print(layer(dm.tensor([1.0, 2.0, 3.0, 4.0, 5.0])))

# %% [markdown]
# The mean of 1 to 5 is 3, so the output is the input moved down by 3. The layer is a `Module` like any other,
# so it fits into `Sequential` next to built-in layers. Here it follows a `Linear` layer; whatever numbers
# the `Linear` layer produces, their mean after the centering is zero, up to float32 rounding:

# %%
net = nn.Sequential(nn.LazyLinear(128), CenteredLayer())
X = dm.rand(4, 8)
Y = net(X)
print('output shape:', Y.shape)
print('mean of the output is zero up to rounding:', abs(Y.mean().item()) < 1e-6)

# %% [markdown]
# What does the visualiser make of it? `summary` lists it by its class name, with no parameters: the count
# column shows what the layer owns, and it owns nothing.

# %%
print(summary(net, X))

# %% [markdown]
# The gradient goes through it like through any op: `X.mean()` and the subtraction are recorded in the graph,
# so `backward` reaches the `Linear` layer below. The computation graph shows the two ops that `forward`
# recorded inside the box of `CenteredLayer` (run the notebook to see it):

# %% tags=["nbval-ignore-output"]
GraphView(net(X).sum(), net)

# %% [markdown]
# ## 7.2 A layer that learns: `MyLinear`
#
# A layer with parameters creates them in `__init__` and wraps each in `nn.Parameter`. That wrapper is the
# signal: when `Module.__setattr__` sees a `Parameter`, it registers it, so `parameters()` lists it, the
# optimizer trains it, `state_dict()` saves it and `to()` converts it.
#
# `MyLinear(in_units, units)` is a fully connected layer followed by a ReLU. It keeps its weight the way the
# formula $XW + b$ reads: shape `(in_units, units)`.

# %%
class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(dm.randn(in_units, units))
        self.bias = nn.Parameter(dm.randn(units))

    def forward(self, X):
        return F.relu(X @ self.weight + self.bias)


linear = MyLinear(5, 3)
print(linear.weight)
print([name for name, _ in linear.named_parameters()])
print({key: value.shape for key, value in linear.state_dict().items()})

# %% [markdown]
# A forward pass, straight from the formula; an input of 2 examples with 5 features becomes 2 rows of 3
# non-negative numbers:

# %%
print(linear(dm.rand(2, 5)))

# %% [markdown]
# `MyLinear` layers stack in `Sequential` like built-in ones. A small network of two of them, run on 2
# examples of 64 features. Its last layer ends in a ReLU too, so with unlucky random weights it outputs exactly
# 0 for both examples, and then no gradient flows back at all (try `dm.manual_seed(0)`); the seed below gives
# weights where it is active:

# %%
dm.manual_seed(3)
net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
X64 = dm.rand(2, 64)
print(net(X64))
print(summary(net, X64))

# %% [markdown]
# The counts are the ones you would compute by hand: $64 \cdot 8 + 8 = 520$ and $8 \cdot 1 + 1 = 9$. In the tree
# your layer's parameters sit under their dotted names (`0.weight`, `0.bias`, ...), exactly where a built-in
# layer's would:

# %% tags=["nbval-ignore-output"]
ModuleTree(net, X64)

# %% [markdown]
# And after a backward pass, `GradFlow` draws a bar for each of them: backward reached every parameter.

# %%
net(X64).sum().backward()
print({name: None if p.grad is None else p.grad.shape for name, p in net.named_parameters()})

# %% tags=["nbval-ignore-output"]
GradFlow(net)


# %% [markdown]
# ## 7.3 Forgetting `nn.Parameter`
#
# The most common mistake in a custom layer is a plain tensor where a parameter belongs. It computes exactly
# the same outputs, so nothing looks wrong:

# %%
class ForgetfulLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = dm.randn(in_units, units, requires_grad=True)   # no nn.Parameter
        self.bias = nn.Parameter(dm.randn(units))

    def forward(self, X):
        return F.relu(X @ self.weight + self.bias)


forgetful = ForgetfulLinear(5, 3)
print('output shape:', forgetful(dm.rand(2, 5)).shape)
print('parameters():', [name for name, _ in forgetful.named_parameters()])
print('state_dict():', list(forgetful.state_dict()))

# %% [markdown]
# The weight is missing from both lists: an optimizer built from `parameters()` would never update it (even
# though it has `requires_grad=True` and receives a gradient), `save` would not write it, and `to(dm.float64)`
# would leave it behind. `summary` does see the tensor (it looks through the module's attributes) and names
# it for what it is:

# %%
print(summary(forgetful, dm.rand(2, 5)))

# %% [markdown]
# ## 7.4 Your layer and the built-in one
#
# `nn.Linear(5, 3)` does the same job as `MyLinear(5, 3)` without the ReLU, but it stores its weight as
# `(out_features, in_features)` = `(3, 5)` and computes $XW^\top + b$, as PyTorch does. The state dicts have the
# same keys and different shapes, so loading one into the other fails, and the error lists the key and both
# shapes:

# %%
builtin = nn.Linear(5, 3)
print({key: value.shape for key, value in builtin.state_dict().items()})
try:
    builtin.load_state_dict(linear.state_dict())
except RuntimeError as error:
    print(error)

# %% [markdown]
# Transposing the weight makes them agree. With the same numbers in both, `relu(nn.Linear(X))` and
# `MyLinear(X)` give the same output:

# %%
state = linear.state_dict()
builtin.load_state_dict({'weight': state['weight'].T, 'bias': state['bias']})
X5 = dm.rand(2, 5)
with dm.no_grad():
    print('same output:', np.allclose(F.relu(builtin(X5)).numpy(), linear(X5).numpy()))

# %% [markdown]
# Which layout is better? Neither computes anything the other cannot. PyTorch's `(out, in)` puts each output
# unit's weights in one row, which is how `Linear` is usually printed and initialised (`fan_in` is the second
# dimension). Your own layer may choose, but a state dict written by one layout cannot be loaded by the other
# without a conversion like the one above.
#
# ## Summary
#
# - A custom layer is a `Module` subclass: `__init__` creates what it holds, `forward` computes. A layer
#   without parameters needs only `forward`.
# - Wrap every learned tensor in `nn.Parameter`. Then `parameters()`, the optimizer, `state_dict()`, `to()`,
#   `summary` and `GradFlow` all see it, with no further code.
# - A plain tensor attribute computes the same outputs but is never trained, saved or moved; `summary` flags it
#   as a *plain tensor*.
# - Custom and built-in layers mix freely inside `Sequential` and other containers.
# - The same layer can store its weight in different layouts; `load_state_dict` checks shapes key by key and
#   says which key does not fit.
#
# ## Exercises
#
# 1. **A reduction layer.** Write `TensorReduction(in_features, out_features)` that holds one parameter $W$
#    of shape `(in_features, in_features, out_features)` and returns $y_k = \sum_{i,j} W_{ijk}\, x_i x_j$ for
#    every example of a batch. Lesson 6 checks it with `check_reduction`.
# 2. **Half the Fourier coefficients.** Write a layer without parameters that returns the first half of the
#    discrete Fourier coefficients of each row of its input (`np.fft.fft` computes them). Can autograd
#    differentiate through it? What would you need to add?
# 3. **A layer with a buffer.** Change `CenteredLayer` so that it also remembers a running mean of the
#    means it has seen, with `register_buffer`. Is the running mean in `parameters()`? In `state_dict()`?
#    (Lesson 9 meets the most famous layer that does this.)
# 4. Put `CenteredLayer` between two `MyLinear` layers and train the network on a small regression problem.
#    Does the centering change what the network can represent?
