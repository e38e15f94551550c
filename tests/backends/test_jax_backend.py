"""Runs the tests marked ``backend_agnostic`` again under Keras' JAX backend, in a subprocess.

The numerical core (ops, losses, layers) must not depend on TensorFlow. A Keras backend is chosen
once per process, so the JAX run needs its own interpreter.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.jax


def test_core_passes_under_jax_backend():
    pytest.importorskip("jax", reason="jax[cpu] is a test extra: pip install -e .[test]")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "backend_agnostic",
        "tests/ops",
        "tests/losses",
        "tests/layers",
        "tests/test_degenerate_inputs.py",
        "tests/models/test_dfsa_unet.py",
        "tests/models/backbones/test_transmorph.py",
        "tests/models/backbones/test_swin_unetr.py",
        "tests/models/backbones/test_field.py",
        "tests/models/backbones/test_blocks.py",
        "tests/registration/test_optimise.py",
    ]
    # The limit only stops a hang. The run took about 9 minutes on a quiet 2-core machine (21 in CI by
    # 2026-12-04, with the transformer and registration files), and once took
    # 873 s on a busy one. It runs as its own CI step (.ci/run) in CI's 90 minutes, so the limit is
    # generous and load alone cannot fail it.
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"backend_agnostic tests failed under JAX:\n{tail}"
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 20, f"too few backend_agnostic tests ran under JAX:\n{tail}"
