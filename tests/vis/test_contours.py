"""tfreg.vis.contours: label contours over an image."""

import numpy as np
import pytest

from tests.vis._png import png_size
from tfreg.vis import io
from tfreg.vis.contours import DEFAULT_COLOURS, plot_contours, select_channels


def test_contours_png(case, tmp_path):
    image = io.read_volume(case["fixed"]).array
    layers = [(n, io.read_labels(case[f"{n}_label"])[0].array) for n in ("fixed", "moving", "warped")]
    out = plot_contours(image, layers, str(tmp_path / "c.png"), spacing=(1.0, 1.2, 2.0), dpi=50, figsize=(4, 4.5))
    assert png_size(out) == (200, 225)
    assert DEFAULT_COLOURS["fixed"] != DEFAULT_COLOURS["moving"] != DEFAULT_COLOURS["warped"]


def test_contours_2d_and_empty_slice(tmp_path):
    image = np.random.default_rng(0).random((12, 10))
    mask = np.zeros((12, 10), bool)  # an empty label draws nothing but still gets a legend entry
    out = plot_contours(image, [("fixed", mask)], str(tmp_path / "c.png"), dpi=40)
    assert png_size(out)[0] > 0


def test_contours_bad_input(case, tmp_path):
    image = io.read_volume(case["fixed"]).array
    with pytest.raises(ValueError, match=r"moving label has spatial shape \(24, 20, 15\) but --image has"):
        plot_contours(image, [("moving", np.zeros((24, 20, 15, 1), bool))], str(tmp_path / "c.png"))
    with pytest.raises(ValueError, match="at least one label"):
        plot_contours(image, [], str(tmp_path / "c.png"))
    expected = r"--label-index: the fixed label has 2 label channel\(s\) \(0\.\.1\), got \[3\]"
    with pytest.raises(ValueError, match=expected):
        select_channels(np.zeros((2, 2, 2, 2), bool), [3], "the fixed label")
