"""Tiny copies of the public releases in their OWN layouts (8^3 volumes), written with SimpleITK only.

Names, json keys and CSV headers follow the real releases (Learn2Reg OASIS and AbdomenMRCT, neurite-oasis,
BraTSReg 2022); the values are random. Each writer returns what a test needs to check a conversion.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

SHAPE = (8, 8, 8)
#: An oblique direction (columns: axis directions), so geometry mistakes show.
OBLIQUE_DIRECTION = (
    np.array([[0.0, -1.0, 0.0], [np.cos(0.3), 0.0, np.sin(0.3)], [-np.sin(0.3), 0.0, np.cos(0.3)]]).ravel().tolist()
)


def write_volume(path: str, array: np.ndarray, spacing=(1.0, 1.2, 1.5), origin=(-3.0, 4.0, 5.5), direction=None):
    """Write an ``(i, j, k)`` array with SimpleITK (which stores ``(k, j, i)``)."""
    image = sitk.GetImageFromArray(np.transpose(array))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction or OBLIQUE_DIRECTION)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sitk.WriteImage(image, path, True)


def _image(rng) -> np.ndarray:
    return rng.normal(100.0, 20.0, SHAPE).astype(np.float32)


def _labels(rng, num_labels: int) -> np.ndarray:
    return rng.integers(0, num_labels + 1, SHAPE).astype(np.uint8)


def _mask(rng) -> np.ndarray:
    return (rng.random(SHAPE) > 0.3).astype(np.uint8)


def _write_json(path: str, content: dict) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=4)


# ------------------------------------------------------------------------------------------ Learn2Reg OASIS
def write_learn2reg_oasis(root: str, training: Sequence[int] = range(1, 8), extra_val: int = 8) -> Dict[str, object]:
    """Learn2Reg OASIS: ``OASIS_dataset.json``, ``imagesTr``/``labelsTr``/``masksTr`` of 35-label subjects.

    ``training`` subjects are listed in the json's ``training``; ``registration_val`` pairs the last two
    training subjects and (``extra_val``, last) where ``extra_val`` has files but no ``training`` entry.
    Returns ``{"training": ids, "valid": ids}``.
    """
    rng = np.random.default_rng(0)
    numbers = list(training) + [extra_val]
    for n in numbers:
        name = f"OASIS_{n:04d}_0000.nii.gz"
        origin = (-3.0 + n, 4.0, 5.5)
        write_volume(os.path.join(root, "imagesTr", name), _image(rng), origin=origin)
        write_volume(os.path.join(root, "labelsTr", name), _labels(rng, 35), origin=origin)
        write_volume(os.path.join(root, "masksTr", name), _mask(rng), origin=origin)
    entry = lambda n: f"./imagesTr/OASIS_{n:04d}_0000.nii.gz"  # noqa: E731
    last, before = numbers[-2], numbers[-3]
    _write_json(
        os.path.join(root, "OASIS_dataset.json"),
        {
            "name": "OASIS",
            "release": "1.1",
            "description": "OASIS task of Learn2Reg Dataset. Please see https://learn2reg.grand-challenge.org/",
            "licence": "Open Access Series of Imaging Studies (OASIS) Data Use Agreement",
            "reference": "Hoopes et al. HyperMorph, IPMI 2021; Marcus et al. OASIS, 2007",
            "pairings": "unpaired",
            "provided_data": {"0": ["image", "label", "mask"]},
            "registration_direction": {"fixed": 0, "moving": 0},
            "modality": {"0": "MR"},
            "img_shift": {"fixed": "Patient", "moving": "Patient"},
            "labels": {"0": {str(k): ("background" if k == 0 else f"structure {k}") for k in range(36)}},
            "tensorImageSize": {"0": "3D"},
            "tensorImageShape": {"0": list(SHAPE)},
            "numTraining": len(list(training)),
            "numTest": 0,
            "training": [
                {
                    "image": entry(n),
                    "label": entry(n).replace("imagesTr", "labelsTr"),
                    "mask": entry(n).replace("imagesTr", "masksTr"),
                }
                for n in training
            ],
            "test": [],
            "numRegistration_val": 2,
            "registration_val": [
                {"fixed": entry(last), "moving": entry(before)},
                {"fixed": entry(extra_val), "moving": entry(last)},
            ],
            "numRegistration_test": 0,
            "registration_test": [],
        },
    )
    ids = [f"OASIS_{n:04d}" for n in training]
    return {"training": ids, "valid": sorted([ids[-1], ids[-2], f"OASIS_{extra_val:04d}"])}


def write_neurite_oasis(root: str, count: int = 5) -> List[str]:
    """neurite-oasis: ``OASIS_OAS1_XXXX_MR1/aligned_{norm,seg4,seg35,orig}.nii.gz`` folders; returns the IDs."""
    rng = np.random.default_rng(1)
    ids = []
    for n in range(1, count + 1):
        subject = f"OASIS_OAS1_{n:04d}_MR1"
        folder = os.path.join(root, subject)
        write_volume(os.path.join(folder, "aligned_norm.nii.gz"), _image(rng), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
        write_volume(os.path.join(folder, "aligned_orig.nii.gz"), _image(rng), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
        write_volume(
            os.path.join(folder, "aligned_seg4.nii.gz"), _labels(rng, 4), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)
        )
        write_volume(
            os.path.join(folder, "aligned_seg35.nii.gz"), _labels(rng, 35), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)
        )
        ids.append(subject)
    with open(os.path.join(root, "subjects.txt"), "w") as stream:
        stream.write("\n".join(ids) + "\n")
    return ids


# ------------------------------------------------------------------------------------------ Learn2Reg Abdomen MR-CT
def write_abdomen_mrct(root: str) -> Dict[str, List[str]]:
    """AbdomenMRCT: cases 1-3 with MR (``_0000``) and CT (``_0001``), case 4 CT only, case 5 MR only.

    The json pairs cases 1-3 in ``training_paired_images`` (fixed MR, moving CT, as Learn2Reg lists them)
    and case 3 again in ``registration_val``. Returns ``{"train": ids, "valid": ids}``.
    """
    rng = np.random.default_rng(2)
    files = [(c, ch) for c in (1, 2, 3) for ch in (0, 1)] + [(4, 1), (5, 0)]
    for case, channel in files:
        name = f"AbdomenMRCT_{case:04d}_{channel:04d}.nii.gz"
        origin = (-3.0 + case, 4.0 - channel, 5.5)
        write_volume(os.path.join(root, "imagesTr", name), _image(rng), origin=origin)
        write_volume(os.path.join(root, "labelsTr", name), _labels(rng, 4), origin=origin)
        write_volume(os.path.join(root, "masksTr", name), _mask(rng), origin=origin)
    path = lambda c, ch: f"./imagesTr/AbdomenMRCT_{c:04d}_{ch:04d}.nii.gz"  # noqa: E731
    pair = lambda c: {"fixed": path(c, 0), "moving": path(c, 1)}  # noqa: E731
    _write_json(
        os.path.join(root, "AbdomenMRCT_dataset.json"),
        {
            "name": "AbdomenMRCT",
            "release": "1.0",
            "description": "Subset AbdomenMRCT of Learn2Reg Dataset. Please see https://learn2reg.grand-challenge.org/",
            "licence": "Please see README_LICENCE files in parent directory",
            "reference": "",
            "pairings": "hybrid",
            "provided_data": {"0": ["image", "label", "mask"], "1": ["image", "label", "mask"]},
            "registration_direction": {"fixed": 0, "moving": 1},
            "modality": {"0": "MR", "1": "CT"},
            "img_shift": {"fixed": "Patient", "moving": "Patient"},
            "labels": {
                ch: {"0": "background", "1": "liver", "2": "spleen", "3": "right kidney", "4": "left kidney"}
                for ch in ("0", "1")
            },
            "tensorImageSize": {"0": "3D", "1": "3D"},
            "tensorImageShape": {"0": list(SHAPE), "1": list(SHAPE)},
            "numTraining": len(files),
            "numTest": 0,
            "training": [
                {
                    "image": path(c, ch),
                    "label": path(c, ch).replace("imagesTr", "labelsTr"),
                    "mask": path(c, ch).replace("imagesTr", "masksTr"),
                }
                for c, ch in files
            ],
            "test": [],
            "numPairedTraining": 3,
            "training_paired_images": [pair(1), pair(2), pair(3)],
            "numRegistration_val": 1,
            "registration_val": [pair(3)],
            "numRegistration_test": 0,
            "registration_test": [],
        },
    )
    return {"train": ["AbdomenMRCT_0001", "AbdomenMRCT_0002"], "valid": ["AbdomenMRCT_0003"]}


# ------------------------------------------------------------------------------------------ BraTSReg 2022
#: BraTSReg's geometry scaled to 8^3: 1 mm, identity LPS direction, origin (0, -(size - 1), 0).
BRATS_ORIGIN = (0.0, -(SHAPE[1] - 1.0), 0.0)
BRATS_DAYS = {"BraTSReg_001": "0106", "BraTSReg_002": "0214", "BraTSReg_003": "0031", "BraTSReg_004": "0148"}


def brats_landmark_rows(rng, count: int) -> np.ndarray:
    """``(count, 4)`` rows ``(number, X, Y, Z)``: voxel centres in mm (LPS) of random 0-based indices."""
    index = rng.integers(0, SHAPE[0], (count, 3))
    physical = index + np.asarray(BRATS_ORIGIN)  # 1 mm, identity direction
    return np.concatenate([np.arange(1, count + 1)[:, None], physical], axis=1), index


def write_landmark_csv(path: str, rows: np.ndarray) -> None:
    with open(path, "w", newline="") as stream:
        stream.write("Landmark,X,Y,Z\n")
        for row in rows:
            stream.write(f"{int(row[0])},{row[1]:g},{row[2]:g},{row[3]:g}\n")


def write_brats_reg(root: str, validation_case: str = "BraTSReg_004") -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """BraTSReg: case folders with ``_00_0000_*`` baseline and ``_01_<day>_*`` follow-up scans + landmarks.

    ``validation_case`` has no baseline landmark file (as in the validation release). Returns
    ``{case: (rows, voxel indices)}`` of every landmark file written, keyed ``"<case>/<00|01>"``.
    """
    rng = np.random.default_rng(3)
    written = {}
    for case, day in BRATS_DAYS.items():
        folder = os.path.join(root, case)
        for time, time_day in (("00", "0000"), ("01", day)):
            for modality in ("t1", "t1ce", "t2", "flair"):
                write_volume(
                    os.path.join(folder, f"{case}_{time}_{time_day}_{modality}.nii.gz"),
                    rng.integers(0, 1000, SHAPE).astype(np.int16),
                    spacing=(1.0, 1.0, 1.0),
                    origin=BRATS_ORIGIN,
                    direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
                )
            if case == validation_case and time == "00":
                continue
            rows, index = brats_landmark_rows(rng, 6)
            write_landmark_csv(os.path.join(folder, f"{case}_{time}_{time_day}_landmarks.csv"), rows)
            written[f"{case}/{time}"] = (rows, index)
    return written
