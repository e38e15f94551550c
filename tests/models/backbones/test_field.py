"""The ``field`` backbone: its parameterisations against NumPy formulas, and its refusals."""

import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from tfreg.models.backbones.field import ParameterField
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_registered_and_starts_at_identity():
    backbone = REGISTRY.build_backbone(
        config={"name": "field"}, default_args={"image_size": (6, 5, 4), "out_channels": 3}
    )
    assert isinstance(backbone, ParameterField)
    out = numpy(backbone(np.ones((2, 6, 5, 4, 2), np.float32)))
    assert out.shape == (2, 6, 5, 4, 3)
    assert np.all(out == 0)


def test_affine_field_is_the_normalised_linear_map():
    shape = (7, 9)
    backbone = ParameterField(image_size=shape, out_channels=2, transform="affine")
    linear = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    translation = np.array([1.5, -0.5], np.float32)
    backbone.linear.assign(linear)
    backbone.translation.assign(translation)
    got = numpy(backbone(np.zeros((1,) + shape + (2,), np.float32)))[0]
    p = np.stack(np.meshgrid(*[np.arange(d, dtype=np.float64) for d in shape], indexing="ij"), -1)
    centre = (np.array(shape) - 1) / 2.0
    expected = ((p - centre) / centre) @ linear + translation
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_initial_is_added_and_batch_broadcast():
    shape = (4, 5)
    backbone = ParameterField(image_size=shape, out_channels=2)
    initial = np.random.default_rng(0).normal(size=shape + (2,)).astype(np.float32)
    backbone.set_initial(initial)
    backbone.parameters.assign(np.full((1,) + shape + (2,), 0.5, np.float32))
    out = numpy(backbone(np.zeros((3,) + shape + (2,), np.float32)))
    np.testing.assert_allclose(out, np.broadcast_to(initial + 0.5, (3,) + shape + (2,)), atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        backbone.set_initial(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        backbone.set_initial(np.full(shape + (2,), np.nan))


def test_smoothing_matches_scipy_gaussian():
    shape = (16, 12)
    backbone = ParameterField(image_size=shape, out_channels=1, smoothing_sigma=1.5)
    values = np.random.default_rng(1).normal(size=(1,) + shape + (1,)).astype(np.float32)
    backbone.parameters.assign(values)
    got = numpy(backbone.field())[0, ..., 0]
    # SciPy truncates at int(3 sigma + 0.5) = 5 voxels; tfreg at int(3 sigma) = 4: compare well inside
    expected = ndimage.gaussian_filter(values[0, ..., 0].astype(np.float64), 1.5, mode="nearest", truncate=4 / 1.5)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bspline_parameters_have_the_control_grid_shape():
    backbone = ParameterField(image_size=(10, 12, 8), out_channels=3, control_point_spacing=4)
    assert tuple(backbone.parameters.shape) == (1, 6, 6, 5, 3)
    assert numpy(backbone(np.zeros((1, 10, 12, 8, 2), np.float32))).shape == (1, 10, 12, 8, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(transform="rigid"), "transform"),
        (dict(transform="affine", out_channels=1), "out_channels must be 2"),
        (dict(transform="affine", control_point_spacing=4), "applies to transform 'dense' only"),
        (dict(control_point_spacing=4, smoothing_sigma=1.0), "not both"),
        (dict(out_activation="tanh"), "out_activation must be None"),
        (dict(smoothing_sigma=-1.0), "smoothing_sigma"),
    ],
)
def test_refusals(kwargs, match):
    args = dict(image_size=(8, 8), out_channels=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ParameterField(**args)
