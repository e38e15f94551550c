"""Multi-scale deformation-field fusion: Displacement Field Spatial Attention (DFSA), 2-D and 3-D.

He, He and Cao 2022 ("Deformable image registration with attention-guided fusion of multi-scale deformation
fields", eqs. 5-6 and Fig. 4) fuse the fields of a K-branch UNet from coarse to fine: ``DF_k^a =
DFSA(DF_{k+1}^a) + DF_k^c``. DFSA up-samples the coarser field to the finer grid (x2), multiplies its
displacements by the same factor so they stay in voxels of the finer grid, and weighs each displacement
channel by its own spatial map in [0, 1] computed from that channel by a few convolutions ending in a sigmoid.
The paper's figure gives the layout but not every channel count: the default here is two 3^n convolutions of
16 filters (ReLU) and a 1^n convolution to one channel (sigmoid), per channel.

Which field the weights are computed from is ambiguous in the paper: eq. 5 applies DFSA to the coarse field,
while the text says the current (finer) branch's field is processed by the convolutions. ``weight_source``
offers both and their combination.
"""

from numbers import Integral
from typing import Sequence

import keras
from keras import ops

from tfreg.checks import check_choice
from tfreg.layers.conv import conv_layer
from tfreg.ops.resize import resize
from tfreg.serialization import AttributeConfigMixin

#: which field the DFSA weights are computed from: the up-sampled coarse one (eq. 5), the fine one, or both
WEIGHT_SOURCES = ("coarse", "fine", "both")


def _check_filters(filters) -> list:
    values = list(filters) if isinstance(filters, (list, tuple)) else None
    if values is None or any(isinstance(f, bool) or not isinstance(f, Integral) or f < 1 for f in values):
        raise ValueError(f"filters must be a list of integers >= 1 (possibly empty), got {filters!r}")
    return [int(f) for f in values]


class DFSA(AttributeConfigMixin, keras.layers.Layer):
    """Displacement Field Spatial Attention block: ``out = W * up(coarse) + fine``.

    For each displacement channel ``c`` (axis ``c`` of the field)::

        U_c = r_c * resize(coarse_c, fine grid)            (voxels of the fine grid)
        W_c = sigmoid(conv_1x1(act(conv_k(... act(conv_k(V_c))))))   in [0, 1], own weights per channel
        out_c = W_c * U_c + fine_c

    with ``V_c = U_c`` (``weight_source="coarse"``, eq. 5), ``fine_c`` (``"fine"``, the paper's text) or the
    two stacked as 2 channels (``"both"``).

    ``resize`` is linear (:func:`tfreg.ops.resize.resize`, half-pixel centres) and ``r_c`` the size ratio
    of the fine to the coarse grid along axis ``c`` (2 for He, He and Cao's halving branches; any ratio works).

    Args:
        filters: channel counts of the hidden convolutions of each weight branch (default ``(16, 16)``;
            empty: the map is ``sigmoid`` of one 1^n convolution).
        kernel_size: odd integer, side of the hidden convolutions (default 3).
        activation: Keras activation of the hidden convolutions (default ``"relu"``).
        weight_source: ``"coarse"`` (default), ``"fine"`` or ``"both"``, see above.
        **kwargs: Keras layer arguments (name, dtype, ...).

    Call: ``layer([coarse, fine])`` with ``coarse`` ``(B, *S_c, ndim)`` and ``fine`` ``(B, *S_f, ndim)``
    DDFs in voxels of their own grids (ndim 2 or 3); returns ``(B, *S_f, ndim)`` in voxels of the fine grid.
    """

    def __init__(
        self,
        filters: Sequence[int] = (16, 16),
        kernel_size: int = 3,
        activation: str = "relu",
        weight_source: str = "coarse",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weight_source = check_choice(weight_source, "weight_source", WEIGHT_SOURCES)
        self.filters = _check_filters(filters)
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, Integral)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")
        self.kernel_size = int(kernel_size)
        try:
            keras.activations.get(activation)
        except (ValueError, TypeError) as err:
            raise ValueError(f"activation: unknown Keras activation {activation!r}") from err
        self.activation = activation
        self.branches = []

    def build(self, input_shape):
        coarse_shape, fine_shape = input_shape
        ndim = len(fine_shape) - 2
        if ndim not in (2, 3) or fine_shape[-1] != ndim or len(coarse_shape) != ndim + 2 or coarse_shape[-1] != ndim:
            raise ValueError(
                f"DFSA expects [coarse, fine] DDFs (batch, *spatial, ndim) with ndim 2 or 3, got {coarse_shape} "
                f"and {fine_shape}"
            )
        # One independent conv stack per displacement channel (the paper processes X and Y separately).
        for c in range(ndim):
            stack = [
                conv_layer(ndim, f, self.kernel_size, padding="same", activation=self.activation, name=f"ch{c}_conv{i}")
                for i, f in enumerate(self.filters)
            ]
            stack.append(conv_layer(ndim, 1, 1, padding="same", activation="sigmoid", name=f"ch{c}_weight"))
            shape = tuple(fine_shape[:-1]) + (2 if self.weight_source == "both" else 1,)
            for layer in stack:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
            self.branches.append(stack)

    def weight_maps(self, up, fine=None):
        """Per-channel weights ``(B, *S_f, ndim)`` in [0, 1] from the up-sampled coarse field ``up`` and/or the
        fine field ``fine`` (both ``(B, *S_f, ndim)``), per ``weight_source``."""
        if self.weight_source != "coarse" and fine is None:
            raise ValueError(f"weight_source {self.weight_source!r} needs the fine field")
        maps = []
        for c, stack in enumerate(self.branches):
            if self.weight_source == "coarse":
                w = up[..., c : c + 1]
            elif self.weight_source == "fine":
                w = fine[..., c : c + 1]
            else:
                w = ops.concatenate([up[..., c : c + 1], fine[..., c : c + 1]], axis=-1)
            for layer in stack:
                w = layer(w)
            maps.append(w)
        return ops.concatenate(maps, axis=-1)

    def upsample(self, coarse, fine_spatial):
        """``coarse`` resized to ``fine_spatial`` with channel ``c`` scaled by the size ratio along axis ``c``."""
        ratios = [float(f) / float(c) for f, c in zip(fine_spatial, coarse.shape[1:-1])]
        return resize(coarse, fine_spatial) * ops.convert_to_tensor(ratios, dtype=coarse.dtype)

    def call(self, inputs):
        coarse, fine = inputs
        up = self.upsample(coarse, tuple(fine.shape[1:-1]))
        return self.weight_maps(up, fine) * up + fine

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    config_keys = ("filters", "kernel_size", "activation", "weight_source")


__all__ = ["DFSA", "WEIGHT_SOURCES"]
