"""functional_call: run a module with parameters from a dict, the Flax init/apply style on the same core."""
from __future__ import annotations

from .nn.module import Module
from .tensor import Tensor


def functional_call(module: Module, params_and_buffers: dict, *args, **kwargs):
    """module(*args) computed with the given tensors in place of its own; the module is left unchanged.

    Gradients flow to the given tensors, so params = {k: v.detach().requires_grad_() ...} trains a copy.
    """
    owners = {path: m for path, m in module.named_modules(remove_duplicate=False)}
    swapped = []
    try:
        for key, value in params_and_buffers.items():
            path, _, name = key.rpartition('.')
            owner = owners.get(path)
            registry = None if owner is None else owner._parameters if name in owner._parameters \
                else owner._buffers if name in owner._buffers else None
            if registry is None:
                raise KeyError(f"functional_call: {type(module).__name__} has no parameter or buffer '{key}'; "
                               f"its keys are {list(module.state_dict())}")
            if not isinstance(value, Tensor):
                raise TypeError(f"functional_call: '{key}' must be a Tensor, got a {type(value).__name__}")
            swapped.append((owner, registry, name, registry[name]))
            registry[name] = vars(owner)[name] = value  # both places a Module keeps it (see nn/module.py)
        return module(*args, **kwargs)
    finally:
        for owner, registry, name, original in reversed(swapped):  # put every original back, even after an error
            registry[name] = vars(owner)[name] = original
