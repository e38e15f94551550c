"""Small synthetic datasets in DeepReg's layouts, written into a test's tmp_path."""

from __future__ import annotations

import os
from typing import Dict, Iterable, Optional, Sequence, Union

import h5py
import numpy as np

from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image

#: A non-trivial geometry (oblique direction, anisotropic spacing, offset origin).
OBLIQUE = ImageGeometry(
    spacing=(0.5, 0.75, 2.0),
    origin=(-10.0, 4.5, 33.0),
    direction=np.array([[0.0, -1.0, 0.0], [np.cos(0.3), 0.0, np.sin(0.3)], [-np.sin(0.3), 0.0, np.cos(0.3)]]),
)


def image(shape: Sequence[int], seed: int) -> np.ndarray:
    """uint8-valued float32 image with a known min 0 and max 255."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=shape).astype(np.float32)
    array.flat[0], array.flat[1] = 0.0, 255.0
    return array


def label(shape: Sequence[int], num_labels: int, seed: int) -> np.ndarray:
    """Binary masks: ``shape`` for one label, ``(*shape, n)`` otherwise."""
    rng = np.random.default_rng(1000 + seed)
    masks = (rng.random(tuple(shape) + (num_labels,)) > 0.5).astype(np.float32)
    return masks[..., 0] if num_labels == 1 else masks


def _counts(num_labels: Union[int, Dict[str, int]], data_id: str) -> int:
    return num_labels[data_id] if isinstance(num_labels, dict) else num_labels


def write_nifti_folder(folder: str, arrays: Dict[str, np.ndarray], suffix: str = ".nii.gz", geometry=None) -> None:
    for rel, array in arrays.items():
        save_image(array, os.path.join(folder, rel + suffix), geometry)


def write_h5(path: str, arrays: Dict[str, np.ndarray]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, array in arrays.items():
            f.create_dataset(key, data=array)


def write_paired(
    root: str,
    ids: Iterable[str],
    moving_shape=(6, 7, 8),
    fixed_shape=(5, 6, 7),
    num_labels: Union[int, Dict[str, int], None] = 2,
    fmt: str = "nifti",
    geometry: Optional[ImageGeometry] = None,
) -> str:
    """Paired split folder at ``root``; returns ``root``. ``num_labels=None`` writes no labels."""
    ids = list(ids)
    data = {
        "moving_images": {i: image(moving_shape, 2 * n) for n, i in enumerate(ids)},
        "fixed_images": {i: image(fixed_shape, 2 * n + 1) for n, i in enumerate(ids)},
    }
    if num_labels is not None:
        data["moving_labels"] = {i: label(moving_shape, _counts(num_labels, i), 2 * n) for n, i in enumerate(ids)}
        data["fixed_labels"] = {i: label(fixed_shape, _counts(num_labels, i), 2 * n + 1) for n, i in enumerate(ids)}
    _write(root, data, fmt, geometry)
    return root


def write_unpaired(root: str, ids: Iterable[str], shape=(6, 7, 8), num_labels=2, fmt="nifti", geometry=None) -> str:
    ids = list(ids)
    data = {"images": {i: image(shape, n) for n, i in enumerate(ids)}}
    if num_labels is not None:
        data["labels"] = {i: label(shape, _counts(num_labels, i), n) for n, i in enumerate(ids)}
    _write(root, data, fmt, geometry)
    return root


def write_grouped(root: str, groups: Dict[str, Sequence[str]], shape=(6, 7, 8), num_labels=2, fmt="nifti") -> str:
    """NIfTI: ``images/<group>/<id>``; h5: keys ``group-<group>-<id>``."""
    rels = [(g, i) for g, members in groups.items() for i in members]
    sep = "/" if fmt == "nifti" else None
    names = [f"{g}/{i}" if sep else f"group-{g}-{i}" for g, i in rels]
    data = {"images": {name: image(shape, n) for n, name in enumerate(names)}}
    if num_labels is not None:
        data["labels"] = {name: label(shape, num_labels, n) for n, name in enumerate(names)}
    _write(root, data, fmt, None)
    return root


def _write(root, data, fmt, geometry):
    for name, arrays in data.items():
        if fmt == "nifti":
            write_nifti_folder(os.path.join(root, name), arrays, geometry=geometry)
        elif fmt == "mha":
            write_nifti_folder(os.path.join(root, name), arrays, suffix=".mha", geometry=geometry)
        elif fmt == "h5":
            write_h5(os.path.join(root, name + ".h5"), arrays)
        else:
            raise ValueError(fmt)
