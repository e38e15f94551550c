"""``tfreg_warp`` (alias ``deepreg_warp``): warp an image file with a DDF file or an ITK/ANTs displacement field.

See :func:`tfreg.engine.warp.warp_file`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfreg.cli.common import run_command, setup_logging


def build_parser(prog: str = "tfreg_warp") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Warp an image by a dense displacement field: a DDF in voxels of the moving grid "
        "(tfreg_predict's ddf.nii.gz, shape (*spatial, ndim)) or an ITK/ANTs displacement field in mm "
        "(docs/transforms.md); the output has the field's grid and geometry.",
    )
    parser.add_argument("-i", "--image", required=True, help="image file (NIfTI), 3-D or 4-D (channels last)")
    parser.add_argument(
        "-d",
        "--ddf",
        "--transform",
        dest="ddf",
        required=True,
        help="DDF file, e.g. ddf.nii.gz from tfreg_predict, or an ITK/ANTs displacement field (.nii.gz/.nii/.mha/"
        ".nrrd), e.g. an ANTs *Warp.nii.gz or tfreg_register's transform",
    )
    parser.add_argument(
        "--ddf_units",
        default="auto",
        choices=("auto", "voxel", "physical"),
        help="voxel: DeepReg/tfreg_predict DDF in moving-grid voxels; physical: ITK/ANTs displacement in mm (LPS), "
        "sampling the image through its own geometry; auto (default): physical for a NIfTI with the vector intent "
        "and 5 dimensions or a non-NIfTI vector image, voxel otherwise",
    )
    parser.add_argument(
        "-o",
        "--out",
        default="warped.nii.gz",
        help="output .nii/.nii.gz file, or a folder for <folder>/warped.nii.gz (default: warped.nii.gz)",
    )
    parser.add_argument(
        "--moving_grid",
        default=None,
        help="an image on the grid whose voxels the DDF counts (default: moving_image.nii.gz beside the DDF, as "
        "tfreg_predict writes it; else the image itself); another image grid is resampled through physical space. "
        "Voxel DDFs only",
    )
    parser.add_argument(
        "--overwrite_input",
        action="store_true",
        help="allow --out to be the --image or --ddf file (replaced by the result); refused otherwise",
    )
    parser.add_argument(
        "--interpolation", default="linear", choices=("linear", "nearest"), help="nearest for label maps"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else "tfreg_warp"
    args = build_parser(prog).parse_args(argv)
    setup_logging()

    def run():
        from tfreg.engine.warp import warp_file

        written = warp_file(
            args.image,
            args.ddf,
            args.out,
            args.interpolation,
            args.overwrite_input,
            moving_grid=args.moving_grid,
            ddf_units=args.ddf_units,
        )
        print(f"warped image written to {written}")

    return run_command(prog, run)


if __name__ == "__main__":
    sys.exit(main())
