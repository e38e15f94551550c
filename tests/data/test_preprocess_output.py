"""Writing the preprocessed pairs (tfreg.data.preprocess_output): DeepReg's paired layout with geometry, the
JSON and .tfm per pair, the marker, and refusals that leave nothing written."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

import tfreg.data.preprocess_output as output_module
from tests.data.rigid_phantom import rigid, write_phantom_folder
from tfreg.data.errors import DataError
from tfreg.data.image_io import read_image, save_image
from tfreg.data.pair_sources import PairFiles, list_pairs
from tfreg.data.preprocess_memory import physical_memory_gb
from tfreg.data.preprocess_options import PreprocessOptions
from tfreg.data.preprocess_output import check_pairs, preprocess, preprocess_pairs
from tfreg.file_safety import OUTPUT_MARKER, SCRATCH_PREFIX, read_marker

SUBFOLDERS = ("moving_images", "fixed_images", "moving_labels", "fixed_labels")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("source"))
    write_phantom_folder(
        folder, {"a": rigid(3, (0.05, 0.0, -0.08), (1.5, 2.0, -1.0)), "b": rigid(3, (0.0, 0.07, 0.0), (-2.0, 0, 1.0))}
    )
    return folder


def test_writes_paired_layout_json_and_tfm(source, tmp_path):
    options = PreprocessOptions(
        spacing=1.0, align="label", align_labels=[1], crop_size=(40, 36, 32), crop_labels=[1, 2]
    )
    done = []
    out = preprocess(source, str(tmp_path / "out"), options, on_pair_done=lambda pid, rec: done.append((pid, rec)))
    assert out == str(tmp_path / "out") and [pid for pid, _ in done] == ["a", "b"]
    assert sorted(os.listdir(out)) == sorted([OUTPUT_MARKER, "preprocessing.json", "transforms", *SUBFOLDERS])
    assert read_marker(out)["tool"] == "tfreg_preprocess"
    for pair_id, callback_record in done:
        with open(os.path.join(out, "transforms", pair_id + ".json"), encoding="utf-8") as stream:
            record = json.load(stream)
        assert record == json.loads(json.dumps(callback_record))
        # every parameter
        assert record["options"]["spacing"] == [1.0] and record["options"]["align_labels"] == [1]
        assert record["resampled_grids"]["fixed"]["spacing"] == [1.0, 1.0, 1.0]
        assert record["input_grids"]["fixed"]["spacing"] == pytest.approx([1.2, 1.2, 1.5])
        assert record["options"]["crop_size"] == [40, 36, 32] and record["options"]["percentiles"] == [1.0, 99.0]
        assert record["options"]["registration"]["shrink_factors"] == [4, 2, 1]
        assert 0 < record["estimated_memory_gib"] < record["memory_limit_gib"] == pytest.approx(physical_memory_gb())
        assert record["inputs"]["moving_image"] == os.path.join(source, "moving_images", pair_id + ".nii.gz")
        # the rigid transform: the .tfm holds the same one, and the matrix is a rotation
        tfm = sitk.ReadTransform(os.path.join(out, "transforms", record["transform_file"]))
        if isinstance(tfm.Downcast(), sitk.CompositeTransform):
            tfm = tfm.Downcast().GetNthTransform(0)
        np.testing.assert_allclose(tfm.GetParameters(), record["rigid"]["parameters"], atol=1e-6)
        np.testing.assert_allclose(tfm.GetFixedParameters()[:3], record["rigid"]["centre_mm"], atol=1e-6)
        matrix = np.asarray(record["rigid"]["matrix"])
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-9)
        point = np.array([10.0, 30.0, 20.0])
        np.testing.assert_allclose(tfm.TransformPoint(tuple(point)), matrix @ point + record["rigid"]["offset_mm"])
        assert record["rigid"]["method"] == "label" and record["rigid"]["metric"] == "mean_squares"
        assert np.isfinite(record["rigid"]["metric_value"])
        # the crop box and the output grid it gives
        crop = record["crop"]
        assert crop["size"] == [40, 36, 32] and crop["centred_on"] == [1, 2] and crop["grid_shape"] == [48, 48, 48]
        assert record["output_grid"]["origin"] == crop["origin_mm"]
        # the images, with the geometry kept
        for sub in SUBFOLDERS:
            array, geometry = read_image(os.path.join(out, sub, pair_id + ".nii.gz"), dtype=None)
            assert array.shape == (40, 36, 32)
            np.testing.assert_allclose(geometry.origin, crop["origin_mm"], atol=1e-4)
            assert geometry.spacing == pytest.approx((1.0, 1.0, 1.0))
            if sub.endswith("images"):
                assert array.dtype == np.float32 and array.min() >= 0 and array.max() <= 1
            else:
                assert array.dtype == np.uint8 and set(np.unique(array)) <= {0, 1, 2, 3}
    with open(os.path.join(out, "preprocessing.json"), encoding="utf-8") as stream:
        summary = json.load(stream)
    assert [p["pair_id"] for p in summary["pairs"]] == ["a", "b"] and summary["options"]["align"] == "label"
    assert not [e for e in os.listdir(tmp_path) if e.startswith(SCRATCH_PREFIX)]


def test_existing_output_folder(source, tmp_path):
    out = str(tmp_path / "out")
    options = PreprocessOptions(percentiles=None)
    preprocess(source, out, options)
    with pytest.raises(FileExistsError, match=r"output folder .*out already exists: choose another --out, or pass"):
        preprocess(source, out, options)
    first = os.path.getmtime(os.path.join(out, "preprocessing.json"))
    assert preprocess(source, out, PreprocessOptions(), overwrite=True) == out
    with open(os.path.join(out, "preprocessing.json"), encoding="utf-8") as stream:
        assert json.load(stream)["options"]["percentiles"] == [1.0, 99.0]
    assert os.path.getmtime(os.path.join(out, "preprocessing.json")) >= first
    # a folder tfreg_preprocess did not write is never replaced
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="was not written by tfreg_preprocess"):
        preprocess(source, str(user), options, overwrite=True)
    assert (user / "notes.txt").read_text() == "keep"
    with pytest.raises(FileExistsError, match="holds the input"):
        preprocess(source, source, options, overwrite=True)


def test_absent_label_in_any_pair_refused_before_writing(source, tmp_path):
    pairs = list_pairs(source)
    # pair b's moving label without label 2
    array, geometry = read_image(pairs[1].moving_label, dtype=None)
    array[array == 2] = 0
    save_image(array.astype(np.uint8), str(tmp_path / "b_label.nii.gz"), geometry)
    pairs[1] = PairFiles(
        "b", pairs[1].moving_image, pairs[1].fixed_image, str(tmp_path / "b_label.nii.gz"), pairs[1].fixed_label
    )
    out = tmp_path / "new" / "out"
    with pytest.raises(DataError, match=r"label file .*b_label.nii.gz has no voxel of label value\(s\) \[2\]"):
        preprocess_pairs(pairs, str(out), PreprocessOptions(align="label", align_labels=[2]))
    assert not (tmp_path / "new").exists()  # a failed start leaves no folder


def test_failure_midway_leaves_nothing_and_keeps_the_old_output(source, tmp_path, monkeypatch):
    out = str(tmp_path / "deep" / "out")
    calls = []
    real = output_module.preprocess_pair

    def failing(pair, options):
        calls.append(pair.pair_id)
        if pair.pair_id == "b":
            raise RuntimeError("disk on fire")
        return real(pair, options)

    monkeypatch.setattr(output_module, "preprocess_pair", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        preprocess(source, out, PreprocessOptions())
    assert calls == ["a", "b"] and not (tmp_path / "deep").exists()
    monkeypatch.setattr(output_module, "preprocess_pair", real)
    preprocess(source, out, PreprocessOptions(percentiles=None))
    monkeypatch.setattr(output_module, "preprocess_pair", failing)
    with pytest.raises(RuntimeError):
        preprocess(source, out, PreprocessOptions(), overwrite=True)
    with open(os.path.join(out, "preprocessing.json"), encoding="utf-8") as stream:
        assert json.load(stream)["options"]["percentiles"] is None  # the previous output, intact
    assert sorted(os.listdir(tmp_path / "deep")) == ["out"]


def test_checks_across_pairs(source, tmp_path):
    pairs = list_pairs(source)
    with pytest.raises(DataError, match="no pair to preprocess"):
        check_pairs([], PreprocessOptions())
    mixed = [pairs[0], PairFiles("c", pairs[1].moving_image, pairs[1].fixed_image)]
    with pytest.raises(DataError, match="some pairs have label files and others not"):
        check_pairs(mixed, PreprocessOptions())
    save_image(np.zeros((20, 20), np.float32), str(tmp_path / "flat.nii.gz"))
    flat = PairFiles("d", str(tmp_path / "flat.nii.gz"), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(DataError, match=r"pairs of different dimensions in one data set: \{3: 'a', 2: 'd'\}"):
        check_pairs([PairFiles("a", pairs[0].moving_image, pairs[0].fixed_image), flat], PreprocessOptions())
    with pytest.raises(ValueError, match="options must be a PreprocessOptions"):
        preprocess_pairs(pairs, str(tmp_path / "x"), {"align": "none"})


def test_output_is_a_paired_dataset_tfreg_reads(source, tmp_path):
    from tfreg.data import get_data_loader

    out = preprocess(source, str(tmp_path / "out"), PreprocessOptions(crop_size=(32, 32, 24), keep_labels=[1, 3]))
    config = {
        "test": {"dir": out, "format": "nifti", "labeled": True},
        "type": "paired",
        "moving_image_shape": [32, 32, 24],
        "fixed_image_shape": [32, 32, 24],
        "num_labels": 2,
    }
    with get_data_loader(config, "test") as loader:
        loader.check_all_files()
        sample = loader.load_sample([0], [1])  # pair a, label 3 (now 2)
        fixed_label, _ = read_image(os.path.join(out, "fixed_labels", "a.nii.gz"))
        np.testing.assert_array_equal(sample["fixed_label"][0], fixed_label == 2)
        assert sample["fixed_label"].shape == (1, 32, 32, 24) and sample["moving_image"].shape == (32, 32, 24)
        written = read_image(os.path.join(out, "fixed_images", "a.nii.gz"))[1]
        assert loader.get_geometry([0, 1], model_space=False)[1].allclose(written, atol=1e-4)
