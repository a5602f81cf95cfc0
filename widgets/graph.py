"""The computation graph behind a tensor as plain data: trace it, and fold it by module.

trace() walks back from a tensor through `_inputs()` (its parents as they were when used) and returns a
Graph of plain nodes, edges and clusters (one cluster per module call). collapse() draws whole module calls
as single nodes, so a big model stays readable. draw.py turns a Graph into DOT or SVG; graph_view.py is
the widget.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from d2lmod.nn.module import Parameter
from d2lmod.tensor import Tensor

from . import frameworks

MAX_NODES = 60  # above this many nodes a picture stops being readable: collapse() folds module calls
MAX_DEPTH = 24  # module calls nested deeper than this are drawn folded (Graphviz slows down with deep nests)


# ---- the data ---------------------------------------------------------------------------------------------
@dataclass
class Node:
    """One box of the picture: an op, a leaf tensor, or (after collapse) a whole module call."""
    id: str                  # 'n1', 'n2', ... in traversal order (inputs first); 'c3' for a folded call
    kind: str                # 'op', 'parameter', 'buffer', 'plain', 'constant', 'input' or 'module'
    label: str               # op name, dotted name, constant value or module call title
    shape: tuple | None      # the tensor's shape (None for a folded call with several outputs)
    cluster: str | None      # id of the cluster it is drawn in; None for the top level
    note: str = ''           # more lines, e.g. 'plain tensor: not a parameter'
    grad_norm: float | None = None  # norm of .grad, once backward() has reached this leaf
    repeat: int = 1          # how many identical ops in a row this node stands for (a loop)
    ops: int = 0             # how many ops ran inside it: repeat for an op, all of them for a folded call
    grad_parts: tuple = ()   # a shared leaf's gradient norm per module call that used it, in call order
    output: bool = False     # the tensor the graph was traced from (or the folded call holding it)


@dataclass
class Edge:
    """A tensor flowing into an op; grad_norm is this use's part of a shared leaf's gradient."""
    src: str
    dst: str
    grad_norm: float | None = None


@dataclass
class Cluster:
    """One run of a module's forward: a box around the ops it made and the calls it made."""
    id: str                  # 'c1', 'c2', ... in the order the calls ran
    parent: str | None       # the cluster of the enclosing call
    path: str                # the module's dotted path ('' for the model itself)
    title: str               # e.g. 'FixedHiddenMLP (2) › linear · call 1'
    detail: str              # e.g. 'LazyLinear(in_features=20, out_features=20, bias=True)'
    call: int                # which call of this module it is: 1, 2, ... in the order they ran
    calls: int               # how many calls of this module the graph holds
    depth: int               # 0 for an outermost call


@dataclass
class Graph:
    """Plain data for one picture: nodes and edges in a deterministic order, clusters parents first."""
    nodes: list
    edges: list
    clusters: list
    notes: list = field(default_factory=list)  # sentences for the reader


def op_count(data: Graph) -> int:
    """How many ops ran to make the traced tensor (a folded loop counts every run)."""
    return sum(node.ops for node in data.nodes)


# ---- tracing: Tensor -> Graph ---------------------------------------------------------------------------------
def _walk(output: Tensor) -> list:
    """Every tensor output depends on, each after its parents (iterative depth first, parents in order)."""
    order, seen, stack = [], {id(output)}, [(output, iter(output._inputs()))]
    while stack:
        tensor, parents = stack[-1]
        for parent in parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent._inputs())))
                break
        else:  # all parents are in order already
            stack.pop()
            order.append(tensor)
    return order


def _join(path: str, name: str) -> str:
    return f'{path}.{name}' if path else name


class _Names:
    """Dotted names for the modules, parameters and plain tensors of the model, found by walking it."""

    def __init__(self):
        self.path = {}       # id(module) -> dotted path
        self.owner = {}      # id(module) -> (owner's path, owner, attribute name)
        self.module_at = {}  # dotted path -> module
        self.roots = set()   # paths of the models walked ('' and the like)
        self.tensor = {}     # id(tensor) -> (kind, dotted name)

    def add(self, prefix: str, root) -> None:
        """Name root and everything under it, starting from prefix ('' for the model itself)."""
        if id(root) in self.path:
            return
        self.roots.add(prefix)
        for path, module in root.named_modules(prefix=prefix):
            if id(module) in self.path:
                continue
            self.path[id(module)] = path
            self.module_at[path] = module
            for name, child in module._modules.items():
                if child is not None:
                    self.owner.setdefault(id(child), (path, module, name))
            for name, p in module._parameters.items():
                if p is not None:
                    self.tensor.setdefault(id(p), ('parameter', _join(path, name)))
            for name, b in module._buffers.items():
                if b is not None:
                    self.tensor.setdefault(id(b), ('buffer', _join(path, name)))
            for name, value in module.__dict__.items():
                if isinstance(value, Tensor) and not isinstance(value, Parameter):
                    self.tensor.setdefault(id(value), ('plain', _join(path, name)))


def _calls_of(order: list) -> list:
    """The module calls that made the ops of order, with all their enclosing calls, in the order they ran."""
    calls = {}
    for tensor in order:
        call = tensor._call if tensor._parents else None
        while call is not None and id(call) not in calls:
            calls[id(call)] = call
            call = call.parent
    return sorted(calls.values(), key=lambda c: c.index)


def _name_modules(calls: list, model) -> tuple:
    """Walk the model (or the outermost call's module) and name every module that ran; returns (names, notes)."""
    names, notes = _Names(), []
    if model is not None:
        names.add('', model)
    for call in calls:  # outermost calls not inside the model are named after their class
        if call.parent is None and id(call.module) not in names.path:
            prefix = '' if not names.roots else _fresh(type(call.module).__name__, names.module_at)
            names.add(prefix, call.module)
    for call in calls:  # a module that ran but is not registered anywhere (kept in a plain list?)
        module = call.module
        if id(module) not in names.path:
            names.add(_fresh(f'(unregistered {type(module).__name__})', names.module_at), module)
            notes.append(f"A {type(module).__name__} ran inside the model but is not registered in it (kept "
                         "in a plain Python list or dict?): its parameters are missing from parameters(), "
                         "state_dict() and the optimizer. Use nn.ModuleList / nn.ModuleDict or add_module().")
    return names, notes


def _fresh(name: str, taken) -> str:
    """name, or name 2, name 3, ... whichever is not taken yet."""
    k, candidate = 1, name
    while candidate in taken:
        k += 1
        candidate = f'{name} {k}'
    return candidate


def _leaf_kinds(order: list, names: _Names) -> dict:
    """id(leaf) -> (kind, label, note) for every leaf of the graph."""
    leaves = [t for t in order if not t._parents]
    unnamed_inputs = [t for t in leaves if id(t) not in names.tensor and not isinstance(t, Parameter)
                      and not _is_constant(t)]
    number_of = {id(t): i for i, t in enumerate(unnamed_inputs, 1)}  # by identity: == is elementwise
    kinds = {}
    for t in leaves:
        kind, label = names.tensor.get(id(t), (None, None))
        note = ''
        if kind == 'plain':
            note = 'plain tensor: not a parameter'
        elif kind == 'buffer':
            note = 'buffer (registered, not trained)'
        elif kind is None and isinstance(t, Parameter):
            kind, label, note = 'parameter', 'parameter', 'not in the model'
        elif kind is None and _is_constant(t):
            kind, label, note = 'constant', f'{float(t._data.reshape(-1)[0]):g}', 'constant'
        elif kind is None:
            kind = 'input'
            label = 'input' if len(unnamed_inputs) == 1 else f'input {number_of[id(t)]}'
            note = 'requires grad' if t.requires_grad else ''
        if kind == 'parameter' and not t.requires_grad:
            note = 'frozen: requires_grad=False'
        kinds[id(t)] = (kind, label, note)
    return kinds


def _is_constant(t: Tensor) -> bool:
    """A one-number leaf that needs no gradient: the 2 of `X /= 2`, the 1 of `+ 1`."""
    return t._data is not None and t._data.size == 1 and not t.requires_grad and not isinstance(t, Parameter)


def _runs(order: list, kinds: dict) -> dict:
    """id(op) -> id of the first op of its run: the same op on its own output, again and again (a loop)."""
    uses = Counter(id(p) for t in order for p in t._inputs())

    def sides(t):  # what an op takes besides its first input; equal constants count as the same
        return tuple(('value', s.shape, s._data.tobytes()) if kinds.get(id(s), ('',))[0] == 'constant'
                     else ('same', id(s)) for s in t._inputs()[1:])

    first = {}
    for t in order:
        if not t._parents:
            continue
        p = t._inputs()[0]
        same_again = (p._parents and p._op == t._op and p._call is t._call and p.shape == t.shape
                      and uses[id(p)] == 1 and sides(p) == sides(t))
        first[id(t)] = first[id(p)] if same_again else id(t)
    return first


def _grad_norm(t: Tensor) -> float | None:
    grad = getattr(t, 'grad', None)
    return None if grad is None else float(np.linalg.norm(grad._data))


def _short(text: str, width: int = 70) -> str:
    text = ' '.join(text.split())
    return text if len(text) <= width else text[:width - 1] + '…'


def _describe(module) -> str:
    """'LazyLinear(in_features=20, out_features=20, bias=True)': the class and its extra_repr."""
    try:
        extra = module.extra_repr()
    except Exception as error:  # a broken extra_repr should not hide the graph; say so instead
        extra = f'extra_repr() failed: {type(error).__name__}'
    return _short(f'{type(module).__name__}({extra})' if extra else type(module).__name__)


def _clusters(calls: list, names: _Names) -> tuple:
    """One Cluster per call, ids c1, c2, ... in the order the calls ran; returns (clusters, id(call) -> id)."""
    number, total = {}, Counter(id(c.module) for c in calls)
    ids, clusters, depth = {}, [], {}
    for i, call in enumerate(calls, 1):
        module = call.module
        number[id(module)] = number.get(id(module), 0) + 1
        path = names.path[id(module)]
        if path in names.roots:  # the model itself, or another outermost module (named after its class)
            title = path or type(module).__name__
            detail = '' if _describe(module) == title else _describe(module)
        elif id(module) in names.owner:
            owner_path, owner, name = names.owner[id(module)]
            # the owner's path cut by slicing (a deep nest's paths are long: copying each whole is quadratic)
            short_path = owner_path if len(owner_path) <= 60 else f'{owner_path[:19]}…{owner_path[-40:]}'
            where = f'{type(owner).__name__} ({short_path})' if owner_path else type(owner).__name__
            title, detail = f'{where} › {name}', _describe(module)
        else:
            title, detail = path, _describe(module)
        if total[id(module)] > 1:
            title += f' · call {number[id(module)]}'
        ids[id(call)] = f'c{i}'
        parent = ids[id(call.parent)] if call.parent is not None else None
        depth[ids[id(call)]] = 0 if parent is None else depth[parent] + 1
        clusters.append(Cluster(f'c{i}', parent, path, title, detail, number[id(module)], total[id(module)],
                                depth[ids[id(call)]]))
    return clusters, ids


def _common_cluster(cluster_ids: list, parent_of: dict, depth_of: dict) -> str | None:
    """The innermost cluster that holds all of cluster_ids (None: the top level)."""
    # step up from the deeper side only: a deep nest costs the distance climbed, not its depth per leaf
    common = cluster_ids[0]
    for c in cluster_ids[1:]:
        while c != common and c is not None and common is not None:
            if depth_of[c] >= depth_of[common]:
                c = parent_of[c]
            else:
                common = parent_of[common]
        common = common if c is not None else None
    return common


def trace(output: Tensor, model=None) -> Graph:
    """The graph that made output: ops, parameters (by dotted name), inputs and constants, grouped by module call."""
    if not isinstance(output, Tensor) and frameworks.adapter_for(output) is not None:
        return frameworks.adapter_for(output).trace(output, model)  # PyTorch or Flax: the same data
    if not isinstance(output, Tensor):
        raise TypeError(f"trace() needs a d2lmod Tensor (the output of a model), got {type(output).__name__}")
    order = _walk(output)
    calls = _calls_of(order)
    names, notes = _name_modules(calls, model)
    kinds = _leaf_kinds(order, names)
    first = _runs(order, kinds)
    clusters, cluster_of_call = _clusters(calls, names)
    parent_of = {c.id: c.parent for c in clusters}
    depth_of = {c.id: c.depth for c in clusters}

    def cluster_of(t):
        return cluster_of_call.get(id(t._call)) if t._call is not None else None

    # a node per leaf that feeds the first op of a run, and per run of ops; later ops of a run join the first
    consumers = {}
    for t in order:
        if t._parents and first[id(t)] == id(t):
            for p in t._inputs():
                consumers.setdefault(id(p), []).append(t)
    runs = Counter(first.values())
    node_of, nodes, edges = {}, [], []
    for t in order:
        if t._parents and first[id(t)] != id(t):
            node_of[id(t)] = node_of[first[id(t)]]
            continue
        if not t._parents and id(t) not in consumers and t is not output:
            continue  # a constant that only a repeated op used: its first copy stands for all
        node_id = f'n{len(nodes) + 1}'
        node_of[id(t)] = node_id
        if t._parents:
            nodes.append(Node(node_id, 'op', t._op, tuple(t.shape), cluster_of(t), repeat=runs[id(t)],
                              ops=runs[id(t)]))
            edges.extend(Edge(node_of[id(p)], node_id) for p in t._inputs())
            continue
        kind, label, note = kinds[id(t)]
        users = [cluster_of(c) for c in consumers.get(id(t), [])]
        home = None if kind == 'input' or None in users or not users else _common_cluster(users, parent_of, depth_of)
        nodes.append(Node(node_id, kind, label, tuple(t.shape), home, note, _grad_norm(t)))
    by_id = {n.id: n for n in nodes}
    by_id[node_of[id(output)]].output = True
    _split_shared_grads(order, node_of, by_id, edges, cluster_of_call)
    notes += _graph_notes(output, nodes, names, model)
    return Graph(nodes, edges, clusters, notes)


def _split_shared_grads(order: list, node_of: dict, by_id: dict, edges: list, cluster_of_call: dict) -> None:
    """Label each use of a shared leaf with its part of the gradient (call 1 and call 2 of a shared Linear)."""
    edges_from = {}
    for edge in edges:
        edges_from.setdefault(edge.src, []).append(edge)
    for t in order:
        parts = getattr(t, '_grad_parts', None)
        if t._parents or not parts:
            continue
        per_cluster = {}
        for call, grad in parts:
            key = cluster_of_call.get(id(call)) if call is not None else None
            per_cluster[key] = per_cluster.get(key, 0) + np.asarray(grad._data if isinstance(grad, Tensor) else grad)
        if len(per_cluster) < 2:
            continue  # all uses in one call: the node's own norm says it all
        src = node_of[id(t)]
        for edge in edges_from.get(src, []):
            if by_id[edge.dst].cluster in per_cluster:
                edge.grad_norm = float(np.linalg.norm(per_cluster[by_id[edge.dst].cluster]))
        in_call_order = sorted(per_cluster, key=lambda c: -1 if c is None else int(c[1:]))
        by_id[src].grad_parts = tuple(float(np.linalg.norm(per_cluster[c])) for c in in_call_order)


def _graph_notes(output: Tensor, nodes: list, names: _Names, model) -> list:
    """Sentences about what the picture cannot show by itself."""
    notes = []
    if not output._parents:
        notes.append("This tensor has no recorded history: no input of the op that made it required a gradient "
                     "(or it was computed under no_grad()), so d2lmod kept no graph behind it.")
        return notes
    leaves = [n for n in nodes if n.kind == 'parameter']
    if leaves and all(n.grad_norm is None for n in leaves):
        notes.append("Gradient norms appear on the parameters once backward() has run on this output.")
    root = model if model is not None else names.module_at.get('')
    if root is not None:
        shown = {n.label for n in nodes}
        unused = [name for name, p in root.named_parameters() if name not in shown]
        if unused:
            listed = ', '.join(unused[:5]) + (f' and {len(unused) - 5} more' if len(unused) > 5 else '')
            notes.append(f"Not in this graph, so this output sends them no gradient: {listed}.")
    return notes


# ---- folding module calls into single nodes ----------------------------------------------------------------
def collapse(data: Graph, expand=(), limit: int = MAX_NODES) -> Graph:
    """Calls drawn as single nodes: those in expand (paths) open, then deeper levels while they add <= limit nodes."""
    # Calls nested deeper than MAX_DEPTH stay folded. One pass over the clusters finds when each would open
    # and how many nodes every level shows, so a deep nest costs no more than a wide one.
    parent_of = {c.id: c.parent for c in data.clusters}
    expand = set(expand)
    chosen = {c.id for c in data.clusters if c.path in expand}
    base = {c.id for c in data.clusters if c.parent is None}
    for c in chosen:
        while c is not None and c not in base:
            base.add(c)
            c = parent_of[c]
    never = math.inf
    inside, opens_at, shown_at = {}, {}, {None: 0}  # shown_at: the level from which a cluster's contents show
    for c in data.clusters:  # parents first
        inside[c.id] = c.id in chosen or inside.get(c.parent, False)
        if c.id in base:
            opens_at[c.id] = 0
        elif (inside[c.id] or not chosen) and c.depth < MAX_DEPTH and c.parent is not None:
            opens_at[c.id] = opens_at[c.parent] + 1  # a whole level at a time, so every call of it looks alike
        else:
            opens_at[c.id] = never
        shown_at[c.id] = max(opens_at[c.id], shown_at[c.parent])
    levels = max([k for k in opens_at.values() if k != never], default=0)
    count = [0] * (levels + 2)  # count[k]: nodes shown once every cluster with opens_at <= k is open
    for n in data.nodes:
        if shown_at[n.cluster] <= levels:
            count[shown_at[n.cluster]] += 1
    for c in data.clusters:  # a closed call is one node while its parent is open and it is not
        start = shown_at[c.parent]
        if start <= levels and start < opens_at[c.id]:
            count[start] += 1
            if opens_at[c.id] <= levels:
                count[opens_at[c.id]] -= 1
    for k in range(1, len(count)):
        count[k] += count[k - 1]
    level = 0
    while limit > 0 and level < levels and count[level + 1] - count[0] <= limit:
        level += 1
    return _fold(data, {c for c, k in opens_at.items() if k <= level})


def _fold(data: Graph, opened: set) -> Graph:
    """data with every call outside opened drawn as one node (the outermost closed call takes its insides)."""
    folded_into = {}  # cluster id -> id of the closed call that swallows it, or None when it is shown open
    for c in data.clusters:  # parents come first
        outer = folded_into.get(c.parent) if c.parent is not None else None
        folded_into[c.id] = outer or (None if c.id in opened else c.id)
    by_id = {c.id: c for c in data.clusters}
    target = {n.id: (folded_into.get(n.cluster) if n.cluster is not None else None) or n.id for n in data.nodes}
    members = {}
    for n in data.nodes:
        if target[n.id] != n.id:
            members.setdefault(target[n.id], []).append(n)
    leaving = {}  # folded call -> the nodes inside it whose values go out of it
    for e in data.edges:
        if target[e.src] != target[e.dst] and target[e.src] in members:
            leaving.setdefault(target[e.src], {})[e.src] = None
    shape_of = {n.id: n.shape for n in data.nodes}
    nodes, placed = [], set()
    for n in data.nodes:
        t = target[n.id]
        if t == n.id:
            nodes.append(n)
        elif t not in placed:
            placed.add(t)
            outs = list(leaving.get(t, {})) or [m.id for m in members[t] if m.output]
            shape = shape_of[outs[0]] if len(outs) == 1 else None
            nodes.append(_module_node(by_id[t], members[t], shape))
    edges, seen = [], set()
    for e in data.edges:
        src, dst = target[e.src], target[e.dst]
        if src == dst:
            continue  # inside a folded call
        if (src, dst) != (e.src, e.dst):  # many edges into or out of a folded call become one
            if (src, dst) in seen:
                continue
            seen.add((src, dst))
        edges.append(Edge(src, dst, e.grad_norm))
    clusters = [c for c in data.clusters if folded_into[c.id] is None]
    return Graph(nodes, edges, clusters, list(data.notes))


def _module_node(c: Cluster, members: list, shape) -> Node:
    """One node standing for a whole module call: its title, class, op and parameter counts."""
    ops = sum(n.ops for n in members)
    params = [n for n in members if n.kind == 'parameter']
    numbers = sum(math.prod(n.shape) for n in params)
    counts = f'{ops} op' + ('s' if ops != 1 else '')
    if params:
        counts += f' · {len(params)} parameter' + ('s' if len(params) != 1 else '') + f' ({numbers:,} numbers)'
    norms = [n.grad_norm for n in params if n.grad_norm is not None]
    grad = math.sqrt(sum(g * g for g in norms)) if norms else None
    note = (c.detail + '\n' if c.detail else '') + counts
    return Node(c.id, 'module', c.title, shape, c.parent, note, grad, ops=ops, output=any(n.output for n in members))


# ---- keeping any graph drawable: repeated runs folded, a cap on the nodes ---------------------------------
MAX_DRAWN = 300  # nodes handed to Graphviz (or the fallback) at most: an "N more" node stands for the rest


def fit(data: Graph, limit: int = MAX_DRAWN) -> Graph:
    """data made drawable: calls nested deeper than MAX_DEPTH folded, repeated runs folded, at most limit nodes."""
    if any(c.depth >= MAX_DEPTH for c in data.clusters):
        data = _fold(data, {c.id for c in data.clusters if c.depth < MAX_DEPTH})
        data.notes.append(f'Module calls nested more than {MAX_DEPTH} deep are drawn folded.')
    return cap(fold_repeats(data), limit)


def _is_value(node: Node) -> bool:
    return node.kind in ('op', 'module')


def _is_side(node: Node) -> bool:
    """A leaf that a step takes besides its input (a parameter, buffer, plain tensor or constant)."""
    return not _is_value(node) and node.kind != 'input'


def fold_repeats(data: Graph, min_repeats: int = 3, max_period: int = 8) -> Graph:
    """Runs of the same steps along a chain (identical layers, a loop over a few ops) drawn as one node each."""
    inputs, consumers = {}, {}
    for e in data.edges:
        inputs.setdefault(e.dst, []).append(e.src)
        consumers.setdefault(e.src, set()).add(e.dst)
    by_id = {n.id: n for n in data.nodes}

    def follows(n):  # the value node whose only use is to feed n, in n's box; None if n starts a chain
        values = {s for s in inputs.get(n.id, ()) if _is_value(by_id[s])}
        u = by_id[values.pop()] if len(values) == 1 else None
        return u.id if u is not None and u.cluster == n.cluster and len(consumers[u.id]) == 1 else None

    def signature(n):  # what makes two steps the same: names differ (layer 0, layer 1), the work does not
        leaves = tuple(sorted(by_id[s].kind for s in inputs.get(n.id, ()) if _is_side(by_id[s])))
        return (n.kind, n.note if n.kind == 'module' else n.label, n.shape, n.repeat, leaves)

    after = {}
    for n in data.nodes:
        if _is_value(n):
            before = follows(n)
            if before is not None:
                after[before] = n.id
    started = set(after.values())
    runs = []  # (member ids, period, repeats)
    for n in data.nodes:
        if n.id not in after or n.id in started:
            continue
        chain = [n.id]
        while chain[-1] in after:
            chain.append(after[chain[-1]])
        sigs = [signature(by_id[i]) for i in chain]
        i = 0
        while i < len(chain):
            best = (0, 0)
            for p in range(1, max_period + 1):
                k = 1
                while sigs[i + k * p:i + (k + 1) * p] == sigs[i:i + p] and i + (k + 1) * p <= len(chain):
                    k += 1
                if k >= min_repeats and k * p > best[0] * best[1]:
                    best = (k, p)
            if best[0]:
                runs.append((chain[i:i + best[0] * best[1]], best[1], best[0]))
                i += best[0] * best[1]
            else:
                i += 1
    if not runs:
        return data
    target, made = {}, {}
    for members, period, repeats in runs:
        node = _run_node([by_id[i] for i in members], period, repeats)
        made[members[0]] = node
        for i in members:
            target[i] = node.id
    for n in data.nodes:  # a leaf that one step alone uses goes into the run's node; a shared one stays a node
        if _is_side(n) and len(consumers.get(n.id, ())) == 1 and next(iter(consumers[n.id])) in target:
            target[n.id] = target[next(iter(consumers[n.id]))]
    nodes = [made.get(n.id, n) for n in data.nodes if n.id not in target or n.id in made]
    edges, seen = [], set()
    for e in data.edges:
        src, dst = target.get(e.src, e.src), target.get(e.dst, e.dst)
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            edges.append(Edge(src, dst, e.grad_norm if (src, dst) == (e.src, e.dst) else None))
    folded = sum(len(members) for members, _, _ in runs)
    notes = list(data.notes) + [f'{folded:,} steps that repeat one after another are drawn as {len(runs)} '
                                'node(s), each saying how often its steps ran.']
    return Graph(nodes, edges, list(data.clusters), notes)


def _run_node(members: list, period: int, repeats: int) -> Node:
    """One node for `repeats` runs of the same `period` steps, named by what the steps are."""
    def step(n):  # a folded call by its class (its note starts with it), an op by its name
        return n.note.split('\n')[0] if n.kind == 'module' and '\n' in n.note else n.label
    label = ' → '.join(_short(step(n), 40) for n in members[:period])
    note = f'×{repeats:,} in a row: {_short(members[0].label, 30)} … {_short(members[-1].label, 30)}'
    norms = [n.grad_norm for n in members if n.grad_norm is not None]
    grad = math.sqrt(sum(g * g for g in norms)) if norms else None
    return Node('r' + members[0].id, 'module' if members[0].kind == 'module' else 'op', label, members[-1].shape,
                members[0].cluster, note, grad, ops=sum(n.ops for n in members), output=any(n.output for n in members))


def cap(data: Graph, limit: int = MAX_DRAWN) -> Graph:
    """At most limit + 1 nodes: the first and the last ones kept (inputs and output), one 'N more' node for the rest."""
    if len(data.nodes) <= limit:
        return data
    head = limit * 2 // 3
    tail = {n.id for n in data.nodes[-(limit - head):]}
    keep = {n.id for n in data.nodes[:head]} | tail | {n.id for n in data.nodes if n.output}
    hidden = [n for n in data.nodes if n.id not in keep]
    more = Node('more', 'more', f'{len(hidden):,} more nodes', None, None,
                f'{sum(n.ops for n in hidden):,} ops not drawn: "open" a module to see its part',
                ops=sum(n.ops for n in hidden))
    nodes = [n for n in data.nodes[:head] if n.id in keep] + [more] + [n for n in data.nodes[head:] if n.id in keep]
    edges, seen = [], set()
    for e in data.edges:
        src, dst = (e.src if e.src in keep else 'more'), (e.dst if e.dst in keep else 'more')
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            edges.append(Edge(src, dst, e.grad_norm if (src, dst) == (e.src, e.dst) else None))
    parent_of = {c.id: c.parent for c in data.clusters}
    used = set()
    for n in nodes:  # keep the boxes that still hold a drawn node, and the boxes around them
        c = n.cluster
        while c is not None and c not in used:
            used.add(c)
            c = parent_of[c]
    notes = list(data.notes) + [f'This graph has {len(data.nodes):,} nodes: the first {head} and the last '
                                f'{len(keep) - head} are drawn, one "{more.label}" node stands for the others.']
    return Graph(nodes, edges, [c for c in data.clusters if c.id in used], notes)
