"""The trainer base class: what a registered trainer (``train.trainer: {name, ...}``) provides.

A trainer owns the optimizers of a run and the loop that steps them; ``tfreg_train`` builds the model,
the data and the log folder, then hands them over (:class:`TrainingRun`). Three are registered:

- ``fit`` (default): Keras ``model.fit`` with one optimizer (``train.optimizer``), DeepReg's behaviour;
- ``loop``: tfreg's own loop with one optimizer; the one that runs under MultiWorkerMirroredStrategy,
  where Keras 3's ``fit`` does not (keras-team/keras#20585);
- ``alternating``: several optimizers (``train.optimizers: {group: {name, ...}}``), each stepping one
  parameter group of the model (:meth:`RegistrationModel.parameter_groups`) in turn, for joint
  segmentation-registration training.

A new trainer subclasses :class:`Trainer`, declares the ``train`` keys it reads (``config_keys``,
``required_config_keys``), checks them in :meth:`Trainer.validate_train_config`, and registers itself
with ``REGISTRY.register_trainer(name)``; nothing in the engine or the config validator changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import keras
import tensorflow as tf


@dataclass
class TrainingRun:
    """Everything a trainer's :meth:`Trainer.fit` needs besides the model, optimizers and checkpoint.

    Attributes:
        strategy: the ``tf.distribute`` strategy the model was built under.
        exp_path: the run's log folder (TensorBoard ``train/``, ``validation/``; ``save/ckpt-N``).
        train_data: repeated dataset of global batches; train_steps: batches per epoch.
        epochs: last epoch (exclusive); initial_epoch: the first (a resumed checkpoint's number).
        save_period: epochs between checkpoints (and one after the last epoch).
        valid_data, valid_steps: optional repeated validation dataset and its batches per epoch.
        chief: whether this process writes logs and the real checkpoints.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch (:func:`tfreg.engine.console.console_logger`).
        console_metrics: what the progress output shows: ``"losses"`` (the loss and each loss term, and
            their ``val_`` values) or ``"all"`` (every logged metric); TensorBoard gets everything either way.
        display_epochs: the epoch count printed (``Epoch e/display_epochs``); None: ``epochs`` (a stage of
            the progressive trainer ends before the run does).
        update_freq: TensorBoard's ``update_freq`` (``"epoch"``, ``"batch"`` or a batch count).
        callbacks: extra Keras callbacks (only trainers with ``supports_callbacks``).
    """

    strategy: Any
    exp_path: str
    train_data: Any
    train_steps: int
    epochs: int
    initial_epoch: int
    save_period: int
    valid_data: Any = None
    valid_steps: Optional[int] = None
    chief: bool = True
    verbose: int = 2
    console_metrics: str = "losses"
    display_epochs: Optional[int] = None
    update_freq: Any = "epoch"
    callbacks: List[keras.callbacks.Callback] = field(default_factory=list)


def build_learning_rate_schedule(options: Dict[str, Any], key: str) -> keras.optimizers.schedules.LearningRateSchedule:
    """``{name: PolynomialDecay, initial_learning_rate: 1e-4, decay_steps: 100000, power: 0.9}`` as the
    ``keras.optimizers.schedules`` class of that name (its arguments are Keras'; steps are optimizer steps,
    so the schedule resumes with the optimizer's step count from a checkpoint); ValueError naming ``key``."""
    options = dict(options)
    name = options.pop("name", None)
    cls = getattr(keras.optimizers.schedules, name, None) if isinstance(name, str) else None
    base = keras.optimizers.schedules.LearningRateSchedule
    if not (isinstance(cls, type) and issubclass(cls, base) and cls is not base):
        allowed = sorted(
            n
            for n in dir(keras.optimizers.schedules)
            if isinstance(getattr(keras.optimizers.schedules, n), type)
            and issubclass(getattr(keras.optimizers.schedules, n), base)
            and getattr(keras.optimizers.schedules, n) is not base
        )
        raise ValueError(
            f"{key}: name {name!r} is not a keras.optimizers.schedules class; allowed: {', '.join(allowed)}"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{key}: {name} rejects {options}: {err}") from None


def build_optimizer(options: Dict[str, Any], key: str = "train.optimizer") -> keras.optimizers.Optimizer:
    """``{name: Adam, learning_rate: 1e-4, ...}`` as a Keras optimizer; ValueError naming ``key``.

    ``learning_rate`` may be a schedule mapping (:func:`build_learning_rate_schedule`)."""
    options = dict(options)
    if isinstance(options.get("learning_rate"), dict):
        options["learning_rate"] = build_learning_rate_schedule(options["learning_rate"], f"{key}.learning_rate")
    name = options.pop("name", None)
    cls = getattr(keras.optimizers, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, keras.optimizers.Optimizer)):
        raise ValueError(f"{key}.name: {name!r} is not a keras.optimizers class")
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{key} ({name}) rejects {options}: {err}") from None


def is_multiworker(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy``."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class Trainer:
    """Base of the registered trainers: one optimizer from ``train.optimizer``; subclasses define :meth:`fit`.

    Constructor keyword arguments are the ``train.trainer`` entry's keys other than ``name``.
    """

    #: ``train`` keys this trainer reads, and those it requires
    config_keys: Sequence[str] = ("optimizer",)
    required_config_keys: Sequence[str] = ("optimizer",)
    #: whether :meth:`fit` runs extra Keras callbacks (``train(callbacks=...)``)
    supports_callbacks = False
    #: whether :meth:`fit` runs under MultiWorkerMirroredStrategy
    supports_multiworker = True
    #: whether :meth:`fit` scales the loss for float16 training (``train.mixed_precision``)
    supports_mixed_precision = False

    @classmethod
    def validate_train_config(cls, checker, train: Dict[str, Any], model_cls: Any) -> None:
        """Report problems of the ``train`` keys this trainer reads through ``checker`` (a
        :class:`tfreg.config.validate.ConfigChecker`); ``model_cls`` is the class of ``train.method``."""
        if "optimizer" in train:
            checker.check_optimizer(("train", "optimizer"), train["optimizer"])

    def build_optimizers(self, train: Dict[str, Any], model: keras.Model) -> Dict[str, keras.optimizers.Optimizer]:
        """``{"optimizer": the optimizer of train.optimizer}``; build under the strategy's scope."""
        return {"optimizer": build_optimizer(train["optimizer"])}

    def compile(self, model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer]) -> None:
        """Prepare the model for :meth:`fit` (Keras ``compile`` where ``fit`` is used)."""

    def build_optimizer_variables(self, model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer]):
        """Create every optimizer's slot variables (before a checkpoint is made or restored)."""
        groups = self.variable_groups(model, optimizers)
        for name, optimizer in optimizers.items():
            if not optimizer.built:
                optimizer.build(groups[name])

    def variable_groups(self, model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer]) -> Dict:
        """``{optimizer name: the variables it updates}``: every trainable variable for one optimizer."""
        return {name: model.trainable_variables for name in optimizers}

    def fit(self, model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer], checkpoint, run: TrainingRun):
        """Train ``model`` for ``run.initial_epoch .. run.epochs - 1``, saving ``checkpoint`` as ``run`` says."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit()")

    def get_config(self) -> Dict[str, Any]:
        return {}


__all__ = ["Trainer", "TrainingRun", "build_optimizer", "is_multiworker"]
