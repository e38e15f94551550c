"""Batch normalization for every tfreg network, with synchronized statistics chosen at construction.

Every ``BatchNormalization`` in tfreg is made by :func:`batch_normalization`, which passes Keras' public
``synchronized=`` constructor argument from a process-wide setting. Under several replicas
(``tf.distribute.MirroredStrategy``), synchronized layers normalise over the global batch, as one device
would; otherwise each replica normalises over its own share only. The engine builds the model inside
:func:`synchronized_batch_norm` when it trains on several replicas::

    from tfreg.layers.normalization import synchronized_batch_norm

    with strategy.scope(), synchronized_batch_norm(strategy.num_replicas_in_sync > 1):
        model = build_model(config, loader)   # or: build_model(config, loader, synchronized_bn=True)

The setting is read when a layer is constructed: layers made outside the context keep
``synchronized=False``. It is a plain module variable, so it holds for the whole process (all threads)
while the context is open; do not build models with different settings in concurrent threads.
Synchronization exists on Keras' TensorFlow backend only; the setting cannot be switched on under another.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List

import keras

# Read by batch_normalization() at construction; set only through synchronized_batch_norm().
_SYNCHRONIZED = False


@contextlib.contextmanager
def synchronized_batch_norm(enabled: bool = True) -> Iterator[None]:
    """Within the block, :func:`batch_normalization` makes layers with ``synchronized=enabled``.

    Nested blocks restore the outer setting on exit (also on an exception).

    Args:
        enabled: True for global-batch statistics across replicas; False for per-replica statistics
            (Keras' default).

    Raises:
        ValueError: ``enabled`` is not a bool, or is True on a Keras backend other than TensorFlow.
    """
    global _SYNCHRONIZED
    if not isinstance(enabled, bool):
        raise ValueError(f"synchronized_batch_norm: enabled must be a bool, got {enabled!r}")
    if enabled and keras.backend.backend() != "tensorflow":
        raise ValueError(
            "synchronized_batch_norm(True) needs Keras' TensorFlow backend (synchronized BatchNormalization "
            f"exists only there); the backend is {keras.backend.backend()!r}"
        )
    previous = _SYNCHRONIZED
    _SYNCHRONIZED = enabled
    try:
        yield
    finally:
        _SYNCHRONIZED = previous


def batch_norm_synchronized() -> bool:
    """The current setting: whether :func:`batch_normalization` makes synchronized layers now."""
    return _SYNCHRONIZED


def batch_normalization(**kwargs) -> keras.layers.BatchNormalization:
    """A ``keras.layers.BatchNormalization`` whose ``synchronized`` argument is the current setting.

    Args:
        **kwargs: ``BatchNormalization`` arguments (``axis``, ``momentum``, ``name``, ...); an explicit
            ``synchronized`` wins over the setting.
    """
    kwargs.setdefault("synchronized", _SYNCHRONIZED)
    return keras.layers.BatchNormalization(**kwargs)


def batch_norm_layers(layer) -> List[keras.layers.BatchNormalization]:
    """Every ``BatchNormalization`` inside ``layer`` (a layer or model), each once, in attribute order.

    Keras has no public recursive layer walk, so this follows the Python attributes through which a layer
    holds its sub-layers (directly, or in lists, tuples and dicts, which is how Keras tracks them).
    """
    found: List[keras.layers.BatchNormalization] = []
    seen = set()

    def visit(obj) -> None:
        if isinstance(obj, keras.layers.Layer):
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if isinstance(obj, keras.layers.BatchNormalization):
                found.append(obj)
            for value in vars(obj).values():
                visit(value)
        elif isinstance(obj, dict):
            for value in obj.values():
                visit(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value)

    visit(layer)
    return found


__all__ = ["synchronized_batch_norm", "batch_norm_synchronized", "batch_normalization", "batch_norm_layers"]
