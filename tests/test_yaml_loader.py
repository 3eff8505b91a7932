"""The YAML loader on inputs that PyYAML alone would get wrong, or never finish."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from esgen.schema import enum_member_name
from esgen.schema._yaml import load_yaml


def load(text: str) -> object:
    loaded, diagnostics = load_yaml(Path("s.yaml"), text)
    assert not diagnostics, diagnostics
    assert loaded is not None
    return loaded.data


def errors(text: str) -> list[str]:
    _, diagnostics = load_yaml(Path("s.yaml"), text)
    return [str(d) for d in diagnostics]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e5", Decimal("1e5")),  # a float in YAML 1.2, a string to PyYAML's 1.1 rules
        ("1.0e400", Decimal("1.0e400")),
        ("-2.5E-3", Decimal("-2.5E-3")),
        ("0x1F", 31),
        ("yes", "yes"),
        ("off", "off"),
        ("!!str 1e5", "1e5"),
        ("'1e5'", "1e5"),
        ("!!int 3", 3),
        ("!!int 0x1F", 31),
        ("!!float .inf", Decimal("Infinity")),
        ("!!float 3", Decimal(3)),
        ("! '123'", "123"),  # the non-specific tag on a quoted scalar: a string
        ('! "true"', "true"),
        ("! ''", ""),
        ("2024-01-01", "2024-01-01"),
        ("~", None),
    ],
)
def test_plain_scalars_resolve_by_yaml_1_2(text: str, value: object) -> None:
    assert load(f"v: {text}\n") == {"v": value}


def test_anchors_and_merge_keys_still_work() -> None:
    data = load("base: &b {a: 1}\nthing: {<<: *b, c: 2}\nlist: [*b, *b]\n")
    assert data == {"base": {"a": 1}, "thing": {"a": 1, "c": 2}, "list": [{"a": 1}, {"a": 1}]}


def test_an_alias_inside_its_own_anchor_is_an_error_not_a_crash() -> None:
    found = errors("context: shop\nx: &a [1, *a]\n")
    assert len(found) == 1
    assert "E100" in found[0] and "refers to the node that contains it" in found[0]


def test_aliases_that_expand_without_bound_are_refused() -> None:
    lines = ["l0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    found = errors("\n".join(lines) + "\n")
    assert len(found) == 1
    assert "E100" in found[0] and "expand" in found[0]


def test_a_number_key_and_its_quoted_spelling_are_one_key() -> None:
    found = errors('versions:\n  1: {}\n  "1": {}\n')
    assert len(found) == 1
    assert "E101" in found[0] and "duplicate key '1'" in found[0]


def test_enum_member_names_depend_on_the_value_alone() -> None:
    assert enum_member_name("dark blue") == "DARK_BLUE"
    assert enum_member_name("3rd") == "V_3RD"
    assert enum_member_name("+") == "CHAR_2B"
    assert enum_member_name("->") == "CHAR_2D_3E"
