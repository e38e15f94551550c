"""Shared pieces of the command lines: logging set-up, DeepReg's device flags, error reporting.

Commands import the engine (and so TensorFlow) only after parsing, so ``--help`` is instant and
``TF_CPP_MIN_LOG_LEVEL`` (default 2, as DeepReg) takes effect.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

#: DeepReg's DEEPREG_LOG_LEVEL values 0-5 (default 2 = INFO)
LOG_LEVELS = {
    0: logging.NOTSET,
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.ERROR,
    5: logging.CRITICAL,
}


def setup_logging() -> None:
    """Configure logging from ``TFREG_LOG_LEVEL`` or DeepReg's ``DEEPREG_LOG_LEVEL`` (0-5, default 2 = INFO)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raw = os.environ.get("TFREG_LOG_LEVEL", os.environ.get("DEEPREG_LOG_LEVEL", "2"))
    try:
        level = LOG_LEVELS[int(raw)]
    except (ValueError, KeyError):
        raise SystemExit(f"TFREG_LOG_LEVEL/DEEPREG_LOG_LEVEL must be an integer 0-5, got {raw!r}") from None
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # TensorFlow's absl logger reports checkpoint-sharding timings at INFO: keep it to warnings
    logging.getLogger("absl").setLevel(max(level, logging.WARNING))


def str_to_bool(text: str) -> bool:
    """``true/false/yes/no/1/0`` (any case) as a bool, for flags DeepReg gave a value."""
    value = str(text).strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_device_flags(parser: argparse.ArgumentParser) -> None:
    """``-g/--gpu``, ``-gr/--gpu_allow_growth``, ``--num_workers`` (DeepReg's flags, §11 fixes)."""
    parser.add_argument(
        "-g",
        "--gpu",
        default=None,
        help="GPU indices for CUDA_VISIBLE_DEVICES, e.g. 0 or 0,1; '' runs on the CPU (default: leave it as is)",
    )
    parser.add_argument(
        "-gr",
        "--gpu_allow_growth",
        nargs="?",
        const=True,
        default=False,
        type=str_to_bool,
        help="allocate GPU memory on demand; a switch (DeepReg's '-gr true/false' form is accepted too)",
    )
    parser.add_argument(
        "--num_workers",
        type=int,
        default=0,
        help="limit TensorFlow to this many CPU threads; 0 (default) uses all cores",
    )


def run_command(prog: str, func: Callable[[], object]) -> int:
    """Run ``func``; a user error (bad config, path, flag), a file-system error (permission, disk full) or
    a diverged training (``FloatingPointError``) prints ``<prog>: error: ...`` and returns 1."""
    from tfreg.config.errors import ConfigError

    try:
        func()
    except (ConfigError, ValueError, OSError, KeyError, FloatingPointError) as err:
        message = str(err) if not isinstance(err, KeyError) else repr(err)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    return 0


__all__ = ["setup_logging", "str_to_bool", "add_device_flags", "run_command", "LOG_LEVELS"]
