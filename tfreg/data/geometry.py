"""Physical geometry of an image grid: spacing, origin and direction, in SimpleITK's (ITK's) convention.

tfreg's arrays are indexed ``(i, j, k)`` (the order nibabel and DeepReg gave them), which is the order of
SimpleITK's *index* ``(x, y, z)``. The physical position (mm, LPS as ITK reports it) of voxel ``idx`` is::

    point = origin + direction @ (spacing * idx)

so ``direction[:, a]`` is the unit vector of array axis ``a`` and ``spacing[a]`` its voxel size (mm).
Keeping the geometry next to every loaded array lets predictions and warped images be written back
in the input's physical space (DeepReg wrote an identity affine instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class ImageGeometry:
    """Spacing (mm), origin (mm) and direction cosines of an ``ndim``-D image grid.

    Attributes:
        spacing: ``(ndim,)`` voxel size along each array axis, mm, > 0.
        origin: ``(ndim,)`` physical position of voxel ``(0, ..., 0)``'s centre, mm.
        direction: ``(ndim, ndim)``; column ``a`` is the unit direction of array axis ``a``.
    """

    spacing: Tuple[float, ...]
    origin: Tuple[float, ...]
    direction: np.ndarray

    def __post_init__(self):
        spacing = tuple(float(s) for s in self.spacing)
        origin = tuple(float(o) for o in self.origin)
        direction = np.asarray(self.direction, dtype=np.float64)
        ndim = len(spacing)
        if ndim == 0 or len(origin) != ndim or direction.shape != (ndim, ndim):
            raise ValueError(
                f"inconsistent geometry: spacing {spacing}, origin {origin}, direction shape {direction.shape}"
            )
        if not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise ValueError(f"spacing must be finite and positive, got {spacing}")
        direction = direction.copy()
        direction.setflags(write=False)  # frozen dataclass: keep the matrix immutable too
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def identity(cls, ndim: int = 3) -> "ImageGeometry":
        """Spacing 1 mm, origin 0, identity direction: the geometry of an array without a header."""
        return cls(spacing=(1.0,) * ndim, origin=(0.0,) * ndim, direction=np.eye(ndim))

    @classmethod
    def from_sitk(cls, image, ndim: int = None) -> "ImageGeometry":
        """The geometry of a ``SimpleITK.Image``, keeping its first ``ndim`` axes (default: at most 3).

        A 4-D scalar image (e.g. a multi-label NIfTI ``(x, y, z, labels)``) stores the channel axis as a
        fourth spatial axis; only the first three describe space.
        """
        dim = image.GetDimension()
        ndim = min(dim, 3) if ndim is None else int(ndim)
        if not 1 <= ndim <= dim:
            raise ValueError(f"cannot take {ndim} axes of a {dim}-D image")
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)
        return cls(
            spacing=image.GetSpacing()[:ndim],
            origin=image.GetOrigin()[:ndim],
            direction=direction[:ndim, :ndim],
        )

    @classmethod
    def from_dict(cls, values: dict) -> "ImageGeometry":
        """Inverse of :meth:`to_dict` (also accepts the HDF5 attributes written by tfreg's converter)."""
        spacing = np.asarray(values["spacing"], dtype=np.float64).ravel()
        direction = np.asarray(values["direction"], dtype=np.float64).reshape(len(spacing), len(spacing))
        return cls(spacing=spacing, origin=np.asarray(values["origin"]).ravel(), direction=direction)

    # ------------------------------------------------------------------ views
    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.spacing)

    def with_ndim(self, ndim: int) -> "ImageGeometry":
        """The first ``ndim`` axes, or this geometry padded with unit-spaced identity axes up to ``ndim``.

        Used when a file's header has more (a 2-D image stored as ``(x, y, 1)``) or fewer axes than the
        configured image shape.
        """
        if ndim == self.ndim:
            return self
        if ndim < self.ndim:
            return ImageGeometry(self.spacing[:ndim], self.origin[:ndim], self.direction[:ndim, :ndim])
        direction = np.eye(ndim)
        direction[: self.ndim, : self.ndim] = self.direction
        pad = ndim - self.ndim
        return ImageGeometry(self.spacing + (1.0,) * pad, self.origin + (0.0,) * pad, direction)

    def to_dict(self) -> dict:
        """Plain lists (YAML/JSON/HDF5-attribute friendly): ``spacing``, ``origin``, ``direction`` (row-major)."""
        return {
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": self.direction.ravel().tolist(),
        }

    def index_to_physical(self) -> np.ndarray:
        """``(ndim+1, ndim+1)`` homogeneous matrix mapping a voxel index ``(i, j, k, 1)`` to mm (LPS)."""
        matrix = np.eye(self.ndim + 1)
        matrix[: self.ndim, : self.ndim] = self.direction @ np.diag(self.spacing)
        matrix[: self.ndim, self.ndim] = self.origin
        return matrix

    def apply_to_sitk(self, image) -> None:
        """Set this geometry on a ``SimpleITK.Image`` in place.

        Extra image axes beyond :attr:`ndim` (the label axis of a 4-D NIfTI) get spacing 1, origin 0
        and an identity direction block, as nibabel writes them.
        """
        dim = image.GetDimension()
        if dim < self.ndim:
            raise ValueError(f"a {self.ndim}-D geometry does not fit a {dim}-D image")
        spacing = list(self.spacing) + [1.0] * (dim - self.ndim)
        origin = list(self.origin) + [0.0] * (dim - self.ndim)
        direction = np.eye(dim)
        direction[: self.ndim, : self.ndim] = self.direction
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(direction.ravel().tolist())

    def resized(self, from_shape: Sequence[int], to_shape: Sequence[int]) -> "ImageGeometry":
        """The geometry of this grid resampled from ``from_shape`` to ``to_shape`` voxels.

        Uses the half-pixel-centre convention of :func:`tfreg.ops.resize.resize` (and DeepReg's
        ``Resize3d``): output voxel ``o`` samples input index ``(o + 0.5) * n_in / n_out - 0.5``, so the
        image keeps its physical extent, the spacing scales by ``n_in / n_out`` and the first voxel
        centre moves by ``(n_in / n_out - 1) / 2`` input voxels. Axes beyond ``len(to_shape)`` are kept.
        A prediction made at the model's (configured) shape is therefore written where the input was.
        """
        from_shape, to_shape = list(from_shape), list(to_shape)
        if len(from_shape) != len(to_shape) or len(to_shape) > self.ndim:
            raise ValueError(f"cannot resize a {self.ndim}-D geometry from {from_shape} to {to_shape}")
        scale = np.ones(self.ndim)
        scale[: len(to_shape)] = np.asarray(from_shape, dtype=np.float64) / np.asarray(to_shape, dtype=np.float64)
        spacing = np.asarray(self.spacing) * scale
        shift_index = (scale - 1.0) / 2.0  # in input voxels
        origin = np.asarray(self.origin) + self.direction @ (np.asarray(self.spacing) * shift_index)
        return ImageGeometry(spacing=spacing, origin=origin, direction=self.direction)

    def allclose(self, other: "ImageGeometry", atol: float = 1e-5) -> bool:
        """Whether two geometries agree to ``atol`` (mm for spacing/origin, unitless for direction)."""
        return (
            self.ndim == other.ndim
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, ImageGeometry):
            return NotImplemented
        return (
            self.spacing == other.spacing
            and self.origin == other.origin
            and np.array_equal(self.direction, other.direction)
        )

    def __hash__(self) -> int:
        return hash((self.spacing, self.origin, self.direction.tobytes()))

    def __repr__(self) -> str:
        return (
            f"ImageGeometry(spacing={self.spacing}, origin={self.origin}, direction={self.direction.ravel().tolist()})"
        )


__all__ = ["ImageGeometry"]
