"""DeepReg's classical demos on fixtures written in the downloaded files' layout (no network).

demo_data.py's conversion is checked against the fixture's arrays; demo_register.py's result against the
transform that made the pair, computed here: the affine demo must recover its random affine map, the
non-rigid one a known smooth displacement.
"""

import hashlib
import json
import os

import h5py
import numpy as np
import pytest
from scipy import ndimage

from demos import classical_demo
from demos.classical_ct_headneck_affine import demo_data as affine_data
from demos.classical_ct_headneck_affine import demo_register as affine_register
from demos.classical_mr_prostate_nonrigid import demo_data as nonrigid_data
from demos.classical_mr_prostate_nonrigid import demo_register as nonrigid_register
from tfreg.data.errors import DataError
from tfreg.data.image_io import read_image


def voxel_grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)


def sample(volume, points):
    """``volume`` at ``points`` (``(*S, 3)`` voxel coordinates): linear, 0 outside (SciPy, not tfreg)."""
    return ndimage.map_coordinates(volume, np.moveaxis(points, -1, 0), order=1, mode="constant", cval=0.0)


def body_phantom(shape, seed, organs):
    """A textured body on a zero background with ``organs`` brighter ellipsoids (the labels)."""
    rng = np.random.default_rng(seed)
    grid, centre = voxel_grid(shape), (np.asarray(shape) - 1) / 2.0
    inside = lambda c, r: (((grid - c) / r) ** 2).sum(-1) < 1  # noqa: E731
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    image = inside(centre, 0.4 * np.asarray(shape)) * (0.3 + 0.05 * texture / texture.std())
    labels = []
    for k in range(organs):
        organ = inside(centre + (k - 0.5) * np.array([0.15, 0.1, 0.0]) * shape, np.array([0.16, 0.13, 0.16]) * shape)
        image = image + 0.3 * organ
        labels.append(organ)
    image = ndimage.gaussian_filter(image, 1.0)
    return image.astype(np.float32), np.stack(labels, -1).astype(np.float32)


def write_h5(path, arrays):
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)


# ---------------------------------------------------------------------------------------------- affine
AFFINE_SHAPE = (40, 40, 24)


@pytest.fixture
def head_neck(tmp_path):
    """DeepReg's demo.h5 layout: ``image`` (X, Y, Z) in CT units, ``label`` (X, Y, Z, 2)."""
    image, labels = body_phantom(AFFINE_SHAPE, seed=0, organs=2)
    path = str(tmp_path / "demo.h5")
    write_h5(path, {"image": 2000.0 * image - 1000.0, "label": labels})
    return path, 2000.0 * image - 1000.0, labels


def test_affine_demo_data_converts_deepregs_file(tmp_path, head_neck, monkeypatch):
    path, image, labels = head_neck
    folder = tmp_path / "demo"
    assert affine_data.main(["--source", path, "--dir", str(folder)]) == 0
    fixed, _ = read_image(str(folder / "dataset" / "fixed_image.nii.gz"))
    label, _ = read_image(str(folder / "dataset" / "fixed_label.nii.gz"))
    np.testing.assert_allclose(fixed, (image - image.min()) / (image.max() - image.min()), atol=1e-6)
    np.testing.assert_array_equal(label, labels)
    record = json.load(open(folder / "dataset" / "conversion.json"))
    assert record["source_sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert record["files"] == {"fixed_image.nii.gz": list(AFFINE_SHAPE), "fixed_label.nii.gz": [*AFFINE_SHAPE, 2]}
    assert os.path.isfile(folder / "dataset" / "checksums.sha256")
    assert affine_data.main(["--source", path, "--dir", str(folder)]) == 1  # dataset/ exists: --overwrite

    # no network and no file: the download command is printed, nothing is written
    monkeypatch.setattr(classical_demo, "network_available", lambda host: False)
    assert affine_data.main(["--dir", str(tmp_path / "offline")]) == 2
    assert not os.path.exists(tmp_path / "offline" / "dataset")


def test_demo_data_downloads_through_the_shared_checked_download(tmp_path, monkeypatch):
    # a file:// address stands in for DeepReg's GitHub one (no network here)
    published = tmp_path / "published" / "demo.h5"
    published.parent.mkdir()
    published.write_bytes(b"not really HDF5, only bytes to fetch")
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    monkeypatch.setattr(classical_demo, "network_available", lambda host: True)
    converted = []

    def convert(source, dataset):
        converted.append(source)
        return {"files": {"fixed_image.nii.gz": [1]}}

    args = dict(doc="demo", name="demo", url=published.as_uri(), convert=convert, synthetic=None)
    assert classical_demo.data_main(["--dir", str(tmp_path / "demo")], sha256=digest, **args) == 0
    kept = tmp_path / "demo" / "dataset_source" / "demo.h5"
    assert kept.read_bytes() == published.read_bytes() and converted == [str(kept)]
    # a download whose SHA-256 differs is refused and not kept under the file's name
    with pytest.raises(DataError, match="SHA-256"):
        classical_demo.data_main(["--dir", str(tmp_path / "bad")], sha256="f" * 64, **args)
    assert not os.path.exists(tmp_path / "bad" / "dataset_source" / "demo.h5")


def test_affine_demo_data_refuses_a_file_without_labels(tmp_path):
    path = str(tmp_path / "demo.h5")
    write_h5(path, {"image": np.ones((8, 8, 8), np.float32)})
    with pytest.raises(DataError, match=r"demo.h5: no dataset 'label'"):
        affine_data.main(["--source", path, "--dir", str(tmp_path / "demo")])
    assert not os.path.exists(tmp_path / "demo" / "dataset")


def test_affine_demo_register_needs_demo_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="demo_data.py"):
        affine_register.main(["--dir", str(tmp_path), "--test", "-q"])


def test_affine_demo_recovers_the_random_affine(tmp_path, head_neck):
    path, _, _ = head_neck
    folder = tmp_path / "demo"
    assert affine_data.main(["--source", path, "--dir", str(folder)]) == 0
    assert affine_register.main(["--dir", str(folder), "-q", "--seed", "3"]) == 0  # the full run: 300 steps
    (run,) = [folder / "logs_reg" / name for name in os.listdir(folder / "logs_reg")]
    fixed, _ = read_image(str(folder / "dataset" / "fixed_image.nii.gz"))
    moving, _ = read_image(str(run / "moving_image.nii.gz"))
    matrix = np.loadtxt(run / "affine.txt")
    grid = voxel_grid(AFFINE_SHAPE)
    # the simulated pair is moving(p) = fixed(M p)
    np.testing.assert_allclose(moving, sample(fixed, grid @ matrix[:3, :3].T + matrix[:3, 3]), atol=1e-4)
    # the answer: fixed voxel p maps to M^-1 p; scored where that lies inside the moving image
    inverse = np.linalg.inv(matrix)
    answer = grid @ inverse[:3, :3].T + inverse[:3, 3] - grid
    valid = np.all((grid + answer >= 0) & (grid + answer <= np.asarray(AFFINE_SHAPE) - 1), -1)
    ddf, _ = read_image(str(run / "registration" / "ddf.nii.gz"))
    error = np.linalg.norm(ddf - answer, axis=-1)[valid]
    identity = np.linalg.norm(answer, axis=-1)[valid]
    assert identity.mean() > 2.0  # the transform moves the anatomy by several voxels
    # The floor is set by interpolation: the moving image is a linear resampling of the fixed one, and the
    # registration resamples it again. At full resolution (the default level) this phantom gives a mean of
    # 0.04 voxel and a maximum of 0.09; the bounds leave a factor of about 2.5 and stay far below the half
    # voxel at which nearest-voxel labels would change.
    assert error.mean() < 0.1 and error.max() < 0.25
    results = json.load(open(run / "results.json"))
    assert results["ddf_error_voxels"]["mean"] == pytest.approx(error.mean(), rel=1e-4)
    assert min(results["labels"]["dice_after"]) > 0.95 > max(results["labels"]["dice_before"])


# ---------------------------------------------------------------------------------------------- non-rigid
NONRIGID_SHAPE = (40, 40, 24)


@pytest.fixture
def prostate_pair(tmp_path):
    """DeepReg's demo2.h5 layout; the fixed image is the moving one under a known smooth displacement ``u``:
    ``fixed(p) = moving(p + u(p))``."""
    moving, labels = body_phantom(NONRIGID_SHAPE, seed=1, organs=1)
    rng = np.random.default_rng(2)
    u = np.stack([ndimage.gaussian_filter(rng.normal(size=NONRIGID_SHAPE), 5.0) for _ in range(3)], -1)
    u *= 3.0 / np.abs(u).max()
    points = voxel_grid(NONRIGID_SHAPE) + u
    fixed = sample(moving, points)
    fixed_label = (sample(labels[..., 0], points) > 0.5).astype(np.float32)
    arrays = {"image0": 300 * moving, "label0": labels[..., 0], "image1": 300 * fixed, "label1": fixed_label}
    path = str(tmp_path / "demo2.h5")
    write_h5(path, arrays)
    return path, arrays, u


def test_nonrigid_demo_data_converts_deepregs_file(tmp_path, prostate_pair):
    path, arrays, _ = prostate_pair
    folder = tmp_path / "demo"
    assert nonrigid_data.main(["--source", path, "--dir", str(folder)]) == 0
    for key, name in [("image0", "moving_image"), ("label0", "moving_label"), ("image1", "fixed_image")]:
        converted, _ = read_image(str(folder / "dataset" / f"{name}.nii.gz"))
        np.testing.assert_allclose(converted, arrays[key], rtol=1e-6)
    bad = str(tmp_path / "bad.h5")
    write_h5(bad, {**arrays, "label1": 2.0 * arrays["label1"]})
    with pytest.raises(DataError, match=r"dataset 'label1' must hold values in \[0, 1\]"):
        nonrigid_data.main(["--source", bad, "--dir", str(tmp_path / "bad")])


def test_nonrigid_demo_recovers_a_smooth_deformation(tmp_path, prostate_pair):
    path, arrays, u = prostate_pair
    folder = tmp_path / "demo"
    assert nonrigid_data.main(["--source", path, "--dir", str(folder)]) == 0
    assert nonrigid_register.main(["--dir", str(folder), "--test", "-q"]) == 0
    (run,) = [folder / "logs_reg" / name for name in os.listdir(folder / "logs_reg")]
    results = json.load(open(run / "results.json"))
    (before,), (after,) = results["labels"]["dice_before"], results["labels"]["dice_after"]
    assert after > before + 0.05 and after > 0.93
    # the displacement error inside the gland (a dense TRE) at least halves against the identity's
    ddf, _ = read_image(str(run / "registration" / "ddf.nii.gz"))
    gland = arrays["label1"] > 0.5
    error = np.linalg.norm(ddf - u, axis=-1)[gland].mean()
    identity = np.linalg.norm(u, axis=-1)[gland].mean()
    assert error < 0.5 * identity
    assert results["labels"]["centroid_after"][0] < results["labels"]["centroid_before"][0]
    assert results["folding_fraction"] < 0.01
