"""The mi family against a dense NumPy Parzen reference, entropy, invariance and independence cases."""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.losses.mi import MutualInformation, MutualInformationLoss, mutual_information
from tfreg.losses.mutual_information import global_mutual_information
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def b3(t):
    a = abs(t)
    return 2 / 3 - a * a + a**3 / 2 if a < 1 else ((2 - a) ** 3 / 6 if a < 2 else 0.0)


def np_weights(v, kind, nb, sr=0.5):
    """Dense per-voxel weights over every (padded) bin, one explicit loop per voxel and bin."""
    u = np.clip(v, 0, 1) * (nb - 1)
    if kind == "bspline":
        w = np.array([[b3(x - k) for k in range(-2, nb + 2)] for x in u])
    elif kind == "box":
        w = np.array([[1.0 if k == np.clip(np.round(x), 0, nb - 1) else 0.0 for k in range(nb)] for x in u])
    else:
        s = int(np.ceil(3 * sr))
        w = np.array(
            [
                [np.exp(-((x - k) ** 2) / (2 * sr * sr)) if abs(k - np.round(x)) <= s else 0.0 for k in range(nb)]
                for x in u
            ]
        )
    return w / w.sum(1, keepdims=True)


def np_mi(t, p, kind="bspline", nb=8, fixed=None, normalized=False, m=None):
    wt, wp = np_weights(t.ravel(), fixed or kind, nb), np_weights(p.ravel(), kind, nb)
    m = np.ones(t.size) if m is None else m.ravel().astype(float)
    pab = np.einsum("n,na,nb->ab", m, wt, wp) / m.sum()
    h = lambda q: -np.sum(q * np.log(q + 1e-12))
    ha, hb, hab = h(pab.sum(1)), h(pab.sum(0)), h(pab)
    return (ha + hb) / hab if normalized else ha + hb - hab


def smooth(shape, seed):
    rng = np.random.default_rng(seed)
    g = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    x = sum(np.sin(2 * np.pi * (k + 1) * gk + rng.uniform(0, 6)) for k, gk in enumerate(g)) + 0.3 * rng.random(shape)
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32)


@pytest.mark.parametrize(
    "kind,fixed,normalized",
    [("bspline", None, False), ("bspline", "box", True), ("gaussian", None, True), ("gaussian", "bspline", False)],
)
def test_matches_numpy_reference(kind, fixed, normalized):
    t, p = smooth((9, 8, 7), 0), smooth((9, 8, 7), 1)
    p = 0.5 * p + 0.5 * t
    out = np.asarray(
        mutual_information(
            t[None, ..., None], p[None, ..., None], num_bins=8, kernel=kind, fixed_kernel=fixed, normalized=normalized
        )
    )
    np.testing.assert_allclose(out, [np_mi(t, p, kind, 8, fixed, normalized)], rtol=2e-4)


def test_delegates_to_deepreg_estimator():
    t, p = smooth((10, 9, 8), 2)[None], smooth((10, 9, 8), 3)[None]
    mine = np.asarray(MutualInformation(reduction=None)(t, p))
    np.testing.assert_allclose(mine, np.asarray(global_mutual_information(t, p)), rtol=1e-6)
    sparse = np.asarray(MutualInformation(normalized=False, mask_threshold=-1.0, reduction=None)(t, p))  # sparse path
    np.testing.assert_allclose(sparse, mine, rtol=2e-2)


def test_self_information_is_entropy():
    t = smooth((32, 32), 4)
    x = t[None, ..., None]
    hist = np.histogram(t, bins=23, range=(-0.5 / 22, 1 + 0.5 / 22))[0] / t.size  # bins centred at k / 22
    entropy = -np.sum(hist * np.log(hist + 1e-12))
    # a narrow Gaussian Parzen window is almost a hard histogram: MI(a, a) = H(a)
    # (an all-true mask selects the sparse estimator, whose Gaussian is truncated at 3 sigma)
    narrow = float(np.asarray(mutual_information(x, x, mask=x > -1, sigma_ratio=0.1))[0])
    np.testing.assert_allclose(narrow, entropy, rtol=0.05)
    # wider kernels smooth the joint histogram off its diagonal, so MI(a, a) is a little below H(a)
    for kw in [dict(kernel="bspline", fixed_kernel="box"), dict(kernel="bspline"), dict()]:
        mi = float(np.asarray(mutual_information(x, x, **kw))[0])
        assert 0.55 * entropy < mi < entropy, (kw, mi, entropy)


@pytest.mark.parametrize("kind", ["gaussian", "bspline"])
def test_monotone_invariance_and_independence(kind):
    t = smooth((32, 32), 5)[None]
    loss = REGISTRY.build_loss(
        {"name": "mi", "kernel": kind, "num_bins": 16, "intensity_range": "minmax", "spatial_dims": 2},
        {"reduction": None},
    )
    base = -float(np.asarray(loss(t, t))[0])
    # an increasing map that preserves the bin assignment (affine, here) leaves MI unchanged; a
    # non-linear one changes it only by the re-binning
    assert abs(-float(np.asarray(loss(t, 3 * t + 1))[0]) - base) < 1e-4 * base
    assert abs(-float(np.asarray(loss(t, np.sqrt(t)))[0]) - base) < 0.15 * base
    noise = np.random.default_rng(6).random(t.shape).astype(np.float32)
    assert -float(np.asarray(loss(t, noise))[0]) < 0.1 * base


def test_local_mi_mask_and_sampling():
    t, p = smooth((16, 16), 7), smooth((16, 16), 8)
    p = 0.6 * t + 0.4 * p
    out = np.asarray(
        mutual_information(t[None, ..., None], p[None, ..., None], num_bins=6, kernel="bspline", patch_size=8)
    )
    ref = np.mean(
        [np_mi(t[i : i + 8, j : j + 8], p[i : i + 8, j : j + 8], "bspline", 6) for i in (0, 8) for j in (0, 8)]
    )
    np.testing.assert_allclose(out, [ref], rtol=2e-4)
    m = t > 0.4
    out = np.asarray(
        MutualInformation(num_bins=6, kernel="bspline", mask_threshold=0.4, reduction=None)(t[None], p[None])
    )
    np.testing.assert_allclose(out, [np_mi(t, p, "bspline", 6, m=m)], rtol=2e-4)
    out = np.asarray(
        mutual_information(t[None, ..., None], p[None, ..., None], num_bins=6, kernel="bspline", sampling_stride=2)
    )
    np.testing.assert_allclose(out, [np_mi(t[::2, ::2], p[::2, ::2], "bspline", 6)], rtol=2e-4)


def test_gradients_finite_for_constant_images_and_mixed_precision():
    c = np.full((1, 8, 8, 8), 0.5, np.float32)
    for kw in [dict(kernel="bspline"), dict(kernel="gaussian", normalized=True), dict(), dict(patch_size=4)]:
        value, grads = value_and_grads(lambda a, b: MutualInformationLoss(reduction=None, **kw)(a, b), c, c)
        assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads), kw
    t = smooth((8, 8, 8), 9)[None]
    half = MutualInformation(kernel="bspline", reduction=None)(t.astype(np.float16), t.astype(np.float16))
    assert str(np.asarray(half).dtype) == "float32"
    _, (_, g) = value_and_grads(
        lambda a, b: MutualInformationLoss(kernel="bspline", reduction=None)(a, b), t, np.sqrt(t)
    )
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_bad_arguments():
    for kw, word in [
        ({"kernel": "cubic"}, "kernel"),
        ({"fixed_kernel": "x"}, "fixed_kernel"),
        ({"num_bins": 1}, "num_bins"),
        ({"sampling_stride": 0}, "sampling_stride"),
        ({"intensity_range": [1, 0]}, "intensity_range"),
        ({"patch_size": 0}, "patch_size"),
        ({"sigma_ratio": 0}, "sigma_ratio"),
        ({"mask_threshold": "fg"}, "mask_threshold"),
    ]:
        with pytest.raises(ValueError, match=word):
            MutualInformation(**kw)


def np_mi_grad(t, p, voxels, h=1e-6, **kw):
    """Central differences of the float64 NumPy reference w.r.t. p at the given flat voxel indices."""
    out = []
    for v in voxels:
        hi, lo = p.astype(np.float64).copy().ravel(), p.astype(np.float64).copy().ravel()
        hi[v] += h
        lo[v] -= h
        out.append((np_mi(t, hi.reshape(p.shape), **kw) - np_mi(t, lo.reshape(p.shape), **kw)) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize(
    "kw", [dict(kind="bspline"), dict(kind="gaussian", normalized=True), dict(kind="bspline", fixed="box")]
)
def test_chunked_histograms_match_numpy_values_and_gradients(kw):
    # 7 x 11 x 13 = 1001 voxels: chunk_size 64 gives 16 chunks with a padded last one, 10**6 one chunk.
    t, p = smooth((7, 11, 13), 11), smooth((7, 11, 13), 12)
    p = (0.02 + 0.96 * (0.5 * t + 0.5 * p)).astype(np.float32)  # strictly inside (0, 1): no clipping
    args = dict(num_bins=7, kernel=kw["kind"], fixed_kernel=kw.get("fixed"), normalized=kw.get("normalized", False))
    ref = np_mi(t, p, nb=7, **kw)
    voxels = [0, 100, 517, 999, 1000]
    ref_grad = np_mi_grad(t, p, voxels, nb=7, **kw)
    for chunk in (64, 10**6):
        fn = lambda a, b: mutual_information(a, b, chunk_size=chunk, **args)  # noqa: E731
        value, (gt, gp) = value_and_grads(fn, t[None, ..., None], p[None, ..., None])
        np.testing.assert_allclose(value, ref, rtol=2e-5, err_msg=f"chunk {chunk}")
        scale = np.abs(ref_grad).max()
        np.testing.assert_allclose(gp.ravel()[voxels], ref_grad, atol=2e-3 * scale, err_msg=f"chunk {chunk}")
        assert np.all(np.isfinite(gt)) and (kw.get("fixed") != "box" or not np.any(gt))


def test_chunked_histograms_batch_patches_and_mask():
    t = np.stack([smooth((12, 10), 13), smooth((12, 10), 14)])[..., None]
    p = np.stack([smooth((12, 10), 15), smooth((12, 10), 16)])[..., None]
    p = (0.02 + 0.96 * (0.6 * t + 0.4 * p)).astype(np.float32)
    for chunk in (7, 10**6):  # 120 voxels: chunks of 6 (no padding) or one chunk
        out = np.asarray(mutual_information(t, p, num_bins=6, kernel="bspline", patch_size=5, chunk_size=chunk))
        ref = [
            np.mean(
                [
                    np_mi(t[b, i : i + 5, j : j + 5, 0], p[b, i : i + 5, j : j + 5, 0], "bspline", 6)
                    for i in (0, 5)
                    for j in (0, 5)
                ]
            )
            for b in range(2)
        ]
        np.testing.assert_allclose(out, ref, rtol=2e-4)
        loss = MutualInformation(
            num_bins=6, kernel="gaussian", normalized=True, mask_threshold=0.3, chunk_size=chunk, reduction=None
        )
        out = np.asarray(loss(t, p))
        ref = [
            np_mi(t[b, ..., 0], p[b, ..., 0], "gaussian", 6, normalized=True, m=t[b, ..., 0] > 0.3) for b in range(2)
        ]
        np.testing.assert_allclose(out, ref, rtol=2e-4)
