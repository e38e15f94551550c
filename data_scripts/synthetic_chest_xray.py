"""Write small synthetic chest X-ray releases in the JSRT (+ SCR), Montgomery or Shenzhen layout (no network).

::

    python data_scripts/synthetic_chest_xray.py {jsrt,montgomery,shenzhen} OUTPUT [--cases 12]
        [--shape 128 128] [--seed 0]

The folder written is what the download would give after unpacking (file names, folders, file formats:
JSRT's headerless big-endian 12-bit ``.IMG`` with the SCR database's GIF masks, Montgomery's 16-bit PNGs with
left and right lung masks, Shenzhen's 8-bit PNGs with a separate ``mask/`` folder), so
``data_scripts/jsrt.py``, ``montgomery.py`` and ``shenzhen.py`` run on it unchanged; see those converters
for the layouts. ``OUTPUT`` is the converter's SOURCE (for JSRT, the SCR masks are in ``OUTPUT/scr``).

The pictures are phantoms a segmenter and a registration network can learn from: a bright elliptical body
on a dark background, two dark elliptical lungs, a bright mediastinum and spine between them and a heart
shadow, each subject seen through its own smooth random deformation (a sum of random low-frequency
sinusoids, up to about 4 % of the picture) and scaling, with a little blur and noise. Like the real sets,
Shenzhen's last two images have no mask and one image in four is saved as RGB (equal channels).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import ndimage

RELEASES = ("jsrt", "montgomery", "shenzhen")


def smooth_warp(shape: Tuple[int, int], rng, amplitude: float = 0.04, waves: int = 3) -> np.ndarray:
    """``(2, rows, cols)`` normalised coordinates in [0, 1] moved by a smooth random displacement."""
    rows, cols = np.meshgrid(
        (np.arange(shape[0]) + 0.5) / shape[0], (np.arange(shape[1]) + 0.5) / shape[1], indexing="ij"
    )
    coords = np.stack([rows, cols])
    for axis in range(2):
        for _ in range(waves):
            fr, fc = rng.uniform(0.5, 2.0, 2)
            phase = rng.uniform(0, 2 * np.pi)
            coords[axis] += amplitude / waves * np.sin(2 * np.pi * (fr * rows + fc * cols) + phase)
    return coords


def _ellipse(coords: np.ndarray, centre, radii) -> np.ndarray:
    return ((coords[0] - centre[0]) / radii[0]) ** 2 + ((coords[1] - centre[1]) / radii[1]) ** 2 <= 1.0


def phantom(shape: Tuple[int, int], rng) -> Dict[str, np.ndarray]:
    """One subject: ``picture`` float64 in [0, 1] (lungs dark), boolean ``left``/``right`` lungs and ``heart``.

    The patient's left lung is on the picture's right (a posterior-anterior radiograph).
    """
    coords = smooth_warp(shape, rng)
    scale = rng.uniform(0.92, 1.05, 2)
    coords = (coords - 0.5) / scale[:, None, None] + 0.5
    body = _ellipse(coords, (0.55, 0.5), (0.48, 0.45))
    right = _ellipse(coords, (0.48, 0.3), (0.3, 0.14))
    left = _ellipse(coords, (0.48, 0.7), (0.3, 0.14))
    heart = _ellipse(coords, (0.62, 0.55), (0.14, 0.16))
    mediastinum = body & (np.abs(coords[1] - 0.5) < 0.07)
    picture = np.where(body, 0.55, 0.05)
    picture = np.where(left | right, 0.18, picture)
    picture = np.where(heart & ~(left | right), 0.7, picture)
    picture = np.where(mediastinum, 0.85, picture)
    picture = ndimage.gaussian_filter(picture, 0.6) + rng.normal(0.0, 0.015, shape)
    return {"picture": np.clip(picture, 0.0, 1.0), "left": left, "right": right & ~left, "heart": heart}


def _png(path: str, array: np.ndarray) -> None:
    """A PNG with Pillow (it comes with matplotlib): uint8/uint16 grey or uint8 RGB."""
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def _mask_png(path: str, mask: np.ndarray) -> None:
    _png(path, np.where(mask, 255, 0).astype(np.uint8))


def _gif(path: str, mask: np.ndarray) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format="GIF")


def write_jsrt(output: str, subjects: Sequence[Dict[str, np.ndarray]]) -> None:
    """JSRT ``JPCLNxxx.IMG`` (big-endian 12-bit, air bright: ``4095 (1 - picture)``) in ``output`` and the SCR
    masks at half resolution in ``output/scr/fold{1,2}/masks/{left lung,right lung,heart}/``."""
    os.makedirs(output, exist_ok=True)
    for n, subject in enumerate(subjects, start=1):
        case = f"JPCLN{n:03d}"
        stored = np.round(4095.0 * (1.0 - subject["picture"])).astype(">u2")
        stored.tofile(os.path.join(output, case + ".IMG"))
        fold = "fold1" if n % 2 else "fold2"
        for key, folder in (("left", "left lung"), ("right", "right lung"), ("heart", "heart")):
            _gif(os.path.join(output, "scr", fold, "masks", folder, case + ".gif"), subject[key][::2, ::2])


def write_montgomery(output: str, subjects: Sequence[Dict[str, np.ndarray]]) -> None:
    """``CXR_png/MCUCXR_xxxx_y.png`` (16-bit PNG of 12-bit values), ``ManualMask/{left,right}Mask/``."""
    for n, subject in enumerate(subjects, start=1):
        name = f"MCUCXR_{n:04d}_{n % 2}.png"
        _png(os.path.join(output, "CXR_png", name), np.round(4095.0 * subject["picture"]).astype(np.uint16))
        _mask_png(os.path.join(output, "ManualMask", "leftMask", name), subject["left"])
        _mask_png(os.path.join(output, "ManualMask", "rightMask", name), subject["right"])


def write_shenzhen(output: str, subjects: Sequence[Dict[str, np.ndarray]], unmasked: int = 2) -> None:
    """``CXR_png/CHNCXR_xxxx_y.png`` (8-bit; every fourth RGB) and ``mask/<name>_mask.png`` for all but the last
    ``unmasked`` images."""
    for n, subject in enumerate(subjects, start=1):
        name = f"CHNCXR_{n:04d}_{n % 2}"
        grey = np.round(255.0 * subject["picture"]).astype(np.uint8)
        _png(os.path.join(output, "CXR_png", name + ".png"), np.stack([grey] * 3, axis=-1) if n % 4 == 0 else grey)
        if n <= len(subjects) - unmasked:
            _mask_png(os.path.join(output, "mask", name + "_mask.png"), subject["left"] | subject["right"])


def write_release(release: str, output: str, cases: int, shape: Sequence[int], seed: int = 0) -> str:
    """Write ``cases`` phantoms of ``shape`` (rows, cols) in ``release``'s layout into the new folder ``output``.

    Raises:
        ValueError: an unknown release, fewer than 4 cases, or a shape that is not two sizes >= 16 (even for
            JSRT, whose masks are written at half resolution).
        FileExistsError: ``output`` exists and is not an empty folder.
    """
    if release not in RELEASES:
        raise ValueError(f"release must be one of {list(RELEASES)}, got {release!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 16 or (release == "jsrt" and (shape[0] != shape[1] or shape[0] % 2)):
        raise ValueError(f"shape must be two sizes of at least 16 pixels (JSRT: square and even), got {list(shape)}")
    if cases < 4:
        raise ValueError(f"cases must be at least 4 (two train and two test images), got {cases}")
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise FileExistsError(f"output {output} exists and is not an empty folder: choose a new folder")
    rng = np.random.default_rng(seed)
    subjects = [phantom(shape, rng) for _ in range(cases)]
    {"jsrt": write_jsrt, "montgomery": write_montgomery, "shenzhen": write_shenzhen}[release](output, subjects)
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", choices=RELEASES, help="which release's layout to write")
    parser.add_argument("output", help="new or empty output folder")
    parser.add_argument("--cases", type=int, default=12, help="images (default 12)")
    parser.add_argument("--shape", type=int, nargs=2, default=[128, 128], metavar=("ROWS", "COLS"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        write_release(args.release, args.output, args.cases, args.shape, args.seed)
    except (ValueError, OSError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    print(f"synthetic {args.release} release with {args.cases} image(s) of {args.shape} pixels in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
