"""Deformation regularisers: bending energy and gradient norm of a dense displacement field (DDF).

Registered (DeepReg's names): ``bending`` -> :class:`BendingEnergy`, ``gradient`` -> :class:`GradientNorm`.
They are Keras layers, as in DeepReg, called on the DDF: ``loss(ddf)`` or ``loss(inputs=ddf)``.
Derivatives are DeepReg's central differences ``(f[i+1] - f[i-1]) / 2`` in voxel units with every
spatial axis cropped by one voxel per side (``central_difference_cropped``), in 2-D and 3-D.
"""

from typing import Optional

import keras
from keras import ops

from tfreg.checks import REDUCTIONS, check_bool, check_choice
from tfreg.losses.base import mean_per_sample
from tfreg.ops.differences import central_difference_cropped
from tfreg.registry import REGISTRY
from tfreg.serialization import AttributeConfigMixin


class DeformationLoss(AttributeConfigMixin, keras.layers.Layer):
    """Base of the DDF regularisers: ``call(inputs)`` maps a DDF to one value per sample.

    Subclasses implement :meth:`penalty`, a per-voxel penalty map ``(B, *S', K)``; the base checks the
    input, casts it to float32 and averages the map over every non-batch axis. Later penalties (masked,
    rigidity, total variation, folding) override :meth:`penalty` or :meth:`reduce`.

    Args:
        reduction: None or ``"none"`` (default: ``(B,)``, what DeepReg's model code expects), or
            ``"sum_over_batch_size"``/``"mean"`` (batch mean) or ``"sum"``; accepted so that losses of every
            category can be built with the same ``reduction`` default argument.
        name: layer name; defaults to the class name (DeepReg's, logged as
            ``loss/regularization_<name>``).
        dtype: layer dtype policy; defaults to float32 so that differences of the DDF are taken in
            float32 even under a mixed-precision global policy.

    ``call`` input: ``(B, *S, ndim)`` with ``ndim = len(S)`` in {2, 3}, in voxels; output ``(B,)``.
    """

    #: Smallest spatial size the penalty's differences need along every axis.
    min_size = 3

    def __init__(self, reduction: Optional[str] = None, name: Optional[str] = None, dtype="float32"):
        super().__init__(name=name or type(self).__name__, dtype=dtype)
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)

    def check_ddf(self, ddf):
        """``ddf`` as float32 after checking its shape ``(B, *S, ndim)``."""
        shape = tuple(ddf.shape)
        ndim = len(shape) - 2
        if ndim not in (2, 3) or shape[-1] != ndim:
            raise ValueError(
                f"{type(self).__name__}: expected a DDF of shape (batch, *spatial, ndim) with ndim = number "
                f"of spatial axes (2 or 3), got shape {shape}"
            )
        if any(s is not None and s < self.min_size for s in shape[1:-1]):
            raise ValueError(
                f"{type(self).__name__}: every spatial size must be >= {self.min_size} voxels, got shape {shape}"
            )
        return ops.cast(ddf, "float32")

    def penalty(self, ddf):
        """Per-voxel penalty ``(B, *S', K)`` of a float32 DDF ``(B, *S, ndim)``."""
        raise NotImplementedError

    def reduce(self, values):
        """``(B, ...)`` penalty map -> ``(B,)`` mean, then the batch reduction."""
        per_sample = mean_per_sample(values)
        if self.reduction in ("sum_over_batch_size", "mean"):
            return ops.mean(per_sample)
        if self.reduction == "sum":
            return ops.sum(per_sample)
        return per_sample

    def call(self, inputs):
        """The regulariser of ``inputs`` (the DDF, ``(B, *S, ndim)``): ``(B,)`` by default."""
        return self.reduce(self.penalty(self.check_ddf(inputs)))

    def compute_output_shape(self, input_shape):
        if self.reduction in (None, "none"):
            return (input_shape[0],)
        return ()

    config_keys = ("reduction",)
    # No weights: "trainable" is meaningless here and the constructor does not take it.
    config_drop = ("trainable",)


@REGISTRY.register_loss(name="bending")
class BendingEnergy(DeformationLoss):
    """Bending energy of a DDF, DeepReg's ``BendingEnergy``, 2-D and 3-D.

    ``mean over voxels and DDF components of sum_a f_aa^2 + 2 sum_{a<b} f_ab^2``, i.e.
    ``fxx^2 + fyy^2 + fzz^2 + 2 fxy^2 + 2 fxz^2 + 2 fyz^2`` in 3-D and ``fxx^2 + fyy^2 + 2 fxy^2`` in 2-D.
    Second derivatives are repeated cropped central differences (``f_ab = D_b(D_a f)``), so the map
    covers ``S - 4`` voxels per axis; units voxel^-2 times the DDF's units squared. Zero for any affine
    field. Needs at least 5 voxels per axis.

    Arguments: see :class:`DeformationLoss`.
    """

    min_size = 5

    def penalty(self, ddf):
        """``(B, *(S - 4), ndim)`` map of the bending energy density."""
        ndim = len(ddf.shape) - 2
        first = [central_difference_cropped(ddf, a) for a in range(ndim)]
        energy = 0.0
        for a in range(ndim):
            energy = energy + ops.square(central_difference_cropped(first[a], a))
            for b in range(a + 1, ndim):
                energy = energy + 2.0 * ops.square(central_difference_cropped(first[a], b))
        return energy


@REGISTRY.register_loss(name="gradient")
class GradientNorm(DeformationLoss):
    """Gradient norm of a DDF, DeepReg's ``GradientNorm``, 2-D and 3-D.

    ``mean over voxels and DDF components of sum_a (D_a f)^2`` (``l1=False``, default) or
    ``sum_a |D_a f|`` (``l1=True``), with ``D_a`` the cropped central difference along axis ``a`` (map of
    ``S - 2`` voxels per axis). For ``f = A x`` (constant Jacobian ``A``) the ``l1=False`` value is
    ``sum(A^2) / ndim``.

    Args:
        l1: use absolute values instead of squares.
        **kwargs: reduction, name, dtype, see :class:`DeformationLoss`.
    """

    def __init__(self, l1: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.l1 = check_bool(l1, "l1")

    def penalty(self, ddf):
        """``(B, *(S - 2), ndim)`` map of ``sum_a |D_a f|^p``."""
        ndim = len(ddf.shape) - 2
        norm = 0.0
        for a in range(ndim):
            d = central_difference_cropped(ddf, a)
            norm = norm + (ops.abs(d) if self.l1 else ops.square(d))
        return norm

    config_keys = ("l1",)


__all__ = ["DeformationLoss", "BendingEnergy", "GradientNorm"]
