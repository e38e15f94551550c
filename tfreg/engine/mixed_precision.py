"""``train.mixed_precision``: build the model under Keras' ``mixed_float16`` policy.

Layers built inside :func:`mixed_precision_policy` compute in float16 and keep float32 weights; Keras'
``compile`` then wraps the optimizer in a ``LossScaleOptimizer`` (dynamic loss scaling), which only the
``fit`` trainer uses, so the other trainers refuse the setting. tfreg's models keep the parts that need
float32 in float32 whatever the policy: the registration heads of the transformer backbones (so fields,
warping and the losses are float32), the softmax of the window attention, and the losses themselves.
The global policy is restored on leaving the block; the layers keep theirs.
"""

import contextlib
from typing import Iterator

import keras

#: the policy ``train.mixed_precision: true`` selects
MIXED_POLICY = "mixed_float16"


@contextlib.contextmanager
def mixed_precision_policy(enabled: bool) -> Iterator[None]:
    """Within the block, Keras' global dtype policy is ``mixed_float16`` when ``enabled`` (else unchanged)."""
    if not enabled:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(MIXED_POLICY)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


__all__ = ["MIXED_POLICY", "mixed_precision_policy"]
