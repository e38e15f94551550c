"""Independent checks of a converted tree: file listing, voxel/geometry equality, one-hot channels, manifest."""

from __future__ import annotations

import hashlib
import os
from typing import List

import numpy as np
import SimpleITK as sitk

from data_scripts.conversion import MANIFEST_NAME


def tree(root: str) -> List[str]:
    """Every file under ``root``, relative, '/'-separated, sorted."""
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            found.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return sorted(found)


def assert_same_image(converted: str, source: str) -> None:
    """Same voxels (SimpleITK arrays) and the same spacing, origin and direction."""
    a, b = sitk.ReadImage(converted), sitk.ReadImage(source)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
    assert a.GetDirection() == b.GetDirection()
    with open(converted, "rb") as x, open(source, "rb") as y:
        assert x.read() == y.read(), f"{converted} is not a byte copy of {source}"


def assert_onehot_of(converted: str, source: str, num_labels: int) -> None:
    """``converted`` is ``(i, j, k, K)`` with channel c == (source == c + 1), on the source's grid."""
    out, src = sitk.ReadImage(converted), sitk.ReadImage(source)
    labels = np.transpose(sitk.GetArrayFromImage(src))  # (i, j, k)
    if out.GetDimension() == 3 and num_labels == 1:  # SimpleITK reads an (i, j, k, 1) NIfTI as 3-D
        channels = np.transpose(sitk.GetArrayFromImage(out))[..., None]
    else:  # a 4-D NIfTI: SimpleITK gives (c, k, j, i)
        channels = np.transpose(sitk.GetArrayFromImage(out), (3, 2, 1, 0))
    assert channels.shape == labels.shape + (num_labels,) and channels.dtype == np.uint8
    for c in range(num_labels):
        np.testing.assert_array_equal(channels[..., c], (labels == c + 1).astype(np.uint8))
    np.testing.assert_allclose(out.GetSpacing()[:3], src.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(out.GetOrigin()[:3], src.GetOrigin(), atol=1e-5)
    size = out.GetDimension()
    direction = np.asarray(out.GetDirection()).reshape(size, size)[:3, :3]
    np.testing.assert_allclose(direction, np.asarray(src.GetDirection()).reshape(3, 3), atol=1e-6)


def assert_manifest(root: str) -> None:
    """The manifest lists every other file once, with its SHA-256 (recomputed with hashlib)."""
    with open(os.path.join(root, MANIFEST_NAME), encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    listed = {}
    for line in lines:
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    assert sorted(listed) == [f for f in tree(root) if f != MANIFEST_NAME]
    for rel, digest in listed.items():
        with open(os.path.join(root, rel), "rb") as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == digest, rel


def assert_nothing_written(parent: str, output_name: str) -> None:
    """No output folder and no scratch folder in ``parent``."""
    assert not os.path.exists(os.path.join(parent, output_name))
    assert not [e for e in os.listdir(parent) if e.startswith(".tfreg-partial-")]
