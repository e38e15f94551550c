"""The ``h5`` file loader: DeepReg's HDF5 layout, one flat file per name (``<dir>/<name>.h5``).

Each top-level dataset is one image (``(i, j, k)``) or label (``(i, j, k)`` or ``(i, j, k, c)``). IDs and
order are DeepReg's:

- not grouped: key ``k`` of folder ``dir`` has ID ``(dir, k)``; folders in config order, keys sorted as
  strings within each file;
- grouped: keys must be ``group-<G>-<I>`` (``G``, ``I`` without ``-``); ID ``(dir, G, I)``, group
  ``(dir, G)``; groups sorted as strings (``group-10-*`` before ``group-2-*``), images in a group in key
  order.

DeepReg's HDF5 files have no geometry: it is identity (spacing 1 mm). tfreg's converter
(``data_scripts/nifti_to_h5.py``) stores the source's geometry as dataset attributes ``spacing``,
``origin`` and ``direction`` (row-major), which this loader reads back; DeepReg ignores them.
"""

from __future__ import annotations

import os
import re
from typing import List, Optional

import h5py
import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders.base import FileLoader, format_list
from tfreg.data.geometry import ImageGeometry
from tfreg.registry import REGISTRY

#: Grouped keys: ``group-<G>-<I>``.
GROUPED_KEY_PATTERN = re.compile(r"^group-([^-]+)-([^-]+)$")
GEOMETRY_ATTRIBUTES = ("spacing", "origin", "direction")


def geometry_from_attrs(attrs) -> Optional[ImageGeometry]:
    """The geometry stored in an HDF5 object's attributes, or None when they are absent."""
    if not all(name in attrs for name in GEOMETRY_ATTRIBUTES):
        return None
    return ImageGeometry.from_dict({name: np.asarray(attrs[name]) for name in GEOMETRY_ATTRIBUTES})


@REGISTRY.register_file_loader(name="h5")
class H5FileLoader(FileLoader):
    """Datasets of ``<dir>/<name>.h5`` for every folder in ``dir_paths``; files stay open until :meth:`close`."""

    format_name = "HDF5"

    def __init__(self, dir_paths: List[str], name: str, grouped: bool):
        super().__init__(dir_paths=dir_paths, name=name, grouped=grouped)
        self._files = {}
        try:
            for dir_path in self.dir_paths:
                path = os.path.join(dir_path, name + ".h5")
                if not os.path.isfile(path):
                    raise DataNotFoundError(f"HDF5 file {path} does not exist")
                try:
                    h5_file = h5py.File(path, "r")
                except OSError as err:
                    raise DataError(f"could not open HDF5 file {path} (corrupt or not HDF5): {err}") from err
                self._files[dir_path] = h5_file
                keys = sorted(h5_file.keys())
                if not keys:
                    raise DataNotFoundError(f"HDF5 file {path} holds no dataset")
                not_datasets = [k for k in keys if not isinstance(h5_file.get(k), h5py.Dataset)]
                if not_datasets:
                    raise DataError(
                        f"HDF5 file {path} must hold flat datasets (one per image), but keys "
                        f"{format_list(not_datasets)} are groups or links"
                    )
                if grouped:
                    bad = [k for k in keys if not GROUPED_KEY_PATTERN.match(k)]
                    if bad:
                        raise DataError(
                            f"grouped HDF5 file {path} must have keys of the form group-<G>-<I> "
                            f"(e.g. group-1-1), got {format_list(bad)}"
                        )
                for key in keys:
                    entry = {"key": key, "dir": dir_path, "source": f"{path}:{key}"}
                    if grouped:
                        group, image = GROUPED_KEY_PATTERN.match(key).groups()
                        entry["id"] = (dir_path, group, image)
                        entry["group_id"] = (dir_path, group)
                    else:
                        entry["id"] = (dir_path, key)
                    self._entries.append(entry)
            self._finish()
        except BaseException:
            self.close()
            raise

    def _dataset(self, entry) -> h5py.Dataset:
        h5_file = self._files.get(entry["dir"])
        if h5_file is None or not h5_file.id.valid:
            raise DataError(f"cannot read {entry['source']}: the file loader was closed")
        return h5_file[entry["key"]]

    def _read(self, entry):
        try:
            dataset = self._dataset(entry)
            array = np.asarray(dataset[()], dtype=np.float32)
            geometry = geometry_from_attrs(dataset.attrs)
        except (OSError, KeyError, TypeError, ValueError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(f"could not read {entry['source']} (corrupt or truncated HDF5 data): {err}") from err
        return array, geometry

    def _read_info(self, entry):
        try:
            dataset = self._dataset(entry)
            return tuple(dataset.shape), geometry_from_attrs(dataset.attrs)
        except (OSError, KeyError) as err:
            raise DataError(f"could not read {entry['source']}: {err}") from err

    def close(self) -> None:
        """Close the HDF5 files."""
        for h5_file in self._files.values():
            try:
                h5_file.close()
            except Exception:  # closing twice, or a file that failed half-way: nothing left to release
                pass


__all__ = ["H5FileLoader", "GROUPED_KEY_PATTERN", "geometry_from_attrs"]
