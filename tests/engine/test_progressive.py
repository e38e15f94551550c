"""Progressive training (tfreg.engine.progressive, the ``progressive`` trainer): the schedule, which levels'
weights change in which epoch (bitwise), under plain Keras ``fit`` with the callback and under ``tfreg_train``
from config/lapirn.yaml on tiny data, resumed from a checkpoint, and the config errors (CPU, seconds)."""

import copy
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.data.helpers import write_paired
from tests.engine.deepreg_configs import write_config
from tfreg.config import ConfigError, load_configs_with_provenance, validate_config
from tfreg.engine.progressive import ProgressiveTraining, Stage, progressive_stages, stage_at
from tfreg.models.lapirn import LapIRNModel

LAPIRN_YAML = os.path.join(REPO_ROOT, "config", "lapirn.yaml")


# ---------------------------------------------------------------------------------------------- the schedule
def test_stages_of_lapirn_s_protocol():
    assert progressive_stages([1, 2], freeze_epochs=1, epochs=5) == [
        Stage(0, 1, 1, ()),
        Stage(1, 2, 2, (1,)),
        Stage(2, 3, 2, ()),
        Stage(3, 4, 3, (1, 2)),
        Stage(4, 5, 3, ()),
    ]
    # no freezing; a stage shorter than freeze_epochs is frozen throughout; an empty stage is skipped
    assert progressive_stages([2], 0, 3) == [Stage(0, 2, 1, ()), Stage(2, 3, 2, ())]
    assert progressive_stages([1, 1], 3, 4) == [Stage(0, 1, 1, ()), Stage(1, 2, 2, (1,)), Stage(2, 4, 3, (1, 2))]
    assert progressive_stages([0, 2], 1, 4) == [
        Stage(0, 1, 2, (1,)),
        Stage(1, 2, 2, ()),
        Stage(2, 3, 3, (1, 2)),
        Stage(3, 4, 3, ()),
    ]
    # a run shorter than the schedule ends in an earlier stage (--max_epochs); resuming continues it
    assert progressive_stages([2, 2], 1, 3) == [Stage(0, 2, 1, ()), Stage(2, 3, 2, (1,))]
    # open-ended (the callback): the last level runs to the end of any fit
    open_ended = progressive_stages([1, 1], 1)
    assert open_ended[-1] == Stage(3, None, 3, ())
    assert stage_at(open_ended, 100) == open_ended[-1] and stage_at(open_ended, 1) == Stage(1, 2, 2, (1,))


@pytest.mark.parametrize(
    "args, match",
    [
        (([1, -1], 0, 4), "level_epochs\\[1\\] must be an integer >= 0"),
        (([1], 1.5, 4), "freeze_epochs must be an integer >= 0"),
        ((3, 0, 4), "level_epochs must be a list"),
    ],
)
def test_schedule_errors(args, match):
    with pytest.raises(ValueError, match=match):
        progressive_stages(*args)


# ---------------------------------------------------------------------------------------------- helpers
class LevelRecorder(keras.callbacks.Callback):
    """Copies of each level's weights at the start and end of every epoch, and the network's stage."""

    def __init__(self):
        super().__init__()
        self.begin, self.end, self.stage = {}, {}, {}

    def _levels(self):
        return [
            [np.array(keras.ops.convert_to_numpy(w)) for w in level.weights] for level in self.model.backbone.levels
        ]

    def on_epoch_begin(self, epoch, logs=None):
        self.begin[epoch] = self._levels()
        self.stage[epoch] = (self.model.backbone.active_level, self.model.backbone.frozen_levels)

    def on_epoch_end(self, epoch, logs=None):
        self.end[epoch] = self._levels()

    def changed(self, epoch):
        """Per level: whether any of its weights changed during ``epoch`` (bitwise comparison)."""
        return [
            any(not np.array_equal(a, b) for a, b in zip(before, after))
            for before, after in zip(self.begin[epoch], self.end[epoch])
        ]


#: per epoch of progressive_stages([1, 2], 1, 5): which of the 3 levels may change
EXPECTED_CHANGES = {
    0: [True, False, False],  # level 1 alone
    1: [False, True, False],  # level 2, level 1 frozen
    2: [True, True, False],  # levels 1-2
    3: [False, False, True],  # level 3, levels 1-2 frozen
    4: [True, True, True],
}


def tiny_model(size=(16, 16)):
    return LapIRNModel(
        moving_image_size=size,
        fixed_image_size=size,
        config={
            "backbone": {"name": "lapirn", "num_channels": 4, "num_residual_blocks": 1},
            "loss": {
                "image": {"name": "ssd", "weight": 1.0},
                "regularization": {"name": "gradient-forward", "weight": 0.1},
            },
        },
    )


def tiny_dataset(size=(16, 16), count=4, batch=2):
    rng = np.random.default_rng(0)
    data = {
        "moving_image": rng.random((count,) + size).astype("float32"),
        "fixed_image": rng.random((count,) + size).astype("float32"),
        "indices": np.zeros((count, 2), "float32"),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(batch).repeat()


# ---------------------------------------------------------------------------------------------- plain Keras fit
@pytest.mark.slow
def test_callback_freezes_and_activates_levels_under_keras_fit():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    recorder = LevelRecorder()
    model.fit(
        tiny_dataset(),
        shuffle=False,
        steps_per_epoch=3,
        epochs=5,
        callbacks=[ProgressiveTraining([1, 2], freeze_epochs=1), recorder],
        verbose=0,
    )
    for epoch, expected in EXPECTED_CHANGES.items():
        assert recorder.changed(epoch) == expected, epoch
    assert recorder.stage == {0: (1, ()), 1: (2, (1,)), 2: (2, ()), 3: (3, (1, 2)), 4: (3, ())}
    # the optimizer was built on every level and steps them all at the end
    assert len(model.optimizer._trainable_variables) == sum(len(level.weights) for level in model.backbone.levels)


def test_callback_resumes_the_schedule_from_initial_epoch():
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    recorder = LevelRecorder()
    model.fit(
        tiny_dataset(),
        steps_per_epoch=2,
        initial_epoch=3,
        epochs=4,
        callbacks=[ProgressiveTraining([1, 2], freeze_epochs=1), recorder],
        verbose=0,
    )
    assert recorder.stage == {3: (3, (1, 2))}
    assert recorder.changed(3) == [False, False, True]


def test_callback_refuses_an_optimizer_built_on_some_levels_only():
    model = tiny_model()
    model.backbone.build((None, 16, 16, 2))
    model.backbone.set_stage(1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.optimizer.build(model.trainable_variables)  # level 1's variables only
    with pytest.raises(ValueError, match="the optimizer was built without .* of the pyramid's variables"):
        model.fit(tiny_dataset(), steps_per_epoch=1, epochs=1, callbacks=[ProgressiveTraining([1, 1])], verbose=0)


def test_callback_checks_the_number_of_levels_and_the_backend(monkeypatch):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="level_epochs has 1 entries .* num_levels = 3, so it needs 2"):
        model.fit(tiny_dataset(), steps_per_epoch=1, epochs=1, callbacks=[ProgressiveTraining([1])], verbose=0)
    callback = ProgressiveTraining([1, 1])
    callback.set_model(model)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="cannot change trainable variables inside a JAX fit"):
        callback.on_train_begin()


# ---------------------------------------------------------------------------------------------- tfreg_train
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
