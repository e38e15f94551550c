"""data_scripts: NIfTI <-> HDF5 converters and the synthetic-pair generator."""

import os

import h5py
import numpy as np
import pytest
from scipy import ndimage

from data_scripts import h5_to_nifti, nifti_to_h5, synthetic_pairs
from tests.data.helpers import OBLIQUE, image, write_grouped, write_nifti_folder, write_paired
from tfreg.data.errors import DataError
from tfreg.data.file_loaders import H5FileLoader, NiftiFileLoader
from tfreg.data.image_io import read_image
from tfreg.data.loaders import PairedDataLoader


def test_paired_round_trip_keeps_values_ids_and_geometry(tmp_path):
    src = write_paired(str(tmp_path / "nifti"), ["c1", "c0"], num_labels=3, geometry=OBLIQUE)
    written = nifti_to_h5.convert_nifti_to_h5(src, str(tmp_path / "h5"))
    assert sorted(written) == ["fixed_images", "fixed_labels", "moving_images", "moving_labels"]
    with h5py.File(written["moving_labels"], "r") as f:
        assert sorted(f.keys()) == ["c0", "c1"]
        assert f["c0"].shape == (6, 7, 8, 3) and f["c0"].dtype == np.float32
        assert f["c0"].attrs["source"] == "c0"
    nifti = NiftiFileLoader([src], "moving_labels", False)
    h5 = H5FileLoader([str(tmp_path / "h5")], "moving_labels", False)
    for index in range(2):
        np.testing.assert_array_equal(h5.get_data(index), nifti.get_data(index))
        assert h5.get_geometry(index).allclose(nifti.get_geometry(index))
    h5.close()
    assert h5_to_nifti.main([str(tmp_path / "h5"), str(tmp_path / "back")]) == 0
    for name in written:
        for stem in ("c0", "c1"):
            original, g0 = read_image(os.path.join(src, name, stem + ".nii.gz"))
            back, g1 = read_image(str(tmp_path / "back" / name / (stem + ".nii.gz")))
            np.testing.assert_array_equal(back, original)
            assert g1.allclose(g0)


def test_grouped_keys_keep_the_order(tmp_path):
    members = [f"t{k}" for k in range(12)]  # 12 images: keys padded to group-1-01 ... group-1-12
    src = write_grouped(str(tmp_path / "nifti"), {"g1": members, "g2": ["a", "b"]}, num_labels=None)
    assert nifti_to_h5.main([src, str(tmp_path / "h5"), "--grouped"]) == 0
    with h5py.File(tmp_path / "h5" / "images.h5", "r") as f:
        keys = sorted(f.keys())
    assert keys[:2] == ["group-1-01", "group-1-02"] and keys[-1] == "group-2-02"
    nifti = NiftiFileLoader([src], "images", True)
    h5 = H5FileLoader([str(tmp_path / "h5")], "images", True)
    assert h5.get_num_images_per_group() == nifti.get_num_images_per_group() == [12, 2]
    for g, n in enumerate([12, 2]):
        for i in range(n):
            np.testing.assert_array_equal(h5.get_data((g, i)), nifti.get_data((g, i)))
    h5.close()
    out = h5_to_nifti.convert_h5_to_nifti(str(tmp_path / "h5"), str(tmp_path / "back"))
    assert out["images"][0].endswith(os.path.join("images", "g1", "t0.nii.gz"))


def test_failed_conversion_writes_nothing(tmp_path):
    src = write_paired(str(tmp_path / "nifti"), ["c0", "c1"], num_labels=None)
    path = os.path.join(src, "fixed_images", "c1.nii.gz")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:100])
    with pytest.raises(DataError, match="c1.nii.gz"):
        nifti_to_h5.convert_nifti_to_h5(src, str(tmp_path / "h5"))
    assert not os.path.exists(tmp_path / "h5" / "fixed_images.h5")
    assert not any(f.endswith(".tmp") for f in os.listdir(tmp_path / "h5"))


def test_h5_without_source_attributes(tmp_path, shared_data):
    deepreg_h5 = shared_data / "deepreg_test/h5/paired/test"
    if not deepreg_h5.is_dir():
        pytest.skip("DeepReg's h5 test files not found")
    out = h5_to_nifti.convert_h5_to_nifti(str(deepreg_h5), str(tmp_path), names=["moving_labels"])
    assert out["moving_labels"] == [str(tmp_path / "moving_labels" / "case000025.nii.gz")]
    array, geometry = read_image(out["moving_labels"][0])
    assert array.shape == (64, 64, 60, 3) and geometry.spacing == (1.0, 1.0, 1.0)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["group-3-7"] = np.zeros((2, 2, 2), np.float32)
    assert h5_to_nifti.relative_path("group-3-7", {}) == os.path.join("group3", "7")


def _blobs(shape, seed):
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random(shape), 2.0)
    base = (base - base.min()) / (base.max() - base.min())
    labels = np.digitize(base, [0.35, 0.5, 0.65])  # 0..3
    return base.astype(np.float32), labels


def test_synthetic_pairs_ground_truth_ddf(tmp_path):
    base, labels = _blobs((24, 26, 20), 0)
    written = synthetic_pairs.make_synthetic_pairs(
        base, str(tmp_path), 2, label_map=labels, geometry=OBLIQUE, seed=1, max_displacement=2.0, control_spacing=8
    )
    assert sorted(os.listdir(tmp_path)) == ["ddfs", "fixed_images", "fixed_labels", "moving_images", "moving_labels"]
    moving, geometry = read_image(written[0]["moving_images"])
    fixed, _ = read_image(written[0]["fixed_images"])
    ddf, _ = read_image(written[0]["ddfs"])
    assert ddf.shape == (24, 26, 20, 3) and geometry.allclose(OBLIQUE)
    assert 1.0 <= np.abs(ddf).max() <= 2.0 + 1e-5
    # warping the moving image with the DDF (sampling it at grid + ddf) gives the fixed image
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in moving.shape], indexing="ij"), axis=-1)
    warped = ndimage.map_coordinates(moving, np.moveaxis(grid + ddf, -1, 0), order=1, mode="nearest")
    inner = (slice(3, -3),) * 3
    error = np.mean(np.abs(warped - fixed)[inner])
    baseline = np.mean(np.abs(moving - fixed)[inner])
    assert error < 0.25 * baseline
    moving_labels, _ = read_image(written[0]["moving_labels"])
    assert moving_labels.shape == (24, 26, 20, 3) and set(np.unique(moving_labels)) == {0.0, 1.0}
    # the whole folder loads as DeepReg paired data
    loader = PairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 0, (8, 8, 8), (8, 8, 8))
    assert loader.num_samples == 2 and loader.check_all_files() is None


def test_synthetic_second_modality_and_cli(tmp_path):
    base, labels = _blobs((16, 16, 16), 2)
    np.savez(tmp_path / "scan.npz", vol=base, seg=labels)
    out = tmp_path / "pairs"
    assert (
        synthetic_pairs.main(
            [
                str(tmp_path / "scan.npz"),
                str(out),
                "--num-pairs",
                "1",
                "--labels-list",
                "1,3",
                "--second-modality",
                "--no-moving-deformation",
                "--spacing",
                "2",
                "2",
                "2",
            ]
        )
        == 0
    )
    moving, geometry = read_image(str(out / "moving_images" / "pair_000.nii.gz"))
    fixed, _ = read_image(str(out / "fixed_images" / "pair_000.nii.gz"))
    fixed_labels, _ = read_image(str(out / "fixed_labels" / "pair_000.nii.gz"))
    np.testing.assert_allclose(moving, base, atol=1e-6)  # no moving deformation: the base image
    assert geometry.spacing == (2.0, 2.0, 2.0) and fixed_labels.shape == (16, 16, 16, 2)
    # a new contrast: where the 8 interpolation corners share one label k, the fixed image is
    # new_mean[k] + 0.5 * (base(x + u) - old_mean[k]): fixed - 0.5 * base(x + u) is constant per region
    ddf, _ = read_image(str(out / "ddfs" / "pair_000.nii.gz"))
    coords = np.moveaxis(np.stack(np.meshgrid(*[np.arange(16)] * 3, indexing="ij"), axis=-1) + ddf, -1, 0)
    mono = ndimage.map_coordinates(base, coords, order=1, mode="nearest")
    uniform = ndimage.minimum_filter(labels, 3) == ndimage.maximum_filter(labels, 3)
    inside = ndimage.map_coordinates(uniform.astype(np.uint8), coords, order=0, mode="nearest").astype(bool)
    region = ndimage.map_coordinates(labels, coords, order=0, mode="nearest")
    offsets = []
    for k in range(4):
        values = (fixed - 0.5 * mono)[inside & (region == k)]
        assert values.size > 10 and np.ptp(values) < 1e-4
        offsets.append(values.mean())
    assert np.ptp(offsets) > 0.05 and np.abs(fixed - mono).mean() > 0.02
    remapped = synthetic_pairs.remap_intensities(base, labels, np.random.default_rng(0), texture=0.0)
    assert all(len(np.unique(remapped[labels == k])) == 1 for k in range(4))


def test_synthetic_input_errors(tmp_path):
    with pytest.raises(ValueError, match="2-D or 3-D"):
        synthetic_pairs.make_synthetic_pairs(np.zeros((2, 2, 2, 2)), str(tmp_path), 1)
    with pytest.raises(ValueError, match="differs"):
        synthetic_pairs.make_synthetic_pairs(np.zeros((4, 4, 4)), str(tmp_path), 1, label_map=np.zeros((4, 4, 3)))
    np.savez(tmp_path / "a.npz", vol=np.zeros((4, 4, 4)))
    with pytest.raises(KeyError, match="arrays: \\['vol'\\]"):
        synthetic_pairs.load_array(str(tmp_path / "a.npz"), "image")


def test_2d_synthetic_pairs(tmp_path):
    base, labels = _blobs((20, 18), 3)
    written = synthetic_pairs.make_synthetic_pairs(
        base, str(tmp_path), 1, label_map=labels, max_displacement=1.5, control_spacing=6
    )
    assert read_image(written[0]["ddfs"])[0].shape == (20, 18, 2)
    write_nifti_folder(str(tmp_path / "unused"), {"x": image((2, 2), 0)})
