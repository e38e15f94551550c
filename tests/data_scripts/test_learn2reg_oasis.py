"""data_scripts/learn2reg_oasis.py on tiny Learn2Reg and neurite-oasis releases in their own layouts."""

import json
import os

import numpy as np
import pytest

from data_scripts import learn2reg_oasis
from data_scripts.conversion import MANIFEST_NAME, RECORD_NAME
from tests.data_scripts.checks import assert_manifest, assert_nothing_written, assert_onehot_of, assert_same_image, tree
from tests.data_scripts.fixtures import write_learn2reg_oasis, write_neurite_oasis, write_volume
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.load import get_data_loader


@pytest.fixture
def l2r(tmp_path):
    source = str(tmp_path / "OASIS")
    return source, write_learn2reg_oasis(source)


def test_json_split_tree_voxels_labels_manifest_and_loader(l2r, tmp_path):
    source, expected = l2r
    out = str(tmp_path / "converted")
    splits = learn2reg_oasis.convert(source, out, masks=True)
    train = [s for s in expected["training"] if s not in expected["valid"]]
    assert splits == {"train": train, "valid": expected["valid"]}
    files = [
        f"{split}/{kind}/{subject}.nii.gz"
        for split, ids in splits.items()
        for kind in ("images", "labels", "masks")
        for subject in ids
    ]
    assert tree(out) == sorted(files + [MANIFEST_NAME, RECORD_NAME])
    for split, ids in splits.items():
        for subject in ids:
            name = f"{subject}_0000.nii.gz"
            assert_same_image(
                os.path.join(out, split, "images", subject + ".nii.gz"), os.path.join(source, "imagesTr", name)
            )
            assert_same_image(
                os.path.join(out, split, "masks", subject + ".nii.gz"), os.path.join(source, "masksTr", name)
            )
            assert_onehot_of(
                os.path.join(out, split, "labels", subject + ".nii.gz"), os.path.join(source, "labelsTr", name), 35
            )
    assert_manifest(out)
    record = json.load(open(os.path.join(out, RECORD_NAME)))
    assert record["layout"] == "learn2reg" and record["splits"] == splits and record["options"]["split"] == "json"
    # tfreg reads the tree: 5 training images pair up into 2 samples, 3 validation images into 1
    config = {
        "train": {"dir": os.path.join(out, "train"), "format": "nifti", "labeled": True},
        "valid": {"dir": os.path.join(out, "valid"), "format": "nifti", "labeled": True},
        "type": "unpaired",
        "image_shape": [8, 8, 8],
    }
    for split, count in (("train", 2), ("valid", 1)):
        loader = get_data_loader(config, split)
        assert loader.num_samples == count and loader.label_count(loader.loader_moving_label, 0) == 35
        loader.check_all_files()  # labels in [0, 1]: the one-hot maps are what the loader accepts
        image_indices, label_indices = next(iter(loader.sample_generator()))
        sample = loader.load_sample(image_indices, label_indices)
        assert sample["moving_image"].shape == (8, 8, 8)
        assert sample["moving_label"].shape == (len(label_indices), 8, 8, 8)
        loader.close()


def test_paper_split_is_seeded_and_integer_labels_are_copies(l2r, tmp_path):
    source, expected = l2r
    out_a, out_b, out_c = (str(tmp_path / n) for n in ("a", "b", "c"))
    a = learn2reg_oasis.main(
        [source, out_a, "--split", "paper", "--split-counts", "4", "2", "1", "--seed", "3", "--label-format", "integer"]
    )
    assert a == 0
    splits = json.load(open(os.path.join(out_a, RECORD_NAME)))["splits"]
    # the documented draw: sorted IDs permuted by NumPy's default_rng(seed)
    ids = sorted(expected["training"])
    order = np.random.default_rng(3).permutation(len(ids))
    assert splits == {
        "train": sorted(ids[i] for i in order[:4]),
        "valid": sorted(ids[i] for i in order[4:6]),
        "test": [ids[order[6]]],
    }
    assert learn2reg_oasis.convert(source, out_b, split="paper", split_counts=(4, 2, 1), seed=3, label_format="integer")
    assert json.load(open(os.path.join(out_b, RECORD_NAME)))["splits"] == splits  # same seed, same split
    learn2reg_oasis.convert(source, out_c, split="paper", split_counts=(4, 2, 1), seed=4)
    assert json.load(open(os.path.join(out_c, RECORD_NAME)))["splits"] != splits
    subject = splits["test"][0]
    assert_same_image(
        os.path.join(out_a, "test", "labels", subject + ".nii.gz"),
        os.path.join(source, "labelsTr", subject + "_0000.nii.gz"),
    )
    assert "masks" not in os.listdir(os.path.join(out_a, "train"))
    assert_manifest(out_a)


def test_neurite_layout_with_4_labels(tmp_path):
    source = str(tmp_path / "neurite-oasis")
    ids = write_neurite_oasis(source)
    out = str(tmp_path / "out")
    splits = learn2reg_oasis.convert(source, out, split_counts=(3, 1, 1), num_labels=4)
    assert sorted(sum(splits.values(), [])) == ids and [len(splits[s]) for s in ("train", "valid", "test")] == [3, 1, 1]
    for split, subjects in splits.items():
        for subject in subjects:
            folder = os.path.join(source, subject)
            assert_same_image(
                os.path.join(out, split, "images", subject + ".nii.gz"), os.path.join(folder, "aligned_norm.nii.gz")
            )
            assert_onehot_of(
                os.path.join(out, split, "labels", subject + ".nii.gz"), os.path.join(folder, "aligned_seg4.nii.gz"), 4
            )
    assert json.load(open(os.path.join(out, RECORD_NAME)))["layout"] == "neurite"
    assert_manifest(out)
    loader = get_data_loader(
        {
            "test": {"dir": os.path.join(out, "test"), "format": "nifti", "labeled": True},
            "type": "unpaired",
            "image_shape": [8, 8, 8],
        },
        "test",
    )
    assert loader.num_samples == 0  # one image: no pair
    loader.close()


def test_bad_input_is_refused_before_writing(l2r, tmp_path):
    source, _ = l2r
    out = str(tmp_path / "out")
    with pytest.raises(DataNotFoundError, match="nowhere"):
        learn2reg_oasis.convert(str(tmp_path / "nowhere"), out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="OASIS_dataset.json"):
        learn2reg_oasis.convert(str(empty), out)
    with pytest.raises(ValueError, match="inside the source"):
        learn2reg_oasis.convert(source, os.path.join(source, "converted"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not empty"):
        learn2reg_oasis.convert(source, str(busy))
    assert os.listdir(busy) == ["keep.txt"]
    with pytest.raises(ValueError, match="only the 35-label maps"):
        learn2reg_oasis.convert(source, out, num_labels=4)
    with pytest.raises(ValueError, match="add up to 7"):
        learn2reg_oasis.convert(source, out, split="paper")  # 314:50:50 on 7 subjects
    os.remove(os.path.join(source, "labelsTr", "OASIS_0003_0000.nii.gz"))
    with pytest.raises(DataNotFoundError, match=r"label map of subject OASIS_0003.*labelsTr/OASIS_0003_0000.nii.gz"):
        learn2reg_oasis.convert(source, out)
    assert_nothing_written(str(tmp_path), "out")


def test_bad_label_values_and_json(l2r, tmp_path):
    source, _ = l2r
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[0, 0, 0] = 40  # more than the 35 labels declared
    write_volume(os.path.join(source, "labelsTr", "OASIS_0002_0000.nii.gz"), labels, origin=(-1.0, 4.0, 5.5))
    with pytest.raises(DataError, match=r"OASIS_0002_0000.nii.gz holds values in \[0, 40\]"):
        learn2reg_oasis.convert(source, str(tmp_path / "out"))
    assert_nothing_written(str(tmp_path), "out")  # the failure came mid-way: the scratch folder is gone
    json_path = os.path.join(source, "OASIS_dataset.json")
    info = json.load(open(json_path))
    del info["training"]
    json.dump(info, open(json_path, "w"))
    with pytest.raises(DataError, match="'training'"):
        learn2reg_oasis.convert(source, str(tmp_path / "out"))
    open(json_path, "w").write("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        learn2reg_oasis.convert(source, str(tmp_path / "out"))


def test_label_off_grid_is_refused(l2r, tmp_path):
    source, _ = l2r
    write_volume(
        os.path.join(source, "labelsTr", "OASIS_0001_0000.nii.gz"),
        np.zeros((8, 8, 8), np.uint8),
        origin=(50.0, 0.0, 0.0),
    )
    with pytest.raises(DataError, match="OASIS_0001_0000.nii.gz.*not on the grid"):
        learn2reg_oasis.convert(source, str(tmp_path / "out"))


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        learn2reg_oasis.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--split-counts" in text and "--label-format" in text and "--masks" in text
