"""LapIRN (``lapirn``): the Laplacian pyramid registration network, with optional attention gates, 2-D and 3-D.

Mok and Chung 2020, "Large deformation diffeomorphic image registration with Laplacian pyramid networks"
(MICCAI), as released in their code (``miccai2020_model_stage.py``); the attention gates on the skip
connections are those of macJNet (Zhou et al. 2023, "macJNet: weakly-supervised multimodal image deformable
registration using joint learning framework and multi-sampling cascaded MIND"), Oktay et al.'s additive gates.

Pyramid. With ``L = num_levels``, level ``l`` (1-based) works on the grid ``S_l = S / 2^(L - l)`` (level ``L``
is the full resolution ``S = image_size``). The images of level ``l`` are those of level ``l + 1`` halved by a
``2^n`` box average with stride 2 (:func:`tfreg.ops.resize.resize` by 1/2, which averages each pair of voxels
exactly: the coarse voxel sits at the centre of its ``2^n`` fine voxels, the half-pixel convention of tfreg's
resize and of the field up-sampling below). LapIRN pools with a ``3^n`` window, stride 2, padding 1, centred
half a voxel off the coarse grid.

Each level is a small encoder-decoder (channels ``C = num_channels``, LapIRN: 28; every convolution bias-free):

- feature extractor: conv ``3^n`` (in -> C) -> LeakyReLU(0.2) -> conv ``3^n`` (C -> C): the skip ``x``;
- down-sampling: conv ``3^n`` stride 2 (C -> C), plus, from level 2 on, the coarser level's decoder feature
  (its transposed convolution's output, on this grid);
- ``num_residual_blocks`` pre-activation residual blocks, ``h <- lrelu(h + conv(lrelu(conv(lrelu(h)))))``;
- up-sampling: transposed conv ``2^n`` stride 2 (C -> C): the decoder feature ``e`` handed to the next level;
- with ``attention_gates``, :class:`~tfreg.layers.blocks.AttentionGate` on the skip: ``x <- alpha(x, g) * x``
  with the gating signal ``g`` the residual stack's output (half the level's resolution; macJNet's "AG-blocks
  on the skip connections", one per level, in Oktay et al.'s arrangement);
- head: concat ``[x, e]`` -> conv ``3^n`` (2C -> C) -> LeakyReLU -> conv ``3^n`` (C -> ndim) -> softsign x
  ``range_flow``.

LapIRN's head gives the field in the normalised ``[-1, 1]`` coordinates of PyTorch's ``grid_sample``
(``align_corners=True``), where one unit is ``(size - 1) / 2`` voxels of an axis. Here the head's output is
converted to voxels of the level grid: ``softsign(h) * range_flow * (S_l[a] - 1) / 2`` on axis ``a``, so that
every field of this module is in voxels, ij(k) order (tfreg's warp convention: ``warp(moving, ddf)`` samples
the moving image at ``grid + ddf``).

Inputs of a level: level 1 reads ``concat[moving_1, fixed_1]``; level ``l >= 2`` reads ``concat[warp(moving_l,
u), fixed_l, u]`` (``2 + ndim`` channels), ``u`` the coarser level's displacement up-sampled to ``S_l``.
Up-sampling a field by 2 is a linear resize (half-pixel centres) with the values multiplied by the size ratio
(2 per axis): voxel units of the finer grid. Output of level ``l``: ``u + r_l`` (displacement variant), or,
with ``diffeomorphic``, the velocities summed the same way, ``v_l = up(v_{l-1}) + r_l``, and the level's
displacement integrated from ``v_l`` by scaling and squaring (``integration_steps``, LapIRN: 7;
:func:`tfreg.ops.integrate.integrate_dvf`); the next level is still fed the warped image and the up-sampled
*displacement*, as in LapIRN's diffeomorphic code.

Progressive training (LapIRN's protocol: level 1 alone, then level 2 with level 1 frozen for a while, then
level 3 with levels 1 and 2 frozen for a while) uses :meth:`LapIRN.set_stage`: ``active_level`` says how many
levels run; :meth:`LapIRN.call` returns the active level's displacement up-sampled to the full grid (values
scaled), so that a model sees a full-resolution DDF at every stage. :meth:`LapIRN.pyramid` gives each level's
field and images, for losses computed at the level's own resolution as LapIRN does. The training side is
:mod:`tfreg.engine.progressive` (Keras callback) and the ``progressive`` trainer.

Checkpoint keys (:func:`tfreg.engine.checkpoint.named_weights`): ``levels/<l - 1>/extract_1/kernel``,
``.../extract_2``, ``.../down``, ``.../blocks/<i>/conv_1`` and ``conv_2``, ``.../up``, ``.../gate/...`` (with
gates), ``.../head_1``, ``.../head_2``.

Parameter count (all bias-free, per level ``3^n C (C_in + 2 C + 2 R C + 2 C + ndim) + 2^n C^2`` with ``R`` residual
blocks and ``C_in`` = 2 at level 1, ``2 + ndim`` above): LapIRN's defaults in 3-D (``C = 28``, ``R = 5``, 3 levels)
have 923,748 weights; the attention gates add ``2^n C i + C i + 2 i + 1`` each (``i = C // 2``, Oktay et al.'s
gates carry biases): 934,419 with gates.

Choices of ours: the ``2^n`` box average for the input pyramid (above); Keras' default (Glorot uniform)
initialisation except the last convolution (``out_kernel_initializer``; DDF models pass ``zeros`` so training
starts at the identity, where LapIRN uses PyTorch's default); image sizes must be divisible by ``2^L`` (no
padding or cropping: an error names ``image_size``).
"""

from typing import Any, Dict, Optional, Sequence

import keras
from keras import ops

from tfreg.checks import check_bool, check_int, check_number, check_positive_int
from tfreg.layers.blocks import AttentionGate
from tfreg.layers.conv import conv_layer
from tfreg.ops.grid import _check_shape
from tfreg.ops.integrate import integrate_dvf
from tfreg.ops.resize import resize
from tfreg.ops.warp import warp
from tfreg.registry import REGISTRY


def upsample_field(field, size: Sequence[int]):
    """A displacement (or velocity) field in voxels brought onto another grid of the same extent.

    Args:
        field: ``(B, *S, ndim)``, voxels of the grid ``S``, ij(k) order.
        size: the target grid ``S'`` (``ndim`` ints).

    Returns:
        ``(B, *S', ndim)``: the field linearly resized (half-pixel centres) with component ``a`` multiplied by
        ``S'[a] / S[a]``, i.e. the same displacement in voxels of ``S'``. A constant field ``c`` up-sampled by 2
        is ``2 c``.
    """
    size = tuple(int(s) for s in size)
    old = tuple(int(s) for s in field.shape[1:-1])
    if size == old:
        return field
    ratio = ops.convert_to_tensor([n / o for n, o in zip(size, old)], dtype=field.dtype)
    return resize(field, size) * ratio


def halve(images):
    """``(B, *S, C)`` -> ``(B, *S / 2, C)``: the mean of each ``2^n`` block (``S`` even on every axis)."""
    return resize(images, tuple(int(s) // 2 for s in images.shape[1:-1]))


class ResidualBlock(keras.layers.Layer):
    """LapIRN's pre-activation residual block followed by its LeakyReLU, bias-free, channels kept.

    ``out = lrelu(x + conv_2(lrelu(conv_1(lrelu(x)))))`` with ``3^n`` convolutions of ``channels`` filters.

    Args:
        ndim: 2 or 3. channels: filters (= the input's channels). negative_slope: LeakyReLU slope.
    """

    def __init__(self, ndim: int, channels: int, negative_slope: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.ndim = ndim
        self.channels = channels
        self.negative_slope = negative_slope
        self.conv_1 = conv_layer(ndim, channels, 3, padding="same", use_bias=False, name="conv_1")
        self.conv_2 = conv_layer(ndim, channels, 3, padding="same", use_bias=False, name="conv_2")

    def build(self, input_shape):
        self.conv_1.build(input_shape)
        self.conv_2.build(input_shape)
        self.built = True

    def call(self, x):
        a = self.negative_slope
        h = self.conv_2(ops.leaky_relu(self.conv_1(ops.leaky_relu(x, a)), a))
        return ops.leaky_relu(x + h, a)


class LapIRNLevel(keras.layers.Layer):
    """The network of one pyramid level (see the module docstring); its head's field in level voxels.

    Args:
        ndim: 2 or 3. size: the level's grid ``S_l``. channels: ``C``. num_residual_blocks: >= 0.
        negative_slope, range_flow: LapIRN's 0.2 and 0.4. attention_gate: gate the skip.
        out_kernel_initializer: initializer of the last convolution.

    Call: ``(x (B, *S_l, C_in), coarse (B, *S_l / 2, C) or None)`` -> ``(field (B, *S_l, ndim) voxels, decoder
    feature (B, *S_l, C))``.
    """

    def __init__(
        self,
        ndim: int,
        size: Sequence[int],
        channels: int,
        num_residual_blocks: int,
        negative_slope: float,
        range_flow: float,
        attention_gate: bool,
        out_kernel_initializer: Any,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.ndim = ndim
        self.size = tuple(size)
        self.channels = channels
        self.negative_slope = negative_slope
        self.range_flow = range_flow

        def conv(filters, kernel=3, name=None, **options):
            return conv_layer(ndim, filters, kernel, padding="same", use_bias=False, name=name, **options)

        self.extract_1 = conv(channels, name="extract_1")
        self.extract_2 = conv(channels, name="extract_2")
        self.down = conv(channels, strides=2, name="down")
        self.blocks = [
            ResidualBlock(ndim, channels, negative_slope, name=f"block_{i}") for i in range(num_residual_blocks)
        ]
        self.up = conv_layer(ndim, channels, 2, strides=2, padding="same", use_bias=False, transpose=True, name="up")
        self.gate = AttentionGate(name="gate") if attention_gate else None
        self.head_1 = conv(channels, name="head_1")
        self.head_2 = conv(ndim, name="head_2", kernel_initializer=out_kernel_initializer)
        # LapIRN's [-1, 1] units -> voxels of this level, per axis
        self.voxels_per_unit = [(s - 1) / 2.0 for s in self.size]

    def build(self, input_shape):
        c = self.channels
        full = (None,) + self.size
        half = (None,) + tuple(s // 2 for s in self.size)
        self.extract_1.build(tuple(input_shape))
        self.extract_2.build(full + (c,))
        self.down.build(full + (c,))
        for block in self.blocks:
            block.build(half + (c,))
        self.up.build(half + (c,))
        if self.gate is not None:
            self.gate.build([full + (c,), half + (c,)])
        self.head_1.build(full + (2 * c,))
        self.head_2.build(full + (c,))
        self.built = True

    def call(self, x, coarse=None):
        a = self.negative_slope
        skip = self.extract_2(ops.leaky_relu(self.extract_1(x), a))
        h = self.down(skip)
        if coarse is not None:
            h = h + coarse
        for block in self.blocks:
            h = block(h)
        decoded = self.up(h)
        if self.gate is not None:
            skip = self.gate([skip, h])
        y = self.head_2(ops.leaky_relu(self.head_1(ops.concatenate([skip, decoded], axis=-1)), a))
        scale = ops.convert_to_tensor(self.voxels_per_unit, dtype=y.dtype)
        return ops.softsign(y) * (self.range_flow * scale), decoded


@REGISTRY.register_backbone(name="lapirn")
class LapIRN(keras.Model):
    """LapIRN with optional attention gates; see the module docstring for the architecture and units.

    Args:
        image_size: the fixed grid ``S``, 2 or 3 ints, each divisible by ``2^num_levels``.
        out_channels: must be ``ndim`` (the displacement's components); None means ``ndim``.
        num_channels: channels ``C`` of every level's network (LapIRN: ``start_channel`` 7 x 4 = 28).
        num_levels: pyramid levels ``L`` (LapIRN: 3); level ``l`` works at ``1 / 2^(L - l)`` resolution.
        num_residual_blocks: residual blocks per level, >= 0 (LapIRN: 5).
        negative_slope: the LeakyReLUs' slope (LapIRN: 0.2).
        attention_gates: an attention gate on each level's skip connection (macJNet); off for LapIRN.
        diffeomorphic: sum velocities and integrate each level's (LapIRN's diffeomorphic variant).
        range_flow: the head's bound in LapIRN's normalised units (0.4): ``|r_l[a]| < range_flow (S_l[a] - 1)/2``.
        integration_steps: scaling-and-squaring steps of the diffeomorphic variant (7).
        out_kernel_initializer: initializer of each level's last convolution (DDF models: ``"zeros"``).
        out_activation: must be None: the head ends in LapIRN's softsign x range_flow.
        name: Keras model name.

    Call: ``(B, *S, 2)`` = ``concat[moving on the fixed grid, fixed]`` -> ``(B, *S, ndim)``, the displacement of
    the active level up-sampled to ``S`` (values in voxels of ``S``). By default every level is active.

    Attributes: ``image_size``, ``ndim``, ``sizes`` (the level grids, coarse to fine), ``levels`` (one
    :class:`LapIRNLevel` each), ``active_level``, ``frozen_levels``.

    Raises:
        ValueError: naming the argument, for bad values or sizes not divisible by ``2^num_levels``.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (),
        out_channels: Optional[int] = None,
        num_channels: int = 28,
        num_levels: int = 3,
        num_residual_blocks: int = 5,
        negative_slope: float = 0.2,
        attention_gates: bool = False,
        diffeomorphic: bool = False,
        range_flow: float = 0.4,
        integration_steps: int = 7,
        out_kernel_initializer: Any = "glorot_uniform",
        out_activation: Optional[str] = None,
        name: str = "LapIRN",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.image_size = _check_shape(image_size, "image_size")
        if len(self.image_size) not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 spatial sizes, got {image_size!r}")
        self.ndim = len(self.image_size)
        if out_channels is not None and check_positive_int(out_channels, "out_channels") != self.ndim:
            raise ValueError(
                f"out_channels must be ndim = {self.ndim} (LapIRN predicts a displacement field), got {out_channels!r}"
            )
        self.out_channels = self.ndim
        self.num_channels = check_positive_int(num_channels, "num_channels")
        self.num_levels = check_positive_int(num_levels, "num_levels")
        self.num_residual_blocks = check_int(num_residual_blocks, "num_residual_blocks", minimum=0)
        self.negative_slope = check_number(negative_slope, "negative_slope")
        self.attention_gates = check_bool(attention_gates, "attention_gates")
        self.diffeomorphic = check_bool(diffeomorphic, "diffeomorphic")
        self.range_flow = check_number(range_flow, "range_flow", exclusive_minimum=True)
        self.integration_steps = check_int(integration_steps, "integration_steps", minimum=0)
        if out_activation is not None:
            raise ValueError(
                f"out_activation must be None for lapirn: its head ends in LapIRN's softsign x range_flow, which "
                f"bounds the field; got {out_activation!r}"
            )
        self.out_activation = None
        self.out_kernel_initializer = out_kernel_initializer
        factor = 2**self.num_levels
        if any(s % factor for s in self.image_size):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**num_levels = {factor} on every axis (level 1 "
                f"works at 1/{factor // 2} resolution and halves it once more in its down-sampling convolution); "
                "resize or crop the images (dataset.*_image_shape), or lower num_levels"
            )
        self.sizes = [
            tuple(s // 2 ** (self.num_levels - l) for s in self.image_size) for l in range(1, self.num_levels + 1)
        ]
        self.levels = [
            LapIRNLevel(
                self.ndim,
                size,
                self.num_channels,
                self.num_residual_blocks,
                self.negative_slope,
                self.range_flow,
                self.attention_gates,
                out_kernel_initializer,
                name=f"level_{l + 1}",
            )
            for l, size in enumerate(self.sizes)
        ]
        self.active_level = self.num_levels
        self.frozen_levels = ()

    # ------------------------------------------------------------------ progressive training
    def set_stage(self, active_level: int, frozen_levels: Sequence[int] = ()) -> None:
        """Choose the levels that run and those that train.

        Args:
            active_level: 1..num_levels: levels ``1..active_level`` run; :meth:`call` returns the displacement
                of ``active_level`` up-sampled to the full grid.
            frozen_levels: levels (among ``1..active_level - 1``) whose weights do not train
                (``trainable = False``).

        Levels finer than ``active_level`` take no part in the forward pass and are set non-trainable too
        (their gradient would be None). Every other level is made trainable. A compiled Keras train function
        must be retraced afterwards (:func:`tfreg.engine.progressive.apply_stage` does it), and an optimizer
        must have been built on every level's variables beforehand (it then steps any subset of them).

        Raises:
            ValueError: an active level outside ``1..num_levels`` or a frozen level outside ``1..active_level - 1``.
        """
        active = check_int(active_level, "active_level", minimum=1, maximum=self.num_levels)
        if isinstance(frozen_levels, (str, bytes)) or not isinstance(frozen_levels, (list, tuple)):
            raise ValueError(f"frozen_levels must be a list of levels (ints), got {frozen_levels!r}")
        frozen = tuple(sorted({check_int(f, "frozen_levels", minimum=1) for f in frozen_levels}))
        bad = [f for f in frozen if f >= active]
        if bad:
            raise ValueError(
                f"frozen_levels must be coarser than active_level {active} (levels 1..{active - 1}), got {bad}"
            )
        for l, level in enumerate(self.levels, start=1):
            level.trainable = l <= active and l not in frozen
        self.active_level = active
        self.frozen_levels = frozen

    # ------------------------------------------------------------------ forward
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for l, (level, size) in enumerate(zip(self.levels, self.sizes), start=1):
            channels = input_shape[-1] if l == 1 else 2 + self.ndim
            level.build((None,) + size + (channels,))
        self.built = True

    def _check_input(self, inputs):
        shape = tuple(inputs.shape)
        if len(shape) != self.ndim + 2 or shape[1:-1] != self.image_size or shape[-1] != 2:
            raise ValueError(
                f"{self.name}: expected input (batch, *{self.image_size}, 2) = concat[moving, fixed], got shape {shape}"
            )

    def pyramid(self, inputs, training=None) -> list:
        """Every level's result up to the active one, coarse to fine.

        Args:
            inputs: ``(B, *S, 2)``, channel 0 the moving image on the fixed grid, channel 1 the fixed image.

        Returns:
            a list of ``active_level`` dicts, entry ``l - 1`` for level ``l`` on its grid ``S_l``:
            ``"ddf"`` ``(B, *S_l, ndim)`` displacement in voxels of ``S_l``; ``"moving"`` ``(B, *S_l, 1)`` the
            level's moving image warped by it; ``"fixed"`` ``(B, *S_l, 1)``; with ``diffeomorphic`` also
            ``"dvf"`` ``(B, *S_l, ndim)``, the summed velocity (voxels per unit time).
        """
        self._check_input(inputs)
        images = [ops.cast(inputs, "float32")]
        for _ in range(self.num_levels - 1):
            images.insert(0, halve(images[0]))
        results = []
        ddf = velocity = coarse = None
        for l in range(1, self.active_level + 1):
            x = images[l - 1]
            moving, fixed = x[..., :1], x[..., 1:2]
            size = self.sizes[l - 1]
            if l == 1:
                level_input = x
            else:
                ddf_up = upsample_field(ddf, size)
                level_input = ops.concatenate([warp(moving, ddf_up), fixed, ddf_up], axis=-1)
            residual, coarse = self.levels[l - 1](level_input, coarse, training=training)
            if self.diffeomorphic:
                velocity = residual if l == 1 else upsample_field(velocity, size) + residual
                ddf = integrate_dvf(velocity, self.integration_steps)
            else:
                ddf = residual if l == 1 else ddf_up + residual
            entry = {"ddf": ddf, "moving": warp(moving, ddf), "fixed": fixed}
            if self.diffeomorphic:
                entry["dvf"] = velocity
            results.append(entry)
        return results

    def to_full_resolution(self, field):
        """A level's field ``(B, *S_l, ndim)`` (level voxels) as ``(B, *S, ndim)`` in voxels of ``S``."""
        return upsample_field(field, self.image_size)

    def call(self, inputs, training=None):
        """``(B, *S, 2)`` -> ``(B, *S, ndim)``: the active level's displacement on the full grid, voxels."""
        return self.to_full_resolution(self.pyramid(inputs, training=training)[-1]["ddf"])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.ndim,)

    def get_config(self) -> Dict[str, Any]:
        # the constructor arguments only (keras.Model's own config would describe the layers)
        return dict(
            name=self.name,
            image_size=list(self.image_size),
            out_channels=self.out_channels,
            num_channels=self.num_channels,
            num_levels=self.num_levels,
            num_residual_blocks=self.num_residual_blocks,
            negative_slope=self.negative_slope,
            attention_gates=self.attention_gates,
            diffeomorphic=self.diffeomorphic,
            range_flow=self.range_flow,
            integration_steps=self.integration_steps,
            out_kernel_initializer=self.out_kernel_initializer,
            out_activation=self.out_activation,
        )

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "LapIRN":
        return cls(**config)


__all__ = ["LapIRN", "LapIRNLevel", "ResidualBlock", "upsample_field", "halve"]
