"""Volume-overlap metrics of two binary masks: Dice, Jaccard, recall, precision, volume differences.

All functions take two masks of the same shape (2-D, 3-D or any other rank). Boolean arrays are used as
they are; numeric arrays are binarised at ``>= 0.5`` (probabilities, {0, 1} masks). For integer label
maps use :func:`tfreg.metrics.per_label`, which builds one mask per label value.

The overlap ratios are ratios of voxel counts; the voxel volume cancels, so none of them needs a spacing.
"""

from __future__ import annotations

import numpy as np

from tfreg.metrics._checks import as_mask, check_same_shape, warn_empty


def _counts(a, b, func: str) -> tuple[int, int, int]:
    """(|A|, |B|, |A and B|) voxel counts of two validated masks."""
    ma = as_mask(a, "a", func)
    mb = as_mask(b, "b", func)
    check_same_shape(ma, mb, func)
    return int(ma.sum()), int(mb.sum()), int(np.logical_and(ma, mb).sum())


def dice(a, b) -> float:
    """Dice similarity coefficient ``DSC = 2 |A n B| / (|A| + |B|)``, in [0, 1].

    Args:
        a, b: masks of the same shape, any number of axes.

    Returns:
        The Dice score. Defined on empty input: both masks empty gives 1.0 (they agree perfectly),
        exactly one empty gives 0.0.
    """
    na, nb, nab = _counts(a, b, "dice")
    if na + nb == 0:
        return 1.0
    return 2.0 * nab / (na + nb)


def jaccard(a, b) -> float:
    """Jaccard index (intersection over union) ``J = |A n B| / |A u B|``, in [0, 1].

    Related to Dice by ``J = DSC / (2 - DSC)``.

    Args:
        a, b: masks of the same shape.

    Returns:
        The Jaccard index; both masks empty gives 1.0, exactly one empty gives 0.0.
    """
    na, nb, nab = _counts(a, b, "jaccard")
    union = na + nb - nab
    if union == 0:
        return 1.0
    return nab / union


def volumetric_overlap_error(a, b) -> float:
    """Volumetric overlap error ``VOE = 1 - |A n B| / |A u B| = 1 - Jaccard``, in [0, 1].

    Often reported in percent (multiply by 100). Both masks empty gives 0.0, one empty gives 1.0.

    Args:
        a, b: masks of the same shape.
    """
    return 1.0 - jaccard(a, b)


def recall(a, b) -> float:
    """Recall (sensitivity, true positive rate) ``|A n B| / |B|``, with ``b`` the reference, in [0, 1].

    The fraction of the reference structure that the evaluated mask covers (macJNet's Table 8 reports it
    for the segmenters, in percent: multiply by 100).

    Args:
        a: the mask being evaluated (a predicted segmentation, a warped moving label).
        b: the reference mask (the ground truth, the fixed label), same shape.

    Returns:
        The recall. Both masks empty gives 1.0 (they agree perfectly, as for :func:`dice`); an empty
        reference ``b`` with a non-empty ``a`` leaves nothing to recall: NaN with an
        :class:`EmptyMaskWarning`.
    """
    na, nb, nab = _counts(a, b, "recall")
    if nb == 0:
        if na == 0:
            return 1.0
        warn_empty("recall", ["b (the reference)"])
        return float("nan")
    return nab / nb


def precision(a, b) -> float:
    """Precision (positive predictive value) ``|A n B| / |A|``, with ``b`` the reference, in [0, 1].

    The fraction of the evaluated mask that lies inside the reference structure (macJNet's Table 8
    reports it for the segmenters, in percent: multiply by 100).

    Args:
        a: the mask being evaluated (a predicted segmentation, a warped moving label).
        b: the reference mask (the ground truth, the fixed label), same shape.

    Returns:
        The precision. Both masks empty gives 1.0 (as for :func:`dice`); an empty ``a`` with a non-empty
        reference has no positive to judge: NaN with an :class:`EmptyMaskWarning` (its recall is 0).
    """
    na, nb, nab = _counts(a, b, "precision")
    if na == 0:
        if nb == 0:
            return 1.0
        warn_empty("precision", ["a (the evaluated mask)"])
        return float("nan")
    return nab / na


def relative_volume_difference(a, b) -> float:
    """Signed relative volume difference ``RVD = (|A| - |B|) / |B|``, with ``b`` the reference.

    Positive when ``a`` is larger than the reference. Often reported in percent (multiply by 100) or
    as its absolute value. Voxel volume cancels, so no spacing is needed.

    Args:
        a: the mask being evaluated (e.g. the warped moving label).
        b: the reference mask (e.g. the fixed label), same shape.

    Returns:
        The RVD; NaN with an :class:`EmptyMaskWarning` when the reference ``b`` is empty.
    """
    na, nb, _ = _counts(a, b, "relative_volume_difference")
    if nb == 0:
        warn_empty("relative_volume_difference", ["b (the reference)"])
        return float("nan")
    return (na - nb) / nb


def volume_similarity(a, b) -> float:
    """Volume similarity as ITK/SimpleITK define it: ``VS = 2 (|A| - |B|) / (|A| + |B|)``, in [-2, 2].

    The difference of the two volumes relative to their mean; 0 for equal volumes whatever their
    overlap. Same value and sign as ``SimpleITK.LabelOverlapMeasuresImageFilter().GetVolumeSimilarity()``
    with ``a`` as its source (first) and ``b`` as its target (second) image.

    Args:
        a, b: masks of the same shape.

    Returns:
        VS; 0.0 when both masks are empty.
    """
    na, nb, _ = _counts(a, b, "volume_similarity")
    if na + nb == 0:
        return 0.0
    return 2.0 * (na - nb) / (na + nb)
