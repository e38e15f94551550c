"""Convert the BraTSReg 2022 release (with its landmark CSVs) to DeepReg's paired layout for the WSSAMNet demo.

Run from anywhere::

    python demos/brats_reg_wssamnet/demo_data.py --source ~/data/BraTSReg_Training_Data_v3
    python demos/brats_reg_wssamnet/demo_data.py --synthetic     # no network: a tiny synthetic release
    python demos/brats_reg_wssamnet/demo_data.py                 # prints how to get the data

Download: the BraTS-Reg 2022 archives are distributed after registration on the challenge site
(https://www.med.upenn.edu/cbica/brats-reg-challenge/, data access through CBICA's Image Processing
Portal); no checksum is published. Then::

    unzip BraTSReg_Training_Data_v3.zip -d demos/brats_reg_wssamnet/dataset_source

gives the default ``--source``. The conversion is ``data_scripts/brats_reg.py SOURCE dataset --modality t1ce
--split-counts 104 29 7`` (WSSAMNet++'s split of the 140 training cases, seeded) into
``demos/brats_reg_wssamnet/dataset/``::

    dataset/{train,valid,test}/moving_images/<case>.nii.gz       follow-up T1-CE
    dataset/{train,valid,test}/fixed_images/<case>.nii.gz        baseline (pre-operative) T1-CE
    dataset/{train,valid,test}/{moving,fixed}_landmarks/<case>.csv   Landmark,X,Y,Z (mm, LPS)

For the self-supervised pre-training, every training case's two scans are also linked (relative
symlinks; copies where links are not possible) into the unpaired layout the ``self_paired`` loader reads::

    dataset_pretrain/train/images/<case>_{baseline,follow_up}.nii.gz

``--synthetic`` writes ``--cases`` synthetic cases (``data_scripts/synthetic_releases.py``: a brain with a
tumour at baseline, a resection cavity and a smooth deformation at follow-up, landmarks with exact
correspondences) in the release's own layout and converts them the same way, with a split of about 4:1:1.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import brats_reg, synthetic_releases  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "brats_reg_wssamnet"
PAGE = "https://www.med.upenn.edu/cbica/brats-reg-challenge/"
#: the two scans of a case: converted folder -> name suffix in the pre-training folder
PRETRAIN_ROLES = {"fixed_images": "baseline", "moving_images": "follow_up"}


def synthetic_split(cases: int) -> Sequence[int]:
    """About 4:1:1 train/valid/test cases, at least 1 each."""
    if cases < 3:
        raise ValueError(f"--cases must be at least 3 (train, valid and test), got {cases}")
    valid = test = max(1, round(cases / 6))
    return (cases - valid - test, valid, test)


def paper_split(cases: int) -> Sequence[int]:
    """WSSAMNet++'s 104:29:7 of the 140 training cases, or its proportions for another count."""
    valid, test = round(cases * 29 / 140), round(cases * 7 / 140)
    return (cases - valid - test, valid, test)


def link_pretraining_images(dataset: str, output: str) -> int:
    """Put both scans of every ``dataset/train`` case into ``output/train/images``; returns the image count.

    Relative symlinks keep the folder movable with the dataset; where links cannot be made the files are
    copied.
    """
    images = os.path.join(output, "train", "images")
    os.makedirs(images, exist_ok=True)
    count = 0
    for folder, suffix in PRETRAIN_ROLES.items():
        source_folder = os.path.join(dataset, "train", folder)
        for name in sorted(os.listdir(source_folder)):
            case = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else os.path.splitext(name)[0]
            target = os.path.join(images, f"{case}_{suffix}.nii.gz")
            source = os.path.join(source_folder, name)
            try:
                os.symlink(os.path.relpath(source, images), target)
            except OSError:
                shutil.copyfile(source, target)
            count += 1
    return count


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = staged_demo.data_parser(
        __doc__,
        NAME,
        "the extracted BraTSReg training release",
        6,
        "cases",
        [32, 32, 24],
        "seed of the split (and of --synthetic)",
    )
    args = parser.parse_args(argv)

    folder = staged_demo.demo_dir(NAME, args.dir)
    dataset = os.path.join(folder, "dataset")
    pretrain = os.path.join(folder, "dataset_pretrain")
    try:
        staged_demo.clear_dataset(dataset, args.overwrite)
        staged_demo.clear_dataset(pretrain, args.overwrite)
        if args.synthetic:
            source = os.path.join(folder, "dataset_source", "BraTSReg-synthetic")
            shutil.rmtree(source, ignore_errors=True)
            synthetic_releases.write_release("brats-reg", source, args.cases, args.shape, args.seed)
            counts = synthetic_split(args.cases)
        else:
            source = args.source or os.path.join(folder, "dataset_source", "BraTSReg_Training_Data_v3")
            if not os.path.isdir(source):
                print(
                    f"[demo_data] {source} is missing. BraTSReg needs a registration: request the data at {PAGE}, "
                    f"then\n  unzip BraTSReg_Training_Data_v3.zip -d {os.path.dirname(source)}\nand rerun this "
                    "script (or pass --source, or --synthetic for a tiny synthetic release).",
                    file=sys.stderr,
                )
                return 2
            counts = paper_split(len(brats_reg.find_cases(source)))
        splits = brats_reg.convert(source, dataset, modality="t1ce", split_counts=counts, seed=args.seed)
        images = link_pretraining_images(dataset, pretrain)
    except (ValueError, OSError) as err:
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    print(f"[demo_data] {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} cases in {dataset}")
    print(f"[demo_data] {images} images for the self-supervised pre-training in {pretrain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
