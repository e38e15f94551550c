"""Global normalised cross-correlation (Pearson correlation of the whole images), He, He and Cao's NCC.

Registered: ``ncc`` -> :class:`GlobalNCCLoss` (negated score). DeepReg's ``gncc`` is (up to its
smoothing constants) the square of this score, so it cannot tell an inverted contrast from a match;
``ncc`` can (``ncc(t, -t) = -1``).
"""

from keras import ops

from tfreg.checks import check_number
from tfreg.losses.base import ImageLoss, NegatedLossMixin, mean_per_sample
from tfreg.registry import REGISTRY


class GlobalNCC(ImageLoss):
    """Global NCC score per sample, in ``[-1, 1]`` (dimensionless).

    Over all non-batch elements (channels included)::

        NCC = mean((t - mean t)(p - mean p)) / sqrt(var(t) var(p) + eps)

    with population variances (intensity^2 units, so ``eps`` is in intensity^4). Constant images give 0
    and finite gradients.

    Args:
        eps: >= 0, added under the square root (default 1e-12 intensity^4: small enough not to bias
            the score of images in [0, 1] (var(t) var(p) ~1e-3) nor of filtered ones such as a LoG
            (~1e-9); DeepReg's 1e-5 would shift the former by ~0.1 %). Rescale images whose variance
            product is below ~1e-9.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        eps: float = 1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.eps = check_number(eps, "eps")

    def compute_per_sample(self, y_true, y_pred):
        """NCC per sample, ``(B,)``."""
        axes = tuple(range(1, len(y_true.shape)))
        dt = y_true - ops.mean(y_true, axis=axes, keepdims=True)
        dp = y_pred - ops.mean(y_pred, axis=axes, keepdims=True)
        cov = mean_per_sample(dt * dp)
        return cov / ops.sqrt(mean_per_sample(dt * dt) * mean_per_sample(dp * dp) + self.eps)

    config_keys = ("eps",)


@REGISTRY.register_loss(name="ncc")
class GlobalNCCLoss(NegatedLossMixin, GlobalNCC):
    """``-NCC`` per sample (registered ``ncc``); see :class:`GlobalNCC`."""


__all__ = ["GlobalNCC", "GlobalNCCLoss"]
