"""tfreg's own training loop, for the trainers that do not use Keras ``fit``: the ``loop`` trainer (the
one that runs under ``MultiWorkerMirroredStrategy``, where Keras 3's ``fit`` fails,
keras-team/keras#20585) and the ``alternating`` trainer (several optimizers in turn).

Each training step runs one *step function* on every replica: it computes the model's loss (divided by
the replica count by the model, see ``RegistrationModel.set_replicas``), applies the gradients of some
variables with some optimizer, and returns that loss. A schedule says which step function runs at
each global step, so several optimizers can alternate. The metric trackers accumulate as under ``fit``.

The loop keeps ``fit``'s contract for the parts the command line relies on: epochs numbered from
``initial_epoch``, DeepReg's metric names (``val_`` prefix in validation), TensorBoard ``train/`` and
``validation/`` event files with the callback's ``epoch_<name>`` scalars (and ``epoch_learning_rate``;
no weight histograms) and ``save/ckpt-<epoch>`` checkpoints, both written by the chief only. Every
worker takes part in each checkpoint save (TensorFlow requires it); the others write to a scratch
folder that is removed.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from typing import Callable, Dict, Optional, Sequence

import keras
import tensorflow as tf

from tfreg.engine.checkpoint import SAVE_DIR, CheckpointSaver
from tfreg.engine.console import PROGRESS_BAR, console_logger
from tfreg.engine.divergence import TrainingDiverged, divergence_message

logger = logging.getLogger(__name__)


def _results(
    model: keras.Model, loss_mean: keras.metrics.Mean, prefix: str = "", wanted: Optional[Callable] = None
) -> Dict[str, float]:
    """The logged values (``prefix`` + name); only the names ``wanted(name)`` accepts, when given (a progress
    bar's update reads a few of them after every step, not all)."""
    logs = {prefix + "loss": float(loss_mean.result())}
    for tracker in model.trackers:
        if wanted is None or wanted(prefix + tracker.name):
            logs[prefix + tracker.name] = float(tracker.result())
    return logs


def _reset(model: keras.Model, loss_mean: keras.metrics.Mean) -> None:
    loss_mean.reset_state()
    for tracker in model.trackers:
        tracker.reset_state()


def gradient_step(model: keras.Model, optimizer, variables_of: Callable[[], list], categories=None) -> Callable:
    """A replica step function: forward, loss, gradients of ``variables_of()`` applied by ``optimizer``.

    Args:
        model: a registration model (its ``compute_loss`` takes ``categories``).
        optimizer: the optimizer of this step.
        variables_of: returns the variables this step updates (evaluated inside the step, so that it
            sees the variables the model has by then).
        categories: only these loss categories (None: every loss).

    Returns:
        ``step(inputs) -> loss`` (the replica's scaled loss).
    """

    def step(inputs):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = model.compute_loss(x=inputs, y_pred=outputs, training=True, categories=categories)
        variables = variables_of()
        gradients = tape.gradient(loss, variables)
        # a variable the phase's losses do not reach has no gradient; skip it rather than fail
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
        return loss

    return step


def run_loop(
    model: keras.Model,
    checkpoint: tf.train.Checkpoint,
    run,
    step_fns: Sequence[Callable],
    schedule: Optional[Sequence[int]] = None,
    learning_rate_of=None,
) -> Dict[str, float]:
    """Train ``model`` for epochs ``run.initial_epoch .. run.epochs - 1`` with the given step functions.

    Args:
        model: a built registration model (created under ``run.strategy.scope()``).
        checkpoint: from :func:`tfreg.engine.checkpoint.make_checkpoint` (model and every optimizer).
        run: a :class:`tfreg.engine.trainers.base.TrainingRun`.
        step_fns: replica step functions ``step(inputs) -> loss`` (see :func:`gradient_step`).
        schedule: indices into ``step_fns``, cycled over the global step number (``epoch *
            train_steps + batch``, so a resumed run continues the cycle where it stopped); default: the
            first step function always.
        learning_rate_of: the optimizer whose learning rate is logged as ``epoch_learning_rate``.

    Returns:
        The last epoch's logs (training and ``val_`` values).
    """
    strategy = run.strategy
    schedule = list(schedule) if schedule is not None else [0]
    if not schedule or any(not 0 <= i < len(step_fns) for i in schedule):
        raise ValueError(f"schedule must be a non-empty list of indices into the {len(step_fns)} step functions")
    with strategy.scope():
        loss_mean = keras.metrics.Mean(name="loss")
    replicas = strategy.num_replicas_in_sync

    def make_train_step(fn):
        def replica(inputs):
            # the step functions return the scaled loss; log the per-replica mean loss itself
            loss_mean.update_state(fn(inputs) * replicas)

        @tf.function
        def train_step(iterator):
            strategy.run(replica, args=(next(iterator),))

        return train_step

    def valid_replica(inputs):
        outputs = model(inputs, training=False)
        loss = model.compute_loss(x=inputs, y_pred=outputs, training=False)
        loss_mean.update_state(loss * replicas)

    @tf.function
    def valid_step(iterator):
        strategy.run(valid_replica, args=(next(iterator),))

    train_steps_fns = [make_train_step(fn) for fn in step_fns]
    train_iter = iter(strategy.experimental_distribute_dataset(run.train_data))
    valid_iter = iter(strategy.experimental_distribute_dataset(run.valid_data)) if run.valid_data is not None else None
    save_dir = os.path.join(run.exp_path, SAVE_DIR) if run.chief else tempfile.mkdtemp(prefix="tfreg_worker_ckpt_")
    writers = {}
    logs: Dict[str, float] = {}
    console = console_logger(run)
    try:
        saver = CheckpointSaver(checkpoint, save_dir, run.save_period, run_folder=run.exp_path if run.chief else None)
        saver.set_model(model)  # it refuses to save non-finite weights
        if run.chief:
            writers = {
                "train": tf.summary.create_file_writer(os.path.join(run.exp_path, "train")),
                "validation": tf.summary.create_file_writer(os.path.join(run.exp_path, "validation")),
            }
        for epoch in range(run.initial_epoch, run.epochs):
            _reset(model, loss_mean)
            if console is not None:
                console.on_epoch_begin(epoch)
            for batch in range(run.train_steps):
                step = epoch * run.train_steps + batch
                train_steps_fns[schedule[step % len(schedule)]](train_iter)
                # the running mean is NaN/inf from the first non-finite step on: stop there, save nothing more
                if not math.isfinite(float(loss_mean.result())):
                    logs = _results(model, loss_mean)
                    raise TrainingDiverged(divergence_message(step + 1, epoch + 1, logs, saver.last_path))
                if console is not None and console.verbose == PROGRESS_BAR:
                    console.on_train_batch_end(batch, _results(model, loss_mean, wanted=console.wants))
            logs = _results(model, loss_mean)
            if valid_iter is not None:
                _reset(model, loss_mean)
                for _ in range(run.valid_steps):
                    valid_step(valid_iter)
                logs.update(_results(model, loss_mean, prefix="val_"))
            _write_summaries(writers, logs, epoch, learning_rate_of)
            saver.on_epoch_end(epoch)
            if console is not None:
                console.on_epoch_end(epoch, logs)
        saver.on_train_end()
    finally:
        for writer in writers.values():
            writer.close()
        if not run.chief:
            shutil.rmtree(save_dir, ignore_errors=True)
    return logs


def _write_summaries(writers: Dict, logs: Dict[str, float], epoch: int, optimizer) -> None:
    """TensorBoard scalars as Keras' callback writes them: ``epoch_<name>`` in train/ and validation/."""
    for name, writer in writers.items():
        with writer.as_default():
            for key, value in logs.items():
                if (name == "validation") == key.startswith("val_"):
                    tf.summary.scalar(
                        "epoch_" + key[4:] if key.startswith("val_") else "epoch_" + key, value, step=epoch
                    )
            if name == "train" and optimizer is not None:  # as Keras' TensorBoard callback does
                # float() of the variable fails under a strategy (it wraps a MirroredVariable)
                rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                tf.summary.scalar("epoch_learning_rate", rate, step=epoch)
        writer.flush()


__all__ = ["gradient_step", "run_loop"]
