"""The Swin transformer encoder shared by TransMorph and Swin UNETR, 2-D and 3-D, channels-last.

Liu et al. 2021 (Swin Transformer), in the 3-D form of TransMorph (Chen et al. 2022) and Swin UNETR
(Hatamizadeh et al. 2022)::

    image (B, *I, C_in)
      -> PatchEmbedding: pad I to a multiple of p, p^n convolution with stride p -> (B, *I/p, E) [, LN]
      -> stage 0: depths[0] SwinBlocks (unshifted, shifted, ...) at E channels
      -> PatchMerging (2^n neighbours concatenated, LN, linear to 2 E) -> stage 1 at 2 E, 1/2 the grid
      -> ... stage L-1 at 2^(L-1) E

``outputs`` chooses what the encoder returns (each through an output LayerNorm, ``output_norm``):

- ``"stages"`` (TransMorph, Swin): the output of every stage, ``[s_0, ..., s_{L-1}]``, ``s_i`` of shape
  ``(B, *G_i, 2^i E)``; patch merging only between stages;
- ``"merged"`` (Swin UNETR): the patch embedding and every stage's merged output, ``[e, m_0, ...,
  m_{L-1}]``, ``m_i`` of shape ``(B, *G_{i+1}, 2^(i+1) E)``; a patch merging after the last stage too.

``G_0 = ceil(I / p)`` and ``G_{i+1} = ceil(G_i / 2)`` (patch merging pads odd grids by one token).

Stochastic depth follows Swin's linear schedule over all blocks. ``gradient_checkpointing`` (per stage)
recomputes a stage's blocks in the backward pass (``keras.remat``) instead of keeping their activations:
less memory, about one more forward pass of time.
"""

from __future__ import annotations

from typing import List, Sequence, Union

import keras
from keras import ops

from tfreg.checks import check_bool, check_choice, check_number, check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.layers.stochastic_depth import drop_path_rates, stochastic_depth_scales
from tfreg.layers.window_attention import SwinBlock, _window, dense, layer_norm
from tfreg.ops.windows import pad_to_windows
from tfreg.serialization import AttributeConfigMixin

#: What :class:`SwinEncoder` returns (see the module docstring).
ENCODER_OUTPUTS = ("stages", "merged")
#: The encoder's output normalisation: LayerNorm with weights, without (Swin UNETR), or none.
OUTPUT_NORMS = ("affine", "plain", "none")


def _ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


class PatchEmbedding(AttributeConfigMixin, keras.layers.Layer):
    """Non-overlapping patches to tokens: ``(B, *I, C)`` -> ``(B, *ceil(I / p), E)``.

    The image is zero-padded at the end of each axis to a multiple of ``patch_size``, then a ``p^n``
    convolution with stride ``p`` and a bias projects each patch to ``E`` channels, optionally followed by
    a LayerNorm (TransMorph: yes; Swin UNETR: no). No positional embedding (neither network uses one: the
    relative position bias of the attention carries position).

    Args:
        patch_size: ``p``, int >= 1.
        embed_dim: ``E``, int >= 1.
        norm: LayerNorm after the projection.
    """

    def __init__(self, patch_size: int, embed_dim: int, norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = check_positive_int(patch_size, "patch_size")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.norm = check_bool(norm, "norm")

    config_keys = ("patch_size", "embed_dim", "norm")

    def build(self, input_shape):
        ndim = len(input_shape) - 2
        self.padded = tuple(_ceil_div(s, self.patch_size) * self.patch_size for s in input_shape[1:-1])
        self.proj = conv_layer(
            ndim, self.embed_dim, self.patch_size, strides=self.patch_size, padding="valid", dtype=self.dtype_policy
        )
        self.proj.build((input_shape[0], *self.padded, input_shape[-1]))
        self.norm_layer = layer_norm("norm", dtype=self.dtype_policy) if self.norm else None
        if self.norm_layer is not None:
            self.norm_layer.build((None, self.embed_dim))

    def call(self, x):
        x = self.proj(pad_to_windows(x, self.padded))
        return self.norm_layer(x) if self.norm_layer is not None else x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(_ceil_div(s, self.patch_size) for s in input_shape[1:-1]), self.embed_dim)


class PatchMerging(AttributeConfigMixin, keras.layers.Layer):
    """Halve the grid, double the channels: ``(B, *G, C)`` -> ``(B, *ceil(G / 2), 2 C)``.

    Each ``2^n`` block of neighbouring tokens (odd grids zero-padded at the end) is concatenated to
    ``2^n C`` channels, layer-normalised and projected to ``2 C`` without a bias (Swin; TransMorph's and
    Swin UNETR's 3-D form, ``8 C -> 2 C``).
    """

    def build(self, input_shape):
        ndim = len(input_shape) - 2
        channels = int(input_shape[-1])
        self.padded = tuple(2 * _ceil_div(s, 2) for s in input_shape[1:-1])
        self.norm = layer_norm("norm", dtype=self.dtype_policy)
        self.norm.build((None, 2**ndim * channels))
        self.reduction = dense(2 * channels, use_bias=False, name="reduction", dtype=self.dtype_policy)
        self.reduction.build((None, 2**ndim * channels))

    def call(self, x):
        ndim = len(x.shape) - 2
        channels = x.shape[-1]
        x = pad_to_windows(x, self.padded)
        split = []
        for p in self.padded:
            split += [p // 2, 2]
        x = ops.reshape(x, (-1, *split, channels))
        # (B, g_0, 2, g_1, 2, ..., C) -> (B, g_0, g_1, ..., 2, 2, ..., C) -> (B, *g, 2^n C)
        order = [0] + [1 + 2 * i for i in range(ndim)] + [2 + 2 * i for i in range(ndim)] + [1 + 2 * ndim]
        x = ops.transpose(x, order)
        x = ops.reshape(x, (-1, *(p // 2 for p in self.padded), 2**ndim * channels))
        return self.reduction(self.norm(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(_ceil_div(s, 2) for s in input_shape[1:-1]), 2 * input_shape[-1])


def _per_stage(value, stages: int, name: str, check) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != stages:
            raise ValueError(f"{name} must have one entry per stage ({stages}), got {list(value)}")
        return [check(v, name) for v in value]
    return [check(value, name)] * stages


class SwinEncoder(AttributeConfigMixin, keras.layers.Layer):
    """Swin transformer encoder; see the module docstring for the architecture and outputs.

    Args:
        patch_size: the patch ``p`` of the embedding, int >= 1 (TransMorph 4, Swin UNETR 2).
        embed_dim: channels ``E`` of stage 0, int >= 1.
        depths: blocks per stage, e.g. ``[2, 2, 4, 2]``; its length is the number of stages ``L``.
        num_heads: attention heads per stage (one int per stage, or one for all); stage ``i``'s channels
            ``2^i E`` must be a multiple.
        window_size: the attention window in tokens, one int per spatial axis or one for all (clipped to
            each stage's grid where the grid is smaller).
        mlp_ratio: the MLP width over the channels.
        qkv_bias: a bias in the attention's query/key/value projection.
        drop_path_rate: the stochastic depth rate of the last block (linear from 0), in ``[0, 1)``.
        attention_dropout: dropout on the attention weights in training.
        patch_norm: LayerNorm after the patch embedding.
        outputs: ``"stages"`` or ``"merged"`` (module docstring).
        output_norm: ``"affine"`` (LayerNorm with weights, TransMorph), ``"plain"`` (without weights, Swin
            UNETR) or ``"none"``.
        gradient_checkpointing: recompute each stage's blocks in the backward pass: a bool for all stages
            or one per stage.
        seed: seed of the stochastic depth draws (None: Keras' global seed).

    Call: ``(B, *I, C_in)`` -> a list of feature maps (module docstring), channels-last.
    """

    def __init__(
        self,
        patch_size: int = 4,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 4, 2),
        num_heads: Union[int, Sequence[int]] = (4, 4, 8, 8),
        window_size: Union[int, Sequence[int]] = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        attention_dropout: float = 0.0,
        patch_norm: bool = True,
        outputs: str = "stages",
        output_norm: str = "affine",
        gradient_checkpointing: Union[bool, Sequence[bool]] = False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = check_positive_int(patch_size, "patch_size")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        if isinstance(depths, (str, bytes)) or not isinstance(depths, (list, tuple)) or not depths:
            raise ValueError(f"depths must be a non-empty list of ints >= 1 (blocks per stage), got {depths!r}")
        self.depths = [check_positive_int(d, "depths") for d in depths]
        stages = len(self.depths)
        self.num_heads = _per_stage(num_heads, stages, "num_heads", check_positive_int)
        for i, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2**i) % heads:
                raise ValueError(
                    f"stage {i} has {self.embed_dim * 2**i} channels (embed_dim {self.embed_dim} x 2^{i}), "
                    f"not a multiple of its num_heads {heads}"
                )
        self.window_size = (
            check_positive_int(window_size, "window_size") if isinstance(window_size, int) else _window(window_size)
        )
        self.mlp_ratio = check_number(mlp_ratio, "mlp_ratio", exclusive_minimum=True)
        self.qkv_bias = check_bool(qkv_bias, "qkv_bias")
        self.drop_path_rate = check_number(drop_path_rate, "drop_path_rate", minimum=0.0, maximum=0.999)
        self.attention_dropout = check_number(attention_dropout, "attention_dropout", minimum=0.0, maximum=0.999)
        self.patch_norm = check_bool(patch_norm, "patch_norm")
        self.outputs = check_choice(outputs, "outputs", ENCODER_OUTPUTS)
        self.output_norm = check_choice(output_norm, "output_norm", OUTPUT_NORMS)
        self.gradient_checkpointing = _per_stage(gradient_checkpointing, stages, "gradient_checkpointing", check_bool)
        self.seed = seed
        self.rates = drop_path_rates(self.depths, self.drop_path_rate)
        self.seed_generator = keras.random.SeedGenerator(seed) if self.drop_path_rate > 0 else None

    config_keys = (
        "patch_size",
        "embed_dim",
        "depths",
        "num_heads",
        "window_size",
        "mlp_ratio",
        "qkv_bias",
        "drop_path_rate",
        "attention_dropout",
        "patch_norm",
        "outputs",
        "output_norm",
        "gradient_checkpointing",
        "seed",
    )

    def stage_sizes(self, image_size: Sequence[int]) -> List[tuple]:
        """The token grid ``G_i`` of every stage for an image of ``image_size`` voxels (after merging
        for ``outputs: merged``, whose list then has ``L + 1`` grids: the embedding's first)."""
        grid = tuple(_ceil_div(s, self.patch_size) for s in image_size)
        sizes = [grid]
        for _ in range(len(self.depths) - (1 if self.outputs == "stages" else 0)):
            grid = tuple(_ceil_div(s, 2) for s in grid)
            sizes.append(grid)
        return sizes

    def output_channels(self) -> List[int]:
        """Channels of each returned feature map."""
        if self.outputs == "stages":
            return [self.embed_dim * 2**i for i in range(len(self.depths))]
        return [self.embed_dim * 2**i for i in range(len(self.depths) + 1)]

    def build(self, input_shape):
        ndim = len(input_shape) - 2
        if ndim not in (2, 3):
            raise ValueError(
                f"{self.name}: expected (batch, *spatial, channels) with 2 or 3 spatial axes, got {tuple(input_shape)}"
            )
        self.embedding = PatchEmbedding(
            self.patch_size, self.embed_dim, self.patch_norm, name="patch_embedding", dtype=self.dtype_policy
        )
        self.embedding.build(tuple(input_shape))
        grid = self.embedding.compute_output_shape(tuple(input_shape))
        window = (self.window_size,) * ndim if isinstance(self.window_size, int) else self.window_size
        if len(window) != ndim:
            raise ValueError(f"window_size {list(window)} does not have one entry per spatial axis ({ndim})")
        self.stages, self.merges = [], []
        stages = len(self.depths)
        for i, depth in enumerate(self.depths):
            blocks = []
            for j in range(depth):
                block = SwinBlock(
                    self.num_heads[i],
                    window,
                    shifted=j % 2 == 1,
                    mlp_ratio=self.mlp_ratio,
                    qkv_bias=self.qkv_bias,
                    attention_dropout=self.attention_dropout,
                    name=f"stage{i}_block{j}",
                    dtype=self.dtype_policy,
                )
                block.build(grid)
                blocks.append(block)
            self.stages.append(blocks)
            if i < stages - 1 or self.outputs == "merged":
                merge = PatchMerging(name=f"stage{i}_merging", dtype=self.dtype_policy)
                merge.build(grid)
                self.merges.append(merge)
                grid = merge.compute_output_shape(grid)
        self.output_norms = []
        if self.output_norm != "none":
            for k, channels in enumerate(self.output_channels()):
                norm = layer_norm(f"output_norm{k}", affine=self.output_norm == "affine", dtype=self.dtype_policy)
                norm.build((None, channels))
                self.output_norms.append(norm)

    def _run_stage(self, i: int, x, scales, training):
        for j, block in enumerate(self.stages[i]):
            x = block(x, training=training, branch_scales=None if scales is None else scales[2 * j : 2 * j + 2])
        return x

    def _stage(self, i: int, x, training):
        scales = None
        if training and self.seed_generator is not None:
            rates = [r for r in self.rates[i] for _ in range(2)]  # attention and MLP branch of each block
            scales = stochastic_depth_scales(ops.shape(x)[0], rates, self.seed_generator, dtype="float32")
        if training and self.gradient_checkpointing[i]:
            if scales is None:
                return keras.remat(lambda t: self._run_stage(i, t, None, training))(x)
            return keras.remat(lambda t, s: self._run_stage(i, t, s, training))(x, scales)
        return self._run_stage(i, x, scales, training)

    def _norm(self, k: int, x):
        return self.output_norms[k](x) if self.output_norms else x

    def call(self, inputs, training=None):
        x = self.embedding(inputs)
        features = [self._norm(0, x)] if self.outputs == "merged" else []
        for i in range(len(self.depths)):
            x = self._stage(i, x, training)
            if self.outputs == "stages":
                features.append(self._norm(i, x))
            if i < len(self.merges):
                x = self.merges[i](x)
                if self.outputs == "merged":
                    features.append(self._norm(i + 1, x))
        return features

    def compute_output_shape(self, input_shape):
        sizes = self.stage_sizes(input_shape[1:-1])
        return [(input_shape[0], *g, c) for g, c in zip(sizes, self.output_channels())]


__all__ = ["PatchEmbedding", "PatchMerging", "SwinEncoder", "ENCODER_OUTPUTS", "OUTPUT_NORMS"]
