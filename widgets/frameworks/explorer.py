"""The Explorer for a PyTorch or Flax model: the same dashboard, with the framework's own forward, backward,
SGD step and zero_grad (each adapter's Trainer)."""
from __future__ import annotations

from .. import extract, render
from ..explorer import Explorer
from . import adapter_for, prepare


class ForeignExplorer(Explorer):
    """Explorer whose buttons run a PyTorch model (torch.optim.SGD) or a Flax module (jax.grad, SGD on its params)."""

    def __init__(self, model, *inputs, loss_fn=None, lr: float = 0.1, variables=None, **kwargs):
        model = prepare(model, inputs, variables)
        self.trainer = adapter_for(model).Trainer(model, inputs, loss_fn)
        super().__init__(model, *inputs, loss_fn=loss_fn, lr=lr, **kwargs)

    def forward(self):
        """Run the model on its inputs and compute the loss (with a record of calls, shapes and the graph)."""
        self._shape = self._children(), self._structure()
        if not self._described:  # as in Explorer.forward: the constructor has just described it on these inputs
            self.info = extract.describe(self.model, *self.inputs)
        self._described = False
        self.loss, out, how = self.trainer.forward()
        self.history.append(self.trainer.value)
        self._draw(graph=True)
        self.status.value = render.notice_html(f'forward: output {out}, {how}')
        return self.loss

    def backward(self) -> None:
        """The last forward's gradients, added into the held gradients (as backward() adds into .grad)."""
        if not self._has_parameters():  # said plainly, as Explorer.backward does: nothing to differentiate
            self.status.value = render.notice_html(self.NO_PARAMETERS)
            return
        if self.loss is None:
            self.forward()
        self.trainer.backward()
        self._draw()
        self.status.value = render.notice_html('backward: gradients added (they accumulate: press zero_grad '
                                               'before the next backward)')

    def step(self) -> None:
        """One plain SGD step with the slider's learning rate: p -= lr * grad."""
        if not self._has_parameters():
            self.status.value = render.notice_html(self.NO_PARAMETERS)
            return
        self.trainer.step(self.lr)
        self.steps += 1
        self._draw()
        self.status.value = render.notice_html(f'step {self.steps}: p -= {self.lr:.4g} * grad; press forward '
                                               'to see the new loss')

    def update(self, loss=None, force: bool = False) -> bool:
        """Record one training step's loss (a torch tensor or a JAX number) and redraw when it is time."""
        return super().update(None if loss is None else self.trainer.scalar(loss), force)

    def zero_grad(self) -> None:
        self.trainer.zero_grad()
        self._draw()
        self.status.value = render.notice_html('zero_grad: no gradients held any more')
