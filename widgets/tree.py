"""ModuleTree: the module hierarchy as a foldable list with counts; pick a module to see its parameters."""
from __future__ import annotations

import ipywidgets as W
import traitlets

from d2lmod.nn.module import Module

from . import extract, frameworks, render


MAX_LINES = 1000  # lines in the list at most
MORE = '\x00more'  # the value of the list's last line when it is cut short (no module has this path)


class ErrorArea(W.HTML):
    """Where a widget shows what went wrong in one of its callbacks, instead of losing it."""

    def guard(self, where: str, fn):
        """fn wrapped so that an exception is shown here; each new call first clears the last one."""
        def run(*args, **kwargs):
            self.value = ''
            try:
                return fn(*args, **kwargs)
            except Exception as error:  # shown in the widget: a callback has nobody else to tell
                self.value = render.error_html(where, error)
                return None
        return run


class ModuleTree(W.VBox):
    """The module tree of model (run on inputs, if given): every node with its subtree's parameter count;
    select one for details."""

    depth = traitlets.Int(2, help='modules deeper than this start folded (0: only the model)')
    selected = traitlets.Unicode('', help="dotted path of the module shown in the details pane ('' = the model)")

    def __init__(self, model: Module, *inputs, info: extract.ModelInfo | None = None, variables=None, **kwargs):
        model = frameworks.prepare(model, inputs, variables)  # PyTorch as it is; Flax with its variables
        super().__init__(**kwargs)
        self.model, self.inputs = model, inputs
        self.info, self.grads, self.toggled = None, {}, set()
        self.header = W.HTML()
        self.depth_slider = W.IntSlider(value=self.depth, min=0, max=max(self.depth, 1), description='depth',
                                        continuous_update=False, layout=W.Layout(width='260px'))
        self.fold_button = W.Button(description='fold / unfold', tooltip='fold or unfold the selected module',
                                    layout=W.Layout(width='120px'))
        self.list = W.Select(options=[], rows=16, layout=W.Layout(width='440px'))
        self.details = W.HTML(layout=W.Layout(width='auto', margin='0 0 0 12px'))
        self.errors = ErrorArea()
        self._busy = False  # set while the list's options are rewritten, so that its events are ignored

        self.fold_button.on_click(self.errors.guard('fold / unfold', lambda _: self.toggle(self.selected)))
        self.list.observe(self.errors.guard('selecting a module', self._on_select), 'value')
        self.observe(self.errors.guard('changing depth', self._on_depth), 'depth')
        self.observe(self.errors.guard('selecting a module', lambda _: self._render()), 'selected')
        self.children = [self.header, W.HBox([self.depth_slider, self.fold_button]),
                         W.HBox([self.list, self.details]), self.errors]
        self.errors.guard('building the tree', self.refresh)(info)
        traitlets.link((self.depth_slider, 'value'), (self, 'depth'))  # the slider sets depth, and back

    # ---- data in ---------------------------------------------------------------------------------------
    def refresh(self, info: extract.ModelInfo | None = None, grads: list | None = None) -> None:
        """Re-read the model (or take info from describe()) and its gradients, then redraw."""
        self.info = info if info is not None else extract.describe(self.model, *self.inputs)
        if grads is None:
            calls = {m.path: m.calls for m in self.info.modules} if self.info.inputs else None
            grads = extract.grad_stats(self.model, calls)
        self.grads = {g.path: g for g in grads}
        self.depth_slider.max = max(max(m.depth for m in self.info.modules), 1, self.depth)
        if self.selected not in {m.path for m in self.info.modules}:
            self.selected = ''
        self._render()

    def toggle(self, path: str) -> None:
        """Fold an open module or unfold a folded one."""
        self.toggled ^= {path}
        self._render()

    # ---- events ----------------------------------------------------------------------------------------
    def _on_depth(self, change) -> None:
        self.toggled = set()  # a new depth starts from a clean fold state
        self._render()

    def _on_select(self, change) -> None:
        if not self._busy and change['new'] is not None and change['new'] != MORE:
            self.selected = change['new']

    # ---- drawing ---------------------------------------------------------------------------------------
    def is_open(self, m: extract.ModuleInfo) -> bool:
        return (m.depth < self.depth) != (m.path in self.toggled)

    def visible(self) -> list:
        """The ModuleInfo of every module whose ancestors are all open, in tree order."""
        shown, open_paths = [], set()
        for m in self.info.modules:
            parent = m.path.rpartition('.')[0]
            if m.path and parent not in open_paths:
                continue
            shown.append(m)
            if self.is_open(m):
                open_paths.add(m.path)
        return shown

    def _render(self) -> None:
        if self.info is None:
            return
        self.header.value = render.tree_header_html(self.info)
        shown = self.visible()
        options = [(render.tree_label(m, self.is_open(m)), m.path) for m in shown[:MAX_LINES]]
        if len(shown) > MAX_LINES:  # a list nobody can scroll through: say how to see the rest
            options.append((f'\u2026 {len(shown) - MAX_LINES:,} more modules: fold their parent, or lower depth', MORE))
        self._busy = True
        try:
            self.list.options = options
            self.list.rows = min(max(len(options), 4), 16)  # no empty box under a short list; long ones scroll
            self.list.value = self.selected if self.selected in {p for _, p in options} else None
        finally:
            self._busy = False
        m = self.info.module(self.selected)
        below = [n for n in self.info.notes if not m.path or n.path == m.path or n.path.startswith(m.path + '.')]
        self.details.value = render.module_html(m, below, self.grads)
