"""Convert the Montgomery County chest X-ray set into DeepReg's unpaired 2-D layout (lungs merged).

::

    python data_scripts/montgomery.py SOURCE OUTPUT [--sizes 64 256] [--split-counts 110 28] [--seed 0]
        [--pixel-spacing 0.0875]

Download (no network is needed by the converter itself): ``NLM-MontgomeryCXRSet.zip`` from the U.S.
National Library of Medicine (Jaeger et al. 2014, "Two public chest X-ray datasets for computer-aided
screening of pulmonary diseases"; https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets),
then ``unzip NLM-MontgomeryCXRSet.zip -d ~/data`` gives ``~/data/MontgomerySet`` (the SOURCE). No checksum
is published.

Source layout (as published; written from the release's description, not checked against a download here)::

    SOURCE/CXR_png/MCUCXR_XXXX_Y.png              138 posterior-anterior radiographs, 12-bit grey PNG,
                                                  4020 x 4892 or 4892 x 4020 pixels of 0.0875 mm
                                                  (Y: 0 normal, 1 tuberculosis)
    SOURCE/ManualMask/leftMask/MCUCXR_XXXX_Y.png  the left lung mask (0 / 255), the image's size
    SOURCE/ManualMask/rightMask/MCUCXR_XXXX_Y.png the right lung mask
    SOURCE/ClinicalReadings/MCUCXR_XXXX_Y.txt     not used

Every image needs both masks (a missing one is an error naming the expected file); the label is their
union. Output: see :mod:`data_scripts.chest_xray` (``OUTPUT/<size>/{train,test}/{images,labels}/
MCUCXR_XXXX_Y.nii.gz``); the default split is the paper's 110 train / 28 test (He, He and Cao 2022),
drawn with ``--seed``. AC-RegNet (Mansilla et al.) measures distances with ``4892 x 0.0875 / 256`` mm per
pixel at 256; here each axis keeps its own spacing (``W x 0.0875 / size`` and ``H x 0.0875 / size``).
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Sequence

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_scripts.chest_xray import (  # noqa: E402
    DEFAULT_SIZES,
    Radiograph,
    add_xray_arguments,
    check_png_case,
    convert_radiographs,
    png_cases,
    read_png_image,
    read_png_mask,
)
from data_scripts.conversion import check_source_folder, converter_parser, run_converter  # noqa: E402
from tfreg.data.errors import DataNotFoundError  # noqa: E402

#: The paper's split of the 138 images (train, test).
PAPER_SPLIT = (110, 28)
#: The published pixel spacing, mm.
PIXEL_SPACING = 0.0875
IMAGE_FOLDER = "CXR_png"
MASK_FOLDERS = (os.path.join("ManualMask", "leftMask"), os.path.join("ManualMask", "rightMask"))


def find_cases(source: str, pixel_spacing: float = PIXEL_SPACING) -> Dict[str, Radiograph]:
    """``{MCUCXR_XXXX_Y: Radiograph}`` of every image with its left and right lung masks.

    Raises:
        DataNotFoundError: no ``CXR_png`` folder or PNG, or a missing mask (naming the expected file).
    """
    cases = {}
    for case, image in png_cases(os.path.join(source, IMAGE_FOLDER), "Montgomery image").items():
        masks = tuple(os.path.join(source, folder, case + ".png") for folder in MASK_FOLDERS)
        for mask in masks:
            if not os.path.isfile(mask):
                raise DataNotFoundError(f"missing lung mask of case {case}: expected the file {mask}")
        cases[case] = Radiograph(case, image, masks, float(pixel_spacing))
    return cases


def convert(
    source: str,
    output: str,
    sizes: Sequence[int] = DEFAULT_SIZES,
    split_counts: Sequence[int] = PAPER_SPLIT,
    seed: int = 0,
    pixel_spacing: float = PIXEL_SPACING,
) -> Dict[str, List[str]]:
    """Convert an extracted Montgomery County set into ``output`` (see the module docstring).

    Args:
        source: the ``MontgomerySet`` folder.
        output: a new (or empty) folder outside ``source``.
        sizes: output sizes in pixels (square grids).
        split_counts: ``(train, test)`` cases, at most the number of images (the rest: ``unused``).
        seed: seed of the split.
        pixel_spacing: source pixel spacing, mm.

    Returns:
        ``{"train", "test": sorted case IDs}``.

    Raises:
        DataNotFoundError / DataError: a missing folder or mask, an unreadable picture, a mask of another
            shape; FileExistsError / ValueError: an unusable output folder or bad options.
    """
    source = check_source_folder(source, "Montgomery source folder")
    if not pixel_spacing > 0:
        raise ValueError(f"pixel_spacing must be a positive number of mm, got {pixel_spacing!r}")
    cases = find_cases(source, pixel_spacing)
    rgb = [case for case, item in cases.items() if check_png_case(item)]
    record = {
        "converter": "montgomery",
        "layout": "CXR_png/<case>.png, ManualMask/{leftMask,rightMask}/<case>.png (merged)",
        "options": {"pixel_spacing": pixel_spacing},
    }
    return convert_radiographs(
        cases, read_png_image, read_png_mask, output, source, sizes, split_counts, seed, record, rgb_cases=rgb
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = converter_parser(__doc__, "extracted MontgomerySet folder (CXR_png/, ManualMask/)")
    add_xray_arguments(parser, PAPER_SPLIT)
    parser.add_argument("--pixel-spacing", type=float, default=PIXEL_SPACING, help="source pixel spacing, mm")
    args = parser.parse_args(argv)
    return run_converter(
        parser,
        lambda: convert(args.source, args.output, args.sizes, args.split_counts, args.seed, args.pixel_spacing),
        args.output,
        "image(s)",
    )


if __name__ == "__main__":
    sys.exit(main())
