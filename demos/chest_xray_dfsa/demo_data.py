"""Convert a chest X-ray release (JSRT + SCR, Montgomery or Shenzhen) for the DFSA demo, or write a synthetic one.

Run from anywhere::

    python demos/chest_xray_dfsa/demo_data.py --dataset jsrt --source ~/data/All247images --masks ~/data/scr
    python demos/chest_xray_dfsa/demo_data.py --dataset montgomery --source ~/data/MontgomerySet
    python demos/chest_xray_dfsa/demo_data.py --dataset shenzhen --source ~/data/ChinaSet_AllFiles --masks ~/data/mask
    python demos/chest_xray_dfsa/demo_data.py --synthetic [--dataset jsrt]   # no download: a tiny synthetic release

The three releases need a registration or a manual download (see the converters' docstrings:
``data_scripts/jsrt.py``, ``montgomery.py``, ``shenzhen.py``), so nothing is downloaded here. The conversion
writes DeepReg's unpaired 2-D layout at 64 x 64 (training) and 256 x 256 (testing), lungs merged, with the
paper's split (JSRT 197/50, Montgomery 110/28, Shenzhen 440/110) drawn with ``--seed``::

    demos/chest_xray_dfsa/dataset/{64,256}/{train,test}/{images,labels}/<case>.nii.gz
    demos/chest_xray_dfsa/dataset/conversion.json, checksums.sha256   (demo_train.py reads the release's name
                                                                        from conversion.json's "converter")

``--synthetic`` writes ``--cases`` phantoms of ``--shape`` pixels in the chosen release's own layout
(``data_scripts/synthetic_chest_xray.py``) into ``dataset_source/<dataset>-synthetic`` and converts them the
same way, with a third of the cases for testing.
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

from data_scripts import jsrt, montgomery, shenzhen, synthetic_chest_xray  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "chest_xray_dfsa"
DATASETS = synthetic_chest_xray.RELEASES
#: the paper's (train, test) split of each release
PAPER_SPLITS = {"jsrt": jsrt.PAPER_SPLIT, "montgomery": montgomery.PAPER_SPLIT, "shenzhen": shenzhen.PAPER_SPLIT}


def convert(dataset: str, source: str, output: str, masks: Optional[str], counts, seed: int, sizes) -> dict:
    """Run the release's converter (``masks``: the SCR folder for JSRT, the mask folder for Shenzhen)."""
    if dataset == "jsrt":
        return jsrt.convert(source, output, scr=masks, sizes=sizes, split_counts=counts, seed=seed)
    if dataset == "montgomery":
        if masks:
            raise ValueError("--masks: Montgomery's masks are inside its release (ManualMask/); leave --masks out")
        return montgomery.convert(source, output, sizes=sizes, split_counts=counts, seed=seed)
    return shenzhen.convert(source, output, masks=masks, sizes=sizes, split_counts=counts, seed=seed)


def synthetic_counts(cases: int, dataset: str) -> Sequence[int]:
    """A third of the usable cases for testing (Shenzhen's last two synthetic images have no mask)."""
    usable = cases - 2 if dataset == "shenzhen" else cases
    test = max(2, usable // 3)
    return (usable - test, test)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = staged_demo.data_parser(
        __doc__,
        NAME,
        "the extracted release (JSRT: the .IMG folder; Montgomery: MontgomerySet; Shenzhen: ChinaSet_AllFiles)",
        12,
        "images",
        [128, 128],
        "seed of the split (and of --synthetic)",
    )
    parser.add_argument("--dataset", choices=DATASETS, default="jsrt", help="which release (default jsrt)")
    parser.add_argument("--masks", default=None, help="JSRT: the SCR folder; Shenzhen: the lung-mask folder")
    parser.add_argument("--sizes", type=int, nargs=2, default=[64, 256], help="training and test sizes (pixels)")
    args = parser.parse_args(argv)

    folder = staged_demo.demo_dir(NAME, args.dir)
    output = os.path.join(folder, "dataset")
    try:
        staged_demo.clear_dataset(output, args.overwrite)
        masks = args.masks
        if args.synthetic:
            source = os.path.join(folder, "dataset_source", f"{args.dataset}-synthetic")
            shutil.rmtree(source, ignore_errors=True)
            synthetic_chest_xray.write_release(args.dataset, source, args.cases, args.shape, args.seed)
            counts = synthetic_counts(args.cases, args.dataset)
            if args.dataset == "jsrt":
                masks = os.path.join(source, "scr")
        else:
            if not args.source:
                print(
                    "[demo_data] give the extracted release with --source (and --masks for JSRT's SCR masks or "
                    "Shenzhen's lung masks; see data_scripts/jsrt.py, montgomery.py, shenzhen.py for the downloads), "
                    "or pass --synthetic",
                    file=sys.stderr,
                )
                return 2
            source, counts = args.source, PAPER_SPLITS[args.dataset]
        splits = convert(args.dataset, source, output, masks, counts, args.seed, args.sizes)
    except (ValueError, OSError) as err:
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    print(f"[demo_data] {args.dataset}: {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} images in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
