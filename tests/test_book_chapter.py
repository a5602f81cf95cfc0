"""The PyTorch code of the book's Builders' Guide chapter, run on d2lmod with only the imports changed.

Source: d2l-ai/d2l-en, chapter_builders-guide/ (model-construction, parameters, init-param, lazy-init,
custom-layer, read-write, use-gpu): every ```{.python .input}``` cell under `%%tab pytorch` or `%%tab all`, in
order, taking the PyTorch branch of `tab.selected(...)` and writing the d2l helpers a cell calls as the book
defines them (d2l.tensor and d2l.rand are torch.tensor and torch.rand). Left out: `!nvidia-smi` (a shell
command) and the cells that extend d2l's own Module and Trainer classes (`@d2l.add_to_class`).

Each section runs top to bottom twice: with real torch, and with `import torch` -> `import d2lmod as torch`,
`from torch import nn` -> `from d2lmod import nn`, `from torch.nn import functional as F` ->
`from d2lmod.nn import functional as F`. For each cell, both runs must end the same way (the same exception
type, or success), print the same text and show the same value once random numbers are masked
(shapes, dtypes, structure and truth values stay).
"""
from __future__ import annotations

import ast
import contextlib
import io
import os
import re

import pytest

pytest.importorskip('torch')
pytestmark = pytest.mark.torch


SECTIONS = {
    'model-construction': [
        '''import torch
from torch import nn
from torch.nn import functional as F

net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))

X = torch.rand(2, 20)
net(X).shape''',
        '''class MLP(nn.Module):
    def __init__(self):
        # Call the constructor of the parent class `nn.Module` to perform
        # the necessary initialization.
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.out = nn.Linear(256, 10)

    # Define the forward propagation of the model, that is, how to return the
    # required model output based on the input `X`
    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))''',
        '''net = MLP()
net(X).shape''',
        '''class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self.add_module(str(idx), module)

    def forward(self, X):
        for module in self.children():
            X = module(X)
        return X''',
        '''net = MySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
net(X).shape''',
        '''class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        # Random weight parameters that will not compute gradients and
        # therefore keep constant during training
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.Linear(20, 20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        # Reuse the fully connected layer. This is equivalent to sharing
        # parameters with two fully connected layers
        X = self.linear(X)
        # Control flow
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()''',
        '''net = FixedHiddenMLP()
net(X)''',
        '''class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(),
                                 nn.Linear(64, 32), nn.ReLU())
        self.linear = nn.Linear(32, 16)

    def forward(self, X):
        return self.linear(self.net(X))

chimera = nn.Sequential(NestMLP(), nn.Linear(16, 20), FixedHiddenMLP())
chimera(X)''',
    ],
    'parameters': [
        '''import torch
from torch import nn

net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
X = torch.rand(size=(2, 4))
net(X).shape''',
        'net[2].state_dict()',
        'type(net[2].bias), net[2].bias.data',
        'net[2].weight.grad == None',
        '[(name, param.shape) for name, param in net.named_parameters()]',
        '''# We need to give the shared layer a name so that we can refer to its
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
print(net[2].weight.data[0] == net[4].weight.data[0])''',
    ],
    'init-param': [
        '''import torch
from torch import nn''',
        '''net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
X = torch.rand(size=(2, 4))
net(X).shape''',
        '''def init_normal(module):
    if type(module) == nn.Linear:
        nn.init.normal_(module.weight, mean=0, std=0.01)
        nn.init.zeros_(module.bias)

net.apply(init_normal)
net[0].weight.data[0], net[0].bias.data[0]''',
        '''def init_constant(module):
    if type(module) == nn.Linear:
        nn.init.constant_(module.weight, 1)
        nn.init.zeros_(module.bias)

net.apply(init_constant)
net[0].weight.data[0], net[0].bias.data[0]''',
        '''def init_xavier(module):
    if type(module) == nn.Linear:
        nn.init.xavier_uniform_(module.weight)

def init_42(module):
    if type(module) == nn.Linear:
        nn.init.constant_(module.weight, 42)

net[0].apply(init_xavier)
net[2].apply(init_42)
print(net[0].weight.data[0])
print(net[2].weight.data)''',
        '''def my_init(module):
    if type(module) == nn.Linear:
        print("Init", *[(name, param.shape)
                        for name, param in module.named_parameters()][0])
        nn.init.uniform_(module.weight, -10, 10)
        module.weight.data *= module.weight.data.abs() >= 5

net.apply(my_init)
net[0].weight[:2]''',
        '''net[0].weight.data[:] += 1
net[0].weight.data[0, 0] = 42
net[0].weight.data[0]''',
    ],
    'lazy-init': [
        '''import torch
from torch import nn''',
        'net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))',
        'net[0].weight',
        '''X = torch.rand(2, 20)
net(X)

net[0].weight.shape''',
    ],
    'custom-layer': [
        '''import torch
from torch import nn
from torch.nn import functional as F

class CenteredLayer(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, X):
        return X - X.mean()''',
        '''layer = CenteredLayer()
layer(torch.tensor([1.0, 2, 3, 4, 5]))''',
        'net = nn.Sequential(nn.LazyLinear(128), CenteredLayer())',
        '''Y = net(torch.rand(4, 8))
Y.mean()''',
        '''class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)''',
        '''linear = MyLinear(5, 3)
linear.weight''',
        'linear(torch.rand(2, 5))',
        '''net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
net(torch.rand(2, 64))''',
    ],
    'read-write': [
        '''import torch
from torch import nn
from torch.nn import functional as F''',
        '''x = torch.arange(4)
torch.save(x, 'x-file')''',
        '''x2 = torch.load('x-file')
x2''',
        '''y = torch.zeros(4)
torch.save([x, y],'x-files')
x2, y2 = torch.load('x-files')
(x2, y2)''',
        '''mydict = {'x': x, 'y': y}
torch.save(mydict, 'mydict')
mydict2 = torch.load('mydict')
mydict2''',
        '''class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.LazyLinear(256)
        self.output = nn.LazyLinear(10)

    def forward(self, x):
        return self.output(F.relu(self.hidden(x)))

net = MLP()
X = torch.randn(size=(2, 20))
Y = net(X)''',
        "torch.save(net.state_dict(), 'mlp.params')",
        '''clone = MLP()
clone.load_state_dict(torch.load('mlp.params'))
clone.eval()''',
        '''Y_clone = clone(X)
Y_clone == Y''',
    ],
    'use-gpu': [
        '''import torch
from torch import nn''',
        '''def cpu():  #@save
    return torch.device('cpu')

def gpu(i=0):  #@save
    return torch.device(f'cuda:{i}')

cpu(), gpu(), gpu(1)''',
        '''def num_gpus():  #@save
    return torch.cuda.device_count()

num_gpus()''',
        '''def try_gpu(i=0):  #@save
    """Return gpu(i) if exists, otherwise return cpu()."""
    if num_gpus() >= i + 1:
        return gpu(i)
    return cpu()

def try_all_gpus():  #@save
    """Return all available GPUs, or [cpu(),] if no GPU exists."""
    return [gpu(i) for i in range(num_gpus())]

try_gpu(), try_gpu(10), try_all_gpus()''',
        '''x = torch.tensor([1, 2, 3])
x.device''',
        '''X = torch.ones(2, 3, device=try_gpu())
X''',
        '''Y = torch.rand(2, 3, device=try_gpu(1))
Y''',
        '''Z = X.cuda(1)
print(X)
print(Z)''',
        'Y + Z',
        'Z.cuda(1) is Z',
        '''net = nn.Sequential(nn.LazyLinear(1))
net = net.to(device=try_gpu())''',
        'net(X)',
        'net[0].weight.data.device',
    ],
}

# A cell whose whole numbers are random too: my_init zeroes the weights below 5 in size, so after `+= 1` an entry
# is 1 or a random number; only the 42 the cell writes is fixed.
RANDOM_WHOLE_NUMBERS = {('init-param', 6)}
# The only cells that should fail: they need two real GPUs, and fail as PyTorch does on a CPU-only machine.
NEEDS_TWO_GPUS = {('use-gpu', 7), ('use-gpu', 8), ('use-gpu', 9)}

ON_D2LMOD = [('import torch\n', 'import d2lmod as torch\n'), ('from torch import nn\n', 'from d2lmod import nn\n'),
             ('from torch.nn import functional as F\n', 'from d2lmod.nn import functional as F\n')]


def on_d2lmod(source: str) -> str:
    """The only change allowed: the three import lines."""
    for theirs, ours in ON_D2LMOD:
        source = source.replace(theirs, ours) if source.endswith('\n') else (source + '\n').replace(theirs, ours)
    return source


def run_cell(source: str, namespace: dict):
    """Run a notebook cell: ('ok', repr of its last expression or None, stdout) or ('error', type, stdout)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(tree, '<cell>', 'exec'), namespace)
            value = None if last is None else eval(compile(ast.Expression(last.value), '<cell>', 'eval'), namespace)
    except Exception as error:  # noqa: BLE001 (the kind is compared with PyTorch's)
        return ('error', type(error).__name__, out.getvalue())
    return ('ok', None if value is None else repr(value), out.getvalue())


FLOAT = re.compile(r'-?(\d+\.\d*|\.\d+)(e[+-]?\d+)?|-?\d+e[+-]?\d+|\b(nan|inf)\b')


def masked(text, whole_numbers_random=False):
    """What must agree once random numbers are masked: structure, shapes, integers, dtypes, truth values."""
    if text is None:
        return None
    text = re.sub(r"torch\.Size\(\[([\d, ]*)\]\)", lambda m: repr(tuple(int(n) for n in m[1].split(',') if n.strip())),
                  text)
    text = re.sub(r'grad_fn=<\w+>', 'grad_fn=<>', text)
    text = re.sub(r"<class '[\w.]*?(\w+)'>", r"<class '\1'>", text)     # Parameter, by its own name
    text = text.replace('torch.', '')
    text = FLOAT.sub(_mask_float, text)
    if whole_numbers_random:
        text = re.sub(r'(?<![\w.])-?(?!42\b)\d+\b', '#', text)
    return re.sub(r'\s+', '', text)


def _mask_float(match) -> str:
    """A random number becomes #; a whole nonzero one (1., 42.0000: set by an initializer) is kept."""
    value = float(match[0])
    return str(int(value)) if value == value and abs(value) != float('inf') and value == int(value) and value \
        else '#'


_RUNS = {}


def runs(section: str):
    """Every cell of a section, run in order with torch and with d2lmod (once per test session)."""
    if section not in _RUNS:
        results = {}
        for lib in ('torch', 'd2lmod'):
            namespace, outcomes = {'__name__': f'book_{section.replace("-", "_")}'}, []
            for source in SECTIONS[section]:
                outcomes.append(run_cell(source if lib == 'torch' else on_d2lmod(source), namespace))
            results[lib] = outcomes
        _RUNS[section] = results
    return _RUNS[section]


def cells():
    for section, sources in SECTIONS.items():
        for index in range(len(sources)):
            yield pytest.param(section, index, id=f'{section}[{index}]')


@pytest.fixture(autouse=True)
def in_a_temporary_folder(tmp_path):
    """read-write saves files: keep them out of the repository (both runs use the same folder)."""
    before = os.getcwd()
    os.chdir(tmp_path.parent)
    yield
    os.chdir(before)


@pytest.mark.parametrize('section, index', list(cells()))
def test_the_books_cell_runs_on_d2lmod_as_on_torch(section, index):
    theirs, ours = runs(section)['torch'][index], runs(section)['d2lmod'][index]
    if (section, index) in NEEDS_TWO_GPUS:
        assert theirs[0] == 'error', 'on this CPU-only machine, PyTorch itself fails here'
    assert ours[:2] == theirs[:2] if ours[0] == 'error' or theirs[0] == 'error' else ours[0] == theirs[0], \
        f'{section}[{index}]: torch gave {theirs}, d2lmod gave {ours}'
    assert masked(ours[-1]) == masked(theirs[-1]), f'printed:\n{theirs[-1]}\nvs\n{ours[-1]}'
    if ours[0] == 'ok':
        loose = (section, index) in RANDOM_WHOLE_NUMBERS
        assert masked(ours[1], loose) == masked(theirs[1], loose), f'shown:\n{theirs[1]}\nvs\n{ours[1]}'


def test_only_the_cells_needing_two_gpus_fail_in_torch_here():
    failing = {(s, i) for s in SECTIONS for i, r in enumerate(runs(s)['torch']) if r[0] == 'error'}
    assert failing == NEEDS_TWO_GPUS
