"""Convert a DeepReg NIfTI split folder (or any SimpleITK format) into DeepReg's HDF5 layout.

::

    python data_scripts/nifti_to_h5.py SRC_SPLIT DST_SPLIT [--grouped] [--format nifti] [--compress]

``SRC_SPLIT`` holds some of ``moving_images``, ``fixed_images``, ``moving_labels``, ``fixed_labels``,
``images``, ``labels`` (folders of files); each becomes ``DST_SPLIT/<name>.h5`` with one dataset per
file, read back by tfreg's (and DeepReg's) ``h5`` file loader with the same IDs and order:

- not grouped: key = the file's path relative to the folder without its suffix (``case000001``;
  sub-folders joined with ``__``, since HDF5 keys must be flat);
- grouped (``images/<group>/<file>``): key ``group-<G>-<I>``, G and I counting groups and images from 1
  in the loader's sorted order, zero-padded so that HDF5's string order is that order.

Each dataset is float32 ``(i, j, k)`` or ``(i, j, k, c)``, with attributes ``spacing``, ``origin``,
``direction`` (the source geometry; tfreg's h5 loader reads them, DeepReg ignores them) and ``source``
(the relative path without suffix, used by ``h5_to_nifti.py`` to restore file names). Files are written
to a temporary name and renamed when complete, so a failed conversion leaves no partial ``.h5``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import h5py
import numpy as np

import tfreg.data  # noqa: F401  (registers the file loaders, until the registry imports them itself)
from tfreg.registry import REGISTRY

#: The folder names of DeepReg's three layouts.
DEEPREG_NAMES = ("moving_images", "fixed_images", "moving_labels", "fixed_labels", "images", "labels")


def h5_key(data_id: Sequence[str]) -> str:
    """The flat HDF5 key of a non-grouped file ID ``(dir, relative path)``."""
    return data_id[-1].replace(os.sep, "__").replace("/", "__")


def grouped_keys(num_images_per_group: Sequence[int]) -> List[List[str]]:
    """``group-<G>-<I>`` keys (1-based, zero-padded to a common width) for each group's images."""
    group_width = len(str(len(num_images_per_group)))
    image_width = len(str(max(num_images_per_group)))
    return [
        [f"group-{g + 1:0{group_width}d}-{i + 1:0{image_width}d}" for i in range(n)]
        for g, n in enumerate(num_images_per_group)
    ]


def convert_folder(
    src_dir: str,
    name: str,
    dst_path: str,
    grouped: bool = False,
    file_format: str = "nifti",
    compression: Optional[str] = None,
) -> int:
    """Write every file of ``src_dir/name`` into the HDF5 file ``dst_path``; returns the number of datasets.

    Raises:
        DataError / DataNotFoundError: naming the offending source file (nothing is written then).
    """
    loader = REGISTRY.get("file_loader_class", file_format)(dir_paths=[src_dir], name=name, grouped=grouped)
    try:
        if grouped:
            keys = grouped_keys(loader.get_num_images_per_group())
            items = [((g, i), keys[g][i]) for g in range(len(keys)) for i in range(len(keys[g]))]
        else:
            items = [(index, h5_key(data_id)) for index, data_id in enumerate(loader.get_data_ids())]
        folder = os.path.join(src_dir, name)
        tmp_path = dst_path + ".tmp"
        os.makedirs(os.path.dirname(os.path.abspath(dst_path)), exist_ok=True)
        try:
            with h5py.File(tmp_path, "w") as h5_file:
                for index, key in items:
                    array = loader.get_data(index)
                    geometry = loader.get_geometry(index)
                    dataset = h5_file.create_dataset(
                        key, data=np.asarray(array, dtype=np.float32), compression=compression
                    )
                    for attr, value in geometry.to_dict().items():
                        dataset.attrs[attr] = np.asarray(value, dtype=np.float64)
                    source = os.path.relpath(loader.get_source(index), folder)
                    dataset.attrs["source"] = _strip_suffix(source)
            os.replace(tmp_path, dst_path)
        finally:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)
    finally:
        loader.close()
    return len(items)


def convert_nifti_to_h5(
    src_dir: str,
    dst_dir: str,
    grouped: bool = False,
    names: Optional[Sequence[str]] = None,
    file_format: str = "nifti",
    compression: Optional[str] = None,
) -> Dict[str, str]:
    """Convert one split folder; returns ``{name: written .h5 path}``.

    Args:
        src_dir: the split folder (e.g. ``data/nifti/paired/train``).
        dst_dir: where ``<name>.h5`` files are written (created if needed).
        grouped: the data are grouped (``<name>/<group>/<file>``).
        names: which folders to convert; default: those of :data:`DEEPREG_NAMES` present in ``src_dir``.
        file_format: the registered file loader reading the sources (``nifti``, ``sitk``, ``mha``, ...).
        compression: HDF5 compression (``"gzip"``) or None (DeepReg's files were uncompressed).
    """
    if names is None:
        names = [n for n in DEEPREG_NAMES if os.path.isdir(os.path.join(src_dir, n))]
        if not names:
            from tfreg.data.errors import DataNotFoundError

            raise DataNotFoundError(f"no DeepReg data folder ({', '.join(DEEPREG_NAMES)}) found in {src_dir}")
    written = {}
    for name in names:
        path = os.path.join(dst_dir, name + ".h5")
        convert_folder(src_dir, name, path, grouped=grouped, file_format=file_format, compression=compression)
        written[name] = path
    return written


def _strip_suffix(path: str) -> str:
    for suffix in (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".gipl.gz", ".gipl", ".hdr", ".vtk", ".mnc"):
        if path.lower().endswith(suffix):
            return path[: -len(suffix)]
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src_dir", help="split folder holding moving_images/, fixed_images/, ... or images/, labels/")
    parser.add_argument("dst_dir", help="folder for the .h5 files")
    parser.add_argument("--grouped", action="store_true", help="grouped data: <name>/<group>/<file>")
    parser.add_argument("--names", nargs="+", help="folders to convert (default: every DeepReg folder present)")
    parser.add_argument("--format", default="nifti", help="source file loader: nifti (default), sitk, mha, nrrd")
    parser.add_argument("--compress", action="store_true", help="gzip-compress the HDF5 datasets")
    args = parser.parse_args(argv)
    written = convert_nifti_to_h5(
        args.src_dir,
        args.dst_dir,
        grouped=args.grouped,
        names=args.names,
        file_format=args.format,
        compression="gzip" if args.compress else None,
    )
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
