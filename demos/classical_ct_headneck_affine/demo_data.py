"""Get DeepReg's head-and-neck CT example and convert it for the classical affine registration demo.

Run from anywhere::

    python demos/classical_ct_headneck_affine/demo_data.py               # download (when online), convert
    python demos/classical_ct_headneck_affine/demo_data.py --source demo.h5   # a file downloaded already
    python demos/classical_ct_headneck_affine/demo_data.py --synthetic   # no network: a synthetic phantom

The file is DeepReg's ``demo.h5`` (one CT volume of the TCIA Head-Neck-PET-CT collection with two
labels), downloaded from ``https://github.com/YipengHu/example-data/raw/master/hnct/demo.h5`` into
``dataset_source/``. DeepReg publishes no checksum for it: the SHA-256 of the file is printed after the
download and kept in ``dataset/conversion.json``. It holds two datasets::

    image   (X, Y, Z)      CT intensities
    label   (X, Y, Z, 2)   two binary labels

and is converted (identity geometry: the file has none) into::

    dataset/fixed_image.nii.gz    (X, Y, Z) float32, min-max normalised to [0, 1] (as DeepReg's demo does)
    dataset/fixed_label.nii.gz    (X, Y, Z, 2) float32 in {0, 1}
    dataset/conversion.json, dataset/checksums.sha256

The moving image is simulated by ``demo_register.py``. The dataset is written into a scratch folder and
renamed into place when complete; an existing ``dataset/`` is kept unless ``--overwrite`` is given.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import numpy as np

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import classical_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402

NAME = "classical_ct_headneck_affine"
URL = "https://github.com/YipengHu/example-data/raw/master/hnct/demo.h5"
#: DeepReg publishes no checksum for demo.h5.
SHA256 = None
#: The HDF5 datasets and their number of axes.
KEYS = {"image": 3, "label": 4}
FIXED_IMAGE = "fixed_image.nii.gz"
FIXED_LABEL = "fixed_label.nii.gz"
#: --synthetic: the phantom's grid (voxels).
SYNTHETIC_SHAPE = (48, 48, 32)


def convert(source: str, dataset: str) -> dict:
    """Convert DeepReg's ``demo.h5`` at ``source`` into ``dataset`` (module docstring); returns the record.

    Raises:
        DataError: naming the file and dataset: a missing key, wrong axes, NaN values, a constant image,
            labels outside [0, 1], or image and labels on different grids.
    """
    arrays = classical_demo.read_h5(source, KEYS)
    classical_demo.check_same_grid(arrays, source)
    image, label = arrays["image"], arrays["label"]
    low, high = float(image.min()), float(image.max())
    if high <= low:
        raise DataError(f"{source}: dataset 'image' is constant ({low}); it cannot be normalised")
    if label.min() < 0 or label.max() > 1:
        raise DataError(f"{source}: dataset 'label' must hold values in [0, 1], got [{label.min()}, {label.max()}]")
    files = {FIXED_IMAGE: (image - low) / (high - low), FIXED_LABEL: label}
    record = classical_demo.source_record(source, URL, files, normalisation={"min": low, "max": high})
    classical_demo.write_dataset(source, dataset, files, record)
    return record


def write_synthetic(path: str, seed: int) -> None:
    """A phantom in ``demo.h5``'s layout (CT-like intensities, two labels) at ``path``."""
    image, labels = classical_demo.phantom(SYNTHETIC_SHAPE, np.random.default_rng(seed), num_labels=2)
    classical_demo.write_h5(path, {"image": 2000.0 * image - 1000.0, "label": labels})


def main(argv: Optional[Sequence[str]] = None) -> int:
    return classical_demo.data_main(argv, __doc__, NAME, URL, SHA256, convert, write_synthetic)


if __name__ == "__main__":
    sys.exit(main())
