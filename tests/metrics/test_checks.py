"""Shared validation in tfreg.metrics._checks, and the package's independence from Keras/TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tfreg.metrics._checks import as_mask, as_spacing


def test_spacing_forms():
    np.testing.assert_array_equal(as_spacing(None, 3, "f"), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(as_spacing(2.5, 2, "f"), [2.5, 2.5])
    np.testing.assert_array_equal(as_spacing((1, 2, 3), 3, "f"), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"f: spacing \(1.0, 2.0\) has 2 entries but the arrays have 3"):
        as_spacing((1.0, 2.0), 3, "f")
    with pytest.raises(ValueError, match="positive"):
        as_spacing((1.0, -1.0), 2, "f")
    with pytest.raises(ValueError, match="positive"):
        as_spacing((1.0, np.nan), 2, "f")


def test_mask_threshold_and_bad_values():
    # tfreg.label_threshold's rule: 0.5 itself is foreground (as in tfreg_predict's Dice)
    np.testing.assert_array_equal(as_mask([0.2, 0.4999, 0.5, 3], "m", "f"), [False, False, True, True])
    np.testing.assert_array_equal(as_mask(np.array([True, False]), "m", "f"), [True, False])
    with pytest.raises(ValueError, match="f: m contains 1 non-finite"):
        as_mask([0.0, np.inf], "m", "f")
    with pytest.raises(ValueError, match="scalar"):
        as_mask(1.0, "m", "f")


def test_metrics_import_without_keras_or_tensorflow():
    code = (
        "import sys, tfreg.metrics; "
        "bad = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
