"""Write the spine CT/MR rigidity demo's data: your own CT/MR pairs through tfreg_preprocess, or the offline phantom.

Run from anywhere::

    python demos/spine_ctmr_rigidity/demo_data.py --input ~/data/spine_ctmr     # your pairs (README: layout)
    python demos/spine_ctmr_rigidity/demo_data.py                               # the phantom from brain_scan
    python demos/spine_ctmr_rigidity/demo_data.py --source synthetic            # the phantom, no data at all
    python demos/spine_ctmr_rigidity/demo_data.py --tiny                        # 24^3, 2/1/1 pairs (smoke tests)

**Your data** (``--input DIR``): DeepReg's paired layout per split, ``DIR/{train,valid,test}/{moving_images,
fixed_images,moving_labels,fixed_labels}/<pair>.nii.gz`` (moving = CT, fixed = MR, integer vertebra label
maps). Each split is run through ``tfreg_preprocess`` (:func:`preprocess_argv`, the one place its command
line is built) into ``dataset/<split>``: 1 mm spacing, rigid pre-alignment on the L5 label, a 320 x 320 x 96
crop centred on L3-L5, the vertebrae renumbered 1..3, intensities' 1st/99th percentiles mapped to [0, 1] --
van Ulsen's preprocessing. ``--vertebra-labels`` gives the label values of L3, L4, L5 in your maps (the last
one is aligned on).

**The phantom** (default, offline): ``data_scripts/rigid_phantom.py`` on ``--source`` (default: the
brain_scan subject ``$TFREG_TEST_DATA/brain_scan/test_scan.npz`` when present, else ``synthetic``, an analytic
head): the left and right putamen are the rigid "bones", bright in the moving "CT", dark in the fixed "MR";
``--shape`` (default 64^3) and ``--pairs`` (default 16/4/4) pairs with exact ground-truth DDFs in
``dataset/{train,valid,test}/ddfs``, and ``dataset/conversion.json`` with every parameter and motion.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import rigid_phantom  # noqa: E402
from data_scripts.conversion import SPLIT_NAMES  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "spine_ctmr_rigidity"
#: van Ulsen's preprocessing (thesis section 3.2): 1 mm voxels, 320 x 320 x 96 voxels
SPACING_MM = (1.0, 1.0, 1.0)
CROP_SIZE = (320, 320, 96)
PERCENTILES = (1.0, 99.0)
#: label values of L3, L4, L5 in the user's maps (the last is aligned on, as the thesis aligned on L5)
VERTEBRA_LABELS = (3, 4, 5)
#: --tiny: a phantom small enough for a 1-epoch smoke test (24^3 is divisible by the 3 poolings of
#: thesis_unet); the bones are 7 voxels apart there, so the margin, ramp and motions are made smaller
TINY_SHAPE = (24, 24, 24)
TINY_PAIRS = (2, 1, 1)
TINY_MOTION = rigid_phantom.MotionParams(
    max_rotation=3.0,
    max_translation=0.5,
    max_displacement=1.0,
    global_displacement=1.0,
    control_spacing=8.0,
    margin=1.0,
    ramp=3.0,
)


def default_source() -> str:
    """The brain_scan subject when the shared data are there, else ``synthetic``."""
    from demos.mni152_brain.demo_data import brain_scan_path

    path = brain_scan_path()
    return path if os.path.isfile(path) else "synthetic"


def preprocess_argv(
    input_dir: str,
    output: str,
    vertebra_labels: Sequence[int] = VERTEBRA_LABELS,
    spacing: Sequence[float] = SPACING_MM,
    crop_size: Sequence[int] = CROP_SIZE,
    percentiles: Sequence[float] = PERCENTILES,
    overwrite: bool = False,
) -> List[str]:
    """The ``tfreg_preprocess`` arguments of one split (the only place the demo spells them out).

    The equivalent command::

        tfreg_preprocess --input DIR/train --out demos/spine_ctmr_rigidity/dataset/train --spacing 1 1 1
            --align label --align_labels 5 --crop_size 320 320 96 --crop_labels 3 4 5 --keep_labels 3 4 5
            --percentiles 1 99
    """
    labels = [str(int(v)) for v in vertebra_labels]
    argv = ["--input", input_dir, "--out", output, "--spacing", *[f"{s:g}" for s in spacing]]
    argv += ["--align", "label", "--align_labels", labels[-1]]
    argv += ["--crop_size", *[str(int(c)) for c in crop_size], "--crop_labels", *labels, "--keep_labels", *labels]
    argv += ["--percentiles", *[f"{p:g}" for p in percentiles]]
    return argv + (["--overwrite"] if overwrite else [])


def run_preprocess(input_dir: str, output: str, vertebra_labels: Sequence[int], crop_size: Sequence[int]) -> int:
    """``tfreg_preprocess`` on every split folder of ``input_dir`` into ``output/<split>``; its exit status."""
    from tfreg.cli import preprocess  # only --input needs it

    splits = [s for s in SPLIT_NAMES if os.path.isdir(os.path.join(input_dir, s))]
    if "train" not in splits:
        print(
            f"[demo_data] --input {input_dir} has no train/ folder: expected {input_dir}/{{train,valid,test}}/"
            "{moving_images,fixed_images,moving_labels,fixed_labels}/<pair>.nii.gz (see the README)",
            file=sys.stderr,
        )
        return 1
    for split in splits:
        argv = preprocess_argv(
            os.path.join(input_dir, split), os.path.join(output, split), vertebra_labels, crop_size=crop_size
        )
        print(f"[demo_data] tfreg_preprocess {' '.join(argv)}")
        status = preprocess.main(argv)
        if status:
            return status
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{NAME})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--input", default=None, help="your CT/MR pairs: DIR/{train,valid,test}/<DeepReg paired layout>")
    group.add_argument("--source", default=None, help="phantom input: an .npz (vol, seg), or 'synthetic'")
    parser.add_argument(
        "--vertebra-labels", type=int, nargs="+", default=list(VERTEBRA_LABELS), help="--input: L3 L4 L5 label values"
    )
    parser.add_argument("--crop-size", type=int, nargs=3, default=list(CROP_SIZE), help="--input: voxels")
    parser.add_argument("--shape", type=int, nargs=3, default=None, help="phantom shape (default 64 64 64)")
    parser.add_argument("--pairs", type=int, nargs=3, default=None, metavar=("TRAIN", "VALID", "TEST"))
    parser.add_argument("--tiny", action="store_true", help="a 24^3 phantom of 2/1/1 pairs (smoke tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset/")
    args = parser.parse_args(argv)

    folder = staged_demo.demo_dir(NAME, args.dir)
    output = os.path.join(folder, "dataset")
    try:
        staged_demo.clear_dataset(output, args.overwrite)
        if args.input:
            status = run_preprocess(args.input, output, args.vertebra_labels, args.crop_size)
            if status == 0:
                print(f"[demo_data] preprocessed pairs in {output} (next: demo_train.py --method us)")
            return status
        source = args.source or default_source()
        shape = args.shape or (TINY_SHAPE if args.tiny else rigid_phantom.DEFAULT_SHAPE)
        pairs = args.pairs or (TINY_PAIRS if args.tiny else rigid_phantom.DEFAULT_SPLIT_COUNTS)
        motion = TINY_MOTION if args.tiny else rigid_phantom.MotionParams()
        image, label_map, geometry = rigid_phantom.load_input(source, synthetic_shape=shape, seed=args.seed)
        base = rigid_phantom.prepare_base(image, label_map, shape=shape, geometry=geometry)
        record = rigid_phantom.write_phantom(base, output, pairs, args.seed, motion, source=source)
    except (ValueError, KeyError, OSError, rigid_phantom.FoldingError) as err:
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    print(
        f"[demo_data] phantom from {source}: {', '.join(f'{k}: {len(v)}' for k, v in record['splits'].items())} "
        f"pairs of {tuple(record['shape'])} voxels in {output} (next: demo_train.py --method us)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
