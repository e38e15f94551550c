"""Tests for tfreg/checks.py: the shared argument checks and name constants."""

import numpy as np
import pytest

from tfreg.checks import (
    BOUNDARIES,
    DATASET_SPLITS,
    LOSS_CATEGORIES,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_positive_int,
    closest_match,
)


def test_constants_are_deepregs():
    assert BOUNDARIES == ("zero", "replicate")
    assert LOSS_CATEGORIES == ("image", "label", "regularization")
    assert DATASET_SPLITS == ("train", "valid", "test")


def test_constants_shared_with_config_and_ops():
    import importlib

    defaults = importlib.import_module("tfreg.config.defaults")
    assert defaults.LOSS_CATEGORIES is LOSS_CATEGORIES
    assert defaults.DATASET_SPLITS is DATASET_SPLITS
    # tfreg.ops re-exports the function warp under the module's name: import the modules explicitly.
    for module in ("tfreg.ops.filters", "tfreg.ops.warp"):
        assert importlib.import_module(module).BOUNDARIES is BOUNDARIES


def test_check_choice_accepts_and_names_argument_value_and_choices():
    assert check_choice("zero", "boundary", BOUNDARIES) == "zero"
    assert check_choice(None, "spatial_dims", (None, 2, 3)) is None
    with pytest.raises(ValueError, match=r"boundary='replicat'.*\['zero', 'replicate'\].*Did you mean 'replicate'"):
        check_choice("replicat", "boundary", BOUNDARIES)
    # No close name: no suggestion.
    with pytest.raises(ValueError, match=r"boundary='xyz' is not supported: boundary must be one of") as info:
        check_choice("xyz", "boundary", BOUNDARIES)
    assert "Did you mean" not in str(info.value)


def test_check_choice_does_not_confuse_bools_and_ints():
    assert check_choice(2, "ndim", (2, 3)) == 2
    with pytest.raises(ValueError, match="ndim"):
        check_choice(True, "ndim", (1, 2, 3))
    with pytest.raises(ValueError, match="flag"):
        check_choice(1, "flag", (True, False))


def test_check_bool():
    assert check_bool(True, "l1") is True and check_bool(np.bool_(False), "l1") is False
    for bad in (1, 0, "true", None):
        with pytest.raises(ValueError, match=r"l1 must be True or False"):
            check_bool(bad, "l1")


def test_check_int():
    assert check_int(np.int64(3), "n", minimum=0) == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(-5, "n") == -5
    assert check_positive_int(1, "filters") == 1
    with pytest.raises(ValueError, match=r"filters must be an integer >= 1, got 0"):
        check_positive_int(0, "filters")
    with pytest.raises(ValueError, match=r"n must be an integer in \[0, 2\], got 3"):
        check_int(3, "n", 0, 2)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(ValueError, match="n must be an integer"):
            check_int(bad, "n")


def test_check_number():
    assert check_number(0, "eps") == 0.0 and check_number(np.float32(0.5), "w", 0.0, 1.0) == 0.5
    assert check_number(-3.0, "t", minimum=None) == -3.0
    with pytest.raises(ValueError, match=r"w must be a number in \[0.0, 1.0\], got 1.5"):
        check_number(1.5, "w", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"sigma must be a number > 0.0, got 0"):
        check_number(0, "sigma", exclusive_minimum=True)
    for bad in (float("nan"), float("inf"), True, "1", None, -1e-9):
        with pytest.raises(ValueError, match="eps must be a number >= 0.0"):
            check_number(bad, "eps")


@pytest.mark.parametrize(
    "value, allowed, expected",
    [("adam", ["Adam", "Nadam"], "Adam"), ("dise", ["dice", "ssd"], "dice"), ("zzz", ["dice"], "")],
)
def test_closest_match(value, allowed, expected):
    assert closest_match(value, allowed) == expected
