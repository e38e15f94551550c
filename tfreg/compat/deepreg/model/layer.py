"""``deepreg.model.layer``: ``Warping``, ``IntDVF`` and ``Resize3d`` with DeepReg's constructor arguments.

``Warping`` and ``IntDVF`` are tfreg's layers (:mod:`tfreg.layers.warping`), called as DeepReg's:
``Warping(fixed_image_size)(inputs=[ddf, image])``, ``IntDVF(fixed_image_size, num_steps=7)(dvf)``.
"""

from typing import Sequence

from tfreg.layers.warping import IntDVF, Resize, Warping

#: the one ``method`` of DeepReg's ``Resize3d`` that tfreg computes (``tf.image.ResizeMethod.BILINEAR``)
BILINEAR = "bilinear"


class Resize3d(Resize):
    """DeepReg's ``Resize3d(shape, method="bilinear")``: :class:`~tfreg.layers.warping.Resize`, half-pixel
    separable linear resizing of ``(batch, *S)`` or ``(batch, *S, C)`` to ``shape`` (DeepReg's numerics).

    Args:
        shape: the output spatial size, 3 (or 2) positive ints.
        method: only ``"bilinear"``: other ``tf.image`` methods are refused rather than silently replaced.
        name: the layer name.
    """

    def __init__(self, shape: Sequence[int], method: str = BILINEAR, name: str = "resize3d", **kwargs):
        if method != BILINEAR:
            raise ValueError(f"Resize3d: method {method!r} is not supported; tfreg resizes with {BILINEAR!r} only")
        super().__init__(shape, name=name, **kwargs)


__all__ = ["IntDVF", "Resize3d", "Warping"]
