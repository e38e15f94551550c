"""tfreg.metrics.surface: nested cubes with closed-form distances, shifted spheres, SimpleITK's HD."""

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.metrics import EmptyMaskWarning, assd, hausdorff_distance, msd, surface_distances


def _grid(shape, spacing):
    """Physical coordinates (mm) of every voxel centre, shape (*shape, ndim)."""
    axes = [np.arange(n) * s for n, s in zip(shape, spacing)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _box(shape, lo, hi):
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(l, h + 1) for l, h in zip(lo, hi))] = True
    return m


def _box_surface_index(shape, lo, hi):
    """Voxel indices (K, ndim) of the faces of the box [lo, hi] (inclusive)."""
    idx = np.indices(shape).reshape(len(shape), -1).T
    lo, hi = np.asarray(lo), np.asarray(hi)
    inside = np.all((idx >= lo) & (idx <= hi), axis=1)
    on_face = np.any((idx == lo) | (idx == hi), axis=1)
    return idx[inside & on_face]


def _nested_cube_reference(shape, lo, hi, margin, spacing):
    """Closed-form directed distances between the surfaces of a box and the box grown by ``margin``.

    Inner surface point p to the outer surface: the outer box contains p, so the distance is that to
    the nearest outer face plane, min_k min(p_k - lo_k + m, hi_k + m - p_k) s_k. Outer surface point q to
    the inner surface: q lies outside the inner box, so the nearest inner surface point is the
    projection of q onto the inner box (coordinate-wise clamp).
    """
    sp = np.asarray(spacing)
    lo, hi = np.asarray(lo), np.asarray(hi)
    inner = _box_surface_index(shape, lo, hi)
    outer = _box_surface_index(shape, lo - margin, hi + margin)
    d_in = np.min(np.minimum(inner - lo + margin, hi + margin - inner) * sp, axis=1)
    excess = np.maximum(np.maximum(lo - outer, outer - hi), 0) * sp
    d_out = np.linalg.norm(excess, axis=1)
    return d_in, d_out


@pytest.mark.parametrize(
    "shape,lo,hi,margin,spacing",
    [
        ((20, 20, 20), (7, 7, 7), (12, 12, 12), 3, (1.0, 1.0, 1.0)),
        ((22, 20, 18), (6, 7, 5), (14, 11, 12), 2, (0.7, 1.2, 2.0)),
        ((30, 26), (8, 9), (20, 15), 4, (0.5, 1.5)),
    ],
)
def test_nested_cubes_closed_form(shape, lo, hi, margin, spacing):
    inner = _box(shape, lo, hi)
    outer = _box(shape, np.subtract(lo, margin), np.add(hi, margin))
    d_in, d_out = _nested_cube_reference(shape, lo, hi, margin, spacing)
    d_ab, d_ba = surface_distances(inner, outer, spacing)
    # surface_distances lists surface voxels in C order, as _box_surface_index does
    np.testing.assert_allclose(d_ab, d_in, atol=1e-12)
    np.testing.assert_allclose(d_ba, d_out, atol=1e-12)
    pooled = np.concatenate([d_in, d_out])
    assert hausdorff_distance(inner, outer, spacing) == pytest.approx(pooled.max())
    assert hausdorff_distance(inner, outer, spacing, percentile=95) == pytest.approx(np.percentile(pooled, 95))
    assert hausdorff_distance(inner, outer, spacing, percentile=99, combine="max") == pytest.approx(
        max(np.percentile(d_in, 99), np.percentile(d_out, 99))
    )
    assert assd(inner, outer, spacing) == pytest.approx(pooled.mean())
    assert msd(inner, outer, spacing) == pytest.approx(pooled.mean())
    assert msd(inner, outer, spacing, mode="average") == pytest.approx((d_in.mean() + d_out.mean()) / 2)
    assert msd(inner, outer, spacing, mode="directed") == pytest.approx(d_in.mean())


def test_isotropic_nested_cubes_hand_values():
    # side 6 inside side 12 (margin 3): every inner surface voxel is exactly 3 from the outer surface,
    # the outer corners are 3 sqrt(3) from the inner corners; 6^3 - 4^3 = 152 inner surface voxels
    inner = _box((16, 16, 16), (5, 5, 5), (10, 10, 10))
    outer = _box((16, 16, 16), (2, 2, 2), (13, 13, 13))
    d_ab, d_ba = surface_distances(inner, outer, spacing=2.0)
    assert d_ab.size == 6**3 - 4**3
    assert d_ba.size == 12**3 - 10**3
    np.testing.assert_allclose(d_ab, 6.0)
    assert d_ba.min() == pytest.approx(6.0)
    assert hausdorff_distance(inner, outer, spacing=2.0) == pytest.approx(6.0 * np.sqrt(3))


def _sphere_pair(shift_mm, spacing=(1.0, 0.8, 1.5), shape=(24, 32, 20), radius=7.0):
    x = _grid(shape, spacing)
    centre = np.array([11.5, 12.0, 14.0])
    a = np.linalg.norm(x - centre, axis=-1) <= radius
    b = np.linalg.norm(x - centre - np.asarray(shift_mm), axis=-1) <= radius
    return a, b


def _sitk_hausdorff(a, b, spacing):
    images = []
    for m in (a, b):
        img = sitk.GetImageFromArray(m.astype(np.uint8))
        img.SetSpacing(tuple(float(s) for s in spacing[::-1]))  # SimpleITK is x, y, z = our k, j, i
        images.append(img)
    filt = sitk.HausdorffDistanceImageFilter()
    filt.Execute(*images)
    return filt.GetHausdorffDistance()


@pytest.mark.parametrize("shift", [(0.0, 2.4, 0.0), (3.0, 0.0, 0.0), (0.0, 0.0, 4.5)])
def test_sphere_shifted_by_whole_voxels(shift):
    spacing = (1.0, 0.8, 1.5)
    a, b = _sphere_pair(shift, spacing)
    hd = hausdorff_distance(a, b, spacing)
    assert hd == pytest.approx(np.linalg.norm(shift), abs=1e-9)
    assert hd == pytest.approx(_sitk_hausdorff(a, b, spacing), abs=1e-9)
    assert hausdorff_distance(b, a, spacing) == pytest.approx(hd)


@pytest.mark.parametrize("shift", [(0.0, 2.0, 0.0), (1.3, 1.1, 0.7), (0.0, 0.0, 2.0)])
def test_sphere_shifted_by_fraction_of_voxel(shift):
    spacing = (1.0, 0.8, 1.5)
    a, b = _sphere_pair(shift, spacing)
    hd = hausdorff_distance(a, b, spacing)
    assert abs(hd - np.linalg.norm(shift)) <= max(spacing)
    assert hd == pytest.approx(_sitk_hausdorff(a, b, spacing), abs=1e-9)
    # percentiles and means never exceed the maximum
    assert hausdorff_distance(a, b, spacing, percentile=95) <= hd
    assert assd(a, b, spacing) <= hausdorff_distance(a, b, spacing, percentile=95)


def test_union_percentile_not_above_max_of_directed():
    a, b = _sphere_pair((1.3, 1.1, 0.7))
    b[2:6, 2:6, 2:6] = True  # an outlier blob only b has
    for p in (50, 95, 99):
        assert (
            hausdorff_distance(a, b, (1.0, 0.8, 1.5), p)
            <= hausdorff_distance(a, b, (1.0, 0.8, 1.5), p, combine="max") + 1e-12
        )


def test_identical_masks_zero_distance():
    a, _ = _sphere_pair((0, 0, 0))
    assert hausdorff_distance(a, a) == 0.0
    assert assd(a, a) == 0.0


def test_object_touching_array_edge_has_surface_there():
    a = np.zeros((10, 10), dtype=bool)
    a[0:4, 0:4] = True  # a 4x4 square in the corner of the array
    b = np.zeros_like(a)
    b[0:4, 1:5] = True
    d_ab, _ = surface_distances(a, b)
    # only the 2x2 block at rows/cols 1-2 is interior: pixels on the array edge count as surface
    assert d_ab.size == 12


@pytest.mark.parametrize("fn", [hausdorff_distance, assd, msd])
def test_empty_inputs_warn_and_return_nan(fn):
    a, _ = _sphere_pair((0, 0, 0))
    empty = np.zeros_like(a)
    with pytest.warns(EmptyMaskWarning, match=r"\bb has no foreground"):
        assert np.isnan(fn(a, empty))
    with pytest.warns(EmptyMaskWarning, match=r"\ba has no foreground"):
        assert np.isnan(fn(empty, a))
    with pytest.warns(EmptyMaskWarning, match="a and b have no foreground"):
        assert np.isnan(fn(empty, empty))


def test_surface_distances_empty_returns_empty_arrays():
    with pytest.warns(EmptyMaskWarning):
        d_ab, d_ba = surface_distances(np.zeros((5, 5)), np.ones((5, 5)))
    assert d_ab.size == 0 and d_ba.size == 0


@pytest.mark.parametrize("fn", [hausdorff_distance, assd, msd, surface_distances])
def test_bad_inputs(fn):
    a = np.ones((6, 6, 6))
    with pytest.raises(ValueError, match=r"\(6, 6, 6\).*\(6, 6, 5\)"):
        fn(a, np.ones((6, 6, 5)))
    with pytest.raises(ValueError, match="spacing"):
        fn(a, a, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        fn(a, a, spacing=(1.0, 0.0, 1.0))
    bad = a.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        fn(a, bad)


def test_bad_percentile_and_modes():
    a = np.ones((4, 4))
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(a, a, percentile=101)
    with pytest.raises(ValueError, match="combine"):
        hausdorff_distance(a, a, combine="mean")
    with pytest.raises(ValueError, match="mode"):
        msd(a, a, mode="median")
