"""Prepare Learn2Reg's Abdomen MR-CT release for the macJNet demo: MR -> CT pairs, the liver label, an affine
Mattes-MI pre-alignment and 128 x 128 x 96 training volumes.

Run from anywhere::

    python demos/abdomen_mrct_macjnet/demo_data.py --source ~/data/AbdomenMRCT   # the extracted release
    python demos/abdomen_mrct_macjnet/demo_data.py --synthetic                   # no network: tiny synthetic
    python demos/abdomen_mrct_macjnet/demo_data.py                               # prints how to download

Download (about 1.8 GB, no login, no checksum published): ``AbdomenMRCT.zip`` from the AbdomenMRCT entry
of https://learn2reg.grand-challenge.org/Datasets/ (a share of the University of Lübeck cloud), then::

    unzip AbdomenMRCT.zip -d demos/abdomen_mrct_macjnet/dataset_source

which gives ``dataset_source/AbdomenMRCT``, the default ``--source``. The share link is only on that page, so
the script prints these steps instead of downloading.

Two steps (:func:`convert_argv` and :func:`preprocess_argv` are the only places their command lines are built):

1. ``data_scripts/learn2reg_abdomen_ctmr.py SOURCE dataset_l2r --moving MR --labels 1 --label-format integer``:
   the paired layout with the MR moving and the CT fixed (macJNet registers MR to CT) and the liver (label 1)
   alone as a 0/1 label map; ``train`` holds ``training_paired_images``, ``valid`` the ``registration_val`` pairs;
2. ``tfreg_preprocess`` per split into ``dataset/<split>``: the affine pre-alignment of each MR to its CT by
   Mattes mutual information on the images (``--align image --align_transform affine --mi_bins 64``:
   macJNet's Elastix affine step, 3-level pyramid), intensities' 1st/99th percentiles mapped to [0, 1]; the
   ``train`` pairs are resampled to ``--grid-shape`` (default 128 x 128 x 96, the paper's training size) over
   the CT's field of view (the spacing follows), while the ``valid`` pairs stay on each CT's own grid, so that
   ``demo_predict.py`` (``--full_resolution``) scores the up-sampled fields at the CT's resolution, in mm.

::

    dataset/{train,valid}/{moving,fixed}_images/<pair>.nii.gz    MR (moving, affinely aligned) and CT (fixed)
    dataset/{train,valid}/{moving,fixed}_labels/<pair>.nii.gz    the liver, 0/1
    dataset/{train,valid}/transforms/<pair>.{json,tfm}           the affine transforms (CT mm -> MR mm)

``--synthetic`` writes ``--cases`` synthetic patients (``data_scripts/synthetic_releases.py``: CT in HU, MR
with another contrast and moved organs) in the release's own layout, every one paired and the last one in
``registration_val``, and prepares them the same way (``--shape`` their voxels, ``--grid-shape`` the training
grid: e.g. ``--shape 24 24 24 --grid-shape 16 16 16`` for a smoke test).
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import List, Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import learn2reg_abdomen_ctmr  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "abdomen_mrct_macjnet"
#: macJNet's training size (voxels), whatever the scans' spacing
GRID_SHAPE = (128, 128, 96)
#: the Learn2Reg label number of the liver, the one structure macJNet is trained with
LIVER = 1
#: the split resampled to GRID_SHAPE; the others stay on the fixed CT's grid for full-resolution scoring
RESAMPLED_SPLITS = ("train",)
PERCENTILES = (1.0, 99.0)
#: histogram bins of the affine stage's Mattes mutual information
MI_BINS = 64


def convert_argv(source: str, output: str) -> List[str]:
    """The ``data_scripts/learn2reg_abdomen_ctmr.py`` arguments: MR moving, CT fixed, the liver alone, integer
    label maps (``tfreg_preprocess`` reads label maps, not one-hot channels)."""
    return [source, output, "--moving", "MR", "--labels", str(LIVER), "--label-format", "integer"]


def preprocess_argv(input_dir: str, output: str, grid_shape: Optional[Sequence[int]]) -> List[str]:
    """The ``tfreg_preprocess`` arguments of one split; ``grid_shape`` None keeps the fixed CT's grid.

    The equivalent command for the training split::

        tfreg_preprocess --input demos/abdomen_mrct_macjnet/dataset_l2r/train
            --out demos/abdomen_mrct_macjnet/dataset/train --align image --align_transform affine --mi_bins 64
            --shape 128 128 96 --percentiles 1 99
    """
    argv = ["--input", input_dir, "--out", output, "--align", "image", "--align_transform", "affine"]
    # 64 bins: the affine stage's bias toward shrinking is about 1/bins (docs/preprocessing.md)
    argv += ["--mi_bins", str(MI_BINS)]
    if grid_shape is not None:
        argv += ["--shape", *[str(int(n)) for n in grid_shape]]
    argv += ["--percentiles", *[f"{p:g}" for p in PERCENTILES], "-q"]
    return argv


def prepare(source: str, folder: str, grid_shape: Sequence[int]) -> dict:
    """Steps 1 and 2 (module docstring) from the release at ``source`` into ``<folder>/dataset``; the
    converter's ``{split: pair IDs}``. The intermediate ``<folder>/dataset_l2r`` is rebuilt each time.

    Raises:
        RuntimeError: ``tfreg_preprocess`` failed (its message is on stderr).
    """
    from tfreg.cli import preprocess

    converted = os.path.join(folder, "dataset_l2r")
    shutil.rmtree(converted, ignore_errors=True)
    argv = convert_argv(source, converted)
    print(f"[demo_data] python data_scripts/learn2reg_abdomen_ctmr.py {' '.join(argv)}")
    splits = learn2reg_abdomen_ctmr.main(argv)
    if splits:
        raise RuntimeError(f"data_scripts/learn2reg_abdomen_ctmr.py {' '.join(argv)} failed (exit status {splits})")
    dataset = os.path.join(folder, "dataset")
    os.makedirs(dataset, exist_ok=True)
    written = {}
    for split in ("train", "valid"):
        split_input = os.path.join(converted, split)
        if not os.path.isdir(split_input):
            continue
        argv = preprocess_argv(
            split_input, os.path.join(dataset, split), grid_shape if split in RESAMPLED_SPLITS else None
        )
        print(f"[demo_data] tfreg_preprocess {' '.join(argv)}")
        status = preprocess.main(argv)
        if status:
            raise RuntimeError(f"tfreg_preprocess {' '.join(argv)} failed (exit status {status})")
        written[split] = sorted(
            name[: -len(".nii.gz")] for name in os.listdir(os.path.join(dataset, split, "fixed_images"))
        )
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = staged_demo.data_parser(
        __doc__, NAME, "the extracted AbdomenMRCT folder", 4, "patients", [32, 32, 32], "--synthetic: seed"
    )
    parser.add_argument(
        "--grid-shape",
        type=int,
        nargs=3,
        default=list(GRID_SHAPE),
        help="voxels of the training pairs over the CT's field of view (default: macJNet's 128 128 96)",
    )
    args = parser.parse_args(argv)

    folder = staged_demo.demo_dir(NAME, args.dir)
    dataset = os.path.join(folder, "dataset")
    try:
        staged_demo.clear_dataset(dataset, args.overwrite)
        source = staged_demo.abdomen_mrct_source(folder, args)
        if source is None:
            return 2
        splits = prepare(source, folder, args.grid_shape)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    print(
        f"[demo_data] {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} MR/CT pairs, affinely aligned, in "
        f"{dataset} (next: demo_train.py)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
