"""Direct NIfTI reading, for what SimpleITK gets wrong or cannot do.

SimpleITK (ITK 5.4, through niftilib) is tfreg's reader, but:

- it reads a truncated ``.nii``/``.nii.gz`` without complaint, zero-filling what is missing (nibabel,
  DeepReg's reader, failed): :func:`check_nifti_complete` compares the file with its header, at the
  cost of two small reads (``.nii.gz``: the gzip trailer's uncompressed size, mod 2**32);
- it reads NaN/infinite float voxels as 0 (nibabel passed them on): the voxels of unscaled files are read
  here instead (:func:`read_unscaled_voxels`, one decompression), so non-finite values can be rejected.
  Integer files (most images and label maps) cannot hold them but are read here too: SimpleITK's file calls
  must hold a process-wide lock (:mod:`tfreg.data.sitk_io_lock`), and this reader needs none, so parallel
  loader threads decompress at the same time. Only the header goes through SimpleITK;
- it cannot read some NIfTI-2 files that nibabel writes (DeepReg's ``unit_test/moving_image.nii.gz``):
  :func:`read_nifti` and :func:`read_nifti_info` read those, with the geometry of the header's sform
  (if its code is set), else its qform, else its pixdim, in ITK's LPS convention.

Only what tfreg needs is parsed: single-file NIfTI-1/NIfTI-2, either byte order, real datatypes.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import Dict, Optional, Tuple

import numpy as np

from tfreg.data.errors import DataError
from tfreg.data.geometry import ImageGeometry

#: NIfTI datatype codes -> NumPy dtype characters (complex and RGB are not supported here).
DATATYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}
#: The float ones, which can hold NaN/inf.
FLOAT_DATATYPES = {16: "f4", 64: "f8"}

# Byte layout: (offset, struct format) per field, for NIfTI-1 (348-byte header) and NIfTI-2 (540).
_LAYOUT = {
    348: {
        "dims": (40, "8h"),
        "intent_code": (68, "h"),
        "datatype": (70, "h"),
        "bitpix": (72, "h"),
        "pixdim": (76, "8f"),
        "vox_offset": (108, "f"),
        "scl": (112, "2f"),
        "qform_code": (252, "h"),
        "sform_code": (254, "h"),
        "quatern": (256, "3f"),
        "qoffset": (268, "3f"),
        "srow": (280, "12f"),
    },
    540: {
        "datatype": (12, "h"),
        "bitpix": (14, "h"),
        "dims": (16, "8q"),
        "intent_code": (504, "i"),
        "pixdim": (104, "8d"),
        "vox_offset": (168, "q"),
        "scl": (176, "2d"),
        "qform_code": (344, "i"),
        "sform_code": (348, "i"),
        "quatern": (352, "3d"),
        "qoffset": (376, "3d"),
        "srow": (400, "12d"),
    },
}


def _parse_header(header: bytes, path: str) -> Dict[str, object]:
    """The fields tfreg needs from the first (up to) 540 bytes of a single-file NIfTI."""
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0] if len(header) >= 4 else 0
        if size in _LAYOUT and len(header) >= size:
            break
    else:
        raise DataError(f"{path} is not a NIfTI file (no valid NIfTI-1/2 header): corrupt or truncated")
    fields = {}
    for name, (offset, fmt) in _LAYOUT[size].items():
        values = struct.unpack_from(order + fmt, header, offset)
        fields[name] = values if len(values) > 1 else values[0]
    dims, bitpix = fields["dims"], fields["bitpix"]
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0 or any(d < 0 for d in dims[1 : ndim + 1]):
        raise DataError(f"{path} has a corrupt NIfTI header (dim={list(dims)}, bitpix={bitpix})")
    shape = tuple(max(int(d), 1) for d in dims[1 : ndim + 1])
    vox_offset = max(int(fields["vox_offset"]), size + 4)
    num_voxels = int(np.prod(shape, dtype=np.int64))
    slope, inter = fields["scl"]
    fields.update(
        order=order,
        shape=shape,
        num_voxels=num_voxels,
        vox_offset=vox_offset,
        data_end=vox_offset + num_voxels * bitpix // 8,
        # nibabel's and ITK's rule: a zero or non-finite slope means no scaling
        scaled=bool(np.isfinite(slope) and slope != 0 and (slope != 1 or inter != 0)),
        slope=float(slope),
        inter=float(inter),
    )
    return fields


def _is_gzip(path: str) -> bool:
    return str(path).lower().endswith(".gz")


def read_nifti_header(path: str) -> Dict[str, object]:
    """The parsed header of ``path``; DataError naming ``path`` if it is unreadable."""
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as stream:
            header = stream.read(540)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"could not read image file {path}: {err}") from err
    return _parse_header(header, path)


def check_nifti_complete(path: str) -> Dict[str, object]:
    """Raise DataError naming ``path`` when a NIfTI file is shorter than its header says; returns the header."""
    path = str(path)
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
            raw.seek(0, os.SEEK_END)
            size = raw.tell()
            if _is_gzip(path):
                if magic != b"\x1f\x8b" or size < 18:
                    raise DataError(f"{path} is not a gzip file: corrupt or truncated")
                raw.seek(size - 4)
                isize = struct.unpack("<I", raw.read(4))[0]
    except OSError as err:
        raise DataError(f"could not read image file {path}: {err}") from err
    header = read_nifti_header(path)
    expected = header["data_end"]
    if _is_gzip(path):
        if isize != expected % 2**32:
            raise DataError(
                f"{path} is truncated or corrupt: its gzip stream holds {isize} bytes, "
                f"the NIfTI header needs {expected}"
            )
    elif size < expected:
        raise DataError(f"{path} is truncated: {size} bytes, the NIfTI header needs {expected}")
    return header


def _voxels(path: str, header: Dict[str, object]) -> np.ndarray:
    """The stored voxels, flat, in file order (x fastest), unscaled."""
    code = DATATYPES.get(header["datatype"])
    if code is None:
        raise DataError(f"{path} has NIfTI datatype {header['datatype']}, which tfreg cannot read")
    dtype = np.dtype(header["order"] + code)
    try:
        if _is_gzip(path):
            with open(path, "rb") as raw:
                # one-shot zlib is about twice as fast as streaming through gzip.open
                buffer = zlib.decompress(raw.read(), 16 + zlib.MAX_WBITS)
            data = np.frombuffer(buffer, dtype=dtype, count=header["num_voxels"], offset=header["vox_offset"])
        else:
            data = np.fromfile(path, dtype=dtype, count=header["num_voxels"], offset=header["vox_offset"])
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise DataError(f"could not read image file {path}: {err}") from err
    if data.size != header["num_voxels"]:
        raise DataError(f"{path} is truncated: fewer voxels than its NIfTI header says")
    return data


def count_non_finite(path: str, header: Optional[Dict[str, object]] = None) -> int:
    """Number of NaN/infinite voxels in a float NIfTI file (0 for integer datatypes, without reading)."""
    header = header or read_nifti_header(path)
    if header["datatype"] not in FLOAT_DATATYPES:
        return 0
    data = _voxels(path, header)
    return int(data.size - np.count_nonzero(np.isfinite(data)))


def read_unscaled_voxels(path: str, header: Dict[str, object], shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """The voxels of an unscaled NIfTI file (integer or float) as an ``(i, j, k[, c])`` array of ``shape``,
    in the file's dtype, or None.

    ``shape`` is what SimpleITK reports; NIfTI stores x fastest, so the flat voxels reshape to it in
    Fortran order, including 4-D label files and 5-D vector files (``(x, y, z, 1, c)``, reported as
    ``(x, y, z, c)``). None (use SimpleITK) for scaled data, a datatype outside :data:`DATATYPES` (RGB,
    complex), or when the sizes disagree.
    """
    if header["datatype"] not in DATATYPES or header["scaled"]:
        return None
    if int(np.prod(shape, dtype=np.int64)) != header["num_voxels"]:
        return None
    return _voxels(path, header).reshape(shape, order="F")


def _array_shape(header: Dict[str, object]) -> Tuple[int, ...]:
    """SimpleITK's view of the shape: a 5-D ``(x, y, z, 1, c)`` vector file is ``(x, y, z, c)``;
    trailing axes of size 1 beyond the third are dropped."""
    shape = list(header["shape"])
    if len(shape) == 5 and shape[3] == 1:
        del shape[3]
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    return tuple(shape)


def _quaternion_matrix(b: float, c: float, d: float) -> np.ndarray:
    a = np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )


def header_geometry(header: Dict[str, object]) -> ImageGeometry:
    """ITK-convention (LPS) geometry of the first (at most 3) axes: sform, else qform, else pixdim."""
    ndim = min(len(header["shape"]), 3)
    pixdim = np.asarray(header["pixdim"], dtype=np.float64)
    if header["sform_code"] > 0:
        srow = np.asarray(header["srow"], dtype=np.float64).reshape(3, 4)
        matrix, offset = srow[:, :3], srow[:, 3]
    elif header["qform_code"] > 0:
        qfac = -1.0 if pixdim[0] < 0 else 1.0
        matrix = _quaternion_matrix(*header["quatern"]) @ np.diag([pixdim[1], pixdim[2], qfac * pixdim[3]])
        offset = np.asarray(header["qoffset"], dtype=np.float64)
    else:
        matrix, offset = np.diag(np.where(pixdim[1:4] > 0, pixdim[1:4], 1.0)), np.zeros(3)
    spacing = np.linalg.norm(matrix, axis=0)
    spacing = np.where(spacing > 0, spacing, 1.0)
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    direction = ras_to_lps @ (matrix / spacing)
    origin = ras_to_lps @ offset
    return ImageGeometry(spacing[:ndim], origin[:ndim], direction[:ndim, :ndim])


def read_nifti_info(path: str) -> Tuple[Tuple[int, ...], ImageGeometry]:
    """Shape (SimpleITK's convention) and geometry from the header alone."""
    header = check_nifti_complete(path)
    return _array_shape(header), header_geometry(header)


def read_nifti(path: str) -> Tuple[np.ndarray, ImageGeometry]:
    """Voxels (``(i, j, k[, c])``, scaled by ``scl_slope``/``scl_inter`` when set) and geometry."""
    header = check_nifti_complete(path)
    data = _voxels(path, header).reshape(_array_shape(header), order="F")
    if header["scaled"]:
        data = data * header["slope"] + header["inter"]
    return data, header_geometry(header)


__all__ = [
    "check_nifti_complete",
    "count_non_finite",
    "read_unscaled_voxels",
    "read_nifti",
    "read_nifti_info",
    "read_nifti_header",
    "header_geometry",
    "DATATYPES",
    "FLOAT_DATATYPES",
]
