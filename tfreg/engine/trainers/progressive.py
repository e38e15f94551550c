"""The ``progressive`` trainer: LapIRN's coarse-to-fine training stages under Keras ``fit`` (``tfreg_train``).

::

    train:
      backbone: {name: lapirn, num_levels: 3, ...}
      optimizer: {name: Adam, learning_rate: 1.0e-4}
      epochs: 40
      trainer:
        name: progressive
        level_epochs: [10, 10]    # epochs with level 1, then level 2, as the finest active level
        freeze_epochs: 2          # the first 2 epochs of each later stage keep the coarser levels frozen

Epochs 0-9 train level 1 alone; 10-11 level 2 with level 1 frozen; 12-19 levels 1-2; 20-21 level 3 with levels
1-2 frozen; 22-39 every level (the schedule: :func:`tfreg.engine.progressive.progressive_stages`).

Each stage is one ``model.fit`` of the ``fit`` trainer over its epochs (``initial_epoch`` .. ``epochs``), so epoch
numbers, TensorBoard logs and ``save/ckpt-N`` run on continuously across stages; a checkpoint is also written at
the end of each stage. Between stages the network's stage is set (``set_stage``) and the train, test and
predict functions are retraced (:func:`tfreg.engine.progressive.apply_stage`); the optimizer and its state (Adam
moments, iteration count) carry on. Frozen and not-yet-active levels are left out of the variables the
optimizer steps, so their weights stay bitwise unchanged. A run resumed from ``ckpt-N`` (``--ckpt_path``) starts
in the stage of epoch ``N``.

The model's network (the model or its ``backbone``) must have ``set_stage`` and ``num_levels`` (the ``lapirn``
backbone) and ``len(level_epochs) = num_levels - 1``; checked with the config and again when training starts.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Sequence

from tfreg.engine.progressive import (
    apply_stage,
    check_level_epochs,
    check_optimizer_covers,
    progressive_stages,
    staged_network,
)
from tfreg.engine.trainers.base import TrainingRun
from tfreg.engine.trainers.fit import FitTrainer
from tfreg.registry import BACKBONE_CLASS, REGISTRY


def _default_num_levels(backbone_cls) -> int:
    """The backbone class' default ``num_levels`` (None when its constructor has no default)."""
    try:
        parameter = inspect.signature(backbone_cls.__init__).parameters.get("num_levels")
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


@REGISTRY.register_trainer(name="progressive")
class ProgressiveTrainer(FitTrainer):
    """Keras ``fit`` in LapIRN's progressive stages, one optimizer (``train.optimizer``).

    Args:
        level_epochs: epochs at levels ``1 .. L - 1`` (ints >= 0); the rest of ``train.epochs`` is at level ``L``
            (a shorter run ends in an earlier stage, with a warning from the config check).
        freeze_epochs: epochs (int >= 0) at the start of each stage after the first with the coarser levels frozen.

    Raises:
        ValueError: naming the argument, for bad counts.
    """

    def __init__(self, level_epochs: Sequence[int] = (), freeze_epochs: int = 0):
        self.level_epochs = check_level_epochs(level_epochs)
        # validates freeze_epochs as well
        progressive_stages(self.level_epochs, freeze_epochs)
        self.freeze_epochs = int(freeze_epochs)

    @classmethod
    def validate_train_config(cls, checker, train, model_cls):
        super().validate_train_config(checker, train, model_cls)
        base = ("train",)
        entry = train.get("trainer") if isinstance(train.get("trainer"), dict) else {}
        backbone = train.get("backbone")
        name = backbone.get("name") if isinstance(backbone, dict) else None
        if not isinstance(name, str) or not checker.registry.contains(BACKBONE_CLASS, name):
            if backbone is None:
                checker.error(
                    base, "trainer 'progressive' needs train.backbone with pyramid levels, e.g. {name: lapirn}"
                )
            return  # an unregistered backbone is reported by the model's checks
        backbone_cls = checker.registry.get(BACKBONE_CLASS, name)
        if not callable(getattr(backbone_cls, "set_stage", None)):
            checker.error(
                base + ("backbone", "name"),
                f"trainer 'progressive' needs a backbone with pyramid levels and set_stage (lapirn), got {name!r}",
            )
            return
        try:
            level_epochs = check_level_epochs(entry.get("level_epochs", []))
        except ValueError:
            return  # reported when the trainer entry is built
        levels = backbone.get("num_levels", _default_num_levels(backbone_cls))
        if isinstance(levels, int) and not isinstance(levels, bool) and len(level_epochs) != levels - 1:
            checker.error(
                base + ("trainer", "level_epochs"),
                f"must list the epochs of levels 1..{levels - 1} ({levels - 1} entries for num_levels = {levels}), "
                f"got {level_epochs}",
            )
        epochs = train.get("epochs")
        if isinstance(epochs, int) and not isinstance(epochs, bool) and sum(level_epochs) >= epochs:
            # allowed (a short --max_epochs run, resumed later), but rarely meant
            checker.warn(
                base + ("trainer", "level_epochs"),
                f"sum {sum(level_epochs)} leaves no epoch of train.epochs = {epochs} for the last level: the run "
                "ends before the full-resolution stage (resume it with more epochs to continue the schedule)",
            )

    def fit(self, model, optimizers, checkpoint, run: TrainingRun):
        network = staged_network(model)
        if network.num_levels != len(self.level_epochs) + 1:
            raise ValueError(
                f"train.trainer.level_epochs has {len(self.level_epochs)} entries; the network has num_levels = "
                f"{network.num_levels}, so it needs {network.num_levels - 1}"
            )
        check_optimizer_covers(model, optimizers["optimizer"])
        for stage in progressive_stages(self.level_epochs, self.freeze_epochs, run.epochs):
            start = max(stage.start, run.initial_epoch)
            if start >= stage.end:
                continue  # done before the checkpoint this run resumed from
            apply_stage(model, stage)
            stage_run = replace(
                run, initial_epoch=start, epochs=stage.end, display_epochs=run.display_epochs or run.epochs
            )
            super().fit(model, optimizers, checkpoint, stage_run)
            if model.stop_training:  # a callback (e.g. early stopping) ended the run
                break

    def get_config(self):
        return {"level_epochs": list(self.level_epochs), "freeze_epochs": self.freeze_epochs}


__all__ = ["ProgressiveTrainer"]
