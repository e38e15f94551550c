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

Models own their part of the config and their loss wiring, so that a new method is a new class, not an
edit of the engine or the config validator:

- ``loss_inputs`` (class attribute): per loss category, the tensor names its losses are called on
  (``image: (fixed_image, pred_fixed_image)``); a composite model adds categories by overriding it;
- ``config_keys`` / ``required_config_keys``: the ``train`` keys the model reads, checked by
  :meth:`RegistrationModel.validate_train_config` (called by :func:`tfreg.config.validate_config`);
- ``optional_outputs``: outputs computed only when a configured loss asks for them (``ddf_backward``);
- :meth:`RegistrationModel.build_networks`: builds the sub-networks (public, so subclasses extend it).
"""

import copy
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
from keras import ops

from tfreg.label_threshold import LABEL_THRESHOLD, binarise
from tfreg.layers.control_points import ControlPointBackbone
from tfreg.loss_inputs import declared_inputs
from tfreg.losses.base import EPS
from tfreg.models.loss_config import build_losses
from tfreg.models.loss_wiring import call_loss, lookup, resolve_inputs
from tfreg.ops.grid import _check_shape, get_reference_grid
from tfreg.ops.resize import resize
from tfreg.registry import BACKBONE_CLASS, REGISTRY

logger = logging.getLogger(__name__)


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

    #: loss category -> the tensor names (inputs or outputs) its losses are called on, positionally
    loss_inputs: Dict[str, Tuple[str, ...]] = {
        "image": ("fixed_image", "pred_fixed_image"),
        "label": ("fixed_label", "pred_fixed_label"),
        "regularization": ("ddf",),
    }
    #: other names a loss' extra inputs may use (see :mod:`tfreg.models.loss_wiring` for where masks live)
    tensor_aliases: Dict[str, str] = {
        "moving": "moving_label",
        "fixed": "fixed_label",
        "warped_moving": "pred_fixed_label",
    }
    #: outputs that :meth:`call` computes only when a configured loss asks for them
    optional_outputs: Tuple[str, ...] = ()
    #: further outputs ``tfreg_predict`` writes as images, once per pair: name -> the grid they live on
    #: (``"moving"`` or ``"fixed"``); e.g. WSSAMNet's segmentations and attention maps
    prediction_images: Dict[str, str] = {}
    #: probability outputs ``tfreg_predict`` turns into binary masks (:meth:`label_masks`) and scores per
    #: label (Dice, HD95): output name -> the input label it is compared with (``"moving_label"`` or
    #: ``"fixed_label"``); each must also be in ``prediction_images`` (its grid). Empty: nothing is scored.
    prediction_label_maps: Dict[str, str] = {}
    #: categories a config may carry that this model skips with a warning (DeepReg's conditional model
    #: ignored its image and regularization losses)
    ignored_loss_categories: Tuple[str, ...] = ()
    #: ``train`` keys this model reads (the engine's own keys are listed in tfreg.config.defaults)
    config_keys: Tuple[str, ...] = ("backbone", "loss")
    #: the subset of ``config_keys`` that must be present
    required_config_keys: Tuple[str, ...] = ("backbone", "loss")
    #: defaults injected into the backbone config (setdefault)
    backbone_defaults: Dict[str, Any] = {}
    #: whether ``backbone.control_points`` applies: the backbone's output is a dense displacement or velocity
    #: field that the model warps with (DeepReg's ``ddf`` and ``dvf``)
    supports_control_points: bool = False
    #: keys of ``train.backbone`` that the model takes out before building the backbone (``_build_backbone``);
    #: the config check accepts them beside the backbone's own arguments
    backbone_model_keys: Tuple[str, ...] = ("control_points",)

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
        # plain containers first: a model's own (Keras-tracked) config would deep-copy that whole model
        config = copy.deepcopy(plain_config(config)) if config is not None else {}
        if not isinstance(config, dict):
            raise ValueError(f"config must be the train section as a dict, got {config!r}")
        if backbone is not None:
            config["backbone"] = backbone
        if loss is not None:
            config["loss"] = loss
        self.config = config
        self.registry = registry or REGISTRY
        #: multiplies the total loss; the engine sets ``1 / replicas`` under a ``tf.distribute`` strategy
        self.replica_loss_scale = 1.0
        self._check_labels()
        self.build_networks(config)
        self.weighted_losses = build_losses(
            self._loss_section(config.get("loss")),
            tuple(self.loss_inputs),
            registry=self.registry,
            usable=self.active_categories(),
            owner=f"model {type(self).__name__}",
        )
        self.requested_outputs = self._check_loss_wiring()
        self._build_trackers()

    # ------------------------------------------------------------------ the model's contract, per class
    @classmethod
    def input_names(cls, labeled: bool) -> Tuple[str, ...]:
        """Names of the input dict's tensors (labels only when ``labeled``)."""
        names = ("moving_image", "fixed_image", "indices")
        return names + (("moving_label", "fixed_label") if labeled else ())

    @classmethod
    def output_names(cls, labeled: bool) -> Tuple[str, ...]:
        """Names of the output dict's tensors that :meth:`call` always returns for such data."""
        return ("ddf", "pred_fixed_image") + (("pred_fixed_label",) if labeled else ())

    @classmethod
    def tensor_names(cls, labeled: bool) -> Tuple[str, ...]:
        """Every name a loss may be wired to: inputs, outputs, optional outputs and usable aliases."""
        names = cls.input_names(labeled) + cls.output_names(labeled) + tuple(cls.optional_outputs)
        return names + tuple(a for a, target in cls.tensor_aliases.items() if target in names)

    @classmethod
    def usable_categories(cls, labeled: bool) -> Tuple[str, ...]:
        """The loss categories whose tensors exist for such data (``label`` needs labels)."""
        names = cls.tensor_names(labeled)
        return tuple(c for c, args in cls.loss_inputs.items() if all(a in names for a in args))

    def active_categories(self) -> Tuple[str, ...]:
        """The loss categories this built model computes (default :meth:`usable_categories`); a model whose
        networks leave a category without tensors (e.g. frozen segmenters: no ``segmentation`` pair) drops it,
        so that its absence from the config is not reported as a missing loss."""
        return self.usable_categories(self.labeled)

    @classmethod
    def data_arguments(cls, loader) -> Dict[str, Any]:
        """Constructor arguments read from the training data, which :func:`tfreg.engine.build.build_model`
        adds to the sizes it passes (e.g. the segmentation model's ``label_count``); none here.

        Args:
            loader: the training :class:`~tfreg.data.loaders.base.DataLoader` (``labeled``, ``num_labels``,
                image shapes), read without loading images.
        """
        return {}

    @classmethod
    def label_categories(cls, train: Dict[str, Any]) -> Tuple[str, ...]:
        """The loss categories whose tensors hold the data's label channels (one per sample unless
        ``dataset.sample_label: stack``), so that a loss scoring every channel as a class is checked against
        the data's labels (:mod:`tfreg.loss_inputs`); here ``label``. Composite models add theirs.

        Args:
            train: the ``train`` section (e.g. what a model's segmenters learn).
        """
        return tuple(c for c in ("label",) if c in cls.loss_inputs)

    @classmethod
    def validate_train_config(cls, checker, train: Dict[str, Any], labeled: Optional[bool], method: str) -> None:
        """Report problems of the ``train`` keys this model reads through ``checker`` (before anything is built).

        Args:
            checker: :class:`tfreg.config.validate.ConfigChecker`: ``error(path, message)``,
                ``registered(path, value, category)``, ``mapping(node, path, key)``, ``check_loss(...)``.
            train: the ``train`` section.
            labeled: ``dataset.train.labeled`` (None when unknown).
            method: the registered name, for messages.
        """
        # the checker reports missing ``required_config_keys`` itself
        base = ("train",)
        if "backbone" in cls.config_keys and "backbone" in train:
            checker.check_component(
                base + ("backbone",), train["backbone"], BACKBONE_CLASS, model_keys=cls.backbone_model_keys
            )
        if "loss" in cls.config_keys and train.get("loss") is not None:
            names = cls.tensor_names(bool(labeled)) if labeled is not None else cls.tensor_names(True)
            checker.check_loss(
                train["loss"],
                tuple(cls.loss_inputs),
                names,
                f"method {method!r}",
                ignored=cls.ignored_loss_categories,
                label_categories=cls.label_categories(train),
            )

    @classmethod
    def parameter_group_names(cls) -> Tuple[str, ...]:
        """Names of :meth:`parameter_groups`, for config checks before the model exists."""
        return ("registration",)

    def parameter_groups(self) -> Dict[str, list]:
        """``{group: trainable variables}`` that a trainer with several optimizers steps separately;
        here one group, ``registration``, of every trainable variable. Composite models return one
        group per sub-network (e.g. ``registration`` and ``segmentation``)."""
        return {"registration": self.trainable_variables}

    # ------------------------------------------------------------------ construction
    def _check_labels(self):
        pass

    def build_networks(self, config: Dict[str, Any]) -> None:
        """Build the sub-networks from the ``train`` section: here ``self.backbone``; composite models
        extend this (``super().build_networks(config)`` then their own, e.g. ``self.segmenter``)."""
        self.backbone = self._build_backbone(config.get("backbone"))

    def _loss_section(self, section):
        """``section`` without the :attr:`ignored_loss_categories` (each skipped with a warning)."""
        if not isinstance(section, dict):
            return section
        for category in self.ignored_loss_categories:
            if section.get(category) is not None:
                logger.warning(
                    "loss.%s is not used by model %s (it has the categories %s): skipped",
                    category,
                    type(self).__name__,
                    list(self.loss_inputs),
                )
        return {k: v for k, v in section.items() if k not in self.ignored_loss_categories}

    def _check_loss_wiring(self) -> Tuple[str, ...]:
        """ValueError for a loss wired to a tensor this model does not produce; returns the optional
        outputs that the losses request."""
        names = self.tensor_names(self.labeled)
        requested = []
        for wl in self.weighted_losses:
            for key, source in wl.inputs.items():
                if source.name not in names:
                    raise ValueError(
                        f"{wl.log_name}: input {key!r} comes from {source.name!r}, which model "
                        f"{type(self).__name__} does not produce for {'labeled' if self.labeled else 'unlabeled'} "
                        f"data; available: {sorted(names)}"
                    )
                target = self.tensor_aliases.get(source.name, source.name)
                if target in self.optional_outputs and target not in requested:
                    requested.append(target)
        self._check_loss_shapes()
        return tuple(requested)

    def _check_loss_shapes(self) -> None:
        """Let each loss that defines ``check_input_shape(shape, ndim)`` (e.g. ``embedding``: its encoder's
        input) refuse the shape of the tensor it is called on, now rather than at the first training step.

        The shape is that of the category's first tensor (:meth:`tensor_shape`); unknown shapes are not checked.
        """
        for wl in self.weighted_losses:
            check = getattr(wl.loss, "check_input_shape", None)
            if not callable(check):
                continue
            name = self.loss_inputs[wl.category][0]
            shape = self.tensor_shape(name)
            if shape is None:
                continue
            try:
                check(shape, ndim=self.ndim)
            except ValueError as err:
                raise ValueError(f"{wl.log_name} (loss.{wl.category}, called on {name!r}): {err}") from None

    def tensor_shape(self, name: str) -> Optional[Tuple[int, ...]]:
        """The shape without the batch axis of the tensor ``name`` as the data pipeline gives it, or None.

        Images and labels are ``(*S)`` (DeepReg's layout, one label channel per sample) on the moving or fixed
        grid; the warped moving image and label live on the fixed grid; ``ddf``/``dvf``/``ddf_backward`` are
        ``(*fixed, ndim)``. Other names (a subclass' own outputs) are None unless the subclass says otherwise.
        """
        name = self.tensor_aliases.get(name, name)
        if name in ("moving_image", "moving_label"):
            return tuple(self.moving_image_size)
        if name in ("fixed_image", "fixed_label", "pred_fixed_image", "pred_fixed_label"):
            return tuple(self.fixed_image_size)
        if name in ("ddf", "dvf", "ddf_backward"):
            return tuple(self.fixed_image_size) + (self.ndim,)
        return None

    def _build_backbone(self, cfg):
        if cfg is None:
            raise ValueError("config['backbone'] (or backbone=) is required, e.g. {'name': 'local', ...}")
        if isinstance(cfg, keras.layers.Layer):
            return cfg
        if not isinstance(cfg, dict):
            raise ValueError(f"backbone must be a dict {{name, ...}} or a Keras layer, got {cfg!r}")
        cfg = dict(cfg)
        spacing = cfg.pop("control_points", None)
        if spacing is not None and not self.supports_control_points:
            raise ValueError(
                f"backbone.control_points applies to models whose backbone predicts a dense displacement or velocity "
                f"field (ddf, dvf), not to {type(self).__name__}"
            )
        defaults = dict(image_size=self.fixed_image_size, out_channels=self.ndim)
        defaults.update(self.backbone_defaults)
        backbone = self.registry.build_backbone(config=cfg, default_args=defaults)
        if spacing is None:
            return backbone
        return ControlPointBackbone(backbone, spacing, name=f"{backbone.name}_control_points")

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

    def loss_total(self, x, y_pred, categories: Optional[Sequence[str]] = None):
        """``sum(weight * mean over the batch(loss))`` over the configured losses, updating the logged metrics.

        Args:
            x: the input dict; y_pred: the output dict of :meth:`call`.
            categories: only the losses of these categories (a trainer's phase); None: all.

        Returns:
            scalar float32. A category whose tensors this batch lacks (``label`` without labels) is
            skipped; a wired extra input that the batch lacks is a ValueError.
        """
        total = ops.convert_to_tensor(0.0, "float32")
        for wl in self.weighted_losses:
            if categories is not None and wl.category not in categories:
                continue
            args = [lookup(n, x, y_pred, {}) for n in self.loss_inputs[wl.category]]
            if any(a is None for a in args):
                continue
            args = [ops.cast(a, "float32") for a in args]
            specs = {spec.name: spec for spec in declared_inputs(type(wl.loss))}
            kwargs = resolve_inputs(wl.inputs, specs, args[0], x, y_pred, self.tensor_aliases, self.ndim, wl.log_name)
            value = ops.mean(ops.cast(call_loss(wl.loss, args, kwargs), "float32"))
            weighted = wl.weight * value
            self._track(wl.log_name, value)
            self._track(wl.weighted_log_name, weighted)
            total = total + weighted
        return total

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True, categories=None):
        """The total of :meth:`loss_total` (plus any ``self.losses`` added by layers), times
        ``replica_loss_scale``; updates the logged metrics.

        Args:
            x: the input dict; y: unused (targets live in ``x``); y_pred: the output dict of :meth:`call`.
            categories: only the losses of these categories (a trainer's phase); None (Keras): all.

        Returns:
            scalar float32. Under a ``tf.distribute`` strategy each replica sees its share of the batch and
            the optimizer sums the replicas' gradients, so the engine sets ``replica_loss_scale = 1 /
            replicas`` (:meth:`set_replicas`), making the step that of the global batch mean (what Keras'
            own losses do). A user running ``fit`` under a strategy by hand calls ``set_replicas`` too.
        """
        total = self.loss_total(x, y_pred, categories)
        self._update_metrics(x, y_pred)
        extra = self.losses
        if extra:
            total = total + ops.sum(ops.stack([ops.cast(l, "float32") for l in extra]))
        return total * self.replica_loss_scale

    def set_replicas(self, count: int) -> None:
        """Scale the loss for ``count`` replicas in sync (1: no scaling)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1 (replicas in sync), got {count!r}")
        self.replica_loss_scale = 1.0 / count

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
            self._track(
                "metric/TRE",
                ops.mean(target_registration_error(x["fixed_label"], y_pred["pred_fixed_label"], ndim=self.ndim)),
            )

    def exported_models(self) -> Dict[str, keras.Model]:
        """Sub-networks to save as standalone Keras models: ``{name: keras.Model}``, none here.

        The engine's checkpoint saver (:class:`tfreg.engine.checkpoint.CheckpointSaver`) writes each as
        ``save/<name>.keras`` (atomically) whenever it writes a checkpoint, e.g. the label auto-encoder's
        ``encoder``, which the ``embedding`` loss loads. Names are file names: letters, digits and ``_``.
        """
        return {}

    def label_masks(self, name: str, probabilities):
        """Binary masks from a :attr:`prediction_label_maps` output, one channel per label channel of the data.

        Args:
            name: the output's name (a key of :attr:`prediction_label_maps`).
            probabilities: that output, ``(B, *S, K)``.

        Returns:
            ``(B, *S, L)`` bool, channel ``c`` the prediction of the data's label channel ``c``. Models that
            declare :attr:`prediction_label_maps` implement it (the head decides: threshold, argmax ...).
        """
        raise NotImplementedError(
            f"{type(self).__name__} declares prediction_label_maps {sorted(self.prediction_label_maps)} but does "
            "not implement label_masks()"
        )

    def get_config(self) -> dict:
        return dict(
            name=self.name,
            moving_image_size=list(self.moving_image_size),
            fixed_image_size=list(self.fixed_image_size),
            index_size=self.index_size,
            labeled=self.labeled,
            batch_size=self.batch_size,
            config=plain_config(self.config)
            if not isinstance(self.config.get("backbone"), keras.layers.Layer)
            else None,
        )


def plain_config(value):
    """``value`` with plain dicts and lists: Keras wraps a model's dict and list attributes in tracking
    containers, whose deep copy (done by the constructor on ``from_config``) would copy the whole model."""
    if isinstance(value, dict):
        return {k: plain_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_config(v) for v in value]
    return value


def label_centroid(label, threshold: float = LABEL_THRESHOLD):
    """Centroid of ``label >= threshold`` per sample, voxels: ``(B, *S)`` -> ``(B, ndim)``."""
    label = ops.cast(label, "float32")
    shape = tuple(label.shape[1:])
    mask = ops.cast(binarise(label, threshold), "float32")
    grid = get_reference_grid(shape)  # (*S, ndim)
    axes = tuple(range(1, len(shape) + 1))
    num = ops.sum(ops.expand_dims(mask, -1) * grid, axis=axes)
    den = ops.sum(mask, axis=axes)
    return num / (ops.expand_dims(den, -1) + EPS)


def target_registration_error(
    fixed_label, pred_fixed_label, threshold: float = LABEL_THRESHOLD, ndim: Optional[int] = None
):
    """DeepReg's ``metric/TRE``: distance between label centroids, fixed voxels, ``(B,)``.

    Labels are ``(B, *S)``; with ``ndim`` given, ``(B, *S, L)`` (every label channel of a sample, ``sample_label:
    stack``) gives the mean over the ``L`` channels of each channel's centroid distance.
    """
    if ndim is not None and len(fixed_label.shape) == ndim + 2:
        count = fixed_label.shape[-1]
        spatial = tuple(fixed_label.shape[1:-1])
        perm = (0, ndim + 1) + tuple(range(1, ndim + 1))

        def per_channel(label):  # (B, *S, L) -> (B * L, *S)
            return ops.reshape(ops.transpose(label, perm), (-1,) + spatial)

        errors = target_registration_error(per_channel(fixed_label), per_channel(pred_fixed_label), threshold)
        return ops.mean(ops.reshape(errors, (-1, count)), axis=-1)
    diff = label_centroid(fixed_label, threshold) - label_centroid(pred_fixed_label, threshold)
    return ops.sqrt(ops.sum(ops.square(diff), axis=-1) + 1e-12)


__all__ = ["RegistrationModel", "label_centroid", "plain_config", "target_registration_error"]
