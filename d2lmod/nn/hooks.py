"""Forward hooks: functions a Module runs before or after its forward, each removable through its handle."""
from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict


class RemovableHandle:
    """Returned by the register_*_hook methods; .remove() (or leaving a `with` block) takes the hook away."""
    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self.hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def __repr__(self):
        return f'RemovableHandle(id={self.id})'


def add_hook(hooks: OrderedDict, entry: tuple, prepend: bool) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = entry
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def run_pre_hooks(module, hooks: OrderedDict, args: tuple, kwargs: dict):
    """Each hook(module, args) (or hook(module, args, kwargs)) in order; a non-None result replaces the inputs."""
    for hook, with_kwargs, _ in list(hooks.values()):
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                       f"but got {result!r:.80}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    return args, kwargs


def run_hooks(module, hooks: OrderedDict, args: tuple, kwargs: dict, out, called: set):
    """Each hook(module, args, output) in order, noting it in called; a non-None result replaces the output."""
    for hook_id, (hook, with_kwargs, _) in list(hooks.items()):
        called.add(hook_id)
        result = hook(module, args, kwargs, out) if with_kwargs else hook(module, args, out)
        out = out if result is None else result
    return out


def run_always_called(module, hooks: OrderedDict, args: tuple, kwargs: dict, out, called) -> None:
    """After forward (or a hook) raised: the always_call hooks not run yet; their own errors only warn, as in
    PyTorch, so that the error the student sees is the first one."""
    for hook_id, (hook, with_kwargs, always_call) in list(hooks.items()):
        if always_call and hook_id not in called:
            try:
                hook(module, args, kwargs, out) if with_kwargs else hook(module, args, out)
            except Exception as error:
                warnings.warn("forward hook with ``always_call=True`` raised an exception that was silenced as "
                              f"another error was raised in forward: {error!r}")
