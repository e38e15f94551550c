"""Every layout x format of DeepReg's test folders loads, with DeepReg's sample counts and order.

The expected orders are worked out here from the file lists and ``random.Random(seed)`` directly,
independently of tfreg's sampling code. Labelled HDF5 files missing from ../shared/data are made with
tfreg's own converter (data_scripts/nifti_to_h5.py), as contract section 8 asks.
"""

import os
import random

import h5py
import numpy as np
import pytest
import SimpleITK as sitk

tf = pytest.importorskip("tensorflow")

from data_scripts.nifti_to_h5 import convert_nifti_to_h5  # noqa: E402
from tfreg.data import get_data_loader  # noqa: E402

SHAPE = [4, 4, 4]


@pytest.fixture
def deepreg(shared_data):
    root = shared_data / "deepreg_test"
    if not root.is_dir():
        pytest.skip(f"DeepReg's test data not found at {root}")
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Labelled h5 copies of every nifti split, made with the converter (built lazily, once per module)."""
    out = tmp_path_factory.mktemp("h5")
    made = {}

    def get(root, layout, split):
        key = (layout, split)
        if key not in made:
            made[key] = str(out / layout / split)
            convert_nifti_to_h5(str(root / "nifti" / layout / split), made[key], grouped=layout == "grouped")
        return made[key]

    return get


def dataset_config(layout, split_dirs, fmt, labeled, **extra):
    cfg = {split: {"dir": str(d), "format": fmt, "labeled": labeled} for split, d in split_dirs.items()}
    cfg["type"] = layout
    if layout == "paired":
        cfg.update(moving_image_shape=SHAPE, fixed_image_shape=[3, 3, 3])
    else:
        cfg["image_shape"] = SHAPE
    cfg.update(extra)
    return cfg


def epoch_indices(loader):
    """The ``indices`` rows of one evaluation epoch through the tf.data pipeline."""
    dataset = loader.get_dataset_and_preprocess(training=False, batch_size=8, repeat=False, shuffle_buffer_num_batch=0)
    rows = [tuple(int(v) for v in row) for batch in dataset for row in batch["indices"].numpy()]
    loader.close()
    return rows


def nifti_stems(folder):
    """Sorted IDs of a NIfTI folder: file names without .nii.gz / .nii."""
    return sorted(f[: -len(".nii.gz")] if f.endswith(".nii.gz") else f[: -len(".nii")] for f in os.listdir(folder))


def nifti_label_count(path):
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = reader.GetSize()
    return size[3] if len(size) == 4 else 1


def shuffled(n, seed):
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def normalised_sitk(path):
    array = np.transpose(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).astype(np.float32)
    return (array - array.min()) / (array.max() - array.min())


# ---------------------------------------------------------------------------------------------- paired
@pytest.mark.parametrize("split", ["train", "test"])
def test_paired_nifti(deepreg, split):
    folder = deepreg / "nifti" / "paired" / split
    ids = nifti_stems(folder / "moving_images")
    counts = [nifti_label_count(folder / "moving_labels" / f"{i}.nii.gz") for i in ids]
    # evaluated as "valid": seed 0, all labels
    loader = get_data_loader(dataset_config("paired", {"valid": folder}, "nifti", True), "valid")
    assert loader.num_samples == len(ids) == (25 if split == "train" else 2)
    expected = [(i, label) for i in shuffled(len(ids), 0) for label in range(counts[i])]
    sample = loader.load_sample([expected[0][0]], [0])
    np.testing.assert_allclose(
        sample["moving_image"], normalised_sitk(folder / "moving_images" / f"{ids[expected[0][0]]}.nii.gz"), atol=1e-6
    )
    assert epoch_indices(loader) == expected
    if split == "train":
        assert sorted(set(counts)) == [1, 2, 3] and len(expected) == 14 * 3 + 5 * 2 + 6


def test_paired_h5_deepreg_files(deepreg):
    test = get_data_loader(dataset_config("paired", {"test": deepreg / "h5/paired/test"}, "h5", True), "test")
    assert test.num_samples == 1
    assert epoch_indices(test) == [(0, 0), (0, 1), (0, 2)]
    # DeepReg's paired/train h5 lost moving_labels: unlabeled, 3 keys named case00000N.nii.gz
    train = get_data_loader(dataset_config("paired", {"valid": deepreg / "h5/paired/train"}, "h5", False), "valid")
    with h5py.File(deepreg / "h5/paired/train/moving_images.h5", "r") as f:
        assert sorted(f.keys()) == ["case000000.nii.gz", "case000001.nii.gz", "case000002.nii.gz"]
    assert epoch_indices(train) == [(i, -1) for i in shuffled(3, 0)]


def test_paired_h5_converted(deepreg, converted):
    h5_dir = converted(deepreg, "paired", "train")
    h5_loader = get_data_loader(dataset_config("paired", {"valid": h5_dir}, "h5", True), "valid")
    nifti_loader = get_data_loader(
        dataset_config("paired", {"valid": deepreg / "nifti/paired/train"}, "nifti", True), "valid"
    )
    assert h5_loader.num_samples == 25
    with h5py.File(os.path.join(h5_dir, "moving_labels.h5"), "r") as f:
        keys = sorted(f.keys())
        counts = [f[k].shape[3] if f[k].ndim == 4 else 1 for k in keys]
    assert keys == nifti_stems(deepreg / "nifti/paired/train/moving_images")
    # same arrays and geometry as the NIfTI files they came from
    for key, value in nifti_loader.load_sample([7], [1]).items():
        np.testing.assert_array_equal(h5_loader.load_sample([7], [1])[key], value)
    assert h5_loader.get_geometry([3, 0])[0].allclose(nifti_loader.get_geometry([3, 0])[0])
    nifti_loader.close()
    assert epoch_indices(h5_loader) == [(i, label) for i in shuffled(25, 0) for label in range(counts[i])]


# ---------------------------------------------------------------------------------------------- unpaired
@pytest.mark.parametrize("fmt", ["nifti", "h5-converted"])
def test_unpaired_train(deepreg, converted, fmt):
    folder = deepreg / "nifti/unpaired/train"
    ids = nifti_stems(folder / "images")
    assert len(ids) == 14
    data_dir = folder if fmt == "nifti" else converted(deepreg, "unpaired", "train")
    loader = get_data_loader(dataset_config("unpaired", {"valid": data_dir}, fmt.split("-")[0], True, seed=3), "valid")
    assert loader.num_samples == 7
    order = shuffled(14, 3)
    expected = [(order[2 * k], order[2 * k + 1], label) for k in range(7) for label in range(3)]
    assert epoch_indices(loader) == expected


@pytest.mark.parametrize("fmt", ["nifti", "sitk"])
def test_unpaired_test_mixed_suffixes(deepreg, fmt):
    folder = deepreg / "nifti/unpaired/test"
    assert sorted(os.listdir(folder / "images")) == ["case000025.nii.gz", "case000026.nii"]
    loader = get_data_loader(dataset_config("unpaired", {"test": folder}, fmt, True), "test")
    order = shuffled(2, 0)
    assert loader.num_samples == 1
    assert epoch_indices(loader) == [(order[0], order[1], label) for label in range(3)]


@pytest.mark.parametrize("split, count", [("train", 4), ("test", 2)])
def test_unpaired_h5_deepreg_files(deepreg, split, count):
    loader = get_data_loader(dataset_config("unpaired", {"test": deepreg / "h5/unpaired" / split}, "h5", False), "test")
    order = shuffled(count, 0)
    assert loader.num_samples == count // 2
    assert epoch_indices(loader) == [(order[2 * k], order[2 * k + 1], -1) for k in range(count // 2)]


# ---------------------------------------------------------------------------------------------- grouped
def grouped_by_hand(num_images_per_group, p, option, seed):
    rnd = random.Random(seed)
    groups = list(range(len(num_images_per_group)))
    rnd.shuffle(groups)
    out = []
    for g in groups:
        if rnd.random() <= p:
            a, b = rnd.sample(list(range(num_images_per_group[g])), 2)
            if option == "forward":
                a, b = min(a, b), max(a, b)
            out.append((g, a, g, b))
        else:
            other = rnd.choice([h for h in groups if h != g])
            out.append(
                (
                    g,
                    rnd.choice(list(range(num_images_per_group[g]))),
                    other,
                    rnd.choice(list(range(num_images_per_group[other]))),
                )
            )
    return out


GROUPED_OPTIONS = dict(intra_group_option="unconstrained", sample_image_in_group=True, intra_group_prob=0.5)


@pytest.mark.parametrize("fmt", ["nifti", "h5-converted"])
def test_grouped_train_sampled(deepreg, converted, fmt):
    folder = deepreg / "nifti/grouped/train"
    groups = sorted(os.listdir(folder / "images"))
    sizes = [len(os.listdir(folder / "images" / g)) for g in groups]
    assert sizes == [4, 3]
    data_dir = folder if fmt == "nifti" else converted(deepreg, "grouped", "train")
    for seed in (0, 1, 2):
        loader = get_data_loader(
            dataset_config("grouped", {"valid": data_dir}, fmt.split("-")[0], True, seed=seed, **GROUPED_OPTIONS),
            "valid",
        )
        assert loader.num_samples == 2
        expected = [
            pair + (label,) for pair in grouped_by_hand(sizes, 0.5, "unconstrained", seed) for label in range(3)
        ]
        assert epoch_indices(loader) == expected


def test_grouped_train_all_inter_pairs(deepreg):
    folder = deepreg / "nifti/grouped/train"
    options = dict(intra_group_option="forward", sample_image_in_group=False, intra_group_prob=0)
    loader = get_data_loader(dataset_config("grouped", {"test": folder}, "nifti", False, **options), "test")
    pairs = [
        (g1, i1, g2, i2)
        for g1, n1 in enumerate([4, 3])
        for g2, n2 in enumerate([4, 3])
        if g1 != g2
        for i1 in range(n1)
        for i2 in range(n2)
    ]
    random.Random(0).shuffle(pairs)
    assert loader.num_samples == 24
    assert epoch_indices(loader) == [p + (-1,) for p in pairs]


@pytest.mark.parametrize("fmt", ["nifti", "h5-deepreg", "h5-converted"])
def test_grouped_test(deepreg, converted, fmt):
    if fmt == "nifti":
        data_dir, labeled = deepreg / "nifti/grouped/test", True
    elif fmt == "h5-deepreg":
        data_dir, labeled = deepreg / "h5/grouped/test", False
        with h5py.File(data_dir / "images.h5", "r") as f:
            assert sorted(f.keys()) == ["group-1-1", "group-1-2"]
    else:
        data_dir, labeled = converted(deepreg, "grouped", "test"), True
    options = dict(intra_group_option="forward", sample_image_in_group=True, intra_group_prob=1)
    loader = get_data_loader(
        dataset_config("grouped", {"test": data_dir}, fmt.split("-")[0], labeled, **options), "test"
    )
    assert loader.num_samples == 1
    assert epoch_indices(loader) == ([(0, 0, 0, 1, label) for label in range(3)] if labeled else [(0, 0, 0, 1, -1)])
