"""MIND and MIND-SSC self-similarity descriptors and their losses, 2-D and 3-D (``keras.ops`` only).

Registered (category ``loss_class``, positive distances, not negated):

- ``mind``     -> :class:`MINDLoss` (Heinrich et al. 2012, 6-neighbourhood; 4 in 2-D);
- ``mind-ssc`` -> :class:`MINDSSCLoss` (Heinrich et al. 2013, self-similarity context: the 12 pairs
  of the 6-neighbourhood at squared distance 2; 4 pairs of the 4-neighbourhood in 2-D).

Descriptor (per input channel, per voxel x, one channel per offset pair (a_n, b_n))::

    D_n(x)  = P * (S_{a_n} I - S_{b_n} I)^2 (x)                 patch distance (intensity^2)
    V(x)    = max(mean_n D_n(x), floor),
              floor = 1e-3 * mean_x(mean_n D_n) + 1e-6           (Heinrich's lower clamp of V)
    MIND_n  = exp(-(D_n - min_m D_m) / V)

``S_r I (x) = I(x + r)`` is a shift with replicate padding (outside voxels equal the nearest edge
voxel, so no artificial edge appears at the border), ``P`` the patch filter: a box mean over
``(2 radius + 1)`` voxels per axis or a normalised Gaussian of ``sigma = radius`` voxels (truncated at
``int(3 sigma)``), also with replicate boundary (the box as separable average pools of the padded
squares, the Gaussian as a separable filter). Subtracting ``min_m D_m`` in the exponent equals
Heinrich's normalisation of the descriptor by its maximum over the channels, so every voxel has one
channel equal to 1. MIND uses the pairs ``(0, r_n)`` with ``r_n = +-dilation e_a``; MIND-SSC the pairs
``(r_i, r_j)`` of neighbours with ``|r_i - r_j|^2 = 2 dilation^2``.

The loss is ``mean over voxels and channels of (MIND(y_true) - MIND(y_pred))^2`` (dimensionless).
Everything is shifts and separable filters; there is no Python loop over voxels.
"""

from typing import List, Sequence, Tuple

import numpy as np
from keras import ops

from tfreg.checks import check_choice, check_int
from tfreg.losses.base import ImageLoss, mean_per_sample
from tfreg.ops.filters import separable_filter
from tfreg.ops.kernels import gaussian_kernel_sigma
from tfreg.ops.padding import replicate_index
from tfreg.registry import REGISTRY

PATCH_FILTERS = ("box", "gaussian")
#: Relative and absolute lower bounds of the variance estimate V (see the module docstring).
V_FLOOR_RELATIVE = 1e-3
V_FLOOR_ABSOLUTE = 1e-6


def patch_filter(x, radius: int, patch: str = "box"):
    """Patch mean of each channel: box of ``2 radius + 1`` voxels or Gaussian ``sigma = radius`` (replicate)."""
    if radius == 0:
        return x
    if patch == "box":
        kernel = np.full((2 * radius + 1,), 1.0 / (2 * radius + 1), dtype=np.float32)
    else:
        kernel = gaussian_kernel_sigma(float(radius))
    return separable_filter(x, kernel, boundary="replicate")


def neighbour_offsets(ndim: int, distance: int) -> List[Tuple[int, ...]]:
    """The ``2 ndim`` offsets ``+-distance e_a`` in the order (-e_0, +e_0, -e_1, +e_1, ...)."""
    out = []
    for a in range(ndim):
        for sign in (-1, 1):
            r = [0] * ndim
            r[a] = sign * distance
            out.append(tuple(r))
    return out


def mind_pairs(ndim: int, dilation: int) -> List[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """MIND's pairs: the centre with each of the ``2 ndim`` neighbours at ``dilation`` voxels."""
    return [((0,) * ndim, r) for r in neighbour_offsets(ndim, dilation)]


def ssc_pairs(ndim: int, dilation: int) -> List[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """MIND-SSC's pairs: neighbours ``r_i, r_j`` (i < j) with ``|r_i - r_j|^2 = 2 dilation^2``.

    12 pairs in 3-D, 4 in 2-D (the neighbours on orthogonal axes).
    """
    nbrs = neighbour_offsets(ndim, dilation)
    pairs = []
    for i in range(len(nbrs)):
        for j in range(i + 1, len(nbrs)):
            if sum((p - q) ** 2 for p, q in zip(nbrs[i], nbrs[j])) == 2 * dilation**2:
                pairs.append((nbrs[i], nbrs[j]))
    return pairs


def _window_sum_axis(x, axis: int, size: int):
    """VALID sum of ``size`` consecutive voxels along spatial ``axis``: ``(B, *S, C)`` -> ``S_axis - size + 1``.

    One depthwise convolution with a ``(size, 1)`` kernel of ones on ``x`` viewed as a 2-D image
    ``(B prod(S[:axis]), S_axis, prod(S[axis + 1:]), C)`` (a free reshape). On TensorFlow's CPU (2.21,
    18 channels, 68x68x52) this took 13 ms per axis against 18 ms for sums of slices (which also
    allocate a copy per slice) and 200 ms for an average pool over the same window.
    """
    sizes = [int(v) for v in x.shape[1:-1]]
    channels = int(x.shape[-1])
    inner = int(np.prod(sizes[axis + 1 :]))
    view = ops.reshape(x, (-1, sizes[axis], inner, channels))  # -1: the batch may be unknown until run time
    kernel = np.ones((size, 1, channels, 1), np.float32)
    out = ops.depthwise_conv(view, kernel, strides=1, padding="valid", data_format="channels_last")
    sizes[axis] -= size - 1
    return ops.reshape(out, (-1, *sizes, channels))


def _box_sum_valid(x, sizes: Sequence[int]):
    """Separable VALID window sums (:func:`_window_sum_axis` per axis, no gradient of its own)."""
    for a, k in enumerate(sizes):
        if k > 1:
            x = _window_sum_axis(x, a, int(k))
    return x


def box_mean_transpose(g, sizes: Sequence[int]):
    """Adjoint of :func:`box_mean_valid`: ``(B, *S', C)`` -> ``(B, *(S' + sizes - 1), C)``.

    The transpose of a VALID window mean is the same window mean over the input zero-padded by
    ``size - 1`` voxels on both sides of each axis: ``dx[i] = (1/k) sum_{j = i - k + 1 .. i} g[j]``.
    """
    pads = [(0, 0)] + [(int(k) - 1, int(k) - 1) for k in sizes] + [(0, 0)]
    return _box_sum_valid(ops.pad(g, pads), sizes) * (1.0 / float(np.prod(sizes)))


def box_mean_valid(x, sizes: Sequence[int]):
    """Box mean over ``sizes[a]`` voxels along each spatial axis, VALID: ``(B, *S, C)`` -> ``(B, *(S - sizes + 1), C)``.

    Separable window sums (:func:`_window_sum_axis`, one depthwise convolution per axis), so
    ``sum(sizes)`` additions per voxel and channel instead of ``prod(sizes)``; on TensorFlow's CPU (2.21)
    these were about 15x faster than average pools over the same windows. The gradient is
    :func:`box_mean_transpose` (the same sums over the zero-padded upstream gradient), not the
    convolution's own gradient.
    """
    scale = 1.0 / float(np.prod(sizes))

    @ops.custom_gradient
    def box(v):
        # stop_gradient: the eager tape must not record the sums themselves (grad below is their gradient).
        out = _box_sum_valid(ops.stop_gradient(v), sizes) * scale

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return box_mean_transpose(upstream, sizes)

        return out, grad

    return box(x)


def clamped_index(size: int, pad: int, shift: int) -> np.ndarray:
    """int32 ``clamp(clamp(y) + shift)`` for ``y = -pad .. size + pad - 1``, ``clamp`` into ``[0, size)``.

    Indexing an axis of length ``size`` with it gives the shift by ``shift`` voxels (replicate boundary)
    then a replicate padding by ``pad`` voxels on both sides.
    """
    return np.clip(replicate_index(size, pad, pad) + shift, 0, size - 1).astype(np.int32)


def padded_shifted_copies(x, offsets: Sequence[Sequence[int]], pad: int = 0) -> list:
    """``[pad_replicate(S_r x, pad) for r in offsets]``: ``(B, *S, C)`` -> each ``(B, *(S + 2 pad), C)``.

    Each copy is one gather per spatial axis with :func:`clamped_index`. Gathers are used instead of
    slices of a padded tensor because TensorFlow's slice gradient (a full-size scatter) is slow on CPU.

    Args:
        x: ``(B, *S, C)``.
        offsets: integer offsets in voxels, one entry per spatial axis, each ``|r_a| < S_a``.
        pad: replicate padding in voxels, >= 0.
    """
    ndim = len(x.shape) - 2
    sizes = [int(v) for v in x.shape[1:-1]]
    for a in range(ndim):
        reach = max(abs(int(r[a])) for r in offsets)
        if reach >= sizes[a]:
            raise ValueError(f"offset of {reach} voxels along spatial axis {a} needs a size > {reach}, got {sizes[a]}")
    # One gather per axis, last spatial axis first: copies with the same trailing offsets share those
    # gathers (7 copies need 3 + 5 + 7 gathers, on growing tensors). For these C-channel copies this
    # needed less memory than one flat tfreg.ops.padding.gather_spatial per copy (whose gradient is a
    # scatter per copy).
    memo = {(): x}
    out = []
    for r in offsets:
        key = ()
        for a in reversed(range(ndim)):
            prev, key = memo[key], (int(r[a]),) + key
            if key not in memo:
                identity = pad == 0 and key[0] == 0
                index = ops.convert_to_tensor(clamped_index(sizes[a], pad, key[0]))
                memo[key] = prev if identity else ops.take(prev, index, axis=a + 1)
        out.append(memo[key])
    return out


def pair_distances(x, pairs, radius: int, patch: str = "box"):
    """Patch distances ``D_n = P * (S_a x - S_b x)^2`` for each pair ``(a, b)``.

    Args:
        x: float32 ``(B, *S, C)``.

    Returns:
        ``(B, *S, n, C)`` with ``n = len(pairs)`` (intensity^2 units).
    """
    ndim = len(x.shape) - 2
    offsets = sorted({r for pair in pairs for r in pair})
    box = patch == "box"
    # Replicate padding commutes with the pointwise squared difference, so for the box the C-channel
    # copies are padded (by the gathers that shift them) instead of the n C-channel squares, and the box
    # mean is a VALID pool.
    copies = dict(zip(offsets, padded_shifted_copies(x, offsets, radius if box else 0)))
    # One filter call for every pair: the pairs are concatenated along the channel axis.
    sq = ops.concatenate([ops.square(copies[a] - copies[b]) for a, b in pairs], axis=-1)
    d = box_mean_valid(sq, [2 * radius + 1] * ndim) if box else patch_filter(sq, radius, patch)
    shape = tuple(x.shape[1:-1])
    return ops.reshape(d, (-1,) + shape + (len(pairs), x.shape[-1]))


def variance_floor(mean_d):
    """``1e-3 * spatial mean of mean_d + 1e-6`` per sample and channel, broadcastable to ``mean_d``.

    Heinrich clamps V from below relative to its image mean, which keeps flat regions from dividing by
    ~0 while leaving the descriptor invariant to intensity scaling; the absolute term handles constant
    images (where every D is 0 and the descriptor is 1).
    """
    axes = tuple(range(1, len(mean_d.shape) - 2))
    return V_FLOOR_RELATIVE * ops.mean(mean_d, axis=axes, keepdims=True) + V_FLOOR_ABSOLUTE


def self_similarity_descriptor(x, pairs, radius: int, patch: str = "box"):
    """``exp(-(D_n - min_m D_m) / V)`` for the given pairs; ``(B, *S, C)`` -> ``(B, *S, n * C)``.

    Channel ``n * C + c`` is pair ``n`` of input channel ``c``.
    """
    d = pair_distances(x, pairs, radius, patch)
    mean_d = ops.mean(d, axis=-2, keepdims=True)
    # One reciprocal per voxel and channel, then products: cheaper than n divisions, forward and backward.
    inv_v = 1.0 / ops.maximum(mean_d, variance_floor(mean_d))
    desc = ops.exp((ops.min(d, axis=-2, keepdims=True) - d) * inv_v)
    shape = tuple(x.shape[1:-1])
    return ops.reshape(desc, (-1,) + shape + (len(pairs) * x.shape[-1],))


def _check_descriptor_args(radius, dilation, patch):
    return (
        check_int(radius, "radius", 0),
        check_int(dilation, "dilation", 1),
        check_choice(patch, "patch", PATCH_FILTERS),
    )


def mind_descriptor(x, radius: int = 1, dilation: int = 1, patch: str = "box"):
    """MIND with the 6-neighbourhood (4 in 2-D) of ``x``.

    Args:
        x: float ``(B, *S, C)``, 2 or 3 spatial axes; any intensity unit (the descriptor is invariant to
            affine intensity maps up to the absolute variance floor 1e-6 intensity^2).
        radius: patch radius in voxels (box of ``2 radius + 1`` voxels, or Gaussian sigma), >= 0.
        dilation: neighbour distance in voxels, >= 1.
        patch: ``"box"`` or ``"gaussian"``.

    Returns:
        ``(B, *S, 2 ndim C)`` in ``(0, 1]``, one channel equal to 1 at each voxel.
    """
    radius, dilation, patch = _check_descriptor_args(radius, dilation, patch)
    x = ops.cast(x, "float32")
    return self_similarity_descriptor(x, mind_pairs(len(x.shape) - 2, dilation), radius, patch)


def mind_ssc_descriptor(x, radius: int = 1, dilation: int = 1, patch: str = "box"):
    """MIND-SSC: the 12 (2-D: 4) neighbour pairs at squared distance ``2 dilation^2``.

    Arguments and output range as :func:`mind_descriptor`; ``(B, *S, C)`` -> ``(B, *S, 12 C)`` (2-D:
    ``4 C``).
    """
    radius, dilation, patch = _check_descriptor_args(radius, dilation, patch)
    x = ops.cast(x, "float32")
    return self_similarity_descriptor(x, ssc_pairs(len(x.shape) - 2, dilation), radius, patch)


class _DescriptorLoss(ImageLoss):
    """Mean squared descriptor difference; subclasses set ``descriptor``."""

    descriptor = None

    def __init__(
        self,
        radius: int = 1,
        dilation: int = 1,
        patch: str = "box",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.radius, self.dilation, self.patch = _check_descriptor_args(radius, dilation, patch)

    def compute_per_sample(self, y_true, y_pred):
        """``mean((desc(y_true) - desc(y_pred))^2)`` per sample, ``(B,)``."""
        fn = type(self).descriptor
        dt = fn(y_true, self.radius, self.dilation, self.patch)
        dp = fn(y_pred, self.radius, self.dilation, self.patch)
        return mean_per_sample(ops.square(dt - dp))

    config_keys = ("radius", "dilation", "patch")


@REGISTRY.register_loss(name="mind")
class MINDLoss(_DescriptorLoss):
    """MIND distance (registered ``mind``): mean over voxels and channels of ``(MIND(t) - MIND(p))^2``.

    See :func:`mind_descriptor` and the module docstring for the descriptor. Positive; 0 for equal
    descriptors.

    Args:
        radius: patch radius in voxels (default 1: 3^3 box).
        dilation: neighbour distance in voxels (default 1).
        patch: ``"box"`` (default) or ``"gaussian"``.
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.
    """

    descriptor = staticmethod(mind_descriptor)


@REGISTRY.register_loss(name="mind-ssc")
class MINDSSCLoss(_DescriptorLoss):
    """MIND-SSC distance (registered ``mind-ssc``); as :class:`MINDLoss` with :func:`mind_ssc_descriptor`."""

    descriptor = staticmethod(mind_ssc_descriptor)


__all__ = [
    "mind_descriptor",
    "mind_ssc_descriptor",
    "self_similarity_descriptor",
    "pair_distances",
    "box_mean_valid",
    "box_mean_transpose",
    "padded_shifted_copies",
    "clamped_index",
    "patch_filter",
    "neighbour_offsets",
    "mind_pairs",
    "ssc_pairs",
    "MINDLoss",
    "MINDSSCLoss",
]
