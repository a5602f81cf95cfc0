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
