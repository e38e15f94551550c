"""A trained registration model's DDF for one image pair: the starting point of ``tfreg_register``.

The model comes from a checkpoint written by ``tfreg_train`` (``.../save/ckpt-N``, built from the training
config beside it or from ``config_path``) or from a whole model saved with ``model.save("x.keras")``.

The model grids are the ones it was trained on: ``model_image_size`` if given (both grids), else the
training config's ``dataset.moving_image_shape`` / ``fixed_image_shape`` (or ``image_shape`` for both),
the loader's resize targets; a ``.keras`` model carries its own. The pair (the moving image already on
the fixed image's grid) is resized to them (linear, half-pixel centres), the model predicts a DDF on its
fixed grid in voxels of its moving grid, and that DDF is converted to the pair's voxels: a model voxel
``p`` (fixed grid, scale ``s_f = pair size / fixed grid size``) mapped to ``q = p + ddf`` (moving grid,
scale ``s_m``) is the pair displacement ``(q + 0.5) s_m - (p + 0.5) s_f``, resized onto the pair's grid.
A checkpoint that does not fit the model grids is refused by the checkpoint check, naming the shapes.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional, Sequence, Tuple

import keras
import numpy as np
from keras import ops

from tfreg.ops.resize import resize

logger = logging.getLogger(__name__)


def registered_classes() -> Dict[str, type]:
    """``{class name: class}`` of every registered component, for ``keras.saving.load_model``."""
    from tfreg.registry import REGISTRY

    REGISTRY._load_builtins()
    return {value.__name__: value for value in REGISTRY._dict.values() if isinstance(value, type)}


def _config_grids(config) -> Optional[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """``(moving grid, fixed grid)`` from the config's dataset section, or None."""
    dataset = config.get("dataset") or {}
    both = dataset.get("image_shape")
    moving = dataset.get("moving_image_shape") or both
    fixed = dataset.get("fixed_image_shape") or both
    if not moving or not fixed:
        return None
    return tuple(int(v) for v in moving), tuple(int(v) for v in fixed)


def load_model(
    model_path: str, config_path: Optional[str] = None, shape: Optional[Sequence[int]] = None
) -> Tuple[keras.Model, Tuple[int, ...], Tuple[int, ...]]:
    """Load a trained registration model; returns ``(model, moving grid, fixed grid)``.

    Args:
        model_path: ``.../save/ckpt-N`` (tfreg's or DeepReg 1.0's, see :mod:`tfreg.engine.deepreg_checkpoint`)
            or a ``.keras`` file.
        config_path: the training config for a checkpoint (default: the one beside it).
        shape: the model grid, moving and fixed (overrides the config's; a ``.keras`` file has its own).

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
        if getattr(model, "fixed_image_size", None) is None:
            raise ValueError(f"--model {model_path}: {type(model).__name__} is not a tfreg registration model")
        return model, tuple(model.moving_image_size), tuple(model.fixed_image_size)

    from tfreg.config import load_configs_with_provenance, validate_config
    from tfreg.engine.deepreg_checkpoint import adapt_config, resolve_checkpoint, restore_model
    from tfreg.engine.predict import default_config_path
    from tfreg.registry import REGISTRY

    prefix, deepreg = resolve_checkpoint(model_path)
    config_path = config_path or default_config_path(prefix)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"-k {model_path}: its training config {config_path} does not exist; give it with --model_config"
        )
    config, provenance = load_configs_with_provenance([config_path], write_updated=False)
    config = validate_config(config, provenance, registry=REGISTRY, check_dirs=False)
    grids = (tuple(shape), tuple(shape)) if shape else _config_grids(config)
    if grids is None:
        raise ValueError(
            f"-k {model_path}: the training config {config_path} gives no dataset image shape; give the model grid "
            "with --model_image_size"
        )
    train = config["train"]
    if deepreg is not None:
        adapt_config(train, deepreg, "-k")
    moving_grid, fixed_grid = grids
    model = REGISTRY.build_model(
        config=dict(
            name=train["method"],
            moving_image_size=moving_grid,
            fixed_image_size=fixed_grid,
            labeled=False,
            config=train,
        )
    )
    model(
        {
            "moving_image": np.zeros((1,) + moving_grid, np.float32),
            "fixed_image": np.zeros((1,) + fixed_grid, np.float32),
            "indices": np.zeros((1, model.index_size), np.float32),
        }
    )
    restore_model(model, prefix, deepreg)
    return model, moving_grid, fixed_grid


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
    model, moving_grid, fixed_grid = load_model(model_path, config_path, model_image_size)
    shape = tuple(fixed.shape)
    if len(fixed_grid) != len(shape):
        raise ValueError(
            f"--model {model_path} registers {len(fixed_grid)}-D images, the pair is {len(shape)}-D {shape}"
        )
    if (moving_grid, fixed_grid) != (shape, shape):
        logger.info(
            "the pair %s is resized to the model grids %s (moving) and %s (fixed) for its prediction",
            shape,
            moving_grid,
            fixed_grid,
        )
    inputs = {
        "fixed_image": resize(ops.convert_to_tensor(fixed[None]), fixed_grid),
        "moving_image": resize(ops.convert_to_tensor(moving[None]), moving_grid),
        "indices": ops.zeros((1, model.index_size)),
    }
    out = model(inputs, training=False)
    if not isinstance(out, dict) or "ddf" not in out:
        raise ValueError(f"--model {model_path}: {type(model).__name__} does not predict a DDF")
    ddf = np.asarray(ops.convert_to_numpy(ops.cast(out["ddf"], "float32")))[0].astype(np.float64)
    s_m = np.asarray([n / g for n, g in zip(shape, moving_grid)])
    s_f = np.asarray([n / g for n, g in zip(shape, fixed_grid)])
    p = np.stack(np.meshgrid(*[np.arange(d, dtype=np.float64) for d in fixed_grid], indexing="ij"), -1)
    pair_ddf = (p + ddf + 0.5) * s_m - (p + 0.5) * s_f
    pair_ddf = resize(ops.convert_to_tensor(pair_ddf[None].astype(np.float32)), shape)
    return np.asarray(ops.convert_to_numpy(pair_ddf))[0]


__all__ = ["load_model", "predict_pair_ddf", "registered_classes"]
