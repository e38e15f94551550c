"""Instance optimisation (tfreg.registration.optimise) on analytic cases: known translations and affine
maps recovered, the masks' and prealignment's wiring against NumPy, determinism, and the refusals."""

import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from tfreg.registration.optimise import (
    OptimisationSettings,
    _PairDDF,
    affine_field_on,
    register_arrays,
    resize_field,
)


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def blobs(shape, seed=0, sigma=3.0):
    """A smooth random image in [0, 1]."""
    image = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return ((image - image.min()) / (image.max() - image.min())).astype(np.float32)


def sample(image, ddf):
    """``image`` sampled at ``x + ddf(x)`` by SciPy (linear, nearest-edge): the moving image for a known field."""
    grid = np.stack(np.meshgrid(*[np.arange(d, dtype=np.float64) for d in image.shape], indexing="ij"), -1)
    coords = np.moveaxis(grid + ddf, -1, 0)
    return ndimage.map_coordinates(image, coords, order=1, mode="nearest").astype(np.float32)


SSD = {"image": {"name": "ssd", "weight": 1.0}, "regularization": {"name": "gradient", "weight": 0.1}}


@pytest.mark.backend_agnostic
def test_recovers_a_translation_2d():
    shape, shift = (40, 44), np.array([1.5, -2.0])
    fixed = blobs(shape)
    # moving(y) = fixed(y - shift), so fixed(x) = moving(x + shift): the answer is ddf = shift
    moving = sample(fixed, np.broadcast_to(-shift, shape + (2,)))
    settings = OptimisationSettings(loss=SSD, levels=(2, 1), iterations=(60, 40), learning_rate=0.2, verbose=0)
    result = register_arrays(fixed, moving, settings)
    inner = result.ddf[8:-8, 8:-8]
    np.testing.assert_allclose(np.median(inner.reshape(-1, 2), axis=0), shift, atol=0.15)
    assert np.mean(np.abs(result.warped - fixed)[8:-8, 8:-8]) < 0.2 * np.mean(np.abs(moving - fixed)[8:-8, 8:-8])
    assert [h["factor"] for h in result.history] == [2, 1]
    assert len(result.history[0]["loss"]) == 60 and np.isfinite(result.history[-1]["loss"]).all()


def test_affine_stage_recovers_a_scaling_and_shift():
    shape = (48, 40)
    fixed = blobs(shape, seed=2, sigma=2.5)
    grid = np.stack(np.meshgrid(*[np.arange(d, dtype=np.float64) for d in shape], indexing="ij"), -1)
    centre = (np.array(shape) - 1) / 2.0
    # fixed(x) = moving(x + a(x)) with a(x) = (x - c) @ (S - I) + t
    matrix = np.array([[1.06, 0.0], [0.0, 0.95]])
    true = (grid - centre) @ (matrix - np.eye(2)) + np.array([1.0, -1.0])
    inverse = (grid - centre) @ (np.linalg.inv(matrix) - np.eye(2)) - np.array([1.0, -1.0]) @ np.linalg.inv(matrix)
    moving = sample(fixed, inverse)
    settings = OptimisationSettings(
        loss=SSD, levels=(1,), iterations=0, affine_iterations=150, affine_learning_rate=0.05, verbose=0
    )
    result = register_arrays(fixed, moving, settings)
    error = np.abs(result.affine_ddf - true)[8:-8, 8:-8]
    assert error.max() < 0.35, error.max()
    np.testing.assert_allclose(result.ddf, result.affine_ddf, atol=1e-5)  # no deformable iterations


def test_affine_field_on_a_finer_grid_is_the_same_map():
    from tfreg.models.backbones.field import ParameterField

    small = ParameterField(image_size=(10, 12), out_channels=2, transform="affine")
    small.linear.assign(np.array([[0.4, -0.3], [0.2, 0.5]], np.float32))
    small.translation.assign(np.array([0.7, -0.2], np.float32))
    np.testing.assert_allclose(numpy(affine_field_on(small, (10, 12))), numpy(small.field()), atol=1e-5)
    # on a grid twice as fine (half-pixel centres: x_fine = 2 x + 0.5) the displacement doubles
    fine = numpy(affine_field_on(small, (20, 24)))[0]
    coarse = numpy(small.field())[0]
    np.testing.assert_allclose(fine[2 * 3 + 1, 2 * 5 + 1] - fine[2 * 3, 2 * 5], fine[1, 1] - fine[0, 0], atol=1e-5)
    # value at the fine point corresponding to coarse voxel (3, 5): x_fine = 2 * 3 + 0.5
    between = 0.5 * (fine[6, 10] + fine[7, 11])
    np.testing.assert_allclose(between, 2 * coarse[3, 5], atol=1e-4)


def test_resize_field_scales_voxel_values():
    field = np.zeros((1, 10, 6, 2), np.float32)
    field[..., 0], field[..., 1] = 2.0, -1.0
    out = numpy(resize_field(ops.convert_to_tensor(field), (20, 9)))
    np.testing.assert_allclose(out[..., 0], 4.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], -1.5, atol=1e-6)


def test_masks_and_prealignment_reach_the_losses_as_documented():
    rng = np.random.default_rng(3)
    shape = (12, 10)
    model = _PairDDF(
        moving_image_size=shape, fixed_image_size=shape, config={"backbone": {"name": "field"}, "loss": SSD}
    )
    fixed, moving = rng.random((1,) + shape).astype(np.float32), rng.random((1,) + shape).astype(np.float32)
    fixed_mask = (rng.random((1,) + shape) > 0.3).astype(np.float32)
    moving_mask = (rng.random((1,) + shape) > 0.3).astype(np.float32)
    pre = np.zeros((1,) + shape + (2,), np.float32)
    pre[..., 0] = 1.0  # one voxel down the first axis
    out = model(
        {
            "fixed_image": fixed,
            "moving_image": moving,
            "fixed_mask": fixed_mask,
            "moving_mask": moving_mask,
            "prealignment": pre,
        }
    )
    shifted = np.zeros_like(moving)
    shifted[:, :-1] = moving[:, 1:]
    shifted_mask = np.zeros_like(moving_mask)
    shifted_mask[:, :-1] = moving_mask[:, 1:]
    mask = fixed_mask * shifted_mask
    np.testing.assert_allclose(numpy(out["pred_fixed_image"]), shifted * mask, atol=1e-6)
    np.testing.assert_allclose(numpy(out["masked_fixed_image"]), fixed * mask, atol=1e-6)
    np.testing.assert_allclose(numpy(out["total_ddf"]), pre, atol=1e-6)
    np.testing.assert_allclose(numpy(out["ddf"]), 0.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs", [dict(model="dvf"), dict(control_points=4), dict(smoothing_sigma=1.0)], ids=["dvf", "bspline", "smoothed"]
)
def test_parameterisations_register_3d_without_folding(kwargs):
    shape = (16, 18, 14)
    fixed = blobs(shape, seed=4, sigma=2.0)
    grid = np.stack(np.meshgrid(*[np.arange(d, dtype=np.float64) for d in shape], indexing="ij"), -1)
    true = np.stack([1.5 * np.sin(grid[..., 1] / 5.0), np.zeros(shape), 1.0 * np.cos(grid[..., 0] / 6.0)], -1)
    moving = sample(fixed, -true)  # approximately fixed(x) = moving(x + true(x))
    settings = OptimisationSettings(loss=SSD, levels=(1,), iterations=60, learning_rate=0.2, verbose=0, **kwargs)
    result = register_arrays(fixed, moving, settings)
    before = np.mean((moving - fixed)[3:-3, 3:-3, 3:-3] ** 2)
    after = np.mean((result.warped - fixed)[3:-3, 3:-3, 3:-3] ** 2)
    assert after < 0.3 * before, (after, before)
    assert result.folding_fraction == 0.0
    if kwargs.get("model") == "dvf":
        assert result.velocity is not None and result.velocity.shape == shape + (3,)


def test_same_seed_gives_the_same_field():
    fixed, moving = blobs((20, 24), 5), blobs((20, 24), 6)
    settings = OptimisationSettings(loss=SSD, levels=(1,), iterations=10, verbose=0, seed=3)
    a = register_arrays(fixed, moving, settings).ddf
    b = register_arrays(fixed, moving, settings).ddf
    np.testing.assert_array_equal(a, b)


def test_label_loss_and_labels():
    shape = (24, 24)
    fixed_label = np.zeros(shape, np.float32)
    fixed_label[6:16, 8:18] = 1.0
    moving_label = np.roll(fixed_label, 2, axis=0)
    loss = {"label": {"name": "dice", "weight": 1.0}, "regularization": {"name": "gradient", "weight": 0.1}}
    settings = OptimisationSettings(loss=loss, levels=(2, 1), iterations=(60, 40), learning_rate=0.2, verbose=0)
    result = register_arrays(fixed_label, moving_label, settings, fixed_label=fixed_label, moving_label=moving_label)
    dice = (
        2 * np.sum((result.warped_label > 0.5) * fixed_label) / (np.sum(result.warped_label > 0.5) + fixed_label.sum())
    )
    assert dice > 0.95, dice
    with pytest.raises(ValueError, match="loss.label needs labels"):
        register_arrays(fixed_label, moving_label, settings)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda f: register_arrays(f, f[:-1]), "same shape"),
        (lambda f: register_arrays(f, np.where(f > 0.5, np.nan, f)), "NaN"),
        (lambda f: register_arrays(f, f, fixed_label=f), "both fixed_label and moving_label"),
        (lambda f: register_arrays(f, f, fixed_mask=f[:-1]), "fixed_mask must have the fixed image's shape"),
        (
            lambda f: register_arrays(
                f, f, OptimisationSettings(affine_iterations=5), prealignment=np.zeros(f.shape + (2,))
            ),
            "not both",
        ),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call(blobs((12, 12)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="bspline"), "model must be one of"),
        (dict(levels=(4, 0)), "levels"),
        (dict(levels=(4, 2), iterations=(10, 10, 10)), "one per level"),
        (dict(learning_rate=0), "learning_rate"),
        (dict(loss={}), "loss"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimisationSettings(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(
    "similarity,iterations,shape",
    [
        ({"name": "mi", "num_bins": 16}, (60, 40), (40, 44)),
        ({"name": "mind-ssc"}, (60, 40), (40, 44)),
        # macMIND's descriptors reach about 10 voxels (distances 2 and 4, patch and aggregation windows of 5):
        # on 40x44 the borders dominate and it stops short (0.9 of the 1.5 voxels); 64x64 leaves room
        ({"name": "macmind"}, (200, 100), (64, 64)),
    ],
    ids=["mi", "mind-ssc", "macmind"],
)
def test_multimodal_losses_recover_a_translation_across_inverted_contrast(similarity, iterations, shape):
    shift = np.array([1.5, -1.0])
    fixed = blobs(shape, seed=7, sigma=2.5)
    moving = 1.0 - sample(fixed, np.broadcast_to(-shift, shape + (2,)))  # another contrast: inverted
    loss = {"image": dict(similarity, weight=1.0), "regularization": {"name": "gradient", "weight": 0.1}}
    settings = OptimisationSettings(loss=loss, levels=(2, 1), iterations=iterations, learning_rate=0.2, verbose=0)
    result = register_arrays(fixed, moving, settings)
    inner = result.ddf[12:-12, 12:-12].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), shift, atol=0.3)


def test_history_holds_each_iterations_value():
    """Keras logs running means; the history holds each step's own loss: the first is the SSD of the
    images before any update, and the loss decreases from there."""
    fixed = blobs((20, 24), 8)
    moving = sample(fixed, np.broadcast_to(np.array([1.0, 0.5]), (20, 24, 2)))
    loss = {"image": {"name": "ssd", "weight": 1.0}, "regularization": {"name": "gradient", "weight": 0.1}}
    result = register_arrays(fixed, moving, OptimisationSettings(loss=loss, levels=(1,), iterations=30, verbose=0))
    values = result.history[0]["loss"]
    assert len(values) == 30
    np.testing.assert_allclose(values[0], np.mean((fixed - moving) ** 2), rtol=1e-4)
    assert values[-1] < 0.7 * values[0] and values[-1] < np.mean(values)
