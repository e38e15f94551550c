"""tfreg.vis.distributions: violin and box plots across methods."""

import numpy as np
import pytest

from tests.vis._png import png_size
from tfreg.vis.distributions import jitter, plot_distribution


@pytest.mark.parametrize("kind", ["violin", "box"])
def test_distribution_png(tmp_path, kind):
    values = {"A": np.array([0.8, 0.85, 0.9, 0.7]), "B": np.array([0.6, 0.65]), "C": np.array([0.9])}
    out = plot_distribution(values, str(tmp_path / f"{kind}.png"), kind=kind, dpi=50, figsize=(4, 3))
    assert png_size(out) == (200, 150)


def test_distribution_errors(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        plot_distribution({"A": np.ones(3)}, str(tmp_path / "x.png"), kind="bar")
    with pytest.raises(ValueError, match="method 'A' needs at least one value"):
        plot_distribution({"A": np.array([])}, str(tmp_path / "x.png"))


def test_jitter_reproducible_and_bounded():
    np.testing.assert_array_equal(jitter(10, seed=3), jitter(10, seed=3))
    assert np.abs(jitter(100, width=0.1)).max() <= 0.1
