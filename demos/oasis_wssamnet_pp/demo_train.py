"""Train the OASIS WSSAMNet++ demo: the segmenter first, then the registration network with contour attention.

Run from anywhere after ``demo_data.py``::

    python demos/oasis_wssamnet_pp/demo_train.py                      # segmenter, then contour attention
    python demos/oasis_wssamnet_pp/demo_train.py --ablation images    # or masks / concat (Table I's rows)
    python demos/oasis_wssamnet_pp/demo_train.py --test               # 1 epoch each, 16^3 volumes

Stage 1 (``segmenter``): ``config/wssamnet_pp_oasis_segmenter.yaml`` (4-label UNet segmenter, Dice).
Stage 2 (``register_<ablation>``): ``config/wssamnet_pp_oasis_<ablation>.yaml``, whose segmenter is frozen
and loaded from stage 1's last checkpoint (``train.init_from.path``). Both merge ``oasis_wssamnet_pp.yaml``
(data folders, 80 x 96 x 112 voxels, epochs). ``--segmenter_ckpt`` skips stage 1 and uses that checkpoint,
so the four ablations can share one segmenter, as in the paper. Runs go to
``demos/oasis_wssamnet_pp/logs_train/<timestamp>/<stage>/`` (``-test`` appended to ``--test`` runs).
"""

import argparse
import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402

NAME = "oasis_wssamnet_pp"
DEMO_CONFIG = os.path.join(DEMO_DIR, f"{NAME}.yaml")
#: --ablation -> config/ file (WSSAMNet++ Table I: Dice 0.750 / 0.736 / 0.724 / 0.731)
ABLATIONS = {
    "contour": "wssamnet_pp_oasis_contour.yaml",
    "images": "wssamnet_pp_oasis_images.yaml",
    "masks": "wssamnet_pp_oasis_masks.yaml",
    "concat": "wssamnet_pp_oasis_concat.yaml",
}


def data_override(folder: str, test: bool) -> dict:
    dataset = staged_demo.split_dirs(os.path.join(folder, "dataset"), ("train", "valid", "test"), labeled=True)
    if test:
        dataset["image_shape"] = list(staged_demo.TEST_SHAPE)
    return {"dataset": dataset}


def main(argv=None) -> str:
    """Train; returns the registration stage's folder ``<dir>/logs_train/<run>/register_<ablation>``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="one epoch per stage on 16^3 volumes (a smoke test)")
    parser.add_argument("--ablation", choices=sorted(ABLATIONS), default="contour", help="registration input")
    parser.add_argument("--segmenter_ckpt", default=None, help="a trained segmenter checkpoint: skip stage 1")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs (-1: the config's)")
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{NAME})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the demo YAML's paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    staged_demo.require_dataset(os.path.join(folder, "dataset"), NAME, ("train", "valid", "test"))
    epochs = 1 if args.test else args.max_epochs
    run = staged_demo.run_name(args.test)

    segmenter_ckpt = args.segmenter_ckpt
    if segmenter_ckpt is None:
        stage = staged_demo.run_stage(
            "segmenter",
            [staged_demo.repo_config("wssamnet_pp_oasis_segmenter.yaml"), DEMO_CONFIG],
            data_override(folder, args.test),
            folder,
            run,
            epochs,
            args.gpu,
        )
        segmenter_ckpt = staged_demo.last_checkpoint(stage)
    override = data_override(folder, args.test)
    # the config's init_from names the parts (segmenter/backbone: backbone, ...); only the path changes
    override["train"] = {"init_from": {"path": staged_demo.portable_path(segmenter_ckpt)}}
    exp = staged_demo.run_stage(
        f"register_{args.ablation}",
        [staged_demo.repo_config(ABLATIONS[args.ablation]), DEMO_CONFIG],
        override,
        folder,
        run,
        epochs,
        args.gpu,
    )
    print(f"[demo_train] segmenter {segmenter_ckpt}; registration {exp} (next: demo_predict.py)")
    return exp


if __name__ == "__main__":
    main()
