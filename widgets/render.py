"""Plain data -> text and HTML: the summary table, tree labels, module details, gradient bars, errors.

Pure functions of the data in extract.py: the same data gives the same string, with no addresses, dates
or dict-order effects. Every name that comes from the user's code (module and parameter paths, class
names, extra_repr, error messages) passes through html.escape before it reaches HTML.
"""
from __future__ import annotations

import html
import math
import textwrap
import traceback
from dataclasses import dataclass

from . import extract, frameworks
from .draw import clean
from .extract import ModelInfo, ModuleInfo, num

TAG_COLORS = {'shared': '#b45309', 'repeated': '#b45309', 'called': '#1d4ed8', 'not called': '#b91c1c',
              'plain tensor': '#6d28d9', 'hidden': '#b91c1c', 'buffer': '#0f766e', 'frozen': '#4b5563',
              'lazy': '#4b5563'}
RED = '#b91c1c'
STATS = {'mean_abs': 'mean |g|', 'max_abs': 'max |g|', 'norm': 'norm'}


# Limits that keep a summary readable and bounded for any model (5,000 nested modules: a few hundred kB)
MAX_DEPTH = 12    # rows nested deeper fold into their ancestor at this depth, as summary(depth=12) does
MAX_ROWS = 1000   # rows in a table at most: the middle of a longer one is rolled into one row
MAX_RUN = 12      # a longer run of identical rows (or blocks of rows) keeps its first and last block only
MAX_NAME = 60     # characters of a path, type or shape in a table: the middle of a longer one becomes '…'
MAX_NOTES = 100   # note lines at most; each names at most 5 paths


def esc(text) -> str:
    return html.escape(str(text))


def short(text, width: int = MAX_NAME) -> str:
    """text on one line: control characters shown as \\xNN, the middle replaced by '…' beyond width."""
    return clean(text, width)


def label(path: str) -> str:
    return short(path) or '(model)'


def grouped_notes(notes: list) -> list:
    """(tag, paths, text): notes saying the same thing about several modules become one line (bounded)."""
    groups = {}
    for n in notes:
        groups.setdefault((n.tag, n.text), []).append(n.path)
    out = [(tag, [label(p) for p in paths[:5]] + ([f'and {len(paths) - 5:,} more'] if len(paths) > 5 else []),
            short(text, 600)) for (tag, text), paths in list(groups.items())[:MAX_NOTES]]
    if len(groups) > MAX_NOTES:
        out.append(('…', [], f'{len(groups) - MAX_NOTES:,} more notes, in summary(...).notes'))
    return out


# ---- rows for any size of model ------------------------------------------------------------------------
@dataclass
class Elided(extract.Row):
    """Rows left out of a long table, rolled into one line whose counts are their sums."""
    text: str = ''


def _sum(values):
    values = list(values)
    return None if None in values else sum(values)


def _elide(rows: list, start: int, end: int, text: str) -> Elided:
    """One row standing for rows[start:end]: params and modules (1 + folded each) add up as before."""
    part = rows[start:end]
    return Elided('…', '', part[0].depth, [], None, _sum(r.params for r in part), _sum(r.per_call for r in part), [],
                  sum(1 + r.folded for r in part) - 1, text)


def _runs(rows: list) -> list:
    """Runs of identical rows, or identical blocks of rows (a stack of the same layer or block), elided."""
    keys = [(r.type, r.depth, tuple(r.outputs), r.calls, r.params, r.per_call, tuple(r.tags), r.folded) for r in rows]
    out, i = [], 0
    while i < len(rows):
        best = (1, 1)  # (repeats, period)
        for p in range(1, min(MAX_RUN, (len(rows) - i) // 3) + 1):
            k = 1
            while keys[i + k * p:i + (k + 1) * p] == keys[i:i + p] and i + (k + 1) * p <= len(rows):
                k += 1
            if k * p > best[0] * best[1]:
                best = (k, p)
        k, p = best
        if k * p > MAX_RUN and k >= 3:  # keep the first and the last block, roll the ones between into a line
            first, last = label(rows[i + p].path), label(rows[i + (k - 2) * p].path)
            what = 'the row above' if p == 1 else f'the {p} rows above'
            out += rows[i:i + p] + [_elide(rows, i + p, i + (k - 1) * p, f'… {k - 2:,} more like {what} '
                                           f'({first} … {last})')] + rows[i + (k - 1) * p:i + k * p]
            i += k * p
        else:
            out.append(rows[i])
            i += 1
    return out


def table_rows(info: ModelInfo, depth: int | None = None) -> tuple:
    """(rows, depth used, sentences saying what was folded): extract.rows(), bounded for any model."""
    # every row's params, and every module (1 + folded per row), still add up to the totals
    said = []
    deepest = max(m.depth for m in info.modules)
    if (depth is None or depth > MAX_DEPTH) and deepest > MAX_DEPTH:
        depth = MAX_DEPTH
        said.append(f'modules nested more than {MAX_DEPTH} deep are folded into their ancestor at depth {MAX_DEPTH} '
                    '(the (+n) rows)')
    rows = extract.rows(info, depth)
    if len(rows) > MAX_RUN:
        before, rows = len(rows), _runs(rows)
        if len(rows) < before:
            said.append('long runs of identical rows keep their first and last rows; one line adds up the rest')
    if len(rows) > MAX_ROWS:
        head = MAX_ROWS * 3 // 4
        tail = MAX_ROWS - head - 1
        rows = rows[:head] + [_elide(rows, head, len(rows) - tail, f'… {len(rows) - head - tail:,} more rows')] \
            + rows[len(rows) - tail:]
        said.append(f'a table stops at {MAX_ROWS:,} rows: one line adds up the rows in the middle')
    return rows, depth, said


def _run_line(info: ModelInfo) -> str:
    if not info.inputs:
        return (f'{short(info.type)}, structure only: give an input too, as in summary(model, X) or '
                'ModuleTree(model, X), to see calls and output shapes')
    word = 'input' if len(info.inputs) == 1 else 'inputs'
    return f'{short(info.type)} run on {word} {short(", ".join(info.inputs), 200)}'


def _totals_lines(info: ModelInfo) -> list:
    """(label, value, remark) for the totals block."""
    t = info.totals
    unique_remark = f'trainable {num(t.trainable)}, non-trainable {num(t.non_trainable)}'
    if t.unique is None:
        unique_remark = (f'{t.lazy} parameters of lazy layers have unknown sizes until the first call; '
                         'pass an input: summary(model, X)')
    lines = [('unique parameters (each counted once)', num(t.unique), unique_remark)]
    if info.inputs:
        lines.append(('counted once per call', num(t.per_call), 'a module that runs twice counts twice'))
    plain = f'{t.plain:,} numbers in plain tensor attributes' if t.plain else 'no plain tensor attributes'
    buffers = f'{t.buffers:,} numbers in buffers' if t.buffers else 'no buffers'
    lines.append(('not parameters', '', f'{plain}; {buffers}'))
    return lines


# ---- the summary as text -----------------------------------------------------------------------------
RIGHT = {'calls', 'params', 'per call'}  # columns aligned to the right


def table_cells(info: ModelInfo, rows: list) -> tuple:
    """(header, one list of cell strings per row, the total line): what both the text and the HTML show."""
    run = bool(info.inputs)  # without a run there are no calls and no output shapes to show
    head = ['module', 'type'] + (['output', 'calls'] if run else []) + ['params'] + (['per call'] if run else [])
    body = []
    for r in rows:
        if isinstance(r, Elided):  # rows rolled into one: only their sums
            body.append([r.text, ''] + (['', ''] if run else []) + [num(r.params)] + ([num(r.per_call)] if run else []))
            continue
        path = label(r.path) + (f' (+{r.folded})' if r.folded else '')
        body.append([path, short(r.type)] + ([short(' | '.join(r.outputs)) or '-', num(r.calls)] if run else [])
                    + [num(r.params)] + ([num(r.per_call)] if run else []))
    total = ['total', ''] + (['', ''] if run else []) + [num(info.totals.unique)] \
        + ([num(info.totals.per_call)] if run else [])
    return head + ['notes'], [cells + [', '.join(r.tags)] for cells, r in zip(body, rows)], total + ['']


def summary_text(info: ModelInfo, depth: int | None = None, width: int = 100) -> str:
    """The summary table as fixed-width text (deterministic: safe for docs and nbval)."""
    rows, depth, said = table_rows(info, depth)
    head, body, total = table_cells(info, rows)
    widths = [max(len(cells[i]) for cells in [head, total] + body) for i in range(len(head))]

    def line(cells):
        return '  '.join(c.rjust(w) if h in RIGHT else c.ljust(w) for c, w, h in zip(cells, widths, head)).rstrip()
    rule = '  '.join('-' * w for w in widths)
    out = [_run_line(info), '', line(head), rule] + [line(c) for c in body] + [rule, line(total), '']
    totals = _totals_lines(info)
    pad, vpad = max(len(name) for name, _, _ in totals), max(len(value) for _, value, _ in totals)
    out += [f'{name.ljust(pad)}  {value.rjust(vpad)}  {remark}'.rstrip() for name, value, remark in totals]
    if any(r.folded and not isinstance(r, Elided) for r in rows):
        out.append(f'(+n): n submodules folded into that row (depth={depth}); rows still add up to the totals')
    out += [f'({sentence})' for sentence in said]
    notes = grouped_notes(info.notes)
    if notes:
        out += ['', 'notes']
        for tag, paths, text in notes:
            out += textwrap.wrap(f'[{tag}] {", ".join(paths)}: {text}', width, initial_indent='  ',
                                 subsequent_indent='      ', break_on_hyphens=False)
    return '\n'.join(out)


# ---- the summary as HTML -------------------------------------------------------------------------------
_CELL = 'padding: 1px 8px; text-align: left; white-space: nowrap'
_NUM = 'padding: 1px 8px; text-align: right; font-family: monospace; white-space: nowrap'
_BAR_VALUE = 'padding: 1px 8px; font-family: monospace; white-space: nowrap'  # left-aligned: next to its bar
# ipywidgets' HTML widget sets a line height of 28px, made for one-line labels: tables and wrapped notes
# need their own, or every row is double-spaced (and a long gradient table no longer fits its box)
_BLOCK = 'font-size: 13px; line-height: 1.5'
TAG_MEANING = {  # a tag's tooltip; the notes under the table say it for each module by name
    'shared': 'a Parameter registered under more than one name: counted once',
    'repeated': 'the same module registered under a second path: counted at its first path only',
    'called': 'ran more than once in one forward: "per call" counts its parameters once per run',
    'not called': 'registered, but did not run in the forward: its parameters get no gradient',
    'plain tensor': 'holds a plain tensor attribute: not a parameter, not saved, not moved by to()',
    'hidden': 'holds modules or tensors in a plain list, tuple or dict: invisible to parameters()',
    'buffer': 'holds a buffer: moved by to(), saved unless persistent=False, not trained',
    'frozen': 'has parameters with requires_grad=False: not trained',
    'lazy': 'a lazy layer: its input size is unknown until its first call',
}


def tag_html(tag: str) -> str:
    color = TAG_COLORS.get(tag, '#4b5563')
    return (f'<span title="{esc(TAG_MEANING.get(tag, ""))}" style="border: 1px solid {color}; color: {color}; '
            f'border-radius: 3px; padding: 0 4px; font-size: 11px; white-space: nowrap">{esc(tag)}</span>')


def notes_html(notes: list) -> str:
    """The notes as a list: a coloured tag, the dotted paths, and what it means."""
    if not notes:
        return ''
    items = ''.join(f'<li style="margin: 2px 0">{tag_html(tag)} <code>{esc(", ".join(paths))}</code>: {esc(text)}'
                    '</li>' for tag, paths, text in grouped_notes(notes))
    return f'<ul style="list-style: none; padding-left: 0; margin: 4px 0">{items}</ul>'


def summary_html(info: ModelInfo, depth: int | None = None) -> str:
    """The same table as summary_text, as HTML (every user-supplied string escaped)."""
    rows, depth, said = table_rows(info, depth)
    head, body, total = table_cells(info, rows)

    def td(text, h):
        style = _NUM if h in RIGHT else _CELL + ('; font-family: monospace' if h in ('module', 'output') else '')
        return f'<td style="{style}">{esc(text)}</td>'
    ths = ''.join(f'<th style="{_CELL}{"; text-align: right" if h in RIGHT else ""}">{h}</th>' for h in head)
    trs = [f'<tr style="border-top: 1px solid #e5e7eb">{"".join(td(c, h) for c, h in zip(cells[:-1], head))}'
           f'<td style="{_CELL}">{" ".join(tag_html(t) for t in r.tags)}</td></tr>' for cells, r in zip(body, rows)]
    trs.append(f'<tr style="border-top: 2px solid #9ca3af; font-weight: bold">'
               f'{"".join(td(c, h) for c, h in zip(total, head))}</tr>')
    folded = (f'<div style="color: #6b7280">(+n): n submodules folded into that row (depth={depth}); rows still '
              'add up to the totals</div>' if any(r.folded and not isinstance(r, Elided) for r in rows) else '')
    folded += ''.join(f'<div style="color: #6b7280">({esc(sentence)})</div>' for sentence in said)
    return ('<div class="d2lmod-summary" style="font-size: 13px">'
            f'<div style="margin-bottom: 4px"><b>{esc(_run_line(info))}</b></div>'
            f'<table style="border-collapse: collapse"><thead><tr>{ths}</tr></thead><tbody>{"".join(trs)}</tbody>'
            f'</table><div style="margin-top: 6px">{totals_html(info)}{folded}</div>{notes_html(info.notes)}</div>')


class Summary:
    """What summary() returns: the data (.info, .rows, .totals, .notes), str() the text, HTML in notebooks."""

    def __init__(self, info: ModelInfo, depth: int | None = None):
        self.info, self.depth = info, depth
        self.rows = table_rows(info, depth)[0]  # bounded for any model; they add up to the totals
        self.totals, self.notes = info.totals, info.notes

    def __str__(self) -> str:
        return summary_text(self.info, self.depth)

    __repr__ = __str__  # a cell ending in summary(...) shows the table, not an address

    def _repr_html_(self) -> str:
        return summary_html(self.info, self.depth)


def summary(model, *inputs, depth: int | None = None, variables=None) -> Summary:
    """The parameter table of model; with inputs it runs model(*inputs) once (no gradients) to count calls.

    model: a d2lmod or PyTorch module, or a Flax linen module with its variables (module.init(key, X))."""
    model = frameworks.prepare(model, inputs, variables)
    return Summary(extract.describe(model, *inputs), depth)


# ---- the tree, a module's details ----------------------------------------------------------------------
def totals_html(info: ModelInfo) -> str:
    return ''.join(f'<div><b>{esc(name)}</b>: <span style="font-family: monospace">{esc(value)}</span> '
                   f'<span style="color: #4b5563">{esc(remark)}</span></div>'
                   for name, value, remark in _totals_lines(info))


def tree_header_html(info: ModelInfo) -> str:
    """Above the tree: what the model is, its totals, and how to read the list."""
    return (f'<div style="{_BLOCK}"><div><b>{esc(_run_line(info))}</b></div>{totals_html(info)}'
            '<div style="color: #6b7280">\u25b8 folded, \u25be open, \u00b7 no submodules; the number is the '
            'parameters in that subtree. Select a module for its parameters; "fold / unfold" opens or closes '
            'it.</div></div>')


def tree_label(m: ModuleInfo, expanded: bool) -> str:
    """One line of the module tree: indent, open/closed marker, name, type, subtree count, tags."""
    marker = ('\u25be' if expanded else '\u25b8') if m.children else '\u00b7'
    tags = f"  [{', '.join(m.tags)}]" if m.tags else ''
    same = f' = {label(m.same_as)}' if m.same_as is not None else ''
    indent = chr(0xa0) * 4 * min(m.depth, 16) + (f'[{m.depth}] ' if m.depth > 16 else '')  # deep: the depth says it
    return f"{indent}{marker} {label(m.name)}  {short(m.type)}{same} \u00b7 {num(m.total)}{tags}"


def _fmt(v: float) -> str:
    return f'{v:.3g}'


def module_html(m: ModuleInfo, notes: list, grads: dict | None = None) -> str:
    """Details of one module: what it is, its calls, its own parameters (with gradient norms) and notes."""
    grads = grads or {}
    kind = esc(m.type) + (f'({esc(m.extra)})' if m.extra else '')
    lines = [f'<div><code style="font-weight: bold">{esc(label(m.path))}</code> {kind}</div>']
    facts = [f'{num(m.total)} parameters in this subtree, {num(m.own)} its own']
    if m.calls is not None:
        facts.append(f'ran {m.calls} time{"" if m.calls == 1 else "s"} in the last forward'
                     + (f', output {esc(" | ".join(m.outputs))}' if m.outputs else ''))
    if m.same_as is not None:
        facts.append(f'the same module as <code>{esc(m.same_as)}</code>')
    lines.append('<div style="color: #4b5563">' + '; '.join(facts) + '</div>')
    if m.params:
        th = ''.join(f'<th style="{_CELL}{"; text-align: right" if h == "count" else ""}">{h}</th>'
                     for h in ('parameter', 'shape', 'count', 'grad norm'))
        trs = []
        for p in m.params:
            g = grads.get(p.same_as or p.path)
            if g is None:
                grad = '<span style="color: #6b7280">-</span>'
            elif g.has_grad and not _all_finite(g):
                grad = f'<span style="color: {RED}; font-weight: bold">{_non_finite(g)}</span>'
            elif g.has_grad:
                grad = f'<span style="font-family: monospace">{_fmt(g.norm)}</span>'
            else:
                grad = (f'<span style="color: {RED}">no grad</span> '
                        f'<span style="color: #6b7280">({esc(g.reason)})</span>')
            shared = f' <span style="color: #6b7280">= {esc(p.same_as)}</span>' if p.same_as else ''
            trs.append(f'<tr><td style="{_CELL}"><code>{esc(p.name)}</code>{shared}</td>'
                       f'<td style="{_CELL}; font-family: monospace">{esc(extract.shape_str(p.shape))}</td>'
                       f'<td style="{_NUM}">{num(p.count)}</td><td style="{_CELL}">{grad}</td></tr>')
        lines.append(f'<table style="border-collapse: collapse; margin-top: 4px"><thead><tr>{th}</tr></thead>'
                     f'<tbody>{"".join(trs)}</tbody></table>')
    else:
        lines.append('<div style="color: #6b7280">no parameters of its own</div>')
    lines.append(notes_html(notes))
    return f'<div style="{_BLOCK}">' + ''.join(lines) + '</div>'


# ---- gradient flow ---------------------------------------------------------------------------------------
def _widths(values: list, log: bool) -> list:
    """Bar lengths in percent: linear in the value, or in log10 over at most 8 decades below the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return [0.0 for _ in values]
    if not log:
        return [100 * v / top for v in values]
    hi = math.log10(top)
    lo = max(min(math.log10(v) for v in values if v > 0), hi - 8) - 1  # the smallest value still gets a stub
    return [0.0 if v <= 0 else 100 * (max(math.log10(v), lo) - lo) / (hi - lo) for v in values]


def _bar(width: float, color: str) -> str:
    return ('<div style="background: #e5e7eb; width: 220px; height: 10px">'
            f'<div style="background: {color}; width: {width:.1f}%; height: 10px"></div></div>')


def _all_stats(g) -> str:
    """'mean |g| 0.1, max |g| 0.5, norm 1.2': every statistic, for a bar's tooltip."""
    return ', '.join(f'{name} {_fmt(getattr(g, stat))}' for stat, name in STATS.items())


NON_FINITE = ('NaN or inf in this gradient: something overflowed or was undefined (a log or division by 0, a '
              'learning rate too large); check the loss and the inputs, then zero_grad()')


MAX_BARS = 400  # bars drawn at most: the first and last ones, and every parameter without a usable gradient


def _shown_bars(grads: list) -> set:
    """Indices of the parameters that get a row: all of them for a model of usual size."""
    if len(grads) <= MAX_BARS:
        return set(range(len(grads)))
    flagged = [i for i, g in enumerate(grads) if not g.has_grad or not _all_finite(g)][:MAX_BARS // 4]
    return set(range(MAX_BARS // 2)) | set(range(len(grads) - MAX_BARS // 4, len(grads))) | set(flagged)


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def _all_finite(g) -> bool:
    return all(math.isfinite(getattr(g, stat)) for stat in STATS)


def _non_finite(g) -> str:
    """'NaN' or 'inf': what a gradient's statistics hold instead of a number."""
    return 'NaN' if any(math.isnan(getattr(g, stat)) for stat in STATS) else 'inf'


def gradflow_html(grads: list, stat: str = 'norm', log: bool = False) -> str:
    """One bar per parameter in module order; red 'no grad' rows; a shared parameter's bar split by call."""
    if stat not in STATS:
        raise ValueError(f"stat must be one of {list(STATS)}, got {stat!r}")
    if not grads:
        return '<div style="color: #6b7280">this model has no parameters</div>'
    if not any(g.has_grad for g in grads):
        return ('<div style="color: #6b7280">no gradients yet: run a forward pass and call backward() on the loss '
                '(the Explorer\'s backward button does both)</div>')
    # NaN or inf in a gradient: no bar (a width of nan% draws nothing, and one inf would flatten every other
    # bar), and the row says so in words; the finite bars keep a scale of their own
    values = [_finite(getattr(g, stat)) for g in grads]
    part_values = [_finite(getattr(p, stat)) for g in grads for p in g.parts]
    widths = _widths(values + part_values, log)  # one scale for whole bars and their parts
    main, parts = widths[:len(grads)], iter(widths[len(grads):])
    out, shown = [], _shown_bars(grads)
    for i, (g, w) in enumerate(zip(grads, main)):
        if i not in shown:
            for _ in g.parts:
                next(parts)
            if i - 1 in shown:  # the first of a gap: one line for all of it
                end = next((j for j in range(i, len(grads)) if j in shown), len(grads))
                bad = sum(not h.has_grad or not _all_finite(h) for h in grads[i:end])
                out.append(f'<tr><td colspan="3" style="{_CELL}; color: #6b7280">… {end - i:,} more parameters not '
                           f'drawn (too many bars to read){f", {bad:,} of them without a usable gradient" if bad else ""}'
                           '</td></tr>')
            continue
        name = f'<td style="{_CELL}"><code>{esc(label(g.path))}</code></td>'
        if not g.has_grad:
            out.append(f'<tr>{name}<td style="{_CELL}; color: {RED}; font-weight: bold">no grad</td><td></td>'
                       f'<td style="{_CELL}; color: {RED}">{esc(g.reason)}</td></tr>')
            continue
        if not _all_finite(g):
            out.append(f'<tr title="{_all_stats(g)}">{name}<td style="{_CELL}; color: {RED}; font-weight: bold">'
                       f'{_non_finite(g)}</td><td style="{_BAR_VALUE}">{_fmt(getattr(g, stat))}</td>'
                       f'<td style="{_CELL}; color: {RED}">{NON_FINITE}</td></tr>')
            continue
        out.append(f'<tr title="{_all_stats(g)}">{name}<td style="{_CELL}">{_bar(w, "#2563eb")}</td>'
                   f'<td style="{_BAR_VALUE}">{_fmt(getattr(g, stat))}</td></tr>')
        for p in g.parts:  # a shared parameter: one orange bar per call, right below its own bar
            out.append(f'<tr title="{_all_stats(p)}" style="color: #4b5563; font-size: 12px">'
                       f'<td style="{_CELL}; padding-left: 24px">call {p.call} '
                       f'<span style="font-size: 11px">({esc(label(p.module))})</span></td>'
                       f'<td style="{_CELL}">{_bar(next(parts), "#f59e0b") if _all_finite(p) else _non_finite(p)}</td>'
                       f'<td style="{_BAR_VALUE}">{_fmt(getattr(p, stat))}</td></tr>')
        if g.parts:
            calls = ' + '.join(f'call {p.call}' for p in g.parts)
            check = esc(g.parts_note) if g.parts_note else (f'{calls} = .grad, added as tensors (their '
                                                            'statistics need not add up)')
            # width 0, min-width 100%: the note wraps within the columns the bars set instead of widening them
            # (which would push every value far from its bar)
            out.append(f'<tr><td></td><td style="padding: 1px 8px; font-size: 11px; color: #6b7280" colspan="3">'
                       f'<div style="width: 0; min-width: 100%">{check}</div></td></tr>')
    scale = 'log scale' if log else 'linear scale'
    legend = (f'<div style="color: #4b5563; margin-bottom: 4px">{STATS[stat]} of each parameter\'s gradient, '
              f'in module order ({scale}). <span style="color: #f59e0b">Orange</span>: a parameter used by several '
              f'module calls, split by call. <span style="color: {RED}">Red</span>: no gradient, or one holding NaN or '
              'inf.</div>')
    return (f'<div style="{_BLOCK}">{legend}<div style="max-height: 480px; overflow-y: auto">'
            f'<table style="border-collapse: collapse">{"".join(out)}</table></div></div>')


def gradflow_text(grads: list, stat: str = 'norm') -> str:
    """The same statistics as a plain table (for terminals and tests)."""
    lines = []
    for g in grads:
        if not g.has_grad:
            lines.append(f'{g.path}  no grad: {g.reason}')
            continue
        lines.append(f'{g.path}  {STATS[stat]} {_fmt(getattr(g, stat))}'
                     + ('' if _all_finite(g) else f'  ({_non_finite(g)} in this gradient)'))
        lines += [f'  call {p.call} ({label(p.module)})  {_fmt(getattr(p, stat))}' for p in g.parts]
    return '\n'.join(lines)


# ---- the Explorer's bits ------------------------------------------------------------------------------------
def loss_svg(history: list, width: int = 260, height: int = 60) -> str:
    """A small line chart of the loss so far (inline SVG, no plotting library); NaN and inf as red marks."""
    # a non-finite value breaks the line and gets a mark at the top edge: no coordinate is ever nan or inf
    if not history:
        return '<div style="color: #6b7280">no loss yet</div>'
    step = max(1, len(history) // 200)  # at most ~200 points
    ys = [float(y) for y in history[::step]]
    finite = [y for y in ys if math.isfinite(y)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    half_span = hi / 2 - lo / 2 or 0.5  # halves: hi - lo itself can overflow to inf for huge losses

    def x(i):
        return 4 + (width - 8) * i / max(len(ys) - 1, 1)
    segments, marks, current = [], [], []
    for i, y in enumerate(ys):
        if math.isfinite(y):
            current.append(f'{x(i):.1f},{4 + (height - 8) * ((hi / 2 - y / 2) / half_span):.1f}')  # a fraction first
            continue
        marks.append(f'<text x="{x(i):.1f}" y="10" text-anchor="middle" fill="{RED}" font-size="10">×</text>')
        if current:
            segments.append(current)
        current = []
    if current:
        segments.append(current)
    lines = ''.join(f'<polyline points="{" ".join(points)}" fill="none" stroke="#2563eb" stroke-width="1.5"/>'
                    for points in segments)
    last = (f'<circle cx="{segments[-1][-1].split(",")[0]}" cy="{segments[-1][-1].split(",")[1]}" r="2.5" '
            'fill="#2563eb"/>' if math.isfinite(ys[-1]) else '')  # the latest value, seen even when it is alone
    bad = sum(not math.isfinite(float(y)) for y in history)
    warning = (f'; <span style="color: {RED}">{bad} value{"" if bad == 1 else "s"} not finite (NaN or inf, red ×): '
               'training diverged; lower the learning rate</span>' if bad else '')
    return (f'<div style="font-size: 12px; color: #4b5563">loss {float(history[-1]):.4g}, {len(history)} '
            f'value{"" if len(history) == 1 else "s"} recorded (the first: {float(history[0]):.4g}){warning}</div>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" style="background: #f9fafb">'
            f'{lines}{"".join(marks)}{last}</svg>')


def error_html(where: str, error: BaseException) -> str:
    """An exception from a widget callback, shown inside the widget instead of being lost."""
    tb = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    return (f'<div style="color: {RED}; border-left: 3px solid {RED}; padding: 2px 8px; margin: 4px 0">'
            f'<b>{esc(where)} failed:</b> {esc(type(error).__name__)}: {esc(error)}'
            f'<details><summary>traceback</summary><pre style="font-size: 11px">{esc(tb)}</pre></details></div>')


def notice_html(text: str) -> str:
    return f'<div style="color: #4b5563; font-size: 12px">{esc(text)}</div>'
