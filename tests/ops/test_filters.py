"""tfreg.ops.filters against scipy.ndimage / NumPy references, 2-D and 3-D, several channels."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorflow as tf

from tfreg.ops import filters as F
from tfreg.ops.kernels import gaussian_kernel_sigma

SHAPES = {2: (2, 9, 11, 3), 3: (2, 8, 9, 10, 2)}
MODES = {"zero": "constant", "replicate": "nearest"}


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def ref_correlate_axis(x, k, axis, boundary):
    """out[i] = sum_j k[j] x[i + j - (len(k) - 1) // 2] along tensor axis ``axis``, written with np.pad."""
    k = np.asarray(k, np.float64)
    n = len(k)
    pad = [(0, 0)] * x.ndim
    pad[axis] = ((n - 1) // 2, n // 2)
    xp = np.pad(x.astype(np.float64), pad, mode="constant" if boundary == "zero" else "edge")
    out = np.zeros(x.shape)
    for j in range(n):
        out += k[j] * np.take(xp, np.arange(j, j + x.shape[axis]), axis=axis)
    return out


def ref_separable_scipy(x, kernels, boundary):
    """Odd kernels: scipy.ndimage.correlate1d along each spatial axis, per batch and channel."""
    out = x.astype(np.float64)
    for a, k in enumerate(kernels):
        if k is not None:
            out = ndi.correlate1d(out, np.asarray(k, np.float64), axis=a + 1, mode=MODES[boundary], cval=0.0)
    return out


def stencil(ndim, kind):
    if kind == "cross":
        s = np.zeros((3,) * ndim)
        c = (1,) * ndim
        for a in range(ndim):
            for d in (0, 2):
                idx = list(c)
                idx[a] = d
                s[tuple(idx)] = 1
        s[c] = -2 * ndim
        return s
    s = np.ones((3,) * ndim)
    s[(1,) * ndim] = -(3**ndim - 1)
    return s


def ref_laplacian(x, ndim, kind, boundary):
    st = stencil(ndim, kind)
    full = np.zeros((1,) + st.shape + (1,))
    full[0, ..., 0] = st
    return ndi.convolve(x.astype(np.float64), full, mode=MODES[boundary], cval=0.0)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_separable_odd_asymmetric_kernel_vs_scipy(ndim, boundary):
    x = _rand(SHAPES[ndim])
    k = np.array([1.0, 2.0, 5.0, -1.0, 0.5], np.float32)  # asymmetric: correlation, not convolution
    out = np.asarray(F.separable_filter(x, k, boundary=boundary))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref_separable_scipy(x, [k] * ndim, boundary), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_separable_even_kernel(ndim, boundary):
    x = _rand(SHAPES[ndim], seed=1)
    k = [1.0, 2.0, 3.0, 4.0]
    expected = x
    for a in range(ndim):
        expected = ref_correlate_axis(expected, k, a + 1, boundary)
    np.testing.assert_allclose(F.separable_filter(x, k, boundary=boundary), expected, rtol=1e-5, atol=1e-4)


def test_separable_even_kernel_matches_tf_same_convention():
    # DeepReg filtered with tf.nn.conv3d(padding="SAME"): even kernels must be positioned the same way.
    x = _rand((1, 8, 9, 10, 1), seed=2)
    k = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    out = x
    for a in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[a] = 4
        out = tf.nn.conv3d(out, k.reshape(shape), strides=[1] * 5, padding="SAME")
    np.testing.assert_allclose(F.separable_filter(x, k), out.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_separable_per_axis_kernels(ndim):
    x = _rand(SHAPES[ndim], seed=3)
    k3, k5 = np.array([1.0, 2.0, 1.0]), np.array([0.2, 0.3, 0.5, 0.3, 0.1])
    kernels = [k3, None, k5] if ndim == 3 else [None, k5]
    out = F.separable_filter(x, kernels)
    np.testing.assert_allclose(out, ref_separable_scipy(x, kernels, "zero"), rtol=1e-5, atol=1e-5)
    # a list of numbers is one kernel for every axis, not per-axis kernels
    np.testing.assert_allclose(
        F.separable_filter(x, [1.0, 2.0, 1.0]), ref_separable_scipy(x, [[1, 2, 1]] * ndim, "zero"), atol=1e-4
    )


def test_separable_tensor_kernel_and_int_input():
    x = np.arange(2 * 6 * 7 * 1).reshape(2, 6, 7, 1)
    out = F.separable_filter(x, tf.constant([1.0, 1.0, 1.0]))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, ref_separable_scipy(x, [[1, 1, 1]] * 2, "zero"), rtol=1e-6)


def test_separable_gradient_is_flipped_correlation():
    # The adjoint of a zero-padded correlation is the correlation with the flipped kernel.
    x = tf.constant(_rand((1, 7, 8, 6, 2), seed=4))
    w = _rand((1, 7, 8, 6, 2), seed=5)
    k = np.array([1.0, 3.0, -2.0], np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(F.separable_filter(x, k) * w)
    expected = ref_separable_scipy(w, [k[::-1]] * 3, "zero")
    np.testing.assert_allclose(tape.gradient(y, x), expected, rtol=1e-5, atol=1e-4)


def test_separable_unknown_batch_in_tf_function():
    fn = tf.function(
        lambda t: F.separable_filter(t, [1.0, 2.0, 1.0]),
        input_signature=[tf.TensorSpec((None, 8, 9, 10, 2), tf.float32)],
    )
    x = _rand((3, 8, 9, 10, 2), seed=6)
    np.testing.assert_allclose(fn(x), ref_separable_scipy(x, [[1, 2, 1]] * 3, "zero"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_gaussian_smooth(ndim):
    x = _rand(SHAPES[ndim], seed=7)
    k = gaussian_kernel_sigma(1.5)
    np.testing.assert_allclose(F.gaussian_smooth(x, 1.5), ref_separable_scipy(x, [k] * ndim, "zero"), atol=1e-5)
    sigmas = [1.0, 0.0, 2.0][:ndim]
    kernels = [None if s == 0 else gaussian_kernel_sigma(s) for s in sigmas]
    np.testing.assert_allclose(
        F.gaussian_smooth(x, sigmas, boundary="replicate"),
        ref_separable_scipy(x, kernels, "replicate"),
        atol=1e-5,
    )
    # a constant image is preserved away from zero-padded borders and everywhere with replicate
    c = np.full(SHAPES[ndim], 3.0, np.float32)
    np.testing.assert_allclose(F.gaussian_smooth(c, 1.0, boundary="replicate"), c, rtol=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["cross", "full"])
@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_laplacian_vs_explicit_stencil(ndim, kind, boundary):
    x = _rand(SHAPES[ndim], seed=8)
    out = F.laplacian(x, stencil=kind, boundary=boundary)
    assert out.shape == x.shape
    np.testing.assert_allclose(out, ref_laplacian(x, ndim, kind, boundary), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_laplacian_analytic(ndim):
    # f = sum_a (a + 1) * x_a^2 has Laplacian 2 * sum(a + 1); the full stencil is 3^(n-1) times that.
    shape = (1,) + (7,) * ndim + (1,)
    grids = np.meshgrid(*[np.arange(7.0)] * ndim, indexing="ij")
    f = sum((a + 1) * g**2 for a, g in enumerate(grids)).reshape(shape).astype(np.float32)
    lap = 2.0 * sum(range(1, ndim + 1))
    inner = (0,) + (slice(1, -1),) * ndim + (0,)
    np.testing.assert_allclose(np.asarray(F.laplacian(f))[inner], lap, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(F.laplacian(f, stencil="full"))[inner], 3 ** (ndim - 1) * lap, rtol=1e-5)
    const = np.full(shape, 5.0, np.float32)
    for kind in ("cross", "full"):
        np.testing.assert_array_equal(F.laplacian(const, stencil=kind), 0.0)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["cross", "full"])
def test_laplacian_of_gaussian(ndim, kind):
    x = _rand(SHAPES[ndim], seed=9)
    k = gaussian_kernel_sigma(1.0)
    for boundary in ("replicate", "zero"):
        smooth = ref_separable_scipy(x, [k] * ndim, boundary)
        expected = ref_laplacian(smooth, ndim, kind, boundary)
        out = F.laplacian_of_gaussian(x, 1.0, stencil=kind, boundary=boundary)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_bad_arguments():
    x = _rand((1, 6, 6, 6, 1))
    with pytest.raises(ValueError, match=r"boundary.*'reflect'"):
        F.separable_filter(x, [1.0], boundary="reflect")
    with pytest.raises(ValueError, match="1-D"):
        F.separable_filter(x, np.ones((3, 3)))
    with pytest.raises(ValueError, match="1-D"):
        F.separable_filter(x, [])
    with pytest.raises(ValueError, match="one entry per spatial axis"):
        F.separable_filter(x, [np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="spatial axes"):
        F.separable_filter(np.ones((6, 6, 1), np.float32), [1.0])
    with pytest.raises(ValueError, match="sigma"):
        F.gaussian_smooth(x, -1.0)
    with pytest.raises(ValueError, match="sigma"):
        F.gaussian_smooth(x, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"stencil.*'star'"):
        F.laplacian(x, stencil="star")
    with pytest.raises(ValueError, match=r"stencil.*'star'"):
        F.laplacian_of_gaussian(x, 1.0, stencil="star")
    with pytest.raises(ValueError, match="boundary"):
        F.laplacian(x, boundary="wrap")


@pytest.mark.jax
def test_filters_under_jax():
    script = textwrap.dedent(
        """
        import numpy as np, scipy.ndimage as ndi
        import keras
        assert keras.backend.backend() == "jax"
        from tfreg.ops import filters as F
        x = np.random.default_rng(0).normal(size=(2, 7, 8, 9, 2)).astype(np.float32)
        k = np.array([1.0, 2.0, 5.0], np.float32)
        ref = x.astype(np.float64)
        for a in range(3):
            ref = ndi.correlate1d(ref, k, axis=a + 1, mode="nearest")
        np.testing.assert_allclose(np.asarray(F.separable_filter(x, k, boundary="replicate")),
            ref,
            rtol=1e-5, atol=1e-4)
        st = np.zeros((1, 3, 3, 1))
        st[0, :, 1, 0] = st[0, 1, :, 0] = 1
        st[0, 1, 1, 0] = -4
        y = x[..., 0, :]
        np.testing.assert_allclose(np.asarray(F.laplacian(y, boundary="zero")),
            ndi.convolve(y, st, mode="constant"), atol=1e-4)
        print("OK")
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("taps,boundary", [(97, "zero"), (130, "replicate"), (66, "zero")])
def test_long_kernels_match_scipy(taps, boundary):
    """Long kernels (a banded matrix product for the zero boundary) match SciPy's correlation."""
    from scipy import ndimage

    rng = np.random.default_rng(taps)
    x = rng.normal(size=(2, 40, 9, 1)).astype("float32")
    kernel = rng.normal(size=taps).astype("float32")
    got = np.asarray(F.separable_filter(x, [kernel, None], boundary=boundary))
    mode = "constant" if boundary == "zero" else "nearest"
    # scipy's origin for even kernels: centre tap (k - 1) // 2 as tfreg's, i.e. origin -1 for even k
    origin = 0 if taps % 2 else -1
    want = ndimage.correlate1d(
        x.astype("float64"), kernel.astype("float64"), axis=1, mode=mode, cval=0.0, origin=origin
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_multiscale_dice_graph_gradient_does_not_abort():
    """DeepReg's multi-scale Dice (scales up to 16) in a tf.function with its gradient.

    With the long Gaussians applied as convolutions, TF 2.21's oneDNN kernels aborted the whole process
    here ("Check failed: dtype() == expected_dtype"); run in a subprocess so a regression fails this test
    instead of killing pytest, and compare the value with the eager one.
    """
    code = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        from tfreg.registry import REGISTRY
        loss = REGISTRY.build_loss({"name": "dice", "scales": [0, 8, 16]}, default_args={"reduction": None})
        rng = np.random.default_rng(0)
        a = tf.constant(rng.random((2, 64, 64, 60), dtype=np.float32))
        b = tf.Variable(rng.random((2, 64, 64, 60), dtype=np.float32))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                value = tf.reduce_mean(loss(a, b))
            return value, tape.gradient(value, b)

        value, grad = step()
        eager = float(tf.reduce_mean(loss(a, b)))
        assert abs(float(value) - eager) < 1e-5, (float(value), eager)
        assert bool(tf.reduce_all(tf.math.is_finite(grad)))
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
