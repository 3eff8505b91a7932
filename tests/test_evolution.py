"""The analysis of one version step, shared by upcaster generation and `esgen compat`."""

from __future__ import annotations

from pathlib import Path

import pytest
from yaml12 import dump_yaml

from esgen.schema import ChangeKind, VersionStep, analyse_step, load_sources

ROOT = Path("/virtual")


def step(
    v1: dict[str, object], v2: dict[str, object], types: dict[str, object] | None = None
) -> VersionStep:
    doc = {
        "context": "evolve",
        "types": types or {},
        "aggregates": {
            "A": {"events": {"E": {"versions": {1: {"fields": v1}, 2: {"fields": v2}}}}}
        },
    }
    schema, diagnostics = load_sources(ROOT, {ROOT / "e.yaml": dump_yaml(doc)}, _none)
    assert not diagnostics, diagnostics
    context = schema.contexts[0]
    event = context.events[0]
    return analyse_step("E", event.versions[0], event.versions[1], context.user_type)


def _none(path: Path) -> str:
    raise FileNotFoundError(path)


@pytest.mark.parametrize(
    ("v1", "v2", "kinds"),
    [
        ({"a": "str"}, {"a": "str", "b": {"type": "int", "default": 1}}, [ChangeKind.ADDED]),
        ({"a": "str"}, {"a": "str", "b": {"type": "int", "optional": True}}, [ChangeKind.ADDED]),
        ({"a": "str", "b": "int"}, {"a": "str"}, [ChangeKind.REMOVED]),
        ({"a": "str"}, {"b": {"type": "str", "renamed_from": "a"}}, [ChangeKind.RENAMED]),
        ({"a": "int"}, {"a": "decimal"}, [ChangeKind.TYPE_CHANGED]),
        ({"a": "int"}, {"a": "float"}, [ChangeKind.TYPE_CHANGED]),
        ({"a": "int"}, {"a": "int | None"}, [ChangeKind.TYPE_CHANGED]),
        ({"a": "list[int]"}, {"a": "list[decimal]"}, [ChangeKind.TYPE_CHANGED]),
        ({"a": {"type": "int", "max": 5}}, {"a": {"type": "int", "max": 9}}, [ChangeKind.CONSTRAINTS_CHANGED]),
        ({"a": {"type": "int", "default": 1}}, {"a": {"type": "int", "default": 2}}, [ChangeKind.DEFAULT_CHANGED]),
        ({"a": "int"}, {"b": {"type": "decimal", "renamed_from": "a"}}, [ChangeKind.RENAMED, ChangeKind.TYPE_CHANGED]),
    ],
)  # fmt: skip
def test_derivable_steps(
    v1: dict[str, object], v2: dict[str, object], kinds: list[ChangeKind]
) -> None:
    result = step(v1, v2)
    assert [c.kind for c in result.changes] == kinds
    assert result.derivable and not result.manual


@pytest.mark.parametrize(
    ("v1", "v2", "summary"),
    [
        ({"a": "str"}, {"a": "str", "b": "int"}, "field 'b' (int) added without a default"),
        ({"a": "decimal"}, {"a": "int"}, "field 'a': type decimal -> int (not every old value fits)"),
        ({"a": "int | None"}, {"a": "int"}, "field 'a': type int | None -> int (not every old value fits: stored values may be null)"),
        ({"a": "str"}, {"a": {"type": "str", "max_length": 3}}, "field 'a': constraints narrowed: max_length unset -> 3"),
        ({"a": "str"}, {"a": {"type": "str", "pattern": "^x"}}, "field 'a': constraints narrowed: pattern None -> '^x'"),
    ],
)  # fmt: skip
def test_steps_that_need_a_hand_written_upcaster(
    v1: dict[str, object], v2: dict[str, object], summary: str
) -> None:
    result = step(v1, v2)
    assert not result.derivable and result.manual
    assert [c.summary for c in result.blocking] == [summary]


def test_enums_may_grow_but_not_shrink() -> None:
    types = {"Small": {"enum": ["a", "b"]}, "Big": {"enum": ["a", "b", "c"]}}
    assert step({"e": "Small"}, {"e": "Big"}, types).derivable
    assert not step({"e": "Big"}, {"e": "Small"}, types).derivable


def test_manual_upcast_is_honoured_even_when_derivable() -> None:
    doc = {
        "context": "evolve",
        "aggregates": {"A": {"events": {"E": {"versions": {1: {"fields": {"a": "str"}}, 2: {"fields": {"a": "str"}, "upcast": "manual"}}}}}},
    }  # fmt: skip
    schema, _ = load_sources(ROOT, {ROOT / "e.yaml": dump_yaml(doc)}, _none)
    event = schema.contexts[0].events[0]
    result = analyse_step("E", event.versions[0], event.versions[1], schema.contexts[0].user_type)
    assert result.derivable and result.manual
