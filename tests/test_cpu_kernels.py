"""tfreg turns TensorFlow's oneDNN CPU kernels on unless the user chose otherwise (tfreg.cpu_kernels)."""

import os
import subprocess
import sys
import warnings

import pytest

PROBE = (
    "import os, sys\n"
    "{first}\n"
    "from tensorflow.python.util import _pywrap_util_port as port\n"
    "print(repr(os.environ.get('TF_ENABLE_ONEDNN_OPTS')), port.IsMklEnabled())\n"
)


def _probe(first: str, value=None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = value
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow  # a fresh interpreter importing TensorFlow per case (about 10 s each)
@pytest.mark.parametrize(
    "first, value, expected",
    [
        ("import tfreg", None, "'1' True"),  # unset: tfreg turns oneDNN on, and TensorFlow uses it
        ("import tfreg", "0", "'0' False"),  # the user's choice is kept
        ("import tfreg", "1", "'1' True"),
        ("import tensorflow; import tfreg", None, "None"),  # too late to change: left alone
    ],
)
def test_onednn_default(first, value, expected):
    result = _probe(first, value)
    if expected == "None":
        assert result.startswith("None ")
    else:
        assert result == expected


def test_default_to_onednn_reports_whether_it_set_the_variable(monkeypatch):
    from tfreg import cpu_kernels

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert cpu_kernels.default_to_onednn() is False
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    # TensorFlow is imported in this test process by now, so the variable can no longer take effect
    import tensorflow  # noqa: F401

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu_kernels.default_to_onednn() is False
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    # a warning exactly when TensorFlow runs without oneDNN (this CPU's default may be either)
    assert len(caught) == (0 if cpu_kernels.onednn_enabled() else 1)


PROBE_WARN = "import tensorflow, warnings\nwarnings.simplefilter('error')\nimport tfreg\n"


@pytest.mark.slow
def test_warning_text_names_the_fix():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([sys.executable, "-c", PROBE_WARN], env=env, capture_output=True, text=True)
    if out.returncode == 0:
        pytest.skip("this CPU gets oneDNN from TensorFlow by default: no warning to check")
    assert "RuntimeWarning" in out.stderr and "TF_ENABLE_ONEDNN_OPTS=1" in out.stderr
