"""tfreg.file_safety: scratch names, stale-scratch cleanup, atomic writes, input protection, output markers."""

import os
import re
import subprocess
import sys

import pytest

from tfreg import file_safety as fs


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def scratch_named(folder, pid, name="x.nii.gz", host=None):
    return os.path.join(folder, f"{fs.SCRATCH_PREFIX}{host or fs._host()}-{pid}-0123abcd-{name}")


def test_scratch_path_is_hidden_beside_the_target_and_keeps_its_suffix(tmp_path):
    target = tmp_path / "out" / "warped.nii.gz"
    path = fs.scratch_path(str(target))
    assert os.path.dirname(path) == str(target.parent)
    name = os.path.basename(path)
    assert name.startswith(".tfreg-partial-") and name.endswith("-warped.nii.gz")
    assert re.search(rf"-{os.getpid()}-[0-9a-f]{{8}}-warped", name)
    assert fs.scratch_path(str(target)) != path  # fresh every time


def test_clean_stale_scratch_removes_only_dead_processes_entries(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_dir = scratch_named(tmp_path, dead_pid(), "test")
        os.makedirs(os.path.join(dead_dir, "pair_0"))
        dead_file = scratch_named(tmp_path, dead_pid(), "config.yaml")
        open(dead_file, "w").close()
        live_dir = scratch_named(tmp_path, live.pid, "test")
        os.mkdir(live_dir)
        own = scratch_named(tmp_path, os.getpid(), "test")
        os.mkdir(own)
        other_host = scratch_named(tmp_path, dead_pid(), "test", host="elsewhere-node-7")
        os.mkdir(other_host)
        user = tmp_path / ".tfreg-partial-notes.txt"  # the user's file: not our pattern
        user.write_text("keep")
        removed = fs.clean_stale_scratch(str(tmp_path))
        assert sorted(removed) == sorted([dead_dir, dead_file])
        assert not os.path.exists(dead_dir) and not os.path.exists(dead_file)
        for kept in (live_dir, own, other_host, str(user)):
            assert os.path.exists(kept), kept
    finally:
        live.kill()
        live.wait()
    assert fs.clean_stale_scratch(str(tmp_path / "missing")) == []


def test_atomic_output_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "a.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with fs.atomic_output(str(target)) as scratch:
            with open(scratch, "w") as f:
                f.write("half")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.csv"]  # no scratch left
    with fs.atomic_output(str(target)) as scratch:
        with open(scratch, "w") as f:
            f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["a.csv"]
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with fs.atomic_output(str(tmp_path / "b.csv")):
            pass


def test_check_not_input_sees_through_symlinks_and_hard_links(tmp_path):
    image = tmp_path / "image.nii.gz"
    image.write_bytes(b"data")
    os.symlink(image, tmp_path / "link.nii.gz")
    os.link(image, tmp_path / "hard.nii.gz")
    for out in (
        str(image),
        str(tmp_path / "link.nii.gz"),
        str(tmp_path / "hard.nii.gz"),
        str(tmp_path / "." / "image.nii.gz"),
    ):
        with pytest.raises(FileExistsError, match=r"--out .* is the input --image"):
            fs.check_not_input({"--out": out}, {"--ddf": str(tmp_path / "ddf.nii.gz"), "--image": str(image)})
    fs.check_not_input({"--out": str(tmp_path / "new.nii.gz")}, {"--image": str(image), "--ddf": None})


def test_check_folder_holds_no_input(tmp_path):
    data = tmp_path / "exp" / "test" / "moving_images"
    data.mkdir(parents=True)
    for folder in (tmp_path / "exp" / "test", data, tmp_path):
        with pytest.raises(FileExistsError, match="holds the input dataset.test.dir"):
            fs.check_folder_holds_no_input(str(folder), {"dataset.test.dir": str(data)})
    fs.check_folder_holds_no_input(str(tmp_path / "exp" / "other"), {"dataset.test.dir": str(data)})


def test_markers_and_replaceable_folders(tmp_path):
    ours = tmp_path / "ours"
    ours.mkdir()
    fs.write_marker(str(ours), "tfreg_predict", {"split": "test"})
    assert fs.read_marker(str(ours))["split"] == "test"
    fs.check_replaceable(str(ours), "tfreg_predict")
    with pytest.raises(FileExistsError, match="marker of tfreg_predict"):
        fs.check_replaceable(str(ours), "tfreg_other")
    user = tmp_path / "user"
    user.mkdir()
    with pytest.raises(FileExistsError, match=r"user was not written by tfreg_predict \(no tfreg marker"):
        fs.check_replaceable(str(user), "tfreg_predict")
    (user / fs.OUTPUT_MARKER).write_text("not json")
    with pytest.raises(FileExistsError, match="no tfreg marker"):
        fs.check_replaceable(str(user), "tfreg_predict")
    os.symlink(ours, tmp_path / "link")
    with pytest.raises(FileExistsError, match="a file or a link"):
        fs.check_replaceable(str(tmp_path / "link"), "tfreg_predict")


def test_replace_folder(tmp_path):
    target, new = tmp_path / "test", tmp_path / "new"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    fs.replace_folder(str(new), str(target))
    assert os.listdir(target) == ["new.txt"] and sorted(os.listdir(tmp_path)) == ["test"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    fs.replace_folder(str(fresh), str(tmp_path / "absent"))
    assert sorted(os.listdir(tmp_path)) == ["absent", "test"]


def _marker_with(folder, **fields):
    """Mark ``folder`` incomplete, then overwrite fields of the marker (another pid, another host)."""
    import json

    path = fs.mark_incomplete(str(folder), "tfreg_train")
    with open(path, encoding="utf-8") as stream:
        content = json.load(stream)
    content.update(fields)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(content, stream)
    return path


def test_incomplete_marker_names_its_process_and_tells_a_killed_one_from_a_running_one(tmp_path):
    import json

    assert fs.incomplete_state(str(tmp_path)) is None
    path = fs.mark_incomplete(str(tmp_path / "run"), "tfreg_train")  # creates the folder
    assert os.path.basename(path) == fs.INCOMPLETE_MARKER
    with open(path, encoding="utf-8") as stream:
        content = json.load(stream)
    assert content["pid"] == os.getpid() and content["tool"] == "tfreg_train"
    assert fs.incomplete_state(str(tmp_path / "run")) == "running"  # this process
    assert f"process {os.getpid()} of tfreg_train" in fs.describe_incomplete(str(tmp_path / "run"))
    _marker_with(tmp_path / "run", pid=dead_pid())
    assert fs.incomplete_state(str(tmp_path / "run")) == "abandoned"
    # a process on another machine sharing the folder cannot be seen: assumed running
    _marker_with(tmp_path / "run", pid=dead_pid(), host="some-other-host")
    assert fs.incomplete_state(str(tmp_path / "run")) == "running"
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("not json")
    assert fs.incomplete_state(str(tmp_path / "run")) == "running"  # unreadable: never taken for abandoned
    assert fs.clear_incomplete(str(tmp_path / "run")) and not os.path.exists(path)
    assert not fs.clear_incomplete(str(tmp_path / "run"))
