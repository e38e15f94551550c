"""The file-loader interface (DeepReg's ``FileLoader``) and the bookkeeping all file loaders share.

A file loader reads one kind of file (``images``, ``labels``, ``moving_images``, ...) from one or more
split folders. It knows the data IDs (to match moving/fixed and images/labels), the order (which the
samples' ``indices`` refer to) and, for grouped data, the groups. Indices are:

- an ``int`` data index for paired/unpaired data;
- ``(group_index, image_index_in_group)`` for grouped data.

tfreg adds to DeepReg's interface: :meth:`FileLoader.get_geometry` (spacing/origin/direction, so outputs
can be written in the input's physical space), :meth:`FileLoader.get_shape` (from the header, without
reading voxels) and :meth:`FileLoader.get_source` (the file, or ``file.h5:key``, for error messages).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry

Index = Union[int, Tuple[int, int]]


class FileLoader:
    """Reads arrays of one name (e.g. ``"images"``) from a list of split folders.

    Subclasses fill :attr:`_entries` (one per file, in DeepReg's order) in their constructor, then call
    :meth:`_finish`, and implement :meth:`_read` and :meth:`_read_info`.

    Args:
        dir_paths: split folders (e.g. ``["data/train"]``); repeats are an error, as in DeepReg.
        name: which data: a subfolder (NIfTI) or file stem (HDF5) inside each folder.
        grouped: whether the data are grouped (``images/<group>/<file>``, or h5 keys ``group-G-I``).
    """

    #: Human-readable name of the format, for messages.
    format_name = "?"

    def __init__(self, dir_paths: List[str], name: str, grouped: bool):
        if isinstance(dir_paths, (str, os.PathLike)) or not isinstance(dir_paths, (list, tuple)):
            raise ValueError(f"dir_paths must be a list of folder paths, got {dir_paths!r}")
        dir_paths = [str(d) for d in dir_paths]
        if not dir_paths:
            raise ValueError(f"dir_paths is empty: no folder to load {name!r} from")
        if len(set(dir_paths)) != len(dir_paths):
            raise ValueError(f"dir_paths have repeated elements: {dir_paths}")
        # the same folder spelled twice (a trailing slash, '.', a symlink) would double the data
        resolved: Dict[str, str] = {}
        for d in dir_paths:
            real = os.path.realpath(os.path.expanduser(d))
            if real in resolved:
                raise ValueError(
                    f"dir_paths list the same folder twice: {resolved[real]!r} and {d!r} are both {real}; "
                    "every sample would be used twice"
                )
            resolved[real] = d
        self.dir_paths = dir_paths
        self.name = name
        self.grouped = bool(grouped)
        # group_struct[group_index] = list of data indices, as DeepReg's
        self.group_struct: Optional[List[List[int]]] = None
        self._entries: List[Dict[str, Any]] = []
        self._info_cache: Dict[int, Tuple[Tuple[int, ...], ImageGeometry]] = {}

    # ------------------------------------------------------------------ for subclasses
    def _read(self, entry: Dict[str, Any]) -> Tuple[np.ndarray, Optional[ImageGeometry]]:
        """Voxels (float32, ``(i, j, k[, c])``) and geometry (None when the file has none) of one entry."""
        raise NotImplementedError

    def _read_info(self, entry: Dict[str, Any]) -> Tuple[Tuple[int, ...], Optional[ImageGeometry]]:
        """Shape and geometry of one entry, without reading its voxels."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Check IDs are unique and build :attr:`group_struct` from each entry's ``group_id``.

        Each entry is a dict with ``id`` (hashable; DeepReg's data ID), ``source`` (str, for messages)
        and, when grouped, ``group_id`` (sortable). Groups are ordered by sorted ``group_id``; images in
        a group keep the entries' order (DeepReg's rule).
        """
        seen: Dict[Any, str] = {}
        for entry in self._entries:
            if entry["id"] in seen:
                raise DataError(
                    f"two files have the same data ID {entry['id']!r}: {seen[entry['id']]} and {entry['source']}; "
                    f"keep one of them"
                )
            seen[entry["id"]] = entry["source"]
        if self.grouped:
            groups: Dict[Any, List[int]] = {}
            for data_index, entry in enumerate(self._entries):
                groups.setdefault(entry["group_id"], []).append(data_index)
            self.group_struct = [groups[key] for key in sorted(groups)]

    # ------------------------------------------------------------------ index handling
    def data_index(self, index: Index) -> int:
        """The flat data index of ``index`` (an int, or ``(group, image)`` when grouped)."""
        if isinstance(index, (tuple, list)) or (isinstance(index, np.ndarray) and index.ndim == 1):
            if not self.grouped:
                raise ValueError(f"{self.name}: a (group, image) index {tuple(index)} needs grouped data")
            if len(index) != 2:
                raise ValueError(f"{self.name}: a grouped index is (group, image), got {tuple(index)}")
            group, image = (int(i) for i in index)
            if not 0 <= group < len(self.group_struct):
                raise IndexError(f"{self.name}: group index {group} out of range [0, {len(self.group_struct)})")
            members = self.group_struct[group]
            if not 0 <= image < len(members):
                raise IndexError(f"{self.name}: image index {image} out of range [0, {len(members)}) in group {group}")
            return members[image]
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"{self.name}: an index must be an int or (group, image), got {index!r}")
        if self.grouped:
            raise ValueError(f"{self.name}: grouped data are indexed by (group, image), got {index!r}")
        index = int(index)
        if not 0 <= index < len(self._entries):
            raise IndexError(f"{self.name}: data index {index} out of range [0, {len(self._entries)})")
        return index

    # ------------------------------------------------------------------ DeepReg's interface
    def get_data(self, index: Index) -> np.ndarray:
        """The array at ``index``, float32, ``(i, j, k)`` or ``(i, j, k, c)``.

        As in DeepReg, a 4-D array with one channel is squeezed to 3-D.

        Raises:
            DataError: naming the file (and key) when it cannot be read.
        """
        entry = self._entries[self.data_index(index)]
        array, _ = self._read(entry)
        array = np.asarray(array, dtype=np.float32)
        if array.ndim == 4 and array.shape[3] == 1:
            array = array[..., 0]
        return array

    def get_data_ids(self) -> List:
        """The data IDs in data-index order, to check moving/fixed and images/labels correspond."""
        return [entry["id"] for entry in self._entries]

    def get_num_images(self) -> int:
        """Number of files (or h5 keys) over all folders."""
        return len(self._entries)

    def get_num_groups(self) -> int:
        """Number of groups (grouped data only)."""
        if self.group_struct is None:
            raise ValueError(f"{self.name}: get_num_groups needs grouped data")
        return len(self.group_struct)

    def get_num_images_per_group(self) -> List[int]:
        """Number of images in each group, in group order (grouped data only)."""
        if self.group_struct is None:
            raise ValueError(f"{self.name}: get_num_images_per_group needs grouped data")
        return [len(members) for members in self.group_struct]

    def close(self) -> None:
        """Release open file handles (HDF5); loading after close is an error."""

    # ------------------------------------------------------------------ tfreg additions
    def get_source(self, index: Index) -> str:
        """Where the data at ``index`` lives: a file path, or ``path.h5:key``."""
        return self._entries[self.data_index(index)]["source"]

    def get_shape(self, index: Index) -> Tuple[int, ...]:
        """The array shape at ``index`` as :meth:`get_data` would return it before squeezing, from the header."""
        return self._info(self.data_index(index))[0]

    def get_geometry(self, index: Index) -> ImageGeometry:
        """Spacing (mm), origin (mm) and direction of the data at ``index``.

        Files without geometry (DeepReg's HDF5 files) get spacing 1 mm, origin 0, identity direction.
        """
        return self._info(self.data_index(index))[1]

    def _info(self, data_index: int) -> Tuple[Tuple[int, ...], ImageGeometry]:
        if data_index not in self._info_cache:
            shape, geometry = self._read_info(self._entries[data_index])
            if geometry is None:
                geometry = ImageGeometry.identity(max(1, min(len(shape), 3)))
            self._info_cache[data_index] = (tuple(int(s) for s in shape), geometry)
        return self._info_cache[data_index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dir_paths={self.dir_paths!r}, name={self.name!r}, grouped={self.grouped}, "
            f"num_images={len(self._entries)})"
        )


def check_dir_exists(path: str, what: str) -> None:
    """DataNotFoundError naming ``path`` when it is not an existing folder."""
    if not os.path.isdir(path):
        raise DataNotFoundError(f"{what} folder {path} does not exist")


def format_list(items: Sequence[Any], limit: int = 5) -> str:
    """``[a, b, c, ... (12 in all)]``: short lists for error messages."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]" + (
        f" ({len(items)} in all)" if len(items) > limit else ""
    )


__all__ = ["FileLoader", "Index", "check_dir_exists", "format_list"]
