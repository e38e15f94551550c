"""data_scripts/brats_reg.py on a tiny BraTSReg 2022 release in its own layout."""

import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from data_scripts import brats_reg
from data_scripts.conversion import MANIFEST_NAME, RECORD_NAME
from tests.data_scripts.checks import assert_manifest, assert_nothing_written, assert_same_image, tree
from tests.data_scripts.fixtures import BRATS_DAYS, write_brats_reg, write_landmark_csv
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.load import get_data_loader

CASES = sorted(BRATS_DAYS)


@pytest.fixture
def release(tmp_path):
    source = str(tmp_path / "BraTSReg_Training_Data_v3")
    return source, write_brats_reg(source)


def _source_file(source, case, time, kind):
    day = "0000" if time == "00" else BRATS_DAYS[case]
    suffix = "csv" if kind == "landmarks" else "nii.gz"
    return os.path.join(source, case, f"{case}_{time}_{day}_{kind}.{suffix}")


def test_tree_direction_landmarks_manifest_and_loader(release, tmp_path):
    source, landmarks = release
    out = str(tmp_path / "converted")
    splits = brats_reg.convert(source, out)
    assert splits == {"train": CASES}
    expected = [f"train/{role}_images/{case}.nii.gz" for role in ("moving", "fixed") for case in CASES]
    expected += [f"train/moving_landmarks/{case}.csv" for case in CASES]
    expected += [f"train/fixed_landmarks/{case}.csv" for case in CASES if case != "BraTSReg_004"]  # withheld
    assert tree(out) == sorted(expected + [MANIFEST_NAME, RECORD_NAME])
    for case in CASES:
        # moving = follow-up (_01_), fixed = baseline (_00_), t1ce by default
        assert_same_image(
            os.path.join(out, "train", "moving_images", case + ".nii.gz"), _source_file(source, case, "01", "t1ce")
        )
        assert_same_image(
            os.path.join(out, "train", "fixed_images", case + ".nii.gz"), _source_file(source, case, "00", "t1ce")
        )
        for role, time in (("moving", "01"), ("fixed", "00")):
            if f"{case}/{time}" not in landmarks:
                continue
            copied = os.path.join(out, "train", f"{role}_landmarks", case + ".csv")
            with open(copied, "rb") as a, open(_source_file(source, case, time, "landmarks"), "rb") as b:
                assert a.read() == b.read()  # copied as published
            rows, index = landmarks[f"{case}/{time}"]
            np.testing.assert_array_equal(brats_reg.read_landmarks(copied), rows)
            # the documented convention: X, Y, Z are LPS mm; SimpleITK maps them to the 0-based voxel index
            image = sitk.ReadImage(os.path.join(out, "train", f"{role}_images", case + ".nii.gz"))
            for point, voxel in zip(rows[:, 1:], index):
                assert image.TransformPhysicalPointToIndex(point.tolist()) == tuple(int(v) for v in voxel)
            np.testing.assert_array_equal(rows[:, 1:] + [0, image.GetSize()[1] - 1, 0], index)  # (X, Y + 239, Z)
    assert_manifest(out)
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["cases"]["BraTSReg_001"]["days"] == {"baseline": "0000", "follow_up": "0106"}
    assert record["cases"]["BraTSReg_002"]["landmarks"] == {
        "moving": {"count": 6, "outside_grid": 0},
        "fixed": {"count": 6, "outside_grid": 0},
    }
    assert record["cases"]["BraTSReg_004"]["landmarks"] == {"moving": {"count": 6, "outside_grid": 0}}
    loader = get_data_loader(
        {
            "train": {"dir": os.path.join(out, "train"), "format": "nifti", "labeled": False},
            "type": "paired",
            "moving_image_shape": [8, 8, 8],
            "fixed_image_shape": [8, 8, 8],
        },
        "train",
    )
    assert loader.num_samples == 4
    loader.check_all_files()
    loader.close()


def test_paper_split_modality_and_no_landmarks(release, tmp_path):
    source, _ = release
    out = str(tmp_path / "out")
    code = brats_reg.main(
        [source, out, "--split-counts", "2", "1", "1", "--seed", "5", "--modality", "flair", "--landmarks", "none"]
    )
    assert code == 0
    splits = json.load(open(os.path.join(out, RECORD_NAME)))["splits"]
    order = np.random.default_rng(5).permutation(4)
    assert splits == {
        "train": sorted(CASES[i] for i in order[:2]),
        "valid": [CASES[order[2]]],
        "test": [CASES[order[3]]],
    }
    assert not any("landmarks" in f for f in tree(out))
    case = splits["valid"][0]
    assert_same_image(
        os.path.join(out, "valid", "moving_images", case + ".nii.gz"), _source_file(source, case, "01", "flair")
    )
    assert_manifest(out)


def test_landmarks_outside_the_grid_are_counted(release, tmp_path):
    source, landmarks = release
    rows = landmarks["BraTSReg_001/01"][0].copy()
    rows[0, 2] = 5.0  # Y = 5 mm is index j = 12, outside the 8^3 grid (as a voxel index read as mm would be)
    write_landmark_csv(_source_file(source, "BraTSReg_001", "01", "landmarks"), rows)
    out = str(tmp_path / "out")
    brats_reg.convert(source, out, split="valid")
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["cases"]["BraTSReg_001"]["landmarks"]["moving"]["outside_grid"] == 1
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, RECORD_NAME, "valid"]


def test_bad_input_is_refused_before_writing(release, tmp_path):
    source, _ = release
    out = str(tmp_path / "out")
    with pytest.raises(DataNotFoundError, match="missing landmark file of case BraTSReg_004.*_00_0000_landmarks.csv"):
        brats_reg.convert(source, out, landmarks="require")
    with pytest.raises(ValueError, match="modality must be one of"):
        brats_reg.convert(source, out, modality="dwi")
    with pytest.raises(ValueError, match="holds 4 cases"):
        brats_reg.convert(source, out, split_counts=(10, 2, 1))
    csv_path = _source_file(source, "BraTSReg_002", "00", "landmarks")
    original = open(csv_path).read()
    open(csv_path, "w").write(original.replace("Landmark,X,Y,Z", "id,x,y,z"))
    with pytest.raises(DataError, match=r"BraTSReg_002_00_0000_landmarks.csv: expected the header Landmark,X,Y,Z"):
        brats_reg.convert(source, out)
    open(csv_path, "w").write(original + "7,1.0,two,3\n")
    with pytest.raises(DataError, match="line 8: expected 4 numbers"):
        brats_reg.convert(source, out)
    open(csv_path, "w").write(original)
    os.remove(_source_file(source, "BraTSReg_003", "01", "t1ce"))
    with pytest.raises(DataNotFoundError, match=r"missing follow-up t1ce scan of case BraTSReg_003.*_01_0031_t1ce"):
        brats_reg.convert(source, out)
    brats_reg.convert(source, out, modality="t2")  # the other sequences of that case are complete
    shutil.rmtree(out)
    shutil.copy(
        _source_file(source, "BraTSReg_001", "01", "t1"),
        os.path.join(source, "BraTSReg_001", "BraTSReg_001_01_0107_t1.nii.gz"),
    )
    with pytest.raises(DataError, match="two days"):
        brats_reg.convert(source, out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="no case folder"):
        brats_reg.convert(str(empty), out)
    assert_nothing_written(str(tmp_path), "out")


def test_help_from_the_command_line():
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(brats_reg.__file__), "brats_reg.py")
    result = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--modality" in result.stdout and "--landmarks" in result.stdout
    assert "LPS" in result.stdout and "moving_landmarks/<case>.csv" in result.stdout  # the docstring is the help


def test_command_line_reports_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        brats_reg.main([str(tmp_path / "missing"), str(tmp_path / "out")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "missing' does not exist" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
