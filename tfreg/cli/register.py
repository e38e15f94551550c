"""``tfreg_register``: register two images by instance optimisation, optionally starting from a trained model.

See :mod:`tfreg.registration.files` (what is written) and :mod:`tfreg.registration.optimise` (how).

Settings come from, in increasing priority: the defaults of
:class:`~tfreg.registration.optimise.OptimisationSettings`, the ``register:`` section of ``--config``
(keys = that class' fields, e.g. ``loss`` in DeepReg's layout), and the command-line flags given.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from typing import Any, Dict, List, Optional

from tfreg.cli.common import run_command, setup_logging

#: ``--similarity`` names -> the image loss entry they stand for.
SIMILARITIES: Dict[str, Dict[str, Any]] = {
    "lncc": {"name": "lncc", "kernel_size": 7},
    "gncc": {"name": "gncc"},
    "ssd": {"name": "ssd"},
    "mi": {"name": "mi", "num_bins": 32},
    "mind": {"name": "mind"},
    "mind-ssc": {"name": "mind-ssc"},
    "macmind": {"name": "macmind"},
}
#: ``--regularization`` names (DeepReg's): diffusion (first derivatives) and bending energy.
REGULARIZERS = ("gradient", "bending")


def build_parser(prog: str = "tfreg_register") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Register a moving image to a fixed image by optimising a displacement (or velocity) field "
        "for this pair, over a resolution pyramid, optionally after an affine stage or from a trained model's "
        "prediction; writes the warped image and the transform as a DeepReg voxel DDF, an ITK displacement field "
        "and an ANTs warp file.",
    )
    parser.add_argument("-f", "--fixed", required=True, help="fixed image file (NIfTI or any SimpleITK format)")
    parser.add_argument("-m", "--moving", required=True, help="moving image file; resampled onto the fixed grid")
    parser.add_argument("-o", "--out", required=True, help="output folder (refused if it exists, see --overwrite)")
    parser.add_argument("--fixed_label", help="fixed label file (binary or one-hot), for a label loss")
    parser.add_argument("--moving_label", help="moving label file, same channels as --fixed_label")
    parser.add_argument("--fixed_mask", help="fixed mask file: image similarity only inside it")
    parser.add_argument("--moving_mask", help="moving mask file: image similarity only where it maps")
    parser.add_argument("-c", "--config", help="YAML file with a 'register:' section (OptimisationSettings fields)")
    parser.add_argument("--similarity", choices=sorted(SIMILARITIES), help="image loss (default lncc)")
    parser.add_argument("--similarity_weight", type=float, help="its weight (default 1)")
    parser.add_argument("--regularization", choices=REGULARIZERS, help="field regulariser (default gradient)")
    parser.add_argument("--regularization_weight", type=float, help="its weight (default 1)")
    parser.add_argument("--label_weight", type=float, help="weight of a Dice label loss (needs labels; default none)")
    parser.add_argument(
        "--transform", choices=("ddf", "dvf"), help="ddf: displacement field; dvf: velocity field, diffeomorphic"
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", help="pyramid downsampling factors, coarse to fine (default 4 2 1)"
    )
    parser.add_argument("--iterations", type=int, nargs="+", help="Adam steps per level (one value or one per level)")
    parser.add_argument("--learning_rate", type=float, help="Adam learning rate, voxels per step (default 0.2)")
    parser.add_argument(
        "--control_points", type=float, help="B-spline control-point spacing, voxels (default: dense field)"
    )
    parser.add_argument("--smoothing_sigma", type=float, help="Gaussian smoothing of a dense field, voxels")
    parser.add_argument("--affine", type=int, metavar="N", help="N steps of an affine stage first (default 0)")
    parser.add_argument("-k", "--model", help="start from a trained model: .../save/ckpt-N or a .keras file")
    parser.add_argument("--model_config", help="training config of -k (default: the one beside the checkpoint)")
    parser.add_argument("--model_image_size", type=int, nargs="+", help="grid the model was trained on")
    parser.add_argument(
        "--export", nargs="+", default=["deepreg", "itk"], choices=("deepreg", "itk", "ants"), help="transform formats"
    )
    parser.add_argument("--inverse", action="store_true", help="also write the inverse transforms")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output folder tfreg_register wrote")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return parser


def settings_from(args: argparse.Namespace, config: Optional[Dict[str, Any]], config_path: Optional[str] = None):
    """:class:`OptimisationSettings` from a ``register:`` section and the flags (module docstring)."""
    from tfreg.registration.optimise import DEFAULT_LOSS, OptimisationSettings

    fields = tuple(f.name for f in dataclasses.fields(OptimisationSettings))
    where = f"--config {config_path}" if config_path else "--config"
    values: Dict[str, Any] = {}
    if config is not None:
        if not isinstance(config, dict) or set(config) != {"register"} or not isinstance(config["register"], dict):
            got = sorted(config) if isinstance(config, dict) else config
            raise ValueError(f"{where}: expected one top-level key 'register:' holding a mapping, got {got!r}")
        section = config["register"]
        unknown = sorted(set(section) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) register.{unknown}; allowed: {list(fields)}")
        values.update(copy.deepcopy(section))
    loss = copy.deepcopy(values.get("loss", DEFAULT_LOSS))
    if args.similarity is not None or args.similarity_weight is not None:
        entry = dict(SIMILARITIES[args.similarity or "lncc"])
        entry["weight"] = 1.0 if args.similarity_weight is None else args.similarity_weight
        loss["image"] = entry
    if args.regularization is not None or args.regularization_weight is not None:
        loss["regularization"] = {
            "name": args.regularization or "gradient",
            "weight": 1.0 if args.regularization_weight is None else args.regularization_weight,
        }
    if args.label_weight is not None:
        loss["label"] = {"name": "dice", "weight": args.label_weight}
    values["loss"] = loss
    flags = {
        "model": args.transform,
        "levels": args.levels,
        "iterations": args.iterations[0] if args.iterations and len(args.iterations) == 1 else args.iterations,
        "learning_rate": args.learning_rate,
        "control_points": args.control_points,
        "smoothing_sigma": args.smoothing_sigma,
        "affine_iterations": args.affine,
        "seed": args.seed,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.quiet:
        values["verbose"] = 0
    try:
        return OptimisationSettings(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"register settings ({where if config is not None else 'flags'}): {err}") from None


def main(argv: Optional[List[str]] = None) -> int:
    prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else "tfreg_register"
    args = build_parser(prog).parse_args(argv)
    setup_logging()

    def run():
        config = None
        if args.config:
            import yaml

            if not os.path.isfile(args.config):
                raise FileNotFoundError(f"--config: file {args.config} does not exist")
            with open(args.config) as f:
                config = yaml.safe_load(f)
        settings = settings_from(args, config, args.config)
        from tfreg.registration.files import register_files

        written = register_files(
            args.fixed,
            args.moving,
            args.out,
            settings,
            fixed_label=args.fixed_label,
            moving_label=args.moving_label,
            fixed_mask=args.fixed_mask,
            moving_mask=args.moving_mask,
            model=args.model,
            model_config=args.model_config,
            model_image_size=args.model_image_size,
            export=args.export,
            inverse=args.inverse,
            overwrite=args.overwrite,
        )
        print(f"registration written to {os.path.dirname(next(iter(written.values())))}")

    return run_command(prog, run)


if __name__ == "__main__":
    sys.exit(main())
