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
nnU-Net's choice). :func:`normalization_layer` is the one place that makes a normalization by name
(``batch`` / ``instance`` / ``group`` / ``none``), for the DeepReg backbones' blocks (their ``norm`` key) and
the segmenters' units alike; :func:`check_norm` validates ``norm`` with ``norm_groups``, and
:func:`conv_bias` says whether the convolution before it carries a bias.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterable, Iterator, List, Optional, Tuple

import keras
from keras import ops

from tfreg.checks import check_choice, check_number, check_positive_int
from tfreg.serialization import AttributeConfigMixin

logger = logging.getLogger(__name__)

# Read by batch_normalization() at construction; set only through synchronized_batch_norm().
_SYNCHRONIZED = False

#: Added to the variance by instance and group normalization (PyTorch's default, nnU-Net's).
NORM_EPSILON = 1e-5


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

    Call: ``(B, *S, C)`` -> ``(B, *S, C)``, any number of spatial axes >= 1. Over a single voxel (every
    axis of ``S`` is 1) the output is ``beta`` whatever the input; the layer is built, and logs a warning.
    """

    def __init__(self, epsilon: float = NORM_EPSILON, center: bool = True, scale: bool = True, **kwargs):
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
        spatial = tuple(input_shape[1:-1])
        if all(s == 1 for s in spatial):
            # x - mean is exactly 0 over one voxel: the output is beta whatever the input, so every weight
            # feeding this layer gets no gradient. PyTorch's instance_norm refuses this in training; tfreg
            # builds it (the network still runs, and tiny test volumes reach it) but never silently.
            logger.warning(
                "%s: instance normalization over a single voxel (input %s) outputs its offset only: the input and "
                "every weight before it are cut off (no gradient). Use a larger image or fewer levels/stages",
                self.name,
                tuple(input_shape),
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


#: The names :func:`normalization_layer` accepts (a backbone's ``norm`` key).
NORMALIZATIONS = ("batch", "instance", "group", "none")

#: The most groups :func:`default_norm_groups` picks. Wu and He (Group Normalization, 2018) found 8 to 32
#: groups about equally good on ImageNet; tfreg's registration networks have 4 to 64 channels per layer
#: (DeepReg's ``num_channel_initial * 2**level``), so 8 keeps at least one channel per group on the first
#: levels and 2 to 8 channels per group deeper down.
MAX_DEFAULT_NORM_GROUPS = 8


def default_norm_groups(channels: int) -> int:
    """The group count of group normalization over ``channels`` channels when ``norm_groups`` is not given:
    the largest divisor of ``channels`` that is at most :data:`MAX_DEFAULT_NORM_GROUPS` (8 groups for 8, 16,
    32 ... channels, 4 for 4, 6 for 12, 5 for 5, 1 for 7)."""
    channels = check_positive_int(channels, "channels")
    return max(g for g in range(1, min(MAX_DEFAULT_NORM_GROUPS, channels) + 1) if channels % g == 0)


def check_norm(norm: str, norm_groups: Optional[int] = None, channels: Iterable[int] = ()) -> Tuple[str, Optional[int]]:
    """``(norm, norm_groups)`` validated for a network whose normalized layers have ``channels`` channels.

    Args:
        norm: one of :data:`NORMALIZATIONS`.
        norm_groups: group count of ``norm="group"``, int >= 1, or None for :func:`default_norm_groups` per
            layer. Only with ``norm="group"``: a count given with another norm would be silently ignored.
        channels: the channel counts of the normalized layers; ``norm_groups`` must divide each.

    Raises:
        ValueError: naming ``norm`` or ``norm_groups``, the value and what is allowed.
    """
    kind = check_choice(norm, "norm", NORMALIZATIONS)
    if norm_groups is None:
        return kind, None
    if kind != "group":
        raise ValueError(
            f"norm_groups={norm_groups!r} applies only to norm 'group', got norm {kind!r} (leave norm_groups out)"
        )
    groups = check_positive_int(norm_groups, "norm_groups")
    counts = sorted({int(c) for c in channels})
    bad = [c for c in counts if c % groups]
    if bad:
        raise ValueError(
            f"norm_groups={groups} must divide the channel count of every normalized layer, but {bad} "
            f"{'is' if len(bad) == 1 else 'are'} not divisible by {groups} (the layers have {counts} channels); "
            "choose a common divisor or leave norm_groups out (the largest divisor <= 8 per layer)"
        )
    return kind, groups


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by normalization ``norm`` should have a bias: only for ``"none"``.

    Batch and instance normalization subtract the mean of each channel (over the batch and space, or per
    sample over space), which removes a per-channel constant exactly: a bias before them is a dead weight,
    and their ``beta`` is the offset (DeepReg's conv blocks have no bias for this reason). Group
    normalization subtracts the mean of each group of channels, so only the bias' mean over a group is
    removed; the differences between the channels of a group survive, but they act before the division by
    the group's spread, where the learnt per-channel ``beta`` after it already gives each channel its own
    offset. Wu and He's group-normalized ResNets have bias-free convolutions too, and keeping the convolution
    the same for the three norms keeps their variables alike. Without normalization nothing else gives an
    offset: bias-free convolutions and ReLUs make every feature positively homogeneous in the input
    (doubling the image doubles every feature, a zero image gives zero features), so ``"none"`` needs the
    bias.
    """
    return check_choice(norm, "norm", NORMALIZATIONS) == "none"


def normalization_layer(
    kind: str, name: Optional[str] = None, channels: Optional[int] = None, groups: Optional[int] = None
) -> Optional[keras.layers.Layer]:
    """The normalization layer named ``kind``, channels-last, 2-D and 3-D:

    - ``"batch"``: :func:`batch_normalization` (Keras' defaults, DeepReg's: momentum 0.99, epsilon 1e-3), so
      the synchronized setting applies; statistics of the batch in training, moving averages in inference.
    - ``"instance"``: :class:`InstanceNormalization`, per sample and channel over space.
    - ``"group"``: ``keras.layers.GroupNormalization`` (Wu and He 2018), per sample and group of
      ``channels / groups`` consecutive channels, over space and the group's channels; ``groups`` defaults
      to :func:`default_norm_groups` of ``channels``. Same statistics in training and inference.
    - ``"none"``: None.

    Instance and group normalization use epsilon :data:`NORM_EPSILON`, a biased variance, and learn a scale
    ``gamma`` (from 1) and offset ``beta`` (from 0) per channel, like batch normalization.

    Args:
        kind: one of :data:`NORMALIZATIONS`.
        name: the layer's name (None: Keras' automatic name).
        channels: the channel count of the input; required for ``"group"``.
        groups: the group count of ``"group"`` (None: the default); refused for the other kinds.

    Raises:
        ValueError: ``kind`` not in :data:`NORMALIZATIONS`, ``channels`` missing for ``"group"``, or a
            ``groups`` that is not a positive divisor of ``channels`` (see :func:`check_norm`).
    """
    kind, groups = check_norm(kind, groups, () if channels is None else (channels,))
    if kind == "batch":
        return batch_normalization(name=name)
    if kind == "instance":
        return InstanceNormalization(name=name)
    if kind == "group":
        if channels is None:
            raise ValueError("normalization_layer('group') needs the input's channel count (channels=...)")
        channels = check_positive_int(channels, "channels")
        groups = default_norm_groups(channels) if groups is None else groups
        return keras.layers.GroupNormalization(groups=groups, axis=-1, epsilon=NORM_EPSILON, name=name)
    return None


__all__ = [
    "synchronized_batch_norm",
    "batch_norm_synchronized",
    "batch_normalization",
    "batch_norm_layers",
    "InstanceNormalization",
    "NORMALIZATIONS",
    "MAX_DEFAULT_NORM_GROUPS",
    "NORM_EPSILON",
    "default_norm_groups",
    "check_norm",
    "conv_bias",
    "normalization_layer",
]
