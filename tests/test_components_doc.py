"""docs/components.md: its hand-written loss and attention tables agree with the registry.

The tables' "arguments (defaults)" column is written by hand, beside the formulas, so these tests keep it
honest: every registered loss and attention layer has a row, and every ``arg=default`` a row shows is an
argument the class takes, with that default (read from the constructors' signatures along the class
hierarchy, independently of the documentation).
"""

import ast
import inspect
import os
import re

import pytest

import tfreg.layers  # noqa: F401  (registers the attention layers)
import tfreg.losses  # noqa: F401  (registers the losses)
from tfreg.registry import ATTENTION_CLASS, LOSS_CLASS, REGISTRY

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "components.md")
#: "## <category>: ..." section headings -> registry category
SECTIONS = {"loss_class": LOSS_CLASS, "attention_class": ATTENTION_CLASS}
ARGUMENT = re.compile(r"`(\w+)=([^`]*)`")


def _rows():
    """[(category, registered name, arguments cell)] of the registered components' tables."""
    rows, category = [], None
    with open(DOC, encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("## "):
                category = next((cat for key, cat in SECTIONS.items() if line[3:].startswith(key)), None)
            elif category is not None and line.startswith("| `"):
                cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
                for name in re.findall(r"`([^`]+)`", cells[0]):
                    rows.append((category, name, cells[2]))
    return rows


ROWS = _rows()


def _defaults(cls):
    """{argument: default} of the constructors along ``cls``' hierarchy (the most derived one wins)."""
    defaults = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for parameter in inspect.signature(klass.__init__).parameters.values():
                defaults.setdefault(parameter.name, parameter.default)
    return defaults


@pytest.mark.parametrize("category", [LOSS_CLASS, ATTENTION_CLASS])
def test_every_registered_name_has_a_row(category):
    documented = {name for cat, name, _ in ROWS if cat == category}
    missing = sorted(set(REGISTRY.names(category)) - documented)
    assert not missing, f"registered in {category} but not in docs/components.md: {missing}"


@pytest.mark.parametrize(("category", "name", "arguments"), ROWS, ids=[f"{c}:{n}" for c, n, _ in ROWS])
def test_documented_arguments_exist_with_their_defaults(category, name, arguments):
    assert REGISTRY.contains(category, name), f"docs/components.md documents {name!r}, not registered in {category}"
    accepted = REGISTRY.accepted_arguments(category, name)
    defaults = _defaults(REGISTRY.get(category, name))
    for argument, shown in ARGUMENT.findall(arguments):
        if accepted is not None:
            assert argument in accepted, f"{name}: documented argument {argument!r} is not one of {sorted(accepted)}"
        value = ast.literal_eval(shown)
        actual = defaults.get(argument, inspect.Parameter.empty)
        if isinstance(value, tuple) and isinstance(actual, list):
            actual = tuple(actual)
        assert actual == value, f"{name}: docs say {argument}={shown}, the constructor's default is {actual!r}"


def test_the_tables_are_parsed():
    # guards the parser itself: a reformatted table must not silently leave nothing to check
    assert len(ROWS) >= 30
    assert sum(len(ARGUMENT.findall(arguments)) for _, _, arguments in ROWS) >= 90
