"""Landmark files and their coordinates: physical (mm) -> file voxel index -> model voxel index.

A landmark file lists points, one per row (CSV or whitespace-separated), in mm in the image's physical
frame, ITK's LPS frame (that of ``SimpleITK.Image.TransformIndexToPhysicalPoint``), as BraTS-Reg's
``Landmark,X,Y,Z`` files do. The ``Landmark`` column, when present, numbers the points: the same number in
a moving and a fixed file marks corresponding points (BraTS-Reg); without it rows correspond by order.

Coordinates, for an image with :class:`~tfreg.data.geometry.ImageGeometry` ``g`` (all ``(N, ndim)``,
columns in array-axis order i, j(, k)):

- physical ``p`` (mm) and file voxel index ``v`` (0-based, continuous): ``p = origin + D diag(spacing) v``
  (:func:`physical_to_index` inverts it; ``D`` need not be orthonormal);
- model voxel index ``o`` of the grid the image is resized to (``n_in`` -> ``n_out`` voxels per axis,
  half-pixel centres as :func:`tfreg.ops.resize.resize` and :meth:`ImageGeometry.resized`):
  ``o = (v + 0.5) n_out / n_in - 0.5`` (:func:`index_to_model`), so ``o`` and ``v`` are the same
  physical point on the resized and the file grid.

NumPy only. :func:`read_landmarks` is re-exported by :mod:`tfreg.evaluation.inputs` (``tfreg_evaluate``).
"""

from __future__ import annotations

import os
import re
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry

#: Name of the column that numbers landmarks (any case), as in BraTS-Reg's ``Landmark,X,Y,Z``.
NUMBER_COLUMN = "landmark"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_numbered_landmarks(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(numbers, points)`` of a landmark file: int64 ``(N,)`` and float64 ``(N, ndim)`` in mm.

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
    """Landmarks ``(N, ndim)`` in mm from a CSV or whitespace-separated text file, one point per row.

    The points of :func:`read_numbered_landmarks` (same forms and errors), in file order; corresponding
    files must then list the same landmarks in the same order.
    """
    return read_numbered_landmarks(path)[1]


def landmark_path(data_id: Any, folder: str) -> str:
    """The landmark file of an image's data ID: ``<split dir>/<folder>/<id>.csv``.

    ``data_id`` is a file loader's ID ``(split dir, name[, ...])`` (the image's path inside its folder,
    without suffix, for NIfTI and other SimpleITK formats; the dataset key for HDF5), so
    ``moving_images/case1.nii.gz`` has its landmarks in ``moving_landmarks/case1.csv``.
    """
    if not isinstance(data_id, tuple) or len(data_id) < 2:
        raise ValueError(f"expected a data ID (split dir, name, ...), got {data_id!r}")
    return os.path.join(str(data_id[0]), folder, *(str(part) for part in data_id[1:])) + ".csv"


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
