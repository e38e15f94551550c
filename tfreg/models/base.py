"""Registration models (DeepReg's ``RegistrationModel``) as ``keras.Model`` subclasses (``keras`` only).

Inputs are a dict: ``moving_image (B, *m)``, ``fixed_image (B, *f)``, ``indices (B, n)`` and, when
``labeled``, ``moving_label (B, *m)`` and ``fixed_label (B, *f)`` (images without a channel axis, as
DeepReg; 2-D or 3-D from ``len(fixed_image_size)``). The backbone sees ``concat[resize(moving -> f),
fixed]`` on the fixed grid; warping samples the ORIGINAL moving image at ``fixed grid + ddf`` (DDF in
moving voxels, ij(k) order).

Training works with plain ``model.compile(optimizer)`` + ``model.fit(dataset of input dicts)`` on every
Keras backend: losses and logged metrics are computed in :meth:`RegistrationModel.compute_loss`, which
Keras' default ``train_step``/``test_step`` call, and tracked with ``keras.metrics.Mean`` under DeepReg's
names (``loss/<category>_<LossName>``, ``..._weighted``, ``metric/...``; Keras adds ``val_`` in validation).
The total loss is ``sum(weight * mean over the batch(loss))``.
"""

import copy
from typing import Any, Dict, List, Optional, Sequence

import keras
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution

from tfreg.losses.base import EPS
from tfreg.models.loss_config import LOSS_CATEGORIES, build_losses
from tfreg.ops.grid import _check_shape, get_reference_grid
from tfreg.ops.resize import resize
from tfreg.registry import REGISTRY


def _with_channel(x):
    return ops.expand_dims(ops.cast(x, "float32"), -1)


class RegistrationModel(keras.Model):
    """Base of the registration models, DeepReg's constructor signature plus notebook keywords.

    Args:
        moving_image_size: spatial size of the moving image, 2 or 3 ints.
        fixed_image_size: spatial size of the fixed image (same length).
        index_size: length of the ``indices`` input (DeepReg: 2 paired, 3 unpaired, 5 grouped).
        labeled: whether labels are used (label losses, ``pred_fixed_label``, ``metric/TRE``).
        batch_size: DeepReg's fixed batch size; informational here (any batch size works).
        config: DeepReg's ``train`` section: ``{"backbone": {name, ...}, "loss": {...}, ...}``.
        backbone: notebook alternative to ``config["backbone"]``: a config dict or a built backbone layer.
        loss: notebook alternative to ``config["loss"]``.
        registry: registry to build the backbone and losses from (default ``REGISTRY``).
        name: Keras model name.
    """

    #: loss categories the model uses
    loss_categories = LOSS_CATEGORIES
    #: defaults injected into the backbone config (setdefault)
    backbone_defaults: Dict[str, Any] = {}

    def __init__(
        self,
        moving_image_size: Sequence[int],
        fixed_image_size: Sequence[int],
        index_size: int = 1,
        labeled: bool = False,
        batch_size: Optional[int] = None,
        config: Optional[Dict] = None,
        backbone: Any = None,
        loss: Optional[Dict] = None,
        registry=None,
        name: str = "RegistrationModel",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.moving_image_size = _check_shape(moving_image_size, "moving_image_size")
        self.fixed_image_size = _check_shape(fixed_image_size, "fixed_image_size")
        if len(self.fixed_image_size) not in (2, 3) or len(self.moving_image_size) != len(self.fixed_image_size):
            raise ValueError(
                f"moving_image_size {moving_image_size!r} and fixed_image_size {fixed_image_size!r} must both have "
                "2 or 3 spatial sizes"
            )
        self.ndim = len(self.fixed_image_size)
        self.index_size = index_size
        self.labeled = bool(labeled)
        self.batch_size = batch_size
        config = copy.deepcopy(config) if config is not None else {}
        if not isinstance(config, dict):
            raise ValueError(f"config must be the train section as a dict, got {config!r}")
        if backbone is not None:
            config["backbone"] = backbone
        if loss is not None:
            config["loss"] = loss
        self.config = config
        self.registry = registry or REGISTRY
        self._check_labels()
        self.backbone = self._build_backbone(config.get("backbone"))
        categories = [c for c in self.loss_categories if c != "label" or self.labeled]
        self.weighted_losses = build_losses(config.get("loss"), categories, registry=self.registry)
        self._build_trackers()

    # ------------------------------------------------------------------ construction
    def _check_labels(self):
        pass

    def _build_backbone(self, cfg):
        if cfg is None:
            raise ValueError("config['backbone'] (or backbone=) is required, e.g. {'name': 'local', ...}")
        if isinstance(cfg, keras.layers.Layer):
            return cfg
        if not isinstance(cfg, dict):
            raise ValueError(f"backbone must be a dict {{name, ...}} or a Keras layer, got {cfg!r}")
        cfg = dict(cfg)
        if cfg.pop("control_points", None) is not None:
            raise ValueError("backbone.control_points is not supported yet by tfreg")
        defaults = dict(image_size=self.fixed_image_size, out_channels=self.ndim)
        defaults.update(self.backbone_defaults)
        return self.registry.build_backbone(config=cfg, default_args=defaults)

    def _metric_names(self) -> List[str]:
        names = []
        keys = ["moving_image", "fixed_image"]
        if self.labeled:
            keys += ["moving_label", "fixed_label"]
        keys += self.field_names()
        for key in keys:
            names += [f"metric/{key}_{s}" for s in ("mean", "min", "max")]
        if self.labeled:
            names.append("metric/TRE")
        return names

    def field_names(self) -> List[str]:
        """Output fields logged with mean/min/max (``["ddf"]``, ``["dvf", "ddf"]``, ``[]``)."""
        return ["ddf"]

    def _build_trackers(self):
        names = []
        for wl in self.weighted_losses:
            names += [wl.log_name, wl.weighted_log_name]
        names += self._metric_names()
        self.trackers = [keras.metrics.Mean(name=n) for n in names]
        self._tracker_index = {n: i for i, n in enumerate(names)}

    # ------------------------------------------------------------------ forward
    def backbone_input(self, inputs):
        """``(B, *f, 2)`` (or 3 with the moving label): ``concat[resize(moving -> f), fixed]``."""
        moving = resize(_with_channel(inputs["moving_image"]), self.fixed_image_size)
        return ops.concatenate([moving, _with_channel(inputs["fixed_image"])], axis=-1)

    def _check_inputs(self, inputs):
        if not isinstance(inputs, dict) or "moving_image" not in inputs or "fixed_image" not in inputs:
            raise ValueError("inputs must be a dict with moving_image and fixed_image (and indices, labels)")
        for key, size in (("moving_image", self.moving_image_size), ("fixed_image", self.fixed_image_size)):
            shape = tuple(inputs[key].shape[1:])
            if shape != size:
                raise ValueError(f"inputs[{key!r}] must have spatial shape {size}, got {shape}")

    def _has_labels(self, inputs) -> bool:
        return self.labeled and "moving_label" in inputs and "fixed_label" in inputs

    # ------------------------------------------------------------------ losses and metrics
    def _track(self, name, value):
        i = self._tracker_index.get(name)
        if i is not None:
            self.trackers[i].update_state(value)

    def _loss_inputs(self, category, x, y_pred):
        """``(args for the loss call)`` or None when the category does not apply to this batch."""
        if category == "image":
            return (ops.cast(x["fixed_image"], "float32"), y_pred["pred_fixed_image"])
        if category == "label":
            if not self._has_labels(x) or "pred_fixed_label" not in y_pred:
                return None
            return (ops.cast(x["fixed_label"], "float32"), y_pred["pred_fixed_label"])
        return (y_pred["ddf"],)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``sum(weight * mean(loss))`` over the configured losses, updating the logged metrics.

        Args:
            x: the input dict; y: unused (targets live in ``x``); y_pred: the output dict of :meth:`call`.

        Returns:
            scalar float32 total loss (plus any ``self.losses`` added by layers), divided by the number of
            replicas in sync under a ``tf.distribute`` strategy.
        """
        total = ops.convert_to_tensor(0.0, "float32")
        for wl in self.weighted_losses:
            args = self._loss_inputs(wl.category, x, y_pred)
            if args is None:
                continue
            value = ops.mean(ops.cast(wl.loss(*args), "float32"))
            weighted = wl.weight * value
            self._track(wl.log_name, value)
            self._track(wl.weighted_log_name, weighted)
            total = total + weighted
        self._update_metrics(x, y_pred)
        extra = self.losses
        if extra:
            total = total + ops.sum(ops.stack([ops.cast(l, "float32") for l in extra]))
        # Under tf.distribute each replica sees its share of the batch and the optimizer sums the
        # replicas' gradients: divide by the replica count so the step is that of the global batch
        # mean (what Keras' own losses do; a no-op on one device and on the other backends).
        return scale_loss_for_distribution(total)

    def _update_metrics(self, x, y_pred):
        fields = {"moving_image": x["moving_image"], "fixed_image": x["fixed_image"]}
        if self._has_labels(x):
            fields["moving_label"] = x["moving_label"]
            fields["fixed_label"] = x["fixed_label"]
        for key in self.field_names():
            if key in y_pred:
                fields[key] = y_pred[key]
        for key, value in fields.items():
            value = ops.cast(value, "float32")
            self._track(f"metric/{key}_mean", ops.mean(value))
            self._track(f"metric/{key}_min", ops.min(value))
            self._track(f"metric/{key}_max", ops.max(value))
        if self._has_labels(x) and "pred_fixed_label" in y_pred:
            self._track("metric/TRE", ops.mean(target_registration_error(x["fixed_label"], y_pred["pred_fixed_label"])))

    def get_config(self) -> dict:
        return dict(
            name=self.name,
            moving_image_size=list(self.moving_image_size),
            fixed_image_size=list(self.fixed_image_size),
            index_size=self.index_size,
            labeled=self.labeled,
            batch_size=self.batch_size,
            config=self.config if not isinstance(self.config.get("backbone"), keras.layers.Layer) else None,
        )


def label_centroid(label, threshold: float = 0.5):
    """Centroid of ``label >= threshold`` per sample, voxels: ``(B, *S)`` -> ``(B, ndim)``."""
    label = ops.cast(label, "float32")
    shape = tuple(label.shape[1:])
    mask = ops.cast(label >= threshold, "float32")
    grid = get_reference_grid(shape)  # (*S, ndim)
    axes = tuple(range(1, len(shape) + 1))
    num = ops.sum(ops.expand_dims(mask, -1) * grid, axis=axes)
    den = ops.sum(mask, axis=axes)
    return num / (ops.expand_dims(den, -1) + EPS)


def target_registration_error(fixed_label, pred_fixed_label, threshold: float = 0.5):
    """DeepReg's ``metric/TRE``: distance between label centroids, fixed voxels, ``(B,)``."""
    diff = label_centroid(fixed_label, threshold) - label_centroid(pred_fixed_label, threshold)
    return ops.sqrt(ops.sum(ops.square(diff), axis=-1) + 1e-12)


__all__ = ["RegistrationModel", "label_centroid", "target_registration_error"]
