"""tfreg.vis.montage: rows of images, columns of slices, PNG of the requested size."""

import numpy as np
import pytest

from tests.vis._png import png_size
from tfreg.vis import io
from tfreg.vis.montage import map_index, plot_montage


def test_map_index_ends_and_middle():
    assert map_index(0, 41, 60) == 0
    assert map_index(40, 41, 60) == 59
    assert map_index(20, 41, 60) == round(20 * 59 / 40)
    assert map_index(5, 16, 16) == 5


def test_montage_png_size(case, tmp_path):
    volumes = [io.read_volume(case[n]) for n in ("moving", "warped", "fixed")]
    out = plot_montage(
        [v.array for v in volumes],
        str(tmp_path / "sub" / "m.png"),
        [v.spacing for v in volumes],
        ["moving", "warped", "fixed"],
        slices=[4, 8],
        dpi=50,
        figsize=(4, 6),
    )
    assert png_size(out) == (200, 300)


def test_montage_default_slices_and_other_grid(tmp_path):
    fixed = np.zeros((10, 10, 20), np.float32)
    fixed[..., 5:15] = 1
    moving = np.zeros((8, 8, 30), np.float32)  # another grid: indices are mapped by relative depth
    out = plot_montage([moving, fixed], str(tmp_path / "m.png"), names=["moving", "fixed"], num_slices=3, dpi=40)
    assert png_size(out)[0] > 0


def test_montage_bad_input(tmp_path):
    with pytest.raises(ValueError, match="must all be 2-D or all 3-D"):
        plot_montage([np.zeros((4, 4)), np.zeros((4, 4, 4))], str(tmp_path / "m.png"))
    with pytest.raises(ValueError, match=r"--slices: slice index 9 is out of range"):
        plot_montage([np.zeros((4, 4, 4))], str(tmp_path / "m.png"), slices=[9])
    with pytest.raises(ValueError, match="--dpi"):
        plot_montage([np.zeros((4, 4, 4))], str(tmp_path / "m.png"), dpi=0)
