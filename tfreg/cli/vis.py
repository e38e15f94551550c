"""``tfreg_vis`` / ``deepreg_vis``: figures and animations of images, labels, DDFs and evaluation CSVs.

Two ways in:

- DeepReg's flags, unchanged: ``tfreg_vis -m {0,1,2,3} -i a.nii.gz,b.nii.gz [-s DIR] ...``
  (0: slice GIF per image, 1: warp GIF, 2: tile PNG, 3: tiled GIF);
- a mode name first: ``tfreg_vis <mode> --help`` for ``montage``, ``overlay``, ``checkerboard``,
  ``contours``, ``grid``, ``jacobian``, ``violin``, ``box``.

Every written path is printed. Bad input ends with ``<prog>: error: <message>`` on stderr and exit
status 1 (2 for command-line usage errors, as argparse does). The plotting code lives in
:mod:`tfreg.vis` and is imported only once a mode runs, so ``--help`` answers at once; nothing here
imports TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

from tfreg.label_threshold import LABEL_THRESHOLD

MODES = {
    "montage": "moving / warped / fixed slice montages, several slices, physical aspect ratio",
    "overlay": "fixed image in grey with the warped (and moving) image in colour or alpha-blended",
    "checkerboard": "checkerboard of fixed vs warped (and moving) tiles",
    "contours": "fixed (green), moving (red) and warped (yellow) label contours over the fixed image",
    "grid": "a regular grid deformed by the DDF, drawn over a slice of the fixed image",
    "jacobian": "colour map of det J of the DDF with folding (det J <= 0) highlighted",
    "violin": "violin plot of a metric across methods (one evaluation CSV per method)",
    "box": "box plot of a metric across methods (one evaluation CSV per method)",
}

DEEPREG_MODES = "0: slice GIF per image, 1: warp GIF (needs --ddf-path), 2: tile PNG, 3: tiled GIF"


def _prog() -> str:
    """``deepreg_vis`` when started under that name, else ``tfreg_vis``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "deepreg_vis" if name.startswith("deepreg_vis") else "tfreg_vis"


def _split(text: Optional[str]) -> Optional[List[str]]:
    """Comma-separated string -> stripped non-empty items (None stays None)."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _report(paths) -> int:
    for path in [paths] if isinstance(paths, str) else paths:
        print(f"saved {path}")
    return 0


# ------------------------------------------------------------------------------------------ DeepReg flags
def _deepreg_parser(prog: str) -> argparse.ArgumentParser:
    modes = "\n".join(f"  {name:<13} {text}" for name, text in MODES.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Visualise registration inputs and results.\n\n"
        f"DeepReg-compatible use: {prog} -m MODE -i PATHS [options]\n  modes {DEEPREG_MODES}.\n\n"
        f"tfreg modes (run `{prog} <mode> --help` for their options):\n{modes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-m", "--mode", type=int, required=True, choices=range(4), metavar="{0,1,2,3}", help=DEEPREG_MODES
    )
    parser.add_argument(
        "-i", "--image-paths", required=True, help="comma-separated image files (NIfTI, .h5 or file.h5:key)"
    )
    parser.add_argument("-s", "--save-path", default="", help="output folder (created if missing; default: here)")
    parser.add_argument("--interval", type=int, default=50, help="ms between GIF frames, modes 0, 1, 3 (default 50)")
    parser.add_argument("--ddf-path", default=None, help="DDF (*spatial, ndim) in voxels; required by mode 1")
    parser.add_argument(
        "--num-interval",
        type=int,
        default=100,
        help="number of frames from t=0 to t=1 of the warp, mode 1 (default 100)",
    )
    parser.add_argument(
        "--slice-inds",
        default=None,
        help="comma-separated slice indices along axis 2, modes 1 and 2 (default: one random)",
    )
    parser.add_argument(
        "--fname", default=None, help="output file name, modes 2 and 3 (default visualisation.png / visualisation.gif)"
    )
    parser.add_argument(
        "--col-titles", default=None, help="comma-separated column titles, one per image, mode 2 (default: file names)"
    )
    parser.add_argument("--size", default="2,2", help="tiles as 'rows,cols', mode 3 (default 2,2)")
    parser.add_argument("--dpi", type=int, default=100, help="resolution in dots per inch (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the random default slice")
    return parser


def _run_deepreg(argv: Sequence[str], prog: str) -> int:
    args = _deepreg_parser(prog).parse_args(argv)
    import numpy as np

    from tfreg.vis import deepreg_modes
    from tfreg.vis.slices import parse_int_list

    paths = _split(args.image_paths)
    if not paths:
        raise ValueError("--image-paths: give at least one image path")
    slice_inds = parse_int_list(args.slice_inds, "--slice-inds")
    rng = np.random.default_rng(args.seed)
    if args.save_path:
        os.makedirs(args.save_path, exist_ok=True)
    if args.mode == 0:
        return _report(deepreg_modes.gif_slices(paths, args.save_path, args.interval, args.dpi))
    if args.mode == 1:
        if args.ddf_path is None:
            raise ValueError("--ddf-path is required with --mode 1")
        return _report(
            deepreg_modes.gif_warp(
                paths, args.ddf_path, args.save_path, slice_inds, args.num_interval, args.interval, args.dpi, rng
            )
        )
    if args.mode == 2:
        return _report(
            deepreg_modes.tile_slices(paths, args.save_path, args.fname, slice_inds, args.col_titles, args.dpi, rng)
        )
    return _report(deepreg_modes.gif_tile_slices(paths, args.save_path, args.size, args.fname, args.interval, args.dpi))


# ------------------------------------------------------------------------------------------ tfreg modes
def _mode_parser(prog: str, mode: str, slice_options: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{prog} {mode}", description=MODES[mode][0].upper() + MODES[mode][1:] + ".")
    parser.add_argument("--out", default=f"{mode}.png", help=f"output PNG path (default {mode}.png)")
    parser.add_argument("--dpi", type=int, default=100, help="resolution in dots per inch (default 100)")
    parser.add_argument("--title", default=None, help="figure title (default: describes the figure)")
    if slice_options:
        parser.add_argument("--axis", type=int, default=2, help="slicing axis of 3-D volumes, 0-2 (default 2)")
    return parser


def _add_slice(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--slice", type=int, default=None, help=f"slice index along --axis (default: {default})")


def _montage(argv, prog) -> int:
    parser = _mode_parser(prog, "montage")
    parser.add_argument("--moving", help="moving image")
    parser.add_argument("--warped", help="warped (moved) image")
    parser.add_argument("--fixed", help="fixed image")
    parser.add_argument(
        "--slices",
        default=None,
        help="comma-separated slice indices on the fixed (last given) image's grid "
        "(default: --num-slices spread over the object)",
    )
    parser.add_argument("--num-slices", type=int, default=5, help="number of default slices (default 5)")
    args = parser.parse_args(argv)
    from tfreg.vis import io
    from tfreg.vis.montage import plot_montage
    from tfreg.vis.slices import parse_int_list

    candidates = (("moving", args.moving), ("warped", args.warped), ("fixed", args.fixed))
    rows = [(name, path) for name, path in candidates if path]
    if not rows:
        parser.error("give at least one of --moving, --warped, --fixed")
    volumes = [io.read_volume(path, f"--{name}") for name, path in rows]
    return _report(
        plot_montage(
            [v.array for v in volumes],
            args.out,
            [v.spacing for v in volumes],
            [name for name, _ in rows],
            axis=args.axis,
            slices=parse_int_list(args.slices, "--slices"),
            num_slices=args.num_slices,
            dpi=args.dpi,
            title=args.title,
        )
    )


def _pair_parser(prog, mode):
    parser = _mode_parser(prog, mode)
    parser.add_argument("--fixed", required=True, help="fixed image")
    parser.add_argument("--warped", required=True, help="warped moving image, on the fixed grid")
    parser.add_argument("--moving", default=None, help="moving image on the fixed grid: adds a 'before' panel")
    _add_slice(parser, "the middle slice")
    return parser


def _read_pair(args):
    from tfreg.vis import io

    fixed = io.read_volume(args.fixed, "--fixed")
    warped = io.read_volume(args.warped, "--warped")
    io.check_same_spatial_shape(fixed, warped, "--fixed", "--warped")
    moving = None
    if args.moving:
        moving = io.read_volume(args.moving, "--moving")
        io.check_same_spatial_shape(fixed, moving, "--fixed", "--moving")
    return fixed, warped, moving


def _overlay(argv, prog) -> int:
    parser = _pair_parser(prog, "overlay")
    parser.add_argument(
        "--style",
        choices=("channels", "alpha"),
        default="channels",
        help="channels: fixed magenta, warped green, grey where they agree; "
        "alpha: warped in colour blended over grey (default channels)",
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the warped image with --style alpha")
    args = parser.parse_args(argv)
    from tfreg.vis.overlay import plot_overlay

    fixed, warped, moving = _read_pair(args)
    return _report(
        plot_overlay(
            fixed.array,
            warped.array,
            args.out,
            moving=None if moving is None else moving.array,
            spacing=fixed.spacing,
            axis=args.axis,
            index=args.slice,
            style=args.style,
            alpha=args.alpha,
            dpi=args.dpi,
            title=args.title,
        )
    )


def _checkerboard(argv, prog) -> int:
    parser = _pair_parser(prog, "checkerboard")
    parser.add_argument("--tiles", default="8", help="tiles per in-plane axis: 'n' or 'n_a,n_b' (default 8)")
    args = parser.parse_args(argv)
    from tfreg.vis.overlay import plot_checkerboard
    from tfreg.vis.slices import parse_int_list

    tiles = parse_int_list(args.tiles, "--tiles") or []
    if len(tiles) not in (1, 2):
        raise ValueError(f"--tiles: expected 'n' or 'n_a,n_b', got {args.tiles!r}")
    fixed, warped, moving = _read_pair(args)
    return _report(
        plot_checkerboard(
            fixed.array,
            warped.array,
            args.out,
            moving=None if moving is None else moving.array,
            spacing=fixed.spacing,
            axis=args.axis,
            index=args.slice,
            tiles=(tiles[0], tiles[-1]),
            dpi=args.dpi,
            title=args.title,
        )
    )


def _contours(argv, prog) -> int:
    parser = _mode_parser(prog, "contours")
    parser.add_argument("--image", required=True, help="image drawn underneath (normally the fixed image)")
    parser.add_argument("--fixed-label", help="fixed label (green)")
    parser.add_argument("--moving-label", help="moving label on the fixed grid (red)")
    parser.add_argument("--warped-label", help="warped moving label (yellow)")
    parser.add_argument(
        "--label-index",
        default=None,
        help="comma-separated label channels to draw (default all; an integer label map "
        "has one channel per value, in increasing order)",
    )
    parser.add_argument("--linewidth", type=float, default=1.2, help="contour width in points (default 1.2)")
    parser.add_argument(
        "--label-threshold",
        type=float,
        default=LABEL_THRESHOLD,
        help="a label with fractional values in [0, 1] (tfreg_predict's pred_fixed_label, a probability map) is "
        f"drawn where value >= this (default {LABEL_THRESHOLD}, the rule of tfreg_predict's and tfreg_evaluate's "
        "Dice); integer label maps are drawn per value",
    )
    _add_slice(parser, "where the first label given has the largest area")
    args = parser.parse_args(argv)
    from tfreg.vis import io
    from tfreg.vis.contours import plot_contours
    from tfreg.vis.slices import parse_int_list

    candidates = (("fixed", args.fixed_label), ("moving", args.moving_label), ("warped", args.warped_label))
    given = [(name, path) for name, path in candidates if path]
    if not given:
        parser.error("give at least one of --fixed-label, --moving-label, --warped-label")
    image = io.read_volume(args.image, "--image")
    layers = []
    for name, path in given:
        labels, _ = io.read_labels(path, f"--{name}-label", threshold=args.label_threshold)
        io.check_same_spatial_shape(image, labels, "--image", f"--{name}-label")
        layers.append((name, labels.array))
    return _report(
        plot_contours(
            image.array,
            layers,
            args.out,
            spacing=image.spacing,
            axis=args.axis,
            index=args.slice,
            channels=parse_int_list(args.label_index, "--label-index"),
            linewidth=args.linewidth,
            dpi=args.dpi,
            title=args.title,
        )
    )


def _ddf_parser(prog, mode, slice_default):
    parser = _mode_parser(prog, mode)
    parser.add_argument("--ddf", required=True, help="DDF (*spatial, ndim) in voxels, component c along axis c")
    _add_slice(parser, slice_default)
    return parser


def _grid(argv, prog) -> int:
    parser = _ddf_parser(prog, "grid", "the middle slice")
    parser.add_argument("--image", default=None, help="fixed image drawn underneath (on the DDF's grid)")
    parser.add_argument("--step", type=int, default=None, help="grid spacing in voxels (default: about 20 lines)")
    args = parser.parse_args(argv)
    from tfreg.vis import io
    from tfreg.vis.grid import plot_grid

    ddf = io.read_ddf(args.ddf, "--ddf")
    image, spacing = None, ddf.spacing
    if args.image:
        volume = io.read_volume(args.image, "--image")
        io.check_same_spatial_shape(volume, ddf, "--image", "--ddf")
        image, spacing = volume.array, volume.spacing
    return _report(
        plot_grid(
            ddf.array,
            args.out,
            image=image,
            spacing=spacing,
            axis=args.axis,
            index=args.slice,
            step=args.step,
            dpi=args.dpi,
            title=args.title,
        )
    )


def _jacobian(argv, prog) -> int:
    parser = _ddf_parser(prog, "jacobian", "the slice with the most folding, else the middle one")
    parser.add_argument(
        "--vmax",
        type=float,
        default=None,
        help="top of the colour scale (0 .. 1 .. vmax; default max(2, 99th percentile))",
    )
    args = parser.parse_args(argv)
    from tfreg.vis import io
    from tfreg.vis.jacobian_map import plot_jacobian

    ddf = io.read_ddf(args.ddf, "--ddf")
    return _report(
        plot_jacobian(
            ddf.array,
            args.out,
            spacing=ddf.spacing,
            axis=args.axis,
            index=args.slice,
            vmax=args.vmax,
            dpi=args.dpi,
            title=args.title,
        )
    )


def _distribution(argv, prog, kind) -> int:
    parser = _mode_parser(prog, kind, slice_options=False)
    parser.add_argument(
        "--csv", nargs="+", required=True, help="evaluation CSVs, one per method (space- or comma-separated)"
    )
    parser.add_argument("--metric", default="dice", help="metric column to plot (default dice)")
    parser.add_argument("--labels", default=None, help="comma-separated values of the 'label' column to keep")
    parser.add_argument("--names", default=None, help="comma-separated method names (default: CSV file names)")
    parser.add_argument("--no-points", action="store_true", help="do not draw the individual values")
    args = parser.parse_args(argv)
    from tfreg.vis import io
    from tfreg.vis.distributions import plot_distribution

    paths = [p for item in args.csv for p in _split(item)]
    values = io.read_metric_csvs(paths, args.metric, _split(args.labels), _split(args.names))
    return _report(
        plot_distribution(
            values, args.out, kind=kind, metric=args.metric, points=not args.no_points, dpi=args.dpi, title=args.title
        )
    )


_HANDLERS = {
    "montage": _montage,
    "overlay": _overlay,
    "checkerboard": _checkerboard,
    "contours": _contours,
    "grid": _grid,
    "jacobian": _jacobian,
    "violin": lambda argv, prog: _distribution(argv, prog, "violin"),
    "box": lambda argv, prog: _distribution(argv, prog, "box"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``tfreg_vis`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    ``argv[0]`` naming a mode (``montage``, ``overlay``, ...) runs that mode; anything else is parsed
    as DeepReg's ``deepreg_vis`` flags.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = _prog()
    try:
        if argv and argv[0] in _HANDLERS:
            return _HANDLERS[argv[0]](argv[1:], prog)
        return _run_deepreg(argv, prog)
    except SystemExit as stop:  # argparse's --help and usage errors: report the status instead of exiting
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except (ValueError, OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
