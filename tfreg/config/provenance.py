"""Where each config value came from, so that an error can name the file to fix.

The config itself stays a plain nested dict (DeepReg code indexes it directly); provenance is kept
beside it in a :class:`Provenance`, a map from key paths to file names. Only the paths that files set
are recorded: a list is recorded as one value (merging replaces lists whole), and a path that was not
recorded (a default filled in later, an index into a list) is answered by its nearest recorded
ancestor.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from tfreg.config.errors import KeyPath, format_key_path, parse_key_path


class Provenance:
    """Maps config key paths to the file each value last came from.

    Args:
        files: the loaded files, in merge order; used when a path has no recorded ancestor.
    """

    def __init__(self, files: Sequence[str] = ()):
        self.files: List[str] = [str(f) for f in files]
        self._sources: Dict[KeyPath, str] = {}

    # ------------------------------------------------------------------ recording
    def record(self, path: KeyPath, source: str) -> None:
        """Record that the value at ``path`` came from ``source``."""
        self._sources[tuple(path)] = str(source)

    def forget(self, path: KeyPath, include_self: bool = True) -> None:
        """Drop the records under ``path`` (its descendants, and itself when ``include_self``)."""
        path = tuple(path)
        for key in list(self._sources):
            if key[: len(path)] == path and (include_self or len(key) > len(path)):
                del self._sources[key]

    def record_tree(self, path: KeyPath, value: Any, source: str) -> None:
        """Record ``path`` and, when ``value`` is a dict, every key path below it."""
        path = tuple(path)
        self.record(path, source)
        if isinstance(value, dict):
            for key, child in value.items():
                self.record_tree(path + (key,), child, source)

    def move(self, old: KeyPath, new: KeyPath, keep: bool = False) -> None:
        """Re-key the records at and under ``old`` to ``new`` (the v0.1.1 upgrade moves values).

        When ``old`` itself was not recorded, ``new`` is recorded with the source ``old`` resolves to,
        so the moved value still points at its file. ``keep`` copies instead of moving (a value copied
        to several places, like the old top-level ``dataset.format``).
        """
        old, new = tuple(old), tuple(new)
        if old == new:
            return
        resolved = self.source(old)
        moved = {new + key[len(old) :]: value for key, value in self._sources.items() if key[: len(old)] == old}
        if not keep:
            self.forget(old)
        self.forget(new)
        self._sources.update(moved)
        if new not in self._sources and resolved is not None:
            self._sources[new] = resolved

    # ------------------------------------------------------------------ lookup
    def source(self, path: Union[KeyPath, str]) -> Optional[str]:
        """The file the value at ``path`` came from: that of its nearest recorded ancestor, or None."""
        if isinstance(path, str):
            path = parse_key_path(path)
        path = tuple(path)
        for end in range(len(path), -1, -1):
            found = self._sources.get(path[:end])
            if found is not None:
                return found
        return None

    def describe(self, path: Union[KeyPath, str]) -> str:
        """``" (from a.yaml)"`` for error messages; the list of files when the path was not recorded."""
        found = self.source(path)
        if found is not None:
            return f" (from {found})"
        if len(self.files) == 1:
            return f" (from {self.files[0]})"
        if self.files:
            return " (from one of " + ", ".join(self.files) + ")"
        return ""

    def as_dict(self) -> Dict[str, str]:
        """The records as ``{"train.loss.image.name": "a.yaml", ...}``, sorted by key path."""
        return {format_key_path(k): v for k, v in sorted(self._sources.items(), key=lambda kv: _sort_key(kv[0]))}

    def copy(self) -> "Provenance":
        """An independent copy."""
        other = Provenance(self.files)
        other._sources = dict(self._sources)
        return other

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        return f"Provenance(files={self.files!r}, {len(self._sources)} paths)"


def _sort_key(path: KeyPath) -> Tuple:
    # Mixed str/int paths do not compare directly; tag each part with its type.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path)
