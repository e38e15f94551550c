"""tfreg.engine.predict_timing.TimedForward: one untimed warm-up per input signature, then timed calls."""

import numpy as np
import pytest

from tfreg.engine.predict_timing import TimedForward


class FakeClock:
    """A clock that the fake forward advances: tracing costs 10 s, a call 0.25 s per sample."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make_forward(clock, traced, calls):
    def forward(batch):
        n = len(batch["indices"])
        key = tuple(np.shape(batch["image"]))
        calls.append(key)
        if key not in traced:  # tf.function traces the first call of each signature
            traced.add(key)
            clock.now += 10.0
        clock.now += 0.25 * n
        return {"ddf": np.asarray(batch["image"]) * 2.0}

    return forward


def batch(n, size=4):
    return {"image": np.ones((n, size, size), np.float32), "indices": np.zeros((n, 2), np.float32)}


def test_tracing_is_excluded_and_each_signature_warmed_once():
    clock, traced, calls = FakeClock(), set(), []
    timed = TimedForward(make_forward(clock, traced, calls), clock=clock)
    outputs, seconds = timed(batch(2))
    assert seconds == pytest.approx(0.5)  # the 10 s of tracing went to the warm-up call
    np.testing.assert_array_equal(outputs["ddf"], np.full((2, 4, 4), 2.0))
    assert isinstance(outputs["ddf"], np.ndarray)
    assert timed(batch(2))[1] == pytest.approx(0.5)
    assert len(calls) == 3  # warm-up + 2 timed calls: no second warm-up for the same signature
    # a smaller last batch is a new signature: warmed up again, then timed without its tracing
    assert timed(batch(1))[1] == pytest.approx(0.25)
    assert len(calls) == 5
    # a new image shape too
    assert timed(batch(2, size=6))[1] == pytest.approx(0.5)
    assert len(calls) == 7


def test_signature_distinguishes_shape_dtype_and_keys():
    a = TimedForward.signature({"x": np.zeros((2, 3), np.float32)})
    assert a == TimedForward.signature({"x": np.ones((2, 3), np.float32)})
    assert a != TimedForward.signature({"x": np.zeros((2, 3), np.float64)})
    assert a != TimedForward.signature({"x": np.zeros((1, 3), np.float32)})
    assert a != TimedForward.signature({"x": np.zeros((2, 3), np.float32), "y": np.zeros(1)})


def test_tensor_outputs_are_converted_with_numpy():
    import tensorflow as tf

    timed = TimedForward(lambda b: {"out": tf.constant(b["image"]) + 1.0})
    outputs, seconds = timed(batch(1))
    assert isinstance(outputs["out"], np.ndarray) and seconds >= 0
    np.testing.assert_array_equal(outputs["out"], np.full((1, 4, 4), 2.0, np.float32))
