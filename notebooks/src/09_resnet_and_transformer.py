"""Lesson 9: the same recursion at scale. Build with `python notebooks/src/build.py 09_resnet_and_transformer.py`."""

# %% [markdown]
# # 9. The same recursion at scale: ResNet and Transformer
#
# Lesson 1 ended with a claim: the networks that made deep learning famous are built exactly like the chimera,
# from modules inside modules. A ResNet is a stack of *residual blocks*, each a few convolutions with batch
# normalisation and ReLU plus a shortcut; a Transformer is a stack of *encoder blocks*, each attention and a
# small feed-forward network with layer normalisation. In this lesson we build one of each from d2lmod modules,
# train both briefly on the digits of lesson 4, and look at their trees, which grow to hundreds of modules.
# On the way we meet the buffer that everyone who trains a ResNet meets: batch normalisation's running
# statistics.
#
# **After this lesson you can**
#
# - write a residual block and a Transformer encoder block as ordinary `Module` subclasses, and stack them;
# - read a model of hundreds of modules in the visualiser by folding it by depth and unfolding one part;
# - say where `BatchNorm2d`'s running statistics live: in `state_dict()` and moved by `to()`, but not in
#   `parameters()` and never given a gradient;
# - explain why `train()` and `eval()` give different outputs for a network with batch normalisation, and
#   which one to use when.

# %%
import numpy as np

import d2lmod as dm
from d2lmod import nn
from d2lmod.datasets import load_digits
from d2lmod.nn import functional as F
from d2lmod.widgets import GradFlow, GraphView, ModuleTree, summary
from d2lmod.widgets.figures import plot

dm.manual_seed(0)

# %% [markdown]
# ## 9.1 The digits, as images
#
# The same 1,797 digits as in lesson 4, split the same way, but this time kept as images: a convolution needs
# to know which pixels are neighbours. A batch of images has the shape `(N, C, H, W)`: examples, channels
# (1 here, grey levels), height and width. As in lesson 4 we compute in float64, so that the printed numbers
# are the same on every machine.

# %%
pixels, labels = load_digits()
images = (pixels / 16).reshape(-1, 1, 8, 8)            # (1797, 1, 8, 8), values 0 to 1, float64
order = np.random.default_rng(0).permutation(len(images))
X_train, y_train = dm.tensor(images[order[:1500]]), labels[order[:1500]]
X_test, y_test = dm.tensor(images[order[1500:]]), labels[order[1500:]]
print('train', X_train.shape, ' test', X_test.shape)


# %%
def batches(n, size, epoch):
    """Index arrays of a fresh shuffle of range(n) for this epoch, size at a time."""
    idx = np.random.default_rng(epoch).permutation(n)
    return [idx[i:i + size] for i in range(0, n, size)]


def accuracy(model, X, y):
    model.eval()                                  # see 9.5 for why evaluation switches the mode
    with dm.no_grad():
        correct = float((model(X).argmax(1).numpy() == y).mean())
    model.train()
    return correct


def train(model, optimizer, epochs):
    """Mini-batch training on the digit images; returns the loss of every step."""
    losses = []
    for epoch in range(1, epochs + 1):
        for idx in batches(len(y_train), 100, epoch):
            loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    steps = len(losses) // epochs
    print(f'after {epochs} epochs: train loss {np.mean(losses[-steps:]):.3f} (mean of the last epoch), '
          f'test accuracy {accuracy(model, X_test, y_test):.3f}')
    return losses


# %% [markdown]
# ## 9.2 A residual block
#
# A residual block computes a small correction $g(x)$ and adds it to its input: $y = \mathrm{relu}(x + g(x))$.
# Here $g$ is two 3 x 3 convolutions, each followed by batch normalisation, with a ReLU between them. If the
# block has nothing useful to add, it can learn $g \approx 0$ and pass its input through unchanged, which is
# why stacking many such blocks does not make a network harder to train (remember lesson 4's eight sigmoid
# layers). The shortcut needs the input and $g(x)$ to have the same shape; when a block changes the number of
# channels or halves the image, a 1 x 1 convolution reshapes the shortcut too.
#
# The block is an ordinary module: children in `__init__`, computation in `forward`. The lazy layers learn
# their input channels at the first call, as `LazyLinear` did in lesson 3.

# %%
class Residual(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut, then ReLU; (N, C, H, W) -> (N, channels, H/stride, W/stride)."""

    def __init__(self, channels, use_1x1conv=False, stride=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1, stride=stride)
        self.bn1 = nn.LazyBatchNorm2d()
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.bn2 = nn.LazyBatchNorm2d()
        self.shortcut = nn.LazyConv2d(channels, kernel_size=1, stride=stride) if use_1x1conv else nn.Identity()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        return F.relu(Y + self.shortcut(X))


block = Residual(16)
print(block(dm.rand(4, 16, 8, 8)).shape)
block = Residual(32, use_1x1conv=True, stride=2)
print(block(dm.rand(4, 16, 8, 8)).shape)

# %% [markdown]
# The second block doubled the channels and halved the image, and its shortcut did the same with a 1 x 1
# convolution. The computation graph of one call shows the two paths meeting at the addition (run the
# notebook to see it):

# %% tags=["nbval-ignore-output"]
GraphView(block(dm.rand(2, 16, 8, 8)).sum(), block)


# %% [markdown]
# A ResNet for 8 x 8 digits: a *stem* (one convolution, normalisation, ReLU) lifts the 1 grey channel to 16,
# then come stages of residual blocks, then the *head*: the average over the remaining pixels of every channel
# and a linear layer with 10 outputs. `stages` says how many blocks each stage has; each stage after the first
# doubles the channels and halves the image.

# %%
def resnet(stages=(1, 1), channels=16):
    """A ResNet for (N, 1, 8, 8) digits: stem, stages of residual blocks, average pooling, 10 outputs."""
    body = []
    for i, n_blocks in enumerate(stages):
        width = channels * 2 ** i
        blocks = [Residual(width, use_1x1conv=i > 0, stride=2 if i > 0 else 1)]
        blocks += [Residual(width) for _ in range(n_blocks - 1)]
        body.append(nn.Sequential(*blocks))
    return nn.Sequential(
        nn.Sequential(nn.LazyConv2d(channels, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU()),
        nn.Sequential(*body),
        nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(10)))


def ready(model):
    """One call on two images sets every lazy size (lazy layers create float32 weights); then float64."""
    model(X_train[:2].float())
    return model.double()


small = ready(resnet(stages=(1, 1)))
print(summary(small, X_train[:2], depth=2))

# %% [markdown]
# ## 9.3 Hundreds of modules, folded
#
# A ResNet-34 has stages of `(3, 4, 6, 3)` blocks; a ResNet-101 has `(3, 4, 23, 3)` (its blocks have three
# convolutions instead of two, but the layout is the point here). The same function with that tuple gives a much
# bigger tree: 33 residual blocks of five modules each, plus the blocks themselves and the stages. Nothing in the
# code changed except one tuple: the same recursion of modules inside modules.

# %%
big = ready(resnet(stages=(3, 4, 23, 3)))
print(len(list(big.modules())), 'modules,', f'{sum(p.numel() for p in big.parameters()):,}', 'parameters')

# %% [markdown]
# Nobody can read hundreds of rows at once. `summary` with `depth=` folds everything deeper than the depth
# into its ancestor, whose row then counts the whole subtree, so the rows still add up to the total:

# %%
table = summary(big, X_train[:2], depth=1)
print(str(table).split('\nnotes\n')[0])   # the table; its notes name every buffer, one by one

# %% [markdown]
# Inside the middle row (`1`) are the four stages, and inside each stage its blocks, every one a `Residual` with
# weights of its own:

# %%
for name, stage in big[1].named_children():
    print(f'stage {name}: {len(stage):2d} blocks, {sum(p.numel() for p in stage.parameters()):>9,} parameters')

# %% [markdown]
# The tree widget starts folded at the depth you give it. Move the *depth* slider to open every level at
# once, or select a module and press *fold / unfold* to open just that one. The same can be done from code:
# here we unfold the body (`1`) and then its third stage (`1.2`), and count the rows the tree shows
# (run the notebook to see and click the tree):

# %%
tree = ModuleTree(big, X_train[:2], depth=1)
print('rows shown at depth 1:                ', len(tree.visible()))
tree.toggle('1')
print('after unfolding the body (1):         ', len(tree.visible()))
tree.toggle('1.2')
print('after unfolding its third stage (1.2):', len(tree.visible()))

# %% tags=["nbval-ignore-output"]
tree

# %% [markdown]
# ## 9.4 Training the small ResNet
#
# Three epochs of the small ResNet (two residual blocks) on the digits, with its loss curve:

# %%
dm.manual_seed(0)
net = ready(resnet(stages=(1, 1)))
resnet_losses = train(net, dm.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), epochs=3)
plot({'ResNet, 2 blocks': resnet_losses}, xlabel='training step (15 per epoch)', ylabel='cross-entropy loss',
     title='Training the small ResNet on the digits')

# %% [markdown]
# After training, every parameter has received a gradient; `GradFlow` draws them layer by layer, on a log scale.
# Look at the biases of the convolutions that feed a `BatchNorm` (`0.0.bias`, `conv1.bias`, `conv2.bias`):
# their gradients are around 1e-16, zero up to rounding. BatchNorm subtracts each channel's mean, so a constant
# added to a channel just before it changes nothing after it, and such a bias cannot learn anything. (That is
# why ResNets are usually built with `bias=False` in those convolutions.) The shortcut's bias feeds no
# BatchNorm, and its gradient is an ordinary one:

# %% tags=["nbval-ignore-output"]
GradFlow(net, log=True)

# %% [markdown]
# ## 9.5 BatchNorm's running statistics: the canonical buffer
#
# Batch normalisation standardises each channel with the mean and variance of the current batch, then scales
# and shifts it by two learned parameters, `weight` ($\gamma$) and `bias` ($\beta$). After training there may
# be no batch: one image at a time must still give a sensible answer. So, while it trains, the layer also keeps
# a running average of the batch means and variances it has seen, and uses those at evaluation time.
#
# Those averages are **buffers**: numbers the module owns and needs, but does not learn by gradient descent.
# The first `BatchNorm2d` of the trained network:

# %%
bn = net[0][1]
print(bn)
print('parameters:', [name for name, _ in bn.named_parameters()])
print('buffers:   ', [name for name, _ in bn.named_buffers()])
print('state_dict:', list(bn.state_dict()))

# %% [markdown]
# The running statistics are in the state dict, so saving and loading a model keeps them, but not among the
# parameters, so the optimizer never touches them. They have no gradient: the layer updates them itself, in the
# forward pass, by moving a little (`momentum=0.1`) towards each batch's statistics, and it counts the batches
# it has seen: here the call in `ready` and the 45 training steps.

# %%
print('requires_grad:', bn.running_mean.requires_grad, '  grad:', bn.running_mean.grad)
print('batches seen:', int(bn.num_batches_tracked.item()))
print('running mean of the first 4 channels:', np.round(bn.running_mean.numpy()[:4], 4))

# %% [markdown]
# `summary` lists them as buffers, separate from the trainable count:

# %%
print(summary(net[0], X_train[:2]))

# %% [markdown]
# **Moved by `to()`.** Like parameters, buffers follow the model when it changes number type or device:

# %%
print('before:', bn.weight.dtype, bn.running_mean.dtype)
net.float()
print('after net.float():', bn.weight.dtype, bn.running_mean.dtype)
net = net.double()

# %% [markdown]
# **`train()` and `eval()` give different outputs.** In training mode each batch is normalised with its own
# statistics, so an image's output depends on which other images share its batch. In evaluation mode the
# running statistics are used, and every image is treated alone. The same five test images, alone and in a
# batch of 100:

# %%
five, hundred = X_test[:5], X_test[:100]
with dm.no_grad():
    net.train()
    alone, in_batch = net(five).numpy(), net(hundred).numpy()[:5]
    print('train(): same outputs alone and in a batch?', np.allclose(alone, in_batch))
    net.eval()
    alone, in_batch = net(five).numpy(), net(hundred).numpy()[:5]
    print('eval():  same outputs alone and in a batch?', np.allclose(alone, in_batch))

# %% [markdown]
# Two more consequences. A forward pass in training mode changes the running statistics, even under
# `no_grad()` (which only stops the recording of the graph); one in evaluation mode does not. So evaluate in
# `eval()` mode, as `accuracy` above does:

# %%
with dm.no_grad():
    for mode in ('train', 'eval'):
        getattr(net, mode)()
        before = bn.num_batches_tracked.item()
        net(five)
        print(f'{mode + "():":8s} one forward pass changed the statistics:', bn.num_batches_tracked.item() != before)

# %% [markdown]
# And the running statistics are part of what a trained model *is*. Load only the parameters into a fresh
# network, keeping its initial statistics (mean 0, variance 1), and in evaluation mode it computes something
# else:

# %%

fresh = ready(resnet(stages=(1, 1)).eval())  # primed in evaluation mode: its statistics stay 0 and 1
params_only = {name: p for name, p in net.state_dict().items() if 'running' not in name and 'batches' not in name}
fresh.load_state_dict(params_only, strict=False)
print('parameters only:        test accuracy', f'{accuracy(fresh, X_test, y_test):.3f}')
fresh.load_state_dict(net.state_dict())
print('parameters and buffers: test accuracy', f'{accuracy(fresh, X_test, y_test):.3f}')


# %% [markdown]
# ## 9.6 A Transformer encoder block
#
# A Transformer treats its input as a sequence of *tokens*, each a vector of `d_model` numbers. We read a
# digit image as a sequence of its 8 rows: 8 tokens of 8 pixels each. A linear layer lifts each row to
# `d_model` numbers, and a learned position embedding (`nn.Embedding`, one vector per row number) tells the
# model which row is which, since attention by itself ignores order.
#
# An encoder block has two parts, each added to its input like the residual block's correction and followed by
# `LayerNorm`: multi-head self-attention, where every token looks at every other token and takes a weighted
# mix of them, and a feed-forward network applied to each token on its own.

# %%
class EncoderBlock(nn.Module):
    """Self-attention and a feed-forward network, each with a residual connection and LayerNorm; (N, L, d) -> same."""

    def __init__(self, d_model, num_heads, d_hidden):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, X):
        attended, _ = self.attention(X, X, X)        # query, key and value are all X: self-attention
        X = self.norm1(X + attended)
        return self.norm2(X + self.ffn(X))


class DigitTransformer(nn.Module):
    """Rows of an (N, 1, 8, 8) image as 8 tokens; encoder blocks; the mean token -> 10 outputs."""

    def __init__(self, d_model=32, num_heads=4, d_hidden=64, num_blocks=2):
        super().__init__()
        self.rows = nn.Linear(8, d_model)
        self.position = nn.Embedding(8, d_model)
        self.blocks = nn.Sequential(*[EncoderBlock(d_model, num_heads, d_hidden) for _ in range(num_blocks)])
        self.head = nn.Linear(d_model, 10)

    def forward(self, X):
        tokens = self.rows(X.reshape(X.shape[0], 8, 8))                   # (N, 8 rows, d_model)
        tokens = tokens + self.position(dm.tensor(np.arange(8)))          # + one learned vector per row
        return self.head(self.blocks(tokens).mean(dim=1))                 # average the 8 tokens


dm.manual_seed(0)
transformer = DigitTransformer().double()
print(transformer(X_train[:2]).shape)
print(summary(transformer, X_train[:2], depth=2))

# %% [markdown]
# The same tree-folding works here. Twelve blocks, the depth of BERT-base, is again one number in the
# constructor, and again a tree of over a hundred modules:

# %%
deep_transformer = DigitTransformer(num_blocks=12).double()
print(len(list(deep_transformer.modules())), 'modules')
print(summary(deep_transformer, X_train[:2], depth=1))

# %% tags=["nbval-ignore-output"]
ModuleTree(deep_transformer, X_train[:2], depth=2)

# %% [markdown]
# Three epochs of the small Transformer on the same digits, with both loss curves in one figure. Transformers
# are usually trained with Adam, which scales each parameter's step by the size of its recent gradients;
# with plain SGD this one learns much more slowly (exercise 5).

# %%
transformer_losses = train(transformer, dm.optim.Adam(transformer.parameters(), lr=0.01), epochs=3)
plot({'ResNet, 2 blocks': resnet_losses, 'Transformer, 2 blocks': transformer_losses},
     xlabel='training step (15 per epoch)', ylabel='cross-entropy loss', title='Two architectures, one recipe')

# %% [markdown]
# Attention also returns its weights: for every token, how much it took from each other token, averaged over
# the heads. For one test image, the first block's weights form an 8 x 8 table whose rows sum to one:

# %%
with dm.no_grad():
    tokens = transformer.rows(X_test[:1].reshape(1, 8, 8)) + transformer.position(dm.tensor(np.arange(8)))
    _, weights = transformer.blocks[0].attention(tokens, tokens, tokens)
print('weights:', weights.shape, ' row sums:', np.round(weights.numpy()[0].sum(axis=1), 6).tolist())

# %% [markdown]
# `LayerNorm` has no running statistics: it normalises each token over its own `d_model` numbers, so it
# behaves the same in `train()` and `eval()`, and its state dict holds only its two parameters:

# %%
print(list(transformer.blocks[0].norm1.state_dict()))
print('buffers in the whole Transformer:', [name for name, _ in transformer.named_buffers()])

# %% [markdown]
# ## Summary
#
# - A residual block adds a learned correction to its input; a ResNet is a stem, stages of residual blocks and
#   a head. A Transformer encoder block is attention and a feed-forward network, each with a residual connection
#   and `LayerNorm`. Both are ordinary modules, and both networks are `Sequential`s of them: the same
#   recursion as the chimera of lesson 1.
# - Depth is a constructor argument; the tree grows to hundreds of modules, and folding by depth (in `summary`
#   and `ModuleTree`) keeps it readable, with counts that still add up.
# - `BatchNorm`'s `running_mean`, `running_var` and `num_batches_tracked` are buffers: saved in `state_dict()`,
#   moved by `to()`, never in `parameters()`, never given a gradient. The layer updates them in training-mode
#   forward passes.
# - `train()` normalises with the batch's statistics, `eval()` with the running ones: evaluate in `eval()`
#   mode, and save the buffers with the parameters.
#
# ## Exercises
#
# 1. **A residual block, checked.** Lesson 6's `check_residual` tests your own `Residual(channels,
#    use_1x1conv, stride)`: shapes, the shortcut, the batch normalisation and the gradients.
# 2. Remove the shortcut from `Residual` (return `F.relu(Y)`), build `resnet(stages=(3, 4, 23, 3))` and compare
#    the first layer's gradient norm with and without shortcuts, as in lesson 4.
# 3. Train the ResNet in `eval()` mode from the start. What happens to the running statistics, and to the loss?
# 4. Read the digit as 64 tokens instead: one per pixel, with the brightness 0-16 as the token number fed to an
#    `nn.Embedding(17, d_model)` and a position embedding of 64 entries. Is it slower? More accurate?
# 5. Train the Transformer with `dm.optim.SGD(..., lr=0.1, momentum=0.9)` instead of Adam, and compare the
#    two loss curves in one `plot`.
