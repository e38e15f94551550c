"""``deepreg.config.parser``: :func:`load_configs`, :func:`config_sanity_check` and :func:`save` on ``tfreg.config``."""

import os
from typing import Any, Dict

from tfreg.config import load_configs, save_config, validate_config


def config_sanity_check(config: Dict[str, Any]) -> Dict[str, Any]:
    """Check a loaded config and return it with DeepReg's defaults filled in (DeepReg's ``config_sanity_check``).

    tfreg checks every key at once (:func:`tfreg.config.validate_config`) and raises
    :class:`~tfreg.config.ConfigError` listing each problem, where DeepReg stopped at the first one.
    """
    return validate_config(config)


def save(config: Dict[str, Any], out_dir: str, filename: str = "config.yaml") -> str:
    """Write ``config`` to ``out_dir/filename`` (DeepReg's ``save``); returns the path written.

    The file is written atomically (:func:`tfreg.config.save_config`)."""
    return save_config(config, os.path.join(out_dir, filename))


__all__ = ["config_sanity_check", "load_configs", "save"]
