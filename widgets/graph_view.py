"""GraphView: the computation graph of a tensor in a notebook; a thin shell over graph.py."""
from __future__ import annotations

import re

import ipywidgets as widgets

from . import draw, frameworks, graph

FIT, EVERY_OP, MODULES = ('fit',), ('every op',), ('modules',)  # the "show" choices that are not a module path
MAX_CHOICES = 500  # modules offered in the "show" menu at most (the first ones, in the order they ran)


class GraphView(widgets.VBox):
    """The graph traced back from output: module calls folded when it is large, any module opened on demand."""

    def __init__(self, output, *inputs, model=None, variables=None):
        # a PyTorch tensor as it is; a Flax module (or its output) with its inputs and variables, run here
        output, model = frameworks.graph_args(output, inputs, model, variables)
        self.show = widgets.Dropdown(description='show', style={'description_width': 'initial'},
                                     layout=widgets.Layout(width='auto'))
        self.summary = widgets.HTML()
        self.dot_note = widgets.HTML()   # said once, when Graphviz's dot program is missing
        self.notes = widgets.HTML()
        self.picture = widgets.HTML()
        self.error = widgets.HTML()
        super().__init__(children=[widgets.HBox([self.show, self.summary]), self.dot_note, self.notes,
                                   self.picture, self.error])
        self._model, self._data, self._redrawing = model, None, False
        self.show.observe(self._on_show, names='value')
        self.update(output, model)

    def update(self, output, model=None) -> None:
        """Trace a new output tensor and redraw (the Explorer calls this after every run)."""
        try:
            if model is not None:
                self._model = model
            self._data = graph.trace(output, self._model)
            self._redrawing = True  # setting the options fires the observer; draw once, below
            try:
                self._set_choices()
            finally:
                self._redrawing = False
            self._redraw()
        except Exception as error:
            self._show_error(error)

    def _set_choices(self) -> None:
        """Fill the dropdown from the traced graph, keeping the current choice when it still exists."""
        # a module to open per path (each call of a module opens together), as deep as a drawing can go
        paths = list(dict.fromkeys(c.path for c in self._data.clusters
                                   if c.parent is not None and c.depth < graph.MAX_DEPTH))
        size = len(self._data.nodes)
        options = [(f'fit: fold modules when large ({size:,} nodes unfolded)', FIT), ('every op', EVERY_OP),
                   ('outermost modules only', MODULES)]
        options += [(f'open {draw.clean(path)}', ('open', path)) for path in paths[:MAX_CHOICES]]
        before = self.show.value
        self.show.options = options
        self.show.value = before if before in [value for _, value in options] else FIT

    def _on_show(self, change) -> None:
        if not self._redrawing:
            try:
                self._redraw()
            except Exception as error:
                self._show_error(error)

    def _view(self) -> graph.Graph:
        """The graph as the dropdown asks for it."""
        choice = self.show.value
        if choice == EVERY_OP:
            view = self._data
        elif choice == MODULES:
            view = graph.collapse(self._data, limit=0)
        elif choice == FIT:
            view = self._data if len(self._data.nodes) <= graph.MAX_NODES else graph.collapse(self._data)
        else:
            view = graph.collapse(self._data, expand=(choice[1],))
        return graph.fit(view)  # repeated runs folded, at most graph.MAX_DRAWN nodes: any model stays drawable

    def _redraw(self) -> None:
        view = self._view()
        if not draw.dot_available() and not self.dot_note.value:
            self.dot_note.value = f'<div style="color:#92400e">{draw.dot_missing_note()}</div>'
        folded = sum(1 for n in view.nodes if n.kind == 'module')
        self.summary.value = (f'{graph.op_count(self._data):,} ops · {len(view.nodes):,} nodes shown'
                              + (f' · {folded:,} module calls folded' if folded else ''))
        svg, why = draw.render(view)  # why: Graphviz failed or timed out, and the built-in drawing stands in
        self.notes.value = ''.join(f'<div>{draw.esc(note)}</div>' for note in view.notes + ([why] if why else []))
        # tall enough for a whole model call of the chapter (FixedHiddenMLP's loop and output included);
        # larger graphs scroll inside the box
        self.picture.value = f'<div style="overflow:auto; max-height:1200px">{svg}</div>'
        self.error.value = ''

    def _show_error(self, error: Exception) -> None:
        """Put the error in the widget (a callback's exception would otherwise vanish)."""
        message = re.sub(r' at 0x[0-9a-fA-F]+', '', f'{type(error).__name__}: {error}')
        self.error.value = f'<pre style="color:#b91c1c; white-space:pre-wrap">GraphView: {draw.esc(message)}</pre>'
