"""Reading what the plots need: images, label maps, DDFs and evaluation CSVs.

Images are anything :func:`tfreg.data.image_io.read_image` reads (NIfTI first of all) or HDF5: ``x.h5``
(its only dataset, or the first in sorted order) or ``x.h5:key`` (that dataset). Arrays come back in
tfreg's ``(i, j[, k])`` order with the voxel spacing in mm (1 mm where the file has none, e.g. DeepReg's
HDF5 files).

Every error names the argument (``--fixed``, ``--ddf``, ...) and the file, and says what was expected.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfreg.checks import check_number
from tfreg.label_threshold import LABEL_THRESHOLD, binarise

H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class Volume:
    """An array read for plotting, with where it came from.

    Attributes:
        array: ``(*spatial)`` float32 for images, ``(*spatial, ndim)`` for DDFs (voxel units),
            ``(*spatial, n)`` bool for labels (one channel per label).
        spacing: ``(ndim,)`` voxel size along each spatial axis, mm.
        path: the path as given (including a ``:key`` suffix for HDF5).
    """

    array: np.ndarray
    spacing: Tuple[float, ...]
    path: str

    @property
    def spatial_shape(self) -> Tuple[int, ...]:
        """Shape of the spatial axes (the array's first ``len(spacing)`` axes)."""
        return tuple(self.array.shape[: len(self.spacing)])

    @property
    def stem(self) -> str:
        """File name up to its first dot (DeepReg's output naming), plus ``_<key>`` for ``x.h5:key``."""
        file_path, key = split_h5_key(self.path)
        stem = os.path.basename(file_path).split(".")[0]
        if key:
            stem += "_" + key.split("/")[-1].split(".")[0]
        return stem


def split_h5_key(path: str) -> Tuple[str, Optional[str]]:
    """``("x.h5", "key")`` for ``"x.h5:key"``; ``(path, None)`` for anything else."""
    path = str(path)
    head, sep, key = path.rpartition(":")
    if sep and head.lower().endswith(H5_SUFFIXES) and key:
        return head, key
    return path, None


def _check_exists(path: str, what: str) -> str:
    file_path, _ = split_h5_key(path)
    if not os.path.isfile(file_path):
        raise FileNotFoundError(f"{what}: file {file_path} does not exist")
    return file_path


def read_array(path: str, what: str = "image") -> Tuple[np.ndarray, Tuple[float, ...]]:
    """The raw array and spacing of an image file, before any shape check.

    Args:
        path: NIfTI (or any SimpleITK format) file, ``x.h5`` or ``x.h5:key``.
        what: the argument name used in error messages (e.g. ``"--fixed"``).

    Returns:
        ``(array, spacing)``: float32 array ``(i, j[, k][, c])``, spacing in mm per spatial axis
        (at most 3 axes; 1 mm for files without geometry).

    Raises:
        FileNotFoundError: the file is missing. ValueError: unreadable file or HDF5 key.
    """
    file_path = _check_exists(path, what)
    if file_path.lower().endswith(H5_SUFFIXES):
        return _read_h5(path, what)
    # imported here so that `tfreg_vis --help` does not pay for SimpleITK and tfreg.data
    from tfreg.data.image_io import read_image

    try:
        array, geometry = read_image(file_path)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from err
    return array, tuple(float(s) for s in geometry.spacing)


def _read_h5(path: str, what: str) -> Tuple[np.ndarray, Tuple[float, ...]]:
    import h5py

    file_path, key = split_h5_key(path)
    try:
        handle = h5py.File(file_path, "r")
    except OSError as err:
        raise ValueError(f"{what}: could not open HDF5 file {file_path}: {err}") from err
    with handle:
        datasets: List[str] = []
        handle.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        if key is None:
            if not datasets:
                raise ValueError(f"{what}: HDF5 file {file_path} holds no dataset")
            key = sorted(datasets)[0]
        elif key not in handle or not isinstance(handle[key], h5py.Dataset):
            raise ValueError(f"{what}: HDF5 file {file_path} has no dataset {key!r}; it has {sorted(datasets)[:10]}")
        dataset = handle[key]
        array = np.asarray(dataset[()], dtype=np.float32)
        attrs = dict(dataset.attrs)
    spatial = min(array.ndim, 3)
    spacing = (1.0,) * spatial
    if "spacing" in attrs:  # written by tfreg's nifti-to-h5 converter; DeepReg's files have none
        stored = tuple(float(s) for s in np.ravel(attrs["spacing"]))
        spacing = (stored + (1.0,) * spatial)[:spatial]
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: dataset {key!r} of {file_path} has non-finite (NaN or inf) values")
    return array, spacing


def read_volume(path: str, what: str = "image", ndims: Sequence[int] = (2, 3)) -> Volume:
    """A scalar image: 2-D ``(i, j)`` or 3-D ``(i, j, k)`` float32 (a trailing channel of size 1 is dropped).

    Raises:
        ValueError: naming ``what`` and ``path`` when the image is not scalar 2-D/3-D (or not of ``ndims``).
    """
    array, spacing = read_array(path, what)
    if array.ndim == len(spacing) + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != len(spacing) or array.ndim not in ndims:
        raise ValueError(
            f"{what}: {path} must be a scalar {' or '.join(f'{n}-D' for n in ndims)} image, "
            f"got an array of shape {array.shape}"
        )
    return Volume(np.ascontiguousarray(array, dtype=np.float32), spacing[: array.ndim], str(path))


def read_ddf(path: str, what: str = "--ddf") -> Volume:
    """A dense displacement field ``(*spatial, ndim)``, ndim 2 or 3, in voxels, component c along axis c.

    Raises:
        ValueError: naming ``what`` and ``path`` when the last axis is not one component per spatial axis.
    """
    array, spacing = read_array(path, what)
    ndim = array.ndim - 1
    if ndim not in (2, 3) or array.shape[-1] != ndim:
        raise ValueError(
            f"{what}: {path} must be a displacement field of shape (*spatial, ndim) with ndim 2 or 3 "
            f"(one component per spatial axis, in voxels), got shape {array.shape}"
        )
    spacing = (tuple(spacing) + (1.0,) * ndim)[:ndim]
    return Volume(np.ascontiguousarray(array, dtype=np.float32), spacing, str(path))


def read_labels(path: str, what: str = "label", threshold: float = LABEL_THRESHOLD) -> Tuple[Volume, List[str]]:
    """Label masks ``(*spatial, n)`` bool, one channel per label, and a name for each channel.

    Accepts:

    * an integer label map ``(i, j[, k])``: each distinct value > 0 is one label, named by its value (a 0/1
      mask is label ``1``);
    * a mask with fractional values in [0, 1] ``(i, j[, k])``, such as ``tfreg_predict``'s
      ``pred_fixed_label`` (a label warped with linear interpolation) or a probability map: label ``1``,
      foreground ``>= threshold``;
    * DeepReg's one-hot stack ``(i, j, k, n)``: channel c is label c, foreground ``>= threshold``.

    Args:
        path, what: the file and the argument it was given as (for errors).
        threshold: in (0, 1]; a value equal to it is foreground (:func:`tfreg.label_threshold.binarise`, the
            rule of ``tfreg_predict`` and ``tfreg_evaluate`` at the default 0.5).

    Raises:
        ValueError: naming ``what`` and ``path``: fractional values outside [0, 1], more than 64 integer
            labels, or a shape that is none of the above.
    """
    threshold = check_number(threshold, "--label-threshold", 0.0, 1.0, exclusive_minimum=True)
    array, spacing = read_array(path, what)
    if array.ndim == len(spacing) + 1:
        masks = binarise(array, threshold)
        names = [str(c) for c in range(array.shape[-1])]
    elif array.ndim == len(spacing) and array.ndim in (2, 3):
        if not np.array_equal(array, np.round(array)):  # fractional: a soft mask
            if array.min() < 0 or array.max() > 1:
                raise ValueError(
                    f"{what}: {path} has fractional values in [{array.min():g}, {array.max():g}]; expected an "
                    "integer label map, or a mask with values in [0, 1] (foreground >= --label-threshold)"
                )
            return Volume(binarise(array, threshold)[..., None], tuple(spacing), str(path)), ["1"]
        values = np.unique(array[array > 0])
        if len(values) > 64:
            raise ValueError(
                f"{what}: {path} has {len(values)} distinct positive values; expected a label map "
                "(a few integer labels) or a one-hot stack (i, j, k, n)"
            )
        masks = np.stack([array == v for v in values], axis=-1) if len(values) else (array > 0)[..., None]
        names = [f"{v:g}" for v in values] if len(values) else ["1"]
    else:
        raise ValueError(f"{what}: {path} must be a 2-D/3-D label map or a (i, j, k, n) stack, got shape {array.shape}")
    return Volume(masks, tuple(spacing), str(path)), names


def check_same_spatial_shape(reference: Volume, other: Volume, ref_name: str, other_name: str) -> None:
    """ValueError naming both arguments and files unless their spatial shapes agree."""
    if reference.spatial_shape != other.spatial_shape:
        raise ValueError(
            f"{other_name} {other.path} has spatial shape {other.spatial_shape} but {ref_name} "
            f"{reference.path} has {reference.spatial_shape}; they must be on the same grid"
        )


def _label_key(value: str) -> str:
    """Labels compare as numbers when they are numbers ("1" == "1.0"), else as stripped strings."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:g}"


def read_metric_csv(path: str, metric: str, labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """The finite values of column ``metric`` in an evaluation CSV, optionally only rows of ``labels``.

    Args:
        path: CSV with a header row; columns such as ``pair``, ``label``, ``dice``, ``hd95``.
        metric: the column to read.
        labels: keep only rows whose ``label`` column is one of these (numbers compare by value).
            Without it, the union rows of ``tfreg_evaluate --union-label`` (a non-empty ``union_of``
            cell) are skipped: they repeat their member labels' voxels; name the union label to plot it.

    Returns:
        1-D float64 array. Empty cells, ``nan`` and non-numeric cells are skipped (a metric can be
        undefined for an empty label).

    Raises:
        FileNotFoundError: missing file. ValueError: no header, no ``metric`` column, a label filter on a
        CSV without a ``label`` column, or no value left.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--csv: file {path} does not exist")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if not columns:
            raise ValueError(f"--csv: {path} is empty or has no header row")
        reader.fieldnames = columns
        if metric not in columns:
            raise ValueError(f"--metric: {path} has no column {metric!r}; its columns are {columns}")
        wanted = None
        if labels:
            if "label" not in columns:
                raise ValueError(f"--labels: {path} has no 'label' column to filter on; its columns are {columns}")
            wanted = {_label_key(str(label)) for label in labels}
        values = []
        for row in reader:
            if wanted is not None and _label_key(row.get("label") or "") not in wanted:
                continue
            if wanted is None and (row.get("union_of") or "").strip():
                continue
            try:
                value = float(row.get(metric) or "nan")
            except ValueError:
                continue
            if math.isfinite(value):
                values.append(value)
    if not values:
        which = f" for labels {list(labels)}" if labels else ""
        raise ValueError(f"--csv: {path} has no finite {metric!r} value{which}")
    return np.asarray(values, dtype=np.float64)


def read_metric_csvs(
    paths: Sequence[str], metric: str, labels: Optional[Sequence[str]] = None, names: Optional[Sequence[str]] = None
) -> Dict[str, np.ndarray]:
    """``{method name: values}`` for one CSV per method, in the order given.

    Names are ``names`` when given (one per CSV) or the file stems (name up to the first dot).
    """
    if not paths:
        raise ValueError("--csv: give at least one CSV file")
    if names is not None and len(names) != len(paths):
        raise ValueError(f"--names: got {len(names)} name(s) for {len(paths)} CSV file(s); give one per file")
    if names is None:
        names = [os.path.basename(p).split(".")[0] for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"--names: method names must be distinct, got {list(names)} (use --names)")
    return {name: read_metric_csv(path, metric, labels) for name, path in zip(names, paths)}


__all__ = [
    "Volume",
    "check_same_spatial_shape",
    "read_array",
    "read_ddf",
    "read_labels",
    "read_metric_csv",
    "read_metric_csvs",
    "read_volume",
    "split_h5_key",
]
