"""tfreg.metrics.overlap against hand-counted cubes and SimpleITK's LabelOverlapMeasuresImageFilter."""

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.metrics import (
    EmptyMaskWarning,
    dice,
    jaccard,
    precision,
    recall,
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


def test_recall_and_precision_hand_counted():
    a = np.zeros((8, 8))
    b = np.zeros((8, 8))
    a[0:4, 0:4] = 1.0  # 16 pixels: the evaluated mask
    b[2:4, 0:6] = 0.9  # 12 pixels: the reference, 8 of them in a
    assert recall(a, b) == pytest.approx(8 / 12)
    assert precision(a, b) == pytest.approx(8 / 16)
    # swapping the roles swaps the two
    assert recall(b, a) == pytest.approx(8 / 16) and precision(b, a) == pytest.approx(8 / 12)
    # a mask inside the reference: precision 1, recall its share; the 3-D cubes: 125 of 1000 each way
    inner = np.zeros((8, 8), bool)
    inner[2:4, 1:3] = True
    assert precision(inner, b) == 1.0 and recall(inner, b) == pytest.approx(4 / 12)
    ca, cb = _cubes()
    assert recall(ca, cb) == pytest.approx(0.125) and precision(ca, cb) == pytest.approx(0.125)
    assert recall(ca, ca) == 1.0 and precision(ca, ca) == 1.0


def test_recall_and_precision_from_confusion_counts_and_dice_relation():
    """Against the confusion-matrix counts of a random pair, and Dice = harmonic mean of recall and precision."""
    rng = np.random.default_rng(3)
    a = rng.random((9, 10, 11)) < 0.4
    b = rng.random((9, 10, 11)) < 0.5
    tp = int(np.sum(a & b))
    fp = int(np.sum(a & ~b))
    fn = int(np.sum(~a & b))
    assert recall(a, b) == pytest.approx(tp / (tp + fn), abs=1e-15)
    assert precision(a, b) == pytest.approx(tp / (tp + fp), abs=1e-15)
    r, p = recall(a, b), precision(a, b)
    assert dice(a, b) == pytest.approx(2 * r * p / (r + p))


@pytest.mark.parametrize("seed", [0, 1])
def test_recall_and_precision_against_simpleitk(seed):
    """ITK's false negative error |T - S| / |T| is 1 - recall(S, T), its false discovery rate 1 - precision."""
    rng = np.random.default_rng(seed)
    a = np.zeros((12, 14, 16), dtype=np.uint8)
    b = np.zeros_like(a)
    a[2:9, 3:11, 1:12] = 1
    b[4:11, 2:9, 5:15] = 1
    a[rng.random(a.shape) < 0.1] = 1
    b[rng.random(b.shape) < 0.1] = 0
    filt = sitk.LabelOverlapMeasuresImageFilter()
    filt.Execute(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b))  # source a, target (reference) b
    assert recall(a, b) == pytest.approx(1 - filt.GetFalseNegativeError(), abs=1e-12)
    assert precision(a, b) == pytest.approx(1 - filt.GetFalseDiscoveryRate(), abs=1e-12)


def test_recall_and_precision_empty_masks():
    a, _ = _cubes()
    empty = np.zeros_like(a)
    assert recall(empty, empty) == 1.0 and precision(empty, empty) == 1.0  # agree, as Dice's 1
    assert recall(empty, a) == 0.0  # nothing of the reference found
    assert precision(a, empty) == 0.0  # everything found is outside the (empty) reference
    with pytest.warns(EmptyMaskWarning, match=r"recall: b \(the reference\) has no foreground"):
        assert np.isnan(recall(a, empty))
    with pytest.warns(EmptyMaskWarning, match=r"precision: a \(the evaluated mask\) has no foreground"):
        assert np.isnan(precision(empty, a))


@pytest.mark.parametrize(
    "fn",
    [dice, jaccard, volumetric_overlap_error, relative_volume_difference, volume_similarity, recall, precision],
)
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 6\)"):
        fn(np.ones((4, 5)), np.ones((4, 6)))


@pytest.mark.parametrize("fn", [dice, jaccard, recall, precision])
def test_non_finite_rejected(fn):
    a = np.ones((4, 4))
    b = np.ones((4, 4))
    b[1, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fn(a, b)
    b[1, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        fn(b, a)
