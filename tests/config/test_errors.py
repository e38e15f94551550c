"""Tests for tfreg/config/errors.py and tfreg/config/provenance.py: key paths, suggestions, provenance."""

import pytest

from tfreg.config import ConfigError, Provenance, format_key_path, parse_key_path
from tfreg.config.errors import closest_match, suggestion


@pytest.mark.parametrize(
    "path, text",
    [
        (("train", "loss", "image", 1, "name"), "train.loss.image[1].name"),
        (("dataset", "test", "dir", 0), "dataset.test.dir[0]"),
        (("a",), "a"),
        ((), "<root>"),
    ],
)
def test_key_path_round_trip(path, text):
    assert format_key_path(path) == text
    if path:
        assert parse_key_path(text) == path


@pytest.mark.parametrize(
    "value, allowed, expected",
    [
        ("adam", ["Adam", "Nadam", "SGD"], "Adam"),
        ("lnc", ["lncc", "gmi", "ssd"], "lncc"),
        ("xyz", ["lncc", "gmi"], ""),
        (3, ["a"], ""),
        ("a", [], ""),
    ],
)
def test_closest_match(value, allowed, expected):
    assert closest_match(value, allowed) == expected
    assert suggestion(value, allowed) == (f" Did you mean {expected!r}?" if expected else "")


def test_config_error_one_and_many():
    one = ConfigError("a: bad")
    assert str(one) == "a: bad" and one.errors == ["a: bad"]
    many = ConfigError(["a: bad", "b: worse"])
    assert str(many) == "2 problems in the configuration:\n  - a: bad\n  - b: worse"
    assert isinstance(many, ValueError)


def test_provenance_move_and_copy():
    prov = Provenance(["a.yaml"])
    prov.record_tree(("x",), {"y": {"z": 1}, "w": 2}, "a.yaml")
    prov.record(("x", "y", "z"), "b.yaml")
    snapshot = prov.copy()
    prov.move(("x", "y"), ("v",))
    assert prov.source("v.z") == "b.yaml"
    assert prov.source("v") == "a.yaml"
    assert ("x", "y") not in set(prov) and ("x", "y", "z") not in set(prov)
    # The copy is independent.
    assert snapshot.source("x.y.z") == "b.yaml"
    # keep=True copies; an unrecorded source path moves with the file it resolves to.
    prov.move(("x", "w"), ("u",), keep=True)
    assert prov.source("u") == "a.yaml" and prov.source("x.w") == "a.yaml"
    prov.move(("x", "never", "set"), ("t",))
    assert prov.source("t") == "a.yaml"
    assert len(prov) == len(set(prov))
