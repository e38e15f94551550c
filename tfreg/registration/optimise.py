"""Instance optimisation: register one image pair by optimising its transform directly (``keras`` only).

The transform is the ``field`` backbone's parameters (:mod:`tfreg.models.backbones.field`) inside a
``ddf`` model (a displacement field) or a ``dvf`` model (a stationary velocity field integrated by scaling
and squaring: diffeomorphic), trained with Keras' ``fit`` on the single pair, so every registered image,
label and regularisation loss works with its usual config entry, on the TensorFlow and the JAX backend.

The optimisation runs over a resolution pyramid (``levels``: downsampling factors, coarse to fine). At
each level the images are Gaussian-smoothed (sigma ``f / 2`` voxels for a factor ``f``) and resized, the
field of the previous level is resized onto the level's grid (its voxel values scaled with the grid) and
becomes the starting field, and Adam runs ``iterations`` steps. An optional affine stage runs first, on
the coarsest level; its transform (or a ``prealignment`` DDF given by the caller, e.g. a trained
network's prediction) is composed with the deformable field: the moving image is sampled at
``p + u(p) + a(p + u(p))`` with ``u`` the optimised field and ``a`` the prealignment, so it is
interpolated once. Regularisation losses act on ``u`` alone, not on the prealignment.

Masks restrict the image similarity by zeroing: with a fixed mask ``M_f`` and a moving mask ``M_m`` the
image losses compare ``fixed * m`` with ``warped * m``, where ``m = V * M_f * (M_m warped)`` and ``V`` is 1
where the sample ``p + u(p)`` lies inside the moving image (so, as in ITK's metrics, voxels mapped
outside it do not count; without ``V`` the zero boundary would make them compare with 0); outside ``m``
the two are equal (0) and give no gradient. This is exact for SSD-type losses up to the mean's
denominator and an approximation near the mask border for windowed ones (LNCC, MIND), which see the zero
background inside their windows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np
from keras import ops

from tfreg.models.ddf import DDFModel
from tfreg.models.dvf import DVFModel
from tfreg.ops.filters import gaussian_smooth
from tfreg.ops.jacobian import jacobian_determinant
from tfreg.ops.resize import resize
from tfreg.ops.warp import warp

#: Transform models: a displacement field, or a velocity field integrated into a diffeomorphism.
FIELD_MODELS = ("ddf", "dvf")
#: Mono-modal default: LNCC (window 7) and the diffusion regulariser, DeepReg's names.
DEFAULT_LOSS = {
    "image": {"name": "lncc", "kernel_size": 7, "weight": 1.0},
    "regularization": {"name": "gradient", "weight": 1.0},
}


@dataclass(frozen=True)
class OptimisationSettings:
    """How one pair is optimised.

    Attributes:
        model: ``"ddf"`` (displacement field) or ``"dvf"`` (velocity field, diffeomorphic).
        loss: the loss section, DeepReg's layout: ``{image: {...}, label: {...}, regularization: {...}}``
            (each a ``{name, weight, ...}`` entry or a list of them; see docs/components.md).
        levels: pyramid downsampling factors, coarse to fine, ints >= 1 (e.g. ``(4, 2, 1)``).
        iterations: Adam steps per level (one number for all levels, or one per level), >= 0. Default
            (None): 100 at factors >= 4, 60 at factors 2 and 3, 20 at full resolution, where a step costs
            the most (about 1 s at 80x96x112 on 2 CPU cores, against 0.05 s at a factor of 4).
        learning_rate: Adam's learning rate, voxels of each level per step (the parameters are voxels).
        control_points: B-spline control-point spacing in full-resolution voxels (None: a dense field).
        smoothing_sigma: Gaussian smoothing of a dense field's parameters, full-resolution voxels (None: none).
        affine_iterations: steps of an affine stage on the coarsest level before the deformable ones (0: none).
        affine_learning_rate: its learning rate (voxels per step; the linear part is scaled to voxels too).
        affine_loss: the affine stage's loss section (default: ``loss`` without its regularization).
        seed: random seed (``keras.utils.set_random_seed``), for losses that sample.
        verbose: 0 silent, 1 a progress bar per level with the loss terms.
    """

    model: str = "ddf"
    loss: Dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LOSS))
    levels: Tuple[int, ...] = (4, 2, 1)
    iterations: Union[None, int, Tuple[int, ...]] = None
    learning_rate: float = 0.2
    control_points: Optional[Any] = None
    smoothing_sigma: Optional[Any] = None
    affine_iterations: int = 0
    affine_learning_rate: float = 0.05
    affine_loss: Optional[Dict[str, Any]] = None
    seed: int = 0
    verbose: int = 1

    def __post_init__(self):
        if self.model not in FIELD_MODELS:
            raise ValueError(f"model must be one of {list(FIELD_MODELS)}, got {self.model!r}")
        if not isinstance(self.loss, dict) or not self.loss:
            raise ValueError(f"loss must be a loss section {{image: ..., regularization: ...}}, got {self.loss!r}")
        levels = tuple(self.levels)
        if not levels or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in levels):
            raise ValueError(f"levels must be downsampling factors, ints >= 1, coarse to fine, got {self.levels!r}")
        iterations = self.iterations
        if iterations is None:
            iterations = tuple(100 if f >= 4 else 60 if f >= 2 else 20 for f in levels)
        elif isinstance(iterations, int) and not isinstance(iterations, bool):
            iterations = (iterations,) * len(levels)
        iterations = tuple(iterations)
        if len(iterations) != len(levels) or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in iterations
        ):
            raise ValueError(
                f"iterations must be one int >= 0 or one per level ({len(levels)} levels {list(levels)}), "
                f"got {self.iterations!r}"
            )
        for name in ("learning_rate", "affine_learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number (voxels per step), got {value!r}")
        if (
            isinstance(self.affine_iterations, bool)
            or not isinstance(self.affine_iterations, int)
            or self.affine_iterations < 0
        ):
            raise ValueError(f"affine_iterations must be an int >= 0, got {self.affine_iterations!r}")
        if self.verbose not in (0, 1):
            raise ValueError(f"verbose must be 0 or 1, got {self.verbose!r}")
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "iterations", iterations)


@dataclass
class RegistrationResult:
    """The outcome of :func:`register_arrays`.

    Attributes:
        ddf: ``(*S, ndim)`` float32, the total displacement (prealignment included), voxels of the moving
            array (the fixed grid when the moving image was resampled onto it): fixed voxel ``p`` maps to
            ``p + ddf[p]``.
        warped: the moving image warped onto the fixed grid, shape of ``moving``.
        warped_label: the moving label warped likewise (linear, soft values), or None.
        velocity: ``(*S, ndim)`` the optimised velocity field for ``model="dvf"`` (voxels per unit time), else None.
        affine_ddf: ``(*S, ndim)`` the prealignment that was composed (affine stage or given), else None.
        history: one dict per stage: ``{"stage", "factor", "shape", "iterations", "seconds", "loss": [...],
            "terms": {log name: [...]}}`` with the loss per iteration.
        seconds: wall time of the whole optimisation.
        folding_fraction: fraction of voxels with ``det J <= 0`` of the total field (central differences).
    """

    ddf: np.ndarray
    warped: np.ndarray
    warped_label: Optional[np.ndarray]
    velocity: Optional[np.ndarray]
    affine_ddf: Optional[np.ndarray]
    history: List[Dict[str, Any]]
    seconds: float
    folding_fraction: float


def _inside(ddf):
    """``(B, *S)`` float32: 1 where ``p + ddf(p)`` lies inside the grid ``[0, d - 1]`` on every axis, else 0."""
    ndim = ddf.shape[-1]
    inside = None
    for a in range(ndim):
        d = ddf.shape[a + 1]
        ramp = ops.reshape(ops.arange(d, dtype="float32"), (-1,) + (1,) * (ndim - 1 - a))
        x = ddf[..., a] + ramp
        ok = ops.logical_and(x >= 0.0, x <= float(d - 1))
        inside = ok if inside is None else ops.logical_and(inside, ok)
    return ops.cast(inside, "float32")


class _MaskedPairMixin:
    """Adds masks and a prealignment to a registration model (module docstring); logs only the losses."""

    def _metric_names(self):
        return []

    def _update_metrics(self, x, y_pred):
        pass

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        u, outputs = self.predict_field(inputs, training=training)
        outputs = dict(outputs)
        outputs["ddf"] = u
        total = u
        if "prealignment" in inputs:
            # a(p + u(p)): the prealignment sampled where the optimised field sends each voxel
            total = u + warp(inputs["prealignment"], u, boundary="replicate")
        moving = ops.cast(inputs["moving_image"], "float32")
        warped = warp(moving, total)
        fixed = ops.cast(inputs["fixed_image"], "float32")
        # Voxels whose sample leaves the moving image are left out (as ITK's metrics do): with the zero
        # boundary they would compare the fixed image with 0, and a border pushed 0.05 voxel outwards
        # would already dominate the loss.
        mask = _inside(total)
        if "moving_mask" in inputs:
            mask = mask * warp(ops.cast(inputs["moving_mask"], "float32"), total)
        if "fixed_mask" in inputs:
            mask = mask * ops.cast(inputs["fixed_mask"], "float32")
        if len(warped.shape) == len(mask.shape) + 1:
            mask = ops.expand_dims(mask, -1)
        warped = warped * mask
        fixed = fixed * mask
        outputs["pred_fixed_image"] = warped
        outputs["masked_fixed_image"] = fixed
        if self._has_labels(inputs):
            outputs["pred_fixed_label"] = warp(ops.cast(inputs["moving_label"], "float32"), total)
        outputs["total_ddf"] = total
        return outputs


class _PairDDF(_MaskedPairMixin, DDFModel):
    loss_inputs = dict(DDFModel.loss_inputs, image=("masked_fixed_image", "pred_fixed_image"))

    @classmethod
    def output_names(cls, labeled):
        return tuple(super().output_names(labeled)) + ("masked_fixed_image", "total_ddf")


class _PairDVF(_MaskedPairMixin, DVFModel):
    loss_inputs = dict(DVFModel.loss_inputs, image=("masked_fixed_image", "pred_fixed_image"))

    @classmethod
    def output_names(cls, labeled):
        return tuple(super().output_names(labeled)) + ("masked_fixed_image", "total_ddf")


def _as_spatial(name: str, array: Optional[np.ndarray], shape: Optional[Tuple[int, ...]], allow_channels: bool):
    if array is None:
        return None
    array = np.asarray(array, dtype=np.float32)
    if shape is not None:
        ok = array.shape == shape or (allow_channels and array.ndim == len(shape) + 1 and array.shape[:-1] == shape)
        if not ok:
            extra = " (optionally with a trailing channel axis)" if allow_channels else ""
            raise ValueError(f"{name} must have the fixed image's shape {shape}{extra}, got {array.shape}")
    bad = int(np.sum(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} has {bad} NaN/infinite values")
    return array


def level_shape(shape: Sequence[int], factor: int) -> Tuple[int, ...]:
    """The grid of a pyramid level: ``ceil(d / factor)`` voxels per axis (at least 1)."""
    return tuple(max(1, int(math.ceil(d / factor))) for d in shape)


def resize_field(field_array, shape: Sequence[int]):
    """Resize a field ``(1, *S, ndim)`` in voxels onto the grid ``shape``, scaling component ``a`` by
    ``shape[a] / S[a]`` (half-pixel centres, as :func:`tfreg.ops.resize.resize`), so that it describes
    the same physical displacement."""
    old = tuple(field_array.shape[1:-1])
    shape = tuple(shape)
    if old == shape:
        return field_array
    scale = ops.convert_to_tensor(np.asarray([n / o for n, o in zip(shape, old)], dtype=np.float32))
    return resize(field_array, shape) * scale


def _downsample(x, factor: int, shape: Tuple[int, ...], smooth: bool):
    """``(1, *S[, C])`` -> ``(1, *shape[, C])``: Gaussian smoothing (sigma ``factor / 2`` voxels) then resize."""
    if factor == 1:
        return x
    squeeze = len(x.shape) == len(shape) + 1
    if squeeze:
        x = ops.expand_dims(x, -1)
    if smooth:
        x = gaussian_smooth(x, 0.5 * factor, boundary="replicate")
    x = resize(x, shape)
    return ops.squeeze(x, -1) if squeeze else x


class _History(keras.callbacks.Callback):
    """Records each iteration's loss terms and shows a progress bar.

    The stage is one Keras epoch of ``iterations`` steps (one epoch per step costs Keras' epoch set-up,
    about 60 ms, every step). The logs of step ``k`` are the means over steps ``1..k``, so the value of
    step ``k`` is recovered as ``k m_k - (k - 1) m_(k-1)`` (in float64 from float32 means: about 1e-7 of
    ``k`` times the loss' size).
    """

    def __init__(self, iterations: int, label: str, verbose: int):
        super().__init__()
        self.values: Dict[str, List[float]] = {}
        self._means: Dict[str, float] = {}
        self.bar = None if not verbose else keras.utils.Progbar(iterations, verbose=verbose, unit_name="iteration")
        self.label = label
        self.verbose = verbose
        self.non_finite = None

    def on_train_begin(self, logs=None):
        if self.verbose:
            print(self.label)

    def on_train_batch_end(self, batch, logs=None):
        k = batch + 1
        current = {}
        for key, mean in (logs or {}).items():
            mean = float(mean)
            current[key] = k * mean - (k - 1) * self._means.get(key, 0.0)
            self._means[key] = mean
            self.values.setdefault(key, []).append(current[key])
        if not math.isfinite(current.get("loss", 0.0)):
            self.non_finite = k
            self.model.stop_training = True
        if self.bar is not None:
            shown = [(key, value) for key, value in current.items() if not key.endswith("_weighted")]
            self.bar.stateful_metrics = set(key for key, _ in shown)
            self.bar.update(k, values=shown)


def _run_stage(model, inputs: Dict[str, np.ndarray], iterations: int, learning_rate: float, label: str, verbose: int):
    """Optimise ``model`` on the one batch ``inputs`` for ``iterations`` Adam steps; returns the history dict."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate))
    # Creating Adam's slots before fit: a tf.function that creates variables on its first call is traced
    # twice, and tracing the step is most of a level's fixed cost.
    model.optimizer.build(model.trainable_variables)
    history = _History(iterations, label, verbose)
    start = time.perf_counter()
    if iterations > 0:

        def batches():
            while True:
                yield (inputs,)

        model.fit(batches(), steps_per_epoch=iterations, epochs=1, verbose=0, callbacks=[history], shuffle=False)
    seconds = time.perf_counter() - start
    if history.non_finite is not None:
        raise FloatingPointError(
            f"{label}: the loss became NaN/infinite at iteration {history.non_finite}; lower the learning rate "
            f"({learning_rate}) or check the images and the loss settings"
        )
    terms = {k: v for k, v in history.values.items() if k != "loss"}
    return {"loss": history.values.get("loss", []), "terms": terms, "seconds": seconds}


def _build(shape, labeled: bool, backbone: Dict[str, Any], loss, model_name: str):
    """The pair model (``ddf`` or ``dvf``) on the grid ``shape`` with a ``field`` backbone of ``backbone``'s options."""
    cls = _PairDVF if model_name == "dvf" else _PairDDF
    config = {"backbone": dict(backbone, name="field"), "loss": loss}
    return cls(moving_image_size=shape, fixed_image_size=shape, labeled=labeled, config=config)


def _scaled(value, scale: Sequence[float]):
    """A per-axis length in full-resolution voxels expressed in voxels of a level (``value / scale``)."""
    if value is None:
        return None
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(scale),))
    return [max(float(v) / s, 1e-3) for v, s in zip(values, scale)]


def register_arrays(
    fixed: np.ndarray,
    moving: np.ndarray,
    settings: Optional[OptimisationSettings] = None,
    fixed_label: Optional[np.ndarray] = None,
    moving_label: Optional[np.ndarray] = None,
    fixed_mask: Optional[np.ndarray] = None,
    moving_mask: Optional[np.ndarray] = None,
    prealignment: Optional[np.ndarray] = None,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` by instance optimisation (module docstring).

    Args:
        fixed: ``(*S)`` or ``(*S, C)`` fixed image, ``S`` 2-D or 3-D, any intensity unit.
        moving: the moving image on the same grid (resample it onto the fixed grid first; see
            :func:`tfreg.registration.files.register_files`), same shape as ``fixed``.
        settings: :class:`OptimisationSettings` (default: mono-modal LNCC, pyramid 4-2-1).
        fixed_label, moving_label: ``(*S)`` or ``(*S, L)`` labels in [0, 1] for label losses (both or neither).
        fixed_mask, moving_mask: ``(*S)`` masks in [0, 1] restricting the image losses (module docstring).
        prealignment: ``(*S, ndim)`` DDF (voxels) composed after the optimised field, e.g. a network's
            prediction; combined with an affine stage it is refused (give one or the other).

    Returns:
        a :class:`RegistrationResult`.

    Raises:
        ValueError: shapes that differ, NaN values, labels given for one image only, a loss that needs
            labels without labels, settings out of range. FloatingPointError: the loss became NaN.
    """
    settings = settings or OptimisationSettings()
    fixed = _as_spatial("fixed", fixed, None, True)
    if fixed.ndim not in (2, 3, 4):
        raise ValueError(
            f"fixed must be (*spatial) or (*spatial, channels) with 2 or 3 spatial axes, got {fixed.shape}"
        )
    moving = _as_spatial("moving", moving, None, True)
    if moving.shape != fixed.shape:
        raise ValueError(
            f"moving {moving.shape} and fixed {fixed.shape} must have the same shape (resample the moving image onto "
            "the fixed grid first); images of different dimensionality cannot be registered"
        )
    # 4-D arrays are (*S, C) 3-D images; 3-D arrays are 3-D images (a 2-D image with channels is ambiguous
    # with a 3-D volume, so 2-D images carry no channel axis here)
    spatial = fixed.shape if fixed.ndim <= 3 else fixed.shape[:-1]
    ndim = len(spatial)
    if (fixed_label is None) != (moving_label is None):
        raise ValueError("give both fixed_label and moving_label, or neither")
    fixed_label = _as_spatial("fixed_label", fixed_label, spatial, True)
    moving_label = _as_spatial("moving_label", moving_label, spatial, True)
    if fixed_label is not None and fixed_label.shape != moving_label.shape:
        raise ValueError(
            f"fixed_label {fixed_label.shape} and moving_label {moving_label.shape} must have the same shape"
        )
    fixed_mask = _as_spatial("fixed_mask", fixed_mask, spatial, False)
    moving_mask = _as_spatial("moving_mask", moving_mask, spatial, False)
    if prealignment is not None:
        prealignment = _as_spatial("prealignment", prealignment, spatial + (ndim,), False)
        if settings.affine_iterations:
            raise ValueError("give a prealignment or an affine stage (affine_iterations > 0), not both")
    labeled = fixed_label is not None
    if not labeled and settings.loss.get("label") is not None:
        raise ValueError("loss.label needs labels: give fixed_label and moving_label, or remove loss.label")
    keras.utils.set_random_seed(settings.seed)

    def full_inputs():
        x = {"fixed_image": fixed[None], "moving_image": moving[None]}
        if labeled:
            x["fixed_label"], x["moving_label"] = fixed_label[None], moving_label[None]
        if fixed_mask is not None:
            x["fixed_mask"] = fixed_mask[None]
        if moving_mask is not None:
            x["moving_mask"] = moving_mask[None]
        return {k: ops.convert_to_tensor(v) for k, v in x.items()}

    full = full_inputs()
    start = time.perf_counter()
    history: List[Dict[str, Any]] = []
    coarsest = settings.levels[0]
    pre = None if prealignment is None else ops.convert_to_tensor(prealignment[None])

    def level_inputs(factor: int, shape):
        x = {}
        for key, value in full.items():
            smooth = key in ("fixed_image", "moving_image")
            x[key] = _downsample(value, factor, shape, smooth)
        if pre is not None:
            x["prealignment"] = resize_field(pre, shape)
        return {k: np.asarray(ops.convert_to_numpy(v)) for k, v in x.items()}

    if settings.affine_iterations:
        shape = level_shape(spatial, coarsest)
        loss = settings.affine_loss or {k: v for k, v in settings.loss.items() if k != "regularization"}
        model = _build(shape, labeled, {"transform": "affine"}, loss, "ddf")
        label = f"affine stage: level 1/{coarsest} {list(shape)}"
        record = _run_stage(
            model,
            level_inputs(coarsest, shape),
            settings.affine_iterations,
            settings.affine_learning_rate,
            label,
            settings.verbose,
        )
        history.append(
            dict(record, stage="affine", factor=coarsest, shape=shape, iterations=settings.affine_iterations)
        )
        pre = affine_field_on(model.backbone, spatial)

    current = None  # the optimised field (ddf or velocity) of the previous level, (1, *shape, ndim)
    for factor, iterations in zip(settings.levels, settings.iterations):
        shape = level_shape(spatial, factor)
        scale = [d / s for d, s in zip(spatial, shape)]
        backbone = {
            "transform": "dense",
            "control_point_spacing": _scaled(settings.control_points, scale),
            "smoothing_sigma": _scaled(settings.smoothing_sigma, scale),
        }
        model = _build(shape, labeled, backbone, settings.loss, settings.model)
        if current is not None:
            model.backbone.set_initial(np.asarray(ops.convert_to_numpy(resize_field(current, shape))))
        label = f"{settings.model} level 1/{factor} {list(shape)}"
        record = _run_stage(
            model, level_inputs(factor, shape), iterations, settings.learning_rate, label, settings.verbose
        )
        history.append(dict(record, stage=settings.model, factor=factor, shape=shape, iterations=iterations))
        current = model.backbone.field()

    # the final field at full resolution
    optimised = resize_field(current, spatial)
    velocity = None
    if settings.model == "dvf":
        from tfreg.ops.integrate import integrate_dvf

        velocity = optimised
        optimised = integrate_dvf(optimised)
    total = optimised if pre is None else optimised + warp(pre, optimised, boundary="replicate")
    warped = warp(full["moving_image"], total)
    warped_label = warp(full["moving_label"], total) if labeled else None
    det = jacobian_determinant(total)
    folding = float(np.mean(np.asarray(ops.convert_to_numpy(det)) <= 0))
    seconds = time.perf_counter() - start

    def numpy(x):
        return None if x is None else np.asarray(ops.convert_to_numpy(x))[0].astype(np.float32)

    return RegistrationResult(
        ddf=numpy(total),
        warped=numpy(warped),
        warped_label=numpy(warped_label),
        velocity=numpy(velocity),
        affine_ddf=numpy(pre) if (settings.affine_iterations or prealignment is not None) else None,
        history=history,
        seconds=seconds,
        folding_fraction=folding,
    )


def affine_field_on(backbone, shape: Sequence[int]):
    """The affine stage's transform (a ``field`` backbone with ``transform: affine``, optimised on a coarser
    grid) evaluated exactly on the full grid ``shape``: ``(1, *shape, ndim)`` voxels of that grid.

    With the half-pixel correspondence of :func:`resize_field` (scale ``s = D / d`` per axis), a level's
    normalised coordinate ``(p - c) / h`` equals the full grid's times ``h_full / (s h)``, and displacement
    component ``b`` scales by ``s_b``; the linear part and translation are rescaled accordingly.
    """
    small = tuple(backbone.image_size)
    shape = tuple(shape)
    scale = np.asarray([n / o for n, o in zip(shape, small)], dtype=np.float64)
    half_small = np.asarray([max((d - 1) / 2.0, 1.0) for d in small])
    half_full = np.asarray([max((d - 1) / 2.0, 1.0) for d in shape])
    linear = np.asarray(ops.convert_to_numpy(backbone.linear), dtype=np.float64)
    translation = np.asarray(ops.convert_to_numpy(backbone.translation), dtype=np.float64)
    linear_full = linear * (half_full / (scale * half_small))[:, None] * scale[None, :]
    translation_full = translation * scale
    grids = np.meshgrid(*[(np.arange(d) - (d - 1) / 2.0) / h for d, h in zip(shape, half_full)], indexing="ij")
    coords = np.stack(grids, -1)
    out = coords @ linear_full + translation_full
    return ops.convert_to_tensor(out[None].astype(np.float32))


__all__ = [
    "OptimisationSettings",
    "RegistrationResult",
    "register_arrays",
    "level_shape",
    "resize_field",
    "affine_field_on",
    "FIELD_MODELS",
    "DEFAULT_LOSS",
]
