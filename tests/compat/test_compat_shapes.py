"""Fingerprints decide what counts as a change, and esgen.lock files store them: what they
see and what they ignore is pinned here. Changing them invalidates every lock in use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from yaml12 import dump_yaml

from esgen.compat import current_side, fingerprint, fingerprints
from esgen.compat._fits import MisfitKind, misfits
from esgen.compat._shapes import Record, record_of
from esgen.schema import load_sources

ROOT = Path("/virtual")


def _none(path: Path) -> str:
    raise FileNotFoundError(path)


def version(fields: dict[str, Any], types: dict[str, Any] | None = None) -> Record:
    doc = {
        "context": "c",
        "types": types or {},
        "aggregates": {"A": {"events": {"Happened": {"versions": {1: {"fields": fields}}}}}},
    }
    schema, diagnostics = load_sources(ROOT, {ROOT / "c.yaml": dump_yaml(doc)}, _none)
    assert not diagnostics, diagnostics
    ctx = schema.contexts[0]
    return record_of(ctx.events[0].versions[0].fields, ctx.user_type, "v1")


PINNED = """\
context: pinned
types:
  Money:
    fields:
      amount: {type: decimal, min: 0}
      currency: {type: str, pattern: "^[A-Z]{3}$"}
  Status:
    enum: [open, closed]
aggregates:
  Account:
    events:
      AccountOpened:
        versions:
          1: {fields: {owner: str}}
          2: {fields: {owner: str, currency: {type: str, default: EUR}}}
      MoneyDeposited:
        versions:
          1: {fields: {amount: Money, note: {type: str, optional: true}, status: Status}}
      MoneyWithdrawn:
        versions:
          1: {fields: {status: Status, note: {type: str, optional: true}, amount: Money}}
"""


def test_fingerprints_are_stable(tmp_path: Path) -> None:
    """Every esgen.lock in use stores these: a change here must be deliberate, with a new
    lock format that migrates them."""
    (tmp_path / "pinned.yaml").write_text(PINNED)
    found = fingerprints(current_side(tmp_path).schema)["pinned"]
    assert found["AccountOpened"] == {1: "2f6487d0a0e8ea15", 2: "ba6d43b389a54144"}
    assert found["MoneyDeposited"] == {1: "f2b298c23142d251"}
    # Same shape, same fingerprint, whatever the event is called and however it is ordered.
    assert found["MoneyWithdrawn"] == found["MoneyDeposited"]


MONEY = {"Money": {"fields": {"amount": "decimal", "currency": "str"}}}


@pytest.mark.parametrize(
    ("a", "b", "types_a", "types_b"),
    [
        ({"x": "int", "y": "str"}, {"y": "str", "x": "int"}, None, None),
        ({"x": "int"}, {"x": {"type": "int", "description": "prose"}}, None, None),
        ({"x": {"type": "decimal", "default": "0.10"}}, {"x": {"type": "decimal", "default": "0.1"}}, None, None),
        ({"x": {"type": "str", "optional": True}}, {"x": {"type": "str | None", "default": None}}, None, None),
        ({"m": "Money"}, {"m": "Amount"}, MONEY, {"Amount": MONEY["Money"]}),
        ({"e": "E1"}, {"e": "E2"}, {"E1": {"enum": ["a", "b"]}}, {"E2": {"enum": ["b", "a"]}}),
    ],
)  # fmt: skip
def test_what_fingerprints_ignore(a: Any, b: Any, types_a: Any, types_b: Any) -> None:
    assert fingerprint(version(a, types_a)) == fingerprint(version(b, types_b))


@pytest.mark.parametrize(
    ("a", "b", "types_a", "types_b"),
    [
        ({"x": "int"}, {"x": "decimal"}, None, None),
        ({"x": "int"}, {"x": "int | None"}, None, None),
        ({"x": "int"}, {"x": {"type": "int", "default": 1}}, None, None),
        ({"x": {"type": "int", "default": 1}}, {"x": {"type": "int", "default": 2}}, None, None),
        ({"x": "int"}, {"x": {"type": "int", "max": 5}}, None, None),
        ({"x": "int"}, {"y": "int"}, None, None),
        ({"x": "list[int]"}, {"x": "dict[str, int]"}, None, None),
        ({"m": "Money"}, {"m": "Money"}, MONEY, {"Money": {"fields": {"amount": "decimal"}}}),
        ({"e": "E"}, {"e": "E"}, {"E": {"enum": ["a"]}}, {"E": {"enum": ["a", "b"]}}),
        ({"e": {"enum": ["a"]}}, {"e": {"enum": ["b"]}}, None, None),
    ],
)  # fmt: skip
def test_what_fingerprints_see(a: Any, b: Any, types_a: Any, types_b: Any) -> None:
    assert fingerprint(version(a, types_a)) != fingerprint(version(b, types_b))


def test_recursive_types_terminate() -> None:
    tree = {"Node": {"fields": {"name": "str", "children": "list[Node]"}}}
    assert len(fingerprint(version({"t": "Node"}, tree))) == 16


@pytest.mark.parametrize(
    ("data", "reader", "tolerant", "may_omit", "kinds"),
    [
        ({"x": "int"}, {"x": "decimal"}, False, False, []),
        ({"x": "int"}, {"x": "float"}, False, False, []),
        ({"x": "decimal"}, {"x": "int"}, False, False, [MisfitKind.TYPE]),
        ({"x": "int | None"}, {"x": "int"}, False, False, [MisfitKind.NULL]),
        ({"x": "int"}, {"x": "int | None"}, False, False, []),
        ({"x": "int", "y": "str"}, {"x": "int"}, False, False, [MisfitKind.UNKNOWN]),
        ({"x": "int", "y": "str"}, {"x": "int"}, True, False, []),
        ({}, {"x": "int"}, True, False, [MisfitKind.MISSING]),
        ({}, {"x": {"type": "int", "default": 0}}, True, False, []),
        ({"x": {"type": "int", "default": 0}}, {"x": "int"}, False, False, []),
        ({"x": {"type": "int", "default": 0}}, {"x": "int"}, False, True, [MisfitKind.MISSING]),
        ({"x": {"type": "int", "max": 9}}, {"x": {"type": "int", "max": 5}}, False, False, [MisfitKind.CONSTRAINT]),
        ({"x": "list[int | None]"}, {"x": "list[int]"}, False, False, [MisfitKind.NULL]),
        ({"x": "dict[str, str]"}, {"x": "dict[str, int]"}, False, False, [MisfitKind.TYPE]),
    ],
)  # fmt: skip
def test_misfits(
    data: Any, reader: Any, tolerant: bool, may_omit: bool, kinds: list[MisfitKind]
) -> None:
    found = misfits(version(data), version(reader), tolerant=tolerant, may_omit=may_omit)
    assert [m.kind for m in found] == kinds


def test_misfits_inside_value_types_name_the_path() -> None:
    geo = {"Geo": {"fields": {"lat": "float"}}}
    narrower = {"Geo": {"fields": {"lat": "int"}}}
    found = misfits(
        version({"at": "Geo"}, geo),
        version({"at": "Geo"}, narrower),
        tolerant=False,
        may_omit=False,
    )
    assert [(m.kind, m.path) for m in found] == [(MisfitKind.TYPE, ("at", "lat"))]


def test_enum_values_a_reader_does_not_know() -> None:
    small = {"E": {"enum": ["a"]}}
    big = {"E": {"enum": ["a", "b"]}}
    found = misfits(
        version({"e": "E"}, big), version({"e": "E"}, small), tolerant=True, may_omit=False
    )
    assert [(m.kind, m.data) for m in found] == [(MisfitKind.ENUM, "'b'")]
