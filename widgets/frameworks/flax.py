"""Flax linen's adapter: a module and its variables -> the same plain data as extract.py and graph.py.

Flax keeps the weights outside the module, so the visualiser holds both (FlaxModel). Everything is recorded
while the model runs eagerly (no jit: a data-dependent `while` must see real numbers):
- module calls, their paths and outputs, through `flax.linen.intercept_methods`;
- arrays a module made in `setup` that are not variables (the seed's `rand_weight`), from its attributes;
- a shared module's gradient per call: each call adds its own zero `delta` to the module's params, and
  `jax.grad` with respect to the deltas gives each call's share (they add up to the params' gradient);
- the graph: `jax.linearize` runs the model with real numbers (so Python loops run) and returns the linear
  map of the gradient-carrying ops as a jaxpr; every module call is wrapped in `jax.named_scope`, so each
  op knows the call that made it.
"""
from __future__ import annotations

import dataclasses
import re

import jax
import numpy as np
from flax import linen as nn
from jax import numpy as jnp
from jax.extend.core import Literal

from .. import extract, graph
from ..extract import ModuleInfo, Note, ParamInfo, shape_str

_SCOPE = re.compile(r'd2lmod_call(\d+)')


class FlaxModel:
    """A Flax linen module with the variables it runs with; after backward, their gradients."""

    def __init__(self, module, variables, note: str = ''):
        self.module, self.variables, self.note = module, variables, note
        self.grads = None   # gradient of variables['params'] (same nesting), summed over backward() calls
        self.parts = {}     # parameter path -> [(module path, gradient)] per call, for modules that ran twice

    def __repr__(self) -> str:
        return f'FlaxModel({type(self.module).__name__})'

    def params(self) -> dict:
        """variables['params'], or {} for a module without parameters (init then makes no 'params' at all)."""
        return self.variables.get('params', {})

    def parameters(self):
        """The parameter arrays, as PyTorch's parameters() (the Explorer asks it whether there is anything to train)."""
        return iter(jax.tree_util.tree_leaves(self.params()))


class FlaxRun:
    """A module run on inputs, for the graph (a JAX array keeps no history to trace back from)."""

    def __init__(self, model: FlaxModel, inputs: tuple, loss_fn=None):
        self.model, self.inputs, self.loss_fn = model, inputs, loss_fn


def prepare(model, inputs: tuple, variables=None) -> FlaxModel:
    """The module with its variables; without them, init(PRNGKey(0), *inputs), said in a note."""
    if isinstance(model, FlaxModel):
        if variables is not None:
            model.variables = variables
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a flax.linen Module, got a {type(model).__name__}")
    name = type(model).__name__
    if variables is None:
        if not inputs:
            raise ValueError(f"{name}: a Flax module has no weights until init(key, X); pass variables="
                             f"{name.lower()}.init(key, X), or an input so that it can be initialised here")
        variables = model.init(jax.random.PRNGKey(0), *inputs)
        note = (f'no variables given: initialised here with {name}.init(jax.random.PRNGKey(0), X); pass '
                'variables= to see your own')
        return FlaxModel(model, variables, note)
    return FlaxModel(model, variables)


def graph_args(output, inputs: tuple, model, variables) -> tuple:
    """GraphView(module, X, variables=...) or GraphView(out, X, model=module, ...) -> (FlaxRun, FlaxModel)."""
    if isinstance(output, FlaxRun):
        return output, output.model
    target = model if model is not None else output
    if not inputs:
        raise ValueError("GraphView on a Flax module needs its input, as in GraphView(module, X, variables=v): "
                         "a JAX array keeps no record of how it was made")
    fm = prepare(target, inputs, variables)
    return FlaxRun(fm, inputs), fm


# ---- running with a record ----------------------------------------------------------------------------------
def _path(module) -> str:
    return '.'.join(module.scope.path) if module.scope is not None else ''


def _output_str(out) -> str:
    if hasattr(out, 'shape'):
        return shape_str(tuple(out.shape))
    if isinstance(out, (tuple, list)):
        return '[' + ', '.join(_output_str(o) for o in out) + ']'
    return type(out).__name__


@dataclasses.dataclass
class _Call:
    index: int
    path: str
    type: str
    extra: str
    parent: int | None
    output: str = ''


def _extra(module) -> str:
    """'features=20': the module's settings that differ from their defaults (sub-modules and lists left out)."""
    out = []
    for f in dataclasses.fields(module):
        if f.name in ('parent', 'name'):
            continue
        value = getattr(module, f.name, None)
        if isinstance(value, (nn.Module, list, tuple, dict)) or callable(value):
            continue
        if f.default is dataclasses.MISSING or value != f.default:
            out.append(f'{f.name}={value!r}')
    return ', '.join(out)


def _plain_arrays(module, plain: dict) -> None:
    """Arrays the module keeps as attributes (made in setup, not variables): dotted path -> shape, into plain."""
    for attr, value in vars(module).items():
        if isinstance(value, jax.Array) and not attr.startswith('_'):
            plain.setdefault(extract._join(_path(module), attr), tuple(value.shape))


def _mutable(variables) -> list:
    return [c for c in variables if c != 'params']


def _apply(fm: FlaxModel, params, inputs, record: list, deltas=None, plain=None):
    """module.apply with every method call recorded (and wrapped in a named scope); deltas: path -> list, added to
    that module's params one call at a time."""
    stack, seen = [], {}

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == 'setup' or stack and stack[-1] is None:
            return next_fun(*args, **kwargs)
        path = _path(module)
        call = _Call(len(record), path, type(module).__name__, _extra(module), stack[-1] if stack else None)
        record.append(call)
        k = seen[path] = seen.get(path, 0) + 1
        stack.append(call.index)
        try:
            with jax.named_scope(f'd2lmod_call{call.index}'):
                if deltas is not None and path in deltas:
                    own = module.variables['params']
                    moved = jax.tree_util.tree_map(jnp.add, own, deltas[path][k - 1])
                    stack.append(None)  # the inner apply's own calls are this call's insides: not recorded
                    try:
                        out = module.clone(parent=None).apply({**module.variables, 'params': moved}, *args, **kwargs)
                    finally:
                        stack.pop()
                else:
                    out = next_fun(*args, **kwargs)
        finally:
            stack.pop()
        call.output = _output_str(out)
        if plain is not None:
            _plain_arrays(module, plain)
        return out

    variables = {**fm.variables, 'params': params}
    with nn.intercept_methods(interceptor):
        if _mutable(variables):
            out, _ = fm.module.apply(variables, *inputs, mutable=_mutable(variables))
        else:
            out = fm.module.apply(variables, *inputs)
    return out


def _loss(out, loss_fn):
    if loss_fn is not None:
        return loss_fn(out), 'loss = loss_fn(output)'
    out = jnp.asarray(out)
    if out.size == 1:
        return out.reshape(()), 'the output is the loss'
    return out.sum(), 'loss = output.sum() (pass loss_fn= for a real loss)'


# ---- the tree -----------------------------------------------------------------------------------------------
def _leaves(tree, prefix=''):
    """(dotted path, array) of every leaf of a nested dict, in its own order."""
    for key, value in tree.items():
        path = extract._join(prefix, str(key))
        if hasattr(value, 'items'):
            yield from _leaves(value, path)
        else:
            yield path, value


def describe(fm: FlaxModel, *inputs) -> extract.ModelInfo:
    """extract.describe for a Flax module: paths from the calls and the variables, counts per call."""
    record, plain = [], {}
    if inputs:
        _apply(fm, fm.params(), inputs, record, plain=plain)
    params = list(_leaves(fm.params()))
    paths, types, extras = [''], {'': type(fm.module).__name__}, {'': _extra(fm.module)}
    for call in record:
        if call.path not in paths:
            paths.append(call.path)
            types[call.path], extras[call.path] = call.type, call.extra
    for ppath, _ in params:  # modules that hold parameters but did not run here
        mpath = ppath.rpartition('.')[0]
        while mpath not in paths:
            paths.append(mpath)
            mpath = mpath.rpartition('.')[0]
    if any(p not in types for p in paths):  # modules that did not run here: read them from setup
        for path, (kind, extra) in _structure(fm, plain).items():
            types.setdefault(path, kind)
            extras.setdefault(path, extra)
    ordered = _tree_order(paths)
    calls = {p: [c.output for c in record if c.path == p] for p in ordered} if inputs else None
    initialized = [p for p, _ in params] if fm.note else []
    modules, notes = [], []
    for path in ordered:
        own = [ParamInfo(p, p.rpartition('.')[2], tuple(v.shape), int(np.size(v)), True, None)
               for p, v in params if p.rpartition('.')[0] == path]
        count = sum(p.count for p in own)
        n = None if calls is None else len(calls[path])
        per_call = None if n is None else count * n
        info = ModuleInfo(path, path.rpartition('.')[2], types.get(path, '?'), extras.get(path, ''),
                          0 if not path else path.count('.') + 1, [], own, None, count, count, n,
                          extract._distinct(calls[path]) if calls else [], per_call, per_call, [])
        modules.append(info)
        notes += [n_ for n_ in extract.common_notes(info, []) if n_.tag != 'lazy']
    if fm.note:
        notes.append(Note('', 'lazy', fm.note))
    buffers = 0
    for collection, tree in fm.variables.items():
        if collection == 'params':
            continue
        for where, value in _leaves(tree):
            buffers += int(np.size(value))
            notes.append(Note(where, 'buffer', f"in the '{collection}' collection, shape {shape_str(np.shape(value))}: "
                                               f"a variable, not trained; apply(..., mutable=['{collection}']) "
                                               'returns it updated'))
    for where, shape in plain.items():
        notes.append(Note(where, 'plain tensor',
                          f'an array of shape {shape_str(shape)} ({int(np.prod(shape)):,} numbers) made in setup, '
                          'not a variable: not in params, never trained, not saved with the variables; setup runs '
                          'again on every init and apply, so it is made anew each time (self.param or '
                          'self.variable would keep it)'))
    plain_numbers = sum(int(np.prod(s)) for s in plain.values())
    shapes = [_output_str(x) for x in inputs]
    info = extract.assemble(type(fm.module).__name__, shapes, modules, notes, buffers, plain_numbers, initialized)
    for n in info.notes:  # Flax has no .grad: jax.grad returns one gradient per variable
        n.text = n.text.replace('add up in one .grad', 'add up in the one gradient jax.grad returns for them')
    return info


def _structure(fm: FlaxModel, plain: dict) -> dict:
    """path -> (class name, settings) of the modules that setup() makes (and Sequential's layers), found
    without running the model; submodules made inline in an @nn.compact method appear only when it runs."""
    found, stack = {}, [fm.module.bind(fm.variables)]
    while stack:
        module = stack.pop()
        try:
            module._try_setup()  # Flax runs setup lazily, on first attribute access; run it now
        except Exception:  # noqa: BLE001 -- a setup that needs an input: its children stay unnamed ('?')
            continue
        found[_path(module)] = (type(module).__name__, _extra(module))
        _plain_arrays(module, plain)
        for name, value in vars(module).items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if name != 'parent' and isinstance(item, nn.Module) and item.scope is not None:
                    stack.append(item)
    return found


def _tree_order(paths: list) -> list:
    """Depth first, children in the order they first appeared (first ran)."""
    children = {}
    for p in paths:
        if p:
            children.setdefault(p.rpartition('.')[0], []).append(p)
    out, stack = [], ['']
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(reversed(children.get(p, [])))
    return out


# ---- gradients, split by call ---------------------------------------------------------------------------------
def value_and_grads(fm: FlaxModel, inputs: tuple, loss_fn=None) -> tuple:
    """(loss, output string, how, grads, parts) from one eager run: jax.grad of the loss with respect to the
    params, and to a zero delta per call of each module that ran more than once (its share per call)."""
    record = []
    _apply(fm, fm.params(), inputs, record)
    counts = {}
    for c in record:
        counts[c.path] = counts.get(c.path, 0) + 1
    params = fm.params()
    owners = {p.rpartition('.')[0] for p, _ in _leaves(params)}
    shared = [p for p, k in counts.items() if k > 1 and p in owners
              and not any(p.startswith(q + '.') for q, j in counts.items() if j > 1 and q != p)]
    deltas = {p: [jax.tree_util.tree_map(jnp.zeros_like, _subtree(params, p)) for _ in range(counts[p])]
              for p in shared}
    info = {}

    def f(params, deltas):
        out = _apply(fm, params, inputs, [], deltas=deltas)
        loss, how = _loss(out, loss_fn)
        info['out'], info['how'] = _output_str(out), how
        return loss

    loss, (grads, dgrads) = jax.value_and_grad(f, argnums=(0, 1))(params, deltas)
    parts = {}
    for mpath, per_call in dgrads.items():
        for d in per_call:
            for leaf, g in _leaves(d):
                parts.setdefault(extract._join(mpath, leaf), []).append((mpath, np.asarray(g)))
    return float(loss), info['out'], info['how'], grads, parts


def _subtree(tree, path: str):
    for key in path.split('.'):
        tree = tree[key]
    return tree


def backward(fm: FlaxModel, inputs: tuple, loss_fn=None) -> None:
    """Gradients of the loss into fm.grads (added, as PyTorch adds into .grad) and their parts per call."""
    _, _, _, grads, parts = value_and_grads(fm, inputs, loss_fn)
    accumulate(fm, grads, parts)


def gradients(fm: FlaxModel, inputs: tuple, loss_fn=None) -> None:
    """GradFlow(module, X, variables=v): fresh gradients of the loss (output.sum() without loss_fn)."""
    fm.grads, fm.parts = None, {}
    backward(fm, inputs, loss_fn)


def accumulate(fm: FlaxModel, grads, parts: dict) -> None:
    if fm.grads is None:
        fm.grads, fm.parts = grads, parts
        return
    fm.grads = jax.tree_util.tree_map(jnp.add, fm.grads, grads)
    fm.parts = {p: [(m, a + b) for (m, a), (_, b) in zip(fm.parts.get(p, []), v)] if p in fm.parts else v
                for p, v in parts.items()}


def grad_stats(fm: FlaxModel, calls: dict | None = None) -> list:
    """extract.grad_stats for a Flax module: the held gradient of every parameter, shared ones split by call."""
    grads = dict(_leaves(fm.grads)) if fm.grads is not None else {}
    out = []
    for path, value in _leaves(fm.params()):
        shape, count = tuple(np.shape(value)), int(np.size(value))
        if path not in grads:
            reason = 'no backward yet' if fm.grads is None else 'the loss does not depend on it'
            out.append(extract.grad_info(path, shape, count, None, reason))
        else:
            out.append(extract.grad_info(path, shape, count, np.asarray(grads[path]), '', fm.parts.get(path, ())))
    return out


# ---- the graph ------------------------------------------------------------------------------------------------
def trace(run: FlaxRun, model=None) -> graph.Graph:
    """graph.trace for a Flax run: the ops of jax.linearize's jaxpr, grouped by the module call that made them."""
    fm = run.model
    record = []
    order = [jax.tree_util.keystr(k, simple=True, separator='.')
             for k, _ in jax.tree_util.tree_flatten_with_path(fm.params())[0]]

    def f(params):
        record.clear()
        return _loss(_apply(fm, params, run.inputs, record), run.loss_fn)[0]

    _, linear = jax.linearize(f, fm.params())
    jaxpr = jax.make_jaxpr(linear)(fm.params()).jaxpr
    count = {}
    for c in record:
        count[c.path] = count.get(c.path, 0) + 1
    clusters, number = [], {}
    for c in record:
        number[c.path] = number.get(c.path, 0) + 1
        title = (c.path or c.type) + (f' · call {number[c.path]}' if count[c.path] > 1 else '')
        parent = f'c{c.parent + 1}' if c.parent is not None else None
        depth = 0 if parent is None else clusters[c.parent].depth + 1
        detail = f'{c.type}({c.extra})' if c.path else ''
        clusters.append(graph.Cluster(f'c{c.index + 1}', parent, c.path, title, detail, number[c.path],
                                      count[c.path], depth))
    grads = dict(_leaves(fm.grads)) if fm.grads is not None else {}
    nodes, edges, node_of = [], [], {}
    made_by, uses = {}, {}
    for eqn in jaxpr.eqns:
        for v in eqn.invars:
            if not isinstance(v, Literal):
                uses[v] = uses.get(v, 0) + 1
    parent_of, depth_of = {c.id: c.parent for c in clusters}, {c.id: c.depth for c in clusters}
    consumers = {}
    for eqn in jaxpr.eqns:
        for v in eqn.invars:
            if not isinstance(v, Literal):
                consumers.setdefault(v, []).append(eqn)

    def home(eqn):
        found = _SCOPE.findall(str(eqn.source_info.name_stack))
        return f'c{int(found[-1]) + 1}' if found else None
    for var, path in zip(jaxpr.invars, order):
        if var not in consumers:
            continue
        users = [home(e) for e in consumers[var]]
        where = graph._common_cluster(users, parent_of, depth_of) if None not in users else None
        g = grads.get(path)
        nodes.append(graph.Node(f'n{len(nodes) + 1}', 'parameter', path, tuple(var.aval.shape), where,
                                grad_norm=None if g is None else float(np.linalg.norm(np.asarray(g)))))
        node_of[var] = nodes[-1]
    for eqn in jaxpr.eqns:
        ins = [v for v in eqn.invars if not isinstance(v, Literal) and v in node_of]
        prev = made_by.get(ins[0]) if len(ins) == 1 else None
        node = node_of.get(ins[0]) if prev is not None else None
        if (prev is not None and prev.primitive == eqn.primitive and uses.get(ins[0]) == 1 and home(prev) == home(eqn)
                and ins[0].aval.shape == eqn.outvars[0].aval.shape and node.kind == 'op'):
            node.repeat += 1  # the same op on its own output again: a loop, drawn once with its count
            node.ops += 1
        else:
            node = graph.Node(f'n{len(nodes) + 1}', 'op', str(eqn.primitive), tuple(eqn.outvars[0].aval.shape),
                              home(eqn), ops=1)
            nodes.append(node)
            edges.extend(graph.Edge(node_of[v].id, node.id) for v in ins)
        for v in eqn.outvars:
            node_of[v] = node
            made_by[v] = eqn
    out = node_of.get(jaxpr.outvars[0]) if jaxpr.outvars and not isinstance(jaxpr.outvars[0], Literal) \
        else None
    if out is not None:
        out.output = True
    notes = ["The ops are those jax.linearize records while the model runs eagerly: the ones that carry "
             "gradients (a Python loop runs for real, so each of its steps is an op)."]
    if fm.grads is None:
        notes.append("Gradient norms appear on the parameters once gradients were computed (the Explorer's "
                     "backward button).")
    return graph.Graph(nodes, edges, clusters, notes)


# ---- the Explorer's buttons -----------------------------------------------------------------------------------
class Trainer:
    """forward (the loss, and its gradients kept ready), backward (add them in), SGD step, zero_grad."""

    def __init__(self, model: FlaxModel, inputs: tuple, loss_fn=None):
        self.model, self.inputs, self.loss_fn = model, inputs, loss_fn
        self.loss, self.pending, self.value = None, None, None

    def forward(self) -> tuple:
        value, out, how, grads, parts = value_and_grads(self.model, self.inputs, self.loss_fn)
        self.pending = (grads, parts)
        self.loss = FlaxRun(self.model, self.inputs, self.loss_fn)
        self.value = value
        return self.loss, out, how

    @staticmethod
    def scalar(loss) -> float:
        return float(np.asarray(loss))

    def backward(self) -> None:
        accumulate(self.model, *self.pending)

    def step(self, lr: float) -> None:
        if self.model.grads is None:
            return
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, self.model.params(), self.model.grads)
        self.model.variables = {**self.model.variables, 'params': params}

    def zero_grad(self) -> None:
        self.model.grads, self.model.parts = None, {}

