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


def test_depth_too_large_names_image_size_and_depth():
    with pytest.raises(ValueError, match=r"image_size \(8, 8, 4\).*depth 3.*>= .*8"):
        LocalNet(image_size=(8, 8, 4), num_channel_initial=2, extract_levels=[0, 3])


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
