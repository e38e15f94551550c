"""Convert the OASIS brain MRI release of Learn2Reg (or neurite-oasis) into DeepReg's unpaired layout.

::

    python data_scripts/learn2reg_oasis.py SOURCE OUTPUT [--split json|paper] [--split-counts 314 50 50]
        [--seed 0] [--labels 35|4] [--label-format onehot|integer] [--masks]

Download (no network is needed by the converter itself):

- Learn2Reg 2021 task 3 re-release: ``OASIS.zip`` from the OASIS entry of
  https://learn2reg.grand-challenge.org/Datasets/ (University of Lübeck cloud), then
  ``unzip OASIS.zip -d ~/data`` gives ``~/data/OASIS`` (the SOURCE);
- neurite-oasis v1.0 (Hoopes and Dalca, HyperMorph):
  ``wget https://surfer.nmr.mgh.harvard.edu/ftp/data/neurite/data/neurite-oasis.v1.0.tar`` then
  ``mkdir -p ~/data/neurite-oasis && tar -xf neurite-oasis.v1.0.tar -C ~/data/neurite-oasis``. Neither
  release publishes checksums; third-party loaders quote the MD5 ``081392a8150ff99ab7a64a9ded377835``
  for this tar (check with ``md5sum``, not verified here).

Source layouts (found automatically):

- **Learn2Reg**: ``OASIS_dataset.json``, ``imagesTr/OASIS_XXXX_0000.nii.gz``, ``labelsTr/...`` (35 labels),
  ``masksTr/...`` (brain masks). The json's ``training`` list (``image``/``label``/``mask`` paths relative
  to SOURCE) names the labelled subjects, ``registration_val`` the validation pairs (``fixed``/``moving``).
- **neurite-oasis**: one folder per subject (``OASIS_OAS1_0001_MR1/``) holding ``aligned_norm.nii.gz``
  (skull-stripped, intensity-normalised T1, 160 x 192 x 224, 1 mm), ``aligned_seg4.nii.gz`` (cortex,
  subcortical grey matter, white matter, CSF) and ``aligned_seg35.nii.gz``.

Output (DeepReg's unpaired layout, ``type: unpaired``)::

    OUTPUT/{train,valid,test}/images/<subject>.nii.gz     the image, copied unchanged
    OUTPUT/{train,valid,test}/labels/<subject>.nii.gz     its label map (see --label-format)
    OUTPUT/{train,valid,test}/masks/<subject>.nii.gz      with --masks (Learn2Reg only), copied unchanged
    OUTPUT/conversion.json, OUTPUT/checksums.sha256       options, split of every subject; SHA-256 manifest

Subject IDs: ``OASIS_0001`` (Learn2Reg: the image name without its ``_0000`` channel suffix) or the
subject folder name (neurite-oasis). Splits:

- ``json`` (default for Learn2Reg): ``valid`` = the subjects of ``registration_val`` (their label files
  taken from the ``training`` entry, else ``labelsTr/`` beside the image), ``train`` = the other subjects of
  ``training``; no ``test`` (the Learn2Reg test labels are not published).
- ``paper`` (default for neurite-oasis): WSSAMNet++'s train:valid:test = 314:50:50 of the labelled
  subjects (Learn2Reg: the ``training`` list), drawn at random with ``--seed``
  (:func:`data_scripts.conversion.seeded_split`: sorted IDs, NumPy ``default_rng(seed).permutation``);
  ``--split-counts`` changes the counts, which must add up to the number of subjects.

Labels: ``--labels 35`` (default) or ``4`` (neurite-oasis only; the Learn2Reg release has only the 35-label
maps). ``--label-format onehot`` (default) writes ``(i, j, k, K)`` binary channels for labels ``1..K`` (what
tfreg's loaders read); ``integer`` copies the published label maps unchanged.

Configurations reading the output: ``config/transmorph_oasis_35.yaml`` (the Learn2Reg release, json split, in
``data/oasis_l2r``); ``config/transmorph_oasis_4.yaml``, ``config/swin_unetr_oasis_segmenter.yaml`` and
``config/wssamnet_pp_oasis_*.yaml`` (neurite-oasis with ``--labels 4``, paper split, in ``data/oasis``).
``tfreg_evaluate --learn2reg`` writes Learn2Reg's Dice, HD95 and SDlogJ of their predictions.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_scripts.conversion import (  # noqa: E402
    PlannedFile,
    add_label_format_argument,
    add_split_arguments,
    check_label_format,
    check_output_folder,
    check_same_grid,
    check_source_folder,
    converter_parser,
    image_info,
    learn2reg_label_count,
    nifti_stem,
    read_json,
    require_file,
    run_converter,
    seeded_split,
    split_record,
    write_tree,
)
from tfreg.data.errors import DataError, DataNotFoundError  # noqa: E402

#: Learn2Reg's dataset description file.
DATASET_JSON = "OASIS_dataset.json"
#: neurite-oasis file names per subject folder.
NEURITE_IMAGE = "aligned_norm.nii.gz"
NEURITE_LABELS = {4: "aligned_seg4.nii.gz", 35: "aligned_seg35.nii.gz"}
#: WSSAMNet++'s OASIS split (train, valid, test).
PAPER_SPLIT = (314, 50, 50)
SPLIT_MODES = ("json", "paper")

# Learn2Reg names files <case>_<channel 4 digits>.nii.gz
_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def detect_layout(source: str) -> str:
    """``"learn2reg"`` (``OASIS_dataset.json`` present) or ``"neurite"`` (subject folders with images).

    Raises:
        DataNotFoundError: neither layout is found, naming what was looked for.
    """
    if os.path.isfile(os.path.join(source, DATASET_JSON)):
        return "learn2reg"
    if glob.glob(os.path.join(glob.escape(source), "*", NEURITE_IMAGE)):
        return "neurite"
    raise DataNotFoundError(
        f"{source} is neither a Learn2Reg OASIS folder (expected {os.path.join(source, DATASET_JSON)}) nor a "
        f"neurite-oasis folder (expected subject folders holding {NEURITE_IMAGE})"
    )


def case_id(image_path: str) -> str:
    """``OASIS_0001`` for ``.../OASIS_0001_0000.nii.gz`` (Learn2Reg's channel suffix removed)."""
    stem = nifti_stem(image_path)
    match = _CHANNEL_RE.match(stem)
    return match.group("case") if match else stem


def _resolve(source: str, relative: object, key: str) -> str:
    if not isinstance(relative, str) or not relative:
        raise DataError(f"{os.path.join(source, DATASET_JSON)}: {key} must be a file path, got {relative!r}")
    return os.path.normpath(os.path.join(source, relative))


def learn2reg_subjects(source: str, masks: bool) -> Tuple[Dict[str, Dict[str, str]], List[str], dict]:
    """The labelled subjects of a Learn2Reg release, the validation subjects, and the json.

    Returns:
        ``({subject: {"image", "label"[, "mask"]: path}}`` for ``training`` and validation subjects,
        sorted validation subject IDs (empty without ``registration_val``), the parsed json).
    """
    json_path = os.path.join(source, DATASET_JSON)
    info = read_json(json_path, "Learn2Reg dataset description")
    training = info.get("training")
    if not isinstance(training, list) or not training:
        raise DataError(f"{json_path}: key 'training' must be a non-empty list of {{image, label, mask}} entries")
    subjects: Dict[str, Dict[str, str]] = {}
    for n, entry in enumerate(training):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise DataError(f"{json_path}: training[{n}] must hold 'image' and 'label' paths, got {entry!r}")
        image = _resolve(source, entry["image"], f"training[{n}].image")
        files = {"image": image, "label": _resolve(source, entry["label"], f"training[{n}].label")}
        if masks:
            files["mask"] = _resolve(source, entry.get("mask"), f"training[{n}].mask")
        subjects[case_id(image)] = files
    valid: List[str] = []
    for n, pair in enumerate(info.get("registration_val") or []):
        if not isinstance(pair, dict) or "fixed" not in pair or "moving" not in pair:
            raise DataError(f"{json_path}: registration_val[{n}] must hold 'fixed' and 'moving', got {pair!r}")
        for role in ("fixed", "moving"):
            image = _resolve(source, pair[role], f"registration_val[{n}].{role}")
            subject = case_id(image)
            if subject not in subjects:  # a validation subject outside 'training': its files beside the image
                folder, name = os.path.split(image)
                parent = os.path.dirname(folder)
                files = {"image": image, "label": os.path.join(parent, "labelsTr", name)}
                if masks:
                    files["mask"] = os.path.join(parent, "masksTr", name)
                subjects[subject] = files
            if subject not in valid:
                valid.append(subject)
    return subjects, sorted(valid), info


def neurite_subjects(source: str, num_labels: int) -> Dict[str, Dict[str, str]]:
    """``{subject folder: {"image", "label"}}`` of a neurite-oasis release (every folder with an image)."""
    subjects = {}
    for image in sorted(glob.glob(os.path.join(glob.escape(source), "*", NEURITE_IMAGE))):
        folder = os.path.dirname(image)
        subjects[os.path.basename(folder)] = {"image": image, "label": os.path.join(folder, NEURITE_LABELS[num_labels])}
    return subjects


def convert(
    source: str,
    output: str,
    split: Optional[str] = None,
    split_counts: Sequence[int] = PAPER_SPLIT,
    seed: int = 0,
    num_labels: int = 35,
    label_format: str = "onehot",
    masks: bool = False,
) -> Dict[str, List[str]]:
    """Convert a Learn2Reg OASIS or neurite-oasis folder into DeepReg's unpaired layout at ``output``.

    Args:
        source: the extracted release (see the module docstring for both layouts).
        output: a new (or empty) folder outside ``source``.
        split: ``"json"`` (Learn2Reg's training/validation lists) or ``"paper"`` (seeded counts); None:
            ``json`` for Learn2Reg, ``paper`` for neurite-oasis.
        split_counts: ``(train, valid, test)`` subject counts of the ``paper`` split; must add up to the
            number of labelled subjects.
        seed: seed of the ``paper`` split.
        num_labels: 35 or 4 (4: neurite-oasis only).
        label_format: ``"onehot"`` or ``"integer"`` (see :mod:`data_scripts.conversion`).
        masks: also copy Learn2Reg's brain masks into ``<split>/masks/``.

    Returns:
        ``{split: sorted subject IDs}`` of the written splits.

    Raises:
        DataNotFoundError: a missing source folder, json, image, label or mask file (naming it).
        DataError: a malformed json, an unreadable image, a label not on its image's grid, label values
            outside ``0..num_labels``.
        FileExistsError / ValueError: an unusable output folder (exists and not empty, inside the source),
            bad options.
    """
    source = check_source_folder(source, "OASIS source folder")
    output = check_output_folder(output, source)
    check_label_format(label_format)
    if num_labels not in NEURITE_LABELS:
        raise ValueError(f"num_labels must be 35 or 4 (the OASIS label maps), got {num_labels!r}")
    layout = detect_layout(source)
    split = split or ("json" if layout == "learn2reg" else "paper")
    if split not in SPLIT_MODES:
        raise ValueError(f"split must be one of {list(SPLIT_MODES)}, got {split!r}")

    if layout == "learn2reg":
        if num_labels != 35:
            raise ValueError(
                f"num_labels={num_labels}: the Learn2Reg OASIS release has only the 35-label maps (labelsTr); "
                "use the neurite-oasis release for the 4-label maps"
            )
        subjects, valid, info = learn2reg_subjects(source, masks)
        declared = learn2reg_label_count(info)
        if declared is not None and declared != num_labels:
            raise DataError(f"{os.path.join(source, DATASET_JSON)} declares {declared} labels, expected {num_labels}")
        training = [case_id(e["image"]) for e in info["training"]]
        if split == "json":
            if not valid:
                raise DataError(
                    f"{os.path.join(source, DATASET_JSON)} has no 'registration_val' pairs; use split='paper'"
                )
            splits = {"train": sorted(set(training) - set(valid)), "valid": valid, "test": []}
        else:
            splits = seeded_split(sorted(set(training)), split_counts, seed)
    else:
        if masks:
            raise ValueError("masks=True: the neurite-oasis release has no mask files (its images are skull-stripped)")
        if split == "json":
            raise ValueError(f"split='json' needs Learn2Reg's {DATASET_JSON}; {source} is a neurite-oasis folder")
        subjects = neurite_subjects(source, num_labels)
        splits = seeded_split(sorted(subjects), split_counts, seed)

    plan = plan_files(subjects, splits, num_labels, label_format)
    record = {
        "converter": "learn2reg_oasis",
        "source": source,
        "layout": layout,
        "options": {
            "split": split,
            "split_counts": list(split_counts) if split == "paper" else None,
            "seed": seed if split == "paper" else None,
            "num_labels": num_labels,
            "label_format": label_format,
            "masks": masks,
        },
        "splits": split_record(splits),
    }
    write_tree(plan, output, record)
    return split_record(splits)


def plan_files(
    subjects: Dict[str, Dict[str, str]], splits: Dict[str, List[str]], num_labels: int, label_format: str
) -> List[PlannedFile]:
    """Check every subject's files (present, readable headers, label on its image's grid) and plan the output."""
    plan = []
    for split_name, ids in split_record(splits).items():
        for subject in ids:
            files = subjects[subject]
            image = files["image"]
            image_info(image, f"image of subject {subject}")
            check_same_grid(image, f"image of subject {subject}", files["label"], f"label map of subject {subject}")
            plan.append(PlannedFile(image, f"{split_name}/images/{subject}.nii.gz"))
            plan.append(
                PlannedFile(
                    files["label"],
                    f"{split_name}/labels/{subject}.nii.gz",
                    num_labels if label_format == "onehot" else 0,
                )
            )
            if "mask" in files:
                require_file(files["mask"], f"mask of subject {subject}")
                check_same_grid(image, f"image of subject {subject}", files["mask"], f"mask of subject {subject}")
                plan.append(PlannedFile(files["mask"], f"{split_name}/masks/{subject}.nii.gz"))
    return plan


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = converter_parser(__doc__, "extracted Learn2Reg OASIS folder (OASIS_dataset.json) or neurite-oasis folder")
    parser.add_argument(
        "--split",
        choices=SPLIT_MODES,
        help="json: Learn2Reg's training/registration_val lists (default for Learn2Reg); paper: seeded "
        "train:valid:test counts (default for neurite-oasis)",
    )
    add_split_arguments(parser, PAPER_SPLIT, "subjects per split for --split paper (default: WSSAMNet++'s 314 50 50)")
    parser.add_argument(
        "--labels", type=int, choices=(35, 4), default=35, help="label maps: 35 (default) or 4 (neurite-oasis only)"
    )
    add_label_format_argument(parser)
    parser.add_argument("--masks", action="store_true", help="also copy masksTr into <split>/masks (Learn2Reg)")
    args = parser.parse_args(argv)
    return run_converter(
        parser,
        lambda: convert(
            args.source,
            args.output,
            split=args.split,
            split_counts=args.split_counts,
            seed=args.seed,
            num_labels=args.labels,
            label_format=args.label_format,
            masks=args.masks,
        ),
        args.output,
        "subject(s)",
    )


if __name__ == "__main__":
    sys.exit(main())
