"""Progressive (coarse-to-fine) training of a pyramid network: the schedule, and a Keras callback for ``fit``.

LapIRN (Mok and Chung 2020, "Large deformation diffeomorphic image registration with Laplacian pyramid
networks") trains its levels in stages: level 1 alone; then level 2 with level 1 frozen for the first
iterations, then both; then level 3 with levels 1 and 2 frozen for a while, then all. Here stages are counted
in epochs:

- ``level_epochs = [e_1, ..., e_{L-1}]``: the epochs spent with level ``l`` the finest active one; the rest of
  the run (up to ``train.epochs``) is at the last level ``L``;
- ``freeze_epochs = k``: the first ``k`` epochs of each stage after the first keep the coarser levels frozen.

The network must offer ``set_stage(active_level, frozen_levels)`` and ``num_levels``
(:class:`tfreg.models.backbones.lapirn.LapIRN`), as the model itself or as its ``backbone``.

Changing the stage under Keras 3's ``fit`` (TensorFlow backend, checked in Keras 3.15): the training loop reads
``model.train_function`` again at every step, and the traced step reads ``model.trainable_weights`` (and the
network's active level) when it is traced. :func:`apply_stage` therefore sets the stage and replaces the
compiled train, test and predict functions (``make_train_function(force=True)``), so the next step is traced
with the new trainable set. The optimizer must have been built on every level's variables (it then updates
any subset of them: Keras' ``optimizer.apply`` takes a subset of the variables it was built with); a frozen
variable is not passed to it, so neither its value nor its Adam moments change (bitwise). The callback
checks this at the start of ``fit``.

Under JAX, ``fit`` hands the trainable variables to a stateless, jitted step whose optimizer update requires
exactly the variables the optimizer was built with (``stateless_apply`` refuses a subset), and it syncs them back
by position; changing trainable flags during ``fit`` is not supported there, and the callback refuses the JAX
backend. What works under JAX: one ``fit`` call per stage, each with the stage set and a freshly built optimizer
(losing the Adam moments between stages). tfreg's engine runs on TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, List, Optional, Sequence, Tuple

import keras


@dataclass(frozen=True)
class Stage:
    """Epochs ``start .. end - 1`` (``end`` None: to the end of the run) at ``active_level`` with
    ``frozen_levels`` frozen (1-based levels)."""

    start: int
    end: Optional[int]
    active_level: int
    frozen_levels: Tuple[int, ...]


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0 (epochs), got {value!r}")
    return int(value)


def check_level_epochs(level_epochs: Any) -> List[int]:
    """``level_epochs`` as a list of ints >= 0 (epochs at levels 1 .. L - 1), or ValueError naming it."""
    if isinstance(level_epochs, (str, bytes)) or not isinstance(level_epochs, (list, tuple)):
        raise ValueError(
            f"level_epochs must be a list of epochs per level before the last (e.g. [10, 10] for 3 levels), "
            f"got {level_epochs!r}"
        )
    return [_check_count(e, f"level_epochs[{i}]") for i, e in enumerate(level_epochs)]


def progressive_stages(
    level_epochs: Sequence[int], freeze_epochs: int = 0, epochs: Optional[int] = None
) -> List[Stage]:
    """The stages of a run, in epoch order (empty stages left out).

    Args:
        level_epochs: epochs at levels ``1 .. L - 1`` (``L = len(level_epochs) + 1``), ints >= 0.
        freeze_epochs: epochs at the start of each stage after the first with the coarser levels frozen.
        epochs: the run's length: the stages are cut there (a run shorter than ``sum(level_epochs)``, e.g. under
            ``--max_epochs``, ends in an earlier stage; resuming it with more epochs continues the schedule,
            since stages follow absolute epoch numbers). None: the last stage is open-ended.

    Returns:
        Stages covering ``0 .. epochs - 1`` (or every epoch). E.g. ``[1, 2]``, ``freeze_epochs=1``,
        ``epochs=5``: epoch 0 level 1; 1 level 2, level 1 frozen; 2 level 2; 3 level 3, levels 1-2 frozen; 4 level 3.

    Raises:
        ValueError: bad counts.
    """
    lengths: List[Optional[int]] = list(check_level_epochs(level_epochs)) + [None]
    freeze = _check_count(freeze_epochs, "freeze_epochs")
    stages, start = [], 0
    for level, length in enumerate(lengths, start=1):
        if length == 0:
            continue
        frozen = tuple(range(1, level))
        k = 0 if level == 1 else (freeze if length is None else min(freeze, length))
        if k:
            stages.append(Stage(start, start + k, level, frozen))
        if length is None or length > k:
            stages.append(Stage(start + k, None if length is None else start + length, level, ()))
        if length is not None:
            start += length
    if epochs is None:
        return stages
    epochs = int(epochs)
    return [
        Stage(
            stage.start,
            epochs if stage.end is None else min(stage.end, epochs),
            stage.active_level,
            stage.frozen_levels,
        )
        for stage in stages
        if stage.start < epochs
    ]


def stage_at(stages: Sequence[Stage], epoch: int) -> Stage:
    """The stage holding the 0-based ``epoch`` (the last one past the schedule's end)."""
    for stage in stages:
        if stage.start <= epoch and (stage.end is None or epoch < stage.end):
            return stage
    return stages[-1]


def staged_network(model: Any):
    """The object whose ``set_stage`` runs the stages: ``model`` itself or ``model.backbone``; ValueError if none."""
    for candidate in (model, getattr(model, "backbone", None)):
        if candidate is not None and callable(getattr(candidate, "set_stage", None)):
            return candidate
    raise ValueError(
        f"progressive training needs a network with set_stage(active_level, frozen_levels) (the lapirn backbone); "
        f"model {type(model).__name__} and its backbone have none"
    )


def apply_stage(model: keras.Model, stage: Stage) -> None:
    """Set ``stage`` on the model's network and drop its compiled train/test/predict functions, so that the next
    step is traced with the new trainable variables and active level."""
    network = staged_network(model)
    if stage.active_level > network.num_levels:
        raise ValueError(
            f"the schedule reaches level {stage.active_level}, but the network has num_levels = {network.num_levels}"
        )
    network.set_stage(stage.active_level, stage.frozen_levels)
    model.make_train_function(force=True)
    model.test_function = None
    model.predict_function = None


def check_optimizer_covers(model: keras.Model, optimizer) -> None:
    """ValueError when ``optimizer`` is built but lacks some of the network's variables (built while levels were
    frozen or inactive): it could not step them in a later stage, and checkpoints would not match."""
    if optimizer is None or not getattr(optimizer, "built", False):
        return
    known = {id(v) for v in getattr(optimizer, "_trainable_variables", [])}
    network = staged_network(model)
    missing = [v.path for level in getattr(network, "levels", []) for v in level.weights if id(v) not in known]
    if missing:
        raise ValueError(
            f"the optimizer was built without {len(missing)} of the pyramid's variables (e.g. {missing[0]}): build it "
            "with every level trainable (set_stage(num_levels) before the first fit, or "
            "optimizer.build(model.trainable_variables) then)"
        )


def prepare_optimizer(model: keras.Model, optimizer) -> None:
    """Make ``optimizer`` know every level's variables before the first stage freezes some.

    Keras' TensorFlow ``fit`` builds a subclassed model and its optimizer lazily, inside the first traced step,
    on the variables trainable at that time: the first stage's only, and the optimizer could not step the other
    levels later. So the network is built here (``build((None, *image_size, 2))``) when it is not, and an
    unbuilt optimizer is built on the variables of every level (with the network at its full stage meanwhile);
    an optimizer already built without some of them is refused (:func:`check_optimizer_covers`).
    """
    network = staged_network(model)
    if not network.built:
        network.build((None,) + tuple(network.image_size) + (2,))
    if optimizer is not None and not optimizer.built:
        stage = (network.active_level, network.frozen_levels)
        network.set_stage(network.num_levels, ())
        optimizer.build(model.trainable_variables)
        network.set_stage(*stage)
    check_optimizer_covers(model, optimizer)


class ProgressiveTraining(keras.callbacks.Callback):
    """Keras callback running LapIRN's progressive schedule inside one ``model.fit`` (TensorFlow backend).

    Args:
        level_epochs: epochs at levels ``1 .. L - 1`` (ints >= 0); later epochs train the last level ``L``.
        freeze_epochs: epochs at the start of each stage after the first with the coarser levels frozen.

    At the beginning of each epoch the stage of that epoch (absolute epoch numbers, so ``initial_epoch`` resumes
    the schedule) is applied when it differs from the current one (:func:`apply_stage`). The model's network
    must have ``set_stage``, ``num_levels = len(level_epochs) + 1`` and ``image_size`` (the ``lapirn`` backbone).
    At the start of ``fit`` the network and the optimizer are built on every level's variables if they are not
    yet (:func:`prepare_optimizer`). Raises ValueError at the start of ``fit`` for an optimizer built without some
    levels' variables, a schedule for another number of levels, and under the JAX backend (module docstring).

    Example::

        model.compile(optimizer=keras.optimizers.Adam(1e-4))
        model.fit(data, epochs=30, steps_per_epoch=100, callbacks=[ProgressiveTraining([10, 10], freeze_epochs=2)])
    """

    def __init__(self, level_epochs: Sequence[int], freeze_epochs: int = 0):
        super().__init__()
        self.num_levels = len(check_level_epochs(level_epochs)) + 1
        self.stages = progressive_stages(level_epochs, freeze_epochs)
        self.current: Optional[Tuple[int, Tuple[int, ...]]] = None

    def on_train_begin(self, logs=None):
        if keras.backend.backend() == "jax":
            raise ValueError(
                "ProgressiveTraining cannot change trainable variables inside a JAX fit (its jitted step needs the "
                "optimizer's full variable list); run one fit per stage with set_stage() and a new optimizer"
            )
        network = staged_network(self.model)
        if network.num_levels != self.num_levels:
            raise ValueError(
                f"level_epochs has {self.num_levels - 1} entries (levels 1..{self.num_levels - 1}); the network has "
                f"num_levels = {network.num_levels}, so it needs {network.num_levels - 1}"
            )
        prepare_optimizer(self.model, getattr(self.model, "optimizer", None))
        self.current = None  # a new fit: apply the first epoch's stage and retrace

    def on_epoch_begin(self, epoch, logs=None):
        stage = stage_at(self.stages, epoch)
        key = (stage.active_level, stage.frozen_levels)
        if key != self.current:
            apply_stage(self.model, stage)
            self.current = key


__all__ = [
    "Stage",
    "ProgressiveTraining",
    "apply_stage",
    "check_level_epochs",
    "check_optimizer_covers",
    "prepare_optimizer",
    "progressive_stages",
    "stage_at",
    "staged_network",
]
