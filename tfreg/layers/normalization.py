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

The segmentation networks also use :class:`InstanceNormalization` (per sample and channel, over space;
nnU-Net's choice), and :func:`normalization_layer` picks one of ``batch`` / ``instance`` / ``none`` by name.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional

import keras
from keras import ops

from tfreg.checks import check_choice, check_number
from tfreg.serialization import AttributeConfigMixin

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


class InstanceNormalization(AttributeConfigMixin, keras.layers.Layer):
    """Instance normalization (Ulyanov et al. 2016), channels-last, 2-D and 3-D (``keras.ops`` only).

    For features ``x`` ``(B, *S, C)``, per sample ``b`` and channel ``c``, over the spatial axes ``S``::

        y = gamma_c * (x - mean_S(x)) / sqrt(var_S(x) + epsilon) + beta_c

    with the biased variance (divided by the voxel count, as PyTorch's ``InstanceNorm``). The statistics
    are those of the current sample in training and inference alike, so there are no moving averages and
    the batch size does not matter (nnU-Net's reason for it with batch 2). ``gamma`` starts at 1 and
    ``beta`` at 0 (``center``/``scale`` False drop them).

    Args:
        epsilon: added to the variance, > 0 (default 1e-5, PyTorch's and nnU-Net's).
        center: learn ``beta`` (``C`` weights).
        scale: learn ``gamma`` (``C`` weights).
        **kwargs: Keras layer arguments.

    Call: ``(B, *S, C)`` -> ``(B, *S, C)``, any number of spatial axes >= 1.
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = check_number(epsilon, "epsilon", exclusive_minimum=True)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        if len(input_shape) < 3 or input_shape[-1] is None:
            raise ValueError(
                "InstanceNormalization expects (batch, *spatial, channels) with a known channel count, "
                f"got {input_shape}"
            )
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma") if self.scale else None
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta") if self.center else None

    def call(self, inputs):
        axes = tuple(range(1, len(inputs.shape) - 1))
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(x, axis=axes, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)
        y = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    config_keys = ("epsilon", "center", "scale")


#: The names :func:`normalization_layer` accepts.
NORMALIZATIONS = ("batch", "instance", "none")


def normalization_layer(kind: str, name: Optional[str] = None) -> Optional[keras.layers.Layer]:
    """The normalization layer named ``kind``: ``"batch"`` (:func:`batch_normalization`, so the
    synchronized setting applies), ``"instance"`` (:class:`InstanceNormalization`) or ``"none"`` (None).

    Raises:
        ValueError: ``kind`` not in :data:`NORMALIZATIONS`.
    """
    check_choice(kind, "norm", NORMALIZATIONS)
    if kind == "batch":
        return batch_normalization(name=name)
    if kind == "instance":
        return InstanceNormalization(name=name)
    return None


__all__ = [
    "synchronized_batch_norm",
    "batch_norm_synchronized",
    "batch_normalization",
    "batch_norm_layers",
    "InstanceNormalization",
    "NORMALIZATIONS",
    "normalization_layer",
]
