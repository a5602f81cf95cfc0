"""GradFlow: after backward(), one bar per parameter (mean |g|, max |g| or norm), shared ones split by call."""
from __future__ import annotations

import ipywidgets as W
import traitlets

from d2lmod.nn.module import Module

from . import extract, frameworks, render
from .tree import ErrorArea


class GradFlow(W.VBox):
    """Gradient statistics of every parameter of model, in module order; press refresh after backward()."""

    stat = traitlets.Enum(list(render.STATS), 'norm', help="which statistic the bars show: mean |g|, max |g| or norm")
    log = traitlets.Bool(False, help='bars on a log scale (gradients often differ by orders of magnitude)')

    def __init__(self, model: Module, *inputs, loss_fn=None, variables=None, **kwargs):
        model = frameworks.prepare(model, inputs, variables)  # PyTorch as it is; Flax with its variables
        if inputs:  # PyTorch and Flax: run once more to split shared parameters' gradients by call
            frameworks.gradients(model, inputs, loss_fn)
        super().__init__(**kwargs)
        self.model, self.grads, self.calls = model, [], None
        self.stat_menu = W.Dropdown(options=[(v, k) for k, v in render.STATS.items()], value=self.stat,
                                    description='bars', layout=W.Layout(width='200px'))
        self.log_box = W.Checkbox(value=self.log, description='log scale', indent=False,
                                  layout=W.Layout(width='auto'))  # not the default 300px: keeps refresh near
        self.refresh_button = W.Button(description='refresh', tooltip='read the gradients again')
        self.bars = W.HTML()
        self.errors = ErrorArea()
        self.stat_menu.observe(self.errors.guard('bars', lambda c: setattr(self, 'stat', c['new'])), 'value')
        self.log_box.observe(self.errors.guard('log scale', lambda c: setattr(self, 'log', c['new'])), 'value')
        self.refresh_button.on_click(self.errors.guard('refresh', lambda _: self.refresh()))
        self.observe(self.errors.guard('redrawing', lambda _: self._render()), ['stat', 'log'])
        self.children = [W.HBox([self.stat_menu, self.log_box, self.refresh_button]), self.bars, self.errors]
        self.errors.guard('reading gradients', self.refresh)()

    def refresh(self, calls: dict | None = None, grads: list | None = None) -> None:
        """Read every parameter's .grad again (calls: path -> forward calls, to say why a gradient is missing)."""
        if calls is not None:
            self.calls = calls
        self.grads = grads if grads is not None else extract.grad_stats(self.model, self.calls)
        self._render()

    def _render(self) -> None:
        self.stat_menu.value, self.log_box.value = self.stat, self.log
        self.bars.value = render.gradflow_html(self.grads, self.stat, self.log)
