"""``tfreg_predict`` (alias ``deepreg_predict``): predict a data split with a trained checkpoint.

DeepReg's flags, short options and defaults, with ``--overwrite`` added; see
:func:`tfreg.engine.predict.predict`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfreg.checks import DATASET_SPLITS
from tfreg.cli.common import add_device_flags, run_command, setup_logging


def build_parser(prog: str = "tfreg_predict") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Predict a dataset split with a checkpoint. Writes <log_dir>/<exp_name>/<split>/pair_*/... "
        "(NIfTI with the inputs' geometry, optional PNG slices) and metrics.csv (DeepReg's columns, then landmark "
        "errors when read, then label_hd_mm, label_assd_mm, ddf_folding_count, inference_time_s: the model's "
        "forward seconds per sample, tracing excluded), metrics_stats_per_label.csv, metrics_stats_overall.csv.",
    )
    add_device_flags(parser)
    parser.add_argument(
        "-k",
        "--ckpt_path",
        required=True,
        help="checkpoint .../save/ckpt-<epoch> written by tfreg_train or by DeepReg 1.0 (model zoo)",
    )
    parser.add_argument("--split", required=True, choices=DATASET_SPLITS, help="dataset split to predict")
    parser.add_argument("-b", "--batch_size", type=int, default=1, help="prediction batch size (default: 1)")
    parser.add_argument("--log_dir", default="logs", help="root folder of the outputs (default: logs)")
    parser.add_argument(
        "-n", "-l", "--exp_name", default="", help="output folder under --log_dir (default: a timestamp)"
    )
    nifti = parser.add_mutually_exclusive_group()
    nifti.add_argument(
        "--save_nifti", dest="save_nifti", action="store_true", default=True, help="write NIfTI files (default)"
    )
    nifti.add_argument("--no_nifti", dest="save_nifti", action="store_false", help="do not write NIfTI files")
    png = parser.add_mutually_exclusive_group()
    png.add_argument("--save_png", dest="save_png", action="store_true", default=False, help="write PNG slices")
    png.add_argument("--no_png", dest="save_png", action="store_false", help="no PNG slices (default)")
    parser.add_argument(
        "-c",
        "--config_path",
        nargs="*",
        action="extend",
        default=None,
        help="config file(s), merged in order (repeating -c adds files in the same order); default: the config "
        "the checkpoint was trained with (<exp>/save/config.yaml, else <exp>/config.yaml)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing <log_dir>/<exp_name>/<split> folder"
    )
    parser.add_argument(
        "--full_resolution",
        action="store_true",
        help="write outputs and compute metrics at the files' own resolution (train small, test large): the "
        "model sees the resized images, its DDF is resized linearly to each fixed file's grid with its values "
        "mapped to the moving file's voxels (half-pixel centres), and the moving file's image (linear) and "
        "labels (nearest neighbour) are warped with it; NIfTI files keep the files' geometry, HD/ASSD use the "
        "fixed file's spacing. Needs a model that predicts a DDF (not conditional or segmentation models)",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else "tfreg_predict"
    args = build_parser(prog).parse_args(argv)
    setup_logging()

    def run():
        from tfreg.engine.predict import predict

        out = predict(
            gpu=args.gpu,
            gpu_allow_growth=args.gpu_allow_growth,
            ckpt_path=args.ckpt_path,
            split=args.split,
            batch_size=args.batch_size,
            exp_name=args.exp_name,
            config_path=args.config_path,
            num_workers=args.num_workers,
            save_nifti=args.save_nifti,
            save_png=args.save_png,
            log_dir=args.log_dir,
            overwrite=args.overwrite,
            full_resolution=args.full_resolution,
        )
        print(f"predictions written to {out}")

    return run_command(prog, run)


if __name__ == "__main__":
    sys.exit(main())
