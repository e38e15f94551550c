"""macJNet's three stages from the YAMLs in config/ on tiny paired data (CPU, seconds): the segmenters (one per
modality, recording it), the progressive LapIRN pre-training, and the joint alternating stage that starts from
their checkpoints, checkpoints both optimizers, resumes and predicts."""

import glob
import os

import pytest
import tensorflow as tf
import yaml

from tests.conftest import REPO_ROOT
from tests.data.helpers import write_paired
from tests.engine.deepreg_configs import write_config
from tfreg.data.image_io import read_image

SHAPE = [32, 32, 32]  # LapIRN's coarsest level (1/4) must exceed macMIND's 4-voxel reach
SEGMENTER = {"backbone": {"channels": [4, 8]}}


def optimizer_steps(ckpt):
    """``{optimizer name: its iteration count}`` read from a checkpoint's files."""
    reader = tf.train.load_checkpoint(ckpt)
    steps = {}
    for key in reader.get_variable_to_shape_map():
        for name in ("registration", "segmentation"):
            if key.startswith(f"{name}/_iterations/"):
                steps[name] = int(reader.get_tensor(key))
    return steps


def config(name):
    return os.path.join(REPO_ROOT, "config", name)


@pytest.mark.slow
def test_macjnet_stages_train_hand_over_resume_and_predict(tmp_path, caplog):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    data = write_paired(str(tmp_path / "data"), ["p0", "p1", "p2"], moving_shape=SHAPE, fixed_shape=SHAPE, num_labels=1)
    split = {"dir": data, "format": "nifti", "labeled": True}
    dataset = {"train": split, "valid": None, "test": split, "moving_image_shape": SHAPE, "fixed_image_shape": SHAPE}
    logs = str(tmp_path / "logs")
    tiny = {"epochs": 1, "save_period": 1}

    seg_ckpts = {}
    for role in ("mr", "ct"):
        override = {"dataset": dataset, "train": dict(tiny, backbone=SEGMENTER["backbone"])}
        model, exp = train(
            config_path=[config(f"macjnet_seg_{role}.yaml"), write_config(override, tmp_path / f"{role}.yaml")],
            log_dir=logs,
            exp_name=f"seg_{role}",
            verbose=0,
        )
        saved = yaml.safe_load(open(os.path.join(exp, "save", "config.yaml")))
        assert saved["train"]["modality"] == role.upper()
        seg_ckpts[role] = os.path.join(exp, "save", "ckpt-1")

    reg_override = {
        "dataset": dataset,
        "train": {
            "backbone": {"num_channels": 4, "num_residual_blocks": 1},
            "trainer": {"level_epochs": [1, 1], "freeze_epochs": 1},
            "epochs": 3,
            "save_period": 3,
        },
    }
    _, reg_exp = train(
        config_path=[config("macjnet_reg_pretrain.yaml"), write_config(reg_override, tmp_path / "reg.yaml")],
        log_dir=logs,
        exp_name="reg",
        verbose=0,
    )
    reg_ckpt = os.path.join(reg_exp, "save", "ckpt-3")

    def parts(role):
        return {f"{role}_segmenter/backbone": "backbone", f"{role}_segmenter/head": "head"}

    joint_override = {
        "dataset": dataset,
        "train": dict(
            tiny,
            backbone={"num_channels": 4, "num_residual_blocks": 1},
            segmenter=SEGMENTER,
            joint={"labeled_fraction": 0.34},
            init_from=[
                {"path": reg_ckpt, "parts": ["backbone"]},
                {"path": seg_ckpts["mr"], "parts": parts("moving")},
                {"path": seg_ckpts["ct"], "parts": parts("fixed")},
            ],
        ),
    }
    joint_config = [config("macjnet_joint.yaml"), write_config(joint_override, tmp_path / "joint.yaml")]
    with caplog.at_level("INFO"):
        model, exp = train(config_path=joint_config, log_dir=logs, exp_name="joint", verbose=0)
    assert "labels visible for 1 of 3 training pairs" in caplog.text
    assert "swapped" not in caplog.text
    # the checkpoint holds both optimizers, each with its own step count
    ckpt = os.path.join(exp, "save", "ckpt-1")
    # 3 pairs per epoch, alternating registration / segmentation steps: R, S, R
    assert optimizer_steps(ckpt) == {"registration": 2, "segmentation": 1}

    # resume: a second epoch continues the cycle with the restored optimizers
    model, _ = train(config_path=joint_config, ckpt_path=ckpt, log_dir=logs, exp_name="joint", max_epochs=2, verbose=0)
    # every term of both steps is logged (DeepReg's names), and the second epoch continued the step counts
    names = {t.name for t in model.trackers}
    for name in ("loss/image_MacMINDLoss", "loss/label_DiceScoreLoss", "loss/segmentation_DiceScoreLoss"):
        assert any(n.startswith(name) for n in names), sorted(names)
    assert optimizer_steps(os.path.join(exp, "save", "ckpt-2")) == {"registration": 3, "segmentation": 3}
    out = predict(ckpt_path=os.path.join(exp, "save", "ckpt-2"), split="test", log_dir=logs, exp_name="pred")
    pair = sorted(p for p in os.listdir(out) if p.startswith("pair_"))[0]
    segmentation, _ = read_image(os.path.join(out, pair, "fixed_segmentation.nii.gz"))
    assert segmentation.shape[:3] == tuple(SHAPE) and 0 <= segmentation.min() and segmentation.max() <= 1
    assert os.path.isfile(os.path.join(out, pair, "ddf.nii.gz"))


def test_the_segmenter_modality_swap_is_warned_from_the_saved_configs(tmp_path, caplog):
    from tfreg.config import load_configs_with_provenance, validate_config

    saved = tmp_path / "seg_ct" / "save"
    saved.mkdir(parents=True)
    (saved / "config.yaml").write_text(yaml.safe_dump({"train": {"method": "segmentation", "modality": "CT"}}))
    override = {"train": {"init_from": [{"path": str(saved / "ckpt-1"), "parts": {"moving_segmenter/head": "head"}}]}}
    loaded, provenance = load_configs_with_provenance(
        [config("macjnet_joint.yaml"), write_config(override, tmp_path / "o.yaml")]
    )
    with caplog.at_level("WARNING"):
        validate_config(loaded, provenance, check_dirs=False)
    assert "trained on CT images" in caplog.text and "moving_modality: MR" in caplog.text


ABLATIONS = sorted(glob.glob(os.path.join(REPO_ROOT, "config", "macjnet_ablations", "*.yaml")))


@pytest.mark.parametrize("path", ABLATIONS, ids=os.path.basename)
def test_every_ablation_override_validates_after_its_stage_config(path):
    from tfreg.config import load_configs_with_provenance, validate_config

    bases = ["macjnet_joint.yaml"] + (["macjnet_reg_pretrain.yaml"] if "labels" not in os.path.basename(path) else [])
    for base in bases:
        loaded, provenance = load_configs_with_provenance([config(base), path])
        validate_config(loaded, provenance, check_dirs=False)
    assert len(ABLATIONS) == 4
