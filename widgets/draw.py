"""Drawing a Graph (from graph.py): DOT for Graphviz, or d2lmod's own SVG layout where `dot` is missing.

Every name the user chose (module names, class names, extra_repr) is escaped on its way into DOT or SVG.
render_svg() uses Graphviz when its `dot` program is installed and the fallback otherwise.
"""
from __future__ import annotations

import html
import re
import shutil
import sys
import subprocess

from .graph import Graph, Node

DOT_MISSING = ("Graphviz's <code>dot</code> program is not installed, so this is d2lmod's own simpler "
               "drawing. For the full picture install it: <code>apt-get install graphviz</code> "
               "(Debian/Ubuntu), <code>brew install graphviz</code> (macOS) or <code>conda install graphviz"
               "</code>; on Binder, add a line <code>graphviz</code> to <code>binder/apt.txt</code>. "
               "(<code>pip install graphviz</code> installs only the Python bindings.)")
# In a browser (JupyterLite, Pyodide: Python compiled to WebAssembly) there are no programs to install.
DOT_IN_BROWSER = ("This Python runs inside your web browser, where Graphviz's <code>dot</code> program cannot run, "
                  "so d2lmod draws the graph with its own simpler layout. Nothing needs to be installed.")


def in_browser() -> bool:
    """True when Python runs in a web page (JupyterLite's xeus-python or Pyodide, both built with Emscripten)."""
    return sys.platform == 'emscripten' or 'pyodide' in sys.modules


def dot_missing_note() -> str:
    """What the graph widget says when dot is missing: how to install it, or, in a browser, that it cannot be."""
    return DOT_IN_BROWSER if in_browser() else DOT_MISSING
DOT_TIMEOUT = 4.0   # seconds Graphviz may take; beyond, the built-in drawing is used (and the widget says so)
MAX_LABEL = 80      # characters of one line in a box: longer names are shortened in the middle


# ---- text for both renderers ---------------------------------------------------------------------------------
def shape_text(shape) -> str:
    """(2, 20) -> '(2, 20)'; () -> 'scalar'."""
    if shape is None:
        return ''
    if len(shape) == 0:
        return 'scalar'
    return '(' + ', '.join(str(n) for n in shape) + (',)' if len(shape) == 1 else ')')


def clean(text, width: int = MAX_LABEL) -> str:
    """One line safe for any drawing: control characters shown as \\xNN, the middle of a long text as '…'."""
    # (a 10,000-character name, or a control character, makes Graphviz fail)
    text = str(text)
    for _ in range(2):  # shorten first (cheap), escape what is left, and shorten what escaping lengthened
        if len(text) > width:
            keep = width - 1
            text = text[:keep - keep // 3] + '…' + text[len(text) - keep // 3:]
        if not text.isprintable():
            text = ''.join(c if c.isprintable() else f'\\x{ord(c):02x}' if ord(c) < 256 else f'\\u{ord(c):04x}'
                           for c in text)
    return text


def node_lines(node: Node) -> list:
    """The lines of text in a node's box, heading first, each cleaned and shortened (not escaped yet)."""
    heading = clean(node.label) + (f' ×{node.repeat} (loop)' if node.repeat > 1 else '')
    lines = [heading] + [clean(line) for line in node.note.split('\n')[:6] if line]
    if node.shape is not None and not (node.kind == 'constant' and node.shape == ()):
        lines.append(shape_text(node.shape))
    if node.grad_norm is not None:
        lines.append(('its parameters: ' if node.kind == 'module' else '') + f'‖grad‖ = {node.grad_norm:.3g}')
    if node.grad_parts:
        lines.append('‖grad‖ per use: ' + ', '.join(f'{g:.3g}' for g in node.grad_parts))
    return lines


def esc(text) -> str:
    """Text made safe for HTML, SVG and Graphviz HTML-like labels (every <, >, &, ' and " replaced)."""
    return html.escape(str(text), quote=True).replace('&#x27;', '&#39;')


# ---- DOT ---------------------------------------------------------------------------------------------------------
_DOT_STYLE = {  # shape and colours per node kind: parameters amber, ops blue, inputs green, constants grey
    'op': 'shape=box style="rounded,filled" fillcolor="#dbeafe" color="#1d4ed8"',
    'parameter': 'shape=box style="filled" fillcolor="#fde68a" color="#b45309" penwidth=1.6',
    'buffer': 'shape=box style="filled" fillcolor="#fef3c7" color="#b45309"',
    'plain': 'shape=box style="dashed,filled" fillcolor="#fee2e2" color="#b91c1c"',
    'constant': 'shape=box style="dashed" color="#6b7280" fontcolor="#374151"',
    'input': 'shape=box style="rounded,filled" fillcolor="#dcfce7" color="#15803d"',
    'module': 'shape=box3d style="filled" fillcolor="#ede9fe" color="#6d28d9"',
    'more': 'shape=box style="dashed,filled" fillcolor="#f3f4f6" color="#6b7280"',
}
_CLUSTER_FILL = ('#f8fafc', '#eef2f7')


def _q(text: str) -> str:
    """A DOT quoted string: backslashes and double quotes escaped, so nothing can end it early."""
    return '"' + str(text).replace('\\', '\\\\').replace('"', '\\"').replace('\n', ' ') + '"'


def _dot_label(node: Node) -> str:
    lines = node_lines(node)
    rest = ''.join(f'<br/><font point-size="9">{esc(line)}</font>' for line in lines[1:])
    return f'<<b>{esc(lines[0])}</b>{rest}>'


def to_dot(data: Graph) -> str:
    """The graph in Graphviz's DOT language: a nested subgraph per module call; every user text escaped."""
    out = ['digraph computation {',
           '  graph [rankdir=TB fontname="Helvetica" fontsize=11 nodesep=0.25 ranksep=0.3];',
           '  node [fontname="Helvetica" fontsize=11 margin="0.12,0.05"];',
           '  edge [color="#475569" arrowsize=0.7 fontname="Helvetica" fontsize=9 fontcolor="#92400e"];']
    children = {}
    for c in data.clusters:
        children.setdefault(c.parent, []).append(c)
    nodes_in = {}
    for n in data.nodes:
        nodes_in.setdefault(n.cluster, []).append(n)
    # emit the cluster tree depth first with a stack (no recursion): 'open' pushes its children and a 'close'
    stack = [('open', c) for c in reversed(children.get(None, []))] + [('nodes', None)]
    while stack:
        what, item = stack.pop()
        if what == 'nodes':
            indent = '  ' * min(1 + (0 if item is None else item.depth + 1), 12)  # deep nests: text stays small
            for n in nodes_in.get(None if item is None else item.id, []):
                out.append(f'{indent}{_q(n.id)} [{_DOT_STYLE[n.kind]}{" penwidth=2.6" if n.output else ""} '
                           f'label={_dot_label(n)}];')
        elif what == 'open':
            indent = '  ' * min(item.depth + 1, 12)
            detail = f'<font point-size="9">{esc(clean(item.detail))}</font><br align="left"/>' if item.detail else ''
            out.append(f'{indent}subgraph {_q("cluster_" + item.id)} {{')
            out.append(f'{indent}  label=<<b>{esc(clean(item.title))}</b><br align="left"/>{detail}>; labeljust="l"; '
                       f'style="rounded,filled"; fillcolor="{_CLUSTER_FILL[item.depth % 2]}"; color="#94a3b8";')
            stack.append(('close', item))
            stack.extend(('open', c) for c in reversed(children.get(item.id, [])))
            stack.append(('nodes', item))
        else:
            out.append('  ' * min(item.depth + 1, 12) + '}')
    by_id = {n.id: n for n in data.nodes}
    for e in data.edges:
        # values flowing from op to op pull hard (a straight spine); parameters and constants join from the side.
        # Into another call, leave a free rank, so its parameters sit below the previous call's box, not beside it.
        attrs = ['weight=1']
        if by_id[e.src].kind in ('op', 'input', 'module'):
            attrs = ['weight=8'] + (['minlen=2'] if by_id[e.src].cluster != by_id[e.dst].cluster else [])
        if e.grad_norm is not None:
            attrs.append(f'label=<‖grad‖ {e.grad_norm:.3g}>')
        out.append(f'  {_q(e.src)} -> {_q(e.dst)} [{" ".join(attrs)}];')
    out.append('}')
    return '\n'.join(out) + '\n'


# ---- the drawing without Graphviz: nested boxes, rows by longest path ------------------------------------------
CHAR_W, LINE_H, PAD_X, PAD_Y = 6.7, 14, 8, 5    # a monospace 11px font, so text width is predictable
GAP_X, GAP_Y, BOX_PAD, LANE_W = 14, 26, 10, 12
_SVG_STYLE = {  # fill, stroke, dashed, per node kind (the same colours as the DOT drawing)
    'op': ('#dbeafe', '#1d4ed8', False), 'parameter': ('#fde68a', '#b45309', False),
    'buffer': ('#fef3c7', '#b45309', False), 'plain': ('#fee2e2', '#b91c1c', True),
    'constant': ('#ffffff', '#6b7280', True), 'input': ('#dcfce7', '#15803d', False),
    'module': ('#ede9fe', '#6d28d9', False), 'more': ('#f3f4f6', '#6b7280', True),
}


def _text_width(text: str) -> float:
    return len(text) * CHAR_W


def _layers(items: list, links: list) -> dict:
    """item -> row: the longest path from a source; a source that feeds something sits just above it."""
    preds = {i: [] for i in items}
    succs = {i: [] for i in items}
    for a, b in links:
        preds[b].append(a)
        succs[a].append(b)
    waiting = {i: len(set(preds[i])) for i in items}
    ready = [i for i in items if waiting[i] == 0]
    row = {}
    while ready:  # Kahn's algorithm: an item is placed once all its predecessors are
        i = ready.pop(0)
        row[i] = max((row[p] + 1 for p in preds[i]), default=0)
        for s in dict.fromkeys(succs[i]):
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    for i in items:
        row.setdefault(i, 0)  # only reached if the links had a cycle, which a graph of ops cannot have
    for i in items:
        if not preds[i] and succs[i]:
            row[i] = max(0, min(row[s] for s in succs[i]) - 1)
    return row


def _rows(items: list, links: list) -> list:
    """The items in rows; within a row, by the mean position of their predecessors (sources first)."""
    row = _layers(items, links)
    preds = {i: [] for i in items}
    for a, b in links:
        preds[b].append(a)
    rows = [[] for _ in range(max(row.values(), default=-1) + 1)]
    for i in items:
        rows[row[i]].append(i)
    position = {}
    for r in rows:
        def key(i):
            known = [position[p] for p in preds[i] if p in position]
            return sum(known) / len(known) if known else -1
        r.sort(key=key)  # a stable sort: ties keep the traversal order
        position.update((i, k) for k, i in enumerate(r))
    return rows


def to_svg_fallback(data: Graph) -> str:
    """An SVG drawn without Graphviz: each module call a box, its contents in rows; all text escaped."""
    parent_of = {c.id: c.parent for c in data.clusters}
    cluster = {c.id: c for c in data.clusters}
    content = {None: []}
    content.update((c.id, []) for c in data.clusters)
    for c in data.clusters:
        content[c.parent].append(c.id)
    for n in data.nodes:
        content[n.cluster].append(n.id)
    lines = {n.id: node_lines(n) for n in data.nodes}
    size = {n.id: (max(_text_width(t) for t in lines[n.id]) + 2 * PAD_X, len(lines[n.id]) * LINE_H + 2 * PAD_Y)
            for n in data.nodes}
    first_seen = {n.id: k for k, n in enumerate(data.nodes)}
    for c in reversed(data.clusters):  # a cluster is first seen where its first node is
        first_seen[c.id] = min((first_seen[i] for i in content[c.id]), default=len(data.nodes))
    for box in content:
        content[box].sort(key=lambda i: first_seen[i])

    by_id = {n.id: n for n in data.nodes}

    def chain(node_id):  # the node, then the boxes holding it, innermost first, ending with None (the picture)
        boxes, c = [node_id], by_id[node_id].cluster
        while c is not None:
            boxes.append(c)
            c = parent_of[c]
        return boxes + [None]

    links = {box: [] for box in content}
    fed = {box: set() for box in content}  # the items of a box that some value flows into
    edge_at = []  # per edge: (the box it runs in, its two items there)
    for e in data.edges:  # an edge links the two items of the innermost box that holds both ends
        a, b = chain(e.src), chain(e.dst)
        box = next(x for x in a[1:] if x in b[1:])
        edge_at.append((box, a[a.index(box) - 1], b[b.index(box) - 1]))
        links[box].append(edge_at[-1][1:])
        for k in range(1, b.index(box) + 1):  # it enters every box on the way to its target
            fed[b[k]].add(b[k - 1])

    place, lane = {}, {}  # item -> (x, y) inside its box; (box, a, b) -> x of the lane a long link runs down
    spine = {n.id: size[n.id][0] / 2 for n in data.nodes}  # item -> x of the line its values flow along
    order = sorted(content, key=lambda box: -1 if box is None else cluster[box].depth, reverse=True)
    for box in order:  # innermost boxes first, so their sizes are known
        rows = _rows(content[box], links[box])
        row_of = {i: k for k, r in enumerate(rows) for i in r}
        long_links = list(dict.fromkeys((a, b) for a, b in links[box] if row_of[b] - row_of[a] > 1))
        pad = 0 if box is None else BOX_PAD
        title_h = 0 if box is None else LINE_H * (2 if cluster[box].detail else 1) + 6
        # each row hangs on one spine: its first item fed from inside the box sits on it, sources to its left
        shapes = []
        for r in rows:
            anchor = next((i for i in r if i in fed[box]), None)
            left = [i for i in r if i not in fed[box]]
            right = [i for i in r if i in fed[box] and i != anchor]
            left_w = sum(size[i][0] + GAP_X for i in left)
            if anchor is not None:
                right_w = sum(size[i][0] + GAP_X for i in right)
                reach = (spine[anchor] + left_w, size[anchor][0] - spine[anchor] + right_w)
            elif box is None:  # the picture's first row (the inputs): centred
                reach = ((left_w - GAP_X) / 2, (left_w - GAP_X) / 2)
            else:  # only sources: beside the spine, leaving it free for the values coming in from above
                reach = (left_w - GAP_X / 2, 0)
            shapes.append((left, anchor, right, reach))
        spine_x = pad + max((reach[0] for *_, reach in shapes), default=0)
        inner_w = spine_x - pad + max((reach[1] for *_, reach in shapes), default=0)
        if box is not None:
            inner_w = max(inner_w, _text_width(clean(cluster[box].title)), _text_width(clean(cluster[box].detail)))
        y = pad + title_h
        for left, anchor, right, reach in shapes:
            row_h = max(size[i][1] for i in left + right + ([anchor] if anchor is not None else []))
            x = spine_x - reach[0]
            for i in left + ([anchor] if anchor is not None else []) + right:
                place[i] = (x, y + (row_h - size[i][1]) / 2)
                x += size[i][0] + GAP_X
            y += row_h + GAP_Y
        # links that skip rows run down lanes on the right, so they do not cross the boxes in between
        for k, link in enumerate(long_links):
            lane[(box,) + link] = pad + inner_w + LANE_W * (k + 0.5)
        size[box] = (inner_w + LANE_W * len(long_links) + 2 * pad, y - (GAP_Y if rows else 0) + pad)
        spine[box] = spine_x

    absolute = {None: (0.0, 0.0)}
    for box in reversed(order):  # outermost first
        bx, by = absolute[box]
        for i in content[box]:
            absolute[i] = (bx + place[i][0], by + place[i][1])
    lanes = [absolute[box][0] + lane[(box, a, b)] if (box, a, b) in lane else None for box, a, b in edge_at]
    return _svg(data, absolute, size, lines, lanes)


def _svg(data: Graph, at: dict, size: dict, lines: dict, lanes: list) -> str:
    """Write the SVG: boxes of calls, then edges, then nodes on top."""
    margin = 8
    width, height = size[None][0] + 2 * margin, size[None][1] + 2 * margin
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="{-margin} {-margin} {width:.0f} {height:.0f}" '
           'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11">',
           '<defs><marker id="d2lmod-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>',
           '<rect x="-8" y="-8" width="100%" height="100%" fill="white"/>']
    for c in data.clusters:
        (x, y), (w, h) = at[c.id], size[c.id]
        out.append(f'<g class="cluster"><title>{esc(clean(c.title))}</title><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                   f'height="{h:.1f}" rx="8" fill="{_CLUSTER_FILL[c.depth % 2]}" stroke="#94a3b8"/></g>')
    for e, lane in zip(data.edges, lanes):
        (sx, sy), (sw, sh) = at[e.src], size[e.src]
        (tx, ty), (tw, _) = at[e.dst], size[e.dst]
        x1, y1, x2, y2 = sx + sw / 2, sy + sh, tx + tw / 2, ty
        if lane is None:
            bend = max(12.0, (y2 - y1) / 2)
            d = f'M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}'
        else:  # out to the lane, down it, and in from the right side of the target
            x2, y2 = tx + tw, ty + size[e.dst][1] / 2
            d = (f'M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + 14:.1f} {lane:.1f},{y1 + 4:.1f} {lane:.1f},{y1 + 18:.1f} '
                 f'L{lane:.1f},{y2 - 12:.1f} Q{lane:.1f},{y2:.1f} {lane - 12:.1f},{y2:.1f} L{x2:.1f},{y2:.1f}')
        out.append(f'<path d="{d}" fill="none" stroke="#475569" marker-end="url(#d2lmod-arrow)"/>')
    for c in data.clusters:  # titles over the edges, with a halo of the box colour so a crossing line stays behind
        (x, y), halo = at[c.id], f' stroke="{_CLUSTER_FILL[c.depth % 2]}" stroke-width="4" paint-order="stroke"'
        out.append(f'<text x="{x + BOX_PAD:.1f}" y="{y + BOX_PAD + 10:.1f}" font-weight="bold"{halo}>'
                   f'{esc(clean(c.title))}</text>')
        if c.detail:
            out.append(f'<text x="{x + BOX_PAD:.1f}" y="{y + BOX_PAD + 10 + LINE_H:.1f}" fill="#475569"{halo}>'
                       f'{esc(clean(c.detail))}</text>')
    for n in data.nodes:
        (x, y), (w, h) = at[n.id], size[n.id]
        fill, stroke, dashed = _SVG_STYLE[n.kind]
        extra = ' stroke-dasharray="4,3"' if dashed else ''
        width = 2.6 if n.output else 1.6 if n.kind == 'parameter' else 1
        rx = 6 if n.kind in ('op', 'input') else 0
        out.append(f'<g class="node {n.kind}"><title>{esc(n.id)}</title>')
        if n.kind == 'module':  # a second box behind: a stack, like Graphviz's box3d
            out.append(f'<rect x="{x + 3:.1f}" y="{y - 3:.1f}" width="{w:.1f}" height="{h:.1f}" '
                       f'fill="{fill}" stroke="{stroke}"/>')
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="{width}"{extra}/>')
        for k, text in enumerate(lines[n.id]):
            weight = ' font-weight="bold"' if k == 0 else ' fill="#334155"'
            out.append(f'<text x="{x + w / 2:.1f}" y="{y + PAD_Y + 11 + k * LINE_H:.1f}" text-anchor="middle"'
                       f'{weight}>{esc(text)}</text>')
        out.append('</g>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


# ---- choosing the drawer -------------------------------------------------------------------------------------
def dot_available() -> bool:
    """True when Graphviz's `dot` program is installed (tests monkeypatch this); render() runs it directly."""
    return shutil.which('dot') is not None


def render_svg(data: Graph) -> str:
    """SVG of data: drawn by Graphviz when dot is available, else by to_svg_fallback()."""
    return render(data)[0]


def render(data: Graph) -> tuple:
    """(SVG of data, a sentence for the reader or ''): Graphviz when it can, else the built-in drawing."""
    # `dot` runs with a time limit; when it fails or takes too long, the built-in drawing is used and the
    # sentence says why (never dot's own error output, which is not for students)
    if not dot_available():
        return to_svg_fallback(data), ''
    try:
        done = subprocess.run([shutil.which('dot') or 'dot', '-Tsvg'], input=to_dot(data).encode('utf-8'),
                              capture_output=True, timeout=DOT_TIMEOUT, check=False)
        svg = done.stdout.decode('utf-8', errors='replace') if done.returncode == 0 else ''
        why = '' if '<svg' in svg else 'Graphviz could not draw this graph'
    except subprocess.TimeoutExpired:
        why = f'Graphviz took longer than {DOT_TIMEOUT:g} s to draw this graph'
    except OSError:
        why = 'Graphviz could not be started'
    if why:
        return to_svg_fallback(data), f"{why}, so this is d2lmod's own simpler drawing."
    # keep only the <svg> element: no XML prolog, no comments (one of them holds the Graphviz version)
    svg = re.sub(r'<!--.*?-->', '', svg, flags=re.DOTALL)
    return svg[svg.index('<svg'):], ''
