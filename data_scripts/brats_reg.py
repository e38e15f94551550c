"""Convert the BraTSReg 2022 release into DeepReg's paired layout (moving = follow-up, fixed = baseline).

::

    python data_scripts/brats_reg.py SOURCE OUTPUT [--modality t1ce] [--split train | --split-counts 104 29 7]
        [--seed 0] [--landmarks auto|require|none]

Download (no network is needed by the converter itself): the BraTS-Reg 2022 training and validation
archives (``BraTSReg_Training_Data_v3``, ``BraTSReg_Validation_Data``) are distributed after registration
on the challenge site (https://www.med.upenn.edu/cbica/brats-reg-challenge/, data access through CBICA's
Image Processing Portal), then e.g. ``unzip BraTSReg_Training_Data_v3.zip -d ~/data`` gives the SOURCE.
The release publishes no checksums.

Source layout: one folder per case, ``BraTSReg_XXX/``, holding the baseline (pre-operative) scan
``BraTSReg_XXX_00_<day>_{t1,t1ce,t2,flair}.nii.gz`` and the follow-up scan
``BraTSReg_XXX_01_<day>_{t1,t1ce,t2,flair}.nii.gz`` (``<day>``: 4 digits, days after the baseline; 0000 for
the baseline), 240 x 240 x 155 voxels of 1 mm, and the landmark files ``BraTSReg_XXX_00_<day>_landmarks.csv``
and ``BraTSReg_XXX_01_<day>_landmarks.csv`` (6 to 50 corresponding landmarks per case). The validation
release withholds one time point's landmarks (the ones a submission has to predict).

Output (DeepReg's paired layout, ``type: paired``; WSSAMNet's direction, follow-up registered to baseline)::

    OUTPUT/<split>/moving_images/<case>.nii.gz     the follow-up scan of --modality, copied unchanged
    OUTPUT/<split>/fixed_images/<case>.nii.gz      the baseline scan, copied unchanged
    OUTPUT/<split>/moving_landmarks/<case>.csv     the follow-up landmarks, copied unchanged
    OUTPUT/<split>/fixed_landmarks/<case>.csv      the baseline landmarks, copied unchanged
    OUTPUT/conversion.json, OUTPUT/checksums.sha256

``<case>`` is the folder name (``BraTSReg_001``), the same ID as the images, so a loader matches an image
and its landmarks by name, as DeepReg matches images and labels. A landmark file the release does not have
is absent from the output (``--landmarks auto``, the default); ``require`` refuses such a case, ``none``
copies no landmarks. There are no label maps (BraTSReg publishes no segmentations), so the pairs load with
``labeled: false``.

**Landmark coordinates** (what a loader must know): each CSV has the header ``Landmark,X,Y,Z``, then one
row per landmark: its number (1-based, the same number in the baseline and follow-up files marks
corresponding points) and its **physical position in mm in ITK's LPS world frame**, i.e. the frame of
SimpleITK's ``image.TransformIndexToPhysicalPoint``. A point ``p`` is therefore the 0-based voxel
index ``SimpleITK.Image.TransformPhysicalPointToContinuousIndex(p)`` of the image it belongs to. The
BraTSReg volumes have 1 mm spacing, identity LPS direction and origin (0, -239, 0), so the index is
``(X, Y + 239, Z)``: this is why the Y values are negative. (Evidence: public BraTSReg code passes the CSV
rows unchanged to ITK's ``TransformPoint`` for the challenge's landmark output, and ANTs-based evaluation
code adds 239 to Y to get voxel indices; the challenge's own description was not at hand.) The files are
copied as published; :func:`read_landmarks` reads one and ``conversion.json`` counts, per case, the
landmarks that fall outside their image's grid under this convention (0 expected).

Splits: ``--split NAME`` (default ``train``) writes every case into one split (e.g. ``valid`` for the
validation release); ``--split-counts 104 29 7`` draws WSSAMNet++'s train:valid:test split of the 140
training cases at random with ``--seed`` (:func:`data_scripts.conversion.seeded_split`).
"""

from __future__ import annotations

import csv
import glob
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_scripts.conversion import (  # noqa: E402
    SPLIT_NAMES,
    PlannedFile,
    add_split_arguments,
    check_output_folder,
    check_source_folder,
    converter_parser,
    image_info,
    run_converter,
    seeded_split,
    split_record,
    write_tree,
)
from tfreg.data.errors import DataError, DataNotFoundError  # noqa: E402

#: The four MR sequences of each time point.
MODALITIES = ("t1", "t1ce", "t2", "flair")
#: Time point codes in the file names: baseline (fixed) and follow-up (moving).
BASELINE, FOLLOW_UP = "00", "01"
#: The header of every landmark file.
LANDMARK_HEADER = ("Landmark", "X", "Y", "Z")
LANDMARK_MODES = ("auto", "require", "none")
#: WSSAMNet++'s split of the 140 training cases.
PAPER_SPLIT = (104, 29, 7)

_FILE_RE = re.compile(
    r"^(?P<case>.+)_(?P<time>0[01])_(?P<day>\d+)_(?P<kind>t1|t1ce|t2|flair|landmarks)\.(?:nii\.gz|csv)$"
)


def find_cases(source: str) -> List[str]:
    """Sorted case folders (``BraTSReg_*``) of a release; DataNotFoundError when there is none."""
    cases = sorted(
        os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(source), "BraTSReg_*")) if os.path.isdir(p)
    )
    if not cases:
        raise DataNotFoundError(f"no case folder (BraTSReg_XXX/) found in {source}")
    return cases


def case_files(source: str, case: str) -> Tuple[Dict[str, Dict[str, str]], Dict[str, str]]:
    """``({time: {kind: path}}, {time: day})`` of one case folder.

    ``time`` is ``00`` (baseline) or ``01`` (follow-up), ``kind`` a modality or ``landmarks``, ``day`` the
    4-digit day of that time point in the file names.

    Raises:
        DataError: two days for one time point, or two files of one kind.
    """
    folder = os.path.join(source, case)
    found: Dict[str, Dict[str, str]] = {BASELINE: {}, FOLLOW_UP: {}}
    days: Dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        match = _FILE_RE.match(name)
        if not match or match.group("case") != case:
            continue
        time, kind = match.group("time"), match.group("kind")
        if days.setdefault(time, match.group("day")) != match.group("day"):
            raise DataError(f"{folder}: time point {time} has files of two days ({days[time]}, {match.group('day')})")
        found[time][kind] = os.path.join(folder, name)
    return found, days


def read_landmarks(path: str) -> np.ndarray:
    """The landmarks of a BraTSReg CSV: float64 ``(n, 4)`` rows ``(number, X, Y, Z)`` (mm, ITK LPS frame).

    Raises:
        DataError: naming the file, for a header other than ``Landmark,X,Y,Z``, a row that is not four
            numbers, or no landmark.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            rows = [row for row in csv.reader(stream) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"landmark file {path} is not readable text: {err}") from err
    if not rows or tuple(cell.strip() for cell in rows[0]) != LANDMARK_HEADER:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"landmark file {path}: expected the header {','.join(LANDMARK_HEADER)}, found {found}")
    values = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            if len(row) != 4:
                raise ValueError(f"{len(row)} fields")
            values.append([float(cell) for cell in row])
        except ValueError as err:
            raise DataError(f"landmark file {path}, line {line}: expected 4 numbers, got {row} ({err})") from err
    if not values:
        raise DataError(f"landmark file {path} holds no landmark")
    points = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(points)):
        raise DataError(f"landmark file {path} holds non-finite coordinates")
    return points


def landmarks_outside_grid(points: np.ndarray, image_path: str) -> int:
    """How many landmarks (mm, LPS) map to a voxel index outside the image's grid (the documented convention)."""
    size, geometry = image_info(image_path, "image")
    to_index = np.linalg.inv(geometry.index_to_physical())
    homogeneous = np.concatenate([points[:, 1:4], np.ones((len(points), 1))], axis=1)
    index = (homogeneous @ to_index.T)[:, :3]
    inside = np.all((index >= -0.5) & (index <= np.asarray(size) - 0.5), axis=1)
    return int(np.sum(~inside))


def convert(
    source: str,
    output: str,
    modality: str = "t1ce",
    split: str = "train",
    split_counts: Optional[Sequence[int]] = None,
    seed: int = 0,
    landmarks: str = "auto",
) -> Dict[str, List[str]]:
    """Convert an extracted BraTSReg release into DeepReg's paired layout with landmark folders.

    Args:
        source: the release folder holding the ``BraTSReg_XXX/`` case folders.
        output: a new (or empty) folder outside ``source``.
        modality: ``t1``, ``t1ce`` (default, as WSSAMNet++), ``t2`` or ``flair``.
        split: the split every case goes to, when ``split_counts`` is None.
        split_counts: ``(train, valid, test)`` case counts drawn at random with ``seed`` (e.g. WSSAMNet++'s
            ``(104, 29, 7)``); must add up to the number of cases.
        seed: seed of the ``split_counts`` draw.
        landmarks: ``auto`` (copy the landmark files present), ``require`` (refuse a case without both),
            ``none``.

    Returns:
        ``{split: sorted case IDs}`` of the written splits.

    Raises:
        DataNotFoundError: a missing source folder, no case folder, a missing scan of ``modality`` (naming
            the expected file), or a missing landmark file with ``landmarks="require"``.
        DataError: unreadable scans, baseline and follow-up not on one grid, malformed landmark files.
        FileExistsError / ValueError: an unusable output folder or bad options.
    """
    source = check_source_folder(source, "BraTSReg source folder")
    output = check_output_folder(output, source)
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {list(MODALITIES)}, got {modality!r}")
    if landmarks not in LANDMARK_MODES:
        raise ValueError(f"landmarks must be one of {list(LANDMARK_MODES)}, got {landmarks!r}")
    cases = find_cases(source)
    if split_counts is not None:
        splits = seeded_split(cases, split_counts, seed)
    else:
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {list(SPLIT_NAMES)}, got {split!r}")
        splits = {split: cases}

    plan: List[PlannedFile] = []
    details: Dict[str, dict] = {}
    for split_name, ids in split_record(splits).items():
        for case in ids:
            files, days = case_files(source, case)
            entry: dict = {"days": {"baseline": days.get(BASELINE), "follow_up": days.get(FOLLOW_UP)}}
            scans = {}
            for time, role in ((FOLLOW_UP, "moving"), (BASELINE, "fixed")):
                if modality not in files[time]:
                    day = days.get(time, "<day>")
                    expected = os.path.join(source, case, f"{case}_{time}_{day}_{modality}.nii.gz")
                    point = "follow-up" if time == FOLLOW_UP else "baseline"
                    raise DataNotFoundError(
                        f"missing {point} {modality} scan of case {case}: expected the file {expected}"
                    )
                scans[role] = files[time][modality]
                image_info(scans[role], f"{role} scan of case {case}")
                plan.append(PlannedFile(scans[role], f"{split_name}/{role}_images/{case}.nii.gz"))
            if landmarks != "none":
                entry["landmarks"] = {}
                for time, role in ((FOLLOW_UP, "moving"), (BASELINE, "fixed")):
                    path = files[time].get("landmarks")
                    if path is None:
                        if landmarks == "require":
                            day = days.get(time, "<day>")
                            expected = os.path.join(source, case, f"{case}_{time}_{day}_landmarks.csv")
                            raise DataNotFoundError(
                                f"missing landmark file of case {case}: expected the file {expected}"
                            )
                        continue
                    points = read_landmarks(path)
                    entry["landmarks"][role] = {
                        "count": len(points),
                        "outside_grid": landmarks_outside_grid(points, scans[role]),
                    }
                    plan.append(PlannedFile(path, f"{split_name}/{role}_landmarks/{case}.csv"))
            details[case] = entry
    record = {
        "converter": "brats_reg",
        "source": source,
        "direction": {"moving": "follow-up (_01_)", "fixed": "baseline (_00_)"},
        "landmark_convention": "Landmark,X,Y,Z; X,Y,Z in mm, ITK LPS physical frame of the image (index = "
        "TransformPhysicalPointToContinuousIndex, 0-based)",
        "options": {
            "modality": modality,
            "split": None if split_counts is not None else split,
            "split_counts": list(split_counts) if split_counts is not None else None,
            "seed": seed if split_counts is not None else None,
            "landmarks": landmarks,
        },
        "cases": details,
        "splits": split_record(splits),
    }
    write_tree(plan, output, record)
    return split_record(splits)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = converter_parser(__doc__, "extracted BraTSReg release folder holding BraTSReg_XXX/ case folders")
    parser.add_argument("--modality", choices=MODALITIES, default="t1ce", help="MR sequence (default t1ce)")
    parser.add_argument(
        "--split", choices=SPLIT_NAMES, default="train", help="split that receives every case (default train)"
    )
    add_split_arguments(parser, None, "draw train/valid/test with these case counts instead (WSSAMNet++: 104 29 7)")
    parser.add_argument(
        "--landmarks",
        choices=LANDMARK_MODES,
        default="auto",
        help="auto: copy the landmark files present (default); require: refuse cases without both; none",
    )
    args = parser.parse_args(argv)
    return run_converter(
        parser,
        lambda: convert(
            args.source,
            args.output,
            modality=args.modality,
            split=args.split,
            split_counts=args.split_counts,
            seed=args.seed,
            landmarks=args.landmarks,
        ),
        args.output,
        "case(s)",
    )


if __name__ == "__main__":
    sys.exit(main())
