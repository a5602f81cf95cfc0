"""Which framework a model comes from, and its adapter: the file that turns its models into extract.py's data.

d2lmod's own adapter is extract.py + graph.py; torch.py and flax.py do the same for PyTorch and Flax linen
models. The framework is read from the names of the model's classes (its type and their bases' modules),
so nothing is imported to decide: torch or jax load only when one of their models arrives.
A new framework is one new file here and one line in ADAPTERS.
"""
from __future__ import annotations

import importlib
import importlib.util

# top-level package of a class -> (adapter module in this folder, what to install when it is missing)
ADAPTERS = {
    'torch': ('torch', 'pip install torch==2.13.0'),
    'flax': ('flax', 'pip install jax flax'),
    'jax': ('flax', 'pip install jax flax'),
    'jaxlib': ('flax', 'pip install jax flax'),
}


def framework_of(obj) -> str:
    """'torch', 'flax' or 'd2lmod' (anything else), from the modules that define obj's class and its bases."""
    for cls in type(obj).__mro__:
        module = cls.__module__ or ''
        if module.startswith(__name__ + '.'):  # a holder made by one of our adapters, e.g. flax.FlaxModel
            return module.rpartition('.')[2]
        top = module.partition('.')[0]
        if top in ADAPTERS:
            return ADAPTERS[top][0]
    return 'd2lmod'


def adapter(name: str):
    """The adapter module for a framework, imported now; a missing framework is said in one sentence."""
    install = {a: cmd for a, cmd in ADAPTERS.values()}[name]
    try:
        return importlib.import_module(f'{__name__}.{name}')
    except ImportError as error:
        missing = error.name or name
        raise ImportError(f"d2lmod.widgets: this is a {name} model, but {missing!r} is not installed here; "
                          f"install it with `{install}` and restart the kernel") from error


def adapter_for(obj):
    """The adapter of obj's framework, or None for d2lmod's own models (and anything unknown)."""
    name = framework_of(obj)
    return None if name == 'd2lmod' else adapter(name)


def prepare(model, inputs: tuple, variables=None):
    """What the visualiser holds for a model: d2lmod and PyTorch models as they are, a Flax module with its
    variables (initialised from inputs with PRNGKey(0) when none are given)."""
    found = adapter_for(model)
    if found is None or not hasattr(found, 'prepare'):
        if variables is not None:
            raise TypeError(f"variables= is for Flax modules (their weights live outside the module); this "
                            f"{type(model).__name__} holds its own parameters, so leave variables out")
        return model
    return found.prepare(model, inputs, variables)


def gradients(model, inputs: tuple, loss_fn=None) -> None:
    """GradFlow(model, X): gradients split by call from one more run (PyTorch: .grad untouched; Flax: held)."""
    found = adapter_for(model)
    if found is None:
        raise TypeError(f"GradFlow({type(model).__name__}) reads the .grad that your backward() left; pass no "
                        "inputs (they are for PyTorch and Flax models, which it runs itself)")
    found.gradients(model, inputs, loss_fn)


def graph_args(output, inputs: tuple, model=None, variables=None) -> tuple:
    """(what graph.trace reads, the model) for GraphView: a tensor as it is, a Flax module run on inputs."""
    if model is None and len(inputs) == 1 and (hasattr(inputs[0], 'named_modules') or
                                               type(inputs[0]).__name__ == 'FlaxModel'):
        model, inputs = inputs[0], ()  # GraphView(output, model): the model given by position
    found = adapter_for(model if model is not None else output)
    if found is None or not hasattr(found, 'graph_args'):
        if inputs or variables is not None:
            raise TypeError("GraphView(output, model=model) traces back from the output tensor; inputs and "
                            "variables= are for Flax modules, whose arrays keep no history")
        return output, model
    return found.graph_args(output, inputs, model, variables)


def _install_command(name: str) -> str:
    """How to install the package name ('torch', 'jax', 'flax.linen', ...): the project's own pin where it has one."""
    top = name.partition('.')[0]
    return {a: cmd for a, cmd in ADAPTERS.values()}.get(ADAPTERS.get(top, (top,))[0], f'pip install {top}')


def optional(*names):
    """The modules named, imported (a tuple for several); all None and one sentence on installing if one is missing."""
    # the lessons ask for torch, jax and flax this way and run their cells `if torch is not None:`, so they
    # never import an optional package themselves and still run where it is missing (an in-browser Python)
    try:
        modules = tuple(importlib.import_module(name) for name in names)
    except ImportError as error:
        missing = (error.name or names[0]).partition('.')[0]
        print(f"{missing} is not installed here, so the cells that use it do nothing "
              f"(`{_install_command(missing)}` installs it)")
        modules = (None,) * len(names)
    return modules[0] if len(names) == 1 else modules


def explorer_class():
    """The Explorer for PyTorch and Flax models (imported late: it needs ipywidgets)."""
    from .explorer import ForeignExplorer
    return ForeignExplorer


def load_ipython_extension(ipython) -> None:
    """`%load_ext d2lmod.widgets.frameworks` adds `%%needs torch` (or `%%needs jax flax`): the cell runs only
    where those packages are installed; elsewhere one sentence says what to install."""
    def installed(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ImportError:  # a finder that refuses the name: as good as missing
            return False

    def needs(line: str, cell: str) -> None:
        missing = [name for name in line.split() if not installed(name)]
        if missing:
            cmd = _install_command(missing[0]) if missing[0] in ADAPTERS else f'pip install {" ".join(missing)}'
            them = 'it' if len(missing) == 1 else 'them'
            print(f"skipped: this cell needs {' and '.join(missing)}, not installed here (`{cmd}` installs {them})")
            return
        ipython.run_cell(cell).raise_error()  # an error in the cell fails the cell, as it would without %%needs

    ipython.register_magic_function(needs, 'cell', 'needs')
