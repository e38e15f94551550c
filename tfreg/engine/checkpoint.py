"""TensorFlow object checkpoints in DeepReg's layout: ``<log>/<exp>/save/ckpt-<epoch>.{index,data-*}``.

A checkpoint holds ``tf.train.Checkpoint(model=ModelWeights(model), optimizer=optimizer)``: the model's
weights (including BatchNormalization statistics) and the optimizer's state (iteration count, Adam moments),
so a resumed run continues exactly where it stopped. The number after ``ckpt-`` is the number of
completed epochs, which becomes the resumed run's ``initial_epoch``.

DeepReg 0.x/1.0 checkpoints (TF 2.3 Keras 2 models, the model zoo's ``*.ckpt``) do not map onto Keras 3
models; they are refused with a message saying so.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from typing import Optional, Tuple

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)

SAVE_DIR = "save"
CKPT_NAME = "ckpt"
_CKPT_RE = re.compile(r"^ckpt-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint path that does not exist, is not a ``ckpt-N`` prefix, or does not fit the model."""


def available_checkpoints(folder: str) -> list:
    """``ckpt-N`` prefixes in ``folder``, sorted by N."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(folder), "ckpt-*.index")):
        match = _CKPT_RE.match(os.path.basename(index)[: -len(".index")])
        if match:
            found.append((int(match.group(1)), index[: -len(".index")]))
    return [path for _, path in sorted(found)]


def parse_ckpt_path(ckpt_path: str) -> Tuple[str, int]:
    """Check ``ckpt_path`` (``.../save/ckpt-N``) and return ``(prefix, N)``.

    Raises:
        CheckpointError: a legacy ``*.ckpt`` file, a path not ending in ``ckpt-<N>``, or a checkpoint
            whose ``.index`` file does not exist (the message lists the checkpoints found in its folder).
    """
    path = os.path.expanduser(str(ckpt_path))
    name = os.path.basename(path)
    if name.endswith(".ckpt"):
        raise CheckpointError(
            f"--ckpt_path {ckpt_path}: DeepReg's legacy '.ckpt' (TF 2.3 Keras 2) checkpoints cannot be loaded "
            "into Keras 3 models; retrain with tfreg, which writes save/ckpt-<epoch>"
        )
    match = _CKPT_RE.match(name)
    if not match:
        raise CheckpointError(f"--ckpt_path {ckpt_path} must end with ckpt-<epoch>, e.g. logs/exp/save/ckpt-10")
    if not os.path.isfile(path + ".index"):
        folder = os.path.dirname(path) or "."
        found = available_checkpoints(folder) if os.path.isdir(folder) else []
        hint = (
            f"; checkpoints in {folder}: {[os.path.basename(p) for p in found]}"
            if found
            else (f"; {folder} has no checkpoints" if os.path.isdir(folder) else f"; folder {folder} does not exist")
        )
        raise CheckpointError(f"--ckpt_path {ckpt_path}: checkpoint not found (no {path}.index){hint}")
    return path, int(match.group(1))


class ModelWeights(tf.Module):
    """The model's weights (trainable and non-trainable, e.g. BatchNorm statistics) as checkpoint
    children ``w0000, w0001, ...`` in ``model.weights`` order.

    Why not ``tf.train.Checkpoint(model=model)``: Keras 3 keeps sub-layers stored in Python lists (as the
    backbones do) out of TensorFlow's object graph, so such a checkpoint silently misses most weights.
    The order of ``model.weights`` is the construction order, the same for every model built from the
    same config, so the positions identify the weights; shapes are checked before restoring.
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="model_weights")
        self.count = len(model.weights)
        self.shapes = [tuple(w.shape) for w in model.weights]
        self.paths = [w.path for w in model.weights]
        for i, weight in enumerate(model.weights):
            setattr(self, f"w{i:04d}", weight)


def make_checkpoint(model: keras.Model, optimizer: Optional[keras.optimizers.Optimizer] = None) -> tf.train.Checkpoint:
    """``tf.train.Checkpoint(model=ModelWeights(model)[, optimizer=optimizer])`` of a built model."""
    if not model.weights:
        raise ValueError("the model has no weights yet: call it once (create_variables) before making a checkpoint")
    if optimizer is None:
        return tf.train.Checkpoint(model=ModelWeights(model))
    return tf.train.Checkpoint(model=ModelWeights(model), optimizer=optimizer)


def _saved_weight_shapes(ckpt_path: str) -> dict:
    """``{index: shape}`` of the model weights stored in a checkpoint."""
    shapes = {}
    for key, shape in tf.train.list_variables(ckpt_path):
        match = re.match(r"^model/w(\d+)/\.ATTRIBUTES/VARIABLE_VALUE$", key)
        if match:
            shapes[int(match.group(1))] = tuple(shape)
    return shapes


def check_checkpoint_fits(weights: ModelWeights, ckpt_path: str) -> None:
    """CheckpointError unless the checkpoint holds exactly the model's weights with the same shapes."""
    saved = _saved_weight_shapes(ckpt_path)
    problem = None
    if not saved:
        problem = "it holds no tfreg model weights"
    elif len(saved) != weights.count:
        problem = f"it holds {len(saved)} weights and the model has {weights.count}"
    else:
        for i, shape in enumerate(weights.shapes):
            if saved.get(i) != shape:
                problem = (
                    f"weight {i} ({weights.paths[i]}) has shape {saved.get(i)} in the file and {shape} in the model"
                )
                break
    if problem:
        raise CheckpointError(
            f"checkpoint {ckpt_path} does not fit the model built from the config ({problem}); was it written "
            "with a different method, backbone or image shape?"
        )


def restore_checkpoint(checkpoint: tf.train.Checkpoint, ckpt_path: str, with_optimizer: bool) -> None:
    """Restore ``ckpt_path`` into an already built model (and optimizer).

    Args:
        checkpoint: from :func:`make_checkpoint`; its model (and optimizer) must have their variables
            (call the model once and ``optimizer.build`` first).
        ckpt_path: a checked ``ckpt-N`` prefix.
        with_optimizer: resume training: the model's and the optimizer's state must both be in the
            file. False (predict): only the model's weights are restored.

    Raises:
        CheckpointError: the checkpoint was written by a different model (missing, extra or differently
            shaped weights), or has no optimizer state to resume from.
    """
    check_checkpoint_fits(checkpoint.model, ckpt_path)
    status = None
    try:
        status = checkpoint.restore(ckpt_path)
        if with_optimizer:
            status.assert_consumed()
        else:
            status.assert_existing_objects_matched()
            status.expect_partial()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
        if status is not None:
            status.expect_partial()  # the error below says it all; no deletion-time warning flood
        detail = str(err).strip().splitlines()
        detail = " ".join(detail[:3])[:600]
        raise CheckpointError(
            f"checkpoint {ckpt_path} cannot be restored into the model and optimizer built from the config: {detail}"
        ) from None


class CheckpointSaver(keras.callbacks.Callback):
    """Save ``save/ckpt-<epoch>`` every ``save_period`` epochs and after the last epoch (DeepReg's rule).

    Args:
        checkpoint: from :func:`make_checkpoint`.
        directory: the ``save`` folder.
        save_period: epochs between saves; a save happens when ``(epoch + 1) % save_period == 0``.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: str, save_period: int):
        super().__init__()
        if isinstance(save_period, bool) or int(save_period) != save_period or save_period < 1:
            raise ValueError(f"save_period must be a positive integer, got {save_period!r}")
        self.checkpoint = checkpoint
        self.manager = tf.train.CheckpointManager(
            checkpoint, directory=directory, max_to_keep=None, checkpoint_name=CKPT_NAME
        )
        self.save_period = int(save_period)
        self.last_epoch: Optional[int] = None
        self.last_saved: Optional[int] = None

    def save(self, epoch_number: int) -> str:
        """Write ``ckpt-<epoch_number>``; returns its prefix."""
        path = self.manager.save(checkpoint_number=epoch_number)
        self.last_saved = epoch_number
        logger.info("saved checkpoint %s", path)
        return path

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = epoch + 1
        if self.last_epoch % self.save_period == 0:
            self.save(self.last_epoch)

    def on_train_end(self, logs=None):
        if self.last_epoch is not None and self.last_saved != self.last_epoch:
            self.save(self.last_epoch)


__all__ = [
    "SAVE_DIR",
    "CKPT_NAME",
    "CheckpointError",
    "ModelWeights",
    "check_checkpoint_fits",
    "available_checkpoints",
    "parse_ckpt_path",
    "make_checkpoint",
    "restore_checkpoint",
    "CheckpointSaver",
]
