"""The upgrade of DeepReg v0.1.1 configs to the 1.0 form.

DeepReg 1.0 ran this on every merged config, so configs written for v0.1.1 (and the 1.0 configs that
leave out ``train.preprocess.data_augmentation``) keep working. Each rule below touches only the keys
of the old form, so running the upgrade on a 1.0 config changes nothing, and running it twice is the
same as running it once.

Where a merged config mixes both forms (a v0.1.1 file overridden by a 1.0 file), the keys already in
the 1.0 form win over the upgraded ones: they came from the file written for the current version.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

from tfreg.config.defaults import (
    DATASET_SPLITS,
    DEFAULT_DATA_AUGMENTATION,
    V011_ENERGY_TYPES,
    V011_LABEL_WRAPPERS,
    V011_LOSS_ARGUMENTS,
    V011_LOSS_NAMES,
    V011_OPTIMIZER_NAMES,
)
from tfreg.config.errors import KeyPath
from tfreg.config.provenance import Provenance

logger = logging.getLogger(__name__)

#: The dataset keys v0.1.1 kept at the top of ``dataset`` and 1.0 keeps per split.
_V011_SHARED_SPLIT_KEYS = ("format", "labeled")


def upgrade_config(config: Dict[str, Any], provenance: Optional[Provenance] = None) -> Tuple[Dict[str, Any], bool]:
    """Upgrade a merged config from DeepReg v0.1.1 to the 1.0 form.

    The rules (each applies only where its old form is present):

    - ``dataset: {dir: {train, valid, test}, format, labeled}`` becomes per-split dicts
      ``dataset.<split>: {dir, format, labeled}``;
    - ``train.model: {method, backbone: X, X: {...}}`` becomes ``train.method`` and
      ``train.backbone: {name: X, ...}``; for ``global``, ``extract_levels`` becomes ``depth = max``;
    - ``train.loss.dissimilarity.*`` moves up one level;
    - a loss entry ``{name: X, weight, X: {args}}`` is flattened to ``{name: X, weight, args...}``;
    - label ``{name: single_scale, single_scale: {loss_type}}`` becomes ``{name: loss_type}``, and
      ``multi_scale: {loss_type, loss_scales}`` becomes ``name`` + ``scales``;
    - loss names ``mean-squared`` -> ``ssd``, ``dice_generalized`` -> ``dice``; the argument
      ``neg_weight`` -> ``background_weight``;
    - ``regularization.energy_type``: ``bending`` -> ``name: bending``; ``gradient-l2`` /
      ``gradient-l1`` -> ``name: gradient`` with ``l1: false`` / ``true``;
    - ``optimizer: {name: adam|sgd|rms, adam: {...}}`` becomes ``{name: Adam|SGD|RMSprop, ...}``;
    - an absent ``train.preprocess.data_augmentation`` becomes ``{name: affine}`` (DeepReg's implicit
      default; an explicit ``null`` stays ``null``, meaning no augmentation).

    Args:
        config: the merged config; not modified.
        provenance: when given, updated in place so that moved keys still name their file.

    Returns:
        ``(new_config, changed)``: the upgraded deep copy, and whether any rule changed anything.
    """
    new, notes = upgrade_config_with_notes(config, provenance)
    return new, bool(notes)


def upgrade_config_with_notes(
    config: Dict[str, Any], provenance: Optional[Provenance] = None
) -> Tuple[Dict[str, Any], List[str]]:
    """Like :func:`upgrade_config`, but returns one human-readable note per change made (empty: none)."""
    if not isinstance(config, dict):
        return config, []
    new = copy.deepcopy(config)
    prov = provenance if provenance is not None else Provenance()
    notes: List[str] = []
    for rule in _RULES:
        rule(new, prov, notes)
    if new == config:
        # A rule may have rewritten something into an equal value; that is no change.
        notes = []
    return new, notes


# ---------------------------------------------------------------------- helpers
def _fill(target: Dict[str, Any], values: Dict[str, Any]) -> None:
    """Add the keys of ``values`` that ``target`` lacks (1.0 keys already present win)."""
    for key, value in values.items():
        target.setdefault(key, value)


def _dict_at(config: Dict[str, Any], *path: str) -> Optional[Dict[str, Any]]:
    node: Any = config
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, dict) else None


def _loss_entries(loss: Dict[str, Any], category: str) -> List[Tuple[KeyPath, Dict[str, Any]]]:
    """The dict entries of a loss category (a dict or a list of dicts) with their key paths."""
    value = loss.get(category)
    base: KeyPath = ("train", "loss", category)
    if isinstance(value, dict):
        return [(base, value)]
    if isinstance(value, list):
        return [(base + (i,), v) for i, v in enumerate(value) if isinstance(v, dict)]
    return []


def _train_loss_entries(config: Dict[str, Any], categories: Tuple[str, ...]):
    """``(category, key path, entry)`` for every dict entry of ``train.loss.<category>``, in order."""
    loss = _dict_at(config, "train", "loss")
    for category in categories if loss is not None else ():
        for path, entry in _loss_entries(loss, category):
            yield category, path, entry


def _hoist(entry: Dict[str, Any], section: str, args: Dict[str, Any], path: KeyPath, prov: Provenance) -> None:
    """Move the keys of ``entry[section]`` (already popped as ``args``) up into ``entry``.

    Keys already in ``entry`` win (a 1.0 key overrides the v0.1.1 one it replaces).
    """
    for key, value in args.items():
        entry.setdefault(key, value)
        prov.move(path + (section, key), path + (key,))
    prov.forget(path + (section,))


# ---------------------------------------------------------------------- rules
def _upgrade_dataset(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    dataset = _dict_at(config, "dataset")
    if dataset is None or not isinstance(dataset.get("dir"), dict):
        return
    dirs = dataset.pop("dir")
    shared = {key: dataset.pop(key) for key in _V011_SHARED_SPLIT_KEYS if key in dataset}
    # Known splits first, in their usual order; any other key becomes a split the validator rejects.
    splits = [s for s in DATASET_SPLITS if s in dirs] + [s for s in dirs if s not in DATASET_SPLITS]
    for split in splits:
        upgraded = {"dir": dirs[split], **copy.deepcopy(shared)}
        existing = dataset.get(split)
        if isinstance(existing, dict):
            _fill(existing, upgraded)
        else:
            dataset[split] = upgraded
        prov.move(("dataset", "dir", split), ("dataset", split, "dir"))
        for key in shared:
            prov.move(("dataset", key), ("dataset", split, key), keep=True)
    prov.forget(("dataset", "dir"))
    for key in shared:
        prov.forget(("dataset", key))
    notes.append("dataset.dir.<split>, dataset.format and dataset.labeled moved into dataset.<split>")


def _upgrade_model(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    train = _dict_at(config, "train")
    if train is None or not isinstance(train.get("model"), dict):
        return
    model = train.pop("model")
    if "method" in model:
        train.setdefault("method", model.pop("method"))
        prov.move(("train", "model", "method"), ("train", "method"))
    name = model.pop("backbone", None)
    backbone: Optional[Dict[str, Any]] = None
    if isinstance(name, dict):
        # Already {name, ...}: only the wrapping train.model was old.
        backbone = name
        prov.move(("train", "model", "backbone"), ("train", "backbone"))
    elif name is not None:
        args = model.pop(name, None) if isinstance(name, str) else None
        backbone = {"name": name}
        prov.move(("train", "model", "backbone"), ("train", "backbone", "name"))
        if isinstance(args, dict):
            for key, value in args.items():
                backbone.setdefault(key, value)
                prov.move(("train", "model", name, key), ("train", "backbone", key))
        if name == "global" and "extract_levels" in backbone:
            depth = _max_level(backbone["extract_levels"])
            if depth is not None:
                # GlobalNet is encoder-only: only the deepest level matters.
                del backbone["extract_levels"]
                backbone.setdefault("depth", depth)
                prov.move(("train", "backbone", "extract_levels"), ("train", "backbone", "depth"))
    if backbone is not None:
        existing = train.get("backbone")
        if isinstance(existing, dict):
            _fill(existing, backbone)
        else:
            train["backbone"] = backbone
    if model:
        # v0.1.1 configs often carried sections for every backbone; only the chosen one is used.
        logger.warning("Upgrading train.model: dropping unused key(s) %s", sorted(map(str, model)))
    prov.forget(("train", "model"))
    notes.append("train.model became train.method and train.backbone")


def _max_level(levels: Any) -> Optional[int]:
    if isinstance(levels, bool):
        return None
    if isinstance(levels, int):
        return levels
    if (
        isinstance(levels, (list, tuple))
        and levels
        and all(isinstance(v, int) and not isinstance(v, bool) for v in levels)
    ):
        return max(levels)
    return None


def _upgrade_dissimilarity(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    loss = _dict_at(config, "train", "loss")
    if loss is None or "dissimilarity" not in loss:
        return
    dissimilarity = loss.pop("dissimilarity")
    if isinstance(dissimilarity, dict):
        for key, value in dissimilarity.items():
            if key not in loss:
                loss[key] = value
                prov.move(("train", "loss", "dissimilarity", key), ("train", "loss", key))
    prov.forget(("train", "loss", "dissimilarity"))
    notes.append("train.loss.dissimilarity.* moved up to train.loss")


def _upgrade_label_wrappers(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    for _, path, entry in _train_loss_entries(config, ("label",)):
        wrapper_name = entry.get("name")
        if wrapper_name not in V011_LABEL_WRAPPERS:
            continue
        wrapper = entry.pop(wrapper_name, None)
        wrapper = wrapper if isinstance(wrapper, dict) else {}
        # The other wrapper section was unused in v0.1.1 (only `name` chose between them).
        for other in V011_LABEL_WRAPPERS:
            if other != wrapper_name:
                entry.pop(other, None)
                prov.forget(path + (other,))
        del entry["name"]
        if "loss_type" in wrapper:
            entry["name"] = wrapper.pop("loss_type")
            prov.move(path + (wrapper_name, "loss_type"), path + ("name",))
        if "loss_scales" in wrapper:
            entry.setdefault("scales", wrapper.pop("loss_scales"))
            prov.move(path + (wrapper_name, "loss_scales"), path + ("scales",))
        _hoist(entry, wrapper_name, wrapper, path, prov)
        notes.append(f"{wrapper_name} label loss became name/scales")


def _upgrade_nested_arguments(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    for category, path, entry in _train_loss_entries(config, ("image", "label")):
        name = entry.get("name")
        if not isinstance(name, str) or not isinstance(entry.get(name), dict):
            continue
        _hoist(entry, name, entry.pop(name), path, prov)
        notes.append(f"{category} loss arguments under {name!r} flattened")


def _upgrade_loss_renames(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    for _, path, entry in _train_loss_entries(config, ("image", "label")):
        name = entry.get("name")
        if isinstance(name, str) and name in V011_LOSS_NAMES:
            entry["name"] = V011_LOSS_NAMES[name]
            notes.append(f"loss name {name!r} renamed {entry['name']!r}")
        for old, new in V011_LOSS_ARGUMENTS.items():
            if old in entry:
                value = entry.pop(old)
                entry.setdefault(new, value)
                prov.move(path + (old,), path + (new,))
                notes.append(f"loss argument {old!r} renamed {new!r}")


def _upgrade_energy_type(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    for _, path, entry in _train_loss_entries(config, ("regularization",)):
        if "energy_type" not in entry or "name" in entry:
            continue
        energy = entry.pop("energy_type")
        # An unknown energy type becomes the name, so the validator reports it with the allowed names.
        name, extra = V011_ENERGY_TYPES.get(energy, (energy, {})) if isinstance(energy, str) else (energy, {})
        entry["name"] = name
        for key, value in extra.items():
            entry.setdefault(key, value)
        prov.move(path + ("energy_type",), path + ("name",))
        notes.append(f"regularization energy_type {energy!r} became name {name!r}")


def _upgrade_optimizer(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    optimizer = _dict_at(config, "train", "optimizer")
    if optimizer is None:
        return
    old = optimizer.get("name")
    if not isinstance(old, str) or old not in V011_OPTIMIZER_NAMES:
        return
    base: KeyPath = ("train", "optimizer")
    args = optimizer.pop(old, None)
    # v0.1.1 configs carried an argument section per optimizer; only the chosen one is used.
    for section in V011_OPTIMIZER_NAMES:
        if isinstance(optimizer.get(section), dict):
            optimizer.pop(section)
            prov.forget(base + (section,))
    optimizer["name"] = V011_OPTIMIZER_NAMES[old]
    if isinstance(args, dict):
        for key, value in args.items():
            optimizer.setdefault(key, value)
            prov.move(base + (old, key), base + (key,))
    prov.forget(base + (old,))
    notes.append(f"optimizer {old!r} became {optimizer['name']!r}")


def _upgrade_augmentation_default(config: Dict[str, Any], prov: Provenance, notes: List[str]) -> None:
    preprocess = _dict_at(config, "train", "preprocess")
    if preprocess is None or "data_augmentation" in preprocess:
        return
    preprocess["data_augmentation"] = dict(DEFAULT_DATA_AUGMENTATION)
    notes.append("absent train.preprocess.data_augmentation set to {name: affine} (DeepReg's default)")


# Order matters: the loss rules flatten the wrappers before renaming what they contained.
_RULES: List[Callable[[Dict[str, Any], Provenance, List[str]], None]] = [
    _upgrade_dataset,
    _upgrade_model,
    _upgrade_dissimilarity,
    _upgrade_label_wrappers,
    _upgrade_nested_arguments,
    _upgrade_loss_renames,
    _upgrade_energy_type,
    _upgrade_optimizer,
    _upgrade_augmentation_default,
]
