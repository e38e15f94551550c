"""Train the BraTSReg WSSAMNet demo: self-supervised pre-training, then WSSAMNet end to end.

Run from anywhere after ``demo_data.py``::

    python demos/brats_reg_wssamnet/demo_train.py           # both stages
    python demos/brats_reg_wssamnet/demo_train.py --test    # 1 epoch each, 16^3 volumes

Stage 1 (``pretrain``): ``config/wssamnet_pretrain.yaml`` + ``pretrain.yaml``: the registration U-Net
learns to register every scan to a random affine copy of itself (``self_paired`` data), with WSSAMNet's
losses (LNCC and MI of the LoG-filtered images, gradient smoothness). Stage 2 (``register``):
``config/wssamnet_brats_reg.yaml`` + ``brats_reg_wssamnet.yaml``: follow-up to baseline; two U-Net
segmenters learn the ROI cubes around each scan's landmarks (focal loss) end to end with the registration
network, whose input is the attentive images ``S * I`` and whose weights start from stage 1
(``train.init_from: {parts: [backbone]}``, WSSAMNet's pre-trained weights). Runs go to
``demos/brats_reg_wssamnet/logs_train/<timestamp>/<stage>/``.
"""

import argparse
import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402

NAME = "brats_reg_wssamnet"
DEMO_CONFIG = os.path.join(DEMO_DIR, f"{NAME}.yaml")
PRETRAIN_CONFIG = os.path.join(DEMO_DIR, "pretrain.yaml")
#: --test: ROI cubes of 3 voxels on the 16^3 grid
TEST_ROI_SIZE = 3


def main(argv=None) -> str:
    """Train; returns the registration stage's folder ``<dir>/logs_train/<run>/register``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="one epoch per stage on 16^3 volumes (a smoke test)")
    parser.add_argument("--pretrain_ckpt", default=None, help="a pre-trained checkpoint: skip stage 1")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs (-1: the config's)")
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{NAME})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the demo YAMLs' paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    staged_demo.require_dataset(os.path.join(folder, "dataset"), NAME, ("train", "valid", "test"))
    staged_demo.require_dataset(os.path.join(folder, "dataset_pretrain"), NAME, ("train",))
    epochs = 1 if args.test else args.max_epochs
    run = staged_demo.run_name(args.test)
    shape = list(staged_demo.TEST_SHAPE)

    pretrain_ckpt = args.pretrain_ckpt
    if pretrain_ckpt is None:
        dataset = staged_demo.split_dirs(os.path.join(folder, "dataset_pretrain"), ("train",), labeled=False)
        if args.test:
            dataset["image_shape"] = shape
        exp = staged_demo.run_stage(
            "pretrain",
            [staged_demo.repo_config("wssamnet_pretrain.yaml"), PRETRAIN_CONFIG],
            {"dataset": dataset},
            folder,
            run,
            epochs,
            args.gpu,
        )
        pretrain_ckpt = staged_demo.last_checkpoint(exp)
    dataset = staged_demo.split_dirs(os.path.join(folder, "dataset"), ("train", "valid", "test"), labeled=False)
    if args.test:
        dataset.update(moving_image_shape=shape, fixed_image_shape=shape, landmark_roi_size=TEST_ROI_SIZE)
    override = {
        "dataset": dataset,
        # the pre-trained registration U-Net only; the segmenters start from scratch (trained end to end)
        "train": {"init_from": {"path": staged_demo.portable_path(pretrain_ckpt), "parts": ["backbone"]}},
    }
    exp = staged_demo.run_stage(
        "register",
        [staged_demo.repo_config("wssamnet_brats_reg.yaml"), DEMO_CONFIG],
        override,
        folder,
        run,
        epochs,
        args.gpu,
    )
    print(f"[demo_train] pre-training {pretrain_ckpt}; WSSAMNet {exp} (next: demo_predict.py)")
    return exp


if __name__ == "__main__":
    main()
