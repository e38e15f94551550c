"""data_scripts/conversion.py: the shared checks, the seeded split, one-hot labels, the atomic write, the manifest."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from data_scripts import conversion
from data_scripts.conversion import PlannedFile
from tests.data_scripts.checks import assert_manifest, assert_nothing_written, assert_onehot_of, tree
from tests.data_scripts.fixtures import write_volume
from tfreg.data.errors import DataError
from tfreg.data.image_io import read_image
from tfreg.file_safety import scratch_path


def test_seeded_split_counts_and_errors():
    ids = [f"s{n:02d}" for n in range(10)]
    splits = conversion.seeded_split(list(reversed(ids)), (6, 3, 1), seed=7)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [6, 3, 1]
    assert sorted(sum(splits.values(), [])) == ids
    assert splits == conversion.seeded_split(ids, (6, 3, 1), seed=7)  # input order does not matter
    assert conversion.seeded_split(ids, (10, 0, 0), seed=0) == {"train": ids, "valid": [], "test": []}
    with pytest.raises(ValueError, match="add up to 9 but the source holds 10"):
        conversion.seeded_split(ids, (6, 2, 1), seed=0)
    with pytest.raises(ValueError, match="three non-negative"):
        conversion.seeded_split(ids, (11, -1), seed=0)


def test_output_folder_checks(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert conversion.check_output_folder(str(empty), str(source)) == str(empty)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        conversion.check_output_folder(str(tmp_path / "file"), str(source))
    with pytest.raises(FileExistsError, match="holds the source"):
        conversion.check_output_folder(str(source), str(source))
    os.symlink(source, tmp_path / "link")
    with pytest.raises(ValueError, match="inside the source"):
        conversion.check_output_folder(str(tmp_path / "link" / "out"), str(source))


def test_onehot_labels_keep_geometry_and_refuse_bad_values(tmp_path):
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[1:3, 2:5, 3:7] = 2
    labels[5, 5, 5] = 4
    write_volume(str(tmp_path / "l.nii.gz"), labels)
    conversion.write_onehot_label(str(tmp_path / "l.nii.gz"), str(tmp_path / "o.nii.gz"), 4)
    assert_onehot_of(str(tmp_path / "o.nii.gz"), str(tmp_path / "l.nii.gz"), 4)
    array, geometry = read_image(str(tmp_path / "o.nii.gz"))  # tfreg reads (i, j, k, c)
    assert array.shape == (8, 8, 8, 4) and array[..., 0].sum() == 0 and array[..., 1].sum() == 2 * 3 * 4
    assert array[5, 5, 5, 3] == 1 and geometry.spacing == pytest.approx((1.0, 1.2, 1.5))
    write_volume(str(tmp_path / "f.nii.gz"), labels.astype(np.float32) + 0.5)
    with pytest.raises(DataError, match="f.nii.gz holds non-integer values"):
        conversion.write_onehot_label(str(tmp_path / "f.nii.gz"), str(tmp_path / "o2.nii.gz"), 4)
    write_volume(str(tmp_path / "n.nii.gz"), labels.astype(np.int16) - 1)
    with pytest.raises(DataError, match=r"n.nii.gz holds values in \[-1, 3\]"):
        conversion.write_onehot_label(str(tmp_path / "n.nii.gz"), str(tmp_path / "o3.nii.gz"), 4)


def test_write_tree_is_atomic_and_the_manifest_is_sha256sum_compatible(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("alpha\n")
    (source / "b.txt").write_text("beta\n")
    plan = [PlannedFile(str(source / "a.txt"), "train/x/a.txt"), PlannedFile(str(source / "b.txt"), "valid/x/b.txt")]
    out = tmp_path / "out"
    out.mkdir()  # an empty existing folder is replaced
    conversion.write_tree(plan, str(out), {"converter": "test"})
    assert tree(str(out)) == ["checksums.sha256", "conversion.json", "train/x/a.txt", "valid/x/b.txt"]
    assert_manifest(str(out))
    assert conversion.read_manifest(str(out / "checksums.sha256"))["train/x/a.txt"] == conversion.sha256_of(
        str(source / "a.txt")
    )
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=out, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    # a failing plan (a missing source file, a duplicate target) leaves no output and no scratch folder
    with pytest.raises(FileNotFoundError):
        conversion.write_tree(
            plan + [PlannedFile(str(source / "gone.txt"), "test/x/gone.txt")], str(tmp_path / "o2"), {}
        )
    with pytest.raises(DataError, match="two source files map to the output train/x/a.txt"):
        conversion.write_tree(plan + [PlannedFile(str(source / "b.txt"), "train/x/a.txt")], str(tmp_path / "o2"), {})
    assert_nothing_written(str(tmp_path), "o2")


def test_stale_scratch_of_a_killed_run_is_cleaned(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("alpha\n")
    host = scratch_path(str(tmp_path / "out")).split("-partial-")[1].rsplit("-", 3)[0]
    stale = tmp_path / f".tfreg-partial-{host}-999999999-0123abcd-out"  # no process has this id
    stale.mkdir()
    conversion.write_tree([PlannedFile(str(source / "a.txt"), "train/a.txt")], str(tmp_path / "out"), {})
    assert not stale.exists() and (tmp_path / "out" / "train" / "a.txt").is_file()


def test_seeded_split_names_give_the_same_draw_under_other_group_names():
    ids = [f"s{n:02d}" for n in range(9)]
    default = conversion.seeded_split(ids, (5, 0, 4), seed=2)
    named = conversion.seeded_split(ids, (5, 4, 0), seed=2, names=("train", "test", "unused"))
    assert named == {"train": default["train"], "test": default["test"], "unused": []}
    with pytest.raises(ValueError, match=r"split counts must be two non-negative numbers \(train test\)"):
        conversion.seeded_split(ids, (5, 4, 0), seed=2, names=("train", "test"))


def test_planned_file_write_makes_computed_files(tmp_path):
    def write(target):
        with open(target, "w") as stream:
            stream.write("computed\n")

    plan = [PlannedFile("made from a.png", "64/train/a.txt", write=write)]
    conversion.write_tree(plan, str(tmp_path / "out"), {"converter": "test"})
    assert (tmp_path / "out" / "64" / "train" / "a.txt").read_text() == "computed\n"
    assert_manifest(str(tmp_path / "out"))


def test_run_converter_prints_the_summary_and_notes_or_exits_with_one_line(tmp_path, capsys):
    parser = conversion.converter_parser("a converter", "the release")
    conversion.add_split_arguments(parser, (2, 1), "cases per split", names=("TRAIN", "TEST"))
    conversion.add_label_format_argument(parser)
    args = parser.parse_args(["src", str(tmp_path / "out"), "--split-counts", "3", "2", "--seed", "4"])
    assert (args.source, args.split_counts, args.seed, args.label_format) == ("src", [3, 2], 4, "onehot")

    def convert():
        source = tmp_path / "a.txt"
        source.write_text("a\n")
        record = {"converter": "test", "notes": ["1 case skipped"]}
        conversion.write_tree([PlannedFile(str(source), "train/a.txt")], args.output, record)
        return {"train": ["a"], "test": []}

    assert conversion.run_converter(parser, convert, args.output, "case(s)") == 0
    printed = capsys.readouterr().out
    assert "train: 1 case(s)" in printed and "test:" not in printed and "note: 1 case skipped" in printed

    def fail():
        raise DataError("image x.png is unreadable")

    with pytest.raises(SystemExit) as exit_info:
        conversion.run_converter(parser, fail, args.output, "case(s)")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().endswith("error: image x.png is unreadable")
