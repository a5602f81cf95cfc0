"""PyTorch's adapter: a torch.nn.Module (and the tensors it makes) -> the same plain data as extract.py and graph.py.

The tree comes from `_modules`/`_parameters`/`_buffers` (the same registries d2lmod copies), calls and output
shapes from forward hooks. A shared parameter's gradient is split by call with one view of the parameter per
call (`p.view_as(p)`, put in the module's `__dict__` for that call only): backward fills each view's `.grad`,
and the views of one parameter add up to its `.grad`. The graph is read from autograd (`grad_fn` and
`next_functions`); module calls are inferred from which module owns the parameters an op uses.
"""
from __future__ import annotations

import re
import weakref

import torch

from .. import extract, graph
from ..extract import ParamInfo, shape_str

_OWN = set(torch.nn.Module().__dict__)  # Module's own bookkeeping attributes (hooks, registries, training)
_PARTS = weakref.WeakKeyDictionary()    # model -> ({parameter path: [(module path, gradient), ...]}, how it was made)
_RERUN = ('these parts come from GradFlow\'s own run of model(X) with its loss (output.sum(), or loss_fn=); .grad '
          'holds another loss or earlier backward() calls, so pass the same loss_fn')


# ---- the tree ---------------------------------------------------------------------------------------------
def _shape(module, name: str, p) -> tuple:
    """A parameter's shape; a lazy one's known sizes (LazyLinear knows out_features) and None for the rest."""
    if not torch.nn.parameter.is_lazy(p):
        return tuple(p.shape)
    out = getattr(module, 'out_features', None)
    return ((out, None) if name == 'weight' else (out,)) if out is not None else (None,)


def output_str(out) -> str:
    if isinstance(out, torch.Tensor):
        return shape_str(tuple(out.shape))
    if isinstance(out, (tuple, list)):
        return '[' + ', '.join(output_str(o) for o in out) + ']'
    return type(out).__name__


def _plain_notes(path: str, module, registered: set) -> list:
    """Plain tensor attributes, and modules or tensors kept in plain lists, tuples and dicts."""
    notes = []
    for attr, value in module.__dict__.items():
        if attr in _OWN:
            continue
        where = extract._join(path, attr)
        if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
            notes.append(extract.plain_tensor_note(where, tuple(value.shape), value.numel(), value.requires_grad))
        elif isinstance(value, (list, tuple, dict)):
            items = list(value.values()) if isinstance(value, dict) else list(value)
            hidden = [v for v in items if isinstance(v, torch.nn.Module) and id(v) not in registered]
            if hidden:
                params = {id(p): p for m in hidden for p in m.parameters()}
                lazy = any(torch.nn.parameter.is_lazy(p) for p in params.values())
                count = '?' if lazy else f'{sum(p.numel() for p in params.values()):,}'
                types = ', '.join(extract._distinct([type(m).__name__ for m in hidden]))
                fix = 'nn.ModuleDict' if isinstance(value, dict) else 'nn.ModuleList'
                notes.append(extract.hidden_modules_note(where, type(value).__name__, len(hidden), types, count,
                                                         fix))
            tensors = [v for v in items if isinstance(v, torch.Tensor)]
            if tensors:
                numbers = sum(t.numel() for t in tensors if not torch.nn.parameter.is_lazy(t))
                notes.append(extract.hidden_tensors_note(where, type(value).__name__, len(tensors), numbers))
    return notes


def describe(model, *inputs) -> extract.ModelInfo:
    """extract.describe for a torch.nn.Module: the tree with counts and notes; with inputs, calls and shapes."""
    lazy_before = [(n, p) for n, p in model.named_parameters() if torch.nn.parameter.is_lazy(p)]
    calls = extract._run_counting(model, inputs, torch.no_grad, output_str) if inputs else None
    initialized = [n for n, p in lazy_before if not torch.nn.parameter.is_lazy(p)]
    walked = list(extract._walk(model))
    registered = {id(m) for _, m, _, _ in walked}
    first_param, modules, notes = {}, [], []
    for path, module, depth, same_as in walked:
        params = []
        if same_as is None:
            for name, p in module._parameters.items():
                if p is not None:
                    ppath = extract._join(path, name)
                    count = None if torch.nn.parameter.is_lazy(p) else p.numel()
                    params.append(ParamInfo(ppath, name, _shape(module, name, p), count, p.requires_grad,
                                            first_param.get(id(p)), p))
                    first_param.setdefault(id(p), ppath)
        info = extract._module_info(path, module, depth, same_as, params, calls)
        modules.append(info)
        if same_as is None:
            notes += extract.common_notes(info, initialized)
            for name, b in module._buffers.items():
                if b is not None:
                    notes.append(extract.buffer_note(extract._join(path, name), tuple(b.shape),
                                                     name not in module._non_persistent_buffers_set))
            notes += _plain_notes(path, module, registered)
    shapes = [shape_str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__ for x in inputs]
    buffers = sum(b.numel() for b in model.buffers())
    plain = sum(v.numel() for m in model.modules() for k, v in m.__dict__.items()
                if k not in _OWN and isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter))
    return extract.assemble(type(model).__name__, shapes, modules, notes, buffers, plain, initialized)


# ---- gradients, split by call ------------------------------------------------------------------------------
def record(model, inputs):
    """Run model(*inputs) with one view of every parameter per module call; returns (output, views).

    views: (parameter, module path, view) in call order; after backward, view.grad is that call's share.
    """
    paths = {id(m): p for p, m in model.named_modules()}
    views, handles, saved = [], [], {}

    def before(module, args):
        stack = saved.setdefault(id(module), [])
        stack.append({name: module.__dict__.get(name) for name in module._parameters})
        for name, p in module._parameters.items():
            if p is not None and p.requires_grad and not torch.nn.parameter.is_lazy(p):
                view = p.view_as(p)  # a new node per call: its gradient is this call's part of p.grad
                view.retain_grad()
                module.__dict__[name] = view  # found before Module.__getattr__ looks in _parameters
                views.append((p, paths.get(id(module), type(module).__name__), view))

    def after(module, args, out):
        for name, old in saved[id(module)].pop().items():
            if old is None:
                module.__dict__.pop(name, None)
            else:
                module.__dict__[name] = old
    try:
        for module in model.modules():
            if module._parameters:
                handles.append(module.register_forward_pre_hook(before))
                handles.append(module.register_forward_hook(after))
        out = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module in model.modules():  # an exception inside forward: no view stays behind
            for stack in saved.pop(id(module), []):
                for name in stack:
                    module.__dict__.pop(name, None)
    return out, views


def keep_parts(model, views, off: str = extract.ACCUMULATED) -> None:
    """After backward: remember each shared parameter's gradient per call (for grad_stats)."""
    names = {id(p): n for n, p in model.named_parameters()}
    by_param = {}
    for p, module, view in views:
        if view.grad is not None:
            by_param.setdefault(names.get(id(p)), []).append((module, view.grad.detach().numpy().copy()))
    _PARTS[model] = ({path: parts for path, parts in by_param.items() if len(parts) > 1}, off)


def gradients(model, inputs, loss_fn=None) -> None:
    """Each shared parameter's gradient per call, from one more forward and torch.autograd.grad (.grad untouched)."""
    out, views = record(model, inputs)
    loss = loss_fn(out) if loss_fn is not None else (out if out.numel() == 1 else out.sum())
    grads = torch.autograd.grad(loss.reshape(()), [v for _, _, v in views], allow_unused=True)
    for (_, _, view), g in zip(views, grads):
        view.grad = g
    keep_parts(model, views, _RERUN)


def grad_stats(model, calls: dict | None = None) -> list:
    """extract.grad_stats for a torch.nn.Module: .grad of every parameter, shared ones split by call."""
    parts, off = _PARTS.get(model, ({}, ''))
    named = list(model.named_parameters())
    any_grad = any(p.grad is not None for _, p in named)
    owners = {}
    for mpath, m in model.named_modules():
        for name, p in m._parameters.items():
            if p is not None:
                owners.setdefault(id(p), mpath)
    out = []
    for path, p in named:
        lazy = torch.nn.parameter.is_lazy(p)
        shape, count = (None,) if lazy else tuple(p.shape), None if lazy else p.numel()
        if p.grad is None:
            if lazy:
                reason = 'not initialized: its lazy layer has not run yet'
            elif not p.requires_grad:
                reason = 'frozen: requires_grad=False'
            elif not any_grad:
                reason = 'no backward() yet'
            elif calls is not None and calls.get(owners[id(p)]) == 0:
                reason = 'its module did not run in forward'
            else:
                reason = 'backward() never reached it: unused in forward, or read through .data'
            out.append(extract.grad_info(path, shape, count, None, reason))
        else:
            out.append(extract.grad_info(path, shape, count, p.grad.detach().numpy(), '', parts.get(path, ()), off))
    return out


# ---- the graph, from autograd -------------------------------------------------------------------------------
def _op_name(fn) -> str:
    """'AddmmBackward0' -> 'addmm'."""
    return re.sub(r'Backward\d*$', '', fn.name()).lower() or fn.name()


def _shape_of(fn):
    try:
        return tuple(fn._input_metadata[0].shape)
    except (AttributeError, IndexError, RuntimeError):
        return None


def _walk(root) -> list:
    """Every autograd node root depends on, each after its inputs (iterative depth first, inputs in order)."""
    order, seen, stack = [], {root}, [(root, iter(_inputs(root)))]
    while stack:
        fn, inputs = stack[-1]
        for parent in inputs:
            if parent not in seen:
                seen.add(parent)
                stack.append((parent, iter(_inputs(parent))))
                break
        else:
            stack.pop()
            order.append(fn)
    return order


def _inputs(fn) -> list:
    """The autograd nodes fn reads; a same-shape view of a parameter (the per-call views of record()) is
    read as the parameter itself."""
    out = []
    for f, _ in fn.next_functions:
        if f is not None and f.name() == 'ViewBackward0' and len(f.next_functions) == 1:
            leaf = f.next_functions[0][0]
            if leaf is not None and hasattr(leaf, 'variable') and _shape_of(f) == tuple(leaf.variable.shape):
                f = leaf
        if f is not None:
            out.append(f)
    return out


def _saved_plain(fn, plain: dict):
    """The plain tensor attributes an op saved for backward (rand_weight in X @ rand_weight), by storage."""
    found = []
    for attr in dir(fn):
        if attr.startswith('_saved_') and not attr.endswith(('sizes', 'strides')):
            try:
                value = getattr(fn, attr)
            except RuntimeError:  # freed by an earlier backward
                continue
            if isinstance(value, torch.Tensor) and value.numel() and (value.data_ptr(), tuple(value.shape)) in plain:
                found.append(plain[(value.data_ptr(), tuple(value.shape))])
    return found


def trace(output, model=None) -> graph.Graph:
    """graph.trace for a torch tensor: ops from grad_fn, leaves by name, module calls inferred from parameters."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"trace() needs a torch Tensor, got {type(output).__name__}")
    notes = []
    if output.grad_fn is None:
        notes.append("This tensor has no autograd history (no input required a gradient, or it was computed under "
                     "torch.no_grad()), so there is no graph behind it.")
        return graph.Graph([graph.Node('n1', 'input', 'output', tuple(output.shape), None, output=True)], [], [],
                           notes)
    modules = dict(model.named_modules()) if model is not None else {}
    pnames = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    owner = {id(p): path for path, m in modules.items() for p in m._parameters.values() if p is not None}
    plain = {(v.data_ptr(), tuple(v.shape)): extract._join(path, k) for path, m in modules.items()
             for k, v in m.__dict__.items() if k not in _OWN and isinstance(v, torch.Tensor)
             and not isinstance(v, torch.nn.Parameter) and v.numel()}
    order = _walk(output.grad_fn)
    fwd = sorted([f for f in order if not hasattr(f, 'variable')], key=lambda f: f._sequence_nr())  # forward order
    consumers = {}
    for f in fwd:
        for p in _inputs(f):
            consumers.setdefault(p, []).append(f)

    # module calls: an op using a parameter (directly, or through a view such as the .t() of F.linear) belongs
    # to the parameter's module; that module's next call starts when one of its parameters is used again
    through = {f for f in fwd if len(_inputs(f)) == 1 and hasattr(_inputs(f)[0], 'variable')
               and len(consumers.get(f, [])) == 1}  # e.g. the weight.t() of F.linear: part of its user's call
    uses = {}
    for f in fwd:
        if f in through:
            continue
        for p in _inputs(f):
            leaf = p if hasattr(p, 'variable') else _inputs(p)[0] if p in through else None
            if leaf is not None and id(leaf.variable) in owner:
                uses.setdefault(f, []).append(leaf.variable)
    call_of, calls, used, count = {}, [], {}, {}  # calls: (module path, call number); count: path -> calls so far
    for f in fwd:
        if f not in uses:
            continue
        path = owner[id(uses[f][0])]
        current = used.get(path)
        if current is None or any(id(v) in current[1] for v in uses[f]):
            count[path] = count.get(path, 0) + 1  # counted as we go: a 10,000-layer model stays linear
            calls.append((path, count[path]))
            current = used[path] = (len(calls) - 1, set())
        current[1].update(id(v) for v in uses[f])
        call_of[f] = current[0]
    clusters, cid = _clusters(calls, modules, model)
    parent_of = {c.id: c.parent for c in clusters}
    depth_of = {c.id: c.depth for c in clusters}
    param_leaf = {c.id for c in clusters if not modules.get(c.path) or not list(modules[c.path].children())}

    path_of = {c.id: c.path for c in clusters}

    def lift(c):
        """Where an op after call c goes: around a layer's call (it holds only its own ops), and out of a
        Sequential whose last child made the input (a Sequential does nothing after its last child)."""
        child = None
        if c in param_leaf:
            child, c = c, parent_of[c]
        while c is not None and child is not None and isinstance(modules.get(path_of[c]), torch.nn.Sequential) \
                and graph._join(path_of[c], list(modules[path_of[c]]._modules)[-1]) == path_of[child]:
            child, c = c, parent_of[c]
        return c

    home = {}
    for f in fwd:
        if f in call_of:
            home[f] = cid[call_of[f]]
            continue
        # an op without parameters follows the call that made its (latest) input; the first ops of a call,
        # fed only by inputs, go where the layers they feed are called
        made = sorted((p for p in _inputs(f) if p in home), key=lambda p: -p._sequence_nr())  # latest first
        near = [lift(home[p]) for p in made] or [parent_of[cid[call_of[c]]] for c in consumers.get(f, [])
                                                 if c in call_of]
        # inputs from calls that have ended (a sibling block's output) say nothing: keep those on the latest
        # input's line, and take the deepest of them
        near = [c for c in near if _nested(c, near[0], parent_of) or _nested(near[0], c, parent_of)]
        inner = [c for c in near if all(_nested(c, o, parent_of) for o in near)]
        if inner:
            home[f] = inner[0]
        else:
            home[f] = graph._common_cluster(near, parent_of, depth_of) if near and None not in near else None
        if not near and clusters and model is not None:
            home[f] = clusters[0].id
    for f in reversed(fwd):
        if f in through:
            home[f] = home[consumers[f][0]]
    return _assemble(order, fwd, home, consumers, pnames, plain, clusters, output, notes, model)


def _nested(inner, outer, parent_of: dict) -> bool:
    """True when cluster inner lies in outer (None: the top level, around everything)."""
    while inner is not None and inner != outer:
        inner = parent_of[inner]
    return inner == outer


def _clusters(calls: list, modules: dict, model) -> tuple:
    """Cluster per inferred call, with one call of each enclosing module around it; returns (clusters, index -> id)."""
    clusters, by_key, cid, depth = [], {}, {}, {}
    total = {}
    for path, _ in calls:
        total[path] = total.get(path, 0) + 1

    def cluster(path: str, number: int):
        key = (path, number)
        if key in by_key:
            return by_key[key]
        parent = None
        if path or model is None:
            if path:
                parent = cluster(path.rpartition('.')[0], 1) if model is not None or '.' in path else None
        module = modules.get(path)
        kind = type(module).__name__ if module is not None else '?'
        title = (path or kind) + (f' · call {number}' if total.get(path, 1) > 1 else '')
        detail = graph._describe(module) if module is not None and path else ''
        c = graph.Cluster(f'c{len(clusters) + 1}', parent, path, title, detail, number, total.get(path, 1),
                          0 if parent is None else depth[parent] + 1)
        depth[c.id] = c.depth
        clusters.append(c)
        by_key[key] = c.id
        return c.id
    for i, (path, number) in enumerate(calls):
        cid[i] = cluster(path, number)
    return clusters, cid


def _assemble(order, fwd, home, consumers, pnames, plain, clusters, output, notes, model) -> graph.Graph:
    """Nodes and edges in forward order, loops (the same op on its own output, again and again) folded."""
    first = {}
    for f in fwd:
        ins = _inputs(f)
        p = ins[0] if len(ins) == 1 else None
        again = (p is not None and p in first and _op_name(p) == _op_name(f) and home.get(p) == home[f]
                 and len(consumers.get(p, [])) == 1 and _shape_of(p) == _shape_of(f))
        first[f] = first[p] if again else f
    runs = {}
    for f in fwd:
        runs[first[f]] = runs.get(first[f], 0) + 1
    nodes, edges, node_of = [], [], {}
    leaves = [f for f in order if hasattr(f, 'variable')]
    inputs = [f for f in leaves if id(f.variable) not in pnames and not isinstance(f.variable, torch.nn.Parameter)]
    if model is not None and len(inputs) < len([f for f in leaves if id(f.variable) not in pnames]):
        notes.append("Parameters that are not registered in the model took part (modules kept in a plain Python "
                     "list or dict?): they are missing from parameters(), state_dict() and the optimizer. Use "
                     "nn.ModuleList / nn.ModuleDict.")
    parent_of, depth_of = {c.id: c.parent for c in clusters}, {c.id: c.depth for c in clusters}
    for f in leaves:  # parameters and inputs that require grad
        v = f.variable
        node_id = f'n{len(nodes) + 1}'
        node_of[f] = node_id
        users = [home[c] for c in consumers.get(f, []) if c in home]
        grad = None if v.grad is None else float(v.grad.norm())
        if id(v) in pnames:
            where = graph._common_cluster(users, parent_of, depth_of) if users and None not in users else None
            nodes.append(graph.Node(node_id, 'parameter', pnames[id(v)], tuple(v.shape), where, grad_norm=grad))
        elif isinstance(v, torch.nn.Parameter):  # used, but not registered (a layer kept in a plain list?)
            nodes.append(graph.Node(node_id, 'parameter', 'parameter', tuple(v.shape), None, 'not in the model',
                                    grad))
        else:
            label = 'input' if len(inputs) == 1 else f'input {inputs.index(f) + 1}'
            nodes.append(graph.Node(node_id, 'input', label, tuple(v.shape), None, 'requires grad', grad))
    plain_nodes = {}
    for f in fwd:
        if first[f] is not f:
            node_of[f] = node_of[first[f]]
            continue
        plain_ids = []
        for name in _saved_plain(f, plain):
            if name not in plain_nodes:
                plain_nodes[name] = f'n{len(nodes) + 1}'
                nodes.append(graph.Node(plain_nodes[name], 'plain', name, None, home[f],
                                        'plain tensor: not a parameter'))
            plain_ids.append(plain_nodes[name])
        node_id = f'n{len(nodes) + 1}'
        node_of[f] = node_id
        nodes.append(graph.Node(node_id, 'op', _op_name(f), _shape_of(f), home[f], repeat=runs[f], ops=runs[f]))
        edges.extend(graph.Edge(node_of[p], node_id) for p in _inputs(f) if p in node_of)
        edges.extend(graph.Edge(pid, node_id) for pid in plain_ids)
    by_id = {n.id: n for n in nodes}
    by_id[node_of[output.grad_fn]].output = True
    used = {n.label for n in nodes if n.kind == 'parameter'}
    if model is not None:
        unused = [n for n in pnames.values() if n not in used]
        if unused:
            notes.append(f"Not in this graph, so this output sends them no gradient: {', '.join(unused[:5])}"
                         + (f' and {len(unused) - 5} more.' if len(unused) > 5 else '.'))
        notes.append("Module calls are read from which module owns the parameters each op uses (PyTorch's "
                     "autograd graph does not record modules); an op without parameters is drawn in the module "
                     "call around the latest call that made one of its inputs.")
    return graph.Graph(nodes, edges, [c for c in clusters], notes)


# ---- the Explorer's buttons ---------------------------------------------------------------------------------
class Trainer:
    """forward, backward, step and zero_grad on a PyTorch model, with torch.optim.SGD."""

    def __init__(self, model, inputs, loss_fn=None):
        self.model, self.inputs, self.loss_fn = model, inputs, loss_fn
        self.loss, self.value, self.views, self.optimizer = None, None, [], None

    def forward(self) -> tuple:
        """(loss tensor, output description, how the loss was made)."""
        out, self.views = record(self.model, self.inputs)
        if self.loss_fn is not None:
            loss, how = self.loss_fn(out), 'loss = loss_fn(output)'
        elif not isinstance(out, torch.Tensor):
            raise TypeError(f"the model returned a {type(out).__name__}, not a Tensor; pass loss_fn= to turn it "
                            "into a scalar loss")
        elif out.numel() == 1:
            loss, how = out, 'the output is the loss'
        else:
            loss, how = out.sum(), 'loss = output.sum() (pass loss_fn= for a real loss)'
        self.loss, self.value = loss, float(loss.detach())
        return loss, output_str(out), how

    @staticmethod
    def scalar(loss) -> float:
        return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)

    def backward(self) -> None:
        # the graph is kept, as d2lmod's Explorer keeps it: the button may be pressed again on the same loss,
        # and the graph drawn after the first backward still reads the tensors its ops saved (rand_weight)
        self.loss.backward(retain_graph=True)
        keep_parts(self.model, self.views)

    def step(self, lr: float) -> None:
        if self.optimizer is None:
            self.optimizer = torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad], lr=lr)
        for group in self.optimizer.param_groups:
            group['lr'] = lr
        self.optimizer.step()

    def zero_grad(self) -> None:
        self.model.zero_grad()
        _PARTS.pop(self.model, None)

