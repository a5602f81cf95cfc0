"""Explorer: the module tree, gradient flow and graph in one dashboard, with forward/backward/step buttons.

In a training loop, call explorer.update(loss) once per step after backward(): it redraws at most every
`every_seconds`, so watching costs little.

    ex = Explorer(net, X[:2], loss_fn=lambda out: F.cross_entropy(out, y[:2]))
    display(ex)
    ex.live(every_seconds=0.5)
    for step in range(1000):
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        loss.backward()
        opt.step()
        ex.update(loss)      # cheap: redraws only when every_seconds have passed
    ex.update(force=True)    # the final state
"""
from __future__ import annotations

import time

import ipywidgets as W
import traitlets

from d2lmod import optim
from d2lmod.nn.module import Module
from d2lmod.tensor import Tensor

from . import extract, frameworks, render
from .gradflow import GradFlow
from .graph_view import GraphView
from .tree import ErrorArea, ModuleTree


class Explorer(W.VBox):
    """A dashboard for model run on inputs: buttons to step through training, and live updates from a loop."""

    lr = traitlets.Float(0.1, help='learning rate of the step button (plain SGD)')
    every_seconds = traitlets.Float(0.5, help='live updates redraw at most this often (seconds)')

    def __new__(cls, model=None, *inputs, **kwargs):
        # a PyTorch or Flax model gets the same dashboard with its framework's buttons (frameworks/explorer.py)
        if cls is Explorer and frameworks.framework_of(model) != 'd2lmod':
            cls = frameworks.explorer_class()
        return super().__new__(cls)

    def __init__(self, model: Module, *inputs, loss_fn=None, lr: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.model, self.inputs, self.loss_fn, self.lr = model, inputs, loss_fn, lr
        self.loss, self.history, self.optimizer, self.steps = None, [], None, 0
        self._last_draw = self._draw_seconds = 0.0  # when the last live redraw ended, and how long it took
        self._shape = self._children(), self._structure()  # what the model was made of when last described
        # described once, with the inputs when there are some (the first forward uses it); drawn once at the end
        self._described, self._hold = bool(inputs), False
        try:
            self.info = extract.describe(model, *inputs)
        except Exception:  # a forward that fails: the first forward, below, shows why inside the widget
            self.info, self._described = extract.describe(model), False
        self.tree = ModuleTree(model, *inputs, info=self.info)
        self.gradflow = GradFlow(model)
        self.graph = None  # a GraphView, made by the first forward
        self.graph_pane = W.VBox([W.HTML(render.notice_html('press forward to trace the computation graph'))])

        self.buttons = {name: W.Button(description=name, tooltip=tip, layout=W.Layout(width='100px'))
                        for name, tip in [('forward', 'run the model on the inputs and compute the loss'),
                                          ('backward', 'loss.backward(): gradients add into every .grad'),
                                          ('step', 'one SGD step: p -= lr * p.grad'),
                                          ('zero_grad', 'set every .grad back to None')]}
        self.lr_slider = W.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.25, description='lr',
                                          readout_format='.4g', continuous_update=False)
        self.status = W.HTML(render.notice_html('press forward to run the model on its inputs'))
        self.loss_plot = W.HTML(layout=W.Layout(margin='0 0 0 24px'))
        # Tabs made of toggle buttons over a Stack, not a W.Tab: in JupyterLab 4's default notebook windowing
        # ('contentVisibility') a W.Tab drawn during "Run All" sometimes never gets the message that installs
        # its click handler, and then ignores every click on its tabs (tests/browser/ caught it).
        self.tab_buttons = W.ToggleButtons(options=['modules', 'gradients', 'graph'], style={'button_width': '120px'})
        self.tabs = W.Stack([self.tree, self.gradflow, self.graph_pane], selected_index=0,
                            layout=W.Layout(border='1px solid #d1d5db', padding='6px'))
        W.jslink((self.tab_buttons, 'index'), (self.tabs, 'selected_index'))  # switched in the browser
        self.errors = ErrorArea()

        for name, button in self.buttons.items():
            button.on_click(self.errors.guard(name, lambda _, name=name: getattr(self, name)()))
        traitlets.link((self.lr_slider, 'value'), (self, 'lr'))  # moving the slider sets lr, and back
        self.children = [W.HBox(list(self.buttons.values()) + [self.lr_slider]),
                         W.HBox([self.status, self.loss_plot]), self.tab_buttons, self.tabs, self.errors]
        if inputs:  # show everything at once: calls and shapes, the graph, and each parameter's gradient
            self.errors.guard('the first forward and backward', self._first_look)()

    NO_PARAMETERS = ('this model has no parameters, so there is nothing to differentiate or train: forward shows '
                     'what it computes; backward and step have nothing to do')

    def _first_look(self) -> None:
        self._hold = True  # forward and backward without drawing in between: a big model is drawn once
        try:
            self.forward()
            if self._has_parameters():
                self.backward()
        finally:
            self._hold = False
        self._draw(graph=True)
        if not self._has_parameters():
            self.status.value = render.notice_html(self.NO_PARAMETERS)
            return
        self.status.value = render.notice_html('ran forward and backward once on the inputs (gradients are in '
                                               '.grad); step trains, zero_grad clears')

    def _has_parameters(self) -> bool:
        parameters = getattr(self.model, 'parameters', None)  # a model of another framework may not say
        return parameters is None or next(iter(parameters()), None) is not None

    # ---- the buttons -----------------------------------------------------------------------------------
    def forward(self) -> Tensor:
        """Run the model on its inputs (once to count calls, once recording the graph); show the loss."""
        self._shape = self._children(), self._structure()
        if not self._described:  # the constructor has just described the model on these inputs
            self.info = extract.describe(self.model, *self.inputs)
        self._described = False
        out = self.model(*self.inputs)
        self.loss, how = self._loss(out)
        self.history.append(self.loss.item())
        self._draw(graph=True)
        self.status.value = render.notice_html(f'forward: output {extract.output_str(out)}, {how}')
        return self.loss

    def backward(self) -> None:
        """loss.backward() on the last forward's loss (running forward first if there is none)."""
        if self.loss is None:
            self.forward()
        if not self.loss.requires_grad:  # said plainly: nothing is broken, there is just nothing to differentiate
            self.status.value = render.notice_html(
                self.NO_PARAMETERS if not self._has_parameters() else 'backward: the loss does not depend on any '
                'parameter that requires a gradient (all frozen, or computed under no_grad()), so there is nothing '
                'to differentiate')
            return
        self.loss.backward(retain_graph=True)  # the button may be pressed again on the same loss
        self._draw()
        self.status.value = render.notice_html('backward: gradients added into .grad (they accumulate: '
                                               'press zero_grad before the next backward)')

    def step(self) -> None:
        """One plain SGD step with the slider's learning rate, on the gradients there are now."""
        if not self._has_parameters():
            self.status.value = render.notice_html(self.NO_PARAMETERS)
            return
        if self.optimizer is None:
            self.optimizer = optim.SGD(self.model.parameters(), lr=self.lr)
        self.optimizer.lr = self.lr
        self.optimizer.step()
        self.steps += 1
        self._draw()
        self.status.value = render.notice_html(f'step {self.steps}: p -= {self.lr:.4g} * p.grad; press forward '
                                               'to see the new loss')

    def zero_grad(self) -> None:
        self.model.zero_grad()
        self._draw()
        self.status.value = render.notice_html('zero_grad: every .grad is None again')

    # ---- live updates from a training loop ---------------------------------------------------------------
    def live(self, every_seconds: float = 0.5) -> Explorer:
        """Make update() redraw at most every every_seconds; returns self, so a cell can end with it."""
        self.every_seconds, self._last_draw = every_seconds, 0.0
        return self

    def update(self, loss=None, force: bool = False) -> bool:
        """Record the loss of one training step; redraw if every_seconds have passed (or force). True if redrawn."""
        if loss is not None:
            self.history.append(loss.item() if isinstance(loss, Tensor) else float(loss))
        start = time.perf_counter()
        # wait every_seconds, and at least 10 times as long as the last redraw took: a big model's redraw
        # then still costs under a tenth of the training time
        due = force or start - self._last_draw >= max(self.every_seconds, 10 * self._draw_seconds)
        # a layer added or replaced since: describe and trace again. The model's own children are compared at
        # every call (cheap); the whole tree only when a redraw is due anyway
        if self._children() != self._shape[0] or (due and self._structure() != self._shape[1]):
            self.errors.guard("re-reading the model's new structure", self._restructure)(loss)
            return True
        if not due:
            return False
        self._draw()
        self.status.value = render.notice_html(f'live: {len(self.history)} losses recorded, redrawn at most every '
                                               f'{self.every_seconds:g} s')
        self._last_draw = time.perf_counter()
        self._draw_seconds = self._last_draw - start
        return True

    # ---- a model whose structure changed -----------------------------------------------------------------
    def _children(self) -> list:
        return [(k, id(c)) for k, c in (getattr(self.model, '_modules', None) or {}).items()]

    def _structure(self) -> list:
        """Each module's children and parameters, by identity: any layer added, removed or replaced changes it."""
        out, seen, stack = [], set(), [self.model]
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            children, params = getattr(m, '_modules', None) or {}, getattr(m, '_parameters', None) or {}
            out.append((id(m), [(k, id(c)) for k, c in children.items()], [(k, id(p)) for k, p in params.items()]))
            stack.extend(c for c in children.values() if c is not None)
        return out

    def _restructure(self, loss=None) -> None:
        """Describe the model again; trace the graph again from loss (if it has a graph) or from a new forward."""
        self._shape = self._children(), self._structure()
        self.optimizer = None  # its parameter list is the old one
        self.info = extract.describe(self.model, *self.inputs) if self.inputs else extract.describe(self.model)
        if isinstance(loss, Tensor) and loss._parents:
            self.loss = loss
        elif self.inputs:
            self.loss = self._loss(self.model(*self.inputs))[0]
        self._draw(graph=self.loss is not None)
        self.status.value = render.notice_html("the model's structure changed: modules, gradients and graph "
                                               're-read')

    # ---- drawing ----------------------------------------------------------------------------------------
    def _loss(self, out):
        """(scalar loss, how it was made) from the model's output."""
        if self.loss_fn is not None:
            return self.loss_fn(out), 'loss = loss_fn(output)'
        if not isinstance(out, Tensor):
            raise TypeError(f"the model returned a {type(out).__name__}, not a Tensor; pass loss_fn= to turn it "
                            "into a scalar loss")
        if out._data.size == 1:
            return out, 'the output is the loss'
        return out.sum(), 'loss = output.sum() (pass loss_fn= for a real loss)'

    def _draw(self, graph: bool = False) -> None:
        """Redraw the tree, the gradients and the loss curve (and the graph when asked)."""
        if self._hold:
            return
        if self.info.totals.lazy:  # lazy layers may have learned their sizes since
            self.info = extract.describe(self.model)
        calls = {m.path: m.calls for m in self.info.modules} if self.info.inputs else None
        grads = extract.grad_stats(self.model, calls)
        self.tree.refresh(self.info, grads)
        self.gradflow.refresh(calls, grads)
        self.loss_plot.value = render.loss_svg(self.history)
        if graph:  # tracing and laying out the graph is the slow part: only after the forward button
            if self.graph is None:
                self.graph = GraphView(self.loss, self.model)
                self.graph_pane.children = [self.graph]
            else:
                self.graph.update(self.loss, self.model)
