"""DeepReg-compatible YAML configs: load, merge, upgrade from v0.1.1, validate, save.

Typical use (what ``tfreg train`` does)::

    from tfreg.config import apply_max_epochs, load_configs_with_provenance, save_config, validate_config

    config, provenance = load_configs_with_provenance(["base.yaml", "test.yaml"])
    config = apply_max_epochs(config, max_epochs)
    config = validate_config(config, provenance)
    save_config(config, os.path.join(log_dir, "config.yaml"))

This package does not import TensorFlow or Keras (config tooling stays fast); the optimizer-name check
imports Keras when it runs, and registry lookups import the registered built-in components.
"""

from tfreg.config.errors import ConfigError, ConfigFileNotFoundError, format_key_path, parse_key_path
from tfreg.config.loader import (
    apply_max_epochs,
    expand_dataset_dirs,
    load_configs,
    load_configs_with_provenance,
    load_yaml_file,
    merge_configs,
    save_config,
    write_updated_config,
)
from tfreg.config.provenance import Provenance
from tfreg.config.upgrade import upgrade_config, upgrade_config_with_notes
from tfreg.config.validate import normalize_config, validate_config

__all__ = [
    "ConfigError",
    "ConfigFileNotFoundError",
    "Provenance",
    "apply_max_epochs",
    "expand_dataset_dirs",
    "format_key_path",
    "load_configs",
    "load_configs_with_provenance",
    "load_yaml_file",
    "merge_configs",
    "normalize_config",
    "parse_key_path",
    "save_config",
    "upgrade_config",
    "upgrade_config_with_notes",
    "validate_config",
    "write_updated_config",
]
