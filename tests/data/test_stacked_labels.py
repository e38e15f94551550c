"""``sample_label: stack``: every label channel of a pair in one sample, channels last, through the pipeline."""

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tests.data.helpers import write_nifti_folder, write_paired  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402
from tfreg.data.file_loaders import NiftiFileLoader  # noqa: E402
from tfreg.data.load import get_data_loader  # noqa: E402
from tfreg.data.loaders import PairedDataLoader  # noqa: E402
from tfreg.data.sampling import STACKED_LABEL_INDEX  # noqa: E402

SHAPE = (6, 5, 4)


def integer_maps(count, k, seed=0):
    rng = np.random.default_rng(seed)
    return {f"case{i}": rng.integers(0, k + 1, SHAPE).astype(np.uint8) for i in range(count)}


def test_one_sample_per_pair_with_every_channel_last(tmp_path):
    root = write_paired(str(tmp_path / "data"), ["a", "b", "c"], moving_shape=SHAPE, fixed_shape=SHAPE, num_labels=None)
    maps = integer_maps(3, k=3)
    names = {"a": "case0", "b": "case1", "c": "case2"}
    write_nifti_folder(os.path.join(root, "moving_labels"), {i: maps[n] for i, n in names.items()})
    write_nifti_folder(os.path.join(root, "fixed_labels"), {i: maps[n][::-1].copy() for i, n in names.items()})
    config = {
        "train": {"dir": root, "format": "nifti", "labeled": True},
        "type": "paired",
        "moving_image_shape": list(SHAPE),
        "fixed_image_shape": list(SHAPE),
        "num_labels": 3,
        "sample_label": "stack",
    }
    with get_data_loader(config, "train") as loader:
        assert loader.stacked_label_count() == 3
        dataset = loader.get_dataset_and_preprocess(
            training=False, batch_size=2, repeat=False, shuffle_buffer_num_batch=1
        )
        batches = list(dataset)
        ids = [str(d[-1]) for d in loader.loader_moving_image.get_data_ids()]
    assert [b["indices"].shape[0] for b in batches] == [2, 1]  # three pairs: one sample each
    for batch in batches:
        assert batch["moving_label"].shape[1:] == SHAPE + (3,)
        assert np.all(batch["indices"].numpy()[:, -1] == STACKED_LABEL_INDEX)
        for row, index in enumerate(batch["indices"].numpy()[:, 0].astype(int)):
            moving_map = maps[names[ids[index].split(".")[0]]]
            expected = np.stack([moving_map == k for k in (1, 2, 3)], axis=-1).astype(np.float32)
            np.testing.assert_array_equal(batch["moving_label"][row].numpy(), expected)
            expected_fixed = np.stack([moving_map[::-1] == k for k in (1, 2, 3)], axis=-1).astype(np.float32)
            np.testing.assert_array_equal(batch["fixed_label"][row].numpy(), expected_fixed)


def test_training_batches_have_a_static_channel_count(tmp_path):
    write_paired(str(tmp_path), ["a", "b"], moving_shape=(4, 4, 4), fixed_shape=(4, 4, 4), num_labels=2)
    loader = PairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "stack", 0, (4, 4, 4), (4, 4, 4))
    dataset = loader.get_dataset_and_preprocess(training=True, batch_size=2, repeat=True, shuffle_buffer_num_batch=1)
    assert tuple(dataset.element_spec["moving_label"].shape) == (2, 4, 4, 4, 2)
    batch = next(iter(dataset))
    assert batch["fixed_label"].shape == (2, 4, 4, 4, 2)


def test_different_label_counts_cannot_be_stacked(tmp_path):
    write_paired(str(tmp_path), ["a", "b"], moving_shape=(4, 4, 4), fixed_shape=(4, 4, 4), num_labels={"a": 1, "b": 3})
    with pytest.raises(DataError, match="sample_label: stack .* same number of labels: 1 label\\(s\\): .*3 label"):
        PairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "stack", 0, (4, 4, 4), (4, 4, 4))
