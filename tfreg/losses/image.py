"""Intensity similarity: local and global normalised cross-correlation, sum of squared differences.

Registered (DeepReg's names): ``lncc`` -> :class:`LocalNormalizedCrossCorrelationLoss`, ``gncc`` ->
:class:`GlobalNormalizedCrossCorrelationLoss` (both return the negated score) and ``ssd`` ->
:class:`SumSquaredDifference` (positive). The score classes serve as metrics.
"""

from typing import Optional

from keras import ops

from tfreg.checks import check_choice, check_number
from tfreg.losses.base import (
    EPS,
    ImageLoss,
    MultiScaleLoss,
    NegatedLossMixin,
    mean_per_sample,
)
from tfreg.ops.filters import separable_filter
from tfreg.ops.kernels import SIZE_KERNELS
from tfreg.registry import REGISTRY

#: ``formula`` of the NCC scores: tfreg's bounded default, or DeepReg's exact one
NCC_FORMULAS = ("bounded", "deepreg")


def ncc_smoothing(formula: str, smooth_nr, smooth_dr) -> tuple:
    """``(smooth_nr, smooth_dr)`` for ``formula``, an explicit value winning over the formula's default.

    ``bounded`` (default): no numerator smoothing, ``EPS`` as the variance floor of the denominator, so an
    empty or constant window scores 0, not a perfect match. ``deepreg``: ``EPS`` in both. With it, two
    constant windows score 1, so moving an image out of view maximises the score (DeepReg's flaw).
    """
    check_choice(formula, "formula", NCC_FORMULAS)
    default_nr = EPS if formula == "deepreg" else 0.0
    nr = default_nr if smooth_nr is None else check_number(smooth_nr, "smooth_nr")
    dr = EPS if smooth_dr is None else check_number(smooth_dr, "smooth_dr")
    return nr, dr


class LocalNormalizedCrossCorrelation(ImageLoss):
    """Local normalised cross-correlation (LNCC) score per channel, bounded by default (DeepReg's formula
    with ``formula="deepreg"``).

    With ``S`` the separable zero-padded filter with the 1-D window ``k`` (``kernel_type`` of length
    ``kernel_size``) along each spatial axis and ``V = (sum k)^ndim`` (the full window weight, also at
    the borders, as DeepReg)::

        cross = S(t p) - S(p) S(t) / V
        tv    = max(S(t^2) - S(t)^2 / V, 0)
        pv    = max(S(p^2) - S(p)^2 / V, 0)
        score = mean over voxels and channels of (cross^2 + smooth_nr) / (tv pv + smooth_dr)

    Several channels are handled channel by channel (each with its own local statistics) and averaged;
    DeepReg accepted one channel only. Identical non-constant images give ~1.

    The default (``formula="bounded"``) has no numerator smoothing and a variance floor ``EPS`` in the
    denominator, so the score is in ``[0, 1)`` and an empty or constant window scores 0. With DeepReg's
    ``smooth_nr = smooth_dr = EPS`` such a window scores 1, a perfect match. A blank prediction against
    any image then scores -1 as a loss, and shifting a pair out of view is "learned": DeepReg's brain
    model warped the brain out of the field of view.

    Args:
        kernel_size: window length in voxels (an integer >= 1; odd >= 3 for ``triangular``).
        kernel_type: ``"rectangular"`` (default), ``"triangular"`` or ``"gaussian"``.
        formula: ``"bounded"`` (default) or ``"deepreg"`` (DeepReg's exact formula), see above.
        smooth_nr, smooth_dr: >= 0, added to the numerator and denominator; None: the formula's values
            (``0`` / ``EPS`` bounded, ``EPS`` / ``EPS`` deepreg).
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)``; returns ``(B,)``.
    """

    def __init__(
        self,
        kernel_size: int = 9,
        kernel_type: str = "rectangular",
        formula: str = "bounded",
        smooth_nr: Optional[float] = None,
        smooth_dr: Optional[float] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_choice(kernel_type, "kernel_type", sorted(SIZE_KERNELS))
        try:
            self._kernel = SIZE_KERNELS[kernel_type](kernel_size)
        except ValueError as err:
            raise ValueError(f"kernel_size={kernel_size!r} is invalid for kernel_type={kernel_type!r}: {err}") from err
        self.kernel_size = int(kernel_size)
        self.kernel_type = kernel_type
        self.formula = formula
        self.smooth_nr, self.smooth_dr = ncc_smoothing(formula, smooth_nr, smooth_dr)
        self._kernel_sum = float(self._kernel.astype("float64").sum())

    def compute_per_sample(self, y_true, y_pred):
        """LNCC score per sample, ``(B,)``, from float32 ``(B, *S, C)`` inputs."""
        ndim = len(y_true.shape) - 2
        volume = self._kernel_sum**ndim
        channels = y_true.shape[-1]
        # One filter call for the five local sums: the channel axis is folded into the convolution's
        # batch-like axis, so five moments cost one pass per spatial axis.
        moments = ops.concatenate([y_true, y_pred, y_true * y_true, y_pred * y_pred, y_true * y_pred], axis=-1)
        sums = separable_filter(moments, self._kernel)
        t_sum, p_sum, t2_sum, p2_sum, tp_sum = (sums[..., i * channels : (i + 1) * channels] for i in range(5))
        cross = tp_sum - p_sum * t_sum / volume
        # Clamp: round-off can make a flat window's variance slightly negative.
        t_var = ops.maximum(t2_sum - t_sum * t_sum / volume, 0.0)
        p_var = ops.maximum(p2_sum - p_sum * p_sum / volume, 0.0)
        ncc = (cross * cross + self.smooth_nr) / (t_var * p_var + self.smooth_dr)
        return mean_per_sample(ncc)

    config_keys = ("kernel_size", "kernel_type", "formula", "smooth_nr", "smooth_dr")


@REGISTRY.register_loss(name="lncc")
class LocalNormalizedCrossCorrelationLoss(NegatedLossMixin, LocalNormalizedCrossCorrelation):
    """``-LNCC`` per sample (registered as ``lncc``); see :class:`LocalNormalizedCrossCorrelation`."""


class GlobalNormalizedCrossCorrelation(ImageLoss):
    """Global normalised cross-correlation (squared Pearson correlation), bounded by default (DeepReg's
    formula with ``formula="deepreg"``).

    Over all non-batch elements (channels included, as DeepReg)::

        score = (mean((p - mean p)(t - mean t))^2 + smooth_nr) / (var(p) var(t) + smooth_dr)

    with population variances. Identical non-constant images give ~1; ``p = -t`` also gives 1. The
    defaults (``bounded``: ``smooth_nr = 0``, ``smooth_dr = EPS``) score a constant (blank) image 0;
    DeepReg's (``EPS`` in both) scored a blank prediction against any image 1, a perfect match.

    Args:
        formula, smooth_nr, smooth_dr: as :class:`LocalNormalizedCrossCorrelation`.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)``; returns ``(B,)``.
    """

    def __init__(
        self, formula: str = "bounded", smooth_nr: Optional[float] = None, smooth_dr: Optional[float] = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.formula = formula
        self.smooth_nr, self.smooth_dr = ncc_smoothing(formula, smooth_nr, smooth_dr)

    def compute_per_sample(self, y_true, y_pred):
        """GNCC score per sample, ``(B,)``."""
        dt = y_true - ops.mean(y_true, axis=tuple(range(1, len(y_true.shape))), keepdims=True)
        dp = y_pred - ops.mean(y_pred, axis=tuple(range(1, len(y_pred.shape))), keepdims=True)
        cov = mean_per_sample(dt * dp)
        # cov^2 rather than |cov|^2: the same value with a gradient that is smooth at cov = 0.
        variances = mean_per_sample(dt * dt) * mean_per_sample(dp * dp)
        return (cov * cov + self.smooth_nr) / (variances + self.smooth_dr)

    config_keys = ("formula", "smooth_nr", "smooth_dr")


@REGISTRY.register_loss(name="gncc")
class GlobalNormalizedCrossCorrelationLoss(NegatedLossMixin, GlobalNormalizedCrossCorrelation):
    """``-GNCC`` per sample (registered as ``gncc``); see :class:`GlobalNormalizedCrossCorrelation`."""


@REGISTRY.register_loss(name="ssd")
class SumSquaredDifference(MultiScaleLoss):
    """Mean squared difference per sample (DeepReg's ``ssd``, despite the name a mean), multi-scale.

    ``value = mean over all non-batch elements of (t - p)^2``, averaged over ``scales`` as described in
    :class:`~tfreg.losses.base.MultiScaleLoss`. Positive (a loss, not negated).

    Args:
        scales: None (raw inputs), a number or a non-empty list of numbers >= 0 (voxels).
        kernel: ``"gaussian"`` or ``"cauchy"``.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def compute_per_sample(self, y_true, y_pred):
        """``mean((t - p)^2)`` per sample, ``(B,)``."""
        return mean_per_sample(ops.square(y_true - y_pred))


__all__ = [
    "NCC_FORMULAS",
    "ncc_smoothing",
    "LocalNormalizedCrossCorrelation",
    "LocalNormalizedCrossCorrelationLoss",
    "GlobalNormalizedCrossCorrelation",
    "GlobalNormalizedCrossCorrelationLoss",
    "SumSquaredDifference",
]
