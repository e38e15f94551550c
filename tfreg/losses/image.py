"""Intensity similarity: local and global normalised cross-correlation, sum of squared differences.

Registered (DeepReg's names): ``lncc`` -> :class:`LocalNormalizedCrossCorrelationLoss`, ``gncc`` ->
:class:`GlobalNormalizedCrossCorrelationLoss` (both return the negated score) and ``ssd`` ->
:class:`SumSquaredDifference` (positive). The score classes serve as metrics.
"""

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


class LocalNormalizedCrossCorrelation(ImageLoss):
    """Local normalised cross-correlation (LNCC) score, DeepReg's formula, per channel.

    With ``S`` the separable zero-padded filter with the 1-D window ``k`` (``kernel_type`` of length
    ``kernel_size``) along each spatial axis and ``V = (sum k)^ndim`` (the full window weight, also at
    the borders, as DeepReg)::

        cross = S(t p) - S(p) S(t) / V
        tv    = max(S(t^2) - S(t)^2 / V, 0)
        pv    = max(S(p^2) - S(p)^2 / V, 0)
        score = mean over voxels and channels of (cross^2 + smooth_nr) / (tv pv + smooth_dr)

    Several channels are handled channel by channel (each with its own local statistics) and averaged;
    DeepReg accepted one channel only. Identical non-constant images give ~1; two constant images give
    ``smooth_nr / smooth_dr`` (1 with the defaults).

    Args:
        kernel_size: window length in voxels (an integer >= 1; odd >= 3 for ``triangular``).
        kernel_type: ``"rectangular"`` (default), ``"triangular"`` or ``"gaussian"``.
        smooth_nr, smooth_dr: >= 0, added to the numerator and denominator.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)``; returns ``(B,)``.
    """

    def __init__(
        self,
        kernel_size: int = 9,
        kernel_type: str = "rectangular",
        smooth_nr: float = EPS,
        smooth_dr: float = EPS,
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
        self.smooth_nr = check_number(smooth_nr, "smooth_nr")
        self.smooth_dr = check_number(smooth_dr, "smooth_dr")
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

    config_keys = ("kernel_size", "kernel_type", "smooth_nr", "smooth_dr")


@REGISTRY.register_loss(name="lncc")
class LocalNormalizedCrossCorrelationLoss(NegatedLossMixin, LocalNormalizedCrossCorrelation):
    """``-LNCC`` per sample (registered as ``lncc``); see :class:`LocalNormalizedCrossCorrelation`."""


class GlobalNormalizedCrossCorrelation(ImageLoss):
    """Global normalised cross-correlation (squared Pearson correlation), DeepReg's formula.

    Over all non-batch elements (channels included, as DeepReg)::

        score = (mean((p - mean p)(t - mean t))^2 + EPS) / (var(p) var(t) + EPS)

    with population variances. Identical non-constant images give ~1; ``p = -t`` also gives 1.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)``; returns ``(B,)``. Arguments: see
    :class:`~tfreg.losses.base.ImageLoss`.
    """

    def compute_per_sample(self, y_true, y_pred):
        """GNCC score per sample, ``(B,)``."""
        dt = y_true - ops.mean(y_true, axis=tuple(range(1, len(y_true.shape))), keepdims=True)
        dp = y_pred - ops.mean(y_pred, axis=tuple(range(1, len(y_pred.shape))), keepdims=True)
        cov = mean_per_sample(dt * dp)
        # cov^2 rather than |cov|^2: the same value with a gradient that is smooth at cov = 0.
        return (cov * cov + EPS) / (mean_per_sample(dt * dt) * mean_per_sample(dp * dp) + EPS)


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
    "LocalNormalizedCrossCorrelation",
    "LocalNormalizedCrossCorrelationLoss",
    "GlobalNormalizedCrossCorrelation",
    "GlobalNormalizedCrossCorrelationLoss",
    "SumSquaredDifference",
]
