"""The building blocks of benchmarks/bench_dfsa_ablation.py (He, He and Cao 2022's ablations) on hand cases;
the benchmark's training runs are not repeated here (minutes, not seconds)."""

import numpy as np
import pytest

from tests.benchmarks.script_loader import load_benchmark

bench = load_benchmark("bench_dfsa_ablation")


def disc(shape, centre, radius):
    yy, xx = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.float32)


def test_all_ordered_pairs_is_the_papers_count():
    pairs = bench.all_ordered_pairs(50)
    assert len(pairs) == 2450 == len(set(pairs))  # JSRT's 50 test images
    assert all(m != f for m, f in pairs)


def test_measures_of_a_shifted_square():
    """A 10x10 square shifted by 2 pixels along x: DSC 0.8; every boundary pixel of one is at most 2 pixels
    from the other's boundary, so HD = 2 pixels = 6 mm at 3 mm."""
    a = np.zeros((32, 32), np.float32)
    a[10:20, 10:20] = 1
    b = np.roll(a, 2, axis=0)
    dsc, hd, assd, jac = bench.pair_measures(a, b, None, 3.0)
    assert dsc == pytest.approx(0.8)
    assert hd == pytest.approx(6.0)
    assert 0 < assd < 6.0 and jac == 0
    # identical masks: 1, 0, 0
    assert bench.pair_measures(a, a, np.zeros((32, 32, 2)), 3.0) == (1.0, 0.0, 0.0, 0)


def test_measures_of_concentric_discs():
    """Radii 8 and 12: the boundaries are about 4 pixels apart everywhere, so HD and ASSD are close to 4 pixels."""
    a, b = disc((48, 48), (24, 24), 8), disc((48, 48), (24, 24), 12)
    dsc, hd, assd, _ = bench.pair_measures(a, b, None, 1.0)
    assert dsc == pytest.approx(2 * a.sum() / (a.sum() + b.sum()))
    assert hd == pytest.approx(4.0, abs=1.0) and assd == pytest.approx(4.0, abs=0.6)


def test_folded_pixels_counts_a_reflection_and_not_a_smooth_field():
    shape = (16, 16)
    yy, _ = np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij")
    smooth = np.stack([0.3 * np.sin(yy / 5.0), np.zeros(shape)], -1)
    assert bench.folded_pixels(smooth) == 0
    # y -> -y on rows 0..7 (u = -2y): d(y + u)/dy = -1 on rows 0..6 (row 0 one-sided); row 7's central
    # difference (u(8) - u(6)) / 2 = +6 spans the seam and is not folded: 7 rows of 16
    flip = np.zeros(shape + (2,))
    flip[:8, :, 0] = -2 * yy[:8]
    assert bench.folded_pixels(flip) == 7 * 16


def test_evaluate_warps_the_moving_mask_by_the_ddf_convention():
    """A disc shifted by 3 pixels is registered exactly by the constant DDF 3: fixed pixel p reads moving
    pixel p + 3 along axis 1; the identity scores the shifted disc below 1."""
    moving, fixed = disc((24, 24), (12, 15), 5), disc((24, 24), (12, 12), 5)
    test = bench.Slices(np.zeros((2, 24, 24), "f"), np.stack([moving, fixed]), ["a", "b"])
    ddf = np.zeros((1, 24, 24, 2))
    ddf[..., 1] = 3.0
    np.testing.assert_allclose(bench.evaluate(test, [(0, 1)], ddf, 1.0)[0], [1.0, 0.0, 0.0, 0.0])
    assert bench.evaluate(test, [(0, 1)], None, 1.0)[0, 0] < 0.8


def test_random_pairs_are_reproducible_distinct_and_batched():
    slices = bench.Slices(np.random.rand(5, 8, 8).astype("f"), np.zeros((5, 8, 8), "f"), ["a"] * 5)
    one, two = bench.RandomPairs(slices, 4, 3, seed=7), bench.RandomPairs(slices, 4, 3, seed=7)
    assert len(one) == 4
    np.testing.assert_array_equal(one.moving, two.moving)
    assert np.all(one.moving != one.fixed)
    batch = one[2]
    assert batch["moving_image"].shape == (3, 8, 8) and batch["indices"].shape == (3, 3)
    np.testing.assert_array_equal(batch["fixed_image"], slices.images[one.fixed[2]])
