"""Tiny archives in the layouts of the releases DeepReg's demos download (no network needed).

Each ``write_*`` builds, under ``root``, the archive the demo's ``demo_data.py`` would download (same
archive type, top folder, file names, formats and value ranges as the release), with a few small cases,
and returns its path plus what the tests need to check the conversion independently. The volumes are
smooth random blobs, not anatomy: the tests check file layout, values and a one-epoch training run.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from typing import Dict, Sequence, Tuple

import h5py
import numpy as np
from scipy import ndimage

from data_scripts.synthetic_releases import write_volume


def blob(shape: Sequence[int], rng: np.random.Generator, sigma: float = 1.5) -> np.ndarray:
    """A smooth random volume in [0, 1]: Gaussian-smoothed noise, min-max scaled."""
    field = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)), sigma)
    return (field - field.min()) / (field.max() - field.min())


def zip_folder(folder: str, archive: str) -> str:
    """``archive`` (.zip) holding ``folder``'s tree under the folder's own name, as GitHub's archives do."""
    base = os.path.dirname(folder)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for parent, _, names in os.walk(folder):
            for name in sorted(names):
                path = os.path.join(parent, name)
                zf.write(path, os.path.relpath(path, base))
    return archive


def tar_folder(folder: str, archive: str) -> str:
    """``archive`` (.tar) holding ``folder``'s tree under the folder's own name."""
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=os.path.basename(folder))
    return archive


# ------------------------------------------------------------------------------- Learn2Reg lung CT (Zenodo)
def write_lung_release(root: str, cases: int, shape=(10, 9, 8), seed: int = 0) -> Tuple[str, Dict[str, dict]]:
    """``training.zip``: ``training/{scans,lungMasks}/case_NNN_{insp,exp}.nii.gz`` for ``cases`` cases plus
    case_020 (which the demos leave out); scans in Hounsfield units (-1000..3000), masks 0/1 uint8,
    spacing (1.5, 1.25, 2.0) mm, a non-zero origin.

    Returns ``(archive, {case: {"insp"|"exp": (scan, mask)}})`` with the arrays written.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "training")
    written = {}
    numbers = list(range(1, cases + 1)) + [20]
    for number in numbers:
        case = f"case_{number:03d}"
        written[case] = {}
        for phase in ("insp", "exp"):
            scan = (blob(shape, rng) * 4000.0 - 1000.0).astype(np.int16)
            mask = (blob(shape, rng) > 0.5).astype(np.uint8)
            for sub, array in (("scans", scan), ("lungMasks", mask)):
                write_volume(
                    os.path.join(folder, sub, f"{case}_{phase}.nii.gz"),
                    array,
                    spacing=(1.5, 1.25, 2.0),
                    origin=(-10.0, 5.0, 2.5),
                )
            written[case][phase] = (scan, mask)
    return zip_folder(folder, os.path.join(root, "training.zip")), written


# ------------------------------------------------------------------ Learn2Reg abdomen CT (ucl-candi, abdct branch)
def write_abdomen_release(root: str, numbers: Sequence[int], shape=(9, 8, 10), seed: int = 0):
    """``abdct.zip``: ``datasets_deepreg_demo-abdct/dataset/{images,labels}/NNNN.nii.gz``; CT in HU (int16),
    label maps uint8 with values 0..13 (every label present in some case).

    Returns ``(archive, {name: (image, labels)})``.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "datasets_deepreg_demo-abdct")
    written = {}
    for number in numbers:
        name = f"{number:04d}.nii.gz"
        image = (blob(shape, rng) * 1400.0 - 1000.0).astype(np.int16)
        labels = rng.integers(0, 14, size=shape).astype(np.uint8)
        write_volume(os.path.join(folder, "dataset", "images", name), image, spacing=(2.0, 2.0, 2.0))
        write_volume(os.path.join(folder, "dataset", "labels", name), labels, spacing=(2.0, 2.0, 2.0))
        written[name] = (image, labels)
    return zip_folder(folder, os.path.join(root, "abdct.zip")), written


# ------------------------------------------------------------------ MyoPS 2020 cardiac MR (ucl-candi, myops branch)
#: (shape, spacing mm) of each MyoPS sequence in the fixture: anisotropic, as the real short-axis stacks
HEART_SEQUENCES = {
    "C0": ((12, 11, 4), (1.25, 1.25, 6.0)),
    "DE": ((10, 12, 3), (1.5, 1.4, 7.5)),
    "T2": ((9, 9, 2), (1.6, 1.6, 9.0)),
}


def write_heart_release(root: str, patients: Sequence[int], seed: int = 0):
    """``myops.zip``: ``datasets_deepreg_demo-myops/<patient>_{C0,DE,T2}.nii.gz`` (float32, MR-like values).

    Returns ``(archive, {file name: (image, spacing, origin)})``.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "datasets_deepreg_demo-myops")
    written = {}
    for patient in patients:
        for sequence, (shape, spacing) in HEART_SEQUENCES.items():
            name = f"{patient}_{sequence}.nii.gz"
            image = (blob(shape, rng, sigma=1.0) * 800.0).astype(np.float32)
            origin = (-5.0 * patient, 3.0, 7.0)
            write_volume(os.path.join(folder, name), image, spacing=spacing, origin=origin)
            written[name] = (image, spacing, origin)
    return zip_folder(folder, os.path.join(root, "myops.zip")), written


# ------------------------------------------------------------------ longitudinal prostate masks (YipengHu/example-data)
def write_longi_masks_release(root: str, groups: Sequence[int], visits: int = 3, shape=(10, 9, 8), seed: int = 0):
    """``data.zip`` holding ``data.h5`` with one uint8 mask per ``group-<patient>-<visit>`` (visits from 1).

    Returns ``(archive, {key: mask})``.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "data.h5")
    written = {}
    with h5py.File(path, "w") as data:
        for group in groups:
            for visit in range(1, visits + 1):
                key = f"group-{group}-{visit}"
                written[key] = (blob(shape, rng) > 0.45).astype(np.uint8)
                data.create_dataset(key, data=written[key])
    archive = os.path.join(root, "data.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(path, "data.h5")
    return archive, written


# ------------------------------------------------------------------ RESECT MR-US brain (ucl-candi/dataset_resect)
def write_resect_release(root: str, cases: Dict[str, Sequence[int]], seed: int = 0):
    """``master.zip``: ``dataset_resect-master/paired_mr_us_brain/{train,test}/{moving,fixed}_images/CaseN.nii.gz``
    (ultrasound moving 12 x 10 x 11, T1 fixed 9 x 10 x 8), the unused ``CaseN/`` folders and a README.

    Returns ``(archive, {(split, file name): (moving, fixed)})``.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "dataset_resect-master")
    base = os.path.join(folder, "paired_mr_us_brain")
    written = {}
    for split, numbers in cases.items():
        for number in numbers:
            name = f"Case{number}.nii.gz"
            moving = (blob((12, 10, 11), rng) * 255.0).astype(np.float32)
            fixed = (blob((9, 10, 8), rng) * 255.0).astype(np.float32)
            write_volume(os.path.join(base, split, "moving_images", name), moving)
            write_volume(os.path.join(base, split, "fixed_images", name), fixed)
            write_volume(os.path.join(base, split, f"Case{number}", f"Case{number}-T1-resize_resized.nii.gz"), fixed)
            written[(split, name)] = (moving, fixed)
    with open(os.path.join(folder, "README.md"), "w") as stream:
        stream.write("RESECT subset\n")
    return zip_folder(folder, os.path.join(root, "master.zip")), written


# ------------------------------------------------------------------ prostate MR-US pairs (YipengHu/example-data, mrus)
def write_mrus_release(root: str, cases: int, seed: int = 0):
    """``mrus.zip``: ``example-data-mrus/{moving_images,moving_labels,fixed_images,fixed_labels}/caseNNNNNN.nii.gz``
    (MR moving 10 x 10 x 9, ultrasound fixed 8 x 9 x 7, binary gland labels).

    Returns ``(archive, [case file names])``.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "example-data-mrus")
    names = [f"case{i:06d}.nii.gz" for i in range(cases)]
    for name in names:
        for side, shape in (("moving", (10, 10, 9)), ("fixed", (8, 9, 7))):
            write_volume(os.path.join(folder, f"{side}_images", name), blob(shape, rng).astype(np.float32))
            label = (blob(shape, rng) > 0.5).astype(np.uint8)
            write_volume(os.path.join(folder, f"{side}_labels", name), label)
    return zip_folder(folder, os.path.join(root, "mrus.zip")), names


# ------------------------------------------------------------------ Learn2Reg hippocampus MR (acasamitjana/Data)
#: the field of view inside each fixture crop (the rest is zero padding), per axis [start, stop)
HIPPOCAMPUS_BOX = ((2, 10), (3, 9), (1, 11))


def write_hippocampus_release(root: str, subjects: Sequence[int], shape=(12, 12, 12), seed: int = 0):
    """``L2R_Task4_HippocampusMRI.tar``: ``Training/{img,label}/hippocampus_NNN.nii.gz``; images zero outside
    :data:`HIPPOCAMPUS_BOX` and 100..1000 inside (int16), labels 0, 1, 2 (uint8).

    Returns ``(archive, {file name: (image, labels)})``.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "Training")
    box = tuple(slice(*b) for b in HIPPOCAMPUS_BOX)
    written = {}
    for subject in subjects:
        name = f"hippocampus_{subject:03d}.nii.gz"
        image = np.zeros(shape, np.int16)
        image[box] = (blob(shape, rng)[box] * 900.0 + 100.0).astype(np.int16)
        labels = np.zeros(shape, np.uint8)
        labels[box] = rng.integers(0, 3, size=image[box].shape)
        write_volume(os.path.join(folder, "img", name), image)
        write_volume(os.path.join(folder, "label", name), labels)
        written[name] = (image, labels)
    return tar_folder(folder, os.path.join(root, "L2R_Task4_HippocampusMRI.tar")), written


# ------------------------------------------------------------------ 3-D TRUS folds (ucl-candi/dataset_trus3d)
def write_trus_release(root: str, per_fold: int = 2, shape=(8, 10, 9), seed: int = 0):
    """``master.zip``: ``dataset_trus3d-master/fold0..fold9/images.h5`` (``per_fold`` float32 images each) and
    a README. Returns ``(archive, {(fold, key): image})``."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "dataset_trus3d-master")
    written = {}
    for fold in range(10):
        os.makedirs(os.path.join(folder, f"fold{fold}"))
        with h5py.File(os.path.join(folder, f"fold{fold}", "images.h5"), "w") as stream:
            for index in range(per_fold):
                key = f"case{fold * per_fold + index:06d}"
                written[(fold, key)] = (blob(shape, rng) * 255.0).astype(np.float32)
                stream.create_dataset(key, data=written[(fold, key)])
    with open(os.path.join(folder, "README.md"), "w") as stream:
        stream.write("TRUS 3-D folds\n")
    return zip_folder(folder, os.path.join(root, "master.zip")), written
