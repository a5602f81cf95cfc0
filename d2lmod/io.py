"""save and load: tensors, lists and dicts of them, and state dicts, in NumPy's .npz format, never pickle."""
from __future__ import annotations

import json
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

_LAYOUT = '__d2lmod_layout__'  # the file's table of contents: what kind of object, and its keys in order


def save(obj, path) -> None:
    """Write a Tensor, a list of Tensors, or a dict of Tensors (a state dict) to path."""
    if isinstance(obj, Tensor):
        kind, items = 'tensor', [('tensor', obj)]
    elif isinstance(obj, (list, tuple)):
        kind, items = 'list', [(str(i), t) for i, t in enumerate(obj)]
    elif isinstance(obj, dict):
        kind, items = 'dict', list(obj.items())
    else:
        raise TypeError(f"save() stores a Tensor, a list of Tensors or a dict of Tensors, got a {type(obj).__name__}")
    arrays = {}
    for key, t in items:
        if not isinstance(key, str) or not isinstance(t, (Tensor, np.ndarray)):
            raise TypeError(f"save(): entry {key!r} is a {type(t).__name__}; only Tensors (with string keys) can be saved")
        if isinstance(t, Tensor) and t._data is None:
            raise ValueError(f"save(): '{key}' is an uninitialized lazy parameter; run the model once first")
        arrays[f'arr_{len(arrays)}'] = np.asarray(t)
    layout = json.dumps({'kind': kind, 'keys': [k for k, _ in items]})
    with open(path, 'wb') as f:  # a file object, so NumPy does not add '.npz' to the name
        np.savez(f, **arrays, **{_LAYOUT: np.array(layout)})


def load(path):
    """Read what save() wrote: Tensors come back in the same list, dict or state dict order."""
    with open(path, 'rb') as f:  # a missing file raises FileNotFoundError, as usual
        pickled = f.peek(1)[:1] == b'\x80'  # how every pickle since protocol 2 starts
        try:
            contents = np.load(f, allow_pickle=False)  # NumPy refuses pickled data instead of running it
            if not isinstance(contents, np.lib.npyio.NpzFile):
                raise ValueError('a single .npy array')
            with contents as npz:
                if _LAYOUT not in npz.files:
                    raise ValueError('no table of contents')
                layout = json.loads(str(npz[_LAYOUT]))
                tensors = [Tensor(npz[f'arr_{i}']) for i in range(len(layout['keys']))]
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            if pickled or 'Object arrays' in str(error):
                raise ValueError(f"load(): {path} holds pickled Python objects, which d2lmod never loads because "
                                 "unpickling can run any code; save plain tensors with dm.save") from None
            raise ValueError(f"load(): {path} was not written by d2lmod.save (it is not a .npz file with d2lmod's "
                             "table of contents); read other NumPy files with np.load, then wrap them: dm.tensor") \
                from None
    if layout['kind'] == 'tensor':
        return tensors[0]
    if layout['kind'] == 'list':
        return tensors
    return OrderedDict(zip(layout['keys'], tensors))
