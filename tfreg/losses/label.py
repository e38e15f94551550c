"""Label overlap losses: Dice, Jaccard and cross-entropy, with DeepReg's multi-scale option.

Registered (DeepReg's names): ``dice`` -> :class:`DiceScoreLoss` and ``jaccard`` ->
:class:`JaccardIndexLoss` (negated scores), ``cross-entropy`` -> :class:`CrossEntropy` (positive).
:class:`DiceScore` and :class:`JaccardIndex` are the scores, for use as metrics.

Sums and means run over every non-batch axis, channels included (DeepReg's reduction), so a
multi-channel label is scored as one foreground. Labels are expected in ``[0, 1]``.
"""

from keras import ops

from tfreg.checks import check_bool, check_number
from tfreg.label_threshold import binarise
from tfreg.losses.base import (
    EPS,
    MultiScaleLoss,
    NegatedLossMixin,
    mean_per_sample,
    sum_per_sample,
)
from tfreg.registry import REGISTRY


def _elements_per_sample(x):
    """Number of non-batch elements of ``x`` as a float32 scalar (static when the shape is known)."""
    shape = ops.shape(x)
    count = 1
    for s in shape[1:]:
        count = count * s
    return ops.cast(count, "float32")


def _threshold(x):
    """``1`` where ``x >= 0.5`` (:mod:`tfreg.label_threshold`), else ``0`` (no gradient flows through it, as
    in DeepReg)."""
    return ops.cast(binarise(x), "float32")


class _OverlapScore(MultiScaleLoss):
    """Shared constructor of :class:`DiceScore` and :class:`JaccardIndex`."""

    def __init__(
        self,
        binary: bool = False,
        background_weight: float = 0.0,
        smooth_nr: float = EPS,
        smooth_dr: float = EPS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.binary = check_bool(binary, "binary")
        self.background_weight = check_number(background_weight, "background_weight", 0.0, 1.0)
        self.smooth_nr = check_number(smooth_nr, "smooth_nr")
        self.smooth_dr = check_number(smooth_dr, "smooth_dr")

    def _sums(self, y_true, y_pred):
        """``P = sum(t p)``, ``S = sum(t + p)``, ``V`` = element count, per sample."""
        if self.binary:
            y_true, y_pred = _threshold(y_true), _threshold(y_pred)
        return (
            sum_per_sample(y_true * y_pred),
            sum_per_sample(y_true) + sum_per_sample(y_pred),
            _elements_per_sample(y_true),
        )

    config_keys = ("binary", "background_weight", "smooth_nr", "smooth_dr")


class DiceScore(_OverlapScore):
    """Soft Dice score (DeepReg's ``DiceScore``), optionally weighting the background, multi-scale.

    With ``P = sum(t p)``, ``S = sum(t + p)``, ``V`` the number of elements per sample and
    ``bg = background_weight``::

        score = (2 (P - bg S + bg V) + smooth_nr) / ((1 - 2 bg) S + 2 bg V + smooth_dr)

    i.e. ``(2P + nr) / (S + dr)`` for ``bg = 0``, and in general the ``(1 - bg)``/``bg`` weighted
    combination of the foreground and background (``1 - t``, ``1 - p``) Dice terms' numerators and
    denominators. Two all-zero labels give ``nr / dr`` (1 with the defaults).

    Args:
        binary: threshold both inputs at ``>= 0.5`` first (no gradient then; for metrics).
        background_weight: ``bg`` in ``[0, 1]``.
        smooth_nr, smooth_dr: >= 0.
        scales, kernel: multi-scale smoothing, see :class:`~tfreg.losses.base.MultiScaleLoss`.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)`` in ``[0, 1]``; returns ``(B,)``.
    """

    def compute_per_sample(self, y_true, y_pred):
        """Dice score per sample, ``(B,)``."""
        prod, total, count = self._sums(y_true, y_pred)
        bg = self.background_weight
        numerator = 2.0 * (prod - bg * total + bg * count)
        denominator = (1.0 - 2.0 * bg) * total + 2.0 * bg * count
        return (numerator + self.smooth_nr) / (denominator + self.smooth_dr)


@REGISTRY.register_loss(name="dice")
class DiceScoreLoss(NegatedLossMixin, DiceScore):
    """``-Dice`` per sample (registered as ``dice``); see :class:`DiceScore`."""


class JaccardIndex(_OverlapScore):
    """Soft Jaccard index (intersection over union), DeepReg's ``JaccardIndex``, multi-scale.

    With ``P``, ``S``, ``V`` and ``bg`` as in :class:`DiceScore`::

        score = (P - bg S + bg V + smooth_nr) / ((1 - bg) S - P + bg V + smooth_dr)

    i.e. ``(P + nr) / (S - P + dr)`` for ``bg = 0`` (the union is ``S - P``).

    Arguments: see :class:`DiceScore`. ``call`` returns ``(B,)``.
    """

    def compute_per_sample(self, y_true, y_pred):
        """Jaccard index per sample, ``(B,)``."""
        prod, total, count = self._sums(y_true, y_pred)
        bg = self.background_weight
        numerator = prod - bg * total + bg * count
        denominator = (1.0 - bg) * total - prod + bg * count
        return (numerator + self.smooth_nr) / (denominator + self.smooth_dr)


@REGISTRY.register_loss(name="jaccard")
class JaccardIndexLoss(NegatedLossMixin, JaccardIndex):
    """``-Jaccard`` per sample (registered as ``jaccard``); see :class:`JaccardIndex`."""


@REGISTRY.register_loss(name="cross-entropy")
class CrossEntropy(MultiScaleLoss):
    """Binary cross-entropy with an optional background term (DeepReg's ``CrossEntropy``), multi-scale.

    ``fg = -mean(t log(p + smooth))``; with ``bg = background_weight > 0`` the value is
    ``(1 - bg) fg + bg (-mean((1 - t) log(1 - p + smooth)))``, else ``fg``. Means over all non-batch
    elements. Positive (not negated).

    Args:
        binary: threshold both inputs at ``>= 0.5`` first (no gradient then).
        background_weight: ``bg`` in ``[0, 1]``.
        smooth: > 0 keeps ``log`` finite at ``p = 0`` (default EPS).
        scales, kernel: multi-scale smoothing, see :class:`~tfreg.losses.base.MultiScaleLoss`.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)`` with ``p`` in ``[0, 1]``; returns ``(B,)``.
    """

    def __init__(
        self,
        binary: bool = False,
        background_weight: float = 0.0,
        smooth: float = EPS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.binary = check_bool(binary, "binary")
        self.background_weight = check_number(background_weight, "background_weight", 0.0, 1.0)
        self.smooth = check_number(smooth, "smooth")
        if self.smooth == 0:
            raise ValueError("smooth must be > 0 (it keeps log(p + smooth) finite), got 0")

    def compute_per_sample(self, y_true, y_pred):
        """Cross-entropy per sample, ``(B,)``."""
        if self.binary:
            y_true, y_pred = _threshold(y_true), _threshold(y_pred)
        foreground = -mean_per_sample(y_true * ops.log(y_pred + self.smooth))
        bg = self.background_weight
        if bg == 0:
            return foreground
        background = -mean_per_sample((1.0 - y_true) * ops.log(1.0 - y_pred + self.smooth))
        return (1.0 - bg) * foreground + bg * background

    config_keys = ("binary", "background_weight", "smooth")


__all__ = [
    "DiceScore",
    "DiceScoreLoss",
    "JaccardIndex",
    "JaccardIndexLoss",
    "CrossEntropy",
]
