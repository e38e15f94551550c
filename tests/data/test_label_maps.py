"""Integer label maps (``dataset.num_labels: K``): read as K one-hot channels by every loader, NIfTI and H5,
with errors naming the file."""

import os

import numpy as np
import pytest

from tests.data.helpers import write_h5, write_nifti_folder, write_paired
from tfreg.data import get_data_loader
from tfreg.data.errors import DataError
from tfreg.data.preprocess import label_map_channels

SHAPE = (6, 7, 5)
K = 3


def label_maps(count, shape=SHAPE, k=K, seed=0):
    """``{case<i>: int map}`` with values 0..k, every value present."""
    rng = np.random.default_rng(seed)
    maps = {}
    for i in range(count):
        values = rng.integers(0, k + 1, size=shape).astype(np.int16)
        values.flat[: k + 1] = np.arange(k + 1)
        maps[f"case{i}"] = values
    return maps


def write_unpaired_maps(root, fmt, maps, dtype=None):
    rng = np.random.default_rng(1)
    images = {name: rng.random(SHAPE).astype(np.float32) for name in maps}
    labels = {name: m if dtype is None else m.astype(dtype) for name, m in maps.items()}
    if fmt == "nifti":
        write_nifti_folder(os.path.join(root, "images"), images)
        write_nifti_folder(os.path.join(root, "labels"), labels)
    else:
        write_h5(os.path.join(root, "images.h5"), images)
        write_h5(os.path.join(root, "labels.h5"), labels)
    return str(root)


def unpaired_config(root, fmt, **extra):
    return {
        "test": {"dir": root, "format": fmt, "labeled": True},
        "type": "unpaired",
        "image_shape": list(SHAPE),
        "num_labels": K,
        **extra,
    }


@pytest.mark.parametrize("fmt", ["nifti", "h5"])
@pytest.mark.parametrize("dtype", [None, np.float32])
def test_every_channel_is_the_map_equal_to_its_value(tmp_path, fmt, dtype):
    maps = label_maps(4)
    root = write_unpaired_maps(tmp_path / "data", fmt, maps, dtype)
    with get_data_loader(unpaired_config(root, fmt), "test") as loader:
        assert loader.num_labels == K  # sizes a segmentation head
        loader.check_all_files()
        # data IDs: (folder, name) tuples; the name is the file's (NIfTI) or the key (H5)
        names = [str(data_id[-1]) for data_id in loader.loader_moving_image.get_data_ids()]
        seen = 0
        for image_indices, labels in loader.sample_generator():
            assert labels == list(range(K))  # sample_label: all (test split)
            sample = loader.load_resized_sample(image_indices, labels)
            for role, index in zip(("moving", "fixed"), image_indices):
                expected = np.stack([maps[names[index]] == k for k in range(1, K + 1)])
                np.testing.assert_array_equal(sample[f"{role}_label"], expected.astype(np.float32))
            seen += 1
        assert seen == 2


def test_paired_maps_pick_the_requested_channels(tmp_path):
    root = write_paired(str(tmp_path / "data"), ["a", "b"], moving_shape=SHAPE, fixed_shape=SHAPE, num_labels=None)
    maps = label_maps(2, k=2)
    write_nifti_folder(os.path.join(root, "moving_labels"), {"a": maps["case0"], "b": maps["case1"]})
    write_nifti_folder(os.path.join(root, "fixed_labels"), {"a": maps["case1"], "b": maps["case0"]})
    config = {
        "test": {"dir": root, "format": "nifti", "labeled": True},
        "type": "paired",
        "moving_image_shape": list(SHAPE),
        "fixed_image_shape": list(SHAPE),
        "num_labels": 2,
    }
    with get_data_loader(config, "test") as loader:
        sample = loader.load_sample([0], [1])
        np.testing.assert_array_equal(sample["moving_label"][0], maps["case0"] == 2)
        np.testing.assert_array_equal(sample["fixed_label"][0], maps["case1"] == 2)


def test_a_value_above_num_labels_names_the_file_and_the_key(tmp_path):
    maps = label_maps(2)
    maps["case1"][0, 0, 0] = K + 2
    root = write_unpaired_maps(tmp_path / "data", "nifti", maps)
    with get_data_loader(unpaired_config(root, "nifti"), "test") as loader:
        with pytest.raises(DataError, match=r"label map .*case1\.nii\.gz has values in \[0, 5\], outside 0\.\.3 \("
                           r"dataset\.num_labels: 3"):  # fmt: skip
            loader.check_all_files()


def test_non_integer_values_name_the_file(tmp_path):
    maps = {name: m.astype(np.float32) for name, m in label_maps(2).items()}
    maps["case0"][1, 2, 3] = 1.5
    root = write_unpaired_maps(tmp_path / "data", "h5", maps)
    with get_data_loader(unpaired_config(root, "h5"), "test") as loader:
        with pytest.raises(
            DataError, match=r"label map .*labels\.h5.*case0.* 1 non-integer value\(s\) \(e\.g\. 1\.5\)"
        ):
            loader.load_sample([0, 1], [0])


def test_a_one_hot_file_is_refused_when_headers_are_read(tmp_path):
    root = write_unpaired_maps(tmp_path / "data", "nifti", label_maps(2))
    one_hot = np.zeros(SHAPE + (K,), np.float32)
    write_nifti_folder(os.path.join(root, "labels"), {"case1": one_hot})
    with pytest.raises(DataError, match=r"label .*case1\.nii\.gz has shape \(6, 7, 5, 3\), but dataset\.num_labels: 3 "
                       r"reads every label file as one integer label map"):  # fmt: skip
        get_data_loader(unpaired_config(root, "nifti"), "test")


def test_without_num_labels_a_map_is_still_refused(tmp_path):
    root = write_unpaired_maps(tmp_path / "data", "nifti", label_maps(2))
    config = unpaired_config(root, "nifti")
    del config["num_labels"]
    with get_data_loader(config, "test") as loader:
        with pytest.raises(DataError, match=r"outside \[0, 1\]"):
            loader.check_all_files()


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_num_labels_must_be_a_positive_int(tmp_path, bad):
    root = write_unpaired_maps(tmp_path / "data", "nifti", label_maps(2))
    with pytest.raises(ValueError, match=r"num_labels must be a positive int"):
        get_data_loader(unpaired_config(root, "nifti", num_labels=bad), "test")


def test_config_validation_names_the_key():
    from tfreg.config import validate_config
    from tfreg.config.errors import ConfigError

    config = {
        "dataset": {"type": "unpaired", "image_shape": [4, 4, 4], "num_labels": 0},
        "train": {
            "method": "segmentation",
            "backbone": {"name": "unet_segmenter"},
            "loss": {"segmentation": {"name": "dice"}},
            "optimizer": {"name": "Adam", "learning_rate": 1e-3},
            "preprocess": {"batch_size": 1, "shuffle_buffer_num_batch": 1},
            "epochs": 1,
            "save_period": 1,
        },
    }
    with pytest.raises(ConfigError, match=r"dataset\.num_labels"):
        validate_config(config, check_dirs=False)


def test_label_map_channels_2d_and_a_trailing_channel():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 3, size=(5, 4, 1)).astype(np.uint8)
    out = label_map_channels(values, 2, "x.nii.gz", 4)
    assert out.shape == (5, 4, 4) and out.dtype == np.float32
    for k in range(1, 5):
        np.testing.assert_array_equal(out[..., k - 1], values[..., 0] == k)
    with pytest.raises(DataError, match=r"label map x\.nii\.gz has 1 non-finite"):
        label_map_channels(np.array([[0.0, np.nan]]), 2, "x.nii.gz", 1)
