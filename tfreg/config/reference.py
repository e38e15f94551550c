"""The config reference, ``docs/config-reference.md``, generated from the code.

Run from the repository root::

    python -m tfreg.config.reference            # rewrite docs/config-reference.md
    python -m tfreg.config.reference --check    # exit 1 when the file is stale

Where each fact comes from:

- **which keys exist, and which method, trainer or data-loader type reads them**: the validator itself.
  :func:`accepted_keys` runs :class:`~tfreg.config.validate.ConfigChecker` on probe configs (one per
  registered method, trainer and data-loader type) and records the keys it accepts at every level
  (its ``unknown_keys`` / ``misspelt_keys`` checks), adding each accepted key as an empty mapping and
  running again until nothing new appears, so nested sections (``train.segmenter.head``) are found too;
- **allowed values and defaults** of those keys: the constants of :mod:`tfreg.config.defaults` and of
  the models, and the models' class attributes (``segmenter_defaults``, ``default_attention``, ...);
- **component arguments** (backbones, losses, augmentations, attention layers, trainers, data loaders):
  the keyword arguments the registry accepts (:func:`tfreg.registry._constructor_kwargs`, the check that
  refuses an unknown key), with types and defaults from the constructors' signatures and descriptions
  from their docstrings' ``Args:`` sections;
- **what a structural key means** (``train.epochs``, ``dataset.<split>.dir``, ...): the short texts of
  :data:`KEY_TEXTS` below, the one place they are written.

``tests/config/test_reference.py`` regenerates the page and fails when the committed file differs, when
the validator accepts a key that has no text here, or when a text here names a key the validator refuses.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from tfreg.config import defaults as D
from tfreg.config.validate import MAX_LEARNING_RATE, ConfigChecker, _optimizer_names
from tfreg.registry import (
    ATTENTION_CLASS,
    BACKBONE_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    FILE_LOADER_CLASS,
    LOSS_CLASS,
    MODEL_CLASS,
    REGISTRY,
    TRAINER_CLASS,
    Registry,
    _constructor_kwargs,
)

#: Where the page is written, relative to the repository root.
DEFAULT_OUTPUT = Path("docs") / "config-reference.md"
#: Placeholder for the split names in key paths (``dataset.<split>.dir``).
SPLIT = "<split>"
#: Placeholder for the parameter-group names under ``train.optimizers``.
GROUP = "<group>"

KeyPath = Tuple[str, ...]


# ---------------------------------------------------------------------- accepted keys, from the validator
class _RecordingChecker(ConfigChecker):
    """A :class:`ConfigChecker` that records, at every level it checks, the keys it accepts there."""

    def __init__(self, registry: Registry):
        super().__init__(provenance=None, registry=registry, check_dirs=False)
        self.accepted: List[Tuple[KeyPath, Tuple[str, ...]]] = []

    def unknown_keys(self, path, node, allowed, what):
        self.accepted.append((tuple(path), tuple(allowed)))
        super().unknown_keys(path, node, allowed, what)

    def misspelt_keys(self, path, node, allowed, explained=()):
        self.accepted.append((tuple(path), tuple(allowed)))
        super().misspelt_keys(path, node, allowed, explained)


def _node(config: Dict[str, Any], path: KeyPath) -> Any:
    for key in path:
        if not isinstance(config, dict) or key not in config:
            return None
        config = config[key]
    return config


def _pattern(path: KeyPath) -> KeyPath:
    """``dataset.train.dir`` -> ``dataset.<split>.dir``: the split names are one key in the reference."""
    if len(path) >= 2 and path[0] == "dataset" and path[1] in D.DATASET_SPLITS:
        return (path[0], SPLIT) + tuple(path[2:])
    return tuple(path)


def _explore(config: Dict[str, Any], registry: Registry, rounds: int = 10) -> Set[KeyPath]:
    """Every key path the validator accepts for ``config``'s method, trainer and data-loader type."""
    config = copy.deepcopy(config)
    found: Set[KeyPath] = set()
    for _ in range(rounds):
        checker = _RecordingChecker(registry)
        checker.check(copy.deepcopy(config))
        grew = False
        for path, allowed in checker.accepted:
            parent = _node(config, path)
            for key in allowed:
                if path + (key,) not in found:
                    found.add(path + (key,))
                    grew = True
                # an absent key becomes an empty mapping, so that a nested section is checked next round
                if isinstance(parent, dict) and key not in parent:
                    parent[key] = {}
        if not grew:
            break
    return found


def _probe_config(registry: Registry, method: str, trainer: str, loader_type: str) -> Dict[str, Any]:
    """A small config of the given method, trainer and data-loader type (its values need not be valid)."""
    dataset: Dict[str, Any] = {
        "type": loader_type,
        "train": {"dir": "probe", "format": registry.names(FILE_LOADER_CLASS)[0], "labeled": True},
    }
    for key in D.DATA_LOADER_REQUIRED_KEYS.get(loader_type, ()):
        dataset[key] = PROBE_VALUES.get(key, [8, 8, 8])
    return {
        "dataset": dataset,
        "train": {
            "method": method,
            "trainer": {"name": trainer},
            "loss": {},
            "preprocess": {"batch_size": 1, "shuffle_buffer_num_batch": 1},
            "epochs": 1,
            "save_period": 1,
        },
    }


#: Values of the required data-loader keys in probe configs.
PROBE_VALUES: Dict[str, Any] = {
    "intra_group_prob": 0.5,
    "intra_group_option": D.INTRA_GROUP_OPTIONS[0],
    "sample_image_in_group": True,
}


@dataclass(frozen=True)
class Scenario:
    """One probe: a method with the default trainer, a trainer with the default method, or a data-loader type."""

    kind: str  # "method", "trainer" or "type"
    name: str

    def config(self, registry: Registry) -> Dict[str, Any]:
        method = self.name if self.kind == "method" else D.DEFAULT_METHOD
        trainer = self.name if self.kind == "trainer" else D.DEFAULT_TRAINER
        loader = self.name if self.kind == "type" else "paired"
        return _probe_config(registry, method, trainer, loader)


def scenarios(registry: Registry = REGISTRY) -> List[Scenario]:
    """Every registered method, trainer and data-loader type, one probe each."""
    return (
        [Scenario("method", n) for n in registry.names(MODEL_CLASS)]
        + [Scenario("trainer", n) for n in registry.names(TRAINER_CLASS)]
        + [Scenario("type", n) for n in registry.names(DATA_LOADER_CLASS)]
    )


def accepted_keys(registry: Registry = REGISTRY) -> Dict[KeyPath, Set[Scenario]]:
    """``{key path pattern: the probes under which the validator accepts it}`` (splits as ``<split>``).

    Component arguments (backbone, loss, ... keyword arguments) are not here: the registry checks them
    when it builds the component (see :func:`component_arguments`).
    """
    found: Dict[KeyPath, Set[Scenario]] = {(key,): set() for key in D.REQUIRED_TOP_LEVEL_KEYS}
    for scenario in scenarios(registry):
        for path in _explore(scenario.config(registry), registry):
            found.setdefault(_pattern(path), set()).add(scenario)
    for path in found:
        if len(path) == 1:
            found[path] = set(scenarios(registry))
    return found


# ---------------------------------------------------------------------- docstrings and signatures
_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|obj):`~?([^`]+)`")
_ARGS_HEADER = re.compile(r"^(Args|Arguments|Keyword Args|Keyword Arguments|Parameters)(:| as\b| \()")
_ENTRY = re.compile(r"^\**([A-Za-z_][\w]*(?:\s*,\s*\**[A-Za-z_][\w]*)*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_POINTER = re.compile(r"^(?:see|as) :class:`~?([\w.]+)`\.?$")
_NAMES_ONLY = re.compile(r"^\**[A-Za-z_][\w]*(?:\s*,\s*\**[A-Za-z_][\w]*)*\s*,$")


def parse_args_section(doc: Optional[str]) -> Dict[str, str]:
    """``{argument: description}`` from the ``Args:`` section of a Google-style docstring.

    Entries are ``name: text`` at the section's indentation, continued on more indented lines;
    ``a, b, c: text`` documents several arguments at once (the list may wrap before the colon).
    """
    result: Dict[str, str] = {}
    if not doc:
        return result
    lines = inspect.cleandoc(doc).splitlines()
    in_args, base, current, pending = False, None, [], []
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not in_args:
            if _ARGS_HEADER.match(stripped) and indent == 0:
                in_args, base, current, pending = True, None, [], []
            continue
        if not stripped:
            continue
        if base is None:
            base = indent
        if indent < base:
            in_args = False
            if _ARGS_HEADER.match(stripped):
                in_args, base, current, pending = True, None, [], []
            continue
        match = _ENTRY.match(stripped)
        if indent == base and _NAMES_ONLY.match(stripped):
            pending = [n.strip().lstrip("*") for n in stripped.rstrip(",").split(",")]
            current = []
        elif match and (indent == base or pending):
            names = pending + [n.strip().lstrip("*") for n in match.group(1).split(",")]
            pending, current = [], names
            for name in names:
                result[name] = match.group(2).strip()
        elif current:
            for name in current:
                result[name] = (result[name] + " " + stripped).strip()
    return result


def _referenced(cls: type) -> List[Any]:
    """Classes a docstring points to (``see :class:`X```), looked up in the class' module."""
    module = sys.modules.get(getattr(cls, "__module__", ""), None)
    found = []
    text = (cls.__doc__ or "") + (getattr(vars(cls).get("__init__"), "__doc__", None) or "")
    for ref in _ROLE.findall(text):
        target = _resolve(ref.strip(), module)
        if inspect.isclass(target) and target is not cls:
            found.append(target)
    return found


def _resolve(ref: str, module) -> Any:
    name = ref.split(".")[-1]
    if module is not None and hasattr(module, name):
        return getattr(module, name)
    if "." in ref:
        try:
            return getattr(importlib.import_module(ref.rsplit(".", 1)[0]), name)
        except (ImportError, AttributeError):
            return None
    return None


def argument_docs(cls: Any, _seen: Optional[Set[Any]] = None) -> Dict[str, str]:
    """Descriptions of ``cls``'s constructor arguments: its and its bases' ``Args:`` sections (the most
    derived wins), then, for what is still missing, the classes its docstrings refer to (``see
    :class:`X```), and theirs."""
    seen = set() if _seen is None else _seen
    seen.add(cls)
    docs: Dict[str, str] = {}
    classes = [c for c in getattr(cls, "__mro__", (cls,)) if getattr(c, "__module__", "").startswith("tfreg")]
    for klass in reversed(classes):
        docs.update(parse_args_section(klass.__doc__))
        init = vars(klass).get("__init__") if inspect.isclass(klass) else None
        if init is not None:
            docs.update(parse_args_section(init.__doc__))
    docs = {k: v for k, v in docs.items() if v}
    module = sys.modules.get(getattr(cls, "__module__", ""), None)
    for key, text in list(docs.items()):
        # "see :class:`X`." alone: X's own text of that argument
        pointer = _POINTER.match(text)
        target = _resolve(pointer.group(1), module) if pointer else None
        if inspect.isclass(target) and target not in seen:
            docs[key] = argument_docs(target, seen | {cls}).get(key, text)
    for klass in classes:
        for other in _referenced(klass):
            if other not in seen:
                for key, text in argument_docs(other, seen).items():
                    docs.setdefault(key, text)
    return docs


def _parameter(cls: Any, name: str) -> Optional[inspect.Parameter]:
    """The constructor parameter ``name`` of the first class along the MRO that names it."""
    targets = [c.__init__ for c in cls.__mro__ if "__init__" in vars(c)] if inspect.isclass(cls) else [cls]
    for target in targets:
        try:
            parameter = inspect.signature(target).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if parameter is not None and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            return parameter
    return None


def _annotation(parameter: Optional[inspect.Parameter]) -> str:
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return ""
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return text.replace("typing.", "")


@dataclass(frozen=True)
class Argument:
    """One configurable constructor argument of a registered component."""

    name: str
    type: str
    default: str  # "required" when the constructor has no default
    description: str


#: Descriptions of Keras' own base-class arguments, for constructors that pass them on without documenting them.
FALLBACK_TEXTS: Dict[str, str] = {"dtype": "Keras' dtype (policy) argument of the base layer or model"}

#: Constructor arguments that a config cannot set: the registry pops ``name`` as the registered name.
NOT_CONFIGURABLE = ("name",)

#: Arguments tfreg passes itself, per registry category (a config value overrides them, rarely meant).
SET_BY_TFREG: Dict[str, Dict[str, str]] = {
    BACKBONE_CLASS: {
        "image_size": "the method: the grid the network works on (the fixed image shape for registration)",
        "out_channels": "the method: `ndim` (one per displacement axis), or its `backbone_defaults`",
        "out_kernel_initializer": "the method's `backbone_defaults`",
        "out_activation": "the method's `backbone_defaults`",
    },
    LOSS_CLASS: {"reduction": "the model: None, one value per sample"},
    DATA_AUGMENTATION_CLASS: {
        "moving_image_size": "the pipeline: the data loader's moving image shape",
        "fixed_image_size": "the pipeline: the data loader's fixed image shape",
        "batch_size": "the pipeline: `train.preprocess.batch_size`",
    },
    DATA_LOADER_CLASS: {
        "file_loader": "`dataset.<split>.format`",
        "data_dir_paths": "`dataset.<split>.dir`",
        "labeled": "`dataset.<split>.labeled`",
        "pairs": "`dataset.<split>.pairs`",
    },
}


def configurable_arguments(cls: Any) -> Optional[List[str]]:
    """The keyword arguments a config entry may give ``cls`` (the registry's check, without ``name``); None
    when the constructor takes any keyword (``**kwargs`` that no named constructor receives)."""
    if inspect.isclass(cls) and not any("__init__" in vars(k) for k in cls.__mro__ if k is not object):
        return []  # no constructor of its own: takes no arguments
    accepted = _constructor_kwargs(cls)
    if accepted is None:
        return None
    return [a for a in accepted if a not in NOT_CONFIGURABLE]


def component_arguments(cls: Any) -> List[Argument]:
    """The documented arguments of a registered class, in constructor order."""
    names = configurable_arguments(cls) or []
    docs = argument_docs(cls)
    arguments = []
    for name in names:
        parameter = _parameter(cls, name)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            default = "required"
        else:
            default = yaml_value(parameter.default)
        text = docs.get(name) or FALLBACK_TEXTS.get(name, "")
        arguments.append(Argument(name, _annotation(parameter), default, clean_text(text)))
    return arguments


# ---------------------------------------------------------------------- text helpers
def yaml_value(value: Any) -> str:
    """A default as YAML writes it: ``null``, ``true``, ``[1, 2]``, ``"text"``; other objects by type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return f"({type(value).__name__})"


def clean_text(text: str) -> str:
    """reStructuredText roles and double backquotes as Markdown code; one line; ``|`` escaped for tables."""
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    text = text.replace("``", "`")
    text = re.sub(r"\s+", " ", text).strip()
    return text.replace("|", "\\|")


def code(value: Any) -> str:
    return f"`{value}`"


def choices(values: Iterable[Any]) -> str:
    return ", ".join(code(v) for v in values)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell if cell else "" for cell in row) + " |" for row in rows]
    return lines


# ---------------------------------------------------------------------- the structural keys' texts
@dataclass(frozen=True)
class KeyText:
    """What a structural key holds: its YAML type, default, allowed values and meaning (Markdown)."""

    type: str
    default: str
    allowed: str
    text: str


def _registered(category: str, registry: Registry) -> str:
    return choices(registry.names(category))


def _model_attribute_values(registry: Registry, attribute: str, key: str) -> str:
    """``method: value`` for the methods that read ``train.<key>`` and whose class sets ``attribute``."""
    parts = []
    for name in registry.names(MODEL_CLASS):
        cls = registry.get(MODEL_CLASS, name)
        value = getattr(cls, attribute, None)
        if value is not None and key in getattr(cls, "config_keys", ()):
            parts.append(f"{name}: {code(yaml_value(value))}")
    return "; ".join(parts)


def key_texts(registry: Registry = REGISTRY) -> Dict[str, KeyText]:
    """The structural keys' texts, keyed by dotted path (``dataset.<split>.dir``); the one place they are written.

    Types, defaults and allowed values are read from the constants the validator and the models use.
    """
    from tfreg.models.joint import PSEUDO_LABELS  # noqa: PLC0415 - the models import Keras
    from tfreg.models.label_autoencoder import (  # noqa: PLC0415
        DEFAULT_BOTTLENECK_CHANNELS,
        DEFAULT_CODE_SIZE,
        DEFAULT_FILTERS,
        DEFAULT_NOISE,
        LABEL_CHOICES,
        NOISE_KEYS,
    )
    from tfreg.models.segmentation import HEAD_ACTIVATIONS, SEGMENT_CHOICES  # noqa: PLC0415
    from tfreg.models.wssamnet import NO_ATTENTION, SEGMENTER_TARGETS  # noqa: PLC0415

    mixed = [n for n in registry.names(TRAINER_CLASS) if registry.get(TRAINER_CLASS, n).supports_mixed_precision]
    head = {
        "num_classes": KeyText(
            "int > 0",
            "the data's label channels (+1 for softmax)",
            "",
            "channels of the segmentation head; checked against the data's label count",
        ),
        "activation": KeyText(
            "str",
            code(HEAD_ACTIVATIONS[0]),
            choices(HEAD_ACTIVATIONS),
            "`sigmoid`: independent (overlapping) structures; `softmax`: exclusive classes with a background channel 0",
        ),
    }
    texts = {
        "dataset": KeyText("mapping", "required", "", "the data: loader type, splits and loader arguments"),
        "train": KeyText("mapping", "required", "", "the method, its networks and losses, and the training run"),
        # ------------------------------------------------------------ dataset
        "dataset.type": KeyText(
            "str",
            "required",
            _registered(DATA_LOADER_CLASS, registry),
            "the data loader (how images are paired); the other non-split keys of `dataset` are its arguments",
        ),
        f"dataset.{SPLIT}": KeyText(
            "mapping or null",
            "required for `train`",
            choices(D.DATASET_SPLITS),
            "one split's files; a split that is absent, null or has an empty `dir` gets no loader",
        ),
        f"dataset.{SPLIT}.dir": KeyText(
            "str or list of str",
            "required",
            "",
            "folder(s) of the split (`~` is expanded; each must exist); several folders are read as one split "
            "(DeepReg's cross-validation folds)",
        ),
        f"dataset.{SPLIT}.format": KeyText(
            "str",
            "required",
            _registered(FILE_LOADER_CLASS, registry),
            "the file loader (image file format)",
        ),
        f"dataset.{SPLIT}.labeled": KeyText(
            "bool", "required", "", "whether to load labels; `false` ignores label files that exist"
        ),
        f"dataset.{SPLIT}.pairs": KeyText(
            "str",
            code(D.PAIRS_OPTIONS[0]),
            choices(D.PAIRS_OPTIONS),
            f"data-loader type(s) {choices(D.PAIRS_LOADER_TYPES)} only: `sample` pairs shuffled neighbours "
            "(DeepReg, `N // 2` per pass), `all` every ordered pair of distinct images (`N (N - 1)`, fixed order)",
        ),
        # ------------------------------------------------------------ train: the engine's keys
        "train.method": KeyText(
            "str", "required", _registered(MODEL_CLASS, registry), "the model class (see [Methods](#methods))"
        ),
        "train.backbone": KeyText(
            "mapping `{name, ...}`",
            "required where read",
            _registered(BACKBONE_CLASS, registry),
            "the network; `name` and its arguments, see [Backbones](#backbones-trainbackbone)",
        ),
        "train.backbone.control_points": KeyText(
            "int or list of int > 0",
            "null",
            "",
            f"methods {choices(control_point_methods(registry))} only: DeepReg's B-spline output head, the "
            "backbone's field given at control points this many voxels apart (anti-aliased down-sampling to "
            "`ceil(d / cp) + 3` points per axis, cubic B-spline up-sampling); taken out of the backbone's "
            "arguments by the model",
        ),
        "train.loss": KeyText(
            "mapping",
            "required where read",
            "the method's loss categories",
            "one entry `{name, weight, ...}` or a list of them per loss category, see [Losses](#losses-trainloss)",
        ),
        "train.optimizer": KeyText(
            "mapping `{name, ...}`",
            "required where read",
            "a `keras.optimizers` class",
            "the optimizer of the one-optimizer trainers, see [Optimizers](#optimizers-trainoptimizer)",
        ),
        "train.optimizers": KeyText(
            "mapping `{group: {name, ...}}`",
            "required where read",
            "the method's parameter groups (see [Methods](#methods))",
            "one optimizer per parameter group, stepped in the trainer's phases",
        ),
        "train.preprocess": KeyText("mapping", "required", "", "batching, shuffling and augmentation"),
        "train.preprocess.batch_size": KeyText("int > 0", "required", "", "samples per batch"),
        "train.preprocess.shuffle_buffer_num_batch": KeyText(
            "int > 0", "required", "", "the training shuffle buffer holds `batch_size` times this many samples"
        ),
        "train.preprocess.num_parallel_calls": KeyText(
            "int",
            yaml_value(D.DEFAULT_NUM_PARALLEL_CALLS),
            "`-1` (`tf.data.AUTOTUNE`) or > 0",
            "parallel calls of the data pipeline's map steps; 1 makes seeded augmentation reproducible batch by batch",
        ),
        "train.preprocess.data_augmentation": KeyText(
            "mapping, list of mappings, or null",
            code(yaml_value(D.DEFAULT_DATA_AUGMENTATION)) + " (added when the file is loaded)",
            _registered(DATA_AUGMENTATION_CLASS, registry),
            "random spatial augmentation of training batches, see "
            "[Data augmentation](#data-augmentation-trainpreprocessdata_augmentation); `null` turns it off",
        ),
        "train.epochs": KeyText("int > 0", "required", "", "training epochs (`--max_epochs` overrides)"),
        "train.save_period": KeyText(
            "int > 0",
            "required",
            "",
            "epochs between checkpoints `save/ckpt-<epoch>` (and one at the end; `--max_epochs` caps it)",
        ),
        "train.update_freq": KeyText(
            "str or int > 0",
            code(D.UPDATE_FREQ_WORDS[0]),
            choices(D.UPDATE_FREQ_WORDS) + ", or a number of batches",
            "how often TensorBoard logs are written",
        ),
        "train.trainer": KeyText(
            "mapping `{name, ...}`",
            code(yaml_value({"name": D.DEFAULT_TRAINER})),
            _registered(TRAINER_CLASS, registry),
            "the training loop, see [Trainers](#trainers-traintrainer)",
        ),
        "train.init_from": KeyText(
            "mapping or list of mappings",
            "null",
            "",
            "weights of sub-networks loaded from other runs' checkpoints before training (partial restore)",
        ),
        "train.init_from.path": KeyText("str", "required", "", "a checkpoint `.../save/ckpt-N`"),
        "train.init_from.parts": KeyText(
            "list of str, or mapping",
            "required",
            "",
            "sub-network names to load (`[backbone]`), or `{target: source}` (`moving_segmenter/backbone: backbone`)",
        ),
        "train.mixed_precision": KeyText(
            "bool",
            "false",
            "",
            f"build the model under Keras' `mixed_float16` policy (fields, warping and losses stay float32); "
            f"trainers {choices(mixed)} only",
        ),
        # ------------------------------------------------------------ train: the models' keys
        "train.segmenter": KeyText(
            "mapping",
            "required where read",
            "",
            "the segmentation network(s) of a composite method; defaults per method: "
            + _model_attribute_values(registry, "segmenter_defaults", "segmenter"),
        ),
        "train.segmenter.backbone": KeyText(
            "mapping `{name, ...}`",
            "required",
            _registered(BACKBONE_CLASS, registry),
            "the segmenter's backbone (a segmentation backbone such as `unet_segmenter`)",
        ),
        "train.segmenter.head": KeyText("mapping", "`{}`", "", "the segmenter's output head"),
        "train.segmenter.head.num_classes": head["num_classes"],
        "train.segmenter.head.activation": head["activation"],
        "train.segmenter.shared": KeyText(
            "bool", "false (see `train.segmenter`)", "", "one segmenter for both images (they need one shape)"
        ),
        "train.segmenter.trainable": KeyText(
            "bool",
            "true (see `train.segmenter`)",
            "",
            "train the segmenters with the model; frozen ones need pre-trained weights from `train.init_from`",
        ),
        "train.segmenter.target": KeyText(
            "str",
            code(SEGMENTER_TARGETS[0]),
            choices(SEGMENTER_TARGETS),
            "what the `segmentation` losses train the segmenters on: the labels, or ROI maps around landmarks "
            "(`dataset.landmarks`, `dataset.landmark_roi_size`)",
        ),
        "train.attention": KeyText(
            "mapping `{name, ...}`",
            "per method: " + _model_attribute_values(registry, "default_attention", "attention"),
            _registered(ATTENTION_CLASS, registry) + f", {code(NO_ATTENTION)}",
            "how the segmentations guide the registration network's inputs, see "
            "[Attention layers](#attention-layers-trainattention)",
        ),
        "train.joint": KeyText("mapping", "`{}`", "", "the joint model's label visibility and pseudo labels"),
        "train.joint.labeled_fraction": KeyText(
            "number in [0, 1]", "1.0", "", "share of training pairs whose labels training may see"
        ),
        "train.joint.seed": KeyText("int >= 0", "0", "", "seed of the choice of labeled pairs"),
        "train.joint.pseudo_labels": KeyText(
            "str",
            code(PSEUDO_LABELS[0]),
            choices(PSEUDO_LABELS),
            "the segmenters' predictions in the label term of pairs without labels: thresholded at 0.5, or soft",
        ),
        "train.joint.moving_modality": KeyText(
            "str", "null", "", "modality of the moving images (e.g. `MR`), checked against `init_from`'s segmenters"
        ),
        "train.joint.fixed_modality": KeyText("str", "null", "", "modality of the fixed images (e.g. `CT`)"),
        "train.head": KeyText("mapping", "`{}`", "", "the segmentation model's output head"),
        "train.head.num_classes": head["num_classes"],
        "train.head.activation": head["activation"],
        "train.segment": KeyText(
            "str",
            code(SEGMENT_CHOICES[0]),
            choices(SEGMENT_CHOICES),
            "which images of a sample are segmented (`both` needs one image shape)",
        ),
        "train.modality": KeyText(
            "str", "null", "", "modality of the segmented images (e.g. `CT`), recorded for composite models"
        ),
        "train.code_size": KeyText("int > 0", yaml_value(DEFAULT_CODE_SIZE), "", "length of the label code"),
        "train.filters": KeyText(
            "list of int > 0", yaml_value(DEFAULT_FILTERS), "", "encoder channels per stride-2 level"
        ),
        "train.bottleneck_channels": KeyText(
            "int > 0", yaml_value(DEFAULT_BOTTLENECK_CHANNELS), "", "channels of the last encoder convolution"
        ),
        "train.label_channels": KeyText("int > 0", "1", "", "foreground channels of the label maps"),
        "train.labels": KeyText(
            "str", code(LABEL_CHOICES[0]), choices(LABEL_CHOICES), "which label maps of a sample are encoded"
        ),
        "train.noise": KeyText(
            "mapping",
            code(yaml_value(DEFAULT_NOISE)),
            choices(NOISE_KEYS) + " (keys)",
            "label-swap noise of the denoising auto-encoder (training only)",
        ),
        "train.noise.probability": KeyText(
            "number in [0, 1]", yaml_value(DEFAULT_NOISE["probability"]), "", "probability of swapping a voxel pair"
        ),
        "train.noise.axis": KeyText(
            "int >= 0", yaml_value(DEFAULT_NOISE["axis"]), "", "spatial axis of the swapped neighbours"
        ),
        "train.noise.seed": KeyText("int >= 0 or null", yaml_value(DEFAULT_NOISE["seed"]), "", "seed of the noise"),
        f"train.optimizers.{GROUP}": KeyText(
            "mapping `{name, ...}`",
            "required per phase",
            "a `keras.optimizers` class",
            "the optimizer of one parameter group, as `train.optimizer`",
        ),
    }
    for category in _loss_categories(registry):
        texts[f"train.loss.{category}"] = KeyText(
            "mapping or list of mappings",
            "null (skipped, with a warning)",
            "registered losses, see [Losses](#losses-trainloss)",
            "losses called on " + _category_tensors(registry, category),
        )
    return texts


def control_point_methods(registry: Registry = REGISTRY) -> Tuple[str, ...]:
    """The methods whose model class warps with its backbone's dense field (``supports_control_points``), the
    ones ``train.backbone.control_points`` applies to (the validator's rule)."""
    return tuple(
        name
        for name in registry.names(MODEL_CLASS)
        if getattr(registry.get(MODEL_CLASS, name), "supports_control_points", False)
    )


def extra_keys(registry: Registry = REGISTRY) -> Dict[KeyPath, Tuple[Scenario, ...]]:
    """Keys the validator accepts that no probe config reaches by adding empty mappings, with their readers:
    keys of nested values that a model parses itself (``train.noise``), keys under a per-config name
    (``train.optimizers.<group>``) and keys a check takes out before the registry sees them
    (``train.backbone.control_points``). The tests check each against the validator by putting it into a
    config."""
    return {
        ("train", "backbone", "control_points"): tuple(Scenario("method", m) for m in control_point_methods(registry)),
        ("train", "noise", "probability"): (Scenario("method", "label_autoencoder"),),
        ("train", "noise", "axis"): (Scenario("method", "label_autoencoder"),),
        ("train", "noise", "seed"): (Scenario("method", "label_autoencoder"),),
        ("train", "optimizers", GROUP): (Scenario("trainer", "alternating"),),
    }


def _loss_categories(registry: Registry) -> List[str]:
    seen: List[str] = []
    for name in registry.names(MODEL_CLASS):
        for category in getattr(registry.get(MODEL_CLASS, name), "loss_inputs", {}):
            if category not in seen:
                seen.append(category)
    return seen


def _category_tensors(registry: Registry, category: str) -> str:
    """``(fixed_image, pred_fixed_image)`` [methods]; one part per distinct tensor tuple."""
    by_tensors: Dict[Tuple[str, ...], List[str]] = {}
    for name in registry.names(MODEL_CLASS):
        model = registry.get(MODEL_CLASS, name)
        tensors = getattr(model, "loss_inputs", {}).get(category)
        if tensors and category not in getattr(model, "ignored_loss_categories", ()):
            by_tensors.setdefault(tuple(tensors), []).append(name)
    return "; ".join(
        "`(" + ", ".join(tensors) + ")` (" + ", ".join(methods) + ")" for tensors, methods in by_tensors.items()
    )


# ---------------------------------------------------------------------- who reads a key
def readers(path: KeyPath, found: Set[Scenario], registry: Registry = REGISTRY) -> str:
    """ "every method", "methods a, b", "trainer x", "types a, b" (data loaders)."""
    if len(path) == 1:
        return "every config"
    if path == ("dataset", SPLIT, "pairs"):
        # every split accepts the key; the validator then refuses it for the other types, with its reason
        return "types " + ", ".join(D.PAIRS_LOADER_TYPES)
    if path[0] == "dataset":
        types = sorted(s.name for s in found if s.kind == "type")
        known = [t for t in registry.names(DATA_LOADER_CLASS) if t in D.DATA_LOADER_REQUIRED_KEYS]
        if path[1] == SPLIT or set(known) <= set(types):
            return "every type"
        return "types " + ", ".join(types)
    methods = sorted(s.name for s in found if s.kind == "method")
    trainers = sorted(s.name for s in found if s.kind == "trainer")
    all_methods = registry.names(MODEL_CLASS)
    all_trainers = registry.names(TRAINER_CLASS)
    parts = []
    if set(methods) == set(all_methods):
        parts.append("every method")
    elif methods:
        parts.append("methods " + ", ".join(methods))
    if trainers and set(trainers) != set(all_trainers):
        parts.append("trainers " + ", ".join(trainers))
    return "; ".join(parts)


# ---------------------------------------------------------------------- rendering
def _key_rows(paths: Sequence[KeyPath], found: Dict[KeyPath, Set[Scenario]], texts: Dict[str, KeyText], registry):
    rows = []
    for path in paths:
        dotted = ".".join(path)
        text = texts.get(dotted)
        if text is None:
            raise KeyError(
                f"{dotted}: the validator accepts this key but tfreg/config/reference.py has no text for it; add "
                "one to key_texts()"
            )
        rows.append(
            (
                code(dotted),
                text.type,
                text.default,
                text.allowed,
                readers(path, found.get(path, set()), registry),
                text.text,
            )
        )
    return rows


def _data_loader_rows(registry: Registry, found: Dict[KeyPath, Set[Scenario]]) -> List[Tuple[str, ...]]:
    """The data-loader arguments, one row per key over every registered type: for the types the validator
    knows (:data:`~tfreg.config.defaults.DATA_LOADER_REQUIRED_KEYS`) the keys it accepts, for the others
    their constructors' arguments (the registry checks them)."""
    from tfreg.data.loaders.base import DataLoader  # noqa: PLC0415 - imports TensorFlow

    # the base class' texts of the arguments every loader shares (a subclass may shorten them)
    shared = {k: clean_text(v) for k, v in argument_docs(DataLoader).items()}
    per_key: Dict[str, List[str]] = {}
    entries: Dict[str, Argument] = {}
    for loader_type in registry.names(DATA_LOADER_CLASS):
        cls = registry.get(DATA_LOADER_CLASS, loader_type)
        scenario = Scenario("type", loader_type)
        validated = loader_type in D.DATA_LOADER_REQUIRED_KEYS
        for argument in component_arguments(cls):
            if argument.name in SET_BY_TFREG[DATA_LOADER_CLASS]:
                continue
            if validated and scenario not in found.get(("dataset", argument.name), set()):
                continue
            per_key.setdefault(argument.name, []).append(loader_type)
            current = entries.get(argument.name)
            if current is None or (not current.description and argument.description):
                entries[argument.name] = argument
    required = {k for keys in D.DATA_LOADER_REQUIRED_KEYS.values() for k in keys}
    allowed = {
        "sample_label": choices(D.SAMPLE_LABEL_OPTIONS),
        "intra_group_option": choices(D.INTRA_GROUP_OPTIONS),
    }
    for key in ("moving_image_shape", "fixed_image_shape", "image_shape"):
        allowed[key] = f"{' or '.join(str(n) for n in sorted(D.IMAGE_SHAPE_LENGTHS, reverse=True))} ints > 0"
    split_defaults = {
        # get_data_loader's per-split defaults (DeepReg's)
        "sample_label": '`"sample"` (train), `"all"` (valid, test)',
        "seed": "null (train), 0 (valid, test)",
    }
    rows = []
    for name in sorted(per_key):
        argument = entries[name]
        types = per_key[name]
        default = "required" if name in required else split_defaults.get(name, argument.default)
        where = "every type" if types == registry.names(DATA_LOADER_CLASS) else "types " + ", ".join(types)
        text = shared.get(name, argument.description)
        rows.append((code(f"dataset.{name}"), argument.type, default, allowed.get(name, ""), where, text))
    return rows


def _component_section(
    registry: Registry, category: str, title: str, anchor_note: str, skip: Sequence[str] = ()
) -> List[str]:
    lines = [f"### {title}", "", anchor_note, ""]
    set_by = SET_BY_TFREG.get(category, {})
    for name in registry.names(category):
        if name in skip:
            continue
        cls = registry.get(category, name)
        qualname = f"{cls.__module__}.{cls.__qualname__}"
        lines += [f"#### `{name}`", "", f"`{qualname}`. " + clean_text(_summary(cls)), ""]
        arguments = component_arguments(cls)
        accepted = configurable_arguments(cls)
        if accepted is None:
            lines += ["Takes any keyword argument (its constructor checks them).", ""]
            continue
        if not arguments:
            lines += ["No arguments.", ""]
            continue
        rows = []
        for argument in arguments:
            note = f" Set by {set_by[argument.name]}." if argument.name in set_by else ""
            rows.append(
                (
                    code(argument.name),
                    argument.type,
                    code(argument.default) if argument.default != "required" else "required",
                    (argument.description + note).strip(),
                )
            )
        extra = _loss_input_rows(cls) if category == LOSS_CLASS else []
        lines += _table(("argument", "type", "default", "description"), rows + extra) + [""]
    return lines


def _loss_input_rows(cls: Any) -> List[Tuple[str, ...]]:
    from tfreg.loss_inputs import declared_inputs  # noqa: PLC0415

    rows = []
    for spec in declared_inputs(cls):
        default = code(spec.default) if spec.default else "required"
        null = "; `null` leaves it out" if spec.optional else ""
        mask = "; `channels` / `combine` select mask channels" if spec.is_mask else ""
        rows.append(
            (
                code(spec.name),
                "tensor name or `{from, channels, combine}`",
                default,
                clean_text(f"input wiring, not an argument: {spec.doc}{null}{mask}"),
            )
        )
    return rows


def _summary(cls: Any) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    first = doc.split("\n\n")[0].replace("\n", " ")
    return first


def _methods_section(registry: Registry) -> List[str]:
    rows = []
    for name in registry.names(MODEL_CLASS):
        cls = registry.get(MODEL_CLASS, name)
        keys = tuple(getattr(cls, "config_keys", ("backbone", "loss")))
        required = tuple(getattr(cls, "required_config_keys", ("backbone", "loss")))
        categories = [
            c for c in getattr(cls, "loss_inputs", {}) if c not in getattr(cls, "ignored_loss_categories", ())
        ]
        groups = cls.parameter_group_names() if hasattr(cls, "parameter_group_names") else ("registration",)
        backbone_defaults = getattr(cls, "backbone_defaults", {})
        rows.append(
            (
                code(name),
                f"`{cls.__module__}.{cls.__qualname__}`",
                ", ".join(code(k) + ("" if k in required else " (optional)") for k in keys),
                choices(categories),
                choices(groups),
                code(yaml_value(backbone_defaults)) if backbone_defaults else "",
            )
        )
    return _table(
        ("method", "class", "`train` keys it reads", "loss categories", "parameter groups", "backbone defaults"), rows
    )


def _optimizer_section() -> List[str]:
    import keras  # noqa: PLC0415

    from tfreg.config.validate import (  # noqa: PLC0415
        _NON_NEGATIVE_OPTIMIZER_KEYS,
        _POSITIVE_OPTIMIZER_KEYS,
        _UNIT_INTERVAL_OPTIMIZER_KEYS,
    )

    renamed = ", ".join(f"`{old}` -> `{new}`" for old, new in D.V011_OPTIMIZER_NAMES.items())
    names = _optimizer_names()
    signatures = {n: inspect.signature(getattr(keras.optimizers, n).__init__).parameters for n in names}
    # the arguments of every optimizer with a learning rate (the wrappers, e.g. LossScaleOptimizer, have none)
    plain = [p for p in signatures.values() if "learning_rate" in p]
    common = set.intersection(*(set(p) for p in plain)) - {"self", "kwargs", "name"}
    lines = [
        "### Optimizers (`train.optimizer`)",
        "",
        "`{name: <class>, <argument>: <value>, ...}`: `name` is a class of `keras.optimizers`, the other keys are "
        "its constructor arguments (Keras' names and defaults; `train.optimizers.<group>` takes the same). "
        f"The validator refuses `learning_rate` outside [0, {MAX_LEARNING_RATE:g}], "
        f"{choices(_UNIT_INTERVAL_OPTIMIZER_KEYS)} outside [0, 1), {choices(_POSITIVE_OPTIMIZER_KEYS)} <= 0, "
        f"{choices(_NON_NEGATIVE_OPTIMIZER_KEYS)} < 0, and NaN or infinite numbers. DeepReg v0.1.1's lower-case "
        f"names are upgraded when the file is loaded ({renamed}).",
        "",
        "Arguments of every optimizer (defaults of `Adam`): "
        + ", ".join(f"`{k}` ({yaml_value(signatures['Adam'][k].default)})" for k in signatures["Adam"] if k in common)
        + ".",
        "",
    ]
    rows = []
    for name in names:
        own = [
            f"`{k}` ({'required' if p.default is p.empty else yaml_value(p.default)})"
            for k, p in signatures[name].items()
            if k not in common and k not in ("self", "kwargs", "name") and p.kind != p.VAR_KEYWORD
        ]
        rows.append((code(name), ", ".join(own)))
    lines += _table(("`name`", "its other arguments (defaults)"), rows) + [""]
    schedules = sorted(
        n
        for n in dir(keras.optimizers.schedules)
        if inspect.isclass(getattr(keras.optimizers.schedules, n))
        and issubclass(getattr(keras.optimizers.schedules, n), keras.optimizers.schedules.LearningRateSchedule)
        and getattr(keras.optimizers.schedules, n) is not keras.optimizers.schedules.LearningRateSchedule
    )
    lines += [
        "`learning_rate` may be a schedule `{name: <class>, ...}` of `keras.optimizers.schedules` (steps are "
        "optimizer steps):",
        "",
    ]
    rows = []
    for name in schedules:
        parameters = inspect.signature(getattr(keras.optimizers.schedules, name).__init__).parameters
        rows.append(
            (
                code(name),
                ", ".join(
                    f"`{k}`" + ("" if p.default is p.empty else f" ({yaml_value(p.default)})")
                    for k, p in parameters.items()
                    if k not in ("self", "name") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                ),
            )
        )
    return lines + _table(("`name`", "arguments (defaults)"), rows) + [""]


def render(registry: Registry = REGISTRY) -> str:
    """The whole page (Markdown)."""
    found = accepted_keys(registry)
    for path, extra in extra_keys(registry).items():
        found.setdefault(path, set()).update(extra)
    texts = key_texts(registry)
    stale = sorted(k for k in texts if tuple(k.split(".")) not in found)
    if stale:
        raise KeyError(
            f"tfreg/config/reference.py has texts for keys the validator does not accept: {', '.join(stale)}"
        )
    ordered = sorted(found, key=lambda p: (p[0] != "dataset", p))
    top = [p for p in ordered if len(p) == 1]
    dataset = [p for p in ordered if p[0] == "dataset" and len(p) > 1]
    dataset_structure = [p for p in dataset if p[1] in ("type", SPLIT)]
    dataset_loader = {p[1] for p in dataset if p[1] not in ("type", SPLIT)}
    train = [p for p in ordered if p[0] == "train" and len(p) > 1]

    lines = [
        "# Config reference",
        "",
        "<!-- Generated by `python -m tfreg.config.reference` from the code; do not edit. "
        "tests/config/test_reference.py fails when this page is stale. -->",
        "",
        "Every key of a tfreg (DeepReg 1.0) YAML config: its type, default, allowed values and which method, "
        "trainer or data-loader type reads it. Generated from the validator (`tfreg/config/validate.py`: the keys "
        "it accepts for every registered method, trainer and data-loader type), the constants of "
        "`tfreg/config/defaults.py`, and the registered components' constructors and docstrings "
        "(`tfreg.registry.REGISTRY`). Formulas of the losses and layers: [components.md](components.md); "
        "DeepReg v0.1.1 configs are upgraded when loaded ([migrating-from-deepreg.md](migrating-from-deepreg.md)).",
        "",
        "A key that is not listed is an error naming the key and the closest allowed one (a misspelt optional "
        'key would otherwise keep its default silently); "required where read" means required by the methods '
        "or trainers that read the key. A component's own registered classes (`REGISTRY.register_backbone`, "
        "...) take their constructors' arguments the same way.",
        "",
        "## Top level",
        "",
    ]
    header = ("key", "type", "default", "allowed", "read by", "meaning")
    lines += _table(header, _key_rows(top, found, texts, registry)) + [""]
    lines += ["## `dataset`", ""]
    lines += _table(header, _key_rows(dataset_structure, found, texts, registry)) + [""]
    lines += [
        "### Data-loader arguments (`dataset.<key>`)",
        "",
        "Every other key of `dataset` is an argument of the `dataset.type` loader's constructor. The types of "
        f"{choices(D.DATA_LOADER_REQUIRED_KEYS)} accept the keys listed for them by the validator; another "
        "registered type accepts its constructor's arguments.",
        "",
    ]
    loader_rows = _data_loader_rows(registry, found)
    missing = dataset_loader - {row[0].strip("`").split(".", 1)[1] for row in loader_rows}
    if missing:
        raise KeyError(f"dataset keys accepted by the validator but no data loader takes them: {sorted(missing)}")
    lines += _table(header, loader_rows) + [""]

    lines += ["## `train`", ""]
    sections: Dict[KeyPath, List[KeyPath]] = {}
    for path in train:
        parent = path[:2] if len(path) > 2 else ("train",)
        sections.setdefault(parent, []).append(path)
    lines += _table(header, _key_rows(sections.pop(("train",)), found, texts, registry)) + [""]
    for parent in sorted(sections):
        lines += [f"### `{'.'.join(parent)}`", ""]
        lines += _table(header, _key_rows(sections[parent], found, texts, registry)) + [""]

    lines += ["## Methods", "", "The registered models (`train.method`) and what each reads."]
    lines += [""] + _methods_section(registry) + [""]

    lines += ["## Components", ""]
    lines += _component_section(
        registry,
        BACKBONE_CLASS,
        "Backbones (`train.backbone`)",
        "`{name: <backbone>, <argument>: <value>, ...}`; also `train.segmenter.backbone`. Arguments marked "
        '"set by" are given by tfreg (a config value overrides them).',
    )
    lines += _component_section(
        registry,
        LOSS_CLASS,
        "Losses (`train.loss`)",
        f"An entry is `{{name: <loss>, weight: <number>, <argument>: <value>, ...}}`. `weight` (default "
        f"{D.DEFAULT_LOSS_WEIGHT}, with a warning) multiplies the loss in the total; `weight: 0` skips the entry. "
        'A loss that declares tensor inputs (rows "input wiring") is wired to the model\'s tensors by those '
        "keys (docs/composite-methods.md).",
    )
    lines += _component_section(
        registry,
        DATA_AUGMENTATION_CLASS,
        "Data augmentation (`train.preprocess.data_augmentation`)",
        "`{name: <augmentation>, <argument>: <value>, ...}` or a list of them, applied to training batches.",
    )
    lines += _component_section(
        registry,
        ATTENTION_CLASS,
        "Attention layers (`train.attention`)",
        "`{name: <layer>, <argument>: <value>, ...}` of the segmentation-guided methods.",
    )
    lines += _component_section(
        registry, TRAINER_CLASS, "Trainers (`train.trainer`)", "`{name: <trainer>, <argument>: <value>, ...}`."
    )
    lines += _optimizer_section()
    lines += [
        "### File loaders (`dataset.<split>.format`)",
        "",
        _registered(FILE_LOADER_CLASS, registry) + ": they take no config arguments.",
        "",
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help="the page (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs from the code")
    args = parser.parse_args(argv)
    text = render()
    path = Path(args.output)
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run python -m tfreg.config.reference", file=sys.stderr)
            return 1
        return 0
    if not path.parent.is_dir():
        parser.error(f"{path.parent} is not a folder; run from the repository root or give -o")
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "Argument",
    "KeyText",
    "Scenario",
    "accepted_keys",
    "argument_docs",
    "component_arguments",
    "configurable_arguments",
    "control_point_methods",
    "extra_keys",
    "key_texts",
    "main",
    "parse_args_section",
    "render",
    "scenarios",
]
