"""Cropping with zero-padding (tfreg.data.crop_pad) against NumPy indexing and the physical origin."""

import numpy as np
import pytest

from tfreg.data.crop_pad import CropBox, centred_box, check_crop_size, crop_or_pad, label_centroid
from tfreg.data.geometry import ImageGeometry

GEOMETRY = ImageGeometry(
    spacing=(0.5, 1.0, 2.0),
    origin=(3.0, -4.0, 10.0),
    direction=np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
)


def test_crop_inside_is_numpy_slicing_and_keeps_physical_positions():
    array = np.arange(20 * 18 * 16, dtype=np.float32).reshape(20, 18, 16)
    box = CropBox(start=(3, 2, 5), size=(10, 8, 6))
    out = crop_or_pad(array, box)
    np.testing.assert_array_equal(out, array[3:13, 2:10, 5:11])
    assert box.padding(array.shape) == ((0, 0), (0, 0), (0, 0))
    cropped = box.geometry(GEOMETRY)
    # every output voxel sits where its source voxel was
    for index in [(0, 0, 0), (9, 7, 5), (4, 1, 3)]:
        source = np.asarray(index) + box.start
        np.testing.assert_allclose(
            cropped.index_to_physical() @ np.append(index, 1.0), GEOMETRY.index_to_physical() @ np.append(source, 1.0)
        )
    assert cropped.spacing == GEOMETRY.spacing
    np.testing.assert_array_equal(cropped.direction, GEOMETRY.direction)


def test_crop_beyond_the_grid_zero_pads():
    array = np.arange(1, 6 * 5 + 1, dtype=np.int64).reshape(6, 5)
    box = CropBox(start=(-2, 1), size=(10, 6))
    out = crop_or_pad(array, box)
    expected = np.zeros((10, 6), dtype=np.int64)
    expected[2:8, 0:4] = array[:, 1:5]
    np.testing.assert_array_equal(out, expected)
    assert box.padding(array.shape) == ((2, 2), (0, 2))
    geometry = ImageGeometry((2.0, 3.0), (1.0, 1.0), np.eye(2))
    assert box.geometry(geometry).origin == (1.0 - 4.0, 1.0 + 3.0)
    # NaN fill for float images; trailing axes are kept
    np.testing.assert_array_equal(
        np.isnan(crop_or_pad(np.ones((4, 4, 2)), CropBox((2, 0), (4, 4)), np.nan))[..., 0][2:], True
    )
    # a box missing the grid is all padding
    np.testing.assert_array_equal(crop_or_pad(array, CropBox((10, 0), (3, 3))), 0)


def test_centred_box_on_label_centroid_and_grid_centre():
    label = np.zeros((30, 24, 20), dtype=np.int32)
    label[10:15, 4:9, 2:5] = 5  # centroid (12, 6, 3)
    label[20:22, 20:22, 15:17] = 2
    centre = label_centroid(label, [5])
    np.testing.assert_allclose(centre, [12.0, 6.0, 3.0])
    np.testing.assert_allclose(label_centroid(label, [5, 2]), np.argwhere(np.isin(label, [5, 2])).mean(axis=0))
    assert label_centroid(label, [7]) is None
    box = centred_box(label.shape, (9, 8, 10), centre)
    # the box's centre start + (size - 1) / 2 lies within half a voxel of the centroid
    box_centre = np.asarray(box.start) + (np.asarray(box.size) - 1) / 2
    assert np.all(np.abs(box_centre - centre) <= 0.5)
    assert box.start == (8, 3, -1)  # 12 - 4, 6 - 3.5 rounded half up, 3 - 4.5 rounded half up
    assert centred_box((30, 24, 20), (10, 24, 26)).start == (10, 0, -3)
    record = box.to_dict(label.shape, GEOMETRY)
    assert record["start_index"] == [8, 3, -1] and record["padding"] == [[0, 0], [0, 0], [1, 0]]
    np.testing.assert_allclose(record["origin_mm"], GEOMETRY.index_to_physical()[:3] @ np.array([8, 3, -1, 1.0]))


def test_check_crop_size():
    assert check_crop_size([4, 5], 2) == (4, 5)
    for bad in ([4], [4, 0], [4.0, 5], [True, 3]):
        with pytest.raises(ValueError, match="crop_size must be 2 positive integers"):
            check_crop_size(bad, 2)
