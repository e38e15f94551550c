"""demos/staged_demo.py and the demos' data scripts without a network (no TensorFlow training)."""

import importlib
import os

import numpy as np
import pytest

from demos import staged_demo


def test_column_means_skip_empty_and_non_finite_cells(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("a,b,pair_index\n0.5,,[0, 1]\n0.25,nan,[2, 3]\n1.0,2.0,[4, 5]\n0.75,4.0,[6, 7]\n")
    summary = staged_demo.column_means(str(path), ("a", "b", "missing"))
    assert sorted(summary) == ["a", "b"]
    a = np.array([0.5, 0.25, 1.0, 0.75])
    assert summary["a"] == {"mean": pytest.approx(a.mean()), "median": pytest.approx(np.median(a)), "count": 4}
    assert summary["b"] == {"mean": pytest.approx(3.0), "median": pytest.approx(3.0), "count": 2}


def test_latest_stage_checkpoint_keeps_test_and_full_runs_apart(tmp_path):
    for run, numbers in (("20260101-000000", (10, 50)), ("20260102-000000-test", (1,)), ("20260103-000000", ())):
        save = tmp_path / "logs_train" / run / "register" / "save"
        save.mkdir(parents=True)
        for n in numbers:
            (save / f"ckpt-{n}.index").write_text("")
    # the newest full run has no checkpoint: the one before it is used, at its largest N
    expected = tmp_path / "logs_train" / "20260101-000000" / "register" / "save" / "ckpt-50"
    assert staged_demo.latest_stage_checkpoint(str(tmp_path), "register", "demo") == str(expected)
    test = staged_demo.latest_stage_checkpoint(str(tmp_path), "register", "demo", test=True)
    assert test.endswith(os.path.join("20260102-000000-test", "register", "save", "ckpt-1"))
    with pytest.raises(FileNotFoundError, match="segmenter checkpoint.*demo_train.py"):
        staged_demo.latest_stage_checkpoint(str(tmp_path), "segmenter", "demo")


def test_portable_path_is_relative_inside_the_repository(tmp_path):
    inside = os.path.join(staged_demo.REPO_ROOT, "demos", "x", "dataset")
    assert staged_demo.portable_path(inside) == os.path.join("demos", "x", "dataset")
    assert staged_demo.portable_path(str(tmp_path)) == str(tmp_path)


def test_without_network_or_source_the_download_steps_are_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(staged_demo, "network_available", lambda *args, **kwargs: False)
    oasis = importlib.import_module("demos.oasis_wssamnet_pp.demo_data")
    assert oasis.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "wget https://surfer.nmr.mgh.harvard.edu/ftp/data/neurite/data/neurite-oasis.v1.0.tar" in err
    abdomen = importlib.import_module("demos.abdomen_ctmr_wssamnet_pp.demo_data")
    assert abdomen.main(["--dir", str(tmp_path)]) == 2
    assert "learn2reg.grand-challenge.org" in capsys.readouterr().err
    brats = importlib.import_module("demos.brats_reg_wssamnet.demo_data")
    assert brats.main(["--dir", str(tmp_path)]) == 2
    assert "brats-reg-challenge" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "dataset")


def test_existing_dataset_is_kept_without_overwrite(tmp_path, capsys):
    brats = importlib.import_module("demos.brats_reg_wssamnet.demo_data")
    args = ["--synthetic", "--cases", "3", "--shape", "16", "16", "16", "--dir", str(tmp_path)]
    assert brats.main(args) == 0
    marker = tmp_path / "dataset" / "conversion.json"
    before = marker.read_text()
    assert brats.main(args) == 1
    assert "--overwrite" in capsys.readouterr().err and marker.read_text() == before
    assert brats.main(args + ["--overwrite", "--seed", "1"]) == 0
    assert marker.read_text() != before
    # both scans of the one training case, linked for the pre-training
    images = tmp_path / "dataset_pretrain" / "train" / "images"
    assert len(os.listdir(images)) == 2 and all(os.path.isfile(images / name) for name in os.listdir(images))
