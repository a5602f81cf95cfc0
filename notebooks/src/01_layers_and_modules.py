"""Lesson 1: layers and modules. Build with `python notebooks/src/build.py 01_layers_and_modules.py`."""

# %% [markdown]
# # 1. Layers and modules
#
# A single linear layer, a block of three layers and a whole network are, in code, the same thing: a
# `Module`. Because of that, modules fit inside modules to any depth, and one set of tools (listing
# parameters, saving, printing) works on all of them.
#
# **After this lesson you can**
#
# - name the five things every module does, and point to where d2lmod does each one;
# - write the same network three ways: with `nn.Sequential`, as your own `Module` subclass, and with a
#   hand-made `MySequential`;
# - write a `forward` that uses a constant tensor, calls one layer twice and loops a data-dependent number
#   of times, and read what `summary` reports about it;
# - nest modules, and count parameters correctly when a layer runs more than once;
# - translate a model between PyTorch, Flax and Gluon spelling, and run a module in the functional
#   `init` / `apply` style.

# %%
import inspect

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import Explorer, GradFlow, GraphView, ModuleTree, summary

dm.manual_seed(0)      # every random number in this notebook follows from this seed
X = dm.rand(2, 20)     # the input for every model below: 2 examples, 20 features each
X.shape

# %% [markdown]
# ## 1.1 What a module does
#
# Whatever its size, a module has five jobs:
#
# 1. **take input**: calling `module(X)` runs its `forward(X)`;
# 2. **return output**, whose shape may differ from the input's;
# 3. **pass gradients back** from its output to its input, so the layers before it can learn (autograd does
#    this; you never write a backward pass);
# 4. **hold its parameters** and list them on request;
# 5. **initialize those parameters**.
#
# Here are all five on one layer. `LazyLinear(3)` has 3 outputs and works out its number of inputs from the
# first `X` it sees.

# %%
layer = nn.LazyLinear(3)
Xg = dm.rand(2, 20, requires_grad=True)   # requires_grad: we also want d(output)/d(input)

Y = layer(Xg)                             # jobs 1 and 2 (and 5: the first call initializes the weights)
print('output shape:           ', Y.shape)
Y.sum().backward()                        # job 3: autograd fills in the input's gradient
print('input gradient shape:   ', Xg.grad.shape)
for name, p in layer.named_parameters():  # job 4: the parameters, by name
    print(f'parameter {name:6s} shape:', p.shape)

# %% [markdown]
# Job 5 is a method of `Linear`. It runs when the sizes are known: in the constructor for `Linear(20, 3)`,
# and on the first call for `LazyLinear(3)`. This is d2lmod's code:

# %%
print(inspect.getsource(nn.Linear.reset_parameters))

# %% [markdown]
# Where each job lives in the package, if you want to read it:
#
# | job | in d2lmod |
# |---|---|
# | 1, 2: input in, output out | `Module.__call__` runs your `forward` (`d2lmod/nn/module.py`) |
# | 3: gradients | `Tensor.backward` (`d2lmod/tensor.py`) and each op's backward rule (`d2lmod/ops.py`) |
# | 4: hold and list parameters | `Module.__setattr__`, `named_parameters` (`d2lmod/nn/module.py`) |
# | 5: initialize | `Linear.reset_parameters` (`d2lmod/nn/layers.py`), `nn.init` (`d2lmod/nn/init.py`) |

# %% [markdown]
# ## 1.2 `Sequential`: modules called one after another
#
# The chapter's first network: 20 inputs, a hidden layer of 256 ReLU units, 10 outputs.

# %%
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
print(net(X).shape)
print(net)

# %% [markdown]
# The printout says `Linear`, not `LazyLinear`: once its first call has fixed the sizes, a lazy layer turns
# into an ordinary `Linear`, as in PyTorch (lesson 3 looks at this closely).
#
# There is no magic in `Sequential`. Its whole `forward` is a loop that feeds each child the previous child's
# output:

# %%
print(inspect.getsource(nn.Sequential.forward))

# %% [markdown]
# `summary(model, X)` runs the model once on `X` and writes one row per module: its dotted path, its type,
# the shape it returned, how many times it ran (`calls`), the parameters it owns itself (`params`; a
# container owns none, its children do) and `per call` = params x calls. Below the table come the totals and
# notes on anything unusual. We will use it for every model in this lesson.

# %%
print(summary(net, X))

# %% [markdown]
# The same tree as a widget you can click open (run the notebook to see it):

# %% tags=["nbval-ignore-output"]
ModuleTree(net)


# %% [markdown]
# ## 1.3 Your own module: children in `__init__`, computation in `forward`
#
# `Sequential` only chains. For anything else, subclass `nn.Module`: create the layers in `__init__`
# (after `super().__init__()`), and say how to use them in `forward`. This is the same network again.

# %%
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.LazyLinear(256)
        self.out = nn.LazyLinear(10)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))


mlp = MLP()
print(mlp(X).shape)
print(summary(mlp, X))

# %% [markdown]
# Nobody told `mlp` that `hidden` and `out` are its children, yet it lists their parameters. The work is done
# by `Module.__setattr__`, which runs on every `self.something = value`: `_register` puts a `Parameter` into the
# module's `_parameters` and a `Module` into `_modules` (and keeps it as an ordinary attribute too, so that
# reading `self.hidden` is quick); anything else becomes an ordinary attribute only.

# %%
print(inspect.getsource(nn.Module.__setattr__))
print(inspect.getsource(nn.Module._register))

# %%
print('children:  ', list(mlp._modules))
print('parameters:', [name for name, _ in mlp.named_parameters()])


# %% [markdown]
# ## 1.4 `MySequential`: `Sequential` by hand
#
# To see that nothing is hidden, rebuild `Sequential`. `add_module(name, module)` registers a child under a
# name we compute (here `'0'`, `'1'`, `'2'`), which attribute assignment cannot do. `children()` gives them
# back in the order they were added.

# %%
class MySequential(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        for idx, module in enumerate(modules):
            self.add_module(str(idx), module)

    def forward(self, X):
        for module in self.children():
            X = module(X)
        return X


my_net = MySequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
print(my_net(X).shape)
print(summary(my_net, X))


# %% [markdown]
# Three spellings, one network. They own the same number of parameters:

# %%
def count(model):
    """Trainable numbers in model, each parameter counted once."""
    return sum(p.numel() for p in model.parameters())


for name, model in [('net', net), ('mlp', mlp), ('my_net', my_net)]:
    print(f'{name:7s}{count(model):,} parameters')

# %% [markdown]
# `MySequential` even names its parameters as `Sequential` does (`0.weight`, `2.bias`, ...), so it can take
# `net`'s weights and then compute exactly what `net` computes:

# %%
print(list(my_net.state_dict()) == list(net.state_dict()))
my_net.load_state_dict(net.state_dict())
print(bool((my_net(X) == net(X)).all()))


# %% [markdown]
# ## 1.5 `forward` is ordinary Python: `FixedHiddenMLP`
#
# Inside `forward` you can use any Python you like. This model does three unusual things:
#
# - `rand_weight` is a tensor made once in `__init__` and never trained: it is a plain attribute, not a
#   `Parameter`, so the module does not register it;
# - `self.linear` is called **twice**: both calls use the same weights;
# - the `while` loop halves `X` until its absolute values sum to at most 1, so how many times it runs
#   depends on the numbers in `X`.

# %%
class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = dm.rand(20, 20)   # a plain tensor: no gradient, not a parameter
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)                   # the same layer again: shared parameters
        while X.abs().sum() > 1:             # data-dependent control flow
            X /= 2
        return X.sum()


fixed = FixedHiddenMLP()
print(fixed(X))
print(summary(fixed, X))

# %% [markdown]
# Read the table against the code:
#
# - the model **owns** one `Linear(20, 20)`: a 20 x 20 weight and 20 biases. That is the *unique* count.
# - `linear` **ran twice**, so a count that adds up every call's parameters gets twice as much. Tools that
#   count per call report this larger number as if the model had two layers; it has one.
# - `rand_weight` holds numbers too, but it is not a parameter: `parameters()`, `state_dict()` and the
#   optimizer never see it. `summary` counts it apart, under "not parameters", and flags it.
#
# The loop runs as often as the data requires. Scaling the input up makes it run longer, yet the result
# always ends up with an absolute value of at most 1:

# %%
for scale in [1, 100, 10_000]:
    print(f'input x {scale:>6,}: output {fixed(X * scale).item():+.4f}')

# %% [markdown]
# The computation graph of one call makes all three visible: `linear` appears as two calls of the same
# module, the constant `rand_weight` enters as a plain tensor rather than a parameter, and the halvings are
# folded into one `div ×n (loop)` node that says how many ran.

# %% tags=["nbval-ignore-output"]
GraphView(fixed(X), model=fixed)

# %% [markdown]
# Both calls of `linear` send their gradients into the same `.grad`. `GradFlow` shows each parameter's
# gradient after a backward pass and splits a shared one by call (lesson 2 checks the sum by hand):

# %%
fixed.zero_grad()
fixed(X).backward()
print(fixed.linear.weight.grad.shape)

# %% tags=["nbval-ignore-output"]
GradFlow(fixed)


# %% [markdown]
# ## 1.6 Modules inside modules: `NestMLP` and the chimera
#
# A module's children can have children of their own. `NestMLP` keeps a whole `Sequential` as one of its
# attributes.

# %%
class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


nest = NestMLP()
print(nest(X).shape)
print(summary(nest, X))

# %% [markdown]
# And since every piece is a module, we can chain unrelated ones: a `NestMLP`, a plain layer and a
# `FixedHiddenMLP`. Paths such as `0.net.2` follow the nesting from the top down.

# %%
chimera = nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())
print(chimera(X))
print(summary(chimera, X))

# %% [markdown]
# `summary(..., depth=1)` folds everything below the first level into its parent row, so each row counts its
# whole subtree and the rows still add up to the same totals:

# %%
print(summary(chimera, X, depth=1))

# %% [markdown]
# The unique count of the chimera is the sum of its three parts; the per-call count is larger by exactly one
# extra use of the `FixedHiddenMLP`'s layer:

# %%
parts = [count(m) for m in chimera]
print(' + '.join(f'{n:,}' for n in parts), '=', f'{sum(parts):,}', '=', f'{count(chimera):,}')
print('the shared layer, once more:', f'{count(chimera[2].linear):,}')

# %% [markdown]
# The chimera's graph has one box per module call, nested as the modules are; the `show` menu folds the boxes
# into single nodes or opens one of them. The `Explorer` gathers the tree, the gradient bars and the graph in
# tabs, with buttons to run `forward`, `backward` and an SGD `step` on the model:

# %% tags=["nbval-ignore-output"]
GraphView(chimera(X), model=chimera)

# %% tags=["nbval-ignore-output"]
Explorer(chimera, X)

# %% [markdown]
# Large architectures are this same nesting, repeated: a ResNet is a sequence of residual blocks made of
# convolutions, a Transformer a stack of identical attention-plus-MLP blocks.
#
# ## 1.7 The book's own PyTorch code, run on d2lmod
#
# d2lmod keeps PyTorch's names and behaviour, so the book's PyTorch cells run on it as they are printed. The
# cells below are copied from the book's chapter unchanged except for the imports: `import d2lmod as torch`
# instead of `import torch`. (We keep our own input `X` aside, since the book's cells make a new one.)

# %%
X_lesson = X

# %%
import d2lmod as torch
from d2lmod import nn
from d2lmod.nn import functional as F

net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))

X = torch.rand(2, 20)
net(X).shape

# %% [markdown]
# Tied parameters, from the book's section on parameter management: `.data` is a tensor that shares the
# weight's memory, so writing one element through it shows in both uses of the shared layer.

# %%
# We need to give the shared layer a name so that we can refer to its
# parameters
shared = nn.LazyLinear(8)
net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(),
                    shared, nn.ReLU(),
                    shared, nn.ReLU(),
                    nn.LazyLinear(1))
net(X)
# Check whether the parameters are the same
print(net[2].weight.data[0] == net[4].weight.data[0])
net[2].weight.data[0, 0] = 100
# Make sure that they are actually the same object rather than just having the
# same value
print(net[2].weight.data[0] == net[4].weight.data[0])

# %% [markdown]
# A layer with its own parameters, from the book's section on custom layers (it reads `self.weight.data`, so,
# as the book's version does, it trains nothing: the `.data` tensors are outside the graph):

# %%
class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)


net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
net(torch.rand(2, 64))

# %% [markdown]
# And the book's GPU helpers. This machine has no GPU, so `try_gpu()` falls back to the CPU, as it does in
# PyTorch; asking for a GPU directly (`X.cuda()`) fails with PyTorch's error and a sentence on what to do.

# %%
def cpu():  #@save
    return torch.device('cpu')

def gpu(i=0):  #@save
    return torch.device(f'cuda:{i}')

def num_gpus():  #@save
    return torch.cuda.device_count()

def try_gpu(i=0):  #@save
    """Return gpu(i) if exists, otherwise return cpu()."""
    if num_gpus() >= i + 1:
        return gpu(i)
    return cpu()

X = torch.ones(2, 3, device=try_gpu())
X, X.device, gpu(1)

# %%
X = X_lesson  # back to the lesson's own input

# %% [markdown]
# ## 1.8 The same models in PyTorch, Flax and Gluon
#
# d2lmod spells everything as PyTorch does, so the first column below is also d2lmod (with `dm` for
# `torch`). The ideas are identical in all three; only the names move.
#
# | | PyTorch / d2lmod | Flax (`flax.linen`) | Gluon (MXNet) |
# |---|---|---|---|
# | base class | `nn.Module` | `nn.Module` | `nn.Block` |
# | create children | `__init__` (call `super().__init__()`) | `setup()` (or inline with `@nn.compact`) | `__init__` |
# | computation | `forward(self, X)` | `__call__(self, X)` | `forward(self, X)` |
# | dense layer | `nn.LazyLinear(256)` / `nn.Linear(20, 256)` | `nn.Dense(256)` | `nn.Dense(256)` |
# | activation | separate: `nn.ReLU()`, `F.relu` | a function: `nn.relu` | an argument: `nn.Dense(256, activation='relu')` |
# | chain | `nn.Sequential(a, b, c)` | `nn.Sequential([a, b, c])` | `net = nn.Sequential(); net.add(a, b, c)` |
# | input size | lazy layers, or given | always inferred | inferred (deferred initialization) |
# | create the weights | on construction (lazy: first call) | `params = net.init(key, X)` | `net.initialize()`, done on the first call |
# | run | `net(X)` | `net.apply(params, X)` | `net(X)` |
# | where weights live | inside the modules | in the `params` dict you pass around | inside the blocks |
# | child with a computed name | `self.add_module(str(i), m)` | a list attribute in `setup` | `self.register_child(m)` |
# | constant weight | plain attribute, or `register_buffer` | a plain array made in `setup` | `gluon.Constant(...)` |
#
# ### The chimera in PyTorch and in Flax, through the same visualiser
#
# `summary`, `ModuleTree`, `GradFlow`, `GraphView` and `Explorer` also take a PyTorch `nn.Module`, and a Flax
# linen module with its variables. The cells below need PyTorch (`pip install torch==2.13.0`) and JAX with
# Flax (`pip install jax flax`); where one is missing (Binder, for instance), its cells do nothing and the
# rest of the lesson runs as usual. `optional('torch')` does that check: it returns the package where it is
# installed, and `None` (saying what to install) where it is not; each cell then runs `if torch is not None`.

# %% tags=["nbval-ignore-output"]
from d2lmod.widgets.frameworks import optional

dm_chimera = chimera   # the d2lmod chimera of 1.6; the Flax code below reuses the names nn and chimera
torch = optional('torch')

# %% [markdown]
# First PyTorch. The model is written exactly as in d2lmod, with `torch` for `dm`; its input holds the same
# numbers as our `X`.

# %% tags=["nbval-ignore-output"]
if torch is not None:
    tnn, TF = torch.nn, torch.nn.functional

    class TorchFixedHiddenMLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.rand_weight = torch.rand(20, 20)   # a plain attribute: not a parameter
            self.linear = tnn.LazyLinear(20)

        def forward(self, X):
            X = self.linear(X)
            X = TF.relu(X @ self.rand_weight + 1)
            X = self.linear(X)
            while X.abs().sum() > 1:
                X /= 2
            return X.sum()

    class TorchNestMLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.net = tnn.Sequential(tnn.LazyLinear(64), tnn.ReLU(), tnn.LazyLinear(32), tnn.ReLU())
            self.linear = tnn.LazyLinear(16)

        def forward(self, X):
            return self.linear(self.net(X))

    torch.manual_seed(0)
    torch_chimera = tnn.Sequential(TorchNestMLP(), tnn.LazyLinear(20), TorchFixedHiddenMLP())
    X_torch = torch.from_numpy(X.numpy().copy())
    print(summary(torch_chimera, X_torch))

# %% [markdown]
# The same totals as d2lmod's: 4,712 unique parameters, 5,132 when the shared layer counts once per call,
# the 400 numbers of `rand_weight` flagged as a plain tensor. For comparison, the usual PyTorch tool,
# torchinfo, finds the same 4,712 but prints the shared layer's second call only as "(recursive)", with no
# count of its own, and does not mention `rand_weight` at all.
#
# After `backward()`, `GradFlow(model, X)` splits the shared layer's gradient by call (one more forward with
# one view of each parameter per call; the two parts add up to `.grad`), and the graph is read from
# autograd's record, the loop folded:

# %% tags=["nbval-ignore-output"]
if torch is not None:
    out = torch_chimera(X_torch)
    out.backward()
    display(GradFlow(torch_chimera, X_torch))

# %% tags=["nbval-ignore-output"]
if torch is not None:
    display(GraphView(torch_chimera(X_torch), model=torch_chimera))

# %% [markdown]
# Now Flax, with the chapter's JAX code as it is written there (indented under the check). Its imports,
# `import jax`, `from flax import linen as nn` and `from jax import numpy as jnp`, become one `optional`.
# The code asks `d2l.get_key()` for random keys; the `d2l` package is not installed here, so three lines
# stand in for it (each call splits a fresh key off a global one, as d2l does).

# %% tags=["nbval-ignore-output"]
jax, nn, jnp = optional('jax', 'flax.linen', 'jax.numpy')

if nn is not None:
    class d2l:
        key = jax.random.PRNGKey(0)

        @classmethod
        def get_key(cls):
            cls.key, subkey = jax.random.split(cls.key)
            return subkey

# %% tags=["nbval-ignore-output"]
if nn is not None:
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
    X_jax = jnp.asarray(X.numpy())
    params = chimera.init(d2l.get_key(), X_jax)
    print(summary(chimera, X_jax, variables=params))

# %% [markdown]
# Again 4,712 and 5,132. The names differ: Flax calls the children of a `Sequential` `layers_0`, `layers_1`,
# ..., and the shared layer `layers_2.dense`. The flagged `rand_weight` tells a Flax-specific story: it is made
# in `setup`, which runs again on every `init` and `apply`, and since it draws a fresh key each time, it is a
# different "constant" on every call. Flax's own table, `tabulate`, cannot show this model at all: it traces
# the model with abstract values, and the `while` loop needs real numbers to decide when to stop.

# %% tags=["nbval-ignore-output"]
if nn is not None:
    key_before = d2l.key
    try:
        print(chimera.tabulate(jax.random.PRNGKey(0), X_jax))
    except Exception as error:
        print(f'tabulate failed: {type(error).__name__}')
    finally:
        d2l.key = key_before  # tabulate's tracing ran setup(), which left a traced (abstract) key in d2l.key

# %% [markdown]
# The visualiser runs the model eagerly instead, so the loop runs for real. Its graph comes from
# `jax.linearize` (the ops that carry gradients), grouped by module call, with the loop folded, and the
# `Explorer` holds the variables and trains them with `jax.grad` and SGD:

# %% tags=["nbval-ignore-output"]
if nn is not None:
    display(GraphView(chimera, X_jax, variables=params))

# %% tags=["nbval-ignore-output"]
if nn is not None:
    display(Explorer(chimera, X_jax, variables=params))

# %% [markdown]
# Back to d2lmod's names for the rest of the lesson:

# %%
from d2lmod import nn

chimera = dm_chimera

# %% [markdown]
#
# ## 1.9 The functional style: `init` and `apply` in d2lmod
#
# Flax keeps the weights **outside** the model: `init` returns them as a dictionary, and `apply(params, X)`
# runs the model with whatever dictionary you hand it. `d2lmod.func.functional_call(model, params, X)` does
# the same on our modules: for one call it swaps the given tensors in for the module's own, then puts the
# originals back. Two short functions turn any module into a Flax-style pair:

# %%
from d2lmod.func import functional_call


def init(model, X):
    """Run once (so lazy layers learn their sizes) and return a copy of the weights as a plain dict."""
    model(X)
    return {name: dm.tensor(value) for name, value in model.state_dict().items()}


def apply(model, params, X):
    return functional_call(model, params, X)


dm.manual_seed(0)
model = MLP()
params = init(model, X)
for name, value in params.items():
    print(f'{name:14s}{value.shape}')

# %% [markdown]
# `apply` with the same weights gives the model's own output; other weights give another output, and the model
# itself is untouched:

# %%
print(bool((apply(model, params, X) == model(X)).all()))
halved = {name: value / 2 for name, value in params.items()}
print(bool((apply(model, halved, X) == model(X)).all()))
print(bool((model.hidden.weight == params['hidden.weight']).all()))

# %% [markdown]
# Gradients flow to whatever tensors were passed in. That is how functional training works: the gradient lands
# in the dictionary, and the module's own parameters get none.

# %%
params = {name: value.requires_grad_() for name, value in params.items()}
apply(model, params, X).sum().backward()
print('params["out.bias"].grad:', params['out.bias'].grad.shape)
print('model.out.bias.grad:    ', model.out.bias.grad)

# %% [markdown]
# ## 1.10 The Gluon seed on d2lmod
#
# The MXNet edition of this chapter no longer runs: MXNet 1.9.1, its last release, stops at `import mxnet` on
# any NumPy from 1.24 on (it still asks for `np.bool`). `d2lmod.compat.mxnet` offers Gluon's names, built
# from the modules of this lesson: a `Block` is a `Module`, `nn.Dense(256, activation='relu')` is a lazy
# linear layer with its activation attached, `initialize()` only chooses how the weights will start (the
# shapes are settled on the first call, as Gluon does), and `gluon.Constant` is a registered buffer: saved and
# moved with the model, never trained. The cell below is that edition's code as written; only its import lines
# say `d2lmod.compat.mxnet` where they said `mxnet`. The input is this lesson's `X`, a d2lmod tensor of shape
# (2, 20), which is what the compatibility layer's arrays are.

# %%
from d2lmod.compat.mxnet import np, npx
from d2lmod.compat.mxnet.gluon import nn
npx.set_np()

class MLP(nn.Block):
    def __init__(self):
        # Call the constructor of the MLP parent class nn.Block to perform
        # the necessary initialization
        super().__init__()
        self.hidden = nn.Dense(256, activation='relu')
        self.out = nn.Dense(10)
    # Define the forward propagation of the model, that is, how to return the
    # required model output based on the input X
    def forward(self, X):
        return self.out(self.hidden(X))

class MySequential(nn.Block):
    def __init__(self):
        super().__init__()
        # Keep strong refs ourselves: _children in Gluon 2.0 holds weakrefs,
        # so we'd otherwise lose blocks to GC right after add() returns.
        self._layers = []
    def add(self, block):
        # block is an instance of a Block subclass. register_child tracks it
        # for parameter discovery; the strong ref in self._layers keeps it
        # alive (matches the upstream nn.Sequential pattern).
        self._layers.append(block)
        self.register_child(block)
    def forward(self, X):
        # _children.values() yields weakrefs; call them to dereference.
        for block in self._children.values():
            X = block()(X)
        return X

from d2lmod.compat.mxnet import gluon
class FixedHiddenMLP(nn.Block):
    def __init__(self):
        super().__init__()
        # Random weight parameters wrapped in gluon.Constant are not updated
        # during training (i.e., constant parameters)
        self.rand_weight = gluon.Constant(np.random.uniform(size=(20, 20)))
        self.dense = nn.Dense(20, activation='relu')
    def forward(self, X):
        X = self.dense(X)
        # Use the created constant parameters, as well as the relu and dot
        # functions
        X = npx.relu(np.dot(X, self.rand_weight.data()) + 1)
        # Reuse the fully connected layer. This is equivalent to sharing
        # parameters with two fully connected layers
        X = self.dense(X)
        # Control flow
        while np.abs(X).sum() > 1:
            X /= 2
        return X.sum()

class NestMLP(nn.Block):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential()
        self.net.add(nn.Dense(64, activation='relu'),
                     nn.Dense(32, activation='relu'))
        self.dense = nn.Dense(16, activation='relu')
    def forward(self, X):
        return self.dense(self.net(X))

chimera = nn.Sequential()
chimera.add(NestMLP(), nn.Dense(20), FixedHiddenMLP())
chimera.initialize()
chimera(X)

# %% [markdown]
# Gluon's blocks are d2lmod modules, so `summary` reads them like any other model. Before the first call the
# `Dense` layers do not know their input sizes; after it, the chimera holds 4,712 trainable numbers, the same
# as the PyTorch-style chimera of section 1.6, and the constant's 400 numbers are counted apart, as a buffer
# that is saved but never trained:

# %%
print(summary(chimera, X))
print('the constant in state_dict:', '2.rand_weight' in chimera.state_dict(),
      '| among the parameters:', '2.rand_weight' in dict(chimera.named_parameters()))

# %% [markdown]
# The book's other cells print the shapes of `MLP`, `MySequential` and `FixedHiddenMLP` outputs:

# %%
for block in (MLP(), MySequential(), FixedHiddenMLP()):
    if isinstance(block, MySequential):
        block.add(nn.Dense(256, activation='relu'))
        block.add(nn.Dense(10))
    block.initialize()
    print(type(block).__name__, block(X).shape)

# %% [markdown]
# The rest of this lesson speaks d2lmod's own (PyTorch) spelling again:

# %%
from d2lmod import nn  # noqa: E402,F811

# %% [markdown]
# ## Summary
#
# - Layers, blocks and models are all `Module`s: they take input, return output, let gradients through,
#   hold their parameters and initialize them.
# - `Sequential` is a loop over registered children; `MySequential` rebuilds it with `add_module` and
#   `children()`.
# - Assigning a `Module` or `Parameter` to an attribute registers it. A plain tensor attribute is *not*
#   registered: no gradient, not saved.
# - `forward` is plain Python: constants, a layer called twice (one set of weights), loops that depend on the
#   data.
# - Count parameters **once per parameter** (unique); counting once per call inflates shared layers.
# - Flax's `init`/`apply` is the same model with the weights held outside; `functional_call` gives you that
#   style here.
#
# ## Exercises
#
# 1. **A list is not a container.** The class below keeps its layers in a plain Python list. Run it, read what
#    `summary` says, and predict what `net.parameters()`, `state_dict()` and an optimizer would see. Then fix
#    it with `nn.ModuleList` and check that the count matches `net`'s.

# %%
class ListSequential(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)       # a plain list: the modules are NOT registered

    def forward(self, X):
        for module in self.layers:
            X = module(X)
        return X


broken = ListSequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
print(broken(X).shape, '- it still computes, but it owns', count(broken), 'parameters')
print(summary(broken, X))

# %% [markdown]
# 2. **Two branches.** Write `Parallel(net1, net2)` whose `forward` runs both on the same input and joins the
#    outputs with `dm.cat([y1, y2], dim=1)`. `Parallel(nn.LazyLinear(3), nn.LazyLinear(5))(X).shape` should be
#    `(2, 8)`, and `summary` should list both branches under `net1` and `net2`.
# 3. **Copies or one instance?** Write `make_blocks(make_block, n)` that returns
#    `nn.Sequential(*[make_block() for _ in range(n)])`, and compare it with `nn.Sequential(*[block] * n)` built
#    from one `block` (lesson 6 checks your answer with `check_factory`). Both run. How many unique parameters does each have for
#    `make_block = lambda: nn.Sequential(nn.LazyLinear(20), nn.ReLU())` and `n = 3`? Which flag does `summary`
#    raise for the second one, and why is that tie easy to miss?
# 4. **Counting halvings.** Open `GraphView(fixed(X * s), model=fixed)` for `s = 1, 100, 10_000`. How many
#    halvings does each need? Explain the pattern from the code of `forward`.
# 5. **Translate.** Write `NestMLP` in Flax and in Gluon spelling (on paper, with the table above). Where do the
#    `ReLU`s go in each?
