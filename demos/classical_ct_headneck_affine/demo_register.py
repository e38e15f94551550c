"""Classical affine registration of a head-and-neck CT, with a known answer (DeepReg's classical affine demo).

As in DeepReg's demo, the moving image is the fixed image under a random affine transform, so the
correct answer is known:

- the corners of the image cube, in coordinates normalised to [-1, 1] about the centre, are each moved
  by a uniform random amount of up to ``--scale`` (0.2, DeepReg's value) per axis;
- the affine map through them (:func:`random_affine`) gives ``moving(p) = fixed(M p)``, sampled linearly
  with a zero outside (DeepReg's resampler).

The labels are moved the same way. ``tfreg_register``'s optimisation (:func:`tfreg.registration.files.
register_files`) then runs only an affine stage: Adam on the affine parameters with DeepReg's SSD, at
full resolution (pyramid level ``--level`` 1), without a deformable stage. It is compared with the known
answer: fixed voxel ``p`` must map to ``M^-1 p``. Run from anywhere after ``demo_data.py``::

    python demos/classical_ct_headneck_affine/demo_register.py            # 300 steps at full resolution
    python demos/classical_ct_headneck_affine/demo_register.py --test     # 100 steps at half resolution

A coarser level is faster but less exact: the affine optimum of the smoothed, down-sampled pair differs
from the full-resolution one (on the tests' phantom the mean error is 0.04 voxel at level 1, 0.35 at
level 2 and 1.6 at level 4).

Everything goes to ``logs_reg/<timestamp>/``:

- ``moving_image.nii.gz``, ``moving_label.nii.gz``: the simulated moving pair;
- ``affine.txt``: the 4 x 4 voxel matrix ``M``;
- ``ground_truth_ddf.nii.gz``: ``M^-1 p - p``;
- ``registration/``: ``tfreg_register``'s outputs (``warped_moving.nii.gz``, ``warped_moving_label.nii.gz``,
  ``ddf.nii.gz``, ``transform_itk.nii.gz``, ``registration.json``);
- ``results.json``: the DDF's error against the answer (voxels, over the fixed voxels whose answer lies
  inside the moving image), and the Dice and centroid distance of each label before and after.

The command printed at the end runs the same registration with the ``tfreg_register`` command line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Optional, Sequence

import numpy as np

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import classical_demo  # noqa: E402
from demos.classical_ct_headneck_affine.demo_data import FIXED_IMAGE, FIXED_LABEL, NAME  # noqa: E402
from demos.staged_demo import demo_dir  # noqa: E402

#: DeepReg's transform scale.
SCALE = 0.2
#: Affine steps and pyramid level (downsampling factor) of a full run and of --test.
ITERATIONS, LEVEL = 300, 1
TEST_ITERATIONS, TEST_LEVEL = 100, 2
#: The corners moved by the random transform (normalised coordinates), as in DeepReg's generator.
_CORNERS = np.array([[-1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]], dtype=np.float64)


def random_affine(shape: Sequence[int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """A random 4 x 4 affine matrix ``M`` in voxel coordinates, ``moving(p) = fixed(M p)``.

    In normalised coordinates ``x = (p - c) / h`` (``c`` the grid centre, ``h`` its half-width), four
    corners of the cube ``[-1, 1]^3`` are moved by ``U(-scale, scale)`` per axis, and the affine map that
    sends them there (exact: 4 points in 3-D) is expressed in voxels.
    """
    shape = np.asarray(shape, dtype=np.float64)
    centre = (shape - 1) / 2.0
    half = np.maximum(centre, 1.0)
    moved = _CORNERS + rng.uniform(-scale, scale, _CORNERS.shape)
    # [x, 1] @ T = x': rows of T are the linear part (3 x 3, acting on row vectors) and the translation
    t = np.linalg.solve(np.c_[_CORNERS, np.ones(4)], moved)
    linear = np.diag(half) @ t[:3].T @ np.diag(1.0 / half)  # column-vector form in voxels
    matrix = np.eye(4)
    matrix[:3, :3] = linear
    matrix[:3, 3] = centre + half * t[3] - linear @ centre
    return matrix


def apply_affine(array: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``array`` sampled at ``M p`` for every voxel ``p`` (linear, zero outside; channels kept)."""
    from tfreg.ops.warp import warp

    shape = array.shape[:3]
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)
    ddf = grid @ matrix[:3, :3].T + matrix[:3, 3] - grid
    return np.asarray(warp(array[None].astype(np.float32), ddf[None].astype(np.float32)))[0]


def answer_ddf(shape: Sequence[int], matrix: np.ndarray) -> np.ndarray:
    """The correct DDF ``M^-1 p - p`` (voxels, ``(*shape, 3)``): fixed voxel ``p`` to moving ``M^-1 p``."""
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)
    inverse = np.linalg.inv(matrix)
    return (grid @ inverse[:3, :3].T + inverse[:3, 3] - grid).astype(np.float32)


def ddf_error(ddf: np.ndarray, answer: np.ndarray) -> dict:
    """Error statistics (voxels) of ``ddf`` over the fixed voxels whose answer lies inside the moving grid."""
    shape = np.asarray(answer.shape[:3])
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    target = grid + answer
    valid = np.all((target >= 0) & (target <= shape - 1), axis=-1)
    error = np.linalg.norm(ddf - answer, axis=-1)[valid]
    identity = np.linalg.norm(answer, axis=-1)[valid]
    return {
        "voxels": int(valid.sum()),
        "mean": float(error.mean()),
        "p95": float(np.percentile(error, 95)),
        "max": float(error.max()),
        "identity_mean": float(identity.mean()),
        "identity_max": float(identity.max()),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{NAME})")
    parser.add_argument(
        "--test", action="store_true", help=f"{TEST_ITERATIONS} steps at level {TEST_LEVEL} (a quick check)"
    )
    parser.add_argument("--iterations", type=int, default=None, help=f"affine steps (default {ITERATIONS})")
    parser.add_argument("--level", type=int, default=None, help=f"pyramid downsampling factor (default {LEVEL})")
    parser.add_argument("--scale", type=float, default=SCALE, help="random transform scale (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random transform (default 0)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from tfreg.data.image_io import read_image, save_image
    from tfreg.registration import OptimisationSettings
    from tfreg.registration.files import register_files

    folder = demo_dir(NAME, args.dir)
    dataset = os.path.join(folder, classical_demo.DATASET_FOLDER)
    classical_demo.require_dataset(dataset, [FIXED_IMAGE, FIXED_LABEL], NAME)
    fixed_path, fixed_label_path = os.path.join(dataset, FIXED_IMAGE), os.path.join(dataset, FIXED_LABEL)
    fixed, geometry = read_image(fixed_path)
    fixed_label, _ = read_image(fixed_label_path)

    matrix = random_affine(fixed.shape, args.scale, np.random.default_rng(args.seed))
    run = classical_demo.new_run_folder(folder)
    moving_path = os.path.join(run, "moving_image.nii.gz")
    moving_label_path = os.path.join(run, "moving_label.nii.gz")
    moving_label = apply_affine(fixed_label, matrix)
    save_image(apply_affine(fixed, matrix), moving_path, geometry)
    save_image(moving_label, moving_label_path, geometry)
    answer = answer_ddf(fixed.shape, matrix)
    save_image(answer, os.path.join(run, "ground_truth_ddf.nii.gz"), geometry)
    np.savetxt(os.path.join(run, "affine.txt"), matrix, fmt="%.8f")

    iterations = args.iterations if args.iterations is not None else TEST_ITERATIONS if args.test else ITERATIONS
    level = args.level if args.level is not None else TEST_LEVEL if args.test else LEVEL
    settings = OptimisationSettings(
        loss={"image": {"name": "ssd", "weight": 1.0}},
        levels=(level,),
        iterations=0,
        affine_iterations=iterations,
        verbose=0 if args.quiet else 1,
    )
    out = os.path.join(run, "registration")
    register_files(
        fixed_path,
        moving_path,
        out,
        settings,
        fixed_label=fixed_label_path,
        moving_label=moving_label_path,
        export=("deepreg", "itk"),
    )
    ddf, _ = read_image(os.path.join(out, "ddf.nii.gz"))
    warped_label, _ = read_image(os.path.join(out, "warped_moving_label.nii.gz"))
    results = {
        "affine": matrix.tolist(),
        "iterations": iterations,
        "level": level,
        "ddf_error_voxels": ddf_error(ddf, answer),
        "labels": classical_demo.label_summary(fixed_label, moving_label, warped_label),
    }
    classical_demo.write_results(run, results)

    error = results["ddf_error_voxels"]
    print(
        f"[demo_register] DDF error against the known transform (voxels): mean {error['mean']:.3f}, 95th "
        f"percentile {error['p95']:.3f}, max {error['max']:.3f} (identity: mean {error['identity_mean']:.2f}, "
        f"max {error['identity_max']:.2f})"
    )
    for name, values in results["labels"].items():
        print(f"[demo_register] label {name}: {', '.join(f'{v:.3f}' for v in values)}")
    command = [
        "tfreg_register", "-f", fixed_path, "-m", moving_path, "--fixed_label", fixed_label_path,
        "--moving_label", moving_label_path, "-o", os.path.join(run, "registration_cli"), "--similarity", "ssd",
        "--affine", str(iterations), "--levels", str(level), "--iterations", "0",
    ]  # fmt: skip
    print(f"[demo_register] written to {run}; the same registration on the command line:\n  {shlex.join(command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
