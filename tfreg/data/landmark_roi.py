"""Region-of-interest maps around landmarks: the segmentation targets of WSSAMNet.

WSSAMNet (Nasser et al., "WSSAMNet: Weakly Supervised Semantic Attentive Medical Image Registration
Network") trains one segmenter per image to find "small patches of sizes (9 x 9 x 9) around the
landmarks"; the target of each segmenter is therefore a binary map holding a cube around every landmark
of its image. :func:`landmark_roi` builds it on the model's (resized) grid, 2-D (squares) or 3-D (cubes).

Cube placement (voxels of the model grid): a landmark at the continuous index ``p`` is centred on the
voxel ``c = floor(p + 0.5)`` (nearest voxel, halves rounded up), and the cube covers ``c - h .. c + h`` on
every axis, ``h = (size - 1) / 2`` (``size`` odd, so the cube is centred). Parts outside the grid are
cut off; a landmark whose cube lies wholly outside adds nothing.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

#: WSSAMNet's cube edge, voxels.
DEFAULT_ROI_SIZE = 9


def check_roi_size(size, key: str = "landmark_roi_size") -> int:
    """``size`` as an int if it is a positive odd int, else ValueError naming ``key``."""
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise ValueError(f"{key} must be a positive odd int (the cube's edge in voxels, e.g. 9), got {size!r}")
    return int(size)


def landmark_roi(
    points: np.ndarray, shape: Sequence[int], size: int = DEFAULT_ROI_SIZE, mask: Optional[np.ndarray] = None
) -> np.ndarray:
    """A binary map with a ``size``-voxel cube (square in 2-D) around each valid landmark.

    Args:
        points: ``(N, ndim)`` continuous voxel indices on the grid ``shape``, columns in array-axis order.
        shape: the grid, ``(d1, d2)`` or ``(d1, d2, d3)``.
        size: the cube's edge in voxels, a positive odd int (9 in WSSAMNet).
        mask: ``(N,)``; rows with ``mask <= 0`` (padding) are skipped. None: every row.

    Returns:
        float32 ``(*shape)`` with 1 inside the union of the cubes and 0 elsewhere.
    """
    size = check_roi_size(size, "size")
    shape = tuple(int(n) for n in shape)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != len(shape):
        raise ValueError(f"points must be (N, {len(shape)}) for a grid of shape {shape}, got {points.shape}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != points.shape[:1]:
            raise ValueError(f"mask must be ({points.shape[0]},) like the points, got {mask.shape}")
        points = points[mask > 0]
    out = np.zeros(shape, np.float32)
    half = size // 2
    for centre in np.floor(points + 0.5).astype(np.int64):
        low = np.maximum(centre - half, 0)
        high = np.minimum(centre + half + 1, shape)
        if np.all(high > low):
            out[tuple(slice(a, b) for a, b in zip(low, high))] = 1.0
    return out


__all__ = ["DEFAULT_ROI_SIZE", "check_roi_size", "landmark_roi"]
