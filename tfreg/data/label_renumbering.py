"""Keeping chosen structures of an integer label map and numbering them 1..K.

``keep_labels: [v1, ..., vK]`` maps value ``v_i`` to ``i`` and every other value to 0 (background), so
that a training set whose label maps number vertebrae 3, 4, 5 (say) gets the labels 1, 2, 3 that
``dataset.num_labels: 3`` reads as one-hot channels.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def check_label_values(values, name: str) -> Tuple[int, ...]:
    """``values`` as a non-empty tuple of distinct integers >= 1 (0 is the background), or ValueError."""
    items = [values] if np.isscalar(values) else list(values)
    ok = bool(items) and all(
        not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer)) and v >= 1 for v in items
    )
    if not ok or len(set(int(v) for v in items)) != len(items):
        raise ValueError(
            f"{name} must be one or more distinct integer label values >= 1 (0 is the background), got {values!r}"
        )
    return tuple(int(v) for v in items)


def renumber_labels(label: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    """``label`` with ``keep[i]`` -> ``i + 1`` and every other value -> 0.

    Args:
        label: integer label map of any shape.
        keep: the label values to keep, in their new order.

    Returns:
        Array of ``label``'s shape: uint8 when K < 256, else uint16.
    """
    keep = check_label_values(keep, "keep_labels")
    out = np.zeros(label.shape, dtype=np.uint8 if len(keep) < 256 else np.uint16)
    for new, old in enumerate(keep, start=1):
        out[label == old] = new
    return out


__all__ = ["check_label_values", "renumber_labels"]
