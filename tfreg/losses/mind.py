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
``int(3 sigma)``), also with replicate boundary. Subtracting ``min_m D_m`` in the exponent equals
Heinrich's normalisation of the descriptor by its maximum over the channels, so every voxel has one
channel equal to 1. MIND uses the pairs ``(0, r_n)`` with ``r_n = +-dilation e_a``; MIND-SSC the pairs
``(r_i, r_j)`` of neighbours with ``|r_i - r_j|^2 = 2 dilation^2``.

The loss is ``mean over voxels and channels of (MIND(y_true) - MIND(y_pred))^2`` (dimensionless).
Everything is shifts and separable filters; there is no Python loop over voxels.
"""

from numbers import Integral
from typing import List, Optional, Sequence, Tuple

import numpy as np
from keras import ops

from tfreg.losses.base import ImageLoss, mean_per_sample
from tfreg.ops.filters import separable_filter
from tfreg.ops.kernels import gaussian_kernel_sigma
from tfreg.registry import REGISTRY

PATCH_FILTERS = ("box", "gaussian")
#: Relative and absolute lower bounds of the variance estimate V (see the module docstring).
V_FLOOR_RELATIVE = 1e-3
V_FLOOR_ABSOLUTE = 1e-6


def check_int(value, name: str, minimum: int) -> int:
    """``value`` as a Python int >= ``minimum``, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(value, name: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else ValueError naming ``name`` and the allowed values."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def pad_replicate(x, pads: Sequence[Tuple[int, int]]):
    """Pad the spatial axes of ``(B, *S, C)`` by ``pads[a] = (before, after)`` copies of the edge voxel."""
    for axis, (before, after) in enumerate(pads):
        t = axis + 1
        parts = []
        if before:
            parts.append(ops.repeat(ops.take(x, [0], axis=t), before, axis=t))
        parts.append(x)
        if after:
            d = x.shape[t]
            parts.append(ops.repeat(ops.take(x, [d - 1], axis=t), after, axis=t))
        if len(parts) > 1:
            x = ops.concatenate(parts, axis=t)
    return x


def _crop(x, starts: Sequence[int], sizes: Sequence[int]):
    index = [slice(None)] + [slice(s, s + n) for s, n in zip(starts, sizes)] + [slice(None)]
    return x[tuple(index)]


def shifted_copies(x, offsets: Sequence[Sequence[int]]) -> list:
    """``[S_r x for r in offsets]`` with ``S_r x (i) = x(clamp(i + r))`` (replicate boundary).

    The image is padded once by the largest offset per axis, then each copy is a slice of the padded
    tensor, so k copies cost one pad plus k slices.

    Args:
        x: ``(B, *S, C)``.
        offsets: integer offsets in voxels, each with one entry per spatial axis.
    """
    ndim = len(x.shape) - 2
    sizes = [int(s) for s in x.shape[1:-1]]
    reach = [max(abs(int(r[a])) for r in offsets) for a in range(ndim)]
    for a in range(ndim):
        if reach[a] >= sizes[a]:
            raise ValueError(f"offset of {reach[a]} voxels along spatial axis {a} needs a size > {reach[a]}, got {sizes[a]}")
    padded = pad_replicate(x, [(m, m) for m in reach])
    return [_crop(padded, [reach[a] + int(r[a]) for a in range(ndim)], sizes) for r in offsets]


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


def pair_distances(x, pairs, radius: int, patch: str = "box"):
    """Patch distances ``D_n = P * (S_a x - S_b x)^2`` for each pair ``(a, b)``.

    Args:
        x: float32 ``(B, *S, C)``.

    Returns:
        ``(B, *S, n, C)`` with ``n = len(pairs)`` (intensity^2 units).
    """
    offsets = sorted({r for pair in pairs for r in pair})
    copies = dict(zip(offsets, shifted_copies(x, offsets)))
    # One filter call for every pair: the pairs are concatenated along the channel axis.
    sq = ops.concatenate([ops.square(copies[a] - copies[b]) for a, b in pairs], axis=-1)
    d = patch_filter(sq, radius, patch)
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
    v = ops.maximum(mean_d, variance_floor(mean_d))
    desc = ops.exp(-(d - ops.min(d, axis=-2, keepdims=True)) / v)
    shape = tuple(x.shape[1:-1])
    return ops.reshape(desc, (-1,) + shape + (len(pairs) * x.shape[-1],))


def _check_descriptor_args(radius, dilation, patch):
    return check_int(radius, "radius", 0), check_int(dilation, "dilation", 1), check_choice(patch, "patch", PATCH_FILTERS)


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
        spatial_dims: Optional[int] = None,
        name: Optional[str] = None,
        reduction: Optional[str] = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(spatial_dims=spatial_dims, name=name, reduction=reduction, dtype=dtype)
        self.radius, self.dilation, self.patch = _check_descriptor_args(radius, dilation, patch)

    def compute_per_sample(self, y_true, y_pred):
        """``mean((desc(y_true) - desc(y_pred))^2)`` per sample, ``(B,)``."""
        fn = type(self).descriptor
        dt = fn(y_true, self.radius, self.dilation, self.patch)
        dp = fn(y_pred, self.radius, self.dilation, self.patch)
        return mean_per_sample(ops.square(dt - dp))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(radius=self.radius, dilation=self.dilation, patch=self.patch)
        return config


@REGISTRY.register_loss(name="mind")
class MINDLoss(_DescriptorLoss):
    """MIND distance (registered ``mind``): mean over voxels and channels of ``(MIND(t) - MIND(p))^2``.

    See :func:`mind_descriptor` and the module docstring for the descriptor. Positive; 0 for equal
    descriptors.

    Args:
        radius: patch radius in voxels (default 1: 3^3 box).
        dilation: neighbour distance in voxels (default 1).
        patch: ``"box"`` (default) or ``"gaussian"``.
        spatial_dims, name, reduction, dtype: see :class:`~tfreg.losses.base.ImageLoss`.
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
    "shifted_copies",
    "patch_filter",
    "neighbour_offsets",
    "mind_pairs",
    "ssc_pairs",
    "MINDLoss",
    "MINDSSCLoss",
]
