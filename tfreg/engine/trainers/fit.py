"""The ``fit`` trainer (the default): Keras ``model.fit`` with one optimizer, DeepReg's training."""

from __future__ import annotations

import os

import keras

from tfreg.engine.checkpoint import SAVE_DIR, CheckpointSaver
from tfreg.engine.console import console_logger
from tfreg.engine.divergence import DivergenceGuard
from tfreg.engine.trainers.base import Trainer, TrainingRun, is_multiworker
from tfreg.registry import REGISTRY


@REGISTRY.register_trainer(name="fit")
class FitTrainer(Trainer):
    """``model.compile(train.optimizer)`` then ``model.fit`` with TensorBoard (DeepReg's metric names),
    checkpoints every ``save_period`` epochs and any extra callbacks.

    Not available under MultiWorkerMirroredStrategy (keras-team/keras#20585): ``tfreg_train`` uses the
    ``loop`` trainer there when ``train.trainer`` is not set.
    """

    supports_callbacks = True
    # Keras' compile wraps the optimizer in a LossScaleOptimizer for a mixed_float16 model
    supports_mixed_precision = True
    supports_multiworker = False

    def compile(self, model, optimizers):
        model.compile(optimizer=optimizers["optimizer"])

    def fit(self, model, optimizers, checkpoint, run: TrainingRun):
        if is_multiworker(run.strategy):
            raise ValueError(
                "train.trainer 'fit' cannot run under MultiWorkerMirroredStrategy (keras-team/keras#20585); "
                "use trainer 'loop'"
            )
        guard = DivergenceGuard(run.train_steps)
        callbacks = [
            guard,  # first: a non-finite loss stops the run before anything else sees the epoch end
            keras.callbacks.TensorBoard(
                log_dir=run.exp_path, histogram_freq=run.save_period, update_freq=run.update_freq
            ),
            CheckpointSaver(
                checkpoint, os.path.join(run.exp_path, SAVE_DIR), run.save_period, guard=guard, run_folder=run.exp_path
            ),
        ] + list(run.callbacks)
        console = console_logger(run)
        if console is not None:  # Keras' own output (verbose=0 below) would print every metric
            callbacks.append(console)
        model.fit(
            run.train_data,
            steps_per_epoch=run.train_steps,
            initial_epoch=run.initial_epoch,
            epochs=run.epochs,
            validation_data=run.valid_data,
            validation_steps=run.valid_steps,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself; Keras would only warn that it ignores True
            verbose=0,
        )
        guard.raise_if_diverged()


__all__ = ["FitTrainer"]
