"""Mutual information family: Gaussian or B-spline (Mattes) Parzen windows, normalised MI, local MI.

Registered: ``mi`` -> :class:`MutualInformationLoss` (negated score). DeepReg's ``gmi`` stays as it is
(:mod:`tfreg.losses.mutual_information`).

Intensities ``v`` are first mapped to ``[0, 1]`` (``intensity_range``), then to the bin coordinate
``u = v (num_bins - 1)`` (bin ``k`` is centred at ``u = k``). Each voxel spreads a unit mass over the
few bins of its kernel's support (sparse Parzen windowing):

- ``"gaussian"``: the ``2 s + 1`` bins nearest ``u`` (``s = ceil(3 sigma_ratio)``), weights
  ``exp(-(u - k)^2 / (2 sigma_ratio^2))`` renormalised over those of the bins ``0 .. num_bins - 1``
  (sigma in bin spacings, as DeepReg's ``sigma_ratio``);
- ``"bspline"``: the cubic B-spline ``beta3(u - k)`` on the 4 bins ``floor(u) - 1 .. floor(u) + 2``
  (a partition of unity; the histogram has 2 padding bins at each end, as Mattes et al.);
- ``"box"`` (order 0, only as ``fixed_kernel``): the nearest bin with weight 1 (Mattes' fixed image;
  its intensities get no gradient).

With voxel weights ``m_v`` (mask x validity)::

    p_ab = sum_v m_v w_a(t_v) w_b(p_v) / sum_v m_v,   p_a = sum_b p_ab,   p_b = sum_a p_ab
    H(p) = -sum p log(p + 1e-12)                                               (nats)
    MI   = H(a) + H(b) - H(a, b)          NMI = (H(a) + H(b)) / H(a, b)   (Studholme, in [1, 2])

The joint histogram is a segment sum over the ``support_t x support_p`` (bin pair) contributions of
each voxel (25 values per voxel for Gaussian weights with ``sigma_ratio = 0.5``, 16 for B-splines; more
than the 23 default bins, so a one-piece sum is no better than DeepReg's dense voxels x bins weights). It
is therefore summed ``chunk_size`` voxels at a time (:func:`chunked_joint_histograms`) with an analytic
gradient of the kernel polynomials/exponentials recomputed chunk by chunk: memory is ``chunk x support^2``
plus the images and their gradients, whatever the image size.

Local MI (``patch_size``): the image is tiled by non-overlapping ``patch_size^ndim`` patches (a
remainder at the far end of an axis is dropped), one joint histogram per patch, and the score is the
mean of the per-patch (N)MI over patches with a non-zero mass.

Composition with DeepReg's estimator: with ``kernel="gaussian"``, no mask, no patches and
``normalized=False``, the score is :func:`tfreg.losses.mutual_information.global_mutual_information`
(dense softmax Parzen weights over all bins, EPS-smoothed log, chunked with a recomputing custom
gradient: bounded memory at any size) of the normalised, sub-sampled images. The two estimators differ
by the 3-sigma truncation and DeepReg's EPS smoothing (~1e-3 nats).
"""

import math
from numbers import Real
from typing import Optional, Sequence, Union

import numpy as np
from keras import ops

from tfreg.checks import check_choice, check_int, check_number
from tfreg.label_threshold import binarise
from tfreg.losses.base import ImageLoss, NegatedLossMixin
from tfreg.losses.mutual_information import (
    DEFAULT_CHUNK_SIZE,
    chunk_at,
    global_mutual_information,
    map_chunks,
    plan_chunks,
    split_chunks,
)
from tfreg.registry import REGISTRY

KERNELS = ("gaussian", "bspline")
FIXED_KERNELS = ("gaussian", "bspline", "box")
INTENSITY_RANGES = ("clip", "minmax")
LOG_FLOOR = 1e-12


def _bspline3(t):
    """Cubic B-spline: ``2/3 - t^2 + |t|^3/2`` for ``|t| < 1``, ``(2 - |t|)^3 / 6`` for ``1 <= |t| < 2``."""
    a = ops.abs(t)
    inner = 2.0 / 3.0 - a * a + 0.5 * a * a * a
    outer = ops.power(ops.maximum(2.0 - a, 0.0), 3) / 6.0
    return ops.where(a < 1.0, inner, outer)


def parzen_support(u, kernel: str, num_bins: int, sigma_ratio: float):
    """Sparse Parzen weights of bin coordinates ``u`` ``(n,)``.

    Returns:
        ``(index, weight, pad)``: int32 ``(n, S)`` bin indices into a histogram of
        ``num_bins + 2 pad`` bins, float32 ``(n, S)`` weights summing to 1 per voxel, and ``pad``.
    """
    if kernel == "box":
        index = ops.cast(ops.stop_gradient(ops.clip(ops.round(u), 0, num_bins - 1)), "int32")
        return ops.expand_dims(index, -1), ops.ones_like(ops.expand_dims(u, -1)), 0
    if kernel == "bspline":
        base = ops.stop_gradient(ops.floor(u))
        offsets = ops.convert_to_tensor(np.arange(-1, 3, dtype=np.float32))
        centres = ops.expand_dims(base, -1) + offsets
        weight = _bspline3(ops.expand_dims(u, -1) - centres)
        return ops.cast(centres, "int32") + 2, weight, 2
    s = int(math.ceil(3.0 * sigma_ratio))
    base = ops.stop_gradient(ops.round(u))
    offsets = ops.convert_to_tensor(np.arange(-s, s + 1, dtype=np.float32))
    centres = ops.expand_dims(base, -1) + offsets
    inside = ops.logical_and(centres >= 0.0, centres <= num_bins - 1.0)
    logits = -ops.square(ops.expand_dims(u, -1) - centres) / (2.0 * sigma_ratio**2)
    # Renormalise over the in-range bins only, with the largest logit subtracted (as a softmax) so a
    # narrow kernel cannot underflow to 0 / 0.
    logits = ops.where(inside, logits, -1e30)
    weight = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True)) * ops.cast(inside, "float32")
    weight = weight / ops.sum(weight, axis=-1, keepdims=True)
    return ops.cast(ops.clip(centres, 0, num_bins - 1), "int32"), weight, 0


def _bspline3_derivative(t):
    """``d beta3 / dt``: ``-2 t + 3/2 t |t|`` for ``|t| < 1``, ``-sign(t) (2 - |t|)^2 / 2`` for ``1 <= |t| < 2``."""
    a = ops.abs(t)
    inner = -2.0 * t + 1.5 * t * a
    outer = -0.5 * ops.sign(t) * ops.square(ops.maximum(2.0 - a, 0.0))
    return ops.where(a < 1.0, inner, outer)


def parzen_support_derivative(u, kernel: str, num_bins: int, sigma_ratio: float):
    """``d weight / d u`` ``(n, S)`` of :func:`parzen_support` (bin indices held fixed, as its gradient).

    B-spline: ``beta3'(u - k)``. Gaussian: ``w_k (l'_k - sum_j w_j l'_j)`` with ``l'_k = -(u - k) / sigma^2``
    (the derivative of the renormalised exponentials). Box: 0.
    """
    if kernel == "box":
        return ops.zeros_like(ops.expand_dims(u, -1))
    if kernel == "bspline":
        base = ops.floor(u)
        centres = ops.expand_dims(base, -1) + ops.convert_to_tensor(np.arange(-1, 3, dtype=np.float32))
        return _bspline3_derivative(ops.expand_dims(u, -1) - centres)
    s = int(math.ceil(3.0 * sigma_ratio))
    centres = ops.expand_dims(ops.round(u), -1) + ops.convert_to_tensor(np.arange(-s, s + 1, dtype=np.float32))
    _, weight, _ = parzen_support(u, kernel, num_bins, sigma_ratio)
    dlogit = -(ops.expand_dims(u, -1) - centres) / sigma_ratio**2
    return weight * (dlogit - ops.sum(weight * dlogit, axis=-1, keepdims=True))


def _histogram_segments(it, ip, group, nbt: int, nbp: int):
    """Flat histogram index ``(group, a, b)`` of every (t bin, p bin) pair: ``(..., St, Sp)`` int32."""
    return (
        ops.expand_dims(ops.expand_dims(group * (nbt * nbp), -1), -1)
        + ops.expand_dims(it, -1) * nbp
        + ops.expand_dims(ip, -2)
    )


def chunked_joint_histograms(
    ut, up, voxel_weight, group, num_groups, kernel_t, kernel_p, num_bins, sigma_ratio, chunk_size=DEFAULT_CHUNK_SIZE
):
    """Normalised joint histograms ``(num_groups, nbt, nbp)`` of ``(B, n)`` bin coordinates, ``chunk_size``
    voxels (of every sample) at a time.

    The forward pass adds chunk histograms in a loop; the gradient is analytic and recomputed chunk by
    chunk (:func:`parzen_support_derivative`): for ``H = sum_v m_v w_t(u_v) (x) w_p(q_v)`` and upstream
    ``G = dL/dH``, ``dL/du_v = m_v sum_ab G[g_v, a, b] w_t'(u_v)_a w_p(q_v)_b`` (and symmetrically for
    ``q_v``). Peak memory is ``B chunk St Sp`` values plus the ``(B, n)`` inputs and gradients, whatever
    ``n``; the voxel weights and groups get no gradient.

    Args:
        ut, up, voxel_weight: float32 ``(B, n)`` (``n`` static); group: int32 ``(B, n)``.
        num_groups: number of histograms; chunk_size: voxels per sample per chunk (>= 1).

    Returns:
        ``(hist, mass)``: ``mass`` ``(num_groups,)`` the total of each group's histogram (its voxel weights
        spread by the Parzen kernels), ``hist`` ``(num_groups, nbt, nbp)`` each histogram divided by its
        mass; ``nbt``/``nbp`` are ``num_bins`` plus the B-spline kernel's 2 padding bins per side.
    """
    n = int(ut.shape[1])
    chunk, num_chunks = plan_chunks(n, chunk_size)
    pad_t = 2 if kernel_t == "bspline" else 0
    pad_p = 2 if kernel_p == "bspline" else 0
    nbt, nbp = num_bins + 2 * pad_t, num_bins + 2 * pad_p
    size = num_groups * nbt * nbp

    # padding voxels of the last chunk get weight 0: they add nothing
    w3, g3 = (split_chunks(x, n, chunk, num_chunks) for x in (voxel_weight, group))

    def read(x3, i):
        return chunk_at(x3, i, num_chunks)

    def support(u, kernel):
        index, weight, _ = parzen_support(ops.reshape(u, (-1,)), kernel, num_bins, sigma_ratio)
        return index, weight

    @ops.custom_gradient
    def histogram(ut_raw, up_raw):
        # stop_gradient: the eager tape must not record the loop (grad below is its gradient).
        t3, p3 = (split_chunks(ops.stop_gradient(x), n, chunk, num_chunks) for x in (ut_raw, up_raw))

        def chunk_histogram(i):
            it, wt = support(read(t3, i), kernel_t)
            ip, wp = support(read(p3, i), kernel_p)
            seg = _histogram_segments(it, ip, ops.reshape(read(g3, i), (-1,)), nbt, nbp)
            val = ops.reshape(read(w3, i), (-1, 1, 1)) * ops.expand_dims(wt, -1) * ops.expand_dims(wp, 1)
            return ops.segment_sum(ops.reshape(val, (-1,)), ops.reshape(seg, (-1,)), num_segments=size)

        hist = chunk_histogram(0)
        if num_chunks > 1:
            hist = ops.fori_loop(1, num_chunks, lambda i, h: h + chunk_histogram(i), hist)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            g_flat = ops.reshape(ops.cast(upstream, "float32"), (-1,))

            def chunk_grad(i):
                u_t, u_p = ops.reshape(read(t3, i), (-1,)), ops.reshape(read(p3, i), (-1,))
                it, wt = support(u_t, kernel_t)
                ip, wp = support(u_p, kernel_p)
                dwt = parzen_support_derivative(u_t, kernel_t, num_bins, sigma_ratio)
                dwp = parzen_support_derivative(u_p, kernel_p, num_bins, sigma_ratio)
                seg = _histogram_segments(it, ip, ops.reshape(read(g3, i), (-1,)), nbt, nbp)
                g = ops.take(g_flat, seg)  # (B chunk, St, Sp): dL/dH at each pair of the voxel's bins
                m = ops.reshape(read(w3, i), (-1,))
                gt = m * ops.sum(dwt * ops.sum(g * ops.expand_dims(wp, 1), axis=2), axis=1)
                gp = m * ops.sum(dwp * ops.sum(g * ops.expand_dims(wt, 2), axis=1), axis=1)
                return ops.reshape(gt, (-1, chunk)), ops.reshape(gp, (-1, chunk))

            return map_chunks(chunk_grad, n, chunk, num_chunks)

        return hist, grad

    hist = ops.reshape(histogram(ut, up), (num_groups, nbt, nbp))
    mass = ops.sum(hist, axis=(1, 2), keepdims=True)
    return hist / ops.maximum(mass, 1e-12), ops.reshape(mass, (num_groups,))


def _entropy(p, axes):
    return -ops.sum(p * ops.log(p + LOG_FLOOR), axis=axes)


def mi_from_joint(pab, normalized: bool = False):
    """MI (nats) or NMI of joint distributions ``(G, nbt, nbp)`` -> ``(G,)``."""
    h_a = _entropy(ops.sum(pab, axis=2), 1)
    h_b = _entropy(ops.sum(pab, axis=1), 1)
    h_ab = _entropy(pab, (1, 2))
    if normalized:
        return (h_a + h_b) / ops.maximum(h_ab, LOG_FLOOR)
    return h_a + h_b - h_ab


def _to_unit_range(x, intensity_range, mask=None):
    """Map ``(B, ...)`` intensities to ``[0, 1]`` (see :class:`MutualInformation`)."""
    if intensity_range == "clip":
        return ops.clip(x, 0.0, 1.0)
    axes = tuple(range(1, len(x.shape)))
    if intensity_range == "minmax":
        # The extremes are constants of the map: their gradient would only move two voxels.
        big = 3.0e38
        lo = ops.min(x if mask is None else ops.where(mask, x, big), axis=axes, keepdims=True)
        hi = ops.max(x if mask is None else ops.where(mask, x, -big), axis=axes, keepdims=True)
        lo, hi = ops.stop_gradient(lo), ops.stop_gradient(hi)
        return ops.clip((x - lo) / ops.maximum(hi - lo, 1e-12), 0.0, 1.0)
    lo, hi = intensity_range
    return ops.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _patch_ids(spatial, patch_size):
    """Static int32 patch index per voxel (-1 for the dropped remainder) and the number of patches."""
    if patch_size is None:
        return np.zeros(spatial, np.int32), 1
    counts = [s // patch_size for s in spatial]
    if min(counts) < 1:
        raise ValueError(f"patch_size={patch_size} is larger than the spatial shape {tuple(spatial)}")
    grids = np.meshgrid(*[np.arange(s) // patch_size for s in spatial], indexing="ij")
    ids = np.zeros(spatial, np.int64)
    valid = np.ones(spatial, bool)
    for g, c in zip(grids, counts):
        valid &= g < c
        ids = ids * c + np.minimum(g, c - 1)
    return np.where(valid, ids, -1).astype(np.int32), int(np.prod(counts))


def mutual_information(
    y_true,
    y_pred,
    mask=None,
    num_bins: int = 23,
    sigma_ratio: float = 0.5,
    kernel: str = "gaussian",
    fixed_kernel: Optional[str] = None,
    normalized: bool = False,
    patch_size: Optional[int] = None,
    sampling_stride: int = 1,
    intensity_range: Union[str, Sequence[float]] = "clip",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
):
    """(N)MI per sample of float ``(B, *S, C)`` images (see the module docstring for the estimator).

    Args:
        y_true: fixed image ``(B, *S, C)``; y_pred: moving/warped image, same shape.
        mask: optional ``(B, *S)`` or ``(B, *S, C)``, voxels where it is ``>= 0.5`` are used
            (:mod:`tfreg.label_threshold`).
        num_bins: bins per image, integer >= 2.
        sigma_ratio: Gaussian Parzen sigma in bin spacings, > 0 (``kernel="gaussian"``).
        kernel: ``"gaussian"`` or ``"bspline"`` (cubic, Mattes) for ``y_pred`` (and ``y_true``).
        fixed_kernel: None (same as ``kernel``), ``"gaussian"``, ``"bspline"`` or ``"box"`` for ``y_true``.
        normalized: NMI instead of MI.
        patch_size: None (global) or the side in voxels of the local-MI patches (after sub-sampling).
        sampling_stride: use every n-th voxel along each spatial axis, integer >= 1.
        intensity_range: ``"clip"`` (clip to [0, 1], DeepReg), ``"minmax"`` (per sample and image, over
            the mask) or ``[low, high]`` (intensity units, mapped to [0, 1] then clipped).
        chunk_size: voxels (per sample) per chunk, for the sparse histograms and for the delegated
            DeepReg estimator; bounds memory, does not change the value.

    Returns:
        ``(B,)`` float32: MI in nats, or NMI (dimensionless, in [1, 2]).
    """
    num_bins = check_int(num_bins, "num_bins", 2)
    check_number(sigma_ratio, "sigma_ratio (bin spacings)", exclusive_minimum=True)
    kernel = check_choice(kernel, "kernel", KERNELS)
    fixed_kernel = kernel if fixed_kernel is None else check_choice(fixed_kernel, "fixed_kernel", FIXED_KERNELS)
    if patch_size is not None:
        patch_size = check_int(patch_size, "patch_size", 1)
    stride = check_int(sampling_stride, "sampling_stride", 1)
    intensity_range = _check_range(intensity_range)
    t = ops.cast(y_true, "float32")
    p = ops.cast(y_pred, "float32")
    ndim = len(t.shape) - 2
    if mask is not None:
        mask = ops.cast(mask, "float32")
        if len(mask.shape) == ndim + 1:
            mask = ops.expand_dims(mask, -1)
        mask = ops.broadcast_to(mask, ops.shape(t))
    if stride > 1:
        index = (slice(None),) + (slice(None, None, stride),) * ndim + (slice(None),)
        t, p = t[index], p[index]
        mask = None if mask is None else mask[index]
    inside = None if mask is None else binarise(mask)
    t = _to_unit_range(t, intensity_range, inside)
    p = _to_unit_range(p, intensity_range, inside)
    if mask is None and patch_size is None and not normalized and kernel == "gaussian" and fixed_kernel == "gaussian":
        return global_mutual_information(t, p, num_bins=num_bins, sigma_ratio=sigma_ratio, chunk_size=chunk_size)

    spatial = [int(s) for s in t.shape[1:-1]]
    channels = int(t.shape[-1])
    ids, num_patches = _patch_ids(spatial, patch_size)
    ids = np.repeat(ids[..., None], channels, axis=-1).reshape(-1)
    weight = ops.convert_to_tensor((ids >= 0).astype(np.float32))
    batch = ops.shape(t)[0]
    n = ids.size
    group = ops.reshape(ops.arange(batch, dtype="int32"), (-1, 1)) * num_patches + ops.convert_to_tensor(
        np.maximum(ids, 0).reshape(1, -1)
    )
    weight = ops.broadcast_to(ops.reshape(weight, (1, n)), (batch, n))
    if mask is not None:
        weight = weight * ops.cast(ops.reshape(inside, (-1, n)), "float32")
    scale = float(num_bins - 1)
    pab, mass = chunked_joint_histograms(
        ops.reshape(t, (-1, n)) * scale,
        ops.reshape(p, (-1, n)) * scale,
        weight,
        ops.broadcast_to(group, (batch, n)),
        batch * num_patches,
        fixed_kernel,
        kernel,
        num_bins,
        float(sigma_ratio),
        chunk_size,
    )
    score = ops.reshape(mi_from_joint(pab, normalized), (-1, num_patches))
    used = ops.cast(ops.reshape(mass, (-1, num_patches)) > 0, "float32")
    return ops.sum(score * used, axis=1) / ops.maximum(ops.sum(used, axis=1), 1.0)


def _check_range(intensity_range):
    if isinstance(intensity_range, str):
        return check_choice(intensity_range, "intensity_range", INTENSITY_RANGES)
    ok = isinstance(intensity_range, (list, tuple)) and len(intensity_range) == 2
    ok = ok and all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) for v in intensity_range)
    if not ok or not intensity_range[1] > intensity_range[0]:
        raise ValueError(
            f"intensity_range must be 'clip', 'minmax' or [low, high] with low < high, got {intensity_range!r}"
        )
    return (float(intensity_range[0]), float(intensity_range[1]))


class MutualInformation(ImageLoss):
    """Mutual information score (see :func:`mutual_information` and the module docstring).

    Args:
        num_bins: bins per image (default 23).
        sigma_ratio: Gaussian Parzen sigma in bin spacings (default 0.5).
        kernel: ``"gaussian"`` (default) or ``"bspline"`` (Mattes).
        fixed_kernel: None (as ``kernel``), ``"gaussian"``, ``"bspline"`` or ``"box"`` for ``y_true``.
        normalized: NMI ``(H(a) + H(b)) / H(a, b)`` instead of MI (default False).
        patch_size: None (global, default) or the local-MI patch side in voxels.
        sampling_stride: every n-th voxel per axis (default 1: all).
        mask_threshold: None (all voxels, default) or use only voxels where ``y_true > mask_threshold``
            (intensity units, before ``intensity_range``), e.g. 0 to drop a zero background.
        intensity_range: ``"clip"`` (default), ``"minmax"`` or ``[low, high]``.
        chunk_size: voxels per sample per chunk (sparse histograms and DeepReg's estimator).
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` returns ``(B,)``: MI in nats (or NMI); computed in float32 whatever the input dtype.
    """

    def __init__(
        self,
        num_bins: int = 23,
        sigma_ratio: float = 0.5,
        kernel: str = "gaussian",
        fixed_kernel: Optional[str] = None,
        normalized: bool = False,
        patch_size: Optional[int] = None,
        sampling_stride: int = 1,
        mask_threshold: Optional[float] = None,
        intensity_range: Union[str, Sequence[float]] = "clip",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mask_threshold is not None:
            check_number(mask_threshold, "mask_threshold (intensity)", minimum=None)
        self.options = dict(
            num_bins=num_bins,
            sigma_ratio=sigma_ratio,
            kernel=kernel,
            fixed_kernel=fixed_kernel,
            normalized=bool(normalized),
            patch_size=patch_size,
            sampling_stride=sampling_stride,
            intensity_range=intensity_range,
            chunk_size=chunk_size,
        )
        if patch_size is not None:
            check_int(patch_size, "patch_size", 1)
        self.mask_threshold = mask_threshold
        # Validate every argument now (a config error should fail at build time, not at the first step).
        probe = np.zeros((1, 4, 4, 1), np.float32)
        if patch_size is None:
            mutual_information(probe, probe, **self.options)
        else:
            mutual_information(probe, probe, **dict(self.options, patch_size=None))

    def compute_per_sample(self, y_true, y_pred):
        """(N)MI per sample, ``(B,)``."""
        mask = None if self.mask_threshold is None else y_true > self.mask_threshold
        return mutual_information(y_true, y_pred, mask=mask, **self.options)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self.options, mask_threshold=self.mask_threshold)
        return config


@REGISTRY.register_loss(name="mi")
class MutualInformationLoss(NegatedLossMixin, MutualInformation):
    """``-MI`` (or ``-NMI``) per sample (registered ``mi``); see :class:`MutualInformation`."""


__all__ = [
    "parzen_support",
    "parzen_support_derivative",
    "chunked_joint_histograms",
    "mi_from_joint",
    "mutual_information",
    "MutualInformation",
    "MutualInformationLoss",
]
