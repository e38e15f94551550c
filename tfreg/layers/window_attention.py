"""Shifted-window self-attention and the Swin transformer block, 2-D and 3-D, channels-last (``keras.ops``).

Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows"; the 3-D form
is that of TransMorph (Chen et al. 2022) and Swin UNETR (Hatamizadeh et al. 2022).

:class:`WindowAttention`: multi-head self-attention among the ``N`` tokens of each window, with a learned
relative position bias (one value per head and per offset between two tokens) and an optional additive
mask. :class:`SwinBlock`: ``x + attention(LN(x))`` on (shifted) windows, then ``x + MLP(LN(x))``.

Under a ``mixed_float16`` policy the projections run in float16; the softmax is taken in float32.
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
from keras import ops

from tfreg.checks import check_bool, check_number, check_positive_int
from tfreg.layers.stochastic_depth import scale_branch
from tfreg.ops.windows import (
    attention_mask_table,
    pad_to_windows,
    relative_position_index,
    window_geometry,
    window_partition,
    window_reverse,
)
from tfreg.serialization import AttributeConfigMixin

#: Swin's initialisation of the linear layers and of the relative position bias table.
TRUNCATED_NORMAL_STD = 0.02
#: LayerNorm epsilon of Swin, TransMorph and Swin UNETR (PyTorch's default; Keras' is 1e-3).
LAYER_NORM_EPSILON = 1e-5


def _window(window_size, ndim: Optional[int] = None) -> tuple:
    if isinstance(window_size, (int, np.integer)) and not isinstance(window_size, bool):
        if ndim is None:
            raise ValueError("an int window_size needs the number of spatial axes")
        window_size = (int(window_size),) * ndim
    window = tuple(check_positive_int(w, "window_size") for w in window_size)
    if ndim is not None and len(window) != ndim:
        raise ValueError(f"window_size must have {ndim} entries (one per spatial axis), got {window}")
    return window


def dense(units: int, use_bias: bool = True, name: Optional[str] = None, dtype=None) -> keras.layers.Dense:
    """A linear layer initialised as Swin's (truncated normal, std 0.02; zero bias). ``dtype``: the
    parent layer's dtype policy (sub-layers made in ``build`` do not inherit it)."""
    return keras.layers.Dense(
        units,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=TRUNCATED_NORMAL_STD),
        bias_initializer="zeros",
        name=name,
        dtype=dtype,
    )


def layer_norm(name: Optional[str] = None, affine: bool = True, dtype=None) -> keras.layers.LayerNormalization:
    """LayerNorm over the channel axis with PyTorch's epsilon; ``affine=False`` has no weights."""
    return keras.layers.LayerNormalization(
        epsilon=LAYER_NORM_EPSILON, center=affine, scale=affine, name=name, dtype=dtype
    )


class WindowAttention(AttributeConfigMixin, keras.layers.Layer):
    """Multi-head self-attention within windows, with a relative position bias.

    For the tokens ``x`` of one window ``(N, C)``, ``h = num_heads`` heads of ``d = C / h`` channels::

        q, k, v = split(x W_qkv [+ b_qkv])                       # (h, N, d) each
        A = softmax(q k^T / sqrt(d) + B[index] + mask)           # (h, N, N)
        y = concat_heads(A v) W_proj + b_proj                    # (N, C)

    ``B`` is a learned table of ``prod(2 w - 1)`` rows (one per offset between two tokens) and ``h``
    columns; ``index`` is :func:`tfreg.ops.windows.relative_position_index`.

    Args:
        num_heads: heads ``h``; the channels ``C`` must be a multiple.
        window_size: the window ``w`` (one int per spatial axis); ``N = prod(w)``.
        qkv_bias: a bias in the query/key/value projection (Swin UNETR: yes; TransMorph: no).
        attention_dropout: dropout rate on ``A`` in training, in ``[0, 1)``.

    Call: ``(x, window_mask=None, training=None)``: ``x`` ``(B * nW, N, C)`` windows, ``window_mask`` ``(nW, N, N)``
    additive (0 or :data:`tfreg.ops.windows.MASK_VALUE`) or None -> ``(B * nW, N, C)``.
    """

    def __init__(
        self,
        num_heads: int,
        window_size: Sequence[int],
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.window_size = _window(window_size)
        self.qkv_bias = check_bool(qkv_bias, "qkv_bias")
        self.attention_dropout = check_number(attention_dropout, "attention_dropout", minimum=0.0, maximum=0.999)
        self.tokens = int(np.prod(self.window_size))
        self.index = relative_position_index(self.window_size).reshape(-1)
        self.dropout = (
            keras.layers.Dropout(self.attention_dropout, dtype=self.dtype_policy) if self.attention_dropout else None
        )

    config_keys = ("num_heads", "window_size", "qkv_bias", "attention_dropout")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_heads:
            raise ValueError(f"{self.name}: channels ({channels}) must be a multiple of num_heads ({self.num_heads})")
        if input_shape[-2] is not None and input_shape[-2] != self.tokens:
            raise ValueError(
                f"{self.name}: expected windows of {self.tokens} tokens (window {self.window_size}), "
                f"got input shape {tuple(input_shape)}"
            )
        self.channels = int(channels)
        self.qkv = dense(3 * self.channels, use_bias=self.qkv_bias, name="qkv", dtype=self.dtype_policy)
        self.qkv.build(tuple(input_shape))
        self.proj = dense(self.channels, name="proj", dtype=self.dtype_policy)
        self.proj.build(tuple(input_shape))
        offsets = int(np.prod([2 * w - 1 for w in self.window_size]))
        self.bias_table = self.add_weight(
            shape=(offsets, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=TRUNCATED_NORMAL_STD),
            name="relative_position_bias_table",
        )

    def relative_position_bias(self):
        """``(h, N, N)``: the table's value for every token pair of a window."""
        bias = ops.take(self.bias_table, ops.convert_to_tensor(self.index, "int32"), axis=0)
        return ops.transpose(ops.reshape(bias, (self.tokens, self.tokens, self.num_heads)), (2, 0, 1))

    def call(self, x, window_mask=None, training=None):
        n, c, h = self.tokens, self.channels, self.num_heads
        d = c // h
        qkv = ops.reshape(self.qkv(x), (-1, n, 3, h, d))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, Bw, h, N, d)
        q, k, v = qkv[0] * (d**-0.5), qkv[1], qkv[2]
        logits = ops.matmul(q, ops.swapaxes(k, -1, -2))  # (Bw, h, N, N)
        # the softmax in float32 (mixed precision): float16 logits lose the small bias and mask differences
        logits = ops.cast(logits, "float32") + ops.cast(self.relative_position_bias(), "float32")[None]
        if window_mask is not None:
            windows = window_mask.shape[0]
            logits = ops.reshape(logits, (-1, windows, h, n, n)) + ops.cast(window_mask, "float32")[None, :, None]
            logits = ops.reshape(logits, (-1, h, n, n))
        attention = ops.cast(ops.softmax(logits, axis=-1), v.dtype)
        if self.dropout is not None:
            attention = self.dropout(attention, training=training)
        y = ops.transpose(ops.matmul(attention, v), (0, 2, 1, 3))  # (Bw, N, h, d)
        return self.proj(ops.reshape(y, (-1, n, c)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class SwinBlock(AttributeConfigMixin, keras.layers.Layer):
    """One Swin transformer block on a token grid ``(B, *S, C)``, 2-D or 3-D.

    ::

        y = x + drop(reverse(WindowAttention(partition(roll(pad(LN(x)), -shift)), mask)))
        z = y + drop(MLP(LN(y)))          # MLP: C -> mlp_ratio * C -> GELU -> C

    ``reverse`` undoes the partition, the roll and the padding. The window is clipped to the grid per axis
    (:func:`tfreg.ops.windows.window_geometry`); ``shifted`` blocks roll by ``window // 2`` on every axis
    where the grid is larger than the window; the mask (:func:`tfreg.ops.windows.attention_mask_table`) keeps
    wrapped-around tokens and padding out of each window's attention.

    Args:
        num_heads: attention heads; ``C`` must be a multiple.
        window_size: the window, one int per spatial axis (or one int for all).
        shifted: shift the windows (Swin alternates unshifted and shifted blocks).
        mlp_ratio: the MLP's hidden width over ``C``, > 0.
        qkv_bias: a bias in the query/key/value projection.
        attention_dropout: dropout on the attention weights in training.

    Call: ``(x, training=None, branch_scales=None)``; ``x`` ``(B, *S, C)`` -> same shape.
    ``branch_scales`` ``(2, B)``: the stochastic-depth scales of the attention and MLP branches
    (:func:`tfreg.layers.stochastic_depth.stochastic_depth_scales`), None for none.
    """

    def __init__(
        self,
        num_heads: int,
        window_size,
        shifted: bool = False,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.window_size = window_size if isinstance(window_size, int) else _window(window_size)
        self.shifted = check_bool(shifted, "shifted")
        self.mlp_ratio = check_number(mlp_ratio, "mlp_ratio", exclusive_minimum=True)
        self.qkv_bias = check_bool(qkv_bias, "qkv_bias")
        self.attention_dropout = check_number(attention_dropout, "attention_dropout", minimum=0.0, maximum=0.999)

    config_keys = ("num_heads", "window_size", "shifted", "mlp_ratio", "qkv_bias", "attention_dropout")

    def build(self, input_shape):
        size = tuple(input_shape[1:-1])
        if len(size) not in (2, 3) or any(s is None for s in size) or input_shape[-1] is None:
            raise ValueError(
                f"{self.name}: expected (batch, *spatial, channels) with 2 or 3 known spatial sizes, "
                f"got {tuple(input_shape)}"
            )
        ndim = len(size)
        window = _window(self.window_size, ndim)
        shift = tuple(w // 2 for w in window) if self.shifted else (0,) * ndim
        self.size = size
        self.window, self.shift, self.padded = window_geometry(size, window, shift)
        self.mask_table = attention_mask_table(size, self.window, self.shift)
        channels = int(input_shape[-1])
        self.norm1 = layer_norm("norm1", dtype=self.dtype_policy)
        self.norm1.build(tuple(input_shape))
        self.attention = WindowAttention(
            self.num_heads,
            self.window,
            self.qkv_bias,
            self.attention_dropout,
            name="attention",
            dtype=self.dtype_policy,
        )
        self.attention.build((None, int(np.prod(self.window)), channels))
        self.norm2 = layer_norm("norm2", dtype=self.dtype_policy)
        self.norm2.build(tuple(input_shape))
        hidden = int(round(channels * self.mlp_ratio))
        self.fc1 = dense(hidden, name="fc1", dtype=self.dtype_policy)
        self.fc1.build(tuple(input_shape))
        self.fc2 = dense(channels, name="fc2", dtype=self.dtype_policy)
        self.fc2.build(tuple(input_shape[:-1]) + (hidden,))

    def call(self, x, training=None, branch_scales=None):
        ndim = len(self.size)
        axes = tuple(range(1, ndim + 1))
        h = pad_to_windows(self.norm1(x), self.padded)
        if any(self.shift):
            h = ops.roll(h, tuple(-s for s in self.shift), axis=axes)
        mask = None
        if self.mask_table is not None:  # (nW, N, N) gathered from the few distinct windows' masks
            masks, index = self.mask_table
            mask = ops.take(ops.convert_to_tensor(masks), ops.convert_to_tensor(index), axis=0)
        h = self.attention(window_partition(h, self.window), window_mask=mask, training=training)
        h = window_reverse(h, self.window, self.padded)
        if any(self.shift):
            h = ops.roll(h, self.shift, axis=axes)
        h = h[(slice(None),) + tuple(slice(0, s) for s in self.size)]
        x = x + scale_branch(h, None if branch_scales is None else branch_scales[0])
        m = self.fc2(keras.activations.gelu(self.fc1(self.norm2(x)), approximate=False))
        return x + scale_branch(m, None if branch_scales is None else branch_scales[1])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


__all__ = ["WindowAttention", "SwinBlock", "dense", "layer_norm", "LAYER_NORM_EPSILON", "TRUNCATED_NORMAL_STD"]
