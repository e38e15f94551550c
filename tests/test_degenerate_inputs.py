"""Every registered loss and every core op gives finite values and gradients on degenerate inputs.

Degenerate inputs are the ones real training meets at its edges: a constant image (background
patches, padded slices), an all-zero label (a structure absent from a scan), a single-voxel label,
and a zero DDF (the identity every model starts from). A NaN there silently poisons training, so the
sweep covers every name registered in ``loss_class``: a loss added later is swept automatically, and
one that needs constructor arguments or another call signature must be listed below.
"""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.losses.base import ImageLoss
from tfreg.losses.deformation import DeformationLoss
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic

# Constructor arguments for registered losses that cannot be built from their name alone.
EXTRA_ARGS = {
    "filtered": {"filter": "log", "sigma": 1.0, "loss": {"name": "lncc"}},
    # the default 11-voxel Gaussian window (sigma 1.5) needs images larger than these test volumes
    "ssim": {"sigma": 0.5},
}
# Losses on class probabilities (batch, *spatial, classes): given two classes, background and foreground.
CLASS_AXIS = {"multiclass-dice", "multiclass-cross-entropy"}
# Registered losses that are neither ImageLoss(y_true, y_pred) nor DeformationLoss(ddf): how to call them.
SKIP_GENERIC = {
    # needs a Keras encoder model; swept in tests/losses/test_segmentation.py
    "embedding",
}

SHAPES = {2: (2, 9, 10), 3: (2, 7, 8, 9)}


def _images(ndim):
    shape = SHAPES[ndim]
    rng = np.random.default_rng(ndim)
    const = np.full(shape, 0.5, np.float32)
    zeros = np.zeros(shape, np.float32)
    one_voxel = np.zeros(shape, np.float32)
    one_voxel[(slice(None),) + tuple(s // 2 for s in shape[1:])] = 1.0
    noise = rng.random(shape, dtype=np.float32)
    return {
        "constant/constant": (const, const),
        "constant/noise": (const, noise),
        "noise/constant": (noise, const),
        "zeros/zeros": (zeros, zeros),
        "voxel/voxel": (one_voxel, one_voxel),
        "voxel/zeros": (one_voxel, zeros),
        "zeros/voxel": (zeros, one_voxel),
    }


def _ddfs(ndim):
    shape = SHAPES[ndim] + (ndim,)
    return {
        "zero": np.zeros(shape, np.float32),
        "constant": np.full(shape, 0.75, np.float32),
    }


def _build(name):
    return REGISTRY.build_loss({"name": name, **EXTRA_ARGS.get(name, {})}, default_args={"reduction": None})


def _assert_finite(value, grads, what):
    assert np.all(np.isfinite(value)), f"{what}: non-finite value {value}"
    for i, g in enumerate(grads):
        assert np.all(np.isfinite(g)), f"{what}: non-finite gradient for argument {i}"


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", REGISTRY.names("loss_class"))
def test_loss_is_finite_on_degenerate_inputs(name, ndim):
    if name in SKIP_GENERIC:
        pytest.skip(f"{name} is swept in its own test module")
    loss = _build(name)
    if isinstance(loss, ImageLoss):
        for case, (y_true, y_pred) in _images(ndim).items():
            if name in CLASS_AXIS:
                y_true, y_pred = (np.stack([1.0 - y, y], axis=-1) for y in (y_true, y_pred))
            value, grads = value_and_grads(lambda t, p: loss(t, p), y_true, y_pred)
            assert value.shape == ()
            _assert_finite(value, grads, f"{name} {ndim}-D {case}")
    elif name == "inverse-consistency":
        for case, ddf in _ddfs(ndim).items():
            value, grads = value_and_grads(lambda f, b: loss(f, b), ddf, -ddf)
            _assert_finite(value, grads, f"{name} {ndim}-D {case} DDFs")
    elif name == "rigidity":
        for case, ddf in _ddfs(ndim).items():
            for mask_case, mask in (
                ("empty", np.zeros(ddf.shape[:-1], np.float32)),
                ("full", np.ones(ddf.shape[:-1], np.float32)),
            ):
                value, grads = value_and_grads(lambda d, m: loss(d, m), ddf, mask)
                _assert_finite(value, grads, f"{name} {ndim}-D {case} DDF, {mask_case} mask")
    elif isinstance(loss, DeformationLoss):
        for case, ddf in _ddfs(ndim).items():
            value, grads = value_and_grads(lambda d: loss(d), ddf)
            _assert_finite(value, grads, f"{name} {ndim}-D {case} DDF")
    else:
        pytest.fail(f"{name}: {type(loss).__name__} is neither an ImageLoss nor a DeformationLoss; add a case")


@pytest.mark.parametrize("ndim", [2, 3])
def test_ops_are_finite_on_degenerate_inputs(ndim):
    from tfreg.ops import filters
    from tfreg.ops.integrate import integrate_dvf
    from tfreg.ops.jacobian import jacobian_determinant
    from tfreg.ops.resize import resize
    from tfreg.ops.warp import warp

    const = np.full(SHAPES[ndim] + (1,), 0.5, np.float32)
    zero_ddf = _ddfs(ndim)["zero"]
    out_shape = tuple(s + 2 for s in SHAPES[ndim][1:])
    cases = {
        "warp constant image, zero ddf": (lambda im, d: warp(im, d), const, zero_ddf),
        "warp nearest, zero ddf": (lambda im, d: warp(im, d, interpolation="nearest"), const, zero_ddf),
        "warp replicate, zero ddf": (lambda im, d: warp(im, d, boundary="replicate"), const, zero_ddf),
        "integrate_dvf zero": (lambda d: integrate_dvf(d), zero_ddf),
        "jacobian_determinant zero": (lambda d: jacobian_determinant(d), zero_ddf),
        "resize constant": (lambda im: resize(im, out_shape), const),
        "gaussian_smooth constant": (lambda im: filters.gaussian_smooth(im, 1.0), const),
        "laplacian constant": (lambda im: filters.laplacian(im), const),
        "laplacian_of_gaussian constant": (lambda im: filters.laplacian_of_gaussian(im, 1.0), const),
    }
    for what, (fn, *args) in cases.items():
        value, grads = value_and_grads(fn, *args)
        _assert_finite(value, grads, f"{what} ({ndim}-D)")
