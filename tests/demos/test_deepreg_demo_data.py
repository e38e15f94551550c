"""The conversions of DeepReg's nine learned demos (``demos/<name>/demo_data.py``) on tiny archives in the releases'
own layouts (tests/demos/deepreg_fixtures.py), checked against what the fixture wrote, transformed here with
NumPy/SciPy by DeepReg's rules (rescaling formulas, one-hot channels, Gaussian smoothing, zoom factors,
field-of-view box, fold and split assignment)."""

import hashlib
import importlib
import json
import os

import h5py
import numpy as np
import pytest
from scipy import ndimage

from tests.demos import deepreg_fixtures as fx
from tfreg.data.image_io import read_image


def _convert(name, tmp_path, archive, *extra):
    """Run the demo's demo_data.main on ``archive``; returns the dataset folder (asserting success)."""
    main = importlib.import_module(f"demos.{name}.demo_data").main
    assert main(["--dir", str(tmp_path / "demo"), "--source", archive, *extra]) == 0
    return tmp_path / "demo" / "dataset"


def _files(folder):
    return sorted(os.listdir(folder))


def _record(dataset, archive):
    """conversion.json, after checking it names the archive's SHA-256 (no checksum is published for any)."""
    record = json.loads((dataset / "conversion.json").read_text())
    with open(archive, "rb") as stream:
        assert record["archive_sha256"] == hashlib.sha256(stream.read()).hexdigest()
    assert record["checksum"].startswith("not verified")
    return record


def _lung_image(scan):
    """DeepReg's lung rescaling: images above 255 become (x + 285) / (3770 + 285) * 255."""
    scan = scan.astype(np.float64)
    return (scan + 285.0) / (3770.0 + 285.0) * 255.0 if scan.max() > 255 else scan


def test_paired_ct_lung(tmp_path):
    archive, written = fx.write_lung_release(str(tmp_path), 4)
    dataset = _convert("paired_ct_lung", tmp_path, archive)
    record = _record(dataset, archive)
    splits = record["splits"]
    assert sorted(sum(splits.values(), [])) == ["case_001", "case_002", "case_003", "case_004"]  # case_020 dropped
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    for split, cases in splits.items():
        for folder in ("moving_images", "fixed_images", "moving_labels", "fixed_labels"):
            assert _files(dataset / split / folder) == [f"{c}.nii.gz" for c in cases]
        for case in cases:
            for role, phase in (("moving", "exp"), ("fixed", "insp")):
                scan, mask = written[case][phase]
                image, geometry = read_image(str(dataset / split / f"{role}_images" / f"{case}.nii.gz"))
                np.testing.assert_allclose(image, _lung_image(scan), rtol=1e-6, atol=1e-4)
                assert geometry.spacing == pytest.approx((1.5, 1.25, 2.0))  # the file's own grid is kept
                label, _ = read_image(str(dataset / split / f"{role}_labels" / f"{case}.nii.gz"))
                np.testing.assert_array_equal(label, mask)
    # the split is seeded: the same seed draws the same cases, another seed may not
    again = _convert("paired_ct_lung", tmp_path / "again", archive)
    assert json.loads((again / "conversion.json").read_text())["splits"] == splits


def test_unpaired_ct_lung_keeps_expiration_only(tmp_path):
    archive, written = fx.write_lung_release(str(tmp_path), 10)
    dataset = _convert("unpaired_ct_lung", tmp_path, archive)
    splits = _record(dataset, archive)["splits"]
    # int(0.4 * 10) = 4 drawn: 2 test, 2 valid
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [6, 2, 2]
    for split, cases in splits.items():
        assert _files(dataset / split) == ["images", "labels"]
        for case in cases:
            image, _ = read_image(str(dataset / split / "images" / f"{case}.nii.gz"))
            np.testing.assert_allclose(image, _lung_image(written[case]["exp"][0]), rtol=1e-6, atol=1e-4)
            label, _ = read_image(str(dataset / split / "labels" / f"{case}.nii.gz"))
            np.testing.assert_array_equal(label, written[case]["exp"][1])


def test_unpaired_ct_abdomen(tmp_path):
    numbers = [1, 2, 3, 4, 21, 22, 23, 24]
    archive, written = fx.write_abdomen_release(str(tmp_path), numbers)
    dataset = _convert("unpaired_ct_abdomen", tmp_path, archive)
    _record(dataset, archive)
    # in number order: int(0.8) = 0 valid and int(1.2) = 1 test, raised to the unpaired minimum of 2
    expected = {"train": numbers[:4], "val": numbers[4:6], "test": numbers[6:]}
    for folder, members in expected.items():
        names = [f"{n:04d}.nii.gz" for n in members]
        assert _files(dataset / folder / "images") == names == _files(dataset / folder / "labels")
        for name in names:
            image, _ = read_image(str(dataset / folder / "images" / name))
            np.testing.assert_array_equal(image, written[name][0])
            onehot, _ = read_image(str(dataset / folder / "labels" / name))
            assert onehot.shape == written[name][1].shape + (13,)
            np.testing.assert_array_equal(onehot, written[name][1][..., None] == np.arange(1, 14))


def test_grouped_mr_heart(tmp_path):
    archive, written = fx.write_heart_release(str(tmp_path), [101, 102, 103, 201])
    dataset = _convert("grouped_mr_heart", tmp_path, archive)
    _record(dataset, archive)
    groups = {"train": ["subject000", "subject001"], "val": ["subject002"], "test": ["subject003"]}
    patients = {"subject000": 101, "subject001": 102, "subject002": 103, "subject003": 201}
    for folder, members in groups.items():
        assert _files(dataset / folder / "images") == members
        for group in members:
            assert _files(dataset / folder / "images" / group) == ["C0.nii.gz", "DE.nii.gz", "T2.nii.gz"]
            for sequence in ("C0", "DE", "T2"):
                source, spacing, origin = written[f"{patients[group]}_{sequence}.nii.gz"]
                image, geometry = read_image(str(dataset / folder / "images" / group / f"{sequence}.nii.gz"))
                reference = ndimage.zoom(source.astype(np.float32), [s / 1.5 for s in spacing])
                np.testing.assert_allclose(image, reference, rtol=1e-5, atol=1e-3)
                # n voxels of s mm zoomed to m keep the end voxel centres: (n - 1) s = (m - 1) spacing
                for n, s, m, out in zip(source.shape, spacing, image.shape, geometry.spacing):
                    assert (m - 1) * out == pytest.approx((n - 1) * s)
                assert geometry.origin == pytest.approx(origin)


def test_grouped_mask_prostate_longitudinal(tmp_path):
    archive, written = fx.write_longi_masks_release(str(tmp_path), [1, 2, 3, 10, 11])
    dataset = _convert("grouped_mask_prostate_longitudinal", tmp_path, archive)
    _record(dataset, archive)
    # patients in number order (not string order): 3 train, int(0.5) -> 1 valid, int(1.0) = 1 test
    expected = {"train": [1, 2, 3], "val": [10], "test": [11]}
    for folder, groups in expected.items():
        assert _files(dataset / folder) == ["images.h5", "labels.h5"]
        keys = sorted(f"group-{g}-{v}" for g in groups for v in (1, 2, 3))
        with h5py.File(dataset / folder / "labels.h5") as labels, h5py.File(dataset / folder / "images.h5") as images:
            assert sorted(labels) == keys == sorted(images)
            for key in keys:
                np.testing.assert_array_equal(labels[key][()], written[key])
                assert images[key].dtype == np.float32
                smoothed = ndimage.gaussian_filter(written[key].astype(np.float64), sigma=3.0)
                np.testing.assert_allclose(images[key][()], smoothed, atol=1e-5)


def test_paired_mrus_brain(tmp_path):
    archive, written = fx.write_resect_release(str(tmp_path), {"train": [1, 2, 4], "test": [3, 5]})
    dataset = _convert("paired_mrus_brain", tmp_path, archive)
    _record(dataset, archive)
    assert _files(dataset) == ["checksums.sha256", "conversion.json", "test", "train"]
    for (split, name), (moving, fixed) in written.items():
        assert _files(dataset / split) == ["fixed_images", "moving_images"]  # not the unused CaseN folders
        np.testing.assert_array_equal(read_image(str(dataset / split / "moving_images" / name))[0], moving)
        np.testing.assert_array_equal(read_image(str(dataset / split / "fixed_images" / name))[0], fixed)


def test_paired_mrus_prostate_folds(tmp_path):
    archive, names = fx.write_mrus_release(str(tmp_path), 13)
    dataset = _convert("paired_mrus_prostate", tmp_path, archive)
    _record(dataset, archive)
    source = tmp_path / "demo" / "dataset_source"
    (extracted,) = os.listdir(source)
    for part in range(11):
        members = names[part::11]  # case i goes to fold i mod 11
        for folder in ("moving_images", "moving_labels", "fixed_images", "fixed_labels"):
            assert _files(dataset / f"part{part:02d}" / folder) == members
            for name in members:
                with open(dataset / f"part{part:02d}" / folder / name, "rb") as out:
                    with open(source / extracted / "example-data-mrus" / folder / name, "rb") as original:
                        assert out.read() == original.read()


def test_paired_mrus_prostate_needs_a_case_per_fold(tmp_path, capsys):
    archive, _ = fx.write_mrus_release(str(tmp_path), 10)
    main = importlib.import_module("demos.paired_mrus_prostate.demo_data").main
    assert main(["--dir", str(tmp_path / "demo"), "--source", archive]) == 1
    assert "holds 10 cases" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "demo" / "dataset")


def test_unpaired_mr_brain(tmp_path):
    archive, written = fx.write_hippocampus_release(str(tmp_path), [1, 3, 5, 311, 312])
    dataset = _convert("unpaired_mr_brain", tmp_path, archive)
    _record(dataset, archive)
    box = np.zeros((12, 12, 12), np.float32)
    box[tuple(slice(*b) for b in fx.HIPPOCAMPUS_BOX)] = 1
    for split, subjects in (("train", [1, 3, 5]), ("test", [311, 312])):
        names = [f"hippocampus_{s:03d}.nii.gz" for s in subjects]
        for folder in ("images", "labels", "masks"):
            assert _files(dataset / split / folder) == names
        for name in names:
            source, labels = written[name]
            # the field of view found is the box the fixture filled; outside it the image is 0
            np.testing.assert_array_equal(read_image(str(dataset / split / "masks" / name))[0], box)
            masked = source.astype(np.float64) * box
            expected = (masked - masked.min()) / (masked.max() - masked.min()) * 255.0
            np.testing.assert_allclose(read_image(str(dataset / split / "images" / name))[0], expected, atol=1e-3)
            onehot, _ = read_image(str(dataset / split / "labels" / name))
            np.testing.assert_array_equal(onehot, np.stack([labels == 1, labels == 2], axis=-1))


def test_unpaired_us_prostate_cv(tmp_path):
    archive, written = fx.write_trus_release(str(tmp_path))
    dataset = _convert("unpaired_us_prostate_cv", tmp_path, archive)
    _record(dataset, archive)
    assert _files(dataset) == ["checksums.sha256", "conversion.json"] + [f"fold{f}" for f in range(10)]
    for (fold, key), image in written.items():
        with h5py.File(dataset / f"fold{fold}" / "images.h5") as stream:
            np.testing.assert_array_equal(stream[key][()], image)
