"""data_scripts/learn2reg_abdomen_ctmr.py on a tiny AbdomenMRCT release in its own layout."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from data_scripts import learn2reg_abdomen_ctmr
from data_scripts.conversion import MANIFEST_NAME, RECORD_NAME
from tests.data_scripts.checks import assert_manifest, assert_nothing_written, assert_onehot_of, assert_same_image, tree
from tests.data_scripts.fixtures import write_abdomen_mrct
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.load import get_data_loader

ROLES = ("moving", "fixed")


@pytest.fixture
def release(tmp_path):
    source = str(tmp_path / "AbdomenMRCT")
    return source, write_abdomen_mrct(source)


def test_pairs_direction_tree_voxels_labels_masks_manifest_and_loader(release, tmp_path):
    source, expected = release
    out = str(tmp_path / "converted")
    splits = learn2reg_abdomen_ctmr.convert(source, out, masks=True)
    assert splits == expected  # case 3 is in both json lists: valid only
    files = [
        f"{split}/{role}_{kind}/{pid}.nii.gz"
        for split, ids in splits.items()
        for role in ROLES
        for kind in ("images", "labels", "masks")
        for pid in ids
    ]
    assert tree(out) == sorted(files + [MANIFEST_NAME, RECORD_NAME])
    for split, ids in splits.items():
        for pid in ids:
            # moving = CT (channel 0001), fixed = MR (channel 0000), labels and masks beside
            for role, channel in (("moving", "0001"), ("fixed", "0000")):
                name = f"{pid}_{channel}.nii.gz"
                got = os.path.join(out, split, f"{role}_%s", pid + ".nii.gz")
                assert_same_image(got % "images", os.path.join(source, "imagesTr", name))
                assert_same_image(got % "masks", os.path.join(source, "masksTr", name))
                assert_onehot_of(got % "labels", os.path.join(source, "labelsTr", name), 4)
    assert_manifest(out)
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["direction"] == {"moving": "CT", "fixed": "MR"}
    assert record["pairs"]["valid"]["AbdomenMRCT_0003"]["moving"] == os.path.join(
        "imagesTr", "AbdomenMRCT_0003_0001.nii.gz"
    )
    config = {
        "train": {"dir": os.path.join(out, "train"), "format": "nifti", "labeled": True},
        "valid": {"dir": os.path.join(out, "valid"), "format": "nifti", "labeled": True},
        "type": "paired",
        "moving_image_shape": [8, 8, 8],
        "fixed_image_shape": [8, 8, 8],
    }
    for split, count in (("train", 2), ("valid", 1)):
        loader = get_data_loader(config, split)
        assert loader.num_samples == count
        loader.check_all_files()
        image_indices, label_indices = next(iter(loader.sample_generator()))
        sample = loader.load_sample(image_indices, label_indices)
        assert sample["moving_label"].shape[1:] == (8, 8, 8) and sample["fixed_label"].shape[1:] == (8, 8, 8)
        loader.close()


def test_integer_labels_no_valid_and_cli(release, tmp_path):
    source, expected = release
    out = str(tmp_path / "out")
    assert learn2reg_abdomen_ctmr.main([source, out, "--label-format", "integer", "--no-valid"]) == 0
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    # without the validation list, case 3 stays a training pair
    assert record["splits"] == {"train": expected["train"] + expected["valid"]}
    for pid in record["splits"]["train"]:
        assert_same_image(
            os.path.join(out, "train", "moving_labels", pid + ".nii.gz"),
            os.path.join(source, "labelsTr", pid + "_0001.nii.gz"),
        )
    assert not any("masks" in f for f in tree(out))
    assert_manifest(out)


def test_json_roles_do_not_decide_the_direction(release, tmp_path):
    source, _ = release
    json_path = os.path.join(source, "AbdomenMRCT_dataset.json")
    info = json.load(open(json_path))
    first = info["training_paired_images"][0]
    first["fixed"], first["moving"] = first["moving"], first["fixed"]  # CT listed as fixed
    json.dump(info, open(json_path, "w"))
    out = str(tmp_path / "out")
    learn2reg_abdomen_ctmr.convert(source, out)
    assert_same_image(
        os.path.join(out, "train", "moving_images", "AbdomenMRCT_0001.nii.gz"),
        os.path.join(source, "imagesTr", "AbdomenMRCT_0001_0001.nii.gz"),
    )


def test_bad_input_is_refused_before_writing(release, tmp_path):
    source, _ = release
    out = str(tmp_path / "out")
    json_path = os.path.join(source, "AbdomenMRCT_dataset.json")
    with pytest.raises(ValueError, match="inside the source"):
        learn2reg_abdomen_ctmr.convert(source, os.path.join(source, "imagesTr", "x"))
    with pytest.raises(FileExistsError, match="holds the source"):
        learn2reg_abdomen_ctmr.convert(source, str(tmp_path))
    os.remove(os.path.join(source, "labelsTr", "AbdomenMRCT_0002_0001.nii.gz"))
    with pytest.raises(DataNotFoundError, match=r"CT label map of pair AbdomenMRCT_0002.*AbdomenMRCT_0002_0001"):
        learn2reg_abdomen_ctmr.convert(source, out)
    os.remove(os.path.join(source, "imagesTr", "AbdomenMRCT_0001_0000.nii.gz"))
    with pytest.raises(DataNotFoundError, match=r"MR image of pair AbdomenMRCT_0001.*AbdomenMRCT_0001_0000"):
        learn2reg_abdomen_ctmr.convert(source, out)
    info = json.load(open(json_path))
    info["training_paired_images"][1]["moving"] = info["training_paired_images"][1]["fixed"]
    json.dump(info, open(json_path, "w"))
    with pytest.raises(DataError, match=r"training_paired_images\[1\] pairs two images of one modality"):
        learn2reg_abdomen_ctmr.convert(source, out)
    del info["training_paired_images"]
    json.dump(info, open(json_path, "w"))
    with pytest.raises(DataError, match="'training_paired_images'"):
        learn2reg_abdomen_ctmr.convert(source, out)
    os.remove(json_path)
    with pytest.raises(DataNotFoundError, match="AbdomenMRCT_dataset.json"):
        learn2reg_abdomen_ctmr.convert(source, out)
    assert_nothing_written(str(tmp_path), "out")


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        learn2reg_abdomen_ctmr.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--masks" in text and "--moving" in text and "--labels" in text


def test_moving_mr_and_liver_only_onehot(release, tmp_path):
    source, expected = release
    out = str(tmp_path / "mr_to_ct")
    assert learn2reg_abdomen_ctmr.main([source, out, "--moving", "MR", "--labels", "1"]) == 0
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["direction"] == {"moving": "MR", "fixed": "CT"} and record["options"]["labels"] == [1]
    assert record["label_numbers"] == {"1": 1} and record["splits"] == expected
    for split, ids in expected.items():
        for pid in ids:
            # moving = MR (channel 0000), fixed = CT (channel 0001); one channel: the liver (label 1)
            for role, channel in (("moving", "0000"), ("fixed", "0001")):
                name = f"{pid}_{channel}.nii.gz"
                got = os.path.join(out, split, f"{role}_%s", pid + ".nii.gz")
                assert_same_image(got % "images", os.path.join(source, "imagesTr", name))
                assert_onehot_of(got % "labels", os.path.join(source, "labelsTr", name), 1)
    assert record["pairs"]["valid"]["AbdomenMRCT_0003"]["moving"] == os.path.join(
        "imagesTr", "AbdomenMRCT_0003_0000.nii.gz"
    )
    assert_manifest(out)
    config = {
        "train": {"dir": os.path.join(out, "train"), "format": "nifti", "labeled": True},
        "type": "paired",
        "moving_image_shape": [8, 8, 8],
        "fixed_image_shape": [8, 8, 8],
    }
    loader = get_data_loader(config, "train")
    image_indices, label_indices = next(iter(loader.sample_generator()))
    sample = loader.load_sample(image_indices, label_indices)
    assert sample["moving_label"].shape[1:] == (8, 8, 8) and sample["fixed_label"].shape[1:] == (8, 8, 8)
    loader.close()


def test_selected_labels_renumbered_in_order_as_integer_maps(release, tmp_path):
    source, expected = release
    out = str(tmp_path / "kidneys")
    learn2reg_abdomen_ctmr.convert(source, out, label_format="integer", labels=[4, 3], include_valid=False)
    pid = expected["train"][0]
    got = np.transpose(
        sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(out, "train", "moving_labels", pid + ".nii.gz")))
    )
    published = np.transpose(
        sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(source, "labelsTr", pid + "_0001.nii.gz")))
    )
    # left kidney (4) -> 1, right kidney (3) -> 2, liver and spleen -> background
    reference = np.where(published == 4, 1, np.where(published == 3, 2, 0))
    assert set(np.unique(published)) >= {3, 4} and np.array_equal(got, reference)
    assert json.load(open(os.path.join(out, RECORD_NAME)))["label_numbers"] == {"1": 4, "2": 3}


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"moving": "US"}, ValueError, r"moving must be one of \['CT', 'MR'\]"),
        ({"labels": [5]}, ValueError, r"labels \[5\] are not label numbers of this release: expected numbers in 1..4"),
        ({"labels": [1, 1]}, ValueError, "labels must be one or more distinct"),
        ({"labels": [0]}, ValueError, "labels must be one or more distinct"),
    ],
)
def test_bad_direction_or_labels(release, tmp_path, kwargs, error, message):
    source, _ = release
    with pytest.raises(error, match=message):
        learn2reg_abdomen_ctmr.convert(source, str(tmp_path / "out"), **kwargs)
    assert not os.path.exists(tmp_path / "out")
