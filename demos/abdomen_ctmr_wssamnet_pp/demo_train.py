"""Train the Learn2Reg CT -> MR WSSAMNet++ demo: a CT and an MR segmenter, then the registration network.

Run from anywhere after ``demo_data.py``::

    python demos/abdomen_ctmr_wssamnet_pp/demo_train.py           # three stages
    python demos/abdomen_ctmr_wssamnet_pp/demo_train.py --test    # 1 epoch each, 16^3 volumes

Stage 1 (``segmenter_ct``) and 2 (``segmenter_mr``): ``config/wssamnet_pp_l2r_ctmr_segmenter.yaml`` with
``train.segment: moving`` (the CT images) and ``fixed`` (the MR images). Stage 3 (``register``):
``config/wssamnet_pp_l2r_ctmr.yaml``: the two segmenters frozen (``moving_segmenter`` from stage 1,
``fixed_segmenter`` from stage 2, through a two-entry ``train.init_from``), contour attention, Dice on the
warped labels plus bending energy. Every stage merges ``abdomen_ctmr_wssamnet_pp.yaml`` (data folders,
96 x 80 x 96 voxels, epochs). Runs go to ``demos/abdomen_ctmr_wssamnet_pp/logs_train/<timestamp>/<stage>/``.
"""

import argparse
import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402

NAME = "abdomen_ctmr_wssamnet_pp"
DEMO_CONFIG = os.path.join(DEMO_DIR, f"{NAME}.yaml")
#: stage -> (the segmentation model's `segment`, the registration model's segmenter it initialises)
SEGMENTERS = {"segmenter_ct": ("moving", "moving_segmenter"), "segmenter_mr": ("fixed", "fixed_segmenter")}


def data_override(folder: str, test: bool) -> dict:
    dataset = staged_demo.split_dirs(os.path.join(folder, "dataset"), ("train", "valid"), labeled=True)
    if test:
        dataset["moving_image_shape"] = dataset["fixed_image_shape"] = list(staged_demo.TEST_SHAPE)
    return {"dataset": dataset}


def main(argv=None) -> str:
    """Train; returns the registration stage's folder ``<dir>/logs_train/<run>/register``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="one epoch per stage on 16^3 volumes (a smoke test)")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs (-1: the config's)")
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{NAME})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the demo YAML's paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    staged_demo.require_dataset(os.path.join(folder, "dataset"), NAME, ("train", "valid"))
    epochs = 1 if args.test else args.max_epochs
    run = staged_demo.run_name(args.test)

    init_from = []
    for stage, (segment, target) in SEGMENTERS.items():
        override = data_override(folder, args.test)
        override["train"] = {"segment": segment}
        exp = staged_demo.run_stage(
            stage,
            [staged_demo.repo_config("wssamnet_pp_l2r_ctmr_segmenter.yaml"), DEMO_CONFIG],
            override,
            folder,
            run,
            epochs,
            args.gpu,
        )
        ckpt = staged_demo.portable_path(staged_demo.last_checkpoint(exp))
        init_from.append({"path": ckpt, "parts": {f"{target}/backbone": "backbone", f"{target}/head": "head"}})
    override = data_override(folder, args.test)
    override["train"] = {"init_from": init_from}  # a list replaces the config's whole list
    exp = staged_demo.run_stage(
        "register",
        [staged_demo.repo_config("wssamnet_pp_l2r_ctmr.yaml"), DEMO_CONFIG],
        override,
        folder,
        run,
        epochs,
        args.gpu,
    )
    print(f"[demo_train] registration {exp} (next: demo_predict.py)")
    return exp


if __name__ == "__main__":
    main()
