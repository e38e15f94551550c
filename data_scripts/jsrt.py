"""Convert the JSRT chest radiographs with the SCR lung masks into DeepReg's unpaired 2-D layout.

::

    python data_scripts/jsrt.py SOURCE OUTPUT [--scr SCR_FOLDER] [--sizes 64 256] [--split-counts 197 50]
        [--seed 0] [--pixel-spacing 0.175] [--no-invert]

Download (no network is needed by the converter itself; both need a registration):

- the images: the JSRT database (Shiraishi et al. 2000, Japanese Society of Radiological Technology,
  http://db.jsrt.or.jp/eng.php), ``All247images.zip``, then ``unzip All247images.zip -d ~/data`` gives the
  SOURCE folder of the 247 ``.IMG`` files;
- the masks: the SCR database (van Ginneken, Stegmann and Loog 2006, "Segmentation of anatomical
  structures in chest radiographs using supervised methods"; https://www.isi.uu.nl/Research/Databases/SCR/),
  ``scratch.zip``, extracted anywhere (``--scr``; default: searched inside SOURCE).

No checksum is published for either. Source layouts (from the databases' descriptions, not checked against a
download here)::

    SOURCE/JPCLN001.IMG ... JPCLN154.IMG, JPCNN001.IMG ... JPCNN093.IMG
        247 headerless 2048 x 2048 pictures of 16-bit big-endian words holding 12-bit values (0..4095),
        0.175 mm pixels; stored with air bright (high values), so they are inverted (4095 - v) to show the
        lungs dark, as a radiograph is viewed and as the Montgomery and Shenzhen PNGs are (--no-invert keeps them)
    SCR/<fold1|fold2>/masks/{left lung,right lung,heart,left clavicle,right clavicle}/<case>.gif
        1024 x 1024 GIF masks (0 / 255) over the same field of view (the folds are SCR's two cross-validation
        halves; each case is in one of them)

The label is the union of the left and right lung masks; the heart (and the clavicles) are not used: He,
He and Cao (2022) "remove the heart parts in JSRT images so that all images have only lungs". A ``.IMG``
of another size is read as a square of ``sqrt(bytes / 2)`` pixels of ``--pixel-spacing`` mm. The masks are
found anywhere under the SCR folder by their folder and file names (``.../left lung/<case>.gif``); a
missing or doubled mask is an error naming the file. Output: see :mod:`data_scripts.chest_xray`; the
default split is the paper's 197 train / 50 test, drawn with ``--seed``. AC-RegNet's and our spacing at
256 x 256: ``2048 x 0.175 / 256 = 1.4`` mm.
"""

from __future__ import annotations

import glob
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_scripts.chest_xray import (  # noqa: E402
    DEFAULT_SIZES,
    Radiograph,
    add_xray_arguments,
    binary_mask,
    check_aspect,
    convert_radiographs,
)
from data_scripts.conversion import (  # noqa: E402
    check_output_folder,
    check_source_folder,
    converter_parser,
    run_converter,
)
from tfreg.data.errors import DataError, DataNotFoundError  # noqa: E402

#: The paper's split of the 247 images (train, test).
PAPER_SPLIT = (197, 50)
#: The published pixel spacing, mm.
PIXEL_SPACING = 0.175
#: JSRT's pictures hold 12-bit values.
MAX_VALUE = 4095
#: The SCR mask folders merged into the label.
LUNG_FOLDERS = ("left lung", "right lung")


def raw_side(path: str) -> int:
    """The side ``n`` of the square ``n x n`` 16-bit ``.IMG`` file ``path`` (from its size in bytes).

    Raises:
        DataError: naming the file, when its size is not ``2 n^2`` bytes.
    """
    size = os.path.getsize(path)
    side = math.isqrt(size // 2)
    if size == 0 or size % 2 or side * side * 2 != size:
        raise DataError(
            f"JSRT image {path} has {size} bytes: expected a square of 16-bit pixels (2048 x 2048: 8388608 bytes)"
        )
    return side


def read_raw(path: str, invert: bool = True) -> np.ndarray:
    """The ``(rows, cols)`` picture of a JSRT ``.IMG`` file, float64 (``4095 - v`` with ``invert``).

    Raises:
        DataError: naming the file, for a size that is not a square of 16-bit words or values above 4095
            (a 12-bit image read with the wrong byte order shows as such).
    """
    side = raw_side(path)
    values = np.fromfile(path, dtype=">u2").reshape(side, side)
    high = int(values.max())
    if high > MAX_VALUE:
        raise DataError(
            f"JSRT image {path} holds the value {high}: expected 12-bit values 0..{MAX_VALUE} stored as big-endian "
            "16-bit words"
        )
    values = values.astype(np.float64)
    return MAX_VALUE - values if invert else values


def read_gif_mask(path: str) -> np.ndarray:
    """The binary ``(rows, cols)`` mask of an SCR GIF (Pillow, which comes with matplotlib)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            grey = np.asarray(picture.convert("L"), dtype=np.float64)
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"SCR mask {path} is not a readable GIF: {err}") from err
    return binary_mask(grey, path)


def gif_shape(path: str) -> Tuple[int, int]:
    """``(rows, cols)`` of a GIF from its header (Pillow)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            cols, rows = picture.size
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"SCR mask {path} is not a readable GIF: {err}") from err
    return rows, cols


def find_images(source: str) -> Dict[str, str]:
    """``{case: path}`` of the ``.IMG`` files under ``source`` (any case of the suffix, searched recursively).

    Raises:
        DataNotFoundError: no ``.IMG`` file; DataError: one case found twice.
    """
    found: Dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(source), "**", "*"), recursive=True)):
        if os.path.isfile(path) and path.lower().endswith(".img"):
            case = os.path.basename(path)[: -len(".img")]
            if case in found:
                raise DataError(f"JSRT case {case} is found twice: {found[case]} and {path}; keep one")
            found[case] = path
    if not found:
        raise DataNotFoundError(f"no JSRT image (.IMG) found in {source}")
    return found


def find_masks(scr: str, cases: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """``{case: (left lung GIF, right lung GIF)}`` from the SCR folder.

    Raises:
        DataNotFoundError: a case without its left or right lung mask (naming the expected file);
        DataError: a mask found twice.
    """
    index: Dict[Tuple[str, str], str] = {}
    for folder in LUNG_FOLDERS:
        pattern = os.path.join(glob.escape(scr), "**", glob.escape(folder), "*")
        for path in sorted(glob.glob(pattern, recursive=True)):
            if not (os.path.isfile(path) and path.lower().endswith(".gif")):
                continue
            key = (folder, os.path.basename(path)[: -len(".gif")])
            if key in index:
                raise DataError(f"SCR mask {key[1]} ({folder}) is found twice: {index[key]} and {path}; keep one")
            index[key] = path
    masks = {}
    for case in cases:
        pair = []
        for folder in LUNG_FOLDERS:
            path = index.get((folder, case))
            if path is None:
                expected = os.path.join(scr, "<fold1|fold2>", "masks", folder, case + ".gif")
                raise DataNotFoundError(f"missing SCR {folder} mask of JSRT case {case}: expected the file {expected}")
            pair.append(path)
        masks[case] = (pair[0], pair[1])
    return masks


def convert(
    source: str,
    output: str,
    scr: Optional[str] = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    split_counts: Sequence[int] = PAPER_SPLIT,
    seed: int = 0,
    pixel_spacing: float = PIXEL_SPACING,
    invert: bool = True,
) -> Dict[str, List[str]]:
    """Convert the JSRT images with their merged SCR lung masks into ``output`` (see the module docstring).

    Args:
        source: the folder holding the ``.IMG`` files.
        output: a new (or empty) folder outside ``source`` (and ``scr``).
        scr: the extracted SCR folder (default: ``source``).
        sizes: output sizes in pixels.
        split_counts: ``(train, test)`` cases, at most the number of images (the rest: ``unused``).
        seed: seed of the split.
        pixel_spacing: source pixel spacing, mm.
        invert: ``4095 - v`` (lungs dark), see the module docstring.

    Returns:
        ``{"train", "test": sorted case IDs}``.
    """
    source = check_source_folder(source, "JSRT source folder")
    scr = check_source_folder(scr, "SCR mask folder") if scr else source
    if not pixel_spacing > 0:
        raise ValueError(f"pixel_spacing must be a positive number of mm, got {pixel_spacing!r}")
    images = find_images(source)
    masks = find_masks(scr, sorted(images))
    cases = {}
    for case, image in images.items():
        side = raw_side(image)
        for mask in masks[case]:
            check_aspect((side, side), gif_shape(mask), image, mask)
        cases[case] = Radiograph(case, image, masks[case], float(pixel_spacing))
    record = {
        "converter": "jsrt",
        "layout": "<case>.IMG (big-endian 12-bit), SCR .../{left lung,right lung}/<case>.gif (merged; heart dropped)",
        "options": {"scr": scr, "pixel_spacing": pixel_spacing, "invert": invert},
    }
    if scr != source:
        check_output_folder(output, scr)  # the output must not mix with the SCR release either
    return convert_radiographs(
        cases,
        lambda case: read_raw(case.image, invert),
        read_gif_mask,
        output,
        source,
        sizes,
        split_counts,
        seed,
        record,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = converter_parser(__doc__, "folder holding JSRT's 247 .IMG files")
    parser.add_argument("--scr", default=None, help="extracted SCR mask folder (default: searched in SOURCE)")
    add_xray_arguments(parser, PAPER_SPLIT)
    parser.add_argument("--pixel-spacing", type=float, default=PIXEL_SPACING, help="source pixel spacing, mm")
    parser.add_argument("--no-invert", action="store_true", help="keep the stored values (air bright)")
    args = parser.parse_args(argv)
    return run_converter(
        parser,
        lambda: convert(
            args.source,
            args.output,
            args.scr,
            args.sizes,
            args.split_counts,
            args.seed,
            args.pixel_spacing,
            not args.no_invert,
        ),
        args.output,
        "image(s)",
    )


if __name__ == "__main__":
    sys.exit(main())
