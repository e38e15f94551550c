"""macMIND (Zhou et al. 2023, macJNet): multi-scale self-similarity context + log-polar aggregation.

Registered: ``macmind`` -> :class:`MacMINDLoss` (a positive distance, not negated).

Stage 1, msSSC (per input channel). For scale ``k`` with patch distance ``L_k`` the patch layout is the
centre ``r_0 = 0`` and its ``2 ndim`` neighbours ``r = +-L_k e_a``. The connections ``e`` are all
pairs of the layout except the collinear opposite-neighbour pairs: centre-neighbour pairs (``2 ndim``)
and pairs of neighbours on orthogonal axes; ``|e| = 18`` connections in 9 orientations in 3-D (8 in 4
orientations in 2-D). For a connection ``(r_i, r_j)``::

    SSD_e(x)   = K_R1 * (S_{r_i} I - S_{r_j} I)^2 (x)        K_R1: mean over an R1^ndim box
    SSC_k,e(x) = exp(-|e| SSD_e(x) / max(sum_e' SSD_e'(x), |e| floor))
    msSSC      = sum_k alpha_k SSC_k           (combine="sum",    M = |e| channels)
               or concat_k SSC_k               (combine="concat", M = K |e| channels)

``S_r`` is a shift with replicate padding; ``floor = 1e-3 * mean_x(mean_e SSD_e) + 1e-6`` (intensity^2)
is the variance floor of :mod:`tfreg.losses.mind`, which only matters where the image is flat and keeps
constant images finite. By default ``L_k = k L`` (k = 1..K): L = 2 gives distances 2 and 4 voxels.

Stage 2, aggregation: each msSSC channel is averaged over ``N = angle_bins x radius_bins x
height_bins`` log-polar bins of the ``R2^ndim`` neighbourhood; the descriptor has ``M N`` channels,
channel ``n M + m`` is bin ``n`` of msSSC channel ``m``. Bins (tfreg's choice where the paper is
vague):

- 2-D: polar bins in the image plane, ``height_bins`` must be 1.
- 3-D: *cylindrical* log-polar bins. The plane is spanned by the two spatial axes other than
  ``height_axis`` (default the last spatial axis, the slice axis of an ij(k) volume); angle and radius
  are taken in that plane and ``height_bins`` equal intervals split the offsets along ``height_axis``
  (default 1: the whole R2 column). Each bin is then a product of a 1-D height kernel and a 2-D
  in-plane set, so aggregation is a short 1-D filter plus a few shifted sums.
- angle bin ``floor(theta / (2 pi / angle_bins))``, ``theta = atan2(o_2, o_1)`` in ``[0, 2 pi)``;
  radius bin ``i`` (0-based) holds in-plane radii in ``(e_{i-1}, e_i]`` with log-spaced edges
  ``e_i = r_max 2^(i + 1 - radius_bins)``, ``r_max = sqrt(2) (R2 - 1) / 2`` (the corner). The centre
  column (in-plane radius 0) has no angle and is counted in every angle bin of the innermost ring.
  With R2 = 5 and 8 x 2 bins every inner bin holds the centre and one ring voxel, every outer bin two
  voxels.

Every bin is an average (its kernel sums to 1) computed on the replicate-padded map.

Loss: ``E_sim = mean over voxels of sum over the M N channels of (macMIND(t) - macMIND(p))^2``. The
aggregation is linear, so the loss aggregates ``D = msSSC(t) - msSSC(p)`` once instead of each
descriptor, and it never forms the ``M N`` bin channels: with ``P`` the replicate-padded (height-filtered)
``D`` and a bin ``b = {(o, w_o)}``, expanding the square gives::

    sum_x sum_b sum_m (sum_o w_o P_m(x + o))^2 = sum_d sum_y W_d(y) R_d(y),   R_d(y) = sum_m P_m(y) P_m(y + d)

over the in-plane lags ``d = o' - o`` of member pairs of one bin, ``W_d`` a fixed in-plane weight map
(the sum of ``w_o w_o'`` over the pairs whose window covers ``y``; see :func:`bin_energy_plan`). The
default bins need 5 lags, so the loss costs 5 channel-summed products instead of 16 ``M``-channel bins
(and their slice gradients), with the same value up to float rounding.
"""

import math
from typing import List, Optional, Sequence

import keras
import numpy as np
from keras import ops

from tfreg.checks import check_bool, check_choice, check_int
from tfreg.losses.base import ImageLoss
from tfreg.losses.mind import (
    V_FLOOR_RELATIVE,
    box_mean_transpose,
    box_mean_valid,
    neighbour_offsets,
    padded_shifted_copies,
    variance_floor,
)
from tfreg.ops.padding import pad_replicate
from tfreg.registry import REGISTRY

COMBINE = ("sum", "concat")
#: Channels per group in :meth:`MacMIND.bin_energy` (memory; see there).
CHANNEL_GROUP = 6
#: Connections per group in :func:`ssc_from_copies`. All 18 of a 3-D scale by default: groups of 6 did not
#: lower the loss' peak memory and cost 1.6x its time (TensorFlow 2.21 CPU, 64x64x48).
SSC_GROUP = 18


def ssc_connections(ndim: int, distance: int) -> list:
    """The connections of one scale: pairs of {0, +-distance e_a} except opposite neighbours.

    18 in 3-D (6 centre-neighbour + 12 orthogonal neighbour pairs), 8 in 2-D.
    """
    layout = [(0,) * ndim] + neighbour_offsets(ndim, distance)
    pairs = []
    for i in range(len(layout)):
        for j in range(i + 1, len(layout)):
            sq = sum((p - q) ** 2 for p, q in zip(layout[i], layout[j]))
            if sq != 4 * distance**2:  # opposite neighbours are collinear with two centre pairs
                pairs.append((layout[i], layout[j]))
    return pairs


def connection_matrix(offsets, pairs) -> np.ndarray:
    """float32 ``(len(offsets), len(pairs))``: column ``e`` has +1 at pair ``e``'s first offset, -1 at its second.

    ``copies @ matrix`` turns the stacked shifted copies ``S_r I`` (one channel per offset) into the
    ``S_{r_i} I - S_{r_j} I`` of every connection at once (exactly: two non-zero terms per column).
    """
    index = {r: i for i, r in enumerate(offsets)}
    matrix = np.zeros((len(offsets), len(pairs)), np.float32)
    for e, (a, b) in enumerate(pairs):
        matrix[index[a], e] += 1.0
        matrix[index[b], e] -= 1.0
    return matrix


def ssc_from_copies(copies, matrix: np.ndarray, patch_size: int):
    """SSC of one scale from its stacked copies: ``(B, *S', R)`` -> ``(B, *S, E)``, ``S' = S + patch_size - 1``.

    ``copies`` holds the ``R`` shifted, replicate-padded copies ``S_r I`` of one input channel (padded by
    ``patch_size // 2``), ``matrix`` is :func:`connection_matrix`. Forward:
    ``d = box((copies @ matrix)^2)`` (VALID), ``V = max(mean_e d, floor)``, ``SSC = exp(-d / V)``.

    The gradient is written out and recomputes ``exp`` and the differences from the saved ``d``, ``1/V``
    and the ``R``-channel copies: only ``E + 2`` unpadded channels are kept for the backward pass (automatic
    differentiation kept the differences, their squares' inputs, ``d``, its scaled copy and the
    exponential, about 4 ``E``-channel maps, per scale).
    """
    sizes = [patch_size] * (len(copies.shape) - 2)
    edges = matrix.shape[1]
    # Connections in groups of SSC_GROUP: the padded differences, squares and box sums of one group at a
    # time (forward and backward).
    bounds = list(range(SSC_GROUP, edges, SSC_GROUP))
    starts = [0] + bounds
    stops = bounds + [edges]
    # NumPy constants, converted where they are used: a tensor made here would be a tracer of an enclosing
    # JAX transformation (keras.remat) that the gradient function, traced later, must not capture.
    m = [np.ascontiguousarray(matrix[:, a:b]) for a, b in zip(starts, stops)]
    m_t = [np.ascontiguousarray(matrix[:, a:b].T) for a, b in zip(starts, stops)]

    @ops.custom_gradient
    def ssc(c):
        c = ops.stop_gradient(c)  # the eager tape must not record the forward (grad below is its gradient)
        d = [box_mean_valid(ops.square(ops.matmul(c, mg)), sizes) for mg in m]  # per group
        mean_d = sum(ops.sum(part, axis=-1, keepdims=True) for part in d) * (1.0 / edges)
        floor = variance_floor(ops.expand_dims(mean_d, -1))[..., 0]  # (B, 1, .., 1, 1): one per sample
        above = ops.cast(mean_d >= floor, "float32")
        inv = 1.0 / ops.maximum(mean_d, floor)
        out = [ops.exp(part * (-inv)) for part in d]
        out = ops.concatenate(out, axis=-1) if len(out) > 1 else out[0]

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            up = ops.split(upstream, bounds, axis=-1) if bounds else [upstream]
            # dL/d(-d / V) = upstream exp(-d / V), per group; recomputed in the second pass below.
            gs = lambda k: up[k] * ops.exp(d[k] * (-inv))  # noqa: E731
            # d/dV of exp(-d / V) = exp(..) d / V^2, summed over the connections: one map per voxel.
            g_v = sum(ops.sum(gs(k) * d[k], axis=-1, keepdims=True) for k in range(len(d))) * ops.square(inv)
            # V = max(mean_d, floor): the voxels above the floor pass g_v to their own mean; the others to
            # the floor, 1e-3 times the spatial mean of mean_d (the tie goes to mean_d, as ops.maximum).
            spatial = tuple(range(1, len(mean_d.shape) - 1))
            g_floor = ops.sum(g_v * (1.0 - above), axis=spatial, keepdims=True)
            voxels = float(np.prod([int(s) for s in mean_d.shape[1:-1]]))
            g_mean = (g_v * above + g_floor * (V_FLOOR_RELATIVE / voxels)) * (1.0 / edges)
            g_c = None
            for k, (mg, mg_t) in enumerate(zip(m, m_t)):
                g_sq = box_mean_transpose(g_mean - gs(k) * inv, sizes)
                term = ops.matmul(2.0 * ops.matmul(c, mg) * g_sq, mg_t)
                g_c = term if g_c is None else g_c + term
            return g_c

        return out, grad

    return ssc(copies)


def sequenced(x, after):
    """``x`` unchanged (exactly: ``x + 0``), but as a value computed after ``after`` (a finite tensor).

    ``keras.ops`` has no control dependencies, and graph executors (TensorFlow's) run independent
    branches concurrently, which for the four msSSC chains (two images, two scales) kept all of their
    full-size temporaries alive at once. The product with zero (of a stopped gradient, so the backward
    pass is unchanged) is a data dependency that orders the chains.
    """
    return x + 0.0 * ops.cast(ops.sum(after), x.dtype)


def ssc_scale(x, distance: int, patch_size: int):
    """One scale of msSSC: ``(B, *S, C)`` -> ``(B, *S, E, C)``, ``E = len(ssc_connections)``.

    ``SSD_e = box(S_{r_i} x - S_{r_j} x)^2`` (replicate boundary) and ``exp(-SSD_e / V)`` with ``V`` the
    floored mean over the connections (:func:`ssc_from_copies`), per input channel.
    """
    pairs = ssc_connections(len(x.shape) - 2, distance)
    offsets = sorted({r for pair in pairs for r in pair})
    matrix = connection_matrix(offsets, pairs)
    # The box is VALID over copies padded by patch_size // 2: replicate padding commutes with the
    # pointwise squared difference, so this is the box with replicate boundary of each squared difference.
    copies = padded_shifted_copies(x, offsets, (patch_size - 1) // 2)
    maps = []
    for c in range(int(x.shape[-1])):
        stacked = ops.concatenate([copy[..., c : c + 1] for copy in copies], axis=-1)
        maps.append(ssc_from_copies(stacked, matrix, patch_size))
    return ops.stack(maps, axis=-1)


def log_polar_bins(ndim: int, size: int, angle_bins: int, radius_bins: int, height_bins: int, height_axis: int):
    """Log-polar bins of an ``size^ndim`` neighbourhood (see the module docstring).

    Returns:
        ``(height_kernels, plane_bins, kernels)``: ``height_kernels`` a list of ``height_bins`` 1-D
        float32 arrays of length ``size`` (None in 2-D); ``plane_bins`` a list of
        ``radius_bins * angle_bins`` lists of ``(offset, weight)`` in-plane offsets (2 entries, voxels,
        ordered as the plane axes) with weights summing to 1, index ``r * angle_bins + a``; ``kernels``
        the dense ``(N, size, ..., size)`` float64 bin kernels in descriptor order
        ``n = (h * radius_bins + r) * angle_bins + a``, each summing to 1 (for references and plots).
    """
    half = size // 2
    r_max = math.sqrt(2.0) * half
    edges = [r_max * 2.0 ** (i + 1 - radius_bins) for i in range(radius_bins)]
    members: List[list] = [[] for _ in range(radius_bins * angle_bins)]
    for u in range(-half, half + 1):
        for v in range(-half, half + 1):
            rho = math.hypot(u, v)
            if rho == 0:
                for a in range(angle_bins):
                    members[a].append((u, v))
                continue
            ring = next(i for i, e in enumerate(edges) if rho <= e + 1e-9)
            theta = math.atan2(v, u) % (2 * math.pi)
            a = int(math.floor(theta / (2 * math.pi / angle_bins) + 1e-9)) % angle_bins
            members[ring * angle_bins + a].append((u, v))
    empty = [i for i, m in enumerate(members) if not m]
    if empty:
        raise ValueError(
            f"angle_bins={angle_bins}, radius_bins={radius_bins} leave {len(empty)} empty log-polar bins in a "
            f"{size}-voxel neighbourhood; use fewer bins or a larger aggregation_size"
        )
    plane_bins = [[(o, 1.0 / len(m)) for o in m] for m in members]
    if ndim == 2:
        height_kernels = None
        kernels = np.zeros((len(plane_bins), size, size))
        for n, b in enumerate(plane_bins):
            for (u, v), w in b:
                kernels[n, u + half, v + half] = w
        return height_kernels, plane_bins, kernels
    group = [int(math.floor((dz + half) * height_bins / size)) for dz in range(-half, half + 1)]
    height_kernels = []
    for h in range(height_bins):
        k = np.array([1.0 if g == h else 0.0 for g in group])
        height_kernels.append((k / k.sum()).astype(np.float32))
    plane_axes = [a for a in range(3) if a != height_axis]
    kernels = np.zeros((height_bins * len(plane_bins),) + (size,) * 3)
    for h, hk in enumerate(height_kernels):
        for n, b in enumerate(plane_bins):
            for (u, v), w in b:
                for dz in range(size):
                    index = [0, 0, 0]
                    index[plane_axes[0]], index[plane_axes[1]], index[height_axis] = u + half, v + half, dz
                    kernels[(h * len(plane_bins) + n,) + tuple(index)] = w * hk[dz]
    return height_kernels, plane_bins, kernels


def bin_energy_plan(plane_bins, half: int, plane_sizes: Sequence[int]) -> list:
    """Lags and weight maps of ``sum_x sum_b (sum_{(o, w) in b} w P(x + o))^2`` on a padded map ``P``.

    Expanding the square gives ``sum_b sum_{o, o'} w_o w_o' sum_x P(x + o) P(x + o')``. The product is
    symmetric in the pair, so each lag ``d = o' - o`` is kept with one sign (first non-zero entry > 0)
    and anchored on its first voxel ``o``; ``x + o + half`` is that voxel's padded index.

    Args:
        plane_bins: in-plane bins, each a list of ``((u, v), weight)`` (as :func:`log_polar_bins`).
        half: padding of ``P`` in voxels on each side of each plane axis (``R2 // 2``).
        plane_sizes: unpadded sizes ``(S_0, S_1)`` of the two plane axes (voxels).

    Returns:
        A list of ``(d, weight)``: ``d`` a lag (2 ints, voxels) and ``weight`` a float32
        ``(S_0 + 2 half, S_1 + 2 half)`` map with ``sum_x sum_b (...)^2 = sum_d sum_y weight_d(y) R_d(y)``,
        ``R_d(y) = P(y) P(y + d)``. ``weight_d`` is 0 wherever ``y + d`` leaves the padded map, so
        ``R_d`` may be formed with a cyclic shift.
    """
    padded = tuple(s + 2 * half for s in plane_sizes)
    maps: dict = {}
    for members in plane_bins:
        for o, w in members:
            for o2, w2 in members:
                d, anchor = tuple(q - p for p, q in zip(o, o2)), o
                if d < (0,) * len(d):
                    d, anchor = tuple(-c for c in d), o2
                if d not in maps:
                    maps[d] = np.zeros(padded, np.float64)
                window = tuple(slice(c + half, c + half + n) for c, n in zip(anchor, plane_sizes))
                maps[d][window] += w * w2
    return [(d, maps[d].astype(np.float32)) for d in sorted(maps)]


def lag_energy(padded, plan, plane_axes: Sequence[int]):
    """``E = sum_d sum_y W_d(y) sum_m P_m(y) P_m(y + d)`` per sample, ``(B, *S', M)`` -> ``(B,)``.

    ``plan`` is :func:`bin_energy_plan`'s list of ``(d, W_d)``: lags along ``plane_axes`` and weight maps
    over those two axes (broadcast along the others and the channels). ``P(y + d)`` is a cyclic shift
    (``W_d`` is 0 where it wraps). Custom gradient ``dE/dP(z) = sum_d W_d(z) P(z + d) + W_d(z - d) P(z - d)``
    recomputed from ``P``: automatic differentiation would keep every shifted copy alive until the
    backward pass (5 copies of the padded map for the default bins).
    """
    ndim = len(padded.shape) - 2
    other = tuple(a + 1 for a in range(ndim) if a not in plane_axes) + (ndim + 1,)
    shape = [1] * (ndim + 2)
    for a in plane_axes:
        shape[a + 1] = int(padded.shape[a + 1])

    def shift(x, d, sign):
        """``x(y + sign d)`` (cyclic) along the plane axes."""
        for a, c in zip(plane_axes, d):
            if c:
                x = ops.roll(x, -sign * c, axis=a + 1)
        return x

    weights = [ops.convert_to_tensor(w) for _, w in plan]
    lags = [d for d, _ in plan]
    steps = [tuple(c - q for c, q in zip(d, prev)) for d, prev in zip(lags, [(0,) * len(lags[0])] + lags[:-1])]

    @ops.custom_gradient
    def energy(p):
        p = ops.stop_gradient(p)  # the eager tape must not record the loop (grad below is its gradient)
        # Each shifted copy is the previous one shifted by the step between consecutive lags: a chain, so
        # the copies are made one after the other (independent shifts of p could all be scheduled, and
        # held, at once).
        total, shifted = None, p
        for step, w in zip(steps, weights):
            shifted = shift(shifted, step, 1)  # p(y + d)
            r = ops.sum(p * shifted, axis=other)  # (B, plane_0, plane_1)
            term = ops.sum(r * ops.expand_dims(w, 0), axis=(1, 2))
            total = term if total is None else total + term

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            # sum_d W_d(z) p(z + d): chained shifts of p as above.
            # sum_d (W_d p)(z - d) = acc_K(z - d_K) with acc_k(z) = acc_{k-1}(z + d_k - d_{k-1}) + (W_k p)(z).
            g, acc, shifted = None, None, p
            for step, w in zip(steps, weights):
                wb = ops.reshape(w, shape)
                shifted = shift(shifted, step, 1)
                g = wb * shifted if g is None else g + wb * shifted
                acc = wb * p if acc is None else shift(acc, step, 1) + wb * p
            g = g + shift(acc, lags[-1], -1)
            return g * ops.reshape(ops.cast(upstream, "float32"), (-1,) + (1,) * (ndim + 1))

        return total, grad

    return energy(padded)


class MacMIND:
    """The macMIND descriptor as a callable with fixed parameters (see the module docstring).

    Args:
        num_scales: K, an integer >= 1 (default 2).
        distance: L, patch distance of the first scale in voxels (default 2); scale k uses ``k L``.
        distances: explicit list of K distances in voxels (overrides ``distance``), integers >= 1.
        weights: alpha_k, K numbers (default (0.3, 0.7), small scale first); used with ``combine="sum"``.
        combine: ``"sum"`` (weighted sum over scales, default) or ``"concat"``.
        patch_size: R1, odd box size in voxels of the SSD patches (default 5).
        aggregation_size: R2, odd neighbourhood size in voxels of the log-polar bins (default 5).
        angle_bins, radius_bins, height_bins: bin counts (default 8, 2, 1); ``height_bins`` 1 in 2-D.
        height_axis: spatial axis (0..2, or -1 for the last) of the cylinder axis in 3-D (default -1).
        recompute: recompute each msSSC scale in the backward pass (``keras.remat``) instead of keeping
            its ``d`` and ``1/V`` (:func:`ssc_from_copies` already keeps nothing else): one more forward
            pass of stage 1 for about 19 channels less per scale. Default False; without it the value and
            gradient at 160x192x224 fit in 8 GiB on CPU (see benchmarks/README.md).
    """

    def __init__(
        self,
        num_scales: int = 2,
        distance: int = 2,
        distances: Optional[Sequence[int]] = None,
        weights: Optional[Sequence[float]] = (0.3, 0.7),
        combine: str = "sum",
        patch_size: int = 5,
        aggregation_size: int = 5,
        angle_bins: int = 8,
        radius_bins: int = 2,
        height_bins: int = 1,
        height_axis: int = -1,
        recompute: bool = False,
    ):
        if distances is None:
            num_scales = check_int(num_scales, "num_scales", 1)
            distances = [k * check_int(distance, "distance", 1) for k in range(1, num_scales + 1)]
        else:
            distances = [check_int(d, "distances[]", 1) for d in distances]
            if not distances:
                raise ValueError("distances must be None or a non-empty list of integers >= 1 (voxels), got []")
        self.distances = distances
        self.combine = check_choice(combine, "combine", COMBINE)
        if combine == "sum":
            if weights is None or len(weights) != len(distances):
                raise ValueError(f"weights must have one number per scale ({len(distances)}), got {weights!r}")
            self.weights = [float(w) for w in weights]
        else:
            self.weights = None
        for name, value in (("patch_size", patch_size), ("aggregation_size", aggregation_size)):
            if check_int(value, name, 1) % 2 == 0:
                raise ValueError(f"{name} must be an odd integer >= 1 (voxels), got {value!r}")
        self.patch_size = int(patch_size)
        self.aggregation_size = int(aggregation_size)
        self.angle_bins = check_int(angle_bins, "angle_bins", 1)
        self.radius_bins = check_int(radius_bins, "radius_bins", 1)
        self.height_bins = check_int(height_bins, "height_bins", 1)
        if self.height_bins > self.aggregation_size:
            raise ValueError(f"height_bins must be <= aggregation_size ({self.aggregation_size}), got {height_bins}")
        check_choice(height_axis, "height_axis", (-1, 0, 1, 2))
        self.height_axis = int(height_axis)
        self.recompute = check_bool(recompute, "recompute")
        # Validates the bin counts once (empty bins raise here, not at the first call).
        log_polar_bins(2, self.aggregation_size, self.angle_bins, self.radius_bins, 1, 0)

    @property
    def num_bins(self) -> int:
        """N, the number of log-polar bins in 3-D (in 2-D ``angle_bins * radius_bins``)."""
        return self.angle_bins * self.radius_bins * self.height_bins

    def ms_ssc(self, x, after=None):
        """msSSC map: float ``(B, *S, C)`` -> ``(B, *S, M)``; channel ``e C + c`` (per scale block for concat).

        ``after`` (optional tensor): computed only once ``after`` is (see :func:`sequenced`); each scale
        also waits for the previous one.
        """
        x = ops.cast(x, "float32")
        shape = tuple(x.shape[1:-1])
        maps = []
        for d in self.distances:
            scale = lambda v, d=d: ssc_scale(v, d, self.patch_size)  # noqa: E731
            v = x if after is None else sequenced(x, after)
            s = keras.remat(scale)(v) if self.recompute else scale(v)
            after = s
            maps.append(ops.reshape(s, (-1,) + shape + (s.shape[-2] * s.shape[-1],)))
        if self.combine == "concat":
            return ops.concatenate(maps, axis=-1)
        return sum(w * m for w, m in zip(self.weights, maps))

    def _bins(self, ndim: int):
        if ndim == 2 and self.height_bins != 1:
            raise ValueError(f"height_bins must be 1 for 2-D images, got {self.height_bins}")
        height_axis = self.height_axis % ndim if ndim == 3 else None
        return height_axis, log_polar_bins(
            ndim, self.aggregation_size, self.angle_bins, self.radius_bins, self.height_bins, height_axis or 0
        )

    def aggregate_bins(self, m):
        """Yields the bin averages of ``(B, *S, M)`` one bin at a time, in descriptor order."""
        ndim = len(m.shape) - 2
        columns, plane_bins, plane_axes, half = self._columns(m, self.aggregation_size // 2)
        sizes = [int(s) for s in m.shape[1:-1]]
        for padded in columns:
            for members in plane_bins:
                out = None
                for offset, w in members:
                    index = [slice(None)] * (ndim + 2)
                    for a, o in zip(plane_axes, offset):
                        index[a + 1] = slice(half + o, half + o + sizes[a])
                    term = padded[tuple(index)] * w
                    out = term if out is None else out + term
                yield out

    def _columns(self, m, plane_pad: int = 0):
        """Height-filtered columns of ``m``, replicate-padded by ``plane_pad`` voxels along the plane axes.

        Returns ``(columns, plane_bins, plane_axes, half)``: one ``(B, *S', M)`` column per height bin
        (``m`` itself, padded, in 2-D).
        """
        ndim = len(m.shape) - 2
        height_axis, (height_kernels, plane_bins, _) = self._bins(ndim)
        half = self.aggregation_size // 2
        plane_axes = [a for a in range(ndim) if a != height_axis]
        sizes = [int(s) for s in m.shape[1:-1]]
        for a in plane_axes:
            if sizes[a] <= half:
                raise ValueError(f"aggregation_size {self.aggregation_size} needs spatial size > {half}, got {sizes}")
        pads = [(plane_pad, plane_pad) if a in plane_axes else (0, 0) for a in range(ndim)]
        if ndim == 2:
            return [pad_replicate(m, pads)], plane_bins, plane_axes, half
        columns = []
        for hk in height_kernels:
            # Each height kernel is a mean over the offsets first .. last (see log_polar_bins): pad by
            # those offsets and pool VALID, which is the replicate-boundary filter without a crop.
            taps = np.nonzero(hk)[0]
            first, last = int(taps[0]) - half, int(taps[-1]) - half
            column_pads = list(pads)
            column_pads[height_axis] = (max(-first, 0), max(last, 0))
            column = pad_replicate(m, column_pads)
            if first > 0 or last < 0:  # a one-sided bin: crop the offsets the padding could not remove
                index = [slice(None)] * (ndim + 2)
                index[height_axis + 1] = slice(max(first, 0), column.shape[height_axis + 1] + min(last, 0))
                column = column[tuple(index)]
            window = [1] * ndim
            window[height_axis] = last - first + 1
            columns.append(box_mean_valid(column, window))
        return columns, plane_bins, plane_axes, half

    def bin_energy(self, m):
        """``sum over voxels and the N M channels of aggregate(m)^2`` per sample: ``(B, *S, M)`` -> ``(B,)``.

        Equal to ``sum(aggregate(m)^2)`` up to float rounding, computed by lags (module docstring,
        :func:`bin_energy_plan`) with :func:`lag_energy`; neither the ``N M`` bin channels nor sliced
        copies (whose gradients are full-size scatters) are formed.
        """
        channels = int(m.shape[-1])
        # The energy is a sum over channels: groups of CHANNEL_GROUP channels keep the padded columns and
        # the lag products of one group at a time (split, whose gradient is one concatenation, not sliced
        # copies with full-size slice gradients). At 128x128x96 with 18 channels the value and gradient
        # peaked at 938 MiB above start in groups of 6, 1406 MiB in one piece (1189 MiB in groups of 3).
        bounds = list(range(CHANNEL_GROUP, channels, CHANNEL_GROUP))
        parts = ops.split(m, bounds, axis=-1) if bounds else [m]
        sizes = [int(s) for s in m.shape[1:-1]]
        total = None
        for part in parts:
            if total is not None:  # one group after the other, forward and backward (see sequenced)
                part = sequenced(part, total)
            columns, plane_bins, plane_axes, half = self._columns(part, self.aggregation_size // 2)
            plan = bin_energy_plan(plane_bins, half, [sizes[a] for a in plane_axes])
            for padded in columns:
                term = lag_energy(padded, plan, plane_axes)
                total = term if total is None else total + term
        return total

    def aggregate(self, m):
        """Log-polar aggregation ``(B, *S, M)`` -> ``(B, *S, N M)`` (channel ``n M + j``)."""
        return ops.concatenate(list(self.aggregate_bins(m)), axis=-1)

    def __call__(self, x):
        """macMIND descriptor ``(B, *S, C)`` -> ``(B, *S, N M)``."""
        return self.aggregate(self.ms_ssc(x))

    def get_config(self) -> dict:
        return dict(
            distances=list(self.distances),
            weights=None if self.weights is None else list(self.weights),
            combine=self.combine,
            patch_size=self.patch_size,
            aggregation_size=self.aggregation_size,
            angle_bins=self.angle_bins,
            radius_bins=self.radius_bins,
            height_bins=self.height_bins,
            height_axis=self.height_axis,
            recompute=self.recompute,
        )


@REGISTRY.register_loss(name="macmind")
class MacMINDLoss(ImageLoss):
    """macMIND distance (registered ``macmind``), positive.

    ``E_sim = mean over voxels of sum over channels of (macMIND(y_true) - macMIND(y_pred))^2``; 0 for
    equal descriptors. Arguments: those of :class:`MacMIND`, plus ``spatial_dims``, ``name``,
    ``reduction``, ``dtype`` (see :class:`~tfreg.losses.base.ImageLoss`).
    """

    def __init__(
        self,
        num_scales: int = 2,
        distance: int = 2,
        distances: Optional[Sequence[int]] = None,
        weights: Optional[Sequence[float]] = (0.3, 0.7),
        combine: str = "sum",
        patch_size: int = 5,
        aggregation_size: int = 5,
        angle_bins: int = 8,
        radius_bins: int = 2,
        height_bins: int = 1,
        height_axis: int = -1,
        recompute: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.descriptor = MacMIND(
            num_scales=num_scales,
            distance=distance,
            distances=distances,
            weights=weights,
            combine=combine,
            patch_size=patch_size,
            aggregation_size=aggregation_size,
            angle_bins=angle_bins,
            radius_bins=radius_bins,
            height_bins=height_bins,
            height_axis=height_axis,
            recompute=recompute,
        )

    def check_input_shape(self, shape: Sequence[int], ndim: Optional[int] = None) -> None:
        """ValueError when images of spatial shape ``shape`` (voxels; a trailing channel axis when ``ndim`` says
        so is ignored) are too small for the descriptor: every size must exceed the largest patch distance
        (the shifted copies reach that far) and half the aggregation size; called by the models before
        training (e.g. the coarsest level of a progressive LapIRN run)."""
        sizes = [int(v) for v in shape]
        if ndim is not None and len(sizes) > ndim:
            sizes = sizes[:ndim]
        need = max(max(int(d) for d in self.descriptor.distances), self.descriptor.aggregation_size // 2)
        if any(v <= need for v in sizes):
            raise ValueError(
                f"macmind with distances {list(self.descriptor.distances)} and aggregation_size "
                f"{self.descriptor.aggregation_size} needs every spatial size > {need} voxels, got {tuple(sizes)}"
            )

    def compute_per_sample(self, y_true, y_pred):
        """``E_sim`` per sample, ``(B,)``."""
        desc_true = self.descriptor.ms_ssc(y_true)
        diff = desc_true - self.descriptor.ms_ssc(y_pred, after=desc_true)
        voxels = float(np.prod([int(s) for s in diff.shape[1:-1]]))
        return self.descriptor.bin_energy(diff) / voxels

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self.descriptor.get_config())
        return config


__all__ = [
    "ssc_connections",
    "connection_matrix",
    "ssc_from_copies",
    "sequenced",
    "ssc_scale",
    "log_polar_bins",
    "bin_energy_plan",
    "lag_energy",
    "MacMIND",
    "MacMINDLoss",
]
