"""Evaluate registration results from files: the driver behind ``tfreg_evaluate``.

NumPy, SciPy and SimpleITK only (no TensorFlow, no Keras), so the command starts fast and evaluates any
registration (tfreg, DeepReg, ANTs, Elastix) whose results are image files.

Inputs are described by :class:`PairSpec` objects (:mod:`tfreg.evaluation.inputs`, re-exported here),
built from

- a prediction folder written by ``tfreg_predict`` / ``deepreg_predict``
  (:func:`pairs_from_prediction_dir`): ``<dir>/pair_<id>/{fixed_image, moving_image, pred_fixed_image,
  ddf}.nii.gz`` and ``pair_<id>/label_<k>/{fixed_label, moving_label, pred_fixed_label}.nii.gz``;
- a pairs CSV (:func:`pairs_from_csv`), one row per pair, columns :data:`PAIR_CSV_COLUMNS`;
- or directly, one :class:`PairSpec` per pair.

:func:`evaluate` then writes one CSV row per pair and label (:data:`LABEL_METRICS`, their ``_before``
twins, det J inside the label (:data:`LABEL_DDF_METRICS`), and the per-pair :data:`PAIR_METRICS`
repeated on each label row of the pair) and a summary CSV
(mean, std, median, quartiles per metric and label, plus an ``all`` label). Distances are in mm, from
the fixed grid's spacing; see docs/evaluation.md for every definition.

Options for van Ulsen's evaluation ("Multi-modal deep learning based 3D image registration for osseous
anatomies"): ``union_label`` adds a row per pair for the union of its labels (the pooled vertebrae
"L543"), and ``jacobian_figure`` draws det J inside each label (violins with each pair's median, and
histograms with bin width 0.01, :mod:`tfreg.vis.jacobian_distribution`).

For macJNet's evaluation (Zhou et al. 2023): ``ssim_window="global"`` (or ``"both"``) adds ``ssim_global``
(SSIM from whole-image statistics, the paper's eq. 2); every pair with images gets ``nmi_pct`` (normalised MI
in %, 64 bins), every pair with a DDF ``folding_permille`` (det J < 0, per mille), and every label
``recall`` and ``precision`` besides Dice and HD95.

For Learn2Reg's OASIS task (task 3 of 2021): ``learn2reg=True`` adds ``sdlogj_l2r`` (Learn2Reg's SDlogJ, of
log(det J + 3)) and writes ``<output stem>_learn2reg.csv``: per pair the mean Dice and mean HD95 over the labels
present in the fixed and moving labels and the SDlogJ of its DDF, then their mean, std, 30th percentile and
count over the pairs (:func:`learn2reg_rows`).
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, read_image_info
from tfreg.evaluation.inputs import (  # noqa: F401  (re-exported: the public API of this module)
    PAIR_CSV_COLUMNS,
    LabelFiles,
    PairSpec,
    natural_key,
    pairs_from_csv,
    pairs_from_prediction_dir,
    read_landmarks,
)
from tfreg.evaluation.progress import Progress
from tfreg.file_safety import atomic_output, check_not_input
from tfreg.label_threshold import binarise
from tfreg.metrics import (
    EmptyMaskWarning,
    centroid_distance,
    dice,
    jaccard,
    jacobian_determinant,
    mutual_information,
    precision,
    recall,
    relative_volume_difference,
    robustness,
    sdlogj,
    ssim,
    surface_distances,
    tre,
    volumetric_overlap_error,
)

#: Metrics of one label after registration (fixed vs warped); ``<name>_before`` is fixed vs moving.
LABEL_METRICS = (
    "dice",
    "jaccard",
    "hd",
    "hd95",
    "hd99",
    "assd",
    "msd",
    "rvd",
    "voe",
    "centroid_dist",
    "recall",
    "precision",
)
#: Per-pair metrics of the DDF, over every voxel of the fixed grid (folding_fraction x100: van Ulsen's
#: folding %, det J <= 0; folding_permille: macJNet's per mille, det J < 0).
DDF_METRICS = ("folding_fraction", "jac_det_mean", "jac_det_std", "sdlogj", "folding_permille")
#: Per-pair DDF metric written with ``learn2reg``: SDlogJ as Learn2Reg's evaluation script computes it, the std
#: of ``log(det J + 3)`` (:data:`LEARN2REG_SDLOGJ_OFFSET`), the number that script reports.
LEARN2REG_DDF_METRICS = ("sdlogj_l2r",)
#: What Learn2Reg's script adds to det J before the log (``(jacobian_determinant(disp) + 3).clip(1e-9, 1e9)``;
#: :func:`tfreg.metrics.sdlogj`'s ``offset``).
LEARN2REG_SDLOGJ_OFFSET = 3.0
#: Per-label metrics of the DDF: det J inside the label (van Ulsen's per-structure mean and sigma JD); the
#: label's warped mask by default, its fixed mask with ``jacobian_mask="fixed"`` (:data:`JACOBIAN_MASKS`).
LABEL_DDF_METRICS = ("jac_det_mean_in_label", "jac_det_std_in_label")
#: Which mask of a label the det J statistics (and the det J figure) use: both lie on the fixed grid, where
#: the DDF is defined. "warped": the fixed-grid voxels mapped into the moving structure; "fixed": the fixed
#: structure itself.
JACOBIAN_MASKS = ("warped", "fixed")
#: Per-pair landmark metrics (fixed vs warped landmarks), then those needing the moving landmarks.
LANDMARK_METRICS = ("n_landmarks", "tre_mean", "tre_median", "tre_std", "tre_max")
LANDMARK_BEFORE_METRICS = ("tre_mean_before", "tre_median_before", "robustness")
#: Per-pair intensity metrics (fixed vs warped image), then fixed vs moving image. ``ssim`` (Gaussian window)
#: and ``ssim_global`` (whole-image statistics) are written as ``ssim_window`` (:data:`SSIM_WINDOW_OPTIONS`) says.
IMAGE_METRICS = ("mi", "ssim", "nmi_pct", "ssim_global")
IMAGE_BEFORE_METRICS = tuple(f"{m}_before" for m in IMAGE_METRICS)
#: Which SSIM columns :func:`evaluate` writes: ``ssim`` (gaussian, the default), ``ssim_global`` or both.
SSIM_WINDOW_OPTIONS = ("gaussian", "global", "both")
#: Histogram bins of the normalised MI column ``nmi_pct`` (the macJNet reading of its "MI %").
NMI_BINS = 64
#: Every per-pair column; they hold the same value on every label row of a pair.
PAIR_METRICS = (
    DDF_METRICS
    + LEARN2REG_DDF_METRICS
    + LANDMARK_METRICS
    + LANDMARK_BEFORE_METRICS
    + IMAGE_METRICS
    + IMAGE_BEFORE_METRICS
)
#: Column order of the per-pair, per-label CSV (columns no pair has are left out).
ALL_COLUMNS = (
    ("pair", "label", "union_of")
    + LABEL_METRICS
    + tuple(f"{m}_before" for m in LABEL_METRICS)
    + LABEL_DDF_METRICS
    + PAIR_METRICS
)
#: Columns of the summary CSV.
SUMMARY_COLUMNS = ("metric", "label", "n", "n_nan", "mean", "std", "median", "q1", "q3", "iqr")
DDF_UNITS = ("voxel", "physical")
#: Label name of the row of a pair that has no labels (only per-pair metrics).
NO_LABEL = ""
#: Column of the union row (``union_label``): the labels whose masks were joined, ``;``-separated; empty on
#: every other row. The summary's and the comparison's pooled ``all`` rows leave rows with it out.
UNION_COLUMN = "union_of"
#: Label of the summary's pooled rows; no label (nor the union) may take it.
POOLED_LABEL = "all"
#: File types the det J figure can be written as (matplotlib chooses the format from the suffix).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
#: Columns of the Learn2Reg CSV (``learn2reg``): one row per pair, then one row per :data:`LEARN2REG_STATISTICS`.
LEARN2REG_COLUMNS = ("pair", "n_labels", "dice", "hd95", "sdlogj", "sdlogj_l2r")
#: The Learn2Reg CSV's last rows, named in its ``pair`` column, over the pairs' finite values: mean, sample std
#: (ddof 1, as pandas' in Learn2Reg's script), 30th percentile (linear interpolation: the script's "30"
#: aggregate, Learn2Reg's DSC30 for Dice) and the number of pairs with a value.
LEARN2REG_STATISTICS = ("mean", "std", "q30", "n")
#: Percentile of the ``q30`` row.
LEARN2REG_PERCENTILE = 30

# relative tolerance for "same spacing": NIfTI stores float32, so bit-exact equality is too strict
_SPACING_RTOL = 1e-4


# ---------------------------------------------------------------------------------------------- checks
def _check_outputs(
    paths: Sequence[Optional[str]],
    overwrite: bool,
    inputs: Optional[Mapping[str, Optional[str]]] = None,
    roles: Optional[Sequence[str]] = None,
) -> None:
    """Refuse existing output files (unless ``overwrite``), and outputs that are inputs (always), before
    any work is done. ``inputs``: role -> path of every file read; ``roles``: a name per output for the
    messages (default ``output file <n>``)."""
    roles = list(roles) if roles is not None else [f"output file {i + 1}" for i in range(len(paths))]
    given = [os.path.abspath(p) for p in paths if p]
    if len(set(given)) != len(given):
        raise ValueError(f"the output files must differ, got {list(p for p in paths if p)}")
    check_not_input({role: p for role, p in zip(roles, paths) if p}, inputs or {})
    for p in paths:
        if p and os.path.isdir(p):
            raise IsADirectoryError(f"output path {p} is a folder, expected a file name")
        if p and os.path.exists(p) and not overwrite:
            raise FileExistsError(f"output file {p} already exists; pass --overwrite (overwrite=True) to replace it")


def _same_grid(pair: str, a: Tuple[str, str], info_a, b: Tuple[str, str], info_b, hint: str) -> None:
    """Raise a DataError naming both files when their array shapes or spacings differ."""
    (role_a, path_a), (role_b, path_b) = a, b
    (shape_a, geo_a), (shape_b, geo_b) = info_a, info_b
    if tuple(shape_a) != tuple(shape_b):
        raise DataError(
            f"pair {pair!r}: {role_a} {path_a} has shape {tuple(shape_a)} but {role_b} {path_b} has shape "
            f"{tuple(shape_b)}; {hint}"
        )
    if geo_a.ndim != geo_b.ndim or not np.allclose(geo_a.spacing, geo_b.spacing, rtol=_SPACING_RTOL, atol=1e-6):
        raise DataError(
            f"pair {pair!r}: {role_a} {path_a} has spacing {geo_a.spacing} mm but {role_b} {path_b} has spacing "
            f"{geo_b.spacing} mm; {hint}"
        )
    same_place = np.allclose(geo_a.origin, geo_b.origin, atol=1e-3)
    if not (same_place and np.allclose(geo_a.direction, geo_b.direction, atol=1e-4)):
        warnings.warn(
            f"pair {pair!r}: {role_a} {path_a} and {role_b} {path_b} have the same shape and spacing but different "
            "origin or direction; they are compared voxel by voxel",
            UserWarning,
            stacklevel=3,
        )


_SAME_GRID_HINT = "they must be on the same voxel grid (warp or resample onto the fixed grid first)"


def _check_pair(spec: PairSpec) -> Dict[str, np.ndarray]:
    """Header-level checks of one pair (shapes, spacings, landmark counts) before any voxel is read.

    Returns:
        The landmark arrays (they are small and already read), keyed by role.
    """
    infos = {}
    for role, path in spec.files():
        if not os.path.isfile(path):
            raise DataNotFoundError(f"pair {spec.pair!r}: {role} file {path} does not exist")
        if not role.endswith("landmarks"):
            infos[path] = read_image_info(path)
    p = spec.pair
    if spec.fixed_label:
        _same_grid(
            p,
            ("fixed_label", spec.fixed_label),
            infos[spec.fixed_label],
            ("warped_label", spec.warped_label),
            infos[spec.warped_label],
            _SAME_GRID_HINT,
        )
    for lf in spec.label_files:
        _same_grid(
            p,
            (f"label {lf.label} fixed_label", lf.fixed),
            infos[lf.fixed],
            (f"label {lf.label} warped label", lf.warped),
            infos[lf.warped],
            _SAME_GRID_HINT,
        )
    if spec.fixed_image:
        _same_grid(
            p,
            ("fixed_image", spec.fixed_image),
            infos[spec.fixed_image],
            ("warped_image", spec.warped_image),
            infos[spec.warped_image],
            _SAME_GRID_HINT,
        )
    if spec.ddf:
        ddf_shape = _ddf_spatial_shape(infos[spec.ddf][0], spec.ddf, p)
        reference = _fixed_reference(spec)
        if reference is not None:
            ref_shape = tuple(infos[reference[1]][0])[: len(ddf_shape)]
            if ref_shape != ddf_shape:
                raise DataError(
                    f"pair {p!r}: ddf {spec.ddf} has spatial shape {ddf_shape} but {reference[0]} {reference[1]} "
                    f"has shape {tuple(infos[reference[1]][0])}; the DDF must be defined on the fixed grid"
                )
    landmarks = {}
    for role in ("fixed_landmarks", "warped_landmarks", "moving_landmarks"):
        if getattr(spec, role):
            landmarks[role] = read_landmarks(getattr(spec, role))
    if "fixed_landmarks" in landmarks:
        fixed = landmarks["fixed_landmarks"]
        for role in ("warped_landmarks", "moving_landmarks"):
            if role in landmarks and landmarks[role].shape != fixed.shape:
                other = landmarks[role]
                raise DataError(
                    f"pair {p!r}: fixed_landmarks {spec.fixed_landmarks} has {fixed.shape[0]} points of "
                    f"{fixed.shape[1]} coordinates but {role} {getattr(spec, role)} has {other.shape[0]} points "
                    f"of {other.shape[1]}; corresponding landmark files must list the same points"
                )
    return landmarks


def _fixed_reference(spec: PairSpec) -> Optional[Tuple[str, str]]:
    """(role, path) of a file on the fixed grid, to check the DDF against."""
    if spec.fixed_label:
        return "fixed_label", spec.fixed_label
    if spec.label_files:
        return f"label {spec.label_files[0].label} fixed_label", spec.label_files[0].fixed
    if spec.fixed_image:
        return "fixed_image", spec.fixed_image
    return None


def _ddf_spatial_shape(shape: Sequence[int], path: str, pair: str) -> Tuple[int, ...]:
    """Spatial shape of a DDF file of shape ``(*spatial, ndim)``; a 2-D field may be stored as (x, y, 1, 2)."""
    shape = tuple(int(s) for s in shape)
    ndim = len(shape) - 1
    if ndim in (2, 3) and shape[-1] == ndim:
        return shape[:-1]
    if len(shape) == 4 and shape[2] == 1 and shape[3] == 2:
        return shape[:2]
    raise DataError(
        f"pair {pair!r}: ddf {path} has shape {shape}; expected (*spatial, ndim) with ndim 2 or 3 "
        "(one displacement component per spatial axis)"
    )


# ---------------------------------------------------------------------------------------------- loading
def _resample_to(
    array: np.ndarray, geometry: ImageGeometry, shape: Sequence[int], target: ImageGeometry, nearest: bool
) -> np.ndarray:
    """``array`` (scalar, ``(*spatial)``) resampled onto another grid through physical space (identity map).

    Voxels of the target grid outside the source image get 0.
    """
    import SimpleITK as sitk  # only needed for the rare off-grid moving files

    source = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array.astype(np.float32))))
    geometry.apply_to_sitk(source)
    reference = sitk.Image([int(s) for s in shape], sitk.sitkFloat32)
    target.apply_to_sitk(reference)
    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(source, reference, sitk.Transform(), interp, 0.0, sitk.sitkFloat32)
    return np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(out)))


def _on_fixed_grid(pair: str, role: str, path: str, fixed_shape, fixed_geo: ImageGeometry, nearest: bool) -> np.ndarray:
    """Read a moving-space file; resample it onto the fixed grid (with a warning) when its grid differs."""
    array, geo = read_image(path)
    spatial = array.shape[: geo.ndim]
    same = (
        tuple(spatial) == tuple(fixed_shape[: geo.ndim])
        and geo.ndim == fixed_geo.ndim
        and np.allclose(geo.spacing, fixed_geo.spacing, rtol=_SPACING_RTOL, atol=1e-6)
    )
    if same:
        return array
    warnings.warn(
        f"pair {pair!r}: {role} {path} (shape {tuple(array.shape)}, spacing {geo.spacing}) is not on the fixed grid "
        f"(shape {tuple(fixed_shape)}, spacing {fixed_geo.spacing}); resampled onto it through physical space "
        f"({'nearest neighbour' if nearest else 'linear'}) for the _before metrics",
        UserWarning,
        stacklevel=2,
    )
    spatial_shape = fixed_shape[: fixed_geo.ndim]
    if array.ndim == geo.ndim + 1:  # one-hot labels: resample every channel
        return np.stack(
            [_resample_to(array[..., c], geo, spatial_shape, fixed_geo, nearest) for c in range(array.shape[-1])],
            axis=-1,
        )
    return _resample_to(array, geo, spatial_shape, fixed_geo, nearest)


class _LabelMap:
    """The per-label masks of one label file: integer map, binary mask, or one-hot channels."""

    def __init__(self, array: np.ndarray, ndim: int, role: str, path: str):
        self.role, self.path = role, path
        if array.ndim == ndim + 1 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim == ndim + 1:
            self.kind = "onehot"
        elif np.array_equal(array, np.round(array)):
            self.kind = "map"
        elif array.min() >= 0 and array.max() <= 1:
            self.kind = "binary"
        else:
            raise DataError(
                f"{role} {path}: values must be whole numbers (a label map) or lie in [0, 1] (a binary mask), found "
                f"fractional values in [{array.min():g}, {array.max():g}]; warp label maps with nearest-neighbour "
                "interpolation"
            )
        self.array = array

    def labels(self) -> List[str]:
        """Label names present (non-zero values of a map; channels of a one-hot file)."""
        if self.kind == "onehot":
            return [str(c) for c in range(self.array.shape[-1])]
        if self.kind == "binary":
            return ["1"] if binarise(self.array).any() else []
        return [str(int(v)) for v in np.unique(self.array) if v != 0]

    def mask(self, label: str) -> np.ndarray:
        """Boolean mask of ``label``; an absent label gives an empty mask."""
        if self.kind == "onehot":
            c = int(label) if label.isdigit() else -1
            if 0 <= c < self.array.shape[-1]:
                return binarise(self.array[..., c])
            return np.zeros(self.array.shape[:-1], dtype=bool)
        if self.kind == "binary":
            return binarise(self.array) if label == "1" else np.zeros(self.array.shape, dtype=bool)
        try:
            value = float(label)
        except ValueError:
            raise DataError(
                f"{self.role} {self.path} is an integer label map; label {label!r} is not a number"
            ) from None
        return self.array == value


def _sort_labels(labels: Iterable[str]) -> List[str]:
    return sorted(set(labels), key=natural_key)


# ---------------------------------------------------------------------------------------------- metrics
def label_metrics(
    fixed: np.ndarray, warped: np.ndarray, spacing: Sequence[float]
) -> Tuple[Dict[str, float], List[str]]:
    """The :data:`LABEL_METRICS` of one label, with the fixed mask as the reference.

    Surface distances are computed once (:func:`tfreg.metrics.surface_distances`) and reduced as
    :func:`tfreg.metrics.hausdorff_distance` (``combine="union"``: percentiles of the pooled directed
    distances), :func:`~tfreg.metrics.assd` and :func:`~tfreg.metrics.msd` (``mode="pooled"``) define
    them; this saves four distance transforms per label.

    Args:
        fixed, warped: boolean masks ``(*spatial)`` of the same shape.
        spacing: voxel size per axis in mm (the fixed grid's).

    ``recall`` is the share of the fixed structure the warped one covers, ``precision`` the share of the
    warped structure inside the fixed one (:func:`tfreg.metrics.recall`, :func:`tfreg.metrics.precision`):
    they tell an under-covering warp (low recall) from an over-covering one (low precision) at equal Dice.

    Returns:
        ``(values, empty)``: the metric values (distances in mm, ratios dimensionless), and the names of
        the empty masks (``"fixed"``, ``"warped"``) for which the distance metrics are NaN (and recall,
        rvd for an empty fixed mask, precision for an empty warped mask, unless both are empty).
    """
    values = {
        "dice": dice(warped, fixed),
        "jaccard": jaccard(warped, fixed),
        "voe": volumetric_overlap_error(warped, fixed),
    }
    empty = [name for name, m in (("fixed", fixed), ("warped", warped)) if not m.any()]
    with warnings.catch_warnings():
        # the caller reports empty masks once per label, instead of once per metric
        warnings.simplefilter("ignore", EmptyMaskWarning)
        values["rvd"] = relative_volume_difference(warped, fixed)
        values["centroid_dist"] = centroid_distance(fixed, warped, spacing=spacing)
        values["recall"] = recall(warped, fixed)
        values["precision"] = precision(warped, fixed)
    if empty:
        values.update({m: math.nan for m in ("hd", "hd95", "hd99", "assd", "msd")})
    else:
        d_fw, d_wf = surface_distances(fixed, warped, spacing=spacing)
        pooled = np.concatenate([d_fw, d_wf])
        values["hd"] = float(pooled.max())
        values["hd95"] = float(np.percentile(pooled, 95))
        values["hd99"] = float(np.percentile(pooled, 99))
        values["assd"] = values["msd"] = float(pooled.mean())
    return {m: values[m] for m in LABEL_METRICS}, empty


def ddf_metrics(ddf: np.ndarray, geometry: ImageGeometry, units: str = "voxel") -> Dict[str, float]:
    """The :data:`DDF_METRICS` of a displacement field over the whole fixed grid.

    Args:
        ddf: ``(*spatial, ndim)``; component c along array axis c in voxels (``units="voxel"``, tfreg's
            and DeepReg's convention), or in mm along the physical (world) axes x, y(, z) as ITK, ANTs
            and Elastix write fields (``units="physical"``; rotated onto the array axes with the
            geometry's direction matrix).
        geometry: the DDF's (fixed) grid; its spacing only matters for physical units.
        units: "voxel" or "physical".

    Returns:
        ``folding_fraction`` (fraction of ALL voxels of the field, inside and outside any label, with
        det J <= 0; x100 is van Ulsen's folding %), ``jac_det_mean``, ``jac_det_std``
        (population std) over every voxel, ``sdlogj`` (std of log det J, 2 voxels cropped per side,
        fewer for tiny grids; see :func:`tfreg.metrics.sdlogj`), and ``folding_permille``: 1000 times the
        fraction of all voxels with det J < 0 (strictly, macJNet's "folding" in per mille; a voxel with
        det J exactly 0 counts in ``folding_fraction`` but not here).
    """
    return _ddf_metrics_and_det(ddf, geometry, units)[0]


def _ddf_metrics_and_det(
    ddf: np.ndarray, geometry: ImageGeometry, units: str, learn2reg: bool = False
) -> Tuple[Dict[str, float], np.ndarray]:
    """:func:`ddf_metrics` and the det J map ``(*spatial)`` it came from (reused for the per-label columns);
    with ``learn2reg`` also :data:`LEARN2REG_DDF_METRICS` (same crop and clip, det J + 3)."""
    if units not in DDF_UNITS:
        raise ValueError(f"ddf_units must be one of {DDF_UNITS}, got {units!r}")
    ndim = ddf.shape[-1]
    geo = geometry.with_ndim(ndim)
    if units == "physical":
        # world displacement w = R u_array, so u_array = R^T w, i.e. w @ R over the component axis
        ddf = ddf @ geo.direction
    det = jacobian_determinant(ddf, spacing=geo.spacing, units=units)
    crop = max(0, min(2, (min(ddf.shape[:-1]) - 1) // 2))
    values = {
        "folding_fraction": float(np.count_nonzero(det <= 0) / det.size),
        "jac_det_mean": float(det.mean()),
        "jac_det_std": float(det.std()),
        "sdlogj": sdlogj(ddf, spacing=geo.spacing, units=units, crop=crop),
        "folding_permille": float(1000.0 * np.count_nonzero(det < 0) / det.size),
    }
    if learn2reg:
        values["sdlogj_l2r"] = sdlogj(ddf, spacing=geo.spacing, units=units, crop=crop, offset=LEARN2REG_SDLOGJ_OFFSET)
    return values, det


def landmark_metrics(fixed: np.ndarray, warped: np.ndarray, moving: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Landmark errors in mm of one pair (points ``(N, ndim)`` in mm, row n of each file the same landmark).

    ``tre_*`` summarise ``||fixed_n - warped_n||``; with ``moving``, ``tre_*_before`` summarise
    ``||fixed_n - moving_n||`` and ``robustness`` is the fraction of landmarks whose error decreased
    (:func:`tfreg.metrics.robustness`, BraTS-Reg). ``tre_std`` is the population std.
    """
    errors = tre(fixed, warped)
    out = {
        "n_landmarks": int(errors.size),
        "tre_mean": float(errors.mean()),
        "tre_median": float(np.median(errors)),
        "tre_std": float(errors.std()),
        "tre_max": float(errors.max()),
    }
    if moving is not None:
        before = tre(fixed, moving)
        out["tre_mean_before"] = float(before.mean())
        out["tre_median_before"] = float(np.median(before))
        out["robustness"] = float(robustness(before, errors))
    return out


def image_metrics(
    fixed: np.ndarray, warped: np.ndarray, suffix: str = "", ssim_window: str = "gaussian"
) -> Dict[str, float]:
    """Intensity similarity of two images ``(*spatial)`` on the same grid, over every voxel.

    Returns:
        ``mi``: histogram MI (32 bins, nats); ``nmi_pct``: ``100 * 2 MI / (H_fixed + H_warped)`` from a
        64-bin histogram (:func:`tfreg.metrics.mutual_information` with ``normalized=True``; macJNet's
        "MI %", whose normalisation the paper does not give: this reading is a choice); ``ssim``: mean
        SSIM with a Gaussian window (``ssim_window`` "gaussian" or "both") and ``ssim_global``: SSIM from
        whole-image statistics (macJNet's eq. 2; "global" or "both"), both with the pair's joint
        intensity range as data range and ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``. Each key gets ``suffix``.
    """
    if ssim_window not in SSIM_WINDOW_OPTIONS:
        raise ValueError(f"ssim_window (--ssim) must be one of {SSIM_WINDOW_OPTIONS}, got {ssim_window!r}")
    out = {"mi" + suffix: mutual_information(fixed, warped, bins=32)}
    if ssim_window in ("gaussian", "both"):
        out["ssim" + suffix] = ssim(fixed, warped)
    out["nmi_pct" + suffix] = 100.0 * mutual_information(fixed, warped, bins=NMI_BINS, normalized=True)
    if ssim_window in ("global", "both"):
        out["ssim_global" + suffix] = ssim(fixed, warped, window="global")
    return out


def _scalar_image(array: np.ndarray, geometry: ImageGeometry, role: str, path: str) -> np.ndarray:
    if array.ndim == geometry.ndim + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != geometry.ndim:
        raise DataError(f"{role} {path} has shape {tuple(array.shape)}; expected a scalar image (one channel)")
    return array


def evaluate_pair(
    spec: PairSpec,
    labels: Optional[Sequence[str]] = None,
    ddf_units: str = "voxel",
    landmarks: Optional[Dict[str, np.ndarray]] = None,
    union_label: Optional[str] = None,
    jacobian_mask: str = "warped",
    jacobian_values: Optional[Dict[str, np.ndarray]] = None,
    ssim_window: str = "gaussian",
    learn2reg: bool = False,
) -> List[Dict[str, object]]:
    """All metrics of one pair: one row dict per label (one row with label ``""`` when it has no labels).

    Assumes :func:`_check_pair` passed (shapes and spacings agree). Empty masks give NaN distance
    metrics and an :class:`~tfreg.metrics.EmptyMaskWarning` naming the pair and label.

    Args:
        spec, labels, ddf_units: as for :func:`evaluate`.
        landmarks: the pair's landmark arrays when already read (:func:`_check_pair`); None reads them.
        union_label: when given (and the pair has labels), a last row with this label for the union of
            the pair's evaluated label masks (fixed, warped and, when every label has one, moving), with
            ``union_of`` naming the joined labels.
        jacobian_mask: "warped" or "fixed": the mask det J is averaged over (:data:`JACOBIAN_MASKS`).
        jacobian_values: a dict to fill with ``{label: 1-D float64 det J values inside the mask}`` (the
            union too); left untouched without a DDF. Values of an empty mask are an empty array.
        ssim_window: which SSIM columns to compute (:data:`SSIM_WINDOW_OPTIONS`, :func:`image_metrics`).
        learn2reg: also compute :data:`LEARN2REG_DDF_METRICS` (with a DDF).
    """
    if jacobian_mask not in JACOBIAN_MASKS:
        raise ValueError(f"jacobian_mask must be one of {JACOBIAN_MASKS}, got {jacobian_mask!r}")
    p = spec.pair
    pair_values: Dict[str, float] = {}
    det = None  # det J map of the DDF, when there is one
    if landmarks is None:
        landmarks = {
            role: read_landmarks(getattr(spec, role))
            for role in ("fixed_landmarks", "warped_landmarks", "moving_landmarks")
            if getattr(spec, role)
        }
    if "fixed_landmarks" in landmarks:
        pair_values.update(
            landmark_metrics(
                landmarks["fixed_landmarks"], landmarks["warped_landmarks"], landmarks.get("moving_landmarks")
            )
        )
    if spec.ddf:
        ddf, geo = read_image(spec.ddf)
        if ddf.ndim == 4 and ddf.shape[2] == 1 and ddf.shape[3] == 2:
            ddf = ddf[:, :, 0, :]  # a 2-D field stored as (x, y, 1, 2)
        ddf_values, det = _ddf_metrics_and_det(ddf, geo, ddf_units, learn2reg)
        pair_values.update(ddf_values)
    if spec.fixed_image:
        fixed_img, fixed_geo = read_image(spec.fixed_image)
        fixed_img = _scalar_image(fixed_img, fixed_geo, "fixed_image", spec.fixed_image)
        warped_img = _scalar_image(*read_image(spec.warped_image), "warped_image", spec.warped_image)
        pair_values.update(image_metrics(fixed_img, warped_img, ssim_window=ssim_window))
        if spec.moving_image:
            moving_img = _on_fixed_grid(p, "moving_image", spec.moving_image, fixed_img.shape, fixed_geo, nearest=False)
            moving_img = _scalar_image(moving_img, fixed_geo, "moving_image", spec.moving_image)
            pair_values.update(image_metrics(fixed_img, moving_img, suffix="_before", ssim_window=ssim_window))

    rows = []
    for label, fixed, warped, moving, spacing, joined in _with_union(_label_masks(spec, labels), union_label):
        row: Dict[str, object] = {"pair": p, "label": label}
        if joined is not None:
            row[UNION_COLUMN] = ";".join(joined)
        values, empty = label_metrics(fixed, warped, spacing)
        row.update(values)
        if det is not None:
            # the warped label marks the fixed-grid voxels mapped into the moving structure: det J there
            # is the structure's local volume change (van Ulsen's per-structure mean and sigma JD); the
            # fixed label is the structure where the fixed image has it. Both lie on the DDF's grid.
            # (a 2-D field stored as (x, y, 1, 2) has lost the unit axis the label keeps: same voxels)
            mask = warped if jacobian_mask == "warped" else fixed
            inside = det.reshape(mask.shape)[mask].astype(np.float64)
            row["jac_det_mean_in_label"] = float(inside.mean()) if inside.size else math.nan
            row["jac_det_std_in_label"] = float(inside.std()) if inside.size else math.nan
            if jacobian_values is not None:
                jacobian_values[label] = inside
        if empty:
            # recall and precision are NaN only when one mask is empty (both empty: 1, the masks agree)
            also = {
                ("fixed",): " (and rvd and recall, whose reference is the fixed label)",
                ("warped",): " (and precision, the share of the warped label inside the fixed one)",
                ("fixed", "warped"): " (and rvd, whose reference is the fixed label)",
            }[tuple(empty)]
            warnings.warn(
                f"pair {p!r}, label {label}: the {' and '.join(empty)} label {'have' if len(empty) > 1 else 'has'} no "
                "foreground voxels; hd, hd95, hd99, assd, msd and centroid_dist are NaN" + also,
                EmptyMaskWarning,
                stacklevel=2,
            )
        if moving is not None:
            before, empty_before = label_metrics(fixed, moving, spacing)
            if "warped" in empty_before and "fixed" not in empty:
                warnings.warn(
                    f"pair {p!r}, label {label}: the moving label has no foreground voxels; the distance metrics "
                    "*_before are NaN",
                    EmptyMaskWarning,
                    stacklevel=2,
                )
            row.update({f"{m}_before": v for m, v in before.items()})
        row.update(pair_values)
        rows.append(row)
    if not rows:
        rows.append({"pair": p, "label": NO_LABEL, **pair_values})
    return rows


def _with_union(masks, union_label: Optional[str]):
    """The label masks of :func:`_label_masks` with a sixth item, None (the labels' members), followed,
    when ``union_label`` is given and there was at least one label, by the union row
    ``(union_label, fixed, warped, moving_or_None, spacing, [joined labels])``.

    The union is the voxel-wise OR of the masks (van Ulsen's pooled "L543" of the vertebrae L3-L5); its
    moving mask exists only when every joined label had one (a partial union would bias ``*_before``).
    """
    union = None
    for label, fixed, warped, moving, spacing in masks:
        yield label, fixed, warped, moving, spacing, None
        if union_label is None:
            continue
        if union is None:
            union = [fixed.copy(), warped.copy(), None if moving is None else moving.copy(), spacing, [label]]
            continue
        union[0] |= fixed
        union[1] |= warped
        union[2] = None if (union[2] is None or moving is None) else union[2] | moving
        union[4].append(label)
    if union is not None:
        yield (union_label, *union)


def _label_masks(spec: PairSpec, labels: Optional[Sequence[str]]):
    """Yield ``(label, fixed_mask, warped_mask, moving_mask_or_None, spacing)`` for every label of a pair."""
    p = spec.pair
    for lf in spec.label_files:
        if labels is not None and lf.label not in labels:
            continue
        fixed, geo = read_image(lf.fixed)
        warped, _ = read_image(lf.warped)
        moving = None
        if lf.moving:
            role = f"label {lf.label} moving_label"
            moving = binarise(_on_fixed_grid(p, role, lf.moving, fixed.shape, geo, nearest=True))
        yield lf.label, binarise(fixed), binarise(warped), moving, geo.spacing
    if spec.fixed_label:
        fixed_arr, geo = read_image(spec.fixed_label)
        fixed = _LabelMap(fixed_arr, geo.ndim, "fixed_label", spec.fixed_label)
        warped = _LabelMap(read_image(spec.warped_label)[0], geo.ndim, "warped_label", spec.warped_label)
        if fixed.kind == "onehot" or warped.kind == "onehot":
            if fixed.kind != warped.kind:
                raise DataError(
                    f"pair {p!r}: fixed_label {spec.fixed_label} and warped_label {spec.warped_label} must both be "
                    "one-hot (*spatial, n) files or both label maps"
                )
        moving = None
        if spec.moving_label:
            arr = _on_fixed_grid(p, "moving_label", spec.moving_label, fixed_arr.shape, geo, nearest=True)
            moving = _LabelMap(arr, geo.ndim, "moving_label", spec.moving_label)
        names = [str(v) for v in labels] if labels is not None else _sort_labels(fixed.labels() + warped.labels())
        for label in names:
            yield label, fixed.mask(label), warped.mask(label), (moving.mask(label) if moving else None), geo.spacing


# ---------------------------------------------------------------------------------------------- summary
def summarise(rows: Sequence[Dict[str, object]], columns: Sequence[str]) -> List[Dict[str, object]]:
    """Summary statistics of the per-pair, per-label rows.

    Label metrics (and their ``_before`` twins) get one row per label and one ``all`` row pooling every
    pair and label, except the union rows (``union_of`` set), which would count their labels twice;
    per-pair metrics get only an ``all`` row over one value per pair (they repeat on the label rows).
    NaN values are left out of the statistics and counted in ``n_nan``; ``std`` is the sample standard
    deviation (ddof 1, NaN for fewer than 2 values), ``q1``/``q3`` the 25th/75th
    percentiles (linear interpolation) and ``iqr = q3 - q1``.
    """
    out = []
    metrics = [c for c in columns if c not in ("pair", "label", UNION_COLUMN)]
    labelled = [r for r in rows if r["label"] != NO_LABEL]
    label_names = _sort_labels(str(r["label"]) for r in labelled)
    for metric in metrics:
        if metric in PAIR_METRICS:
            first = {}
            for r in rows:
                first.setdefault(r["pair"], r.get(metric))
            out.append(_stats(metric, "all", list(first.values())))
            continue
        for label in label_names:
            out.append(_stats(metric, label, [r.get(metric) for r in labelled if r["label"] == label]))
        out.append(_stats(metric, POOLED_LABEL, [r.get(metric) for r in labelled if not r.get(UNION_COLUMN)]))
    return out


def _stats(metric: str, label: str, values: Sequence[object]) -> Dict[str, object]:
    vals = np.asarray([float(v) for v in values if v is not None and v != ""], dtype=np.float64)
    finite = vals[~np.isnan(vals)]
    n = int(finite.size)
    row: Dict[str, object] = {"metric": metric, "label": label, "n": n, "n_nan": int(vals.size - n)}
    if n == 0:
        row.update({k: math.nan for k in ("mean", "std", "median", "q1", "q3", "iqr")})
        return row
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    row.update(
        {
            "mean": float(finite.mean()),
            "std": float(finite.std(ddof=1)) if n > 1 else math.nan,
            "median": float(median),
            "q1": float(q1),
            "q3": float(q3),
            "iqr": float(q3 - q1),
        }
    )
    return row


# ---------------------------------------------------------------------------------------------- Learn2Reg
def learn2reg_rows(rows: Sequence[Dict[str, object]]) -> List[Dict[str, object]]:
    """Learn2Reg's task-3 (OASIS) numbers from the per-pair, per-label rows of :func:`evaluate`.

    One row per pair, in the order of ``rows`` (columns :data:`LEARN2REG_COLUMNS`):

    - ``n_labels``: the labels counted. Learn2Reg's script scores a label only when it is present in both the
      fixed and the moving label map (otherwise NaN, left out by its ``nanmean``). Here a label counts when
      its fixed mask is not empty (``rvd`` is not NaN) and, when the moving label was evaluated, its moving mask
      is not empty either (``rvd_before``, ``|M| / |F| - 1``, is not -1). Union rows (``union_of``) never count;
      ``labels`` in :func:`evaluate` chooses the labels evaluated.
    - ``dice``, ``hd95``: the mean over the counted labels of ``dice`` and ``hd95`` (mm).
    - ``sdlogj``, ``sdlogj_l2r``: the pair's per-pair columns (std of log det J; Learn2Reg's std of
      log(det J + 3)); NaN when the row lacks them (``sdlogj_l2r`` is computed with ``learn2reg`` only).

    NaN: ``dice`` and ``hd95`` are NaN for a pair without a counted label; ``hd95`` is NaN when a counted label's
    warped mask is empty (its ``hd95`` is NaN; Learn2Reg's script gives inf: no surface to measure to). Both
    cases warn naming the pair (and labels).

    Then one row per :data:`LEARN2REG_STATISTICS` (its name in ``pair``), over the pairs whose value is finite,
    per column: ``mean``, ``std`` (sample, ddof 1; NaN below 2 values), ``q30`` (30th percentile, linear
    interpolation) and ``n`` (how many pairs entered). ``n_labels`` is left empty on these rows.
    """
    by_pair: Dict[str, List[Dict[str, object]]] = {}
    for row in rows:
        by_pair.setdefault(str(row["pair"]), []).append(row)
    out: List[Dict[str, object]] = []
    for pair, pair_rows in by_pair.items():
        counted = [r for r in pair_rows if r["label"] != NO_LABEL and not r.get(UNION_COLUMN) and _l2r_counts(r)]
        values: Dict[str, object] = {"pair": pair, "n_labels": len(counted)}
        if counted:
            values["dice"] = float(np.mean([float(r["dice"]) for r in counted]))
            lost = [str(r["label"]) for r in counted if math.isnan(float(r["hd95"]))]
            values["hd95"] = math.nan if lost else float(np.mean([float(r["hd95"]) for r in counted]))
            if lost:
                warnings.warn(
                    f"pair {pair!r}: the warped label of label(s) {', '.join(lost)} is empty (present in the fixed "
                    "and moving labels), so its HD95 is undefined; the pair's Learn2Reg hd95 is NaN (Learn2Reg's "
                    "script: inf) and left out of the statistics rows",
                    UserWarning,
                    stacklevel=2,
                )
        else:
            values["dice"] = values["hd95"] = math.nan
            warnings.warn(
                f"pair {pair!r}: no evaluated label is present in the fixed (and moving) label, so its Learn2Reg "
                "dice and hd95 are NaN",
                UserWarning,
                stacklevel=2,
            )
        for metric in ("sdlogj", "sdlogj_l2r"):
            value = pair_rows[0].get(metric)
            values[metric] = math.nan if value is None else float(value)
        out.append(values)
    metrics = LEARN2REG_COLUMNS[2:]
    finite = {m: np.array([v[m] for v in out if not math.isnan(v[m])], dtype=np.float64) for m in metrics}
    statistics = {
        "mean": lambda x: float(x.mean()) if x.size else math.nan,
        "std": lambda x: float(x.std(ddof=1)) if x.size > 1 else math.nan,
        "q30": lambda x: float(np.percentile(x, LEARN2REG_PERCENTILE)) if x.size else math.nan,
        "n": lambda x: int(x.size),
    }
    for name in LEARN2REG_STATISTICS:
        out.append({"pair": name, **{m: statistics[name](finite[m]) for m in metrics}})
    return out


def _l2r_counts(row: Dict[str, object]) -> bool:
    """Whether a label row counts for Learn2Reg: fixed mask not empty (``rvd`` defined) and, with a moving
    label, moving mask not empty (``rvd_before = |M| / |F| - 1`` is exactly -1 only for ``|M| = 0``)."""
    if math.isnan(float(row["rvd"])):
        return False
    before = row.get("rvd_before")
    return before is None or float(before) != -1.0


def _check_learn2reg_pairs(pairs: Sequence[PairSpec]) -> None:
    """``learn2reg`` needs labels and a DDF in every pair, and no pair named like a statistics row."""
    clash = [spec.pair for spec in pairs if spec.pair in LEARN2REG_STATISTICS]
    if clash:
        raise ValueError(
            f"learn2reg (--learn2reg): pair {clash[0]!r} has the name of a statistics row of the Learn2Reg CSV "
            f"({', '.join(LEARN2REG_STATISTICS)}); rename the pair"
        )
    for what, lacking in (
        ("a DDF (SDlogJ is one of Learn2Reg's metrics)", [spec.pair for spec in pairs if not spec.ddf]),
        ("labels (Dice and HD95)", [spec.pair for spec in pairs if not (spec.label_files or spec.fixed_label)]),
    ):
        if lacking:
            shown = ", ".join(repr(p) for p in lacking[:5]) + (", ..." if len(lacking) > 5 else "")
            raise ValueError(
                f"learn2reg (--learn2reg) needs {what} in every pair; {len(lacking)} pair(s) have none: {shown}"
            )


def write_csv(path: str, columns: Sequence[str], rows: Iterable[Dict[str, object]]) -> None:
    """Write rows with the csv module: floats at full precision (``repr``), NaN as ``nan``, missing as empty."""
    with atomic_output(path) as scratch, open(scratch, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else repr(float(value))
    return str(value)


def default_summary_path(output: str) -> str:
    """``results.csv`` -> ``results_summary.csv`` (the suffix is appended when there is no ``.csv``)."""
    return _output_stem(output) + "_summary.csv"


def default_learn2reg_path(output: str) -> str:
    """``results.csv`` -> ``results_learn2reg.csv`` (the suffix is appended when there is no ``.csv``)."""
    return _output_stem(output) + "_learn2reg.csv"


def _output_stem(output: str) -> str:
    return output[:-4] if output.lower().endswith(".csv") else output


# ---------------------------------------------------------------------------------------------- driver
@dataclass
class EvaluationResult:
    """What :func:`evaluate` computed (and wrote).

    Attributes:
        columns: column names of ``rows`` in order.
        rows: one dict per pair and label (``None``: not computed for that pair; NaN: undefined).
        summary: the summary rows, columns :data:`SUMMARY_COLUMNS`.
        output, summary_path: the files written (None when not written).
        jacobian_values: ``{label: {pair: 1-D float64 det J values inside the label}}`` (labels in row
            order, the union last), filled when a det J figure or ``collect_jacobian`` was asked for and
            the pair has a DDF; empty otherwise.
        jacobian_figure: the det J figure written (None when not asked for).
        learn2reg: the Learn2Reg rows (:func:`learn2reg_rows`) when asked for, else empty.
        learn2reg_path: the Learn2Reg CSV written (None when not written).
    """

    columns: List[str]
    rows: List[Dict[str, object]]
    summary: List[Dict[str, object]]
    output: Optional[str] = None
    summary_path: Optional[str] = None
    jacobian_values: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    jacobian_figure: Optional[str] = None
    learn2reg: List[Dict[str, object]] = field(default_factory=list)
    learn2reg_path: Optional[str] = None


def evaluate(
    pairs: Sequence[PairSpec],
    output: Optional[str] = None,
    summary: Optional[str] = None,
    labels: Optional[Sequence] = None,
    ddf_units: str = "voxel",
    overwrite: bool = False,
    progress: Optional[bool] = False,
    pairs_file: Optional[str] = None,
    union_label: Optional[str] = None,
    jacobian_mask: str = "warped",
    jacobian_figure: Optional[str] = None,
    collect_jacobian: bool = False,
    ssim_window: str = "gaussian",
    learn2reg: bool = False,
) -> EvaluationResult:
    """Evaluate registered pairs and write the per-pair, per-label CSV and its summary.

    Every pair is checked first (files exist, fixed and warped grids agree, landmark counts match), so
    bad input fails before any long computation.

    Args:
        pairs: the pairs (see :class:`PairSpec`, :func:`pairs_from_prediction_dir`, :func:`pairs_from_csv`).
        output: per-pair, per-label CSV to write; None writes nothing (the result is still returned).
        summary: summary CSV; None with an ``output`` writes ``<output stem>_summary.csv``; pass ``""``
            to skip it.
        labels: label values (label maps) or ``k`` of ``label_<k>`` to evaluate; None: every non-zero
            label found in the fixed or warped map.
        ddf_units: "voxel" (tfreg/DeepReg DDFs) or "physical" (mm along world axes), see :func:`ddf_metrics`.
        overwrite: replace existing output files instead of refusing. An output that is one of the
            inputs (a pair's file, ``pairs_file``) is refused even then.
        progress: True draws a progress bar on stderr when it is a terminal; False never.
        pairs_file: the CSV the pairs were read from (:func:`pairs_from_csv`), protected as an input.
        union_label: name of an extra row per pair (with labels) for the union of the pair's evaluated
            labels, e.g. ``"L543"`` for van Ulsen's pooled vertebrae: every label metric, the ``_before``
            metrics and det J inside the union (see :func:`evaluate_pair`). The name must differ from
            every label (a number, when a pair uses label maps, whose labels are numbers) and from
            ``all``. The summary and :func:`tfreg.evaluation.compare.compare` treat it as a label, but
            leave it out of their pooled ``all`` rows.
        jacobian_mask: "warped" (default) or "fixed": the label mask on the fixed grid that
            ``jac_det_*_in_label`` and the figure average det J over (:data:`JACOBIAN_MASKS`).
        jacobian_figure: image file (``.png``, ``.pdf`` or ``.svg``, in an existing folder) to write the
            det J distribution figure to: per label (and union), a violin of the det J values inside the
            label pooled over the pairs with a DDF, each pair's median marked, and a histogram with bin
            width 0.01 (:func:`tfreg.vis.jacobian_distribution.plot_jacobian_distribution`).
        collect_jacobian: keep the det J values inside the labels in the result's ``jacobian_values``
            without drawing (implied by ``jacobian_figure``).
        ssim_window: the SSIM of the images (:data:`SSIM_WINDOW_OPTIONS`): "gaussian" (default, column
            ``ssim``: mean SSIM over Gaussian windows), "global" (column ``ssim_global``: one SSIM from
            whole-image statistics, macJNet's eq. 2) or "both". The columns are named for the window, so
            evaluations made with different choices never mix in one column.
        learn2reg: also compute Learn2Reg's task-3 (OASIS) numbers: per pair the mean Dice and mean HD95 over
            the labels present in the fixed and moving labels, SDlogJ (``sdlogj``) and Learn2Reg's SDlogJ of
            log(det J + 3) (``sdlogj_l2r``, also added to the per-pair CSV), then their mean, std, 30th
            percentile and count over the pairs (:func:`learn2reg_rows`); written with an ``output`` to
            ``<output stem>_learn2reg.csv``. Every pair must have labels and a DDF (refused before any work
            otherwise), and no pair may be named ``mean``, ``std``, ``q30`` or ``n``.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        FileExistsError: an output exists and ``overwrite`` is False, or is an input. DataNotFoundError: a missing input
        file (named). DataError / ValueError: inconsistent input, naming the pair, files and values.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("evaluate: no pairs given")
    if ddf_units not in DDF_UNITS:
        raise ValueError(f"evaluate: ddf_units must be one of {DDF_UNITS}, got {ddf_units!r}")
    if jacobian_mask not in JACOBIAN_MASKS:
        raise ValueError(f"evaluate: jacobian_mask must be one of {JACOBIAN_MASKS}, got {jacobian_mask!r}")
    if ssim_window not in SSIM_WINDOW_OPTIONS:
        raise ValueError(f"evaluate: ssim_window (--ssim) must be one of {SSIM_WINDOW_OPTIONS}, got {ssim_window!r}")
    if output and summary is None:
        summary = default_summary_path(output)
    read = {f"pair {spec.pair!r} {role}": path for spec in pairs for role, path in spec.files()}
    read["--pairs"] = pairs_file
    seen = set()
    for spec in pairs:
        spec.validate()
        if spec.pair in seen:
            raise ValueError(f"evaluate: pair name {spec.pair!r} is used twice")
        seen.add(spec.pair)
    label_names = None if labels is None else [str(v) for v in labels]
    if union_label is not None:
        _check_union_label(union_label, pairs, label_names)
    learn2reg_path = None
    if learn2reg:
        _check_learn2reg_pairs(pairs)
        learn2reg_path = default_learn2reg_path(output) if output else None
    _check_outputs(
        [output, summary, jacobian_figure, learn2reg_path],
        overwrite,
        read,
        roles=["output CSV", "summary CSV", "jacobian_figure (--jacobian-figure)", "Learn2Reg CSV (--learn2reg)"],
    )
    if jacobian_figure:
        _check_figure_path(jacobian_figure, pairs)
    landmarks = [_check_pair(spec) for spec in pairs]

    collect = bool(jacobian_figure) or collect_jacobian
    jacobian: Dict[str, Dict[str, np.ndarray]] = {}
    rows: List[Dict[str, object]] = []
    with Progress(len(pairs), "tfreg_evaluate", enabled=None if progress else False) as bar:
        for spec, marks in zip(pairs, landmarks):
            inside: Optional[Dict[str, np.ndarray]] = {} if collect else None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rows.extend(
                    evaluate_pair(
                        spec,
                        label_names,
                        ddf_units,
                        marks,
                        union_label,
                        jacobian_mask,
                        inside,
                        ssim_window=ssim_window,
                        learn2reg=learn2reg,
                    )
                )
            for label, values in (inside or {}).items():
                jacobian.setdefault(label, {})[spec.pair] = values
            if caught:
                bar.clear()  # keep warnings off the bar's line
                for w in caught:
                    message = str(w.message)
                    if not message.startswith("pair "):
                        message = f"pair {spec.pair!r}: {message}"
                    warnings.warn(message, w.category, stacklevel=2)
            bar.update()

    present = {key for row in rows for key in row}
    columns = [c for c in ALL_COLUMNS if c in present]
    summary_rows = summarise(rows, columns)
    if output:
        write_csv(output, columns, rows)
    if summary:
        write_csv(summary, SUMMARY_COLUMNS, summary_rows)
    l2r_rows = learn2reg_rows(rows) if learn2reg else []
    if learn2reg_path:
        write_csv(learn2reg_path, LEARN2REG_COLUMNS, l2r_rows)
    # the union was collected last in each pair; a label some pair lacks may have come in late: reorder
    order = _sort_labels(label for label in jacobian if label != union_label)
    jacobian = {label: jacobian[label] for label in order + ([union_label] if union_label in jacobian else [])}
    if jacobian_figure and not _write_jacobian_figure(jacobian_figure, jacobian, jacobian_mask, len(pairs)):
        jacobian_figure = None
    return EvaluationResult(
        columns,
        rows,
        summary_rows,
        output or None,
        summary or None,
        jacobian,
        jacobian_figure or None,
        l2r_rows,
        learn2reg_path,
    )


def _check_union_label(name: str, pairs: Sequence[PairSpec], labels: Optional[Sequence[str]]) -> None:
    """Refuse a union label name that an evaluated label (or the summary's ``all``) already uses.

    Labels given as files (``label_<k>``) have known names; label maps name their labels by value (one-hot
    files by channel, binary masks ``1``) only once read, so with label maps any integer is refused.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(
            f"union_label (--union-label): expected a non-empty name without surrounding spaces, got {name!r}"
        )
    if name == POOLED_LABEL:
        raise ValueError(f"union_label (--union-label) {name!r} is the summary's pooled row; choose another name")
    if not any(spec.label_files or spec.fixed_label for spec in pairs):
        raise ValueError(
            f"union_label (--union-label) {name!r}: no pair has labels (label_<k> folders, fixed_label and "
            "warped_label) to join"
        )
    wanted = None if labels is None else set(labels)
    for spec in pairs:
        for lf in spec.label_files:
            if lf.label == name and (wanted is None or name in wanted):
                raise ValueError(
                    f"union_label (--union-label) {name!r} is already the name of a label of pair {spec.pair!r} "
                    f"({lf.fixed}); choose a name no label has, e.g. 'union'"
                )
    if wanted is not None and name in wanted:
        raise ValueError(f"union_label (--union-label) {name!r} is one of the labels to evaluate {sorted(wanted)}")
    maps = [spec.pair for spec in pairs if spec.fixed_label]
    if maps and re.fullmatch(r"[+-]?\d+", name):
        raise ValueError(
            f"union_label (--union-label) {name!r} is a number, and pair {maps[0]!r} gives its labels as a label "
            "map, whose labels are named by their values (or channels); choose a name that is not a number"
        )


def _check_figure_path(path: str, pairs: Sequence[PairSpec]) -> None:
    """The det J figure needs a known image suffix, an existing folder, and a pair with a DDF and labels."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in FIGURE_SUFFIXES:
        raise ValueError(
            f"jacobian_figure (--jacobian-figure) {path}: expected a file name ending in "
            f"{', '.join(FIGURE_SUFFIXES)}, got {suffix or 'no suffix'!r}"
        )
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(str(path))))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"jacobian_figure (--jacobian-figure) {path}: the folder {folder} does not exist")
    if not any(spec.ddf and (spec.label_files or spec.fixed_label) for spec in pairs):
        raise ValueError(
            f"jacobian_figure (--jacobian-figure) {path}: no pair has both a DDF and labels; the figure shows "
            "det J of the DDF inside the labels"
        )


def _write_jacobian_figure(path: str, values: Dict[str, Dict[str, np.ndarray]], mask: str, n_pairs: int) -> bool:
    """Draw the det J distribution figure (matplotlib is imported only here) and write it atomically.

    Returns False, after a warning, when no pair with a DDF had a label row (``labels`` chose none).
    """
    from tfreg.vis.jacobian_distribution import plot_jacobian_distribution

    if not values:
        warnings.warn(
            f"jacobian_figure {path}: no label was evaluated on a pair with a DDF; no figure written",
            UserWarning,
            stacklevel=3,
        )
        return False
    if not any(v.size for per_pair in values.values() for v in per_pair.values()):
        warnings.warn(
            f"jacobian_figure {path}: every label mask is empty where there is a DDF; the figure is empty",
            UserWarning,
            stacklevel=3,
        )
    with_ddf = len({pair for per_pair in values.values() for pair in per_pair})
    where = f"{mask} label" if mask == "fixed" else "warped moving label"
    title = f"det J inside each {where} on the fixed grid, {with_ddf} of {n_pairs} pair(s) with a DDF"
    with atomic_output(path) as scratch:
        plot_jacobian_distribution(values, scratch, mask_name=where, title=title)
    return True


__all__ = [
    "ALL_COLUMNS",
    "DDF_METRICS",
    "FIGURE_SUFFIXES",
    "JACOBIAN_MASKS",
    "LEARN2REG_COLUMNS",
    "LEARN2REG_DDF_METRICS",
    "LEARN2REG_PERCENTILE",
    "LEARN2REG_SDLOGJ_OFFSET",
    "LEARN2REG_STATISTICS",
    "POOLED_LABEL",
    "UNION_COLUMN",
    "EvaluationResult",
    "IMAGE_METRICS",
    "LABEL_DDF_METRICS",
    "LABEL_METRICS",
    "LANDMARK_METRICS",
    "LabelFiles",
    "NMI_BINS",
    "PAIR_CSV_COLUMNS",
    "PAIR_METRICS",
    "PairSpec",
    "SSIM_WINDOW_OPTIONS",
    "SUMMARY_COLUMNS",
    "ddf_metrics",
    "default_learn2reg_path",
    "default_summary_path",
    "evaluate",
    "evaluate_pair",
    "image_metrics",
    "label_metrics",
    "landmark_metrics",
    "learn2reg_rows",
    "natural_key",
    "pairs_from_csv",
    "pairs_from_prediction_dir",
    "read_landmarks",
    "summarise",
    "write_csv",
]
