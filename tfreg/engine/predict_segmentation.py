"""Predicted label masks and the per-label segmentation tables of ``tfreg_predict``.

A model that declares ``prediction_label_maps`` (the segmentation model: ``moving_segmentation`` ->
``moving_label``, ``fixed_segmentation`` -> ``fixed_label``) gets, besides its probability maps:

- ``<output>_mask.nii.gz`` in each pair folder (e.g. ``moving_segmentation_mask.nii.gz``): the model's
  binary masks (:meth:`~tfreg.models.base.RegistrationModel.label_masks`), ``(*S, L)`` uint8, one channel
  per label channel of the data (DeepReg's one-mask-per-channel layout, also for a single label), on the
  grid and with the geometry of the image it segments (as the probability maps);
- with labels, ``segmentation_metrics.csv``: one row per scored image and label channel, in prediction
  order, columns :data:`SEGMENTATION_COLUMNS`:

  ``pair_index`` (``"[0, 1]"``, as in ``metrics.csv``), ``role`` (``moving`` or ``fixed``), ``image`` (the
  image file), ``label_index`` (the label channel), ``dice`` (:func:`tfreg.metrics.dice` of the label
  thresholded at ``>= 0.5`` and the mask's channel; 1 when both are empty), ``hd95_mm``
  (:func:`tfreg.metrics.hausdorff_distance`, ``percentile=95``: the 95th percentile of the pooled
  surface-to-surface distances of both masks, in mm with the image's spacing on the model grid; empty when
  either mask is empty), then ``hd_mm`` (the full Hausdorff distance, ``percentile=100``) and ``assd_mm``
  (:func:`tfreg.metrics.assd`, the mean of the same pooled distances), alike, then the other scores of
  macJNet's Table 8 (Zhou et al. 2023): ``recall`` (:func:`tfreg.metrics.recall`, ``|S n G| / |G|`` with S
  the mask and G the label; 1 when both are empty, empty when only G is), ``precision``
  (:func:`tfreg.metrics.precision`, ``|S n G| / |S|``; 1 when both are empty, empty when only S is),
  ``rvd_abs_pct`` (``|(|S| / |G|) - 1| x 100``, the absolute relative volume difference in %; empty when G is
  empty) and ``voe_pct`` (``(1 - |S n G| / |S u G|) x 100``, the volumetric overlap error in %; 0 when both
  are empty);
- ``segmentation_metrics_per_label.csv``: per ``label_index``, ``count`` (distinct images), ``dice_*`` and
  ``hd95_mm_*`` mean / median / std (sample std; empty HD95 cells skipped, ``hd95_mm_count`` says how many
  remain), then ``hd_mm_*``, ``assd_mm_*`` (empty cells skipped, the same count), ``recall_*``,
  ``precision_*``, ``rvd_abs_pct_*`` and ``voe_pct_*`` mean / median / std (empty cells skipped).
  An image scored more than once (unpaired data pairs each image with several others, as moving and as
  fixed; its segmentation does not depend on the pair) counts once, with its first row.

Labels come from the data loader on the model grid (resized, so soft where the file was resampled), one
channel per sample, the sample's ``label_index``: with ``sample_label: all`` (the default for ``valid`` and
``test``) every channel of every image is scored.
"""

from __future__ import annotations

import os
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from tfreg.data.geometry import ImageGeometry
from tfreg.engine.predict_metrics import _finite, _stat, _std, _write
from tfreg.label_threshold import binarise
from tfreg.metrics import (
    assd,
    dice,
    hausdorff_distance,
    precision,
    recall,
    relative_volume_difference,
    volumetric_overlap_error,
)
from tfreg.metrics._checks import EmptyMaskWarning

#: the suffix of a mask file: ``moving_segmentation`` -> ``moving_segmentation_mask.nii.gz``
MASK_SUFFIX = "_mask"
#: columns of ``segmentation_metrics.csv``
#: the scores of each row, summarised per label (the first two before ``hd95_mm_count``, the others after it);
#: recall to voe_pct are macJNet's Table 8 besides Dice and HD95 (ratios in [0, 1], the last two in %)
SCORE_COLUMNS = ("dice", "hd95_mm", "hd_mm", "assd_mm", "recall", "precision", "rvd_abs_pct", "voe_pct")
SEGMENTATION_COLUMNS = ("pair_index", "role", "image", "label_index") + SCORE_COLUMNS
#: the percentile of the surface distances reported (HD95)
HD_PERCENTILE = 95.0
SEGMENTATION_FILES = ("segmentation_metrics.csv", "segmentation_metrics_per_label.csv")


def mask_name(output: str) -> str:
    """The name a probability output's mask is written under: ``<output>_mask``."""
    return output + MASK_SUFFIX


def segmentation_scores(label: np.ndarray, mask: np.ndarray, spacing: Optional[Sequence[float]]) -> Dict[str, float]:
    """Dice, HD95, the full Hausdorff distance, ASSD, recall, precision, |RVD| and VOE of one label channel
    and its predicted mask (the label is the reference).

    Args:
        label: ``(*S)`` ground truth in [0, 1] (thresholded at ``>= 0.5``), 2-D or 3-D.
        mask: ``(*S)`` predicted mask (bool, or thresholded at ``>= 0.5``).
        spacing: voxel size per axis in mm (the image's on the model grid); None: 1.

    Returns:
        ``{"dice": float in [0, 1], "hd95_mm", "hd_mm", "assd_mm": float in mm (NaN when a mask is empty),
        "recall", "precision": float in [0, 1] (1 when both are empty; NaN when only the label, resp. only
        the mask, is), "rvd_abs_pct": |V_mask / V_label - 1| x 100 (NaN for an empty label),
        "voe_pct": (1 - Jaccard) x 100 in [0, 100]}``.
    """
    truth = binarise(np.asarray(label))
    pred = binarise(np.asarray(mask))
    if truth.shape != pred.shape:
        raise ValueError(f"segmentation_scores: label {truth.shape} and mask {pred.shape} differ in shape")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyMaskWarning)  # NaN (an empty cell) says it
        hd95 = hausdorff_distance(truth, pred, spacing=spacing, percentile=HD_PERCENTILE)
        hd = hausdorff_distance(truth, pred, spacing=spacing, percentile=100)
        mean = assd(truth, pred, spacing=spacing)
        found = recall(pred, truth)
        right = precision(pred, truth)
        rvd = relative_volume_difference(pred, truth)
    return {
        "dice": float(dice(truth, pred)),
        "hd95_mm": float(hd95),
        "hd_mm": float(hd),
        "assd_mm": float(mean),
        "recall": float(found),
        "precision": float(right),
        "rvd_abs_pct": float(abs(rvd) * 100.0),
        "voe_pct": float(volumetric_overlap_error(pred, truth) * 100.0),
    }


def segmentation_rows(
    label_maps: Dict[str, str],
    grids: Dict[str, str],
    arrays: Dict[str, np.ndarray],
    pair_index: Sequence[int],
    label_index: int,
    geometries: Dict[str, ImageGeometry],
    sources: Dict[str, str],
) -> List[Dict[str, object]]:
    """The ``segmentation_metrics.csv`` rows of one sample.

    Args:
        label_maps: the model's ``prediction_label_maps`` (output -> ``moving_label`` / ``fixed_label``).
        grids: the model's ``prediction_images`` (output -> ``moving`` / ``fixed``): the row's role.
        arrays: the sample's arrays: the labels ``(*S)`` (one channel, ``label_index``) and the masks
            ``<output>_mask`` ``(*S, L)``; outputs or labels that are absent are skipped.
        pair_index: the sample's image indices.
        label_index: its label channel (< 0: unlabeled, no rows).
        geometries, sources: per role (``moving``/``fixed``), the model-grid geometry and the image file.

    Returns:
        dicts with the :data:`SEGMENTATION_COLUMNS`.
    """
    rows: List[Dict[str, object]] = []
    if label_index < 0:
        return rows
    for output, label_key in label_maps.items():
        mask = arrays.get(mask_name(output))
        label = arrays.get(label_key)
        if mask is None or label is None:
            continue
        if not 0 <= label_index < mask.shape[-1]:
            raise ValueError(
                f"label index {label_index} has no channel in {mask_name(output)} {tuple(mask.shape)}: the model "
                f"predicts {mask.shape[-1]} label channel(s)"
            )
        role = grids[output]
        scores = segmentation_scores(label, mask[..., label_index], geometries[role].spacing)
        rows.append(
            {
                "pair_index": [int(i) for i in pair_index],
                "role": role,
                "image": sources[role],
                "label_index": int(label_index),
                **scores,
            }
        )
    return rows


def _summary(values: Sequence[float]) -> List[float]:
    """Mean, median and sample std of the finite values (NaN where none, or one for the std)."""
    finite = _finite(values)
    return [_stat(finite, np.mean), _stat(finite, np.median), _std(finite)]


def write_segmentation_csvs(rows: List[Dict[str, object]], folder: str) -> List[str]:
    """Write ``segmentation_metrics.csv`` and ``segmentation_metrics_per_label.csv`` into ``folder``.

    Args:
        rows: :func:`segmentation_rows` of every sample, in prediction order.

    Returns:
        the two paths.
    """
    paths = [os.path.join(folder, name) for name in SEGMENTATION_FILES]
    _write(
        paths[0],
        SEGMENTATION_COLUMNS,
        [
            [str(row["pair_index"]), row["role"], row["image"], row["label_index"]]
            + [row.get(column, float("nan")) for column in SCORE_COLUMNS]
            for row in rows
        ],
    )
    first: Dict[tuple, Dict[str, object]] = {}
    for row in rows:
        first.setdefault((row["image"], row["label_index"]), row)
    # hd95_mm_count keeps its place after the first two scores; the later scores follow it
    before, after = SCORE_COLUMNS[:2], SCORE_COLUMNS[2:]
    header = ["label_index", "count"]
    for column in before:
        header += [f"{column}_mean", f"{column}_median", f"{column}_std"]
    header.append("hd95_mm_count")
    for column in after:
        header += [f"{column}_mean", f"{column}_median", f"{column}_std"]
    summary = []
    for label in sorted({int(row["label_index"]) for row in first.values()}):
        chosen = [row for row in first.values() if row["label_index"] == label]
        line: List[object] = [label, len(chosen)]
        for column in before:
            line += _summary([row[column] for row in chosen])
        line.append(int(_finite([row["hd95_mm"] for row in chosen]).size))
        for column in after:
            line += _summary([row.get(column, float("nan")) for row in chosen])
        summary.append(line)
    _write(paths[1], header, summary)
    return paths


__all__ = [
    "HD_PERCENTILE",
    "MASK_SUFFIX",
    "SCORE_COLUMNS",
    "SEGMENTATION_COLUMNS",
    "SEGMENTATION_FILES",
    "mask_name",
    "segmentation_rows",
    "segmentation_scores",
    "write_segmentation_csvs",
]
