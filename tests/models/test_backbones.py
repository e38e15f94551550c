"""Backbones: output shapes in 2-D/3-D, zero-initialised output, identity theta, depth errors, the normalization
choice (``norm``, ``norm_groups``) of the DeepReg backbones."""

import keras
import numpy as np
import pytest

from tfreg.engine.checkpoint import named_weights
from tfreg.layers.normalization import InstanceNormalization
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


# ---------------------------------------------------------------------- normalization choice (norm, norm_groups)
NORM_TYPES = {
    "batch": keras.layers.BatchNormalization,
    "instance": InstanceNormalization,
    "group": keras.layers.GroupNormalization,
}
NORM_LAYER_TYPES = tuple(NORM_TYPES.values())


def small_net(cls, **choice):
    """A tiny 3-D backbone of ``cls`` (2 initial channels: levels of 2, 4 and 8 channels)."""
    levels = dict(depth=2) if cls is GlobalNet else dict(extract_levels=[0, 1, 2])
    return cls(image_size=(8, 8, 8), num_channel_initial=2, out_channels=3, **levels, **choice)


def norm_layers(net):
    """Every normalization layer of ``net`` (BatchNormalization, InstanceNormalization, GroupNormalization), each
    once, found through the attributes (and lists) that hold the sub-layers."""
    found, seen = [], set()

    def visit(obj):
        if isinstance(obj, (list, tuple)):
            for item in obj:
                visit(item)
        elif isinstance(obj, keras.layers.Layer) and id(obj) not in seen:
            seen.add(id(obj))
            if isinstance(obj, NORM_LAYER_TYPES):
                found.append(obj)
            for value in vars(obj).values():
                visit(value)

    visit(net)
    return found


def first_output(y):
    return np.asarray(y[1] if isinstance(y, (tuple, list)) else y)  # GlobalNet: theta


@pytest.mark.parametrize("cls", [LocalNet, UNet, GlobalNet])
def test_default_norm_is_deepregs_batch_norm_with_the_same_keys(cls):
    x = np.random.default_rng(0).random((2, 8, 8, 8, 2)).astype("float32")
    default, explicit = small_net(cls), small_net(cls, norm="batch")
    default(x), explicit(x)
    assert default.get_config()["norm"] == "batch" and default.get_config()["norm_groups"] is None
    assert list(named_weights(default)) == list(named_weights(explicit))
    norms = norm_layers(default)
    assert norms and all(type(n) is keras.layers.BatchNormalization for n in norms)
    # Keras' defaults, DeepReg's
    assert all(n.momentum == 0.99 and n.epsilon == 1e-3 for n in norms)
    keys = list(named_weights(default))
    assert sum(k.endswith("/norm/moving_mean") for k in keys) == len(norms)
    assert not any(k.endswith("conv/bias") for k in keys)  # DeepReg's blocks: convolutions without bias


def expected_keys(batch_keys, norm):
    """The checkpoint keys of another norm, derived from the default's: instance and group keep gamma and beta
    and have no moving statistics; none has no normalization but a bias in each block's convolution."""
    keys = set()
    for key in batch_keys:
        if key.endswith(("/norm/moving_mean", "/norm/moving_variance")):
            continue
        if "/norm/" in key and norm == "none":
            if key.endswith("/norm/gamma"):
                block = key[: -len("norm/gamma")]
                conv = "deconv" if f"{block}deconv/kernel" in batch_keys else "conv"
                keys.add(f"{block}{conv}/bias")
            continue
        keys.add(key)
    return keys


@pytest.mark.parametrize("cls", [LocalNet, UNet, GlobalNet])
@pytest.mark.parametrize("norm", ["instance", "group", "none"])
def test_norm_choice_reaches_every_block(cls, norm):
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 8, 2)).astype("float32")
    batch, net = small_net(cls), small_net(cls, norm=norm)
    batch(x), net(x)
    batch_keys = list(named_weights(batch))
    assert set(named_weights(net)) == expected_keys(batch_keys, norm)
    layers = norm_layers(net)
    if norm == "none":
        assert layers == []
    else:
        assert len(layers) == len(norm_layers(batch)) and all(type(n) is NORM_TYPES[norm] for n in layers)
    if norm == "group":  # the default count: the largest divisor <= 8 of 2, 4 or 8 channels, i.e. all of them
        assert all(n.groups == min(8, n.gamma.shape[0]) for n in layers)
    # no moving statistics: the same output in training and in inference
    np.testing.assert_allclose(first_output(net(x, training=True)), first_output(net(x, training=False)), atol=1e-6)
    config = net.get_config()
    assert config["norm"] == norm and config["norm_groups"] is None
    assert type(net).from_config(config).get_config() == config


@pytest.mark.parametrize("cls", [LocalNet, UNet, GlobalNet])
def test_norm_groups_round_trip_and_reach_every_group_norm(cls):
    net = small_net(cls, norm="group", norm_groups=2)
    net(np.zeros((1, 8, 8, 8, 2), "float32"))
    assert {n.groups for n in norm_layers(net)} == {2}
    config = net.get_config()
    assert (config["norm"], config["norm_groups"]) == ("group", 2)
    again = type(net).from_config(config)
    assert again.get_config() == config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(norm="layer"), r"norm='layer' is not supported: norm must be one of \['batch', 'instance', 'group'"),
        (dict(norm="group", norm_groups=4), r"norm_groups=4 must divide .* \[2\] is not divisible by 4 .*\[2, 4, 8\]"),
        (dict(norm="group", norm_groups=-1), "norm_groups must be an integer >= 1, got -1"),
        (dict(norm="instance", norm_groups=2), "norm_groups=2 applies only to norm 'group', got norm 'instance'"),
    ],
)
@pytest.mark.parametrize("cls", [LocalNet, UNet, GlobalNet])
def test_bad_norm_arguments_refused(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_net(cls, **kwargs)


def test_norm_groups_must_divide_the_decoder_channels_too():
    # encoder levels of 6 and 12 channels (divisible by 3), decoded with concatenated skips into 9 channels
    match = r"norm_groups=2 must divide .* \[9\] is not divisible by 2 \(the layers have \[6, 9, 12\]"
    with pytest.raises(ValueError, match=match):
        UNet(
            image_size=(8, 8), out_channels=2, depth=1, concat_skip=True, encode_num_channels=[6, 12],
            decode_num_channels=[9, 12], norm="group", norm_groups=2,
        )  # fmt: skip
    net = UNet(
        image_size=(8, 8), out_channels=2, depth=1, concat_skip=True, encode_num_channels=[6, 12],
        decode_num_channels=[9, 12], norm="group", norm_groups=3,
    )  # fmt: skip
    assert tuple(net(np.zeros((1, 8, 8, 2), "float32")).shape) == (1, 8, 8, 2)
