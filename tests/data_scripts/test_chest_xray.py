"""data_scripts/chest_xray.py: grey conversion, the image and mask resizing, the geometry, the split."""

import numpy as np
import pytest
from scipy import ndimage

from data_scripts import chest_xray
from tests.data_scripts.xray_fixtures import area_reference, luma
from tfreg.data.errors import DataError


def test_grey_uses_bt601_luma_and_ignores_alpha():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    np.testing.assert_allclose(chest_xray.grey(rgb, "x.png"), luma(rgb), rtol=1e-12)
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 17, np.uint8)], axis=2)
    np.testing.assert_allclose(chest_xray.grey(rgba, "x.png"), luma(rgb), rtol=1e-12)
    assert chest_xray.grey(np.array([[[255, 0, 0]]]), "p")[0, 0] == pytest.approx(0.299 * 255)
    np.testing.assert_array_equal(chest_xray.grey(rgb[..., 0], "x.png"), rgb[..., 0])
    with pytest.raises(DataError, match=r"x.png: expected a 2-D grey or RGB\(A\) picture.*\(5, 7, 5\)"):
        chest_xray.grey(np.zeros((5, 7, 5)), "x.png")


def test_binary_mask_halves_the_maximum_and_refuses_empty_masks():
    np.testing.assert_array_equal(chest_xray.binary_mask(np.array([[0, 127, 128, 255]]), "m"), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(chest_xray.binary_mask(np.array([[0, 1]]), "m"), [[0, 1]])
    with pytest.raises(DataError, match="mask m.png is empty"):
        chest_xray.binary_mask(np.zeros((3, 3)), "m.png")


@pytest.mark.parametrize("shape,size", [((16, 16), 8), ((16, 16), 64), ((40, 32), 16), ((6, 9), 4), ((7, 5), 3)])
def test_area_fractions_match_an_exact_subdivision(shape, size):
    mask = np.random.default_rng(1).random(shape) > 0.6
    fractions = chest_xray.area_fractions(mask, size)
    np.testing.assert_allclose(fractions, area_reference(mask, size), atol=1e-12)
    expected = (area_reference(mask, size) >= 0.5 - 1e-9).astype(np.uint8)
    np.testing.assert_array_equal(chest_xray.resize_mask(mask, size), expected)
    np.testing.assert_allclose(chest_xray.overlap_weights(shape[0], size).sum(axis=1), 1.0)


def test_resize_image_upsampling_is_linear_interpolation_at_the_output_centres():
    picture = np.random.default_rng(2).random((6, 8))
    out = chest_xray.resize_image(picture, 0.5, 24)
    # output centre k sits at source index (k + 0.5) n / size - 0.5 (same field of view); edges repeat
    rows = (np.arange(24) + 0.5) * 6 / 24 - 0.5
    cols = (np.arange(24) + 0.5) * 8 / 24 - 0.5
    grid = np.meshgrid(rows, cols, indexing="ij")
    expected = ndimage.map_coordinates(picture, grid, order=1, mode="nearest")
    np.testing.assert_allclose(out, expected, atol=1e-9)


def test_resize_image_downsampling_is_gaussian_smoothed_then_sampled():
    picture = np.random.default_rng(3).random((64, 64))
    out = chest_xray.resize_image(picture, 1.0, 16)  # factor 4: sigma 1.5 source pixels
    smooth = ndimage.gaussian_filter(picture, 1.5, mode="nearest")
    centres = (np.arange(16) + 0.5) * 4 - 0.5
    expected = ndimage.map_coordinates(smooth, np.meshgrid(centres, centres, indexing="ij"), order=1)
    # ITK's recursive Gaussian approximates the sampled Gaussian (and handles the border its own way)
    np.testing.assert_allclose(out[2:-2, 2:-2], expected[2:-2, 2:-2], atol=0.02)
    assert np.abs(out - expected).max() < 0.06
    # a constant stays constant; the same size is the identity
    np.testing.assert_allclose(chest_xray.resize_image(np.full((64, 48), 0.3), 1.0, 16), 0.3, atol=1e-12)
    np.testing.assert_allclose(chest_xray.resize_image(picture, 1.0, 64), picture, atol=1e-12)


def test_resized_geometry_keeps_the_field_of_view():
    geometry = chest_xray.resized_geometry((4892, 4020), 0.0875, 256)  # (rows, cols)
    assert geometry.spacing == pytest.approx((4020 * 0.0875 / 256, 4892 * 0.0875 / 256))
    # first output centre: half an output pixel from the edge, the edge half a source pixel before 0
    assert geometry.origin == pytest.approx(((geometry.spacing[0] - 0.0875) / 2, (geometry.spacing[1] - 0.0875) / 2))
    jsrt = chest_xray.resized_geometry((2048, 2048), 0.175, 256)
    assert jsrt.spacing == pytest.approx((1.4, 1.4))
    np.testing.assert_array_equal(jsrt.direction, np.eye(2))


def test_draw_split_counts_unused_and_errors():
    ids = [f"c{n}" for n in range(10)]
    groups = chest_xray.draw_split(ids, (5, 3), seed=4)
    assert [len(groups[g]) for g in ("train", "test", "unused")] == [5, 3, 2]
    order = np.random.default_rng(4).permutation(10)
    assert groups["train"] == sorted(ids[i] for i in order[:5])
    assert groups["test"] == sorted(ids[i] for i in order[5:8])
    with pytest.raises(ValueError, match=r"split_counts \[8, 3\] ask for 11 cases but the source holds 10"):
        chest_xray.draw_split(ids, (8, 3), seed=0)
    with pytest.raises(ValueError, match="two non-negative numbers"):
        chest_xray.draw_split(ids, (8,), seed=0)
    with pytest.raises(ValueError, match="sizes must be distinct positive"):
        chest_xray.check_sizes([64, 64])
