"""Lesson 5: inside the engine. Build with `python notebooks/src/build.py 05_inside_the_engine.py`."""

# %% [markdown]
# # 5. Inside the engine
#
# Every lesson so far called `loss.backward()` and found gradients in `.grad`. This lesson opens the box. The
# whole of d2lmod's autograd is two short files, `d2lmod/tensor.py` and `d2lmod/ops.py`, and we read the
# important parts here, straight from the installed source: what you see below is the code that runs.
#
# **After this lesson you can**
#
# - say what a tensor keeps besides its numbers, and which line of d2lmod puts it there;
# - read an operation's forward computation and its backward rule, and write a new operation yourself;
# - follow `backward()`: the order it visits the graph in, the chain rule at each node, the sum for a
#   tensor used twice, and the undoing of broadcasting;
# - explain why changing a tensor in place can make `backward()` refuse, and why a second `backward()` needs
#   `retain_graph=True`;
# - draw the graph of an expression and of a loop whose length depends on the data;
# - check any backward rule against finite differences, and catch a wrong one.

# %%
import inspect
from collections import Counter

import numpy as np

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.tensor import Tensor, _check_saved, unbroadcast
from d2lmod.widgets import GraphView

dm.manual_seed(0)


def show(obj):
    """Print the source code of a function, method or class, as it is in the installed d2lmod."""
    print(inspect.getsource(obj))


# %% [markdown]
# ## 5.1 A tensor remembers how it was made
#
# Two numbers that we want gradients for, and a small expression of them:

# %%
a = dm.tensor(2.0, requires_grad=True)
b = dm.tensor(0.5, requires_grad=True)
c = a * b + a
print(c)

# %% [markdown]
# `grad_fn=<add>` says that `c` was made by an addition. Besides its numbers (`._data`, a NumPy array; the
# public `.data` is a tensor sharing those numbers, cut from the graph) a tensor holds four things about its
# history:
#
# | field | what it holds |
# |---|---|
# | `_op` | the name of the operation that made it (`''` for a tensor you created yourself: a *leaf*) |
# | `_parents` | the tensors it was computed from, in order, as a tuple |
# | `_backward` | a function: given the gradient of the output, return the gradient for each parent |
# | `requires_grad` | whether any gradient has to flow through it |

# %%
def describe(t, name):
    parents = ', '.join(p._op or 'leaf' for p in t._parents)
    print(f'{name}: _data={t._data}, _op={t._op or "(leaf)"!r}, parents=({parents}), '
          f'requires_grad={t.requires_grad}')


describe(c, 'c')
describe(c._parents[0], 'c._parents[0]')
describe(a, 'a')
print('c._parents[1] is a:', c._parents[1] is a)

# %% [markdown]
# So `c` is the root of a small graph: an `add` whose first parent is a `mul` of `a` and `b`, and whose second
# parent is `a` itself. `a` is used twice; remember that for later.
#
# ## 5.2 Where the record is made: an operation and its backward rule
#
# `a * b` calls `Tensor.__mul__`, which is simply the function `mul` from `d2lmod/ops.py`:

# %%
print(Tensor.__mul__ is dm.ops.mul)
show(dm.ops.mul)

# %% [markdown]
# Three steps, and every operation in `ops.py` has the same shape:
#
# 1. `lift` turns a plain number (as in `x * 2`) into a constant tensor;
# 2. the forward value is computed with NumPy on the arrays;
# 3. `result(value, parents, name, rule)` wraps it in a new tensor and stores the parents and the backward
#    rule. The rule is a `lambda` written right there: for $y = ab$, $\partial y/\partial a = b$ and
#    $\partial y/\partial b = a$, so an incoming gradient `g` becomes `g * b` for `a` and `g * a` for `b`
#    (each computed only if that input needs a gradient: in `x * 2`, nothing goes back to the 2).
#
# The rule *captures* the arrays `ad` and `bd`: it will read the inputs' values later, during `backward`. The
# last argument of `result` says which inputs those are (the rule for `a` reads `b`, the rule for `b` reads
# `a`); section 5.6 shows why the engine wants to know. `result` is `Tensor._result`:

# %%
show(Tensor._result)

# %% [markdown]
# The output requires a gradient only if some parent does, and only while recording is switched on; otherwise
# parents and rule are dropped at once, and nothing is kept alive. That is all `dm.no_grad()` does: it turns
# the switch off for a block. (`_made_at` reads a clock of in-place updates, for the case of section 5.5, where
# a parent changes after it was used.)

# %%
with dm.no_grad():
    d = a * b
describe(d, 'd (made under no_grad)')
describe(a * b, 'a * b')

# %% [markdown]
# A rule is an ordinary function, so we can call it ourselves. The `mul` node inside `c`, given an incoming
# gradient of 1, sends back `b` to its first parent and `a` to its second:

# %%
mul_node = c._parents[0]
grad_a, grad_b = mul_node._backward(np.array(1.0))
print('to a:', float(grad_a), '  to b:', float(grad_b))

# %% [markdown]
# ## 5.3 `backward()`: visit every node once, in the right order
#
# To send gradients back, a node must have received **all** of its gradient before it passes any on: `a` gets
# one part through the `mul` and one directly from the `add`. So `backward` first sorts the computed tensors
# so that each comes after the tensors it was computed from (a *topological order*), and then walks that list
# from the end. The leaves need no place in it: they pass nothing on, so they are served last. The sort is a
# depth-first search with an explicit stack instead of recursion, so a graph thousands of operations deep
# cannot hit Python's recursion limit:

# %%
show(Tensor._topological_order)

# %% [markdown]
# Each entry is a tensor with its inputs. (`_inputs()` gives the `_parents`; the two differ only for a parent
# that was changed in place later, as in section 5.5.) For `c`, the order is:

# %%
print([(t._op, [p._op or ('a' if p is a else 'b') for p in inputs]) for t, inputs in c._topological_order()])

# %% [markdown]
# And `backward` itself. `grads` maps each tensor reached so far to the gradient collected for it. For each
# computed tensor, from the output down, it calls the tensor's rule and hands each parent its share. When a
# parent already has a share from another path, the two are **added**: that is the chain rule for a tensor used
# more than once. What is left in `grads` at the end belongs to the leaves, and each stores it in `.grad`
# (adding to any gradient already there). The lines about `uses` and `_grad_parts` only remember which module
# call sent which share, so that `GradFlow` can show a shared parameter's gradient split by call; `kept` makes
# sure that no two leaves end up sharing one array. Neither changes a gradient. The lines about `saved` check,
# before a rule runs, that the values it kept are still the ones it saw, and free them once the rule has run;
# section 5.6 is about both.

# %%
show(Tensor.backward)

# %% [markdown]
# By hand, $c = ab + a$ gives $\partial c/\partial a = b + 1 = 1.5$ and $\partial c/\partial b = a = 2$:

# %%
c.backward()
print('a.grad =', a.grad.item(), '  b.grad =', b.grad.item())

# %% [markdown]
# `.grad` is **added to**, never overwritten, which is why a training loop calls `zero_grad()` before every
# `backward()`. To see it, run backward through a fresh graph twice. The first call says
# `retain_graph=True`: normally `backward` frees the values the rules kept (section 5.6), and a second call
# through the same `mul` would be refused.

# %%
c = a * b + a
a.grad = b.grad = None   # what zero_grad() does for every parameter
c.backward(retain_graph=True)
c.backward()
print('after two backward calls: a.grad =', a.grad.item())
a.grad = b.grad = None

# %% [markdown]
# ## 5.4 Broadcasting, undone
#
# A bias of shape `(3,)` added to a batch of shape `(2, 3)` is *broadcast*: the same three numbers are used in
# both rows. Each use sends a gradient back, so the bias must receive their sum. Every rule in `ops.py`
# returns a gradient the shape of the **output**; `backward` passes it through `unbroadcast`, which sums it
# down to the parent's shape:

# %%
show(unbroadcast)

# %%
g = np.arange(6.0).reshape(2, 3)         # a gradient of shape (2, 3)
print(g)
print('summed to (3,):  ', unbroadcast(g, (3,)))
print('summed to (2, 1):', unbroadcast(g, (2, 1)).tolist())

# %%
X = dm.ones(2, 3)
bias = dm.tensor([0.1, 0.2, 0.3], requires_grad=True)
(X + bias).sum().backward()
print(bias.grad)   # each bias number was used in 2 rows

# %% [markdown]
# ## 5.5 The graph, drawn
#
# `GraphView` draws the graph of a tensor: one box per operation, the leaves at the top, the output at the
# bottom. It cannot know your variable names, so it numbers the inputs; in `c = a * b + a`, `a` is the input
# with two arrows, one for each use:

# %% tags=["nbval-ignore-output"]
c = a * b + a
GraphView(c)

# %% [markdown]
# Because the graph is recorded while the code runs, plain Python control flow needs nothing special. The
# chapter's `FixedHiddenMLP` halves its activations in a `while` loop until their absolute sum is at most 1. The
# graph simply holds as many `div` operations as the loop ran, so inputs of different sizes give graphs of
# different lengths, and the gradient is divided by 2 once per halving. (`X /= 2` changes `X` in place; the
# engine keeps the value from before each update as a node of its own, so the gradient still flows through every
# step.)

# %%
class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = dm.rand(20, 20)   # constant: a plain tensor attribute, not a parameter
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)                   # the same layer again
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


fixed = FixedHiddenMLP()
X = dm.rand(2, 20)
for scale in [1, 10, 100]:
    out = fixed(X * scale)
    ops = Counter(t._op for t, _ in out._topological_order())
    print(f'input x {scale:>3}: {ops["div"]:>2} halvings, {sum(ops.values())} operations in the graph')

# %% [markdown]
# Opening the graph of one call: the two calls of `linear` sit in two boxes that share one weight, and the
# halvings are folded into a single node marked with their count.

# %% tags=["nbval-ignore-output"]
GraphView(fixed(X * 100), model=fixed)

# %% [markdown]
# ## 5.6 In-place updates, version counters, and a graph used once
#
# `X /= 2` writes the new numbers into the memory `X` already has, as PyTorch does, so everything that shares
# that memory (a view such as `X[0]`, or `X.detach()`) sees the change. That is fast and often what you want,
# but it is dangerous for autograd: a rule that captured `X`'s array would read the *new* numbers during
# `backward`, and quietly compute a wrong gradient.
#
# The engine guards against that with one integer per tensor, its **version**: every in-place write adds 1 (a
# view shares its counter with the tensor it views). When an op records its rule, `_result` also notes the
# version of each value the rule will read, in `_saved`. Before `backward` runs a rule, it compares:

# %%
show(_check_saved)

# %% [markdown]
# `exp` keeps its output ($\frac{d}{da} e^a = e^a$), so changing that output in place makes its rule refuse,
# exactly as PyTorch's does:

# %%
w = dm.tensor([0.0, 1.0], requires_grad=True)
y = w.exp()
print('version of y before:', y._version)
y += 1                    # writes into y's memory: the e^a that exp's rule wanted is gone
print('version of y after: ', y._version)
try:
    y.sum().backward()
except RuntimeError as error:
    print('RuntimeError:', str(error)[:120], '...')

# %% [markdown]
# When no rule needs the old numbers, an in-place update is fine, and the history stays right: `z = x * 2`
# keeps only the 2, so `x *= 3` afterwards does not disturb it. The tensor `x` takes a new history (a `mul` of
# its old self and 3), and its old self lives on as a node of its own (`x._before`) that keeps the old history,
# so that `z`'s gradient still flows through it. (Its numbers are gone, overwritten; only when the update's own
# rule needs them, as `x *= w` does for `w`'s gradient, does the node keep a copy.)

# %%
w.grad = None
x = w * 1
z = x * 2
x *= 3
print('x is now made by:', x._op, '  its old self was made by:', x._before._op)
(z.sum() + x.sum()).backward()
print('w.grad =', w.grad, ' (2 through z, 3 through x)')

# %% [markdown]
# Two more rules, both PyTorch's. A **leaf that requires grad** (a parameter) may not be changed in place while
# recording: its `.grad` would no longer belong to the values it holds. Optimizers and `nn.init` change
# parameters under `dm.no_grad()`, which is the one place where that is allowed. And `backward` **frees** what
# each rule kept as soon as the rule has run (see `backward` above), so the memory of a training step
# goes as soon as the step is done; a second `backward` through the same graph then fails unless the first was
# told `retain_graph=True`. An op that keeps nothing (an `add`) can be run through again, in PyTorch too.
#
# PyTorch keeps the history in separate node objects (`grad_fn`), one per op; in d2lmod the tensor itself is the
# node, which makes the graph easy to print and draw. The price is the extra node an in-place update leaves
# behind, and the `_before` link that leads to it.

# %% [markdown]
# ## 5.7 Checking a backward rule
#
# A wrong backward rule does not crash: it quietly returns wrong gradients, and the model trains badly or not
# at all. The cure is to compare it with what the definition of a derivative says. Nudge one input number by a
# small $\varepsilon$ in each direction and see how much the output moves:
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}.$$
#
# This *central difference* is accurate to about $\varepsilon^2$, but it subtracts two nearly equal numbers, so
# we do it in float64: with float32's seven significant digits the difference would be mostly rounding noise.

# %%
def numerical_grad(f, t, eps=1e-6):
    """df/dt by central differences: f() computes a one-element tensor from t (and other fixed tensors)."""
    values = t.detach().numpy()           # a NumPy array sharing t's memory: writing to it changes t
    grad = np.zeros_like(values)
    with dm.no_grad():                    # only the values are needed here
        for i in np.ndindex(t.shape):
            old = values[i]
            values[i] = old + eps
            up = f().item()
            values[i] = old - eps
            down = f().item()
            values[i] = old               # put the number back
            grad[i] = (up - down) / (2 * eps)
    return grad


# %% [markdown]
# A small network in float64, a cross-entropy loss on five examples, and every parameter checked:

# %%
small = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
Xs = dm.randn(5, 4, dtype=dm.float64)
ys = np.array([0, 1, 1, 0, 1])


def loss_fn():
    return F.cross_entropy(small(Xs), ys)


loss_fn().backward()
for name, p in small.named_parameters():
    error = np.abs(p.grad.numpy() - numerical_grad(loss_fn, p)).max() / np.abs(p.grad.numpy()).max()
    print(f'{name:9s} shape {str(p.shape):7s} relative error below 1e-6: {error < 1e-6}')
print('first layer bias, backward  :', small[0].bias.grad.numpy().round(4))
print('first layer bias, numerical :', numerical_grad(loss_fn, small[0].bias).round(4))

# %% [markdown]
# Now a new operation with a deliberate mistake. The sigmoid's derivative is $\sigma(1 - \sigma)$; this one
# forgets the $(1 - \sigma)$. It uses `Tensor._result` just like the operations in `ops.py`:

# %%
def sigmoid_wrong(a):
    s = 1 / (1 + np.exp(-a._data))
    return Tensor._result(s, (a,), 'sigmoid_wrong', lambda g: (g * s,))   # should be g * s * (1 - s)


x = dm.tensor([-2.0, 0.0, 1.5], dtype=dm.float64, requires_grad=True)
sigmoid_wrong(x).sum().backward()
print('backward  :', x.grad.numpy().round(4))
print('numerical :', numerical_grad(lambda: sigmoid_wrong(x).sum(), x).round(4))

# %% [markdown]
# The forward values are right, so the model would run; only the check gives the mistake away. With the rule
# fixed, the two agree:

# %%
def sigmoid_right(a):
    s = 1 / (1 + np.exp(-a._data))
    return Tensor._result(s, (a,), 'sigmoid_right', lambda g: (g * s * (1 - s),), (None,))  # it reads its output


x.grad = None
sigmoid_right(x).sum().backward()
print('backward  :', x.grad.numpy().round(4))
print('numerical :', numerical_grad(lambda: sigmoid_right(x).sum(), x).round(4))

# %% [markdown]
# d2lmod's own tests (`tests/test_gradcheck.py`) run this check on every operation, with broadcast shapes and
# with inputs used twice (`x * x`), which is where wrong rules most often hide.
#
# ## Summary
#
# - A tensor made by an operation keeps its parents, the operation's name and a backward rule; a leaf keeps
#   none. `Tensor._result` records them only when a gradient is needed and recording is on (`no_grad` is off).
# - Each operation in `ops.py` is a NumPy forward computation plus a one-line rule that maps the output's
#   gradient to one gradient per input.
# - `backward()` sorts the graph (parents before children, no recursion), walks it from the output, applies each
#   rule, **adds** the shares of a tensor used twice, sums broadcast gradients down with `unbroadcast`, and
#   **adds** the result into each leaf's `.grad`.
# - The graph is recorded as the code runs, so loops and branches in `forward` are simply part of it.
# - In-place updates write into shared memory and bump the tensor's version; a rule whose kept values changed
#   since refuses to run, and `backward` frees kept values afterwards (`retain_graph=True` keeps them).
# - Check a backward rule with central differences in float64; a wrong rule trains silently badly.
#
# ## Exercises
#
# 1. Write `softplus(a)` $= \log(1 + e^a)$ as a new operation with `Tensor._result` and its backward rule (its
#    derivative is the sigmoid), and check it with `numerical_grad`.
# 2. Build a chain of 5,000 additions, `y = x` then `y = y + 1` in a loop, and call `y.backward()`. Why would a
#    recursive topological sort fail here? Try `sys.getrecursionlimit()`.
# 3. Find `matmul` in `d2lmod/ops.py`. Check by the shapes alone that `g @ b.T` and `a.T @ g` are the only
#    products that can give gradients of the shapes of `a` and `b`.
# 4. Run `numerical_grad` on `small` in float32 (leave out `.double()` and the `dtype`). How large does the
#    relative error get, and which $\varepsilon$ works best?
# 5. `y = w * w; w.data.add_(1)` does not fail at `backward`, but `y = w * w` followed by `with dm.no_grad():
#    w += 1` does. Which version counter does each one bump, and which gradient is wrong in the first case?
#    (PyTorch behaves the same: this is why `.data` is risky and `no_grad()` is the safe way.)
# 6. `GraphView(fixed(X * 0.001), model=fixed)`: how many halvings now? What is the gradient of the output with
#    respect to `fixed.linear.bias` when the loop does not run at all?
