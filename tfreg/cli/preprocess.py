"""``tfreg_preprocess``: prepare moving/fixed pairs (CT/MR, ...) for registration training.

Resample to a spacing, rigidly or affinely pre-align moving to fixed, crop or resample to a shape, rescale
intensities, renumber labels, and write DeepReg's paired layout plus one JSON and one ITK transform file per
pair. See docs/preprocessing.md and :func:`tfreg.data.preprocess_output.preprocess_pairs` (the same in Python).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfreg.cli.common import run_command, setup_logging


def _none_or(kind):
    """argparse type: ``none`` (any case) as None, else ``kind(text)``."""

    def parse(text: str):
        return None if str(text).strip().lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def build_parser(prog: str = "tfreg_preprocess") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Preprocess moving/fixed image pairs with their integer label maps: resample to a spacing "
        "(Lanczos for images, nearest for labels), rigidly or affinely pre-align moving to fixed (on labels or by "
        "mutual information), resample the moving pair onto the fixed grid (or a --shape grid over its extent), crop, "
        "map intensity percentiles to [0, 1], "
        "renumber labels; writes <out>/{moving_images,fixed_images,moving_labels,fixed_labels}/<pair_id>.nii.gz "
        "and <out>/transforms/<pair_id>.{json,tfm}. See docs/preprocessing.md.",
    )
    parser.add_argument(
        "-i",
        "--input",
        required=True,
        help="a DeepReg paired folder (moving_images/, fixed_images/ and optionally moving_labels/, fixed_labels/ "
        "with matching file names) or a CSV file with columns pair_id, moving_image, fixed_image[, moving_label, "
        "fixed_label] (paths relative to the CSV)",
    )
    parser.add_argument("-o", "--out", required=True, help="output folder (must not exist unless --overwrite)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it is a folder written by tfreg_preprocess"
    )
    parser.add_argument(
        "--spacing",
        nargs="+",
        type=_none_or(float),
        default=None,
        help="voxel size in mm to resample both images to, one value (isotropic) or one per axis, e.g. 1 1 1 "
        "(default: keep each image's spacing)",
    )
    parser.add_argument(
        "--align",
        choices=("label", "image", "none"),
        default="none",
        help="rigid pre-alignment of moving to fixed: 'label' on binary masks of --align_labels (mean squares), "
        "'image' on the images (Mattes mutual information), 'none' (default)",
    )
    parser.add_argument(
        "--align_labels", nargs="+", type=int, default=None, help="label value(s) to align on, e.g. 5 (the L5 label)"
    )
    parser.add_argument(
        "--align_transform",
        choices=("rigid", "affine", "rigid_affine"),
        default="rigid",
        help="transform of the pre-alignment: 'rigid' (default), 'affine' (Mattes mutual information on the images "
        "from the centred initialiser; needs --align image) or 'rigid_affine' (the --align rigid stage, then an "
        "affine Mattes MI stage on the images started from it)",
    )
    parser.add_argument(
        "--crop_size", nargs="+", type=int, default=None, help="output size in voxels, one per axis, e.g. 320 320 96"
    )
    parser.add_argument(
        "--shape",
        nargs="+",
        type=int,
        default=None,
        help="output size in voxels, one per axis, e.g. 128 128 96: the (cropped) fixed grid's physical extent "
        "resampled to that many voxels, the spacing adjusted, origin and direction following (default: keep the grid)",
    )
    parser.add_argument(
        "--crop_labels",
        nargs="+",
        type=int,
        default=None,
        help="centre the crop on the centroid of these label values in the FIXED label map (default: grid centre)",
    )
    parser.add_argument(
        "--percentiles",
        nargs="+",
        type=_none_or(float),
        default=[1.0, 99.0],
        help="low and high intensity percentiles mapped to 0 and 1, clipped (default: 1 99); 'none' keeps intensities",
    )
    parser.add_argument(
        "--keep_labels",
        nargs="+",
        type=int,
        default=None,
        help="label values to keep, renumbered 1..K in this order; other values become 0 (default: keep all)",
    )
    parser.add_argument(
        "--max_memory_gb",
        type=float,
        default=None,
        help="refuse pairs whose estimated working memory exceeds this many GiB (default: the physical memory)",
    )
    group = parser.add_argument_group("rigid and affine registration")
    group.add_argument(
        "--shrink_factors", nargs="+", type=int, default=[4, 2, 1], help="per level down-sampling (default 4 2 1)"
    )
    group.add_argument(
        "--smoothing_sigmas",
        nargs="+",
        type=float,
        default=[2.0, 1.0, 0.0],
        help="per level Gaussian sigma in voxels (default 2 1 0)",
    )
    group.add_argument("--iterations", type=int, default=200, help="maximum iterations per level (default 200)")
    group.add_argument("--mi_bins", type=int, default=32, help="Mattes MI histogram bins (default 32)")
    group.add_argument(
        "--sampling_percentage",
        type=float,
        default=0.25,
        help="fraction of voxels the MI is computed on (default 0.25)",
    )
    group.add_argument("--seed", type=int, default=0, help="seed of the MI's voxel sampling (default 0)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _optional_list(values):
    """``[None]`` (from ``--x none``) is None; a list holding None among numbers is left to the checks."""
    if values is None or values == [None]:
        return None
    return values


def main(argv: Optional[List[str]] = None) -> int:
    prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else "tfreg_preprocess"
    args = build_parser(prog).parse_args(argv)
    setup_logging()

    def run():
        from tfreg.data.pair_sources import list_pairs
        from tfreg.data.preprocess_options import PreprocessOptions
        from tfreg.data.preprocess_output import preprocess_pairs
        from tfreg.data.rigid_alignment import RegistrationSettings
        from tfreg.evaluation.progress import Progress

        options = PreprocessOptions(
            spacing=_optional_list(args.spacing),
            align=args.align,
            align_labels=args.align_labels,
            align_transform=args.align_transform,
            shape=args.shape,
            crop_size=args.crop_size,
            crop_labels=args.crop_labels,
            percentiles=_optional_list(args.percentiles),
            keep_labels=args.keep_labels,
            max_memory_gb=args.max_memory_gb,
            registration=RegistrationSettings(
                shrink_factors=args.shrink_factors,
                smoothing_sigmas=args.smoothing_sigmas,
                iterations=args.iterations,
                mi_bins=args.mi_bins,
                sampling_percentage=args.sampling_percentage,
                seed=args.seed,
            ),
        )
        pairs = list_pairs(args.input)
        with Progress(len(pairs), "preprocess", enabled=False if args.quiet else None) as bar:
            out = preprocess_pairs(pairs, args.out, options, args.overwrite, on_pair_done=lambda *_: bar.update())
        print(f"{len(pairs)} preprocessed pair(s) written to {out}")

    return run_command(prog, run)


if __name__ == "__main__":
    sys.exit(main())
