"""tfreg.models.backbones.dfsa_unet: the fusion against a NumPy reference (eqs. 5 and 6), the branch grids,
the fused-scale ablation, parameter counts by hand, gradients and the refusals; 2-D and 3-D."""

import numpy as np
import pytest

from tests.layers.test_fusion import np_resize, sigmoid
from tests.models.test_unet_segmenter import expected_parameters
from tfreg.models.backbones import DFSAUNet
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic  # also run under JAX (tests/backends); the gradient check is TF's

RNG = np.random.default_rng(11)


def randomize_heads(backbone):
    """Non-zero branch heads, so every branch field is non-trivial (they start at zero in DDF models)."""
    for head in backbone.heads:
        head.kernel.assign(RNG.normal(scale=0.3, size=head.kernel.shape).astype(np.float32))
        head.bias.assign(RNG.normal(scale=0.3, size=head.bias.shape).astype(np.float32))


def np_dfsa_pointwise(layer, coarse, fine):
    """DFSA with a 1^n weight branch (``filters: []``, weights from the coarse field), in NumPy float64."""
    up = np.stack(
        [
            r * np_resize(coarse[..., c : c + 1].astype(np.float64), fine.shape[1:-1])[..., 0]
            for c, r in enumerate(np.array(fine.shape[1:-1]) / np.array(coarse.shape[1:-1]))
        ],
        -1,
    )
    out = np.empty_like(up)
    for c in range(up.shape[-1]):
        conv = layer.branches[c][0]
        k, b = float(np.asarray(conv.kernel).ravel()[0]), float(np.asarray(conv.bias)[0])
        out[..., c] = sigmoid(k * up[..., c] + b) * up[..., c] + fine[..., c]
    return out


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("fuse", ["a", "c"])
def test_fusion_matches_numpy_reference(ndim, fuse):
    size = (16,) * ndim if ndim == 2 else (8, 8, 16)
    backbone = DFSAUNet(
        image_size=size, out_channels=ndim, num_branches=3, channels=[4, 4, 8], fusion={"filters": []}, fuse=fuse
    )
    x = RNG.random((2,) + size + (2,)).astype(np.float32)
    backbone(x)
    randomize_heads(backbone)
    branch, fused = backbone.fields(x)
    branch = [np.asarray(f, np.float64) for f in branch]
    # branch k lives on the grid image_size / 2^(k-1)
    for k, field in enumerate(branch):
        assert field.shape == (2,) + tuple(s // 2**k for s in size) + (ndim,)
    expected = [None, None, branch[2]]
    for k in (1, 0):
        coarse = expected[k + 1] if fuse == "a" else branch[k + 1]
        expected[k] = np_dfsa_pointwise(backbone.fusions[k], coarse, branch[k])
    for k in range(3):
        np.testing.assert_allclose(np.asarray(fused[k]), expected[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(backbone(x)), expected[0], rtol=1e-4, atol=1e-5)


def test_one_fused_branch_is_the_top_field_and_zero_init_is_identity():
    x = RNG.random((1, 16, 16, 2)).astype(np.float32)
    zero = DFSAUNet(image_size=(16, 16), out_channels=2, out_kernel_initializer="zeros")
    np.testing.assert_array_equal(np.asarray(zero(x)), 0.0)
    top = DFSAUNet(image_size=(16, 16), out_channels=2, channels=[4, 8, 8, 8], fused_branches=1)
    top(x)
    randomize_heads(top)
    assert len(top.heads) == 1 and not top.fusions
    features = np.asarray(top.trunk(x), np.float64)
    kernel, bias = np.asarray(top.heads[0].kernel, np.float64), np.asarray(top.heads[0].bias, np.float64)
    padded = np.pad(features, ((0, 0), (1, 1), (1, 1), (0, 0)))
    reference = bias + sum(
        padded[:, i : i + 16, j : j + 16, :] @ kernel[i, j] for i in range(3) for j in range(3)
    )  # a 3x3 "same" convolution written out
    np.testing.assert_allclose(np.asarray(top(x)), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("fused", [1, 4])
def test_parameter_count_by_hand(ndim, fused):
    channels = [16, 32, 64, 128]
    backbone = DFSAUNet(image_size=(16,) * ndim, out_channels=ndim, fused_branches=fused)
    backbone(np.zeros((1,) + (16,) * ndim + (2,), np.float32))
    heads = sum(3**ndim * channels[k] * ndim + ndim for k in range(fused))
    # per DFSA block and field component: k^n x 1 -> 16, k^n x 16 -> 16, 1 -> 1 (sigmoid), all with biases
    dfsa = (fused - 1) * ndim * ((3**ndim * 16 + 16) + (3**ndim * 16 * 16 + 16) + (16 + 1))
    assert backbone.count_params() == expected_parameters(ndim, 2, channels) + heads + dfsa
    if (ndim, fused) == (2, 4):  # the figure the module docstring quotes (trainable: batch-norm statistics out)
        assert sum(int(np.prod(v.shape)) for v in backbone.trainable_variables) == 501_886


def test_gradients_reach_every_branch_and_block():
    import keras

    backbone = DFSAUNet(image_size=(16, 16), out_channels=2, channels=[4, 4, 8, 8], fusion={"weight_source": "both"})
    x = RNG.random((2, 16, 16, 2)).astype(np.float32)
    backbone(x)
    randomize_heads(backbone)
    if keras.backend.backend() != "tensorflow":
        pytest.skip("GradientTape check")
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(backbone(x, training=True) - 0.3))
    variables = [v for layer in backbone.heads + backbone.fusions for v in layer.trainable_variables]
    grads = tape.gradient(loss, variables)
    assert all(g is not None and np.abs(np.asarray(g)).sum() > 0 for g in grads)


def test_registered_config_round_trip_and_2d_3d_shapes():
    backbone = REGISTRY.build_backbone(
        {"name": "dfsa_unet", "num_branches": 2, "fused_branches": 2, "fuse": "c", "fusion": {"filters": [4]}},
        {"image_size": (8, 8, 4), "out_channels": 3},
    )
    out = backbone(RNG.random((1, 8, 8, 4, 2)).astype(np.float32))
    assert out.shape == (1, 8, 8, 4, 3)
    clone = DFSAUNet.from_config(backbone.get_config())
    assert (clone.num_branches, clone.fused_branches, clone.fuse, clone.fusion) == (2, 2, "c", {"filters": [4]})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": (60, 64)}, r"multiple of 2\^\(num_branches - 1\) = 8"),
        ({"image_size": (16, 16), "num_branches": 2, "fused_branches": 3}, "fused_branches must be in 1..num_branches"),
        ({"image_size": (16, 16), "fused_branches": 0}, "fused_branches"),
        ({"image_size": (16, 16), "out_channels": 1}, "out_channels must be 2"),
        ({"image_size": (16, 16), "out_activation": "tanh"}, "out_activation must be None"),
        ({"image_size": (16, 16), "channels": [8, 16]}, "channels must have num_branches = 4"),
        ({"image_size": (16, 16), "fusion": {"filter": [8]}}, r"fusion has unknown key\(s\) \['filter'\]"),
        ({"image_size": (16, 16), "fuse": "b"}, "fuse"),
        ({"image_size": (16, 16), "fusion": {"weight_source": "x"}}, "weight_source"),
    ],
)
def test_refusals(kwargs, match):
    kwargs = {"out_channels": len(kwargs["image_size"]), **kwargs}
    with pytest.raises(ValueError, match=match):
        DFSAUNet(**kwargs)
