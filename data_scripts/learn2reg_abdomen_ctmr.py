"""Convert Learn2Reg's Abdomen MR-CT release into DeepReg's paired layout (by default moving = CT, fixed = MR).

::

    python data_scripts/learn2reg_abdomen_ctmr.py SOURCE OUTPUT [--label-format onehot|integer] [--masks]
        [--no-valid] [--num-labels 4] [--moving CT|MR] [--labels 1 ...]

Download (no network is needed by the converter itself): ``AbdomenMRCT.zip`` from the AbdomenMRCT entry of
https://learn2reg.grand-challenge.org/Datasets/ (University of Lübeck cloud, about 1.8 GB, no login), then
``unzip AbdomenMRCT.zip -d ~/data`` gives ``~/data/AbdomenMRCT`` (the SOURCE). The release publishes no
checksums.

Source layout: ``AbdomenMRCT_dataset.json``, ``imagesTr/AbdomenMRCT_XXXX_0000.nii.gz`` (MR, channel 0) and
``..._0001.nii.gz`` (CT, channel 1), the same names in ``labelsTr/`` (liver, spleen, right and left kidney:
label numbers 1..4) and ``masksTr/``. The json lists the intra-patient pairs in ``training_paired_images``
and ``registration_val`` (``{"fixed": ..., "moving": ...}`` paths relative to SOURCE), and the channel
modalities in ``modality`` (``{"0": "MR", "1": "CT"}``).

Output (DeepReg's paired layout, ``type: paired``)::

    OUTPUT/{train,valid}/moving_images/<pair>.nii.gz    the CT (--moving MR: the MR), copied unchanged
    OUTPUT/{train,valid}/fixed_images/<pair>.nii.gz     the MR (--moving MR: the CT), copied unchanged
    OUTPUT/{train,valid}/moving_labels/<pair>.nii.gz    the moving image's labels; fixed_labels/ the fixed one's
    OUTPUT/{train,valid}/moving_masks/, fixed_masks/    with --masks, copied unchanged
    OUTPUT/conversion.json, OUTPUT/checksums.sha256     options and pairs; SHA-256 manifest

Direction: by default (``--moving CT``) WSSAMNet++'s: it aligns the CT to the MR ("align the CT scan to the
MRI scan"), so the CT of each json pair is the moving image whatever role the json gives it. ``--moving MR``
makes the MR the moving image and the CT the fixed one, as macJNet (Zhou et al. 2023, "Multi-modal abdominal
image registration via joint segmentation and registration learning") and Learn2Reg itself register them. A
pair whose two images have the same modality is refused. Pair IDs (the same in both directions): the case
(``AbdomenMRCT_0001``) when both images are of one patient, else ``<CT case>__<MR case>``. Splits: ``train`` =
``training_paired_images`` without the pairs also in ``registration_val``; ``valid`` = ``registration_val``
(omitted with ``--no-valid``). The unpaired scans of the release (CT-only and MR-only cases) are not
converted: the paired layout has no place for them.

Labels: ``--label-format onehot`` (default) writes ``(i, j, k, 4)`` binary channels (what tfreg's loaders
read); ``integer`` copies the published label maps unchanged. The label count comes from the json's
``labels`` when present (else ``--num-labels``, default 4). ``--labels 1`` (any label numbers of ``1..K``)
keeps only those structures, renumbered ``1, 2, ...`` in the order given, every other voxel background: one
one-hot channel per kept label (``--labels 1``: the liver alone, one channel), or a renumbered integer map.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_scripts.conversion import (  # noqa: E402
    PlannedFile,
    add_label_format_argument,
    check_label_format,
    check_output_folder,
    check_same_grid,
    check_source_folder,
    converter_parser,
    image_info,
    learn2reg_label_count,
    nifti_stem,
    read_json,
    run_converter,
    selected_label_writer,
    split_record,
    write_tree,
)
from tfreg.data.errors import DataError  # noqa: E402
from tfreg.data.label_renumbering import check_label_values  # noqa: E402

#: Learn2Reg's dataset description file.
DATASET_JSON = "AbdomenMRCT_dataset.json"
#: The json's pair lists converted, with their output split.
PAIR_LISTS = (("training_paired_images", "train"), ("registration_val", "valid"))
#: The release's channel modalities when the json does not state them.
DEFAULT_MODALITY = {"0": "MR", "1": "CT"}
#: The modalities ``--moving`` accepts (the other one is fixed).
MODALITIES = ("CT", "MR")

_NAME_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def split_name(path: str) -> Tuple[str, str]:
    """``(case, channel)`` of ``.../AbdomenMRCT_0001_0000.nii.gz``: ``("AbdomenMRCT_0001", "0")``.

    Raises:
        DataError: the name does not end with Learn2Reg's 4-digit channel suffix.
    """
    match = _NAME_RE.match(nifti_stem(path))
    if not match:
        raise DataError(f"{path}: expected a Learn2Reg image name <case>_<4-digit channel>.nii.gz")
    return match.group("case"), str(int(match.group("channel")))


def modality_of_channels(info: dict, json_path: str) -> Dict[str, str]:
    """``{channel: "MR" | "CT"}`` from the json's ``modality`` (the release's default when absent)."""
    modality = info.get("modality", DEFAULT_MODALITY)
    if not isinstance(modality, dict):
        raise DataError(f"{json_path}: 'modality' must map channels to modalities, got {modality!r}")
    found = {str(k): str(v).upper() for k, v in modality.items()}
    if sorted(found.values()) != ["CT", "MR"]:
        raise DataError(f"{json_path}: 'modality' must name one MR and one CT channel, got {modality!r}")
    return found


def read_pairs(source: str, info: dict, json_path: str, include_valid: bool) -> Dict[str, List[Tuple[str, str]]]:
    """``{split: [(ct_image, mr_image), ...]}`` from the json's pair lists (CT first; :func:`convert` picks the
    direction)."""
    modality = modality_of_channels(info, json_path)
    if not isinstance(info.get("training_paired_images"), list) or not info["training_paired_images"]:
        raise DataError(f"{json_path}: key 'training_paired_images' must be a non-empty list of {{fixed, moving}}")
    pairs: Dict[str, List[Tuple[str, str]]] = {"train": [], "valid": []}
    for key, split in PAIR_LISTS:
        if split == "valid" and not include_valid:
            continue
        entries = info.get(key) or []
        if not isinstance(entries, list):
            raise DataError(f"{json_path}: '{key}' must be a list of {{fixed, moving}} pairs, got {entries!r}")
        for n, entry in enumerate(entries):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("fixed"), str)
                or not isinstance(entry.get("moving"), str)
            ):
                raise DataError(f"{json_path}: {key}[{n}] must hold 'fixed' and 'moving' paths, got {entry!r}")
            by_modality = {}
            for role in ("fixed", "moving"):
                path = os.path.normpath(os.path.join(source, entry[role]))
                _, channel = split_name(path)
                if channel not in modality:
                    raise DataError(
                        f"{json_path}: {key}[{n}].{role} {entry[role]} has channel {channel}, not in 'modality'"
                    )
                by_modality.setdefault(modality[channel], []).append(path)
            if sorted(by_modality) != ["CT", "MR"]:
                raise DataError(
                    f"{json_path}: {key}[{n}] pairs two images of one modality ({entry}); expected a CT and an MR"
                )
            pairs[split].append((by_modality["CT"][0], by_modality["MR"][0]))
    valid = set(pairs["valid"])
    pairs["train"] = [p for p in pairs["train"] if p not in valid]  # no validation pair among the training pairs
    return pairs


def pair_id(ct: str, mr: str) -> str:
    """The case when both images are of one patient, else ``<CT case>__<MR case>``."""
    ct_case, mr_case = split_name(ct)[0], split_name(mr)[0]
    return ct_case if ct_case == mr_case else f"{ct_case}__{mr_case}"


def _beside(image: str, folder: str) -> str:
    """The file of the same name in ``folder`` (``labelsTr``/``masksTr``) next to the image's folder."""
    images_folder, name = os.path.split(image)
    return os.path.join(os.path.dirname(images_folder), folder, name)


def convert(
    source: str,
    output: str,
    label_format: str = "onehot",
    masks: bool = False,
    include_valid: bool = True,
    num_labels: int = 4,
    moving: str = "CT",
    labels: Optional[Sequence[int]] = None,
) -> Dict[str, List[str]]:
    """Convert an extracted AbdomenMRCT release into DeepReg's paired layout at ``output``.

    Args:
        source: the folder holding ``AbdomenMRCT_dataset.json``, ``imagesTr``, ``labelsTr``, ``masksTr``.
        output: a new (or empty) folder outside ``source``.
        label_format: ``"onehot"`` or ``"integer"`` (see :mod:`data_scripts.conversion`).
        masks: also copy the masks into ``moving_masks/`` and ``fixed_masks/``.
        include_valid: write ``registration_val`` as the ``valid`` split.
        num_labels: foreground label count when the json has no ``labels`` (the release: 4).
        moving: the moving image's modality, ``"CT"`` (default, WSSAMNet++) or ``"MR"`` (macJNet); the other
            modality is the fixed image.
        labels: label numbers to keep (each in ``1..num_labels``, distinct), renumbered ``1..len(labels)`` in
            this order; None keeps all.

    Returns:
        ``{split: sorted pair IDs}`` of the written splits.

    Raises:
        DataNotFoundError: a missing source folder, json, image, label or mask file (naming it).
        DataError: a malformed json, a pair without one CT and one MR, images or labels not on one grid,
            label values outside ``0..K``.
        FileExistsError / ValueError: an unusable output folder or bad options (``moving`` not CT or MR,
            ``labels`` not distinct numbers of ``1..K``).
    """
    source = check_source_folder(source, "AbdomenMRCT source folder")
    output = check_output_folder(output, source)
    check_label_format(label_format)
    json_path = os.path.join(source, DATASET_JSON)
    info = read_json(json_path, "Learn2Reg dataset description")
    num_labels = learn2reg_label_count(info) or num_labels
    if int(num_labels) < 1:
        raise ValueError(f"num_labels must be a positive number of organs, got {num_labels!r}")
    moving = str(moving).upper()
    if moving not in MODALITIES:
        raise ValueError(f"moving must be one of {list(MODALITIES)} (the moving image's modality), got {moving!r}")
    fixed = "MR" if moving == "CT" else "CT"
    if labels is not None:
        labels = check_label_values(labels, "labels")
        outside = [v for v in labels if v > num_labels]
        if outside:
            raise ValueError(
                f"labels {list(outside)} are not label numbers of this release: expected numbers in 1..{num_labels}"
            )
    pairs = read_pairs(source, info, json_path, include_valid)

    plan: List[PlannedFile] = []
    splits: Dict[str, List[str]] = {}
    onehot = num_labels if label_format == "onehot" else 0
    for split, split_pairs in pairs.items():
        ids = []
        for ct, mr in split_pairs:
            pid = pair_id(ct, mr)
            ids.append(pid)
            by_modality = {"CT": ct, "MR": mr}
            for role, what in (("moving", moving), ("fixed", fixed)):
                image = by_modality[what]
                label = _beside(image, "labelsTr")
                image_info(image, f"{what} image of pair {pid}")
                check_same_grid(image, f"{what} image of pair {pid}", label, f"{what} label map of pair {pid}")
                plan.append(PlannedFile(image, f"{split}/{role}_images/{pid}.nii.gz"))
                target = f"{split}/{role}_labels/{pid}.nii.gz"
                if labels is None:
                    plan.append(PlannedFile(label, target, onehot))
                else:
                    writer = selected_label_writer(label, num_labels, labels, label_format == "onehot")
                    plan.append(PlannedFile(label, target, write=writer))
                if masks:
                    mask = _beside(image, "masksTr")
                    check_same_grid(image, f"{what} image of pair {pid}", mask, f"{what} mask of pair {pid}")
                    plan.append(PlannedFile(mask, f"{split}/{role}_masks/{pid}.nii.gz"))
        splits[split] = sorted(ids)
    record = {
        "converter": "learn2reg_abdomen_ctmr",
        "source": source,
        "direction": {"moving": moving, "fixed": fixed},
        "options": {
            "label_format": label_format,
            "masks": masks,
            "include_valid": include_valid,
            "num_labels": num_labels,
            "moving": moving,
            "labels": list(labels) if labels is not None else None,
        },
        # output label number -> published label number (the identity without --labels)
        "label_numbers": {str(new): old for new, old in enumerate(labels or range(1, num_labels + 1), start=1)},
        "pairs": {
            split: {
                pair_id(ct, mr): {
                    "moving": os.path.relpath(ct if moving == "CT" else mr, source),
                    "fixed": os.path.relpath(mr if moving == "CT" else ct, source),
                }
                for ct, mr in split_pairs
            }
            for split, split_pairs in pairs.items()
            if split_pairs
        },
        "splits": split_record(splits),
    }
    write_tree(plan, output, record)
    return split_record(splits)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = converter_parser(__doc__, "extracted AbdomenMRCT folder (AbdomenMRCT_dataset.json, imagesTr, ...)")
    add_label_format_argument(parser)
    parser.add_argument("--masks", action="store_true", help="also copy masksTr into moving_masks/ and fixed_masks/")
    parser.add_argument("--no-valid", action="store_true", help="do not write registration_val as the valid split")
    parser.add_argument(
        "--num-labels", type=int, default=4, help="organ label count when the json has no 'labels' (default 4)"
    )
    parser.add_argument(
        "--moving",
        type=str.upper,
        choices=MODALITIES,
        default="CT",
        help="modality of the moving image: CT (default, WSSAMNet++: CT to MR) or MR (macJNet, Learn2Reg: MR to CT)",
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        type=int,
        default=None,
        help="label numbers to keep, renumbered 1, 2, ... in this order (e.g. 1 = the liver only); default: all",
    )
    args = parser.parse_args(argv)
    return run_converter(
        parser,
        lambda: convert(
            args.source,
            args.output,
            label_format=args.label_format,
            masks=args.masks,
            include_valid=not args.no_valid,
            num_labels=args.num_labels,
            moving=args.moving,
            labels=args.labels,
        ),
        args.output,
        "pair(s)",
    )


if __name__ == "__main__":
    sys.exit(main())
