"""tfreg.ops.grid against numpy.meshgrid."""

import numpy as np
import pytest
from keras import ops

from tfreg.ops.grid import get_reference_grid

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 5), (1, 6, 2)])
def test_matches_meshgrid_ij(shape):
    grid = get_reference_grid(shape)
    assert "float32" in str(grid.dtype)
    expected = np.stack(np.meshgrid(*[np.arange(d) for d in shape], indexing="ij"), axis=-1)
    np.testing.assert_array_equal(ops.convert_to_numpy(grid), expected)


def test_channel_c_is_index_along_axis_c():
    grid = ops.convert_to_numpy(get_reference_grid((3, 4, 5)))
    assert grid.shape == (3, 4, 5, 3)
    np.testing.assert_array_equal(grid[2, 1, 4], [2, 1, 4])


def test_accepts_numpy_ints():
    grid = get_reference_grid(np.array([2, 3]))
    assert tuple(grid.shape) == (2, 3, 2)


@pytest.mark.parametrize("shape", [(), (3, 0), (3, -1), (2.5, 3), "ab", 5, (True, 3)])
def test_bad_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        get_reference_grid(shape)
