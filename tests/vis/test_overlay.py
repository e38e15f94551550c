"""tfreg.vis.overlay: colour overlays and checkerboards (tile arithmetic checked against a loop)."""

import numpy as np
import pytest

from tests.vis._png import png_size
from tfreg.vis import io
from tfreg.vis.overlay import checkerboard, checkerboard_mask, overlay_rgb, plot_checkerboard, plot_overlay


def test_checkerboard_tiles_come_from_the_right_image():
    shape, tiles = (23, 17), (4, 3)
    first, second = np.zeros(shape), np.ones(shape)
    mix = checkerboard(first, second, tiles)
    # independent reference: tile t starts at the first pixel at or past t * size / tiles
    edges_a = [int(np.ceil(t * shape[0] / tiles[0])) for t in range(tiles[0] + 1)]
    edges_b = [int(np.ceil(t * shape[1] / tiles[1])) for t in range(tiles[1] + 1)]
    for ta in range(tiles[0]):
        for tb in range(tiles[1]):
            block = mix[edges_a[ta] : edges_a[ta + 1], edges_b[tb] : edges_b[tb + 1]]
            assert block.size > 0
            expected = 0.0 if (ta + tb) % 2 == 0 else 1.0  # even tiles (incl. (0, 0)) show the first image
            assert np.all(block == expected), (ta, tb)


def test_checkerboard_mask_errors():
    assert checkerboard_mask((4, 4), (1, 1)).all()
    with pytest.raises(ValueError, match="--tiles"):
        checkerboard_mask((4, 4), (0, 2))
    with pytest.raises(ValueError, match="do not fit"):
        checkerboard_mask((4, 4), (5, 2))
    with pytest.raises(ValueError, match="slice shapes differ"):
        checkerboard(np.zeros((3, 3)), np.zeros((3, 4)))


def test_overlay_rgb_channels_and_alpha():
    f = np.array([[0.0, 1.0], [1.0, 0.3]])
    o = np.array([[0.0, 1.0], [0.0, 0.3]])
    rgb = overlay_rgb(f, o)
    np.testing.assert_allclose(rgb[0, 1], [1, 1, 1])  # agree: grey/white
    np.testing.assert_allclose(rgb[1, 0], [1, 0, 1])  # fixed only: magenta
    np.testing.assert_allclose(rgb[1, 1], [0.3, 0.3, 0.3])
    blended = overlay_rgb(f, o, style="alpha", alpha=0.5)
    np.testing.assert_allclose(blended[1, 0], [1, 1, 1])  # the other image is 0: fixed grey shows through
    with pytest.raises(ValueError, match="--style"):
        overlay_rgb(f, o, style="x")
    with pytest.raises(ValueError, match="--alpha"):
        overlay_rgb(f, o, style="alpha", alpha=2)


def test_plot_overlay_and_checkerboard_sizes(case, tmp_path):
    fixed, warped, moving = (io.read_volume(case[n]).array for n in ("fixed", "warped", "moving"))
    out = plot_overlay(fixed, warped, str(tmp_path / "o.png"), moving=moving, index=8, dpi=50, figsize=(6, 3))
    assert png_size(out) == (300, 150)
    out = plot_checkerboard(fixed, warped, str(tmp_path / "c.png"), tiles=4, axis=1, dpi=50, figsize=(3, 3))
    assert png_size(out) == (150, 150)
    out = plot_overlay(fixed[:, :, 3], warped[:, :, 3], str(tmp_path / "o2.png"), style="alpha", dpi=40)
    assert png_size(out)[0] > 0


def test_overlay_shape_mismatch(case, tmp_path):
    fixed = io.read_volume(case["fixed"]).array
    with pytest.raises(ValueError, match=r"--warped image has shape \(24, 20, 15\) but --fixed has \(24, 20, 16\)"):
        plot_overlay(fixed, fixed[..., :15], str(tmp_path / "o.png"))
    with pytest.raises(ValueError, match=r"--moving image"):
        plot_checkerboard(fixed, fixed, str(tmp_path / "c.png"), moving=fixed[:4])
