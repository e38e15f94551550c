"""Normalised gradient fields (NGF, Haber and Modersitzki 2006), 2-D and 3-D.

Registered: ``ngf`` -> :class:`NGFLoss` (negated score).
"""

from keras import ops

from tfreg.checks import check_number
from tfreg.losses.base import ImageLoss, NegatedLossMixin, mean_per_sample
from tfreg.ops.differences import central_difference
from tfreg.registry import REGISTRY


def normalised_gradient(x, epsilon: float):
    """``grad x / sqrt(|grad x|^2 + epsilon^2)`` per channel: ``(B, *S, C)`` -> ``(B, *S, C, ndim)``.

    Central differences inside, one-sided at the borders (``numpy.gradient``), per voxel.
    """
    ndim = len(x.shape) - 2
    grad = ops.stack([central_difference(x, a, padding="same") for a in range(ndim)], axis=-1)
    return grad / ops.sqrt(ops.sum(grad * grad, axis=-1, keepdims=True) + epsilon**2)


class NGF(ImageLoss):
    """NGF score per sample: ``mean over voxels and channels of (n(t) . n(p))^2``, in ``[0, 1)``.

    ``n(I) = grad I / sqrt(|grad I|^2 + epsilon^2)``. The squared dot product is 1 where the edges of the
    two images are parallel or anti-parallel (so inverted contrast matches) and 0 where they are
    orthogonal or where either image is flat (``|grad I| << epsilon``). The usual NGF distance is
    ``1 - score``.

    Args:
        epsilon: edge parameter in intensity units per voxel, > 0 (default 0.01): gradients much smaller
            are treated as noise. Choose it near the noise level of the gradient magnitude.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        epsilon: float = 0.01,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.epsilon = check_number(epsilon, "epsilon", minimum=1e-12)

    def compute_per_sample(self, y_true, y_pred):
        """NGF score per sample, ``(B,)``."""
        dot = ops.sum(normalised_gradient(y_true, self.epsilon) * normalised_gradient(y_pred, self.epsilon), axis=-1)
        return mean_per_sample(dot * dot)

    config_keys = ("epsilon",)


@REGISTRY.register_loss(name="ngf")
class NGFLoss(NegatedLossMixin, NGF):
    """``-NGF`` per sample (registered ``ngf``); see :class:`NGF`."""


__all__ = ["normalised_gradient", "NGF", "NGFLoss"]
