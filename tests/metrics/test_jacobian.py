"""tfreg.metrics.jacobian: affine fields (det J known), a known folded fraction, SimpleITK's det J filter."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tfreg.metrics import (
    EmptyMaskWarning,
    folding_count,
    folding_fraction,
    jacobian_determinant,
    jacobian_determinant_mean,
    jacobian_determinant_std,
    jacobian_matrix,
    sdlogj,
)


def _affine_field(matrix, shape):
    """u(x) = A x in voxel units, x the voxel index; shape (*shape, ndim)."""
    x = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), axis=-1)
    return x @ np.asarray(matrix, dtype=float).T


AFFINE_3D = [[0.1, 0.05, -0.02], [0.03, -0.2, 0.04], [0.0, 0.07, 0.15]]


@pytest.mark.parametrize(
    "matrix,shape",
    [
        (AFFINE_3D, (10, 12, 9)),
        ([[0.3, -0.1], [0.2, -0.4]], (14, 11)),
        ([[-2.0, 0, 0], [0, 0, 0], [0, 0, 0]], (8, 8, 8)),  # det(I + A) = -1: every voxel folded
    ],
)
def test_affine_field_det_is_constant(matrix, shape):
    u = _affine_field(matrix, shape)
    expected = np.linalg.det(np.eye(len(shape)) + np.asarray(matrix))
    det = jacobian_determinant(u)
    np.testing.assert_allclose(det, expected, atol=1e-12)  # np.gradient is exact for linear fields
    assert jacobian_determinant_mean(u) == pytest.approx(expected)
    assert jacobian_determinant_std(u) == pytest.approx(0.0, abs=1e-12)
    assert folding_fraction(u) == (1.0 if expected <= 0 else 0.0)
    if expected > 0:
        assert sdlogj(u) == pytest.approx(0.0, abs=1e-12)
        assert sdlogj(u, offset=3.0) == pytest.approx(0.0, abs=1e-12)


def test_jacobian_matrix_affine_and_spacing_similarity():
    u = _affine_field(AFFINE_3D, (6, 7, 8))
    jac = jacobian_matrix(u)
    np.testing.assert_allclose(jac[3, 3, 3], np.eye(3) + np.asarray(AFFINE_3D), atol=1e-12)
    sp = np.array([0.5, 1.0, 2.5])
    jac_mm = jacobian_matrix(u, spacing=sp)
    np.testing.assert_allclose(
        jac_mm[3, 3, 3], np.eye(3) + np.diag(sp) @ np.asarray(AFFINE_3D) @ np.diag(1 / sp), atol=1e-12
    )
    # det J of a voxel-unit field does not depend on the spacing
    np.testing.assert_allclose(jacobian_determinant(u, spacing=sp), jacobian_determinant(u), atol=1e-12)


def _half_folded_field(shape, folded_rows, g_value=-2.0):
    """u_0 = g(x_1) x_0, other components 0: det J = 1 + g(x_1) exactly (u_0 is linear in x_0).

    g = g_value on the first ``folded_rows`` indices of axis 1, 0 elsewhere.
    """
    x0 = np.arange(shape[0], dtype=float).reshape((-1,) + (1,) * (len(shape) - 1))
    g = np.zeros(shape[1])
    g[:folded_rows] = g_value
    g = g.reshape((1, -1) + (1,) * (len(shape) - 2))
    u = np.zeros(shape + (len(shape),))
    u[..., 0] = np.broadcast_to(g * x0, shape)
    return u


@pytest.mark.parametrize("shape", [(8, 10, 6), (12, 10)])
def test_known_folded_fraction(shape):
    u = _half_folded_field(shape, folded_rows=3)
    det = jacobian_determinant(u)
    assert set(np.unique(det).round(12)) == {-1.0, 1.0}
    assert folding_fraction(u) == pytest.approx(3 / 10)
    assert folding_count(u) == int(np.prod(shape) * 3 / 10)
    mask = np.zeros(shape, dtype=bool)
    mask[:, 2:6] = True  # one folded row of four
    assert folding_fraction(u, mask=mask) == pytest.approx(1 / 4)
    assert jacobian_determinant_mean(u, mask) == pytest.approx(0.5)
    assert jacobian_determinant_std(u, mask) == pytest.approx(np.std([-1.0, 1.0, 1.0, 1.0]))


def test_zero_determinant_counts_as_folded_unless_strict():
    u = _half_folded_field((6, 10, 4), folded_rows=5, g_value=-1.0)  # det 0 on half the voxels
    assert folding_fraction(u) == pytest.approx(0.5)
    assert folding_fraction(u, include_zero=False) == 0.0


def _smooth_field(shape, scale, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=shape + (len(shape),))
    return ndimage.gaussian_filter(noise, sigma=(3,) * len(shape) + (0,)) * scale


def _to_sitk_displacement(u_mm, spacing):
    """Our (i, j, k) field in mm as a SimpleITK displacement image: axes and components reversed."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(u_mm[..., ::-1]), isVector=True)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 1.3, 2.0)])
def test_against_simpleitk_jacobian_determinant(spacing):
    sp = np.asarray(spacing)
    u_mm = _smooth_field((14, 16, 12), scale=15.0)
    ours = jacobian_determinant(u_mm, spacing=sp, units="physical")
    ref = sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(_to_sitk_displacement(u_mm, sp)))
    assert ours.min() < 0.8 and ours.max() > 1.2  # a field that really deforms
    # ITK's filter pads with zero flux at the array edges, numpy.gradient goes one-sided: compare inside
    np.testing.assert_allclose(ours[1:-1, 1:-1, 1:-1], ref[1:-1, 1:-1, 1:-1], atol=1e-10)
    # the same field in voxel units gives the same det J
    np.testing.assert_allclose(jacobian_determinant(u_mm / sp, spacing=sp), ours, atol=1e-12)


def _l2r_style_sdlogj(u, offset):
    """Independent reference: [-0.5, 0, 0.5] correlation with zero padding, crop 2, clip, log, std."""
    ndim = u.shape[-1]
    kernel_1d = np.array([-0.5, 0.0, 0.5])
    jac = np.empty(u.shape[:-1] + (ndim, ndim))
    for c in range(ndim):
        shape = [1] * ndim
        shape[c] = 3
        for r in range(ndim):
            jac[..., r, c] = ndimage.correlate(u[..., r], kernel_1d.reshape(shape), mode="constant", cval=0.0)
    jac += np.eye(ndim)
    jac = jac[(slice(2, -2),) * ndim]
    if ndim == 3:
        det = (
            jac[..., 0, 0] * (jac[..., 1, 1] * jac[..., 2, 2] - jac[..., 1, 2] * jac[..., 2, 1])
            - jac[..., 0, 1] * (jac[..., 1, 0] * jac[..., 2, 2] - jac[..., 1, 2] * jac[..., 2, 0])
            + jac[..., 0, 2] * (jac[..., 1, 0] * jac[..., 2, 1] - jac[..., 1, 1] * jac[..., 2, 0])
        )
    else:
        det = jac[..., 0, 0] * jac[..., 1, 1] - jac[..., 0, 1] * jac[..., 1, 0]
    return np.log(np.clip(det + offset, 1e-9, 1e9)).std()


@pytest.mark.parametrize("shape", [(16, 14, 12), (20, 18)])
@pytest.mark.parametrize("offset", [0.0, 3.0])
def test_sdlogj_matches_learn2reg_recipe(shape, offset):
    u = _smooth_field(shape, scale=60.0 if len(shape) == 3 else 30.0, seed=1)
    assert folding_fraction(u) > 0.05  # folded voxels exercise the clipping
    assert sdlogj(u, offset=offset) == pytest.approx(_l2r_style_sdlogj(u, offset), rel=1e-12)


def test_sdlogj_of_known_two_valued_field():
    # det J is 2 on three of ten rows and 1 elsewhere: log det is log 2 on 30 % of the voxels
    u = _half_folded_field((12, 10, 12), folded_rows=3, g_value=1.0)
    p = 0.3
    # crop=2 keeps rows 2..7 of axis 1: one row of six has det 2
    assert sdlogj(u, crop=0) == pytest.approx(np.log(2) * np.sqrt(p * (1 - p)))
    assert sdlogj(u) == pytest.approx(np.log(2) * np.sqrt(1 / 6 * 5 / 6))


def test_empty_mask_warns_and_returns_nan():
    u = _affine_field(AFFINE_3D, (5, 5, 5))
    empty = np.zeros((5, 5, 5))
    for fn in (jacobian_determinant_std, jacobian_determinant_mean):
        with pytest.warns(EmptyMaskWarning, match="mask"):
            assert np.isnan(fn(u, empty))
    with pytest.warns(EmptyMaskWarning):
        assert np.isnan(folding_fraction(u, mask=empty))


def test_bad_inputs():
    u = _affine_field(AFFINE_3D, (5, 6, 7))
    with pytest.raises(ValueError, match=r"\(5, 6, 7, 2\)"):
        jacobian_determinant(np.zeros((5, 6, 7, 2)))
    with pytest.raises(ValueError, match=r"\(1, 5, 6, 7, 3\)"):
        jacobian_determinant(u[None])  # a batch axis
    with pytest.raises(ValueError, match=r"mask has shape \(5, 6\).*\(5, 6, 7\)"):
        jacobian_determinant_std(u, np.ones((5, 6)))
    with pytest.raises(ValueError, match="spacing"):
        jacobian_determinant(u, spacing=(1.0, 2.0))
    bad = u.copy()
    bad[1, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        folding_fraction(bad)
    with pytest.raises(ValueError, match="units"):
        jacobian_determinant(u, units="mm")
    with pytest.raises(ValueError, match="crop"):
        sdlogj(u, crop=3)
    with pytest.raises(ValueError, match="clip"):
        sdlogj(u, clip=(0.0, 1.0))
