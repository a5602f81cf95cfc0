"""Module or Tensor -> plain data: the module tree with counts and notes, and per-parameter gradient stats.

Nothing here draws. Everything returns dataclasses, lists and strings that render.py turns into text or
HTML and the widgets show. Order is always the model's own order (never set or id order), so the same
model gives the same data every time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from d2lmod.nn.module import Module, Parameter
from d2lmod.tensor import Tensor, no_grad

from . import frameworks

# Module's own bookkeeping attributes: dicts that hold registered things, not hidden ones
_REGISTRIES = {'_parameters', '_buffers', '_modules', '_forward_hooks', '_forward_pre_hooks', '_non_persistent',
               'training'}


def _plain_attributes(module: Module):
    """(name, value) of the attributes a module holds for itself: not its bookkeeping, not registered things
    (Module keeps a registered parameter, buffer or child in __dict__ too, for fast reading)."""
    for name, value in module.__dict__.items():
        if name not in _REGISTRIES and name not in module._parameters and name not in module._buffers \
                and name not in module._modules:
            yield name, value

# the short tags shown next to a module, in the order they are listed
TAGS = ('shared', 'repeated', 'called', 'not called', 'plain tensor', 'hidden', 'buffer', 'frozen', 'lazy')


@dataclass
class ParamInfo:
    """One parameter as one module registers it."""
    path: str                # dotted name, e.g. '2.linear.weight'
    name: str                # the name inside its module, e.g. 'weight'
    shape: tuple             # None for a size a lazy layer does not know yet
    count: int | None        # None while lazy
    trainable: bool          # requires_grad
    same_as: str | None      # the first path of a parameter registered more than once, else None
    tensor: Parameter = field(repr=False, compare=False, default=None)


@dataclass
class Note:
    """A thing worth knowing about one module, with a short tag for tables and a sentence for readers."""
    path: str                # the module (or attribute) it is about
    tag: str                 # one of TAGS
    text: str


@dataclass
class ModuleInfo:
    """One module of the tree, with its own and its subtree's counts."""
    path: str                # '' for the model itself
    name: str                # the last part of path
    type: str
    extra: str               # extra_repr()
    depth: int               # 0 for the model itself
    children: list           # paths of the children, in registration order
    params: list             # ParamInfo of the parameters this module registers itself
    same_as: str | None      # a module registered under two paths is expanded at the first one only
    own: int | None          # parameters counted here (a shared one only at its first path); None if lazy
    total: int | None        # own, summed over the subtree
    calls: int | None        # forward calls during the summary's run; None without inputs
    outputs: list            # the distinct output shapes of those calls, as strings
    own_per_call: int | None  # own parameters (shared ones too) times calls
    total_per_call: int | None
    tags: list               # tags of this module's notes, in TAGS order


@dataclass
class Totals:
    unique: int | None       # each parameter counted once
    per_call: int | None     # each module's parameters counted once per call; None without inputs
    trainable: int | None
    non_trainable: int | None
    buffers: int             # numbers held in registered buffers
    plain: int               # numbers held in plain tensor attributes (not registered at all)
    lazy: int                # parameters whose size is still unknown


@dataclass
class ModelInfo:
    """Everything summary(), ModuleTree and Explorer show about a model."""
    type: str
    inputs: list             # input shapes as strings; empty when the model was not run
    modules: list            # ModuleInfo, depth first in registration order
    notes: list              # Note, in module order
    totals: Totals
    initialized: list        # paths of lazy parameters that the summary's own run initialized

    def module(self, path: str) -> ModuleInfo:
        """The ModuleInfo at a dotted path."""
        for m in self.modules:
            if m.path == path:
                return m
        raise KeyError(f"no module at path {path!r}; paths are {[m.path for m in self.modules][:8]} ...")


@dataclass
class Row:
    """One line of the summary table: a module, or a collapsed subtree rolled into its top module."""
    path: str
    type: str
    depth: int
    outputs: list
    calls: int | None
    params: int | None
    per_call: int | None
    tags: list
    folded: int              # how many submodules are folded into this row (0: none)


@dataclass
class GradPart:
    """One module call's share of a shared parameter's gradient."""
    call: int                # 1, 2, ... in the order the calls ran
    module: str              # the path of the module whose forward used the parameter
    mean_abs: float
    max_abs: float
    norm: float


@dataclass
class GradInfo:
    """Gradient statistics of one parameter after backward()."""
    path: str
    shape: tuple
    count: int | None
    has_grad: bool
    reason: str              # why there is no gradient (one phrase), else ''
    mean_abs: float
    max_abs: float
    norm: float
    parts: list              # GradPart per call when the parameter was used in more than one call
    parts_note: str          # set when the parts do not add up to .grad, saying why


# ---- helpers ---------------------------------------------------------------------------------------
def shape_str(shape) -> str:
    """(2, None) -> '(2, ?)'; () -> '()'."""
    sizes = ['?' if n is None else str(n) for n in shape]
    return '(' + ', '.join(sizes) + (',)' if len(sizes) == 1 else ')')


def num(n) -> str:
    """4712 -> '4,712'; None (unknown, a lazy layer) -> '?'."""
    return '?' if n is None else f'{n:,}'


def _add(a, b):
    """a + b, where None (unknown) wins."""
    return None if a is None or b is None else a + b


def _shape(t: Tensor) -> tuple:
    """A lazy parameter has no shape yet (PyTorch's UninitializedParameter): shown as '(?,)'."""
    return (None,) if t._data is None else tuple(t.shape)


def _count(t: Tensor) -> int | None:
    return None if t._data is None else int(t._data.size)


def output_str(out) -> str:
    """The shape of a forward's result: a tensor, a tuple of them, or just its type name."""
    if isinstance(out, Tensor):
        return shape_str(out.shape)
    if isinstance(out, (tuple, list)):
        return '[' + ', '.join(output_str(o) for o in out) + ']'
    return type(out).__name__


def _walk(model: Module):
    """(path, module, depth, same_as) for every registered path, depth first; a repeated module is not entered."""
    first, stack = {}, [('', model, 0)]
    while stack:
        path, module, depth = stack.pop()
        same_as = first.get(id(module))
        yield path, module, depth, same_as
        if same_as is not None:
            continue
        first[id(module)] = path
        children = [(f'{path}.{n}' if path else n, c, depth + 1) for n, c in module._modules.items() if c is not None]
        stack.extend(reversed(children))


def _run_counting(model: Module, inputs, quiet=no_grad, describe_output=None) -> dict:
    """Run model(*inputs) once without recording gradients; id(module) -> list of output strings per call.

    quiet, describe_output: the framework's no_grad and output_str (PyTorch's adapter passes its own)."""
    seen, handles, describe_output = {}, [], describe_output or output_str

    def hook(module, args, out):
        seen.setdefault(id(module), []).append(describe_output(out))
    try:
        for module in model.modules():
            handles.append(module.register_forward_hook(hook))
        with quiet():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _distinct(items: list) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


# ---- what a module holds that the framework does not see ---------------------------------------------
def plain_tensor_note(where: str, shape: tuple, numbers: int, requires_grad: bool) -> Note:
    """The note on a tensor kept in a plain attribute (shared by every framework's adapter)."""
    trains = ('; it has requires_grad=True, so it trains only if you hand it to the optimizer yourself'
              if requires_grad else '')
    return Note(where, 'plain tensor', f'a plain tensor attribute of shape {shape_str(shape)} ({numbers:,} numbers): '
                                       f'not a parameter, not in state_dict(), not moved by to(){trains}; '
                                       'register_buffer registers it without training it')


def hidden_modules_note(where: str, kind: str, count: int, types: str, params: str, fix: str) -> Note:
    """The note on modules kept in a plain list, tuple or dict (shared by every framework's adapter)."""
    return Note(where, 'hidden', f'a plain Python {kind} holding {count} module(s) ({types}) with {params} '
                                 f'parameters that are invisible to parameters(), state_dict(), to() and the '
                                 f'optimizer; use {fix}')


def _plain_notes(path: str, module: Module, registered: set) -> list:
    """Notes for plain tensor attributes and for modules/parameters hidden in lists, tuples and dicts."""
    notes = []
    for attr, value in _plain_attributes(module):
        where = f'{path}.{attr}' if path else attr
        if isinstance(value, Tensor):
            notes.append(plain_tensor_note(where, tuple(value.shape), int(value._data.size), value.requires_grad))
        elif isinstance(value, (list, tuple, dict)):
            items = list(value.values()) if isinstance(value, dict) else list(value)
            hidden = [v for v in items if isinstance(v, Module) and id(v) not in registered]
            tensors = [v for v in items if isinstance(v, Tensor)]
            kind = type(value).__name__
            if hidden:
                params = {id(p): p for m in hidden for p in m.parameters()}
                counts = [_count(p) for p in params.values()]
                n = '?' if None in counts else f'{sum(counts):,}'
                types = ', '.join(_distinct([type(m).__name__ for m in hidden]))
                fix = 'nn.ModuleDict' if isinstance(value, dict) else 'nn.ModuleList'
                notes.append(hidden_modules_note(where, kind, len(hidden), types, n, fix))
            if tensors:
                numbers = sum(t._data.size for t in tensors if t._data is not None)
                notes.append(hidden_tensors_note(where, kind, len(tensors), int(numbers)))
    return notes


def _plain_numbers(modules) -> int:
    return sum(int(v._data.size) for m in modules for _, v in _plain_attributes(m)
               if isinstance(v, Tensor) and v._data is not None)


def hidden_tensors_note(where: str, kind: str, count: int, numbers: int) -> Note:
    """The note on tensors kept in a plain list, tuple or dict (shared by every framework's adapter)."""
    return Note(where, 'hidden', f'a plain Python {kind} holding {count} tensor(s) ({numbers:,} numbers) that are '
                                 'invisible to parameters(), state_dict() and to(); register each one (a Parameter '
                                 'attribute, or nn.ParameterList in PyTorch)')


# ---- the model, as data -------------------------------------------------------------------------------
def describe(model: Module, *inputs) -> ModelInfo:
    """The module tree of model with counts and notes; with inputs, run it once to count calls and shapes."""
    if not isinstance(model, Module):
        adapter = frameworks.adapter_for(model)  # a PyTorch or Flax model: its own adapter makes the same data
        if adapter is None:
            raise TypeError(f"describe() expects a d2lmod, PyTorch or Flax module, got a {type(model).__name__}")
        return adapter.describe(model, *inputs)
    lazy_before = [(n, p) for n, p in model.named_parameters() if p._data is None]
    calls = _run_counting(model, inputs) if inputs else None
    initialized = [n for n, p in lazy_before if p._data is not None]

    walked = list(_walk(model))
    registered = {id(m) for _, m, _, _ in walked}
    first_param, modules, notes = {}, [], []
    for path, module, depth, same_as in walked:
        params = [] if same_as is not None else _param_infos(path, module, first_param)
        info = _module_info(path, module, depth, same_as, params, calls)
        modules.append(info)
        if same_as is None:
            notes += _module_notes(info, module, registered, initialized)
    shapes = [shape_str(x.shape) if isinstance(x, Tensor) else type(x).__name__ for x in inputs]
    sizes = [_count(b) for b in model.buffers()]
    buffers = None if None in sizes else sum(sizes)  # unknown while a lazy layer's buffers have no size
    return assemble(type(model).__name__, shapes, modules, notes, buffers, _plain_numbers(model.modules()),
                    initialized)


def assemble(type_name: str, inputs: list, modules: list, notes: list, buffers: int, plain: int,
             initialized: list) -> ModelInfo:
    """Per-module rows and notes from any framework's adapter -> ModelInfo: children, roll-up, tags, totals.

    modules: ModuleInfo depth first with own counts (children empty); notes: each module's own notes.
    """
    by_path = {m.path: m for m in modules}
    for m in modules:
        if m.path:
            by_path[m.path.rpartition('.')[0]].children.append(m.path)
    run = modules[0].calls is not None
    for m in sorted(modules, key=lambda m: -m.depth):  # roll counts up the tree, deepest modules first
        for child in m.children:
            m.total = _add(m.total, by_path[child].total)
            m.total_per_call = _add(m.total_per_call, by_path[child].total_per_call) if run else None
    for m in modules:  # now that subtree totals are known
        notes += _repeat_notes(m)

    order = {m.path: i for i, m in enumerate(modules)}
    notes.sort(key=lambda n: order[_owner(n.path, by_path).path])  # stable: a module's notes stay in order
    for n in notes:
        owner = _owner(n.path, by_path)
        if n.tag not in owner.tags:
            owner.tags.append(n.tag)
    for m in modules:
        m.tags.sort(key=TAGS.index)
    return ModelInfo(type_name, inputs, modules, notes, _totals(modules, buffers, plain), initialized)


def _param_infos(path: str, module: Module, first_param: dict) -> list:
    """ParamInfo of module's own parameters; first_param (id -> first path) tells a shared one apart."""
    params = []
    for name, p in module._parameters.items():
        if p is not None:
            ppath = f'{path}.{name}' if path else name
            params.append(ParamInfo(ppath, name, _shape(p), _count(p), p.requires_grad, first_param.get(id(p)), p))
            first_param.setdefault(id(p), ppath)
    return params


def _module_info(path: str, module: Module, depth: int, same_as, params: list, calls: dict | None) -> ModuleInfo:
    """One module's row before roll-up: own counts (a shared parameter only at its first path), calls, outputs."""
    own = 0
    for p in params:
        if p.same_as is None:
            own = _add(own, p.count)
    n_calls, outputs, per_call = None, [], None
    if calls is not None:
        n_calls, outputs, per_call = len(calls.get(id(module), [])), _distinct(calls.get(id(module), [])), 0
        for p in params:  # every parameter the module uses, each time it runs
            per_call = _add(per_call, None if p.count is None else p.count * n_calls)
    return ModuleInfo(path, path.rpartition('.')[2], type(module).__name__, module.extra_repr(), depth, [], params,
                      same_as, own, own, n_calls, outputs, per_call, per_call, [])


def _repeat_notes(m: ModuleInfo) -> list:
    """Notes for a module run more than once, a parameter registered twice, a module registered twice."""
    notes = [_called_note(m)] if m.same_as is None and m.calls is not None and m.calls > 1 else []
    for p in m.params:
        if p.same_as is not None:
            notes.append(Note(p.path, 'shared', f'the same Parameter as {p.same_as}: counted once in "unique", '
                                                'and every use adds into its one .grad'))
            notes.append(Note(p.same_as, 'shared', f'also registered as {p.path}'))
    if m.same_as is not None:
        first = m.same_as or '(model)'
        notes.append(Note(m.path, 'repeated', f'the same module as {first}: one set of parameters, counted at its '
                                              'first path only'))
    return notes


def _totals(modules: list, buffers: int, plain: int) -> Totals:
    unique = [p for m in modules for p in m.params if p.same_as is None]
    counts = [p.count for p in unique]
    trainable = [p.count for p in unique if p.trainable]
    frozen = [p.count for p in unique if not p.trainable]
    return Totals(None if None in counts else sum(counts), modules[0].total_per_call,
                  None if None in trainable else sum(trainable), None if None in frozen else sum(frozen),
                  buffers, plain, counts.count(None))


def _owner(path: str, by_path: dict) -> ModuleInfo:
    """The module a note's path belongs to: the path itself, or the nearest module above it."""
    while path not in by_path:
        path = path.rpartition('.')[0]
    return by_path[path]


def _module_notes(info: ModuleInfo, module: Module, registered: set, initialized: list) -> list:
    """The notes about one module: calls, lazy and frozen parameters, buffers, plain tensors, hidden modules."""
    notes = common_notes(info, initialized)
    for name, b in module._buffers.items():
        if b is not None:
            notes.append(buffer_note(_join(info.path, name), _shape(b), name not in module._non_persistent))
    return notes + _plain_notes(info.path, module, registered)


def _join(path: str, name: str) -> str:
    return f'{path}.{name}' if path else name


def buffer_note(where: str, shape: tuple, saved: bool) -> Note:
    """The note on a registered buffer (shared by every framework's adapter)."""
    kept = 'saved in state_dict()' if saved else 'not saved (persistent=False)'
    return Note(where, 'buffer', f'a buffer of shape {shape_str(shape)}: {kept}, moved by to(), not trained')


def common_notes(info: ModuleInfo, initialized: list) -> list:
    """The notes any framework's module gets from its row: not called, lazy, frozen."""
    path, notes = info.path, []
    if info.calls == 0:
        notes.append(Note(path, 'not called', 'registered, but did not run in this forward: its parameters get no '
                                              'gradient'))
    if any(p.count is None for p in info.params):
        notes.append(Note(path, 'lazy', 'lazy layer, not initialized yet: it learns its input size on its first '
                                        'call, so until then sizes show as ? and its count is unknown'))
    elif any(p.path in initialized for p in info.params):
        notes.append(Note(path, 'lazy', 'lazy layer: its input size was unknown until this summary ran the model '
                                        'on the input'))
    frozen = [p.name for p in info.params if not p.trainable]
    if frozen:
        notes.append(Note(path, 'frozen', f'{", ".join(frozen)} with requires_grad=False: non-trainable, gets no '
                                          'gradient, not changed by the optimizer'))
    return notes


def _called_note(m: ModuleInfo) -> Note:
    """The note for a module that ran more than once in one forward."""
    if m.total == 0:
        return Note(m.path, 'called', f'ran {m.calls} times in one forward (it has no parameters to share)')
    uses = 'both uses' if m.calls == 2 else f'all {m.calls} uses'
    return Note(m.path, 'called', f'ran {m.calls} times in one forward: its {num(m.total)} parameters count once in '
                                  f'"unique" and {m.calls} times in "per call"; the gradients of {uses} add up in '
                                  'one .grad')


def rows(info: ModelInfo, depth: int | None = None) -> list:
    """The table's lines: modules down to depth (0 = the model only); deeper ones fold into their ancestor."""
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or >= 0, got {depth}")
    tags_below, size_below = {}, {}
    for m in sorted(info.modules, key=lambda m: -m.depth):  # each subtree's tags and size, deepest first
        tags, size = list(m.tags), 0
        for child in m.children:
            tags += tags_below[child]
            size += 1 + size_below[child]
        tags_below[m.path], size_below[m.path] = sorted(set(tags), key=TAGS.index), size
    out = []
    for m in info.modules:
        if depth is not None and m.depth > depth:
            continue
        folded = size_below[m.path] if depth is not None and m.depth == depth else 0
        out.append(Row(m.path, m.type, m.depth, m.outputs, m.calls,
                       m.total if folded else m.own,
                       m.total_per_call if folded else m.own_per_call,
                       tags_below[m.path] if folded else m.tags, folded))
    return out


# ---- gradients -----------------------------------------------------------------------------------------
def _stats(g: np.ndarray):
    a = np.abs(g.astype(np.float64))
    return float(a.mean()) if a.size else 0.0, float(a.max()) if a.size else 0.0, float(np.sqrt((a * a).sum()))


def grad_stats(model: Module, calls: dict | None = None) -> list:
    """GradInfo per parameter in module order; a shared one's gradient split by the call that used it.

    calls: path -> number of forward calls (from describe() with inputs), used to say why a gradient is missing.
    """
    if not isinstance(model, Module) and frameworks.adapter_for(model) is not None:
        return frameworks.adapter_for(model).grad_stats(model, calls)
    paths = {id(m): p for p, m in model.named_modules()}
    owners = {}
    for mpath, m in model.named_modules():
        for name, p in m._parameters.items():
            if p is not None:
                owners.setdefault(id(p), mpath)
    named = list(model.named_parameters())
    any_grad = any(p.grad is not None for _, p in named)
    out = []
    for path, p in named:
        count = _count(p)
        if p.grad is None:
            reason = _why_no_grad(p, owners[id(p)], calls, any_grad)
            out.append(grad_info(path, _shape(p), count, None, reason))
            continue
        parts = [(module, part) for _, module, part in _grad_parts(p, paths)]
        out.append(grad_info(path, _shape(p), count, p.grad._data, '', parts))
    return out


ACCUMULATED = ('the calls add up to the last backward() only: .grad also holds earlier ones (call zero_grad() '
               'before each backward())')


def grad_info(path: str, shape: tuple, count: int | None, grad, reason: str = '', parts=(),
              off: str = ACCUMULATED) -> GradInfo:
    """GradInfo of one gradient array (None: no gradient, for reason); parts: (module path, array) per call;
    off: what to say when the parts do not add up to grad."""
    if grad is None:
        return GradInfo(path, shape, count, False, reason, 0.0, 0.0, 0.0, [], '')
    note = ''
    if parts and not np.allclose(sum(part for _, part in parts), grad, rtol=1e-4, atol=1e-6):
        note = off
    split = [GradPart(i + 1, module, *_stats(part)) for i, (module, part) in enumerate(parts)]
    return GradInfo(path, shape, count, True, '', *_stats(grad), split, note)


def _grad_parts(p: Parameter, paths: dict) -> list:
    """(call index, module path, gradient) per module call that used p, in call order; [] if only one call."""
    raw = getattr(p, '_grad_parts', None)
    if not raw:
        return []
    by_call = {}
    for call, g in raw:  # one call can use a parameter twice: add those up
        key = -1 if call is None else call.index
        module = '(outside any module)' if call is None else paths.get(id(call.module), type(call.module).__name__)
        before = by_call.get(key)
        by_call[key] = (key, module, g if before is None else before[2] + g)
    parts = [by_call[k] for k in sorted(by_call)]
    return parts if len(parts) > 1 else []


def _why_no_grad(p: Parameter, owner: str, calls: dict | None, any_grad: bool) -> str:
    """One phrase saying why backward() left p.grad as None."""
    if p._data is None:
        return 'not initialized: its lazy layer has not run yet'
    if not p.requires_grad:
        return 'frozen: requires_grad=False'
    if not any_grad:
        return 'no backward() yet'
    if calls is not None and calls.get(owner) == 0:
        return 'its module did not run in forward'
    if calls is not None:
        return 'its module ran, but autograd never saw it used (read through .data?)'
    return 'backward() never reached it: unused in forward, or read through .data'
