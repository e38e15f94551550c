"""Listing the pairs to preprocess (tfreg.data.pair_sources): DeepReg paired folders and CSV files."""

import os

import numpy as np
import pytest

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.image_io import save_image
from tfreg.data.pair_sources import PairFiles, list_pairs, pairs_from_csv, pairs_from_folder


def _touch(folder, names, subs=("moving_images", "fixed_images", "moving_labels", "fixed_labels")):
    for sub in subs:
        for name in names:
            save_image(np.zeros((3, 3, 3), np.float32), os.path.join(folder, sub, name))


def test_folder_pairs_sorted_with_subfolders_and_formats(tmp_path):
    _touch(str(tmp_path), ["b.nii.gz", "a.mha", "sub/c.nii"])
    pairs = pairs_from_folder(str(tmp_path))
    assert [p.pair_id for p in pairs] == ["a", "b", "sub/c"]
    assert pairs[0] == PairFiles(
        "a",
        *(
            os.path.join(str(tmp_path), s, "a.mha")
            for s in ("moving_images", "fixed_images", "moving_labels", "fixed_labels")
        ),
    )
    assert pairs[2].fixed_label == os.path.join(str(tmp_path), "fixed_labels", "sub/c.nii") and pairs[2].has_labels


def test_folder_without_labels_and_bad_folders(tmp_path):
    _touch(str(tmp_path / "nolab"), ["x.nii.gz"], subs=("moving_images", "fixed_images"))
    (pair,) = list_pairs(str(tmp_path / "nolab"))
    assert not pair.has_labels and set(pair.files()) == {"moving_image", "fixed_image"}
    with pytest.raises(DataNotFoundError, match="input folder .*missing does not exist"):
        pairs_from_folder(str(tmp_path / "missing"))
    _touch(str(tmp_path / "one"), ["x.nii.gz"], subs=("moving_images",))
    with pytest.raises(DataNotFoundError, match="has no sub-folder fixed_images: expected DeepReg's paired layout"):
        pairs_from_folder(str(tmp_path / "one"))
    _touch(str(tmp_path / "half"), ["x.nii.gz"], subs=("moving_images", "fixed_images", "fixed_labels"))
    with pytest.raises(DataError, match="has one label sub-folder but not moving_labels"):
        pairs_from_folder(str(tmp_path / "half"))
    _touch(str(tmp_path / "odd"), ["x.nii.gz", "y.nii.gz"], subs=("moving_images",))
    _touch(str(tmp_path / "odd"), ["x.nii.gz", "z.nii.gz"], subs=("fixed_images",))
    with pytest.raises(DataError, match=r"missing from fixed_images: \['y'\], only in fixed_images: \['z'\]"):
        pairs_from_folder(str(tmp_path / "odd"))
    _touch(str(tmp_path / "dup"), ["x.nii.gz", "x.mha"], subs=("moving_images", "fixed_images"))
    with pytest.raises(DataError, match="two files for pair 'x'"):
        pairs_from_folder(str(tmp_path / "dup"))


def test_csv_pairs(tmp_path):
    _touch(str(tmp_path), ["a.nii.gz", "b.nii.gz"])
    (tmp_path / "pairs.csv").write_text(
        "pair_id,moving_image,fixed_image,moving_label,fixed_label\n"
        "second,moving_images/b.nii.gz,fixed_images/b.nii.gz,moving_labels/b.nii.gz,fixed_labels/b.nii.gz\n"
        f"first,{tmp_path}/moving_images/a.nii.gz,fixed_images/a.nii.gz,moving_labels/a.nii.gz,fixed_labels/a.nii.gz\n"
    )
    pairs = list_pairs(str(tmp_path / "pairs.csv"))
    assert [p.pair_id for p in pairs] == ["second", "first"]  # file order
    assert pairs[0].moving_image == os.path.join(str(tmp_path), "moving_images/b.nii.gz") and pairs[1].has_labels


@pytest.mark.parametrize(
    "text,message",
    [
        ("pair_id,moving_image\nx,a\n", r"lacks the column\(s\) \['fixed_image'\]"),
        ("pair_id,moving_image,fixed_image\n", "lists no pair"),
        ("pair_id,moving_image,fixed_image\nx,m.nii.gz,\n", "row 2: the fixed_image cell is empty"),
        (
            "pair_id,moving_image,fixed_image\nx,m.nii.gz,m.nii.gz\nx,m.nii.gz,m.nii.gz\n",
            "row 3: pair_id 'x' is listed twice",
        ),
        ("pair_id,moving_image,fixed_image\n../x,m.nii.gz,m.nii.gz\n", "pair_id '../x' cannot name output files"),
        (
            "pair_id,moving_image,fixed_image\nx,nope.nii.gz,m.nii.gz\n",
            "row 2: moving_image file .*nope.nii.gz does not exist",
        ),
        (
            "pair_id,moving_image,fixed_image,moving_label,fixed_label\nx,m.nii.gz,m.nii.gz,m.nii.gz,m.nii.gz\n"
            "y,m.nii.gz,m.nii.gz,,\n",
            r"row 3: the moving_label cell is empty \(the label columns are filled for some rows",
        ),
    ],
)
def test_bad_csv(tmp_path, text, message):
    save_image(np.zeros((3, 3), np.float32), str(tmp_path / "m.nii.gz"))
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        pairs_from_csv(str(tmp_path / "p.csv"))
    with pytest.raises(DataNotFoundError, match="pair list .*none.csv does not exist"):
        pairs_from_csv(str(tmp_path / "none.csv"))
