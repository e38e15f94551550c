"""demos/deepreg_demo.py: the release (download, checksum, extraction), the split counts, the data
command's flow, and what the train/predict entry points derive (no TensorFlow training here)."""

import hashlib
import json
import os
import tarfile
import zipfile

import pytest

from demos import deepreg_demo, staged_demo
from demos.paired_ct_lung import demo_data as lung
from tests.demos import deepreg_fixtures as fx
from tfreg.data.errors import DataError


def _sha256(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _release(archive, sha256):
    return deepreg_demo.Release(
        url=f"file://{archive}", filename="training.zip", sha256=sha256, checksum_note="published by the test"
    )


def _run(release, tmp_path, *args):
    parser = deepreg_demo.data_parser("paired_ct_lung", lung.__doc__, release)
    return deepreg_demo.run_data("paired_ct_lung", release, lung.convert, parser, ["--dir", str(tmp_path), *args])


def test_a_published_checksum_is_verified(tmp_path):
    archive, _ = fx.write_lung_release(str(tmp_path / "src"), 3)
    assert _run(_release(archive, _sha256(archive)), tmp_path / "demo", "--source", archive) == 0
    record = json.loads((tmp_path / "demo" / "dataset" / "conversion.json").read_text())
    assert record["checksum"] == "verified" and record["archive_sha256"] == _sha256(archive)


def test_a_wrong_checksum_stops_before_anything_is_written(tmp_path, capsys):
    archive, _ = fx.write_lung_release(str(tmp_path / "src"), 3)
    assert _run(_release(archive, "0" * 64), tmp_path / "demo", "--source", archive) == 1
    err = capsys.readouterr().err
    assert archive in err and "publishes " + "0" * 64 in err
    assert not os.path.exists(tmp_path / "demo" / "dataset")
    assert not os.path.exists(tmp_path / "demo" / "dataset_source")


def test_download_checks_and_keeps_the_archive(tmp_path, monkeypatch):
    archive, _ = fx.write_lung_release(str(tmp_path / "src"), 3)
    monkeypatch.setattr(staged_demo, "network_available", lambda *args, **kwargs: True)
    assert _run(_release(archive, _sha256(archive)), tmp_path / "demo") == 0
    kept = tmp_path / "demo" / "dataset_source" / "training.zip"
    assert _sha256(kept) == _sha256(archive)
    # a damaged download is removed, not kept under the archive's name
    bad = tmp_path / "bad"
    with pytest.raises(DataError, match="SHA-256"):
        deepreg_demo.download(_release(archive, "f" * 64), str(bad / "training.zip"))
    assert os.listdir(bad) == []


def test_without_network_the_download_steps_are_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(staged_demo, "network_available", lambda *args, **kwargs: False)
    assert lung.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "wget -O" in err and "https://zenodo.org/record/3835682/files/training.zip" in err
    assert f"sha256sum {tmp_path / 'dataset_source' / 'training.zip'}" in err
    assert not os.path.exists(tmp_path / "dataset")


def test_an_existing_dataset_is_kept_without_overwrite(tmp_path, capsys):
    archive, _ = fx.write_lung_release(str(tmp_path / "src"), 3)
    args = ["--dir", str(tmp_path / "demo"), "--source", archive]
    assert lung.main(args) == 0
    record = (tmp_path / "demo" / "dataset" / "conversion.json").read_text()
    assert lung.main(args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "demo" / "dataset" / "conversion.json").read_text() == record
    assert lung.main(args + ["--overwrite", "--seed", "3"]) == 0


def test_an_extracted_folder_is_used_as_it_is(tmp_path):
    archive, _ = fx.write_lung_release(str(tmp_path / "src"), 3)
    assert lung.main(["--dir", str(tmp_path / "demo"), "--source", str(tmp_path / "src")]) == 0
    record = json.loads((tmp_path / "demo" / "dataset" / "conversion.json").read_text())
    assert record["archive_sha256"] is None and record["source"] == str(tmp_path / "src")


def test_extraction_refuses_members_outside_the_folder(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/ok.txt", "fine")
        zf.writestr("../escaped.txt", "not fine")
    with pytest.raises(DataError, match=r"'\.\./escaped\.txt'.*outside"):
        deepreg_demo.extract_archive(str(archive), str(tmp_path / "out" / "evil"))
    assert not os.path.exists(tmp_path / "escaped.txt") and os.listdir(tmp_path / "out") == []


def test_extraction_refuses_links_in_tar_files(tmp_path):
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "file.txt").write_text("x")
    os.symlink("/etc/passwd", tmp_path / "content" / "link")
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "content", arcname="content")
    with pytest.raises(DataError, match="not a file or folder"):
        deepreg_demo.extract_archive(str(archive), str(tmp_path / "out" / "links"))
    assert os.listdir(tmp_path / "out") == []  # no scratch folder left either


def test_a_damaged_archive_is_refused_and_nothing_is_left(tmp_path):
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data/content.bin", b"A" * 4096)
    data = bytearray(archive.read_bytes())
    data[100:110] = b"B" * 10  # inside the stored member: its CRC no longer matches
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged"):
        deepreg_demo.extract_archive(str(archive), str(tmp_path / "out" / "damaged"))
    assert os.listdir(tmp_path / "out") == []


def test_something_that_is_no_archive_is_refused(tmp_path):
    path = tmp_path / "page.zip"
    path.write_text("<html>not found</html>")
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        deepreg_demo.extract_archive(str(path), str(tmp_path / "out"))


@pytest.mark.parametrize(
    "total, valid, test, minimum, expected",
    [(30, 3, 4, 2, (23, 3, 4)), (8, 0, 1, 2, (4, 2, 2)), (3, 0, 0, 1, (1, 1, 1))],
)
def test_split_counts_raise_small_splits_to_the_minimum(total, valid, test, minimum, expected):
    assert deepreg_demo.split_counts(total, valid, test, minimum) == expected


def test_split_counts_refuse_too_few_cases():
    with pytest.raises(DataError, match="holds 5 cases.*at least 6"):
        deepreg_demo.split_counts(5, 0, 0, minimum=2)


def test_relocated_dataset_moves_every_split_of_the_demo_folder(tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text(
        "dataset:\n  train:\n    dir: [demos/x/dataset/part00, demos/x/dataset/part01]\n"
        "  valid:\n    dir: demos/x/dataset/part02\n  test:\n    dir: /elsewhere/test\n  type: paired\n"
    )
    assert deepreg_demo.relocated_dataset(str(config), "x", "/data/x") == {
        "train": {"dir": ["/data/x/dataset/part00", "/data/x/dataset/part01"]},
        "valid": {"dir": "/data/x/dataset/part02"},
        "test": {"dir": "/elsewhere/test"},
    }


def test_latest_checkpoint_chooses_by_kind(tmp_path):
    for run, numbers in (("20260101-000000", (2, 10)), ("20260102-000000-test", (1,)), ("20260103-000000", ())):
        (tmp_path / run / "save").mkdir(parents=True)
        for n in numbers:
            (tmp_path / run / "save" / f"ckpt-{n}.index").write_text("")
    full = str(tmp_path / "20260101-000000" / "save" / "ckpt-10")
    quick = str(tmp_path / "20260102-000000-test" / "save" / "ckpt-1")
    assert deepreg_demo.latest_checkpoint(str(tmp_path), False, "x") == full
    assert deepreg_demo.latest_checkpoint(str(tmp_path), True, "x") == quick
    assert deepreg_demo.latest_checkpoint(str(tmp_path), None, "x") == quick  # the newest of either kind
    with pytest.raises(FileNotFoundError, match="demos/x/demo_train.py"):
        deepreg_demo.latest_checkpoint(str(tmp_path / "missing"), None, "x")


def test_train_and_predict_switches_follow_deepreg():
    train = deepreg_demo.run_parser("x", "", quick_default=True)
    assert train.parse_args([]).test is True and train.parse_args(["--full"]).test is False
    predict = deepreg_demo.predict_parser("x", "")
    assert predict.parse_args([]).test is None and predict.parse_args(["--test"]).test is True
    with pytest.raises(SystemExit):
        train.parse_args(["--test", "--full"])
