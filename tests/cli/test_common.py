"""tfreg.cli.common: str_to_bool, DeepReg's device flags, DEEPREG_LOG_LEVEL, run_command."""

import argparse
import logging
import os
import subprocess
import sys

import pytest

from tfreg.cli import common
from tfreg.cli.common import add_device_flags, run_command, setup_logging, str_to_bool


# ---------------------------------------------------------------------------------------------- str_to_bool
@pytest.mark.parametrize("text", ["true", "True", "TRUE", "t", "yes", "Y", "1", "on", " true "])
def test_str_to_bool_true(text):
    assert str_to_bool(text) is True


@pytest.mark.parametrize("text", ["false", "False", "f", "no", "N", "0", "off", "OFF"])
def test_str_to_bool_false(text):
    assert str_to_bool(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "tru", "none"])
def test_str_to_bool_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError, match="true or false"):
        str_to_bool(text)


# ---------------------------------------------------------------------------------------------- device flags
def parser():
    p = argparse.ArgumentParser(prog="x")
    add_device_flags(p)
    p.add_argument("-c", "--config_path", nargs="*", default=[])
    return p


def test_device_flag_defaults():
    args = parser().parse_args([])
    assert args.gpu is None and args.gpu_allow_growth is False and args.num_workers == 0


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-gr"], True),  # tfreg: a switch
        (["--gpu_allow_growth"], True),
        (["-gr", "true"], True),  # DeepReg's form with a value
        (["-gr", "false"], False),
        (["-gr", "0"], False),
        (["--gpu_allow_growth=yes"], True),
        (["-gr", "-g", "1"], True),
        (["-g", "1", "-gr"], True),
        (["-gr", "-c", "a.yaml"], True),
    ],
)
def test_gpu_allow_growth_switch_and_value(argv, expected):
    args = parser().parse_args(argv)
    assert args.gpu_allow_growth is expected


def test_gpu_allow_growth_bad_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["-gr", "maybe"])
    assert exc.value.code == 2
    assert "maybe" in capsys.readouterr().err


def test_gpu_and_num_workers_values():
    args = parser().parse_args(["-g", "0,1", "--num_workers", "4"])
    assert args.gpu == "0,1" and args.num_workers == 4
    assert parser().parse_args(["-g", ""]).gpu == ""  # '' = CPU
    with pytest.raises(SystemExit):
        parser().parse_args(["--num_workers", "two"])


# ---------------------------------------------------------------------------------------------- logging
@pytest.fixture
def basic_config(monkeypatch):
    """Capture logging.basicConfig's arguments (pytest's own handlers would make it a no-op)."""
    calls = []
    monkeypatch.setattr(common.logging, "basicConfig", lambda **kw: calls.append(kw))
    monkeypatch.delenv("TFREG_LOG_LEVEL", raising=False)
    monkeypatch.delenv("DEEPREG_LOG_LEVEL", raising=False)
    return calls


@pytest.mark.parametrize(
    "raw, level",
    [
        ("0", logging.NOTSET),
        ("1", logging.DEBUG),
        ("2", logging.INFO),
        ("3", logging.WARNING),
        ("4", logging.ERROR),
        ("5", logging.CRITICAL),
    ],
)
def test_deepreg_log_level(basic_config, monkeypatch, raw, level):
    monkeypatch.setenv("DEEPREG_LOG_LEVEL", raw)
    setup_logging()
    assert basic_config[-1]["level"] == level


def test_default_log_level_is_info_and_tf_cpp_default(basic_config, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    setup_logging()
    assert basic_config[-1]["level"] == logging.INFO
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    setup_logging()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # a user's value is kept


def test_tfreg_log_level_wins(basic_config, monkeypatch):
    monkeypatch.setenv("DEEPREG_LOG_LEVEL", "1")
    monkeypatch.setenv("TFREG_LOG_LEVEL", "4")
    setup_logging()
    assert basic_config[-1]["level"] == logging.ERROR


@pytest.mark.parametrize("raw", ["6", "-1", "info", "", "2.0"])
def test_bad_log_level(basic_config, monkeypatch, raw):
    monkeypatch.setenv("DEEPREG_LOG_LEVEL", raw)
    with pytest.raises(SystemExit) as exc:
        setup_logging()
    assert "DEEPREG_LOG_LEVEL" in str(exc.value) and repr(raw) in str(exc.value)


def test_log_level_in_a_fresh_process():
    code = (
        "import logging; from tfreg.cli.common import setup_logging; setup_logging(); "
        "print(logging.getLogger().getEffectiveLevel())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TFREG_LOG_LEVEL"}
    env["DEEPREG_LOG_LEVEL"] = "3"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(logging.WARNING)


# ---------------------------------------------------------------------------------------------- run_command
def test_run_command_success_and_user_errors(capsys):
    assert run_command("prog", lambda: None) == 0

    def fail(err):
        def func():
            raise err

        return func

    assert run_command("prog", fail(ValueError("bad value here"))) == 1
    assert capsys.readouterr().err.strip() == "prog: error: bad value here"
    assert run_command("prog", fail(FileNotFoundError("no /x/y"))) == 1
    assert "prog: error: no /x/y" in capsys.readouterr().err
    assert run_command("prog", fail(KeyError("key"))) == 1
    assert "prog: error: KeyError('key')" in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # a bug is not a user error
        run_command("prog", fail(RuntimeError("boom")))
