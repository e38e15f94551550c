"""The train and predict command lines: DeepReg's flags end to end, console scripts installed."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config

SCRIPTS = [
    "tfreg_train",
    "tfreg_predict",
    "tfreg_warp",
    "tfreg_vis",
    "tfreg_evaluate",
    "tfreg_preprocess",
    "deepreg_train",
    "deepreg_predict",
    "deepreg_warp",
    "deepreg_vis",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_help(script):
    path = shutil.which(script, path=os.path.dirname(sys.executable)) or shutil.which(script)
    if path is None:
        pytest.skip(f"{script} is not installed (pip install -e . creates it)")
    result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_deepreg_flags_parse():
    from tfreg.cli.predict import build_parser as predict_parser
    from tfreg.cli.train import build_parser as train_parser

    args = train_parser().parse_args(
        [
            "-g",
            "",
            "-gr",
            "-c",
            "a.yaml",
            "b.yaml",
            "-l",
            "exp",
            "-k",
            "x/ckpt-2",
            "--max_epochs",
            "3",
            "--num_workers",
            "2",
        ]
    )
    assert (args.gpu, args.gpu_allow_growth, args.config_path, args.exp_name) == ("", True, ["a.yaml", "b.yaml"], "exp")
    assert (args.ckpt_path, args.max_epochs, args.num_workers, args.log_dir, args.strategy) == (
        "x/ckpt-2",
        3,
        2,
        "logs",
        "auto",
    )
    assert train_parser().parse_args(["-c", "a.yaml", "-n", "e"]).exp_name == "e"
    args = predict_parser().parse_args(
        ["-k", "c/ckpt-1", "--split", "valid", "-b", "2", "-n", "p", "--no_nifti", "--save_png"]
    )
    assert (args.split, args.batch_size, args.save_nifti, args.save_png, args.config_path) == (
        "valid",
        2,
        False,
        True,
        None,
    )
    defaults = predict_parser().parse_args(["-k", "c/ckpt-1", "--split", "test"])
    assert (defaults.save_nifti, defaults.save_png, defaults.batch_size, defaults.overwrite) == (True, False, 1, False)
    with pytest.raises(SystemExit):
        predict_parser().parse_args(["-k", "c/ckpt-1"])  # --split is required, as in DeepReg


@pytest.mark.slow
def test_train_resume_predict_through_main(tmp_path, capsys):
    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()}")
    from tfreg.cli.predict import main as predict_main
    from tfreg.cli.train import main as train_main

    config = write_config(paired_config(data_root(), epochs=1), tmp_path / "deepreg.yaml")
    logs = str(tmp_path / "logs")
    assert train_main(["-c", config, "--log_dir", logs, "-l", "exp", "-v", "0"]) == 0
    assert os.path.isfile(os.path.join(logs, "exp", "save", "ckpt-1.index"))
    assert (
        train_main(
            [
                "-c",
                config,
                "--log_dir",
                logs,
                "-l",
                "exp",
                "-v",
                "0",
                "--max_epochs",
                "2",
                "-k",
                os.path.join(logs, "exp", "save", "ckpt-1"),
            ]
        )
        == 0
    )
    assert os.path.isfile(os.path.join(logs, "exp", "save", "ckpt-2.index"))
    assert (
        predict_main(
            ["-k", os.path.join(logs, "exp", "save", "ckpt-2"), "--split", "test", "--log_dir", logs, "-n", "pred"]
        )
        == 0
    )
    assert os.path.isfile(os.path.join(logs, "pred", "test", "metrics.csv"))
    capsys.readouterr()
    # errors: a message naming the problem, exit status 1, nothing written
    assert (
        predict_main(
            ["-k", os.path.join(logs, "exp", "save", "ckpt-2"), "--split", "test", "--log_dir", logs, "-n", "pred"]
        )
        == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert train_main(["-c", str(tmp_path / "missing.yaml"), "--log_dir", logs, "-l", "new"]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(logs, "new"))


def test_a_repeated_config_flag_merges_every_file_in_order():
    """``-c a.yaml -c b.yaml`` used to keep only b.yaml; it now means ``-c a.yaml b.yaml``."""
    from tfreg.cli.predict import build_parser as predict_parser
    from tfreg.cli.train import build_parser as train_parser

    args = train_parser().parse_args(["-c", "a.yaml", "b.yaml", "-c", "c.yaml", "--config_path", "d.yaml"])
    assert args.config_path == ["a.yaml", "b.yaml", "c.yaml", "d.yaml"]
    args = predict_parser().parse_args(["-k", "x/ckpt-1", "--split", "test", "-c", "a.yaml", "-c", "b.yaml"])
    assert args.config_path == ["a.yaml", "b.yaml"]
    assert predict_parser().parse_args(["-k", "x/ckpt-1", "--split", "test"]).config_path is None


def test_log_dir_and_exp_name_are_checked_before_anything_is_built(tmp_path, capsys, monkeypatch):
    from tfreg.cli.train import main
    from tfreg.engine import train as train_module

    config = write_config(paired_config(data_root()), tmp_path / "c.yaml")

    def never(*args, **kwargs):
        raise AssertionError("the data loader was built before the log folder was checked")

    monkeypatch.setattr(train_module, "build_loader", never)
    (tmp_path / "afile").write_text("x")
    assert main(["-c", config, "--log_dir", str(tmp_path / "afile"), "-l", "exp"]) == 1
    err = capsys.readouterr().err
    assert f"--log_dir {tmp_path / 'afile'} is a file" in err
    for name in ("../outside", "a/../../outside", str(tmp_path / "abs")):
        assert main(["-c", config, "--log_dir", str(tmp_path / "logs"), "-l", name]) == 1
        assert "must be a relative path inside --log_dir" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["afile", "c.yaml"]
