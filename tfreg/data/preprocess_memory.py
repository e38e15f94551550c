"""Memory check of the preprocessing, made from the file headers before any voxel is resampled.

Resampling a large field of view to a fine spacing (or cropping a large box) can need more memory than
the machine has; the preprocessing refuses such a pair up front, saying the size it would need.

The estimate is the peak working set of one pair (bytes), with ``V`` the voxel counts of each grid::

    8 * (V_moving_input + V_fixed_input)      images (float32) and labels (<= 4 bytes) as read
  + 16 * V_moving_resampled                   the resampled moving image and label, and their copies
  + 24 * V_fixed_resampled                    the same for the fixed pair, plus the moving pair on its grid
  + 24 * V_crop                               the four cropped outputs and the rescaling's float64 copy
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

GIB = float(2**30)


def physical_memory_gb() -> float:
    """The machine's physical memory (GiB) from ``os.sysconf``; 16 GiB where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 16.0


@dataclass(frozen=True)
class MemoryEstimate:
    """Voxel counts (per grid) and the estimated peak bytes of preprocessing one pair."""

    voxels: Dict[str, int]
    shapes: Dict[str, tuple]

    @property
    def bytes(self) -> int:
        v = self.voxels
        return int(
            8 * (v["moving_input"] + v["fixed_input"])
            + 16 * v["moving_resampled"]
            + 24 * v["fixed_resampled"]
            + 24 * v["crop"]
        )

    @property
    def gib(self) -> float:
        return self.bytes / GIB

    def describe(self) -> str:
        """``moving at the spacing 400x400x300 (48000000 voxels), ...`` for the messages."""
        names = {
            "moving_resampled": "the moving image at the chosen spacing",
            "fixed_resampled": "the fixed image at the chosen spacing",
            "crop": "the crop",
        }
        parts = [
            f"{text} {'x'.join(str(n) for n in self.shapes[key])} ({self.voxels[key]} voxels)"
            for key, text in names.items()
        ]
        return ", ".join(parts)


def estimate_memory(
    moving_shape: Sequence[int],
    fixed_shape: Sequence[int],
    moving_resampled: Sequence[int],
    fixed_resampled: Sequence[int],
    crop_size: Optional[Sequence[int]],
) -> MemoryEstimate:
    """:class:`MemoryEstimate` of one pair from its input shapes, its shapes at the new spacing and the crop."""
    crop = tuple(crop_size) if crop_size is not None else tuple(fixed_resampled)
    shapes = {
        "moving_input": tuple(moving_shape),
        "fixed_input": tuple(fixed_shape),
        "moving_resampled": tuple(moving_resampled),
        "fixed_resampled": tuple(fixed_resampled),
        "crop": crop,
    }
    voxels = {key: int(np.prod(np.asarray(shape, dtype=np.int64))) for key, shape in shapes.items()}
    return MemoryEstimate(voxels=voxels, shapes=shapes)


__all__ = ["GIB", "physical_memory_gb", "MemoryEstimate", "estimate_memory"]
