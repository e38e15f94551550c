"""tfreg.engine.checkpoint: ckpt-N path checks, DeepReg's saving rule, restore round trip."""

import os

import keras
import numpy as np
import pytest

from tfreg.engine.checkpoint import (
    CheckpointError,
    CheckpointSaver,
    available_checkpoints,
    make_checkpoint,
    parse_ckpt_path,
    restore_checkpoint,
)


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
