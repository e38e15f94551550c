"""``tfreg_train`` (alias ``deepreg_train``): train a registration model from YAML configs.

DeepReg's flags, short options and defaults, with ``--strategy`` added; see :func:`tfreg.engine.train.train`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfreg.cli.common import add_device_flags, run_command, setup_logging


def build_parser(prog: str = "tfreg_train") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a registration model from DeepReg-format YAML configs. Writes "
        "<log_dir>/<exp_name>/{config.yaml, train/, validation/, save/ckpt-<epoch>}.",
    )
    add_device_flags(parser)
    parser.add_argument("-k", "--ckpt_path", default="", help="resume from this checkpoint, .../save/ckpt-<epoch>")
    parser.add_argument("--log_dir", default="logs", help="root folder of the logs (default: logs)")
    parser.add_argument(
        "-l",
        "-n",
        "--exp_name",
        default="",
        help="experiment folder under --log_dir (default: a %%Y%%m%%d-%%H%%M%%S timestamp); DeepReg's docs said -n",
    )
    parser.add_argument(
        "-c",
        "--config_path",
        nargs="+",
        action="extend",
        required=True,
        help="one or more YAML files, merged in order (later files win); repeating -c adds files in the same order",
    )
    parser.add_argument(
        "--max_epochs", type=int, default=-1, help="> 0 overrides train.epochs (default: -1, use the config)"
    )
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=("auto", "default", "mirrored", "multiworker"),
        help="tf.distribute strategy: auto = mirrored when more than one GPU is visible; multiworker reads TF_CONFIG",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        type=int,
        nargs="?",
        const=2,
        default=1,
        choices=(0, 1, 2),
        help="console output: 0 nothing; 1 (default) the loss and each loss term with their val_ values; 2 (or -v "
        "alone) every metric. A progress bar per epoch on a terminal, one line per epoch otherwise. TensorBoard "
        "(<log_dir>/<exp_name>/train, validation) logs every metric either way",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else "tfreg_train"
    args = build_parser(prog).parse_args(argv)
    setup_logging()

    def run():
        from tfreg.engine.train import train

        train(
            gpu=args.gpu,
            config_path=args.config_path,
            gpu_allow_growth=args.gpu_allow_growth,
            ckpt_path=args.ckpt_path,
            exp_name=args.exp_name,
            log_dir=args.log_dir,
            max_epochs=args.max_epochs,
            num_workers=args.num_workers,
            strategy=args.strategy,
            # the style (bar or line) follows the terminal; the level chooses what is printed
            verbose=0 if args.verbose == 0 else None,
            console_metrics="all" if args.verbose == 2 else "losses",
        )

    return run_command(prog, run)


if __name__ == "__main__":
    sys.exit(main())
