"""Convert the Shenzhen chest X-ray set and its separately released lung masks into DeepReg's 2-D layout.

::

    python data_scripts/shenzhen.py SOURCE OUTPUT [--masks MASK_FOLDER] [--sizes 64 256]
        [--split-counts 440 110] [--seed 0] [--pixel-spacing MM]

Download (no network is needed by the converter itself):

- the images: ``ChinaSet_AllFiles.zip`` from the U.S. National Library of Medicine (Jaeger et al. 2014,
  "Two public chest X-ray datasets for computer-aided screening of pulmonary diseases";
  https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets), then
  ``unzip ChinaSet_AllFiles.zip -d ~/data`` gives ``~/data/ChinaSet_AllFiles`` (the SOURCE);
- the lung masks, a separate release (Stirenko et al. 2018, "Chest X-ray analysis of tuberculosis by
  deep learning with segmentation and augmentation"; distributed on Kaggle as the Shenzhen lung masks):
  its ``mask/`` folder, by default expected at ``SOURCE/mask`` (``--masks`` names another place).

No checksum is published for either. Source layout (from the releases' descriptions, not checked against a
download here)::

    SOURCE/CXR_png/CHNCXR_XXXX_Y.png      662 radiographs, about 3000 x 3000 pixels, 8-bit; a few are saved
                                          as RGB(A) (converted to grey, ITU-R BT.601 luma, and reported)
    MASKS/CHNCXR_XXXX_Y_mask.png          one lung mask (both lungs, 0 / 255) for 566 of them

Images without a mask are skipped; they and masks without an image are counted in the printed notes and
listed in ``conversion.json`` (``skipped``, ``masks_without_image``). Output: see
:mod:`data_scripts.chest_xray`. The default split is the paper's 440 train / 110 test (He, He and Cao 2022
used the 550 images of AC-RegNet's release; with the 566 masked images, 16 are left ``unused``).

Pixel spacing: the release publishes none (AC-RegNet uses a placeholder of 1 mm per source pixel), so the
default is 1.0 "mm" per source pixel: distances computed from the output geometry are then in source pixels
(noted in ``conversion.json``). ``--pixel-spacing`` sets a known value.
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

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

#: The paper's split (train, test).
PAPER_SPLIT = (440, 110)
IMAGE_FOLDER = "CXR_png"
MASK_FOLDER = "mask"
MASK_SUFFIX = "_mask"


def find_cases(
    source: str, masks: Optional[str] = None, pixel_spacing: float = 1.0
) -> Tuple[Dict[str, Radiograph], List[str], List[str]]:
    """``({case: Radiograph} with a mask, images without a mask, masks without an image)``.

    Args:
        source: the ``ChinaSet_AllFiles`` folder (holding ``CXR_png/``).
        masks: the mask folder (default ``source/mask``).

    Raises:
        DataNotFoundError: a missing folder, no PNG, or no image with a mask.
    """
    images = png_cases(os.path.join(source, IMAGE_FOLDER), "Shenzhen image")
    mask_folder = masks or os.path.join(source, MASK_FOLDER)
    if not os.path.isdir(mask_folder):
        raise DataNotFoundError(
            f"missing Shenzhen mask folder: expected {mask_folder} (the separate lung-mask release's mask/ "
            "folder; give its place with --masks)"
        )
    mask_files = png_cases(mask_folder, "Shenzhen mask")
    cases, skipped = {}, []
    for case, image in images.items():
        mask = mask_files.get(case + MASK_SUFFIX)
        if mask is None:
            skipped.append(case)
        else:
            cases[case] = Radiograph(case, image, (mask,), float(pixel_spacing))
    orphans = sorted(
        name for name in mask_files if not (name.endswith(MASK_SUFFIX) and name[: -len(MASK_SUFFIX)] in images)
    )
    if not cases:
        raise DataNotFoundError(
            f"no Shenzhen image of {os.path.join(source, IMAGE_FOLDER)} has a mask <name>{MASK_SUFFIX}.png in "
            f"{mask_folder}"
        )
    return cases, skipped, orphans


def convert(
    source: str,
    output: str,
    masks: Optional[str] = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    split_counts: Sequence[int] = PAPER_SPLIT,
    seed: int = 0,
    pixel_spacing: Optional[float] = None,
) -> Dict[str, List[str]]:
    """Convert the Shenzhen images that have a lung mask into ``output`` (see the module docstring).

    Args:
        source: the ``ChinaSet_AllFiles`` folder.
        output: a new (or empty) folder outside ``source``.
        masks: the lung-mask release's ``mask/`` folder (default ``source/mask``).
        sizes: output sizes in pixels.
        split_counts: ``(train, test)`` cases, at most the number of masked images (the rest: ``unused``).
        seed: seed of the split.
        pixel_spacing: source pixel spacing, mm; None: unknown, 1.0 per source pixel (noted).

    Returns:
        ``{"train", "test": sorted case IDs}``.
    """
    source = check_source_folder(source, "Shenzhen source folder")
    if pixel_spacing is not None and not pixel_spacing > 0:
        raise ValueError(f"pixel_spacing must be a positive number of mm, got {pixel_spacing!r}")
    spacing = 1.0 if pixel_spacing is None else float(pixel_spacing)
    cases, skipped, orphans = find_cases(source, masks, spacing)
    rgb = [case for case, item in cases.items() if check_png_case(item)]
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} image(s) without a lung mask skipped (listed as 'skipped')")
    if orphans:
        notes.append(f"{len(orphans)} mask(s) without an image ignored (listed as 'masks_without_image')")
    if pixel_spacing is None:
        notes.append("pixel spacing unknown (not published): 1.0 per source pixel, so 'mm' are source pixels")
    record = {
        "converter": "shenzhen",
        "layout": f"CXR_png/<case>.png, <masks>/<case>{MASK_SUFFIX}.png",
        "options": {"masks": os.path.abspath(masks) if masks else None, "pixel_spacing": pixel_spacing},
        "skipped": skipped,
        "masks_without_image": orphans,
    }
    return convert_radiographs(
        cases, read_png_image, read_png_mask, output, source, sizes, split_counts, seed, record, notes, rgb
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = converter_parser(__doc__, "extracted ChinaSet_AllFiles folder (CXR_png/)")
    parser.add_argument("--masks", default=None, help="the lung-mask release's mask/ folder (default SOURCE/mask)")
    add_xray_arguments(parser, PAPER_SPLIT)
    parser.add_argument(
        "--pixel-spacing", type=float, default=None, help="source pixel spacing, mm (default: unknown, 1 per pixel)"
    )
    args = parser.parse_args(argv)
    return run_converter(
        parser,
        lambda: convert(
            args.source, args.output, args.masks, args.sizes, args.split_counts, args.seed, args.pixel_spacing
        ),
        args.output,
        "image(s)",
    )


if __name__ == "__main__":
    sys.exit(main())
