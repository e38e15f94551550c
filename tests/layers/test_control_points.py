"""tfreg.layers.control_points against a NumPy re-derivation of DeepReg's control-point head.

The reference follows DeepReg's description step by step with independent tools: the anti-aliasing
Gaussian as a full n-D kernel convolved by SciPy (zero boundary), the half-pixel linear resize by
``scipy.ndimage.zoom(grid_mode=True)``, and the B-spline up-sampling as DeepReg's transposed convolution,
written as a scatter of the four cubic segment polynomials sampled at ``1 - (j + 0.5) / s`` into a
``(n + 3) s`` long signal, cropped from ``3 s``.
"""

import math

import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from tfreg.layers.control_points import ControlPointBackbone, ControlPointHead
from tfreg.ops.kernels import gaussian_kernel_antialias

pytestmark = pytest.mark.backend_agnostic

# DeepReg's four cubic B-spline segments, as polynomials of u in [0, 1]
SEGMENTS = (
    lambda u: (1 - u) ** 3 / 6,
    lambda u: (3 * u**3 - 6 * u**2 + 4) / 6,
    lambda u: (-3 * u**3 + 3 * u**2 + 3 * u + 1) / 6,
    lambda u: u**3 / 6,
)


def antialias_reference(field, spacing):
    """Full n-D Gaussian kernel (sigma 0.44 s, ceil(3 sigma) taps made odd, normalised), SAME zero padding."""
    axes = []
    for s in spacing:
        sigma = 0.44 * s
        size = int(np.ceil(3 * sigma))
        if size % 2 == 0:
            size += 1
        x = np.arange(size) - (size - 1) / 2
        axes.append(np.exp(-(x**2) / (2 * sigma**2)))
    kernel = axes[0]
    for a in axes[1:]:
        kernel = np.multiply.outer(kernel, a)
    kernel /= kernel.sum()
    channels = [
        ndimage.convolve(field[..., c].astype(np.float64), kernel, mode="constant") for c in range(field.shape[-1])
    ]
    return np.stack(channels, -1)


def resize_reference(field, shape):
    """Half-pixel linear resize with clamped edges."""
    zoom = [n / d for n, d in zip(shape, field.shape[:-1])] + [1]
    out = ndimage.zoom(field, zoom, order=1, mode="nearest", grid_mode=True)
    assert out.shape[:-1] == tuple(shape)
    return out


def transposed_bspline_1d(control, spacing, size, axis):
    """DeepReg's 1-D transposed B-spline convolution with stride ``spacing`` along ``axis``, cropped."""
    control = np.moveaxis(control, axis, 0)
    n = control.shape[0]
    full = np.zeros(((n + 3) * spacing,) + control.shape[1:])
    u = 1 - (np.arange(spacing) + 0.5) / spacing
    for k in range(n):
        for f, segment in enumerate(SEGMENTS):
            start = (k + f) * spacing
            full[start : start + spacing] += segment(u)[(slice(None),) + (None,) * (control.ndim - 1)] * control[k]
    return np.moveaxis(full[3 * spacing : 3 * spacing + size], 0, axis)


def head_reference(field, spacing):
    """DeepReg's head on one sample ``(*S, C)``."""
    shape = field.shape[:-1]
    grid = [math.ceil(d / s) + 3 for d, s in zip(shape, spacing)]
    out = resize_reference(antialias_reference(field, spacing), grid)
    for axis, (d, s) in enumerate(zip(shape, spacing)):
        out = transposed_bspline_1d(out, s, d, axis)
    return out


def test_antialias_kernel_matches_deepreg_sizes():
    # ceil(3 sigma) made odd: spacing 5 -> sigma 2.2 -> 7 taps; spacing 4 -> sigma 1.76 -> ceil 5.28 = 6 -> 7
    assert gaussian_kernel_antialias(0.44 * 5).shape == (7,)
    assert gaussian_kernel_antialias(0.44 * 4).shape == (7,)
    assert gaussian_kernel_antialias(0.44 * 2).shape == (3,)
    k = gaussian_kernel_antialias(2.2)
    x = np.arange(7) - 3.0
    np.testing.assert_allclose(k, np.exp(-(x**2) / (2 * 2.2**2)) / np.exp(-(x**2) / (2 * 2.2**2)).sum(), rtol=1e-6)


@pytest.mark.parametrize(
    "shape,spacing",
    [((12, 10, 9), (4, 4, 4)), ((11, 8, 13), (3, 2, 5)), ((16, 14), (4, 3)), ((7, 9), (2, 2))],
    ids=["3d-iso", "3d-aniso", "2d", "2d-small"],
)
def test_head_matches_deepreg_reference(shape, spacing):
    rng = np.random.default_rng(sum(shape))
    field = rng.normal(size=(2,) + shape + (len(shape),)).astype(np.float32)
    got = ops.convert_to_numpy(ControlPointHead(list(spacing))(field))
    assert got.shape == field.shape
    for b in range(2):
        np.testing.assert_allclose(got[b], head_reference(field[b], spacing), atol=2e-5)


def test_head_keeps_a_constant_field_inside():
    # partition of unity: a constant survives wherever the anti-aliasing does not reach the zero padding
    field = np.full((1, 24, 24, 2), 1.5, np.float32)
    got = ops.convert_to_numpy(ControlPointHead(4)(field))
    np.testing.assert_allclose(got[0, 8:16, 8:16], 1.5, atol=1e-5)


def test_head_output_is_a_cubic_spline_per_cell():
    # inside one control cell the field is a cubic polynomial along each axis: its 4th differences vanish
    rng = np.random.default_rng(3)
    field = rng.normal(size=(1, 40, 8, 1)).astype(np.float32)
    got = ops.convert_to_numpy(ControlPointHead([8, 8])(field))[0, :, 3, 0].astype(np.float64)
    # DeepReg's layout: voxels 8m .. 8m + 7 share a cell
    for m in range(5):
        cell = got[8 * m : 8 * m + 8]
        np.testing.assert_allclose(np.diff(cell, 4), 0.0, atol=2e-5)
    assert np.abs(np.diff(got, 4)).max() > 1e-3  # and the cells differ: a spline, not one polynomial


@pytest.mark.parametrize("spacing", [0, -2, True, "4", [4, 4], [4, float("nan"), 4]])
def test_head_refuses_bad_spacing(spacing):
    with pytest.raises(ValueError, match="control_points must be"):
        ControlPointHead(spacing).build((1, 8, 8, 8, 3))


def test_wrapper_refuses_an_affine_backbone():
    from tfreg.registry import REGISTRY

    backbone = REGISTRY.build_backbone(
        config={"name": "global", "num_channel_initial": 2, "depth": 1},
        default_args={"image_size": (8, 8, 8), "out_channels": 3},
    )
    with pytest.raises(ValueError, match="affine field and its parameters"):
        ControlPointBackbone(backbone, 4)
