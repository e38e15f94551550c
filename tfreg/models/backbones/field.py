"""``field``: not a network but the transform itself, as trainable parameters, for instance optimisation.

Registering one image pair by optimisation (``tfreg_register``, :mod:`tfreg.registration`) is training a
registration model whose "backbone" ignores the images and returns its own parameters as the field. The
``ddf`` model then optimises a displacement field, the ``dvf`` model a stationary velocity field
integrated by scaling and squaring (diffeomorphic), with every registered loss and its wiring unchanged.

Parameterisations (``transform``):

- ``dense``: one value per voxel and channel; optionally ``smoothing_sigma`` (voxels) Gaussian-smooths
  the parameters at every evaluation, and ``control_point_spacing`` (spacing in voxels) replaces them by a cubic
  B-spline control grid (:mod:`tfreg.ops.bspline`), which is smooth by construction and has far fewer
  parameters.
- ``affine``: ``u(p) = ((p - c) / h) @ L + t`` with ``c`` the grid centre and ``h`` its half-extent per
  axis (voxels), so that the linear part ``L`` (ndim x ndim) and the translation ``t`` are both in voxels
  and one learning rate suits both. The identity is ``L = 0, t = 0``.

The output is ``initial + field(parameters)``, where ``initial`` (non-trainable, zero unless set with
:meth:`ParameterField.set_initial`) carries a starting field: a trained network's prediction or the
previous level of a resolution pyramid. The output is broadcast over the batch: the same field for every
batch item (instance optimisation uses batch 1).
"""

from typing import Optional, Sequence, Union

import numpy as np
from keras import ops

from tfreg.checks import check_choice
from tfreg.models.backbones.base import Backbone
from tfreg.ops.bspline import bspline_field, control_grid_shape
from tfreg.ops.filters import gaussian_smooth
from tfreg.registry import REGISTRY

TRANSFORMS = ("dense", "affine")


@REGISTRY.register_backbone(name="field")
class ParameterField(Backbone):
    """The field as trainable weights (module docstring).

    Args:
        image_size: the fixed grid ``(d0, d1[, d2])``, voxels.
        out_channels: channels of the field (``ndim`` for DDF/DVF models).
        transform: ``"dense"`` or ``"affine"`` (``affine`` needs ``out_channels == ndim``).
        control_point_spacing: ``dense`` only: B-spline control-point spacing in voxels (a number or one per
            axis); None: one parameter per voxel.
        smoothing_sigma: ``dense`` only: Gaussian sigma in voxels applied to the per-voxel parameters at
            every evaluation (a number or one per axis); None or 0: none. Not combined with
            ``control_point_spacing`` (already smooth).
        out_kernel_initializer: initializer of the parameters (default ``"zeros"``: the identity transform).
        out_activation: must be None (a field has no output activation; refused otherwise).
        num_channel_initial: unused by this backbone (DeepReg's signature); any value is accepted.
        name: Keras name.

    Call: ``(B, *image_size, C_in)`` (values unused) -> ``(B, *image_size, out_channels)``.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (),
        out_channels: int = 3,
        transform: str = "dense",
        control_point_spacing: Optional[Union[float, Sequence[float]]] = None,
        smoothing_sigma: Optional[Union[float, Sequence[float]]] = None,
        out_kernel_initializer: Optional[str] = "zeros",
        out_activation: Optional[str] = None,
        num_channel_initial: int = 1,
        name: str = "ParameterField",
        **kwargs,
    ):
        super().__init__(
            image_size=image_size,
            num_channel_initial=num_channel_initial,
            out_kernel_initializer=out_kernel_initializer or "zeros",
            out_activation=out_activation,
            out_channels=out_channels,
            name=name,
            **kwargs,
        )
        check_choice(transform, "transform", TRANSFORMS)
        if out_activation is not None:
            raise ValueError(
                f"backbone 'field' has no output activation; out_activation must be None, got {out_activation!r}"
            )
        if transform == "affine":
            if out_channels != self.ndim:
                raise ValueError(
                    f"transform 'affine' gives a {self.ndim}-component displacement; out_channels must be {self.ndim}, "
                    f"got {out_channels}"
                )
            for key, value in (("control_point_spacing", control_point_spacing), ("smoothing_sigma", smoothing_sigma)):
                if value is not None:
                    raise ValueError(f"{key} applies to transform 'dense' only, got {key}={value!r} with 'affine'")
        if control_point_spacing is not None and smoothing_sigma not in (None, 0):
            raise ValueError(
                "give control_point_spacing (a B-spline field, smooth by construction) or smoothing_sigma, not "
                "both; got "
                f"control_point_spacing={control_point_spacing!r}, smoothing_sigma={smoothing_sigma!r}"
            )
        self.transform = transform
        self.control_point_spacing = control_point_spacing
        self.smoothing_sigma = smoothing_sigma if smoothing_sigma not in (None, 0) else None
        if self.smoothing_sigma is not None:
            sigmas = np.broadcast_to(np.asarray(self.smoothing_sigma, dtype=np.float64), (self.ndim,))
            if not np.all(np.isfinite(sigmas)) or np.any(sigmas < 0):
                raise ValueError(
                    f"smoothing_sigma must be >= 0 voxels (one number or one per axis), got {smoothing_sigma!r}"
                )
        shape = tuple(self.image_size)
        if transform == "affine":
            self.linear = self.add_weight(
                shape=(self.ndim, self.ndim), initializer=self.out_kernel_initializer, name="linear"
            )
            self.translation = self.add_weight(
                shape=(self.ndim,), initializer=self.out_kernel_initializer, name="translation"
            )
        else:
            grid = control_grid_shape(shape, control_point_spacing) if control_point_spacing is not None else shape
            self.parameters = self.add_weight(
                shape=(1,) + tuple(grid) + (self.out_channels,),
                initializer=self.out_kernel_initializer,
                name="control_point_spacing" if control_point_spacing is not None else "field",
            )
        self.initial = self.add_weight(
            shape=(1,) + shape + (self.out_channels,), initializer="zeros", trainable=False, name="initial"
        )

    config_keys = ("transform", "control_point_spacing", "smoothing_sigma")

    def set_initial(self, field: np.ndarray) -> None:
        """Set the starting field ``(*image_size, out_channels)`` or ``(1, *image_size, out_channels)``
        (units of the field, e.g. voxels); ValueError for another shape or non-finite values."""
        field = np.asarray(field, dtype=np.float32)
        want = tuple(self.image_size) + (self.out_channels,)
        if field.shape == want:
            field = field[None]
        if field.shape != (1,) + want:
            raise ValueError(f"initial field must have shape {want}, got {field.shape}")
        if not np.all(np.isfinite(field)):
            raise ValueError(f"initial field has {int(np.sum(~np.isfinite(field)))} non-finite values")
        self.initial.assign(field)

    def field(self):
        """``(1, *image_size, out_channels)``: ``initial + field(parameters)``."""
        shape = tuple(self.image_size)
        if self.transform == "affine":
            # the coordinates normalised to [-1, 1] about the grid centre, one broadcast ramp per axis
            out = ops.reshape(self.translation, (1,) * (self.ndim + 1) + (self.ndim,))
            for a, d in enumerate(shape):
                half = max((d - 1) / 2.0, 1.0)
                ramp = (np.arange(d, dtype=np.float32) - (d - 1) / 2.0) / half
                ramp = ops.reshape(
                    ops.convert_to_tensor(ramp), (1,) + tuple(d if b == a else 1 for b in range(self.ndim)) + (1,)
                )
                out = out + ramp * ops.reshape(self.linear[a], (1,) * (self.ndim + 1) + (self.ndim,))
        elif self.control_point_spacing is not None:
            out = bspline_field(self.parameters, shape, self.control_point_spacing)
        elif self.smoothing_sigma is not None:
            out = gaussian_smooth(self.parameters, self.smoothing_sigma, boundary="replicate")
        else:
            out = self.parameters
        return ops.cast(self.initial, out.dtype) + out

    def call(self, inputs, training=None, mask=None):
        field = self.field()
        # (B, *S, 1) zeros broadcast the batch of the inputs onto the field
        return field + ops.zeros_like(ops.cast(inputs[..., :1], field.dtype))


__all__ = ["ParameterField", "TRANSFORMS"]
