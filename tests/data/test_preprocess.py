"""tfreg/data/preprocess.py: normalisation, shape and label checks, resizing."""

import numpy as np
import pytest

from tfreg.data import preprocess
from tfreg.data.errors import DataError


def test_normalize_min_max_without_epsilon():
    x = np.array([[2.0, 4.0], [6.0, 10.0]])
    np.testing.assert_allclose(preprocess.normalize_image(x), (x - 2.0) / 8.0)
    assert preprocess.normalize_image(x).dtype == np.float32


def test_constant_image_is_zero_not_nan():
    out = preprocess.normalize_image(np.full((3, 4, 5), 7.0))
    assert np.all(out == 0) and not np.any(np.isnan(out))


def test_non_finite_is_an_error_naming_the_file():
    x = np.ones((2, 2, 2))
    x[0, 1, 1] = np.nan
    with pytest.raises(DataError, match="a/b.nii.gz.*1 non-finite"):
        preprocess.load_image(x, 3, "a/b.nii.gz")
    with pytest.raises(DataError, match="lab.h5:k"):
        preprocess.load_label_channels(np.full((2, 2, 2), np.inf), 3, "lab.h5:k", [0])


def test_label_values_checked_not_rescaled():
    label = np.zeros((2, 3, 4, 2), np.float32)
    label[0, 0, 0, 1] = 0.5
    out = preprocess.load_label_channels(label, 3, "l.nii.gz", [1, 0])
    assert out.shape == (2, 2, 3, 4)
    assert out[0, 0, 0, 0] == 0.5  # label 1 first, value kept
    with pytest.raises(DataError, match=r"l2.nii.gz has values in \[0.0, 3.0\], outside \[0, 1\]"):
        preprocess.load_label_channels(label * 6, 3, "l2.nii.gz", [0])
    with pytest.raises(DataError, match="outside"):
        preprocess.check_label_values(label - 1, "x")


def test_shapes():
    assert preprocess.image_spatial_shape((4, 5, 6, 1), 3, "f") == (4, 5, 6)
    with pytest.raises(DataError, match=r"image f has shape \(4, 5, 6, 2\): expected a 3-D image"):
        preprocess.image_spatial_shape((4, 5, 6, 2), 3, "f")
    with pytest.raises(DataError, match="expected a 3-D image"):
        preprocess.image_spatial_shape((4, 5), 3, "f")
    with pytest.raises(DataError, match="empty"):
        preprocess.image_spatial_shape((4, 0, 5), 3, "f")
    assert preprocess.label_spatial_shape_and_count((4, 5, 6), 3, "l") == ((4, 5, 6), 1)
    assert preprocess.label_spatial_shape_and_count((4, 5, 6, 3), 3, "l") == ((4, 5, 6), 3)
    assert preprocess.label_spatial_shape_and_count((4, 5, 3), 2, "l") == ((4, 5), 3)
    with pytest.raises(DataError, match="label l has shape"):
        preprocess.label_spatial_shape_and_count((4, 5, 6, 3, 1), 3, "l")


def _linear_half_pixel(x, axis, n_out):
    """Independent reference: src = (o + 0.5) * n_in / n_out - 0.5, clamped, linear."""
    n_in = x.shape[axis]
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    shape = [1] * x.ndim
    shape[axis] = n_out
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def test_resize_matches_half_pixel_linear():
    x = np.random.default_rng(0).random((2, 6, 5, 7)).astype(np.float32)
    expected = x.astype(np.float64)
    for axis, n in zip((1, 2, 3), (4, 8, 7)):
        expected = _linear_half_pixel(expected, axis, n)
    out = preprocess.resize(x, (4, 8, 7))
    assert out.shape == (2, 4, 8, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)
    same = preprocess.resize(x, (6, 5, 7))
    np.testing.assert_array_equal(same, x)


def test_colour_images_are_named_as_such():
    for shape in ((8, 9, 3), (8, 9, 1, 4)):
        with pytest.raises(
            DataError, match=r"image p.png has shape .*looks like RGBA? colour channels.*2-D grey image"
        ):
            preprocess.image_spatial_shape(shape, 2, "p.png")
    with pytest.raises(DataError, match="looks like RGB colour channels.*if it is a 3-D volume, configure a 3-D"):
        preprocess.image_spatial_shape((8, 9, 3), 2, "v.nii.gz")
    with pytest.raises(DataError, match=r"v.nii.gz .*looks like RGB colour channels.*3-D grey image.*do this\)$"):
        preprocess.image_spatial_shape((8, 9, 10, 3), 3, "v.nii.gz")
    assert not preprocess.looks_like_colour((8, 9, 2, 3), 2)  # a 3-D stack, not a picture
    with pytest.raises(DataError, match="multi-channel images are not supported"):
        preprocess.image_spatial_shape((8, 9, 2), 2, "two.nii.gz")
