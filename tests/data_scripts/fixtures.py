"""Tiny copies of the public releases in their OWN layouts (8^3 volumes of random values).

The layouts (names, json keys, CSV headers) are written by :mod:`data_scripts.synthetic_releases`, the
product's own writers; this module only chooses the content: random volumes on an oblique grid, so that
geometry mistakes show, and the case lists the converter tests check. Each writer returns what a test
needs to check a conversion.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from data_scripts import synthetic_releases
from data_scripts.synthetic_releases import (
    IDENTITY,
    BratsCase,
    Volume,
    write_landmark_csv,  # noqa: F401 - re-exported for the tests
)
from data_scripts.synthetic_releases import (
    write_volume as _write_volume,
)

SHAPE = (8, 8, 8)
#: An oblique direction (columns: axis directions), so geometry mistakes show.
OBLIQUE_DIRECTION = (
    np.array([[0.0, -1.0, 0.0], [np.cos(0.3), 0.0, np.sin(0.3)], [-np.sin(0.3), 0.0, np.cos(0.3)]]).ravel().tolist()
)


def write_volume(path: str, array: np.ndarray, spacing=(1.0, 1.2, 1.5), origin=(-3.0, 4.0, 5.5), direction=None):
    """Write an ``(i, j, k)`` array (default: the fixtures' oblique grid)."""
    _write_volume(path, array, spacing, origin, direction or OBLIQUE_DIRECTION)


def _volume(array, origin=(-3.0, 4.0, 5.5), direction=None) -> Volume:
    return Volume(array, spacing=(1.0, 1.2, 1.5), origin=origin, direction=tuple(direction or OBLIQUE_DIRECTION))


def _image(rng) -> np.ndarray:
    return rng.normal(100.0, 20.0, SHAPE).astype(np.float32)


def _labels(rng, num_labels: int) -> np.ndarray:
    return rng.integers(0, num_labels + 1, SHAPE).astype(np.uint8)


def _mask(rng) -> np.ndarray:
    return (rng.random(SHAPE) > 0.3).astype(np.uint8)


# ------------------------------------------------------------------------------------------ Learn2Reg OASIS
def write_learn2reg_oasis(root: str, training: Sequence[int] = range(1, 8), extra_val: int = 8) -> Dict[str, object]:
    """Learn2Reg OASIS: ``OASIS_dataset.json``, ``imagesTr``/``labelsTr``/``masksTr`` of 35-label subjects.

    ``training`` subjects are listed in the json's ``training``; ``registration_val`` pairs the last two
    training subjects and (``extra_val``, last) where ``extra_val`` has files but no ``training`` entry.
    Returns ``{"training": ids, "valid": ids}``.
    """
    rng = np.random.default_rng(0)
    training = list(training)
    numbers = training + [extra_val]
    subjects = {}
    for n in numbers:
        origin = (-3.0 + n, 4.0, 5.5)
        subjects[n] = {
            "image": _volume(_image(rng), origin),
            "label": _volume(_labels(rng, 35), origin),
            "mask": _volume(_mask(rng), origin),
        }
    last, before = numbers[-2], numbers[-3]
    synthetic_releases.write_learn2reg_oasis(root, subjects, training, [(last, before), (extra_val, last)])
    ids = [f"OASIS_{n:04d}" for n in training]
    return {"training": ids, "valid": sorted([ids[-1], ids[-2], f"OASIS_{extra_val:04d}"])}


def write_neurite_oasis(root: str, count: int = 5) -> List[str]:
    """neurite-oasis: ``OASIS_OAS1_XXXX_MR1/aligned_{norm,seg4,seg35,orig}.nii.gz`` folders; returns the IDs."""
    rng = np.random.default_rng(1)
    subjects = {}
    for n in range(1, count + 1):
        volume = lambda array: _volume(array, direction=IDENTITY)  # noqa: E731
        subjects[f"OASIS_OAS1_{n:04d}_MR1"] = {
            "norm": volume(_image(rng)),
            "orig": volume(_image(rng)),
            "seg4": volume(_labels(rng, 4)),
            "seg35": volume(_labels(rng, 35)),
        }
    return synthetic_releases.write_neurite_oasis(root, subjects)


# ------------------------------------------------------------------------------------------ Learn2Reg Abdomen MR-CT
def write_abdomen_mrct(root: str) -> Dict[str, List[str]]:
    """AbdomenMRCT: cases 1-3 with MR (``_0000``) and CT (``_0001``), case 4 CT only, case 5 MR only.

    The json pairs cases 1-3 in ``training_paired_images`` (fixed MR, moving CT, as Learn2Reg lists them)
    and case 3 again in ``registration_val``. Returns ``{"train": ids, "valid": ids}``.
    """
    rng = np.random.default_rng(2)
    files = [(c, ch) for c in (1, 2, 3) for ch in (0, 1)] + [(4, 1), (5, 0)]
    scans = {}
    for case, channel in files:
        origin = (-3.0 + case, 4.0 - channel, 5.5)
        scans[(case, channel)] = {
            "image": _volume(_image(rng), origin),
            "label": _volume(_labels(rng, 4), origin),
            "mask": _volume(_mask(rng), origin),
        }
    synthetic_releases.write_abdomen_mrct(root, scans, [1, 2, 3], [3])
    return {"train": ["AbdomenMRCT_0001", "AbdomenMRCT_0002"], "valid": ["AbdomenMRCT_0003"]}


# ------------------------------------------------------------------------------------------ BraTSReg 2022
#: BraTSReg's geometry scaled to 8^3: 1 mm, identity LPS direction, origin (0, -(size - 1), 0).
BRATS_ORIGIN = synthetic_releases.brats_origin(SHAPE)
BRATS_DAYS = {"BraTSReg_001": "0106", "BraTSReg_002": "0214", "BraTSReg_003": "0031", "BraTSReg_004": "0148"}


def brats_landmark_rows(rng, count: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(count, 4)`` rows ``(number, X, Y, Z)``: voxel centres in mm (LPS) of random 0-based indices."""
    index = rng.integers(0, SHAPE[0], (count, 3))
    physical = index + np.asarray(BRATS_ORIGIN)  # 1 mm, identity direction
    return np.concatenate([np.arange(1, count + 1)[:, None], physical], axis=1), index


def write_brats_reg(root: str, validation_case: str = "BraTSReg_004") -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """BraTSReg: case folders with ``_00_0000_*`` baseline and ``_01_<day>_*`` follow-up scans + landmarks.

    ``validation_case`` has no baseline landmark file (as in the validation release). Returns
    ``{case: (rows, voxel indices)}`` of every landmark file written, keyed ``"<case>/<00|01>"``.
    """
    rng = np.random.default_rng(3)
    written, cases = {}, {}
    for case, day in BRATS_DAYS.items():
        content = BratsCase(day=day, scans={"00": {}, "01": {}})
        for time in ("00", "01"):
            for modality in synthetic_releases.BRATS_MODALITIES:
                content.scans[time][modality] = Volume(
                    rng.integers(0, 1000, SHAPE).astype(np.int16), origin=BRATS_ORIGIN, direction=IDENTITY
                )
            if case == validation_case and time == "00":
                continue
            rows, index = brats_landmark_rows(rng, 6)
            content.landmarks[time] = rows
            written[f"{case}/{time}"] = (rows, index)
        cases[case] = content
    synthetic_releases.write_brats_reg(root, cases)
    return written
