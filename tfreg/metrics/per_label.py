"""Apply a binary-mask metric to every label of integer label maps."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from tfreg.metrics._checks import as_array, check_same_shape


def per_label(metric: Callable, a, b=None, labels: Iterable | None = None, **kwargs) -> dict:
    """Evaluate ``metric`` on the binary masks ``a == l`` (and ``b == l``) for every label ``l``.

    Examples::

        per_label(dice, fixed_seg, warped_seg, labels=[2, 3, 4])
        per_label(hausdorff_distance, fixed_seg, warped_seg, spacing=(1, 1, 1.5), percentile=99)
        per_label(lambda m: jacobian_determinant_std(ddf, m), moving_seg, labels=[1, 2, 3])

    Args:
        metric: a function of one mask (``b`` None) or two masks; extra keyword arguments are passed on.
        a: integer label map ``(*spatial)``.
        b: optional second label map of the same shape.
        labels: the label values to evaluate; None means every non-zero value present in ``a`` or ``b``.
            A label absent from a map gives an empty mask, which the metric handles (Dice 0 or 1,
            surface distances NaN with a warning).
        **kwargs: passed to ``metric`` (e.g. ``spacing``).

    Returns:
        ``{label: value}`` in the order of ``labels``.
    """
    func = "per_label"
    la = _label_map(a, "a", func)
    lb = None
    if b is not None:
        lb = _label_map(b, "b", func)
        check_same_shape(la, lb, func)
    if labels is None:
        present = np.unique(la) if lb is None else np.union1d(np.unique(la), np.unique(lb))
        labels = [int(v) for v in present if v != 0]
    labels = list(labels)
    if lb is None:
        return {lab: metric(la == lab, **kwargs) for lab in labels}
    return {lab: metric(la == lab, lb == lab, **kwargs) for lab in labels}


def _label_map(x, name: str, func: str) -> np.ndarray:
    """An integer label map; float maps (as loaded from NIfTI/npz) must hold whole numbers."""
    arr = as_array(x, name, func)
    if arr.dtype != bool and not np.array_equal(arr, np.round(arr)):
        raise ValueError(f"{func}: {name} must be a label map of whole numbers, got fractional values")
    return arr.astype(np.int64)
