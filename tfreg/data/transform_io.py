"""Displacement-field files other tools read: ITK / ANTs physical fields and DeepReg voxel DDFs.

tfreg's DDFs are ``(*f, ndim)`` arrays in **voxels of the moving grid**, ij(k) order: fixed voxel ``p``
samples the moving image at moving-grid voxel ``q = p + ddf[p]`` (:func:`tfreg.ops.warp.warp`).
Other tools store a displacement in **physical space** instead. An ITK displacement field ``d`` (what
``itk::DisplacementFieldTransform`` and SimpleITK's ``sitk.DisplacementFieldTransform`` hold) is an
image on the fixed grid whose vector at the fixed point ``x`` (mm, LPS) maps it to the moving point
``x + d(x)`` (mm, LPS). With :class:`~tfreg.data.geometry.ImageGeometry`'s ``point(idx) = origin +
direction @ (spacing * idx)``::

    d(x_p) = moving.point(p + ddf[p]) - fixed.point(p)

where ``moving`` is the grid whose voxels the DDF counts. By default that is the fixed grid itself
(the moving image was resampled onto the fixed grid before registration, as DeepReg does).

File formats (``fmt`` of :func:`write_transform`):

- ``"itk"``: a vector image on the fixed grid (the fixed image's size, spacing, origin and direction),
  one ``ndim``-vector per voxel, the physical displacement in mm in ITK's LPS frame, components in
  the order of ITK's physical axes (x, y[, z]). ``.nii.gz``, ``.nii``, ``.mha`` or ``.nrrd``; float32
  components by default (``dtype="float64"`` on request). SimpleITK reads it as
  ``sitk.DisplacementFieldTransform(sitk.ReadImage(path, sitk.sitkVectorFloat64))``.
- ``"ants"``: ANTs' warp file (antsRegistration's ``*Warp.nii.gz``, antsApplyTransforms' ``-t``). ANTs
  reads its warps with ITK's NIfTI reader, so it is the same ITK displacement field, restricted to
  NIfTI: a 5-D NIfTI ``(x, y, z, 1, ndim)`` (2-D: ``(x, y, 1, 1, 2)``) with intent code 1007
  (``NIFTI_INTENT_VECTOR``), the vectors in the 5th axis, in **LPS** mm (the header's sform/qform
  hold the fixed grid, which NIfTI stores in RAS; the vectors themselves are *not* converted to RAS),
  float32 components (ANTs' own warps are float32; ITK converts any real type on reading). Sources:
  the ANTs wiki page "ANTs transform concepts and file formats" (ANTsPy): the forward warp lives on the
  fixed image's grid and holds, per fixed voxel centre, the physical (LPS, mm) displacement towards
  the moving space; users converting FSL warps report that ANTs needs both the vector intent and the
  components in the 5th axis (Washington-University/workbench issue #37), and ANTs 2.6 needs the
  vector intent (PennLINC/qsiprep PR #1153). ITK's NIfTI writer produces exactly this layout for a
  vector image, so ``"ants"`` and ``"itk"`` with a NIfTI suffix use the same writer and give
  byte-identical files (tested).
- ``"deepreg"``: DeepReg's / ``tfreg_predict``'s ``ddf.nii.gz``: a 4-D scalar NIfTI ``(i, j, k, 3)``
  (2-D: ``(i, j, 2)``), float32, in moving-grid **voxels**, with the fixed grid's geometry in the header
  (DeepReg wrote an identity affine), as :func:`tfreg.data.image_io.save_image` writes it (intent code
  0). The values count the moving grid's voxels: to read such a file on another grid the moving grid
  must be known (``tfreg_predict`` writes ``moving_image.nii.gz`` beside it).

Telling them apart when reading (:func:`transform_units`, ``units="auto"``): a NIfTI file with intent
code 1007 and a 5-D layout is physical (ITK/ANTs); any other NIfTI (4-D scalar, what ``save_image`` and
nibabel write for a DDF) is voxels. A non-NIfTI file (``.mha``, ``.nrrd``, ...) holding a vector image
is physical, a scalar one voxels. Note that ``save_image`` writes a channel array to ``.mha`` as a
vector image, so a voxel DDF saved as ``.mha`` would be taken as physical: DeepReg DDFs are NIfTI only
(``write_transform`` refuses other suffixes for ``"deepreg"``), and ``units=`` overrides the rule.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from tfreg.data.errors import DataError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import is_nifti_path, read_image, save_image
from tfreg.data.landmarks import index_to_physical, physical_to_index
from tfreg.data.nifti_raw import check_nifti_complete
from tfreg.data.sitk_io_lock import SITK_IO_LOCK
from tfreg.file_safety import atomic_output

#: Formats :func:`write_transform` writes.
FORMATS = ("itk", "ants", "deepreg")
#: File suffixes each format may be written to (lower case).
FORMAT_SUFFIXES = {
    "itk": (".nii.gz", ".nii", ".mha", ".nrrd"),
    "ants": (".nii.gz", ".nii"),
    "deepreg": (".nii.gz", ".nii"),
}
#: ``units`` choices of :func:`read_transform`.
UNITS = ("auto", "voxel", "physical")
#: NIfTI intent code of a vector-valued dataset (``NIFTI_INTENT_VECTOR``), set by ITK's vector writer.
NIFTI_INTENT_VECTOR = 1007
#: Component types an ITK/ANTs field may be written with.
PHYSICAL_DTYPES = ("float32", "float64")


class Transform(NamedTuple):
    """What :func:`read_transform` returns.

    Attributes:
        ddf: ``(*f, ndim)`` float32 displacement in voxels of the moving grid (see :func:`read_transform`),
            ij(k) order, ready for :func:`tfreg.ops.warp.warp` (with a batch axis added).
        geometry: the field's (fixed, output) grid, ``ndim`` axes.
        units: ``"physical"`` or ``"voxel"``, how the file stored the displacement.
    """

    ddf: np.ndarray
    geometry: ImageGeometry
    units: str


# ---------------------------------------------------------------------------------------------- geometry
def _check_field(field: np.ndarray, geometry: ImageGeometry, what: str) -> np.ndarray:
    """``field`` as float64 after checking it is ``(*f, ndim)`` with ``ndim`` = 2 or 3 = ``geometry.ndim``."""
    field = np.asarray(field)
    ndim = field.shape[-1] if field.ndim else 0
    if ndim not in (2, 3) or field.ndim != ndim + 1:
        raise ValueError(f"{what} must be (*spatial, ndim) with ndim = 2 or 3 spatial axes, got shape {field.shape}")
    if geometry.ndim != ndim:
        raise ValueError(f"{what} of shape {field.shape} is {ndim}-D but its geometry is {geometry.ndim}-D: {geometry}")
    return field.astype(np.float64)


def _index_grid(shape: Sequence[int]) -> np.ndarray:
    """``(*shape, ndim)`` float64 voxel indices, ij(k) order."""
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), -1)


def _to_mm(index: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Physical points (mm) of voxel indices ``(..., ndim)``."""
    return index_to_physical(index.reshape(-1, geometry.ndim), geometry).reshape(index.shape)


def _to_index(points: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Continuous voxel indices of physical points ``(..., ndim)`` (mm)."""
    return physical_to_index(points.reshape(-1, geometry.ndim), geometry).reshape(points.shape)


def voxel_ddf_to_physical(
    ddf: np.ndarray, fixed_geometry: ImageGeometry, moving_geometry: Optional[ImageGeometry] = None
) -> np.ndarray:
    """tfreg's voxel DDF as an ITK displacement field: ``d(x_p) = moving.point(p + ddf[p]) - fixed.point(p)``.

    Args:
        ddf: ``(*f, ndim)`` displacement in voxels of ``moving_geometry``, ij(k) order, on the fixed grid.
        fixed_geometry: geometry of the fixed grid (the DDF's own grid, ``ndim`` axes).
        moving_geometry: the grid whose voxels ``ddf`` counts; default ``fixed_geometry`` (the moving
            image was resampled onto the fixed grid).

    Returns:
        ``(*f, ndim)`` float64 physical displacement, mm, LPS, in ITK's physical axis order.
    """
    ddf = _check_field(ddf, fixed_geometry, "ddf")
    moving_geometry = fixed_geometry if moving_geometry is None else moving_geometry
    if moving_geometry.ndim != fixed_geometry.ndim:
        raise ValueError(f"moving geometry is {moving_geometry.ndim}-D, fixed geometry {fixed_geometry.ndim}-D")
    points = _index_grid(ddf.shape[:-1])
    return _to_mm(points + ddf, moving_geometry) - _to_mm(points, fixed_geometry)


def physical_to_voxel_ddf(
    disp_mm: np.ndarray, field_geometry: ImageGeometry, moving_geometry: Optional[ImageGeometry] = None
) -> np.ndarray:
    """The inverse of :func:`voxel_ddf_to_physical`: ``ddf[p] = moving.index(field.point(p) + d) - p``.

    Args:
        disp_mm: ``(*f, ndim)`` ITK displacement field values (mm, LPS) on the field's grid.
        field_geometry: the field's grid (the fixed grid, ``ndim`` axes).
        moving_geometry: the grid whose voxels the result counts (the image to warp); default
            ``field_geometry``.

    Returns:
        ``(*f, ndim)`` float64 DDF in voxels of ``moving_geometry``, ij(k) order.
    """
    disp_mm = _check_field(disp_mm, field_geometry, "displacement field")
    moving_geometry = field_geometry if moving_geometry is None else moving_geometry
    if moving_geometry.ndim != field_geometry.ndim:
        raise ValueError(f"moving geometry is {moving_geometry.ndim}-D, field geometry {field_geometry.ndim}-D")
    points = _index_grid(disp_mm.shape[:-1])
    return _to_index(_to_mm(points, field_geometry) + disp_mm, moving_geometry) - points


# ---------------------------------------------------------------------------------------------- writing
def _suffix_of(path: str, fmt: str) -> str:
    lower = str(path).lower()
    for suffix in FORMAT_SUFFIXES[fmt]:
        if lower.endswith(suffix):
            return suffix
    raise ValueError(
        f"{fmt!r} transform file {path} must end with one of {', '.join(FORMAT_SUFFIXES[fmt])}"
        + (" (ANTs reads its warps as NIfTI)" if fmt == "ants" else "")
    )


def write_transform(
    path: str,
    ddf: np.ndarray,
    fixed_geometry: ImageGeometry,
    fmt: str,
    moving_geometry: Optional[ImageGeometry] = None,
    overwrite: bool = False,
    dtype: str = "float32",
) -> str:
    """Write a voxel DDF as a transform file other tools read (module docstring for the formats).

    Args:
        path: output file; its suffix must suit ``fmt`` (:data:`FORMAT_SUFFIXES`). Written atomically
            (scratch file, then rename); missing parent folders are created.
        ddf: ``(*f, ndim)`` displacement in voxels of ``moving_geometry``, ij(k) order, on the fixed grid
            (``ndim`` = 2 or 3); finite.
        fixed_geometry: the fixed (output) grid's geometry, ``ndim`` axes; the file's header.
        fmt: ``"itk"``, ``"ants"`` or ``"deepreg"``.
        moving_geometry: the grid whose voxels ``ddf`` counts; default ``fixed_geometry``. The physical
            formats fold it into the vectors. ``"deepreg"`` stores the voxel values as they are, so
            reading such a file back needs the same moving grid (:func:`read_transform`).
        overwrite: replace an existing ``path``; otherwise an existing file is refused.
        dtype: component type of the physical formats, ``"float32"`` (default, ANTs' own) or ``"float64"``;
            ``"deepreg"`` is always float32.

    Returns:
        ``path``.

    Raises:
        ValueError: unknown ``fmt`` or ``dtype``, a suffix that does not suit ``fmt``, a DDF that is not
            ``(*f, ndim)`` with the geometry's ``ndim``, or non-finite DDF values.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown transform format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if dtype not in PHYSICAL_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(PHYSICAL_DTYPES)}, got {dtype!r}")
    _suffix_of(path, fmt)
    ddf = _check_field(ddf, fixed_geometry, "ddf")
    bad = int(ddf.size - np.count_nonzero(np.isfinite(ddf)))
    if bad:
        raise ValueError(f"ddf holds {bad} non-finite (NaN or infinite) value(s); not writing {path}")
    if moving_geometry is not None and moving_geometry.ndim != fixed_geometry.ndim:
        raise ValueError(f"moving geometry is {moving_geometry.ndim}-D, fixed geometry {fixed_geometry.ndim}-D")
    path = os.path.expanduser(str(path))
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"transform file {path} already exists (pass overwrite=True to replace it)")
    ndim = ddf.shape[-1]
    with atomic_output(path) as scratch:
        if fmt == "deepreg":
            save_image(ddf.astype(np.float32), scratch, fixed_geometry)
        else:
            disp = voxel_ddf_to_physical(ddf, fixed_geometry, moving_geometry).astype(dtype)
            # SimpleITK's arrays are (z, y, x, components): reverse the spatial axes only
            image = sitk.GetImageFromArray(np.transpose(disp, tuple(reversed(range(ndim))) + (ndim,)), isVector=True)
            fixed_geometry.apply_to_sitk(image)
            with SITK_IO_LOCK:
                sitk.WriteImage(image, scratch, True)
    return path


# ---------------------------------------------------------------------------------------------- reading
def transform_units(path: str) -> str:
    """``"physical"`` (ITK/ANTs displacement field) or ``"voxel"`` (DeepReg DDF), from the file's header.

    NIfTI: intent code 1007 (vector) and 5 dimensions -> physical, else voxel. Other formats: a vector
    image -> physical, a scalar one -> voxel. See the module docstring.
    """
    if is_nifti_path(path):
        header = check_nifti_complete(str(path))
        vector = header["intent_code"] == NIFTI_INTENT_VECTOR and header["dims"][0] == 5
        return "physical" if vector else "voxel"
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with SITK_IO_LOCK:
            reader.ReadImageInformation()
    except RuntimeError as err:
        raise DataError(
            f"could not read the header of transform file {path}: {str(err).strip().splitlines()[-1]}"
        ) from err
    return "physical" if reader.GetNumberOfComponents() > 1 else "voxel"


def describe_grid(shape: Sequence[int], geometry: ImageGeometry) -> str:
    """``size (..) spacing (..) origin (..) direction [..]`` for messages."""
    return (
        f"size {tuple(int(s) for s in shape)}, spacing {tuple(round(s, 6) for s in geometry.spacing)}, "
        f"origin {tuple(round(o, 6) for o in geometry.origin)}, "
        f"direction {np.round(geometry.direction, 6).ravel().tolist()}"
    )


def check_same_grid(
    what: str, shape: Sequence[int], geometry: ImageGeometry, other: str, other_shape, other_geometry, atol=1e-4
) -> None:
    """ValueError naming both grids unless ``shape``/``geometry`` match ``other_shape``/``other_geometry``.

    ``other_shape`` may be None (geometry only). ``atol`` is in mm (spacing, origin) and unitless (direction).
    """
    same_shape = other_shape is None or tuple(int(s) for s in other_shape) == tuple(int(s) for s in shape)
    if same_shape and geometry.allclose(other_geometry, atol=atol):
        return
    raise ValueError(
        f"{what} is on a different grid than {other}: {what} has {describe_grid(shape, geometry)}; {other} has "
        f"{describe_grid(other_shape if other_shape is not None else shape, other_geometry)}"
        + ("" if other_shape is not None else " (size not checked)")
    )


def read_transform(
    path: str,
    image_geometry: Optional[ImageGeometry] = None,
    image_shape: Optional[Sequence[int]] = None,
    moving_geometry: Optional[ImageGeometry] = None,
    units: str = "auto",
) -> Transform:
    """Read a transform file as a voxel DDF on its own (fixed) grid.

    Args:
        path: ITK/ANTs displacement field or DeepReg DDF file (module docstring).
        image_geometry: the grid the field is to be applied on (its output grid, e.g. the fixed image's);
            when given, a file on another grid (spacing, origin or direction differing by more than
            1e-4 mm / 1e-4) is refused. ``image_shape`` (``ndim`` spatial sizes) also checks the size.
        image_shape: see ``image_geometry``; may be given alone.
        moving_geometry: the grid whose voxels the returned DDF counts (the image that will be warped);
            default the field's own grid. A physical field is converted to it exactly; a voxel (DeepReg)
            file carries no moving grid, so its values are returned unchanged and are taken to count this
            grid's voxels (as ``write_transform(..., fmt="deepreg", moving_geometry=...)`` wrote them).
        units: ``"auto"`` (from the header, :func:`transform_units`), ``"physical"`` or ``"voxel"``.

    Returns:
        :class:`Transform` ``(ddf, geometry, units)``: ``ddf`` ``(*f, ndim)`` float32 voxels as above,
        ``geometry`` the file's grid (``ndim`` axes), ``units`` what the file held.

    Raises:
        FileNotFoundError: ``path`` is missing. DataError: unreadable or non-finite file. ValueError: a
        field that is not ``(*f, ndim)`` with ndim 2 or 3, or a grid mismatch (both grids named).
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"transform file {path} does not exist")
    found = transform_units(path) if units == "auto" else units
    field, geometry = read_image(path, dtype=np.float64)
    ndim = field.shape[-1] if field.ndim else 0
    if ndim not in (2, 3) or field.ndim != ndim + 1:
        raise ValueError(
            f"transform file {path}: expected a displacement field of shape (*spatial, ndim) with ndim = 2 or 3 "
            f"components, got shape {field.shape}"
        )
    geometry = geometry.with_ndim(ndim)
    shape = field.shape[:-1]
    if image_geometry is not None or image_shape is not None:
        check_same_grid(
            f"transform file {path}",
            shape,
            geometry,
            "the image grid it is applied to",
            image_shape,
            image_geometry.with_ndim(ndim) if image_geometry is not None else geometry,
        )
    if moving_geometry is not None:
        moving_geometry = moving_geometry.with_ndim(ndim)
    if found == "physical":
        ddf = physical_to_voxel_ddf(field, geometry, moving_geometry)
    else:
        ddf = field
    return Transform(ddf.astype(np.float32), geometry, found)


__all__ = [
    "FORMATS",
    "FORMAT_SUFFIXES",
    "UNITS",
    "NIFTI_INTENT_VECTOR",
    "Transform",
    "voxel_ddf_to_physical",
    "physical_to_voxel_ddf",
    "write_transform",
    "read_transform",
    "transform_units",
    "check_same_grid",
]
