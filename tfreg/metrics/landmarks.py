"""Point-based metrics: target registration error, BraTSReg landmark errors and robustness, centroids.

Points are arrays ``(N, ndim)`` whose columns follow the array axes of the images (i, j(, k)), in one of
two coordinate systems:

- ``spacing=None``: the coordinates are used as they are, so they should already be physical (mm, e.g.
  from a landmark file) and distances come out in the same unit (or in voxels, for voxel coordinates).
- ``spacing`` given: the coordinates are voxel indices (possibly fractional) and each axis is scaled by
  its spacing before measuring, so distances are in mm. Origin and an orthonormal direction matrix do
  not change distances, so only the spacing matters.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tfreg.metrics._checks import as_array, as_mask, as_spacing, check_same_shape, warn_empty


def _points(x, name: str, func: str) -> np.ndarray:
    """A validated ``(N, ndim)`` float point array."""
    pts = as_array(x, name, func)
    if pts.ndim != 2:
        raise ValueError(f"{func}: {name} must have shape (N, ndim), got shape {tuple(pts.shape)}")
    return pts.astype(np.float64, copy=False)


def tre(points_a, points_b, spacing=None) -> np.ndarray:
    """Target registration error: the Euclidean distance of each pair of corresponding points.

    ``TRE_n = || S (a_n - b_n) ||_2`` with ``S = diag(spacing)`` (identity when ``spacing`` is None).
    Typically ``a`` are the fixed-image landmarks and ``b`` the moving landmarks mapped through the
    registration (or the reverse); macJNet reports the mean in mm.

    Args:
        points_a, points_b: ``(N, ndim)`` arrays of corresponding points, same N and ndim.
        spacing: None if the points are physical coordinates; otherwise the voxel size per axis in mm
            (scalar or length ndim) and the points are voxel coordinates.

    Returns:
        ``(N,)`` float array of errors (mm when the points or the spacing are physical).
    """
    func = "tre"
    pa = _points(points_a, "points_a", func)
    pb = _points(points_b, "points_b", func)
    if pa.shape[0] != pb.shape[0]:
        raise ValueError(
            f"{func}: points_a has {pa.shape[0]} points but points_b has {pb.shape[0]}; "
            "corresponding landmarks must come in equal numbers"
        )
    if pa.shape[1] != pb.shape[1]:
        raise ValueError(f"{func}: points_a has {pa.shape[1]} coordinates per point but points_b has {pb.shape[1]}")
    sp = as_spacing(spacing, pa.shape[1], func)
    return np.linalg.norm((pa - pb) * sp, axis=1)


def _as_pairs(x, per_pair_ndim: int) -> list:
    """A list with one entry per image pair.

    Lists and tuples hold one entry per pair (the number of landmarks may differ between pairs), unless
    their items are one axis short of a pair (a list of numbers for errors, of points for landmarks),
    which makes them a single pair; an
    array with ``per_pair_ndim`` axes is a single pair and one with an extra leading axis is a stack of
    pairs of equal size.
    """
    if isinstance(x, (list, tuple)):
        if x and all(np.ndim(item) == per_pair_ndim - 1 for item in x):
            return [np.asarray(x)]  # a plain list of numbers (or of points) is one pair
        return list(x)
    arr = np.asarray(x)
    return list(arr) if arr.ndim == per_pair_ndim + 1 else [arr]


def landmark_errors(points_a, points_b, spacing=None) -> dict:
    """BraTSReg landmark errors: per-pair median and mean absolute error, aggregated over pairs.

    For each pair of scans p with landmarks l in L_p, the absolute error of a landmark is the
    Euclidean distance between its registered position and its reference position,
    ``AE_l = ||x_l - x_hat_l||`` (see :func:`tre`; the BraTS-Reg challenge calls it the Euclidean
    error). Per pair (WSSAMNet eq. 6, WSSAMNet++ eq. 7): ``MAE_p = median_{l in L_p} AE_l`` and the mean
    ``mean_{l in L_p} AE_l``. Over pairs, both are aggregated by mean and median, giving the four
    numbers of WSSAMNet's Table 1 (median of median AE, mean of median AE, median of mean AE, mean of
    mean AE).

    Args:
        points_a, points_b: the landmarks of P pairs: a list (or tuple) of ``(N_p, ndim)`` arrays,
            N_p may differ between pairs; a single ``(N, ndim)`` array is one pair and a
            ``(P, N, ndim)`` array is P pairs of N landmarks. ``points_a[p]``
            and ``points_b[p]`` correspond row by row.
        spacing: None (physical coordinates), one spacing for all pairs (scalar or length ndim), or
            one per pair as a ``(P, ndim)`` array or list of P length-ndim sequences.

    Returns:
        A dict with
        ``"errors"`` (list of P arrays ``(N_p,)``), ``"median_per_pair"`` and ``"mean_per_pair"``
        (arrays ``(P,)``), and the floats ``"mean_of_median"``, ``"median_of_median"``,
        ``"mean_of_mean"``, ``"median_of_mean"``.
    """
    func = "landmark_errors"
    pairs_a = _as_pairs(points_a, 2)
    pairs_b = _as_pairs(points_b, 2)
    if len(pairs_a) != len(pairs_b):
        raise ValueError(f"{func}: points_a holds {len(pairs_a)} pairs but points_b holds {len(pairs_b)}")
    if not pairs_a:
        raise ValueError(f"{func}: no pairs given")
    spacings = _per_pair_spacing(spacing, len(pairs_a), func)
    errors = []
    for p, (pa, pb, sp) in enumerate(zip(pairs_a, pairs_b, spacings)):
        try:
            err = tre(pa, pb, sp)
        except ValueError as exc:
            raise ValueError(f"{func}: pair {p}: {exc}") from None
        if err.size == 0:
            raise ValueError(f"{func}: pair {p} has no landmarks")
        errors.append(err)
    medians = np.array([np.median(e) for e in errors])
    means = np.array([np.mean(e) for e in errors])
    return {
        "errors": errors,
        "median_per_pair": medians,
        "mean_per_pair": means,
        "mean_of_median": float(np.mean(medians)),
        "median_of_median": float(np.median(medians)),
        "mean_of_mean": float(np.mean(means)),
        "median_of_mean": float(np.median(means)),
    }


def _per_pair_spacing(spacing, n_pairs: int, func: str) -> list:
    """``spacing`` repeated for every pair, or, given as ``(P, ndim)``, checked to hold one per pair."""
    if spacing is not None and np.ndim(spacing) == 2:
        if len(spacing) != n_pairs:
            raise ValueError(f"{func}: {len(spacing)} spacings given for {n_pairs} pairs")
        return list(spacing)
    return [spacing] * n_pairs


def robustness(initial_errors, final_errors, reduce: str = "mean"):
    """BraTSReg robustness: the fraction of landmarks whose error decreased, per pair, then averaged.

    WSSAMNet (eq. 7-8): "For a pair of scans (p) the robustness is given by the ratio of the
    successfully registered landmarks to the total number of landmarks in p",
    ``R(p) = |K_p| / |L_p|``, and the total robustness is ``R = (1/P) sum_p R(p)``. The seeds do not
    spell out "successfully registered"; following docs/methods.md ("fraction of landmarks whose error
    improved over the initial error") and the BraTS-Reg challenge (Baheti et al., arXiv:2112.06979),
    a landmark counts when its error after registration is strictly smaller than its error before
    registration; unchanged errors do not count.

    Args:
        initial_errors: per-pair landmark errors before registration: a list of P arrays ``(N_p,)``
            (e.g. :func:`tre` of the unregistered landmarks); a single 1-D array is one pair and a
            ``(P, N)`` array is P pairs.
        final_errors: the errors of the same landmarks after registration, same structure.
        reduce: "mean" (R of the paper), "median" (WSSAMNet's "Median Robustness"), or "none" for
            the per-pair values.

    Returns:
        A float in [0, 1], or a ``(P,)`` array for ``reduce="none"``.
    """
    func = "robustness"
    if reduce not in ("mean", "median", "none"):
        raise ValueError(f"{func}: reduce must be 'mean', 'median' or 'none', got {reduce!r}")
    init = _as_pairs(initial_errors, 1)
    final = _as_pairs(final_errors, 1)
    if len(init) != len(final):
        raise ValueError(f"{func}: initial_errors holds {len(init)} pairs but final_errors holds {len(final)}")
    if not init:
        raise ValueError(f"{func}: no pairs given")
    per_pair = []
    for p, (e0, e1) in enumerate(zip(init, final)):
        e0 = as_array(e0, f"initial_errors[{p}]", func)
        e1 = as_array(e1, f"final_errors[{p}]", func)
        if e0.ndim != 1 or e1.ndim != 1:
            raise ValueError(
                f"{func}: pair {p}: errors must be 1-D per pair, got shapes {tuple(e0.shape)} and {tuple(e1.shape)}"
            )
        if e0.size != e1.size:
            raise ValueError(f"{func}: pair {p}: initial_errors has {e0.size} landmarks but final_errors has {e1.size}")
        if e0.size == 0:
            raise ValueError(f"{func}: pair {p} has no landmarks")
        per_pair.append(np.count_nonzero(e1 < e0) / e0.size)
    values = np.asarray(per_pair)
    if reduce == "none":
        return values
    return float(np.mean(values) if reduce == "mean" else np.median(values))


def centroid_distance(a, b, spacing=None) -> float:
    """Euclidean distance between the centres of mass of two masks, in mm.

    ``|| S (c_A - c_B) ||_2`` with ``c = mean of the foreground voxel indices`` and ``S = diag(spacing)``;
    the label-centroid TRE used for weakly supervised registration (Hu et al.; DeepReg's centroid
    distance).

    Args:
        a, b: masks of the same shape, 2-D or 3-D (bool or numeric, ``>= 0.5`` is foreground).
        spacing: voxel size per axis in mm (None: 1.0, distance in voxels).

    Returns:
        The distance; NaN with an :class:`EmptyMaskWarning` when a mask is empty.
    """
    func = "centroid_distance"
    ma = as_mask(a, "a", func)
    mb = as_mask(b, "b", func)
    check_same_shape(ma, mb, func)
    sp = as_spacing(spacing, ma.ndim, func)
    empty = [name for name, m in (("a", ma), ("b", mb)) if not m.any()]
    if empty:
        warn_empty(func, empty)
        return float("nan")
    ca = np.asarray(ndimage.center_of_mass(ma))
    cb = np.asarray(ndimage.center_of_mass(mb))
    return float(np.linalg.norm((ca - cb) * sp))
