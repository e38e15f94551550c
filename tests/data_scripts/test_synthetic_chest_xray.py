"""data_scripts/synthetic_chest_xray.py: the phantoms and the three releases' own layouts (read back here with
NumPy and Pillow), and the converters run on them."""

import os

import numpy as np
import pytest
from PIL import Image

from data_scripts import jsrt, montgomery, shenzhen, synthetic_chest_xray


def test_phantom_has_dark_lungs_inside_a_bright_body():
    subject = synthetic_chest_xray.phantom((64, 64), np.random.default_rng(0))
    picture, lungs = subject["picture"], subject["left"] | subject["right"]
    assert picture.shape == (64, 64) and 0.0 <= picture.min() and picture.max() <= 1.0
    assert not np.any(subject["left"] & subject["right"])
    assert picture[lungs].mean() < 0.3 < picture[~lungs][picture[~lungs] > 0.3].mean()
    # the patient's right lung is on the picture's left
    assert np.argwhere(subject["right"])[:, 1].mean() < 32 < np.argwhere(subject["left"])[:, 1].mean()


def test_jsrt_layout_raw_big_endian_12_bit_with_scr_gifs(tmp_path):
    out = synthetic_chest_xray.write_release("jsrt", str(tmp_path / "jsrt"), 4, (32, 32), seed=1)
    names = sorted(os.listdir(out))
    assert names == ["JPCLN001.IMG", "JPCLN002.IMG", "JPCLN003.IMG", "JPCLN004.IMG", "scr"]
    raw = np.fromfile(os.path.join(out, "JPCLN001.IMG"), dtype=">u2")
    assert raw.size == 32 * 32 and raw.max() <= 4095
    for fold, case in (("fold1", "JPCLN001"), ("fold2", "JPCLN002")):
        for folder in ("left lung", "right lung", "heart"):
            with Image.open(os.path.join(out, "scr", fold, "masks", folder, case + ".gif")) as gif:
                assert gif.format == "GIF" and gif.size == (16, 16)
    splits = jsrt.convert(out, str(tmp_path / "c"), scr=os.path.join(out, "scr"), sizes=(8,), split_counts=(3, 1))
    assert len(splits["train"]) == 3 and len(splits["test"]) == 1


def test_montgomery_and_shenzhen_layouts(tmp_path):
    mont = synthetic_chest_xray.write_release("montgomery", str(tmp_path / "m"), 4, (24, 20), seed=2)
    with Image.open(os.path.join(mont, "CXR_png", "MCUCXR_0001_1.png")) as png:
        assert png.size == (20, 24) and np.asarray(png).max() <= 4095
    for side in ("leftMask", "rightMask"):
        assert sorted(os.listdir(os.path.join(mont, "ManualMask", side))) == sorted(
            os.listdir(os.path.join(mont, "CXR_png"))
        )
    assert montgomery.convert(mont, str(tmp_path / "mc"), sizes=(8,), split_counts=(2, 2))["test"]
    shen = synthetic_chest_xray.write_release("shenzhen", str(tmp_path / "s"), 8, (16, 16), seed=3)
    with Image.open(os.path.join(shen, "CXR_png", "CHNCXR_0004_0.png")) as png:
        assert png.mode == "RGB"
    assert sorted(os.listdir(os.path.join(shen, "mask"))) == [f"CHNCXR_{n:04d}_{n % 2}_mask.png" for n in range(1, 7)]
    splits = shenzhen.convert(shen, str(tmp_path / "sc"), sizes=(8,), split_counts=(4, 2))
    assert sorted(splits["train"] + splits["test"]) == [f"CHNCXR_{n:04d}_{n % 2}" for n in range(1, 7)]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="release must be one of"):
        synthetic_chest_xray.write_release("nih", str(tmp_path / "a"), 4, (32, 32))
    with pytest.raises(ValueError, match="JSRT: square and even"):
        synthetic_chest_xray.write_release("jsrt", str(tmp_path / "a"), 4, (32, 30))
    with pytest.raises(ValueError, match="cases must be at least 4"):
        synthetic_chest_xray.write_release("montgomery", str(tmp_path / "a"), 3, (32, 32))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        synthetic_chest_xray.write_release("shenzhen", str(tmp_path / "full"), 4, (32, 32))
