"""File loaders for one-image-per-file formats read by SimpleITK: ``sitk``, ``mha``, ``nrrd`` (and ``nifti``).

Files are found recursively under ``<dir>/<name>/`` (as DeepReg's NIfTI loader did, with
``glob("**/*.<suffix>")``: hidden files and folders are skipped, links are followed). Data IDs and order
are DeepReg's:

- not grouped: a file ``<dir>/<name>/<rel>.<suffix>`` has ID ``(dir, rel)``; order ``sorted((dir, rel,
  suffix))`` over all folders (folders sort by their path string, not in config order);
- grouped: ``<dir>/<name>/<group>/<file>.<suffix>`` has ID ``(dir, group, file)`` and group ``(dir,
  group)``; groups sort by ``(dir, group)`` as strings (``group10`` before ``group2``).

So ``case1.nii`` and ``case1.nii.gz`` have the same ID and match each other across folders; both in
the same folder is an error.

Registered names: ``sitk`` reads every suffix in :data:`SITK_SUFFIXES`; ``mha`` reads ``.mha``/``.mhd``;
``nrrd`` reads ``.nrrd``/``.nhdr``; ``nifti`` (in :mod:`tfreg.data.file_loaders.nifti`) ``.nii.gz``/``.nii``.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Tuple

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders.base import FileLoader, check_dir_exists
from tfreg.data.image_io import read_image, read_image_info
from tfreg.registry import REGISTRY

#: Suffixes (without the dot) the ``sitk`` loader looks for. Two-file formats are found by their header
#: (``.mhd``, ``.nhdr``, ``.hdr``), never by their data file (``.raw``, ``.img``).
SITK_SUFFIXES = ("nii.gz", "nii", "mha", "mhd", "nrrd", "nhdr", "gipl.gz", "gipl", "hdr", "vtk", "mnc")


def find_files(folder: str, suffixes: Tuple[str, ...]) -> List[Tuple[str, str]]:
    """``(relative path without suffix, suffix)`` of every file under ``folder`` ending in a suffix.

    Sorted, recursive. A file matching two suffixes (``a.gipl.gz`` and ``.gz``) is listed under the
    longest one only.
    """
    found: Dict[str, Tuple[str, str]] = {}
    for suffix in sorted(suffixes, key=len):  # longer suffixes last, so they win
        for path in glob.glob(os.path.join(glob.escape(folder), "**", "*." + suffix), recursive=True):
            if os.path.isfile(path):
                rel = os.path.relpath(path, folder)
                found[rel] = (rel[: -(len(suffix) + 1)], suffix)
    _refuse_duplicates(folder, sorted(found))
    return sorted(found.values())


def _refuse_duplicates(folder: str, relative_paths: List[str]) -> None:
    """DataError when one file is found under several paths: a symlink loop (``loop -> .``) or a linked
    folder inside ``folder`` would make copies of every sample."""
    seen: Dict[str, str] = {}
    for rel in relative_paths:
        real = os.path.realpath(os.path.join(folder, rel))
        if real in seen:
            raise DataError(
                f"{folder}: the file {real} is found twice, as {seen[real]} and {rel}: a symbolic link inside the "
                "folder (a loop such as 'loop -> .', or a link to another data folder) would duplicate samples; "
                "remove the link"
            )
        seen[real] = rel


class SimpleITKFileLoader(FileLoader):
    """One image per file, any format SimpleITK reads; geometry from the file's header."""

    suffixes: Tuple[str, ...] = SITK_SUFFIXES
    format_name = "SimpleITK"

    def __init__(self, dir_paths: List[str], name: str, grouped: bool):
        super().__init__(dir_paths=dir_paths, name=name, grouped=grouped)
        splits = []
        for dir_path in self.dir_paths:
            folder = os.path.join(dir_path, name)
            check_dir_exists(folder, f"{self.format_name} {name!r}")
            files = find_files(folder, self.suffixes)
            if not files:
                raise DataNotFoundError(
                    f"no {self.format_name} file ({', '.join('.' + s for s in self.suffixes)}) found in {folder}"
                )
            for rel, suffix in files:
                if grouped:
                    group, file_name = os.path.split(rel)
                    if not group:
                        raise DataError(
                            f"grouped data must be stored as {name}/<group>/<file>, but "
                            f"{os.path.join(folder, rel + '.' + suffix)} is directly in {folder}"
                        )
                    splits.append((dir_path, group, file_name, suffix))
                else:
                    splits.append((dir_path, rel, suffix))
        for split in sorted(splits):
            *id_parts, suffix = split
            entry: Dict[str, Any] = {
                "id": tuple(id_parts),
                "path": os.path.join(id_parts[0], name, *id_parts[1:]) + "." + suffix,
            }
            entry["source"] = entry["path"]
            if grouped:
                entry["group_id"] = tuple(id_parts[:2])
            self._entries.append(entry)
        self._finish()

    def _read(self, entry):
        return read_image(entry["path"])

    def _read_info(self, entry):
        return read_image_info(entry["path"])


@REGISTRY.register_file_loader(name="sitk")
class SITKFileLoader(SimpleITKFileLoader):
    """Every format in :data:`SITK_SUFFIXES` (NIfTI, MetaImage, NRRD, GIPL, Analyze, VTK, MINC)."""


@REGISTRY.register_file_loader(name="mha")
class MetaImageFileLoader(SimpleITKFileLoader):
    """MetaImage files: ``.mha`` (one file) and ``.mhd`` (header next to its raw data)."""

    suffixes = ("mha", "mhd")
    format_name = "MetaImage"


@REGISTRY.register_file_loader(name="nrrd")
class NrrdFileLoader(SimpleITKFileLoader):
    """NRRD files: ``.nrrd`` (one file) and ``.nhdr`` (detached header)."""

    suffixes = ("nrrd", "nhdr")
    format_name = "NRRD"


__all__ = [
    "SimpleITKFileLoader",
    "SITKFileLoader",
    "MetaImageFileLoader",
    "NrrdFileLoader",
    "find_files",
    "SITK_SUFFIXES",
]
