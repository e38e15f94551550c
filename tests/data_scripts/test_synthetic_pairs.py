"""data_scripts/synthetic_pairs.py: the random affine part of the ground truth, the downsampling and the
per-pair arrays (its file output is tested in tests/data/test_converters.py)."""

import numpy as np
import pytest
from scipy import ndimage

from data_scripts import synthetic_pairs
from data_scripts.synthetic_pairs import AffineRange
from tfreg.data.image_io import read_image


def _blobs(shape, seed):
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random(shape), 2.0)
    base = (base - base.min()) / (base.max() - base.min())
    return base.astype(np.float32), np.digitize(base, [0.35, 0.5, 0.65])


def _fit_affine(x, y):
    """Least squares ``y ~ x @ L.T + b`` over all voxels: ``(L, b, largest residual)``."""
    xs, ys = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    design = np.concatenate([xs, np.ones((len(xs), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
    return coef[:-1].T, coef[-1], np.abs(design @ coef - ys).max()


@pytest.mark.parametrize("ndim", [2, 3])
def test_random_affine_parts_stay_in_their_ranges(ndim):
    rng = np.random.default_rng(0)
    for _ in range(20):
        rotation, shift = synthetic_pairs.random_affine(ndim, rng, AffineRange(rotation=10.0))
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(ndim), atol=1e-12)  # a rotation: orthogonal,
        assert np.isclose(np.linalg.det(rotation), 1.0)  # no reflection
        # the rotation angle, from the trace: at most 10 degrees per plane rotation (1 in 2-D, 3 in 3-D)
        angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - (ndim - 2)) / 2, -1, 1)))
        assert 0 < angle <= 10 * (1 if ndim == 2 else 3) and np.all(shift == 0)
        scale, _ = synthetic_pairs.random_affine(ndim, rng, AffineRange(scale=0.1))
        assert np.all(scale == np.diag(np.diag(scale))) and np.all(np.abs(np.diag(scale) - 1) <= 0.1)
        shear, _ = synthetic_pairs.random_affine(ndim, rng, AffineRange(shear=0.05))
        assert (
            np.all(np.tril(shear, -1) == 0)
            and np.all(np.diag(shear) == 1)
            and np.abs(shear - np.eye(ndim)).max() <= 0.05
        )
        _, shift = synthetic_pairs.random_affine(ndim, rng, AffineRange(translation=3.0))
        assert shift.shape == (ndim,) and np.abs(shift).max() <= 3.0
    with pytest.raises(ValueError, match=">= 0"):
        synthetic_pairs.random_affine(3, rng, AffineRange(rotation=-1.0))
    with pytest.raises(ValueError, match="below 1"):
        synthetic_pairs.random_affine(3, rng, AffineRange(scale=1.0))


def test_an_affine_only_pair_has_an_affine_ground_truth_about_the_centre():
    base, labels = _blobs((20, 24, 18), 0)
    ranges = AffineRange(rotation=8.0, scale=0.05, shear=0.03, translation=2.0)
    pair = synthetic_pairs.synthetic_pair(
        base, np.random.default_rng(1), labels, max_displacement=0.0, moving_deformation=False, affine=ranges
    )
    grid = synthetic_pairs.reference_grid(base.shape)
    linear, offset, residual = _fit_affine(grid, grid + pair["ddf"])
    assert residual < 1e-3  # x + u(x) is affine in x
    # about the centre: the centre moves by the translation alone, within its range
    centre = (np.asarray(base.shape) - 1) / 2
    assert np.abs(linear @ centre + offset - centre).max() <= 2.0
    assert 0.05 < np.abs(linear - np.eye(3)).max() and abs(np.linalg.det(linear) - 1) < 0.2
    # no moving deformation: the moving image is the base, the fixed one the base sampled at x + u(x)
    np.testing.assert_array_equal(pair["moving_image"], base)
    coords = np.moveaxis(grid + pair["ddf"], -1, 0)
    np.testing.assert_allclose(
        pair["fixed_image"], ndimage.map_coordinates(base, coords, order=1, mode="nearest"), atol=1e-5
    )
    np.testing.assert_array_equal(
        pair["fixed_label_map"], ndimage.map_coordinates(labels, coords, order=0, mode="nearest")
    )


def test_affine_and_smooth_parts_compose_and_the_ddf_warps_moving_onto_fixed():
    base, labels = _blobs((24, 26, 20), 2)
    ranges = AffineRange(rotation=5.0, scale=0.05, shear=0.03, translation=2.0)
    pair = synthetic_pairs.synthetic_pair(
        base, np.random.default_rng(3), labels, max_displacement=2.0, control_spacing=8, affine=ranges
    )
    grid = synthetic_pairs.reference_grid(base.shape)
    _, _, residual = _fit_affine(grid, grid + pair["ddf"])
    assert residual > 0.5  # not affine: the smooth part is there
    warped = ndimage.map_coordinates(
        pair["moving_image"], np.moveaxis(grid + pair["ddf"], -1, 0), order=1, mode="nearest"
    )
    inner = (slice(4, -4),) * 3
    assert np.mean(np.abs(warped - pair["fixed_image"])[inner]) < 0.25 * np.mean(
        np.abs(pair["moving_image"] - pair["fixed_image"])[inner]
    )
    # fold-free ground truth: the Jacobian determinant of x + u(x) is positive everywhere
    jac = np.stack([np.stack(np.gradient(grid[..., a] + pair["ddf"][..., a]), -1) for a in range(3)], -2)
    assert np.linalg.det(jac).min() > 0


def test_no_affine_draws_nothing_and_the_same_seed_gives_the_same_pair():
    base, labels = _blobs((16, 16, 16), 4)

    def pair(seed, affine):
        return synthetic_pairs.synthetic_pair(base, np.random.default_rng(seed), labels, 2.0, 8.0, affine=affine)

    without, zero = pair(5, None), pair(5, AffineRange())
    for key in without:
        np.testing.assert_array_equal(without[key], zero[key])  # an all-zero range: the generator is not used
    again = pair(5, AffineRange(rotation=3.0))
    for key, value in pair(5, AffineRange(rotation=3.0)).items():
        np.testing.assert_array_equal(value, again[key])
    assert not np.allclose(without["ddf"], again["ddf"])


def test_downsample_keeps_every_factor_th_voxel_after_anti_aliasing():
    checker = (np.indices((8, 10, 6)).sum(0) % 2).astype(np.float64)  # the highest frequency of the grid
    labels = np.arange(8 * 10 * 6).reshape(8, 10, 6)
    np.testing.assert_array_equal(synthetic_pairs.downsample(labels, 2, labels=True), labels[::2, ::2, ::2])
    reduced = synthetic_pairs.downsample(checker, 2)
    assert reduced.shape == (4, 5, 3)
    # plain subsampling would alias the checkerboard into a constant 0; smoothing first gives about its mean
    assert np.abs(reduced - 0.5).max() < 0.1
    np.testing.assert_allclose(synthetic_pairs.downsample(np.full((6, 6), 3.0), 3), np.full((2, 2), 3.0))
    assert synthetic_pairs.downsample(checker, 1) is checker
    with pytest.raises(ValueError, match="int >= 1"):
        synthetic_pairs.downsample(checker, 0)


def test_cli_downsample_and_affine_reproduce_the_pair_of_that_seed(tmp_path):
    base, labels = _blobs((32, 28, 24), 6)
    np.savez(tmp_path / "scan.npz", vol=base, seg=labels)
    args = [str(tmp_path / "scan.npz"), str(tmp_path / "out"), "--num-pairs", "1", "--seed", "7", "--downsample", "2"]
    args += ["--max-rotation", "4", "--max-scale", "0.04", "--max-translation", "1", "--spacing", "1", "1", "1.5"]
    args += ["--max-displacement", "2", "--control-spacing", "8"]
    assert synthetic_pairs.main(args) == 0
    ddf, geometry = read_image(str(tmp_path / "out" / "ddfs" / "pair_000.nii.gz"))
    fixed, _ = read_image(str(tmp_path / "out" / "fixed_images" / "pair_000.nii.gz"))
    assert geometry.spacing == (2.0, 2.0, 3.0) and ddf.shape == (16, 14, 12, 3)
    expected = synthetic_pairs.synthetic_pair(
        synthetic_pairs.downsample(base, 2),
        np.random.default_rng(7),
        synthetic_pairs.downsample(labels, 2, labels=True),
        2.0,
        8.0,
        affine=AffineRange(rotation=4.0, scale=0.04, translation=1.0),
    )
    np.testing.assert_allclose(ddf, expected["ddf"], atol=1e-6)
    np.testing.assert_allclose(fixed, expected["fixed_image"], atol=1e-6)
