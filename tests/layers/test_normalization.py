"""tfreg.layers.normalization: the one BatchNormalization factory, its construction-time ``synchronized``
setting, the walk that finds every BatchNormalization of a model, InstanceNormalization, the
normalization-by-name factory (with group normalization against NumPy) and the checks of ``norm``."""

import keras
import numpy as np
import pytest

from tfreg.layers.normalization import (
    InstanceNormalization,
    batch_norm_layers,
    batch_norm_synchronized,
    batch_normalization,
    check_norm,
    conv_bias,
    default_norm_groups,
    normalization_layer,
    synchronized_batch_norm,
)
from tfreg.models.backbones import GlobalNet, LocalNet, UNet

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="synchronized BN is TensorFlow-only")


@pytest.mark.backend_agnostic
def test_default_is_not_synchronized():
    assert batch_norm_synchronized() is False
    layer = batch_normalization(momentum=0.9, name="bn")
    assert isinstance(layer, keras.layers.BatchNormalization)
    assert layer.synchronized is False and layer.momentum == 0.9 and layer.name == "bn"
    with synchronized_batch_norm(False):
        assert batch_normalization().synchronized is False


@TF_ONLY
def test_context_sets_and_restores_the_setting():
    with synchronized_batch_norm():
        assert batch_normalization().synchronized is True
        # An explicit argument wins over the setting.
        assert batch_normalization(synchronized=False).synchronized is False
        with synchronized_batch_norm(False):
            assert batch_normalization().synchronized is False
        assert batch_normalization().synchronized is True  # the inner block restored the outer setting
    assert batch_norm_synchronized() is False
    # Restored on an exception too.
    with pytest.raises(RuntimeError, match="inside"):
        with synchronized_batch_norm(True):
            raise RuntimeError("inside")
    assert batch_norm_synchronized() is False


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("enabled", [1, "yes", None])
def test_enabled_must_be_a_bool(enabled):
    with pytest.raises(ValueError, match=r"synchronized_batch_norm: enabled must be a bool, got"):
        with synchronized_batch_norm(enabled):
            pass
    assert batch_norm_synchronized() is False


@pytest.mark.backend_agnostic
def test_synchronized_needs_tensorflow_backend():
    if keras.backend.backend() == "tensorflow":
        pytest.skip("checks the refusal on another backend")
    with pytest.raises(ValueError, match="needs Keras' TensorFlow backend"):
        with synchronized_batch_norm(True):
            pass


@TF_ONLY
def test_synchronized_layer_normalises_with_batch_statistics():
    # One replica: synchronized statistics are the batch's own; compare with the formula in NumPy.
    x = np.random.default_rng(3).normal(2.0, 3.0, size=(6, 5, 4)).astype(np.float32)
    with synchronized_batch_norm(True):
        layer = batch_normalization(epsilon=1e-3, center=False, scale=False)
    got = keras.ops.convert_to_numpy(layer(x, training=True))
    mean = x.mean(axis=(0, 1))
    var = x.var(axis=(0, 1))
    np.testing.assert_allclose(got, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)


class Holder(keras.layers.Layer):
    """Sub-layers held directly, in a list and in a dict, one of them twice."""

    def __init__(self):
        super().__init__()
        self.shared = keras.layers.BatchNormalization(name="shared")
        self.blocks = [keras.layers.Dense(2), keras.layers.BatchNormalization(name="in_list"), self.shared]
        self.table = {"a": keras.layers.BatchNormalization(name="in_dict")}


@pytest.mark.backend_agnostic
def test_batch_norm_layers_finds_nested_layers_once():
    inner = keras.Sequential([keras.layers.Dense(3), keras.layers.BatchNormalization(name="in_seq")], name="inner")
    inputs = keras.Input((4,))
    x = inner(inputs)
    x = keras.layers.BatchNormalization(name="top")(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    assert sorted(layer.name for layer in batch_norm_layers(model)) == ["in_seq", "top"]
    holder = Holder()
    assert sorted(layer.name for layer in batch_norm_layers(holder)) == ["in_dict", "in_list", "shared"]
    assert batch_norm_layers(keras.layers.Dense(2)) == []


@pytest.mark.parametrize("synchronized", [False, pytest.param(True, marks=TF_ONLY)])
def test_backbones_built_in_the_context(synchronized):
    # Every conv/deconv block of a backbone has one BatchNormalization, made by batch_normalization().
    with synchronized_batch_norm(synchronized):
        local = LocalNet(
            image_size=(8, 8, 8), out_channels=3, num_channel_initial=2, extract_levels=(0, 1),
            out_kernel_initializer="zeros", out_activation=None,
        )  # fmt: skip
        unet = UNet(
            image_size=(8, 8, 8), out_channels=3, num_channel_initial=2, depth=1,
            out_kernel_initializer="zeros", out_activation=None,
        )  # fmt: skip
    for net in (local, unet):
        net(np.zeros((1, 8, 8, 8, 2), np.float32))
        norms = batch_norm_layers(net)
        # The walk finds them all: as many as the model has moving means (an independent count).
        assert len(norms) == sum(w.path.endswith("moving_mean") for w in net.weights) > 0, type(net).__name__
        assert all(bn.synchronized is synchronized for bn in norms)
    # Outside the context, new layers are per-replica again.
    assert batch_normalization().synchronized is False


def instance_norm_reference(x, gamma, beta, epsilon):
    """NumPy instance normalization: per sample and channel over the spatial axes, biased variance, in float64."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            values = x[b, ..., c]
            out[b, ..., c] = gamma[c] * (values - values.mean()) / np.sqrt(values.var() + epsilon) + beta[c]
    return out


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)])
def test_instance_normalization_matches_numpy(spatial):
    rng = np.random.default_rng(len(spatial))
    # per-sample and per-channel offsets and scales, so that batch statistics would give other values
    x = rng.normal(size=(2, *spatial, 3)) * [1.0, 4.0, 0.5] + rng.normal(size=(2,) + (1,) * len(spatial) + (3,)) * 5
    x = x.astype(np.float32)
    layer = InstanceNormalization(epsilon=1e-3)
    layer.build(x.shape)
    gamma, beta = np.array([0.5, 2.0, -1.0], np.float32), np.array([0.1, -0.3, 2.0], np.float32)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    expected = instance_norm_reference(x, gamma, beta, 1e-3)
    for training in (True, False):  # no moving statistics: training and inference agree
        got = keras.ops.convert_to_numpy(layer(x, training=training))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.backend_agnostic
def test_instance_normalization_starts_as_plain_standardisation_and_round_trips():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(1, 4, 4, 2)).astype(np.float32)
    layer = InstanceNormalization()
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, instance_norm_reference(x, [1, 1], [0, 0], 1e-5), rtol=1e-4, atol=1e-4)
    assert len(layer.trainable_weights) == 2 and not layer.non_trainable_weights
    config = layer.get_config()
    assert config["epsilon"] == 1e-5 and config["center"] is True and config["scale"] is True
    assert InstanceNormalization.from_config(config).get_config() == config
    bare = InstanceNormalization(center=False, scale=False)
    bare.build(x.shape)
    assert not bare.weights


@pytest.mark.backend_agnostic
def test_instance_normalization_over_one_voxel_outputs_its_offset_and_says_so(caplog):
    # x - mean is 0 over a single voxel: the output is beta for any input (so no gradient reaches the input)
    layer = InstanceNormalization(name="deepest")
    with caplog.at_level("WARNING", logger="tfreg.layers.normalization"):
        layer.build((2, 1, 1, 1, 3))
    assert "deepest: instance normalization over a single voxel" in caplog.text and "(2, 1, 1, 1, 3)" in caplog.text
    layer.beta.assign(np.array([0.5, -1.0, 2.0], np.float32))
    for x in (np.full((2, 1, 1, 1, 3), 7.0, np.float32), np.random.default_rng(0).normal(size=(2, 1, 1, 1, 3))):
        got = keras.ops.convert_to_numpy(layer(x.astype(np.float32)))
        np.testing.assert_array_equal(got, np.broadcast_to([0.5, -1.0, 2.0], (2, 1, 1, 1, 3)))
    caplog.clear()
    with caplog.at_level("WARNING", logger="tfreg.layers.normalization"):
        InstanceNormalization().build((2, 1, 2, 1, 3))  # two voxels: a real normalization, no warning
        InstanceNormalization().build((2, 3, 3))
    assert "single voxel" not in caplog.text


@pytest.mark.backend_agnostic
def test_instance_normalization_bad_arguments():
    with pytest.raises(ValueError, match="epsilon must be a number > 0"):
        InstanceNormalization(epsilon=0.0)
    with pytest.raises(ValueError, match="InstanceNormalization expects"):
        InstanceNormalization().build((4, 3))


@pytest.mark.backend_agnostic
def test_normalization_layer_by_name():
    assert isinstance(normalization_layer("batch"), keras.layers.BatchNormalization)
    assert isinstance(normalization_layer("instance"), InstanceNormalization)
    group = normalization_layer("group", channels=12)
    assert isinstance(group, keras.layers.GroupNormalization) and group.groups == 6 and group.epsilon == 1e-5
    assert normalization_layer("group", channels=12, groups=4).groups == 4
    assert normalization_layer("none") is None
    with pytest.raises(ValueError, match=r"norm='layer' is not supported: norm must be one of \['batch', 'instance'"):
        normalization_layer("layer")
    with pytest.raises(ValueError, match=r"normalization_layer\('group'\) needs the input's channel count"):
        normalization_layer("group")
    with pytest.raises(ValueError, match=r"norm_groups=5 must divide .* \[12\] is not divisible by 5"):
        normalization_layer("group", channels=12, groups=5)
    with pytest.raises(ValueError, match="norm_groups=2 applies only to norm 'group', got norm 'batch'"):
        normalization_layer("batch", groups=2)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "channels, groups", [(1, 1), (2, 2), (4, 4), (5, 5), (7, 7), (8, 8), (12, 6), (16, 8), (20, 5), (64, 8), (11, 1)]
)
def test_default_norm_groups_is_the_largest_divisor_up_to_8(channels, groups):
    assert default_norm_groups(channels) == groups


@pytest.mark.backend_agnostic
def test_check_norm():
    assert check_norm("batch") == ("batch", None)
    assert check_norm("group", None, [3, 7]) == ("group", None)  # the default count divides any channels
    assert check_norm("group", 4, [4, 8, 16]) == ("group", 4)
    with pytest.raises(ValueError, match=r"\[6, 10\] are not divisible by 4 \(the layers have \[4, 6, 8, 10\]"):
        check_norm("group", 4, [8, 6, 4, 10, 6])
    with pytest.raises(ValueError, match="norm_groups must be an integer >= 1, got True"):
        check_norm("group", True)
    assert [conv_bias(kind) for kind in ("batch", "instance", "group", "none")] == [False, False, False, True]


def group_norm_reference(x, groups, gamma, beta, epsilon):
    """NumPy group normalization: per sample and group of consecutive channels, over space and the group's
    channels, biased variance, in float64; then the per-channel gamma and beta."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    size = x.shape[-1] // groups
    for b in range(x.shape[0]):
        for g in range(groups):
            values = x[b, ..., g * size : (g + 1) * size]
            out[b, ..., g * size : (g + 1) * size] = (values - values.mean()) / np.sqrt(values.var() + epsilon)
    return out * gamma + beta


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial, channels, groups", [((5, 6), 6, 3), ((3, 4, 5), 8, 2), ((3, 4, 5), 4, None)])
def test_group_normalization_matches_numpy(spatial, channels, groups):
    rng = np.random.default_rng(channels)
    shape = (2, *spatial, channels)
    per_channel = (2,) + (1,) * len(spatial) + (channels,)
    x = (rng.normal(size=shape) * rng.uniform(0.5, 4, per_channel) + rng.normal(size=per_channel) * 5).astype("float32")
    layer = normalization_layer("group", channels=channels, groups=groups)
    layer.build(x.shape)
    gamma, beta = rng.uniform(0.5, 2, channels).astype("float32"), rng.normal(size=channels).astype("float32")
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    expected = group_norm_reference(x, groups or default_norm_groups(channels), gamma, beta, 1e-5)
    for training in (True, False):
        got = keras.ops.convert_to_numpy(layer(x, training=training))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if groups is None:  # 4 channels: 4 groups of one channel, i.e. instance normalization
        np.testing.assert_allclose(expected, instance_norm_reference(x, gamma, beta, 1e-5), atol=1e-9)


@pytest.mark.parametrize("synchronized", [False, pytest.param(True, marks=TF_ONLY)])
def test_norm_choice_and_the_synchronized_setting(synchronized):
    # batch: every block's BatchNormalization follows the setting; the other choices make none to synchronize
    kwargs = dict(image_size=(8, 8, 8), out_channels=3, num_channel_initial=2)
    with synchronized_batch_norm(synchronized):
        nets = {
            norm: [
                LocalNet(extract_levels=(0, 1), norm=norm, **kwargs),
                UNet(depth=1, norm=norm, **kwargs),
                GlobalNet(depth=1, norm=norm, **kwargs),
            ]
            for norm in ("batch", "instance", "group", "none")
        }
    for norm, built in nets.items():
        for net in built:
            net(np.zeros((1, 8, 8, 8, 2), np.float32))
            norms = batch_norm_layers(net)
            assert len(norms) == sum(w.path.endswith("moving_mean") for w in net.weights)
            if norm == "batch":
                assert norms and all(bn.synchronized is synchronized for bn in norms)
            else:
                assert norms == []
