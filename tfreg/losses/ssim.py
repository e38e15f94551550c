"""Structural similarity (SSIM, Wang et al. 2004) with a Gaussian window, 2-D and 3-D.

Registered: ``ssim`` -> :class:`SSIMLoss` (negated score); :class:`SSIM` is the score, usable as a
metric.
"""

import numpy as np
from keras import ops

from tfreg.checks import check_choice, check_number
from tfreg.losses.base import ImageLoss, NegatedLossMixin, mean_per_sample
from tfreg.ops.filters import separable_filter
from tfreg.registry import REGISTRY

#: where the local SSIM is evaluated: windows inside the image only, or every voxel (zero-padded windows)
SSIM_PADDINGS = ("valid", "same")


def ssim_window(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian of ``sigma`` voxels with radius ``int(3.5 sigma + 0.5)`` (11 taps at 1.5).

    Wang et al. use an 11-tap Gaussian of sigma 1.5; the radius rule is scikit-image's.
    """
    radius = int(3.5 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def ssim_map(
    y_true,
    y_pred,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: str = "valid",
):
    """Local SSIM per voxel and channel, on the *valid* region (window fully inside the image) or everywhere.

    With ``G`` the separable Gaussian window (weights sum to 1), ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``::

        mu_t = G t,  mu_p = G p,  s_t = G t^2 - mu_t^2,  s_p = G p^2 - mu_p^2,  s_tp = G tp - mu_t mu_p
        SSIM = (2 mu_t mu_p + C1)(2 s_tp + C2) / ((mu_t^2 + mu_p^2 + C1)(s_t + s_p + C2))

    Variances are population (window-weighted) ones, as Wang et al.'s reference code.

    Args:
        y_true, y_pred: float32 ``(B, *S, C)``; with ``"valid"`` every spatial size must exceed ``2 radius``.
        padding: ``"valid"`` (default): only voxels whose window lies inside the image; ``"same"``: every
            voxel, the window zero-padded outside the image (the ``ssim-pytorch`` code that He, He and Cao
            2022 use, whose border windows see zeros; at 64x64 the valid region loses a 5-pixel rim).

    Returns:
        ``(B, *(S - 2 radius), C)`` (``valid``) or ``(B, *S, C)`` (``same``).
    """
    window = ssim_window(sigma)
    radius = (len(window) - 1) // 2
    channels = y_true.shape[-1]
    stats = separable_filter(
        ops.concatenate([y_true, y_pred, y_true * y_true, y_pred * y_pred, y_true * y_pred], axis=-1), window
    )
    check_choice(padding, "padding", SSIM_PADDINGS)
    if padding == "valid":
        # Crop to the valid region: there the zero padding never enters the window.
        index = (slice(None),) + tuple(slice(radius, s - radius) for s in y_true.shape[1:-1]) + (slice(None),)
        stats = stats[index]
    mu_t, mu_p, tt, pp, tp = (stats[..., i * channels : (i + 1) * channels] for i in range(5))
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s_t, s_p, s_tp = tt - mu_t * mu_t, pp - mu_p * mu_p, tp - mu_t * mu_p
    return ((2 * mu_t * mu_p + c1) * (2 * s_tp + c2)) / ((mu_t * mu_t + mu_p * mu_p + c1) * (s_t + s_p + c2))


class SSIM(ImageLoss):
    """Mean SSIM per sample over the valid voxels and the channels, in ``[-1, 1]`` (1 for equal images).

    See :func:`ssim_map` for the formula.

    Args:
        data_range: L, the intensity range of the images (default 1.0, intensity units), > 0.
        sigma: Gaussian window sigma in voxels (default 1.5), > 0.
        k1, k2: constants of ``C1 = (k1 L)^2`` and ``C2 = (k2 L)^2`` (defaults 0.01, 0.03), >= 0.
        padding: ``"valid"`` (default) or ``"same"`` (zero-padded windows at every voxel), see :func:`ssim_map`.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    def __init__(
        self,
        data_range: float = 1.0,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        padding: str = "valid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.padding = check_choice(padding, "padding", SSIM_PADDINGS)
        self.data_range = check_number(data_range, "data_range", minimum=1e-12)
        self.sigma = check_number(sigma, "sigma", minimum=1e-3)
        self.k1 = check_number(k1, "k1")
        self.k2 = check_number(k2, "k2")

    def compute_per_sample(self, y_true, y_pred):
        """Mean SSIM per sample, ``(B,)``."""
        radius = (len(ssim_window(self.sigma)) - 1) // 2
        small = [s for s in y_true.shape[1:-1] if s is not None and s <= 2 * radius]
        if small and self.padding == "valid":
            raise ValueError(
                f"SSIM with sigma={self.sigma} needs every spatial size > {2 * radius} voxels, "
                f"got {tuple(y_true.shape[1:-1])} (padding: same has no minimum)"
            )
        return mean_per_sample(
            ssim_map(y_true, y_pred, self.data_range, self.sigma, self.k1, self.k2, padding=self.padding)
        )

    config_keys = ("data_range", "sigma", "k1", "k2", "padding")


@REGISTRY.register_loss(name="ssim")
class SSIMLoss(NegatedLossMixin, SSIM):
    """``-SSIM`` per sample (registered ``ssim``); see :class:`SSIM`."""


__all__ = ["SSIM_PADDINGS", "ssim_window", "ssim_map", "SSIM", "SSIMLoss"]
