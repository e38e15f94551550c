"""Landmark files and their coordinates: physical (mm) -> file voxel index -> model voxel index -> through a DDF.

A landmark file (``<id>.csv`` or ``<id>.txt``) lists points, one per row (comma-, semicolon- or
whitespace-separated), in one of :data:`LANDMARK_UNITS`:

- ``physical`` (default): mm in the image's physical frame, ITK's LPS frame (that of
  ``SimpleITK.Image.TransformIndexToPhysicalPoint``), as BraTS-Reg's ``Landmark,X,Y,Z`` files do;
- ``voxel``: 0-based continuous voxel indices along the image array's axes (i, j(, k)), i.e. ITK's
  continuous index (``TransformPhysicalPointToContinuousIndex``). DeepReg has no landmark format of its own.

The ``Landmark`` column, when present, numbers the points: the same number in a moving and a fixed file
marks corresponding points (BraTS-Reg); without it rows correspond by order.

Coordinates, for an image with :class:`~tfreg.data.geometry.ImageGeometry` ``g`` (all ``(N, ndim)``,
columns in array-axis order i, j(, k)):

- physical ``p`` (mm) and file voxel index ``v`` (0-based, continuous): ``p = origin + D diag(spacing) v``
  (:func:`physical_to_index` inverts it; ``D`` need not be orthonormal);
- model voxel index ``o`` of the grid the image is resized to (``n_in`` -> ``n_out`` voxels per axis,
  half-pixel centres as :func:`tfreg.ops.resize.resize` and :meth:`ImageGeometry.resized`):
  ``o = (v + 0.5) n_out / n_in - 0.5`` (:func:`index_to_model`), so ``o`` and ``v`` are the same
  physical point on the resized and the file grid;
- a fixed point ``f`` (model voxels of the fixed grid) moved through a DDF (moving-grid voxels, defined on
  the fixed grid): ``f + ddf(f)`` in moving model voxels, ``ddf`` interpolated linearly
  (:func:`move_through_ddf`).

NumPy and SciPy only. :func:`read_landmarks` is re-exported by :mod:`tfreg.evaluation.inputs` (``tfreg_evaluate``).
"""

from __future__ import annotations

import os
import re
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from tfreg.checks import LANDMARK_UNITS
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry

#: Name of the column that numbers landmarks (any case), as in BraTS-Reg's ``Landmark,X,Y,Z``.
NUMBER_COLUMN = "landmark"
#: Suffixes of landmark files, in the order they are looked for.
LANDMARK_SUFFIXES: Tuple[str, ...] = (".csv", ".txt")
#: Landmark files ``tfreg_predict`` writes in each pair folder (mm, the moving image's frame; see
#: docs/landmarks.md) and ``tfreg_evaluate --pred-dir`` reads: the reference (the moving landmarks), the
#: fixed landmarks moved through the DDF, and the fixed landmarks unmoved (zero DDF, the errors "before").
PREDICTED_LANDMARK_FILES = {
    "moving": "moving_landmarks.csv",
    "pred_moving": "pred_moving_landmarks.csv",
    "fixed": "fixed_landmarks.csv",
}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_numbered_landmarks(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(numbers, points)`` of a landmark file: int64 ``(N,)`` and float64 ``(N, ndim)`` in the file's units.

    Accepted forms: rows of 2 or 3 numbers (comma-, semicolon- or whitespace-separated); optionally a
    header line, and when the header names columns ``x``, ``y`` (and ``z``) (any case, as in BraTS-Reg's
    ``Landmark,X,Y,Z``) only those columns are read; blank lines and lines starting with ``#`` are
    skipped. ``numbers`` come from a ``Landmark`` column when the header has one (integers), otherwise
    they are the row numbers 1..N (points then correspond by order).

    Raises:
        DataNotFoundError: missing file; DataError: naming the file and line for a non-numeric cell, a
        landmark number that is not an integer or repeats, ragged rows, a dimension other than 2 or 3,
        non-finite coordinates, or no points.
    """
    if not os.path.isfile(path):
        raise DataNotFoundError(f"landmark file {path} does not exist")
    rows: List[Tuple[int, List[str]]] = []
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheet exports start with a BOM
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            cells = re.split(r"\s*[,;]\s*", text) if re.search(r"[,;]", text) else text.split()
            rows.append((number, [c.strip().strip('"') for c in cells]))
    if not rows:
        raise DataError(f"landmark file {path} holds no points")
    columns = None  # indices of the coordinate columns; None: all
    number_column: Optional[int] = None
    if not all(_is_number(c) for c in rows[0][1]):
        header = [c.lower() for c in rows[0][1]]
        named = [header.index(a) for a in ("x", "y", "z") if a in header]
        if len(named) >= 2:
            columns = named
            if NUMBER_COLUMN in header:
                number_column = header.index(NUMBER_COLUMN)
        rows = rows[1:]
        if not rows:
            raise DataError(f"landmark file {path} has a header but no points")
    points, numbers = [], []
    width = None
    for line, cells in rows:
        label = None
        if columns is not None:
            wanted = columns + ([number_column] if number_column is not None else [])
            if max(wanted) >= len(cells):
                raise DataError(f"landmark file {path}, line {line}: too few cells for the x, y(, z) columns")
            if number_column is not None:
                label = cells[number_column]
            cells = [cells[i] for i in columns]
        if width is None:
            width = len(cells)
        if len(cells) != width:
            raise DataError(
                f"landmark file {path}, line {line}: {len(cells)} values, expected {width} like the first row"
            )
        try:
            points.append([float(c) for c in cells])
        except ValueError:
            raise DataError(f"landmark file {path}, line {line}: non-numeric value in {cells}") from None
        if label is None:
            numbers.append(len(numbers) + 1)
            continue
        try:
            value = float(label)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or value != int(value):
            raise DataError(f"landmark file {path}, line {line}: landmark number {label!r} is not an integer")
        numbers.append(int(value))
    arr = np.asarray(points, dtype=np.float64)
    if arr.shape[1] not in (2, 3):
        raise DataError(f"landmark file {path}: points must have 2 or 3 coordinates, found {arr.shape[1]} per row")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"landmark file {path}: non-finite coordinates")
    ids = np.asarray(numbers, dtype=np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise DataError(f"landmark file {path}: landmark number(s) {unique[counts > 1].tolist()} appear more than once")
    return ids, arr


def read_landmarks(path: str) -> np.ndarray:
    """Landmarks ``(N, ndim)`` (the file's units, mm for ``tfreg_evaluate``) from a CSV or text file, one per row.

    The points of :func:`read_numbered_landmarks` (same forms and errors), in file order; corresponding
    files must then list the same landmarks in the same order.
    """
    return read_numbered_landmarks(path)[1]


def write_landmarks(path: str, points: np.ndarray) -> None:
    """Write points ``(N, ndim)`` as BraTS-Reg's ``Landmark,X,Y,Z`` (2-D: ``Landmark,X,Y``), numbered 1..N.

    :func:`read_numbered_landmarks` reads the file back exactly (coordinates written with ``repr``).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"points must be (N, 2) or (N, 3), got shape {points.shape}")
    header = ["Landmark", "X", "Y", "Z"][: 1 + points.shape[1]]
    with open(path, "w", newline="") as handle:
        handle.write(",".join(header) + "\n")
        for number, point in enumerate(points, start=1):
            handle.write(",".join([str(number)] + [repr(float(c)) for c in point]) + "\n")


def landmark_path(data_id: Any, folder: str) -> str:
    """The landmark file of an image's data ID: ``<split dir>/<folder>/<id>.csv`` or ``<id>.txt``.

    ``data_id`` is a file loader's ID ``(split dir, name[, ...])`` (the image's path inside its folder,
    without suffix, for NIfTI and other SimpleITK formats; the dataset key for HDF5), so
    ``moving_images/case1.nii.gz`` has its landmarks in ``moving_landmarks/case1.csv`` (or ``.txt``).

    Returns:
        the file that exists; the ``.csv`` path when neither does (for the caller's message).

    Raises:
        DataError: both ``<id>.csv`` and ``<id>.txt`` exist (which one holds the points is ambiguous).
    """
    if not isinstance(data_id, tuple) or len(data_id) < 2:
        raise ValueError(f"expected a data ID (split dir, name, ...), got {data_id!r}")
    stem = os.path.join(str(data_id[0]), folder, *(str(part) for part in data_id[1:]))
    found = [stem + suffix for suffix in LANDMARK_SUFFIXES if os.path.isfile(stem + suffix)]
    if len(found) > 1:
        raise DataError(f"landmark files {' and '.join(found)} both exist: keep one landmark file per image")
    return found[0] if found else stem + LANDMARK_SUFFIXES[0]


def check_landmark_units(units: Any) -> str:
    """``units`` if it is one of :data:`LANDMARK_UNITS`, else ValueError naming ``landmark_units``."""
    if units not in LANDMARK_UNITS:
        raise ValueError(f"landmark_units must be one of {list(LANDMARK_UNITS)}, got {units!r}")
    return units


def file_points_to_index(points: np.ndarray, units: str, geometry: ImageGeometry) -> np.ndarray:
    """Continuous file voxel indices ``(N, ndim)`` of a landmark file's points in ``units``.

    ``physical``: :func:`physical_to_index` with the image's geometry; ``voxel``: the points themselves.
    """
    if check_landmark_units(units) == "voxel":
        return np.asarray(points, dtype=np.float64)
    return physical_to_index(points, geometry)


def pair_by_number(
    moving: Tuple[np.ndarray, np.ndarray], fixed: Tuple[np.ndarray, np.ndarray], moving_source: str, fixed_source: str
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The landmarks present in both files, matched by number, in increasing number order.

    Args:
        moving, fixed: ``(numbers (N,), points (N, ndim))`` as :func:`read_numbered_landmarks` returns.
        moving_source, fixed_source: the files, for messages.

    Returns:
        ``(numbers (K,), moving_points (K, ndim), fixed_points (K, ndim))``.

    Raises:
        DataError: naming both files when their points have different dimensions or no number is common.
    """
    (m_numbers, m_points), (f_numbers, f_points) = moving, fixed
    if m_points.shape[1] != f_points.shape[1]:
        raise DataError(
            f"landmark files {moving_source} ({m_points.shape[1]} coordinates per point) and {fixed_source} "
            f"({f_points.shape[1]}) do not have the same dimension"
        )
    common, m_rows, f_rows = np.intersect1d(m_numbers, f_numbers, assume_unique=True, return_indices=True)
    if common.size == 0:
        raise DataError(
            f"landmark files {moving_source} (numbers {m_numbers.tolist()}) and {fixed_source} (numbers "
            f"{f_numbers.tolist()}) have no landmark number in common"
        )
    return common, m_points[m_rows], f_points[f_rows]


def physical_to_index(points: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Continuous 0-based voxel indices ``(N, ndim)`` of physical points ``(N, ndim)`` (mm).

    The inverse of ``p = origin + direction @ diag(spacing) @ v`` (SimpleITK's
    ``TransformPhysicalPointToContinuousIndex``).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != geometry.ndim:
        raise ValueError(f"points must be (N, {geometry.ndim}) for a {geometry.ndim}-D geometry, got {points.shape}")
    to_physical = geometry.direction @ np.diag(geometry.spacing)
    return np.linalg.solve(to_physical, (points - np.asarray(geometry.origin)).T).T


def index_to_physical(index: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Physical points ``(N, ndim)`` (mm) of continuous voxel indices ``(N, ndim)``."""
    index = np.asarray(index, dtype=np.float64)
    if index.ndim != 2 or index.shape[1] != geometry.ndim:
        raise ValueError(f"index must be (N, {geometry.ndim}) for a {geometry.ndim}-D geometry, got {index.shape}")
    return index @ (geometry.direction @ np.diag(geometry.spacing)).T + np.asarray(geometry.origin)


def index_to_model(index: np.ndarray, file_shape: Sequence[int], model_shape: Sequence[int]) -> np.ndarray:
    """File voxel indices ``(N, ndim)`` -> indices on the grid resized to ``model_shape`` (half-pixel centres)."""
    scale = np.asarray(model_shape, dtype=np.float64) / np.asarray(file_shape, dtype=np.float64)
    return (np.asarray(index, dtype=np.float64) + 0.5) * scale - 0.5


def outside_grid(index: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Bool ``(N,)``: the voxel index lies outside the image's extent, ``[-0.5, n - 0.5]`` on some axis."""
    index = np.asarray(index, dtype=np.float64)
    return np.any((index < -0.5) | (index > np.asarray(shape, dtype=np.float64) - 0.5), axis=1)


def field_at(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A vector field ``(*S, C)`` sampled at points ``(N, ndim)`` (voxels of its grid): ``(N, C)`` float64.

    Linear interpolation; beyond the grid the edge values are repeated (``mode="nearest"``), so a point
    a fraction of a voxel outside the outermost voxel centres still gets a displacement.
    """
    field = np.asarray(field, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    ndim = field.ndim - 1
    if points.ndim != 2 or points.shape[1] != ndim:
        raise ValueError(f"points must be (N, {ndim}) for a field of shape {field.shape}, got {points.shape}")
    return np.stack(
        [ndimage.map_coordinates(field[..., c], points.T, order=1, mode="nearest") for c in range(field.shape[-1])],
        axis=-1,
    )


def move_through_ddf(points: np.ndarray, ddf: np.ndarray) -> np.ndarray:
    """Fixed-grid points ``f`` ``(N, ndim)`` moved through a DDF: ``f + ddf(f)`` ``(N, ndim)``.

    The DDF ``(*f, ndim)`` lives on the fixed grid and displaces fixed voxel ``x`` to the moving point
    ``x + ddf(x)`` (moving-grid voxels), so a fixed landmark is predicted at ``f + ddf(f)`` in the moving
    image; ``ddf(f)`` is interpolated linearly (:func:`field_at`), which reproduces any field that is
    linear in each coordinate (affine, or with products such as ``x y``) exactly.
    """
    ddf = np.asarray(ddf)
    if ddf.ndim < 2 or ddf.shape[-1] != ddf.ndim - 1:
        raise ValueError(f"ddf must be (*spatial, ndim) with ndim = number of spatial axes, got {ddf.shape}")
    return np.asarray(points, dtype=np.float64) + field_at(ddf, points)


def pad_landmarks(points: np.ndarray, max_landmarks: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(padded (max_landmarks, ndim), mask (max_landmarks,))``, float32, points first.

    Padding rows are 0 (finite, so that a masked sum in a loss has finite gradients) and their mask is 0;
    the mask is 1 on the ``N`` rows of ``points``.

    Raises:
        DataError: more than ``max_landmarks`` points.
    """
    points = np.asarray(points, dtype=np.float32)
    count, ndim = points.shape
    if count > max_landmarks:
        raise DataError(f"{count} landmarks do not fit max_landmarks = {max_landmarks}")
    padded = np.zeros((max_landmarks, ndim), np.float32)
    padded[:count] = points
    mask = np.zeros((max_landmarks,), np.float32)
    mask[:count] = 1.0
    return padded, mask


__all__ = [
    "NUMBER_COLUMN",
    "LANDMARK_UNITS",
    "LANDMARK_SUFFIXES",
    "PREDICTED_LANDMARK_FILES",
    "write_landmarks",
    "check_landmark_units",
    "file_points_to_index",
    "field_at",
    "move_through_ddf",
    "read_numbered_landmarks",
    "read_landmarks",
    "landmark_path",
    "pair_by_number",
    "physical_to_index",
    "index_to_physical",
    "index_to_model",
    "outside_grid",
    "pad_landmarks",
]
