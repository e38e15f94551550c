"""Shared pytest fixtures: the real-data folder and quieter TensorFlow logs."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Before anything imports TensorFlow (pytest_report_header imports keras): the kernels tfreg's users get.
from tfreg.cpu_kernels import default_to_onednn  # noqa: E402

default_to_onednn()

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """``$TFREG_TEST_DATA``, defaulting to ``../shared/data`` next to the repository."""
    return Path(os.environ.get("TFREG_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real-image folder; skips the test with a reason when it is absent."""
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real test data not found at {root} (set TFREG_TEST_DATA to the shared/data folder)")
    return root


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
