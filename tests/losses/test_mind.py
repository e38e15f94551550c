"""MIND and MIND-SSC descriptors and losses against an explicit-loop NumPy reference."""

import itertools

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.losses import mind as M
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def np_shift(img, r):
    """img(clamp(i + r)) on a (*S) array, by explicit index clamping."""
    idx = np.ix_(*[np.clip(np.arange(n) + o, 0, n - 1) for n, o in zip(img.shape, r)])
    return img[idx]


def np_box(img, radius):
    """Box mean with replicate boundary, by summing every window offset."""
    out = np.zeros_like(img)
    offs = list(itertools.product(range(-radius, radius + 1), repeat=img.ndim))
    for o in offs:
        out += np_shift(img, o)
    return out / len(offs)


def np_descriptor(img, pairs, radius):
    d = np.stack([np_box((np_shift(img, a) - np_shift(img, b)) ** 2, radius) for a, b in pairs], -1)
    mean_d = d.mean(-1, keepdims=True)
    v = np.maximum(mean_d, 1e-3 * mean_d.mean() + 1e-6)
    return np.exp(-(d - d.min(-1, keepdims=True)) / v)


def smooth_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    img = sum(np.sin(2 * np.pi * (k + 1) * g + rng.uniform(0, 6)) for k, g in enumerate(grids))
    return ((img - img.min()) / (img.max() - img.min()) + 0.05 * rng.random(shape)).astype(np.float32)


def test_pairs_counts():
    assert len(M.mind_pairs(3, 1)) == 6 and len(M.mind_pairs(2, 1)) == 4
    pairs = M.ssc_pairs(3, 2)
    assert len(pairs) == 12 and len(M.ssc_pairs(2, 1)) == 4
    assert all(sum((p - q) ** 2 for p, q in zip(a, b)) == 8 for a, b in pairs)


@pytest.mark.parametrize("shape", [(9, 8, 7), (12, 11)])
@pytest.mark.parametrize("kind", ["mind", "ssc"])
def test_descriptor_matches_numpy(shape, kind):
    img = smooth_image(shape)
    ndim = len(shape)
    fn = M.mind_descriptor if kind == "mind" else M.mind_ssc_descriptor
    pairs = (M.mind_pairs if kind == "mind" else M.ssc_pairs)(ndim, 2)
    out = np.asarray(fn(img[None, ..., None], radius=1, dilation=2))
    ref = np_descriptor(img.astype(np.float64), pairs, 1)
    assert out.shape == (1, *shape, len(pairs))
    np.testing.assert_allclose(out[0], ref, atol=2e-5)
    # Heinrich's max normalisation: one channel equals 1 at each voxel.
    np.testing.assert_allclose(out.max(-1), 1.0, atol=1e-6)


def test_gaussian_patch_and_channels():
    img = np.stack([smooth_image((10, 9, 8), 1), smooth_image((10, 9, 8), 2)], -1)[None]
    out = np.asarray(M.mind_ssc_descriptor(img, radius=1, patch="gaussian"))
    assert out.shape == (1, 10, 9, 8, 24)
    single = np.asarray(M.mind_ssc_descriptor(img[..., 1:], radius=1, patch="gaussian"))
    # channel n * C + c is pair n of input channel c
    np.testing.assert_allclose(out[..., 1::2], single, atol=1e-6)


@pytest.mark.parametrize("name", ["mind", "mind-ssc"])
@pytest.mark.parametrize("shape", [(14, 13, 12), (32, 32)])
def test_modality_invariance(name, shape):
    img = smooth_image(shape, 3)
    other = smooth_image(shape, 4)
    loss = REGISTRY.build_loss({"name": name, "spatial_dims": len(shape)}, {"reduction": None})
    t = img[None]
    # an affine intensity map gives the same descriptor (up to the tiny absolute floor)
    assert float(np.asarray(loss(t, 3.0 - 2.0 * t))[0]) < 1e-6
    # a non-linear monotone map stays much closer than an unrelated image
    mono = np.asarray(loss(t, np.exp(2.0 * t)))[0]
    unrelated = np.asarray(loss(t, other[None]))[0]
    assert mono < 0.2 * unrelated


def test_loss_value_and_finite_gradients():
    t = smooth_image((10, 9, 8), 5)[None]
    p = smooth_image((10, 9, 8), 6)[None]
    pairs = M.ssc_pairs(3, 1)
    ref = np.mean(
        (np_descriptor(t[0].astype(np.float64), pairs, 1) - np_descriptor(p[0].astype(np.float64), pairs, 1)) ** 2
    )
    loss = M.MINDSSCLoss(reduction=None)
    value, (gt, gp) = value_and_grads(lambda a, b: loss(a, b), t, p)
    np.testing.assert_allclose(value, ref, rtol=1e-4)
    assert np.all(np.isfinite(gp)) and np.abs(gp).max() > 0
    const = np.full((1, 8, 8, 8), 0.3, np.float32)
    value, grads = value_and_grads(lambda a, b: M.MINDLoss(reduction=None)(a, b), const, const)
    assert value == 0 and all(np.all(np.isfinite(g)) for g in grads)


def test_bad_arguments():
    with pytest.raises(ValueError, match="radius"):
        M.MINDLoss(radius=-1)
    with pytest.raises(ValueError, match="dilation"):
        M.MINDSSCLoss(dilation=0)
    with pytest.raises(ValueError, match="patch"):
        M.MINDLoss(patch="disc")


def fd_grad(f, x, voxels, h=1e-5):
    """Central differences of a float64 NumPy function at the given flat voxel indices of x."""
    out = []
    for v in voxels:
        hi, lo = x.astype(np.float64).ravel().copy(), x.astype(np.float64).ravel().copy()
        hi[v] += h
        lo[v] -= h
        out.append((f(hi.reshape(x.shape)) - f(lo.reshape(x.shape))) / (2 * h))
    return np.array(out)


def test_box_mean_valid_and_its_gradient():
    rng = np.random.default_rng(3)
    x = rng.random((1, 9, 8, 7, 2)).astype(np.float32)
    w = rng.random((1, 5, 6, 3, 2)).astype(np.float32)  # VALID output of sizes (5, 3, 5)
    # reference: explicit window sums; its gradient w.r.t. x is the window sum of w scattered back
    ref = np.zeros(w.shape)
    grad = np.zeros(x.shape)
    for i, j, k in itertools.product(range(5), range(6), range(3)):
        ref[0, i, j, k] = x[0, i : i + 5, j : j + 3, k : k + 5].mean((0, 1, 2))
        grad[0, i : i + 5, j : j + 3, k : k + 5] += w[0, i, j, k] / 75
    value, (g,) = value_and_grads(lambda a: M.box_mean_valid(a, (5, 3, 5)) * w, x)
    np.testing.assert_allclose(value, np.sum(ref * w), rtol=1e-5)
    np.testing.assert_allclose(g, grad, atol=1e-6)


def test_padded_shifted_copies():
    img = smooth_image((6, 7, 5), 2)
    offs = [(0, 0, 0), (2, 0, 0), (0, -3, 0), (0, 0, 4), (-1, 1, -2)]
    outs = M.padded_shifted_copies(img[None, ..., None], offs, pad=2)
    for r, out in zip(offs, outs):
        ref = np.pad(np_shift(img, r), 2, mode="edge")
        np.testing.assert_array_equal(np.asarray(out)[0, ..., 0], ref)
    with pytest.raises(ValueError, match="offset"):
        M.padded_shifted_copies(img[None, ..., None], [(0, 7, 0)])


@pytest.mark.parametrize("name,pairs", [("mind", M.mind_pairs), ("mind-ssc", M.ssc_pairs)])
def test_loss_gradient_matches_finite_differences(name, pairs):
    t = smooth_image((9, 8, 7), 8)[None]
    p = smooth_image((9, 8, 7), 9)[None]
    ps = pairs(3, 1)
    np_loss = lambda a: np.mean((np_descriptor(t[0].astype(np.float64), ps, 1) - np_descriptor(a, ps, 1)) ** 2)  # noqa: E731
    voxels = [0, 77, 250, 503]  # a corner, the border and the interior
    ref = fd_grad(np_loss, p[0], voxels)
    _, (_, gp) = value_and_grads(lambda a, b: REGISTRY.build_loss({"name": name}, {"reduction": None})(a, b), t, p)
    np.testing.assert_allclose(gp.ravel()[voxels], ref, atol=2e-3 * np.abs(ref).max())
