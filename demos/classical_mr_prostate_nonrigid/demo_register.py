"""Classical non-rigid registration of two prostate MR images (DeepReg's classical non-rigid demo).

DeepReg's demo optimises a dense DDF for one pair by gradient descent on LNCC plus the bending energy
(weight 1). This demo does the same with ``tfreg_register``'s optimisation
(:func:`tfreg.registration.files.register_files`): Adam on a dense displacement field, under LNCC
(window 7) and the bending energy (weight 1), over a resolution pyramid (downsampling factors 4, 2, 1;
DeepReg ran 3000 steps at full resolution). The labels are not used by the optimisation. They are
warped with the result and compared with the fixed label. Run from anywhere after ``demo_data.py``::

    python demos/classical_mr_prostate_nonrigid/demo_register.py          # levels 4 2 1, 100 60 20 steps
    python demos/classical_mr_prostate_nonrigid/demo_register.py --test   # levels 2 1, 60 20 steps

Everything goes to ``logs_reg/<timestamp>/``:

- ``registration/``: ``tfreg_register``'s outputs (``warped_moving.nii.gz``, ``warped_moving_label.nii.gz``,
  ``ddf.nii.gz`` in voxels, ``transform_itk.nii.gz``, ``registration.json`` with the loss of every step);
- ``results.json``: the Dice and the label centroid distance (voxels; DeepReg's "TRE") before and after,
  and the fraction of folded voxels (``det J <= 0``).

The command printed at the end runs the same registration with the ``tfreg_register`` command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import classical_demo  # noqa: E402
from demos.classical_mr_prostate_nonrigid.demo_data import FILES, NAME  # noqa: E402
from demos.staged_demo import demo_dir  # noqa: E402

#: DeepReg's losses: LNCC and the bending energy, weight 1.
LOSS = {
    "image": {"name": "lncc", "kernel_size": 7, "weight": 1.0},
    "regularization": {"name": "bending", "weight": 1.0},
}
#: Pyramid levels and Adam steps per level, of a full run and of --test.
LEVELS, ITERATIONS = (4, 2, 1), (100, 60, 20)
TEST_LEVELS, TEST_ITERATIONS = (2, 1), (60, 20)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{NAME})")
    parser.add_argument("--test", action="store_true", help=f"levels {TEST_LEVELS}, steps {TEST_ITERATIONS}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from tfreg.data.image_io import read_image
    from tfreg.registration import OptimisationSettings
    from tfreg.registration.files import register_files

    folder = demo_dir(NAME, args.dir)
    dataset = os.path.join(folder, classical_demo.DATASET_FOLDER)
    classical_demo.require_dataset(dataset, list(FILES.values()), NAME)
    paths = {name[: -len(".nii.gz")]: os.path.join(dataset, name) for name in FILES.values()}
    levels, iterations = (TEST_LEVELS, TEST_ITERATIONS) if args.test else (LEVELS, ITERATIONS)
    settings = OptimisationSettings(
        model="ddf", loss=LOSS, levels=levels, iterations=iterations, verbose=0 if args.quiet else 1
    )
    run = classical_demo.new_run_folder(folder)
    out = os.path.join(run, "registration")
    register_files(
        paths["fixed_image"],
        paths["moving_image"],
        out,
        settings,
        fixed_label=paths["fixed_label"],
        moving_label=paths["moving_label"],
        export=("deepreg", "itk"),
    )
    # both labels come from one grid in DeepReg's file: the moving label is on the fixed grid already
    fixed_label, _ = read_image(paths["fixed_label"])
    moving_label, _ = read_image(paths["moving_label"])
    warped_label, _ = read_image(os.path.join(out, "warped_moving_label.nii.gz"))
    with open(os.path.join(out, "registration.json")) as handle:
        summary = json.load(handle)
    results = {
        "levels": list(levels),
        "iterations": list(iterations),
        "labels": classical_demo.label_summary(fixed_label, moving_label, warped_label),
        "folding_fraction": summary["folding_fraction"],
        "seconds": summary["seconds"],
    }
    classical_demo.write_results(run, results)
    for name, values in results["labels"].items():
        print(f"[demo_register] label {name}: {', '.join(f'{v:.3f}' for v in values)}")
    print(f"[demo_register] folded voxels: {100 * results['folding_fraction']:.3f} %")
    command = [
        "tfreg_register", "-f", paths["fixed_image"], "-m", paths["moving_image"],
        "--fixed_label", paths["fixed_label"], "--moving_label", paths["moving_label"],
        "-o", os.path.join(run, "registration_cli"), "--similarity", "lncc", "--regularization", "bending",
        "--regularization_weight", "1", "--levels", *map(str, levels), "--iterations", *map(str, iterations),
    ]  # fmt: skip
    print(f"[demo_register] written to {run}; the same registration on the command line:\n  {shlex.join(command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
