"""Train the Learn2Reg MR -> CT macJNet demo: registration and segmentation pre-training, then the joint stage.

Run from anywhere after ``demo_data.py``::

    python demos/abdomen_mrct_macjnet/demo_train.py           # four stages
    python demos/abdomen_mrct_macjnet/demo_train.py --test    # tiny networks, 32^3 volumes, 1 epoch (3 for reg)

The stages (Zhou et al. 2023, "Multi-modal abdominal image registration via joint segmentation and
registration learning", macJNet's protocol), each ``config/<stage config>`` merged with
``abdomen_mrct_macjnet.yaml`` (data folders, 128 x 128 x 96 voxels) and a generated override:

1. ``reg`` (``config/macjnet_reg_pretrain.yaml``): the registration network (LapIRN with attention gates)
   alone, unsupervised, progressively level by level: 20 macMIND + 0.5 smoothness, MR (moving) to CT (fixed);
2. ``seg_ct`` (``config/macjnet_seg_ct.yaml``): the CT segmenter (nnU-Net-like with scSE blocks), Dice to the
   liver labels of the fixed images;
3. ``seg_mr`` (``config/macjnet_seg_mr.yaml``): the MR segmenter, on the moving images;
4. ``joint`` (``config/macjnet_joint.yaml``): the three networks trained alternately (registration step:
   20 macMIND + 2 Dice + 0.5 smoothness; segmentation step: Dice to the labels of 30 % of the pairs and the
   cross-modal consistency for the others), starting from the three stages' last checkpoints: the override's
   ``train.init_from`` (:func:`joint_init_from`) takes ``backbone`` from ``reg``, the moving (MR) segmenter
   from ``seg_mr`` and the fixed (CT) segmenter from ``seg_ct``.

Runs go to ``demos/abdomen_mrct_macjnet/logs_train/<timestamp>/<stage>/`` (``-test`` appended to --test runs),
each repeatable with ``tfreg_train -c config/<stage config> demos/abdomen_mrct_macjnet/abdomen_mrct_macjnet.yaml
logs_train/<timestamp>/<stage>.override.yaml``.
"""

import argparse
import os
import sys
from typing import Dict, List

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402

NAME = "abdomen_mrct_macjnet"
DEMO_CONFIG = os.path.join(DEMO_DIR, f"{NAME}.yaml")
#: stage -> its config in config/, in training order (the joint stage last: it starts from the others)
STAGES = {
    "reg": "macjnet_reg_pretrain.yaml",
    "seg_ct": "macjnet_seg_ct.yaml",
    "seg_mr": "macjnet_seg_mr.yaml",
    "joint": "macjnet_joint.yaml",
}
#: --test: networks small enough for a CPU smoke test (the YAMLs' structure kept), and the epochs per stage
#: (the progressive registration needs one epoch per LapIRN level)
TEST_REGISTRATION = {"num_channels": 4, "num_residual_blocks": 1}
TEST_SEGMENTER = {"channels": [4, 8]}
TEST_EPOCHS = {"reg": 3, "seg_ct": 1, "seg_mr": 1, "joint": 1}
#: --test volumes: LapIRN's coarsest level (1/4) must exceed macMIND's 4-voxel reach, so 32^3 (not the demos' 16^3)
TEST_SHAPE = (32, 32, 32)


def stage_configs() -> Dict[str, str]:
    """``{stage: config/<file>}`` for :data:`STAGES`; FileNotFoundError naming a missing file."""
    return {stage: staged_demo.repo_config(name) for stage, name in STAGES.items()}


def joint_init_from(checkpoints: Dict[str, str]) -> List[dict]:
    """The joint stage's ``train.init_from`` from the pre-training stages' checkpoints (``{stage: path}``):
    the registration backbone from ``reg``, the moving (MR) segmenter from ``seg_mr``, the fixed (CT) one from
    ``seg_ct`` (each segmentation run saves its network as ``backbone`` and ``head``)."""

    def segmenter(role: str) -> Dict[str, str]:
        return {f"{role}_segmenter/backbone": "backbone", f"{role}_segmenter/head": "head"}

    return [
        {"path": checkpoints["reg"], "parts": ["backbone"]},
        {"path": checkpoints["seg_mr"], "parts": segmenter("moving")},
        {"path": checkpoints["seg_ct"], "parts": segmenter("fixed")},
    ]


def stage_override(stage: str, folder: str, test: bool) -> dict:
    """The generated override of one stage: the data folders under ``<folder>/dataset`` and, with ``test``,
    32^3 volumes, the small networks and the epochs of :data:`TEST_EPOCHS` (a checkpoint at the last one)."""
    dataset = staged_demo.split_dirs(os.path.join(folder, "dataset"), ("train", "valid"), labeled=True)
    override: dict = {"dataset": dataset, "train": {}}
    if test:
        dataset["moving_image_shape"] = dataset["fixed_image_shape"] = list(TEST_SHAPE)
        train = override["train"]
        train["epochs"] = train["save_period"] = TEST_EPOCHS[stage]
        if stage in ("reg", "joint"):
            train["backbone"] = dict(TEST_REGISTRATION)
        if stage == "reg":
            train["trainer"] = {"level_epochs": [1, 1], "freeze_epochs": 1}
        if stage in ("seg_ct", "seg_mr"):
            train["backbone"] = dict(TEST_SEGMENTER)
        if stage == "joint":
            train["segmenter"] = {"backbone": dict(TEST_SEGMENTER)}
    return override


def main(argv=None) -> str:
    """Train the four stages; returns the joint stage's folder ``<dir>/logs_train/<run>/joint``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="tiny networks on 32^3 volumes, 1 epoch (a smoke test)")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs of every stage (-1: theirs)")
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{NAME})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the demo YAML's paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    staged_demo.require_dataset(os.path.join(folder, "dataset"), NAME, ("train",))
    configs = stage_configs()  # every config checked before the first stage trains
    run = staged_demo.run_name(args.test)

    checkpoints: Dict[str, str] = {}
    exp = ""
    for stage, config in configs.items():
        override = stage_override(stage, folder, args.test)
        if stage == "joint":
            override["train"]["init_from"] = joint_init_from(checkpoints)  # a list replaces the config's
        epochs = TEST_EPOCHS[stage] if args.test else args.max_epochs
        exp = staged_demo.run_stage(stage, [config, DEMO_CONFIG], override, folder, run, epochs, args.gpu)
        checkpoints[stage] = staged_demo.portable_path(staged_demo.last_checkpoint(exp))
    print(f"[demo_train] joint stage {exp} (next: demo_predict.py)")
    return exp


if __name__ == "__main__":
    main()
