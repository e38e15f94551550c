"""Backbones: output shapes in 2-D/3-D, zero-initialised output, identity theta, depth errors."""

import numpy as np
import pytest

from tfreg.models.backbones import Backbone, GlobalNet, LocalNet, UNet
from tfreg.registry import REGISTRY


@pytest.mark.parametrize("size", [(8, 12, 10), (16, 12)])
@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (LocalNet, dict(extract_levels=[0, 1, 2])),
        (UNet, dict(depth=2, extract_levels=[0, 1])),
        (UNet, dict(depth=2, concat_skip=True, pooling=False)),
    ],
)
def test_output_shape_and_zero_init(cls, kwargs, size):
    net = cls(image_size=size, num_channel_initial=2, out_kernel_initializer="zeros", out_channels=len(size), **kwargs)
    x = np.random.default_rng(0).random((2, *size, 2)).astype("float32")
    y = np.asarray(net(x))
    assert y.shape == (2, *size, len(size))
    np.testing.assert_array_equal(y, 0.0)


def test_global_identity_theta_2d_3d():
    for size in [(8, 8, 8), (16, 16)]:
        n = len(size)
        net = GlobalNet(image_size=size, num_channel_initial=2, depth=2, out_kernel_initializer="zeros")
        ddf, theta = net(np.random.default_rng(1).random((2, *size, 2)).astype("float32"))
        assert tuple(ddf.shape) == (2, *size, n) and tuple(theta.shape) == (2, n + 1, n)
        np.testing.assert_allclose(np.asarray(theta), np.tile(np.eye(n + 1, n), (2, 1, 1)), atol=1e-6)
        np.testing.assert_allclose(np.asarray(ddf), 0.0, atol=1e-5)


def test_registered_names():
    import tfreg.models  # noqa: F401

    assert REGISTRY.get("backbone_class", "local") is LocalNet
    assert REGISTRY.get("backbone_class", "global") is GlobalNet
    assert REGISTRY.get("backbone_class", "unet") is UNet
    assert issubclass(LocalNet, Backbone)


@pytest.mark.parametrize("cls", [LocalNet, UNet])
@pytest.mark.parametrize("size, depth", [((8, 8, 8), 4), ((8, 3, 5), 3), ((5, 2), 3)])
def test_axes_shorter_than_strides_to_the_depth_build_as_in_deepreg(cls, size, depth, caplog):
    """DeepReg's config/test/ddf.yaml + paired_nifti.yaml train a depth-4 LocalNet on 8^3 fixed images: each
    "same" pooling gives ceil(n / 2) voxels, so an axis stays at one voxel once it gets there, and the decoder
    brings every level back to its size."""
    net = cls(image_size=size, num_channel_initial=2, out_channels=len(size), extract_levels=[0, depth])
    expected = [tuple(size)]
    for _ in range(depth):
        expected.append(tuple(int(np.ceil(n / 2)) for n in expected[-1]))
    assert net.sizes == expected and min(expected[-1]) == 1
    y = np.asarray(net(np.random.default_rng(3).random((2, *size, 1)).astype("float32")))
    assert y.shape == (2, *size, len(size)) and np.all(np.isfinite(y))
    assert "one voxel thick" in caplog.text and str(tuple(size)) in caplog.text


def test_global_depth_too_large_names_image_size_and_depth():
    with pytest.raises(ValueError, match=r"image_size \(8, 8, 4\).*depth 3.*>= .*8"):
        GlobalNet(image_size=(8, 8, 4), num_channel_initial=2, depth=3)


@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(num_channel_initial=0, extract_levels=[0]), "num_channel_initial"),
        (dict(num_channel_initial=2, extract_levels=[]), "extract_levels"),
        (dict(num_channel_initial=2, extract_levels=[0, 1], padding="valid"), "padding"),
        (dict(num_channel_initial=2, extract_levels=[0, 1], encode_kernel_sizes=[3, 3, 3]), "encode_kernel_sizes"),
    ],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        LocalNet(image_size=(8, 8, 8), **kwargs)


def test_deepreg_10_options_add_residual_blocks_and_keep_the_other_keys():
    """decode_residual / bottom_residual add DeepReg 1.0's residual blocks under their own keys; the other
    weights keep their keys (tfreg checkpoints still load); the DeepReg forward pass is checked in
    tests/engine/test_deepreg_checkpoint.py."""
    from tfreg.engine.checkpoint import named_weights

    x = np.random.default_rng(2).random((1, 8, 12, 10, 2)).astype("float32")
    kwargs = dict(image_size=(8, 12, 10), num_channel_initial=2, extract_levels=[0, 1, 2])
    plain, residual = LocalNet(**kwargs), LocalNet(decode_residual=True, **kwargs)
    plain(x), residual(x)
    plain_keys, residual_keys = set(named_weights(plain)), set(named_weights(residual))
    extra = residual_keys - plain_keys
    assert plain_keys < residual_keys
    # one residual block (2 convolutions + 2 x 4 normalisation weights) per decoded level
    assert len(extra) == 2 * 10 and all(k.startswith("decode_residuals/") for k in extra)
    assert residual.get_config()["decode_residual"] is True and plain.get_config()["decode_residual"] is False

    size = (8, 8, 8)
    g = GlobalNet(image_size=size, num_channel_initial=2, depth=2, encode_kernel_sizes=3, bottom_residual=True)
    g(np.zeros((1, *size, 2), "float32"))
    weights = named_weights(g)
    assert tuple(weights["encoders/0/conv/kernel"].shape) == (3, 3, 3, 2, 2)
    assert tuple(weights["bottom_residuals/0/block2/conv/kernel"].shape) == (3, 3, 3, 8, 8)
    assert GlobalNet(image_size=size, num_channel_initial=2, depth=2).encode_kernel_sizes == [7, 3, 3]
    with pytest.raises(ValueError, match="bottom_residual"):
        GlobalNet(image_size=size, num_channel_initial=2, depth=2, bottom_residual="yes")
    with pytest.raises(ValueError, match="decode_residual"):
        UNet(image_size=size, num_channel_initial=2, depth=1, decode_residual=1)
