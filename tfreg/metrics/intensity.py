"""Intensity-based similarity of two images: histogram mutual information and SSIM (macJNet reports both).

Both take two images of the same shape (2-D or 3-D, any real dtype), computed in float64, with an optional
mask restricting the voxels that enter the statistic.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from tfreg.metrics._checks import as_array, as_mask, check_same_shape, warn_empty


def _pair(a, b, mask, func: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float64 images of equal shape, and the boolean mask (or None)."""
    ia = as_array(a, "a", func).astype(np.float64, copy=False)
    ib = as_array(b, "b", func).astype(np.float64, copy=False)
    check_same_shape(ia, ib, func)
    if ia.ndim == 0:
        raise ValueError(f"{func}: a and b must be image arrays, got scalars")
    m = None
    if mask is not None:
        m = as_mask(mask, "mask", func)
        check_same_shape(m, ia, func, names=("mask", "a"))
    return ia, ib, m


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def mutual_information(a, b, bins=32, mask=None, normalized: bool = False) -> float:
    """Mutual information of two images from their joint intensity histogram, in nats.

    ``MI = sum_{i,j} p(i, j) log(p(i, j) / (p(i) p(j)))`` (macJNet eq. 1), with ``p(i, j)`` the joint
    histogram of the paired voxel intensities normalised to sum 1 (``numpy.histogram2d``: ``bins``
    equal-width bins spanning each image's own [min, max]) and ``p(i)``, ``p(j)`` its marginals. Natural
    log, so the unit is nats (divide by ``log(2)`` for bits). This is the plain histogram estimate; the
    training losses use a Parzen-window estimate instead.

    ``normalized=True`` returns ``2 MI / (H(a) + H(b))`` (symmetric uncertainty, in [0, 1]; 1 for
    images that determine each other; the entropies ``H`` are those of the same histogram's marginals,
    in nats); macJNet reports MI in percent without saying which normalisation, so this is one reasonable
    reading of it: ``tfreg_evaluate``'s ``nmi_pct`` column is ``100 * mutual_information(a, b, bins=64,
    normalized=True)`` over the whole image.

    Args:
        a, b: images of the same shape.
        bins: number of bins per image (int), or anything ``numpy.histogram2d`` accepts.
        mask: optional mask of the same shape; only voxels ``>= 0.5`` enter the histogram.
        normalized: return the symmetric-uncertainty normalisation described above.

    Returns:
        MI in nats (>= 0), or the normalised value; NaN with an :class:`EmptyMaskWarning` for an empty
        mask, and NaN with a RuntimeWarning when ``normalized`` and both images are constant.
    """
    func = "mutual_information"
    ia, ib, m = _pair(a, b, mask, func)
    if m is not None:
        if not m.any():
            warn_empty(func, ["mask"])
            return float("nan")
        ia, ib = ia[m], ib[m]
    joint, _, _ = np.histogram2d(ia.ravel(), ib.ravel(), bins=bins)
    p = joint / joint.sum()
    pa = p.sum(axis=1)
    pb = p.sum(axis=0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    mi = max(mi, 0.0)  # rounding can leave a tiny negative value for independent images
    if not normalized:
        return mi
    h = _entropy(pa) + _entropy(pb)
    if h == 0:
        warnings.warn(
            f"{func}: both images are constant; normalized MI is undefined, returning NaN", RuntimeWarning, stacklevel=2
        )
        return float("nan")
    return 2.0 * mi / h


#: Where :func:`ssim` takes its statistics: a Gaussian window around every voxel, or the whole image.
SSIM_WINDOWS = ("gaussian", "global")


def ssim(
    a,
    b,
    data_range=None,
    mask=None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    window: str = "gaussian",
) -> float:
    """Structural similarity (Wang et al. 2004), 2-D or 3-D: Gaussian-windowed mean SSIM, or global SSIM.

    ``window="gaussian"`` (default): at every voxel, with Gaussian-weighted local means ``mu``, variances
    ``sigma^2`` and covariance ``sigma_ab`` (window: ``scipy.ndimage.gaussian_filter`` with standard
    deviation ``sigma`` voxels, truncated at radius ``round(3.5 sigma)``, i.e. Wang's 11-tap window for
    sigma 1.5; reflecting boundaries)::

        SSIM = (2 mu_a mu_b + C1)(2 sigma_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2))

    with ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` and ``L`` the data range. The result is the mean of this
    map over all voxels (or over the mask); no border is cropped.

    ``window="global"``: the same formula once, with ``mu``, ``sigma^2`` and ``sigma_ab`` the plain means,
    population variances and covariance of all voxels (or of the mask's voxels), as macJNet (Zhou et al.
    2023, "macJNet: weakly-supervised multimodal image deformable registration ...") writes its eq. 2 with
    whole-image statistics; ``sigma`` is not used. macJNet prints a "+" between the two numerator factors;
    the product above is Wang's definition, and the paper leaves ``C1``, ``C2`` open: the defaults
    ``k1 = 0.01``, ``k2 = 0.03`` with ``L`` the intensity range are a choice.

    Args:
        a, b: images of the same shape, 2-D or 3-D.
        data_range: L; None uses the joint range ``max(a, b) - min(a, b)`` (1.0 if that is 0). Pass it
            explicitly (e.g. 1.0 for images in [0, 1]) to compare numbers across image pairs.
        mask: optional mask; the SSIM map is averaged over voxels ``>= 0.5`` (gaussian), or the statistics
            are taken over them (global).
        sigma: standard deviation of the Gaussian window in voxels (gaussian only).
        k1, k2: the stabilising constants.
        window: "gaussian" or "global" (:data:`SSIM_WINDOWS`).

    Returns:
        SSIM, at most 1 (1 for identical images); NaN with an :class:`EmptyMaskWarning` for an empty mask.
    """
    func = "ssim"
    if window not in SSIM_WINDOWS:
        raise ValueError(f"{func}: window must be one of {SSIM_WINDOWS}, got {window!r}")
    ia, ib, m = _pair(a, b, mask, func)
    if ia.ndim not in (2, 3):
        raise ValueError(f"{func}: images must be 2-D or 3-D, got shape {tuple(ia.shape)}")
    if data_range is None:
        data_range = max(ia.max(), ib.max()) - min(ia.min(), ib.min())
        if data_range == 0:
            data_range = 1.0
    elif not (np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"{func}: data_range must be finite and positive, got {data_range}")
    if m is not None and not m.any():
        warn_empty(func, ["mask"])
        return float("nan")
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2

    if window == "global":
        va, vb = (ia[m], ib[m]) if m is not None else (ia.ravel(), ib.ravel())
        mu_a, mu_b = va.mean(), vb.mean()
        da, db = va - mu_a, vb - mu_b  # centred first: no cancellation for images far from zero
        var_a, var_b, cov = (da * da).mean(), (db * db).mean(), (da * db).mean()
        return float(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))

    def smooth(x):
        return ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=3.5)

    mu_a, mu_b = smooth(ia), smooth(ib)
    var_a = smooth(ia * ia) - mu_a * mu_a
    var_b = smooth(ib * ib) - mu_b * mu_b
    cov = smooth(ia * ib) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map[m].mean() if m is not None else ssim_map.mean())
