"""Lesson 6: exercises with checks. Build with `python notebooks/src/build.py 06_exercises.py`."""

# %% [markdown]
# # 6. Exercises, with checks
#
# The chapter ends with three exercises about building modules, and each hides a mistake that raises no
# error: the model runs, and is quietly wrong. Three more follow, one for each of lessons 7, 8 and 9. Here you
# solve them and check your answer. Each check runs your code on small layers of its own and answers in one
# sentence: **Right: ...** when it behaves as it should, or **Not yet: ...** with what is still wrong. It never
# shows the answer.
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
# - write a factory that builds fresh blocks, and spot the silent tie of one block repeated;
# - write a custom layer whose weight is a registered parameter (lesson 7), a `try_gpu` that is right on any
#   machine (lesson 8), and a residual block (lesson 9).

# %%
import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import summary
from d2lmod.widgets.exercises import (check_factory, check_parallel, check_reduction, check_registered,
                                      check_residual, check_try_gpu)

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
# ## 6.4 A layer that learns a reduction (lesson 7)
#
# `TensorReduction(in_features, out_features)` holds one weight $W$ of shape
# `(in_features, in_features, out_features)` and maps each example $x$ to $y_k = \sum_{i,j} W_{ijk}\, x_i x_j$.
# A first attempt keeps $W$ as a plain tensor:

# %%
class PlainReduction(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = dm.randn(in_features, in_features, out_features)

    def forward(self, X):
        n, d = X.shape
        XW = (X @ self.W.reshape(d, -1)).reshape(n, d, -1)   # sum over i of x_i W_ijk: (n, j, k)
        return (XW * X.reshape(n, d, 1)).sum(dim=1)           # times x_j, summed over j: (n, k)


print(PlainReduction(4, 3)(dm.rand(2, 4)).shape)
check_reduction(PlainReduction)

# %% [markdown]
# **Your turn.** Write `TensorReduction` so that $W$ is a parameter and the output is right for every example.

# %%
class TensorReduction(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        raise NotImplementedError   # one parameter W of shape (in_features, in_features, out_features)

    def forward(self, X):
        raise NotImplementedError   # y[n, k] = sum over i, j of W[i, j, k] * X[n, i] * X[n, j]


check_reduction(TensorReduction)


# %% [markdown]
# ## 6.5 The right device on any machine (lesson 8)
#
# `try_gpu(i=0)` should return GPU number `i` when the machine has it, and the CPU otherwise; `try_all_gpus()`
# every GPU, or a list with the CPU when there is none. This machine has no GPU, so a wrong answer can look
# right here. This attempt always takes the first GPU if there is any:

# %%
def try_gpu_first(i=0):
    return dm.device('cuda:0') if dm.cuda.is_available() else dm.device('cpu')


print(try_gpu_first(), try_gpu_first(1))

# %% [markdown]
# Here it prints `cpu` twice, which is right. The check pretends the machine has zero, one and two GPUs
# (it makes `dm.cuda.device_count()` and `dm.cuda.is_available()` answer accordingly while it runs):

# %%
check_try_gpu(try_gpu_first)

# %% [markdown]
# **Your turn.** Write both functions; the check tries them on the three pretended machines.

# %%
def try_gpu(i=0):
    raise NotImplementedError   # dm.device(f'cuda:{i}') if GPU i exists, else dm.device('cpu')


def try_all_gpus():
    raise NotImplementedError   # every GPU as a device, or [dm.device('cpu')]


check_try_gpu(try_gpu, try_all_gpus)


# %% [markdown]
# ## 6.6 A residual block (lesson 9)
#
# `Residual(channels, use_1x1conv=False, stride=1)` computes $\mathrm{relu}(g(X) + s(X))$: the main path $g$ is
# a 3 x 3 convolution, BatchNorm, ReLU, another 3 x 3 convolution and BatchNorm; the shortcut $s$ is $X$ itself,
# or a 1 x 1 convolution with the same stride when `use_1x1conv` is true. An attempt that puts the final
# ReLU inside the main path:

# %%
class ResidualReluFirst(nn.Module):
    def __init__(self, channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1, stride=stride)
        self.bn1 = nn.LazyBatchNorm2d()
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.bn2 = nn.LazyBatchNorm2d()
        self.shortcut = nn.LazyConv2d(channels, kernel_size=1, stride=stride) if use_1x1conv else nn.Identity()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        return Y + self.shortcut(X)


print(ResidualReluFirst(8)(dm.rand(2, 8, 6, 6)).shape)
check_residual(ResidualReluFirst)

# %% [markdown]
# **Your turn.** The check builds `Residual(4)` and `Residual(6, True, 2)`, follows the calls inside them, and
# compares each step with what it should be.

# %%
class Residual(nn.Module):
    def __init__(self, channels, use_1x1conv=False, stride=1):
        super().__init__()
        raise NotImplementedError   # two 3 x 3 convolutions, two BatchNorms, and a 1 x 1 conv if use_1x1conv

    def forward(self, X):
        raise NotImplementedError   # relu(main path + shortcut)


check_residual(Residual)

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
# - A learned tensor must be an `nn.Parameter`; a device helper must be right on machines you do not have; a
#   residual block adds its input back before the last ReLU.
# - The checks in `d2lmod.widgets.exercises` run your code and say what is right or wrong in one sentence;
#   their source shows exactly what they test, if you want to know.
#
# ## More exercises
#
# These have no automatic check; the earlier lessons have the tools to answer them.
#
# 1. **Parameters by name.** Without `state_dict()`, write `get_parameter(model, 'net.2.weight')` that follows
#    the dotted name through the attributes of `NestMLP` (lesson 1). What should it do with a name that does not
#    exist? Compare with `dict(model.named_parameters())`, and with the module's own `model.get_parameter(name)`
#    (PyTorch's method, which d2lmod has too): which exception does it raise for a wrong name?
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
