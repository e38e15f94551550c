"""Swin UNETR (Hatamizadeh et al. 2022, "Swin UNETR: Swin Transformers for Semantic Segmentation of Brain
Tumors in MRI Images"): a Swin transformer encoder and a convolutional (UNETR) decoder, as a segmentation
backbone.

Registered as ``swin_unetr``; used by the ``segmentation`` model and the segmenters of composite models
(WSSAMNet++ segments OASIS and BraTS with it) exactly like ``unet_segmenter``: it returns features on the
image grid, and the model's ``1^n`` head maps them to classes. 2-D and 3-D.

Architecture, for feature size ``F``, patch 2 and ``L`` stages (4)::

    x (B, *I, C), zero-padded at the end to a multiple of 2^(L+1) voxels per axis
    h_0, h_1, .., h_L = SwinEncoder(outputs="merged", output_norm="plain")(x)   # h_k: I / 2^(k+1), 2^k F
    e_in = Res(F)(x);  e_0 = Res(F)(h_0);  e_1 = Res(2F)(h_1);  e_2 = Res(4F)(h_2);  d = Res(16F)(h_L)
    d = Up(8F)(d, h_{L-1});  d = Up(4F)(d, e_2);  d = Up(2F)(d, e_1);  d = Up(F)(d, e_0);  d = Up(F)(d, e_in)
    -> cropped back to (B, *I, F)

(shown for ``L = 4``; other depths follow the same pattern: one ``Res`` per stage output but the deepest
two, whose deepest is the bottleneck and whose second-deepest is used as it is). ``Res(c)``: UNETR's residual
unit, ``3^n`` conv -> instance norm -> leaky ReLU (0.01) -> ``3^n`` conv -> instance norm, plus the input
(through a ``1^n`` conv and instance norm when the channels change), then a leaky ReLU. ``Up(c)(d, s)``:
a ``2^n`` transposed convolution with stride 2 to ``c`` channels, concatenation with ``s``, ``Res(c)``.
Convolutions have no bias and the instance norms no weights (MONAI's defaults, whose SwinUNETR this
follows: its feature size 48 has 62.2 M parameters).

Presets (:data:`SWIN_UNETR_PRESETS`):

- ``base``: feature size 48, depths 2-2-2-2, heads 3-6-12-24, window 7 (the Swin UNETR paper's network).
  At 96^3 with 1 input channel and 14 classes it has 62,145,728 parameters with its head; MONAI's
  SwinUNETR has 62.19 M, the difference (41,568) being the rows of MONAI's relative position tables that a
  6^3 deepest grid never uses (MONAI sizes the tables by the configured window, tfreg by the clipped one);
- ``wssamnet_pp``: WSSAMNet++ reports a Swin UNETR of "2.2 million parameters" without its configuration.
  Keeping the base depths, heads and window, the feature size must be a multiple of 3 (heads of
  ``F / 3`` channels): 6 gives 1.13 M and 9 gives 2.34 M (96^3) or 2.38 M (160 x 192 x 224), for 1
  input channel and 5 classes (4 OASIS structures and background). The preset takes 9, the closest.

All with stochastic depth 0, qkv bias, no LayerNorm after the patch embedding (MONAI's defaults).
"""

from typing import Any, Dict, Optional, Sequence, Union

import keras
from keras import ops

from tfreg.checks import check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.layers.normalization import InstanceNormalization
from tfreg.layers.swin_encoder import SwinEncoder
from tfreg.layers.window_attention import _window
from tfreg.models.backbones.presets import resolve_preset
from tfreg.models.backbones.pretrained import load_pretrained_weights
from tfreg.ops.grid import _check_shape
from tfreg.ops.windows import pad_to_windows
from tfreg.registry import REGISTRY
from tfreg.serialization import AttributeConfigMixin, attribute_config

SWIN_UNETR_PRESETS: Dict[str, Dict[str, Any]] = {
    "base": dict(feature_size=48),
    "wssamnet_pp": dict(feature_size=9),
}
for _preset in SWIN_UNETR_PRESETS.values():
    _preset.update(depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), window_size=7, patch_size=2, drop_path_rate=0.0)

#: leaky ReLU slope of the UNETR blocks (MONAI's)
NEGATIVE_SLOPE = 0.01


class UnetrResidualUnit(AttributeConfigMixin, keras.layers.Layer):
    """UNETR's residual unit, ``(B, *S, C)`` -> ``(B, *S, filters)`` (see the module docstring)."""

    def __init__(self, ndim: int, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.ndim = int(ndim)
        self.filters = check_positive_int(filters, "filters")
        policy = self.dtype_policy
        self.conv1 = conv_layer(self.ndim, self.filters, 3, padding="same", use_bias=False, name="conv1", dtype=policy)
        self.conv2 = conv_layer(self.ndim, self.filters, 3, padding="same", use_bias=False, name="conv2", dtype=policy)
        self.norm1 = InstanceNormalization(center=False, scale=False, name="norm1", dtype=policy)
        self.norm2 = InstanceNormalization(center=False, scale=False, name="norm2", dtype=policy)
        self.project = None

    config_keys = ("ndim", "filters")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        out_shape = input_shape[:-1] + (self.filters,)
        self.conv1.build(input_shape)
        self.conv2.build(out_shape)
        self.norm1.build(out_shape)
        self.norm2.build(out_shape)
        if input_shape[-1] != self.filters:
            policy = self.dtype_policy
            self.project = conv_layer(self.ndim, self.filters, 1, use_bias=False, name="project", dtype=policy)
            self.project.build(input_shape)
            self.norm3 = InstanceNormalization(center=False, scale=False, name="norm3", dtype=policy)
            self.norm3.build(out_shape)

    def call(self, x):
        y = ops.leaky_relu(self.norm1(self.conv1(x)), negative_slope=NEGATIVE_SLOPE)
        y = self.norm2(self.conv2(y))
        residual = x if self.project is None else self.norm3(self.project(x))
        return ops.leaky_relu(y + residual, negative_slope=NEGATIVE_SLOPE)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)


class UnetrUpUnit(AttributeConfigMixin, keras.layers.Layer):
    """``(d (B, *S, C), skip (B, *2S, C_s))`` -> ``(B, *2S, filters)``: transposed conv, concat, residual unit."""

    def __init__(self, ndim: int, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.ndim = int(ndim)
        self.filters = check_positive_int(filters, "filters")
        policy = self.dtype_policy
        self.up = conv_layer(
            self.ndim,
            self.filters,
            2,
            strides=2,
            padding="same",
            use_bias=False,
            transpose=True,
            name="up",
            dtype=policy,
        )
        self.unit = UnetrResidualUnit(self.ndim, self.filters, name="unit", dtype=policy)

    config_keys = ("ndim", "filters")

    def build(self, x_shape, skip_shape):
        self.up.build(tuple(x_shape))
        self.unit.build(tuple(skip_shape)[:-1] + (self.filters + skip_shape[-1],))

    def call(self, x, skip):
        return self.unit(ops.concatenate([self.up(x), ops.cast(skip, self.compute_dtype)], axis=-1))


@REGISTRY.register_backbone(name="swin_unetr")
class SwinUNETR(keras.Model):
    """Swin UNETR segmentation backbone; see the module docstring for the architecture and presets.

    Args:
        image_size: spatial size of the input ``(d0, d1[, d2])``, voxels (injected by the model); any size
            of at least ``patch_size x 2^(L-1)`` voxels per axis (padded to a multiple of
            ``patch_size x 2^L`` inside, cropped back). When every axis is at most ``patch_size x 2^L``
            voxels the bottleneck is one voxel, where its instance norms output zero whatever their input:
            its convolutions then learn nothing (a warning says so); fewer stages avoid it.
        preset: ``"base"`` or ``"wssamnet_pp"``.
        feature_size, depths, num_heads, window_size, patch_size, drop_path_rate: override the preset
            (None keeps it); see :class:`~tfreg.layers.swin_encoder.SwinEncoder`.
        gradient_checkpointing: recompute the encoder stages in the backward pass (bool, or one per stage).
        weights: a ``.weights.h5`` file saved from a backbone of the same configuration and image size,
            loaded when the backbone is built (refused, naming the shapes, when it does not fit).
        seed: seed of the stochastic depth draws.
        name: Keras model name.

    Call: ``(B, *image_size, C)`` -> ``(B, *image_size, feature_size)`` features.

    Attributes: ``image_size``, ``ndim``, ``out_channels`` (= the feature size).

    Raises:
        ValueError: an unknown preset (the message lists them), an image too small, heads that do not divide
            a stage's channels.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (),
        preset: str = "base",
        feature_size: Optional[int] = None,
        depths: Optional[Sequence[int]] = None,
        num_heads: Optional[Union[int, Sequence[int]]] = None,
        window_size: Optional[Union[int, Sequence[int]]] = None,
        patch_size: Optional[int] = None,
        drop_path_rate: Optional[float] = None,
        gradient_checkpointing: Union[bool, Sequence[bool]] = False,
        weights: Optional[str] = None,
        seed: Optional[int] = None,
        name: str = "SwinUNETR",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.image_size = _check_shape(image_size, "image_size")
        if len(self.image_size) not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 spatial sizes, got {image_size!r}")
        self.ndim = len(self.image_size)
        self.preset = preset
        arch = resolve_preset(
            "swin_unetr",
            preset,
            SWIN_UNETR_PRESETS,
            feature_size=feature_size,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            patch_size=patch_size,
            drop_path_rate=drop_path_rate,
        )
        self.feature_size, self.depths, self.num_heads = feature_size, depths, num_heads
        self.window_size, self.patch_size, self.drop_path_rate = window_size, patch_size, drop_path_rate
        self.gradient_checkpointing = gradient_checkpointing
        self.weights_path = weights
        self.seed = seed
        features = check_positive_int(arch["feature_size"], "feature_size")
        patch = check_positive_int(arch["patch_size"], "patch_size")
        window = _window(arch["window_size"], self.ndim)
        stages = len(arch["depths"])
        if stages < 2:
            raise ValueError(f"swin_unetr needs at least 2 encoder stages, got depths {list(arch['depths'])}")
        need = patch * 2 ** (stages - 1)
        if min(self.image_size) < need:
            raise ValueError(
                f"swin_unetr: image_size {self.image_size} is too small: every axis needs at least patch_size x "
                f"2^(stages - 1) = {patch} x 2^{stages - 1} = {need} voxels (the deepest stage must hold a token)"
            )
        multiple = patch * 2**stages
        self.padded = tuple(-(-s // multiple) * multiple for s in self.image_size)
        self.out_channels = features
        policy = self.dtype_policy
        self.encoder = SwinEncoder(
            patch_size=patch,
            embed_dim=features,
            depths=arch["depths"],
            num_heads=arch["num_heads"],
            window_size=window,
            qkv_bias=True,
            drop_path_rate=arch["drop_path_rate"],
            patch_norm=False,
            outputs="merged",
            output_norm="plain",
            gradient_checkpointing=gradient_checkpointing,
            seed=seed,
            name="encoder",
        )
        # encoder features h_0..h_L have 2^k F channels; residual units on the input and on h_0..h_{L-2}
        self.input_unit = UnetrResidualUnit(self.ndim, features, name="input_unit", dtype=policy)
        self.skip_units = [
            UnetrResidualUnit(self.ndim, features * 2**k, name=f"skip_unit{k}", dtype=policy) for k in range(stages - 1)
        ]
        self.bottleneck = UnetrResidualUnit(self.ndim, features * 2**stages, name="bottleneck", dtype=policy)
        # decoder: to h_{L-1}'s channels, then to each skip's, ending at F on the input grid
        up_channels = [features * 2 ** (stages - 1)] + [features * 2**k for k in range(stages - 2, -1, -1)] + [features]
        self.ups = [UnetrUpUnit(self.ndim, c, name=f"up{i}", dtype=policy) for i, c in enumerate(up_channels)]

    def build(self, input_shape):
        # built from the known shapes (no call needed), then the pretrained weights load
        shape = (input_shape[0], *self.padded, input_shape[-1])
        self.encoder.build(shape)
        hidden = self.encoder.compute_output_shape(shape)  # h_0 .. h_L
        self.input_unit.build(shape)
        skips = [self.input_unit.compute_output_shape(shape)]
        for k, unit in enumerate(self.skip_units):
            unit.build(hidden[k])
            skips.append(unit.compute_output_shape(hidden[k]))
        self.bottleneck.build(hidden[-1])
        d = self.bottleneck.compute_output_shape(hidden[-1])
        # skips of the decoder, deepest first: h_{L-1} as it is, then the units' outputs
        for up, skip in zip(self.ups, [hidden[-2]] + skips[::-1]):
            up.build(d, skip)
            d = tuple(skip[:-1]) + (up.filters,)
        self.built = True
        if self.weights_path is not None:
            load_pretrained_weights(self, self.weights_path, f"swin_unetr preset {self.preset!r} at {self.image_size}")

    def call(self, inputs, training=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, feature_size)``."""
        if len(inputs.shape) != self.ndim + 2 or tuple(inputs.shape[1:-1]) != self.image_size:
            raise ValueError(
                f"{self.name}: expected input (batch, *{self.image_size}, channels), got shape {tuple(inputs.shape)}"
            )
        x = pad_to_windows(inputs, self.padded)
        hidden = self.encoder(x, training=training)
        skips = [self.input_unit(x)] + [unit(h) for unit, h in zip(self.skip_units, hidden)]
        d = self.bottleneck(hidden[-1])
        for up, skip in zip(self.ups, [hidden[-2]] + skips[::-1]):
            d = up(d, skip)
        return d[(slice(None),) + tuple(slice(0, s) for s in self.image_size)]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    config_keys = (
        "image_size",
        "preset",
        "feature_size",
        "depths",
        "num_heads",
        "window_size",
        "patch_size",
        "drop_path_rate",
        "gradient_checkpointing",
        "seed",
    )

    def get_config(self) -> Dict[str, Any]:
        # the constructor arguments only (keras.Model's own config would describe the layers)
        return dict(name=self.name, weights=self.weights_path, **attribute_config(self))

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "SwinUNETR":
        return cls(**config)


__all__ = ["SwinUNETR", "SWIN_UNETR_PRESETS", "UnetrResidualUnit", "UnetrUpUnit"]
