"""tfreg.data.self_pair_transform against scipy.ndimage.affine_transform and analytic cases."""

import numpy as np
import pytest
from scipy import ndimage

from tfreg.data.self_pair_transform import PairTransform, PairTransformRanges, draw_pair_transform, rotation_matrix


def test_rotation_matrices_are_proper_rotations():
    np.testing.assert_allclose(rotation_matrix([90.0]), [[0, -1], [1, 0]], atol=1e-12)
    for angles in ([10.0, -20.0, 30.0], [0.0, 0.0, 45.0]):
        r = rotation_matrix(angles)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
    # 45 degrees about axis 2 turns axis 0 towards axis 1
    np.testing.assert_allclose(rotation_matrix([0, 0, 45]) @ [1, 0, 0], [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-12)
    with pytest.raises(ValueError, match="1 \\(2-D\\) or 3"):
        rotation_matrix([1.0, 2.0])


@pytest.mark.parametrize("shape", [(12, 10), (10, 9, 8)])
def test_affine_copy_matches_scipy_affine_transform(shape):
    rng = np.random.default_rng(0)
    image = rng.random(shape).astype(np.float32)
    t = draw_pair_transform(shape, PairTransformRanges(max_rotation=20, max_scale=0.2, max_shift=2), seed=5)
    assert t.displacement is None
    centre = (np.asarray(shape) - 1) / 2
    # scipy: out[x] = in[M x + offset]; ours: T(x) = c + M (x - c) + shift
    expected = ndimage.affine_transform(
        image.astype(np.float64), t.matrix, offset=centre + t.shift - t.matrix @ centre, order=1, mode="constant"
    )
    np.testing.assert_allclose(t.apply(image), expected, atol=1e-5)
    both = t.apply(np.stack([image, 2 * image], axis=-1))  # channels last, each alike
    np.testing.assert_allclose(both[..., 1], 2 * expected, atol=1e-5)


def test_integer_shift_moves_voxels_and_fills_zeros():
    image = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    t = PairTransform((6, 5), np.eye(2), np.array([2.0, 0.0]))
    out = t.apply(image)
    np.testing.assert_array_equal(out[:4], image[2:])  # moving(x) = image(x + 2 along axis 0)
    np.testing.assert_array_equal(out[4:], 0)


def test_draws_are_reproducible_and_within_range():
    ranges = PairTransformRanges(max_rotation=10, max_scale=0.1, max_shift=3, max_displacement=2, control_spacing=4)
    a = draw_pair_transform((16, 12, 8), ranges, seed=3)
    b = draw_pair_transform((16, 12, 8), ranges, seed=3)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    np.testing.assert_array_equal(a.displacement, b.displacement)
    assert not np.allclose(draw_pair_transform((16, 12, 8), ranges, seed=4).shift, a.shift)
    assert np.all(np.abs(a.shift) <= 3)
    singular = np.linalg.svd(a.matrix, compute_uv=False)  # rotation times scaling: singular values = scales
    assert np.all((singular >= 0.9 - 1e-9) & (singular <= 1.1 + 1e-9))
    assert a.displacement.shape == (16, 12, 8, 3) and np.abs(a.displacement).max() <= 2
    # smooth: neighbouring voxels differ by far less than the amplitude
    assert np.abs(np.diff(a.displacement, axis=0)).max() < 2.0


def test_local_deformation_passes_through_the_control_points():
    """Cubic-spline interpolation: at control-point voxels the field equals the drawn coarse values."""
    ranges = PairTransformRanges(max_rotation=0, max_scale=0, max_shift=0, max_displacement=1.0, control_spacing=4)
    t = draw_pair_transform((9, 9), ranges, seed=1)
    rng = np.random.default_rng(1)  # replay the draw: angles, scales, shift, then the coarse field
    rng.uniform(-0, 0, size=1), rng.uniform(-0, 0, size=2), rng.uniform(-0, 0, size=2)
    coarse = rng.uniform(-1, 1, size=(2, 3, 3))
    np.testing.assert_allclose(t.displacement[::4, ::4], np.moveaxis(coarse, 0, -1), atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_scale": 1.0}, "max_scale"),
        ({"max_rotation": -1}, "max_rotation"),
        ({"max_shift": float("nan")}, "max_shift"),
        ({"control_spacing": 1}, "control_spacing"),
    ],
)
def test_bad_ranges_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PairTransformRanges(**kwargs)


@pytest.mark.parametrize("shape", [(12, 10), (10, 9, 8)])
def test_map_points_is_the_sampling_map_and_inverse_points_inverts_it(shape):
    t = draw_pair_transform(shape, PairTransformRanges(max_rotation=20, max_scale=0.2, max_shift=2), seed=1)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)
    points = grid.reshape(-1, len(shape))[::7]
    np.testing.assert_allclose(t.map_points(points), t.coordinates().reshape(len(shape), -1).T[::7], atol=1e-12)
    # the affine inverse in closed form: x = c + A^-1 (p - c - t)
    centre = (np.asarray(shape) - 1) / 2
    expected = (points - centre - t.shift) @ np.linalg.inv(t.matrix).T + centre
    np.testing.assert_allclose(t.inverse_points(points), expected, atol=1e-9)
    np.testing.assert_allclose(t.map_points(t.inverse_points(points)), points, atol=1e-9)


def test_inverse_points_with_local_deformation():
    shape = (16, 14, 12)
    ranges = PairTransformRanges(max_rotation=10, max_scale=0.1, max_shift=2, max_displacement=1.5, control_spacing=6)
    t = draw_pair_transform(shape, ranges, seed=4)
    points = np.array([[3.2, 4.1, 5.0], [8.0, 7.0, 6.0], [12.5, 1.0, 10.9]])
    # T at grid points is what apply() samples: map_points agrees with coordinates() there
    np.testing.assert_allclose(t.map_points(points[1:2]), t.coordinates()[:, 8, 7, 6][None], atol=1e-12)
    x = t.inverse_points(points)
    np.testing.assert_allclose(t.map_points(x), points, atol=1e-4)
    # a blob at T^-1(p) in the copy: apply() of a blob around p peaks there
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)
    blob = np.exp(-np.sum((grid - points[1]) ** 2, axis=-1) / 2.0)
    copy = t.apply(blob)
    peak = np.unravel_index(np.argmax(copy), shape)
    assert np.max(np.abs(np.asarray(peak) - x[1])) <= 1.0
