"""Build the data loader of one split from a DeepReg ``dataset:`` config section (DeepReg's ``load.get_data_loader``).

::

    dataset:
      train: {dir: data/train, format: nifti, labeled: true}   # dir: a string or a list; ~ expanded
      valid: {dir: [fold0, fold1], format: h5, labeled: false}
      test:  null                                              # no loader
      type: paired                                             # data_loader_class name
      moving_image_shape: [16, 16, 16]                         # every other key: a loader argument
      fixed_image_shape: [8, 8, 8]

Defaults for the loader arguments ``sample_label`` and ``seed`` are DeepReg's: train ``sample``/None,
valid and test ``all``/0. A value in the config overrides them for every split.

A split may also set ``pairs`` (tfreg): which image pairs the unpaired loader makes of that split,
``sample`` (DeepReg's shuffled neighbours, the default) or ``all`` (every ordered pair of distinct images,
e.g. ``test: {dir: data/test, format: nifti, labeled: true, pairs: all}``). It is passed to the loader as
its ``pairs`` argument; a loader type without that argument (paired, grouped) is refused, naming the key.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Dict, Optional

from tfreg.checks import DATASET_SPLITS, check_choice
from tfreg.data.errors import DataNotFoundError
from tfreg.data.loaders.base import DataLoader
from tfreg.data.sampling import PAIRS_OPTIONS

#: The dataset splits (:data:`tfreg.checks.DATASET_SPLITS`).
SPLITS = DATASET_SPLITS
SPLIT_KEYS = ("dir", "format", "labeled")
#: Optional keys of a split (tfreg): ``pairs``, see the module docstring.
SPLIT_OPTIONAL_KEYS = ("pairs",)


def get_data_loader(data_config: Dict[str, Any], split: str, registry=None) -> Optional[DataLoader]:
    """The data loader of ``split``, or None when the split is absent, null or has an empty ``dir``.

    Args:
        data_config: the ``dataset`` section of a (DeepReg 1.0, or upgraded) config.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        registry: where ``format`` and ``type`` are looked up; default ``tfreg.registry.REGISTRY``.

    Raises:
        ValueError: for an unknown split, a missing key (``dataset.<split>.format`` ...), an unknown
            ``format`` or ``type`` (listing the registered names), or arguments the loader rejects.
        DataNotFoundError: naming a ``dir`` that does not exist.
        DataError: for inconsistent data found while building the loader.
    """
    if registry is None:
        from tfreg.registry import REGISTRY as registry
    check_choice(split, "split", SPLITS)
    if not isinstance(data_config, dict):
        raise ValueError(f"dataset must be a dict, got {data_config!r}")
    split_config = data_config.get(split)
    if split_config is None:
        return None
    if not isinstance(split_config, dict):
        raise ValueError(f"dataset.{split} must be a dict with keys {list(SPLIT_KEYS)}, got {split_config!r}")
    dir_paths = split_config.get("dir")
    if dir_paths is None or dir_paths == "" or dir_paths == []:
        return None
    if isinstance(dir_paths, (str, os.PathLike)):
        dir_paths = [dir_paths]
    if not isinstance(dir_paths, (list, tuple)) or not all(isinstance(d, (str, os.PathLike)) for d in dir_paths):
        raise ValueError(f"dataset.{split}.dir must be a folder path or a list of them, got {dir_paths!r}")
    dir_paths = [os.path.expanduser(str(d)) for d in dir_paths]
    for path in dir_paths:
        if not os.path.isdir(path):
            raise DataNotFoundError(f"dataset.{split}.dir: folder {path} is not a directory or does not exist")
    for key in ("format", "labeled"):
        if key not in split_config:
            raise ValueError(f"dataset.{split}.{key} is missing (keys of a split: {list(SPLIT_KEYS)})")
    unknown = sorted(set(split_config) - set(SPLIT_KEYS) - set(SPLIT_OPTIONAL_KEYS))
    if unknown:
        raise ValueError(
            f"dataset.{split} has unknown key(s) {unknown}; a split takes {list(SPLIT_KEYS)} and optionally "
            f"{list(SPLIT_OPTIONAL_KEYS)}"
        )
    if "type" not in data_config:
        raise ValueError(f"dataset.type is missing: one of {registry.names('data_loader_class')}")

    loader_config = {key: value for key, value in data_config.items() if key not in SPLITS}
    loader_config["name"] = loader_config.pop("type")
    try:
        file_loader = registry.get(category="file_loader_class", key=split_config["format"])
    except ValueError as err:
        raise ValueError(f"dataset.{split}.format: {err}") from err
    default_args = {
        "data_dir_paths": dir_paths,
        "file_loader": file_loader,
        "labeled": split_config["labeled"],
        "sample_label": "sample" if split == "train" else "all",
        "seed": None if split == "train" else 0,
    }
    if split_config.get("pairs") is not None:
        check_choice(split_config["pairs"], f"dataset.{split}.pairs", PAIRS_OPTIONS)
        loader_class = registry.get(category="data_loader_class", key=loader_config["name"])
        if not _accepts(loader_class, "pairs"):
            raise ValueError(
                f"dataset.{split}.pairs: {split_config['pairs']!r} is given, but the {loader_config['name']!r} data "
                "loader does not choose its pairs that way (the unpaired loader does; paired data has fixed pairs, "
                "and the grouped loader enumerates every pair with sample_image_in_group: false)"
            )
        default_args["pairs"] = split_config["pairs"]
    try:
        return registry.build_data_loader(config=loader_config, default_args=default_args)
    except ValueError as err:
        if type(err) is ValueError and "data_loader_class" in str(err):
            raise ValueError(f"dataset (type {loader_config['name']!r}): {err}") from err
        raise


def _accepts(cls, argument: str) -> bool:
    """Whether the constructor of ``cls`` takes ``argument`` (by name or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters
    except (TypeError, ValueError):
        return True  # no signature to read: let the constructor decide
    return argument in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


__all__ = ["get_data_loader", "SPLITS", "SPLIT_OPTIONAL_KEYS"]
