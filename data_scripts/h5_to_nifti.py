"""Convert DeepReg HDF5 files back into a NIfTI split folder (the inverse of ``nifti_to_h5.py``).

::

    python data_scripts/h5_to_nifti.py SRC_SPLIT DST_SPLIT [--suffix .nii.gz]

Each ``SRC_SPLIT/<name>.h5`` becomes the folder ``DST_SPLIT/<name>/`` with one file per dataset:

- a dataset with a ``source`` attribute (written by ``nifti_to_h5.py``) gets back its original relative
  path;
- otherwise grouped keys ``group-<G>-<I>`` become ``group<G>/<I>``, and other keys are used as file names
  (``__`` becomes a sub-folder; a trailing ``.nii.gz``/``.nii`` in DeepReg's keys is dropped).

The geometry attributes (``spacing``, ``origin``, ``direction``) are written into the NIfTI header;
without them the geometry is spacing 1 mm, origin 0, identity direction. Files are float32.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import h5py
import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders.h5 import GROUPED_KEY_PATTERN, geometry_from_attrs
from tfreg.data.image_io import save_image


def relative_path(key: str, attrs) -> str:
    """The output path (relative to ``<name>/``, without suffix) of the dataset ``key``."""
    if "source" in attrs:
        source = attrs["source"]
        return source.decode() if isinstance(source, bytes) else str(source)
    match = GROUPED_KEY_PATTERN.match(key)
    if match:
        return os.path.join(f"group{match.group(1)}", match.group(2))
    for suffix in (".nii.gz", ".nii"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key.replace("__", os.sep)


def convert_file(h5_path: str, dst_folder: str, suffix: str = ".nii.gz") -> List[str]:
    """Write every dataset of ``h5_path`` as an image file under ``dst_folder``; returns the paths written."""
    if not os.path.isfile(h5_path):
        raise DataNotFoundError(f"HDF5 file {h5_path} does not exist")
    written = []
    try:
        h5_file = h5py.File(h5_path, "r")
    except OSError as err:
        raise DataError(f"could not open HDF5 file {h5_path}: {err}") from err
    with h5_file:
        for key in sorted(h5_file.keys()):
            dataset = h5_file[key]
            if not isinstance(dataset, h5py.Dataset):
                raise DataError(f"{h5_path}:{key} is not a dataset (DeepReg's HDF5 files are flat)")
            try:
                array = np.asarray(dataset[()], dtype=np.float32)
            except OSError as err:
                raise DataError(f"could not read {h5_path}:{key}: {err}") from err
            path = os.path.join(dst_folder, relative_path(key, dataset.attrs) + suffix)
            geometry = geometry_from_attrs(dataset.attrs)
            save_image(array, path, geometry)
            written.append(path)
    return written


def convert_h5_to_nifti(
    src_dir: str, dst_dir: str, names: Optional[Sequence[str]] = None, suffix: str = ".nii.gz"
) -> Dict[str, List[str]]:
    """Convert every ``<name>.h5`` in ``src_dir`` (or only ``names``); returns ``{name: files written}``."""
    if names is None:
        names = sorted(f[: -len(".h5")] for f in os.listdir(src_dir) if f.endswith(".h5"))
        if not names:
            raise DataNotFoundError(f"no .h5 file found in {src_dir}")
    return {
        name: convert_file(os.path.join(src_dir, name + ".h5"), os.path.join(dst_dir, name), suffix) for name in names
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src_dir", help="folder holding <name>.h5 files")
    parser.add_argument("dst_dir", help="split folder to write <name>/ folders into")
    parser.add_argument("--names", nargs="+", help="which .h5 files (stems) to convert; default: all")
    parser.add_argument("--suffix", default=".nii.gz", help="output suffix: .nii.gz (default), .nii, .mha, .nrrd")
    args = parser.parse_args(argv)
    for name, files in convert_h5_to_nifti(args.src_dir, args.dst_dir, names=args.names, suffix=args.suffix).items():
        print(f"{name}: {len(files)} file(s) in {os.path.join(args.dst_dir, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
