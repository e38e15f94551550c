"""The one convolution factory of tfreg: ``Conv2D``/``Conv3D`` (or their transposes) chosen by ``ndim``.

Layers (:mod:`tfreg.layers.fusion`, :mod:`tfreg.layers.blocks`) and backbones
(:mod:`tfreg.models.backbones.blocks`) are written once for 2-D and 3-D and build their convolutions here.
"""

import keras

from tfreg.checks import check_choice

_CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_CONV_TRANSPOSE = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}


def conv_layer(ndim: int, *args, transpose: bool = False, **kwargs):
    """A Keras convolution for ``ndim`` spatial axes, channels-last.

    Args:
        ndim: 2 (``Conv2D``) or 3 (``Conv3D``).
        *args, **kwargs: the Keras layer's arguments (``filters``, ``kernel_size``, ``strides``, ...).
        transpose: build ``Conv2DTranspose``/``Conv3DTranspose`` instead.

    Raises:
        ValueError: ``ndim`` not 2 or 3.
    """
    check_choice(ndim, "ndim", (2, 3))
    return (_CONV_TRANSPOSE if transpose else _CONV)[int(ndim)](*args, **kwargs)


__all__ = ["conv_layer"]
