"""The segmentation model (``train.method: segmentation``): a backbone and a ``1^n`` convolution head.

Trained with ``tfreg_train`` on DeepReg's data layouts (``unpaired``: ``images/`` + ``labels/``; also
``paired`` and ``grouped``), or from Python with ``model.compile(optimizer)`` + ``model.fit``, like the
registration models: it follows the :class:`~tfreg.models.base.RegistrationModel` contract (the same input
dict, losses named in a table, the model's own config keys). Each sample's images are segmented, by one
backbone and head (``segment: both``: the moving and fixed images are stacked along the batch, so a batch of
``B`` pairs trains on ``2B`` images; ``moving`` or ``fixed``: only those).

Backbones: ``unet_segmenter`` (WSSAMNet, He et al., macJNet by configuration) or ``multi_unets``
(WSSAMNet++), or any registered backbone mapping ``(B, *S, C)`` to features on the same grid.

Classes and labels (``train.head``):

- ``activation: sigmoid`` (default): binary or multi-label. Head channel ``c`` is label channel ``c`` of the
  label files, an independent probability; DeepReg's layout stores one binary mask per structure, and
  structures may overlap, so this is the default. ``num_classes`` = the number of label channels.
- ``activation: softmax``: multi-class, exclusive. Head channel 0 is the background (which DeepReg's layout
  does not store) and channel ``c + 1`` is label channel ``c``. ``num_classes`` = label channels + 1.
- ``num_classes`` left out (or null) is read from the data: ``label_count`` (the label channels of the
  files, which ``tfreg_train`` reads from their headers) -> ``label_count`` or ``label_count + 1``; 1 / 2
  without labels. Given, it must agree with the data: fewer classes than the labels (or more, which would
  leave head channels untrained) is a ValueError naming ``head.num_classes``, before training.

Labels given to the model (``moving_label`` / ``fixed_label``), values in [0, 1]:

- ``(B, *S)``: one label channel per sample, DeepReg's pipeline (``sample_label: sample`` or ``all``): its
  channel index is the last entry of ``indices`` (``[moving, fixed, label]`` for unpaired data), 0 when
  ``indices`` is not given. It is scored against that channel of the prediction.
- ``(B, *S, L)``: every label channel at once (``L`` = ``num_classes`` for sigmoid, ``num_classes - 1`` for
  softmax), scored against every foreground channel (``L`` otherwise is a ValueError).
- Integer label maps (``0`` = background, ``1..L`` structures) are not a label input of the model (a
  ``(B, *S)`` map would read as one binary channel): ``tfreg_train`` reads them with ``dataset.num_labels: L``
  (the loaders give one-hot channels, ``map == k`` as label index ``k - 1``); in Python convert them with
  :func:`label_channels` (``(B, *S) -> (B, *S, L)``).

Prediction (``tfreg_predict``): :attr:`SegmentationModel.prediction_label_maps` and
:meth:`SegmentationModel.label_masks` give the binary masks written beside the probabilities and scored per
label (Dice, HD95 in mm), see :mod:`tfreg.engine.predict_segmentation`.

The loss category ``segmentation`` is called on ``(target_label, pred_label)``: the labels and the matching
predicted probabilities (foreground channels only), stacked along the batch in the order moving, fixed.
Dice (``dice``, ``multiclass-dice``), binary cross-entropy (``cross-entropy``) and ``focal`` suit both
heads; ``multiclass-cross-entropy`` on foreground channels alone ignores the background voxels, so with a
softmax head prefer the others.
"""

import copy
from typing import Any, Dict, Optional, Sequence, Tuple

import keras
from keras import ops

from tfreg.checks import check_choice, check_int, check_positive_int, suggestion
from tfreg.layers.conv import conv_layer
from tfreg.losses.label import DiceScore
from tfreg.models.base import RegistrationModel, plain_config
from tfreg.registry import BACKBONE_CLASS, REGISTRY

#: The head activations: independent (multi-label) or exclusive (multi-class) classes.
HEAD_ACTIVATIONS = ("sigmoid", "softmax")
#: The keys of ``train.head``.
HEAD_KEYS = ("num_classes", "activation")
#: Which images of a sample are segmented.
SEGMENT_CHOICES = ("both", "moving", "fixed")


def head_classes(activation: str, label_count: int) -> int:
    """The head channels for ``label_count`` label channels: ``label_count`` (sigmoid) or one more (softmax,
    the background)."""
    return label_count + (1 if activation == "softmax" else 0)


def resolve_head(head: Optional[Dict[str, Any]], label_count: Optional[int] = None) -> Dict[str, Any]:
    """``train.head`` completed and checked against the data: ``{num_classes, activation}``.

    Args:
        head: ``{num_classes: int | None, activation: "sigmoid" | "softmax"}`` or None (all defaults).
        label_count: label channels of the data (from the label files' headers), None when unknown.

    Raises:
        ValueError: naming ``head.<key>``: an unknown key, a bad value, or a ``num_classes`` that does not
            fit ``label_count``.
    """
    if head is None:
        head = {}
    if not isinstance(head, dict):
        raise ValueError(f"head must be a mapping {{num_classes, activation}}, got {head!r}")
    unknown = [k for k in head if k not in HEAD_KEYS]
    if unknown:
        raise ValueError(
            f"head has unknown key(s) {unknown}; allowed: {list(HEAD_KEYS)}.{suggestion(unknown[0], HEAD_KEYS)}"
        )
    activation = check_choice(head.get("activation", "sigmoid"), "head.activation", HEAD_ACTIVATIONS)
    if label_count is not None:
        label_count = check_positive_int(label_count, "label_count")
    num_classes = head.get("num_classes")
    if num_classes is None:
        num_classes = head_classes(activation, label_count if label_count is not None else 1)
    else:
        num_classes = check_positive_int(num_classes, "head.num_classes")
    if activation == "softmax" and num_classes < 2:
        raise ValueError(
            f"head.num_classes={num_classes} with head.activation softmax: a softmax head needs >= 2 classes "
            "(channel 0 is the background); use sigmoid for one structure"
        )
    if label_count is not None and num_classes != head_classes(activation, label_count):
        expected = head_classes(activation, label_count)
        rule = "one per label channel" if activation == "sigmoid" else "the background plus one per label channel"
        which = "fewer classes than the labels" if num_classes < expected else "more classes than the labels"
        raise ValueError(
            f"head.num_classes={num_classes} does not fit the data: the label files have {label_count} label "
            f"channel(s), so a {activation} head needs num_classes={expected} ({rule}); the head has {which}. "
            "Set train.head.num_classes to it, or leave it out to take it from the data"
        )
    return {"num_classes": num_classes, "activation": activation}


def label_channels(label_map, num_labels: int):
    """An integer label map as one binary channel per structure: ``(B, *S)`` -> ``(B, *S, num_labels)``.

    Value 0 is the background (no channel); value ``c`` in ``1..num_labels`` sets channel ``c - 1``. Values
    are rounded (a map stored as floats is fine); values outside ``0..num_labels`` give all-zero channels.
    """
    num_labels = check_positive_int(num_labels, "num_labels")
    labels = ops.cast(ops.round(ops.cast(label_map, "float32")), "int32")
    return ops.one_hot(labels, num_labels + 1, dtype="float32")[..., 1:]


def matched_prediction(foreground, label, indices, ndim: int):
    """The predicted probabilities that a label is scored against.

    Args:
        foreground: structure probabilities ``(B, *S, L)`` (a softmax head's background removed).
        label: ``(B, *S, L)`` (every structure: all of ``foreground`` is returned) or ``(B, *S)`` (DeepReg's
            one structure per sample: the channel given by the last entry of ``indices``, 0 without them).
        indices: ``(B, n)`` sample indices or None.
        ndim: the number of spatial axes.

    Returns:
        ``(B, *S, L)`` or ``(B, *S)``, like ``label``.
    """
    channels = foreground.shape[-1]
    if len(label.shape) == ndim + 2:
        if label.shape[-1] != channels:
            raise ValueError(f"labels with {label.shape[-1]} channel(s) do not fit {channels} predicted channel(s)")
        return foreground
    if len(label.shape) != ndim + 1:
        raise ValueError(
            f"labels must be (batch, *spatial[, channels]) with {ndim} spatial axes, got {tuple(label.shape)}"
        )
    if indices is None:
        channel = ops.zeros((ops.shape(label)[0],), "int32")
    else:
        channel = ops.cast(ops.round(ops.cast(indices, "float32")[:, -1]), "int32")
    select = ops.reshape(ops.one_hot(channel, channels, dtype="float32"), (-1,) + (1,) * ndim + (channels,))
    return ops.sum(foreground * select, axis=-1)


@REGISTRY.register_model(name="segmentation")
class SegmentationModel(RegistrationModel):
    """Backbone + ``1^n`` convolution head with sigmoid or softmax; see the module docstring.

    Args:
        moving_image_size, fixed_image_size: spatial sizes, 2 or 3 ints; with ``segment: both`` they must be
            equal (the images are stacked). ``fixed_image_size`` None: the moving size.
        index_size, labeled, batch_size, registry, name: as :class:`~tfreg.models.base.RegistrationModel`.
        config: the ``train`` section: ``backbone`` (required), ``loss`` (category ``segmentation``),
            ``head`` ``{num_classes, activation}``, ``segment`` (``both``/``moving``/``fixed``) and ``modality``
            (optional, e.g. ``CT``: the modality of the segmented images, recorded in the run's config so that a
            composite model loading this segmenter can warn when it is given the other modality's images).
        backbone, loss, head, segment: notebook alternatives to the config keys of the same names.
        label_count: label channels of the data (``tfreg_train`` passes the files' count); fills in and
            checks ``head.num_classes``.

    Call: the input dict -> ``{"moving_segmentation": (B, *m, num_classes), "fixed_segmentation": (B, *f,
    num_classes)`` (the segmented ones), probabilities; with labels also ``"target_label"`` and
    ``"pred_label"`` (``(nB, *S)`` or ``(nB, *S, L)``, ``n`` images per sample), the pair the
    ``segmentation`` losses are called on}. Images may carry a channel axis ``(B, *S, C)``.
    """

    loss_inputs = {"segmentation": ("target_label", "pred_label")}
    config_keys = ("backbone", "loss", "head", "segment", "modality")
    prediction_images = {"moving_segmentation": "moving", "fixed_segmentation": "fixed"}
    prediction_label_maps = {"moving_segmentation": "moving_label", "fixed_segmentation": "fixed_label"}
    required_config_keys = ("backbone", "loss")

    def __init__(
        self,
        moving_image_size: Sequence[int],
        fixed_image_size: Optional[Sequence[int]] = None,
        index_size: int = 1,
        labeled: bool = True,
        batch_size: Optional[int] = None,
        config: Optional[Dict] = None,
        backbone: Any = None,
        loss: Optional[Dict] = None,
        head: Optional[Dict] = None,
        segment: Optional[str] = None,
        label_count: Optional[int] = None,
        registry=None,
        name: str = "SegmentationModel",
        **kwargs,
    ):
        if config is not None and not isinstance(config, dict):
            raise ValueError(f"config must be the train section as a dict, got {config!r}")
        # plain containers, copied no deeper: a built backbone layer in the config must stay the same object
        config = plain_config(config or {})
        if head is not None:
            config["head"] = head
        if segment is not None:
            config["segment"] = segment
        config["head"] = resolve_head(copy.deepcopy(config.get("head")), label_count)
        config["segment"] = check_choice(config.get("segment", "both"), "segment", SEGMENT_CHOICES)
        if fixed_image_size is None:
            fixed_image_size = moving_image_size
        if config["segment"] == "both" and tuple(moving_image_size) != tuple(fixed_image_size):
            raise ValueError(
                f"segment 'both' stacks the moving and fixed images, so moving_image_size {tuple(moving_image_size)} "
                f"and fixed_image_size {tuple(fixed_image_size)} must be equal; set train.segment to 'moving' or "
                "'fixed' to segment one of them"
            )
        label_count = None if label_count is None else check_int(label_count, "label_count", minimum=1)
        backbone_layer = config.pop("backbone") if isinstance(config.get("backbone"), keras.layers.Layer) else None
        super().__init__(
            moving_image_size,
            fixed_image_size,
            index_size=index_size,
            labeled=labeled,
            batch_size=batch_size,
            config=config,
            backbone=backbone if backbone is not None else backbone_layer,
            loss=loss,
            registry=registry,
            name=name,
            **kwargs,
        )
        self.label_count = label_count

    # ------------------------------------------------------------------ contract
    @classmethod
    def output_names(cls, labeled: bool) -> Tuple[str, ...]:
        names = ("moving_segmentation", "fixed_segmentation")
        return names + (("target_label", "pred_label") if labeled else ())

    @classmethod
    def parameter_group_names(cls) -> Tuple[str, ...]:
        return ("segmentation",)

    def parameter_groups(self) -> Dict[str, list]:
        """One group, ``segmentation``: every trainable variable (backbone and head)."""
        return {"segmentation": self.trainable_variables}

    @classmethod
    def data_arguments(cls, loader) -> Dict[str, Any]:
        """``{"label_count": ...}`` from a data loader's label files (headers only), when it has labels."""
        count = getattr(loader, "num_labels", None) if getattr(loader, "labeled", False) else None
        return {} if count is None else {"label_count": int(count)}

    @classmethod
    def label_categories(cls, train) -> Tuple[str, ...]:
        """``segmentation``: its pair holds the labels (and the matching predicted channels)."""
        return ("segmentation",)

    @classmethod
    def validate_train_config(cls, checker, train, labeled, method):
        """The RegistrationModel checks plus ``head`` and ``segment``; training needs labeled data."""
        super().validate_train_config(checker, train, labeled, method)
        base = ("train",)
        if labeled is False:
            checker.error(
                base + ("method",),
                f"{method!r} learns from label maps and needs labeled data, but dataset.train.labeled is false",
            )
        head = train.get("head")
        if head is not None:
            if not isinstance(head, dict):
                checker.error(base + ("head",), f"must be a mapping {{num_classes, activation}}, got {head!r}")
            else:
                checker.unknown_keys(base + ("head",), head, HEAD_KEYS, "train.head")
                if head.get("num_classes") is not None:
                    checker.positive_int(base + ("head", "num_classes"), head["num_classes"])
                if "activation" in head:
                    checker.one_of(base + ("head", "activation"), head["activation"], HEAD_ACTIVATIONS)
        if "segment" in train:
            checker.one_of(base + ("segment",), train["segment"], SEGMENT_CHOICES)
        if "modality" in train and (not isinstance(train["modality"], str) or not train["modality"]):
            checker.error(base + ("modality",), f"must be a modality name such as MR or CT, got {train['modality']!r}")
        if isinstance(train.get("backbone"), dict) and "name" in train["backbone"]:
            if train["backbone"]["name"] in ("local", "global"):
                checker.error(
                    base + ("backbone", "name"),
                    f"{train['backbone']['name']!r} is a registration backbone; a segmentation backbone maps "
                    f"an image to features on its grid: e.g. unet_segmenter or multi_unets ({BACKBONE_CLASS})",
                )

    # ------------------------------------------------------------------ construction
    def build_networks(self, config: Dict[str, Any]) -> None:
        """``self.backbone`` (on the segmented images' grid) and ``self.head`` (``1^n`` conv to the classes)."""
        self.segment = config["segment"]
        self.num_classes = config["head"]["num_classes"]
        self.activation = config["head"]["activation"]
        self.image_size = self.moving_image_size if self.segment == "moving" else self.fixed_image_size
        self.roles = ("moving", "fixed") if self.segment == "both" else (self.segment,)
        super().build_networks(config)
        self.head = conv_layer(self.ndim, self.num_classes, 1, padding="same", name="head")
        self.dice_metric = DiceScore(binary=True, reduction=None)

    def _build_backbone(self, cfg):
        if cfg is None:
            raise ValueError("config['backbone'] (or backbone=) is required, e.g. {'name': 'unet_segmenter'}")
        if isinstance(cfg, keras.layers.Layer):
            return cfg
        if not isinstance(cfg, dict):
            raise ValueError(f"backbone must be a dict {{name, ...}} or a Keras layer, got {cfg!r}")
        return self.registry.build_backbone(config=dict(cfg), default_args={"image_size": self.image_size})

    @property
    def foreground_channels(self) -> int:
        """The label channels the head predicts: ``num_classes`` (sigmoid) or ``num_classes - 1`` (softmax)."""
        return self.num_classes - (1 if self.activation == "softmax" else 0)

    # ------------------------------------------------------------------ forward
    def _image(self, image):
        """``(B, *S)`` -> ``(B, *S, 1)``; ``(B, *S, C)`` unchanged; float32."""
        image = ops.cast(image, "float32")
        return ops.expand_dims(image, -1) if len(image.shape) == self.ndim + 1 else image

    def segment_images(self, images, training=None):
        """Class probabilities of images on the model's grid: ``(B, *S[, C])`` -> ``(B, *S, num_classes)``."""
        logits = self.head(self.backbone(self._image(images), training=training))
        if self.activation == "softmax":
            return ops.softmax(logits, axis=-1)
        return ops.sigmoid(logits)

    def _check_inputs(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError("inputs must be a dict with moving_image and fixed_image (and indices, labels)")
        for role in self.roles:
            key = f"{role}_image"
            if key not in inputs:
                raise ValueError(f"inputs must hold {key!r} (segment: {self.segment!r})")
            shape = tuple(inputs[key].shape[1:])
            if shape != self.image_size and shape[:-1] != self.image_size:
                raise ValueError(
                    f"inputs[{key!r}] must have spatial shape {self.image_size} (optionally with a channel axis), "
                    f"got {shape}"
                )

    def _predicted_channel(self, probabilities, label, indices):
        """The prediction matched to ``label`` (:func:`matched_prediction`), with the head named on a mismatch."""
        foreground = probabilities[..., 1:] if self.activation == "softmax" else probabilities
        if len(label.shape) == self.ndim + 2 and label.shape[-1] != self.foreground_channels:
            raise ValueError(
                f"labels of shape {tuple(label.shape)} have {label.shape[-1]} channel(s), but the head predicts "
                f"{self.foreground_channels} label channel(s) (head.num_classes={self.num_classes}, "
                f"{self.activation}); integer label maps: convert them with label_channels()"
            )
        return matched_prediction(foreground, label, indices, self.ndim)

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        images = [self._image(inputs[f"{role}_image"]) for role in self.roles]
        if len(images) == 2 and images[0].shape[-1] != images[1].shape[-1]:
            raise ValueError(
                f"moving and fixed images have {images[0].shape[-1]} and {images[1].shape[-1]} channels; "
                "segment: both needs the same number"
            )
        probabilities = self.segment_images(
            ops.concatenate(images, axis=0) if len(images) == 2 else images[0], training
        )
        parts = ops.split(probabilities, len(images), axis=0) if len(images) == 2 else [probabilities]
        outputs = {f"{role}_segmentation": p for role, p in zip(self.roles, parts)}
        keys = [f"{role}_label" for role in self.roles]
        if self.labeled and all(k in inputs for k in keys):
            indices = inputs.get("indices")
            targets = [ops.cast(inputs[k], "float32") for k in keys]
            preds = [self._predicted_channel(p, t, indices) for p, t in zip(parts, targets)]
            outputs["target_label"] = ops.concatenate(targets, axis=0) if len(targets) == 2 else targets[0]
            outputs["pred_label"] = ops.concatenate(preds, axis=0) if len(preds) == 2 else preds[0]
        return outputs

    def label_masks(self, name: str, probabilities):
        """The predicted masks of the data's label channels: ``(B, *S, num_classes)`` -> ``(B, *S, L)`` bool.

        Sigmoid head: channel ``c`` is ``p_c >= 0.5`` (independent, may overlap). Softmax head: the argmax
        class, one-hot, background dropped: channel ``c`` is ``argmax == c + 1`` (exclusive; a voxel whose
        argmax is the background is in no channel). ``name``: ``moving_segmentation`` or ``fixed_segmentation``
        (both decoded alike).
        """
        if name not in self.prediction_label_maps:
            raise ValueError(f"label_masks: {name!r} is not one of {sorted(self.prediction_label_maps)}")
        from tfreg.models.segmenter import decode_masks  # segmenter imports this module

        return decode_masks(probabilities, self.activation, self.num_classes)

    # ------------------------------------------------------------------ metrics
    def field_names(self):
        return []

    def _metric_names(self):
        # the segmented images (and labels) with mean/min/max; no TRE (nothing is warped) but the binary
        # Dice of the thresholded prediction, as DeepReg's conditional model logged for its labels
        keys = [f"{role}_image" for role in self.roles]
        if self.labeled:
            keys += [f"{role}_label" for role in self.roles]
        names = [f"metric/{key}_{s}" for key in keys for s in ("mean", "min", "max")]
        return names + (["metric/Dice"] if self.labeled else [])

    def _has_labels(self, inputs) -> bool:
        return self.labeled and all(f"{role}_label" in inputs for role in self.roles)

    def _update_metrics(self, x, y_pred):
        fields = {f"{role}_image": x[f"{role}_image"] for role in self.roles}
        if self._has_labels(x):
            fields.update({f"{role}_label": x[f"{role}_label"] for role in self.roles})
        for key, value in fields.items():
            value = ops.cast(value, "float32")
            self._track(f"metric/{key}_mean", ops.mean(value))
            self._track(f"metric/{key}_min", ops.min(value))
            self._track(f"metric/{key}_max", ops.max(value))
        if "target_label" in y_pred:
            self._track("metric/Dice", ops.mean(self.dice_metric(y_pred["target_label"], y_pred["pred_label"])))

    def get_config(self) -> dict:
        config = super().get_config()
        config["label_count"] = self.label_count
        return config


__all__ = [
    "SegmentationModel",
    "HEAD_ACTIVATIONS",
    "HEAD_KEYS",
    "SEGMENT_CHOICES",
    "head_classes",
    "label_channels",
    "matched_prediction",
    "resolve_head",
]
