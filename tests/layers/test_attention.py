"""Segmentation-guided attention layers: exact outputs on hand-made masks, gradients, registration."""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.layers.attention import (
    ConcatAttention,
    ContourAttention,
    MaskingAttention,
    MaskOnlyAttention,
    RoiAttention,
    landmark_cubes,
)
from tfreg.registry import REGISTRY

RNG = np.random.default_rng(2)


def np_laplacian_cross(m):
    """5/7-point Laplacian with edge replication, written out with np.pad."""
    ndim = m.ndim
    p = np.pad(m, 1, mode="edge")
    centre = tuple([slice(1, -1)] * ndim)
    out = -2.0 * ndim * m
    for a in range(ndim):
        for shift in (0, 2):
            idx = [slice(1, -1)] * ndim
            idx[a] = slice(shift, shift + m.shape[a])
            out = out + p[tuple(idx)]
    assert p[centre].shape == m.shape
    return out


@pytest.mark.backend_agnostic
def test_contour_hand_made_2d():
    # 5x5 mask with a 3x3 block in the middle; image of ones (2 channels).
    mask = np.zeros((1, 5, 5), np.float32)
    mask[0, 1:4, 1:4] = 1
    image = np.ones((1, 5, 5, 2), np.float32)
    out = np.asarray(ContourAttention()([image, mask]))
    # Inside the block: corners see 2 outside neighbours (|Lap| = 2), edge centres 1, the centre 0.
    expected_edges = np.array(
        [[0, 0, 0, 0, 0], [0, 2, 1, 2, 0], [0, 1, 0, 1, 0], [0, 2, 1, 2, 0], [0, 0, 0, 0, 0]], np.float32
    )
    np.testing.assert_array_equal(out[0, ..., 0], expected_edges + 1)
    np.testing.assert_array_equal(out[0, ..., 1], expected_edges + 1)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", [(6, 7), (5, 6, 7)])
def test_contour_multilabel_against_numpy(spatial):
    ndim = len(spatial)
    labels = RNG.integers(0, 3, size=spatial)
    mask = np.stack([(labels == 1), (labels == 2)], -1).astype(np.float32)[None]
    image = RNG.normal(size=(1,) + spatial + (1,)).astype(np.float32)
    edges = sum(np.abs(np_laplacian_cross(mask[0, ..., k].astype(np.float64))) for k in range(2))
    union = np.minimum(mask[0].sum(-1), 1)
    ref = edges * union + image[0, ..., 0]
    np.testing.assert_allclose(np.asarray(ContourAttention()([image, mask]))[0, ..., 0], ref, rtol=1e-6, atol=1e-6)
    # full stencil: 3^n box sum minus 3^n centre, with edge replication
    box = mask[0, ..., 0].astype(np.float64)
    p = np.pad(box, 1, mode="edge")
    s = sum(p[tuple(slice(o[a], o[a] + spatial[a]) for a in range(ndim))] for o in np.ndindex(*(3,) * ndim))
    ref_full = np.abs(s - 3**ndim * box) * box + image[0, ..., 0]
    out = np.asarray(ContourAttention(stencil="full")([image, mask[..., :1]]))[0, ..., 0]
    np.testing.assert_allclose(out, ref_full, rtol=1e-6, atol=1e-5)


@pytest.mark.backend_agnostic
def test_masking_binary_thresholds_the_union_at_half():
    rng = np.random.default_rng(5)
    image = rng.random((2, 6, 7, 1)).astype(np.float32)
    mask = rng.random((2, 6, 7, 2)).astype(np.float32)
    union = np.minimum(mask.sum(axis=-1, keepdims=True), 1.0)  # the module's union of the labels
    expected = image * (union >= 0.5)
    np.testing.assert_array_equal(np.asarray(MaskingAttention(binary=True)([image, mask])), expected)
    np.testing.assert_array_equal(
        np.asarray(MaskingAttention(binary=True, invert=True)([image, mask])),
        image * (union < 0.5),
    )
    assert MaskingAttention.from_config(MaskingAttention(binary=True).get_config()).binary
    with pytest.raises(ValueError, match="binary"):
        MaskingAttention(binary="yes")


def test_masking_and_invert():
    image = RNG.normal(size=(2, 4, 5, 3)).astype(np.float32)
    mask = (RNG.uniform(size=(2, 4, 5)) > 0.5).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(MaskingAttention()([image, mask])), image * mask[..., None])
    np.testing.assert_array_equal(
        np.asarray(MaskingAttention(invert=True)([image, mask])), image * (1 - mask[..., None])
    )
    # two labels: union (OR for binary labels)
    two = np.stack([mask, 1 - mask], -1)
    np.testing.assert_array_equal(np.asarray(MaskingAttention()([image, two])), image)


@pytest.mark.backend_agnostic
def test_mask_only_and_concat():
    image = RNG.normal(size=(1, 4, 4, 4, 2)).astype(np.float32)
    mask = RNG.uniform(size=(1, 4, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(MaskOnlyAttention()([image, mask])), mask)
    out = np.asarray(ConcatAttention()([image, mask]))
    np.testing.assert_array_equal(out, np.concatenate([image, mask], -1))
    assert ConcatAttention().compute_output_shape([(None, 4, 4, 4, 2), (None, 4, 4, 4, 3)]) == (None, 4, 4, 4, 5)
    assert MaskOnlyAttention().compute_output_shape([(None, 4, 4, 4, 2), (None, 4, 4, 4)]) == (None, 4, 4, 4, 1)


@pytest.mark.backend_agnostic
def test_landmark_cubes_and_roi():
    shape = (12, 11, 10)
    landmarks = np.array([[[5.2, 4.8, 5.0], [0.0, 0.0, 9.4], [np.nan, np.nan, np.nan], [30.0, 1.0, 1.0]]], np.float32)
    cubes = np.asarray(landmark_cubes(landmarks, shape, size=3))[0, ..., 0]
    ref = np.zeros(shape, np.float32)
    ref[4:7, 4:7, 4:7] = 1  # around (5, 5, 5)
    ref[0:2, 0:2, 8:10] = 1  # around (0, 0, 9), cut at the edges; NaN and out-of-volume rows ignored
    np.testing.assert_array_equal(cubes, ref)
    cubes9 = np.asarray(landmark_cubes(landmarks[:, :1], shape, size=9))[0, ..., 0]
    ref9 = np.zeros(shape, np.float32)
    ref9[1:10, 1:10, 1:10] = 1
    np.testing.assert_array_equal(cubes9, ref9)
    image = RNG.normal(size=(1,) + shape + (1,)).astype(np.float32)
    out = np.asarray(RoiAttention(input_type="landmarks", size=3)([image, landmarks]))
    np.testing.assert_allclose(out, image * ref[None, ..., None])
    seg = RNG.uniform(size=(1,) + shape).astype(np.float32)
    np.testing.assert_allclose(np.asarray(RoiAttention()([image, seg])), image * seg[..., None], rtol=1e-6)
    # 2-D, per-axis sizes
    cubes2 = np.asarray(landmark_cubes(np.array([[[3.0, 3.0]]], np.float32), (7, 7), size=[1, 3]))[0, ..., 0]
    ref2 = np.zeros((7, 7), np.float32)
    ref2[3, 2:5] = 1
    np.testing.assert_array_equal(cubes2, ref2)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "layer", [ContourAttention(), MaskingAttention(), MaskingAttention(invert=True), RoiAttention(), ConcatAttention()]
)
def test_gradients_reach_image_and_mask(layer):
    image = RNG.normal(size=(1, 6, 6, 1)).astype(np.float32)
    mask = RNG.uniform(0.2, 0.8, size=(1, 6, 6, 1)).astype(np.float32)
    weights = RNG.normal(size=(1, 6, 6, 2 if isinstance(layer, ConcatAttention) else 1)).astype(np.float32)
    _, (g_img, g_mask) = value_and_grads(lambda i, m: layer([i, m]) * weights, image, mask)
    assert np.abs(g_img).sum() > 0 and np.abs(g_mask).sum() > 0
    assert np.all(np.isfinite(g_img)) and np.all(np.isfinite(g_mask))


def test_registered_and_validation():
    for name, cls in [
        ("contour", ContourAttention),
        ("masking", MaskingAttention),
        ("roi", RoiAttention),
        ("mask_only", MaskOnlyAttention),
        ("concat", ConcatAttention),
    ]:
        assert REGISTRY.get("attention_class", name) is cls
    layer = REGISTRY.build_attention({"name": "masking", "invert": True})
    assert layer.invert and MaskingAttention.from_config(layer.get_config()).invert
    for cls, kwargs, word in [
        (ContourAttention, {"stencil": "star"}, "stencil"),
        (ContourAttention, {"boundary": "wrap"}, "boundary"),
        (MaskingAttention, {"invert": 1}, "invert"),
        (RoiAttention, {"input_type": "points"}, "input_type"),
        (RoiAttention, {"size": 4}, "size"),
    ]:
        with pytest.raises(ValueError, match=word):
            cls(**kwargs)
    image = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="mask"):
        MaskingAttention()([image, np.zeros((1, 4, 5), np.float32)])
    with pytest.raises(ValueError, match="pair"):
        MaskingAttention()(image)
