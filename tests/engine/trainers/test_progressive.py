"""The ``progressive`` trainer (tfreg.engine.trainers.progressive): ``tfreg_train`` from config/lapirn.yaml on tiny
data runs LapIRN's stages with frozen levels bitwise unchanged, resumes from a checkpoint in its stage, predicts,
and reports its config errors (CPU, seconds)."""

import copy
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.data.helpers import write_paired
from tests.engine.deepreg_configs import write_config
from tests.engine.test_progressive import EXPECTED_CHANGES, LevelRecorder
from tfreg.config import ConfigError, load_configs_with_provenance, validate_config

LAPIRN_YAML = os.path.join(REPO_ROOT, "config", "lapirn.yaml")


def _override(data, epochs=5):
    split = {"dir": data, "format": "nifti", "labeled": True}
    return {
        "dataset": {
            "train": split,
            "valid": None,  # no validation: fewer functions to retrace per stage
            "test": split,
            "moving_image_shape": [8, 8, 8],
            "fixed_image_shape": [8, 8, 8],
        },
        "train": {
            "backbone": {"num_channels": 4, "num_residual_blocks": 1, "attention_gates": True},
            "loss": {
                "image": {"name": "lncc", "kernel_size": 3, "weight": 1.0},
                "label": {"name": "dice", "weight": 1.0},
            },
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-2},
            "preprocess": {"batch_size": 2},
            "trainer": {"name": "progressive", "level_epochs": [1, 2], "freeze_epochs": 1},
            "epochs": epochs,
            "save_period": 5,
        },
    }


@pytest.fixture(scope="module")
def progressive_run(tmp_path_factory):
    from tfreg.engine.train import train

    tmp = tmp_path_factory.mktemp("progressive")
    data = write_paired(
        str(tmp / "data"), ["a", "b", "c", "d"], moving_shape=(8, 8, 8), fixed_shape=(8, 8, 8), num_labels=1
    )
    config = [LAPIRN_YAML, write_config(_override(data), tmp / "override.yaml")]
    keras.utils.set_random_seed(1)
    recorder = LevelRecorder()
    model, exp = train(config_path=config, log_dir=str(tmp / "logs"), exp_name="run", verbose=0, callbacks=[recorder])
    return dict(tmp=tmp, config=config, model=model, exp=exp, recorder=recorder)


@pytest.mark.slow
def test_tfreg_train_runs_the_stages_with_frozen_levels_unchanged(progressive_run):
    recorder, model = progressive_run["recorder"], progressive_run["model"]
    assert recorder.stage == {0: (1, ()), 1: (2, (1,)), 2: (2, ()), 3: (3, (1, 2)), 4: (3, ())}
    for epoch, expected in EXPECTED_CHANGES.items():
        assert recorder.changed(epoch) == expected, epoch
    assert model.backbone.attention_gates and model.backbone.levels[0].gate is not None
    # a checkpoint at the end of each stage (and every save_period = 5 epochs): ckpt-N = epochs done
    saved = sorted(
        int(f[5:-6]) for f in os.listdir(os.path.join(progressive_run["exp"], "save")) if f.endswith(".index")
    )
    assert saved == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_tfreg_train_resumes_in_the_stage_of_the_checkpoint(progressive_run):
    from tfreg.engine.checkpoint import file_key
    from tfreg.engine.train import train

    tmp, exp = progressive_run["tmp"], progressive_run["exp"]
    ckpt = os.path.join(exp, "save", "ckpt-3")
    recorder = LevelRecorder()
    model, _ = train(
        config_path=progressive_run["config"],
        ckpt_path=ckpt,
        log_dir=str(tmp / "logs"),
        exp_name="run",
        verbose=0,
        callbacks=[recorder],
    )
    assert recorder.stage == {3: (3, (1, 2)), 4: (3, ())}
    assert recorder.changed(3) == [False, False, True]
    # the resumed weights are those of ckpt-3
    reader = tf.train.load_checkpoint(ckpt)
    level = model.backbone.levels[0]
    index = [id(w) for w in level.weights].index(id(level.head_2.kernel))
    saved = reader.get_tensor(file_key("backbone/levels/0/head_2/kernel"))
    np.testing.assert_array_equal(recorder.begin[3][0][index], saved)


# ---------------------------------------------------------------------------------------------- config errors
def _errors(tmp_path, **train):
    override = _override(str(tmp_path))
    override["train"].update(copy.deepcopy(train))
    config, provenance = load_configs_with_provenance([LAPIRN_YAML, write_config(override, tmp_path / "o.yaml")])
    with pytest.raises(ConfigError) as info:
        validate_config(config, provenance, check_dirs=False)
    return str(info.value)


def test_config_warns_of_a_run_ending_before_the_last_level(tmp_path, caplog):
    override = _override(str(tmp_path))
    override["train"]["epochs"] = 3
    config, provenance = load_configs_with_provenance([LAPIRN_YAML, write_config(override, tmp_path / "o.yaml")])
    with caplog.at_level("WARNING"):
        validate_config(config, provenance, check_dirs=False)
    assert "train.trainer.level_epochs: sum 3 leaves no epoch of train.epochs = 3 for the last level" in caplog.text


def test_config_errors(tmp_path):
    message = _errors(tmp_path, trainer={"name": "progressive", "level_epochs": [1], "freeze_epochs": 0})
    assert "train.trainer.level_epochs: must list the epochs of levels 1..2 (2 entries for num_levels = 3)" in message
    message = _errors(tmp_path, trainer={"name": "progressive", "level_epochs": [1, -2]})
    assert "level_epochs[1] must be an integer >= 0" in message
    message = _errors(tmp_path, trainer={"name": "progressive", "level_epochs": [1, 1], "freeze": 1})
    assert "train.trainer" in message and "freeze" in message
    message = _errors(
        tmp_path, method="ddf", backbone={"name": "local", "num_channel_initial": 2, "extract_levels": [0]}
    )
    assert "train.backbone.name: trainer 'progressive' needs a backbone with pyramid levels and set_stage" in message


@pytest.mark.slow
def test_tfreg_predict_writes_the_full_resolution_outputs(progressive_run):
    from tfreg.data.image_io import read_image
    from tfreg.engine.predict import predict

    out = predict(
        ckpt_path=os.path.join(progressive_run["exp"], "save", "ckpt-5"),
        split="test",
        log_dir=str(progressive_run["tmp"] / "logs"),
        exp_name="pred",
    )
    pairs = sorted(p for p in os.listdir(out) if p.startswith("pair_"))
    ddf, _ = read_image(os.path.join(out, pairs[0], "ddf.nii.gz"))
    assert ddf.shape == (8, 8, 8, 3) and np.all(np.isfinite(ddf))
