"""What DeepReg's two classical demos share: their one HDF5 file, its conversion, the label summary.

The demos are ``classical_ct_headneck_affine`` and ``classical_mr_prostate_nonrigid``. Each downloads one
HDF5 file from DeepReg's example-data repository. ``demo_data.py`` converts the file to NIfTI files that
``tfreg_register`` reads, and ``demo_register.py`` registers them with tfreg's instance optimisation
(:mod:`tfreg.registration`).

Demo folder (``--dir``, default ``demos/<name>``)::

    <dir>/dataset_source/<file>.h5   DeepReg's file as downloaded (or written by demo_data.py --synthetic)
    <dir>/dataset/                   the NIfTI files, conversion.json, checksums.sha256
    <dir>/logs_reg/<timestamp>/      one registration: tfreg_register's output folder and results.json

The download is :func:`demos.deepreg_demo.download` (scratch file, renamed when complete, SHA-256 checked),
shared with the learned demos.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos.deepreg_demo import Release, check_archive, download  # noqa: E402
from demos.staged_demo import clear_dataset, demo_dir, network_available, timestamp  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402

#: Where both files are published (DeepReg's demo_data.py downloads them from there).
HOST = "github.com"
SOURCE_FOLDER = "dataset_source"
DATASET_FOLDER = "dataset"
LOGS_FOLDER = "logs_reg"


def read_h5(path: str, keys: Mapping[str, int]) -> Dict[str, np.ndarray]:
    """The datasets ``keys`` (name -> number of axes) of an HDF5 file, as float32 arrays.

    Raises:
        DataError: naming the file and the key, when the file cannot be read, a key is missing, has another
            number of axes, or holds NaN/infinite values.
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not an HDF5 file h5py can read ({err})") from None
    arrays = {}
    with handle:
        for key, ndim in keys.items():
            if key not in handle:
                raise DataError(f"{path}: no dataset {key!r} (expected keys {sorted(keys)}, found {sorted(handle)})")
            array = np.asarray(handle[key], dtype=np.float32)
            if array.ndim != ndim:
                raise DataError(f"{path}: dataset {key!r} has shape {array.shape}, expected {ndim} axes")
            bad = int(np.sum(~np.isfinite(array)))
            if bad:
                raise DataError(f"{path}: dataset {key!r} has {bad} NaN/infinite values")
            arrays[key] = array
    return arrays


def check_same_grid(arrays: Mapping[str, np.ndarray], path: str) -> None:
    """DataError unless every array has the first one's spatial shape (its first 3 axes)."""
    shapes = {key: array.shape[:3] for key, array in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"{path}: the datasets must share one 3-D grid, got {shapes}")


def write_dataset(source: str, dataset: str, files: Mapping[str, np.ndarray], record: Mapping[str, object]) -> str:
    """Write ``files`` (relative NIfTI path -> array, identity geometry: DeepReg's file has none) into
    ``dataset`` atomically, with ``conversion.json`` (``record``) and a ``checksums.sha256`` manifest."""
    from data_scripts.conversion import PlannedFile, write_tree
    from tfreg.data.image_io import save_image

    def writer(array):
        return lambda target: save_image(array, target)

    plan = [PlannedFile(source=source, target=rel, write=writer(array)) for rel, array in files.items()]
    return write_tree(plan, dataset, record)


def data_main(
    argv: Optional[Sequence[str]],
    doc: str,
    name: str,
    url: str,
    sha256: Optional[str],
    convert: Callable[[str, str], Dict[str, object]],
    synthetic: Callable[[str, int], None],
) -> int:
    """The command line of both ``demo_data.py``: get the HDF5 file (download, ``--source`` or
    ``--synthetic``) and convert it into ``dataset/``.

    Args:
        argv: the arguments (None: ``sys.argv``).
        doc: the script's docstring (its first paragraph is the description).
        name: the demo's folder name.
        url: DeepReg's download address; sha256: its expected digest (None: none is published).
        convert: ``convert(h5 path, dataset folder) -> record`` writes the dataset.
        synthetic: ``synthetic(h5 path, seed)`` writes a synthetic file in the same layout.

    Returns:
        0 when done, 1 when ``dataset/`` exists (``--overwrite`` needed), 2 when the file cannot be fetched.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{name})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--source", default=None, help=f"an already downloaded {os.path.basename(url)}")
    group.add_argument("--synthetic", action="store_true", help="write and convert a synthetic file (no network)")
    parser.add_argument("--seed", type=int, default=0, help="--synthetic: random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset/")
    args = parser.parse_args(argv)

    folder = demo_dir(name, args.dir)
    dataset = os.path.join(folder, DATASET_FOLDER)
    try:
        clear_dataset(dataset, args.overwrite)
    except FileExistsError as err:
        print(f"[demo_data] {err}", file=sys.stderr)
        return 1
    source = args.source
    if args.synthetic:
        source = os.path.join(folder, SOURCE_FOLDER, "synthetic-" + os.path.basename(url))
        synthetic(source, args.seed)
    elif source is None:
        source = os.path.join(folder, SOURCE_FOLDER, os.path.basename(url))
        if not os.path.isfile(source):
            if not network_available(HOST):
                print(
                    f"[demo_data] {HOST} cannot be reached. Download the file with:\n"
                    f"  mkdir -p {os.path.dirname(source)} && wget -O {source} {url}\n"
                    "then rerun this script, or pass --synthetic.",
                    file=sys.stderr,
                )
                return 2
            release = Release(
                url=url,
                filename=os.path.basename(url),
                sha256=sha256,
                checksum_note="given by the demo" if sha256 else "none is published",
            )
            download(release, source)
            digest = check_archive(source, release)
            print(f"[demo_data] {source}: SHA-256 {digest}" + ("" if sha256 else " (no published checksum)"))
    elif not os.path.isfile(source):
        print(f"[demo_data] --source {source}: file does not exist", file=sys.stderr)
        return 2
    record = convert(os.path.abspath(source), dataset)
    print(f"[demo_data] converted {source} into {dataset}: {', '.join(sorted(record['files']))}")
    return 0


def source_record(source: str, url: str, files: Mapping[str, np.ndarray], **extra) -> Dict[str, object]:
    """``conversion.json``: the source file, its SHA-256 and address, the files written with their shapes."""
    from data_scripts.conversion import sha256_of

    return {
        "source": source,
        "source_sha256": sha256_of(source),
        "url": url,
        "files": {rel: list(array.shape) for rel, array in files.items()},
        **extra,
    }


def require_dataset(dataset: str, files: Sequence[str], name: str) -> None:
    """FileNotFoundError naming ``demo_data.py`` when a converted file is missing."""
    missing = [f for f in files if not os.path.isfile(os.path.join(dataset, f))]
    if missing:
        raise FileNotFoundError(
            f"{dataset} lacks {', '.join(missing)}: run python demos/{name}/demo_data.py first "
            "(or with --synthetic, without network)"
        )


def new_run_folder(folder: str) -> str:
    """``<folder>/logs_reg/<timestamp>``, created (a second run in the same second gets ``_2``, ...)."""
    base = os.path.join(folder, LOGS_FOLDER, timestamp())
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}_{n}"
    os.makedirs(path)
    return path


def label_summary(fixed_label: np.ndarray, before: np.ndarray, after: np.ndarray) -> Dict[str, list]:
    """Per label channel: Dice (labels > 0.5) and centroid distance (voxels, DeepReg's "TRE") of the moving
    label before registration (``before``, on the fixed grid) and warped (``after``), against ``fixed_label``.

    Arrays are ``(*S)`` or ``(*S, L)``.
    """
    from tfreg.metrics.landmarks import centroid_distance
    from tfreg.metrics.overlap import dice

    def channels(a):
        return [a] if a.ndim == 3 else [a[..., c] for c in range(a.shape[-1])]

    summary: Dict[str, list] = {"dice_before": [], "dice_after": [], "centroid_before": [], "centroid_after": []}
    for f, b, a in zip(channels(fixed_label), channels(before), channels(after)):
        summary["dice_before"].append(dice(b, f))
        summary["dice_after"].append(dice(a, f))
        summary["centroid_before"].append(centroid_distance(b > 0.5, f > 0.5))
        summary["centroid_after"].append(centroid_distance(a > 0.5, f > 0.5))
    return summary


def phantom(shape: Sequence[int], rng: np.random.Generator, num_labels: int):
    """A synthetic volume for ``--synthetic``: a textured body (an ellipsoid on a zero background, as air
    around a patient) with ``num_labels`` brighter organs and a few unlabelled blobs, smoothed by a
    1-voxel Gaussian. Returns ``(image (*shape) in [0, 1], labels (*shape, num_labels) in {0, 1})``."""
    from scipy import ndimage

    shape = tuple(int(s) for s in shape)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)
    centre = (np.asarray(shape) - 1) / 2.0

    def ellipsoid(c, radii):
        return (((grid - c) / radii) ** 2).sum(-1) < 1.0

    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    image = ellipsoid(centre, 0.4 * np.asarray(shape)) * (0.3 + 0.05 * texture / texture.std())
    labels = []
    for _ in range(num_labels):
        organ = ellipsoid(centre + rng.uniform(-0.12, 0.12, 3) * shape, rng.uniform(0.1, 0.18, 3) * shape)
        image += rng.uniform(0.25, 0.45) * organ
        labels.append(organ)
    for _ in range(4):
        image += rng.uniform(-0.15, 0.3) * ellipsoid(centre + rng.uniform(-0.25, 0.25, 3) * shape, rng.uniform(2, 4, 3))
    image = ndimage.gaussian_filter(image, 1.0)
    image = (image - image.min()) / (image.max() - image.min())
    return image.astype(np.float32), np.stack(labels, -1).astype(np.float32)


def write_h5(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as the datasets of a new HDF5 file (DeepReg's layout: one dataset per key)."""
    import h5py

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(path, "w") as handle:
        for key, array in arrays.items():
            handle.create_dataset(key, data=np.asarray(array, np.float32))


def write_results(run: str, results: Mapping[str, object]) -> str:
    path = os.path.join(run, "results.json")
    with open(path, "w") as handle:
        json.dump(results, handle, indent=1, default=float)
    return path


__all__ = [
    "HOST",
    "read_h5",
    "check_same_grid",
    "write_dataset",
    "data_main",
    "source_record",
    "require_dataset",
    "new_run_folder",
    "label_summary",
    "phantom",
    "write_h5",
    "write_results",
]
