"""Write small synthetic copies of the public releases in their OWN layouts (no network needed).

::

    python data_scripts/synthetic_releases.py {neurite-oasis,learn2reg-oasis,abdomen-mrct,brats-reg} OUTPUT
        [--cases N] [--shape X Y Z] [--seed 0]

The folder written is what the download would give after unpacking (file names, json keys, landmark CSV
headers and image geometry conventions of the real release), so the converters in ``data_scripts/``
(``learn2reg_oasis.py``, ``learn2reg_abdomen_ctmr.py``, ``brats_reg.py``) and the demos run on it
unchanged. The volumes are analytic phantoms, not noise, so that a segmenter and a registration network
can learn something from them:

- **brain** (OASIS, BraTSReg): an ellipsoidal brain with a cortical shell (label 1), two subcortical grey
  matter nuclei (2), white matter (3) and two ventricles (CSF, 4), the neurite-oasis ``seg4`` order; each
  subject's anatomy is the template seen through its own smooth random deformation and scaling, so
  inter-subject registration is not the identity. ``seg35`` splits each of the four by hemisphere
  (label numbers 1..8 of the 35). T1-like intensities (white matter brightest, CSF darkest), Gaussian
  blur of 0.7 voxel and a little noise.
- **abdomen** (Learn2Reg AbdomenMRCT): a body cross-section with liver (1), spleen (2), right (3) and
  left (4) kidney (Learn2Reg's label numbers) and an unlabelled spine; CT in Hounsfield units, MR with
  another contrast; the MR of a patient is its CT anatomy under a small deformation.
- **BraTSReg**: the brain with a contrast-enhancing tumour (bright rim in T1-CE) at baseline and a dark
  resection cavity at follow-up, the follow-up being the baseline anatomy under a smooth deformation
  ``u`` (up to 3 voxels). Landmarks are brain voxels ``q`` of the follow-up away from the tumour; their
  baseline positions are ``q + u(q)`` (both scans are evaluated analytically; the only approximation is
  the linear interpolation of the smooth subject coordinates at ``q + u(q)``, far below a voxel). They are
  written in BraTSReg's convention: ``Landmark,X,Y,Z`` in mm of ITK's LPS frame for 1 mm voxels, identity
  direction and origin ``(0, -(Y size - 1), 0)``.

The layout writers (``write_*``) take the volumes as arrays, so tests can write any content in the same
layouts (tests/data_scripts/fixtures.py writes random volumes with them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
BRATS_MODALITIES = ("t1", "t1ce", "t2", "flair")
RELEASES = ("neurite-oasis", "learn2reg-oasis", "abdomen-mrct", "brats-reg")


@dataclass
class Volume:
    """An ``(i, j, k)`` array with its grid (spacing and origin in mm, row-major 3 x 3 direction)."""

    array: np.ndarray
    spacing: Tuple[float, ...] = (1.0, 1.0, 1.0)
    origin: Tuple[float, ...] = (0.0, 0.0, 0.0)
    direction: Tuple[float, ...] = IDENTITY


def write_volume(path: str, array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None):
    """Write an ``(i, j, k)`` array with SimpleITK (which stores ``(k, j, i)``), compressed."""
    image = sitk.GetImageFromArray(np.transpose(np.asarray(array)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in origin])
    image.SetDirection([float(d) for d in (direction or IDENTITY)])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sitk.WriteImage(image, path, True)


def _write(path: str, volume: Volume) -> None:
    write_volume(path, volume.array, volume.spacing, volume.origin, volume.direction)


def _write_json(path: str, content: dict) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=4)


def write_landmark_csv(path: str, rows: np.ndarray) -> None:
    """BraTSReg's landmark file: the header ``Landmark,X,Y,Z``, then ``number,x,y,z`` (mm) per row."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as stream:
        stream.write("Landmark,X,Y,Z\n")
        for row in np.asarray(rows):
            stream.write(f"{int(row[0])},{row[1]:.6g},{row[2]:.6g},{row[3]:.6g}\n")


# ------------------------------------------------------------------------------------------ layout writers
def write_learn2reg_oasis(
    root: str,
    subjects: Mapping[int, Mapping[str, Volume]],
    training: Sequence[int],
    registration_val: Sequence[Tuple[int, int]],
) -> None:
    """Learn2Reg OASIS: ``OASIS_dataset.json`` and ``{images,labels,masks}Tr/OASIS_XXXX_0000.nii.gz``.

    Args:
        subjects: ``{number: {"image", "label", "mask": Volume}}``; the label maps hold 0..35.
        training: subject numbers listed in the json's ``training``.
        registration_val: ``(fixed, moving)`` subject numbers of the validation pairs.
    """
    for n, files in subjects.items():
        name = f"OASIS_{n:04d}_0000.nii.gz"
        for kind, folder in (("image", "imagesTr"), ("label", "labelsTr"), ("mask", "masksTr")):
            _write(os.path.join(root, folder, name), files[kind])
    entry = lambda n: f"./imagesTr/OASIS_{n:04d}_0000.nii.gz"  # noqa: E731
    shape = list(next(iter(subjects.values()))["image"].array.shape)
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
            "tensorImageShape": {"0": shape},
            "numTraining": len(training),
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
            "numRegistration_val": len(registration_val),
            "registration_val": [{"fixed": entry(f), "moving": entry(m)} for f, m in registration_val],
            "numRegistration_test": 0,
            "registration_test": [],
        },
    )


def write_neurite_oasis(root: str, subjects: Mapping[str, Mapping[str, Volume]]) -> List[str]:
    """neurite-oasis: ``<subject>/aligned_{norm,orig,seg4,seg35}.nii.gz`` and ``subjects.txt``; returns the IDs."""
    for subject, files in subjects.items():
        for kind in ("norm", "orig", "seg4", "seg35"):
            _write(os.path.join(root, subject, f"aligned_{kind}.nii.gz"), files[kind])
    ids = list(subjects)
    with open(os.path.join(root, "subjects.txt"), "w") as stream:
        stream.write("\n".join(ids) + "\n")
    return ids


def write_abdomen_mrct(
    root: str,
    scans: Mapping[Tuple[int, int], Mapping[str, Volume]],
    training_pairs: Sequence[int],
    registration_val: Sequence[int],
) -> None:
    """Learn2Reg AbdomenMRCT: ``{images,labels,masks}Tr/AbdomenMRCT_XXXX_000C.nii.gz`` (C 0 = MR, 1 = CT).

    Args:
        scans: ``{(case, channel): {"image", "label", "mask": Volume}}``; labels 0..4.
        training_pairs, registration_val: cases with both channels, listed as (fixed MR, moving CT) pairs
            in ``training_paired_images`` and ``registration_val``, as Learn2Reg lists them.
    """
    for (case, channel), files in scans.items():
        name = f"AbdomenMRCT_{case:04d}_{channel:04d}.nii.gz"
        for kind, folder in (("image", "imagesTr"), ("label", "labelsTr"), ("mask", "masksTr")):
            _write(os.path.join(root, folder, name), files[kind])
    path = lambda c, ch: f"./imagesTr/AbdomenMRCT_{c:04d}_{ch:04d}.nii.gz"  # noqa: E731
    pair = lambda c: {"fixed": path(c, 0), "moving": path(c, 1)}  # noqa: E731
    shape = list(next(iter(scans.values()))["image"].array.shape)
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
            "tensorImageShape": {"0": shape, "1": shape},
            "numTraining": len(scans),
            "numTest": 0,
            "training": [
                {
                    "image": path(c, ch),
                    "label": path(c, ch).replace("imagesTr", "labelsTr"),
                    "mask": path(c, ch).replace("imagesTr", "masksTr"),
                }
                for c, ch in scans
            ],
            "test": [],
            "numPairedTraining": len(training_pairs),
            "training_paired_images": [pair(c) for c in training_pairs],
            "numRegistration_val": len(registration_val),
            "registration_val": [pair(c) for c in registration_val],
            "numRegistration_test": 0,
            "registration_test": [],
        },
    )


@dataclass
class BratsCase:
    """One BraTSReg case: the follow-up day, the scans per time point and the landmark rows per time point.

    Attributes:
        day: 4-digit day of the follow-up scan (the baseline is day ``0000``).
        scans: ``{"00" | "01": {modality: Volume}}`` for the four modalities.
        landmarks: ``{"00" | "01": (n, 4) rows (number, X, Y, Z)}``; a missing time point writes no file
            (the validation release withholds one).
    """

    day: str
    scans: Dict[str, Dict[str, Volume]]
    landmarks: Dict[str, np.ndarray] = field(default_factory=dict)


def write_brats_reg(root: str, cases: Mapping[str, BratsCase]) -> None:
    """BraTSReg 2022: ``<case>/<case>_{00_0000,01_<day>}_{t1,t1ce,t2,flair}.nii.gz`` and ``..._landmarks.csv``."""
    for case, content in cases.items():
        folder = os.path.join(root, case)
        for time, day in (("00", "0000"), ("01", content.day)):
            for modality in BRATS_MODALITIES:
                _write(os.path.join(folder, f"{case}_{time}_{day}_{modality}.nii.gz"), content.scans[time][modality])
            if time in content.landmarks:
                write_landmark_csv(os.path.join(folder, f"{case}_{time}_{day}_landmarks.csv"), content.landmarks[time])


# ------------------------------------------------------------------------------------------ phantoms
def normalised_grid(shape: Sequence[int]) -> np.ndarray:
    """``(3, *shape)`` voxel-centre coordinates in [-1, 1] along each axis."""
    axes = [np.linspace(-1.0, 1.0, int(n)) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def smooth_displacement(shape: Sequence[int], rng: np.random.Generator, amplitude: float, sigma: float) -> np.ndarray:
    """``(3, *shape)`` smooth random field, largest component ``amplitude`` (units of the caller's coordinates).

    White noise blurred with a Gaussian of ``sigma`` voxels, then scaled. The blur wraps around (a periodic
    field): its variance is then the same everywhere, whereas a replicated border would pile the variance up
    in the corners, where the scaling to ``amplitude`` would leave the interior almost still.
    """
    noise = rng.standard_normal((3,) + tuple(shape))
    field = np.stack([ndimage.gaussian_filter(c, sigma, mode="wrap") for c in noise])
    return field * (amplitude / max(np.abs(field).max(), 1e-12))


def _inside(coords: np.ndarray, centre, radii) -> np.ndarray:
    centre = np.asarray(centre, dtype=np.float64).reshape(3, *([1] * (coords.ndim - 1)))
    radii = np.asarray(radii, dtype=np.float64).reshape(3, *([1] * (coords.ndim - 1)))
    return (((coords - centre) / radii) ** 2).sum(axis=0) <= 1.0


def brain_labels(coords: np.ndarray) -> np.ndarray:
    """The 4-label brain (1 cortex, 2 subcortical grey matter, 3 white matter, 4 CSF) at ``coords`` (3, ...)."""
    labels = np.zeros(coords.shape[1:], dtype=np.uint8)
    brain = _inside(coords, (0, 0, 0), (0.8, 0.85, 0.75))
    inner = _inside(coords, (0, 0, 0), (0.66, 0.71, 0.61))
    labels[brain] = 1
    labels[inner] = 3
    for side in (-1, 1):
        labels[_inside(coords, (0.32 * side, -0.05, 0.0), (0.14, 0.17, 0.14))] = 2
        labels[_inside(coords, (0.13 * side, 0.08, 0.05), (0.08, 0.3, 0.13))] = 4
    return labels


#: T1-like intensity of background and labels 1..4 (cortex, subcortical GM, WM, CSF)
BRAIN_T1 = np.array([0.0, 0.55, 0.65, 0.9, 0.15], dtype=np.float32)


def _render(labels: np.ndarray, table: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    image = ndimage.gaussian_filter(table[labels].astype(np.float32), 0.7)
    return (image + noise * rng.standard_normal(labels.shape)).astype(np.float32)


def subject_coords(shape: Sequence[int], rng: np.random.Generator, amplitude: float = 0.08) -> np.ndarray:
    """One subject's view of the template: scaled (+-6 %) and smoothly deformed normalised coordinates."""
    coords = normalised_grid(shape)
    scale = rng.uniform(0.94, 1.06, 3).reshape(3, 1, 1, 1)
    return coords * scale + smooth_displacement(shape, rng, amplitude, sigma=max(shape) / 6.0)


def synthetic_neurite_oasis(count: int, shape: Sequence[int], seed: int = 0) -> Dict[str, Dict[str, Volume]]:
    """``{OASIS_OAS1_XXXX_MR1: {norm, orig, seg4, seg35}}`` of ``count`` brain phantoms (1 mm, identity)."""
    rng = np.random.default_rng(seed)
    subjects = {}
    for n in range(1, count + 1):
        coords = subject_coords(shape, rng)
        seg4 = brain_labels(coords)
        right = coords[0] > 0
        seg35 = np.where(seg4 > 0, seg4 + 4 * right, 0).astype(np.uint8)
        norm = _render(seg4, BRAIN_T1, rng, 0.02)
        orig = (norm * 180.0 + 20.0 + 5.0 * rng.standard_normal(shape)).astype(np.float32)
        subjects[f"OASIS_OAS1_{n:04d}_MR1"] = {
            "norm": Volume(np.clip(norm, 0.0, None)),
            "orig": Volume(orig),
            "seg4": Volume(seg4),
            "seg35": Volume(seg35),
        }
    return subjects


def synthetic_learn2reg_oasis(count: int, shape: Sequence[int], seed: int = 0) -> Dict[int, Dict[str, Volume]]:
    """``{number: {image, label, mask}}``: the brain phantoms with their 35-label maps and brain masks."""
    subjects = {}
    for n, (_, files) in enumerate(synthetic_neurite_oasis(count, shape, seed).items(), start=1):
        subjects[n] = {
            "image": files["norm"],
            "label": files["seg35"],
            "mask": Volume((files["seg4"].array > 0).astype(np.uint8)),
        }
    return subjects


def abdomen_labels(coords: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels 0..4, body mask, spine mask)`` of the abdomen phantom at ``coords`` (3, ...)."""
    body = _inside(coords, (0, 0, 0), (0.92, 0.72, 1.6))
    spine = _inside(coords, (0, 0.48, 0), (0.1, 0.1, 1.6))
    labels = np.zeros(coords.shape[1:], dtype=np.uint8)
    labels[_inside(coords, (-0.38, -0.08, 0.2), (0.38, 0.32, 0.4))] = 1  # liver (patient's right: -x)
    labels[_inside(coords, (0.48, 0.12, 0.25), (0.16, 0.16, 0.22))] = 2  # spleen
    labels[_inside(coords, (-0.3, 0.34, -0.3), (0.11, 0.13, 0.2))] = 3  # right kidney
    labels[_inside(coords, (0.3, 0.34, -0.3), (0.11, 0.13, 0.2))] = 4  # left kidney
    labels[~body] = 0
    return labels, body, spine & body


#: background (air), body, liver, spleen, right and left kidney, spine
CT_HU = np.array([-1000.0, 30.0, 60.0, 45.0, 160.0, 160.0, 700.0], dtype=np.float32)
MR_T2 = np.array([0.0, 250.0, 380.0, 620.0, 520.0, 520.0, 120.0], dtype=np.float32)


def _abdomen_image(coords, rng, table, noise) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, body, spine = abdomen_labels(coords)
    classes = np.where(labels > 0, labels + 1, np.where(spine, 6, body.astype(np.uint8)))
    return _render(classes.astype(np.int64), table, rng, noise), labels, body.astype(np.uint8)


def synthetic_abdomen_mrct(cases: int, shape: Sequence[int], seed: int = 0) -> Dict[Tuple[int, int], Dict[str, Volume]]:
    """``{(case, channel): {image, label, mask}}``: MR (channel 0) and CT (1) of ``cases`` patients, 2 mm."""
    rng = np.random.default_rng(seed)
    grid = dict(spacing=(2.0, 2.0, 2.0), origin=(-0.5 * shape[0], -0.5 * shape[1], 0.0))
    scans = {}
    for case in range(1, cases + 1):
        ct_coords = subject_coords(shape, rng, amplitude=0.07)
        # the same patient in the MR scanner: breathing and positioning move the organs a little
        mr_coords = ct_coords + smooth_displacement(shape, rng, 0.05, sigma=max(shape) / 5.0)
        for channel, coords, table, noise in ((0, mr_coords, MR_T2, 15.0), (1, ct_coords, CT_HU, 10.0)):
            image, labels, body = _abdomen_image(coords, rng, table, noise)
            scans[(case, channel)] = {
                "image": Volume(image, **grid),
                "label": Volume(labels, **grid),
                "mask": Volume(body, **grid),
            }
    return scans


def brats_origin(shape: Sequence[int]) -> Tuple[float, float, float]:
    """BraTSReg's origin scaled to ``shape``: (0, -(Y size - 1), 0) for 1 mm voxels, identity LPS direction."""
    return (0.0, -(float(shape[1]) - 1.0), 0.0)


#: t1, t1ce, t2, flair intensities of background, labels 1..4, tumour rim, tumour core, cavity
BRATS_TABLES = {
    "t1": np.array([0.0, 0.55, 0.65, 0.9, 0.15, 0.5, 0.35, 0.12], dtype=np.float32),
    "t1ce": np.array([0.0, 0.55, 0.65, 0.85, 0.15, 1.0, 0.3, 0.12], dtype=np.float32),
    "t2": np.array([0.0, 0.6, 0.55, 0.35, 0.95, 0.75, 0.8, 0.95], dtype=np.float32),
    "flair": np.array([0.0, 0.6, 0.55, 0.45, 0.1, 0.9, 0.8, 0.2], dtype=np.float32),
}


def _brats_classes(coords: np.ndarray, tumour_centre, tumour_radius: float, follow_up: bool) -> np.ndarray:
    classes = brain_labels(coords).astype(np.int64)
    if follow_up:  # resected: a smaller cavity of fluid
        classes[_inside(coords, tumour_centre, [0.7 * tumour_radius] * 3)] = 7
    else:
        classes[_inside(coords, tumour_centre, [tumour_radius] * 3)] = 5
        classes[_inside(coords, tumour_centre, [0.6 * tumour_radius] * 3)] = 6
    return classes


def synthetic_brats_reg(
    cases: int, shape: Sequence[int], seed: int = 0, landmarks: int = 8, withhold_baseline: Sequence[str] = ()
) -> Dict[str, BratsCase]:
    """``{BraTSReg_XXX: BratsCase}``: baseline with tumour, deformed follow-up with cavity, landmarks.

    Landmark ``k`` is the follow-up voxel ``q_k`` (an integer index inside the brain, outside the tumour)
    and the baseline point ``q_k + u(q_k)`` (the deformation in voxels), both as mm in the LPS frame.
    ``withhold_baseline`` lists cases whose baseline landmark file is not written.
    """
    rng = np.random.default_rng(seed)
    origin = np.asarray(brats_origin(shape))
    grid = dict(spacing=(1.0, 1.0, 1.0), origin=tuple(origin), direction=IDENTITY)
    out = {}
    for case in range(1, cases + 1):
        name = f"BraTSReg_{case:03d}"
        base = subject_coords(shape, rng)
        u_voxels = smooth_displacement(shape, rng, 3.0, sigma=max(shape) / 5.0)  # follow-up -> baseline, voxels
        # the follow-up at voxel q shows the baseline at q + u(q): evaluate the subject's coordinates there
        index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).astype(np.float64)
        follow = np.stack(
            [ndimage.map_coordinates(base[c], index + u_voxels, order=1, mode="nearest") for c in range(3)]
        )
        side = rng.choice([-1.0, 1.0])
        centre = (0.4 * side, rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.3))
        radius = rng.uniform(0.14, 0.2)
        scans: Dict[str, Dict[str, Volume]] = {"00": {}, "01": {}}
        for time, coords in (("00", base), ("01", follow)):
            classes = _brats_classes(coords, centre, radius, follow_up=time == "01")
            for modality, table in BRATS_TABLES.items():
                image = np.clip(_render(classes, table, rng, 0.02), 0.0, None) * 1000.0
                scans[time][modality] = Volume(image.astype(np.int16), **grid)
        # landmarks: follow-up brain voxels away from the tumour and the border, with their baseline match
        follow_classes = _brats_classes(follow, centre, radius, follow_up=True)
        margin = max(1, min(3, min(shape) // 8))
        candidates = np.argwhere(np.isin(follow_classes, (1, 2, 3, 4)))
        keep = np.all((candidates >= margin) & (candidates < np.asarray(shape) - margin), axis=1)
        candidates = candidates[keep]
        if len(candidates) == 0:
            raise ValueError(f"shape {list(shape)} is too small to place landmarks in the brain; use 16 voxels or more")
        chosen = candidates[rng.choice(len(candidates), size=min(landmarks, len(candidates)), replace=False)]
        baseline = chosen + u_voxels[:, chosen[:, 0], chosen[:, 1], chosen[:, 2]].T
        numbers = np.arange(1, len(chosen) + 1)[:, None]
        rows = {
            "01": np.concatenate([numbers, chosen + origin], axis=1),
            "00": np.concatenate([numbers, baseline + origin], axis=1),
        }
        if name in withhold_baseline:
            del rows["00"]
        out[name] = BratsCase(day=f"{int(rng.integers(20, 400)):04d}", scans=scans, landmarks=rows)
    return out


# ------------------------------------------------------------------------------------------ command line
def write_release(release: str, output: str, cases: int, shape: Sequence[int], seed: int = 0) -> str:
    """Write the synthetic ``release`` (one of :data:`RELEASES`) into the new folder ``output``; returns it.

    Learn2Reg OASIS: the last two subjects are the validation pair; AbdomenMRCT: every case is paired, the
    last one is ``registration_val``.

    Raises:
        ValueError: an unknown release, fewer cases than the layout needs, or a shape that is not 3 sizes >= 8.
        FileExistsError: ``output`` exists and is not an empty folder.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be three sizes of at least 8 voxels, got {list(shape)}")
    if release not in RELEASES:
        raise ValueError(f"release must be one of {list(RELEASES)}, got {release!r}")
    if cases < 2:
        raise ValueError(f"cases must be at least 2 (a training and a validation case), got {cases}")
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise FileExistsError(f"output {output} exists and is not an empty folder: choose a new folder")
    if release == "neurite-oasis":
        write_neurite_oasis(output, synthetic_neurite_oasis(cases, shape, seed))
    elif release == "learn2reg-oasis":
        subjects = synthetic_learn2reg_oasis(cases, shape, seed)
        write_learn2reg_oasis(output, subjects, list(subjects), [(cases, cases - 1)])
    elif release == "abdomen-mrct":
        write_abdomen_mrct(output, synthetic_abdomen_mrct(cases, shape, seed), list(range(1, cases + 1)), [cases])
    else:
        write_brats_reg(output, synthetic_brats_reg(cases, shape, seed))
    return output


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", choices=RELEASES, help="which public release's layout to write")
    parser.add_argument("output", help="new or empty output folder")
    parser.add_argument("--cases", type=int, default=8, help="subjects / patients / cases (default 8)")
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 32, 32], metavar=("X", "Y", "Z"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        write_release(args.release, args.output, args.cases, args.shape, args.seed)
    except (ValueError, OSError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    print(f"synthetic {args.release} release with {args.cases} case(s) of {args.shape} voxels in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
