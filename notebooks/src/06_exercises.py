"""Lesson 6: exercises with checks. Build with `python notebooks/src/build.py 06_exercises.py`."""

# %% [markdown]
# # 6. Exercises, with checks
#
# The chapter ends with three exercises about building modules, and each hides a mistake that raises no
# error: the model runs, and is quietly wrong. Here you solve them and check your answer. Each check runs your
# code on small layers of its own and answers in one sentence: **Right: ...** when it behaves as it should, or
# **Not yet: ...** with what is still wrong. It never shows the answer.
#
# For each exercise you first see an attempt that a student might well write, with what goes wrong and what
# the check says about it. Then comes a cell with an unfinished class or function for you to complete. Until
# you do, its check says it is not written yet.
#
# **After this lesson you can**
#
# - explain why modules kept in a plain Python list are invisible to `parameters()`, `state_dict()`, `to()`
#   and the optimizer, and build a container that registers them;
# - write a module that runs two networks side by side on the same input;
# - write a factory that builds fresh blocks, and spot the silent tie of one block repeated.

# %%
import d2lmod as dm
from d2lmod import nn
from d2lmod.widgets import summary
from d2lmod.widgets.exercises import check_factory, check_parallel, check_registered

dm.manual_seed(0)
X = dm.rand(2, 20)   # the chapter's input: 2 examples, 20 features


def count(model):
    """Unique parameters: each tensor counted once."""
    return sum(p.numel() for p in model.parameters())


# %% [markdown]
# ## 6.1 Children in a plain Python list
#
# Lesson 1 built `MySequential` with `add_module`. Storing the modules in a list looks simpler and even runs:

# %%
class ListSequential(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)

    def forward(self, X):
        for module in self.layers:
            X = module(X)
        return X


net = ListSequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
print('output shape:', net(X).shape)
print('parameters():', list(net.parameters()))
print('state_dict():', dict(net.state_dict()))

# %% [markdown]
# The module computes the right thing, yet it owns no parameters. A `Module` learns about its children only
# when a module is assigned to one of its attributes (or passed to `add_module`); a list is just a Python
# object to it, and it does not look inside. Everything that walks the tree misses the layers:

# %%
try:
    dm.optim.SGD(net.parameters(), lr=0.1)
except ValueError as error:
    print('optimizer:', error)

net.to(dm.float64)
print('after net.to(dm.float64), the first weight is', net.layers[0].weight.dtype)

# %% [markdown]
# And `summary` reports the hidden layers:

# %%
print(summary(net, X))

# %% [markdown]
# The check says what it sees (it builds a `ListSequential` from three small layers of its own):

# %%
check_registered(ListSequential)

# %% [markdown]
# **Your turn.** Complete `MySequential` so that it registers every module it is given, in order, and runs them
# one after another. Then run the cell: the check should answer **Right**.

# %%
class MySequential(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        raise NotImplementedError   # register every module of `modules`, in order

    def forward(self, X):
        raise NotImplementedError   # run the registered modules one after another


check_registered(MySequential)


# %% [markdown]
# ## 6.2 Two networks side by side
#
# A *parallel* module gives the same input to two networks and puts their outputs side by side: for outputs of
# shapes `(N, 3)` and `(N, 5)` the result has shape `(N, 8)`. Networks with several branches, such as Inception
# blocks, are built from modules like this. A first attempt that combines the two outputs by adding them:

# %%
class AddBranches(nn.Module):
    def __init__(self, net1, net2):
        super().__init__()
        self.net1 = net1
        self.net2 = net2

    def forward(self, X):
        return self.net1(X) + self.net2(X)


both = AddBranches(nn.LazyLinear(3), nn.LazyLinear(5))
try:
    both(X)
except ValueError as error:
    print(error)

# %% [markdown]
# With 3 and 5 outputs the sum fails at once. With two branches of the same width it would run, and be wrong
# without any error. The check tries both cases:

# %%
check_parallel(AddBranches)

# %% [markdown]
# **Your turn.** `Parallel(net1, net2)` should register both networks and return their outputs side by side.
# `dm.cat` and the `dim` argument are the tools; `summary(Parallel(...), X)` helps you see what you built.

# %%
class Parallel(nn.Module):
    def __init__(self, net1, net2):
        super().__init__()
        raise NotImplementedError   # keep both networks as registered children

    def forward(self, X):
        raise NotImplementedError   # run both on X, return one tensor with both outputs side by side


check_parallel(Parallel)


# %% [markdown]
# ## 6.3 A factory of fresh blocks
#
# Deep networks repeat one block design many times. A *factory* function builds them: `make_blocks(make_block,
# n)` calls `make_block()` to get blocks and returns one module that runs `n` of them one after another. Here
# each block is a `Linear(8, 8)` followed by a ReLU. This attempt calls `make_block()` once and repeats what it
# got:

# %%
def make_block():
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU())


def make_blocks_repeated(make_block, n):
    block = make_block()
    return nn.Sequential(*[block] * n)


deep = make_blocks_repeated(make_block, 3)
print(deep(dm.rand(2, 8)).shape)
print(f'unique parameters: {count(deep)}; three independent blocks would have {3 * count(make_block())}')
print('positions 0 and 2 are the same layer:', deep[0][0] is deep[2][0])

# %% [markdown]
# It runs and has the right shape, but the three positions are one block: a single set of 72 parameters used
# three times. Training would move all three together, so the network is as expressive as one block applied
# three times, not three blocks. Nothing warns you. `summary` counts the repeats and flags them:

# %%
print(summary(deep, dm.rand(2, 8)))

# %%
check_factory(make_blocks_repeated)

# %% [markdown]
# Sometimes a tie is what you want: lesson 2 shares one layer on purpose. A tie you did not mean is a bug.
#
# **Your turn.** Write `make_blocks(make_block, n)` so that every position gets a block of its own. It must work
# for any `n`, and the check calls it with its own `make_block`.

# %%
def make_blocks(make_block, n):
    raise NotImplementedError   # n blocks with weights of their own, run one after another


check_factory(make_blocks)

# %% [markdown]
# ## Summary
#
# - A module registers a child only through attribute assignment or `add_module` (or a registering container
#   such as `nn.ModuleList`). Modules in a plain list, tuple or dict still compute, but nothing that walks the
#   tree sees them: no parameters, no `state_dict`, no `to()`, nothing for the optimizer.
# - A parallel module is an ordinary `forward`: run each branch on the same input and join the results along
#   the feature dimension.
# - A factory must *call* the constructor once per position. Repeating one instance ties all positions to one
#   set of weights; `summary` shows it as *repeated*, and the unique parameter count is the giveaway.
# - The checks in `d2lmod.widgets.exercises` run your code and say what is right or wrong in one sentence;
#   their source shows exactly what they test, if you want to know.
#
# ## More exercises
#
# These have no automatic check; the earlier lessons have the tools to answer them.
#
# 1. **Parameters by name.** Without `state_dict()`, write `get_parameter(model, 'net.2.weight')` that follows
#    the dotted name through the attributes of `NestMLP` (lesson 1). What should it do with a name that does not
#    exist? Compare with `dict(model.named_parameters())`.
# 2. **A shared layer in training.** Build `nn.Sequential(shared, nn.ReLU(), shared)` with
#    `shared = nn.Linear(8, 8)`, train it for a few steps, and show with an untied twin that the shared
#    weight's gradient is the sum of the two uses' gradients (lesson 2). What does `GradFlow` show?
# 3. **Lazy sizes.** For `nn.Sequential(nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(4))`, list what you can
#    know before the first call (number of layers, output sizes, parameter shapes, parameter counts) and what
#    only after. Then call it on inputs with 20 and later with 30 features: what happens the second time, and
#    does the message say what to do (lesson 3)?
# 4. **Reusing layers from a file.** Save the `state_dict` of a trained digits network from lesson 4, load its
#    first layer into a new, deeper network, freeze it, and train only the rest (lesson 3). Is it faster to
#    reach 90 % test accuracy than from scratch?
# 5. **A parallel module for any number of branches.** Generalise `Parallel` to `Parallel(*nets)`. Which
#    container keeps an arbitrary number of registered children? Test it with `check_parallel` (two branches)
#    and with `summary` (three).
# 6. **Plain tensors.** `FixedHiddenMLP` keeps `rand_weight` as a plain attribute. Which of `parameters()`,
#    `state_dict()`, `to(dm.float64)` and `GradFlow` see it? Make it a buffer with `register_buffer` and
#    answer again.
