"""Lesson 2: parameters. Build with `python notebooks/src/build.py 02_parameters.py`."""

# %% [markdown]
# # 2. Parameters
#
# Training changes numbers held by the modules: their parameters. This lesson is about finding those numbers,
# sharing them between layers, telling them apart from other tensors a module may hold, and reading them all
# out at once.
#
# **After this lesson you can**
#
# - reach any parameter of a nested model by position, by attribute or by its dotted name, and read its value
#   and gradient;
# - tie two layers to one set of weights, and show that the shared weight's gradient is the **sum** of the
#   gradients of its uses;
# - say, for a parameter, a buffer and a plain tensor attribute, which ones are trained, saved in
#   `state_dict()` and converted by `to()`;
# - initialize parameters your own way with `apply`;
# - explain why `state_dict()` and `named_parameters()` list a shared weight differently.

# %%
import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import GradFlow, summary

dm.manual_seed(0)
X = dm.rand(2, 20)

# %% [markdown]
# ## 2.1 One layer's parameters
#
# A small network: 20 inputs, 8 hidden units, 1 output. One call on `X` sets the lazy layers' sizes.

# %%
net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
net(X).shape

# %% [markdown]
# A `Sequential` is indexed like a list, and a layer's parameters are attributes. A parameter is a
# `Parameter`: a tensor that a module registers and an optimizer trains.

# %%
last = net[2]
print(last)
print(type(last.weight).__name__, last.weight.shape, last.bias.shape)
print(last.bias)

# %% [markdown]
# `.data` is the same numbers as a plain tensor: it shares the parameter's memory but is cut from the graph, so
# autograd does not see what is done through it (handy for looking, risky for computing). `.grad` stays `None`
# until a backward pass reaches the parameter.

# %%
print(type(last.bias.data).__name__, last.bias.data.dtype, 'requires_grad:', last.bias.data.requires_grad)
print('grad before backward:', last.bias.grad)
net(X).sum().backward()                  # the sum over 2 examples: d(sum)/d(bias) = 2
print('grad after backward: ', last.bias.grad)

# %% [markdown]
# `named_parameters()` walks the whole tree and names each parameter by its path from the top:

# %%
for name, p in net.named_parameters():
    print(f'{name:10s}{str(p.shape):10s}{p.numel():>5,}')


# %% [markdown]
# ## 2.2 Nested models: dotted names
#
# `NestMLP` from lesson 1 keeps a `Sequential` inside. Names and attribute paths follow the nesting, so there
# are two equivalent ways to the same tensor.

# %%
class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


nest = NestMLP()
nest(X)
for name, p in nest.named_parameters():
    print(f'{name:14s}{p.shape}')

# %%
by_name = dict(nest.named_parameters())
print(by_name['net.2.weight'] is nest.net[2].weight)   # the dotted name and the attribute path agree
print(nest.net[2].bias.shape)

# %% [markdown]
# Module by module, with totals:

# %%
print(summary(nest, X))

# %% [markdown]
# ## 2.3 Tied layers: one set of weights, several uses
#
# Put the **same** layer object into a model twice and its weights are shared: there is only one weight
# tensor, used in two places.

# %%
dm.manual_seed(0)
shared = nn.LazyLinear(8)
tied = nn.Sequential(nn.LazyLinear(8), nn.ReLU(),
                     shared, nn.ReLU(),
                     shared, nn.ReLU(),
                     nn.LazyLinear(1))
tied(X)
print(tied[2].weight is tied[4].weight)
before = tied[2].weight.data[0, 0].item()   # a number: data[0, 0] itself would be a view
tied[2].weight.data[0, 0] = 100.0        # change one "copy" ...
print(tied[4].weight.data[0, 0])         # ... and the other changed: it is the same tensor
tied[2].weight.data[0, 0] = before

# %% [markdown]
# Tools that list parameters must decide how to show such a tie. `named_parameters()` lists each parameter
# **once** (so an optimizer updates it once); `state_dict()` lists it under **every** path, so that a model
# built the same way can load it:

# %%
print('named_parameters:', [name for name, _ in tied.named_parameters()])
print('state_dict:      ', list(tied.state_dict()))

# %%
print(summary(tied, X))

# %% [markdown]
# Rows 2 and 4 are one module under two names. Both rows show its 2 calls, but its parameters are counted at
# row 2 only, so the unique total is right; the per-call total counts them twice.

# %% [markdown]
# ### The gradient of a tied weight is a sum
#
# The backward pass visits both uses of `shared` and adds what each contributes into the one `.grad`. To check
# that, build an **untied** twin: the same architecture with separate layers at positions 2 and 4, given the
# same numbers. Because `state_dict()` lists the tied layer under both paths, the twin loads it directly.

# %%
untied = nn.Sequential(nn.Linear(20, 8), nn.ReLU(),
                       nn.Linear(8, 8), nn.ReLU(),
                       nn.Linear(8, 8), nn.ReLU(),
                       nn.Linear(8, 1))
untied.load_state_dict(tied.state_dict())
print('same output:', bool((untied(X) == tied(X)).all()))

for model in (tied, untied):
    model.zero_grad()
    model(X).sum().backward()

def norm(g):
    return (g * g).sum().item() ** 0.5


g_tied = tied[2].weight.grad
g_first, g_second = untied[2].weight.grad, untied[4].weight.grad
print(f'gradient norm, first use:  {norm(g_first):.4f}')
print(f'gradient norm, second use: {norm(g_second):.4f}')
print(f'gradient norm, tied:       {norm(g_tied):.4f}   (norms do not add; the gradients do:)')
print('tied grad == first + second:', (g_tied - (g_first + g_second)).abs().max().item() < 1e-6)

# %% [markdown]
# `GradFlow` draws one bar per parameter after a backward pass (by default the gradient's norm), and under the
# bar of a shared parameter one bar per call that used it: the same two parts we just computed with the twin.

# %% tags=["nbval-ignore-output"]
GradFlow(tied)

# %% [markdown]
# Training keeps the tie: there is one tensor, so one update moves both uses. A few steps of gradient descent
# towards a target `y`:

# %%
y = dm.tensor([[1.0], [-1.0]])
optimizer = dm.optim.SGD(tied.parameters(), lr=0.05)
for step in range(5):
    optimizer.zero_grad()
    loss = F.mse_loss(tied(X), y)
    loss.backward()
    optimizer.step()
    print(f'step {step}: loss {loss.item():.4f}')
print('still tied:', tied[2].weight is tied[4].weight)

# %% [markdown]
# In `FixedHiddenMLP` (lesson 1) the tie is written differently, by calling `self.linear` twice in `forward`,
# but it is the same situation: one weight, two uses, gradients added.
#
# ## 2.4 Parameters, buffers and plain tensor attributes
#
# A module can hold a tensor in three ways, and the difference matters as soon as you train, save or convert
# the model:

# %%
class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.param = nn.Parameter(dm.ones(3))       # trained
        self.register_buffer('buffer', dm.ones(3))  # registered, but not trained (e.g. running statistics)
        self.plain = dm.ones(3)                     # just a Python attribute


h = Holder()
print('parameters():', [name for name, _ in h.named_parameters()])
print('buffers():   ', [name for name, _ in h.named_buffers()])
print('state_dict():', list(h.state_dict()))

# %% [markdown]
# `to(dtype)` converts every registered tensor; the plain attribute is left behind. (This machine has no GPU,
# so here `to()` changes the number type, and asking for `'cuda'` fails just as PyTorch fails without a GPU. On
# a GPU machine, `net.to('cuda')` would likewise leave a plain tensor attribute on the CPU, and the next
# forward would fail with a device mismatch.)

# %%
h.to(dm.float64)
for name in ['param', 'buffer', 'plain']:
    print(f'{name:7s}{getattr(h, name).dtype}')

try:
    h.to('cuda')
except Exception as error:   # show the message instead of stopping the notebook
    print(f'{type(error).__name__}: {error}')

# %% [markdown]
# `summary` lists all three: the parameter in the counts, the buffer and the plain attribute under "not
# parameters", with a note about each.

# %%
print(summary(h))


# %% [markdown]
# | held as | trained by the optimizer | in `state_dict()` | converted by `to()` |
# |---|---|---|---|
# | `nn.Parameter` attribute | yes | yes | yes |
# | `register_buffer(name, t)` | no | yes (unless `persistent=False`) | yes |
# | plain tensor attribute | no | no | no |
#
# `FixedHiddenMLP`'s `rand_weight` is a plain attribute, so a saved `FixedHiddenMLP` loses it. Registering it as
# a buffer keeps `forward` unchanged (`self.rand_weight` still works) but makes it part of the model's state:

# %%
class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('rand_weight', dm.rand(20, 20))   # instead of self.rand_weight = dm.rand(20, 20)
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


fixed = FixedHiddenMLP()
fixed(X)
for name, t in fixed.state_dict().items():
    print(f'{name:15s}{t.shape}')

# %% [markdown]
# ## 2.5 `state_dict()`: every tensor of the model, by name
#
# `state_dict()` is an ordered dictionary from dotted names to tensors: the parameters and persistent buffers
# of every module, each under each of its paths. Its values are plain tensors (no gradient tracking) that share
# memory with the parameters, so training changes them too: copy them (`t.clone()`) for a snapshot. It is
# what gets saved to disk in the next lesson.

# %%
state = nest.state_dict()
for name, t in state.items():
    print(f'{name:14s}{str(t.shape):10s}{type(t).__name__}')
print(f'{sum(t.numel() for t in state.values()):,} numbers in all')

# %% [markdown]
# ## 2.6 Your own initialization
#
# Each layer initializes itself when it is built (or, for a lazy layer, on its first call). To use another
# rule, write a function that fixes up one module and let `apply` call it on every module of the tree. The
# functions in `nn.init` fill a tensor in place.
#
# The function picks the layers it cares about by their class. The book tests `type(m) == nn.Linear`, and that
# works on `net` although it was built from `LazyLinear`s: the first call turned each of them into a `Linear`.
# Before that call the test would skip them, and it should: a lazy layer has no numbers to fill yet, and
# `nn.init` refuses its placeholders with an error that says to run the model first.

# %%
def init_normal(module):
    if type(module) == nn.Linear:              # the lazy layers became Linear on net's first call
        nn.init.normal_(module.weight, mean=0.0, std=0.01)
        nn.init.zeros_(module.bias)


dm.manual_seed(0)
net.apply(init_normal)
print(net[0].weight.data[0, :4], net[0].bias.data[:4])

# %%
def init_constant(module):
    if type(module) == nn.Linear:
        nn.init.constant_(module.weight, 1.0)


net[2].apply(init_constant)                    # only the last layer
print(net[2].weight.data)

# %% [markdown]
# ## Summary
#
# - Parameters are found by position (`net[2]`), attribute (`.weight`) or dotted name (`'net.2.weight'`);
#   `.data` is the numbers as a tensor outside the graph and `.grad` the gradient after `backward()`.
# - Using one layer object twice ties its weights. There is one tensor; its gradient is the sum of the
#   gradients of each use, and one optimizer step updates both uses.
# - `named_parameters()` lists a tied parameter once, `state_dict()` under each path; a summary counts it once
#   as "unique" and once per call as "per call".
# - Parameters are trained, saved and converted; buffers are saved and converted but not trained; plain tensor
#   attributes are none of these.
# - `module.apply(fn)` runs `fn` on every submodule: the place for your own initialization.
#
# ## Exercises
#
# 1. Print the name, shape and gradient norm of every parameter of `nest` after
#    `nest(X).sum().backward()`. Which layer gets the largest gradient?
# 2. Build a `Sequential` that uses one `LazyLinear(8)` **three** times. What do `named_parameters()`,
#    `state_dict()` and `summary` report? Check with an untied twin that the gradient is the sum of three parts,
#    and compare with what `GradFlow` shows.
# 3. Replace the buffer in the second `FixedHiddenMLP` by a plain attribute again and call
#    `fixed.to(dm.float64)`. Which tensors change their dtype? What happens at `X @ self.rand_weight` (as in
#    PyTorch, a matrix product wants one dtype on both sides), and why would the same slip crash on a GPU?
# 4. Tie only the **weights** of two layers, not their biases:
#    `b.weight = a.weight` for two `nn.Linear(8, 8)`. How many unique parameters does the model have, and what
#    does `summary` flag?
# 5. Why does `state_dict()` list a shared parameter under every path, while the optimizer must see it only
#    once? What would go wrong in each case if the other choice were made?
