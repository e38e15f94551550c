"""The ``alternating`` trainer: several optimizers, each stepping one parameter group of the model in turn.

For joint segmentation-registration training (macJNet's alternating protocol, MONAI's GAN trainer
pattern): the model names its parameter groups (``RegistrationModel.parameter_groups``, e.g.
``registration`` and ``segmentation``), the config gives one optimizer per group and the phases::

    train:
      optimizers:
        registration: {name: Adam, learning_rate: 1.0e-4}
        segmentation: {name: Adam, learning_rate: 1.0e-3}
      trainer:
        name: alternating
        phases:
          - {optimizer: registration, steps: 1, losses: [image, label, regularization]}
          - {optimizer: segmentation, steps: 2, losses: [segmentation]}

Each training step takes one batch and runs the current phase: the forward pass of the whole model,
the losses of the phase's categories (all when ``losses`` is absent), and the gradients of the phase's
group only, applied by its optimizer; the other groups' weights do not change in that step (their
BatchNormalization statistics do, since the forward pass is in training mode). Phases cycle over the
global step number: ``steps: 1`` then ``steps: 2`` is the cycle A, B, B, A, B, B, ... Every optimizer's
state is checkpointed under its name and restored on resume.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, Dict, List, Optional, Sequence

from tfreg.engine.custom_loop import gradient_step, run_loop
from tfreg.engine.trainers.base import Trainer, TrainingRun, build_optimizer
from tfreg.registry import REGISTRY

PHASE_KEYS = ("optimizer", "steps", "losses")


def parse_phases(phases: Any) -> Optional[List[Dict[str, Any]]]:
    """Check ``phases`` (a list of ``{optimizer, steps=1, losses=None}``); ValueError naming the entry."""
    if phases is None:
        return None
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ValueError(f"phases must be a non-empty list of {{optimizer, steps, losses}}, got {phases!r}")
    parsed = []
    for i, phase in enumerate(phases):
        where = f"phases[{i}]"
        if not isinstance(phase, dict):
            raise ValueError(f"{where} must be a mapping {{optimizer, steps, losses}}, got {phase!r}")
        unknown = sorted(set(phase) - set(PHASE_KEYS))
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; allowed: {list(PHASE_KEYS)}")
        name = phase.get("optimizer")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.optimizer must name one of train.optimizers, got {name!r}")
        steps = phase.get("steps", 1)
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
            raise ValueError(f"{where}.steps must be an integer >= 1, got {steps!r}")
        losses = phase.get("losses")
        if losses is not None and (
            not isinstance(losses, (list, tuple)) or not losses or not all(isinstance(c, str) for c in losses)
        ):
            raise ValueError(f"{where}.losses must be a non-empty list of loss categories, got {losses!r}")
        parsed.append({"optimizer": name, "steps": int(steps), "losses": None if losses is None else tuple(losses)})
    return parsed


@REGISTRY.register_trainer(name="alternating")
class AlternatingTrainer(Trainer):
    """Several optimizers (``train.optimizers``), one per parameter group, stepped in phases.

    Args:
        phases: list of ``{optimizer: <group>, steps: int >= 1, losses: [categories]}``; default one
            phase per ``train.optimizers`` entry, in order, one step each, every loss.
    """

    config_keys = ("optimizers",)
    required_config_keys = ("optimizers",)

    def __init__(self, phases: Optional[Sequence[Dict[str, Any]]] = None):
        self.phases = parse_phases(phases)

    @classmethod
    def validate_train_config(cls, checker, train, model_cls):
        base = ("train",)
        if "optimizer" in train:
            checker.error(
                base + ("optimizer",),
                "trainer 'alternating' reads train.optimizers (one optimizer per parameter group), not "
                "train.optimizer; move it under train.optimizers.<group>",
            )
        optimizers = train.get("optimizers")
        groups = tuple(model_cls.parameter_group_names())
        if optimizers is None:
            return
        if not isinstance(optimizers, dict) or not optimizers:
            checker.error(base + ("optimizers",), f"must be a mapping {{group: {{name, ...}}}} over {list(groups)}")
            return
        for name, options in optimizers.items():
            if name not in groups:
                checker.error(
                    base + ("optimizers", name),
                    f"the model has no parameter group {name!r}; its groups: {', '.join(groups)}",
                )
            checker.check_optimizer(base + ("optimizers", name), options)
        trainer = train.get("trainer") if isinstance(train.get("trainer"), dict) else {}
        try:
            phases = parse_phases(trainer.get("phases"))
        except ValueError:
            return  # reported when the trainer entry is built
        for i, phase in enumerate(phases or []):
            if phase["optimizer"] not in optimizers:
                checker.error(
                    base + ("trainer", "phases", i, "optimizer"),
                    f"{phase['optimizer']!r} is not in train.optimizers ({', '.join(map(str, optimizers))})",
                )
            for category in phase["losses"] or ():
                if category not in model_cls.loss_inputs:
                    checker.error(
                        base + ("trainer", "phases", i, "losses"),
                        f"the model has no loss category {category!r}; "
                        f"its categories: {', '.join(model_cls.loss_inputs)}",
                    )

    def build_optimizers(self, train, model):
        optimizers = {
            name: build_optimizer(options, f"train.optimizers.{name}") for name, options in train["optimizers"].items()
        }
        self.variable_groups(model, optimizers)  # fail now, before anything is written, on a group mismatch
        return optimizers

    def variable_groups(self, model, optimizers):
        groups = model.parameter_groups()
        missing = [name for name in optimizers if name not in groups]
        if missing:
            raise ValueError(
                f"train.optimizers {missing} name no parameter group of model {type(model).__name__}; "
                f"its groups: {list(groups)}"
            )
        return {name: groups[name] for name in optimizers}

    def schedule(self, optimizers) -> List[Dict[str, Any]]:
        """The phases, defaulting to one step of each optimizer in turn."""
        phases = self.phases or [{"optimizer": name, "steps": 1, "losses": None} for name in optimizers]
        for phase in phases:
            if phase["optimizer"] not in optimizers:
                raise ValueError(
                    f"phase optimizer {phase['optimizer']!r} is not in train.optimizers {list(optimizers)}"
                )
        return phases

    def fit(self, model, optimizers, checkpoint, run: TrainingRun):
        phases = self.schedule(optimizers)
        groups = model.parameter_groups()
        steps, schedule = [], []
        for i, phase in enumerate(phases):
            name = phase["optimizer"]
            steps.append(gradient_step(model, optimizers[name], lambda name=name: groups[name], phase["losses"]))
            schedule += [i] * phase["steps"]
        first = optimizers[phases[0]["optimizer"]]
        return run_loop(model, checkpoint, run, steps, schedule, learning_rate_of=first)

    def get_config(self):
        return {"phases": self.phases}


__all__ = ["AlternatingTrainer", "parse_phases"]
