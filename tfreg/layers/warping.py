"""Keras layers around the spatial ops: warping, DVF integration and resizing (``keras`` only).

The constructor arguments and the ``[ddf, image]`` input order follow DeepReg's ``Warping``, ``IntDVF`` and
``Resize3d`` layers, so that DeepReg models and configs carry over.
"""

import keras

from tfreg.checks import BOUNDARIES, check_choice, check_int
from tfreg.ops.grid import _check_shape
from tfreg.ops.integrate import integrate_dvf
from tfreg.ops.resize import resize
from tfreg.ops.warp import INTERPOLATIONS, warp
from tfreg.serialization import AttributeConfigMixin


def _check_fixed_size(fixed_image_size):
    return None if fixed_image_size is None else _check_shape(fixed_image_size, "fixed_image_size")


def _check_ddf_size(layer, field, name: str):
    """ValueError when ``field``'s static spatial shape contradicts ``layer.fixed_image_size``."""
    expected = layer.fixed_image_size
    if expected is None:
        return
    spatial = tuple(field.shape[1:-1])
    if len(spatial) != len(expected) or any(s is not None and s != e for s, e in zip(spatial, expected)):
        raise ValueError(
            f"{layer.__class__.__name__} {layer.name!r}: {name} spatial shape {spatial} does not match "
            f"fixed_image_size {expected}"
        )


class Warping(AttributeConfigMixin, keras.layers.Layer):
    """Warp an image by a dense displacement field (DeepReg's ``Warping``).

    Args:
        fixed_image_size: optional spatial shape of the DDF (the fixed image), ``(d0, d1[, d2])``; when
            given, the DDF's shape is checked against it. The grid is always taken from the DDF.
        interpolation: ``"linear"`` or ``"nearest"``.
        boundary: ``"zero"`` or ``"replicate"``, see :func:`tfreg.ops.warp.resample`.

    Call:
        inputs: ``[ddf, image]``: ddf ``(B, *S_fixed, ndim)`` in voxels of the moving image, ij(k) order;
        image ``(B, *S_moving, C)`` or ``(B, *S_moving)``.

    Returns:
        the warped image, ``(B, *S_fixed, C)`` or ``(B, *S_fixed)``.
    """

    def __init__(self, fixed_image_size=None, interpolation="linear", boundary="zero", **kwargs):
        super().__init__(**kwargs)
        check_choice(interpolation, "interpolation", INTERPOLATIONS)
        check_choice(boundary, "boundary", BOUNDARIES)
        self.fixed_image_size = _check_fixed_size(fixed_image_size)
        self.interpolation = interpolation
        self.boundary = boundary

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"{self.__class__.__name__} expects inputs [ddf, image], got {inputs!r}")
        ddf, image = inputs
        _check_ddf_size(self, ddf, "ddf")
        return warp(image, ddf, interpolation=self.interpolation, boundary=self.boundary)

    config_keys = ("fixed_image_size", "interpolation", "boundary")


class IntDVF(AttributeConfigMixin, keras.layers.Layer):
    """Integrate a stationary velocity field into a displacement field (DeepReg's ``IntDVF``).

    Args:
        fixed_image_size: optional spatial shape of the DVF, checked when given.
        num_steps: number of scaling-and-squaring steps (int >= 0), DeepReg's 7.
        boundary: ``"zero"`` (DeepReg) or ``"replicate"``, see :func:`tfreg.ops.integrate.integrate_dvf`.

    Call:
        inputs: dvf ``(B, *S, ndim)``, voxels per unit time.

    Returns:
        ddf ``(B, *S, ndim)``, voxels.
    """

    def __init__(self, fixed_image_size=None, num_steps=7, boundary="zero", **kwargs):
        super().__init__(**kwargs)
        num_steps = check_int(num_steps, "num_steps", minimum=0)
        check_choice(boundary, "boundary", BOUNDARIES)
        self.fixed_image_size = _check_fixed_size(fixed_image_size)
        self.num_steps = num_steps
        self.boundary = boundary

    def call(self, inputs):
        _check_ddf_size(self, inputs, "dvf")
        return integrate_dvf(inputs, num_steps=self.num_steps, boundary=self.boundary)

    config_keys = ("fixed_image_size", "num_steps", "boundary")


class Resize(AttributeConfigMixin, keras.layers.Layer):
    """Resize the spatial axes by separable linear interpolation (DeepReg's ``Resize3d``, 2-D and 3-D).

    Args:
        shape: target spatial shape ``(d0, d1[, d2])``, positive ints.

    Call:
        inputs: ``(B, *S, C)`` or ``(B, *S)`` with ``len(S) == len(shape)``.

    Returns:
        ``(B, *shape, C)`` or ``(B, *shape)``, see :func:`tfreg.ops.resize.resize`.
    """

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = _check_shape(shape)

    def call(self, inputs):
        return resize(inputs, self.shape)

    def compute_output_shape(self, input_shape):
        ndim = len(self.shape)
        return (input_shape[0], *self.shape, *input_shape[ndim + 1 :])

    config_keys = ("shape",)


__all__ = ["Warping", "IntDVF", "Resize"]
