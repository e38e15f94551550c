"""The metrics tables ``tfreg_predict`` writes, with DeepReg's file names and columns.

- ``metrics.csv``: one row per sample (pair and label): ``image_ssd,label_binary_dice,label_tre,
  pair_index,label_index``. ``image_ssd`` is the per-sample mean squared difference of the fixed and
  predicted fixed images; ``label_binary_dice`` the Dice of the labels binarised at ``>= 0.5``
  (:mod:`tfreg.label_threshold`, the rule ``tfreg_evaluate`` uses too);
  ``label_tre`` the distance between their centroids in fixed voxels (DeepReg's TRE). ``pair_index``
  is written as ``"[0, 1]"``; unlabeled rows have ``label_index`` -1 and empty label columns.
- with landmarks (a data loader with ``landmarks: true``), ``metrics.csv`` has the columns of
  :data:`LANDMARK_COLUMNS` after DeepReg's (empty for a sample without landmarks), and both stats tables
  summarise them too (see :func:`landmark_metrics`); without landmarks there are no landmark columns.
- ``tfreg_predict`` adds the columns of :data:`SURFACE_COLUMNS` last (after the landmark columns, so every
  earlier column keeps its position): ``label_hd_mm`` (full Hausdorff distance, percentile 100) and
  ``label_assd_mm`` (average symmetric surface distance) of the thresholded labels, in mm with the fixed
  grid's spacing, and ``ddf_folding_count``, the number of voxels of the predicted DDF with ``det J <= 0``
  (He, He and Cao's "JAC"); see :func:`surface_and_folding_metrics`. Rows without them (a caller of
  :func:`write_metrics_csvs` that does not compute them) keep DeepReg's tables.
- then :data:`TIMING_COLUMNS`: ``inference_time_s``, the model's forward time of the sample's batch divided
  by the batch's samples, in seconds, tracing excluded (:mod:`tfreg.engine.predict_timing`); macJNet's
  "time per pair" is its mean (``metrics_stats_overall.csv``).
- ``metrics_stats_per_label.csv``: per ``label_index``, ``<metric>_{mean,median,std}`` in sorted
  column order (what pandas' ``groupby().mean/median/std`` gave DeepReg: NaN skipped, sample std).
- ``metrics_stats_overall.csv``: pandas' ``describe()`` of the three metric columns (count, mean, std,
  min, 25%, 50%, 75%, max; linear-interpolation percentiles).

Written with the csv module (no pandas dependency); pandas reads them back unchanged.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from tfreg.data.geometry import ImageGeometry
from tfreg.data.landmarks import index_to_physical, move_through_ddf
from tfreg.label_threshold import binarise
from tfreg.metrics import assd, centroid_distance, dice, folding_count, hausdorff_distance, robustness, tre
from tfreg.metrics._checks import EmptyMaskWarning

METRIC_COLUMNS = ("image_ssd", "label_binary_dice", "label_tre")
COLUMNS = METRIC_COLUMNS + ("pair_index", "label_index")
#: Per-pair landmark errors (mm) and robustness, written when the data has landmarks (:func:`landmark_metrics`).
LANDMARK_COLUMNS = (
    "landmark_count",
    "landmark_mean_ae",
    "landmark_median_ae",
    "landmark_robustness",
    "landmark_mean_ae_before",
    "landmark_median_ae_before",
)
#: Per-sample surface distances (mm) and the DDF's folded-voxel count (:func:`surface_and_folding_metrics`).
SURFACE_COLUMNS = ("label_hd_mm", "label_assd_mm", "ddf_folding_count")
#: Per-sample inference seconds of the model's forward pass (:mod:`tfreg.engine.predict_timing`), written last.
TIMING_COLUMNS = ("inference_time_s",)
DESCRIBE_ROWS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")


def sample_metrics(
    fixed_image: Optional[np.ndarray],
    pred_fixed_image: Optional[np.ndarray],
    fixed_label: Optional[np.ndarray],
    pred_fixed_label: Optional[np.ndarray],
) -> Dict[str, float]:
    """DeepReg's per-sample metrics; a value is NaN when its inputs are absent.

    Args:
        fixed_image, pred_fixed_image: ``(*f)`` arrays (None for a conditional model).
        fixed_label, pred_fixed_label: ``(*f)`` label maps in [0, 1] (None when unlabeled).

    Returns:
        ``{"image_ssd", "label_binary_dice", "label_tre"}``; TRE in fixed voxels, NaN when a thresholded
        label is empty (DeepReg reported the distance to the origin there).
    """
    out = {key: math.nan for key in METRIC_COLUMNS}
    if fixed_image is not None and pred_fixed_image is not None:
        out["image_ssd"] = float(np.mean(np.square(fixed_image.astype(np.float64) - pred_fixed_image)))
    if fixed_label is not None and pred_fixed_label is not None:
        a, b = binarise(np.asarray(fixed_label)), binarise(np.asarray(pred_fixed_label))
        out["label_binary_dice"] = dice(a, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyMaskWarning)  # NaN in the table says it
            out["label_tre"] = centroid_distance(a, b)
    return out


def surface_and_folding_metrics(
    fixed_label: Optional[np.ndarray],
    pred_fixed_label: Optional[np.ndarray],
    ddf: Optional[np.ndarray],
    spacing: Optional[Sequence[float]],
) -> Dict[str, float]:
    """The :data:`SURFACE_COLUMNS` of one sample; a value is NaN when its inputs are absent.

    Args:
        fixed_label, pred_fixed_label: ``(*f)`` label maps in [0, 1], thresholded at ``>= 0.5`` (None when
            unlabeled), 2-D or 3-D.
        ddf: ``(*f, ndim)`` predicted DDF in voxels (None for a model without one).
        spacing: the fixed grid's voxel size per axis in mm (None: 1, distances in voxels).

    Returns:
        ``label_hd_mm``: :func:`tfreg.metrics.hausdorff_distance` with ``percentile=100`` (the maximum of both
        directed surface-to-surface distances); ``label_assd_mm``: :func:`tfreg.metrics.assd` (the mean of the
        pooled surface distances); both in mm, NaN when either thresholded label is empty.
        ``ddf_folding_count``: :func:`tfreg.metrics.folding_count` (voxels with ``det J <= 0``, derivatives by
        central differences in voxel units; the sign of ``det J`` does not depend on the spacing), NaN
        without a DDF.
    """
    out = {key: math.nan for key in SURFACE_COLUMNS}
    if fixed_label is not None and pred_fixed_label is not None:
        a, b = binarise(np.asarray(fixed_label)), binarise(np.asarray(pred_fixed_label))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyMaskWarning)  # NaN in the table says it
            out["label_hd_mm"] = hausdorff_distance(a, b, spacing=spacing, percentile=100)
            out["label_assd_mm"] = assd(a, b, spacing=spacing)
    if ddf is not None:
        out["ddf_folding_count"] = folding_count(np.asarray(ddf, dtype=np.float64))
    return out


def landmark_points(
    moving_landmarks: np.ndarray,
    fixed_landmarks: np.ndarray,
    landmark_mask: np.ndarray,
    ddf: np.ndarray,
    moving_geometry: ImageGeometry,
) -> Dict[str, np.ndarray]:
    """A pair's landmarks in mm, in the moving image's frame, with the fixed ones moved through the DDF.

    The DDF lives on the fixed grid and moves fixed voxel ``x`` to the moving-image point ``x + ddf(x)``
    (voxels of the moving model grid). A fixed landmark ``f`` is therefore predicted at ``f + ddf(f)``
    (:func:`tfreg.data.landmarks.move_through_ddf`: ``ddf`` interpolated linearly at ``f``, edge values
    beyond the grid). Every point is converted to mm with ``moving_geometry``.

    Args:
        moving_landmarks, fixed_landmarks: ``(L, ndim)`` model voxels (the data loader's padded arrays).
        landmark_mask: ``(L,)``, 1 for a landmark, 0 for padding.
        ddf: ``(*f, ndim)`` voxels of the moving model grid.
        moving_geometry: the moving image's model-grid geometry (``DataLoader.get_geometry``).

    Returns:
        ``{"moving": m, "pred_moving": f + ddf(f), "fixed": f}``, each ``(K, ndim)`` mm for the K landmarks
        of the mask (``fixed``: the fixed landmarks unmoved, i.e. through a zero DDF).
    """
    valid = np.asarray(landmark_mask) > 0
    moving = np.asarray(moving_landmarks, dtype=np.float64)[valid]
    fixed = np.asarray(fixed_landmarks, dtype=np.float64)[valid]
    ddf = np.asarray(ddf, dtype=np.float64)
    ndim = ddf.shape[-1]
    if ddf.ndim != ndim + 1 or moving.shape[1] != ndim or fixed.shape[1] != ndim:
        raise ValueError(
            f"landmark_metrics: ddf {ddf.shape} must be (*f, ndim) with the landmarks' ndim, got landmarks "
            f"{moving.shape} and {fixed.shape}"
        )
    return {
        "moving": index_to_physical(moving, moving_geometry),
        "pred_moving": index_to_physical(move_through_ddf(fixed, ddf), moving_geometry),
        "fixed": index_to_physical(fixed, moving_geometry),
    }


def landmark_metrics(
    moving_landmarks: np.ndarray,
    fixed_landmarks: np.ndarray,
    landmark_mask: np.ndarray,
    ddf: np.ndarray,
    moving_geometry: ImageGeometry,
) -> Dict[str, float]:
    """BraTS-Reg landmark errors of one pair, in mm, from a predicted DDF.

    The absolute error of a landmark is ``AE = ||m - (f + ddf(f))||`` in mm (the TRE),  ``m`` the moving
    landmark corresponding to the fixed landmark ``f``, both in the moving image's frame
    (:func:`landmark_points`; :func:`tfreg.metrics.tre` of physical points). Per pair (WSSAMNet eq. 6 and
    the mean): ``landmark_mean_ae`` / ``landmark_median_ae``; the same for the zero DDF (no registration)
    in ``landmark_*_ae_before``; ``landmark_robustness``: the fraction of landmarks whose error is smaller
    than with the zero DDF (:func:`tfreg.metrics.robustness`, BraTS-Reg).

    Args: as :func:`landmark_points`.

    Returns:
        The :data:`LANDMARK_COLUMNS`; ``landmark_count`` 0 and NaN errors when the mask holds no landmark.
    """
    return landmark_point_metrics(
        landmark_points(moving_landmarks, fixed_landmarks, landmark_mask, ddf, moving_geometry)
    )


def landmark_point_metrics(points: Dict[str, np.ndarray]) -> Dict[str, float]:
    """The :data:`LANDMARK_COLUMNS` of :func:`landmark_points`' mm arrays (see :func:`landmark_metrics`)."""
    out = {key: math.nan for key in LANDMARK_COLUMNS}
    count = len(points["moving"])
    out["landmark_count"] = int(count)
    if count == 0:
        return out
    after = tre(points["moving"], points["pred_moving"])
    before = tre(points["moving"], points["fixed"])
    out.update(
        landmark_mean_ae=float(np.mean(after)),
        landmark_median_ae=float(np.median(after)),
        landmark_robustness=float(robustness(before, after)),
        landmark_mean_ae_before=float(np.mean(before)),
        landmark_median_ae_before=float(np.median(before)),
    )
    return out


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def _write(path: str, header: Sequence[str], rows: List[Sequence]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(v) for v in row])


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[~np.isnan(array)]


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else math.nan


def _stat(values: np.ndarray, func) -> float:
    return float(func(values)) if values.size else math.nan


def write_metrics_csvs(rows: List[Dict[str, object]], folder: str) -> List[str]:
    """Write the three tables into ``folder``; returns their paths.

    Args:
        rows: per sample ``{"image_ssd", "label_binary_dice", "label_tre": float (NaN = absent),
            "pair_index": list of ints, "label_index": int (-1 unlabeled)}``, in prediction order, plus
            the :data:`LANDMARK_COLUMNS` for samples with landmarks, the :data:`SURFACE_COLUMNS` and the
            :data:`TIMING_COLUMNS`. When any row has a group of them, the tables get that group's columns
            (empty cells where a row lacks them): landmark columns after DeepReg's, then the surface
            columns, the timing column last; otherwise they are DeepReg's.
    """
    extra = ()
    for group in (LANDMARK_COLUMNS, SURFACE_COLUMNS, TIMING_COLUMNS):
        if any(key in row for row in rows for key in group):
            extra += group
    metric_columns = METRIC_COLUMNS + extra
    rows = [{**{key: math.nan for key in metric_columns}, **row} for row in rows]
    paths = [
        os.path.join(folder, name)
        for name in ("metrics.csv", "metrics_stats_per_label.csv", "metrics_stats_overall.csv")
    ]
    _write(
        paths[0],
        COLUMNS + extra,  # DeepReg's columns first, unchanged
        [
            [row[m] for m in METRIC_COLUMNS]
            + [str([int(i) for i in row["pair_index"]]), int(row["label_index"])]
            + [row[m] for m in extra]
            for row in rows
        ],
    )

    labels = sorted({int(row["label_index"]) for row in rows})
    stat_columns = sorted(f"{m}_{s}" for m in metric_columns for s in ("mean", "median", "std"))
    per_label = []
    for label in labels:
        values = {m: _finite([row[m] for row in rows if int(row["label_index"]) == label]) for m in metric_columns}
        stats = {}
        for m, v in values.items():
            stats[f"{m}_mean"] = _stat(v, np.mean)
            stats[f"{m}_median"] = _stat(v, np.median)
            stats[f"{m}_std"] = _std(v)
        per_label.append([label] + [stats[c] for c in stat_columns])
    _write(paths[1], ["label_index"] + stat_columns, per_label)

    describe = {}
    for m in metric_columns:
        v = _finite([row[m] for row in rows])
        q = np.percentile(v, [25, 50, 75]) if v.size else [math.nan] * 3
        describe[m] = [float(v.size), _stat(v, np.mean), _std(v), _stat(v, np.min), q[0], q[1], q[2], _stat(v, np.max)]
    _write(
        paths[2],
        [""] + list(metric_columns),
        [[name] + [describe[m][i] for m in metric_columns] for i, name in enumerate(DESCRIBE_ROWS)],
    )
    return paths


__all__ = [
    "METRIC_COLUMNS",
    "COLUMNS",
    "LANDMARK_COLUMNS",
    "SURFACE_COLUMNS",
    "TIMING_COLUMNS",
    "sample_metrics",
    "surface_and_folding_metrics",
    "landmark_metrics",
    "landmark_point_metrics",
    "landmark_points",
    "write_metrics_csvs",
]
