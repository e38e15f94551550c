"""A training run whose loss or weights stop being finite stops, keeps its last finite checkpoint, fails."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfreg.engine.checkpoint import CheckpointSaver, make_checkpoint
from tfreg.engine.custom_loop import run_loop
from tfreg.engine.divergence import TrainingDiverged, non_finite_entries
from tfreg.engine.train import train
from tfreg.engine.trainers.base import TrainingRun


def _poison(model):
    """Set one weight of the model to NaN: every later forward pass gives a NaN loss."""
    weight = model.trainable_weights[0]
    value = keras.ops.convert_to_numpy(weight).copy()
    value.flat[0] = np.nan
    weight.assign(value)


def _checkpoints(exp):
    return sorted(os.path.basename(p)[: -len(".index")] for p in glob.glob(os.path.join(exp, "save", "ckpt-*.index")))


def test_non_finite_entries():
    assert non_finite_entries({"loss": float("nan"), "loss/image_lncc": 0.3, "loss/ddf_bending": float("inf")}) == [
        "loss",
        "loss/ddf_bending",
    ]
    assert non_finite_entries({"loss": np.float32(0.5), "lr": "x"}) == []


@pytest.mark.slow  # whole training; the main CI step stays under 15 minutes
def test_fit_stops_at_the_first_nan_step_and_keeps_the_last_finite_checkpoint(trained, tmp_path):
    class PoisonAtEpoch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.current == 1 and batch == 0:
                _poison(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            self.current = epoch

    with pytest.raises(TrainingDiverged) as info:
        train(
            config_path=trained["config_path"],
            log_dir=str(tmp_path),
            exp_name="run",
            verbose=0,
            callbacks=[PoisonAtEpoch()],
        )
    message = str(info.value)
    assert "training diverged at step" in message and "(epoch 2)" in message and "non-finite loss" in message
    assert "ckpt-1, is finite and kept" in message
    exp = str(tmp_path / "run")
    assert _checkpoints(exp) == ["ckpt-1"]  # no NaN ckpt-2
    reader = tf.train.load_checkpoint(os.path.join(exp, "save", "ckpt-1"))
    for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), key


def test_the_custom_loop_stops_too_and_never_saves_nan_weights(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(0.1)
    model.trackers = []
    data = tf.data.Dataset.from_tensors(tf.ones((2, 3))).repeat()

    def step(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(inputs) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    run = TrainingRun(
        strategy=tf.distribute.get_strategy(),
        exp_path=str(tmp_path),
        train_data=data,
        train_steps=2,
        epochs=3,
        initial_epoch=0,
        save_period=1,
        verbose=0,
    )

    class Poisoning(CheckpointSaver):  # poison right after the first checkpoint is written
        def save(self, epoch_number):
            path = super().save(epoch_number)
            if epoch_number == 1:
                _poison(model)
            return path

    import tfreg.engine.custom_loop as loop_module

    original = loop_module.CheckpointSaver
    loop_module.CheckpointSaver = Poisoning
    try:
        with pytest.raises(TrainingDiverged, match=r"diverged at step 3 \(epoch 2\): non-finite loss"):
            run_loop(model, make_checkpoint(model, optimizer), run, [step])
    finally:
        loop_module.CheckpointSaver = original
    assert _checkpoints(str(tmp_path)) == ["ckpt-1"]


def test_the_saver_refuses_non_finite_weights(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    saver = CheckpointSaver(make_checkpoint(model), str(tmp_path / "save"), save_period=1)
    saver.set_model(model)
    assert saver.save(1).endswith("ckpt-1")
    _poison(model)
    with pytest.raises(TrainingDiverged, match=r"after epoch 2 the weights .* are not finite.*ckpt-1, is finite"):
        saver.save(2)
    assert _checkpoints(str(tmp_path)) == ["ckpt-1"]


def test_a_diverged_training_exits_1_with_one_line(capsys):
    from tfreg.cli.common import run_command

    def diverge():
        raise TrainingDiverged("training diverged at step 7 (epoch 1): non-finite loss")

    assert run_command("tfreg_train", diverge) == 1
    assert capsys.readouterr().err == "tfreg_train: error: training diverged at step 7 (epoch 1): non-finite loss\n"
