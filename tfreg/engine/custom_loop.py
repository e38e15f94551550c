"""A distributed training loop for ``MultiWorkerMirroredStrategy``, where Keras 3's ``fit`` fails
(keras-team/keras#20585).

Each step runs the model's own ``compute_loss`` on every replica (the loss is divided by the replica
count there), the optimizer all-reduces and applies the gradients, and the metric trackers accumulate as
under ``fit``. It keeps ``fit``'s contract for the parts the command line relies on: epochs numbered from
``initial_epoch``, DeepReg's metric names (``val_`` prefix in validation), TensorBoard ``train/`` and
``validation/`` event files with the callback's ``epoch_<name>`` scalars (and ``epoch_learning_rate``;
no weight histograms) and ``save/ckpt-<epoch>`` checkpoints, both written by the chief only.
Every worker takes part in each checkpoint save (TensorFlow requires it); the others write to a scratch
folder that is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import Dict, Optional

import keras
import tensorflow as tf

from tfreg.engine.checkpoint import SAVE_DIR, CheckpointSaver

logger = logging.getLogger(__name__)


def _results(model: keras.Model, loss_mean: keras.metrics.Mean, prefix: str = "") -> Dict[str, float]:
    logs = {prefix + "loss": float(loss_mean.result())}
    for tracker in model.trackers:
        logs[prefix + tracker.name] = float(tracker.result())
    return logs


def _reset(model: keras.Model, loss_mean: keras.metrics.Mean) -> None:
    loss_mean.reset_state()
    for tracker in model.trackers:
        tracker.reset_state()


def fit_distributed(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    strategy: tf.distribute.Strategy,
    checkpoint: tf.train.Checkpoint,
    exp_path: str,
    train_data: tf.data.Dataset,
    train_steps: int,
    epochs: int,
    initial_epoch: int,
    save_period: int,
    valid_data: Optional[tf.data.Dataset] = None,
    valid_steps: Optional[int] = None,
    chief: bool = True,
    verbose: int = 2,
) -> Dict[str, float]:
    """Train ``model`` under ``strategy`` for epochs ``initial_epoch .. epochs - 1``.

    Args:
        model: a built registration model (created under ``strategy.scope()``).
        optimizer: its built optimizer.
        strategy: the distribution strategy (any; used for MultiWorkerMirroredStrategy).
        checkpoint: ``tf.train.Checkpoint(model, optimizer)``.
        exp_path: the run's log folder.
        train_data: repeated dataset of global batches.
        train_steps: steps per epoch.
        epochs: last epoch (exclusive), as ``fit``'s ``epochs``.
        initial_epoch: first epoch (a resumed checkpoint's number).
        save_period: checkpoint every this many epochs, and after the last.
        valid_data, valid_steps: optional repeated validation dataset and its steps per epoch.
        chief: whether this process writes logs and the real checkpoints.
        verbose: 0 silent, otherwise one log line per epoch.

    Returns:
        The last epoch's logs (training and ``val_`` values).
    """
    with strategy.scope():
        loss_mean = keras.metrics.Mean(name="loss")

    def train_replica(inputs):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = model.compute_loss(x=inputs, y_pred=outputs, training=True)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        # compute_loss divided by the replica count; log the per-replica mean loss itself
        loss_mean.update_state(loss * strategy.num_replicas_in_sync)

    def valid_replica(inputs):
        outputs = model(inputs, training=False)
        loss = model.compute_loss(x=inputs, y_pred=outputs, training=False)
        loss_mean.update_state(loss * strategy.num_replicas_in_sync)

    @tf.function
    def train_step(iterator):
        strategy.run(train_replica, args=(next(iterator),))

    @tf.function
    def valid_step(iterator):
        strategy.run(valid_replica, args=(next(iterator),))

    train_iter = iter(strategy.experimental_distribute_dataset(train_data))
    valid_iter = iter(strategy.experimental_distribute_dataset(valid_data)) if valid_data is not None else None
    save_dir = os.path.join(exp_path, SAVE_DIR) if chief else tempfile.mkdtemp(prefix="tfreg_worker_ckpt_")
    writers = {}
    logs: Dict[str, float] = {}
    try:
        saver = CheckpointSaver(checkpoint, save_dir, save_period)
        if chief:
            writers = {
                "train": tf.summary.create_file_writer(os.path.join(exp_path, "train")),
                "validation": tf.summary.create_file_writer(os.path.join(exp_path, "validation")),
            }
        for epoch in range(initial_epoch, epochs):
            start = time.time()
            _reset(model, loss_mean)
            for _ in range(train_steps):
                train_step(train_iter)
            logs = _results(model, loss_mean)
            if valid_iter is not None:
                _reset(model, loss_mean)
                for _ in range(valid_steps):
                    valid_step(valid_iter)
                logs.update(_results(model, loss_mean, prefix="val_"))
            for name, writer in writers.items():
                with writer.as_default():
                    for key, value in logs.items():
                        if (name == "validation") == key.startswith("val_"):
                            # TensorBoard tags as Keras' callback writes them: epoch_<name>
                            tf.summary.scalar(
                                "epoch_" + key[4:] if key.startswith("val_") else "epoch_" + key, value, step=epoch
                            )
                    if name == "train":  # as Keras' TensorBoard callback does (the rate a schedule reached)
                        # float() of the variable fails under a strategy (it wraps a MirroredVariable)
                        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                        tf.summary.scalar("epoch_learning_rate", rate, step=epoch)
                writer.flush()
            saver.on_epoch_end(epoch)
            if verbose and chief:
                text = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
                print(f"Epoch {epoch + 1}/{epochs} - {time.time() - start:.1f}s - {text}", flush=True)
        saver.on_train_end()
    finally:
        for writer in writers.values():
            writer.close()
        if not chief:
            shutil.rmtree(save_dir, ignore_errors=True)
    return logs


__all__ = ["fit_distributed"]
