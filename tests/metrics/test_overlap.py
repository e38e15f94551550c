"""tfreg.metrics.overlap against hand-counted cubes and SimpleITK's LabelOverlapMeasuresImageFilter."""

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.metrics import (
    EmptyMaskWarning,
    dice,
    jaccard,
    relative_volume_difference,
    volume_similarity,
    volumetric_overlap_error,
)


def _cubes():
    """A = [0, 10)^3 (1000 voxels), B = [5, 15)^3 (1000 voxels), overlap [5, 10)^3 (125 voxels)."""
    a = np.zeros((16, 16, 16), dtype=bool)
    b = np.zeros_like(a)
    a[0:10, 0:10, 0:10] = True
    b[5:15, 5:15, 5:15] = True
    return a, b


def test_two_cubes_exact_fractions():
    a, b = _cubes()
    assert dice(a, b) == pytest.approx(2 * 125 / 2000)  # 1/8
    assert jaccard(a, b) == pytest.approx(125 / 1875)  # 1/15
    assert volumetric_overlap_error(a, b) == pytest.approx(1 - 1 / 15)
    assert relative_volume_difference(a, b) == 0.0
    assert volume_similarity(a, b) == 0.0


def test_two_squares_2d_and_numeric_masks():
    a = np.zeros((8, 8))
    b = np.zeros((8, 8))
    a[0:4, 0:4] = 1.0  # 16 pixels
    b[2:4, 0:6] = 0.9  # 12 pixels (0.9 > 0.5 is foreground), 8 of them in a
    assert dice(a, b) == pytest.approx(16 / 28)
    assert jaccard(a, b) == pytest.approx(8 / 20)
    assert relative_volume_difference(a, b) == pytest.approx((16 - 12) / 12)
    assert volume_similarity(a, b) == pytest.approx(2 * 4 / 28)


def test_identical_masks():
    a, _ = _cubes()
    assert dice(a, a) == 1.0
    assert jaccard(a, a) == 1.0
    assert volumetric_overlap_error(a, a) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_against_simpleitk_label_overlap(seed):
    rng = np.random.default_rng(seed)
    a = np.zeros((12, 14, 16), dtype=np.uint8)
    b = np.zeros_like(a)
    a[2:9, 3:11, 1:12] = 1
    b[4:11, 2:9, 5:15] = 1
    a[rng.random(a.shape) < 0.1] = 1
    b[rng.random(b.shape) < 0.1] = 0
    filt = sitk.LabelOverlapMeasuresImageFilter()
    filt.Execute(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b))
    assert dice(a, b) == pytest.approx(filt.GetDiceCoefficient(), abs=1e-12)
    assert jaccard(a, b) == pytest.approx(filt.GetJaccardCoefficient(), abs=1e-12)
    assert volume_similarity(a, b) == pytest.approx(filt.GetVolumeSimilarity(), abs=1e-12)


def test_empty_masks():
    a, _ = _cubes()
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 1.0
    assert dice(a, empty) == 0.0
    assert dice(empty, a) == 0.0
    assert jaccard(empty, empty) == 1.0
    assert jaccard(empty, a) == 0.0
    assert volumetric_overlap_error(a, empty) == 1.0
    assert volume_similarity(empty, empty) == 0.0
    assert relative_volume_difference(empty, a) == -1.0
    with pytest.warns(EmptyMaskWarning, match="b"):
        assert np.isnan(relative_volume_difference(a, empty))


@pytest.mark.parametrize("fn", [dice, jaccard, volumetric_overlap_error, relative_volume_difference, volume_similarity])
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 6\)"):
        fn(np.ones((4, 5)), np.ones((4, 6)))


@pytest.mark.parametrize("fn", [dice, jaccard])
def test_non_finite_rejected(fn):
    a = np.ones((4, 4))
    b = np.ones((4, 4))
    b[1, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fn(a, b)
    b[1, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        fn(b, a)
