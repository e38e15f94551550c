"""tfreg.engine.progressive: LapIRN's stage schedule, and the ``ProgressiveTraining`` callback under plain Keras
``fit`` (TensorFlow): which levels' weights change in which epoch (bitwise), resuming from ``initial_epoch``, and the
callback's refusals (CPU, seconds)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfreg.engine.progressive import ProgressiveTraining, Stage, progressive_stages, stage_at
from tfreg.models.lapirn import LapIRNModel


# ---------------------------------------------------------------------------------------------- the schedule
def test_stages_of_lapirn_s_protocol():
    assert progressive_stages([1, 2], freeze_epochs=1, epochs=5) == [
        Stage(0, 1, 1, ()),
        Stage(1, 2, 2, (1,)),
        Stage(2, 3, 2, ()),
        Stage(3, 4, 3, (1, 2)),
        Stage(4, 5, 3, ()),
    ]
    # no freezing; a stage shorter than freeze_epochs is frozen throughout; an empty stage is skipped
    assert progressive_stages([2], 0, 3) == [Stage(0, 2, 1, ()), Stage(2, 3, 2, ())]
    assert progressive_stages([1, 1], 3, 4) == [Stage(0, 1, 1, ()), Stage(1, 2, 2, (1,)), Stage(2, 4, 3, (1, 2))]
    assert progressive_stages([0, 2], 1, 4) == [
        Stage(0, 1, 2, (1,)),
        Stage(1, 2, 2, ()),
        Stage(2, 3, 3, (1, 2)),
        Stage(3, 4, 3, ()),
    ]
    # a run shorter than the schedule ends in an earlier stage (--max_epochs); resuming continues it
    assert progressive_stages([2, 2], 1, 3) == [Stage(0, 2, 1, ()), Stage(2, 3, 2, (1,))]
    # open-ended (the callback): the last level runs to the end of any fit
    open_ended = progressive_stages([1, 1], 1)
    assert open_ended[-1] == Stage(3, None, 3, ())
    assert stage_at(open_ended, 100) == open_ended[-1] and stage_at(open_ended, 1) == Stage(1, 2, 2, (1,))


@pytest.mark.parametrize(
    "args, match",
    [
        (([1, -1], 0, 4), "level_epochs\\[1\\] must be an integer >= 0"),
        (([1], 1.5, 4), "freeze_epochs must be an integer >= 0"),
        ((3, 0, 4), "level_epochs must be a list"),
    ],
)
def test_schedule_errors(args, match):
    with pytest.raises(ValueError, match=match):
        progressive_stages(*args)


# ---------------------------------------------------------------------------------------------- helpers
class LevelRecorder(keras.callbacks.Callback):
    """Copies of each level's weights at the start and end of every epoch, and the network's stage."""

    def __init__(self):
        super().__init__()
        self.begin, self.end, self.stage = {}, {}, {}

    def _levels(self):
        return [
            [np.array(keras.ops.convert_to_numpy(w)) for w in level.weights] for level in self.model.backbone.levels
        ]

    def on_epoch_begin(self, epoch, logs=None):
        self.begin[epoch] = self._levels()
        self.stage[epoch] = (self.model.backbone.active_level, self.model.backbone.frozen_levels)

    def on_epoch_end(self, epoch, logs=None):
        self.end[epoch] = self._levels()

    def changed(self, epoch):
        """Per level: whether any of its weights changed during ``epoch`` (bitwise comparison)."""
        return [
            any(not np.array_equal(a, b) for a, b in zip(before, after))
            for before, after in zip(self.begin[epoch], self.end[epoch])
        ]


#: per epoch of progressive_stages([1, 2], 1, 5): which of the 3 levels may change
EXPECTED_CHANGES = {
    0: [True, False, False],  # level 1 alone
    1: [False, True, False],  # level 2, level 1 frozen
    2: [True, True, False],  # levels 1-2
    3: [False, False, True],  # level 3, levels 1-2 frozen
    4: [True, True, True],
}


def tiny_model(size=(16, 16)):
    return LapIRNModel(
        moving_image_size=size,
        fixed_image_size=size,
        config={
            "backbone": {"name": "lapirn", "num_channels": 4, "num_residual_blocks": 1},
            "loss": {
                "image": {"name": "ssd", "weight": 1.0},
                "regularization": {"name": "gradient-forward", "weight": 0.1},
            },
        },
    )


def tiny_dataset(size=(16, 16), count=4, batch=2):
    rng = np.random.default_rng(0)
    data = {
        "moving_image": rng.random((count,) + size).astype("float32"),
        "fixed_image": rng.random((count,) + size).astype("float32"),
        "indices": np.zeros((count, 2), "float32"),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(batch).repeat()


# ---------------------------------------------------------------------------------------------- plain Keras fit
@pytest.mark.slow
def test_callback_freezes_and_activates_levels_under_keras_fit():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    recorder = LevelRecorder()
    model.fit(
        tiny_dataset(),
        shuffle=False,
        steps_per_epoch=3,
        epochs=5,
        callbacks=[ProgressiveTraining([1, 2], freeze_epochs=1), recorder],
        verbose=0,
    )
    for epoch, expected in EXPECTED_CHANGES.items():
        assert recorder.changed(epoch) == expected, epoch
    assert recorder.stage == {0: (1, ()), 1: (2, (1,)), 2: (2, ()), 3: (3, (1, 2)), 4: (3, ())}
    # the optimizer was built on every level and steps them all at the end
    assert len(model.optimizer._trainable_variables) == sum(len(level.weights) for level in model.backbone.levels)


def test_callback_resumes_the_schedule_from_initial_epoch():
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    recorder = LevelRecorder()
    model.fit(
        tiny_dataset(),
        steps_per_epoch=2,
        initial_epoch=3,
        epochs=4,
        callbacks=[ProgressiveTraining([1, 2], freeze_epochs=1), recorder],
        verbose=0,
    )
    assert recorder.stage == {3: (3, (1, 2))}
    assert recorder.changed(3) == [False, False, True]


def test_callback_refuses_an_optimizer_built_on_some_levels_only():
    model = tiny_model()
    model.backbone.build((None, 16, 16, 2))
    model.backbone.set_stage(1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.optimizer.build(model.trainable_variables)  # level 1's variables only
    with pytest.raises(ValueError, match="the optimizer was built without .* of the pyramid's variables"):
        model.fit(tiny_dataset(), steps_per_epoch=1, epochs=1, callbacks=[ProgressiveTraining([1, 1])], verbose=0)


def test_callback_checks_the_number_of_levels_and_the_backend(monkeypatch):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="level_epochs has 1 entries .* num_levels = 3, so it needs 2"):
        model.fit(tiny_dataset(), steps_per_epoch=1, epochs=1, callbacks=[ProgressiveTraining([1])], verbose=0)
    callback = ProgressiveTraining([1, 1])
    callback.set_model(model)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="cannot change trainable variables inside a JAX fit"):
        callback.on_train_begin()


# ---------------------------------------------------------------------------------------------- tfreg_train
