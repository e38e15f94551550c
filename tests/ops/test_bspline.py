"""tfreg.ops.bspline against SciPy's B-spline basis and a direct NumPy sum over control points."""

import math

import numpy as np
import pytest
from keras import ops
from scipy.interpolate import BSpline

from tfreg.ops.bspline import bspline_field, bspline_weights, control_grid_shape, cubic_bspline

pytestmark = pytest.mark.backend_agnostic


def scipy_beta3(t):
    """SciPy's cardinal cubic B-spline on the knots -2..2."""
    basis = BSpline.basis_element(np.arange(-2.0, 3.0), extrapolate=False)
    return np.nan_to_num(basis(np.asarray(t, dtype=np.float64)), nan=0.0)


def direct_field(control, shape, spacing, offset=0.0):
    """sum_k c_k prod_a beta3((x_a - offset) / s_a - (k_a - 1)), with SciPy's basis evaluated at every (voxel,
    control point) pair of each axis and the tensor product summed by einsum."""
    mats = [
        scipy_beta3((np.arange(d)[:, None] - offset) / s - (np.arange(n)[None, :] - 1.0))
        for d, s, n in zip(shape, spacing, control.shape[:-1])
    ]
    if len(shape) == 2:
        return np.einsum("xk,yl,klc->xyc", *mats, control)
    return np.einsum("xk,yl,zm,klmc->xyzc", *mats, control)


def test_cubic_bspline_matches_scipy():
    t = np.linspace(-3, 3, 241)
    np.testing.assert_allclose(cubic_bspline(t), scipy_beta3(t), atol=1e-12)


@pytest.mark.parametrize("size,spacing", [(10, 3), (16, 4), (7, 2.5), (5, 8)])
def test_weights_are_a_partition_of_unity(size, spacing):
    w = bspline_weights(size, spacing)
    assert w.shape == (size, math.ceil(size / spacing) + 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("shape,spacing", [((9, 7), (3, 2)), ((6, 5, 7), (2, 3, 2.5))])
def test_field_matches_direct_sum(shape, spacing):
    rng = np.random.default_rng(0)
    grid = control_grid_shape(shape, spacing)
    assert grid == tuple(math.ceil(d / s) + 3 for d, s in zip(shape, spacing))
    control = rng.normal(size=grid + (2,)).astype(np.float32)
    got = np.asarray(ops.convert_to_numpy(bspline_field(control[None], shape, spacing)))[0]
    np.testing.assert_allclose(got, direct_field(control, shape, spacing), atol=1e-5)


def test_linear_control_values_give_a_linear_field():
    # cubic B-splines reproduce linear functions: c_k = a * position_k + b gives u(x) = a * x + b exactly
    shape, spacing = (12, 2), (4, 1)
    grid = control_grid_shape(shape, spacing)
    positions = (np.arange(grid[0]) - 1.0) * spacing[0]
    control = np.zeros((1,) + grid + (1,), np.float32)
    control[0, :, :, 0] = (0.5 * positions + 2.0)[:, None]
    got = np.asarray(ops.convert_to_numpy(bspline_field(control, shape, spacing)))[0, :, 1, 0]
    np.testing.assert_allclose(got, 0.5 * np.arange(12) + 2.0, atol=1e-5)


def test_wrong_control_grid_is_refused():
    with pytest.raises(ValueError, match=r"ceil\(d / s\) \+ 3"):
        bspline_field(np.zeros((1, 4, 4, 2), np.float32), (8, 8), 4)
    with pytest.raises(ValueError, match="positive"):
        control_grid_shape((8, 8), 0)


@pytest.mark.parametrize("offset", [-0.5, -0.9])
def test_offset_moves_the_control_points(offset):
    shape, spacing = (7, 6, 5), (2, 3, 2.5)
    control = np.random.default_rng(1).normal(size=control_grid_shape(shape, spacing) + (3,)).astype(np.float32)
    got = np.asarray(ops.convert_to_numpy(bspline_field(control[None], shape, spacing, offset=offset)))[0]
    np.testing.assert_allclose(got, direct_field(control, shape, spacing, offset), atol=1e-5)
    np.testing.assert_allclose(bspline_weights(9, 2.5, offset).sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("offset", [0.5, -1.0, True, "0"])
def test_offset_outside_the_support_is_refused(offset):
    with pytest.raises(ValueError, match=r"offset must be a number in \(-1, 0\]"):
        bspline_weights(8, 2, offset)
