"""data_scripts/synthetic_releases.py: the phantoms' anatomy and correspondences, and the converters on them."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from data_scripts import brats_reg, learn2reg_abdomen_ctmr, learn2reg_oasis, synthetic_releases
from data_scripts.conversion import RECORD_NAME
from tfreg.data.load import get_data_loader

SHAPE = (24, 24, 20)


def _read(path):
    """``(i, j, k)`` array and the SimpleITK image."""
    image = sitk.ReadImage(str(path))
    return np.transpose(sitk.GetArrayFromImage(image)), image


def test_neurite_oasis_phantom_labels_contrast_and_conversion(tmp_path):
    source = tmp_path / "neurite"
    shape = (40, 40, 40)  # the cortex is a shell of a few voxels: thick enough for a median of its own
    synthetic_releases.write_release("neurite-oasis", str(source), 6, shape, seed=1)
    subjects = sorted(p for p in os.listdir(source) if p.startswith("OASIS_OAS1_"))
    assert subjects == [f"OASIS_OAS1_{n:04d}_MR1" for n in range(1, 7)]
    seg4_first = None
    for subject in subjects:
        seg4, _ = _read(source / subject / "aligned_seg4.nii.gz")
        seg35, _ = _read(source / subject / "aligned_seg35.nii.gz")
        norm, _ = _read(source / subject / "aligned_norm.nii.gz")
        assert set(np.unique(seg4)) == {0, 1, 2, 3, 4}
        # seg35 splits each of the four labels by hemisphere: 1..4 on one side, 5..8 on the other
        np.testing.assert_array_equal(seg35 > 0, seg4 > 0)
        np.testing.assert_array_equal(np.where(seg35 > 0, (seg35 - 1) % 4 + 1, 0), seg4)
        # T1 contrast (medians, robust to the blurred borders): WM > subcortical GM > cortex > CSF
        medians = [np.median(norm[seg4 == k]) for k in (3, 2, 1, 4)]
        assert medians == sorted(medians, reverse=True), medians
        if seg4_first is None:
            seg4_first = seg4
    # subjects differ (inter-subject registration is not the identity)
    assert (seg4 != seg4_first).mean() > 0.02

    out = tmp_path / "converted"
    splits = learn2reg_oasis.convert(str(source), str(out), split_counts=(2, 2, 2), num_labels=4)
    assert sum(len(v) for v in splits.values()) == 6
    config = {"test": {"dir": str(out / "test"), "format": "nifti", "labeled": True}, "type": "unpaired"}
    config["image_shape"] = list(shape)
    loader = get_data_loader(config, "test")
    assert loader.num_samples == 1 and loader.label_count(loader.loader_moving_label, 0) == 4
    loader.close()


def test_abdomen_phantom_ct_hu_moved_mr_organs_and_conversion(tmp_path):
    source = tmp_path / "AbdomenMRCT"
    synthetic_releases.write_release("abdomen-mrct", str(source), 3, SHAPE, seed=2)
    info = json.load(open(source / "AbdomenMRCT_dataset.json"))
    assert [p["moving"] for p in info["registration_val"]] == ["./imagesTr/AbdomenMRCT_0003_0001.nii.gz"]
    ct, image = _read(source / "imagesTr" / "AbdomenMRCT_0001_0001.nii.gz")
    ct_labels, _ = _read(source / "labelsTr" / "AbdomenMRCT_0001_0001.nii.gz")
    mr_labels, _ = _read(source / "labelsTr" / "AbdomenMRCT_0001_0000.nii.gz")
    assert image.GetSpacing() == (2.0, 2.0, 2.0)
    assert ct.min() < -900  # air around the body, in HU
    for label, hu in ((1, 60.0), (2, 45.0)):  # liver, spleen
        assert ct[ndimage.binary_erosion(ct_labels == label)].mean() == pytest.approx(hu, abs=8.0)
    # the MR shows the same patient's organs, moved a little: overlapping, not identical
    for label in (1, 2, 3, 4):
        a, b = ct_labels == label, mr_labels == label
        dice = 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
        assert 0.3 < dice < 1.0, (label, dice)

    out = tmp_path / "converted"
    splits = learn2reg_abdomen_ctmr.convert(str(source), str(out))
    assert splits == {"train": ["AbdomenMRCT_0001", "AbdomenMRCT_0002"], "valid": ["AbdomenMRCT_0003"]}


def test_brats_phantom_landmarks_correspond_and_convert(tmp_path):
    source = tmp_path / "BraTSReg"
    synthetic_releases.write_release("brats-reg", str(source), 3, SHAPE, seed=3)
    origin = np.asarray(synthetic_releases.brats_origin(SHAPE))
    closer = []
    for case in sorted(os.listdir(source)):
        files = sorted(os.listdir(source / case))
        baseline = brats_reg.read_landmarks(str(source / case / [f for f in files if "_00_0000_landmarks" in f][0]))
        follow_up = brats_reg.read_landmarks(
            str(source / case / [f for f in files if "_01_" in f and "landmarks" in f][0])
        )
        base_image, image = _read(source / case / [f for f in files if f.endswith("_00_0000_t1ce.nii.gz")][0])
        follow_image, _ = _read(source / case / [f for f in files if "_01_" in f and f.endswith("_t1ce.nii.gz")][0])
        assert image.GetOrigin() == tuple(origin) and image.GetSpacing() == (1.0, 1.0, 1.0)
        np.testing.assert_array_equal(baseline[:, 0], follow_up[:, 0])
        q = follow_up[:, 1:] - origin  # follow-up voxels: integers by construction
        np.testing.assert_allclose(q, np.round(q), atol=1e-4)
        p = baseline[:, 1:] - origin
        shift = np.linalg.norm(p - q, axis=1)
        assert shift.max() <= 3.0 * np.sqrt(3) and shift.mean() > 0.3
        # the baseline at p looks like the follow-up at q, more than the baseline at q does
        at_p = ndimage.map_coordinates(base_image.astype(float), p.T, order=1)
        at_q = ndimage.map_coordinates(base_image.astype(float), q.T, order=1)
        follow = follow_image[tuple(np.round(q).astype(int).T)].astype(float)
        closer.append(np.abs(at_p - follow).mean() < np.abs(at_q - follow).mean())
    assert all(closer)

    out = tmp_path / "converted"
    brats_reg.convert(str(source), str(out), split_counts=(1, 1, 1))
    record = json.load(open(out / RECORD_NAME))
    for details in record["cases"].values():
        assert {role: v["outside_grid"] for role, v in details["landmarks"].items()} == {"moving": 0, "fixed": 0}


def test_write_release_refuses_bad_arguments(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        synthetic_releases.write_release("brats-reg", str(tmp_path / "full"), 3, SHAPE)
    with pytest.raises(ValueError, match="release must be one of"):
        synthetic_releases.write_release("oasis", str(tmp_path / "a"), 3, SHAPE)
    with pytest.raises(ValueError, match="shape must be three sizes"):
        synthetic_releases.write_release("brats-reg", str(tmp_path / "a"), 3, (4, 24, 24))
    with pytest.raises(ValueError, match="cases must be at least 2"):
        synthetic_releases.write_release("brats-reg", str(tmp_path / "a"), 1, SHAPE)
    assert (
        synthetic_releases.main(["learn2reg-oasis", str(tmp_path / "l2r"), "--cases", "3", "--shape", "8", "8", "8"])
        == 0
    )
    splits = learn2reg_oasis.convert(str(tmp_path / "l2r"), str(tmp_path / "l2r_out"))
    assert splits == {"train": ["OASIS_0001"], "valid": ["OASIS_0002", "OASIS_0003"]}
