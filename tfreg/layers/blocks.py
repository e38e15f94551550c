"""Attention blocks of macJNet: attention gates on skip connections and scSE blocks, 2-D and 3-D.

- :class:`AttentionGate` (Oktay et al. 2018, "Attention U-Net"): gates a skip connection ``x`` with a
  coarser gating signal ``g``; used in macJNet's registration sub-network (LapIRN with AG blocks).
- :class:`SCSEBlock` (Roy, Navab and Wachinger 2018, concurrent spatial and channel squeeze & excitation):
  recalibrates decoder features; used in macJNet's segmentation sub-network.
"""

from typing import Optional

import keras
from keras import ops

from tfreg.checks import check_choice, check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.ops.resize import resize
from tfreg.serialization import AttributeConfigMixin


class AttentionGate(AttributeConfigMixin, keras.layers.Layer):
    """Additive attention gate: ``out = alpha * x`` with a spatial map ``alpha`` in [0, 1].

    With ``x`` the skip features ``(B, *S, C_x)`` and ``g`` the gating features ``(B, *S_g, C_g)`` from the
    coarser level, ``S = r * S_g`` (integer ratio ``r`` per axis, 1 allowed)::

        q     = relu(W_x * x + W_g * g + b_g)       W_x: r^n kernel, stride r, no bias (to the g grid)
                                                    W_g: 1^n kernel;  both give ``inter_channels``
        alpha = sigmoid(psi * q + b_psi)            psi: 1^n kernel to 1 channel, on the g grid
        out   = resize(alpha, S) * x                linear up-sampling of the map to the x grid

    Args:
        inter_channels: channels of ``q`` (default ``max(C_x // 2, 1)``).
        **kwargs: Keras layer arguments.

    Call: ``layer([x, g])`` -> ``(B, *S, C_x)``; :meth:`coefficients` gives ``alpha`` on the x grid.
    """

    def __init__(self, inter_channels: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.inter_channels = None if inter_channels is None else check_positive_int(inter_channels, "inter_channels")

    def build(self, input_shape):
        x_shape, g_shape = input_shape
        ndim = len(x_shape) - 2
        if ndim not in (2, 3) or len(g_shape) != ndim + 2:
            raise ValueError(
                f"AttentionGate expects [x, g] of rank 4 or 5 (2-D/3-D, channels-last), got {x_shape} and {g_shape}"
            )
        ratios = []
        for a in range(ndim):
            s, sg = x_shape[a + 1], g_shape[a + 1]
            if s is None or sg is None or s % sg != 0:
                raise ValueError(
                    f"AttentionGate: the spatial sizes of x {tuple(x_shape[1:-1])} must be static integer multiples "
                    f"of those of g {tuple(g_shape[1:-1])}"
                )
            ratios.append(s // sg)
        inter = self.inter_channels or max(int(x_shape[-1]) // 2, 1)
        self.ratios = tuple(ratios)
        self.theta_x = conv_layer(
            ndim, inter, self.ratios, strides=self.ratios, padding="valid", use_bias=False, name="theta_x"
        )
        self.phi_g = conv_layer(ndim, inter, 1, name="phi_g")
        self.psi = conv_layer(ndim, 1, 1, name="psi")
        self.theta_x.build(x_shape)
        self.phi_g.build(g_shape)
        self.psi.build(tuple(g_shape[:-1]) + (inter,))

    def coefficients(self, inputs):
        """``alpha`` resized to the grid of ``x``, ``(B, *S, 1)``."""
        x, g = inputs
        q = ops.relu(self.theta_x(x) + self.phi_g(g))
        alpha = ops.sigmoid(self.psi(q))
        return resize(alpha, tuple(x.shape[1:-1]))

    def call(self, inputs):
        return self.coefficients(inputs) * inputs[0]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    config_keys = ("inter_channels",)


SCSE_COMBINATIONS = ("add", "max")


class SCSEBlock(AttributeConfigMixin, keras.layers.Layer):
    """Concurrent spatial and channel squeeze & excitation (scSE), Roy et al. 2018.

    For features ``x`` ``(B, *S, C)``::

        z     = sigmoid(W2 relu(W1 mean_S(x) + b1) + b2)     channel gate (B, C); W1: C -> C / ratio
        cSE   = z * x
        q     = sigmoid(w . x + b)                             spatial gate (B, *S, 1), a 1^n convolution
        sSE   = q * x
        out   = cSE + sSE   (``combine="add"``, Roy et al.'s choice)  or  max(cSE, sSE)  (``"max"``)

    With all weights and biases 0 both gates are 0.5 and ``"add"`` returns ``x`` exactly.

    Args:
        ratio: channel reduction of the squeeze (integer >= 1, default 2; hidden units ``max(C // ratio, 1)``).
        combine: ``"add"`` or ``"max"``.
        **kwargs: Keras layer arguments.

    Call: ``layer(x)`` -> ``(B, *S, C)``.
    """

    def __init__(self, ratio: int = 2, combine: str = "add", **kwargs):
        super().__init__(**kwargs)
        self.ratio = check_positive_int(ratio, "ratio")
        self.combine = check_choice(combine, "combine", SCSE_COMBINATIONS)

    def build(self, input_shape):
        ndim = len(input_shape) - 2
        channels = input_shape[-1]
        if ndim not in (2, 3) or channels is None:
            raise ValueError(
                f"SCSEBlock expects (batch, *spatial, channels) with 2 or 3 spatial axes, got {input_shape}"
            )
        self.squeeze = keras.layers.Dense(max(int(channels) // self.ratio, 1), activation="relu", name="squeeze")
        self.excite = keras.layers.Dense(int(channels), activation="sigmoid", name="excite")
        self.spatial = conv_layer(ndim, 1, 1, activation="sigmoid", name="spatial")
        self.squeeze.build((input_shape[0], channels))
        self.excite.build((input_shape[0], max(int(channels) // self.ratio, 1)))
        self.spatial.build(input_shape)

    def call(self, x):
        ndim = len(x.shape) - 2
        z = self.excite(self.squeeze(ops.mean(x, axis=tuple(range(1, ndim + 1)))))
        channel = x * ops.reshape(z, (-1,) + (1,) * ndim + (x.shape[-1],))
        spatial = x * self.spatial(x)
        return channel + spatial if self.combine == "add" else ops.maximum(channel, spatial)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    config_keys = ("ratio", "combine")


__all__ = ["AttentionGate", "SCSEBlock"]
