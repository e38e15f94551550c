"""tfreg.vis.grid: deformed grid lines (checked on constant shifts) and the PNG."""

import numpy as np
import pytest

from tests.vis._png import png_size
from tfreg.vis import io
from tfreg.vis.grid import default_step, grid_positions, plot_grid, warped_grid_lines


def test_grid_positions_centred():
    np.testing.assert_array_equal(grid_positions(10, 3), [0, 3, 6, 9])
    np.testing.assert_array_equal(grid_positions(12, 4), [1, 5, 9])  # margins 1 and 2
    with pytest.raises(ValueError, match="--step"):
        grid_positions(10, 0)
    assert default_step((40, 20)) == 2


def test_constant_shift_moves_every_line_by_the_shift():
    n_a, n_b, shift = 9, 7, (1.5, -0.25)
    ddf = np.empty((n_a, n_b, 2))
    ddf[..., 0], ddf[..., 1] = shift
    lines_a, lines_b = warped_grid_lines(ddf, 2)
    assert len(lines_a) == len(grid_positions(n_a, 2)) and len(lines_b) == len(grid_positions(n_b, 2))
    for a0, line in zip(grid_positions(n_a, 2), lines_a):
        np.testing.assert_allclose(line[:, 0], a0 + shift[0])
        np.testing.assert_allclose(line[:, 1], np.arange(n_b) + shift[1])
    for b0, line in zip(grid_positions(n_b, 2), lines_b):
        np.testing.assert_allclose(line[:, 0], np.arange(n_a) + shift[0])
        np.testing.assert_allclose(line[:, 1], b0 + shift[1])


def test_grid_uses_in_plane_components(tmp_path):
    # slicing along axis 0 shows components 1 and 2; component 0 (out of plane) is ignored
    ddf = np.zeros((4, 6, 5, 3))
    ddf[..., 0], ddf[..., 1], ddf[..., 2] = 9.0, 0.5, -1.0
    plane = ddf[2][..., [1, 2]]
    lines_a, _ = warped_grid_lines(plane, 1)
    np.testing.assert_allclose(lines_a[0][:, 0], 0.5)
    np.testing.assert_allclose(lines_a[0][:, 1], np.arange(5) - 1.0)
    out = plot_grid(ddf, str(tmp_path / "g.png"), axis=0, dpi=40, figsize=(3, 3))
    assert png_size(out) == (120, 120)


def test_plot_grid_over_image(case, tmp_path):
    ddf = io.read_ddf(case["ddf"]).array
    image = io.read_volume(case["fixed"]).array
    out = plot_grid(ddf, str(tmp_path / "g.png"), image=image, spacing=(1.0, 1.2, 2.0), dpi=50, figsize=(4, 4))
    assert png_size(out) == (200, 200)
    with pytest.raises(ValueError, match=r"--image has shape \(24, 20, 15\) but the DDF's spatial shape"):
        plot_grid(ddf, str(tmp_path / "g.png"), image=image[..., :15])
    with pytest.raises(ValueError, match=r"--ddf must have shape"):
        plot_grid(ddf[..., :2], str(tmp_path / "g.png"))
