"""The MNI152 brain demo's data generator (demos/mni152_brain/demo_data.py) on a tiny grid.

A 14 x 16 x 14 grid of 12 mm voxels holds the whole brain in a few thousand voxels, so building a
dataset takes about a second; the ground-truth checks use one pair on the demo's own 4 mm grid, where
interpolation errors are small enough to test the geometry of the deformations.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nilearn")

from tfreg.data.image_io import read_image  # noqa: E402
from tfreg.data.load import get_data_loader  # noqa: E402
from tfreg.metrics import dice, jacobian_determinant  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_demo_data():
    # demos/ is not an installed package: load the script by path
    path = REPO_ROOT / "demos" / "mni152_brain" / "demo_data.py"
    spec = importlib.util.spec_from_file_location("mni152_demo_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo_data = _load_demo_data()

TINY = demo_data.Params(shape=(14, 16, 14), spacing_mm=12.0)
COUNTS = {"train": 2, "valid": 1, "test": 1}


@pytest.fixture(scope="module")
def anatomy():
    return demo_data.load_nilearn_anatomy()


@pytest.fixture
def cached_anatomy(monkeypatch, anatomy):
    """build_dataset reuses the module's anatomy instead of reading nilearn's files again."""
    monkeypatch.setattr(demo_data, "load_anatomy", lambda source, data_root=None: anatomy)
    return anatomy


@pytest.fixture
def tiny_dataset(tmp_path, cached_anatomy):
    output = tmp_path / "dataset"
    info = demo_data.build_dataset(str(output), params=TINY, counts=COUNTS, seed=3, verbose=False)
    return output, info


def test_layout_is_deepreg_paired(tiny_dataset):
    output, info = tiny_dataset
    expected = {"train": ["case000000", "case000001"], "valid": ["case000002"], "test": ["case000003"]}
    assert info["cases"] == expected
    for split, cases in expected.items():
        for folder in demo_data.FOLDERS:
            assert sorted(os.listdir(output / split / folder)) == [c + ".nii.gz" for c in cases]
        assert sorted(os.listdir(output / "ground_truth" / split)) == [c + ".nii.gz" for c in cases]
    assert json.loads((output / "dataset.json").read_text())["labels"] == ["grey_matter", "white_matter", "csf"]
    # only the finished dataset is left next to it: no partial or old copies
    assert os.listdir(output.parent) == ["dataset"]

    config = {split: {"dir": str(output / split), "format": "nifti", "labeled": True} for split in ("train", "test")}
    config.update(type="paired", moving_image_shape=list(TINY.shape), fixed_image_shape=list(TINY.shape))
    loader = get_data_loader(config, "train")
    assert loader.num_samples == 2


def test_files_have_geometry_and_one_hot_labels(tiny_dataset):
    output, info = tiny_dataset
    case = "case000000.nii.gz"
    image, geometry = read_image(str(output / "train" / "moving_images" / case))
    assert image.shape == TINY.shape and image.dtype == np.float32
    assert geometry.spacing == (12.0, 12.0, 12.0)
    # nilearn's RAS template seen by ITK: LPS, axes 0 and 1 flipped
    np.testing.assert_allclose(geometry.direction, np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(geometry.origin, info["geometry"]["origin"])
    assert image.max() > 0.5 and image.min() >= 0.0
    for folder in ("moving_labels", "fixed_labels"):
        label, label_geometry = read_image(str(output / "train" / folder / case))
        assert label.shape == TINY.shape + (3,)
        assert label_geometry.allclose(geometry)
        assert set(np.unique(label)) <= {0.0, 1.0}
        assert label.sum(axis=-1).max() == 1  # one-hot: a voxel is in at most one tissue
        # at 12 mm the thin CSF spaces blur below 0.5; grey and white matter remain
        assert (label[..., :2].sum(axis=(0, 1, 2)) > 100).all()
    ddf, ddf_geometry = read_image(str(output / "ground_truth" / "train" / case))
    assert ddf.shape == TINY.shape + (3,) and ddf_geometry.allclose(geometry)


def test_stored_ground_truth_is_the_generators(tiny_dataset, anatomy):
    output, _ = tiny_dataset
    grid = demo_data.make_output_grid(anatomy, TINY.shape, TINY.spacing_mm)
    pair = demo_data.make_pair(grid, TINY, seed=3, case=1)
    stored, _ = read_image(str(output / "ground_truth" / "train" / "case000001.nii.gz"))
    np.testing.assert_allclose(stored, pair["ddf"], atol=1e-6)
    moving, _ = read_image(str(output / "train" / "moving_images" / "case000001.nii.gz"))
    np.testing.assert_allclose(moving, pair["moving_image"], atol=1e-6)
    other = demo_data.make_pair(grid, TINY, seed=3, case=2)
    assert not np.allclose(other["ddf"], pair["ddf"])


def _warp(volume, ddf):
    """``volume(p + ddf(p))``, linear; ``volume`` ``(X, Y, Z)``, ``ddf`` ``(X, Y, Z, 3)`` voxels."""
    from scipy import ndimage

    points = demo_data.grid_points(ddf.shape[:3]) + np.moveaxis(ddf, -1, 0).reshape(3, -1)
    return ndimage.map_coordinates(volume, points, order=1).reshape(ddf.shape[:3])


def test_ground_truth_maps_fixed_to_moving(anatomy):
    params = demo_data.Params(shape=(40, 48, 40), spacing_mm=4.0)
    grid = demo_data.make_output_grid(anatomy, params.shape, params.spacing_mm)
    pair = demo_data.make_pair(grid, params, seed=0, case=0)
    ddf = pair["ddf"]
    # a displacement of a few mm, smooth and invertible (no folding)
    assert 0.5 < np.linalg.norm(ddf, axis=-1).mean() < 4.0
    assert jacobian_determinant(ddf).min() > 0.2
    field = pair["moving_transform"].field
    assert max(np.abs(np.gradient(field[c], axis=a)).max() for c in range(3) for a in range(3)) < 0.5

    # the moving image warped by the ground truth is the fixed image (before the intensity change) ...
    brain = pair["fixed_clean"] > 0.05
    error = np.abs(_warp(pair["moving_clean"], ddf) - pair["fixed_clean"])[brain].mean()
    identity = np.abs(pair["moving_clean"] - pair["fixed_clean"])[brain].mean()
    assert error < 0.03 and error < 0.25 * identity
    # ... and so are its labels, up to resampling binary masks (grey matter is about one voxel thick)
    for channel in range(3):
        moving, fixed = pair["moving_label"][..., channel], pair["fixed_label"][..., channel]
        warped = _warp(moving.astype(np.float64), ddf)
        assert dice(warped, fixed) > max(dice(moving, fixed), 0.7)

    # each image's transform is inverted exactly where the ground truth needs it
    transform = pair["moving_transform"]
    points = demo_data.grid_points(params.shape)[:, ::97]
    np.testing.assert_allclose(transform(transform.inverse(points)), points, atol=1e-4)

    # the intensity change is mild and smooth: it keeps the brain's contrast
    assert np.corrcoef(pair["moving_image"][brain], pair["moving_clean"][brain])[0, 1] > 0.95
    assert not np.allclose(pair["moving_image"], pair["moving_clean"], atol=0.02)


def test_refuses_to_overwrite_unless_asked(tiny_dataset, capsys):
    output, _ = tiny_dataset
    marker = output / "train" / "moving_images" / "case000000.nii.gz"
    before = marker.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        demo_data.build_dataset(str(output), params=TINY, counts=COUNTS, seed=4, verbose=False)
    assert demo_data.main(["--output", str(output), "--shape", "14", "16", "14", "--spacing", "12"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert marker.read_bytes() == before

    demo_data.build_dataset(str(output), params=TINY, counts=COUNTS, seed=4, overwrite=True, verbose=False)
    assert marker.read_bytes() != before
    assert json.loads((output / "dataset.json").read_text())["seed"] == 4
    assert os.listdir(output.parent) == ["dataset"]


def test_interrupted_build_leaves_nothing(tmp_path, cached_anatomy, monkeypatch):
    calls = []

    def failing_write(root, split, *args):
        calls.append(split)
        if split == "valid":  # train is on disk by now
            raise KeyboardInterrupt
        return real_write(root, split, *args)

    real_write = demo_data._write_split
    monkeypatch.setattr(demo_data, "_write_split", failing_write)
    with pytest.raises(KeyboardInterrupt):
        demo_data.build_dataset(str(tmp_path / "dataset"), params=TINY, counts=COUNTS, verbose=False)
    assert calls == ["train", "valid"]
    assert os.listdir(tmp_path) == []
