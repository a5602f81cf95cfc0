"""Lesson 4: gradient flow in training. Build with `python notebooks/src/build.py 04_gradient_flow.py`."""

# %% [markdown]
# # 4. Gradient flow in training
#
# The first three lessons built models and looked at them standing still. Here they learn. We train a small
# network on images of handwritten digits, watch the training as it happens, and then look at the one thing
# that decides whether a deep stack of layers can learn at all: how much gradient reaches its first layers.
#
# **After this lesson you can**
#
# - write the training loop (forward, loss, `zero_grad`, `backward`, `step`) and say what each line changes;
# - watch a run live with `Explorer`, and know what that costs;
# - read per-layer gradient norms, drawn as a figure and as `GradFlow` bars;
# - explain why eight sigmoid layers hardly learn while the same eight layers with ReLU do;
# - recognise a parameter that never gets a gradient, and find out why.

# %%
import numpy as np

import d2lmod as dm
from d2lmod.datasets import load_digits
from d2lmod import nn
from d2lmod.nn import functional as F
from d2lmod.widgets import Explorer, GradFlow, summary
from d2lmod.widgets.figures import plot

dm.manual_seed(0)   # every random number of d2lmod in this notebook follows from this seed

# %% [markdown]
# ## 4.1 The data: 1,797 small digits
#
# d2lmod ships a small data set of handwritten digits inside the package (the same 1,797 images that
# scikit-learn ships), so nothing is downloaded. Each image has 8 x 8 pixels with brightness 0 to 16; we flatten it into 64 numbers and divide by 16, so every
# input lies between 0 and 1. We shuffle once with a fixed seed, keep 1,500 images for training and the
# other 297 for testing.
#
# d2lmod computes in float32 unless told otherwise, which is fast and precise enough for training. In this
# lesson we use float64 instead, for the data and (with `.double()`) for every model. The reason is the
# printed numbers: training amplifies tiny rounding differences, and different processors round sums in
# slightly different orders. In float64 those differences stay far below the 4 decimals printed here, so
# your numbers will match these.

# %%
pixels, labels = load_digits()                      # (1797, 8, 8) brightness 0-16; (1797,) the digit 0-9
images = pixels.reshape(len(pixels), 64) / 16       # (1797, 64), float64

order = np.random.default_rng(0).permutation(len(images))
X_train, y_train = dm.tensor(images[order[:1500]]), labels[order[:1500]]
X_test, y_test = dm.tensor(images[order[1500:]]), labels[order[1500:]]
print('train', X_train.shape, ' test', X_test.shape)
print('images per digit in the training set:', [int((y_train == digit).sum()) for digit in range(10)])

# %% [markdown]
# The first training image, printed as its 8 x 8 brightness values (`#` bright, `+` middle, `.` faint) and its
# label:

# %%
for row in X_train[0].numpy().reshape(8, 8):
    print(' '.join('#' if v > 0.6 else '+' if v > 0.3 else '.' if v > 0 else ' ' for v in row))
print('label:', y_train[0])

# %% [markdown]
# ## 4.2 One training step, line by line
#
# A one-hidden-layer network: 64 inputs, 128 hidden units with ReLU, and 10 outputs, one score per digit.
# The loss is the cross-entropy between the scores and the true labels; it starts near $\ln 10 \approx 2.30$,
# the loss of guessing each digit with probability 1/10.

# %%
net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).double()
print(summary(net, X_train[:100]))

# %% [markdown]
# One step of training is four lines. Each changes something different:
#
# | line | what it changes |
# |---|---|
# | `loss = F.cross_entropy(net(X), y)` | nothing in the model: it computes, and records how, in the graph |
# | `optimizer.zero_grad()` | every `.grad` back to `None` (gradients **add up** otherwise) |
# | `loss.backward()` | every parameter's `.grad`, from the recorded graph |
# | `optimizer.step()` | the parameters themselves: `p -= lr * (a mix of recent gradients)` |

# %%
optimizer = dm.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
Xb, yb = X_train[:100], y_train[:100]

loss = F.cross_entropy(net(Xb), yb)
print(f'loss before the step: {loss.item():.4f}')
optimizer.zero_grad()
loss.backward()
for name, p in net.named_parameters():
    print(f'  {name:9s} shape {str(p.shape):10s} gradient norm {np.linalg.norm(p.grad.numpy()):.4f}')
optimizer.step()
print(f'loss after the step:  {F.cross_entropy(net(Xb), yb).item():.4f}')


# %% [markdown]
# ## 4.3 Training, with the Explorer watching
#
# Now the same four lines in a loop over mini-batches of 100 images: 15 steps per pass over the training set
# (an *epoch*). `train` keeps the loss of every step, so that we can draw the loss curve afterwards, and prints
# one line at the end: the last epoch's mean loss and the accuracy on the 297 test images, computed under
# `dm.no_grad()` because nothing there needs a gradient.

# %%
def batches(n, size, epoch):
    """Index arrays of a fresh shuffle of range(n) for this epoch, size at a time."""
    idx = np.random.default_rng(epoch).permutation(n)
    return [idx[i:i + size] for i in range(0, n, size)]


def accuracy(model, X, y):
    with dm.no_grad():
        return float((model(X).argmax(1).numpy() == y).mean())


def train(model, optimizer, epochs, explorer=None):
    """Mini-batch training on the digits; returns the loss of every step. explorer.update(loss) after each
    step if an explorer is given."""
    losses = []
    for epoch in range(1, epochs + 1):
        for idx in batches(len(y_train), 100, epoch):
            loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if explorer is not None:
                explorer.update(loss)       # cheap: it redraws at most every every_seconds
    if explorer is not None:
        explorer.update(force=True)         # draw the final state
    steps = len(losses) // epochs
    print(f'after {epochs} epochs: train loss {np.mean(losses[-steps:]):.4f} (mean of the last epoch), '
          f'test accuracy {accuracy(model, X_test, y_test):.4f}')
    return losses


# %% [markdown]
# The `Explorer` shows the module tree, the gradient bars and the loss curve of a model. Its buttons step
# through training by hand (forward, backward, step, zero_grad); here we let the loop drive it instead.
# `live(every_seconds=0.5)` makes `explorer.update(loss)` record every loss but redraw at most twice a
# second. That keeps watching cheap: a call that does not redraw only appends a number to a list (about a
# microsecond), while a redraw costs about as much as a few training steps of this small network (under a
# millisecond; exercise 5 measures it).
#
# This network is so small that the ten epochs below take well under a second, so you will mostly see the
# first and the final picture. With a bigger model, or more epochs, the widget moves while the loop runs.

# %% tags=["nbval-ignore-output"]
explorer = Explorer(net, Xb, loss_fn=lambda out: F.cross_entropy(out, yb)).live(every_seconds=0.5)
explorer

# %%
losses = train(net, optimizer, epochs=10, explorer=explorer)

# %% [markdown]
# The loss of every step, as a curve. Look at its shape rather than its numbers: a steep fall in the first
# epoch, then a long, slowly flattening tail. The curve is jagged because each step sees a different
# mini-batch of 100 images.

# %%
plot({'one hidden layer, ReLU': losses}, xlabel='training step (15 per epoch)', ylabel='cross-entropy loss',
     title='Training loss of the digits network')

# %% [markdown]
# About 96 % of the test digits are right after ten passes over the data. Which ones does the network still
# get wrong? The (true label, predicted label) pair of every mistake:

# %%
with dm.no_grad():
    predicted = net(X_test).argmax(1).numpy()
wrong = [(int(t), int(p)) for t, p in zip(y_test, predicted) if t != p]
print(len(wrong), 'mistakes out of', len(y_test))
print('(true, predicted):', sorted(wrong))


# %% [markdown]
# ## 4.4 Deep and narrow: sigmoid against ReLU
#
# Now a deeper network: eight hidden layers of 64 units, then the output layer. We build it twice, once with
# the sigmoid $\sigma(x) = 1/(1 + e^{-x})$ after each hidden layer and once with ReLU, and start both from the
# **same** weights, so the activation is the only difference. (The weights are drawn with `kaiming_uniform_`,
# the initialisation made for ReLU layers, and the biases start at zero.)

# %%
def deep_net(activation, depth=8, width=64):
    """depth hidden layers of width units, each followed by activation(), then 10 outputs."""
    layers, n_in = [], 64
    for _ in range(depth):
        layers += [nn.Linear(n_in, width), activation()]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, 10))


def relu_init(module):
    if isinstance(module, nn.Linear):
        nn.init.kaiming_uniform_(module.weight, nonlinearity='relu')
        nn.init.zeros_(module.bias)


sigmoid_net = deep_net(nn.Sigmoid).apply(relu_init).double()
relu_net = deep_net(nn.ReLU).double()
relu_net.load_state_dict(sigmoid_net.state_dict())   # the same starting weights in both
print(relu_net)

# %% [markdown]
# One batch forward and backward through each. The figure shows the norm of each layer's weight gradient,
# $\|\partial L / \partial W\|$, from the first layer (next to the input) on the left to the output layer on the
# right; the layers are numbered by their position in the `Sequential` (0, 2, ..., 16, with the activations in
# between). The vertical axis is logarithmic: each grid step is a factor of ten.

# %%
def weight_grad_norms(model, X, y):
    """The gradient norm of every Linear layer's weight after one forward and backward on (X, y)."""
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return [np.linalg.norm(m.weight.grad.numpy()) for m in model if isinstance(m, nn.Linear)]


sig_norms = weight_grad_norms(sigmoid_net, Xb, yb)
relu_norms = weight_grad_norms(relu_net, Xb, yb)
print(f'first / last layer: sigmoid {sig_norms[0] / sig_norms[-1]:.1e}, ReLU {relu_norms[0] / relu_norms[-1]:.1e}')
plot({'sigmoid': sig_norms, 'ReLU': relu_norms}, x=range(0, 18, 2), log=True,
     xlabel='layer (position in the Sequential)', ylabel='weight gradient norm',
     title='Gradient reaching each layer, one batch')

# %% [markdown]
# Follow the sigmoid curve from the right (the output layer) to the left (the first layer): it falls by a
# factor of about 3 per layer, and the first layer receives some ten thousand times less than the last. The
# ReLU curve stays nearly flat: its gradients stay within a factor of two of each other all the way down. This
# is the **vanishing gradient**.
#
# Why? Backward through one layer multiplies the incoming gradient by the activation's slope and by the
# layer's weights. The sigmoid's slope $\sigma'(x) = \sigma(x)(1 - \sigma(x))$ is at most $1/4$ (at $x = 0$),
# so every sigmoid layer cuts the signal by at least four unless its weights make up for it; eight of them in
# a row compound. ReLU's slope is exactly 1 wherever the unit is active, and the Kaiming initialisation
# scales the weights so that what passes one layer keeps its size on average.
#
# `GradFlow` draws the same numbers for every parameter, biases included; switch on *log scale* to see the
# sigmoid network's bars fall away layer by layer:

# %% tags=["nbval-ignore-output"]
GradFlow(sigmoid_net, log=True)

# %% tags=["nbval-ignore-output"]
GradFlow(relu_net, log=True)

# %% [markdown]
# ## 4.5 What vanishing gradients do to training
#
# Both networks get the same optimizer settings and the same ten epochs. We keep a copy of each layer's
# starting weights, to see afterwards how far training moved them.

# %%
def weights(model):
    return [m.weight.detach().numpy().copy() for m in model if isinstance(m, nn.Linear)]


sig_start, relu_start = weights(sigmoid_net), weights(relu_net)
print('sigmoid:', end=' ')
sig_losses = train(sigmoid_net, dm.optim.SGD(sigmoid_net.parameters(), lr=0.02, momentum=0.9), epochs=10)
print('ReLU:   ', end=' ')
relu_losses = train(relu_net, dm.optim.SGD(relu_net.parameters(), lr=0.02, momentum=0.9), epochs=10)
plot({'sigmoid': sig_losses, 'ReLU': relu_losses}, xlabel='training step (15 per epoch)',
     ylabel='cross-entropy loss', title='Eight hidden layers: the same start, two activations')

# %% [markdown]
# The sigmoid network's loss stays at the guessing level of 2.30, and its accuracy is no better than a guess;
# the ReLU network learns the digits. How much did each layer's weights move? The relative change
# $\|W_{\text{after}} - W_{\text{before}}\| / \|W_{\text{before}}\|$ per layer, again on a logarithmic axis:

# %%
def moved(model, start):
    return [np.linalg.norm(now - before) / np.linalg.norm(before) for now, before in zip(weights(model), start)]


sig_moved, relu_moved = moved(sigmoid_net, sig_start), moved(relu_net, relu_start)
print(f'first layer moved by: sigmoid {sig_moved[0]:.1e}, ReLU {relu_moved[0]:.1e}')
plot({'sigmoid': sig_moved, 'ReLU': relu_moved}, x=range(0, 18, 2), log=True,
     xlabel='layer (position in the Sequential)', ylabel='relative change of the weights',
     title='How far ten epochs moved each layer')

# %% [markdown]
# The sigmoid network's first layers barely changed, by about one part in ten thousand: they receive almost
# no gradient, so they are still the random layers they started as, and the layers above them can only work
# with features that are noise. Adding layers made this network worse, not better. This is the problem
# that ReLU, careful initialisation and, later, residual connections and normalisation layers address.

# %% [markdown]
# ## 4.6 A parameter that gets no gradient at all
#
# A vanishing gradient is small. A **missing** one is `None`: backward never reached the parameter. That
# happens when a layer never runs, when a parameter is frozen (`requires_grad=False`), and, most quietly,
# when `forward` reads a parameter through `.data`: a tensor that shares the parameter's numbers but is cut
# from the graph, so autograd does not see where they came from. Here someone
# adds a learned offset but reaches it through `.data`:

# %%
class OffsetMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.offset = nn.Parameter(dm.zeros(32))
        self.out = nn.Linear(32, 10)

    def forward(self, X):
        h = F.relu(self.hidden(X)) + self.offset.data   # .data: the same numbers, cut from the graph
        return self.out(h)


offset_net = OffsetMLP().double()
F.cross_entropy(offset_net(Xb), yb).backward()
for name, p in offset_net.named_parameters():
    print(f'{name:14s}', 'no gradient' if p.grad is None else f'gradient norm {np.linalg.norm(p.grad.numpy()):.4f}')

# %% [markdown]
# The model runs, the loss goes down, and `offset` stays zero forever; no error says so. `GradFlow` marks
# such a parameter in red, with its likely reason:

# %% tags=["nbval-ignore-output"]
GradFlow(offset_net)

# %% [markdown]
# ## Summary
#
# - A training step is: forward and loss, `zero_grad()`, `backward()`, `step()`. Only `backward` writes
#   `.grad` (adding to what is there), only `step` changes the parameters.
# - `Explorer(...).live(every_seconds=...)` plus `explorer.update(loss)` in the loop shows a run as it happens;
#   the redraw is throttled, so watching costs little.
# - Gradients can shrink layer by layer on their way back. With sigmoid activations (slope at most 1/4) eight
#   layers are enough to starve the first layers; with ReLU and Kaiming initialisation they are not.
# - Draw per-layer gradient norms on a log scale (a figure, or `GradFlow`) before blaming the learning rate.
# - A gradient of `None` means backward never reached the parameter: unused, frozen, or read through `.data`.
#
# ## Exercises
#
# 1. Build the sigmoid network with `depth=4` and `depth=16`. How does the first layer's gradient norm
#    change? Predict the factor from the figure above before you run it.
# 2. Replace `nn.Sigmoid` by `nn.Tanh`, whose slope is at most 1 instead of 1/4. Does its gradient vanish,
#    and does it train in ten epochs?
# 3. Skip `relu_init` for the ReLU network and keep `Linear`'s default initialisation, whose weights are
#    smaller. Draw the gradient norms again: what happens to the ReLU network now, and why?
# 4. Run the sigmoid network for 50 epochs, or with a larger learning rate. Does it ever escape? Watch it
#    with an `Explorer` while it trains.
# 5. Time `train(...)` with and without `explorer`, then with `live(every_seconds=0)` so that every step
#    redraws. What does one redraw cost, and how many steps does the throttled version redraw?
# 6. Fix `OffsetMLP` so that `offset` trains, and check with `GradFlow` that its bar is no longer red.
