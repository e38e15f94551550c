"""The ``loop`` trainer: tfreg's own loop (:mod:`tfreg.engine.custom_loop`) with one optimizer."""

from __future__ import annotations

from tfreg.engine.custom_loop import gradient_step, run_loop
from tfreg.engine.trainers.base import Trainer, TrainingRun
from tfreg.registry import REGISTRY


@REGISTRY.register_trainer(name="loop")
class LoopTrainer(Trainer):
    """One optimizer (``train.optimizer``) stepping every trainable variable, in tfreg's loop.

    The loop of :mod:`tfreg.engine.custom_loop`: the same epochs, metric names, TensorBoard scalars and
    checkpoints as ``fit``, under any strategy including MultiWorkerMirroredStrategy (``tfreg_train``
    picks this trainer there when ``train.trainer`` is not set). No extra Keras callbacks.
    """

    def fit(self, model, optimizers, checkpoint, run: TrainingRun):
        optimizer = optimizers["optimizer"]
        step = gradient_step(model, optimizer, lambda: model.trainable_variables)
        return run_loop(model, checkpoint, run, [step], learning_rate_of=optimizer)


__all__ = ["LoopTrainer"]
