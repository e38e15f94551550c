"""TransMorph (Chen et al. 2022, "TransMorph: Transformer for unsupervised medical image registration"):
a Swin transformer encoder and a convolutional decoder with skips, as a registration backbone.

Registered as ``transmorph``; used by the ``ddf`` model (a displacement field), by ``dvf`` (a velocity
field, integrated by scaling and squaring: the diffeomorphic variant) and by the segmentation-guided
models, whose input it sees as the concatenated (attentive) moving and fixed images. 2-D and 3-D.

Architecture, for ``L`` encoder stages (``depths``), embedding ``E`` and patch ``p`` (4)::

    x (B, *I, C) -> SwinEncoder(outputs="stages") -> s_0 .. s_{L-1}  (grids I / (p 2^i), 2^i E channels)
    c_half = ConvUnit(E / 2)(avg_pool_3^n_stride_2(x))      # conv skip at I / 2     (conv_skip)
    c_full = ConvUnit(reg_head_channels)(x)                 # conv skip at I         (conv_skip)
    y = s_{L-1}
    for i = L-2 .. 0:  y = Up(y, s_i) -> 2^i E channels      # transformer skips      (transformer_skip)
    y = Up(y, c_half) -> E / 2;  y = Up(y, c_full) -> reg_head_channels
    out = conv 3^n -> out_channels (out_kernel_initializer, out_activation)

``Up(y, s)``: linear resize of ``y`` to ``s``'s grid, concatenation with ``s`` and two ConvUnits. A
ConvUnit is a ``3^n`` convolution without bias, instance normalization and a leaky ReLU (0.01). Without a
skip, ``Up`` resizes and convolves only.

Presets (:data:`TRANSMORPH_PRESETS`, TransMorph's ``configs_TransMorph.py``): ``tiny`` (E 6, heads 2-2-4-4),
``small`` (E 48, heads 4), ``base`` ("TransMorph": E 96, heads 4-4-8-8), ``large`` (E 128, depths
2-2-12-2, heads 4-4-8-16); all with depths 2-2-4-2 unless said, patch 4, window 5x6x7 (3-D; 7x7 in 2-D),
MLP ratio 4, no qkv bias, stochastic depth 0.3, a 16-channel registration head. Any argument given
explicitly overrides the preset's. The published parameter counts are 0.24 M, 11.76 M, 46.77 M and
108.34 M; ours differ by the instance normalizations' scale and offset (PyTorch's ``InstanceNorm3d`` has
none by default) and the 2 input channels.

Differences to the published code, by choice: the window attention does not attend to padding tokens
(:func:`tfreg.ops.windows.attention_mask_table`); windows are clipped to grids smaller than them (Swin UNETR's
rule) instead of padding such grids; the average pooling excludes padding from its mean (Keras' "same").

Image size: every axis must hold at least one window at stage 0: ``image_size >= patch_size x window``
(80 x 96 x 112 and 160 x 192 x 224 both do with the presets' 4 and 5 x 6 x 7). Sizes that are not
multiples of ``p 2^(L-1)`` are padded by the encoder and the decoder resizes back.
"""

from typing import Any, Dict, Optional, Sequence, Union

import keras
from keras import ops

from tfreg.checks import check_bool, check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.layers.swin_encoder import SwinEncoder
from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.blocks import ConvNormAct
from tfreg.models.backbones.presets import resolve_preset
from tfreg.models.backbones.pretrained import load_pretrained_weights
from tfreg.ops.resize import resize
from tfreg.registry import REGISTRY

#: TransMorph's published sizes; every key can be overridden by the backbone's argument of the same name.
TRANSMORPH_PRESETS: Dict[str, Dict[str, Any]] = {
    "tiny": dict(embed_dim=6, depths=(2, 2, 4, 2), num_heads=(2, 2, 4, 4)),
    "small": dict(embed_dim=48, depths=(2, 2, 4, 2), num_heads=(4, 4, 4, 4)),
    "base": dict(embed_dim=96, depths=(2, 2, 4, 2), num_heads=(4, 4, 8, 8)),
    "large": dict(embed_dim=128, depths=(2, 2, 12, 2), num_heads=(4, 4, 8, 16)),
}
for _preset in TRANSMORPH_PRESETS.values():
    _preset.update(patch_size=4, mlp_ratio=4.0, qkv_bias=False, drop_path_rate=0.3, reg_head_channels=16)

#: The presets' window: TransMorph's 5 x 6 x 7 (fits 160 x 192 x 224 at every stage); 7 x 7 in 2-D.
DEFAULT_WINDOW = {3: (5, 6, 7), 2: (7, 7)}


def _conv_unit(ndim: int, filters: int, name: str, dtype) -> ConvNormAct:
    return ConvNormAct(ndim, filters, 3, norm="instance", activation="leaky_relu", name=name, dtype=dtype)


@REGISTRY.register_backbone(name="transmorph")
class TransMorph(Backbone):
    """TransMorph registration backbone; see the module docstring for the architecture and presets.

    Args:
        image_size: spatial size of the input ``(d0, d1[, d2])``, voxels (injected by the model).
        out_channels: channels of the output field (injected: ``ndim`` for ``ddf``/``dvf``).
        out_kernel_initializer, out_activation: of the output convolution (injected by the model).
        num_channel_initial: DeepReg's argument, not used (the width is ``embed_dim``); accepted so that
            DeepReg-style configs validate.
        preset: ``"tiny"``, ``"small"``, ``"base"`` or ``"large"``.
        embed_dim, depths, num_heads, window_size, patch_size, mlp_ratio, qkv_bias, drop_path_rate,
            reg_head_channels: override the preset (None keeps it); see
            :class:`~tfreg.layers.swin_encoder.SwinEncoder`. ``window_size`` defaults to
            :data:`DEFAULT_WINDOW`.
        conv_skip: the two convolutional skips from the image (TransMorph's default; off is its
            "no conv skip" ablation).
        transformer_skip: the skips from the encoder stages (off: "no transformer skip").
        gradient_checkpointing: recompute the encoder stages in the backward pass (bool, or one per stage).
        weights: a ``.weights.h5`` file saved from a backbone of the same configuration, loaded when the
            backbone is built (refused, naming the shapes, when it does not fit).
        seed: seed of the stochastic depth draws.

    Call: ``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``, float32 (the head runs in float32
    under a mixed precision policy, so that fields and warping stay float32).

    Raises:
        ValueError: unknown preset (the message lists them), an image smaller than ``patch_size x
            window_size`` on some axis, heads that do not divide a stage's channels, or other bad values.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (),
        out_channels: int = 3,
        out_kernel_initializer: Optional[str] = "zeros",
        out_activation: Optional[str] = None,
        num_channel_initial: int = 1,
        preset: str = "base",
        embed_dim: Optional[int] = None,
        depths: Optional[Sequence[int]] = None,
        num_heads: Optional[Union[int, Sequence[int]]] = None,
        window_size: Optional[Union[int, Sequence[int]]] = None,
        patch_size: Optional[int] = None,
        mlp_ratio: Optional[float] = None,
        qkv_bias: Optional[bool] = None,
        drop_path_rate: Optional[float] = None,
        reg_head_channels: Optional[int] = None,
        conv_skip: bool = True,
        transformer_skip: bool = True,
        gradient_checkpointing: Union[bool, Sequence[bool]] = False,
        weights: Optional[str] = None,
        seed: Optional[int] = None,
        name: str = "TransMorph",
        **kwargs,
    ):
        super().__init__(
            image_size=image_size,
            num_channel_initial=num_channel_initial,
            out_kernel_initializer=out_kernel_initializer,
            out_activation=out_activation,
            out_channels=out_channels,
            name=name,
            **kwargs,
        )
        self.preset = preset
        arch = resolve_preset(
            "transmorph",
            preset,
            TRANSMORPH_PRESETS,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            patch_size=patch_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_path_rate=drop_path_rate,
            reg_head_channels=reg_head_channels,
        )
        # the explicit arguments as given (None: the preset's), for get_config
        self.embed_dim, self.depths, self.num_heads = embed_dim, depths, num_heads
        self.window_size, self.patch_size, self.mlp_ratio = window_size, patch_size, mlp_ratio
        self.qkv_bias, self.drop_path_rate, self.reg_head_channels = qkv_bias, drop_path_rate, reg_head_channels
        self.conv_skip = check_bool(conv_skip, "conv_skip")
        self.transformer_skip = check_bool(transformer_skip, "transformer_skip")
        self.gradient_checkpointing = gradient_checkpointing
        self.weights_path = weights
        self.seed = seed
        self.arch = arch
        window = arch.get("window_size") or DEFAULT_WINDOW[self.ndim]
        if isinstance(window, int):
            window = (window,) * self.ndim
        window = tuple(check_positive_int(w, "window_size") for w in window)
        if len(window) != self.ndim:
            raise ValueError(f"window_size must have {self.ndim} entries for a {self.ndim}-D image, got {list(window)}")
        embed = check_positive_int(arch["embed_dim"], "embed_dim")
        patch = check_positive_int(arch["patch_size"], "patch_size")
        need = tuple(patch * w for w in window)
        if any(s < n for s, n in zip(self.image_size, need)):
            raise ValueError(
                f"transmorph: image_size {self.image_size} is smaller than patch_size x window_size = {patch} x "
                f"{window} = {need} on some axis; stage 0 must hold at least one attention window. Use a smaller "
                "window_size or patch_size, or a larger image."
            )
        if self.conv_skip and embed < 2:
            raise ValueError(
                f"transmorph: conv_skip needs embed_dim >= 2 (its half-resolution skip has "
                f"embed_dim // 2 channels), got {embed}"
            )
        self.encoder = SwinEncoder(
            patch_size=patch,
            embed_dim=embed,
            depths=arch["depths"],
            num_heads=arch["num_heads"],
            window_size=window,
            mlp_ratio=arch["mlp_ratio"],
            qkv_bias=arch["qkv_bias"],
            drop_path_rate=arch["drop_path_rate"],
            patch_norm=True,
            outputs="stages",
            output_norm="affine",
            gradient_checkpointing=gradient_checkpointing,
            seed=seed,
            name="encoder",
        )
        stages = len(self.encoder.depths)
        head = check_positive_int(arch["reg_head_channels"], "reg_head_channels")
        self.decoder_channels = [embed * 2**i for i in range(stages - 2, -1, -1)] + [max(embed // 2, 1), head]
        policy = self.dtype_policy
        self.ups = [
            [_conv_unit(self.ndim, c, f"up{k}_conv{j}", policy) for j in range(2)]
            for k, c in enumerate(self.decoder_channels)
        ]
        if self.conv_skip:
            pool = keras.layers.AveragePooling3D if self.ndim == 3 else keras.layers.AveragePooling2D
            # float32: TensorFlow has no float16 AvgPool3D kernel on the CPU (and the pool of the image is cheap)
            self.pool = pool(3, strides=2, padding="same", name="skip_pool", dtype="float32")
            self.skip_half = _conv_unit(self.ndim, self.decoder_channels[-2], "conv_skip_half", policy)
            self.skip_full = _conv_unit(self.ndim, head, "conv_skip_full", policy)
        # float32 head: the field feeds the warping and the losses, which stay float32 under mixed precision
        self.head = conv_layer(
            self.ndim,
            self.out_channels,
            3,
            padding="same",
            kernel_initializer=self.out_kernel_initializer,
            bias_initializer="zeros",
            activation=self.out_activation,
            name="registration_head",
            dtype="float32",
        )

    def build(self, input_shape):
        # every sub-layer is built from the known shapes (no call needed), then the pretrained weights load
        input_shape = tuple(input_shape)
        channels = input_shape[-1]
        self.encoder.build(input_shape)
        grids = [tuple(shape[1:-1]) for shape in self.encoder.compute_output_shape(input_shape)]
        stage_channels = self.encoder.output_channels()
        half = tuple(-(-s // 2) for s in self.image_size)
        targets = grids[-2::-1] + [half, self.image_size]
        skips = [c if self.transformer_skip else 0 for c in stage_channels[-2::-1]]
        if self.conv_skip:
            self.skip_half.build((None, *half, channels))
            self.skip_full.build((None, *self.image_size, channels))
            skips += [self.decoder_channels[-2], self.decoder_channels[-1]]
        else:
            skips += [0, 0]
        previous = stage_channels[-1]
        for units, size, skip, filters in zip(self.ups, targets, skips, self.decoder_channels):
            units[0].build((None, *size, previous + skip))
            units[1].build((None, *size, filters))
            previous = filters
        self.head.build((None, *self.image_size, previous))
        self.built = True
        if self.weights_path is not None:
            load_pretrained_weights(self, self.weights_path, f"transmorph preset {self.preset!r} at {self.image_size}")

    def _up(self, k: int, y, skip, size, training):
        y = resize(y, tuple(size))
        if skip is not None:
            y = ops.concatenate([y, ops.cast(skip, y.dtype)], axis=-1)
        for unit in self.ups[k]:
            y = unit(y, training=training)
        return y

    def call(self, inputs, training=None, mask=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``."""
        if len(inputs.shape) != self.ndim + 2 or tuple(inputs.shape[1:-1]) != self.image_size:
            raise ValueError(
                f"{self.name}: expected input (batch, *{self.image_size}, channels), got shape {tuple(inputs.shape)}"
            )
        stages = self.encoder(inputs, training=training)
        half = tuple(-(-s // 2) for s in self.image_size)
        c_half = c_full = None
        if self.conv_skip:
            c_half = self.skip_half(self.pool(inputs), training=training)
            c_full = self.skip_full(inputs, training=training)
        y = stages[-1]
        k = 0
        for i in range(len(stages) - 2, -1, -1):
            skip = stages[i] if self.transformer_skip else None
            y = self._up(k, y, skip, stages[i].shape[1:-1], training)
            k += 1
        y = self._up(k, y, c_half, half, training)
        y = self._up(k + 1, y, c_full, self.image_size, training)
        return self.head(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    config_keys = (
        "preset",
        "embed_dim",
        "depths",
        "num_heads",
        "window_size",
        "patch_size",
        "mlp_ratio",
        "qkv_bias",
        "drop_path_rate",
        "reg_head_channels",
        "conv_skip",
        "transformer_skip",
        "gradient_checkpointing",
        "seed",
    )

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["weights"] = self.weights_path
        return config


__all__ = ["TransMorph", "TRANSMORPH_PRESETS", "DEFAULT_WINDOW"]
