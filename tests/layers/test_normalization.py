"""tfreg.layers.normalization: the one BatchNormalization factory, its construction-time ``synchronized``
setting, the walk that finds every BatchNormalization of a model, InstanceNormalization and the
normalization-by-name factory."""

import keras
import numpy as np
import pytest

from tfreg.layers.normalization import (
    InstanceNormalization,
    batch_norm_layers,
    batch_norm_synchronized,
    batch_normalization,
    normalization_layer,
    synchronized_batch_norm,
)
from tfreg.models.backbones import LocalNet, UNet

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
def test_instance_normalization_bad_arguments():
    with pytest.raises(ValueError, match="epsilon must be a number > 0"):
        InstanceNormalization(epsilon=0.0)
    with pytest.raises(ValueError, match="InstanceNormalization expects"):
        InstanceNormalization().build((4, 3))


@pytest.mark.backend_agnostic
def test_normalization_layer_by_name():
    assert isinstance(normalization_layer("batch"), keras.layers.BatchNormalization)
    assert isinstance(normalization_layer("instance"), InstanceNormalization)
    assert normalization_layer("none") is None
    with pytest.raises(ValueError, match=r"norm='group' is not supported: norm must be one of \['batch'"):
        normalization_layer("group")
