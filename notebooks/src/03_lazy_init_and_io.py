"""Lesson 3: lazy initialization and file I/O. Build with `python notebooks/src/build.py 03_lazy_init_and_io.py`."""

# %% [markdown]
# # 3. Lazy initialization and file I/O
#
# So far every layer was a `LazyLinear`, and we never said how many inputs it has. This lesson looks at what
# such a layer knows before and after its first call, and then at moving a model's numbers to a file and back:
# to keep a trained model, to restart from it, or to start a new model from its first layers.
#
# **After this lesson you can**
#
# - say what a lazy layer knows before its first call (its output size) and what it learns on it (its input
#   size, hence its weight shape and values);
# - explain why an optimizer can be created before that first call;
# - read the error when an input does not fit a layer that is already initialized;
# - save and load tensors, lists and dictionaries of tensors, and whole state dicts;
# - reuse the first layers of a trained network in a new one, and freeze them;
# - read what `load_state_dict` reports when a checkpoint does not match the model.

# %%
import os

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import ModuleTree, summary

dm.manual_seed(0)
X = dm.rand(2, 20)

# %% [markdown]
# ## 3.1 Before the first call
#
# A lazy layer is told only its number of outputs. Until it sees data, its weight and bias are placeholders:
# they print as `<UninitializedParameter>`, with no shape and no values, and the layer reports
# `in_features=0`, PyTorch's way of saying "not known yet".

# %%
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
print(net)
print(net[0].weight)
print(net[0].bias)

# %% [markdown]
# Even the bias, whose length will simply be the number of outputs, waits: the layer creates all its tensors
# at once on the first call, and the bias's starting values depend on the input size as well. Anything that
# needs the numbers has to wait, counting them included:

# %%
try:
    sum(p.numel() for p in net.parameters())
except Exception as error:   # show the message instead of stopping the notebook
    print(f'{type(error).__name__}: {error}')

# %% [markdown]
# `summary` without an input shows the unknown sizes as `?` instead of failing:

# %%
print(summary(net))

# %% [markdown]
# The tree widget of the same, still lazy, model:

# %% tags=["nbval-ignore-output"]
ModuleTree(net)

# %% [markdown]
# ## 3.2 The first call fixes the sizes
#
# On its first call, each lazy layer reads the last dimension of its input, creates its weight with that many
# columns and initializes it. The second layer learns its size from the first layer's output, so one call
# settles the whole chain. Its job done, each layer then turns into a plain `Linear`: `print` shows the class
# `Linear`, and `type(layer) == nn.Linear` holds, exactly as with PyTorch's lazy layers.

# %%
net(X)
print(net)
print(type(net[0]) == nn.Linear)
for name, p in net.named_parameters():
    print(f'{name:10s}{p.shape}')

# %%
print(summary(net, X))

# %% [markdown]
# Once set, the sizes stay. An input with another number of features is now an error, and the message names
# the layer by its path in the model:

# %%
try:
    net(dm.rand(2, 30))
except Exception as error:   # show the message instead of stopping the notebook
    print(f'{type(error).__name__}: {error}')

# %% [markdown]
# ## 3.3 An optimizer can come first
#
# The first call does not replace the parameter objects; it fills in the ones that were there from the start.
# So an optimizer built from the lazy model holds the very tensors that get their values later, and trains
# them:

# %%
dm.manual_seed(0)
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
optimizer = dm.optim.SGD(net.parameters(), lr=0.1)
first = optimizer.params[0]
print('before:', first)

net(X)
print('after: ', first is net[0].weight, first.shape)

# %% [markdown]
# ## 3.4 Saving and loading tensors
#
# `dm.save(obj, path)` writes a tensor, a list of tensors or a dictionary of tensors; `dm.load(path)` gives it
# back with the same structure. The file is NumPy's `.npz` format, which holds arrays only, so loading a file
# can never run code hidden in it.

# %%
x = dm.tensor([0.0, 1.0, 2.0, 3.0])
dm.save(x, 'lesson03-x')
print(dm.load('lesson03-x'))

dm.save([x, 2 * x], 'lesson03-xs')
a, b = dm.load('lesson03-xs')
print(a, b)

dm.save({'x': x, 'y': x + 1}, 'lesson03-dict')
print(dict(dm.load('lesson03-dict')))


# %% [markdown]
# ## 3.5 Saving a model: its state dict
#
# The model's code says how to compute; its `state_dict()` holds the numbers. To keep a trained model you save
# the numbers, and to get it back you build the model again from the code and load the numbers into it.
#
# First something worth saving: the MLP from lesson 1, trained for a moment to sort 20-feature points into 10
# classes given by a random linear "teacher".

# %%
class MLP(nn.Module):
    def __init__(self, hidden=256, outputs=10):
        super().__init__()
        self.hidden = nn.LazyLinear(hidden)
        self.out = nn.LazyLinear(outputs)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))


dm.manual_seed(0)
features = dm.randn(200, 20)
labels = (features @ dm.randn(20, 10)).argmax(dim=1)   # the teacher's class for each point


def accuracy(model, labels):
    return (model(features).argmax(dim=1) == labels).float().mean().item()


def fit(model, optimizer, labels, steps=61):
    """Train model on all of `features` at once; print the loss every 20 steps, then the accuracy."""
    for step in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(features), labels)
        loss.backward()
        optimizer.step()
        if step % 20 == 0:
            print(f'step {step:2d}: loss {loss.item():.4f}')
    print(f'accuracy {accuracy(model, labels):.3f}')


mlp = MLP()
optimizer = dm.optim.SGD(mlp.parameters(), lr=0.5)
fit(mlp, optimizer, labels)

# %% [markdown]
# Save the state dict, build a **fresh, lazy** `MLP` and load the file into it. Loading needs no first call:
# the file has the shapes, so the lazy layers take their weights from there (PyTorch's lazy layers do the
# same). The layers still print as `LazyLinear` with `in_features=0`, though: only a call turns a lazy layer
# into a `Linear`, and the first one, below, does.

# %%
dm.save(mlp.state_dict(), 'lesson03-mlp.params')

clone = MLP()
print(clone.load_state_dict(dm.load('lesson03-mlp.params')))
print(clone)
print('loaded weight:', clone.hidden.weight.shape)
print('same outputs:', bool((clone(features) == mlp(features)).all()))
print(clone)

# %% [markdown]
# ## 3.6 What a state dict does not hold
#
# Only registered tensors are saved. `FixedHiddenMLP` from lesson 1 keeps its random `rand_weight` as a plain
# attribute, so a reloaded copy gets the saved `linear` but its **own** `rand_weight`, and computes something
# else. Registering it as a buffer (lesson 2) puts it in the file.

# %%
class FixedHiddenMLP(nn.Module):
    def __init__(self, as_buffer=False):
        super().__init__()
        if as_buffer:
            self.register_buffer('rand_weight', dm.rand(20, 20))
        else:
            self.rand_weight = dm.rand(20, 20)
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


for as_buffer in (False, True):
    original = FixedHiddenMLP(as_buffer)
    original(X)
    dm.save(original.state_dict(), 'lesson03-fixed.params')
    copy = FixedHiddenMLP(as_buffer)
    copy.load_state_dict(dm.load('lesson03-fixed.params'))
    print(f'as_buffer={as_buffer!s:5}  saved keys {list(copy.state_dict())}  same output: '
          f'{copy(X).item() == original(X).item()}')

# %% [markdown]
# ## 3.7 Reusing the first layers in a new network
#
# A trained hidden layer has learned features of the input that other tasks may use too. Take a new task on the
# same points (3 classes from another teacher) and a new model whose first layer has the same name and shape as
# the trained one, with a new output layer `head`:

# %%
class Transfer(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.LazyLinear(256)   # same name and size as MLP.hidden: its keys will match
        self.head = nn.LazyLinear(3)       # new

    def forward(self, X):
        return self.head(F.relu(self.hidden(X)))


new_labels = (features @ dm.randn(20, 3)).argmax(dim=1)
new = Transfer()

# %% [markdown]
# `strict=False` loads the keys that match and returns the ones that did not, so you can check that only what
# you expected was left out:

# %%
result = new.load_state_dict(dm.load('lesson03-mlp.params'), strict=False)
print('missing:   ', result.missing_keys)
print('unexpected:', result.unexpected_keys)
print('hidden copied:', bool((new.hidden.weight == mlp.hidden.weight).all()))
print('head:', new.head.weight)

# %% [markdown]
# Freeze the copied layer with `requires_grad_(False)` so that only the head trains. `summary` now counts the
# hidden layer as non-trainable:

# %%
new.hidden.requires_grad_(False)
print(summary(new, features))

# %%
optimizer = dm.optim.SGD(new.head.parameters(), lr=0.5)
fit(new, optimizer, new_labels)
print('hidden unchanged:', bool((new.hidden.weight == mlp.hidden.weight).all()))

# %% [markdown]
# If the names differ (say the new model is a `Sequential`, whose first layer is called `0`), rename the keys
# before loading: `{k.replace('hidden.', '0.'): v for k, v in saved.items() if k.startswith('hidden.')}`.
#
# ## 3.8 When the checkpoint does not match
#
# `load_state_dict` compares the file with the model before copying anything. If something does not fit, it
# copies nothing and lists every problem in one error, one problem per line (the layout of PyTorch's message),
# and ends with how to fix it.

# %%
saved = dm.load('lesson03-mlp.params')


def try_load(model, state, **kwargs):
    try:
        print(model.load_state_dict(state, **kwargs))
    except Exception as error:   # show the message instead of stopping the notebook
        print(f'{type(error).__name__}: {error}'.expandtabs(4))


# %% [markdown]
# The same layers under other names: a `Sequential` calls them `0` and `2`, the `MLP` `hidden` and `out`.

# %%
try_load(nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10)), saved)

# %% [markdown]
# The same names with other sizes: 128 hidden units instead of 256. A lazy model that never ran has no sizes to
# disagree with, so it would simply take the file's (as in section 3.5). Once it has run, its sizes are fixed
# and the file has to match them:

# %%
try_load(MLP(hidden=128), saved)   # never ran: takes the file's sizes, 256 hidden units included

small = MLP(hidden=128)
small(features)                    # now hidden is a Linear(20, 128)
try_load(small, saved)

# %% [markdown]
# `strict=False` forgives missing and unexpected keys, never a wrong shape:

# %%
five = MLP(outputs=5)
five(features)
try_load(five, saved, strict=False)

# %% [markdown]
# Finally, remove the files this notebook wrote:

# %%
for name in ['lesson03-x', 'lesson03-xs', 'lesson03-dict', 'lesson03-mlp.params', 'lesson03-fixed.params']:
    os.remove(name)
print('removed')

# %% [markdown]
# ## Summary
#
# - A lazy layer knows its output size from the start and learns its input size on its first call; until then
#   its weight has no values (`in_features=0`), and counting or initializing it is an error. `summary` shows
#   the unknown sizes as `?`. After the call the layer is an ordinary `Linear`.
# - The first call fills in the existing parameter objects, so an optimizer made before it still works.
# - After the first call the sizes are fixed; a wrong input size is an error that names the layer.
# - `dm.save` / `dm.load` store tensors, lists and dicts of tensors. A model is saved as its `state_dict()` and
#   restored by building the model in code and calling `load_state_dict`, which also works on a lazy model
#   that never ran: it takes the file's sizes.
# - Only parameters and buffers are in the state dict; a plain tensor attribute is not saved.
# - `load_state_dict(..., strict=False)` loads the matching keys and returns the rest: the way to start a new
#   model from some layers of a trained one. A shape mismatch with a model that has its sizes is always an
#   error, and nothing is loaded.
#
# ## Exercises
#
# 1. Before the first call, which of these work on `nn.Sequential(nn.LazyLinear(256), nn.ReLU(),
#    nn.LazyLinear(10))`: `print(net)`, `net.state_dict()`, `dm.save(net.state_dict(), ...)`,
#    `nn.init.zeros_(net[0].bias)`, `net.to(dm.float64)`? Predict, then try. Which messages tell you what to do?
# 2. Call a fresh lazy net on an input with 30 features, then load the 20-feature checkpoint of section 3.5 into
#    it. What is reported?
# 3. Save the chimera of lesson 1 and load it into a fresh chimera. Is the output the same? Fix it.
# 4. In section 3.7, train `Transfer` from scratch (no copied layer, nothing frozen) for the same number of
#    steps and compare the losses. Then unfreeze the hidden layer after the head has trained and continue.
# 5. Write `load_first_layers(new_model, path, prefix)` that loads only the keys starting with `prefix`, and
#    raises if **none** of them matched (the silent failure `strict=False` allows).
