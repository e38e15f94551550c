"""tfreg.ops.warp against independent references: a NumPy transcription of DeepReg's resampling formula,
scipy.ndimage.map_coordinates, closed-form cases and finite differences."""

import gzip
import itertools
import struct

import keras
import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from tfreg.ops.warp import resample, warp

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(20240611)


def np_(x):
    return ops.convert_to_numpy(x)


def grid_of(shape):
    return np.stack(np.meshgrid(*[np.arange(d) for d in shape], indexing="ij"), -1).astype(np.float32)


def deepreg_resample(vol, coords, zero_boundary=True):
    """DeepReg's linear resampling, transcribed in NumPy float64.

    vol (B, *S, C); coords (B, *S_out, n). Per axis: c = clip(x), hi = clip(ceil x), lo = clip(ceil x - 1),
    w_lo = hi - c, w_hi = c - lo (zero boundary) or 1 - w_lo; the value is the weighted sum over corners.
    """
    vol = np.asarray(vol, np.float64)
    coords = np.asarray(coords, np.float64)
    n = coords.shape[-1]
    sizes = vol.shape[1 : n + 1]
    idx, wts = [], []
    for a, d in enumerate(sizes):
        x = coords[..., a]
        c = np.clip(x, 0, d - 1)
        hi = np.clip(np.ceil(x), 0, d - 1)
        lo = np.clip(np.ceil(x) - 1, 0, d - 1)
        w_lo = hi - c
        w_hi = c - lo if zero_boundary else 1 - w_lo
        idx.append((lo.astype(int), hi.astype(int)))
        wts.append((w_lo, w_hi))
    b = np.arange(vol.shape[0]).reshape((-1,) + (1,) * n)
    out = 0.0
    for bits in itertools.product((0, 1), repeat=n):
        w = np.prod([wts[a][bit] for a, bit in enumerate(bits)], axis=0)
        v = vol[(b,) + tuple(idx[a][bit] for a, bit in enumerate(bits))]
        out = out + w[..., None] * v
    return out


def map_coords(vol, coords, mode):
    """scipy map_coordinates(order=1) per batch item and channel; vol (B, *S, C), coords (B, *S_out, n)."""
    out = []
    for b in range(vol.shape[0]):
        pts = np.moveaxis(np.asarray(coords[b], np.float64), -1, 0)
        out.append(
            np.stack(
                [
                    ndimage.map_coordinates(vol[b, ..., c].astype(np.float64), pts, order=1, mode=mode, cval=0.0)
                    for c in range(vol.shape[-1])
                ],
                -1,
            )
        )
    return np.stack(out)


def in_range(coords, sizes):
    c = np.asarray(coords)
    return np.all([(c[..., a] >= 0) & (c[..., a] <= d - 1) for a, d in enumerate(sizes)], axis=0)


def random_case(spatial, channels, batch=2, scale=2.0, moving_shape=None):
    moving_shape = moving_shape or spatial
    image = RNG.random((batch, *moving_shape, channels)).astype(np.float32)
    ddf = (RNG.standard_normal((batch, *spatial, len(spatial))) * scale).astype(np.float32)
    coords = grid_of(spatial)[None] + ddf  # float32 sum, the same rounding as the op's
    return image, ddf, coords


def grads(fn, *args):
    """Value and gradients of scalar ``fn(*args)`` with the active backend's autodiff."""
    args = [np.asarray(a, np.float32) for a in args]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            y = fn(*xs)
        return float(y), [np.asarray(g) for g in tape.gradient(y, xs)]
    if backend == "jax":
        import jax

        y, gs = jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
        return float(y), [np.asarray(g) for g in gs]
    pytest.skip(f"no gradient helper for backend {backend}")


# (a) DeepReg's formula, wherever no coordinate is exactly 0
@pytest.mark.parametrize("spatial", [(9, 11), (8, 9, 10)])
@pytest.mark.parametrize("channels", [None, 1, 3])
@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_matches_deepreg_formula(spatial, channels, boundary):
    image, ddf, coords = random_case(spatial, channels or 1)
    assert not np.any(coords == 0)
    expected = deepreg_resample(image, coords, zero_boundary=boundary == "zero")
    moving = image if channels else image[..., 0]
    got = np_(warp(moving, ddf, boundary=boundary))
    if not channels:
        expected = expected[..., 0]
    assert got.shape == expected.shape
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=2e-6)
    # the DDF covers both in- and out-of-range samples
    assert 0.2 < in_range(coords, spatial).mean() < 0.99


def test_deepreg_formula_differs_only_at_coordinate_zero():
    image = RNG.random((1, 6, 7, 1)).astype(np.float32) + 0.5
    ddf = np.zeros((1, 6, 7, 2), np.float32)
    expected = deepreg_resample(image, grid_of((6, 7))[None])
    got = np_(warp(image, ddf))
    np.testing.assert_array_equal(got, image)  # ours: identity
    at_zero = (grid_of((6, 7)) == 0).any(-1)
    assert np.all(expected[0][at_zero] == 0)  # DeepReg: plane 0 of every axis blanked
    np.testing.assert_allclose(expected[0][~at_zero], image[0][~at_zero], atol=1e-6)


# (b) scipy.ndimage.map_coordinates
@pytest.mark.parametrize("spatial", [(10, 12), (8, 9, 10)])
def test_matches_map_coordinates(spatial):
    image, ddf, coords = random_case(spatial, 2)
    got = np_(warp(image, ddf))
    ref = map_coords(image, coords, "constant")
    inside = in_range(coords, spatial)
    np.testing.assert_allclose(got[inside], ref[inside], atol=2e-6)
    np.testing.assert_array_equal(got[~inside], 0)

    got = np_(warp(image, ddf, boundary="replicate"))
    np.testing.assert_allclose(got, map_coords(image, coords, "nearest"), atol=2e-6)


def test_resample_coords_without_batch_broadcast():
    image, _, _ = random_case((8, 9, 10), 2, batch=3)
    coords = (grid_of((5, 6, 7)) * 1.3 + RNG.random((5, 6, 7, 3)) - 0.3).astype(np.float32)
    got = np_(resample(image, coords))
    assert got.shape == (3, 5, 6, 7, 2)
    ref = map_coords(image, np.broadcast_to(coords, (3, *coords.shape)), "constant")
    inside = np.broadcast_to(in_range(coords, (8, 9, 10)), (3, 5, 6, 7))
    np.testing.assert_allclose(got[inside], ref[inside], atol=2e-6)
    np.testing.assert_array_equal(got[~inside], 0)


def test_image_batch_of_one_broadcasts_over_ddf_batch():
    image, ddf, coords = random_case((8, 9, 10), 1, batch=3)
    atlas = image[:1]
    got = np_(warp(atlas, ddf))
    expected = deepreg_resample(np.broadcast_to(atlas, image.shape), coords)
    np.testing.assert_allclose(got, expected, atol=2e-6)


# (c) a zero DDF returns the image exactly, plane 0 included
@pytest.mark.parametrize("spatial", [(5, 6), (4, 5, 6), (1, 5, 6)])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_zero_ddf_is_identity(spatial, interpolation, boundary):
    image = RNG.random((2, *spatial, 3)).astype(np.float32)
    ddf = np.zeros((2, *spatial, len(spatial)), np.float32)
    got = np_(warp(image, ddf, interpolation=interpolation, boundary=boundary))
    np.testing.assert_array_equal(got, image)
    got = np_(warp(image[..., 0], ddf, interpolation=interpolation, boundary=boundary))
    np.testing.assert_array_equal(got, image[..., 0])


# (d) out of range gives 0 with the zero boundary, the edge value with replicate
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_out_of_range(axis):
    """Every sample at ``beyond`` below 0 (negative) or above d - 1 (positive) along ``axis``."""
    spatial = (6, 7, 8)
    image = RNG.random((1, *spatial, 1)).astype(np.float32) + 1.0
    d = spatial[axis]
    for beyond in (-3.0, -0.5, -0.01, 1e-3, 0.5, 2.0):
        target = beyond if beyond < 0 else d - 1 + beyond
        ddf = np.zeros((1, *spatial, 3), np.float32)
        ddf[..., axis] = target - grid_of(spatial)[..., axis]
        np.testing.assert_array_equal(np_(warp(image, ddf)), 0)
        np.testing.assert_array_equal(np_(warp(image, ddf, interpolation="nearest")), 0)
        edge = np.take(image, [0 if beyond < 0 else d - 1], axis=axis + 1)
        got = np_(warp(image, ddf, boundary="replicate"))
        np.testing.assert_allclose(got, np.broadcast_to(edge, got.shape), rtol=0, atol=1e-6)


def test_edges_are_in_range():
    spatial = (5, 6, 7)
    image = RNG.random((1, *spatial, 1)).astype(np.float32)
    for axis, end in itertools.product(range(3), (0, 1)):
        ddf = np.zeros((1, *spatial, 3), np.float32)
        ddf[..., axis] = end * (spatial[axis] - 1) - grid_of(spatial)[..., axis]
        expected = np.take(image, [end * (spatial[axis] - 1)], axis=axis + 1)
        np.testing.assert_array_equal(np_(warp(image, ddf)), np.broadcast_to(expected, image.shape))


# (e) integer shifts
@pytest.mark.parametrize("shift", [(1, 0, 0), (0, -2, 0), (2, 1, -3)])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_integer_shift(shift, interpolation):
    spatial = (8, 9, 10)
    image = RNG.random((1, *spatial, 2)).astype(np.float32)
    ddf = np.broadcast_to(np.array(shift, np.float32), (1, *spatial, 3))
    expected = np.zeros_like(image)
    src = tuple(slice(max(s, 0), d + min(s, 0)) for s, d in zip(shift, spatial))
    dst = tuple(slice(max(-s, 0), d + min(-s, 0)) for s, d in zip(shift, spatial))
    expected[(0,) + dst] = image[(0,) + src]
    np.testing.assert_array_equal(np_(warp(image, ddf, interpolation=interpolation)), expected)


# (f) nearest neighbour against NumPy
@pytest.mark.parametrize("spatial", [(9, 11), (8, 9, 10)])
@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_nearest(spatial, boundary):
    image, ddf, coords = random_case(spatial, 2)
    # include exact halves to check round-half-to-even
    ddf[0, 1, 1] = 0.5
    coords = grid_of(spatial)[None] + ddf
    sizes = np.array(spatial)
    idx = np.round(np.clip(coords, 0, sizes - 1)).astype(int)  # np.round: half to even
    b = np.arange(2).reshape((-1,) + (1,) * len(spatial))
    expected = image[(b,) + tuple(idx[..., a] for a in range(len(spatial)))]
    if boundary == "zero":
        expected = expected * in_range(coords, spatial)[..., None]
    got = np_(warp(image, ddf, interpolation="nearest", boundary=boundary))
    np.testing.assert_array_equal(got, expected)


# (g) DeepReg's own 16^3 test image and DDF
def read_nifti(path):
    """Voxel array in (i, j, k[, component]) order: SimpleITK, or a minimal NIfTI-1/2 reader.

    SimpleITK returns arrays in (z, y, x) order, while DeepReg saved (x, y, z[, c]) arrays with nibabel,
    so the axes are reversed back. ITK 5.4 cannot read NIfTI-2 (moving_image.nii.gz is one).
    """
    import SimpleITK as sitk

    try:
        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        return np.transpose(arr, tuple(range(arr.ndim))[::-1])
    except RuntimeError:
        pass
    raw = gzip.open(path).read() if str(path).endswith(".gz") else open(path, "rb").read()
    if struct.unpack("<i", raw[:4])[0] == 540:  # NIfTI-2
        datatype = struct.unpack("<h", raw[12:14])[0]
        dim = struct.unpack("<8q", raw[16:80])
        offset = struct.unpack("<q", raw[168:176])[0]
        slope, inter = struct.unpack("<2d", raw[176:192])
    else:  # NIfTI-1
        dim = struct.unpack("<8h", raw[40:56])
        datatype = struct.unpack("<h", raw[70:72])[0]
        offset = int(struct.unpack("<f", raw[108:112])[0])
        slope, inter = struct.unpack("<2f", raw[112:120])
    dtype = {2: "u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8"}[datatype]
    shape = dim[1 : dim[0] + 1]
    arr = np.frombuffer(raw[offset:], dtype=dtype, count=int(np.prod(shape))).reshape(shape, order="F")
    arr = arr.astype(np.float32)
    return arr * slope + inter if slope not in (0.0, 1.0) or inter else arr


def test_deepreg_unit_test_data(shared_data):
    folder = shared_data / "deepreg_test" / "nifti" / "unit_test"
    moving = read_nifti(folder / "moving_image.nii.gz")
    ddf = read_nifti(folder / "ddf.nii.gz")
    assert moving.shape == (16, 16, 16)
    assert ddf.shape == (16, 16, 16, 3)  # a 4-D NIfTI whose last axis holds the (i, j, k) components
    image, field = moving[None].astype(np.float32), ddf[None].astype(np.float32)
    coords = grid_of((16, 16, 16))[None] + field
    expected = deepreg_resample(image[..., None], coords)[..., 0]
    got = np_(warp(image, field))
    at_zero = np.any(coords == 0, axis=-1)
    np.testing.assert_allclose(got[~at_zero], expected[~at_zero], atol=2e-6)
    # and where the field points outside, both give 0
    assert (~in_range(coords, (16, 16, 16))).sum() > 100
    np.testing.assert_array_equal(got[~in_range(coords, (16, 16, 16))], 0)
    assert np.abs(got).max() > 0.5


def test_sitk_and_raw_reader_agree_on_ddf_layout(shared_data):
    import SimpleITK as sitk

    path = shared_data / "deepreg_test" / "nifti" / "unit_test" / "ddf.nii.gz"
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert arr.shape == (3, 16, 16, 16)  # (component, z, y, x)
    raw = gzip.open(path).read()
    offset = int(struct.unpack("<f", raw[108:112])[0])
    fortran = np.frombuffer(raw[offset:], "<f4", count=16**3 * 3).reshape((16, 16, 16, 3), order="F")
    np.testing.assert_array_equal(np.transpose(arr, (3, 2, 1, 0)), fortran)


# (h) gradients
@pytest.mark.parametrize("spatial", [(7, 8), (5, 6, 7)])
def test_gradient_wrt_ddf_matches_finite_differences(spatial):
    n = len(spatial)
    image = RNG.random((1, *spatial, 2)).astype(np.float32)
    # fractional parts kept in [0.15, 0.85] so that +-eps never crosses a voxel boundary
    ddf = (RNG.integers(-1, 2, (1, *spatial, n)) + RNG.uniform(0.15, 0.85, (1, *spatial, n))).astype(np.float32)
    weights = RNG.standard_normal((1, *spatial, 2))

    def loss(d):
        return ops.sum(warp(image, d) * ops.convert_to_tensor(weights.astype(np.float32)))

    _, (grad,) = grads(loss, ddf)
    assert np.isfinite(grad).all()
    grid = grid_of(spatial)[None].astype(np.float64)

    def ref_loss(d):
        return np.sum(deepreg_resample(image, grid + d) * weights)

    eps = 1e-4
    points = [tuple(RNG.integers(0, s) for s in spatial) for _ in range(6)]
    for p in points:
        for c in range(n):
            plus, minus = ddf.astype(np.float64), ddf.astype(np.float64)
            plus[(0, *p, c)] += eps
            minus[(0, *p, c)] -= eps
            fd = (ref_loss(plus) - ref_loss(minus)) / (2 * eps)
            np.testing.assert_allclose(grad[(0, *p, c)], fd, rtol=1e-3, atol=1e-4)


def test_gradient_wrt_image_is_the_adjoint():
    # warp is linear in the image: <d loss / d image, v> == loss(v) for loss(x) = sum(warp(x) * w)
    spatial = (6, 7, 8)
    image, ddf, _ = random_case(spatial, 2, batch=1)
    weights = RNG.standard_normal((1, *spatial, 2)).astype(np.float32)
    direction = RNG.standard_normal(image.shape).astype(np.float32)
    _, (grad,) = grads(lambda x: ops.sum(warp(x, ddf) * weights), image)
    expected = np.sum(np_(warp(direction, ddf)) * weights)
    np.testing.assert_allclose(np.sum(grad * direction), expected, rtol=1e-4)


@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_gradients_finite_at_integer_and_outside_coordinates(boundary):
    spatial = (5, 6, 7)
    image = RNG.random((1, *spatial, 1)).astype(np.float32)
    ddf = np.zeros((1, *spatial, 3), np.float32)
    ddf[0, :2] = -10.0  # far outside
    ddf[0, 2, :, :, 1] = 1.0  # integer
    _, (g_img, g_ddf) = grads(lambda x, d: ops.sum(warp(x, d, boundary=boundary)), image, ddf)
    assert np.isfinite(g_img).all() and np.isfinite(g_ddf).all()
    if boundary == "zero":
        np.testing.assert_array_equal(g_ddf[0, :2], 0)


# (i) a moving image of another shape than the DDF
@pytest.mark.parametrize("moving_shape", [(12, 10, 9), (5, 6, 4)])
def test_moving_shape_differs_from_ddf(moving_shape):
    spatial = (8, 8, 8)
    image = RNG.random((2, *moving_shape, 1)).astype(np.float32)
    scale = (np.array(moving_shape, np.float32) - 1) / (np.array(spatial, np.float32) - 1)
    ddf = (grid_of(spatial) * (scale - 1) + RNG.standard_normal((2, *spatial, 3)) * 0.5).astype(np.float32)
    coords = grid_of(spatial)[None] + ddf
    got = np_(warp(image[..., 0], ddf))
    assert got.shape == (2, *spatial)
    inside = in_range(coords, moving_shape)
    ref = map_coords(image, coords, "constant")[..., 0]
    np.testing.assert_allclose(got[inside], ref[inside], atol=2e-6)
    np.testing.assert_array_equal(got[~inside], 0)
    assert inside.mean() > 0.3


def test_integer_image_and_dtypes():
    image = RNG.integers(0, 255, (1, 6, 7, 8)).astype(np.uint8)
    ddf = (RNG.standard_normal((1, 6, 7, 8, 3)) * 0.7).astype(np.float32)
    got = warp(image, ddf)
    assert "float32" in str(got.dtype)
    ref = deepreg_resample(image[..., None].astype(np.float64), grid_of((6, 7, 8))[None] + ddf)[..., 0]
    np.testing.assert_allclose(np_(got), ref, atol=2e-4)


def test_nan_coordinate_is_outside():
    image = np.ones((1, 4, 5, 1), np.float32)
    coords = np.full((1, 2, 2, 2), np.nan, np.float32)
    np.testing.assert_array_equal(np_(resample(image, coords)), 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(interpolation="cubic"), "interpolation"),
        (dict(boundary="reflect"), "boundary"),
    ],
)
def test_bad_options(kwargs, match):
    image = np.zeros((1, 4, 4, 4, 1), np.float32)
    ddf = np.zeros((1, 4, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=match):
        warp(image, ddf, **kwargs)
    with pytest.raises(ValueError, match=match):
        resample(image, ddf, **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match="image"):
        warp(np.zeros((1, 4, 4), np.float32), np.zeros((1, 4, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="image"):
        resample(np.zeros((1, 4, 4, 4, 1, 1), np.float32), np.zeros((1, 4, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="ddf"):
        warp(np.zeros((1, 4, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="coords"):
        resample(np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 1, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="batch"):
        warp(np.zeros((2, 4, 4, 1), np.float32), np.zeros((3, 4, 4, 2), np.float32))
