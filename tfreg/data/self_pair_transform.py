"""Random spatial transforms that turn one image into a registration pair with a known answer.

Used by the ``self_paired`` data loader for self-supervised pre-training, as in WSSAMNet (Nasser et al.,
"WSSAMNet: Weakly Supervised Semantic Attentive Medical Image Registration Network"): the network first
learns to register an image to a randomly transformed copy of itself ("rotation, scaling and
translation besides the identity"), optionally with a smooth local deformation as well.

Conventions (voxel units, axis order ij(k), arrays channels-last as elsewhere in tfreg): the copy is
``moving(x) = image(T(x))``, where ``T(x) = c + A (x - c) + t + d(x)``. Here ``c`` is the image centre,
``A = R S`` is a rotation times an axis scaling, ``t`` is a shift and ``d`` is a smooth displacement field.
The DDF that registers the pair (fixed = image) is therefore ``T^-1(x) - x``. Points outside the image
read 0. The papers do not give the ranges. The defaults are the suggested ones of the spec: rotation up
to 10 degrees about each axis, scaling up to 10 %, shift up to 10 voxels. The local deformation is off
by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from tfreg.checks import check_number
from tfreg.data.landmarks import field_at


@dataclass(frozen=True)
class PairTransformRanges:
    """Ranges of the random transform, each drawn uniformly in ``[-max, max]``.

    Attributes:
        max_rotation: degrees, about each axis (one in-plane angle in 2-D, three in 3-D); in [0, 180].
        max_scale: relative scaling per axis, ``1 + u``, ``|u| <= max_scale``; in [0, 1).
        max_shift: voxels of the (resized) image grid, per axis; >= 0.
        max_displacement: voxels; amplitude of the smooth local deformation (0: affine only). It is drawn
            on a coarse grid of control points ``control_spacing`` voxels apart, then up-sampled with cubic
            splines and clipped to ``[-max_displacement, max_displacement]``.
        control_spacing: voxels between control points of the local deformation; >= 2.
    """

    max_rotation: float = 10.0
    max_scale: float = 0.1
    max_shift: float = 10.0
    max_displacement: float = 0.0
    control_spacing: int = 8

    def __post_init__(self):
        check_number(self.max_rotation, "max_rotation", maximum=180.0)
        if not check_number(self.max_scale, "max_scale") < 1:
            raise ValueError(f"max_scale must be in [0, 1) (a scale factor 1 +/- max_scale), got {self.max_scale!r}")
        check_number(self.max_shift, "max_shift")
        check_number(self.max_displacement, "max_displacement")
        if (
            isinstance(self.control_spacing, bool)
            or not isinstance(self.control_spacing, int)
            or self.control_spacing < 2
        ):
            raise ValueError(f"control_spacing must be an int >= 2 (voxels), got {self.control_spacing!r}")


def rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation of voxel coordinates: one angle gives a 2-D rotation, three give ``R_0 R_1 R_2`` in 3-D.

    ``R_k`` rotates about axis ``k`` (in the plane of the two other axes). Returns ``(ndim, ndim)`` float64.
    """
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if angles.shape == (1,):
        c, s = np.cos(angles[0]), np.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    if angles.shape != (3,):
        raise ValueError(f"expected 1 (2-D) or 3 (3-D) rotation angles, got {angles.tolist()}")
    out = np.eye(3)
    for axis, angle in enumerate(angles):
        i, j = [a for a in range(3) if a != axis]
        r = np.eye(3)
        r[i, i] = r[j, j] = np.cos(angle)
        r[i, j], r[j, i] = -np.sin(angle), np.sin(angle)
        out = out @ r
    return out


@dataclass(frozen=True)
class PairTransform:
    """One drawn transform ``T(x) = c + matrix (x - c) + shift + displacement(x)`` on a grid ``shape``.

    Attributes:
        shape: the spatial shape ``(*s)`` of the image it applies to.
        matrix: ``(ndim, ndim)`` rotation times scaling.
        shift: ``(ndim,)`` voxels.
        displacement: ``(*s, ndim)`` voxels, or None (affine only).
    """

    shape: Tuple[int, ...]
    matrix: np.ndarray
    shift: np.ndarray
    displacement: Optional[np.ndarray] = None

    def coordinates(self) -> np.ndarray:
        """``T(x)`` for every voxel ``x`` of the grid: ``(ndim, *s)`` float64 (scipy's coordinate layout)."""
        grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in self.shape], indexing="ij"))
        centre = (np.asarray(self.shape, dtype=np.float64) - 1) / 2
        centred = grid - centre.reshape((-1,) + (1,) * len(self.shape))
        mapped = np.tensordot(self.matrix, centred, axes=1) + (centre + self.shift).reshape(
            (-1,) + (1,) * len(self.shape)
        )
        if self.displacement is not None:
            mapped = mapped + np.moveaxis(self.displacement, -1, 0)
        return mapped

    def _local(self, points: np.ndarray) -> np.ndarray:
        """``d(x)`` at points ``(N, ndim)``: linear interpolation of the displacement, edges repeated."""
        if self.displacement is None:
            return np.zeros_like(points)
        return field_at(self.displacement, points)

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """``T(x)`` of points ``(N, ndim)`` (voxels), the map :meth:`apply` samples the image at."""
        points = np.asarray(points, dtype=np.float64)
        ndim = len(self.shape)
        if points.ndim != 2 or points.shape[1] != ndim:
            raise ValueError(f"points must be (N, {ndim}), got {points.shape}")
        centre = (np.asarray(self.shape, dtype=np.float64) - 1) / 2
        return (points - centre) @ self.matrix.T + centre + self.shift + self._local(points)

    def inverse_points(self, points: np.ndarray, tolerance: float = 1e-4, max_iterations: int = 200) -> np.ndarray:
        """``T^-1(p)`` of points ``(N, ndim)``: where a point ``p`` of the image lies in ``apply(image)``.

        Exact for the affine part; with a local displacement ``d``, the fixed point of
        ``x = c + A^-1 (p - c - t - d(x))`` (it converges when ``d`` varies slowly compared with ``A``, as
        drawn by :func:`draw_pair_transform` with moderate ``max_displacement``).

        Raises:
            ValueError: when the iteration does not reach ``|T(x) - p| <= tolerance`` voxels.
        """
        points = np.asarray(points, dtype=np.float64)
        self.map_points(points)  # checks the shape
        centre = (np.asarray(self.shape, dtype=np.float64) - 1) / 2
        inverse = np.linalg.inv(self.matrix)
        x = (points - centre - self.shift) @ inverse.T + centre
        if self.displacement is None:
            return x
        for _ in range(max_iterations):
            x = (points - centre - self.shift - self._local(x)) @ inverse.T + centre
            if np.max(np.abs(self.map_points(x) - points), initial=0.0) <= tolerance:
                return x
        raise ValueError(
            f"the inverse of the self-paired transform did not converge for some points (|T(x) - p| > {tolerance} "
            "voxels): lower max_displacement or raise control_spacing"
        )

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array(T(x))`` with linear interpolation and 0 outside.

        Args:
            array: ``(*s)`` or ``(*s, C)`` (channels last, each channel transformed alike).

        Returns:
            float32 of the same shape.
        """
        ndim = len(self.shape)
        if tuple(array.shape[:ndim]) != self.shape or array.ndim not in (ndim, ndim + 1):
            raise ValueError(f"expected an array of shape {self.shape} or {self.shape + ('C',)}, got {array.shape}")
        coords = self.coordinates()
        if array.ndim == ndim:
            return ndimage.map_coordinates(array, coords, order=1, mode="constant", cval=0.0).astype(np.float32)
        channels = [
            ndimage.map_coordinates(array[..., c], coords, order=1, mode="constant", cval=0.0)
            for c in range(array.shape[-1])
        ]
        return np.stack(channels, axis=-1).astype(np.float32)


def draw_pair_transform(shape: Sequence[int], ranges: PairTransformRanges, seed: int) -> PairTransform:
    """Draw a :class:`PairTransform` for a grid ``shape`` (2-D or 3-D) from ``ranges``, reproducibly from ``seed``."""
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise ValueError(f"self-paired transforms are 2-D or 3-D, got an image shape {shape}")
    rng = np.random.default_rng(int(seed))
    angles = rng.uniform(-ranges.max_rotation, ranges.max_rotation, size=1 if ndim == 2 else 3)
    scales = 1.0 + rng.uniform(-ranges.max_scale, ranges.max_scale, size=ndim)
    shift = rng.uniform(-ranges.max_shift, ranges.max_shift, size=ndim)
    displacement = None
    if ranges.max_displacement > 0:
        coarse_shape = tuple(int(np.ceil((n - 1) / ranges.control_spacing)) + 1 for n in shape)
        coarse = rng.uniform(-ranges.max_displacement, ranges.max_displacement, size=(ndim,) + coarse_shape)
        # cubic-spline interpolation of the control points: control point k sits at voxel k * (n - 1) / (m - 1)
        at = np.meshgrid(*[np.arange(n) * (m - 1) / max(n - 1, 1) for n, m in zip(shape, coarse_shape)], indexing="ij")
        fine = np.stack(
            [ndimage.map_coordinates(component, at, order=3, mode="nearest") for component in coarse], axis=-1
        )
        displacement = np.clip(fine, -ranges.max_displacement, ranges.max_displacement)
    return PairTransform(shape, rotation_matrix(angles) @ np.diag(scales), shift, displacement)


__all__ = ["PairTransformRanges", "PairTransform", "rotation_matrix", "draw_pair_transform"]
