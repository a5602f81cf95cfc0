"""Lesson 8: devices. Build with `python notebooks/src/build.py 08_devices.py`."""

# %% [markdown]
# # 8. Devices: where the numbers live
#
# Every tensor lives on a *device*: the computer's main memory, where the CPU computes, or the memory of a
# graphics card (a GPU), where the GPU computes. Large networks are trained on GPUs because a GPU does
# thousands of multiplications at once. The price is bookkeeping: the data and the model must be on the same
# device, and moving numbers from one device to another takes time.
#
# This lesson is written on, and for, a machine **without** a GPU. d2lmod computes with NumPy, so it only ever
# computes on the CPU; it spells devices exactly as PyTorch does, so the code below is the code you would
# write for a GPU, and it runs here by falling back to the CPU. Where a GPU would change what you see, the
# text says what and why.
#
# **After this lesson you can**
#
# - name a device (`dm.device('cpu')`, `dm.device('cuda:0')`), ask how many GPUs there are, and write
#   `try_gpu()`, which falls back to the CPU;
# - find out where a tensor and a model live, create tensors on a device, and move a model with `net.to(device)`;
# - state the same-device rule and recognise the error that breaks it;
# - say what costs what: copying between devices, many small copies against one big one, and what is measured
#   here versus what changes on a GPU.

# %%
import time

import numpy as np

import d2lmod as dm
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import GradFlow, summary
from d2lmod.widgets.figures import plot

dm.manual_seed(0)

# %% [markdown]
# ## 8.1 Device objects
#
# A device is a small object that names a place: a type (`'cpu'` or `'cuda'`, the name PyTorch uses for
# NVIDIA GPUs) and, for GPUs, an index, because a machine may have several. Making the object does not check
# that the place exists; it is only a name.

# %%
print(dm.device('cpu'), dm.device('cuda'), dm.device('cuda:1'))
print(repr(dm.device('cuda:1')))

# %% [markdown]
# Whether there is a GPU, and how many, is a question to `dm.cuda`. On this machine the answers are no and
# zero. (In PyTorch, `torch.cuda.is_available()` is True only with an NVIDIA GPU, its driver, and a PyTorch
# built for CUDA; d2lmod, being NumPy, always answers False.)

# %%
print('GPU available:', dm.cuda.is_available())
print('number of GPUs:', dm.cuda.device_count())


# %% [markdown]
# Code that should use a GPU when there is one, and still run when there is none, asks first. These two helpers
# are worth keeping: `try_gpu(i)` returns GPU number `i` if it exists and the CPU otherwise, and
# `try_all_gpus()` lists every GPU, or just the CPU when there are none.

# %%
def try_gpu(i=0):
    """GPU i if it exists, else the CPU."""
    if dm.cuda.device_count() >= i + 1:
        return dm.device(f'cuda:{i}')
    return dm.device('cpu')


def try_all_gpus():
    """Every GPU, or [cpu] if there are none."""
    return [dm.device(f'cuda:{i}') for i in range(dm.cuda.device_count())] or [dm.device('cpu')]


print(try_gpu(), try_gpu(10), try_all_gpus())

# %% [markdown]
# Here all three answers are the CPU. On a machine with two GPUs they would be `cuda:0`, `cpu` (there is no
# GPU number 10) and a list of two devices, which prints as
# `[device(type='cuda', index=0), device(type='cuda', index=1)]`.
#
# ## 8.2 Where a tensor lives
#
# Every tensor knows its device. Tensors are created on the CPU unless you say otherwise; the factories take a
# `device=` argument to create them somewhere else directly, which saves a copy.

# %%
X = dm.ones(2, 3)
print(X.device)
Y = dm.rand(2, 3, device=try_gpu())
print(Y.device)

# %% [markdown]
# Asking for a GPU that is not there is an error, and the message says what to do. On a machine with a GPU
# the same line would create the tensor in the GPU's memory.

# %%
try:
    dm.ones(2, 3, device='cuda')
except Exception as error:
    print(f'{type(error).__name__}: {error}')

# %% [markdown]
# `.to(device)` returns the tensor on the given device. When the tensor is already there, nothing is copied:
# you get the same tensor back. Moving to a GPU would copy the numbers and give a new tensor, leaving the
# original where it was.

# %%
Z = X.to(try_gpu())
print(Z.device, 'same tensor:', Z is X)

# %% [markdown]
# ## 8.3 Moving a model
#
# A model lives where its parameters and buffers live. `net.to(device)` walks the module tree and moves every
# parameter and every buffer, in place, and returns the model, so `net = net.to(device)` and `net.to(device)`
# both work. It is the same walk that `net.to(dm.float64)` does for the number type (lesson 2), and it
# misses the same things: a plain tensor attribute, or a layer hidden in a Python list, stays where it was.

# %%
net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
net = net.to(try_gpu())
print({name: str(p.device) for name, p in net.named_parameters()})
print(summary(net, Y))

# %% [markdown]
# Once the data and the model are on the same device, everything in between stays there: the forward pass, the
# loss, the gradients that `backward` writes, and the optimizer's update. One training step, with its
# gradients drawn by `GradFlow`:

# %%
optimizer = dm.optim.SGD(net.parameters(), lr=0.1)
loss = F.mse_loss(net(Y), dm.zeros(2, 1, device=try_gpu()))
optimizer.zero_grad()
loss.backward()
optimizer.step()
print('gradient lives on:', net[0].weight.grad.device)

# %% tags=["nbval-ignore-output"]
GradFlow(net)

# %% [markdown]
# ## 8.4 The same-device rule
#
# An operation computes on one device, so all of its inputs must be on that device. Neither PyTorch nor d2lmod
# copies a tensor over for you; if a GPU tensor meets a CPU tensor, PyTorch stops with
#
# ```
# RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!
# ```
#
# The same message comes when the model is on the GPU and the batch is not, since `net(X)` multiplies the
# batch by the model's weights. The fix is always to move one side, usually the data: `net(X.to(device))`.
# The rule is strict on purpose: a silent copy would make a program slow in a way that is very hard to find.
#
# On this machine there is only one device, so the rule can never be broken here, and every tensor you can
# make is on the CPU. The error you will meet on a GPU machine comes from code that moved the model and
# forgot a tensor. Three usual suspects: the batch from the data loader, a tensor created inside `forward`
# without `device=`, and a plain tensor attribute that `net.to()` did not move. The first one, done right:

# %%
device = try_gpu()
for X_batch in [dm.rand(4, 3), dm.rand(4, 3)]:        # batches come from the CPU, as from any data loader
    X_batch = X_batch.to(device)                        # one copy per batch, before the forward pass
    print(net(X_batch).shape, net(X_batch).device)

# %% [markdown]
# And the third, with a plain tensor attribute like lesson 1's `rand_weight`: `to()` converts the registered
# parameter and leaves the plain tensor alone. We cannot move anything to a GPU here, but `to(dm.float64)` takes
# the same walk, and number types obey a rule just like devices: the inputs of a matrix product must have one
# type. So the slip shows up here exactly as it would on a GPU, only with types instead of devices:

# %%
class WithConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.constant = dm.rand(3, 3)      # plain tensor: neither a parameter nor a buffer

    def forward(self, X):
        return self.linear(X) @ self.constant


model = WithConstant().to(dm.float64)
print('parameter:', model.linear.weight.dtype, '  plain tensor:', model.constant.dtype)
try:
    model(dm.rand(2, 3).double())
except RuntimeError as error:
    print(error)

# %% [markdown]
# The message names the module, the operation, both types and a fix. On a GPU the plain tensor would stay on
# the CPU in the same way, and the first forward pass would stop with the same-device error above. `summary`
# warns about the attribute before anything runs:

# %%
print(summary(model))

# %% [markdown]
# `register_buffer('constant', ...)` fixes it: buffers move with the model (exercise 4).
#
# ## 8.5 What costs what
#
# Moving numbers is not free. A copy costs a fixed overhead per copy (starting it, and on a GPU synchronising
# with it) plus a time proportional to the bytes. We can measure the second part for the one kind of copy this
# machine has: a copy within main memory, with NumPy. The figure shows the time of one copy against its size
# (both axes are logarithmic, the horizontal one in powers of two):

# %% tags=["nbval-ignore-output"]
def best_time(fn, repeat=7):
    """Seconds per call of fn(): the fastest of repeat rounds (the least disturbed by the machine's other work).

    A round calls fn() as often as it takes to fill at least a millisecond, so even a clock as coarse as a
    browser's (in the in-browser site) measures a tiny copy.
    """
    times = []
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < 1e-3:
            fn()
            calls += 1
        times.append((time.perf_counter() - start) / calls)
    return min(times)


rng = np.random.default_rng(0)
sizes = [2 ** k for k in range(10, 25, 2)]               # 1 KiB ... 16 MiB of float32
copy_times = [best_time(rng.random(n // 4, dtype=np.float32).copy) for n in sizes]
big = rng.random(sizes[-1] // 4, dtype=np.float32)
bandwidth = big.nbytes / best_time(big.copy) / 1e9
print(f'copying 1 KiB: {copy_times[0] * 1e6:.1f} µs; 16 MiB: {copy_times[-1] * 1e3:.2f} ms, '
      f'about {bandwidth:.0f} GB/s within main memory')
plot({'copy in main memory (NumPy)': copy_times}, x=[np.log2(n) for n in sizes], log=True,
     xlabel='bytes copied (log2)', ylabel='seconds per copy', title='What one copy costs, measured here')

# %% [markdown]
# Small copies cost about the same no matter their size: the overhead dominates. Large copies cost in
# proportion to their size: the bandwidth dominates. So a few large copies beat many small ones, and that
# is true on every device.
#
# The per-copy overhead hurts most when it is paid once per number. Reading a result element by element
# (`.item()` in a loop) against reading it all at once (`.numpy()`), on this machine:

# %% tags=["nbval-ignore-output"]
v = dm.rand(10_000)
one_by_one = best_time(lambda: [v[i].item() for i in range(len(v))], repeat=3)
all_at_once = best_time(lambda: v.numpy().tolist(), repeat=3)
print(f'10,000 numbers one by one: {one_by_one * 1e3:.1f} ms; all at once: {all_at_once * 1e3:.2f} ms '
      f'({one_by_one / all_at_once:.0f} times faster)')

# %% [markdown]
# **What changes on a machine with a GPU.** These are orders of magnitude for a typical current machine, not
# measurements from this one:
#
# | what | CPU only (this machine) | with a GPU |
# |---|---|---|
# | copy within the device's memory | the bandwidth measured above | several times faster: GPU memory is built for bandwidth |
# | copy between CPU and GPU | does not exist | over the PCIe bus, usually slower than either memory, plus a fixed cost of microseconds per copy |
# | reading one number (`.item()`, `print`) | a Python call | a copy to the CPU, and a wait until the GPU has finished everything queued before it |
# | a small operation | microseconds of Python and NumPy | microseconds too: launching work on a GPU has its own fixed cost, so tiny models gain nothing |
# | a large matrix product | what BLAS does on these cores | often ten to a hundred times faster |
#
# The practical rules follow from the table: put the model on the device once; move each batch once, as one
# tensor; keep intermediate results on the device; read numbers back rarely (for example, the mean loss once
# per epoch rather than `loss.item()` every step). The models of this chapter, lesson 4's digits network
# included, are far too small to gain anything on a GPU: the gain starts with matrix products of hundreds to
# thousands of rows and columns, and with large batches.
#
# ## Summary
#
# - A device names where numbers live: `dm.device('cpu')`, `dm.device('cuda:0')`. `dm.cuda.is_available()` and
#   `dm.cuda.device_count()` say what this machine has; `try_gpu()` falls back to the CPU, so code written
#   for a GPU also runs without one.
# - `X.device` says where a tensor lives; factories take `device=`; `X.to(device)` copies, or returns `X` itself
#   when it is already there.
# - `net.to(device)` moves every parameter and buffer in place; plain tensor attributes and modules hidden in
#   lists are left behind.
# - All inputs of an operation must be on one device; nothing is copied silently.
# - A copy costs a fixed overhead plus bytes over bandwidth: few large copies, rarely reading numbers back.
#
# ## Exercises
#
# 1. **`try_gpu` for any machine.** Lesson 6 checks your own `try_gpu` and `try_all_gpus` by pretending the
#    machine has zero, one and two GPUs (`check_try_gpu`).
# 2. Measure how long `copy_times` grows between 1 MiB and 16 MiB. Is it proportional? From the two numbers,
#    estimate the fixed overhead and the bandwidth.
# 3. On a machine with a GPU and PyTorch: repeat the measurement of 8.5 for `x.to('cuda')` (call
#    `torch.cuda.synchronize()` before stopping the clock) and compare the bandwidth with the one above.
# 4. Make `WithConstant` keep its constant with `register_buffer`, and check with `summary` and with
#    `to(dm.float64)` that it now moves with the model.
