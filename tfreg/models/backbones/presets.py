"""Named architecture presets of the transformer backbones, and the one rule for overriding them."""

from typing import Any, Dict, Mapping

from tfreg.checks import suggestion


def resolve_preset(backbone: str, preset: Any, presets: Mapping[str, Mapping[str, Any]], **overrides) -> Dict[str, Any]:
    """The architecture arguments of ``presets[preset]``, with every override that is not None applied.

    Args:
        backbone: the backbone's registered name (for the error message).
        preset: a key of ``presets``.
        presets: ``{name: {argument: value}}``.
        **overrides: arguments given explicitly; None means "the preset's value".

    Raises:
        ValueError: ``preset`` is not a known name; the message lists the known ones.
    """
    if not isinstance(preset, str) or preset not in presets:
        raise ValueError(
            f"{backbone}: unknown preset {preset!r}; known presets: {', '.join(presets)}"
            + suggestion(preset, list(presets))
        )
    resolved = dict(presets[preset])
    resolved.update({k: v for k, v in overrides.items() if v is not None})
    return resolved


__all__ = ["resolve_preset"]
