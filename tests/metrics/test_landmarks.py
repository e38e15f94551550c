"""tfreg.metrics.landmarks: TRE, BraTSReg landmark errors and robustness, centroid distance, by hand."""

import numpy as np
import pytest

from tfreg.metrics import EmptyMaskWarning, centroid_distance, landmark_errors, robustness, tre


def test_tre_known_points():
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [10.0, 10.0, 10.0]])
    b = np.array([[3.0, 4.0, 0.0], [1.0, 2.0, 3.0], [10.0, 10.0, 12.0]])
    np.testing.assert_allclose(tre(a, b), [5.0, 0.0, 2.0])


def test_tre_voxel_points_with_spacing():
    a = np.array([[0, 0, 0], [2, 2, 2]])
    b = np.array([[1, 1, 0], [2, 2, 0]])
    # spacing (3, 4, 0.5): first pair (3, 4, 0) mm -> 5, second (0, 0, 1) mm -> 1
    np.testing.assert_allclose(tre(a, b, spacing=(3.0, 4.0, 0.5)), [5.0, 1.0])
    np.testing.assert_allclose(tre(a, b, spacing=2.0), 2.0 * tre(a, b))


def test_tre_2d():
    np.testing.assert_allclose(tre([[0.0, 0.0]], [[6.0, 8.0]]), [10.0])


def test_tre_bad_inputs():
    with pytest.raises(ValueError, match="3 points.*2"):
        tre(np.zeros((3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coordinates"):
        tre(np.zeros((3, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(N, ndim\)"):
        tre(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        tre(np.array([[0.0, np.nan]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="spacing"):
        tre(np.zeros((2, 3)), np.zeros((2, 3)), spacing=(1.0, 1.0))


def _pair(distances):
    """Fixed points on a line and registered points displaced by the given distances along a 3-4-5 direction."""
    d = np.asarray(distances, dtype=float)
    fixed = np.stack([np.arange(d.size) * 10.0, np.zeros(d.size), np.zeros(d.size)], axis=1)
    moved = fixed + d[:, None] * np.array([0.0, 0.6, 0.8])
    return fixed, moved


def test_landmark_errors_brats_aggregates():
    pairs = [_pair([1, 2, 3]), _pair([3, 4, 5, 10]), _pair([0, 0, 9, 9, 30])]
    out = landmark_errors([p[1] for p in pairs], [p[0] for p in pairs])
    np.testing.assert_allclose(out["median_per_pair"], [2.0, 4.5, 9.0])
    np.testing.assert_allclose(out["mean_per_pair"], [2.0, 5.5, 9.6])
    assert out["mean_of_median"] == pytest.approx((2.0 + 4.5 + 9.0) / 3)
    assert out["median_of_median"] == pytest.approx(4.5)
    assert out["mean_of_mean"] == pytest.approx((2.0 + 5.5 + 9.6) / 3)
    assert out["median_of_mean"] == pytest.approx(5.5)
    np.testing.assert_allclose(out["errors"][1], [3, 4, 5, 10])


def test_landmark_errors_single_pair_stacked_pairs_and_spacing():
    fixed, moved = _pair([1, 2, 3, 4])
    single = landmark_errors(moved, fixed)
    assert single["median_of_median"] == pytest.approx(2.5)
    stacked = landmark_errors(np.stack([moved, moved]), np.stack([fixed, fixed]))
    np.testing.assert_allclose(stacked["median_per_pair"], [2.5, 2.5])
    # voxel coordinates with a different spacing per pair: the displacement is along j and k only
    per_pair = landmark_errors([moved, moved], [fixed, fixed], spacing=[(1, 1, 1), (7, 2, 2)])
    np.testing.assert_allclose(per_pair["median_per_pair"], [2.5, 5.0])


def test_landmark_errors_bad_inputs():
    fixed, moved = _pair([1, 2, 3])
    with pytest.raises(ValueError, match="2 pairs.*1"):
        landmark_errors([moved, moved], [fixed])
    with pytest.raises(ValueError, match="pair 1.*3 points.*2"):
        landmark_errors([moved, moved], [fixed, fixed[:2]])
    with pytest.raises(ValueError, match="pair 0 has no landmarks"):
        landmark_errors([np.zeros((0, 3))], [np.zeros((0, 3))])
    with pytest.raises(ValueError, match="3 spacings given for 2 pairs"):
        landmark_errors([moved, moved], [fixed, fixed], spacing=[(1, 1, 1)] * 3)


def test_robustness_hand_made_lists():
    initial = [np.array([5.0, 5.0, 5.0, 5.0]), np.array([3.0, 3.0]), np.array([1.0, 2.0, 3.0])]
    final = [np.array([1.0, 6.0, 5.0, 2.0]), np.array([1.0, 1.0]), np.array([0.5, 3.0, 4.0])]
    # pair 0: 1 and 2 improved, 6 worse, 5 unchanged (not a success) -> 2/4; pair 1: 2/2; pair 2: 1/3
    np.testing.assert_allclose(robustness(initial, final, reduce="none"), [0.5, 1.0, 1 / 3])
    assert robustness(initial, final) == pytest.approx((0.5 + 1.0 + 1 / 3) / 3)
    assert robustness(initial, final, reduce="median") == pytest.approx(0.5)


def test_robustness_single_pair_and_stacked():
    assert robustness([4.0, 4.0, 4.0], [1.0, 5.0, 4.0]) == pytest.approx(1 / 3)
    assert robustness(np.array([[2.0, 2.0], [2.0, 2.0]]), np.array([[1.0, 1.0], [3.0, 1.0]])) == pytest.approx(0.75)


def test_robustness_bad_inputs():
    with pytest.raises(ValueError, match="4 landmarks.*3"):
        robustness([np.ones(4)], [np.ones(3)])
    with pytest.raises(ValueError, match="2 pairs.*1"):
        robustness([np.ones(4), np.ones(4)], [np.ones(4)])
    with pytest.raises(ValueError, match="non-finite"):
        robustness([np.array([1.0, np.nan])], [np.ones(2)])
    with pytest.raises(ValueError, match="reduce"):
        robustness([1.0], [0.5], reduce="max")


def test_centroid_distance():
    a = np.zeros((20, 20, 20), dtype=bool)
    b = np.zeros_like(a)
    a[2:6, 2:6, 2:6] = True  # centroid (3.5, 3.5, 3.5)
    b[5:9, 6:10, 2:6] = True  # centroid (6.5, 7.5, 3.5): offset (3, 4, 0) voxels
    assert centroid_distance(a, b) == pytest.approx(5.0)
    assert centroid_distance(a, b, spacing=(4.0, 3.0, 9.0)) == pytest.approx(np.hypot(12.0, 12.0))
    with pytest.warns(EmptyMaskWarning, match=r"\bb has no foreground"):
        assert np.isnan(centroid_distance(a, np.zeros_like(a)))
    with pytest.raises(ValueError, match=r"\(20, 20, 20\).*\(20, 20\)"):
        centroid_distance(a, np.zeros((20, 20)))
