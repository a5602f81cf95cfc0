"""The digits ship inside the package: the same numbers as scikit-learn's, loaded without pickle."""
import numpy as np
import pytest

from d2lmod.datasets import load_digits


def test_digits_shapes_and_ranges():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.max() == 16 and images.min() == 0
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_are_scikit_learns():
    sklearn_datasets = pytest.importorskip('sklearn.datasets')
    theirs = sklearn_datasets.load_digits()
    images, labels = load_digits()
    np.testing.assert_array_equal(images, theirs.images)
    np.testing.assert_array_equal(labels, theirs.target)
