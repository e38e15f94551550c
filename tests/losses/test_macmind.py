"""macMIND against an explicit NumPy reference (one and two scales), invariances and shift response."""

import itertools
import math

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tests.losses.test_mind import np_box, np_shift, smooth_image
from tfreg.losses import macmind as MM
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def np_ms_ssc_scale(img, dist, r1):
    """One scale: 18 (3-D) / 8 (2-D) connections written out from the layout {0, +-dist e_a}."""
    nd = img.ndim
    layout = [np.zeros(nd, int)]
    for a in range(nd):
        for s in (-1, 1):
            e = np.zeros(nd, int)
            e[a] = s * dist
            layout.append(e)
    conns = [(p, q) for p, q in itertools.combinations(layout, 2) if not np.array_equal(p, -q) or not p.any()]
    assert len(conns) == (18 if nd == 3 else 8)
    ssd = np.stack([np_box((np_shift(img, p) - np_shift(img, q)) ** 2, (r1 - 1) // 2) for p, q in conns], -1)
    total = ssd.sum(-1, keepdims=True)
    floor = len(conns) * (1e-3 * (total / len(conns)).mean() + 1e-6)
    return np.exp(-len(conns) * ssd / np.maximum(total, floor))


def np_bins_2d(r2, n_angle, n_radius):
    """Members of each polar bin (index r * n_angle + a), from the rules in the docstring."""
    h = r2 // 2
    edges = [math.sqrt(2) * h * 2.0 ** (i + 1 - n_radius) for i in range(n_radius)]
    bins = [[] for _ in range(n_angle * n_radius)]
    for u, v in itertools.product(range(-h, h + 1), repeat=2):
        if u == 0 and v == 0:
            for a in range(n_angle):
                bins[a].append((0, 0))
            continue
        ring = int(np.searchsorted(edges, np.hypot(u, v) - 1e-9))
        a = int(np.floor(np.mod(np.arctan2(v, u), 2 * np.pi) / (2 * np.pi / n_angle) + 1e-9)) % n_angle
        bins[ring * n_angle + a].append((u, v))
    return bins


def np_aggregate(m, r2, n_angle, n_radius, height_axis=None):
    """Bin means of every channel of m (*S, M): explicit shifted sums (cylinder column along height_axis)."""
    nd = m.ndim - 1
    h = r2 // 2
    plane = [a for a in range(nd) if a != height_axis]
    outs = []
    for members in np_bins_2d(r2, n_angle, n_radius):
        acc = np.zeros_like(m)
        count = 0
        heights = range(-h, h + 1) if nd == 3 else [0]
        for (u, v), dz in itertools.product(members, heights):
            off = [0] * nd
            off[plane[0]], off[plane[1]] = u, v
            if nd == 3:
                off[height_axis] = dz
            acc += np.stack([np_shift(m[..., c], off) for c in range(m.shape[-1])], -1)
            count += 1
        outs.append(acc / count)
    return np.concatenate(outs, -1)


def test_bins_default_layout():
    bins = np_bins_2d(5, 8, 2)
    assert [len(b) for b in bins] == [2] * 16  # inner: centre + 1 voxel, outer: 2 voxels
    _, plane_bins, kernels = MM.log_polar_bins(3, 5, 8, 2, 1, 2)
    assert [sorted(o for o, _ in b) for b in plane_bins] == [sorted(b) for b in bins]
    np.testing.assert_allclose(kernels.reshape(16, -1).sum(1), 1.0)


@pytest.mark.parametrize("shape,dist", [((11, 10, 9), 1), ((20, 18), 2)])
def test_one_scale_matches_numpy(shape, dist):
    img = smooth_image(shape, 1).astype(np.float64)
    desc = MM.MacMIND(distances=[dist], weights=[1.0], patch_size=3, aggregation_size=5)
    out = np.asarray(desc(img[None, ..., None].astype(np.float32)))[0]
    ms = np_ms_ssc_scale(img, dist, 3)
    ref = np_aggregate(ms, 5, 8, 2, height_axis=2 if len(shape) == 3 else None)
    assert out.shape == shape + ((18 if len(shape) == 3 else 8) * 16,)
    np.testing.assert_allclose(out, ref, atol=3e-5)


def test_two_scales_sum_and_concat_2d():
    img = smooth_image((24, 22), 2).astype(np.float64)
    s1, s2 = np_ms_ssc_scale(img, 2, 5), np_ms_ssc_scale(img, 4, 5)
    x = img[None, ..., None].astype(np.float32)
    out = np.asarray(MM.MacMIND().ms_ssc(x))[0]  # defaults: K = 2, L = 2, alpha = (0.3, 0.7), R1 = 5
    np.testing.assert_allclose(out, 0.3 * s1 + 0.7 * s2, atol=2e-5)
    cat = np.asarray(MM.MacMIND(combine="concat").ms_ssc(x))[0]
    np.testing.assert_allclose(cat, np.concatenate([s1, s2], -1), atol=2e-5)


def test_loss_value_gradients_and_registry():
    t = smooth_image((12, 11, 10), 3)[None]
    p = smooth_image((12, 11, 10), 4)[None]
    loss = REGISTRY.build_loss(
        {"name": "macmind", "distances": [1], "weights": [1.0], "patch_size": 3}, {"reduction": None}
    )
    d = lambda x: np_aggregate(np_ms_ssc_scale(x[0].astype(np.float64), 1, 3), 5, 8, 2, height_axis=2)
    ref = np.mean(np.sum((d(t) - d(p)) ** 2, -1))
    value, (_, gp) = value_and_grads(lambda a, b: loss(a, b), t, p)
    np.testing.assert_allclose(value, ref, rtol=1e-4)
    assert np.all(np.isfinite(gp)) and np.abs(gp).max() > 0
    const = np.full((1, 10, 10, 10), 0.5, np.float32)
    value, grads = value_and_grads(lambda a, b: MM.MacMINDLoss(reduction=None)(a, b), const, const)
    assert value == 0 and all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("shape", [(16, 15, 14), (32, 32)])
def test_modality_invariance(shape):
    img, other = smooth_image(shape, 5)[None], smooth_image(shape, 6)[None]
    loss = MM.MacMINDLoss(spatial_dims=len(shape), reduction=None)
    assert float(np.asarray(loss(img, 1.0 - 0.5 * img))[0]) < 1e-4
    assert np.asarray(loss(img, np.sqrt(img + 0.1)))[0] < 0.2 * np.asarray(loss(img, other))[0]


def test_descriptor_follows_a_shift():
    big = smooth_image((48, 48), 7)
    s = (3, -2)
    img = big[8:40, 8:40]
    moved = np.roll(big, s, axis=(0, 1))[8:40, 8:40]  # moved(x) = img(x - s)
    desc = MM.MacMIND()
    a = np.asarray(desc(img[None, ..., None]))[0]
    b = np.asarray(desc(moved[None, ..., None]))[0]
    m = 12  # distance 4 + R1 / 2 + R2 / 2 + |s|: unaffected by the borders
    np.testing.assert_allclose(b[m:-m, m:-m], np.roll(a, s, axis=(0, 1))[m:-m, m:-m], atol=1e-5)
    assert np.abs(b[m:-m, m:-m] - a[m:-m, m:-m]).mean() > 10 * 1e-5


def test_bad_arguments():
    with pytest.raises(ValueError, match="combine"):
        MM.MacMINDLoss(combine="max")
    with pytest.raises(ValueError, match="weights"):
        MM.MacMINDLoss(weights=(1.0,))
    with pytest.raises(ValueError, match="patch_size"):
        MM.MacMINDLoss(patch_size=4)
    with pytest.raises(ValueError, match="angle_bins"):
        MM.MacMINDLoss(angle_bins=32, radius_bins=2)
    with pytest.raises(ValueError, match="height_axis"):
        MM.MacMINDLoss(height_axis=3)


@pytest.mark.parametrize(
    "shape,kw,channels",
    [((11, 10, 9), {}, 3), ((10, 11, 9), dict(height_axis=0), 3), ((14, 13), {}, 3), ((9, 8, 7), {}, 13)],
)
def test_bin_energy_matches_numpy(shape, kw, channels):
    # The loss' lag form of sum(aggregate(m)^2) against the explicit shifted sums of the reference;
    # 13 channels are summed in groups of CHANNEL_GROUP (6 + 6 + 1).
    rng = np.random.default_rng(5)
    m = rng.standard_normal(shape + (channels,))
    desc = MM.MacMIND(**kw)
    height = None if len(shape) == 2 else kw.get("height_axis", -1) % 3
    ref = np.sum(np_aggregate(m, 5, 8, 2, height_axis=height) ** 2)
    out = np.asarray(desc.bin_energy(m[None].astype(np.float32)))
    np.testing.assert_allclose(out, [ref], rtol=1e-5)


def test_loss_gradient_matches_finite_differences():
    t = smooth_image((11, 10, 9), 3)[None]
    p = smooth_image((11, 10, 9), 4)[None]
    d = lambda x: np_aggregate(np_ms_ssc_scale(x.astype(np.float64), 1, 3), 5, 8, 2, height_axis=2)  # noqa: E731
    dt = d(t[0])
    np_loss = lambda a: np.mean(np.sum((dt - d(a)) ** 2, -1))  # noqa: E731
    voxels = [0, 93, 500, 989]
    ref = []
    for v in voxels:
        hi, lo = p[0].astype(np.float64).ravel().copy(), p[0].astype(np.float64).ravel().copy()
        hi[v] += 1e-5
        lo[v] -= 1e-5
        ref.append((np_loss(hi.reshape(p[0].shape)) - np_loss(lo.reshape(p[0].shape))) / 2e-5)
    ref = np.array(ref)
    loss = MM.MacMINDLoss(distances=[1], weights=[1.0], patch_size=3, reduction=None)
    _, (_, gp) = value_and_grads(lambda a, b: loss(a, b), t, p)
    np.testing.assert_allclose(gp.ravel()[voxels], ref, atol=2e-3 * np.abs(ref).max())


def test_recompute_gives_the_same_value_and_gradient():
    t = smooth_image((12, 11, 10), 3)[None]
    p = smooth_image((12, 11, 10), 4)[None]
    kw = dict(distances=[1, 2], weights=[0.4, 0.6], patch_size=3, reduction=None)
    v0, (_, g0) = value_and_grads(lambda a, b: MM.MacMINDLoss(**kw)(a, b), t, p)
    v1, (_, g1) = value_and_grads(lambda a, b: MM.MacMINDLoss(recompute=True, **kw)(a, b), t, p)
    np.testing.assert_allclose(v1, v0, rtol=1e-6)
    np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-6 * np.abs(g0).max())
    assert MM.MacMINDLoss(recompute=True).get_config()["recompute"] is True
    with pytest.raises(ValueError, match="recompute"):
        MM.MacMINDLoss(recompute="yes")


def test_bin_energy_gradient_in_channel_groups():
    # sum(aggregate(m)^2) is quadratic, so central differences of the float64 reference are exact up to
    # rounding; 13 channels cross the CHANNEL_GROUP group boundaries.
    assert MM.CHANNEL_GROUP < 13
    rng = np.random.default_rng(6)
    m = rng.standard_normal((8, 7, 6, 13))
    energy = lambda a: np.sum(np_aggregate(a, 5, 8, 2, height_axis=2) ** 2)  # noqa: E731
    _, (g,) = value_and_grads(lambda a: MM.MacMIND().bin_energy(a), m[None].astype(np.float32))
    for index in [(0, 0, 0, 0), (3, 4, 5, 6), (7, 6, 2, 12), (4, 0, 3, 5)]:
        step = np.zeros_like(m)
        step[index] = 1e-3
        ref = (energy(m + step) - energy(m - step)) / 2e-3
        np.testing.assert_allclose(g[0][index], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("group", [18, 4])
def test_scale_gradient_where_the_variance_floor_binds(group, monkeypatch):
    # A flat image with one bright voxel: most voxels' mean SSD is below the floor (1e-3 of its image mean),
    # so the gradient also flows through the floor into every voxel. Reference: central differences of
    # the float64 NumPy scale, weighted by a fixed random map.
    # group 4: the connections in groups of 4, 4, 4, 4, 2 (forward and written-out backward).
    monkeypatch.setattr(MM, "SSC_GROUP", group)
    img = np.full((7, 6, 5), 0.5)
    img[3, 2, 2] = 1.0
    img += 1e-4 * np.random.default_rng(7).random(img.shape)
    w = np.random.default_rng(8).standard_normal(img.shape + (18,))
    np_scale = lambda a: np_ms_ssc_scale(a, 1, 3)  # noqa: E731
    mean_ssd = np.mean(-np.log(np_scale(img)), -1)  # SSD / max(mean SSD, floor): < 1 where the floor binds
    assert np.mean(mean_ssd < 0.999) > 0.5
    fn = lambda a: MM.ssc_scale(a, 1, 3)[..., 0] * w.astype(np.float32)  # noqa: E731
    _, (g,) = value_and_grads(fn, img[None, ..., None].astype(np.float32))
    for index in [(3, 2, 2), (0, 0, 0), (3, 3, 2), (6, 5, 4), (2, 2, 2)]:
        step = np.zeros_like(img)
        step[index] = 1e-6
        ref = (np.sum(np_scale(img + step) * w) - np.sum(np_scale(img - step) * w)) / 2e-6
        np.testing.assert_allclose(g[(0,) + index + (0,)], ref, rtol=2e-3, atol=2e-3 * np.abs(ref) + 1e-2)


def test_check_input_shape_refuses_images_within_the_descriptors_reach():
    from tfreg.losses.macmind import MacMINDLoss

    loss = MacMINDLoss()  # distances 2 and 4, aggregation 5
    loss.check_input_shape((5, 9, 9), ndim=3)
    loss.check_input_shape((5, 9, 9, 1), ndim=3)  # a channel axis is ignored
    with pytest.raises(ValueError, match=r"needs every spatial size > 4 voxels, got \(4, 9, 9\)"):
        loss.check_input_shape((4, 9, 9), ndim=3)
    MacMINDLoss(num_scales=1, distances=[1], weights=[1.0], aggregation_size=3).check_input_shape((2, 2), ndim=2)
