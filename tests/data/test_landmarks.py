"""tfreg/data/landmarks.py and the paired loader's landmarks: coordinates against SimpleITK and hand values."""

import logging
import os

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.helpers import OBLIQUE, write_paired
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders import H5FileLoader, NiftiFileLoader
from tfreg.data.geometry import ImageGeometry
from tfreg.data.landmarks import (
    field_at,
    index_to_model,
    index_to_physical,
    landmark_path,
    move_through_ddf,
    pad_landmarks,
    pair_by_number,
    physical_to_index,
    read_landmarks,
    read_numbered_landmarks,
    write_landmarks,
)
from tfreg.data.loaders import PairedDataLoader

#: file grid of the synthetic pair, and the model grids it is resized to
FILE_SHAPE = (8, 10, 12)
MOVING_SHAPE, FIXED_SHAPE = (4, 5, 6), (16, 10, 6)
#: known voxel positions (0-based, continuous) of the landmarks, numbered 3, 7, 9 in the moving file
MOVING_VOXELS = {3: (1.0, 2.0, 3.0), 7: (6.5, 0.0, 11.0), 9: (0.25, 9.0, 5.5)}
#: fixed file: numbers 7, 3, 12 (unordered; 9 missing, 12 extra)
FIXED_VOXELS = {7: (2.0, 4.0, 6.0), 3: (7.0, 1.5, 0.0), 12: (3.0, 3.0, 3.0)}


def sitk_physical(voxels, geometry: ImageGeometry):
    """mm of voxel indices by SimpleITK (the reference, independent of tfreg's formula)."""
    ref = sitk.Image([int(n) for n in FILE_SHAPE[: geometry.ndim]], sitk.sitkFloat32)
    geometry.apply_to_sitk(ref)
    return [ref.TransformContinuousIndexToPhysicalPoint([float(c) for c in v]) for v in voxels]


def write_csv(path, numbers, points, header="Landmark,X,Y,Z"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if header:
            f.write(header + "\n")
        for n, p in zip(numbers, points):
            f.write(",".join([str(n)] + [repr(float(c)) for c in p]) + "\n")


def write_case(root, case="case1", geometry=OBLIQUE, moving=MOVING_VOXELS, fixed=FIXED_VOXELS):
    write_paired(str(root), [case], moving_shape=FILE_SHAPE, fixed_shape=FILE_SHAPE, num_labels=1, geometry=geometry)
    for folder, voxels in (("moving_landmarks", moving), ("fixed_landmarks", fixed)):
        write_csv(
            os.path.join(str(root), folder, case + ".csv"), list(voxels), sitk_physical(voxels.values(), geometry)
        )


def loader(root, labeled=False, **kwargs):
    args = dict(
        file_loader=NiftiFileLoader,
        data_dir_paths=[str(root)],
        labeled=labeled,
        sample_label="all",
        seed=0,
        moving_image_shape=MOVING_SHAPE,
        fixed_image_shape=FIXED_SHAPE,
        landmarks=True,
    )
    args.update(kwargs)
    return PairedDataLoader(**args)


def half_pixel(v, n_in, n_out):
    """The resize's source rule, src = (o + 0.5) n_in / n_out - 0.5, solved for o by hand."""
    return (np.asarray(v) + 0.5) * np.asarray(n_out) / np.asarray(n_in) - 0.5


# ---------------------------------------------------------------------- files and coordinates
def test_read_numbered_landmarks_brats_and_plain(tmp_path):
    path = str(tmp_path / "a.csv")
    write_csv(path, [4, 1, 10], [(1, 2, 3), (4, 5, 6), (-7, -8.5, 9)])
    numbers, points = read_numbered_landmarks(path)
    np.testing.assert_array_equal(numbers, [4, 1, 10])
    np.testing.assert_array_equal(points, [[1, 2, 3], [4, 5, 6], [-7, -8.5, 9]])
    np.testing.assert_array_equal(read_landmarks(path), points)
    plain = tmp_path / "b.txt"
    plain.write_text("1 2\n3 4\n")
    numbers, points = read_numbered_landmarks(str(plain))
    np.testing.assert_array_equal(numbers, [1, 2])  # rows numbered in order
    np.testing.assert_array_equal(points, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text, match",
    [
        ("Landmark,X,Y,Z\n1,0,0,0\n1,1,1,1\n", r"number\(s\) \[1\] appear more than once"),
        ("Landmark,X,Y,Z\n1.5,0,0,0\n", r"line 2: landmark number '1.5' is not an integer"),
        ("Landmark,X,Y,Z\nA,0,0,0\n", r"line 2: landmark number 'A' is not an integer"),
    ],
)
def test_read_numbered_landmarks_bad_numbers(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=str(path).replace("\\", "\\\\") + ".*" + match):
        read_numbered_landmarks(str(path))


def test_missing_landmark_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="nothere.csv does not exist"):
        read_numbered_landmarks(str(tmp_path / "nothere.csv"))


def test_physical_to_index_matches_sitk():
    rng = np.random.default_rng(0)
    voxels = rng.uniform(-1, 9, size=(6, 3))
    mm = np.asarray(sitk_physical(voxels, OBLIQUE))
    np.testing.assert_allclose(physical_to_index(mm, OBLIQUE), voxels, atol=1e-9)
    np.testing.assert_allclose(index_to_physical(voxels, OBLIQUE), mm, atol=1e-9)
    # a non-orthonormal (sheared) direction is inverted exactly too
    sheared = ImageGeometry(spacing=(2.0, 0.5), origin=(3.0, -4.0), direction=np.array([[1.0, 0.3], [0.0, 1.0]]))
    voxels2 = rng.uniform(0, 5, size=(4, 2))
    np.testing.assert_allclose(physical_to_index(np.asarray(sitk_physical(voxels2, sheared)), sheared), voxels2)


def test_index_to_model_agrees_with_the_resized_geometry():
    # the model index of a point is its continuous index on ImageGeometry.resized (checked by SimpleITK)
    voxels = np.array([[0.0, 0.0, 0.0], [7.0, 9.0, 11.0], [3.3, 4.1, 0.7]])
    mm = sitk_physical(voxels, OBLIQUE)
    model = OBLIQUE.resized(FILE_SHAPE, FIXED_SHAPE)
    ref = sitk.Image(list(FIXED_SHAPE), sitk.sitkFloat32)
    model.apply_to_sitk(ref)
    expected = [ref.TransformPhysicalPointToContinuousIndex(p) for p in mm]
    np.testing.assert_allclose(index_to_model(voxels, FILE_SHAPE, FIXED_SHAPE), expected, atol=1e-9)
    # and the hand formula: halving an axis maps v to v / 2 - 0.25
    np.testing.assert_allclose(index_to_model([[2.0, 0, 0]], (8, 1, 1), (4, 1, 1))[0, 0], 0.75)


def test_pair_by_number_and_padding():
    numbers, moving, fixed = pair_by_number(
        (np.array([3, 7, 9]), np.arange(9.0).reshape(3, 3)),
        (np.array([7, 3, 12]), -np.arange(9.0).reshape(3, 3)),
        "m.csv",
        "f.csv",
    )
    np.testing.assert_array_equal(numbers, [3, 7])
    np.testing.assert_array_equal(moving, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(fixed, [[-3, -4, -5], [0, -1, -2]])
    with pytest.raises(DataError, match=r"m.csv \(numbers \[1\]\) and f.csv \(numbers \[2\]\) have no landmark"):
        pair_by_number((np.array([1]), np.zeros((1, 3))), (np.array([2]), np.zeros((1, 3))), "m.csv", "f.csv")
    padded, mask = pad_landmarks(moving, 4)
    np.testing.assert_array_equal(padded, [[0, 1, 2], [3, 4, 5], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask, [1, 1, 0, 0])
    assert padded.dtype == mask.dtype == np.float32
    with pytest.raises(DataError, match="2 landmarks do not fit max_landmarks = 1"):
        pad_landmarks(moving, 1)


def test_landmark_path(tmp_path):
    assert landmark_path(("/d", "sub/case1"), "moving_landmarks") == os.path.join(
        "/d", "moving_landmarks", "sub/case1.csv"
    )
    folder = tmp_path / "moving_landmarks"
    folder.mkdir()
    (folder / "case1.txt").write_text("1 2 3\n")
    assert landmark_path((str(tmp_path), "case1"), "moving_landmarks") == str(folder / "case1.txt")
    (folder / "case1.csv").write_text("1,2,3\n")
    with pytest.raises(DataError, match=r"case1.csv and .*case1.txt both exist"):
        landmark_path((str(tmp_path), "case1"), "moving_landmarks")


def test_write_landmarks_reads_back_exactly(tmp_path):
    points = np.array([[0.1, -2.0 / 3.0, 1e-7], [5.0, 6.25, -7.5]])
    write_landmarks(str(tmp_path / "p.csv"), points)
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "Landmark,X,Y,Z"
    numbers, back = read_numbered_landmarks(str(tmp_path / "p.csv"))
    np.testing.assert_array_equal(numbers, [1, 2])
    np.testing.assert_array_equal(back, points)
    write_landmarks(str(tmp_path / "q.csv"), points[:, :2])
    assert (tmp_path / "q.csv").read_text().splitlines()[0] == "Landmark,X,Y"


# ---------------------------------------------------------------------- landmarks through a DDF
def _grid(shape):
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)


def _multilinear_field(x, ndim, rng_seed=0):
    """An analytic displacement (voxels) at points ``x (..., ndim)``: affine plus products of distinct
    coordinates (x0 x1, x1 x2, x0 x1 x2), i.e. linear in each coordinate separately."""
    rng = np.random.default_rng(rng_seed)
    matrix = rng.uniform(-0.2, 0.2, (ndim, ndim))
    shift = rng.uniform(-2.0, 2.0, ndim)
    cross = rng.uniform(-0.03, 0.03, (ndim, 3))
    u = x @ matrix.T + shift
    u = u + cross[:, 0] * (x[..., :1] * x[..., 1:2])
    if ndim == 3:
        u = u + cross[:, 1] * (x[..., 1:2] * x[..., 2:3]) + cross[:, 2] * (x[..., 0:1] * x[..., 1:2] * x[..., 2:3]) / 10
    return u


@pytest.mark.parametrize("shape", [(9, 10, 11), (12, 13)])
def test_landmarks_move_through_an_analytic_ddf(shape):
    # a field linear in each coordinate (affine plus x0 x1, ...) is reproduced exactly by linear
    # interpolation, so the moved points must be f + u(f) from the formula, at any fractional position
    ndim = len(shape)
    ddf = _multilinear_field(_grid(shape), ndim).astype(np.float32)
    rng = np.random.default_rng(1)
    points = rng.uniform(0.0, 1.0, (40, ndim)) * (np.asarray(shape) - 1)
    expected = points + _multilinear_field(points, ndim)
    moved = move_through_ddf(points, ddf)
    assert moved.shape == (40, ndim)
    assert np.max(np.abs(moved - expected)) < 1e-4  # voxels (float32 field: about 1e-6)
    # at the voxel centres the field's own values come back
    corners = np.array([[0.0] * ndim, list(np.asarray(shape) - 1.0)])
    np.testing.assert_allclose(move_through_ddf(corners, ddf), corners + _multilinear_field(corners, ndim), atol=1e-5)


def test_ddf_is_interpolated_linearly_between_voxels():
    # u = (c x0^2, 0, 0) is not multilinear: linear interpolation between x0 = k and k + 1 adds c t (1 - t),
    # t = x0 - k, to the exact c x0^2 (the chord above the parabola); the exact error, by hand
    shape, c = (7, 5, 6), 0.05
    grid = _grid(shape)
    ddf = np.zeros(shape + (3,))
    ddf[..., 0] = c * grid[..., 0] ** 2
    points = np.array([[1.25, 2.0, 3.5], [4.5, 0.3, 0.0], [5.9, 4.0, 5.0], [3.0, 1.0, 1.0]])
    t = points[:, 0] - np.floor(points[:, 0])
    expected = points.copy()
    expected[:, 0] += c * (points[:, 0] ** 2 + t * (1 - t))
    np.testing.assert_allclose(move_through_ddf(points, ddf), expected, atol=1e-12)
    # beyond the grid the edge value is repeated (points a fraction of a voxel outside still move)
    np.testing.assert_allclose(field_at(ddf, np.array([[-0.4, 1.0, 1.0], [6.4, 1.0, 1.0]]))[:, 0], [0.0, c * 36])


def test_move_through_ddf_bad_shapes():
    with pytest.raises(ValueError, match=r"ddf must be \(\*spatial, ndim\)"):
        move_through_ddf(np.zeros((2, 3)), np.zeros((4, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"points must be \(N, 3\)"):
        move_through_ddf(np.zeros((2, 2)), np.zeros((4, 4, 4, 3)))


# ---------------------------------------------------------------------- the paired loader
def test_paired_loader_landmarks_in_model_voxels(tmp_path, caplog):
    write_case(tmp_path)
    with caplog.at_level(logging.WARNING), loader(tmp_path, max_landmarks=4) as data:
        sample = data.load_resized_sample([0], [])
    assert "[9, 12]" in caplog.text and "dropped" in caplog.text
    # numbers 3 and 7 are in both files; in increasing number order
    moving = half_pixel([MOVING_VOXELS[3], MOVING_VOXELS[7]], FILE_SHAPE, MOVING_SHAPE)
    fixed = half_pixel([FIXED_VOXELS[3], FIXED_VOXELS[7]], FILE_SHAPE, FIXED_SHAPE)
    np.testing.assert_allclose(sample["moving_landmarks"][:2], moving, atol=1e-5)
    np.testing.assert_allclose(sample["fixed_landmarks"][:2], fixed, atol=1e-5)
    # by hand for one point: moving (1, 2, 3) on 8->4, 10->5, 12->6 is (0.25, 0.75, 1.25)
    np.testing.assert_allclose(sample["moving_landmarks"][0], [0.25, 0.75, 1.25], atol=1e-5)
    np.testing.assert_array_equal(sample["moving_landmarks"][2:], 0)
    np.testing.assert_array_equal(sample["landmark_mask"], [1, 1, 0, 0])
    assert sample["moving_landmarks"].shape == (4, 3) and sample["landmark_mask"].shape == (4,)
    assert "moving_roi" not in sample


def test_paired_loader_landmarks_identity_geometry_and_h5(tmp_path):
    # HDF5 files carry no geometry: mm are voxel indices (spacing 1, origin 0)
    write_paired(str(tmp_path), ["a", "b"], moving_shape=FILE_SHAPE, fixed_shape=FILE_SHAPE, num_labels=None, fmt="h5")
    write_csv(str(tmp_path / "moving_landmarks" / "a.csv"), [1], [(1.0, 2.0, 3.0)])
    write_csv(str(tmp_path / "fixed_landmarks" / "a.csv"), [1], [(2.0, 2.0, 2.0)])
    write_csv(str(tmp_path / "moving_landmarks" / "b.csv"), [1, 2, 3], [(0, 0, 0)] * 3)
    write_csv(str(tmp_path / "fixed_landmarks" / "b.csv"), [1, 2, 3], [(1, 1, 1)] * 3)
    with loader(tmp_path, file_loader=H5FileLoader, moving_image_shape=FILE_SHAPE) as data:
        assert data.max_landmarks == 3  # the largest count of the split
        a, b = data.load_resized_sample([0], []), data.load_resized_sample([1], [])
    np.testing.assert_allclose(a["moving_landmarks"][0], [1, 2, 3])
    np.testing.assert_array_equal(a["landmark_mask"], [1, 0, 0])
    np.testing.assert_array_equal(b["landmark_mask"], [1, 1, 1])


def test_paired_loader_2d(tmp_path):
    geometry = ImageGeometry(spacing=(0.5, 2.0), origin=(-3.0, 7.0), direction=np.array([[0.0, 1.0], [1.0, 0.0]]))
    shape = FILE_SHAPE[:2]
    write_paired(str(tmp_path), ["c"], moving_shape=shape, fixed_shape=shape, num_labels=None, geometry=geometry)
    voxels = [(1.0, 3.0), (6.0, 8.5)]
    for folder in ("moving_landmarks", "fixed_landmarks"):
        write_csv(str(tmp_path / folder / "c.csv"), [1, 2], sitk_physical(voxels, geometry), header="Landmark,X,Y")
    with loader(tmp_path, moving_image_shape=(4, 5), fixed_image_shape=(8, 10), landmark_roi_size=3) as data:
        sample = data.load_resized_sample([0], [])
    np.testing.assert_allclose(sample["moving_landmarks"], half_pixel(voxels, shape, (4, 5)), atol=1e-5)
    np.testing.assert_allclose(sample["fixed_landmarks"], voxels, atol=1e-5)
    assert sample["moving_roi"].shape == (4, 5) and sample["fixed_roi"].shape == (8, 10)
    expected = np.zeros((8, 10), np.float32)
    expected[0:3, 2:5] = 1  # around (1, 3)
    expected[5:8, 8:10] = 1  # around (6, 8.5) -> voxel (6, 9), cut at the edge
    np.testing.assert_array_equal(sample["fixed_roi"], expected)


def _write_voxel_txt(path, voxels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# 0-based voxel indices, one landmark per row\n")
        for v in voxels:
            f.write(" ".join(repr(float(c)) for c in v) + "\n")


def test_paired_loader_voxel_units_from_txt(tmp_path):
    # landmark_units: voxel takes the points as file voxel indices: the oblique geometry plays no part
    write_paired(
        str(tmp_path), ["case1"], moving_shape=FILE_SHAPE, fixed_shape=FILE_SHAPE, num_labels=None, geometry=OBLIQUE
    )
    moving, fixed = [(1.0, 2.0, 3.0), (6.5, 0.0, 11.0)], [(7.0, 1.5, 0.0), (2.0, 4.0, 6.0)]
    _write_voxel_txt(str(tmp_path / "moving_landmarks" / "case1.txt"), moving)
    _write_voxel_txt(str(tmp_path / "fixed_landmarks" / "case1.txt"), fixed)
    with loader(tmp_path, landmark_units="voxel") as data:
        assert data.landmark_units == "voxel"
        sample = data.load_resized_sample([0], [])
    np.testing.assert_allclose(sample["moving_landmarks"], half_pixel(moving, FILE_SHAPE, MOVING_SHAPE), atol=1e-5)
    np.testing.assert_allclose(sample["fixed_landmarks"], half_pixel(fixed, FILE_SHAPE, FIXED_SHAPE), atol=1e-5)
    # the same points written in mm (physical, the default) give the same sample
    for folder, voxels in (("moving_landmarks", moving), ("fixed_landmarks", fixed)):
        os.remove(tmp_path / folder / "case1.txt")
        write_csv(str(tmp_path / folder / "case1.csv"), [1, 2], sitk_physical(voxels, OBLIQUE))
    with loader(tmp_path) as data:
        physical = data.load_resized_sample([0], [])
    np.testing.assert_allclose(physical["moving_landmarks"], sample["moving_landmarks"], atol=1e-5)
    np.testing.assert_allclose(physical["fixed_landmarks"], sample["fixed_landmarks"], atol=1e-5)


def test_voxel_landmark_outside_the_image_names_the_units(tmp_path):
    write_paired(str(tmp_path), ["case1"], moving_shape=FILE_SHAPE, fixed_shape=FILE_SHAPE, num_labels=None)
    _write_voxel_txt(str(tmp_path / "moving_landmarks" / "case1.txt"), [(1.0, 10.0, 1.0)])
    _write_voxel_txt(str(tmp_path / "fixed_landmarks" / "case1.txt"), [(1.0, 1.0, 1.0)])
    with pytest.raises(DataError, match=r"case1.txt: landmark 1 at voxel \[1.0, 10.0, 1.0\].*landmark_units: voxel"):
        loader(tmp_path, landmark_units="voxel")


def test_landmarks_off_ignores_the_folders(tmp_path):
    write_case(tmp_path)
    os.remove(tmp_path / "fixed_landmarks" / "case1.csv")
    with loader(tmp_path, landmarks=False) as data:
        sample = data.load_resized_sample([0], [])
        assert set(sample) == {"moving_image", "fixed_image"}
        assert set(data.sample_spec()) == {"moving_image", "fixed_image"}


def test_missing_landmark_csv_names_the_file(tmp_path):
    write_case(tmp_path)
    os.remove(tmp_path / "fixed_landmarks" / "case1.csv")
    expected = os.path.join(str(tmp_path), "fixed_landmarks", "case1.csv")
    with pytest.raises(DataNotFoundError, match=f"has no landmark file: expected {expected}"):
        loader(tmp_path)


def test_no_common_landmark_number(tmp_path):
    write_case(tmp_path, moving={1: (1.0, 1.0, 1.0)}, fixed={2: (1.0, 1.0, 1.0)})
    with pytest.raises(DataError, match="have no landmark number in common"):
        loader(tmp_path)


def test_landmark_outside_the_image_is_an_error(tmp_path):
    write_case(tmp_path, moving={1: (1.0, 1.0, 1.0), 2: (8.6, 1.0, 1.0)})
    with pytest.raises(DataError, match=r"moving_landmarks.case1.csv: landmark 2 at voxel \[8.6, 1.0, 1.0\].*outside"):
        loader(tmp_path)


def test_landmark_dimension_must_match(tmp_path):
    write_case(tmp_path)
    write_csv(str(tmp_path / "moving_landmarks" / "case1.csv"), [1], [(1.0, 2.0)], header="Landmark,X,Y")
    with pytest.raises(DataError, match="has 2 coordinates per point but the images are 3-D"):
        loader(tmp_path)


def test_max_landmarks_too_small(tmp_path):
    write_case(tmp_path)
    with pytest.raises(DataError, match="max_landmarks is 1 but .*moving_landmarks.case1.csv has 2 landmarks"):
        loader(tmp_path, max_landmarks=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"landmarks": "yes"}, "landmarks must be true or false"),
        ({"max_landmarks": 0}, "max_landmarks must be a positive int or null"),
        ({"landmark_roi_size": 4}, "landmark_roi_size must be a positive odd int"),
        ({"landmarks": False, "landmark_roi_size": 9}, "needs landmarks: true"),
        ({"landmark_units": "mm"}, r"landmark_units must be one of \['physical', 'voxel'\], got 'mm'"),
    ],
)
def test_bad_landmark_options(tmp_path, kwargs, match):
    write_case(tmp_path)
    with pytest.raises(ValueError, match=match):
        loader(tmp_path, **kwargs)


def test_dataset_with_labels_and_landmarks(tmp_path):
    # tf.data: every label sample of a pair carries the pair's landmarks and ROI maps
    from tfreg.data.pipeline import sample_dataset

    write_case(tmp_path, "a")
    write_case(tmp_path, "b", moving={1: (2.0, 2.0, 2.0)}, fixed={1: (3.0, 3.0, 3.0)})
    with loader(tmp_path, labeled=True, landmark_roi_size=3) as data:
        elements = list(sample_dataset(data).as_numpy_iterator())
        assert [tuple(e["indices"]) for e in elements] == [(0.0, 0.0), (1.0, 0.0)]
        for element, case in zip(elements, (0, 1)):
            reference = data.load_resized_sample([case], [0])
            assert set(element) == set(reference) | {"indices"}
            for key, value in reference.items():
                np.testing.assert_array_equal(element[key], value[0] if key.endswith("label") else value)
        assert elements[0]["moving_landmarks"].shape == (2, 3)
        assert elements[0]["moving_roi"].shape == MOVING_SHAPE


def test_file_image_values_unchanged_by_landmarks(tmp_path):
    write_case(tmp_path)
    with loader(tmp_path) as on, loader(tmp_path, landmarks=False) as off:
        a, b = on.load_resized_sample([0], []), off.load_resized_sample([0], [])
    np.testing.assert_array_equal(a["moving_image"], b["moving_image"])
    np.testing.assert_array_equal(a["fixed_image"], b["fixed_image"])


# ---------------------------------------------------------------------- the self_paired loader
def test_self_paired_landmarks_follow_the_transform(tmp_path):
    from tests.data.helpers import write_unpaired
    from tfreg.data.loaders import SelfPairedDataLoader
    from tfreg.data.self_pair_transform import PairTransformRanges, draw_pair_transform

    write_unpaired(str(tmp_path), ["a", "b"], shape=FILE_SHAPE, num_labels=None, geometry=OBLIQUE)
    voxels = {"a": {1: (2.0, 3.0, 4.0), 2: (5.0, 5.0, 5.0)}, "b": {5: (4.0, 4.0, 6.0)}}
    for case, marks in voxels.items():
        write_csv(str(tmp_path / "landmarks" / f"{case}.csv"), list(marks), sitk_physical(marks.values(), OBLIQUE))
    ranges = dict(max_rotation=15.0, max_scale=0.1, max_shift=1.5)
    shape = (16, 16, 16)
    data = SelfPairedDataLoader(
        NiftiFileLoader, [str(tmp_path)], False, None, 0, shape, landmarks=True, landmark_roi_size=3, **ranges
    )
    assert data.max_landmarks == 2
    (indices, _), _ = list(data.sample_generator())
    sample = data.load_resized_sample(indices, [])
    fixed = half_pixel(list(voxels["a"].values()), FILE_SHAPE, shape)
    np.testing.assert_allclose(sample["fixed_landmarks"], fixed, atol=1e-5)
    # moving = image(T(x)): the moving landmark x satisfies T(x) = p, T(x) = c + A (x - c) + t
    t = draw_pair_transform(shape, PairTransformRanges(**ranges), indices[1])
    centre = np.full(3, 7.5)
    mapped = (sample["moving_landmarks"].astype(np.float64) - centre) @ t.matrix.T + centre + t.shift
    np.testing.assert_allclose(mapped, fixed, atol=1e-4)
    assert not np.allclose(sample["moving_landmarks"], sample["fixed_landmarks"], atol=0.1)
    from tfreg.data.landmark_roi import landmark_roi

    np.testing.assert_array_equal(sample["moving_roi"], landmark_roi(sample["moving_landmarks"], shape, 3))
    np.testing.assert_array_equal(sample["landmark_mask"], [1, 1])
    with pytest.raises(DataError, match="max_landmarks is 1 but the landmark file of .*a.nii.gz has 2"):
        SelfPairedDataLoader(NiftiFileLoader, [str(tmp_path)], False, None, 0, shape, landmarks=True, max_landmarks=1)
    os.remove(tmp_path / "landmarks" / "b.csv")
    with pytest.raises(DataNotFoundError, match=r"has no landmark file: expected .*landmarks.b\.csv"):
        SelfPairedDataLoader(NiftiFileLoader, [str(tmp_path)], False, None, 0, shape, landmarks=True)
