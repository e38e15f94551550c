"""Local rigidity penalty of a DDF inside a mask (Staring et al. 2007, as used in van Ulsen's thesis), 2-D and 3-D.

Registered (``loss_class``): ``rigidity`` -> :class:`RigidityPenalty`, called as ``loss(ddf, mask)``.

For ``T(x) = x + u(x)`` with Jacobian ``J = I + grad u`` (per-voxel derivatives), three per-voxel terms
measure how far ``T`` is from a rigid transform ``T(x) = R x + t`` (``R`` a rotation):

- linearity (bending energy of ``T``, equal to that of ``u``)::

      p_BE = sum_c [ sum_a (d^2 T_c / dx_a^2)^2 + 2 sum_{a<b} (d^2 T_c / dx_a dx_b)^2 ]

- orthonormality (squared Frobenius norm, as in Staring's paper; some public code omits the square)::

      p_ON = || J J^T - I ||_F^2 = sum_{c,d} (sum_a J_ca J_da - delta_cd)^2

- properness (orientation preservation)::

      p_JD = (det J - 1)^2

All three are exactly 0 for a rigid transform and > 0 otherwise (a reflection has ``p_ON = 0`` but
``p_JD = 4``). Derivatives are taken everywhere on the full grid with central differences
(``numpy.gradient`` with ``edge_order=1``: one-sided on the first and last plane), second derivatives as
central differences of the first ones; then the maps are averaged inside the mask.

Locality: ``p`` at a voxel depends on ``u`` within 2 voxels of it (Chebyshev distance: the second
differences are central differences of central differences), so the penalty is unchanged by any change of
``u`` farther than 2 voxels from every voxel with non-zero mask.
"""

from typing import Optional

from keras import ops

from tfreg.checks import check_choice, check_number
from tfreg.loss_inputs import LossInput
from tfreg.losses.base import EPS
from tfreg.losses.deformation import DeformationLoss
from tfreg.ops.differences import central_difference
from tfreg.ops.jacobian import determinant, jacobian
from tfreg.registry import REGISTRY

STRUCTURE_REDUCTIONS = ("mean", "sum")


def rigidity_terms(ddf):
    """Per-voxel rigidity terms of ``T(x) = x + ddf(x)``.

    Args:
        ddf: float ``(B, *S, ndim)``, displacement in voxels, ``ndim = len(S)`` in {2, 3}, every spatial
            size >= 3.

    Returns:
        ``(p_BE, p_ON, p_JD)``, each ``(B, *S)``; ``p_ON`` and ``p_JD`` are dimensionless, ``p_BE`` is in
        voxel^-2 (squared second derivatives of a field in voxels); formulas in the module docstring.
    """
    ndim = len(ddf.shape) - 2
    # J of T (identity included), central differences with one-sided edges.
    jac = jacobian(ddf, mode="central")
    # J J^T - I summed squared over both matrix axes.
    jjt = ops.einsum("...ca,...da->...cd", jac, jac)
    eye = ops.eye(ndim, dtype=jac.dtype)
    p_on = ops.sum(ops.square(jjt - eye), axis=(-2, -1))
    p_jd = ops.square(determinant(jac) - 1.0)
    # Second derivatives of u (T's equal them: x is linear); sums over the DDF components c.
    first = [central_difference(ddf, a, padding="same") for a in range(ndim)]
    p_be = 0.0
    for a in range(ndim):
        p_be = p_be + ops.sum(ops.square(central_difference(first[a], a, padding="same")), axis=-1)
        for b in range(a + 1, ndim):
            p_be = p_be + 2.0 * ops.sum(ops.square(central_difference(first[a], b, padding="same")), axis=-1)
    return p_be, p_on, p_jd


def masked_mean(values, mask, eps: float = EPS):
    """Mean of a per-voxel map inside each mask channel, then one value per channel.

    ``out[b, k] = sum_x mask[b, x, k] values[b, x] / (sum_x mask[b, x, k] + eps)``: a weighted mean, so
    soft labels weigh voxels by their probability, and an empty mask gives exactly 0 with finite
    gradients (the ``eps`` keeps the denominator away from 0).

    Args:
        values: ``(B, *S)``.
        mask: ``(B, *S, K)``, weights >= 0.
        eps: > 0.

    Returns:
        ``(B, K)``.
    """
    spatial = tuple(range(1, len(values.shape)))
    weighted = ops.sum(mask * ops.expand_dims(values, -1), axis=spatial)
    return weighted / (ops.sum(mask, axis=spatial) + eps)


@REGISTRY.register_loss(name="rigidity")
class RigidityPenalty(DeformationLoss):
    """Local rigidity penalty ``L_RP = w_be p_BE + w_on p_ON + w_jd p_JD`` averaged inside a mask.

    Per-voxel terms: see the module docstring (Staring 2007; van Ulsen's thesis eqs. 3.11-3.16). With a mask of
    ``K`` channels (one per rigid structure, e.g. one per vertebra; soft labels allowed), each term map is
    averaged inside each channel, ``m_k = sum(mask_k p) / (sum(mask_k) + eps)``, and the ``K`` structure
    values are combined by ``structure_reduction``: ``"mean"`` (default: the scale of the loss does not
    depend on the number of structures, so ``gamma2`` keeps its meaning) or ``"sum"`` (each structure
    counts fully, as Staring's sum over rigid objects). Without a mask the terms are averaged over the
    whole grid. The mask must lie on the DDF's grid, which is the FIXED image's grid (``ddf[x]`` moves fixed
    voxel ``x``); van Ulsen's thesis uses the unwarped moving structures there, which is exact after a rigid
    pre-alignment onto a shared grid (see :mod:`tfreg.models.loss_wiring` for ``moving_label``, ``fixed_label``
    and ``warped_moving``).

    Called as ``loss(ddf, mask)`` or ``loss(ddf, mask=mask)`` (or ``loss(ddf)``): ``ddf`` ``(B, *S, ndim)``
    in voxels, ``mask`` ``(B, *S)``, ``(B, *S, 1)`` or ``(B, *S, K)``. Returns ``(B,)`` (with the default
    ``reduction=None``). The value at masked voxels depends on ``u`` within 2 voxels of the mask (see the
    module docstring); dilate a mask by 2 voxels to find everything that can change the penalty.

    Args:
        bending_weight: ``w_be`` >= 0 (default 1).
        orthonormality_weight: ``w_on`` >= 0 (default 1).
        properness_weight: ``w_jd`` >= 0 (default 1).
        structure_reduction: ``"mean"`` or ``"sum"`` over mask channels.
        threshold: None (default: the mask is used as soft weights) or a number in [0, 1]: the mask is
            binarised as ``mask > threshold`` first (methods.md's "in mask" is ``threshold=0.5``).
        eps: > 0, added to the mask volume (voxels) in the denominator.
        **kwargs: reduction, name, dtype, see :class:`~tfreg.losses.deformation.DeformationLoss`.

    In a model's config the mask is wired by name (:mod:`tfreg.loss_inputs`), and must be:
    ``{name: rigidity, weight: 0.2, mask: moving_label}`` (optionally ``channels: [...]``, ``combine:
    union``), or ``mask: null`` for the whole grid; without ``mask`` the config is refused, since a
    penalty silently applied everywhere is a different method.
    """

    tensor_inputs = (
        LossInput(
            "mask",
            "rigid structures, (B, *S) or (B, *S, K) weights in [0, 1] on the DDF's grid",
            optional=True,
            is_mask=True,
        ),
    )

    def __init__(
        self,
        bending_weight: float = 1.0,
        orthonormality_weight: float = 1.0,
        properness_weight: float = 1.0,
        structure_reduction: str = "mean",
        threshold: Optional[float] = None,
        eps: float = EPS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bending_weight = check_number(bending_weight, "bending_weight")
        self.orthonormality_weight = check_number(orthonormality_weight, "orthonormality_weight")
        self.properness_weight = check_number(properness_weight, "properness_weight")
        self.structure_reduction = check_choice(structure_reduction, "structure_reduction", STRUCTURE_REDUCTIONS)
        self.threshold = None if threshold is None else check_number(threshold, "threshold", 0.0, 1.0)
        self.eps = check_number(eps, "eps")
        if self.eps == 0:
            raise ValueError("eps must be > 0 (it keeps an empty mask's value at 0 with finite gradients), got 0")
        # Passing ``mask`` by keyword makes Keras treat it as a propagated mask; supporting masking (and
        # computing none for the output) keeps Keras from warning that the mask would be dropped.
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def check_mask(self, mask, ddf):
        """``mask`` as float32 ``(B, *S, K)``, checked against the DDF's shape."""
        mask = ops.cast(mask, "float32")
        spatial = tuple(ddf.shape[1:-1])
        if len(mask.shape) == len(ddf.shape) - 1:
            mask = ops.expand_dims(mask, -1)
        if len(mask.shape) != len(ddf.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(mask.shape[1:-1], spatial)
        ):
            raise ValueError(
                f"{type(self).__name__}: mask must be (batch, *spatial) or (batch, *spatial, K) with the DDF's "
                f"spatial shape {spatial}, got shape {tuple(mask.shape)}"
            )
        if self.threshold is not None:
            mask = ops.cast(mask > self.threshold, "float32")
        return mask

    def penalty(self, ddf):
        """Weighted per-voxel sum ``w_be p_BE + w_on p_ON + w_jd p_JD``, ``(B, *S)``."""
        p_be, p_on, p_jd = rigidity_terms(ddf)
        return self.bending_weight * p_be + self.orthonormality_weight * p_on + self.properness_weight * p_jd

    def call(self, inputs, mask=None):
        """``(B,)`` penalty of the DDF ``inputs`` ``(B, *S, ndim)`` inside ``mask`` (see the class docstring)."""
        ddf = self.check_ddf(inputs)
        values = self.penalty(ddf)
        if mask is None:
            return self.reduce(values)
        per_structure = masked_mean(values, self.check_mask(mask, ddf), self.eps)
        if self.structure_reduction == "mean":
            per_sample = ops.mean(per_structure, axis=-1)
        else:
            per_sample = ops.sum(per_structure, axis=-1)
        return self._batch_reduce(per_sample)

    def _batch_reduce(self, per_sample):
        """The batch reduction of a ``(B,)`` vector (what :meth:`reduce` does after its spatial mean)."""
        if self.reduction in ("sum_over_batch_size", "mean"):
            return ops.mean(per_sample)
        if self.reduction == "sum":
            return ops.sum(per_sample)
        return per_sample

    def compute_output_shape(self, input_shape, mask_shape=None):
        return super().compute_output_shape(input_shape)

    config_keys = (
        "bending_weight",
        "orthonormality_weight",
        "properness_weight",
        "structure_reduction",
        "threshold",
        "eps",
    )


__all__ = ["RigidityPenalty", "rigidity_terms", "masked_mean"]
