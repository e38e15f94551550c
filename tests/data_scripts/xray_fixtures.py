"""Tiny chest X-ray releases in their OWN layouts, written here with NumPy and Pillow (not with the product's
readers' library, SimpleITK), and the independent references the converter tests compare with.

Pictures are ``(rows, cols)`` arrays; masks are two random ellipses ("lungs") per case.
"""

from __future__ import annotations

import math
import os
from typing import Dict, Sequence, Tuple

import numpy as np
from PIL import Image

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, written out here on purpose


def ellipse(shape: Tuple[int, int], centre: Tuple[float, float], radii: Tuple[float, float]) -> np.ndarray:
    """Boolean ``(rows, cols)`` ellipse; centre and radii as fractions of (rows, cols)."""
    rows, cols = np.meshgrid(
        (np.arange(shape[0]) + 0.5) / shape[0], (np.arange(shape[1]) + 0.5) / shape[1], indexing="ij"
    )
    return ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1.0


def lungs(shape: Tuple[int, int], rng) -> Tuple[np.ndarray, np.ndarray]:
    """Left and right lung masks (the patient's left is on the picture's right)."""
    jitter = lambda: rng.uniform(-0.05, 0.05)  # noqa: E731
    right = ellipse(shape, (0.5 + jitter(), 0.3 + jitter()), (0.3, 0.15))
    left = ellipse(shape, (0.5 + jitter(), 0.7 + jitter()), (0.3, 0.15))
    return left, right


def write_png(path: str, array: np.ndarray) -> None:
    """A grey (uint8 / uint16) or RGB(A) (uint8, ``(rows, cols, 3|4)``) PNG, with Pillow."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)


def write_gif(path: str, mask: np.ndarray) -> None:
    """A 0 / 255 GIF mask, as the SCR database stores them."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format="GIF")


# ------------------------------------------------------------------------------------------ releases
def write_jsrt(source: str, scr: str, cases: Sequence[str], side: int = 32, mask_side: int = 16) -> Dict[str, dict]:
    """JSRT ``<case>.IMG`` (big-endian 12-bit) in ``source`` and SCR GIF masks in ``scr/fold{1,2}/masks/``.

    Returns ``{case: {"stored": uint16 values, "left", "right", "heart": masks (mask_side^2)}}``.
    """
    rng = np.random.default_rng(10)
    out = {}
    for n, case in enumerate(cases):
        stored = rng.integers(0, 4096, (side, side)).astype(np.uint16)
        os.makedirs(source, exist_ok=True)
        stored.astype(">u2").tofile(os.path.join(source, case + ".IMG"))
        left, right = lungs((mask_side, mask_side), rng)
        heart = ellipse((mask_side, mask_side), (0.6, 0.5), (0.15, 0.2))
        fold = "fold1" if n % 2 == 0 else "fold2"
        for name, mask in (("left lung", left), ("right lung", right), ("heart", heart)):
            write_gif(os.path.join(scr, fold, "masks", name, case + ".gif"), mask)
        out[case] = {"stored": stored, "left": left, "right": right, "heart": heart}
    return out


def write_montgomery(source: str, cases: Sequence[str], shape=(40, 32)) -> Dict[str, dict]:
    """``CXR_png/<case>.png`` (16-bit grey) and ``ManualMask/{left,right}Mask/<case>.png`` (0 / 255)."""
    rng = np.random.default_rng(11)
    out = {}
    for case in cases:
        image = rng.integers(0, 4096, shape).astype(np.uint16)
        left, right = lungs(shape, rng)
        write_png(os.path.join(source, "CXR_png", case + ".png"), image)
        write_png(
            os.path.join(source, "ManualMask", "leftMask", case + ".png"), np.where(left, 255, 0).astype(np.uint8)
        )
        write_png(
            os.path.join(source, "ManualMask", "rightMask", case + ".png"), np.where(right, 255, 0).astype(np.uint8)
        )
        out[case] = {"image": image, "left": left, "right": right}
    return out


def write_shenzhen(
    source: str, masked: Sequence[str], unmasked: Sequence[str], rgb: Sequence[str], shape=(16, 16)
) -> Dict[str, dict]:
    """``CXR_png/<case>.png`` (8-bit grey, RGB for ``rgb``, RGBA for the first of them) and
    ``mask/<case>_mask.png`` for the ``masked`` cases only. Returns ``{case: {"picture", "mask"}}``."""
    rng = np.random.default_rng(12)
    out = {}
    for case in list(masked) + list(unmasked):
        if case in rgb:
            picture = rng.integers(0, 256, shape + (3,)).astype(np.uint8)
            if case == rgb[0]:
                alpha = rng.integers(0, 256, shape + (1,)).astype(np.uint8)
                picture = np.concatenate([picture, alpha], axis=2)
        else:
            picture = rng.integers(0, 256, shape).astype(np.uint8)
        write_png(os.path.join(source, "CXR_png", case + ".png"), picture)
        entry = {"picture": picture}
        if case in masked:
            left, right = lungs(shape, rng)
            entry["mask"] = left | right
            write_png(os.path.join(source, "mask", case + "_mask.png"), np.where(left | right, 255, 0).astype(np.uint8))
        out[case] = entry
    return out


# ------------------------------------------------------------------------------------------ references
def luma(picture: np.ndarray) -> np.ndarray:
    """Grey of a grey or RGB(A) picture with the BT.601 formula."""
    picture = np.asarray(picture, dtype=np.float64)
    if picture.ndim == 2:
        return picture
    return LUMA[0] * picture[..., 0] + LUMA[1] * picture[..., 1] + LUMA[2] * picture[..., 2]


def min_max(picture: np.ndarray) -> np.ndarray:
    picture = np.asarray(picture, dtype=np.float64)
    return (picture - picture.min()) / (picture.max() - picture.min())


def area_reference(mask: np.ndarray, size: int) -> np.ndarray:
    """The covered fraction of each ``(size, size)`` pixel: repeat each source pixel to a common multiple
    of both sizes (an exact subdivision), then average blocks."""
    fine = np.asarray(mask, dtype=np.float64)
    for axis, n in enumerate(fine.shape[:2]):
        lcm = n * size // math.gcd(n, size)
        fine = np.repeat(fine, lcm // n, axis=axis)
    rows, cols = fine.shape
    return fine.reshape(size, rows // size, size, cols // size).mean(axis=(1, 3))


def mask_reference(mask: np.ndarray, size: int) -> np.ndarray:
    return (area_reference(mask, size) >= 0.5 - 1e-9).astype(np.uint8)
