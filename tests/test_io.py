"""dm.save and dm.load: what goes in comes back (keys, order, values, dtypes), and nothing is ever unpickled.

A file with pickled objects in it is refused with an error that says so; the proof that loading never
unpickles is a payload whose unpickling would create a marker file: the marker must not appear (and a
control shows that the same payload, unpickled on purpose, does create it).
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from chapter_models import CHAPTER_MODELS, make_chimera, make_input

import d2lmod as dm
from d2lmod import nn


class Payload:
    """An object whose unpickling creates (opens for writing) the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')


# ---- round trips ---------------------------------------------------------------------------------------
def test_a_tensor_round_trip_keeps_values_dtype_and_shape(tmp_path):
    for t in (dm.randn(3, 4), dm.tensor(np.arange(6).reshape(2, 3)), dm.tensor(np.ones(2)), dm.tensor(2.5),
              dm.tensor(np.array([True, False]))):
        dm.save(t, tmp_path / 't.params')
        back = dm.load(tmp_path / 't.params')
        assert isinstance(back, dm.Tensor) and back.dtype == t.dtype and back.shape == t.shape
        np.testing.assert_array_equal(back._data, t._data)


def test_the_file_is_written_under_the_exact_name_given(tmp_path):
    dm.save(dm.ones(2), tmp_path / 'x-file')
    assert [p.name for p in tmp_path.iterdir()] == ['x-file']  # NumPy would otherwise add '.npz'


def test_a_list_of_tensors_round_trip(tmp_path):
    items = [dm.ones(2), dm.zeros(3, dtype=dm.float64), dm.tensor([1, 2], dtype=dm.int64)]
    dm.save(items, tmp_path / 'list')
    back = dm.load(tmp_path / 'list')
    assert isinstance(back, list) and len(back) == 3
    for a, b in zip(items, back):
        assert a.dtype == b.dtype and np.array_equal(a._data, b._data)


def test_a_dict_of_tensors_round_trip_keeps_key_order(tmp_path):
    d = {'z': dm.ones(1), 'a': dm.randn(2, 2), 'm': dm.zeros(3)}
    dm.save(d, tmp_path / 'dict')
    back = dm.load(tmp_path / 'dict')
    assert list(back) == ['z', 'a', 'm']
    for key in d:
        np.testing.assert_array_equal(back[key]._data, d[key]._data)


def test_a_chapter_model_state_dict_round_trip_into_a_fresh_model(tmp_path):
    net = make_chimera()
    X = make_input()
    expected = net(X).item()
    state = net.state_dict()
    dm.save(state, tmp_path / 'chimera.params')
    back = dm.load(tmp_path / 'chimera.params')
    assert list(back) == list(state)  # every key, in order
    for key, value in state.items():
        assert back[key].dtype == value.dtype == np.float32, key
        np.testing.assert_array_equal(back[key]._data, value._data, err_msg=key)
    fresh = make_chimera()  # lazy, never called: the load gives it its shapes
    fresh.load_state_dict(back)
    fresh[2].rand_weight = net[2].rand_weight  # a plain attribute: not saved, as in PyTorch
    assert fresh(X).item() == expected


def test_float64_models_stay_float64(tmp_path):
    net = CHAPTER_MODELS['net']()
    net(make_input())
    net.to(dm.float64)
    dm.save(net.state_dict(), tmp_path / 'net')
    assert all(t.dtype == np.float64 for t in dm.load(tmp_path / 'net').values())


def test_reusing_the_first_layers_of_a_saved_model(tmp_path):
    net = CHAPTER_MODELS['net']()
    net(make_input())
    dm.save(net.state_dict(), tmp_path / 'net')
    first = nn.Sequential(nn.LazyLinear(256), nn.ReLU())
    result = first.load_state_dict(dm.load(tmp_path / 'net'), strict=False)
    assert result.unexpected_keys == ['2.weight', '2.bias'] and result.missing_keys == []
    np.testing.assert_array_equal(first[0].weight._data, net[0].weight._data)


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match='a Tensor, a list of Tensors or a dict of Tensors, got a str'):
        dm.save('weights', tmp_path / 'x')
    with pytest.raises(TypeError, match="entry 'n' is a int"):
        dm.save({'n': 3}, tmp_path / 'x')


def test_saving_an_uninitialized_lazy_parameter_is_refused(tmp_path):
    net = CHAPTER_MODELS['net']()
    with pytest.raises(ValueError, match=r"'0\.weight' is an uninitialized lazy parameter.*run the model once"):
        dm.save(net.state_dict(), tmp_path / 'lazy')
    assert not (tmp_path / 'lazy').exists()  # nothing half-written


# ---- files d2lmod does not load ----------------------------------------------------------------------------
def test_the_payload_really_creates_the_marker_when_unpickled(tmp_path):
    marker = tmp_path / 'marker'
    pickle.loads(pickle.dumps(Payload(marker))).close()  # the control: unpickling runs it
    assert marker.exists()


def pickle_file(path: Path, marker: Path) -> None:
    with open(path, 'wb') as f:
        pickle.dump({'weight': Payload(marker)}, f)


def npy_object_file(path: Path, marker: Path) -> None:
    with open(path, 'wb') as f:  # a file object, so the name stays as given
        np.save(f, np.array([Payload(marker)], dtype=object), allow_pickle=True)


def npz_object_file(path: Path, marker: Path) -> None:
    """A file that looks like d2lmod's (same table of contents) but holds an object array."""
    dm.save({'weight': dm.ones(2)}, path)
    with zipfile.ZipFile(path) as z:
        layout = z.read('__d2lmod_layout__.npy')
    with open(path, 'wb') as f:
        np.savez(f, arr_0=np.array([Payload(marker)], dtype=object))
    with zipfile.ZipFile(path, 'a') as z:
        z.writestr('__d2lmod_layout__.npy', layout)


@pytest.mark.parametrize('write', [pickle_file, npy_object_file, npz_object_file],
                         ids=['pickle.dump', 'np.save of an object array', 'npz with an object array'])
def test_a_file_with_pickled_objects_is_refused_and_never_unpickled(tmp_path, write):
    path, marker = tmp_path / 'model.params', tmp_path / 'marker'
    write(path, marker)
    assert not marker.exists()
    with pytest.raises(ValueError) as info:
        dm.load(path)
    message = str(info.value)
    assert 'pickle' in message and str(path) in message and 'dm.save' in message, message
    assert not marker.exists(), 'loading ran the pickle payload'


def test_an_npz_not_written_by_d2lmod(tmp_path):
    path = tmp_path / 'other.npz'
    np.savez(path, weight=np.ones(3))
    with pytest.raises(ValueError, match=r'other\.npz was not written by d2lmod\.save.*np\.load'):
        dm.load(path)


def test_a_single_npy_array(tmp_path):
    path = tmp_path / 'w.npy'
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match=r'w\.npy was not written by d2lmod\.save'):
        dm.load(path)


@pytest.mark.parametrize('content', [b'certainly not a tensor file\n', b'', b'PK\x03\x04 truncated zip'],
                         ids=['text', 'empty', 'broken zip'])
def test_a_garbage_file(tmp_path, content):
    path = tmp_path / 'garbage.bin'
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        dm.load(path)
    message = str(info.value)
    assert 'garbage.bin was not written by d2lmod.save' in message, message
    assert 'pickle' not in message  # it is not a pickle, so the error does not say so


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        dm.load(tmp_path / 'nowhere.params')


def test_loading_gives_tensors_ready_to_use(tmp_path):
    dm.save(OrderedDict(w=dm.ones(2, 2)), tmp_path / 'w')
    w = dm.load(tmp_path / 'w')['w']
    assert not w.requires_grad and (w @ dm.ones(2)).tolist() == [2.0, 2.0]


# ---- saving is all or nothing --------------------------------------------------------------------------------
def good_checkpoint(path: Path) -> bytes:
    dm.save({'w': dm.ones(3), 'b': dm.zeros(2)}, path)
    return path.read_bytes()


def test_an_unsavable_value_in_the_middle_leaves_the_old_file_byte_for_byte(tmp_path):
    path = tmp_path / 'ckpt.params'
    before = good_checkpoint(path)
    with pytest.raises(TypeError, match="entry 'bad' is a str"):
        dm.save({'w': dm.ones(3), 'bad': 'oops', 'b': dm.zeros(2)}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['ckpt.params']


@pytest.mark.parametrize('failure', [OSError(28, 'No space left on device'), KeyboardInterrupt()],
                         ids=['disk full', 'Ctrl-C'])
def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, failure):
    path = tmp_path / 'ckpt.params'
    before = good_checkpoint(path)
    real_savez = np.savez

    def savez_that_fails_half_way(f, **arrays):
        real_savez(f, **arrays)  # the bytes are written...
        raise failure            # ...and then the disk fills up, or the student presses stop

    monkeypatch.setattr(np, 'savez', savez_that_fails_half_way)
    with pytest.raises(type(failure)):
        dm.save({'w': dm.ones(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['ckpt.params']
    assert list(dm.load(path)) == ['w', 'b']


def test_a_failing_fsync_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.params'
    before = good_checkpoint(path)

    def fsync(fd):
        raise OSError(5, 'Input/output error')
    monkeypatch.setattr('os.fsync', fsync)
    with pytest.raises(OSError, match='Input/output'):
        dm.save({'w': dm.ones(5)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['ckpt.params']


def test_saving_again_replaces_the_file_and_keeps_its_permissions(tmp_path):
    path = tmp_path / 'ckpt.params'
    good_checkpoint(path)
    path.chmod(0o640)
    dm.save({'only': dm.ones(1)}, path)
    assert list(dm.load(path)) == ['only'] and (path.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize('value', [np.array([1, 'a'], dtype=object), dm.tensor(np.array([None, 2.0], dtype=object))],
                         ids=['object ndarray', 'tensor of objects'])
def test_object_arrays_are_refused_naming_the_key(tmp_path, value):
    path = tmp_path / 'ckpt.params'
    before = good_checkpoint(path)
    with pytest.raises(TypeError, match=r"entry 'layer\.extra' holds Python objects.*pickling"):
        dm.save({'w': dm.ones(3), 'layer.extra': value}, path)
    assert path.read_bytes() == before


# ---- damaged d2lmod files versus files that are not d2lmod's -------------------------------------------------
def assert_damaged(path: Path):
    with pytest.raises(ValueError) as info:
        dm.load(path)
    message = str(info.value)
    assert 'damaged or incomplete d2lmod file' in message and str(path) in message, message
    assert 'not a d2lmod file' not in message and 'pickle' not in message, message
    return message


def assert_not_ours(path: Path):
    with pytest.raises(ValueError) as info:
        dm.load(path)
    message = str(info.value)
    assert 'not a d2lmod file' in message and str(path) in message and 'damaged' not in message, message


def state_file(path: Path) -> bytes:
    dm.manual_seed(0)
    dm.save({'0.weight': dm.randn(64, 32), '0.bias': dm.randn(64), '2.weight': dm.randn(10, 64)}, path)
    return path.read_bytes()


@pytest.mark.parametrize('keep', [0.1, 0.5, 0.9, 0.99])
def test_a_truncated_file_is_damaged_not_foreign(tmp_path, keep):
    path = tmp_path / 'cut.params'
    data = state_file(path)
    path.write_bytes(data[:int(len(data) * keep)])
    assert_damaged(path)


def test_a_flipped_byte_is_a_bad_crc(tmp_path):
    path = tmp_path / 'flip.params'
    data = bytearray(state_file(path))
    data[len(data) // 2] ^= 0xFF  # in the middle of 0.weight's numbers
    path.write_bytes(bytes(data))
    assert 'CRC' in assert_damaged(path)


def rewrite(path: Path, members: dict) -> None:
    """A zip with exactly these members (name -> bytes), as np.savez lays them out."""
    with zipfile.ZipFile(path, 'w') as z:
        for name, data in members.items():
            z.writestr(name, data)


def npy_bytes(array) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def members_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_a_missing_array_is_damaged(tmp_path):
    path = tmp_path / 'missing.params'
    state_file(path)
    members = members_of(path)
    del members['arr_1.npy']
    rewrite(path, members)
    assert 'arr_1' in assert_damaged(path)


@pytest.mark.parametrize('layout', [
    'not json', '[]', 'null', '{"kind": "dict"}', '{"kind": "dict", "keys": 5}', '{"kind": "dict", "keys": [1, 2, 3]}',
    '{"kind": "pickle", "keys": ["a", "b", "c"]}', '{"kind": "tensor", "keys": ["a", "b", "c"]}',
    '{"kind": "dict", "keys": ["a", "a", "b"]}', '{"kind": "dict", "keys": ["a", "b"]}'])
def test_any_malformed_table_of_contents_is_one_value_error_naming_the_file(tmp_path, layout):
    path = tmp_path / 'toc.params'
    state_file(path)
    members = members_of(path)
    members['__d2lmod_layout__.npy'] = npy_bytes(np.array(layout))
    rewrite(path, members)
    assert_damaged(path)


@pytest.mark.parametrize('toc', [np.arange(3), np.array(['a', 'b'])], ids=['numbers', 'a list of strings'])
def test_a_table_of_contents_of_the_wrong_type_is_damaged(tmp_path, toc):
    path = tmp_path / 'toc.params'
    state_file(path)
    members = members_of(path)
    members['__d2lmod_layout__.npy'] = npy_bytes(toc)
    rewrite(path, members)
    assert_damaged(path)


def header_declaring(shape, dtype='<f8') -> bytes:
    header = repr({'descr': dtype, 'fortran_order': False, 'shape': shape}).encode()
    header += b' ' * (63 - (len(header) + 10) % 64) + b'\n'
    return b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header


@pytest.mark.parametrize('shape', [(10 ** 12,), (10 ** 6, 10 ** 6), (2 ** 62, 2 ** 62), (10 ** 8,), (5,)])
def test_a_declared_shape_larger_than_the_file_is_refused_before_allocating(tmp_path, shape):
    import tracemalloc
    path = tmp_path / 'huge.params'
    state_file(path)
    members = members_of(path)
    members['arr_1.npy'] = header_declaring(shape) + b'\x00' * 16  # 16 bytes of data, whatever the shape says
    rewrite(path, members)
    tracemalloc.start()
    try:
        message = assert_damaged(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 'arr_1' in message, message
    assert peak < 10 * 2 ** 20, f'{peak:,} bytes allocated for a {path.stat().st_size:,}-byte file'


@pytest.mark.parametrize('content', [bytes(range(256)) * 40, b'PK\x05\x06' + b'\x00' * 18],
                         ids=['random bytes', 'an empty zip'])
def test_random_bytes_and_other_zips_are_not_d2lmod_files(tmp_path, content):
    path = tmp_path / 'other.bin'
    path.write_bytes(content)
    assert_not_ours(path)


def test_a_plain_npz_is_not_a_d2lmod_file_even_when_cut_short(tmp_path):
    path = tmp_path / 'plain.npz'
    with open(path, 'wb') as f:
        np.savez(f, arr_0=np.ones(100), arr_1=np.zeros(50))
    assert_not_ours(path)
    path.write_bytes(path.read_bytes()[:400])
    assert_not_ours(path)


def test_files_of_the_old_layout_still_load(tmp_path):
    """Files written before the table of contents moved to the front (it came last) load as before."""
    path = tmp_path / 'old.params'
    with open(path, 'wb') as f:
        np.savez(f, arr_0=np.ones(2, np.float32), arr_1=np.arange(3),
                 __d2lmod_layout__=np.array('{"kind": "dict", "keys": ["w", "n"]}'))
    back = dm.load(path)
    assert list(back) == ['w', 'n'] and back['n'].tolist() == [0, 1, 2] and back['w'].dtype == np.float32


def test_fortran_ordered_and_big_endian_arrays_come_back_right(tmp_path):
    path = tmp_path / 'order.params'
    a = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    dm.save({'f': a, 'be': np.arange(4, dtype='>i4')}, path)
    back = dm.load(path)
    np.testing.assert_array_equal(back['f']._data, a)
    assert back['be'].tolist() == [0, 1, 2, 3] and back['be'].dtype == np.int32


@pytest.mark.parametrize('protocol', [0, 1, 2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_of_any_protocol_is_named_as_such_and_never_run(tmp_path, protocol):
    path, marker = tmp_path / 'model.pkl', tmp_path / 'marker'
    path.write_bytes(pickle.dumps({'weight': Payload(marker)}, protocol=protocol))
    with pytest.raises(ValueError, match='holds pickled Python objects'):
        dm.load(path)
    assert not marker.exists()


def test_a_text_file_ending_in_a_full_stop_is_not_called_a_pickle(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_bytes(b'Weights are in the other file.')
    assert_not_ours(path)


def test_a_compressed_member_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / 'bomb.params'
    state_file(path)
    members = members_of(path)
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as z:  # zeros shrink ~1000 times
        for name, data in members.items():
            z.writestr(name, header_declaring((10 ** 7,)) + bytes(8 * 10 ** 7) if name == 'arr_0.npy' else data)
    assert path.stat().st_size < 10 ** 6
    assert 'compressed' in assert_damaged(path)


def test_empty_containers_round_trip(tmp_path):
    for empty in ({}, []):
        dm.save(empty, tmp_path / 'empty')
        assert dm.load(tmp_path / 'empty') == empty
