"""tfreg.vis.deepreg_modes: DeepReg's modes 0-3 and the NumPy warp behind the warp GIF."""

import os

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from tests.vis._png import gif_info, png_size
from tests.vis._synthetic import SHAPE, folding_ddf, warp
from tfreg.vis import deepreg_modes as dm
from tfreg.vis import io


def test_warp_slice_at_t1_is_map_coordinates_at_grid_plus_ddf(case):
    moving = io.read_volume(case["moving"]).array
    ddf = folding_ddf()
    np.testing.assert_allclose(dm.warp_slice(moving, ddf, 5, 1.0), warp(moving, ddf)[:, :, 5], atol=1e-5)
    # t = 0 on the same grid gives the image itself; other axes slice the same field
    np.testing.assert_allclose(dm.warp_slice(moving, ddf, 5, 0.0), moving[:, :, 5], atol=1e-6)
    np.testing.assert_allclose(dm.warp_slice(moving, ddf, 3, 1.0, axis=0), warp(moving, ddf)[3], atol=1e-5)


def test_warp_slice_moving_on_another_grid_and_2d():
    rng = np.random.default_rng(1)
    moving = rng.random((9, 8, 7))
    ddf = rng.normal(size=(5, 6, 4, 3)) + 1.0  # fixed grid 5 x 6 x 4, displacements in moving voxels
    grid = np.meshgrid(*[np.arange(n, dtype=float) for n in (5, 6, 4)], indexing="ij")
    coords = np.stack([grid[c][:, :, 2] + 0.5 * ddf[:, :, 2, c] for c in range(3)])
    expected = map_coordinates(moving, coords, order=1, mode="constant", cval=0.0)
    np.testing.assert_allclose(dm.warp_slice(moving, ddf, 2, 0.5), expected)
    image2 = rng.random((6, 5))
    ddf2 = rng.normal(size=(6, 5, 2))
    g2 = np.meshgrid(np.arange(6.0), np.arange(5.0), indexing="ij")
    expected2 = map_coordinates(image2, np.stack([g2[c] + ddf2[..., c] for c in range(2)]), order=1, mode="constant")
    np.testing.assert_allclose(dm.warp_slice(image2, ddf2), expected2)
    with pytest.raises(ValueError, match=r"shape \(\*spatial, 3\) for a 3-D image"):
        dm.warp_slice(moving, ddf2)


def test_warp_frames_endpoints(case):
    moving = io.read_volume(case["moving"]).array
    ddf = folding_ddf()
    frames = dm.warp_frames(moving, ddf, 8, num_interval=4)
    assert frames.shape == (4, SHAPE[0], SHAPE[1])
    np.testing.assert_allclose(frames[-1], warp(moving, ddf)[:, :, 8], atol=1e-5)
    with pytest.raises(ValueError, match="--num-interval"):
        dm.warp_frames(moving, ddf, 8, num_interval=1)


def test_mode0_gif_per_image(case, tmp_path):
    written = dm.gif_slices([case["fixed"], case["moving"]], str(tmp_path), interval=40, dpi=50)
    assert [os.path.basename(p) for p in written] == ["fixed.gif", "moving.gif"]
    # 24 x 20 voxels of 1.0 x 1.2 mm: a 24 x 24 mm square, 3.2 in at 50 dpi = 160 px
    assert gif_info(written[0]) == (160, 160, SHAPE[2], 40)


def test_mode1_warp_gif(case, tmp_path):
    written = dm.gif_warp([case["moving"]], case["ddf"], str(tmp_path), slice_inds=[3, 8], num_interval=5, dpi=40)
    assert [os.path.basename(p) for p in written] == ["moving_slice_3.gif", "moving_slice_8.gif"]
    assert gif_info(written[1])[2] == 5
    random = dm.gif_warp(
        [case["moving"]], case["ddf"], str(tmp_path / "r"), num_interval=2, dpi=30, rng=np.random.default_rng(0)
    )
    assert len(random) == 1 and os.path.basename(random[0]).startswith("moving_slice_")


def test_mode1_errors(case, tmp_path):
    with pytest.raises(ValueError, match=r"--ddf-path: .*\(\*spatial, ndim\)"):
        dm.gif_warp([case["moving"]], case["fixed"], str(tmp_path))
    with pytest.raises(ValueError, match=r"--slice-inds: slice index 16 is out of range"):
        dm.gif_warp([case["moving"]], case["ddf"], str(tmp_path), slice_inds=[16])


def test_mode2_tile_png(case, tmp_path):
    paths = [case["moving"], case["warped"], case["fixed"]]
    out = dm.tile_slices(paths, str(tmp_path), slice_inds=[0, 1, 2], col_titles="a, b ,c", dpi=50)
    assert out == os.path.join(str(tmp_path), "visualisation.png")
    width, height = png_size(out)
    # three 2 in columns (+0.4 in for the row labels) and three 2 in rows (+0.35 in for the titles)
    assert (width, height) == (round(50 * 6.4), round(50 * 6.35))
    with pytest.raises(ValueError, match=r"--col-titles: got 2 title\(s\)"):
        dm.tile_slices(paths, str(tmp_path), slice_inds=[0], col_titles="a,b")


def test_mode3_tiled_gif(case, tmp_path):
    out = dm.gif_tile_slices(
        [case["moving"], case["warped"], case["fixed"]], str(tmp_path), size="2,2", fname="t.gif", interval=30, dpi=30
    )
    assert os.path.basename(out) == "t.gif"
    assert gif_info(out)[2:] == (SHAPE[2], 30)
    with pytest.raises(ValueError, match=r"--size: 1x2 holds 2 image\(s\) but 3 were given"):
        dm.gif_tile_slices([case["fixed"]] * 3, str(tmp_path), size="1,2")
    with pytest.raises(ValueError, match="--size: expected"):
        dm.parse_size("2")


def test_2d_images_in_modes_1_and_2(tmp_path):
    from tfreg.data.geometry import ImageGeometry
    from tfreg.data.image_io import save_image

    geometry = ImageGeometry((1.0, 2.0), (0.0, 0.0), np.eye(2))
    rng = np.random.default_rng(2)
    image, ddf = rng.random((12, 10)).astype(np.float32), rng.normal(size=(12, 10, 2)).astype(np.float32)
    save_image(image, str(tmp_path / "img.nii.gz"), geometry)
    save_image(ddf, str(tmp_path / "ddf.nii.gz"), geometry)
    written = dm.gif_warp(
        [str(tmp_path / "img.nii.gz")], str(tmp_path / "ddf.nii.gz"), str(tmp_path), num_interval=3, dpi=20
    )
    assert [os.path.basename(p) for p in written] == ["img_warp.gif"]
    assert gif_info(written[0])[2] == 3
    png_size(dm.tile_slices([str(tmp_path / "img.nii.gz")] * 2, str(tmp_path), dpi=20))
    with pytest.raises(ValueError, match=r"must be a scalar 3-D image"):
        dm.gif_slices([str(tmp_path / "img.nii.gz")], str(tmp_path))
