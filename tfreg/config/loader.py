"""Loading, merging and saving YAML configs (DeepReg's ``load_configs`` and ``save``).

Differences to DeepReg, on purpose:

- YAML is read with a safe loader (DeepReg used ``FullLoader``, which can build Python objects). The
  loader also reads ``1e-4`` as a float, as YAML 1.2 does; PyYAML's YAML 1.1 rules read it as the
  string ``"1e-4"``, which then failed deep inside an optimizer or loss.
- The file each value came from is kept (:class:`~tfreg.config.provenance.Provenance`), so errors
  name it.
- The ``updated_<name>`` file that DeepReg wrote next to an upgraded config is written only where the
  folder is writable, and never replaces a different existing file (see :func:`load_configs`).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from typing import Any, Dict, List, Sequence, Tuple, Union

import yaml

from tfreg.config.defaults import DATASET_SPLITS
from tfreg.config.errors import ConfigError, ConfigFileNotFoundError, KeyPath
from tfreg.config.provenance import Provenance
from tfreg.config.upgrade import upgrade_config_with_notes
from tfreg.file_safety import atomic_output

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: The prefix of the upgraded copy written next to an old config (DeepReg's name).
UPDATED_PREFIX = "updated_"


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads exponent floats without a dot (``1e-4``) as floats."""


# YAML 1.1's float pattern requires a dot in the mantissa; this adds the YAML 1.2 forms. Ints, dotted
# floats, .inf and .nan stay with SafeLoader's own resolvers (tried first when they match).
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


# ---------------------------------------------------------------------- loading
def load_yaml_file(path: PathLike) -> Dict[str, Any]:
    """Read one config file into a dict.

    An empty file reads as ``{}`` (a harmless override file).

    Raises:
        ConfigFileNotFoundError: the file does not exist (also a ``FileNotFoundError``).
        ConfigError: the file cannot be read, has a YAML syntax error (with the file, line and
            column), or its top level is not a mapping.
    """
    path = str(path)
    if not os.path.exists(path):
        raise ConfigFileNotFoundError(f"config file {path} does not exist")
    if os.path.isdir(path):
        raise ConfigError(f"config file {path} is a directory, not a YAML file")
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: YAML error: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level of a config must be a mapping (keys such as dataset: and train:), "
            f"got a {type(data).__name__}"
        )
    return data


def merge_configs(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """Merge ``override`` into ``base``, returning a new dict (neither input is modified).

    Dicts merge key by key, recursively; every other value, lists included, is replaced by the
    override's (DeepReg's rule: a later file can change one key deep in the tree, but a list is
    always taken whole). A ``null`` in the override replaces the base value too.
    """
    merged = copy.deepcopy(base)
    _merge_into(merged, override, source=None, prov=None, prefix=())
    return merged


def _merge_into(target: Dict[str, Any], source_dict: Dict[str, Any], source, prov, prefix: KeyPath) -> None:
    for key, value in source_dict.items():
        path = prefix + (key,)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value, source, prov, path)
            if prov is not None:
                prov.record(path, source)
        else:
            target[key] = copy.deepcopy(value)
            if prov is not None:
                # The old subtree is gone; its records would name the wrong file.
                prov.forget(path)
                prov.record_tree(path, value, source)


def _as_path_list(paths: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    result = [os.fspath(p) for p in paths]
    if not result:
        raise ConfigError("no config file given")
    return result


def load_configs_with_provenance(
    paths: Union[PathLike, Sequence[PathLike]], write_updated: bool = True
) -> Tuple[Dict[str, Any], Provenance]:
    """Like :func:`load_configs`, and also return where each value came from.

    Returns:
        ``(config, provenance)``; ``provenance.source("train.loss.image.name")`` is the file that set
        it, and ``validate_config(config, provenance)`` names files in its errors.
    """
    files = _as_path_list(paths)
    prov = Provenance(files)
    merged: Dict[str, Any] = {}
    for path in files:
        _merge_into(merged, load_yaml_file(path), source=path, prov=prov, prefix=())
    upgraded, notes = upgrade_config_with_notes(merged, prov)
    if notes:
        logger.warning(
            "The config loaded from %s is not in DeepReg 1.0 form and was upgraded: %s.",
            ", ".join(files),
            "; ".join(notes),
        )
        if write_updated:
            write_updated_config(upgraded, files[0])
    return expand_dataset_dirs(upgraded), prov


def load_configs(paths: Union[PathLike, Sequence[PathLike]], write_updated: bool = True) -> Dict[str, Any]:
    """Load one or more YAML config files, merge them and upgrade the result to the 1.0 form.

    DeepReg's ``load_configs``: files are merged in order (see :func:`merge_configs`; the later file
    wins), then the v0.1.1 upgrade runs (:func:`~tfreg.config.upgrade.upgrade_config`), then ``~`` in
    the dataset dirs is expanded.

    When the upgrade changed anything, a warning names the files, and (as DeepReg did) the upgraded
    config is saved as ``updated_<first file name>`` next to the first file, so the user can switch to
    it. tfreg writes that file only when it can do so safely: an existing file with the same content is
    left alone, an existing file with different content is never replaced (a warning says so), and a
    folder that cannot be written to (a read-only dataset or config mount) gives a warning, not a
    crash. ``write_updated=False`` skips the file (config-only tools, tests).

    Args:
        paths: one path or a list of paths.
        write_updated: whether to write ``updated_<name>`` after an upgrade.

    Returns:
        The merged config, a plain nested dict.

    Raises:
        ConfigError: a file is missing or unreadable, has a YAML syntax error, or is not a mapping.
    """
    config, _ = load_configs_with_provenance(paths, write_updated=write_updated)
    return config


def expand_dataset_dirs(config: Dict[str, Any]) -> Dict[str, Any]:
    """Expand ``~`` in ``dataset.<split>.dir`` (a string or a list of strings), in place; returns config."""
    dataset = config.get("dataset") if isinstance(config, dict) else None
    if not isinstance(dataset, dict):
        return config
    for split in DATASET_SPLITS:
        split_config = dataset.get(split)
        if not isinstance(split_config, dict):
            continue
        value = split_config.get("dir")
        if isinstance(value, str):
            split_config["dir"] = os.path.expanduser(value)
        elif isinstance(value, list):
            split_config["dir"] = [os.path.expanduser(v) if isinstance(v, str) else v for v in value]
    return config


def write_updated_config(config: Dict[str, Any], first_file: PathLike) -> Union[str, None]:
    """Write the upgraded ``config`` as ``updated_<name>`` next to ``first_file``, when safe.

    Returns:
        The path written (or found already up to date), or None when nothing could be written.
    """
    first_file = os.fspath(first_file)
    target = os.path.join(os.path.dirname(first_file), UPDATED_PREFIX + os.path.basename(first_file))
    if os.path.exists(target):
        try:
            existing = load_yaml_file(target)
        except ConfigError:
            existing = None
        if existing == _plain(config):
            return target
        logger.warning(
            "Not writing the upgraded config: %s exists and differs from it; delete or rename it to get "
            "a fresh upgraded copy.",
            target,
        )
        return None
    try:
        save_config(config, target)
    except OSError as err:
        logger.warning("Could not write the upgraded config to %s (%s); continuing without it.", target, err)
        return None
    logger.warning("The upgraded config was written to %s; use it instead of %s.", target, first_file)
    return target


# ---------------------------------------------------------------------- saving
def _plain(value: Any) -> Any:
    """Tuples to lists and NumPy scalars/arrays to Python values: what ``safe_dump`` can write."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    # Duck-typed so that this module does not import NumPy.
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def save_config(config: Dict[str, Any], path: PathLike) -> str:
    """Write ``config`` as YAML (sorted keys, DeepReg's ``config.yaml`` format) to ``path``.

    The file is written atomically: to a temporary file in the same folder, then renamed over
    ``path``, so a crash never leaves a half-written config that a later ``predict`` would read.
    The parent folder is created when missing. The result loads back with :func:`load_configs`.

    Returns:
        ``path`` as a string.
    """
    path = os.fspath(path)
    text = yaml.safe_dump(_plain(config), sort_keys=True, default_flow_style=False)
    with atomic_output(path) as tmp:
        # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    return path


# ---------------------------------------------------------------------- command-line overrides
def apply_max_epochs(config: Dict[str, Any], max_epochs: int) -> Dict[str, Any]:
    """Apply ``--max_epochs``: when ``max_epochs > 0``, ``epochs = max_epochs`` and
    ``save_period = min(max_epochs, save_period)``; otherwise nothing changes.

    Modifies ``config`` in place (as DeepReg) and returns it.
    """
    if max_epochs is None or max_epochs <= 0:
        return config
    train = config.setdefault("train", {})
    train["epochs"] = max_epochs
    save_period = train.get("save_period")
    if isinstance(save_period, (int, float)) and not isinstance(save_period, bool):
        train["save_period"] = min(max_epochs, save_period)
    elif save_period is None:
        # Absent: a checkpoint at the last epoch is what a capped run needs. An invalid value is
        # left for validate_config to report.
        train["save_period"] = max_epochs
    return config
