"""tfreg.vis.jacobian_map: det J colour map with folds, on a DDF that folds."""

import numpy as np
import pytest

from tests.vis._png import png_size
from tests.vis._synthetic import folding_ddf
from tfreg.metrics import folding_fraction
from tfreg.vis.jacobian_map import folded_index, plot_jacobian


def test_folded_index_picks_the_most_folded_slice():
    det = np.ones((4, 5, 6))
    det[1, 1, 4] = -1
    det[:2, 2, 2] = 0.0  # det J = 0 counts as folding
    assert folded_index(det, 2) == 2
    assert folded_index(np.ones((4, 5, 6)), 1) == 2  # no folds: the middle slice


def test_jacobian_png_of_a_folding_field(tmp_path):
    ddf = folding_ddf()
    assert folding_fraction(ddf) > 0  # the fixture really folds
    out = plot_jacobian(ddf, str(tmp_path / "j.png"), spacing=(1.0, 1.2, 2.0), dpi=50, figsize=(5, 4))
    assert png_size(out) == (250, 200)


def test_jacobian_2d_and_errors(tmp_path):
    ddf2 = folding_ddf()[:, :, 8, :2]
    assert png_size(plot_jacobian(ddf2, str(tmp_path / "j2.png"), dpi=40))[0] > 0
    with pytest.raises(ValueError, match=r"--ddf must have shape \(\*spatial, ndim\)"):
        plot_jacobian(np.zeros((5, 5, 5, 2)), str(tmp_path / "j.png"))
    with pytest.raises(ValueError, match="--vmax"):
        plot_jacobian(folding_ddf(), str(tmp_path / "j.png"), vmax=0.5)
