"""tfreg.vis.slices: slice choice, index checks, physical aspect and display orientation."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from tfreg.vis import slices as sl


def test_evenly_spaced_reference():
    assert sl.evenly_spaced(60, 5) == [10, 20, 30, 40, 50]
    # over [start, stop): 4 slices of 12 starting at 20 are 20 + floor(m * 12 / 5), m = 1..4
    assert sl.evenly_spaced(40, 4, 20, 32) == [20 + (m * 12) // 5 for m in range(1, 5)]
    assert sl.evenly_spaced(3, 10) == [0, 1, 2]  # no duplicates when the range is short


def test_foreground_range_and_largest_area():
    volume = np.zeros((5, 5, 10))
    volume[1:3, 1:3, 4:7] = 1
    volume[2, 2, 5] = 2
    assert sl.foreground_range(volume, 2) == (4, 7)
    assert sl.foreground_range(np.zeros((3, 3, 3)), 1) == (0, 3)
    mask = np.zeros((5, 6, 7), bool)
    mask[:, :, 2] = True
    mask[:2, :2, 5] = True
    assert sl.largest_area_index(mask, 2) == 2
    assert sl.largest_area_index(np.zeros((5, 6, 7), bool), 1) == 3


def test_check_index_and_axis():
    assert sl.check_index(-1, 16) == 15
    with pytest.raises(ValueError, match=r"--slice: slice index 16 is out of range .* \(0\.\.15\)"):
        sl.check_index(16, 16)
    assert sl.check_axis(-1, 3) == 2
    with pytest.raises(ValueError, match="--axis"):
        sl.check_axis(3, 3)
    with pytest.raises(ValueError, match="--slices: expected comma-separated integers"):
        sl.parse_int_list("1,x", "--slices")
    assert sl.parse_int_list(" 1, 2 ,3", "--s") == [1, 2, 3]


def test_take_slice_matches_indexing():
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    np.testing.assert_array_equal(sl.take_slice(volume, 0, 2), volume[2])
    np.testing.assert_array_equal(sl.take_slice(volume, 1, 3), volume[:, 3])
    ddf = np.zeros((4, 5, 6, 3))
    assert sl.take_slice(ddf, 2, 1, spatial_ndim=3).shape == (4, 5, 3)
    assert sl.take_slice(np.zeros((4, 5, 2)), 2, 9, spatial_ndim=2).shape == (4, 5, 2)


def test_physical_aspect_and_panel_size():
    spacing = (1.0, 1.2, 2.0)
    assert sl.pixel_aspect(spacing, 2) == pytest.approx(1.2)
    assert sl.pixel_aspect(spacing, 0) == pytest.approx(2.0 / 1.2)
    # 24 x 20 voxels of 1.0 x 1.2 mm: 24 x 24 mm, a square panel
    assert sl.panel_size((24, 20, 16), spacing, 2, width=2.0) == pytest.approx((2.0, 2.0))
    # axis 0: 20 x 16 voxels of 1.2 x 2.0 mm = 24 x 32 mm, portrait
    assert sl.panel_size((24, 20, 16), spacing, 0, width=2.0) == pytest.approx((1.5, 2.0))


def test_show_slice_orientation():
    # axis a to the right, b upwards: the displayed array is the transpose, drawn from the bottom
    plane = np.arange(12.0).reshape(3, 4)
    ax = Figure().add_subplot()
    image = sl.show_slice(ax, plane, aspect=1.5)
    np.testing.assert_array_equal(image.get_array(), plane.T)
    assert image.origin == "lower"
    assert ax.get_aspect() == pytest.approx(1.5)


def test_random_indices_in_range():
    rng = np.random.default_rng(0)
    picks = sl.random_indices(7, 200, rng)
    assert min(picks) >= 0 and max(picks) <= 6 and len(set(picks)) == 7


def test_intensity_limits_and_normalise():
    volume = np.arange(1000.0)
    vmin, vmax = sl.intensity_limits(volume)
    assert vmin == pytest.approx(np.percentile(volume, 0.5)) and vmax == pytest.approx(np.percentile(volume, 99.5))
    assert sl.intensity_limits(np.full(5, 3.0)) == (2.5, 3.5)
    norm = sl.normalise(volume)
    assert norm.min() == 0 and norm.max() == 1
