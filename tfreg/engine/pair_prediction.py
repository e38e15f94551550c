"""A trained registration model's DDF for one image pair: the starting point of ``tfreg_register``.

The model comes from a checkpoint written by ``tfreg_train`` (``.../save/ckpt-N``, built from the training
config beside it or from ``config_path``) or from a whole model saved with ``model.save("x.keras")``.

The model grid is the one it was trained on: ``model_image_size`` if given, else the training config's
``dataset.fixed_image_shape`` / ``dataset.image_shape`` (the loader's resize target), else the pair's own
shape. A pair on another grid is resized to it (linear, half-pixel centres), the DDF predicted there, and
resized back with its voxel values scaled to the pair's grid (:func:`tfreg.registration.optimise.resize_field`).
A checkpoint that does not fit the model grid is refused by the checkpoint check, naming the shapes.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional, Sequence, Tuple

import keras
import numpy as np
from keras import ops

from tfreg.ops.resize import resize
from tfreg.registration.optimise import resize_field

logger = logging.getLogger(__name__)


def registered_classes() -> Dict[str, type]:
    """``{class name: class}`` of every registered component, for ``keras.saving.load_model``."""
    from tfreg.registry import REGISTRY

    REGISTRY._load_builtins()
    return {value.__name__: value for value in REGISTRY._dict.values() if isinstance(value, type)}


def _config_grid(config) -> Optional[Tuple[int, ...]]:
    dataset = config.get("dataset") or {}
    for key in ("fixed_image_shape", "image_shape"):
        value = dataset.get(key)
        if value:
            return tuple(int(v) for v in value)
    return None


def load_model(
    model_path: str, config_path: Optional[str] = None, shape: Optional[Sequence[int]] = None
) -> Tuple[keras.Model, Tuple[int, ...]]:
    """Load a trained registration model; returns ``(model, model grid)``.

    Args:
        model_path: ``.../save/ckpt-N`` or a ``.keras`` file.
        config_path: the training config for a checkpoint (default: the one beside it).
        shape: the model grid (overrides the config's; for a ``.keras`` file its own size is used).

    Raises:
        FileNotFoundError, CheckpointError, ConfigError, ValueError: naming the path or key at fault.
    """
    if str(model_path).endswith(".keras"):
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"--model {model_path}: file does not exist")
        try:
            model = keras.saving.load_model(model_path, custom_objects=registered_classes(), compile=False)
        except Exception as err:  # Keras raises many kinds for a file it cannot read
            raise ValueError(f"--model {model_path}: not a Keras model file tfreg can load ({err})") from None
        size = getattr(model, "fixed_image_size", None)
        if size is None:
            raise ValueError(f"--model {model_path}: {type(model).__name__} is not a tfreg registration model")
        return model, tuple(size)

    from tfreg.config import load_configs_with_provenance, validate_config
    from tfreg.engine.checkpoint import make_checkpoint, parse_ckpt_path, restore_checkpoint
    from tfreg.engine.predict import default_config_path
    from tfreg.registry import REGISTRY

    prefix, _ = parse_ckpt_path(model_path)
    config_path = config_path or default_config_path(prefix)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"-k {model_path}: its training config {config_path} does not exist; give it with --model_config"
        )
    config, provenance = load_configs_with_provenance([config_path], write_updated=False)
    config = validate_config(config, provenance, registry=REGISTRY, check_dirs=False)
    grid = tuple(shape) if shape else _config_grid(config)
    if grid is None:
        raise ValueError(
            f"-k {model_path}: the training config {config_path} gives no dataset image shape; give the model grid "
            "with --model_image_size"
        )
    train = config["train"]
    model = REGISTRY.build_model(
        config=dict(name=train["method"], moving_image_size=grid, fixed_image_size=grid, labeled=False, config=train)
    )
    zeros = np.zeros((1,) + grid, np.float32)
    model({"moving_image": zeros, "fixed_image": zeros, "indices": np.zeros((1, model.index_size), np.float32)})
    restore_checkpoint(make_checkpoint(model), prefix, with_optimizer=False)
    return model, grid


def predict_pair_ddf(
    model_path: str,
    fixed: np.ndarray,
    moving: np.ndarray,
    config_path: Optional[str] = None,
    model_image_size: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """The model's DDF for one pair on the pair's grid.

    Args:
        model_path, config_path: see :func:`load_model`.
        fixed, moving: ``(*S)`` images on one grid (the moving resampled onto the fixed grid).
        model_image_size: the model grid (module docstring).

    Returns:
        ``(*S, ndim)`` float32, voxels of the pair's grid.
    """
    model, grid = load_model(model_path, config_path, model_image_size)
    shape = tuple(fixed.shape)
    if len(grid) != len(shape):
        raise ValueError(f"--model {model_path} registers {len(grid)}-D images, the pair is {len(shape)}-D {shape}")
    if grid != shape:
        logger.info("the pair %s is resized to the model grid %s for the model's prediction", shape, grid)
    inputs = {
        "fixed_image": resize(ops.convert_to_tensor(fixed[None]), grid),
        "moving_image": resize(ops.convert_to_tensor(moving[None]), grid),
        "indices": ops.zeros((1, model.index_size)),
    }
    out = model(inputs, training=False)
    if not isinstance(out, dict) or "ddf" not in out:
        raise ValueError(f"--model {model_path}: {type(model).__name__} does not predict a DDF")
    ddf = resize_field(ops.cast(out["ddf"], "float32"), shape)
    return np.asarray(ops.convert_to_numpy(ddf))[0]


__all__ = ["load_model", "predict_pair_ddf", "registered_classes"]
