"""Config errors and the helpers that make their messages useful: key paths and name suggestions.

Every problem with a config is reported as a :class:`ConfigError` (a ``ValueError``, as DeepReg raised)
whose message names the key path (``train.loss.image[1].name``), the bad value, the allowed values and
the file the value came from.
"""

from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple, Union

# closest_match and suggestion live in tfreg.checks (shared with the argument checks); the config code
# imports them from here.
from tfreg.checks import closest_match, suggestion

#: A key path: dict keys (str) and list indices (int), from the top of the config.
KeyPath = Tuple[Union[str, int], ...]


class ConfigError(ValueError):
    """An invalid config, or a config file that cannot be read.

    Attributes:
        errors: one line per problem found. Validation collects every problem before raising, so one
            run shows the user all of them.
    """

    def __init__(self, errors: Union[str, Sequence[str]]):
        self.errors: List[str] = [errors] if isinstance(errors, str) else list(errors)
        if len(self.errors) == 1:
            message = self.errors[0]
        else:
            message = f"{len(self.errors)} problems in the configuration:\n" + "\n".join(
                f"  - {line}" for line in self.errors
            )
        super().__init__(message)


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """A config file that does not exist; catchable as ``ConfigError`` and as ``FileNotFoundError``."""


def format_key_path(path: Iterable[Union[str, int]]) -> str:
    """``("train", "loss", "image", 1, "name")`` -> ``"train.loss.image[1].name"``; ``()`` -> ``"<root>"``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<root>"


def parse_key_path(text: str) -> KeyPath:
    """The inverse of :func:`format_key_path`: ``"train.loss.image[1].name"`` -> a tuple path.

    Keys containing dots or brackets cannot be written this way; pass tuples for those.
    """
    parts: List[Union[str, int]] = []
    for chunk in text.split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        for index in indices:
            parts.append(int(index.rstrip("]")))
    return tuple(parts)


__all__ = [
    "KeyPath",
    "ConfigError",
    "ConfigFileNotFoundError",
    "format_key_path",
    "parse_key_path",
    "closest_match",
    "suggestion",
]
