"""tfreg.layers.normalization: the one BatchNormalization factory, its construction-time ``synchronized``
setting, and the walk that finds every BatchNormalization of a model."""

import keras
import numpy as np
import pytest

from tfreg.layers.normalization import (
    batch_norm_layers,
    batch_norm_synchronized,
    batch_normalization,
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
