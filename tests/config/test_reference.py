"""docs/config-reference.md against the code: fresh, complete, and every key in it accepted by the validator."""

import copy
import re
from pathlib import Path

import pytest

from tfreg.config import ConfigError, validate_config
from tfreg.config import reference as ref
from tfreg.config.defaults import DATA_LOADER_REQUIRED_KEYS
from tfreg.registry import (
    ATTENTION_CLASS,
    BACKBONE_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    LOSS_CLASS,
    REGISTRY,
    TRAINER_CLASS,
    _unexpected_kwargs,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"
COMPONENT_SECTIONS = {
    "Backbones": BACKBONE_CLASS,
    "Losses": LOSS_CLASS,
    "Data augmentation": DATA_AUGMENTATION_CLASS,
    "Attention layers": ATTENTION_CLASS,
    "Trainers": TRAINER_CLASS,
}
#: Levels whose keys are a component's arguments or per-config names, checked elsewhere than by key lists.
OPEN_LEVELS = {("train", "backbone"), ("train", "optimizers")}
FIRST_CELL = re.compile(r"^\| `([^`]+)` \|")


@pytest.fixture(scope="module")
def page():
    return PAGE.read_text()


@pytest.fixture(scope="module")
def parsed(page):
    """``(structural key rows, {(category, name): argument rows})`` read back from the page."""
    keys, components = set(), {}
    section = category = name = None
    for line in page.splitlines():
        if line.startswith("## "):
            section, category, name = line[3:], None, None
        elif line.startswith("### "):
            category = next((c for title, c in COMPONENT_SECTIONS.items() if line[4:].startswith(title)), None)
            name = None
        elif line.startswith("#### "):
            name = line[5:].strip("`")
        match = FIRST_CELL.match(line)
        if not match:
            continue
        if section in ("Top level", "`dataset`", "`train`"):
            keys.add(match.group(1))
        elif section == "Components" and category and name:
            components.setdefault((category, name), []).append(match.group(1))
    return keys, components


def test_the_page_is_what_the_code_generates(page):
    # the whole page: a change of a default, a docstring or a registered component must be regenerated
    assert page == ref.render(), "docs/config-reference.md is stale: run python -m tfreg.config.reference"


def test_check_mode_reports_a_stale_page(tmp_path, capsys):
    stale = tmp_path / "config-reference.md"
    stale.write_text(ref.render().replace("| `train.epochs` |", "| `train.epoch` |"))
    assert ref.main(["--check", "-o", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    fresh = tmp_path / "fresh.md"
    assert ref.main(["-o", str(fresh)]) == 0
    assert ref.main(["--check", "-o", str(fresh)]) == 0


def _dotted(path):
    return ".".join(path)


def _is_loader_key(key):
    """``dataset.<argument>``: a data-loader argument, described by the loaders' docstrings."""
    return bool(re.match(r"dataset\.[a-z_]+$", key)) and key != "dataset.type"


def test_every_key_the_validator_accepts_is_on_the_page_with_a_text(parsed, page):
    keys, _ = parsed
    accepted = {_dotted(p) for p in ref.accepted_keys()} | {_dotted(p) for p in ref.extra_keys()}
    texts = ref.key_texts()
    missing = {k for k in accepted - set(texts) if not _is_loader_key(k)}
    assert missing == set(), "accepted keys without a text in tfreg/config/reference.py"
    assert accepted - keys == set(), "accepted keys missing from the page"
    assert {k for k in keys if not _is_loader_key(k)} - accepted == set(), "keys on the page the validator refuses"
    for line in page.splitlines():
        # every key and argument row says what it means (the methods table's last column may be empty)
        if FIRST_CELL.match(line) and "| `tfreg.models." not in line:
            assert not line.rstrip().endswith("|  |"), f"no meaning given: {line}"


def test_the_exploration_finds_nested_sections_and_their_readers():
    found = ref.accepted_keys()
    readers = {s.name for s in found[("train", "segmenter", "head", "activation")] if s.kind == "method"}
    assert readers == {"wssamnet", "dfsa", "joint"}
    assert {s.name for s in found[("train", "optimizers")]} == {"alternating"}
    assert {s.name for s in found[("train", "optimizer")] if s.kind == "trainer"} == {"fit", "loop", "progressive"}
    assert ("dataset", "<split>", "pairs") in found and ("dataset", "train", "dir") not in found
    # a key no level accepts is not invented
    assert not any("bogus" in p for p in found)


def _scenario_config(scenario, registry=REGISTRY):
    return scenario.config(registry)


def _put(config, path, value):
    path = ["train" if p == ref.SPLIT else "registration" if p == ref.GROUP else p for p in path]
    node = config
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _unknown_key_errors(config, key):
    try:
        validate_config(config, check_dirs=False)
    except ConfigError as err:
        return [e for e in err.errors if "unknown key" in e and (f"'{key}'" in e or f".{key}:" in e)]
    return []


def _documented_structural_keys():
    found = ref.accepted_keys()
    for path, scenarios in ref.extra_keys().items():
        found.setdefault(path, set()).update(scenarios)
    return [(tuple(k.split(".")), found[tuple(k.split("."))]) for k in ref.key_texts()]


def test_every_documented_key_passes_the_validator_where_the_page_says():
    """Put each key into a config of each reader the page names: the validator must not call it unknown."""
    refused = []
    for path, scenarios in _documented_structural_keys():
        if len(path) == 1:
            continue  # dataset / train: every probe config has them
        for scenario in sorted(scenarios, key=lambda s: (s.kind, s.name)):
            config = _scenario_config(scenario)
            _put(config, path, None)
            refused += [(path, scenario, e) for e in _unknown_key_errors(config, path[-1])]
    assert refused == []


def test_the_probe_sees_unknown_keys_at_every_documented_level():
    """The check above means something only if each level refuses a key it does not know."""
    levels = {}
    for path, scenarios in _documented_structural_keys():
        if len(path) > 1 and path[:-1] not in OPEN_LEVELS:
            levels.setdefault(path[:-1], scenarios)
    assert ("train", "segmenter", "head") in levels and ("train", "noise") in levels
    for level, scenarios in levels.items():
        scenario = sorted(scenarios, key=lambda s: (s.kind, s.name))[0]
        config = _scenario_config(scenario)
        _put(config, level + ("bogus_key",), 1)
        assert _unknown_key_errors(config, "bogus_key"), (level, scenario)


def test_a_key_for_another_method_is_refused_where_the_page_says_it_is_not_read():
    found = ref.accepted_keys()
    readers = {s.name for s in found[("train", "joint")] if s.kind == "method"}
    config = _scenario_config(ref.Scenario("method", "ddf"))
    assert "ddf" not in readers
    _put(config, ("train", "joint"), {})
    assert _unknown_key_errors(config, "joint")


@pytest.mark.parametrize("category", sorted(COMPONENT_SECTIONS.values()))
def test_each_component_lists_exactly_the_arguments_the_registry_accepts(parsed, category):
    _, components = parsed
    for name in REGISTRY.names(category):
        cls = REGISTRY.get(category, name)
        rows = components.get((category, name), [])
        accepted = ref.configurable_arguments(cls)
        wiring = [spec.name for spec in getattr(cls, "tensor_inputs", ())] if category == LOSS_CLASS else []
        assert accepted is not None, f"{name}: takes any keyword; the page says so instead of a table"
        assert rows == accepted + wiring, (category, name)
        assert "name" not in rows  # the registered name, never a constructor argument from YAML
        if accepted:
            assert _unexpected_kwargs(cls, {a: None for a in accepted}) == []
        # and the registry refuses what the page does not list
        assert _unexpected_kwargs(cls, {"bogus_argument": 1}) == ["bogus_argument"] or not accepted


def test_data_loader_keys_match_the_validator_and_the_constructors(page):
    rows = {}
    for line in page.splitlines():
        match = FIRST_CELL.match(line)
        if match and _is_loader_key(match.group(1)):
            rows[match.group(1).split(".", 1)[1]] = line
    for loader_type in REGISTRY.names(DATA_LOADER_CLASS):
        listed = {k for k, line in rows.items() if "every type" in line or re.search(rf"\b{loader_type}\b", line)}
        config = _scenario_config(ref.Scenario("type", loader_type))
        for key in listed:
            probe = copy.deepcopy(config)
            probe["dataset"].setdefault(key, None)
            assert _unknown_key_errors(probe, key) == [], (loader_type, key)
        if loader_type not in DATA_LOADER_REQUIRED_KEYS:
            # the validator leaves such a type's keys to its constructor: the page lists exactly those
            cls = REGISTRY.get(DATA_LOADER_CLASS, loader_type)
            own = set(ref.configurable_arguments(cls)) - set(ref.SET_BY_TFREG[DATA_LOADER_CLASS])
            assert listed == own


def test_defaults_on_the_page_are_the_constructors():
    """Spot checks against the signatures read independently (DeepReg's documented defaults)."""
    lncc = {a.name: a for a in ref.component_arguments(REGISTRY.get(LOSS_CLASS, "lncc"))}
    assert lncc["kernel_size"].default == "9" and lncc["kernel_type"].default == '"rectangular"'
    affine = {a.name: a for a in ref.component_arguments(REGISTRY.get(DATA_AUGMENTATION_CLASS, "affine"))}
    assert affine["scale"].default == "0.1" and affine["batch_size"].default == "required"
    local = {a.name: a for a in ref.component_arguments(REGISTRY.get(BACKBONE_CLASS, "local"))}
    assert local["use_additive_upsampling"].default == "true" and local["strides"].default == "2"


def test_docstring_parser():
    doc = """Summary.

    Args:
        alpha: first line
            continued.
        beta, gamma: shared text.
        delta, epsilon,
            zeta: a wrapped list of names.
        **kwargs: passed on.

    Returns:
        not an argument: ignored.
    """
    assert ref.parse_args_section(doc) == {
        "alpha": "first line continued.",
        "beta": "shared text.",
        "gamma": "shared text.",
        "delta": "a wrapped list of names.",
        "epsilon": "a wrapped list of names.",
        "zeta": "a wrapped list of names.",
        "kwargs": "passed on.",
    }
    assert ref.parse_args_section("No sections.") == {}


def test_yaml_values_and_table_text():
    assert [ref.yaml_value(v) for v in (None, True, 3, 0.5, "x", (1, 2), {"a": None})] == [
        "null",
        "true",
        "3",
        "0.5",
        '"x"',
        "[1, 2]",
        "{a: null}",
    ]
    assert ref.clean_text("see :class:`~tfreg.a.B` and ``x | y``") == "see `B` and `x \\| y`"
