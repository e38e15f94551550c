"""data_scripts/jsrt.py, montgomery.py and shenzhen.py on tiny releases in their own layouts.

The expected outputs are computed here from the written fixtures: the merged masks resized by an exact
subdivision (:func:`tests.data_scripts.xray_fixtures.area_reference`), the pictures' grey values with the
BT.601 formula, min-max, and (at the source's own size) unchanged; the spacing from the field of view.
"""

import json
import os

import numpy as np
import pytest

from data_scripts import jsrt, montgomery, shenzhen
from data_scripts.conversion import MANIFEST_NAME, RECORD_NAME
from tests.data_scripts.checks import assert_manifest, assert_nothing_written, tree
from tests.data_scripts.xray_fixtures import (
    luma,
    mask_reference,
    min_max,
    write_jsrt,
    write_montgomery,
    write_png,
    write_shenzhen,
)
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.image_io import read_image
from tfreg.data.load import get_data_loader

JSRT_CASES = [f"JPCLN{n:03d}" for n in range(1, 5)] + [f"JPCNN{n:03d}" for n in range(1, 4)]
MONTGOMERY_CASES = [f"MCUCXR_{n:04d}_{n % 2}" for n in range(1, 7)]


def _expected_files(splits, sizes):
    return sorted(
        f"{size}/{split}/{kind}/{case}.nii.gz"
        for size in sizes
        for split, ids in splits.items()
        for kind in ("images", "labels")
        for case in ids
    )


def _read(out, size, split, kind, case):
    """The converted file as a ``(rows, cols)`` picture (tfreg reads ``(i, j)`` = ``(x, y)``) and its geometry."""
    array, geometry = read_image(os.path.join(out, str(size), split, kind, case + ".nii.gz"), dtype=None)
    assert array.ndim == 2 and geometry.ndim == 2
    return np.transpose(array), geometry


def _check_seeded_split(splits, cases, counts, seed):
    order = np.random.default_rng(seed).permutation(len(cases))
    ordered = sorted(cases)
    assert splits["train"] == sorted(ordered[i] for i in order[: counts[0]])
    assert splits["test"] == sorted(ordered[i] for i in order[counts[0] : counts[0] + counts[1]])


def _check_loader(out, size, count):
    """tfreg's 2-D unpaired loader reads the converted split (images in [0, 1], one label each)."""
    config = {
        "train": {"dir": os.path.join(out, str(size), "train"), "format": "nifti", "labeled": True},
        "type": "unpaired",
        "image_shape": [size, size],
    }
    loader = get_data_loader(config, "train")
    loader.check_all_files()
    assert loader.num_samples == count // 2
    image_indices, label_indices = next(iter(loader.sample_generator()))
    sample = loader.load_sample(image_indices, label_indices)
    assert sample["moving_image"].shape == (size, size) and sample["moving_label"].shape == (1, size, size)
    loader.close()


# ------------------------------------------------------------------------------------------ JSRT
def test_jsrt_merges_both_lungs_drops_the_heart_and_inverts(tmp_path):
    source, scr, out = str(tmp_path / "All247images"), str(tmp_path / "scr"), str(tmp_path / "out")
    written = write_jsrt(source, scr, JSRT_CASES, side=32, mask_side=16)
    splits = jsrt.convert(source, out, scr=scr, sizes=(8, 32), split_counts=(4, 2), seed=1)
    _check_seeded_split(splits, JSRT_CASES, (4, 2), 1)
    assert tree(out) == sorted(_expected_files(splits, (8, 32)) + [MANIFEST_NAME, RECORD_NAME])
    assert_manifest(out)
    for split, ids in splits.items():
        for case in ids:
            fixture = written[case]
            lungs = fixture["left"] | fixture["right"]  # 16 x 16 masks for 32 x 32 pictures
            for size in (8, 32):
                label, geometry = _read(out, size, split, "labels", case)
                assert label.dtype == np.uint8 and label.shape == (size, size)
                np.testing.assert_array_equal(label, mask_reference(lungs, size))
                assert geometry.spacing == pytest.approx((32 * 0.175 / size,) * 2)
                image, image_geometry = _read(out, size, split, "images", case)
                assert image.dtype == np.float32 and image.min() >= 0.0 and image.max() <= 1.0
                assert image_geometry.allclose(geometry)
            # at the source's size the picture is only inverted (4095 - v) and min-max normalised
            image, _ = _read(out, 32, split, "images", case)
            np.testing.assert_allclose(image, min_max(4095.0 - fixture["stored"]), atol=1e-6)
            # the heart is not part of the label: where only the heart is, the label is 0
            heart_only = (mask_reference(fixture["heart"] & ~lungs, 32) == 1) & (mask_reference(lungs, 32) == 0)
            assert heart_only.any() and not np.any(_read(out, 32, split, "labels", case)[0][heart_only])
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["converter"] == "jsrt" and record["unused"] == sorted(set(JSRT_CASES) - set(sum(splits.values(), [])))
    assert record["splits"] == splits and record["sizes"] == [8, 32] and record["options"]["invert"] is True
    _check_loader(out, 8, 4)


def test_jsrt_command_line_and_bad_input(tmp_path, capsys):
    source, scr = str(tmp_path / "src"), str(tmp_path / "scr")
    write_jsrt(source, scr, JSRT_CASES[:3], side=16, mask_side=16)
    out = str(tmp_path / "cli")
    argv = [source, out, "--scr", scr, "--sizes", "8", "--split-counts", "2", "1", "--no-invert"]
    assert jsrt.main(argv) == 0
    printed = capsys.readouterr().out
    assert "train: 2 image(s)" in printed and "test: 1 image(s)" in printed
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["options"]["invert"] is False and record["sizes"] == [8]
    # more cases asked for than the release holds: refused before writing, naming the option
    with pytest.raises(ValueError, match=r"split_counts \[197, 50\] ask for 247 cases but the source holds 3"):
        jsrt.convert(source, str(tmp_path / "o1"), scr=scr)
    # little-endian words of 12-bit values read as big-endian exceed 4095
    np.full((16, 16), 3000, "<u2").tofile(os.path.join(source, JSRT_CASES[0] + ".IMG"))
    with pytest.raises(DataError, match=r"JPCLN001.IMG holds the value \d+: expected 12-bit values"):
        jsrt.convert(source, str(tmp_path / "o2"), scr=scr, sizes=(8,), split_counts=(2, 1))
    assert_nothing_written(str(tmp_path), "o2")
    with open(os.path.join(source, JSRT_CASES[0] + ".IMG"), "wb") as stream:
        stream.write(b"\0" * 10)
    with pytest.raises(DataError, match="JPCLN001.IMG has 10 bytes: expected a square of 16-bit pixels"):
        jsrt.convert(source, str(tmp_path / "o3"), scr=scr, sizes=(8,), split_counts=(2, 1))
    os.remove(os.path.join(scr, "fold2", "masks", "right lung", JSRT_CASES[1] + ".gif"))
    with pytest.raises(DataNotFoundError, match=r"missing SCR right lung mask of JSRT case JPCLN002"):
        jsrt.convert(source, str(tmp_path / "o4"), scr=scr, sizes=(8,), split_counts=(2, 1))
    with pytest.raises(SystemExit):
        jsrt.main([str(tmp_path / "missing"), str(tmp_path / "o5")])
    assert "JSRT source folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ Montgomery
def test_montgomery_merges_left_and_right_masks_with_anisotropic_spacing(tmp_path):
    source, out = str(tmp_path / "MontgomerySet"), str(tmp_path / "out")
    written = write_montgomery(source, MONTGOMERY_CASES, shape=(40, 32))  # 40 rows, 32 columns
    splits = montgomery.convert(source, out, sizes=(8, 16), split_counts=(4, 2), seed=2)
    _check_seeded_split(splits, MONTGOMERY_CASES, (4, 2), 2)
    assert tree(out) == sorted(_expected_files(splits, (8, 16)) + [MANIFEST_NAME, RECORD_NAME])
    for split, ids in splits.items():
        for case in ids:
            merged = written[case]["left"] | written[case]["right"]
            for size in (8, 16):
                label, geometry = _read(out, size, split, "labels", case)
                np.testing.assert_array_equal(label, mask_reference(merged, size))
                # x along the 32 columns, y along the 40 rows
                assert geometry.spacing == pytest.approx((32 * 0.0875 / size, 40 * 0.0875 / size))
                image, _ = _read(out, size, split, "images", case)
                assert image.shape == (size, size) and 0.0 <= image.min() and image.max() <= 1.0
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["grey_from_rgb"] == [] and record["notes"] == []
    _check_loader(out, 16, 4)


def test_montgomery_refuses_a_missing_mask(tmp_path):
    source = str(tmp_path / "MontgomerySet")
    write_montgomery(source, MONTGOMERY_CASES[:3])
    os.remove(os.path.join(source, "ManualMask", "leftMask", MONTGOMERY_CASES[1] + ".png"))
    expected = os.path.join(source, "ManualMask", "leftMask", MONTGOMERY_CASES[1] + ".png")
    with pytest.raises(DataNotFoundError, match=f"missing lung mask of case {MONTGOMERY_CASES[1]}: .*{expected}"):
        montgomery.convert(source, str(tmp_path / "out"), sizes=(8,), split_counts=(2, 1))
    with pytest.raises(DataNotFoundError, match="missing Montgomery image folder"):
        montgomery.convert(str(tmp_path), str(tmp_path / "o"), sizes=(8,))


# ------------------------------------------------------------------------------------------ Shenzhen
def test_shenzhen_skips_unmasked_images_and_converts_rgb_with_bt601(tmp_path, capsys):
    source, out = str(tmp_path / "ChinaSet_AllFiles"), str(tmp_path / "out")
    masked = [f"CHNCXR_{n:04d}_{n % 2}" for n in range(1, 7)]
    unmasked = ["CHNCXR_0100_0", "CHNCXR_0101_1"]
    rgb = masked[:2]  # the first is RGBA
    written = write_shenzhen(source, masked, unmasked, rgb, shape=(16, 16))
    orphan = os.path.join(source, "mask", "CHNCXR_0999_0_mask.png")  # a mask whose image is not in the release
    os.link(os.path.join(source, "mask", masked[0] + "_mask.png"), orphan)
    assert shenzhen.main([source, out, "--sizes", "16", "4", "--split-counts", "4", "1", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "2 image(s) without a lung mask skipped" in printed and "1 mask(s) without an image" in printed
    assert "2 RGB picture(s) converted to grey with ITU-R BT.601" in printed and "pixel spacing unknown" in printed
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    splits = record["splits"]
    _check_seeded_split(splits, masked, (4, 1), 5)
    assert record["skipped"] == unmasked and record["masks_without_image"] == ["CHNCXR_0999_0_mask"]
    assert record["grey_from_rgb"] == sorted(rgb) and len(record["unused"]) == 1
    for split, ids in splits.items():
        for case in ids:
            image, geometry = _read(out, 16, split, "images", case)
            # same size: the grey picture (BT.601 luma for RGB(A)), min-max normalised
            np.testing.assert_allclose(image, min_max(luma(written[case]["picture"])), atol=1e-6)
            assert geometry.spacing == pytest.approx((1.0, 1.0))
            label, _ = _read(out, 4, split, "labels", case)
            np.testing.assert_array_equal(label, mask_reference(written[case]["mask"], 4))


def test_shenzhen_mask_folder_option_and_errors(tmp_path):
    source = str(tmp_path / "ChinaSet_AllFiles")
    write_shenzhen(source, ["CHNCXR_0001_0", "CHNCXR_0002_1"], [], [], shape=(8, 8))
    masks = str(tmp_path / "masks_release")
    os.rename(os.path.join(source, "mask"), masks)
    with pytest.raises(DataNotFoundError, match="missing Shenzhen mask folder.*give its place with --masks"):
        shenzhen.convert(source, str(tmp_path / "o1"), sizes=(4,), split_counts=(1, 1))
    out = str(tmp_path / "o2")
    splits = shenzhen.convert(source, out, masks=masks, sizes=(4,), split_counts=(1, 1), pixel_spacing=0.2)
    assert sorted(sum(splits.values(), [])) == ["CHNCXR_0001_0", "CHNCXR_0002_1"]
    assert _read(out, 4, "train", "images", splits["train"][0])[1].spacing == pytest.approx((0.4, 0.4))
    # a mask of another field of view (shape) than its image
    write_png(os.path.join(masks, "CHNCXR_0001_0_mask.png"), np.full((8, 4), 255, np.uint8))
    with pytest.raises(DataError, match="does not have the shape of its image"):
        shenzhen.convert(source, str(tmp_path / "o3"), masks=masks, sizes=(4,), split_counts=(1, 1))
    write_png(os.path.join(masks, "CHNCXR_0001_0_mask.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="CHNCXR_0001_0_mask.png is empty"):
        shenzhen.convert(source, str(tmp_path / "o4"), masks=masks, sizes=(4,), split_counts=(1, 1))
    assert_nothing_written(str(tmp_path), "o4")
