"""The model's inference time per sample, as ``tfreg_predict`` writes it (``inference_time_s`` in metrics.csv).

macJNet (Zhou et al. 2023) reports the time per registered pair. tfreg measures the forward pass only: the
wall-clock seconds from calling the compiled model on a batch until its outputs are NumPy arrays in host
memory (the copy from the accelerator is what forces the computation to finish, so it is included), divided
by the number of samples in the batch. Reading the data, warping at full resolution, decoding masks,
writing files and scoring are left out. The first call with a new input signature (batch size, shapes,
dtypes) traces and compiles ``tf.function``'s graph; it is run once untimed before the timed call, so
tracing never counts.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Mapping, Set, Tuple

import numpy as np


class TimedForward:
    """Call a model's forward function on batches and time each call, after one warm-up per input signature.

    Args:
        forward: ``batch -> {name: tensor}`` (the ``tf.function`` wrapping ``model(inputs, training=False)``);
            each output needs ``.numpy()`` (a tensor) or is converted with ``np.asarray``.
        clock: seconds as a float (``time.perf_counter`` by default; a test may pass its own).

    Calling it returns ``(outputs as NumPy arrays, seconds of the timed call)``.
    """

    def __init__(self, forward: Callable, clock: Callable[[], float] = time.perf_counter):
        self.forward = forward
        self.clock = clock
        self.warmed: Set[Tuple] = set()

    @staticmethod
    def signature(batch: Mapping[str, object]) -> Tuple:
        """What ``tf.function`` traces on: the keys, and each input's shape and dtype."""
        return tuple(
            sorted(
                (key, tuple(np.shape(value)), str(getattr(value, "dtype", type(value)))) for key, value in batch.items()
            )
        )

    def _run(self, batch) -> Dict[str, np.ndarray]:
        return {key: _to_numpy(value) for key, value in self.forward(batch).items()}

    def __call__(self, batch) -> Tuple[Dict[str, np.ndarray], float]:
        key = self.signature(batch)
        if key not in self.warmed:
            self._run(batch)  # traces and compiles for this signature; not timed
            self.warmed.add(key)
        start = self.clock()
        outputs = self._run(batch)
        return outputs, self.clock() - start


def _to_numpy(value) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


__all__ = ["TimedForward"]
