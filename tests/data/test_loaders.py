"""tfreg/data/loaders: sampling with labels, loading, geometry and bad input (NumPy level, no tf.data)."""

import logging
import os
import random

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.helpers import OBLIQUE, image, label, write_grouped, write_paired, write_unpaired
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders import H5FileLoader, NiftiFileLoader
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, save_image
from tfreg.data.load import get_data_loader
from tfreg.data.loaders import GroupedDataLoader, PairedDataLoader, UnpairedDataLoader
from tfreg.registry import REGISTRY

IDS = ["c0", "c1", "c2"]


def paired(root, **kwargs):
    args = dict(
        file_loader=NiftiFileLoader,
        data_dir_paths=[str(root)],
        labeled=True,
        sample_label="all",
        seed=0,
        moving_image_shape=(4, 4, 4),
        fixed_image_shape=(3, 3, 3),
    )
    args.update(kwargs)
    return PairedDataLoader(**args)


def test_registered():
    assert {"paired", "unpaired", "grouped"} <= set(REGISTRY.names("data_loader_class"))


def test_paired_samples_labels_and_values(tmp_path):
    counts = {"c0": 1, "c1": 3, "c2": 2}
    write_paired(str(tmp_path), IDS, num_labels=counts, geometry=OBLIQUE)
    loader = paired(tmp_path)
    assert loader.num_samples == 3 and loader.steps_per_epoch(2) == 1 and loader.steps_per_epoch(5) == 1
    order = [0, 1, 2]
    random.Random(0).shuffle(order)
    expected = [([i], list(range(counts[IDS[i]]))) for i in order]
    assert list(loader.sample_generator()) == expected
    sample = loader.load_sample([1], [2, 0])
    moving = image((6, 7, 8), 2)
    np.testing.assert_allclose(sample["moving_image"], (moving - moving.min()) / (moving.max() - moving.min()))
    assert sample["fixed_image"].shape == (5, 6, 7)
    np.testing.assert_array_equal(sample["moving_label"], np.moveaxis(label((6, 7, 8), 3, 2)[..., [2, 0]], -1, 0))
    resized = loader.load_resized_sample([1], [2, 0])
    assert resized["moving_image"].shape == (4, 4, 4) and resized["fixed_label"].shape == (2, 3, 3, 3)
    loader.close()


def test_sample_label_sample_draws_one_label(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=3)
    loader = paired(tmp_path, sample_label="sample", seed=1)
    epochs = [list(loader.sample_generator()) for _ in range(2)]
    assert epochs[0] == epochs[1]  # seeded: reproducible (DeepReg's label draw was not)
    assert all(len(labels) == 1 and 0 <= labels[0] < 3 for _, labels in epochs[0])


def test_unlabeled_ignores_labels(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    loader = paired(tmp_path, labeled=False, sample_label=None)
    assert all(labels == [] for _, labels in loader.sample_generator())
    assert set(loader.load_sample([0], [])) == {"moving_image", "fixed_image"}


def test_unpaired(tmp_path):
    write_unpaired(str(tmp_path), [f"i{k}" for k in range(5)], num_labels=2)
    loader = UnpairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 7, (4, 4, 4))
    order = list(range(5))
    random.Random(7).shuffle(order)
    assert loader.num_samples == 2
    assert list(loader.sample_generator()) == [
        ([order[0], order[1]], [0, 1]),
        ([order[2], order[3]], [0, 1]),
    ]
    assert loader.file_indices([3, 1]) == (3, 1)


def test_grouped(tmp_path):
    write_grouped(str(tmp_path), {"g1": ["a", "b", "c"], "g2": ["d", "e"]}, num_labels=1)
    loader = GroupedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 0, (4, 4, 4), 1.0, "forward", False)
    assert loader.num_samples == 3 + 1
    samples = list(loader.sample_generator())
    assert sorted(tuple(s[0]) for s in samples) == [(0, 0, 0, 1), (0, 0, 0, 2), (0, 1, 0, 2), (1, 0, 1, 1)]
    assert all(s[1] == [0] for s in samples)
    assert loader.file_indices([1, 0, 0, 2]) == ((1, 0), (0, 2))
    with pytest.raises(ValueError, match="at least two groups"):
        write_grouped(str(tmp_path / "one"), {"g": ["a", "b"]}, num_labels=None)
        GroupedDataLoader(NiftiFileLoader, [str(tmp_path / "one")], False, None, 0, (4, 4, 4), 0.5, "forward", True)


def test_geometry_of_a_sample(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None, geometry=OBLIQUE)
    loader = paired(tmp_path, labeled=False, sample_label=None)
    moving, fixed = loader.get_geometry([1.0, -1.0], model_space=False)
    assert moving.allclose(OBLIQUE) and fixed.allclose(OBLIQUE)
    moving, fixed = loader.get_geometry(np.array([1.0, -1.0], np.float32))
    assert moving.allclose(OBLIQUE.resized((6, 7, 8), (4, 4, 4)))
    assert fixed.allclose(OBLIQUE.resized((5, 6, 7), (3, 3, 3)))
    assert loader.get_sources([2, -1])[1].endswith(os.path.join("fixed_images", "c2.nii.gz"))


def test_image_smaller_than_shape_is_resized_up(tmp_path):
    write_paired(str(tmp_path), IDS[:1], num_labels=1)
    loader = paired(tmp_path, moving_image_shape=(12, 14, 16), fixed_image_shape=(10, 12, 14))
    sample = loader.load_resized_sample([0], [0])
    assert sample["moving_image"].shape == (12, 14, 16) and sample["fixed_label"].shape == (1, 10, 12, 14)


# ---------------------------------------------------------------------------------------------- bad input
def test_mismatched_moving_fixed_ids(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    os.remove(tmp_path / "fixed_images" / "c1.nii.gz")
    with pytest.raises(DataError, match=r"moving and fixed images do not match.*only in 'moving_images': \['c1'\]"):
        paired(tmp_path, labeled=False, sample_label=None)


def test_mismatched_image_label_ids(tmp_path):
    write_unpaired(str(tmp_path), ["a", "b"], num_labels=1)
    save_image(label((6, 7, 8), 1, 0), str(tmp_path / "labels" / "zz.nii.gz"))
    with pytest.raises(DataError, match=r"images and labels do not match.*only in 'labels': \['zz'\]"):
        UnpairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 0, (4, 4, 4))


def test_label_count_mismatch_paired_names_both_files(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=2)
    save_image(label((5, 6, 7), 3, 0), str(tmp_path / "fixed_labels" / "c2.nii.gz"))
    with pytest.raises(
        DataError, match=r"moving_labels/c2.nii.gz has 2 label\(s\) but fixed label .*fixed_labels/c2.nii.gz has 3"
    ):
        paired(tmp_path)


def test_label_count_mismatch_unpaired(tmp_path):
    write_unpaired(str(tmp_path), ["a", "b"], num_labels={"a": 2, "b": 3})
    with pytest.raises(DataError, match=r"different numbers of labels.*b.nii.gz"):
        UnpairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 0, (4, 4, 4))


def test_label_values_outside_unit_interval(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=1)
    save_image(label((6, 7, 8), 1, 0) * 2, str(tmp_path / "moving_labels" / "c1.nii.gz"))
    loader = paired(tmp_path)
    with pytest.raises(DataError, match=r"moving_labels/c1.nii.gz has values in \[0.0, 2.0\], outside \[0, 1\]"):
        loader.load_sample([1], [0])
    with pytest.raises(DataError, match="c1.nii.gz"):
        loader.check_all_files()


def test_non_finite_voxels(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    bad = image((5, 6, 7), 0)
    bad[1, 2, 3] = np.inf
    save_image(bad, str(tmp_path / "fixed_images" / "c0.nii.gz"))
    loader = paired(tmp_path, labeled=False, sample_label=None)
    with pytest.raises(DataError, match="fixed_images/c0.nii.gz has 1 non-finite"):
        loader.load_sample([0], [])


def test_truncated_file(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    path = tmp_path / "moving_images" / "c2.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="moving_images/c2.nii.gz is truncated"):
        paired(tmp_path, labeled=False, sample_label=None)


def test_corrupt_h5_dataset(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None, fmt="h5")
    path = tmp_path / "moving_images.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])  # the last dataset's bytes are cut off
    try:
        loader = paired(tmp_path, file_loader=H5FileLoader, labeled=False, sample_label=None)
    except DataError as err:  # the header may already be unreadable
        assert "moving_images.h5" in str(err)
        return
    with pytest.raises(DataError, match="moving_images.h5:c2"):
        loader.check_all_files()


def test_wrong_dimensionality(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    save_image(np.zeros((6, 7, 8, 2), np.float32), str(tmp_path / "moving_images" / "c1.nii.gz"))
    with pytest.raises(DataError, match=r"image .*moving_images/c1.nii.gz has shape \(6, 7, 8, 2\): expected a 3-D"):
        paired(tmp_path, labeled=False, sample_label=None)


def test_configured_shape_with_fewer_axes_than_images(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    with pytest.raises(DataError, match=r"moving_images/c0.nii.gz has shape \(6, 7, 8\): expected a 2-D"):
        paired(tmp_path, labeled=False, sample_label=None, moving_image_shape=(4, 4), fixed_image_shape=(3, 3))


def test_missing_folder(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    with pytest.raises(DataNotFoundError, match="moving_labels"):
        paired(tmp_path)


def test_label_shape_differs_from_image_warns(tmp_path, caplog):
    write_paired(str(tmp_path), IDS, num_labels=1)
    save_image(label((3, 3, 3), 1, 0), str(tmp_path / "moving_labels" / "c0.nii.gz"))
    with caplog.at_level(logging.WARNING):
        paired(tmp_path)
    assert "moving_labels/c0.nii.gz" in caplog.text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"moving_image_shape": (4, 4, 4, 4)}, "moving_image_shape"),
        ({"fixed_image_shape": (3, 0, 3)}, "fixed_image_shape"),
        ({"fixed_image_shape": (3, 3)}, "same number of axes"),
        ({"seed": "x"}, "seed"),
        ({"labeled": "yes"}, "labeled"),
        ({"sample_label": "some"}, "sample_label"),
        ({"sample_label": None}, "sample_label"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired(tmp_path, **kwargs)


def test_2d_data(tmp_path):
    for name, shape in (("moving_images", (6, 7)), ("fixed_images", (5, 6))):
        for k, i in enumerate(IDS):
            save_image(image(shape, k), str(tmp_path / name / f"{i}.nii.gz"))
    for name, shape in (("moving_labels", (6, 7)), ("fixed_labels", (5, 6))):
        for k, i in enumerate(IDS):
            save_image(label(shape, 2, k), str(tmp_path / name / f"{i}.nii.gz"))
    loader = paired(tmp_path, moving_image_shape=(4, 4), fixed_image_shape=(3, 3))
    sample = loader.load_resized_sample([0], [1])
    assert sample["moving_image"].shape == (4, 4) and sample["fixed_label"].shape == (1, 3, 3)
    assert read_image(str(tmp_path / "moving_labels" / "c0.nii.gz"))[0].shape == (6, 7, 2)


def test_self_paired_moving_is_the_transformed_fixed(tmp_path):
    from scipy import ndimage

    from tfreg.data.loaders import SelfPairedDataLoader
    from tfreg.data.preprocess import resize
    from tfreg.data.self_pair_transform import PairTransformRanges, draw_pair_transform

    write_unpaired(str(tmp_path), ["a", "b", "c"], shape=(10, 9, 8), num_labels=2)
    ranges = dict(max_rotation=15.0, max_scale=0.1, max_shift=1.5)
    loader = SelfPairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 0, (8, 8, 8), **ranges)
    assert loader.num_samples == 3 and loader.file_indices([2, 12345]) == (2, 2)
    epochs = [list(loader.sample_generator()) for _ in range(2)]
    assert epochs[0] == epochs[1]  # seeded (valid/test): the same transforms every epoch
    assert [s[0][0] for s in epochs[0]] == [0, 1, 2] and all(s[1] == [0, 1] for s in epochs[0])
    draws = [s[0][1] for s in epochs[0]]
    assert len(set(draws)) == 3 and all(0 <= d < 2**24 for d in draws)
    unseeded = SelfPairedDataLoader(NiftiFileLoader, [str(tmp_path)], False, None, None, (8, 8, 8))
    assert [s[0][1] for s in unseeded.sample_generator()] != [s[0][1] for s in unseeded.sample_generator()]

    image_indices, labels = epochs[0][1]
    sample = loader.load_resized_sample(image_indices, labels)
    source_image, _ = read_image(str(tmp_path / "images" / "b.nii.gz"))
    normalised = (source_image - source_image.min()) / (source_image.max() - source_image.min())  # min-max, then resize
    expected_fixed = resize(normalised[None].astype(np.float32), (8, 8, 8))[0]
    np.testing.assert_allclose(sample["fixed_image"], expected_fixed, atol=1e-5)
    t = draw_pair_transform((8, 8, 8), PairTransformRanges(**ranges), image_indices[1])
    centre = np.full(3, 3.5)
    offset = centre + t.shift - t.matrix @ centre

    def reference(a):
        return ndimage.affine_transform(a.astype(np.float64), t.matrix, offset=offset, order=1, mode="constant")

    np.testing.assert_allclose(sample["moving_image"], reference(sample["fixed_image"]), atol=1e-5)
    assert sample["moving_label"].shape == (2, 8, 8, 8)
    for channel in range(2):
        np.testing.assert_allclose(
            sample["moving_label"][channel], reference(sample["fixed_label"][channel]), atol=1e-5
        )
    assert not np.allclose(sample["moving_image"], sample["fixed_image"])


def test_self_paired_bad_ranges_name_the_key(tmp_path):
    from tfreg.data.load import get_data_loader

    write_unpaired(str(tmp_path), ["a", "b"], num_labels=None)
    config = {
        "type": "self_paired",
        "train": {"dir": str(tmp_path), "format": "nifti", "labeled": False},
        "image_shape": [4, 4, 4],
        "max_scale": 1.5,
    }
    with pytest.raises(ValueError, match="max_scale must be in \\[0, 1\\)"):
        get_data_loader(config, "train")
    config["max_scale"] = 0.1
    assert get_data_loader(config, "train").num_samples == 2


def test_num_labels_is_the_most_label_channels_of_any_label_file(tmp_path):
    # paired data may have a different count per pair (moving and fixed agree): the maximum
    write_paired(str(tmp_path / "p"), IDS, num_labels={i: n for i, n in zip(IDS, (2, 4, 1))})
    assert paired(tmp_path / "p").num_labels == 4
    assert paired(tmp_path / "p", labeled=False).num_labels is None
    write_unpaired(str(tmp_path / "u"), ["a", "b", "c"], num_labels=1)
    assert UnpairedDataLoader(NiftiFileLoader, [str(tmp_path / "u")], True, "all", 0, (4, 4, 4)).num_labels == 1
    write_grouped(str(tmp_path / "g"), {"g1": ["a", "b"], "g2": ["c"]}, num_labels=3)
    grouped = REGISTRY.build_data_loader(
        {"name": "grouped", "file_loader": NiftiFileLoader, "data_dir_paths": [str(tmp_path / "g")], "labeled": True,
         "sample_label": "all", "seed": 0, "image_shape": (4, 4, 4), "intra_group_prob": 1.0,
         "intra_group_option": "forward", "sample_image_in_group": True}
    )  # fmt: skip
    assert grouped.num_labels == 3


def _scalar_nifti_rgb(path, rgb):
    """An RGB 2-D picture saved as a 3-D scalar NIfTI ``(x, y, 3)`` (what save_image writes for channels)."""
    save_image(rgb, path, ImageGeometry.identity(2))


def _vector_nifti_rgb(path, rgb):
    """An RGB 2-D picture as a SimpleITK vector image (NIfTI stores it as ``(x, y, 1, 1, c)``)."""
    sitk.WriteImage(sitk.GetImageFromArray(np.transpose(rgb, (1, 0, 2)), isVector=True), path)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("write", [_scalar_nifti_rgb, _vector_nifti_rgb])
def test_rgb_2d_image_is_refused_with_a_grey_hint(tmp_path, write, channels):
    for k, i in enumerate(IDS):
        save_image(image((6, 7), k), str(tmp_path / "images" / f"{i}.nii.gz"))
        save_image(label((6, 7), 1, k), str(tmp_path / "labels" / f"{i}.nii.gz"))
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, channels)).astype(np.uint8)
    write(str(tmp_path / "images" / "c1.nii.gz"), rgb)
    config = {"train": {"dir": str(tmp_path), "format": "nifti", "labeled": True}, "type": "unpaired"}
    kind = "RGB" if channels == 3 else "RGBA"
    with pytest.raises(DataError, match=rf"images/c1.nii.gz has shape .*looks like {kind} colour channels") as err:
        get_data_loader(dict(config, image_shape=[6, 7]), "train")
    assert "Convert it to grey first (ITU-R BT.601 luma" in str(err.value)
    # the grey picture (the converters' BT.601 luma) is accepted
    save_image(rgb[..., :3] @ np.array([0.299, 0.587, 0.114]), str(tmp_path / "images" / "c1.nii.gz"))
    loader = get_data_loader(dict(config, image_shape=[6, 7]), "train")
    loader.check_all_files()
    loader.close()
