"""tfreg.engine.checkpoint: ckpt-N path checks, DeepReg's saving rule, restore round trip, name keys,
several optimizers, the tfreg 0.1 positional fallback and partial restore."""

import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from tests.engine.fixtures.ckpt_v0_1.make_fixture import build as build_fixture_model
from tests.engine.fixtures.ckpt_v0_1.make_fixture import fixture_inputs
from tfreg.engine.checkpoint import (
    CheckpointError,
    CheckpointSaver,
    available_checkpoints,
    file_key,
    make_checkpoint,
    named_weights,
    parse_ckpt_path,
    restore_checkpoint,
    restore_parts,
    saved_weights,
)
from tfreg.registry import REGISTRY

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "ckpt_v0_1"
LEGACY_CKPT = str(FIXTURE / "save" / "ckpt-1")
VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


def tiny_model(units=3, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    outputs = keras.layers.Dense(units)(hidden)
    return keras.Model(inputs, outputs)


def data(n=8, units=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype("float32"), rng.standard_normal((n, units)).astype("float32")


def compiled(units=3, seed=0):
    model = tiny_model(units, seed)
    optimizer = keras.optimizers.Adam(learning_rate=1e-2)
    model.compile(optimizer=optimizer, loss="mse")
    return model, optimizer


class RecordingSaver(CheckpointSaver):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved = []

    def save(self, epoch_number):
        self.saved.append(epoch_number)
        return super().save(epoch_number)


def touch_ckpt(folder, n):
    for suffix in (".index", ".data-00000-of-00001"):
        (folder / f"ckpt-{n}{suffix}").write_bytes(b"")


# ---------------------------------------------------------------------------------------------- parse_ckpt_path
def test_parse_ckpt_path_returns_prefix_and_epoch(tmp_path):
    touch_ckpt(tmp_path, 12)
    prefix, epoch = parse_ckpt_path(str(tmp_path / "ckpt-12"))
    assert prefix == str(tmp_path / "ckpt-12") and epoch == 12
    touch_ckpt(tmp_path, 0)
    assert parse_ckpt_path(str(tmp_path / "ckpt-0"))[1] == 0


def test_legacy_ckpt_refused_mentioning_keras_3(tmp_path):
    legacy = tmp_path / "weights.ckpt"
    legacy.write_bytes(b"")
    with pytest.raises(CheckpointError, match="Keras 3") as exc:
        parse_ckpt_path(str(legacy))
    assert "weights.ckpt" in str(exc.value)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("name", ["model-12", "ckpt12", "ckpt-", "ckpt-1.index", "ckpt-x", "ckpt-3a"])
def test_wrong_name_refused(tmp_path, name):
    with pytest.raises(CheckpointError, match="ckpt-<epoch>"):
        parse_ckpt_path(str(tmp_path / name))


def test_missing_index_lists_available_checkpoints(tmp_path):
    for n in (10, 2, 5):
        touch_ckpt(tmp_path, n)
    (tmp_path / "ckpt-7.data-00000-of-00001").write_bytes(b"")  # no index: not a checkpoint
    with pytest.raises(CheckpointError) as exc:
        parse_ckpt_path(str(tmp_path / "ckpt-7"))
    message = str(exc.value)
    assert "ckpt-7.index" in message
    assert "['ckpt-2', 'ckpt-5', 'ckpt-10']" in message  # sorted by epoch, not alphabetically
    assert available_checkpoints(str(tmp_path)) == [str(tmp_path / f"ckpt-{n}") for n in (2, 5, 10)]


def test_missing_index_empty_or_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoints"):
        parse_ckpt_path(str(tmp_path / "ckpt-1"))
    with pytest.raises(CheckpointError, match="does not exist"):
        parse_ckpt_path(str(tmp_path / "absent" / "ckpt-1"))


# ---------------------------------------------------------------------------------------------- saving rule
@pytest.mark.parametrize(
    "epochs, period, expected",
    [
        (5, 2, [2, 4, 5]),  # every 2nd epoch plus the last
        (4, 2, [2, 4]),  # last epoch already saved: no duplicate
        (3, 1, [1, 2, 3]),
        (2, 5, [2]),  # period longer than training: only the final save
    ],
)
def test_saver_rule(tmp_path, epochs, period, expected):
    model, optimizer = compiled()
    x, y = data()
    saver = RecordingSaver(make_checkpoint(model, optimizer), str(tmp_path / "save"), period)
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[saver])
    assert saver.saved == expected
    assert available_checkpoints(str(tmp_path / "save")) == [str(tmp_path / "save" / f"ckpt-{n}") for n in expected]
    assert (tmp_path / "save" / "checkpoint").is_file()
    for n in expected:
        assert (tmp_path / "save" / f"ckpt-{n}.index").is_file()


def test_saver_numbers_resumed_epochs(tmp_path):
    model, optimizer = compiled()
    x, y = data()
    saver = RecordingSaver(make_checkpoint(model, optimizer), str(tmp_path / "save"), 2)
    model.fit(x, y, batch_size=4, epochs=5, initial_epoch=2, verbose=0, callbacks=[saver])
    assert saver.saved == [4, 5]


# ---------------------------------------------------------------------------------------------- restore
def test_restore_round_trip_weights_and_optimizer_state(tmp_path):
    x, y = data()
    model, optimizer = compiled(seed=0)
    saver = CheckpointSaver(make_checkpoint(model, optimizer), str(tmp_path / "save"), 3)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[saver])  # 6 steps
    prefix, epoch = parse_ckpt_path(str(tmp_path / "save" / "ckpt-3"))
    assert epoch == 3
    saved_weights = [np.array(w) for w in model.get_weights()]
    saved_opt = [(v.path, np.array(v)) for v in optimizer.variables]  # paths differ between instances
    assert int(optimizer.iterations.numpy()) == 6

    fresh, fresh_opt = compiled(seed=123)
    fresh_opt.build(fresh.trainable_variables)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), saved_weights))
    restore_checkpoint(make_checkpoint(fresh, fresh_opt), prefix, with_optimizer=True)
    for got, want in zip(fresh.get_weights(), saved_weights):
        np.testing.assert_array_equal(got, want)
    assert int(fresh_opt.iterations.numpy()) == 6
    restored_opt = [np.array(v) for v in fresh_opt.variables]
    assert len(restored_opt) == len(saved_opt)
    for got, (_, want) in zip(restored_opt, saved_opt):
        np.testing.assert_array_equal(got, want)
    moments = [value for path, value in saved_opt if "momentum" in path or "velocity" in path]
    assert len(moments) == 2 * len(saved_weights)  # Adam: m and v per weight
    assert all(np.abs(m).max() > 0 for m in moments)  # the moments were really trained

    # continuing training from the restored state gives the same step as the original
    model.train_on_batch(x[:4], y[:4])
    fresh.train_on_batch(x[:4], y[:4])
    for got, want in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_restore_for_predict_ignores_optimizer_state(tmp_path):
    x, y = data()
    model, optimizer = compiled(seed=0)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[CheckpointSaver(make_checkpoint(model, optimizer), str(tmp_path), 1)],
    )
    fresh = tiny_model(seed=7)
    restore_checkpoint(make_checkpoint(fresh), str(tmp_path / "ckpt-1"), with_optimizer=False)
    for got, want in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_restore_mismatching_model_raises(tmp_path):
    x, y = data()
    model, optimizer = compiled(units=3)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[CheckpointSaver(make_checkpoint(model, optimizer), str(tmp_path), 1)],
    )
    prefix = str(tmp_path / "ckpt-1")

    other, other_opt = compiled(units=2)  # differently shaped last layer
    other_opt.build(other.trainable_variables)
    with pytest.raises(CheckpointError, match="does not fit"):
        restore_checkpoint(make_checkpoint(other, other_opt), prefix, with_optimizer=True)
    with pytest.raises(CheckpointError):
        restore_checkpoint(make_checkpoint(tiny_model(units=2)), prefix, with_optimizer=False)

    # an extra layer (a variable the file does not hold)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(5, activation="relu")(inputs)
    h = keras.layers.Dense(5)(h)
    bigger = keras.Model(inputs, keras.layers.Dense(3)(h))
    with pytest.raises(CheckpointError):
        restore_checkpoint(make_checkpoint(bigger), prefix, with_optimizer=False)


def test_restore_with_optimizer_requires_optimizer_state(tmp_path):
    """Resuming training from a weights-only checkpoint is refused (not every value restored)."""
    model = tiny_model()
    manager_saver = CheckpointSaver(make_checkpoint(model), str(tmp_path), 1)
    manager_saver.save(1)
    assert os.path.isfile(tmp_path / "ckpt-1.index")
    fresh, fresh_opt = compiled(seed=3)
    fresh_opt.build(fresh.trainable_variables)
    with pytest.raises(CheckpointError):
        restore_checkpoint(make_checkpoint(fresh, fresh_opt), str(tmp_path / "ckpt-1"), with_optimizer=True)


@pytest.mark.parametrize("period", [0, -2, 1.5, True])
def test_saver_rejects_bad_period(tmp_path, period):
    with pytest.raises(ValueError, match="save_period"):
        CheckpointSaver(make_checkpoint(tiny_model()), str(tmp_path), period)
    assert not any(tmp_path.iterdir())  # no manager folder written either


# ---------------------------------------------------------------------------------------------- name keys
def fixture_config(**backbone):
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    config["train"]["backbone"].update(backbone)
    return config


def built_ddf(seed=0, **backbone):
    """The fixture's ddf/local model (8^3, unpaired), built by one call."""
    keras.utils.set_random_seed(seed)
    model = build_fixture_model(fixture_config(**backbone))
    model(fixture_inputs(), training=False)
    return model


def file_values(prefix, startswith="model/"):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith(startswith)}


def randomize(model, seed):
    """Independent random values in every weight (so a restore is visible whatever the initializers)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.standard_normal(tuple(w.shape)).astype("float32") * 0.1 + (1.0 if "variance" in w.name else 0))


def test_keys_are_attribute_paths_independent_of_keras_auto_names():
    first = built_ddf()
    for _ in range(7):  # more layers created before the second model: its auto-generated names shift
        keras.layers.Conv3D(2, 3)
        keras.layers.BatchNormalization()
    second = built_ddf()
    assert [w.path for w in first.weights] != [w.path for w in second.weights]
    keys = list(named_weights(first))
    assert keys == list(named_weights(second))
    assert len(keys) == len(set(keys)) == len(first.weights) == 34
    # the local backbone: encoders[0] = [conv block, residual block], out_convs[i] = Conv3D
    assert "backbone/encoders/0/0/conv/kernel" in keys
    assert "backbone/encoders/0/1/block2/norm/moving_variance" in keys
    assert "backbone/out_convs/1/bias" in keys
    assert not any("conv3d" in key or "batch_normalization" in key for key in keys)
    # every key names the variable it holds
    for key, variable in named_weights(second).items():
        assert key.split("/")[-1] == variable.name


def test_file_keys_are_the_name_keys(tmp_path):
    """TensorFlow files each model weight under model/<key> (not under the optimizer's positions)."""
    model = built_ddf()
    randomize(model, 1)
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    prefix = CheckpointSaver(make_checkpoint(model, optimizer), str(tmp_path), 1).save(1)
    stored = file_values(prefix)
    keys = named_weights(model)
    assert sorted(stored) == sorted(f"model/{key}{VALUE}" for key in keys)
    for key, variable in keys.items():
        np.testing.assert_array_equal(stored[f"model/{key}{VALUE}"], variable.numpy())
    optimizer_keys = file_values(prefix, "optimizer/")
    assert f"optimizer/_iterations{VALUE}" in optimizer_keys
    assert not any("_trainable_variables" in k for k in optimizer_keys)


class Holder(keras.layers.Layer):
    """Two own weights named ``w`` and a sub-layer under the attribute ``w`` too."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = keras.layers.Dense(2)
        self.dense_list = [keras.layers.Dense(2), {"b.S": keras.layers.Dense(3), "a": keras.layers.Dense(2)}]

    def build(self, shape):
        self.first = self.add_weight(shape=(2,), name="w")
        self.second = self.add_weight(shape=(3,), name="w", trainable=False)

    def call(self, x):
        return self.w(x)


class Shared(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.z_second = keras.layers.Dense(2)
        self.a_first = self.z_second  # the same layer under two attributes
        self.holder = Holder()

    def call(self, x):
        h = self.holder(x)
        for layer in self.holder.dense_list[:1] + list(self.holder.dense_list[1].values()):
            layer(x)
        return self.a_first(h)


def test_repeated_names_shared_layers_and_containers():
    model = Shared()
    model(np.zeros((1, 2), "float32"))
    keys = named_weights(model)
    assert list(keys) == [
        "a_first/kernel",  # attributes in sorted order; the shared layer under its first path only
        "a_first/bias",
        "holder/w_1",  # own weights named w: the sub-layer attribute w comes first, then suffixes
        "holder/w_2",
        "holder/dense_list/0/kernel",
        "holder/dense_list/0/bias",
        "holder/dense_list/1/a/kernel",  # dict items by sorted key
        "holder/dense_list/1/a/bias",
        "holder/dense_list/1/b.S/kernel",  # a '.' in a key: escaped by TensorFlow in the file (below)
        "holder/dense_list/1/b.S/bias",
        "holder/w/kernel",
        "holder/w/bias",
    ]
    assert keys["holder/w_1"] is model.holder.first and keys["holder/w_2"] is model.holder.second
    assert keys["a_first/kernel"] is model.z_second.kernel
    assert len(keys) == len(model.weights)


def test_keys_read_back_from_the_file(tmp_path):
    """TensorFlow writes '.' as '..' in a key segment; saved_weights and file_key undo and redo that."""
    model = Shared()
    model(np.zeros((1, 2), "float32"))
    prefix = CheckpointSaver(make_checkpoint(model), str(tmp_path), 1).save(1)
    stored = file_values(prefix)
    assert f"model/holder/dense_list/1/b..S/kernel{VALUE}" in stored
    assert saved_weights(prefix) == {key: tuple(v.shape) for key, v in named_weights(model).items()}
    assert sorted(file_key(key) for key in named_weights(model)) == sorted(stored)


class Hidden(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.visible = keras.layers.Dense(2)
        self._layers.append(keras.layers.Dense(3, name="hidden_dense"))  # tracked by Keras, held by no attribute

    def call(self, x):
        return self._layers[-1](self.visible(x))


def test_unreached_weight_is_an_error_naming_it():
    model = Hidden()
    model(np.zeros((1, 2), "float32"))
    assert len(model.weights) == 4
    with pytest.raises(CheckpointError, match="hidden_dense/kernel.*not reachable"):
        named_weights(model)
    with pytest.raises(CheckpointError, match="hidden_dense"):
        make_checkpoint(model)


def test_make_checkpoint_argument_errors():
    model = tiny_model()
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="not both"):
        make_checkpoint(model, adam, optimizers={"a": adam})
    for bad in ("model", "save_counter", "save", "1st", "a/b", ""):
        with pytest.raises(ValueError, match="cannot name a checkpoint child"):
            make_checkpoint(model, optimizers={bad: adam})
    with pytest.raises(ValueError, match=r"optimizers\['a'\] must be a keras.optimizers.Optimizer"):
        make_checkpoint(model, optimizers={"a": "adam"})
    with pytest.raises(ValueError, match="no weights yet"):
        make_checkpoint(keras.Sequential([keras.layers.Dense(2)]))


# ---------------------------------------------------------------------------------------------- round trip
def test_new_format_round_trip_weights_and_output(tmp_path):
    model = built_ddf(seed=0)
    optimizer = keras.optimizers.Adam(1e-2)
    model.compile(optimizer=optimizer)
    model.train_on_batch(fixture_inputs())
    randomize(model, 2)  # non-zero output convolution (ddf starts at zero)
    prefix = CheckpointSaver(make_checkpoint(model, optimizer), str(tmp_path), 1).save(1)
    expected = model(fixture_inputs(seed=5), training=False)

    fresh = built_ddf(seed=9)
    fresh_opt = keras.optimizers.Adam(1e-2)
    fresh_opt.build(fresh.trainable_variables)
    restore_checkpoint(make_checkpoint(fresh, fresh_opt), prefix, with_optimizer=True)
    saved, restored = named_weights(model), named_weights(fresh)
    assert list(saved) == list(restored)
    for key in saved:
        np.testing.assert_array_equal(restored[key].numpy(), saved[key].numpy(), err_msg=key)
    assert int(fresh_opt.iterations.numpy()) == 1
    for got, want in zip(fresh_opt.variables, optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    got = fresh(fixture_inputs(seed=5), training=False)
    assert float(np.abs(np.asarray(expected["ddf"])).max()) > 0
    for name in ("ddf", "pred_fixed_image"):
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(expected[name]))


def test_name_keyed_mismatch_names_key_and_both_shapes(tmp_path):
    model = built_ddf()
    prefix = CheckpointSaver(make_checkpoint(model), str(tmp_path), 1).save(1)
    wider = built_ddf(num_channel_initial=3)
    with pytest.raises(CheckpointError) as exc:
        restore_checkpoint(make_checkpoint(wider), prefix, with_optimizer=False)
    message = str(exc.value)
    assert "does not fit" in message
    # keys in walk order (attributes sorted: bottom before encoders), at most five listed
    assert (
        "backbone/bottom/0/conv/kernel: shape (3, 3, 3, 2, 4) in the file and (3, 3, 3, 3, 6) in the model" in message
    )
    assert "backbone/bottom/0/norm/gamma: shape (4,) in the file and (6,) in the model" in message
    assert "more" in message
    deeper = built_ddf(extract_levels=[0, 1, 2])  # extra weights in the model
    with pytest.raises(
        CheckpointError,
        match=r"backbone/decoders_list/1/conv/kernel: shape \(3, 3, 3, 2, 2\) in the model, missing in the file",
    ):
        restore_checkpoint(make_checkpoint(deeper), prefix, with_optimizer=False)
    shallower = built_ddf(extract_levels=[0])  # fewer: the file's extra keys are named
    with pytest.raises(
        CheckpointError,
        match=r"backbone/decoders_list/0/conv/kernel: shape \(3, 3, 3, 2, 2\) in the file, not in the model",
    ):
        restore_checkpoint(make_checkpoint(shallower), prefix, with_optimizer=False)


# ---------------------------------------------------------------------------------------------- several optimizers
class TwoNets(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.registration = keras.layers.Dense(3)
        self.segmentation = [keras.layers.Dense(4), keras.layers.BatchNormalization()]

    def call(self, x, training=False):
        return self.registration(x), self.segmentation[1](self.segmentation[0](x), training=training)


def two_nets(seed):
    keras.utils.set_random_seed(seed)
    model = TwoNets()
    model(np.zeros((2, 5), "float32"))
    optimizers = {"registration": keras.optimizers.Adam(1e-2), "segmentation": keras.optimizers.SGD(0.1, momentum=0.9)}
    optimizers["registration"].build(model.registration.trainable_variables)
    optimizers["segmentation"].build([w for layer in model.segmentation for w in layer.trainable_variables])
    return model, optimizers


def test_several_optimizers_saved_by_name_and_all_restored(tmp_path):
    model, optimizers = two_nets(0)
    rng = np.random.default_rng(0)
    for name, steps in (("registration", 3), ("segmentation", 2)):  # alternating trainers step them apart
        variables = optimizers[name]._trainable_variables
        for _ in range(steps):
            grads = [rng.standard_normal(tuple(v.shape)).astype("float32") for v in variables]
            optimizers[name].apply(grads, variables)
    prefix = CheckpointSaver(make_checkpoint(model, optimizers=optimizers), str(tmp_path), 1).save(4)
    stored = file_values(prefix, "")
    assert int(stored[f"registration/_iterations{VALUE}"]) == 3
    assert int(stored[f"segmentation/_iterations{VALUE}"]) == 2

    fresh, fresh_opts = two_nets(7)
    restore_checkpoint(make_checkpoint(fresh, optimizers=fresh_opts), prefix, with_optimizer=True)
    for w_got, w_want in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(w_got.numpy(), w_want.numpy())
    for name in optimizers:
        assert len(fresh_opts[name].variables) == len(optimizers[name].variables)
        for got, want in zip(fresh_opts[name].variables, optimizers[name].variables):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    momentum = [v for v in fresh_opts["segmentation"].variables if "momentum" in v.path]
    assert momentum and all(np.abs(v.numpy()).max() > 0 for v in momentum)

    # a trainer with other optimizers cannot resume from it; predicting (weights only) still works
    single, single_opt = two_nets(3)
    with pytest.raises(CheckpointError, match=r"\['registration', 'segmentation'\].*missing: \['optimizer'\]"):
        restore_checkpoint(make_checkpoint(single, single_opt["registration"]), prefix, with_optimizer=True)
    restore_checkpoint(make_checkpoint(single), prefix, with_optimizer=False)
    np.testing.assert_array_equal(single.registration.kernel.numpy(), model.registration.kernel.numpy())


# ---------------------------------------------------------------------------------------------- legacy tfreg 0.1
def test_legacy_positional_checkpoint_restores_with_optimizer():
    reader = tf.train.load_checkpoint(LEGACY_CKPT)
    model = built_ddf(seed=5)
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    restore_checkpoint(make_checkpoint(model, optimizer), LEGACY_CKPT, with_optimizer=True)
    assert len(model.weights) == 34
    for i, weight in enumerate(model.weights):
        np.testing.assert_array_equal(weight.numpy(), reader.get_tensor(f"model/w{i:04d}{VALUE}"), err_msg=weight.path)
    assert int(optimizer.iterations.numpy()) == 1
    # Adam's variables: [iterations, learning rate, (m, v) per trainable weight] stored as _variables/<i>
    moments = optimizer.variables[2:]
    assert len(moments) == 2 * len(model.trainable_variables)
    for i, variable in enumerate(moments, start=2):
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(f"optimizer/_variables/{i}{VALUE}"))
    # after one step only the output convolutions have gradients (ddf's zero-initialized output blocks the rest)
    assert any(np.abs(v.numpy()).max() > 0 for v in moments)
    out = model(fixture_inputs(), training=False)
    assert np.isfinite(np.asarray(out["ddf"])).all()


def test_legacy_checkpoint_for_predict_and_its_refusals(tmp_path):
    reader = tf.train.load_checkpoint(LEGACY_CKPT)
    model = built_ddf(seed=6)
    restore_checkpoint(make_checkpoint(model), LEGACY_CKPT, with_optimizer=False)
    np.testing.assert_array_equal(model.weights[3].numpy(), reader.get_tensor(f"model/w0003{VALUE}"))
    np.testing.assert_array_equal(model.weights[33].numpy(), reader.get_tensor(f"model/w0033{VALUE}"))

    with pytest.raises(
        CheckpointError, match=r"legacy weight w0000 .* \(7, 7, 7, 2, 2\) in the file and \(7, 7, 7, 2, 3\)"
    ):
        restore_checkpoint(make_checkpoint(built_ddf(num_channel_initial=3)), LEGACY_CKPT, with_optimizer=False)
    with pytest.raises(CheckpointError, match="holds the state of the optimizer.*'optimizer'"):
        adam, sgd = keras.optimizers.Adam(), keras.optimizers.SGD()
        adam.build(model.trainable_variables)
        sgd.build(model.trainable_variables)
        restore_checkpoint(make_checkpoint(model, optimizers={"a": adam, "b": sgd}), LEGACY_CKPT, with_optimizer=True)
    with pytest.raises(CheckpointError, match="keyed by position"):
        restore_parts(model, LEGACY_CKPT, ["backbone"])

    # restored and saved again: the name-keyed format, whose parts can then be restored
    prefix = CheckpointSaver(make_checkpoint(model), str(tmp_path), 1).save(1)
    assert f"model/backbone/encoders/0/0/conv/kernel{VALUE}" in file_values(prefix)
    np.testing.assert_array_equal(
        file_values(prefix)[f"model/backbone/encoders/0/0/conv/kernel{VALUE}"], reader.get_tensor(f"model/w0000{VALUE}")
    )


# ---------------------------------------------------------------------------------------------- partial restore
UNET = {"name": "unet", "image_size": (8, 8, 8), "out_channels": 3, "num_channel_initial": 2, "depth": 2}


class Composite(keras.Model):
    """A segmenter (a tfreg UNet) and a registration backbone (a tfreg LocalNet) as attributes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.segmenter = REGISTRY.build_backbone(config=dict(UNET))
        self.backbone = REGISTRY.build_backbone(
            config={
                "name": "local",
                "image_size": (8, 8, 8),
                "out_channels": 3,
                "num_channel_initial": 2,
                "extract_levels": [0, 1],
            }
        )

    def call(self, x):
        return self.segmenter(x), self.backbone(x)


def built_composite(seed):
    keras.utils.set_random_seed(seed)
    model = Composite()
    model(np.zeros((1, 8, 8, 8, 2), "float32"))
    return model


def saved_standalone(tmp_path, seed=3):
    """A ddf model whose backbone is the segmenter's UNet, random weights, saved as ckpt-1."""
    keras.utils.set_random_seed(seed)
    model = REGISTRY.build_model(
        config=dict(
            name="ddf",
            moving_image_size=(8, 8, 8),
            fixed_image_size=(8, 8, 8),
            index_size=3,
            config={
                "backbone": {k: v for k, v in UNET.items() if k not in ("image_size", "out_channels")},
                "loss": {"image": {"name": "ssd", "weight": 1.0}},
            },
        )
    )
    model(fixture_inputs(), training=False)
    randomize(model, seed)
    return model, CheckpointSaver(make_checkpoint(model), str(tmp_path), 1).save(1)


def test_restore_parts_segmenter_from_a_standalone_backbone(tmp_path):
    standalone, prefix = saved_standalone(tmp_path)
    composite = built_composite(11)
    other_before = {k: v.numpy().copy() for k, v in named_weights(composite.backbone).items()}
    summary = restore_parts(composite, prefix, {"segmenter": "backbone"})
    assert summary == {"segmenter": len(composite.segmenter.weights)}

    stored = file_values(prefix)
    for sub, variable in named_weights(composite.segmenter).items():
        np.testing.assert_array_equal(variable.numpy(), stored[f"model/backbone/{sub}{VALUE}"], err_msg=sub)
    for sub, variable in named_weights(composite.backbone).items():
        np.testing.assert_array_equal(variable.numpy(), other_before[sub], err_msg=sub)
    x = np.random.default_rng(0).random((1, 8, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(composite.segmenter(x, training=False)),
        np.asarray(standalone.backbone(x, training=False)),
        rtol=1e-6,
        atol=1e-6,
    )


def test_restore_parts_whole_saved_model_and_same_name_list(tmp_path):
    keras.utils.set_random_seed(4)
    segmenter = REGISTRY.build_backbone(config=dict(UNET))
    segmenter(np.zeros((1, 8, 8, 8, 2), "float32"))
    randomize(segmenter, 4)
    prefix = CheckpointSaver(make_checkpoint(segmenter), str(tmp_path / "seg"), 1).save(1)
    composite = built_composite(12)
    assert restore_parts(composite, prefix, {"segmenter": "."}) == {"segmenter": len(segmenter.weights)}
    for got, want in zip(composite.segmenter.weights, segmenter.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())

    # a list: the same attribute in both models (composite -> composite)
    source = built_composite(13)
    randomize(source, 13)
    prefix = CheckpointSaver(make_checkpoint(source), str(tmp_path / "comp"), 1).save(1)
    target = built_composite(14)
    segmenter_before = [w.numpy().copy() for w in target.segmenter.weights]
    assert restore_parts(target, prefix, ["backbone"]) == {"backbone": len(source.backbone.weights)}
    for got, want in zip(target.backbone.weights, source.backbone.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(target.segmenter.weights, segmenter_before):
        np.testing.assert_array_equal(got.numpy(), want)


def test_restore_parts_errors_change_nothing(tmp_path):
    _, prefix = saved_standalone(tmp_path)
    composite = built_composite(15)
    before = [w.numpy().copy() for w in composite.weights]
    with pytest.raises(
        CheckpointError, match=r"'segmenter' is not a part of the model saved in .*its parts: \['backbone'\]"
    ):
        restore_parts(composite, prefix, ["segmenter"])
    with pytest.raises(
        CheckpointError, match=r"'decoder' is not a part of the Composite; its parts: \['backbone', 'segmenter'\]"
    ):
        restore_parts(composite, prefix, {"decoder": "backbone"})
    # the composite's LocalNet is not the saved UNet: keys and shapes differ, named
    with pytest.raises(CheckpointError, match="does not fit the model's 'backbone'.*in the (file|model)"):
        restore_parts(composite, prefix, ["backbone"])
    with pytest.raises(CheckpointError, match="overlap"):
        restore_parts(composite, prefix, {"segmenter": "backbone", "segmenter/encoders": "backbone/encoders"})
    with pytest.raises(CheckpointError, match="parts is empty"):
        restore_parts(composite, prefix, [])
    with pytest.raises(CheckpointError, match="parts must be a list"):
        restore_parts(composite, prefix, 3)
    with pytest.raises(CheckpointError, match="ckpt-<epoch>"):
        restore_parts(composite, str(tmp_path / "model-1"), ["segmenter"])
    for got, want in zip(composite.weights, before):
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_killed_save_is_cleaned_when_the_next_run_starts_saving(trained, tmp_path):
    """What a kill during TensorFlow's save leaves (shard folder, state-file scratch, data without index)
    is removed when the next run starts saving there; complete checkpoints are untouched."""
    import hashlib
    import shutil

    from tfreg.engine.checkpoint import CheckpointSaver, clean_checkpoint_leftovers

    save = tmp_path / "save"
    shutil.copytree(os.path.join(trained["exp"], "save"), save)
    complete = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in save.iterdir()}
    data = next(p for p in save.iterdir() if p.name.startswith("ckpt-2.data-"))
    (save / "ckpt-3_temp").mkdir()
    shutil.copy(data, save / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001")
    shutil.copy(data, save / data.name.replace("ckpt-2", "ckpt-3"))  # moved into place, index never written
    (save / "checkpoint.tmp0123456789abcdef").write_text("model_checkpoint_path: ")
    (save / "notes_temp").mkdir()  # not TensorFlow's pattern: the user's
    model = trained["model"]
    CheckpointSaver(make_checkpoint(model), str(save), save_period=1)
    left = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in save.iterdir() if p.is_file()}
    assert left == complete
    assert sorted(p.name for p in save.iterdir() if p.is_dir()) == ["notes_temp"]
    assert clean_checkpoint_leftovers(str(save)) == []


@pytest.mark.parametrize("damage", ["truncated data", "truncated index", "missing data", "empty index"])
def test_damaged_checkpoint_files_give_one_clear_error(tmp_path, damage):
    """Truncated or missing checkpoint files used to end in raw TensorFlow tracebacks (IndexError, OpError)."""
    from tfreg.engine.checkpoint import CheckpointSaver

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(64)])
    prefix = CheckpointSaver(make_checkpoint(model), str(tmp_path), 1).save(1)
    data, index = pathlib.Path(prefix + ".data-00000-of-00001"), pathlib.Path(prefix + ".index")
    if damage == "truncated data":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "truncated index":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    elif damage == "missing data":
        data.unlink()
    else:
        index.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint .*ckpt-1 (is incomplete|cannot be read).*files: ckpt-1"):
        prefix_checked, _ = parse_ckpt_path(prefix)
        restore_checkpoint(make_checkpoint(model), prefix_checked, with_optimizer=False)


# ---------------------------------------------------------------------------------------------- exported models
class _Exporting(keras.Model):
    """A model with a functional sub-network it declares for export (the hook of RegistrationModel)."""

    def __init__(self, exported=None):
        super().__init__(name="exporting")
        self.part = tiny_model(units=2, seed=3)
        self.head = keras.layers.Dense(1)
        self.exported = exported

    def call(self, x):
        return self.head(self.part(x))

    def exported_models(self):
        return {"part": self.part} if self.exported is None else self.exported


def test_every_checkpoint_save_writes_the_exported_models(tmp_path):
    from tfreg.file_safety import SCRATCH_PREFIX

    x, _ = data()
    model = _Exporting()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    save = tmp_path / "save"
    model.fit(
        x,
        np.zeros((8, 1), "float32"),
        epochs=2,
        verbose=0,
        callbacks=[CheckpointSaver(make_checkpoint(model), str(save), 1)],
    )
    assert sorted(os.listdir(save)) == sorted(
        [
            "checkpoint",
            "ckpt-1.index",
            "ckpt-1.data-00000-of-00001",
            "ckpt-2.index",
            "ckpt-2.data-00000-of-00001",
            "part.keras",
        ]
    )
    assert not [n for n in os.listdir(save) if n.startswith(SCRATCH_PREFIX)]
    # the file holds the trained sub-network (the state at the last save): same outputs as the model's part
    loaded = keras.saving.load_model(str(save / "part.keras"), compile=False)
    np.testing.assert_allclose(loaded(x).numpy(), model.part(x).numpy(), rtol=1e-6, atol=1e-6)
    # tfreg's own loops drive the saver by hand (set_model, on_epoch_end): the file follows each save
    model.part.layers[-1].bias.assign(np.full((2,), 5.0, "float32"))
    saver = CheckpointSaver(make_checkpoint(model), str(save), 1)
    saver.set_model(model)
    saver.on_epoch_end(2)
    assert os.path.isfile(save / "ckpt-3.index")
    reloaded = keras.saving.load_model(str(save / "part.keras"), compile=False)
    np.testing.assert_array_equal(reloaded.layers[-1].bias.numpy(), [5.0, 5.0])


def test_export_models_refuses_bad_names_and_values(tmp_path):
    from tfreg.engine.checkpoint import export_models

    x, _ = data()
    for exported, match in (
        ({"../up": tiny_model()}, "must be a file name"),
        ({"part": keras.layers.Dense(2)}, "must be a keras.Model"),
    ):
        model = _Exporting(exported)
        model(x)
        with pytest.raises(ValueError, match=match):
            export_models(model, str(tmp_path))
    assert export_models(tiny_model(), str(tmp_path)) == []  # a model without the hook exports nothing
    assert not os.listdir(tmp_path)
