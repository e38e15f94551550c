"""Get DeepReg's prostate MR pair and convert it for the classical non-rigid registration demo.

Run from anywhere::

    python demos/classical_mr_prostate_nonrigid/demo_data.py               # download (when online), convert
    python demos/classical_mr_prostate_nonrigid/demo_data.py --source demo2.h5   # a file downloaded already
    python demos/classical_mr_prostate_nonrigid/demo_data.py --synthetic   # no network: a synthetic pair

The file is DeepReg's ``demo2.h5``: two prostate MR volumes of the MICCAI 2012 PROMISE12 challenge, each
with its gland segmentation. It is downloaded from
``https://github.com/YipengHu/example-data/raw/master/promise12/demo2.h5`` into ``dataset_source/``.
DeepReg publishes no checksum for it: the SHA-256 of the file is printed after the download and kept
in ``dataset/conversion.json``. It holds four datasets on one grid::

    image0, label0   (X, Y, Z)   the moving image (MR intensities) and its gland label
    image1, label1   (X, Y, Z)   the fixed image and its gland label

and is converted (identity geometry: the file has none; intensities unchanged, as DeepReg's demo uses
them) into::

    dataset/moving_image.nii.gz, dataset/moving_label.nii.gz   image0, label0 (float32)
    dataset/fixed_image.nii.gz, dataset/fixed_label.nii.gz     image1, label1 (float32)
    dataset/conversion.json, dataset/checksums.sha256

``--synthetic`` writes a phantom pair instead: the fixed image is the moving one deformed by a random
smooth displacement (Gaussian-smoothed noise, sigma 5 voxels, largest displacement 3 voxels). The
dataset is written into a scratch folder and renamed into place when complete; an existing ``dataset/``
is kept unless ``--overwrite`` is given.
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

NAME = "classical_mr_prostate_nonrigid"
URL = "https://github.com/YipengHu/example-data/raw/master/promise12/demo2.h5"
#: DeepReg publishes no checksum for demo2.h5.
SHA256 = None
#: HDF5 dataset -> converted file.
FILES = {
    "image0": "moving_image.nii.gz",
    "label0": "moving_label.nii.gz",
    "image1": "fixed_image.nii.gz",
    "label1": "fixed_label.nii.gz",
}
#: --synthetic: the phantom's grid (voxels).
SYNTHETIC_SHAPE = (48, 48, 32)


def convert(source: str, dataset: str) -> dict:
    """Convert DeepReg's ``demo2.h5`` at ``source`` into ``dataset`` (module docstring); returns the record.

    Raises:
        DataError: naming the file and dataset: a missing key, not 3-D, NaN values, labels outside [0, 1],
            or datasets on different grids.
    """
    arrays = classical_demo.read_h5(source, {key: 3 for key in FILES})
    classical_demo.check_same_grid(arrays, source)
    for key in ("label0", "label1"):
        label = arrays[key]
        if label.min() < 0 or label.max() > 1:
            raise DataError(f"{source}: dataset {key!r} must hold values in [0, 1], got [{label.min()}, {label.max()}]")
    files = {target: arrays[key] for key, target in FILES.items()}
    record = classical_demo.source_record(source, URL, files, datasets=FILES)
    classical_demo.write_dataset(source, dataset, files, record)
    return record


def write_synthetic(path: str, seed: int) -> None:
    """A phantom pair in ``demo2.h5``'s layout at ``path`` (module docstring)."""
    from scipy import ndimage

    from tfreg.ops.warp import warp

    rng = np.random.default_rng(seed)
    image, labels = classical_demo.phantom(SYNTHETIC_SHAPE, rng, num_labels=1)
    label = labels[..., 0]
    ddf = np.stack([ndimage.gaussian_filter(rng.normal(size=SYNTHETIC_SHAPE), 5.0) for _ in range(3)], -1)
    ddf = (3.0 / np.abs(ddf).max() * ddf).astype(np.float32)[None]
    fixed = np.asarray(warp(image[None], ddf))[0]
    fixed_label = np.asarray(warp(label[None], ddf))[0] > 0.5
    classical_demo.write_h5(
        path, {"image0": 300.0 * image, "label0": label, "image1": 300.0 * fixed, "label1": fixed_label}
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    return classical_demo.data_main(argv, __doc__, NAME, URL, SHA256, convert, write_synthetic)


if __name__ == "__main__":
    sys.exit(main())
