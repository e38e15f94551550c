"""Validation of a 1.0 config, before anything is built from it.

DeepReg found most config mistakes late (a KeyError deep in a data loader, a TypeError from a
constructor, after TensorFlow had started). :func:`validate_config` checks the whole config up front
and reports every problem at once, one line each, naming the key path, the bad value, the allowed
values (with a closest-match suggestion for names) and the file the value came from.

Constructor arguments that pass through to a registered class (backbone, loss, augmentation and
optimizer keyword arguments) are not checked here: the registry checks them against the constructor
when it builds the component.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tfreg.checks import LANDMARK_UNITS
from tfreg.config.defaults import (
    DATA_LOADER_OPTIONAL_KEYS,
    DATA_LOADER_REQUIRED_KEYS,
    DATA_LOADER_TYPE_OPTIONAL_KEYS,
    DATASET_SPLITS,
    DEFAULT_LOSS_WEIGHT,
    DEFAULT_METHOD,
    DEFAULT_NUM_PARALLEL_CALLS,
    DEFAULT_TRAINER,
    ENGINE_TRAIN_KEYS,
    IMAGE_SHAPE_LENGTHS,
    INTRA_GROUP_OPTIONS,
    KNOWN_PREPROCESS_KEYS,
    LOSS_CATEGORIES,
    PAIRS_LOADER_TYPES,
    PAIRS_OPTIONS,
    REQUIRED_PREPROCESS_KEYS,
    REQUIRED_TOP_LEVEL_KEYS,
    SAMPLE_LABEL_OPTIONS,
    SPLIT_KEYS,
    SPLIT_OPTIONAL_KEYS,
    UPDATE_FREQ_WORDS,
)
from tfreg.config.errors import ConfigError, KeyPath, format_key_path, suggestion
from tfreg.config.provenance import Provenance
from tfreg.loss_inputs import (
    LABEL_TENSORS,
    check_source_names,
    label_channel_need,
    sampled_label_problem,
    split_loss_entry,
)
from tfreg.registry import (
    BACKBONE_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    FILE_LOADER_CLASS,
    LOSS_CLASS,
    MODEL_CLASS,
    REGISTRY,
    TRAINER_CLASS,
    Registry,
)

#: The backbone keys of the normalization choice (``tfreg.layers.normalization.check_norm``).
NORM_KEYS = ("norm", "norm_groups")

logger = logging.getLogger(__name__)

_SHAPE_KEYS = ("moving_image_shape", "fixed_image_shape", "image_shape")
#: The largest learning rate accepted: above it every optimizer of keras.optimizers diverges on these losses.
MAX_LEARNING_RATE = 1.0
_UNIT_INTERVAL_OPTIMIZER_KEYS = ("beta_1", "beta_2", "momentum", "rho", "ema_momentum")
_POSITIVE_OPTIMIZER_KEYS = ("epsilon", "clipnorm", "clipvalue", "global_clipnorm")
_NON_NEGATIVE_OPTIMIZER_KEYS = ("weight_decay", "initial_accumulator_value")


# ---------------------------------------------------------------------- normalising
def normalize_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """Fill in the defaults DeepReg applied while building, returning a new config.

    - a loss entry without ``weight`` gets ``weight: 1.0``, with a warning (as DeepReg);
    - ``train.preprocess.num_parallel_calls`` defaults to -1 (``tf.data.AUTOTUNE``).

    Values of the wrong type are left as they are, for :func:`validate_config` to report.
    """
    config = copy.deepcopy(config)
    train = config.get("train") if isinstance(config, dict) else None
    if not isinstance(train, dict):
        return config
    loss = train.get("loss")
    if isinstance(loss, dict):
        # every category key, so that a composite model's own categories (e.g. segmentation) are filled too
        for category in loss:
            for path, entry in _loss_entries(loss.get(category), ("train", "loss", category)):
                if isinstance(entry, dict) and "weight" not in entry:
                    logger.warning("%s has no weight; using weight %s.", format_key_path(path), DEFAULT_LOSS_WEIGHT)
                    entry["weight"] = DEFAULT_LOSS_WEIGHT
    preprocess = train.get("preprocess")
    if isinstance(preprocess, dict):
        preprocess.setdefault("num_parallel_calls", DEFAULT_NUM_PARALLEL_CALLS)
    return config


def _loss_entries(value: Any, base: KeyPath) -> List[Tuple[KeyPath, Any]]:
    if isinstance(value, list):
        return [(base + (i,), v) for i, v in enumerate(value)]
    if value is None:
        return []
    return [(base, value)]


def _train_labeled(dataset: Any) -> Optional[bool]:
    """``dataset.train.labeled`` when it is a bool, else None (unknown: reported by the dataset checks)."""
    split = dataset.get("train") if isinstance(dataset, dict) else None
    labeled = split.get("labeled") if isinstance(split, dict) else None
    return labeled if isinstance(labeled, bool) else None


# ---------------------------------------------------------------------- small predicates
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _quoted_number_hint(value: Any) -> str:
    """A hint for numbers that YAML read as strings (quoted, or written in a form YAML 1.1 rejects)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (a string; write the number without quotes)"
    return ""


def _optimizer_names() -> List[str]:
    """The optimizer classes in ``keras.optimizers``; keras is imported here, not with the module."""
    return list(_optimizer_names_cached())


@functools.lru_cache(maxsize=1)
def _optimizer_names_cached() -> Tuple[str, ...]:
    import keras  # noqa: PLC0415 - config tooling must not pay for Keras/TensorFlow at import time

    base = keras.optimizers.Optimizer
    names = []
    for name in dir(keras.optimizers):
        obj = getattr(keras.optimizers, name)
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base:
            names.append(name)
    return tuple(sorted(names))


# ---------------------------------------------------------------------- the checker
def _required_arguments(cls: Any) -> List[str]:
    """The constructor arguments of ``cls`` without a default (``self``, ``*args`` and ``**kwargs`` aside), in
    order; empty when the constructor cannot be inspected. A config that leaves one out cannot be built."""
    try:
        parameters = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty]
    return [n for n in names if n != "self"]


class ConfigChecker:
    """Collects the problems of one config.

    Model and trainer classes receive it in their ``validate_train_config`` class methods, so that each
    checks the ``train`` keys it owns with the same messages: :meth:`error`, :meth:`warn`,
    :meth:`registered`, :meth:`mapping`, :meth:`check_component`, :meth:`check_loss`,
    :meth:`check_optimizer`, :meth:`positive_int`, :meth:`boolean`, :meth:`one_of`.
    """

    def __init__(self, provenance: Optional[Provenance], registry: Registry, check_dirs: bool):
        self.prov = provenance
        self.registry = registry
        self.check_dirs = check_dirs
        self.errors: List[str] = []
        #: ``dataset.sample_label`` (None: DeepReg's default, one label channel per sample)
        self.sample_label: Optional[str] = None

    # -- reporting
    def error(self, path: KeyPath, message: str) -> None:
        where = self.prov.describe(path) if self.prov is not None else ""
        self.errors.append(f"{format_key_path(path)}: {message}{where}")

    def warn(self, path: KeyPath, message: str) -> None:
        where = self.prov.describe(path) if self.prov is not None else ""
        logger.warning("%s: %s%s", format_key_path(path), message, where)

    # -- generic checks; each returns whether the value is fine
    def mapping(self, node: Dict[str, Any], path: KeyPath, key: str, hint: str = "") -> Optional[Dict]:
        """``node[key]`` when it is a dict; an error when it is missing or not a dict."""
        if key not in node:
            self.error(path, f"missing required key {key!r}{hint}")
            return None
        value = node[key]
        if not isinstance(value, dict):
            self.error(path + (key,), f"must be a mapping, got {_show(value)}")
            return None
        return value

    def registered(self, path: KeyPath, value: Any, category: str) -> bool:
        """``value`` is a name registered in ``category``."""
        names = self.registry.names(category)
        allowed = ", ".join(names) if names else "(none registered)"
        if not isinstance(value, str):
            self.error(path, f"must be a name registered in {category}, got {_show(value)}; allowed: {allowed}")
            return False
        if self.registry.contains(category, value):
            return True
        self.error(
            path, f"{value!r} is not registered in {category}; allowed: {allowed}.{suggestion(value, names)}".rstrip()
        )
        return False

    def one_of(self, path: KeyPath, value: Any, allowed: Sequence[str]) -> bool:
        if isinstance(value, str) and value in allowed:
            return True
        self.error(
            path,
            f"{_show(value)} is not allowed; allowed: {', '.join(allowed)}.{suggestion(value, allowed)}".rstrip(),
        )
        return False

    def positive_int(self, path: KeyPath, value: Any) -> bool:
        if _is_int(value) and value > 0:
            return True
        self.error(path, f"must be a positive integer, got {_show(value)}{_quoted_number_hint(value)}")
        return False

    def boolean(self, path: KeyPath, value: Any) -> bool:
        if isinstance(value, bool):
            return True
        self.error(path, f"must be true or false, got {_show(value)}")
        return False

    def misspelt_keys(
        self, path: KeyPath, node: Dict[str, Any], allowed: Sequence[str], explained: Sequence[str] = ()
    ) -> None:
        """An error for each key of ``node`` that is not in ``allowed`` (nor in ``explained``: keys another
        check reports with a better message): a misspelt optional key would otherwise keep its default."""
        for key in node:
            if key not in allowed and key not in explained:
                self.error(
                    path + (key,),
                    f"unknown key (a misspelling would silently keep the default).{suggestion(key, allowed)}",
                )

    def unknown_keys(self, path: KeyPath, node: Dict[str, Any], allowed: Sequence[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.error(
                    path + (key,),
                    f"unknown key {key!r} in {what}; allowed keys: {', '.join(allowed)}."
                    f"{suggestion(key, allowed)}".rstrip(),
                )

    def shape(self, path: KeyPath, value: Any) -> bool:
        lengths = " or ".join(str(n) for n in sorted(IMAGE_SHAPE_LENGTHS, reverse=True))
        if (
            isinstance(value, (list, tuple))
            and len(value) in IMAGE_SHAPE_LENGTHS
            and all(_is_int(v) and v > 0 for v in value)
        ):
            return True
        self.error(path, f"must be a list of {lengths} positive integers (3-D or 2-D), got {_show(value)}")
        return False

    # ------------------------------------------------------------------ sections
    def check(self, config: Any) -> None:
        if not isinstance(config, dict):
            self.error((), f"a config must be a mapping, got {type(config).__name__}")
            return
        hint = ""
        dataset = self.mapping(config, (), "dataset")
        train = self.mapping(config, (), "train")
        for key in config:
            if key not in REQUIRED_TOP_LEVEL_KEYS:
                self.warn((key,), f"unknown top-level key, ignored.{suggestion(key, REQUIRED_TOP_LEVEL_KEYS)}")
        if dataset is not None:
            self.check_dataset(dataset)
            self.sample_label = dataset.get("sample_label")
        if train is not None:
            if "model" in train and "method" not in train:
                hint = " (train.model is DeepReg v0.1.1's form: load the file with load_configs to upgrade it)"
            self.check_train(train, hint, _train_labeled(dataset))

    def check_dataset(self, dataset: Dict[str, Any]) -> None:
        base: KeyPath = ("dataset",)
        loader_type = dataset.get("type")
        if "type" not in dataset:
            names = ", ".join(self.registry.names(DATA_LOADER_CLASS)) or "(none registered)"
            self.error(base, f"missing required key 'type' (the data loader: {names})")
        else:
            self.registered(base + ("type",), loader_type, DATA_LOADER_CLASS)

        if isinstance(dataset.get("dir"), dict):
            self.error(
                base + ("dir",),
                "dataset.dir with train/valid/test is DeepReg v0.1.1's form; load the file with "
                "load_configs to upgrade it, or write dataset.<split>.dir",
            )

        for split in DATASET_SPLITS:
            self.check_split(dataset, split)

        # Non-split keys go to the data loader's constructor: only its own arguments are allowed.
        if isinstance(loader_type, str) and loader_type in DATA_LOADER_REQUIRED_KEYS:
            required = DATA_LOADER_REQUIRED_KEYS[loader_type]
            allowed = (
                DATASET_SPLITS
                + ("type",)
                + required
                + DATA_LOADER_OPTIONAL_KEYS
                + DATA_LOADER_TYPE_OPTIONAL_KEYS.get(loader_type, ())
            )
            loader_keys = {k: v for k, v in dataset.items() if k != "dir"}
            self.unknown_keys(base, loader_keys, allowed, f"a {loader_type} dataset")
            for key in required:
                if key not in dataset:
                    self.error(base, f"missing required key {key!r} for a {loader_type} dataset")
            self.check_loader_values(dataset, loader_type)

    def check_split(self, dataset: Dict[str, Any], split: str) -> None:
        path: KeyPath = ("dataset", split)
        value = dataset.get(split)
        empty_note = "a split that is absent, null or has an empty dir gets no loader"
        if value is None:
            if split == "train":
                self.error(path, f"the train split is required ({{dir, format, labeled}}); {empty_note}")
            return
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping with keys {', '.join(SPLIT_KEYS)}, got {_show(value)}")
            return
        self.unknown_keys(path, value, SPLIT_KEYS + SPLIT_OPTIONAL_KEYS, f"dataset split {split!r}")
        if value.get("pairs") is not None and self.one_of(path + ("pairs",), value["pairs"], PAIRS_OPTIONS):
            loader_type = dataset.get("type")
            if isinstance(loader_type, str) and loader_type in DATA_LOADER_REQUIRED_KEYS:
                if loader_type not in PAIRS_LOADER_TYPES:
                    self.error(
                        path + ("pairs",),
                        f"only the {', '.join(PAIRS_LOADER_TYPES)} data loader chooses its pairs this way, but "
                        f"dataset.type is {loader_type!r} (paired data has fixed pairs; the grouped loader "
                        "enumerates every pair with sample_image_in_group: false)",
                    )
        if "dir" not in value:
            self.error(path, "missing required key 'dir' (a folder or a list of folders)")
            return
        dirs = value["dir"]
        if dirs is None or dirs == "" or dirs == []:
            if split == "train":
                self.error(path + ("dir",), f"the train split needs a dir, got {_show(dirs)}")
            return
        self.check_dirs_value(path + ("dir",), dirs)
        if "format" not in value:
            names = ", ".join(self.registry.names(FILE_LOADER_CLASS)) or "(none registered)"
            self.error(path, f"missing required key 'format' (the file loader: {names})")
        else:
            self.registered(path + ("format",), value["format"], FILE_LOADER_CLASS)
        if "labeled" not in value:
            self.error(path, "missing required key 'labeled' (true or false)")
        else:
            self.boolean(path + ("labeled",), value["labeled"])

    def check_dirs_value(self, path: KeyPath, dirs: Any) -> None:
        if isinstance(dirs, str):
            items = [(path, dirs)]
        elif isinstance(dirs, list):
            items = [(path + (i,), d) for i, d in enumerate(dirs)]
        else:
            self.error(path, f"must be a folder path or a list of folder paths, got {_show(dirs)}")
            return
        for item_path, item in items:
            if not isinstance(item, str) or not item:
                self.error(item_path, f"must be a non-empty folder path, got {_show(item)}")
                continue
            if not self.check_dirs:
                continue
            expanded = os.path.expanduser(item)
            if not os.path.exists(expanded):
                self.error(item_path, f"{item!r} does not exist (relative paths are read from {os.getcwd()})")
            elif not os.path.isdir(expanded):
                self.error(item_path, f"{item!r} is not a folder")

    def check_loader_values(self, dataset: Dict[str, Any], loader_type: str) -> None:
        base: KeyPath = ("dataset",)
        for key in _SHAPE_KEYS:
            if key in dataset:
                self.shape(base + (key,), dataset[key])
        moving, fixed = dataset.get("moving_image_shape"), dataset.get("fixed_image_shape")
        if (
            loader_type == "paired"
            and isinstance(moving, (list, tuple))
            and isinstance(fixed, (list, tuple))
            and len(moving) != len(fixed)
        ):
            self.error(
                base + ("fixed_image_shape",),
                f"has {len(fixed)} dimensions but moving_image_shape has {len(moving)}; both must be 3-D or both 2-D",
            )
        if "intra_group_prob" in dataset:
            prob = dataset["intra_group_prob"]
            if not (_is_number(prob) and 0 <= prob <= 1):
                self.error(
                    base + ("intra_group_prob",),
                    f"must be a number in [0, 1], got {_show(prob)}{_quoted_number_hint(prob)}",
                )
            elif dataset.get("sample_image_in_group") is False and prob not in (0, 1):
                # Enumerating every pair cannot mix intra- and inter-group pairs at a rate.
                self.error(
                    base + ("intra_group_prob",),
                    f"must be 0 or 1 when sample_image_in_group is false, got {_show(prob)}",
                )
        if "intra_group_option" in dataset:
            self.one_of(base + ("intra_group_option",), dataset["intra_group_option"], INTRA_GROUP_OPTIONS)
        if "sample_image_in_group" in dataset:
            self.boolean(base + ("sample_image_in_group",), dataset["sample_image_in_group"])
        if dataset.get("sample_label") is not None:
            self.one_of(base + ("sample_label",), dataset["sample_label"], SAMPLE_LABEL_OPTIONS)
        seed = dataset.get("seed")
        if seed is not None and not _is_int(seed):
            self.error(base + ("seed",), f"must be an integer or null, got {_show(seed)}{_quoted_number_hint(seed)}")
        if dataset.get("num_labels") is not None:
            # the structures of integer label maps (0 = background, 1..K), read as K one-hot channels
            self.positive_int(base + ("num_labels",), dataset["num_labels"])
        self.check_landmark_keys(dataset)

    def check_landmark_keys(self, dataset: Dict[str, Any]) -> None:
        """``landmarks`` (bool), ``max_landmarks`` (positive int or null), ``landmark_roi_size`` (odd or null),
        ``landmark_units`` (``physical`` or ``voxel``)."""
        base: KeyPath = ("dataset",)
        if "landmarks" in dataset:
            self.boolean(base + ("landmarks",), dataset["landmarks"])
        if "landmark_units" in dataset:
            self.one_of(base + ("landmark_units",), dataset["landmark_units"], LANDMARK_UNITS)
        if dataset.get("max_landmarks") is not None:
            self.positive_int(base + ("max_landmarks",), dataset["max_landmarks"])
        size = dataset.get("landmark_roi_size")
        if size is not None:
            if not (_is_int(size) and size > 0 and size % 2 == 1):
                self.error(
                    base + ("landmark_roi_size",),
                    f"must be a positive odd integer (the ROI cube's edge in voxels, WSSAMNet: 9) or null, got "
                    f"{_show(size)}",
                )
            elif dataset.get("landmarks") is not True:
                self.error(base + ("landmark_roi_size",), "ROI maps are built around landmarks: set landmarks: true")

    def check_train(self, train: Dict[str, Any], hint: str, labeled: Optional[bool] = None) -> None:
        """The engine's ``train`` keys here; the model class and the trainer class check their own keys
        (``validate_train_config``), so a registered method or trainer brings its own rules."""
        base: KeyPath = ("train",)
        method = train.get("method")
        if "method" not in train:
            self.error(base, f"missing required key 'method'{hint}")
        else:
            self.registered(base + ("method",), method, MODEL_CLASS)
        model_cls = self._class_or_default(MODEL_CLASS, method, DEFAULT_METHOD)
        trainer_cfg = train.get("trainer")
        trainer_name = trainer_cfg.get("name") if isinstance(trainer_cfg, dict) else DEFAULT_TRAINER
        trainer_cls = self._class_or_default(TRAINER_CLASS, trainer_name, DEFAULT_TRAINER)

        # A user's model class that predates this contract reads DeepReg's keys (backbone, loss).
        model_keys = tuple(getattr(model_cls, "config_keys", ("backbone", "loss")))
        model_required = tuple(getattr(model_cls, "required_config_keys", ("backbone", "loss")))
        known = ENGINE_TRAIN_KEYS + model_keys + tuple(trainer_cls.config_keys)
        # An error, not a warning: a misspelt key would otherwise silently leave its setting at the default.
        # keys another check already explains (DeepReg v0.1.1's train.model, alternating's train.optimizer)
        explained = {"model"} if hint else set()
        if "optimizers" in trainer_cls.config_keys:
            explained.add("optimizer")
        self.misspelt_keys(base, train, known, explained)
        for key in model_required + tuple(trainer_cls.required_config_keys):
            if key not in train:
                self.error(base, f"missing required key {key!r}{hint}")
        shown = method if isinstance(method, str) else DEFAULT_METHOD
        if hasattr(model_cls, "validate_train_config"):
            model_cls.validate_train_config(self, train, labeled, shown)
        else:
            if "backbone" in train:
                self.check_component(
                    base + ("backbone",),
                    train["backbone"],
                    BACKBONE_CLASS,
                    model_keys=getattr(model_cls, "backbone_model_keys", ()),
                )
            if train.get("loss") is not None:
                self.check_loss(train["loss"], label_categories=("label",))
        backbone = train.get("backbone")
        if isinstance(backbone, dict) and backbone.get("control_points") is not None:
            self.check_control_points(
                base + ("backbone", "control_points"), backbone["control_points"], method, model_cls, backbone
            )
        if isinstance(backbone, dict) and any(key in backbone for key in NORM_KEYS):
            self.check_backbone_norm(base + ("backbone",), backbone)
        if trainer_cfg is not None:
            self.check_component(base + ("trainer",), trainer_cfg, TRAINER_CLASS, build=True)
        trainer_cls.validate_train_config(self, train, model_cls)

        preprocess = self.mapping(train, base, "preprocess")
        if preprocess is not None:
            self.check_preprocess(preprocess)
        for key in ("epochs", "save_period"):
            if key not in train:
                self.error(base, f"missing required key {key!r} (a positive integer)")
            else:
                self.positive_int(base + (key,), train[key])
        if train.get("update_freq") is not None:
            freq = train["update_freq"]
            if not ((isinstance(freq, str) and freq in UPDATE_FREQ_WORDS) or (_is_int(freq) and freq > 0)):
                self.error(
                    base + ("update_freq",),
                    f"must be {' or '.join(repr(w) for w in UPDATE_FREQ_WORDS)} or a positive integer "
                    f"(batches), got {_show(freq)}",
                )
        if train.get("init_from") is not None:
            self.check_init_from(base + ("init_from",), train["init_from"])
        if "mixed_precision" in train:
            mixed = train["mixed_precision"]
            if not isinstance(mixed, bool):
                self.error(base + ("mixed_precision",), f"must be true or false, got {_show(mixed)}")
            elif mixed and not trainer_cls.supports_mixed_precision:
                self.error(
                    base + ("mixed_precision",),
                    f"trainer {trainer_name!r} has no loss scaling (only Keras fit has, trainer 'fit' or "
                    "'progressive'); use one of those or leave mixed_precision out",
                )

    def _class_or_default(self, category: str, name: Any, default: str):
        """The class registered as ``name``, or the default's when ``name`` is missing or unknown (its
        error is reported elsewhere), so that the remaining keys are still checked."""
        if isinstance(name, str) and self.registry.contains(category, name):
            return self.registry.get(category, name)
        return self.registry.get(category, default)

    def check_component(
        self, path: KeyPath, value: Any, category: str, build: bool = False, model_keys: Sequence[str] = ()
    ) -> None:
        """``value`` is ``{name, **kwargs}`` with a registered name; with ``build``, its constructor is
        also run on the keyword arguments (for light components such as trainers) and its error reported.
        Without ``build``, each key must be one of the constructor's arguments (where they can be known) or
        of ``model_keys`` (keys the model takes out before building, such as ``backbone.control_points``), so
        that a misspelt argument of a heavy component (a backbone) is reported here and not at build time."""
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {_show(value)}")
            return
        if "name" not in value:
            self.error(path, "missing required key 'name'")
            return
        if not self.registered(path + ("name",), value["name"], category):
            return
        if build:
            try:
                self.registry.build_from_config(category, value)
            except ValueError as err:
                self.error(path, str(err))
            return
        accepted = self.registry.accepted_arguments(category, value["name"])
        if accepted is not None:
            allowed = ["name", *model_keys, *accepted]
            # check_backbone_norm reports a norm key a backbone lacks, naming the backbones that take it
            explained = NORM_KEYS if category == BACKBONE_CLASS else ()
            for key in value:
                if key not in allowed and key not in explained:
                    self.error(
                        path + (key,),
                        f"{value['name']!r} takes no argument {key!r}; it takes: {', '.join(sorted(accepted))}."
                        f"{suggestion(str(key), allowed)}".rstrip(),
                    )

    def check_init_from(self, path: KeyPath, value: Any) -> None:
        """``{path: .../save/ckpt-N, parts: [names] | {target: source}}``, or a list of them (parts from several
        checkpoints, e.g. one pre-trained segmenter per modality); the files are checked when loaded."""
        if isinstance(value, list) and value:
            for i, item in enumerate(value):
                self.check_init_from(path + (i,), item)
            return
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping {{path, parts}}, got {_show(value)}")
            return
        self.unknown_keys(path, value, ("path", "parts"), "train.init_from")
        if not isinstance(value.get("path"), str) or not value.get("path"):
            self.error(path + ("path",), f"must be a checkpoint path .../save/ckpt-N, got {_show(value.get('path'))}")
        parts = value.get("parts")
        ok = (isinstance(parts, list) and parts and all(isinstance(p, str) and p for p in parts)) or (
            isinstance(parts, dict)
            and parts
            and all(isinstance(k, str) and isinstance(v, str) for k, v in parts.items())
        )
        if not ok:
            self.error(
                path + ("parts",),
                "must be a list of sub-network names (e.g. [backbone]) or a mapping {target: source}, "
                f"got {_show(parts)}",
            )

    def check_control_points(self, path: KeyPath, value: Any, method: Any, model_cls: type, backbone: dict) -> None:
        """``backbone.control_points``: the model must warp with its backbone's dense field (the model class'
        ``supports_control_points``), the backbone must not be affine, and the spacing is DeepReg's positive
        int or one per axis."""
        if not getattr(model_cls, "supports_control_points", False):
            methods = sorted(
                name
                for name in self.registry.names(MODEL_CLASS)
                if getattr(self.registry.get(MODEL_CLASS, name), "supports_control_points", False)
            )
            self.error(path, f"applies only to methods {', '.join(methods)}, not {method!r}")
            return
        name = backbone.get("name")
        if isinstance(name, str) and self.registry.contains(BACKBONE_CLASS, name):
            if getattr(self.registry.get(BACKBONE_CLASS, name), "affine_output", False):
                self.error(path, f"does not apply to the affine backbone {name!r} (its field is smooth already)")
                return
        if _is_int(value) and value > 0:
            return
        if (
            isinstance(value, (list, tuple))
            and len(value) in IMAGE_SHAPE_LENGTHS
            and all(_is_int(v) and v > 0 for v in value)
        ):
            return
        self.error(path, f"must be a positive integer or a list of positive integers, got {_show(value)}")

    def check_backbone_norm(self, path: KeyPath, backbone: dict) -> None:
        """``backbone.norm`` and ``backbone.norm_groups``: the backbone must take them; ``norm`` must be one of
        the class' ``norm_choices`` (where it declares them); ``norm_groups`` a positive integer, only with
        ``norm: group``. Whether the count divides every layer's channels depends on the architecture: the
        constructor checks it when the model is built, before the run writes anything."""
        name = backbone.get("name")
        if not (isinstance(name, str) and self.registry.contains(BACKBONE_CLASS, name)):
            return  # the name's own error is reported by check_component
        accepted = self.registry.accepted_arguments(BACKBONE_CLASS, name)
        refused = False
        for key in NORM_KEYS:
            if key in backbone and accepted is not None and key not in accepted:
                with_key = [
                    other
                    for other in self.registry.names(BACKBONE_CLASS)
                    if key in (self.registry.accepted_arguments(BACKBONE_CLASS, other) or ())
                ]
                self.error(
                    path + (key,),
                    f"backbone {name!r} takes no {key!r} (no normalization choice); backbones taking it: "
                    f"{', '.join(with_key) or '(none registered)'}",
                )
                refused = True
        if refused:
            return
        choices = getattr(self.registry.get(BACKBONE_CLASS, name), "norm_choices", None)
        norm = backbone.get("norm", "batch")
        if "norm" in backbone and choices is not None and not self.one_of(path + ("norm",), norm, choices):
            return
        groups = backbone.get("norm_groups")
        if groups is None:
            return
        if norm != "group":
            self.error(
                path + ("norm_groups",),
                f"applies only to norm: group, got norm: {norm} (leave norm_groups out, or set norm: group)",
            )
        else:
            self.positive_int(path + ("norm_groups",), groups)

    def check_loss(
        self,
        loss: Any,
        categories: Sequence[str] = LOSS_CATEGORIES,
        tensor_names: Optional[Sequence[str]] = None,
        owner: str = "the model",
        ignored: Sequence[str] = (),
        label_categories: Sequence[str] = (),
    ) -> None:
        """``train.loss`` for a model with loss ``categories`` whose losses may be wired to ``tensor_names``.

        Checks each entry's name and weight, and the tensor inputs the loss declares
        (:mod:`tfreg.loss_inputs`): a required input that is not wired, or one wired to a tensor the
        model does not produce, is an error naming the loss, the input and the model. Categories in
        ``ignored`` are accepted with a warning (the model skips them). In ``label_categories`` (those
        scoring the data's labels), a loss that needs every label channel of a sample is an error unless
        ``dataset.sample_label`` is ``stack``.
        """
        base: KeyPath = ("train", "loss")
        if not isinstance(loss, dict):
            self.error(base, f"must be a mapping, got {_show(loss)}")
            return
        for key in loss:
            if key in ignored and loss[key] is not None:
                self.warn(base + (key,), f"not used by {owner} (its loss categories: {', '.join(categories)}): skipped")
        # the categories are the model's: a composite model's own (e.g. segmentation) are allowed here
        self.unknown_keys(base, {k: v for k, v in loss.items() if k not in ignored}, tuple(categories), "train.loss")
        for category in categories:
            value = loss.get(category)
            if value is None:
                # DeepReg warns about a missing category when building and skips it.
                continue
            if not isinstance(value, (dict, list)):
                self.error(
                    base + (category,),
                    f"must be a loss {{name, weight, ...}} or a list of them, got {_show(value)}",
                )
                continue
            for path, entry in _loss_entries(value, base + (category,)):
                self.check_loss_entry(path, entry, tensor_names, owner, category in label_categories)

    def check_loss_entry(
        self,
        path: KeyPath,
        entry: Any,
        tensor_names: Optional[Sequence[str]],
        owner: str,
        scores_labels: bool = False,
    ) -> None:
        if not isinstance(entry, dict):
            self.error(path, f"must be a loss {{name, weight, ...}}, got {_show(entry)}")
            return
        if "weight" not in entry:
            self.error(path, "missing required key 'weight' (normalize_config fills in 1.0)")
        elif not _is_number(entry["weight"]):
            self.error(
                path + ("weight",),
                f"must be a number, got {_show(entry['weight'])}{_quoted_number_hint(entry['weight'])}",
            )
        if "name" not in entry:
            self.error(path, "missing required key 'name'")
            return
        if not self.registered(path + ("name",), entry["name"], LOSS_CLASS):
            return
        loss_cls = self.registry.get(LOSS_CLASS, entry["name"])
        split = split_loss_entry(loss_cls, entry)
        for keys, message in split.problems:
            self.error(path + keys, message)
        for key in _required_arguments(loss_cls):
            if key not in split.kwargs:
                self.error(
                    path,
                    f"missing required key {key!r}: loss {entry['name']!r} cannot be built without it"
                    + (" (the auto-encoder's encoder: the path of a .keras file)" if key == "encoder" else ""),
                )
        if scores_labels:
            problem = sampled_label_problem(
                entry["name"], label_channel_need(loss_cls, split.kwargs), self.sample_label
            )
            if problem:
                self.error(path, problem)
        for key, source in split.inputs.items():
            if source.channels is not None and source.name in LABEL_TENSORS and self.sample_label != "stack":
                self.error(
                    path + (key,),
                    f"selects channels {list(source.channels)} of {source.name!r}, but the data gives one label "
                    f"channel per sample (dataset.sample_label: {self.sample_label or 'sample/all, the default'}); set "
                    "dataset.sample_label: stack to give every label channel in each sample",
                )
        if tensor_names is None:
            return
        for key, tensor in check_source_names(split.inputs, tensor_names):
            self.error(
                path + (key,),
                f"{entry['name']!r} takes {key!r} from {tensor!r}, which {owner} does not produce for this data; "
                f"available: {', '.join(sorted(tensor_names))}",
            )

    def check_preprocess(self, preprocess: Dict[str, Any]) -> None:
        base: KeyPath = ("train", "preprocess")
        # e.g. data_augmentaton: null would leave augmentation on
        self.misspelt_keys(base, preprocess, KNOWN_PREPROCESS_KEYS)
        for key in REQUIRED_PREPROCESS_KEYS:
            if key not in preprocess:
                self.error(base, f"missing required key {key!r} (a positive integer)")
            else:
                self.positive_int(base + (key,), preprocess[key])
        calls = preprocess.get("num_parallel_calls", DEFAULT_NUM_PARALLEL_CALLS)
        if not (_is_int(calls) and (calls == -1 or calls > 0)):
            self.error(
                base + ("num_parallel_calls",),
                f"must be -1 (autotune) or a positive integer, got {_show(calls)}{_quoted_number_hint(calls)}",
            )
        augmentation = preprocess.get("data_augmentation")
        if augmentation is None:
            return
        path = base + ("data_augmentation",)
        if not isinstance(augmentation, (dict, list)):
            self.error(
                path, f"must be an augmentation {{name, ...}}, a list of them, or null, got {_show(augmentation)}"
            )
            return
        for entry_path, entry in _loss_entries(augmentation, path):
            if not isinstance(entry, dict):
                self.error(entry_path, f"must be an augmentation {{name, ...}}, got {_show(entry)}")
            elif "name" not in entry:
                self.error(entry_path, "missing required key 'name'")
            else:
                self.registered(entry_path + ("name",), entry["name"], DATA_AUGMENTATION_CLASS)

    def check_optimizer(self, path: KeyPath, optimizer: Any) -> None:
        """``optimizer`` is ``{name: <keras.optimizers class>, **kwargs}`` (kwargs checked when built)."""
        if not isinstance(optimizer, dict):
            self.error(path, f"must be a mapping {{name, ...}}, got {_show(optimizer)}")
            return
        if "name" not in optimizer:
            self.error(path, "missing required key 'name' (a keras.optimizers class such as Adam)")
            return
        name = optimizer["name"]
        allowed = _optimizer_names()
        self.check_optimizer_numbers(path, optimizer)
        if isinstance(optimizer.get("learning_rate"), dict):
            self.check_learning_rate_schedule(path + ("learning_rate",), optimizer["learning_rate"])
        if isinstance(name, str) and name in allowed:
            return
        self.error(
            path + ("name",),
            f"{_show(name)} is not an optimizer class in keras.optimizers; allowed: {', '.join(allowed)}."
            f"{suggestion(name, allowed)}".rstrip(),
        )

    def check_learning_rate_schedule(self, path: KeyPath, schedule: Dict[str, Any]) -> None:
        """``{name: <keras.optimizers.schedules class>, **kwargs}``, built here so that a bad name or argument
        is reported before training (the build is cheap: a few Python attributes)."""
        from tfreg.engine.trainers.base import build_learning_rate_schedule  # noqa: PLC0415 - imports Keras

        key = ".".join(str(p) for p in path)
        try:
            build_learning_rate_schedule(schedule, key)
        except ValueError as err:
            self.error(path, str(err).removeprefix(f"{key}: "))

    def check_optimizer_numbers(self, path: KeyPath, optimizer: Dict[str, Any]) -> None:
        """Refuse optimizer settings that can only give a NaN or a diverging run (NaN, inf, a negative or
        huge learning rate, momentum terms outside [0, 1)); a schedule (a mapping) is checked when built."""
        for key, value in optimizer.items():
            if key == "name" or isinstance(value, (dict, str, bool)) or value is None:
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                self.error(path + (key,), f"must be a finite number, got {_show(value)}")
                continue
            if key == "learning_rate" and not 0 <= value <= MAX_LEARNING_RATE:
                self.error(
                    path + (key,),
                    f"must be in [0, {MAX_LEARNING_RATE:g}], got {_show(value)} (a negative rate climbs the loss, "
                    "a larger one diverges)",
                )
            elif key in _UNIT_INTERVAL_OPTIMIZER_KEYS and not 0 <= value < 1:
                self.error(path + (key,), f"must be in [0, 1), got {_show(value)}")
            elif key in _POSITIVE_OPTIMIZER_KEYS and not value > 0:
                self.error(path + (key,), f"must be > 0, got {_show(value)}")
            elif key in _NON_NEGATIVE_OPTIMIZER_KEYS and not value >= 0:
                self.error(path + (key,), f"must be >= 0, got {_show(value)}")


def validate_config(
    config: Dict[str, Any],
    provenance: Optional[Provenance] = None,
    registry: Registry = REGISTRY,
    check_dirs: bool = True,
) -> Dict[str, Any]:
    """Check a (loaded, upgraded) 1.0 config and return its normalised copy.

    The config is first normalised (:func:`normalize_config`: missing loss weights become 1.0 with a
    warning, ``num_parallel_calls`` defaults to -1); then every check runs and all problems are
    reported together.

    Args:
        config: the config, e.g. from :func:`~tfreg.config.loader.load_configs`; not modified.
        provenance: from :func:`~tfreg.config.loader.load_configs_with_provenance`, so that errors
            name the file a value came from.
        registry: where component names are looked up (tests pass a copy with their own classes).
        check_dirs: check that the dataset dirs exist; False for tooling that only reads configs.

    Returns:
        The normalised config.

    Raises:
        ConfigError: listing every problem, one line each:
            ``<key path>: <what is wrong, the value, the allowed values> (from <file>)``.
    """
    normalized = normalize_config(config)
    checker = ConfigChecker(provenance, registry, check_dirs)
    checker.check(normalized)
    if checker.errors:
        raise ConfigError(checker.errors)
    return normalized
