"""save and load: tensors, lists and dicts of them, and state dicts, in NumPy's .npz format, never pickle.

The file is a zip of .npy arrays: first the table of contents (`__d2lmod_layout__.npy`: what kind of object,
and its keys in order), then `arr_0.npy`, `arr_1.npy`, ... Saving writes a temporary file next to the target
and renames it into place, so a failure never leaves half a checkpoint. Loading reads every array header
itself and checks it against the file before reading any data, so a damaged file cannot make it allocate
more than the file holds, and nothing is ever unpickled.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickletools
import secrets
import stat
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

_LAYOUT = '__d2lmod_layout__'  # the file's table of contents: what kind of object, and its keys in order
_KINDS = ('tensor', 'list', 'tuple', 'dict', 'ordered_dict')  # load() gives back the same kind, as torch.load


# ---- saving ---------------------------------------------------------------------------------------------
def save(obj, path) -> None:
    """Write a Tensor, a list of Tensors, or a dict of Tensors (a state dict) to path, atomically."""
    if isinstance(obj, Tensor):
        kind, items = 'tensor', [('tensor', obj)]
    elif isinstance(obj, (list, tuple)):
        kind, items = type(obj).__name__ if type(obj) in (list, tuple) else 'list', [(str(i), t) for i, t in enumerate(obj)]
    elif isinstance(obj, dict):
        kind, items = 'ordered_dict' if isinstance(obj, OrderedDict) else 'dict', list(obj.items())
    else:
        raise TypeError(f"save() stores a Tensor, a list of Tensors or a dict of Tensors, got a {type(obj).__name__}")
    arrays = {_LAYOUT: None}  # the table of contents goes first: even a truncated file says whose it is
    for key, t in items:  # check everything before touching the file
        if not isinstance(key, str) or not isinstance(t, (Tensor, np.ndarray)):
            raise TypeError(f"save(): entry {key!r} is a {type(t).__name__}; only Tensors (with string keys) can be saved")
        if isinstance(t, Tensor) and t._data is None:
            raise ValueError(f"save(): '{key}' is an uninitialized lazy parameter; run the model once first")
        array = np.asarray(t)
        if array.dtype.hasobject:
            raise TypeError(f"save(): entry {key!r} holds Python objects (dtype {array.dtype}), which NumPy can only "
                            "store by pickling; save numbers only, e.g. dm.tensor(values, dtype=dm.float32)")
        arrays[f'arr_{len(arrays) - 1}'] = array
    arrays[_LAYOUT] = np.array(json.dumps({'kind': kind, 'keys': [k for k, _ in items]}))
    _write_atomically(path, lambda f: np.savez(f, **arrays))


def _write_atomically(path, write) -> None:
    """write(file) into a new file next to path, flushed to disk, then renamed over path in one step."""
    target = os.path.realpath(os.fspath(path))  # through a symlink: replace the file it points to
    temp = os.path.join(os.path.dirname(target), f'.{os.path.basename(target)}.{secrets.token_hex(4)}.tmp')
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 less the umask, as open() does
    try:
        with os.fdopen(fd, 'wb') as f:  # a file object, so NumPy does not add '.npz' to the name
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points to them
        if os.path.exists(target):  # a checkpoint saved again keeps its permissions
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temp, target)  # atomic: readers see the old file or the new one, never a mix
    except BaseException:  # a full disk, an unsavable value, Ctrl-C: the old file stays as it was
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# ---- loading ------------------------------------------------------------------------------------------
class _Damaged(Exception):
    """Inside load(): the file is d2lmod's, but cannot be read (the message says why)."""


class _Pickled(Exception):
    """Inside load(): the file holds pickled Python objects."""


def load(path):
    """Read what save() wrote: Tensors come back in the same list, dict or state dict order."""
    with open(path, 'rb') as f:  # a missing file raises FileNotFoundError, as usual
        try:
            try:
                layout, arrays = _read(f, os.fstat(f.fileno()).st_size)
            except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
                f.seek(0)
                data = f.read()
                if (_LAYOUT + '.npy').encode() in data:  # its zip directory is gone (cut short?): still ours
                    raise _Damaged(_reason(error)) from None
                if _is_pickle(data[:2 ** 20]):  # an old-protocol pickle: parsed (never run) to say so
                    raise _Pickled() from None
                raise
        except _Pickled:
            raise ValueError(f"load(): {path} holds pickled Python objects, which d2lmod never loads because "
                             "unpickling can run any code; save plain tensors with dm.save") from None
        except _Damaged as why:
            raise ValueError(f"load(): {path} is a damaged or incomplete d2lmod file ({why}); it cannot be read: "
                             "save the model again, or use an earlier copy") from None
        except (ValueError, EOFError, OSError, zipfile.BadZipFile):
            raise ValueError(f"load(): {path} was not written by d2lmod.save: it is not a d2lmod file (not a .npz "
                             "file with d2lmod's table of contents); read other NumPy files with np.load, then wrap "
                             "them: dm.tensor") from None
    tensors, kind = [Tensor(a) for a in arrays], layout['kind']
    if kind == 'tensor':
        return tensors[0]
    if kind in ('list', 'tuple'):
        return tensors if kind == 'list' else tuple(tensors)
    return (OrderedDict if kind == 'ordered_dict' else dict)(zip(layout['keys'], tensors))


def _reason(error: BaseException) -> str:
    return 'cut short' if isinstance(error, EOFError) else f'{type(error).__name__}: {error}'


def _read(f, size: int) -> tuple:
    """(table of contents, arrays) of an open file; raises _Damaged, _Pickled, or ValueError when not ours."""
    start = f.read(6)
    f.seek(0)
    if start[:1] == b'\x80':  # how every pickle since protocol 2 starts
        raise _Pickled()
    if start == b'\x93NUMPY':  # a single .npy array: pickled if it holds objects, else just not ours
        _header(f)
        raise ValueError('a single .npy array')
    with zipfile.ZipFile(f) as z:
        names = set(z.namelist())
        if any(n.endswith('.pkl') for n in names):  # torch.save and the like: pickles in a zip
            raise _Pickled()
        if _LAYOUT + '.npy' not in names:
            raise ValueError('no table of contents')
        try:
            layout = _layout(_member(z, _LAYOUT, size))
            keys, stored = layout['keys'], sum(n.startswith('arr_') for n in names)
            missing = [f'arr_{i}' for i in range(len(keys)) if f'arr_{i}.npy' not in names]
            if missing or stored != len(keys):
                raise _Damaged(f"its table of contents lists {len(keys)} arrays, the file holds {stored}"
                               + (f" and no {', '.join(missing[:3])}" if missing else ''))
            return layout, [_member(z, f'arr_{i}', size) for i in range(len(keys))]
        except (EOFError, OSError, ValueError, KeyError, NotImplementedError, zipfile.BadZipFile) as error:
            raise _Damaged(_reason(error)) from None


def _layout(array: np.ndarray) -> dict:
    """The table of contents, checked: {'kind': 'tensor' | 'list' | 'dict', 'keys': [str, ...]}."""
    try:
        layout = json.loads(str(array)) if array.dtype.kind == 'U' and array.shape == () else None
    except ValueError:
        layout = None
    keys = layout.get('keys') if isinstance(layout, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys) \
            or layout.get('kind') not in _KINDS or (layout['kind'] == 'tensor' and len(keys) != 1):
        raise _Damaged("its table of contents is malformed: it must be JSON text with a kind (tensor, list or "
                       "dict) and distinct string keys")
    return layout


def _member(z: zipfile.ZipFile, name: str, size: int) -> np.ndarray:
    """One .npy member; its header is checked against the member's size before a byte of data is read."""
    info = z.getinfo(name + '.npy')  # KeyError if missing
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:  # d2lmod never compresses
        raise _Damaged(f'{name} is compressed, which d2lmod.save never does' if info.compress_type != zipfile.ZIP_STORED
                       else f'{name} declares {info.file_size:,} bytes, more than the file holds')
    with z.open(info) as m:
        shape, fortran, dtype = _header(m)
        nbytes = math.prod(shape) * dtype.itemsize  # Python integers: a shape of 10**12 cannot overflow
        if nbytes != info.file_size - m.tell():
            raise _Damaged(f'{name} declares shape {shape} of {dtype} ({nbytes:,} bytes), but holds '
                           f'{info.file_size - m.tell():,} bytes')
        data = m.read()  # bounded by the checks above; reading to the end also checks the CRC
    if len(data) != nbytes:
        raise EOFError()
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape)).copy()  # writable, and its own memory
    array = array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)
    return array.astype(dtype.newbyteorder('='), copy=False)  # native byte order, as every op expects


def _is_pickle(data: bytes) -> bool:
    """True when data is one whole pickle: its opcodes are parsed, none is run."""
    try:
        return any(op.name == 'STOP' for op, _, _ in pickletools.genops(io.BytesIO(data)))
    except Exception:  # not a pickle: genops meets an opcode or argument it cannot read
        return False


def _header(f) -> tuple:
    """(shape, fortran_order, dtype) of the .npy header at f; _Pickled for object arrays."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f'.npy format version {version}')
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)  # NumPy parses it as a literal, never as code
    if dtype.hasobject:
        raise _Pickled()
    return tuple(shape), fortran, dtype
