"""One pair through the preprocessing (tfreg.data.pair_preprocessing), against SimpleITK and NumPy steps
computed here independently, plus every input check."""

import os

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.affine_phantom import MATRICES, blob_pair
from tests.data.rigid_phantom import dice, rigid, write_phantom_folder
from tfreg.data.errors import DataError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image
from tfreg.data.pair_preprocessing import check_pair, preprocess_pair
from tfreg.data.pair_sources import PairFiles
from tfreg.data.preprocess_options import PreprocessOptions
from tfreg.data.rigid_alignment import RegistrationSettings


def _pair(files, pair_id="p1"):
    f = files[pair_id]
    return PairFiles(pair_id, f["moving_images"], f["fixed_images"], f["moving_labels"], f["fixed_labels"])


def _array(image):
    return np.transpose(sitk.GetArrayFromImage(image))


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("phantom"))
    truth = rigid(3, (0.06, -0.05, 0.10), (2.0, -1.5, 2.5))
    return _pair(write_phantom_folder(folder, {"p1": truth})), truth


def test_full_pipeline_matches_independent_sitk_and_numpy(phantom):
    pair, truth = phantom
    options = PreprocessOptions(
        spacing=(1.0, 1.0, 1.0), align="label", align_labels=[1, 2], crop_size=(40, 36, 30), crop_labels=[1],
        keep_labels=[3, 1],
    )  # fmt: skip
    result = preprocess_pair(pair, options)
    record = result.record

    # step 2, independently: the fixed image and label at 1 mm, same origin and direction
    fixed = sitk.ReadImage(pair.fixed_image)
    size = [int(np.floor(n * s + 0.5)) for n, s in zip(fixed.GetSize(), fixed.GetSpacing())]
    assert size == [48, 48, 48] and record["resampled_grids"]["fixed"]["size"] == size

    def at_1mm(image, interpolator):
        return sitk.Resample(
            image, size, sitk.Transform(), interpolator, fixed.GetOrigin(), (1.0,) * 3, fixed.GetDirection(), 0.0
        )

    fixed_1mm = at_1mm(fixed, sitk.sitkLanczosWindowedSinc)
    fixed_label_1mm = _array(at_1mm(sitk.ReadImage(pair.fixed_label), sitk.sitkNearestNeighbor))

    # step 3: the transform is close to the truth (mapped points of the fixed structure)
    transform = result.rigid.transform
    points = np.argwhere(fixed_label_1mm == 1)[::7].astype(np.float64) + np.asarray(fixed.GetOrigin())
    errors = [
        np.linalg.norm(np.subtract(transform.TransformPoint(tuple(p)), truth.TransformPoint(tuple(p)))) for p in points
    ]
    assert max(errors) < 1.0  # mm

    # step 5: the crop box is centred on label 1's centroid (NumPy), on the 1 mm fixed grid
    centroid = np.argwhere(fixed_label_1mm == 1).mean(axis=0)
    start = np.floor(centroid - (np.array([40, 36, 30]) - 1) / 2 + 0.5).astype(int)
    assert record["crop"]["start_index"] == start.tolist()
    stop = start + [40, 36, 30]
    assert np.all(start >= 0) and np.all(stop <= 48)  # inside: plain slicing
    window = tuple(slice(a, b) for a, b in zip(start, stop))

    # steps 4-6 for the images: Lanczos onto the fixed grid through the found transform, then percentiles
    moving = sitk.ReadImage(pair.moving_image)  # 48^3 at 1 mm already: resampling keeps its grid
    moving_1mm = sitk.Resample(
        moving, [48, 48, 48], sitk.Transform(), sitk.sitkLanczosWindowedSinc, moving.GetOrigin(), (1.0,) * 3,
        moving.GetDirection(), 0.0,
    )  # fmt: skip
    moving_on_fixed = sitk.Resample(moving_1mm, fixed_1mm, transform, sitk.sitkLanczosWindowedSinc, float("nan"))
    moving_on_fixed = _array(moving_on_fixed)[window]
    for key, source in (("fixed_image", _array(fixed_1mm)[window]), ("moving_image", moving_on_fixed)):
        valid = np.isfinite(source)
        low, high = np.percentile(source[valid].astype(np.float64), [1, 99])
        expected = np.where(valid, np.clip((source - low) / (high - low), 0, 1), 0)
        np.testing.assert_allclose(result.arrays[key], expected, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(record["intensity"][key]["values"], [low, high], rtol=1e-6)

    # step 7: keep_labels [3, 1] -> 1, 2; the fixed label is the 1 mm label cropped and renumbered
    table = np.zeros(4, dtype=np.uint8)
    table[[3, 1]] = [1, 2]
    np.testing.assert_array_equal(result.arrays["fixed_label"], table[fixed_label_1mm[window]])
    assert record["keep_labels"] == {"3": 1, "1": 2}
    assert record["output_label_values"] == {"moving_label": [1, 2], "fixed_label": [1, 2]}
    # the aligned moving label overlaps the fixed one
    assert dice(result.arrays["moving_label"] == 2, result.arrays["fixed_label"] == 2) > 0.9

    # the output geometry: the crop's first voxel where it was on the fixed grid
    assert result.geometry.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(result.geometry.origin, np.asarray(fixed.GetOrigin()) + start * 1.0)
    assert record["output_grid"]["size"] == [40, 36, 30]
    assert all(a.shape == (40, 36, 30) for a in result.arrays.values())
    assert result.arrays["moving_label"].dtype == np.uint8 and result.arrays["fixed_image"].dtype == np.float32


def test_crop_larger_than_the_field_of_view_zero_pads(phantom):
    pair, _ = phantom
    options = PreprocessOptions(crop_size=(50, 44, 40), percentiles=None)  # fixed grid 40 x 40 x 32, as read
    result = preprocess_pair(pair, options)
    fixed = _array(sitk.ReadImage(pair.fixed_image))
    # grid centre: start = floor((n - 1) / 2 - (size - 1) / 2 + 0.5)
    start = [int(np.floor((n - 1) / 2 - (s - 1) / 2 + 0.5)) for n, s in zip((40, 40, 32), (50, 44, 40))]
    assert start == [-5, -2, -4] and result.record["crop"]["start_index"] == start
    expected = np.zeros((50, 44, 40), dtype=np.float32)
    expected[5:45, 2:42, 4:36] = fixed
    np.testing.assert_array_equal(result.arrays["fixed_image"], expected)
    label = _array(sitk.ReadImage(pair.fixed_label))
    assert np.all(result.arrays["fixed_label"][:5] == 0) and np.array_equal(
        result.arrays["fixed_label"][5:45, 2:42, 4:36], label
    )
    np.testing.assert_allclose(result.geometry.origin, np.array([-5 * 1.2, -2 * 1.2, -4 * 1.5]))
    # the moving image, without alignment, is resampled onto the fixed grid: voxels it does not cover are 0
    assert result.record["rigid"]["method"] == "none"
    assert result.record["intensity"]["moving_image"]["outside_field_of_view_voxels"] > 0
    assert result.arrays["moving_image"][0, 0, 0] == 0.0


def test_2d_pair(tmp_path):
    truth = rigid(2, (0.12,), (2.0, -2.5))
    files = write_phantom_folder(
        str(tmp_path), {"slice": truth}, fixed_shape=(40, 40), moving_shape=(48, 48),
        fixed_geometry=ImageGeometry((1.2, 1.2), (0.0, 0.0), np.eye(2)),
    )  # fmt: skip
    pair = _pair(files, "slice")
    options = PreprocessOptions(spacing=1.0, align="label", align_labels=[1, 2, 3], crop_size=(44, 40))
    result = preprocess_pair(pair, options)
    assert result.arrays["fixed_image"].shape == (44, 40) and result.geometry.ndim == 2
    assert result.record["rigid"]["type"] == "Euler2DTransform"
    assert result.record["rigid"]["angles_rad"][0] == pytest.approx(0.12, abs=np.radians(1.5))
    assert dice(result.arrays["moving_label"] > 0, result.arrays["fixed_label"] > 0) > 0.93


# ---------------------------------------------------------------------------------------------- bad input
def test_absent_alignment_label_names_file_and_value(phantom):
    pair, _ = phantom
    with pytest.raises(DataError, match=r"label file .*moving_labels/p1.nii.gz has no voxel of label value\(s\) \[9\]"):
        check_pair(pair, PreprocessOptions(align="label", align_labels=[1, 9]))
    with pytest.raises(
        DataError, match=r"fixed_labels/p1.nii.gz has no voxel of label value\(s\) \[8\] needed by the crop"
    ):
        check_pair(pair, PreprocessOptions(crop_size=[8, 8, 8], crop_labels=[8]))


def test_image_label_geometry_mismatch_names_both_files(tmp_path, phantom):
    pair, _ = phantom
    image = np.zeros((10, 10, 10), np.float32)
    label = np.zeros((10, 10, 10), np.uint8)
    save_image(image, str(tmp_path / "img.nii.gz"), ImageGeometry((1.0, 1.0, 1.0), (0, 0, 0), np.eye(3)))
    save_image(label, str(tmp_path / "lab.nii.gz"), ImageGeometry((1.0, 1.0, 1.0), (0, 2.5, 0), np.eye(3)))
    bad = PairFiles(
        "p1", pair.moving_image, str(tmp_path / "img.nii.gz"), pair.moving_label, str(tmp_path / "lab.nii.gz")
    )
    with pytest.raises(
        DataError, match=r"fixed image .*img.nii.gz and its label .*lab.nii.gz differ in geometry \(origin"
    ):
        check_pair(bad, PreprocessOptions())
    save_image(label[:9], str(tmp_path / "small.nii.gz"))
    bad = PairFiles(
        "p1", str(tmp_path / "img.nii.gz"), pair.fixed_image, str(tmp_path / "small.nii.gz"), pair.fixed_label
    )
    with pytest.raises(
        DataError, match=r"moving image .*img.nii.gz and its label .*small.nii.gz differ in geometry \(size"
    ):
        check_pair(bad, PreprocessOptions())


def test_memory_limit_says_the_size_needed(phantom):
    pair, _ = phantom
    options = PreprocessOptions(spacing=0.25, crop_size=(200, 200, 200), max_memory_gb=0.25)
    with pytest.raises(ValueError) as info:
        check_pair(pair, options)
    message = str(info.value)
    # at 0.25 mm the 48 mm fixed grid is 192^3 voxels and the moving one too; the crop 200^3
    voxels = {"moving_input": 48**3, "fixed_input": 40 * 40 * 32, "moving": 192**3, "fixed": 192**3, "crop": 200**3}
    expected = 8 * (voxels["moving_input"] + voxels["fixed_input"]) + 16 * voxels["moving"] + 24 * voxels["fixed"]
    expected += 24 * voxels["crop"]
    assert f"about {expected / 2**30:.2f} GiB ({expected} bytes)" in message
    assert "192x192x192 (7077888 voxels)" in message and "the crop 200x200x200 (8000000 voxels)" in message
    assert "above max_memory_gb=0.25" in message and "--spacing" in message
    assert check_pair(pair, PreprocessOptions(spacing=1.0, max_memory_gb=0.25)).memory.bytes < 0.25 * 2**30


def test_labels_needed_non_integer_and_channel_files(tmp_path, phantom):
    pair, _ = phantom
    no_labels = PairFiles("p1", pair.moving_image, pair.fixed_image)
    with pytest.raises(DataError, match="pair p1 has no label files, but the options need them"):
        check_pair(no_labels, PreprocessOptions(keep_labels=[1]))
    assert check_pair(no_labels, PreprocessOptions(align="image")).ndim == 3
    geometry = ImageGeometry((1.2, 1.2, 1.5), (0, 0, 0), np.eye(3))
    save_image(np.full((40, 40, 32), 0.5, np.float32), str(tmp_path / "soft.nii.gz"), geometry)
    bad = PairFiles("p1", pair.moving_image, pair.fixed_image, pair.moving_label, str(tmp_path / "soft.nii.gz"))
    with pytest.raises(DataError, match=r"label file .*soft.nii.gz has 51200 voxel\(s\) that are not whole numbers"):
        check_pair(bad, PreprocessOptions())
    save_image(np.zeros((40, 40, 32, 3), np.uint8), str(tmp_path / "onehot.nii.gz"), geometry)
    bad = PairFiles("p1", pair.moving_image, pair.fixed_image, pair.moving_label, str(tmp_path / "onehot.nii.gz"))
    with pytest.raises(DataError, match=r"fixed_label file .*onehot.nii.gz has shape \(40, 40, 32, 3\)"):
        check_pair(bad, PreprocessOptions())
    with pytest.raises(ValueError, match="crop_size must be 3 positive integers"):
        check_pair(pair, PreprocessOptions(crop_size=(10, 10)))
    with pytest.raises(ValueError, match="spacing must be one or 3 positive numbers"):
        check_pair(pair, PreprocessOptions(spacing=(1.0, 1.0)))
    assert os.path.isfile(pair.moving_image)


def test_thin_grids_and_simpleitk_failures_name_the_files(tmp_path, phantom, monkeypatch):
    pair, _ = phantom
    save_image(np.zeros((30, 30, 1), np.float32), str(tmp_path / "slice.nii.gz"))
    thin = PairFiles("thin", str(tmp_path / "slice.nii.gz"), str(tmp_path / "slice.nii.gz"))
    with pytest.raises(DataError, match=r"moving image .*slice.nii.gz has \(30, 30, 1\) voxels at the chosen spacing"):
        check_pair(thin, PreprocessOptions(align="image"))
    assert check_pair(thin, PreprocessOptions(align="none")).ndim == 3

    def broken(*args, **kwargs):
        raise RuntimeError("Exception thrown in SimpleITK\nsitk::ERROR: something inside ITK")

    monkeypatch.setattr("tfreg.data.pair_preprocessing.align_on_images", broken)
    with pytest.raises(DataError, match=r"pair p1: the rigid alignment \(image\) of .*moving_images/p1.nii.gz to .*"
                       r"fixed_images/p1.nii.gz failed: sitk::ERROR: something inside ITK"):  # fmt: skip
        preprocess_pair(pair, PreprocessOptions(align="image"))


def test_shape_keeps_the_physical_extent(phantom):
    pair, _ = phantom
    result = preprocess_pair(pair, PreprocessOptions(shape=(20, 16, 24), percentiles=None))
    # the fixed grid as read: 40 x 40 x 32 voxels of 1.2 x 1.2 x 1.5 mm, origin 0, identity direction; by hand:
    # spacing 40 * 1.2 / 20 = 2.4, 40 * 1.2 / 16 = 3.0, 32 * 1.5 / 24 = 2.0; origin + (new - old spacing) / 2
    fixed = sitk.ReadImage(pair.fixed_image)
    assert fixed.GetSize() == (40, 40, 32) and np.allclose(fixed.GetSpacing(), (1.2, 1.2, 1.5))
    np.testing.assert_allclose(result.geometry.spacing, (2.4, 3.0, 2.0))
    np.testing.assert_allclose(np.asarray(result.geometry.origin) - fixed.GetOrigin(), (0.6, 0.9, 0.25), atol=1e-9)
    np.testing.assert_allclose(result.geometry.direction, np.eye(3))
    # the outer corners (first corner - half a voxel, far corner + half a voxel) are the input's
    for geometry_spacing, origin, size in (
        (fixed.GetSpacing(), fixed.GetOrigin(), fixed.GetSize()),
        (result.geometry.spacing, result.geometry.origin, (20, 16, 24)),
    ):
        low = np.asarray(origin) - np.asarray(geometry_spacing) / 2
        np.testing.assert_allclose(low, np.asarray(fixed.GetOrigin()) - np.asarray(fixed.GetSpacing()) / 2)
        np.testing.assert_allclose(low + np.asarray(size) * geometry_spacing, low + (48.0, 48.0, 48.0))
    assert all(a.shape == (20, 16, 24) for a in result.arrays.values())
    # the fixed image, independently: SimpleITK's Lanczos resampling onto that grid
    expected = _array(
        sitk.Resample(
            fixed, (20, 16, 24), sitk.Transform(), sitk.sitkLanczosWindowedSinc, (0.6, 0.9, 0.25), (2.4, 3.0, 2.0),
            fixed.GetDirection(), 0.0, sitk.sitkFloat32,
        )
    )  # fmt: skip
    np.testing.assert_allclose(result.arrays["fixed_image"], expected, rtol=1e-5, atol=1e-3)
    label = _array(sitk.ReadImage(pair.fixed_label))
    # nearest neighbour: voxel (i, j, k) of the new grid sits at 0.6 + 2.4 i mm = old index 0.5 + 2 i (a tie,
    # which ITK rounds up: 1 + 2 i), 0.9 + 3 j mm = old index 0.75 + 2.5 j, 0.25 + 2 k mm = 1/6 + 4 k / 3; the
    # z ties (k = 1, 4, ...: index n + 1/2 up to float rounding either way) are left out of the comparison
    i = 1 + 2 * np.arange(20)
    j = np.floor(0.75 + 2.5 * np.arange(16) + 0.5).astype(int)
    z = 1 / 6 + 4 / 3 * np.arange(24)
    untied = np.abs(z - np.floor(z) - 0.5) > 1e-6
    k = np.floor(z + 0.5).astype(int)
    assert untied.sum() == 16
    np.testing.assert_array_equal(result.arrays["fixed_label"][..., untied], label[np.ix_(i, j, k[untied])])
    assert result.record["shape"]["size"] == [20, 16, 24] and result.record["shape"]["from_size"] == [40, 40, 32]
    np.testing.assert_allclose(result.record["shape"]["from_spacing"], [1.2, 1.2, 1.5], atol=1e-6)  # NIfTI float32
    assert result.record["output_grid"]["size"] == [20, 16, 24]


def test_shape_after_a_crop(phantom):
    pair, _ = phantom
    options = PreprocessOptions(crop_size=(20, 20, 16), shape=(10, 10, 8), percentiles=None)
    result = preprocess_pair(pair, options)
    # the crop box at the grid centre: start floor((n - 1) / 2 - (size - 1) / 2 + 0.5) = 10, 10, 8; its extent
    # 20 * 1.2 = 24 mm (x, y), 16 * 1.5 = 24 mm (z) resampled to 10, 10, 8 voxels: spacing 2.4, 2.4, 3.0
    assert result.record["crop"]["start_index"] == [10, 10, 8]
    np.testing.assert_allclose(result.geometry.spacing, (2.4, 2.4, 3.0))
    box_origin = np.array([10 * 1.2, 10 * 1.2, 8 * 1.5])
    np.testing.assert_allclose(result.geometry.origin, box_origin + (0.6, 0.6, 0.75), atol=1e-9)
    assert result.arrays["fixed_image"].shape == (10, 10, 8)


def test_rigid_then_affine_alignment(tmp_path):
    # the blob pair related by a known affine, as files: a rigid MI stage, then the affine stage started from it
    fixed, moving, geometry, _ = blob_pair(3)
    paths = {name: str(tmp_path / f"{name}.nii.gz") for name in ("moving", "fixed")}
    save_image(moving, paths["moving"], geometry)
    save_image(fixed, paths["fixed"], geometry)
    pair = PairFiles("blobs", paths["moving"], paths["fixed"])
    settings = RegistrationSettings(mi_bins=64)  # as in tests/data/test_affine_alignment.py
    options = PreprocessOptions(align="image", align_transform="rigid_affine", percentiles=None, registration=settings)
    result = preprocess_pair(pair, options)
    record = result.record["rigid"]
    assert isinstance(result.rigid.transform, sitk.AffineTransform) and record["type"] == "AffineTransform"
    assert record["angles_rad"] is None and record["metric"] == "mattes_mutual_information"
    stage = record["stages"][0]
    assert stage["type"] == "Euler3DTransform" and stage["method"] == "image" and stage["stages"] == []
    # the rigid stage cannot scale or shear; the affine one recovers the matrix (tolerance as in
    # tests/data/test_affine_alignment.py)
    np.testing.assert_allclose(record["matrix"], MATRICES[3], atol=0.03)
    assert np.abs(np.asarray(stage["matrix"]) - MATRICES[3]).max() > 0.05
