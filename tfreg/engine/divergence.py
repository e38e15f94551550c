"""Stopping a training run whose loss or weights stop being finite.

A NaN or infinite loss, or weights that are no longer finite, means everything after that point is
garbage. tfreg stops at the first such step. The error names the step and the loss terms that are
not finite. No checkpoint is written from that point on, so the last checkpoint on disk is the last
finite one, and ``tfreg_train`` exits with status 1. (Keras' own ``TerminateOnNaN`` stops too, but
the run still ends "successfully" and the NaN weights get saved.)
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import keras
import numpy as np


class TrainingDiverged(FloatingPointError):
    """The loss or the weights of a training run are no longer finite."""


def non_finite_entries(logs: Optional[Dict[str, object]]) -> List[str]:
    """The names of the logged values (loss, loss terms, metrics) that are NaN or infinite."""
    bad = []
    for name, value in (logs or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            bad.append(name)
    return bad


def non_finite_weights(model: keras.Model) -> List[str]:
    """The paths of the model's weights holding a NaN or an infinity (empty when all are finite)."""
    return [w.path for w in model.weights if not np.all(np.isfinite(keras.ops.convert_to_numpy(w)))]


def divergence_message(step: int, epoch: int, logs: Dict[str, object], last_checkpoint: Optional[str]) -> str:
    """The error text: the global step (1-based), the epoch (1-based), the non-finite terms, what is kept."""
    terms = non_finite_entries(logs)
    kept = (
        f"the last checkpoint, {last_checkpoint}, is finite and kept" if last_checkpoint else "no checkpoint was saved"
    )
    return (
        f"training diverged at step {step} (epoch {epoch}): non-finite {', '.join(terms) or 'loss'}; "
        f"training stopped and {kept}. Lower train.optimizer.learning_rate, check the data and the loss weights"
    )


class DivergenceGuard(keras.callbacks.Callback):
    """Stop ``fit`` at the first batch whose logged loss (or a loss term) is not finite.

    The error is raised after ``fit`` returns (:meth:`raise_if_diverged`). Before that,
    :class:`tfreg.engine.checkpoint.CheckpointSaver` sees ``diverged`` and writes nothing.

    Args:
        steps_per_epoch: to number the steps globally (1-based).
    """

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)
        self.epoch = 0
        self.error: Optional[TrainingDiverged] = None
        self.last_checkpoint: Optional[str] = None

    @property
    def diverged(self) -> bool:
        return self.error is not None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.error is None and non_finite_entries(logs):
            step = self.epoch * self.steps_per_epoch + batch + 1
            self.error = TrainingDiverged(divergence_message(step, self.epoch + 1, logs, self.last_checkpoint))
            self.model.stop_training = True

    def raise_if_diverged(self) -> None:
        if self.error is not None:
            raise self.error


__all__ = ["TrainingDiverged", "DivergenceGuard", "non_finite_entries", "non_finite_weights", "divergence_message"]
