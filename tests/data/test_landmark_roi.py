"""tfreg/data/landmark_roi.py: cube positions against a per-voxel NumPy reference, 2-D and 3-D."""

import numpy as np
import pytest

from tfreg.data.landmark_roi import landmark_roi


def reference(points, shape, size):
    """Voxel x is inside when |x - round_half_up(p)| <= (size - 1) / 2 on every axis, for some p."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    out = np.zeros(shape, bool)
    for p in points:
        centre = np.floor(np.asarray(p) + 0.5)
        out |= np.all(np.abs(grid - centre) <= (size - 1) / 2, axis=-1)
    return out.astype(np.float32)


@pytest.mark.parametrize("shape", [(16, 12, 10), (16, 12)])
def test_roi_matches_the_reference(shape):
    rng = np.random.default_rng(len(shape))
    # inside, near edges, half-voxel positions, and one wholly outside
    points = np.concatenate(
        [rng.uniform(0, np.asarray(shape) - 1, size=(4, len(shape))), [[0.5] * len(shape)], [[-20.0] * len(shape)]]
    )
    for size in (1, 3, 9):
        np.testing.assert_array_equal(landmark_roi(points, shape, size), reference(points, shape, size))


def test_wssamnet_cube_is_9_cubed():
    roi = landmark_roi(np.array([[8.2, 7.8, 8.0]]), (16, 16, 16))
    assert roi.sum() == 9**3 and roi.dtype == np.float32
    assert roi[4:13, 4:13, 4:13].all()  # centred on voxel (8, 8, 8)


def test_mask_skips_padding():
    points = np.array([[2.0, 2.0], [0.0, 0.0]])
    roi = landmark_roi(points, (6, 6), 3, mask=np.array([1.0, 0.0]))
    expected = np.zeros((6, 6), np.float32)
    expected[1:4, 1:4] = 1
    np.testing.assert_array_equal(roi, expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 2}, "size must be a positive odd int"),
        ({"size": True}, "size must be a positive odd int"),
        ({"points": np.zeros((1, 2))}, r"points must be \(N, 3\)"),
        ({"mask": np.ones(2)}, r"mask must be \(1,\)"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(points=np.zeros((1, 3)), shape=(4, 4, 4), size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        landmark_roi(**args)
