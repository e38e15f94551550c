"""DeepReg's ``control_points`` head: a dense field made smooth through a cubic B-spline control grid.

A backbone's dense output ``u`` (a displacement or velocity field, voxels) becomes

1. ``u * g``: Gaussian anti-aliasing with sigma ``0.44 s`` per axis (about ``ln(4) / pi`` control-point
   spacings ``s``), on DeepReg's ``ceil(3 sigma)``-odd taps, zero boundary
   (:func:`tfreg.ops.kernels.gaussian_kernel_antialias`);
2. a linear half-pixel resize of that onto ``ceil(d / s) + 3`` control points per axis
   (:func:`tfreg.ops.resize.resize`, DeepReg's ``resize3d``);
3. the cubic B-spline field of those control points back on the image grid, in DeepReg's layout
   (control point ``k`` at voxel ``(k - 1) s - 0.5``; :func:`tfreg.ops.bspline.bspline_field`).

The result is a C2-continuous field with ``prod(ceil(d / s) + 3)`` degrees of freedom per channel, as in
Rueckert et al., "Nonrigid registration using free-form deformations: application to breast MR images"
(1999), predicted by a network as in DeepReg (Fu et al., "DeepReg: a deep learning toolkit for medical
image registration", 2020). Unlike DeepReg's head (3-D, integer spacings), it works in 2-D and 3-D and
takes any positive spacing.
"""

from typing import Tuple

import keras
from keras import ops

from tfreg.ops.bspline import bspline_field, check_spacing, control_grid_shape
from tfreg.ops.filters import separable_filter
from tfreg.ops.kernels import gaussian_kernel_antialias
from tfreg.ops.resize import resize
from tfreg.serialization import AttributeConfigMixin

#: DeepReg's anti-aliasing sigma per control-point spacing (``ln(4) / pi`` rounded).
ANTIALIAS_SIGMA_PER_SPACING = 0.44
#: Control point ``k`` sits at voxel ``(k - 1) s + offset``: DeepReg's transposed-convolution layout.
DEEPREG_CONTROL_POINT_OFFSET = -0.5


class ControlPointHead(AttributeConfigMixin, keras.layers.Layer):
    """Dense field ``(B, *S, C)`` -> its cubic B-spline approximation ``(B, *S, C)`` (module docstring).

    Args:
        spacing: control-point spacing in voxels, a positive number or one per spatial axis (DeepReg's
            ``backbone.control_points``).

    The input's spatial sizes must be static. No weights; computed in float32 whatever the policy, since
    the field feeds the warp.
    """

    config_keys = ("spacing",)

    def __init__(self, spacing, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # checked now for everything but the count, which the input's rank gives in build
        check_spacing(spacing, len(spacing) if isinstance(spacing, (list, tuple)) else 1, "control_points")
        self.spacing = list(spacing) if isinstance(spacing, (list, tuple)) else spacing

    def _image_shape(self, input_shape) -> Tuple[int, ...]:
        shape = tuple(input_shape[1:-1])
        if len(shape) not in (2, 3) or any(d is None for d in shape):
            raise ValueError(
                f"the control-point head needs a (batch, *spatial, channels) field with 2 or 3 static spatial "
                f"sizes, got shape {tuple(input_shape)}"
            )
        return shape

    def build(self, input_shape):
        shape = self._image_shape(input_shape)
        self._spacing = check_spacing(self.spacing, len(shape), "control_points")
        self._kernels = [gaussian_kernel_antialias(ANTIALIAS_SIGMA_PER_SPACING * s) for s in self._spacing]
        self._grid = control_grid_shape(shape, self._spacing)
        super().build(input_shape)

    def control_points(self, field):
        """``(B, *S, C)`` -> the control grid ``(B, *(ceil(S / s) + 3), C)`` (steps 1-2)."""
        smooth = separable_filter(ops.cast(field, "float32"), self._kernels, boundary="zero")
        return resize(smooth, self._grid)

    def call(self, field):
        shape = self._image_shape(field.shape)
        return bspline_field(self.control_points(field), shape, self._spacing, offset=DEEPREG_CONTROL_POINT_OFFSET)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


_AFFINE_REFUSAL = (
    "backbone.control_points needs a backbone that returns one dense field; {name} returns several tensors (an "
    "affine field and its parameters: smooth already, drop control_points)"
)


class ControlPointBackbone(keras.layers.Layer):
    """A backbone followed by :class:`ControlPointHead`: what ``backbone.control_points`` builds.

    Args:
        backbone: a built backbone layer whose call returns one dense field ``(B, *S, C)``.
        spacing: control-point spacing in voxels (``backbone.control_points``).

    Call: ``(B, *S, C_in)`` -> ``(B, *S, C)``, the backbone's field through the head. A backbone that
    returns several tensors (GlobalNet's ``(ddf, theta)``, flagged by its ``affine_output`` attribute) is
    refused: its field is affine, hence smooth already, and ``theta`` would no longer describe the
    smoothed field.

    Models save their ``train.backbone`` config, ``control_points`` included, and rebuild this layer from
    it; the layer itself is not serialised on its own.
    """

    def __init__(self, backbone, spacing, **kwargs):
        super().__init__(**kwargs)
        if getattr(backbone, "affine_output", False):
            raise ValueError(_AFFINE_REFUSAL.format(name=backbone.name))
        self.backbone = backbone
        self.head = ControlPointHead(spacing, name="control_points")

    def call(self, inputs, training=None):
        field = self.backbone(inputs, training=training)
        if isinstance(field, (tuple, list, dict)):
            raise ValueError(_AFFINE_REFUSAL.format(name=self.backbone.name))
        return self.head(field)

    def compute_output_shape(self, input_shape):
        return self.backbone.compute_output_shape(input_shape)


__all__ = [
    "ANTIALIAS_SIGMA_PER_SPACING",
    "DEEPREG_CONTROL_POINT_OFFSET",
    "ControlPointHead",
    "ControlPointBackbone",
]
