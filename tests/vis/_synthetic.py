"""Small synthetic registration results written to NIfTI for the visualisation tests.

A 24 x 20 x 16 grid with anisotropic spacing (1.0, 1.2, 2.0) mm: a bright sphere in the fixed image, the
same sphere shifted in the moving image, their labels, and a DDF made of a constant shift plus a local
squeeze strong enough to fold (det J < 0 near its centre). Every slice along axis 2 differs (an intensity
ramp along k), so slice GIFs keep one frame per slice.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates

SHAPE = (24, 20, 16)
SPACING = (1.0, 1.2, 2.0)
SHIFT = (-2.0, 1.0, -0.5)  # moves the moving sphere (10, 11, 7.5) onto the fixed one (12, 10, 8)


def sphere(shape=SHAPE, centre=(12.0, 10.0, 8.0), radius=6.0) -> np.ndarray:
    """Bool ball of ``radius`` voxels around ``centre`` (voxel coordinates)."""
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def image_from_mask(mask: np.ndarray) -> np.ndarray:
    """Sphere at 100 on a background ramp along the last axis (3 per slice), float32."""
    ramp = np.arange(mask.shape[-1], dtype=np.float32) * 3.0
    return (100.0 * mask + ramp).astype(np.float32)


def folding_ddf(shape=SHAPE, shift=SHIFT, centre=(12.0, 10.0, 8.0), strength=2.5, sigma=2.5) -> np.ndarray:
    """``(*shape, 3)`` DDF: constant ``shift`` plus ``-strength (x0 - c0) exp(-r^2 / 2 sigma^2)`` on component 0.

    At the centre d u_0 / d x_0 = -strength, so det J ~ 1 - strength < 0 there: the field folds.
    """
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
    ddf = np.zeros(tuple(shape) + (3,), dtype=np.float32)
    for c in range(3):
        ddf[..., c] = shift[c]
    ddf[..., 0] += -strength * (grid[0] - centre[0]) * np.exp(-r2 / (2 * sigma**2))
    return ddf


def warp(image: np.ndarray, ddf: np.ndarray) -> np.ndarray:
    """``image(x + ddf(x))``, linear, 0 outside: the reference the warp GIF is checked against."""
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in ddf.shape[:-1]], indexing="ij")
    coords = np.stack([g + ddf[..., c] for c, g in enumerate(grid)])
    return map_coordinates(image.astype(np.float64), coords, order=1, mode="constant", cval=0.0)


def write_case(folder: Path) -> dict:
    """Write fixed/moving/warped images, labels and the folding DDF as NIfTI; return their paths."""
    from tfreg.data.geometry import ImageGeometry
    from tfreg.data.image_io import save_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    geometry = ImageGeometry(spacing=SPACING, origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    fixed_mask = sphere()
    moving_mask = sphere(centre=(10.0, 11.0, 7.5))
    ddf = folding_ddf()
    moving = image_from_mask(moving_mask)
    arrays = {
        "fixed": image_from_mask(fixed_mask),
        "moving": moving,
        "warped": warp(moving, ddf).astype(np.float32),
        "fixed_label": fixed_mask.astype(np.uint8),
        "moving_label": moving_mask.astype(np.uint8),
        "warped_label": (warp(moving_mask.astype(np.float32), ddf) > 0.5).astype(np.uint8),
        "ddf": ddf,
    }
    paths = {}
    for name, array in arrays.items():
        paths[name] = str(folder / f"{name}.nii.gz")
        save_image(array, paths[name], geometry)
    return paths


def write_metric_csv(path: Path, dice, hd95=None, labels=None) -> str:
    """An evaluation CSV with columns pair, label, dice(, hd95); one row per value."""
    labels = labels if labels is not None else [1] * len(dice)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pair", "label", "dice"] + (["hd95"] if hd95 is not None else []))
        for m, value in enumerate(dice):
            row = [m, labels[m], value] + ([hd95[m]] if hd95 is not None else [])
            writer.writerow(row)
    return str(path)
