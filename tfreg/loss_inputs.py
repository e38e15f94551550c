"""Extra named tensor inputs that a loss declares, and how a config entry wires them.

A loss is called on the tensors its model's category table names (``image: (fixed_image,
pred_fixed_image)``, ``regularization: (ddf,)``, ...; see :mod:`tfreg.models.loss_wiring`). Some losses
need more: the rigidity penalty a mask of the rigid structures, inverse consistency a backward DDF. Such
a loss class declares them in the class attribute ``tensor_inputs``, a tuple of :class:`LossInput`; each
becomes a keyword of its ``call``. In a config entry the input's name is then a wiring key, not a
constructor argument::

    regularization:
      - {name: rigidity, weight: 0.2, mask: moving_label}              # a tensor name
      - {name: rigidity, weight: 0.2, mask: moving_label, channels: [1, 2], combine: union}
      - {name: rigidity, weight: 0.2, mask: {from: fixed, channels: [0]}}   # the long form
      - {name: rigidity, weight: 0.2, mask: null}                       # explicitly: the whole grid
      - {name: inverse-consistency, weight: 0.1}                        # ddf_backward by default

``channels`` / ``combine`` at the entry level are a short form for the only declared input of a loss
whose constructor does not take those names itself.

Label channels. The label tensors carry one label channel per sample (DeepReg's ``sample_label: sample``
/ ``all``) unless ``dataset.sample_label`` is ``stack`` (every channel, last axis). A loss that reads the
last axis of its labels as classes (multi-class Dice, cross-entropy, focal and contour-CE) declares it
with a class method ``label_channels_needed(kwargs) -> LabelChannelNeed``; :func:`label_channel_need`
reads it, and :func:`sampled_label_problem`, :func:`channel_count_problem` and
:func:`mask_channel_problem` say what is wrong with a configuration, before training: the config checks
(no data) refuse such a loss on sampled labels, and ``tfreg_train`` checks the counts against the data.

Pure Python: the model resolves the names into tensors (:mod:`tfreg.models.loss_wiring`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: How selected mask channels are combined: kept as separate structures, or merged by their maximum.
COMBINE_MODES: Tuple[str, ...] = ("separate", "union")
#: Keys of the long form ``{from, channels, combine}`` of an input's wiring.
SOURCE_KEYS: Tuple[str, ...] = ("from", "channels", "combine")
#: The label tensors of the registration models and their aliases. The data pipeline gives them one label
#: channel per sample unless ``dataset.sample_label`` is ``stack``, so selecting channels of them needs that.
LABEL_TENSORS: Tuple[str, ...] = ("moving_label", "fixed_label", "pred_fixed_label", "moving", "fixed", "warped_moving")
#: Config value meaning "leave this input out" (YAML ``null``).
NO_SOURCE = None


@dataclass(frozen=True)
class LossInput:
    """One extra tensor input of a loss, passed to ``call`` as the keyword ``name``.

    Attributes:
        name: the ``call`` keyword and the config key that wires it (e.g. ``"mask"``).
        doc: what the tensor is, with its shape and units (shown in error messages and docs).
        default: the tensor name used when the config entry does not name one; None means the entry
            must name one (or write ``null`` when ``optional``).
        optional: whether ``<name>: null`` is allowed, leaving the input out of the call.
        is_mask: a per-voxel map (label, mask): channels may be selected and combined, and it is
            resampled onto the grid of the loss' first argument when the two grids differ.
    """

    name: str
    doc: str
    default: Optional[str] = None
    optional: bool = False
    is_mask: bool = False


@dataclass(frozen=True)
class TensorSource:
    """Where one extra input comes from: a tensor name and an optional channel selection.

    Attributes:
        name: a tensor name of the model (an input such as ``moving_label``, an output such as
            ``pred_fixed_label``, or one of the model's aliases such as ``warped_moving``).
        channels: indices along the last axis to keep; None keeps every channel.
        combine: ``"separate"`` (one structure per channel) or ``"union"`` (their voxel-wise maximum).
    """

    name: str
    channels: Optional[Tuple[int, ...]] = None
    combine: str = "separate"


@dataclass
class LossEntry:
    """A loss config entry split into constructor arguments and tensor wiring.

    Attributes:
        kwargs: constructor arguments (``name`` included, ``weight`` removed).
        inputs: ``{call keyword: TensorSource}`` for each wired extra input (left-out ones absent).
        problems: ``(sub-key, message)`` pairs; empty when the entry is well formed.
    """

    kwargs: Dict[str, Any]
    inputs: Dict[str, TensorSource] = field(default_factory=dict)
    problems: List[Tuple[Tuple[Any, ...], str]] = field(default_factory=list)


@dataclass(frozen=True)
class LabelChannelNeed:
    """What a loss needs of the label channels it scores (the first tensor of a label category).

    Attributes:
        every_channel: the loss reads the last axis as classes, so it needs every label channel of the
            sample at once (``dataset.sample_label: stack``): one sampled channel ``(B, *S)`` would be read
            as a grid one axis short with its last spatial axis as the classes.
        count: exactly this many channels (e.g. one weight per class), or None.
        minimum: at least this many channels.
        reason: what sets ``count`` or ``minimum``, for messages (e.g. ``class_weights has 4 entries``).
    """

    every_channel: bool = True
    count: Optional[int] = None
    minimum: int = 1
    reason: str = ""


def label_channel_need(loss_cls: Any, kwargs: Dict[str, Any]) -> Optional[LabelChannelNeed]:
    """The :class:`LabelChannelNeed` a loss class declares for these constructor arguments (None: any labels)."""
    method = getattr(loss_cls, "label_channels_needed", None)
    return None if method is None else method(kwargs)


def sampled_label_problem(loss_name: Any, need: Optional[LabelChannelNeed], sample_label: Optional[str]) -> str:
    """Why ``need`` cannot be met by labels sampled one channel per sample ("" when it can)."""
    if need is None or not need.every_channel or sample_label == "stack":
        return ""
    return (
        f"{loss_name!r} reads the last axis of its labels as classes, so it needs every label channel of a "
        f"sample, but dataset.sample_label: {sample_label or 'sample (the default)'} gives one label channel per "
        "sample (a (batch, *spatial) label would be read as classes along its last spatial axis); set "
        "dataset.sample_label: stack"
    )


def channel_count_problem(loss_name: Any, need: Optional[LabelChannelNeed], count: int) -> str:
    """Why ``need`` cannot be met by ``count`` label channels per sample ("" when it can)."""
    if need is None:
        return ""
    if need.count is not None and need.count != count:
        return (
            f"{loss_name!r} wants {need.count} label channel(s) ({need.reason}), but the data gives {count} per "
            "sample (dataset.sample_label: stack; integer label maps: dataset.num_labels)"
        )
    if count < need.minimum:
        return (
            f"{loss_name!r} wants at least {need.minimum} label channel(s) ({need.reason}), but the data gives "
            f"{count} per sample"
        )
    return ""


def mask_channel_problem(
    key: str, source: "TensorSource", count: Optional[int], sample_label: Optional[str], loss_name: Any
) -> str:
    """Why a mask input wired to a label tensor does not fit labels with ``count`` channels ("" when it does).

    Args:
        key: the input's name (e.g. ``mask``).
        source: its wiring; only label tensors (:data:`LABEL_TENSORS`) are checked.
        count: the label channels of the data (the stacked count with ``stack``, the most of any label
            file otherwise); None when unknown.
        sample_label: ``dataset.sample_label``.
        loss_name: the loss, for messages.
    """
    if source.name not in LABEL_TENSORS or count is None:
        return ""
    if sample_label != "stack":
        if source.channels is None and count > 1:
            # every structure is wanted (one mask per channel, or their union): a sample holds one of them
            return (
                f"{loss_name!r} takes {key!r} from {source.name!r}, whose {count} label channels are structures "
                f"of one mask, but dataset.sample_label: {sample_label or 'sample (the default)'} gives one "
                "(randomly sampled) channel per sample; set dataset.sample_label: stack"
            )
        return ""
    bad = [c for c in source.channels or () if c >= count]
    if bad:
        return (
            f"{loss_name!r} selects channels {bad} of {source.name!r}, but the data has {count} label channel(s) "
            f"(indices 0..{count - 1})"
        )
    return ""


def declared_inputs(loss_cls: Any) -> Tuple[LossInput, ...]:
    """The :class:`LossInput` tuple a loss class declares (empty for losses that declare none)."""
    declared = getattr(loss_cls, "tensor_inputs", ())
    if not isinstance(declared, (tuple, list)) or not all(isinstance(d, LossInput) for d in declared):
        raise TypeError(f"{loss_cls!r}.tensor_inputs must be a tuple of LossInput, got {declared!r}")
    return tuple(declared)


def _parse_channels(value: Any) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"channels must be a non-empty list of channel indices >= 0, got {value!r}")
    for c in value:
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ValueError(f"channels must be a non-empty list of channel indices >= 0, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"channels must not repeat an index, got {value!r}")
    return tuple(int(c) for c in value)


def _parse_source(value: Any, channels: Any = None, combine: Any = None) -> TensorSource:
    """A :class:`TensorSource` from a name or the long form ``{from, channels, combine}``."""
    if isinstance(value, dict):
        unknown = sorted(set(map(str, value)) - set(SOURCE_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; allowed: {list(SOURCE_KEYS)}")
        if "from" not in value:
            raise ValueError(f"the long form needs 'from' (a tensor name), got {value!r}")
        if channels is not None or combine is not None:
            raise ValueError("give channels/combine either inside the long form or at the entry level, not both")
        value, channels, combine = value["from"], value.get("channels"), value.get("combine")
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"must be a tensor name (e.g. moving_label), {{from, channels, combine}} or null, got {value!r}"
        )
    combine = "separate" if combine is None else combine
    if combine not in COMBINE_MODES:
        raise ValueError(f"combine must be one of {list(COMBINE_MODES)}, got {combine!r}")
    return TensorSource(name=value, channels=_parse_channels(channels), combine=combine)


def _constructor_takes(loss_cls: Any, key: str) -> bool:
    import inspect

    try:
        params = inspect.signature(loss_cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return key in params


def split_loss_entry(loss_cls: Any, entry: Dict[str, Any]) -> LossEntry:
    """Split a config entry ``{name, weight?, **kwargs}`` of ``loss_cls`` into arguments and wiring.

    Args:
        loss_cls: the registered loss class (its ``tensor_inputs`` say which keys are wiring).
        entry: the config entry; not modified.

    Returns:
        a :class:`LossEntry`; ``problems`` lists what is wrong (a required input not wired, a malformed
        source, ``null`` for an input that cannot be left out, ``channels`` on a non-mask input), each
        with the sub-key it concerns, so that callers can name the full key path.
    """
    kwargs = {k: v for k, v in entry.items() if k != "weight"}
    declared = declared_inputs(loss_cls)
    result = LossEntry(kwargs=kwargs)
    # Entry-level channels/combine: a short form for a loss with exactly one declared input.
    short = {}
    if len(declared) == 1:
        for key in ("channels", "combine"):
            if key in kwargs and not _constructor_takes(loss_cls, key):
                short[key] = kwargs.pop(key)
    for spec in declared:
        configured = spec.name in kwargs
        value = kwargs.pop(spec.name) if configured else spec.default
        if value is NO_SOURCE:
            if not configured:
                hint = f", or write {spec.name}: null to leave it out" if spec.optional else ""
                result.problems.append(
                    (
                        (spec.name,),
                        f"{entry.get('name')!r} needs its input {spec.name!r} ({spec.doc}); name a tensor, "
                        f"e.g. {spec.name}: moving_label{hint}",
                    )
                )
            elif not spec.optional:
                result.problems.append(((spec.name,), f"{spec.name!r} cannot be null: {spec.doc}"))
            elif short:
                result.problems.append(((spec.name,), f"channels/combine are given but {spec.name!r} is null"))
            continue
        try:
            source = _parse_source(value, short.get("channels"), short.get("combine"))
        except ValueError as err:
            result.problems.append(((spec.name,), str(err)))
            continue
        if not spec.is_mask and (source.channels is not None or source.combine != "separate"):
            result.problems.append(((spec.name,), f"channels/combine apply to masks only, not to {spec.name!r}"))
            continue
        result.inputs[spec.name] = source
    return result


def describe_inputs(loss_cls: Any) -> str:
    """One line per declared input, for error messages and documentation."""
    lines = []
    for spec in declared_inputs(loss_cls):
        default = f"default {spec.default}" if spec.default else "no default"
        lines.append(f"{spec.name}: {spec.doc} ({default}{', may be null' if spec.optional else ''})")
    return "; ".join(lines)


def check_source_names(sources: Dict[str, TensorSource], available: Sequence[str]) -> List[Tuple[str, str]]:
    """``(input name, tensor name)`` for each source whose tensor is not among ``available``."""
    return [(key, src.name) for key, src in sources.items() if src.name not in available]


__all__ = [
    "COMBINE_MODES",
    "LABEL_TENSORS",
    "LossInput",
    "LabelChannelNeed",
    "label_channel_need",
    "sampled_label_problem",
    "channel_count_problem",
    "mask_channel_problem",
    "TensorSource",
    "LossEntry",
    "declared_inputs",
    "split_loss_entry",
    "describe_inputs",
    "check_source_names",
]
