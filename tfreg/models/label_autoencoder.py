"""The label auto-encoder (``train.method: label_autoencoder``): a denoising auto-encoder of label maps.

He, He and Cao (2022, "Deformable image registration with attention-guided fusion of multi-scale deformation
fields") constrain registration with the distance between codes of a pre-trained, frozen denoising
auto-encoder (DAE) of label maps (the ``embedding`` loss) and train that DAE with ``CE + 2.0 contour`` (the
``contour-ce`` loss, ``multi_class: true, contour_weight: 2.0``). The paper gives no architecture, code size
nor noise; they are taken from AC-RegNet (Mansilla et al. 2020, "Learning deformable registration of medical
images with anatomical constraints"), whose auto-encoder the paper's baseline ("Original AC-RegNet") uses:

- encoder: per entry ``f`` of ``filters`` (default ``[16, 32]``): conv ``f`` stride 2, conv ``f``; then conv
  ``bottleneck_channels`` (1) stride 2; every conv ``3^n`` -> batch norm -> ReLU; flatten; dense to the code
  (``code_size``, 32), linear;
- decoder: dense to the flattened bottleneck + ReLU, reshape; per entry ``f`` of ``reversed(filters)``:
  nearest x2 up-sampling + conv ``f``, conv ``f``; then x2 + conv ``filters[0]``; a ``3^n`` conv to the
  classes (logits, no batch norm), softmax. Decoder convs other than the last are conv -> BN -> ReLU, like the
  encoder's (our reading: AC-RegNet uses one conv block throughout).
- noise (training only): label swaps of adjacent voxel pairs ``(2j, 2j + 1)`` with probability 0.1
  (:class:`~tfreg.layers.label_noise.LabelSwapNoise`), along ``noise.axis``. AC-RegNet swaps image columns
  (horizontal neighbours); tfreg arrays are ``(x, y[, z])`` in NIfTI's ``ij(k)`` order, where the first axis
  (``axis: 0``, the default) is the horizontal one of a radiograph.

Each stride-2 convolution halves the grid, so the label size must be divisible by ``2^(len(filters) + 1)``
(8 by default) along every axis; the code is ``(B, code_size)`` whatever the size (the dense layers carry
``prod(S / 8) * bottleneck_channels`` features).

Labels. The model reads the label maps of any labeled loader (``paired``, ``unpaired``, ``grouped``): by
default (``labels: both``) the moving and the fixed labels of each sample, stacked along the batch (``B``
samples train on ``2B`` maps); ``moving`` or ``fixed``: only those. A map is ``(B, *S)`` (one structure,
DeepReg's pipeline: ``tfreg_train`` always gives this) or ``(B, *S, C)`` (``C = label_channels`` foreground
channels, e.g. one-hot labels without their background), values in [0, 1]. Inside, the classes are the
background ``clip(1 - sum(foreground), 0, 1)`` (channel 0) and the ``C`` foreground channels, so soft (warped)
labels are valid inputs too.

Outputs: ``code`` ``(N, code_size)``, ``target_classes`` (the clean classes, ``(N, *S, C + 1)``) and
``pred_classes`` (the reconstruction's softmax probabilities, same shape), ``N = 2B`` or ``B``. The loss
category ``reconstruction`` is called on ``(target_classes, pred_classes)``.

The encoder is a standalone Keras functional model (:attr:`LabelAutoencoder.encoder`, input ``(B, *S, C)``
foreground channels, output ``(B, code_size)``) built from Keras' own layers and ``keras.ops`` only, so its
``.keras`` file loads with plain Keras. :meth:`LabelAutoencoder.exported_models` names it, so training writes
``save/encoder.keras`` with every checkpoint: the file the ``embedding`` loss takes as ``encoder``.
"""

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import keras
from keras import ops

from tfreg.checks import check_choice, check_int, check_positive_int, suggestion
from tfreg.layers.conv import conv_layer
from tfreg.layers.label_noise import LabelSwapNoise
from tfreg.layers.normalization import batch_normalization
from tfreg.losses.label import DiceScore
from tfreg.models.base import RegistrationModel, plain_config
from tfreg.registry import REGISTRY

#: Which label maps of a sample are encoded.
LABEL_CHOICES = ("both", "moving", "fixed")
#: The keys of ``train.noise``.
NOISE_KEYS = ("probability", "axis", "seed")
#: AC-RegNet's auto-encoder (Mansilla et al. 2020).
DEFAULT_FILTERS = (16, 32)
DEFAULT_CODE_SIZE = 32
DEFAULT_BOTTLENECK_CHANNELS = 1
DEFAULT_NOISE = {"probability": 0.1, "axis": 0, "seed": None}
KERNEL_SIZE = 3

_UPSAMPLING = {2: keras.layers.UpSampling2D, 3: keras.layers.UpSampling3D}


def label_classes(foreground):
    """Foreground channels as classes with a background: ``(B, *S, C)`` -> ``(B, *S, C + 1)``.

    Channel 0 is ``clip(1 - sum_c foreground_c, 0, 1)``, channels ``1..C`` the foreground unchanged: one-hot
    for exclusive binary masks, a distribution for soft exclusive labels (the clip keeps overlapping or
    out-of-range soft values from giving a negative background).
    """
    foreground = ops.cast(foreground, "float32")
    background = ops.clip(1.0 - ops.sum(foreground, axis=-1, keepdims=True), 0.0, 1.0)
    return ops.concatenate([background, foreground], axis=-1)


def downsampling_factor(filters: Sequence[int]) -> int:
    """``2^(len(filters) + 1)``: the stride-2 convolutions of the encoder (one per stage and the bottleneck)."""
    return 2 ** (len(filters) + 1)


def check_label_size(image_size: Sequence[int], filters: Sequence[int]) -> Tuple[int, ...]:
    """``image_size`` as a tuple, or ValueError when a size is not divisible by :func:`downsampling_factor`."""
    image_size = tuple(int(s) for s in image_size)
    factor = downsampling_factor(filters)
    if any(s % factor for s in image_size):
        raise ValueError(
            f"label_autoencoder: the label size {image_size} must be divisible by {factor} = 2^{len(filters) + 1} "
            f"along every axis (the encoder's {len(filters) + 1} stride-2 convolutions: one per entry of "
            f"train.filters {list(filters)} and the bottleneck); set dataset.image_shape (or "
            "dataset.moving_image_shape / fixed_image_shape) to such a size"
        )
    return image_size


def _conv_block(x, ndim: int, filters: int, strides: int = 1):
    """``3^n`` conv (same padding) -> batch norm -> ReLU."""
    x = conv_layer(ndim, filters, KERNEL_SIZE, strides=strides, padding="same")(x)
    x = batch_normalization()(x)
    return keras.layers.ReLU()(x)


def build_label_encoder(
    image_size: Sequence[int],
    label_channels: int = 1,
    filters: Sequence[int] = DEFAULT_FILTERS,
    bottleneck_channels: int = DEFAULT_BOTTLENECK_CHANNELS,
    code_size: int = DEFAULT_CODE_SIZE,
    name: str = "encoder",
) -> keras.Model:
    """The encoder as a functional model: foreground ``(B, *S, label_channels)`` -> code ``(B, code_size)``.

    The background channel is added inside (:func:`label_classes`, written with ``keras.ops`` on the symbolic
    input, which Keras saves in the ``.keras`` file), so the model takes labels as a loader gives them.
    """
    image_size = check_label_size(image_size, filters)
    ndim = len(image_size)
    inputs = keras.Input(image_size + (label_channels,), name="labels")
    x = label_classes(inputs)
    for f in filters:
        x = _conv_block(x, ndim, f, strides=2)
        x = _conv_block(x, ndim, f)
    x = _conv_block(x, ndim, bottleneck_channels, strides=2)
    x = keras.layers.Flatten()(x)
    code = keras.layers.Dense(code_size, name="code")(x)
    return keras.Model(inputs, code, name=name)


def build_label_decoder(
    image_size: Sequence[int],
    num_classes: int,
    filters: Sequence[int] = DEFAULT_FILTERS,
    bottleneck_channels: int = DEFAULT_BOTTLENECK_CHANNELS,
    code_size: int = DEFAULT_CODE_SIZE,
    name: str = "decoder",
) -> keras.Model:
    """The decoder as a functional model: code ``(B, code_size)`` -> class logits ``(B, *S, num_classes)``."""
    image_size = check_label_size(image_size, filters)
    ndim = len(image_size)
    factor = downsampling_factor(filters)
    coarse = tuple(s // factor for s in image_size) + (bottleneck_channels,)
    code = keras.Input((code_size,), name="code")
    x = keras.layers.Dense(math.prod(coarse), activation="relu")(code)
    x = keras.layers.Reshape(coarse)(x)
    for f in reversed(tuple(filters)):
        x = _UPSAMPLING[ndim](size=2)(x)
        x = _conv_block(x, ndim, f)
        x = _conv_block(x, ndim, f)
    x = _UPSAMPLING[ndim](size=2)(x)
    x = _conv_block(x, ndim, filters[0])
    logits = conv_layer(ndim, num_classes, KERNEL_SIZE, padding="same", name="logits")(x)
    return keras.Model(code, logits, name=name)


def resolve_noise(noise: Optional[Dict[str, Any]], ndim: Optional[int] = None) -> Dict[str, Any]:
    """``train.noise`` completed with the defaults and checked: ``{probability, axis, seed}``.

    Raises:
        ValueError: naming ``noise.<key>``: an unknown key or a bad value (``axis`` beyond ``ndim``).
    """
    if noise is None:
        noise = {}
    if not isinstance(noise, dict):
        raise ValueError(f"noise must be a mapping {{probability, axis, seed}}, got {noise!r}")
    unknown = [k for k in noise if k not in NOISE_KEYS]
    if unknown:
        raise ValueError(
            f"noise has unknown key(s) {unknown}; allowed: {list(NOISE_KEYS)}.{suggestion(unknown[0], NOISE_KEYS)}"
        )
    resolved = dict(DEFAULT_NOISE, **noise)
    probability = resolved["probability"]
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
        raise ValueError(f"noise.probability must be a number in [0, 1] (AC-RegNet: 0.1), got {probability!r}")
    resolved["probability"] = float(probability)
    resolved["axis"] = check_int(resolved["axis"], "noise.axis", minimum=0, maximum=None if ndim is None else ndim - 1)
    if resolved["seed"] is not None:
        resolved["seed"] = check_int(resolved["seed"], "noise.seed", minimum=0)
    return resolved


def _check_filters(filters) -> Tuple[int, ...]:
    if not isinstance(filters, (list, tuple)) or not filters:
        raise ValueError(
            f"filters must be a non-empty list of positive integers (AC-RegNet: [16, 32]), got {filters!r}"
        )
    return tuple(check_positive_int(f, "filters") for f in filters)


@REGISTRY.register_model(name="label_autoencoder")
class LabelAutoencoder(RegistrationModel):
    """Denoising auto-encoder of label maps (AC-RegNet's, see the module docstring).

    Args:
        moving_image_size, fixed_image_size: spatial sizes, 2 or 3 ints, divisible by
            ``2^(len(filters) + 1)``; with ``labels: both`` they must be equal (the maps are stacked).
        index_size, labeled, batch_size, registry, name: as :class:`~tfreg.models.base.RegistrationModel`;
            ``labeled`` must be true.
        config: the ``train`` section: ``loss`` (category ``reconstruction``), ``code_size`` (32),
            ``filters`` ([16, 32]), ``bottleneck_channels`` (1), ``noise`` ``{probability: 0.1, axis: 0,
            seed: null}``, ``label_channels`` (1) and ``labels`` (``both``/``moving``/``fixed``).
        loss, code_size, filters, bottleneck_channels, noise, label_channels, labels: notebook alternatives to
            the config keys of the same names.

    Call: the input dict (``moving_label`` / ``fixed_label`` required) -> ``{"code": (N, code_size),
    "target_classes": (N, *S, C + 1), "pred_classes": (N, *S, C + 1)}``.
    """

    loss_inputs = {"reconstruction": ("target_classes", "pred_classes")}
    config_keys = ("loss", "code_size", "filters", "bottleneck_channels", "noise", "label_channels", "labels")
    required_config_keys = ("loss",)

    def __init__(
        self,
        moving_image_size: Sequence[int],
        fixed_image_size: Optional[Sequence[int]] = None,
        index_size: int = 1,
        labeled: bool = True,
        batch_size: Optional[int] = None,
        config: Optional[Dict] = None,
        loss: Optional[Dict] = None,
        code_size: Optional[int] = None,
        filters: Optional[Sequence[int]] = None,
        bottleneck_channels: Optional[int] = None,
        noise: Optional[Dict] = None,
        label_channels: Optional[int] = None,
        labels: Optional[str] = None,
        registry=None,
        name: str = "LabelAutoencoder",
        **kwargs,
    ):
        if config is not None and not isinstance(config, dict):
            raise ValueError(f"config must be the train section as a dict, got {config!r}")
        config = plain_config(config or {})
        overrides = dict(
            code_size=code_size,
            filters=filters,
            bottleneck_channels=bottleneck_channels,
            noise=noise,
            label_channels=label_channels,
            labels=labels,
        )
        config.update({k: v for k, v in overrides.items() if v is not None})
        if not labeled:
            raise ValueError("label_autoencoder learns from label maps: it needs labeled data (labeled=True)")
        if fixed_image_size is None:
            fixed_image_size = moving_image_size
        config["labels"] = check_choice(config.get("labels", "both"), "labels", LABEL_CHOICES)
        if config["labels"] == "both" and tuple(moving_image_size) != tuple(fixed_image_size):
            raise ValueError(
                f"labels 'both' stacks the moving and fixed labels, so moving_image_size {tuple(moving_image_size)} "
                f"and fixed_image_size {tuple(fixed_image_size)} must be equal; set train.labels to 'moving' or "
                "'fixed' to encode one of them"
            )
        config["code_size"] = check_positive_int(config.get("code_size", DEFAULT_CODE_SIZE), "code_size")
        config["filters"] = list(_check_filters(config.get("filters", list(DEFAULT_FILTERS))))
        config["bottleneck_channels"] = check_positive_int(
            config.get("bottleneck_channels", DEFAULT_BOTTLENECK_CHANNELS), "bottleneck_channels"
        )
        config["label_channels"] = check_positive_int(config.get("label_channels", 1), "label_channels")
        config["noise"] = resolve_noise(config.get("noise"), len(tuple(fixed_image_size)))
        super().__init__(
            moving_image_size,
            fixed_image_size,
            index_size=index_size,
            labeled=True,
            batch_size=batch_size,
            config=config,
            loss=loss,
            registry=registry,
            name=name,
            **kwargs,
        )

    # ------------------------------------------------------------------ contract
    @classmethod
    def output_names(cls, labeled: bool) -> Tuple[str, ...]:
        return ("code", "target_classes", "pred_classes")

    @classmethod
    def parameter_group_names(cls) -> Tuple[str, ...]:
        return ("autoencoder",)

    def parameter_groups(self) -> Dict[str, list]:
        """One group, ``autoencoder``: every trainable variable (encoder and decoder)."""
        return {"autoencoder": self.trainable_variables}

    def exported_models(self) -> Dict[str, keras.Model]:
        """``{"encoder": self.encoder}``: saved as ``save/encoder.keras`` with each checkpoint."""
        return {"encoder": self.encoder}

    @classmethod
    def validate_train_config(cls, checker, train, labeled, method):
        """The RegistrationModel checks (the loss) plus this model's keys; training needs labeled data."""
        super().validate_train_config(checker, train, labeled, method)
        base = ("train",)
        if labeled is False:
            checker.error(
                base + ("method",),
                f"{method!r} learns from label maps and needs labeled data, but dataset.train.labeled is false",
            )
        for key in ("code_size", "bottleneck_channels", "label_channels"):
            if key in train:
                checker.positive_int(base + (key,), train[key])
        if "filters" in train:
            try:
                _check_filters(train["filters"])
            except ValueError as err:
                checker.error(base + ("filters",), str(err))
        if "labels" in train:
            checker.one_of(base + ("labels",), train["labels"], LABEL_CHOICES)
        if "noise" in train:
            try:
                resolve_noise(train["noise"])
            except ValueError as err:
                checker.error(base + ("noise",), str(err))

    # ------------------------------------------------------------------ construction
    def build_networks(self, config: Dict[str, Any]) -> None:
        """``self.noise``, ``self.encoder`` and ``self.decoder`` (no backbone)."""
        self.roles = ("moving", "fixed") if config["labels"] == "both" else (config["labels"],)
        self.image_size = self.fixed_image_size if config["labels"] == "fixed" else self.moving_image_size
        self.code_size = config["code_size"]
        self.filters = tuple(config["filters"])
        self.bottleneck_channels = config["bottleneck_channels"]
        self.label_channels = config["label_channels"]
        self.num_classes = self.label_channels + 1
        check_label_size(self.image_size, self.filters)
        architecture = dict(
            filters=self.filters, bottleneck_channels=self.bottleneck_channels, code_size=self.code_size
        )
        self.noise = LabelSwapNoise(**config["noise"], name="noise")
        self.encoder = build_label_encoder(self.image_size, self.label_channels, **architecture)
        self.decoder = build_label_decoder(self.image_size, self.num_classes, **architecture)
        self.dice_metric = DiceScore(binary=True, reduction=None)

    # ------------------------------------------------------------------ forward
    def foreground(self, labels):
        """Label maps as float32 foreground channels: ``(B, *S)`` -> ``(B, *S, 1)``; ``(B, *S, C)`` checked."""
        labels = ops.cast(labels, "float32")
        shape = tuple(labels.shape[1:])
        if shape == self.image_size:
            labels = ops.expand_dims(labels, -1)
            shape = shape + (1,)
        if shape != self.image_size + (self.label_channels,):
            raise ValueError(
                f"label maps must be (batch, *{self.image_size}) or (batch, *{self.image_size}, {self.label_channels}) "
                f"(label_channels={self.label_channels} foreground channels), got {tuple(labels.shape)}"
            )
        return labels

    def encode(self, labels):
        """The code of label maps, inference mode: ``(B, *S)`` or ``(B, *S, C)`` -> ``(B, code_size)``."""
        return self.encoder(self.foreground(labels), training=False)

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict):
            raise ValueError("inputs must be a dict with the label maps (moving_label, fixed_label)")
        missing = [f"{role}_label" for role in self.roles if f"{role}_label" not in inputs]
        if missing:
            raise ValueError(
                f"label_autoencoder encodes label maps: inputs must hold {missing} (labels: {self.config['labels']!r})"
            )
        maps = [self.foreground(inputs[f"{role}_label"]) for role in self.roles]
        labels = ops.concatenate(maps, axis=0) if len(maps) == 2 else maps[0]
        code = self.encoder(self.noise(labels, training=training), training=training)
        logits = self.decoder(code, training=training)
        return {
            "code": code,
            "target_classes": label_classes(labels),
            "pred_classes": ops.softmax(ops.cast(logits, "float32"), axis=-1),
        }

    # ------------------------------------------------------------------ metrics
    def field_names(self):
        return []

    def _metric_names(self):
        # the encoded labels with mean/min/max, and the Dice of the reconstruction's foreground (thresholded)
        names = [f"metric/{role}_label_{s}" for role in self.roles for s in ("mean", "min", "max")]
        return names + ["metric/Dice"]

    def _update_metrics(self, x, y_pred):
        for role in self.roles:
            value = ops.cast(x[f"{role}_label"], "float32")
            self._track(f"metric/{role}_label_mean", ops.mean(value))
            self._track(f"metric/{role}_label_min", ops.min(value))
            self._track(f"metric/{role}_label_max", ops.max(value))
        target = y_pred["target_classes"][..., 1:]
        prediction = y_pred["pred_classes"][..., 1:]
        self._track("metric/Dice", ops.mean(self.dice_metric(target, prediction)))


__all__ = [
    "LabelAutoencoder",
    "LABEL_CHOICES",
    "NOISE_KEYS",
    "build_label_decoder",
    "build_label_encoder",
    "check_label_size",
    "downsampling_factor",
    "label_classes",
    "resolve_noise",
]
