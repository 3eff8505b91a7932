"""Typed upcasters, end to end: a schema whose events went through several versions is
generated; the payload TypedDicts tell what old code stored, the derived and hand-written
steps between them pass mypy --strict, widenings run no function, and events stored by
old code in SQLite read as the latest version through the registry."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness import CASES, EXAMPLES, chdir

from esgen.cli import main

SCHEMA = """\
context: ledger
types:
  Currency: {enum: [EUR, SEK]}
  Money: {fields: {amount: decimal, currency: Currency}}
  # Money with one more field that has a default: stored Money values are reshaped.
  MoneyV2: {fields: {amount: decimal, currency: Currency, rate: {type: decimal, default: "1"}}}
  Line: {fields: {sku: str, price: Money, qty: {type: int, default: 1}}}
  LineV2: {fields: {sku: str, price: MoneyV2, qty: {type: int, default: 1}}}
  Route: {fields: {from: str, to: str, via: {type: "list[str]", default: []}}}
aggregates:
  Ledger:
    id: {type: str}
    events:
      Posted:
        versions:
          1:
            fields:
              ref: uuid
              memo: str
              amount: int
              legacy: str
              lines: "list[Line]"
              total: Money
          2:
            fields:
              ref: uuid
              note: {type: str, renamed_from: memo}
              amount: decimal
              lines: "list[LineV2]"
              total: MoneyV2
              currency: {type: Currency, default: SEK}
              at: {type: datetime, optional: true}
          # Widenings only: stored version-2 data reads as version 3 as it is.
          3:
            fields:
              ref: uuid
              note: "str | None"
              amount: decimal
              lines: "list[LineV2]"
              total: MoneyV2
              currency: str
              at: {type: datetime, optional: true}
      # Keys that are Python keywords: the functional TypedDict form.
      Moved:
        versions:
          1: {fields: {from: str, to: str, route: {type: Route, optional: true}}}
          2:
            fields:
              from: str
              import: {type: str, renamed_from: to}
              class: {type: str, default: economy}
              route: {type: Route, optional: true}
              hops: {type: "dict[str, int]", default: {}}
      Closed:
        versions:
          1: {fields: {on: date, by: uuid}}
          2: {fields: {on: date, by: uuid, reason: str}, upcast: manual}
"""

# Hand-written steps work on the event classes: validated values in, a validated event out.
MANUAL = """\
from __future__ import annotations

from ...events.ledger import Closed, ClosedV1


def upcast(event: ClosedV1) -> Closed:
    return Closed(on=event.on, by=event.by, reason="closed before reasons were kept")
"""

# Runs with the generated package on the path: stores what each old version's class
# writes, reads it back through the registry, and checks each payload against its
# TypedDict, key by key.
CHECK = """\
import json
import sys
import typing
from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import UUID

from esgen.runtime import NewEvent, SQLiteEventStore
from ledger import payloads
from ledger.events.ledger import (
    Closed, ClosedV1, Moved, MovedV1, Posted, PostedV1, PostedV2,
)
from ledger.registry import REGISTRY
from ledger.types import Currency, Line, LineV2, Money, MoneyV2, Route


def conforms(value, hint, where):
    origin = typing.get_origin(hint)
    if hint is object:
        return
    if typing.is_typeddict(hint):
        assert isinstance(value, dict), where
        # Not __required_keys__: on 3.11 it cannot see NotRequired in string annotations.
        hints = typing.get_type_hints(hint, include_extras=True)
        optional = {k for k, h in hints.items() if typing.get_origin(h) is typing.NotRequired}
        assert set(value) <= set(hints), (where, set(value) - set(hints))
        assert set(hints) - optional <= set(value), (where, set(hints) - optional - set(value))
        for key, item in value.items():
            item_hint = hints[key]
            if key in optional:
                item_hint = typing.get_args(item_hint)[0]
            conforms(item, item_hint, f"{where}.{key}")
    elif origin is typing.Literal:
        assert value in typing.get_args(hint), (where, value)
    elif origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        errors = []
        for option in typing.get_args(hint):
            try:
                conforms(value, option, where)
                return
            except AssertionError as exc:
                errors.append(exc)
        raise AssertionError(where, value, hint)
    elif origin is list:
        assert isinstance(value, list), where
        for item in value:
            conforms(item, typing.get_args(hint)[0], where + "[]")
    elif origin is dict:
        assert isinstance(value, dict), where
        for item in value.values():
            conforms(item, typing.get_args(hint)[1], where + "{}")
    elif hint is type(None):
        assert value is None, where
    elif hint is float:
        assert type(value) in (int, float), (where, value)
    else:
        assert type(value) is hint, (where, value, hint)


REF = UUID("12345678-1234-5678-1234-567812345678")
AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
old = [
    PostedV1(
        ref=REF, memo="rent", amount=12, legacy="x",
        lines=[Line(sku="a", price=Money(amount=Decimal("1.5"), currency=Currency.EUR))],
        total=Money(amount=Decimal("1.5"), currency=Currency.EUR),
    ),
    PostedV2(
        ref=REF, note="rent", amount=Decimal("12.25"), lines=[], at=AT,
        total=MoneyV2(amount=Decimal("3"), currency=Currency.SEK, rate=Decimal("0.5")),
    ),
    MovedV1.model_validate({"from": "a", "to": "b", "route": {"from": "a", "to": "b"}}),
    MovedV1.model_validate({"from": "a", "to": "b", "route": None}),
    ClosedV1(on=date(2024, 1, 2), by=REF),
]
store = SQLiteEventStore(sys.argv[1])
for event in old:
    stored = NewEvent.from_event(event)
    hint = getattr(payloads, f"{event.event_type}V{event.event_version}Payload")
    conforms(json.loads(stored.data), hint, hint.__name__)
    store.append(f"ledger-{len(store.read_all())}", [stored], 0)
# A value stored before a value type gained a field with a default lacks it, and its
# payload type says so.
conforms({"sku": "a", "price": {"amount": 1, "currency": "EUR"}}, payloads.LinePayload, "Line")

read = REGISTRY.decode_all(store.read_all())
assert read == [
    Posted(
        ref=REF, note="rent", amount=Decimal(12), currency="SEK", at=None,
        lines=[LineV2(sku="a", price=MoneyV2(amount=Decimal("1.5"), currency=Currency.EUR))],
        total=MoneyV2(amount=Decimal("1.5"), currency=Currency.EUR, rate=Decimal(1)),
    ),
    Posted(
        ref=REF, note="rent", amount=Decimal("12.25"), lines=[], at=AT, currency="SEK",
        total=MoneyV2(amount=Decimal("3"), currency=Currency.SEK, rate=Decimal("0.5")),
    ),
    Moved.model_validate(
        {"from": "a", "import": "b", "class": "economy", "hops": {},
         "route": Route.model_validate({"from": "a", "to": "b"})}
    ),
    Moved.model_validate({"from": "a", "import": "b", "route": None}),
    Closed(on=date(2024, 1, 2), by=REF, reason="closed before reasons were kept"),
], read
# Version 2 of Posted reaches version 3 by a widening: pydantic reads the stored text
# (falling back to the Python validator only where the JSON one is stricter).
assert REGISTRY._decoders[("Posted", 2)].__qualname__.startswith("_widened_decoder")
print("ok")
"""


def _generate(tmp_path: Path) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "ledger.yaml").write_text(SCHEMA)
    with chdir(tmp_path):
        result = CliRunner().invoke(
            main, ["generate", "schemas", "--out", "out/src", "--tests", "out/tests"]
        )
    assert result.exit_code == 0, result.output + result.stderr
    return tmp_path / "out"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = _generate(tmp_path_factory.mktemp("typed"))
    (out / "src" / "ledger" / "domain" / "upcasting" / "closed_v1.py").write_text(MANUAL)
    return out


def test_payload_types_and_steps_are_what_the_schema_says(generated: Path) -> None:
    package = generated / "src" / "ledger"
    payloads = (package / "payloads.py").read_text()
    for line in [
        "class MoneyV2Payload(TypedDict):",
        "    amount: str | int",
        '    currency: Literal["EUR", "SEK"]',
        "    rate: NotRequired[str | int]",
        '        "via": "NotRequired[list[str]]",',
        "    lines: list[LineV2Payload]",
        "    at: str | None",
        "    note: str | None",
        '        "from": "str",',
        '        "route": "RoutePayload | None",',
        '        "hops": "dict[str, int]",',
    ]:
        assert f"\n{line}\n" in payloads, line
    upcasters = (package / "upcasters" / "ledger.py").read_text()
    assert "def posted_v1_to_v2(data: PostedV1Payload) -> PostedV2Payload:" in upcasters
    assert "def _to_line_v2(value: LinePayload) -> LineV2Payload:" in upcasters
    assert '"import": data["to"],' in upcasters
    assert (
        "closed_v1_to_v2: Final = upcast_events(\n    ClosedV1, Closed, _closed_v1\n)" in upcasters
    )
    assert "posted_v2_to_v3" not in upcasters
    registry = (package / "registry.py").read_text()
    assert 'REGISTRY.register_same_payload("Posted", 2)\n' in registry
    assert 'REGISTRY.register_upcaster("Posted", 1, posted_v1_to_v2)\n' in registry


def test_generated_upcasters_pass_mypy_strict(generated: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path),
         str(generated / "src" / "ledger"), *map(str, (generated / "tests").rglob("*.py"))],
        env={**os.environ, "MYPYPATH": str(generated / "src")},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hand_written_upcaster_of_the_wrong_event_fails_mypy(tmp_path: Path) -> None:
    out = _generate(tmp_path)
    wrong = MANUAL.replace(
        "def upcast(event: ClosedV1) -> Closed:", "def upcast(event: Closed) -> Closed:"
    )
    (out / "src" / "ledger" / "domain" / "upcasting" / "closed_v1.py").write_text(wrong)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         str(out / "src" / "ledger")],
        env={**os.environ, "MYPYPATH": str(out / "src")},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert '"upcast_events" has incompatible type' in result.stdout, result.stdout


def test_old_payloads_stored_in_sqlite_read_as_the_latest_version(
    generated: Path, tmp_path: Path
) -> None:
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "events.db")],
        env={**os.environ, "PYTHONPATH": str(generated / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "ok\n"


def test_generated_upcaster_property_tests_pass(generated: Path, tmp_path: Path) -> None:
    tests = sorted(str(f) for f in (generated / "tests").rglob("test_*_upcasters.py"))
    assert tests
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(generated / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- no Any in generated code --------------------------------------------------------------

_HEADER = "# Code generated by esgen from "


def _any_names(text: str) -> list[int]:
    """Lines naming `Any`: imported, or in an annotation; never inside a string."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [t.start[0] for t in tokens if t.type == tokenize.NAME and t.string == "Any"]


def _uses_of_any(roots: list[Path]) -> list[str]:
    found: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.startswith(_HEADER):
                found += [f"{path}:{line}" for line in _any_names(text)]
    return found


def test_the_typed_upcasting_modules_name_no_any(generated: Path) -> None:
    package = generated / "src" / "ledger"
    files = [
        package / "payloads.py",
        package / "registry.py",
        *(package / "upcasters").glob("*.py"),
        *(package / "domain" / "upcasting").glob("*.py"),
    ]
    assert [f"{f}:{n}" for f in files for n in _any_names(f.read_text())] == []


def test_the_scan_for_any_finds_it() -> None:
    assert _any_names("from typing import Any\nx: 'Any' = 1\ny: dict[str, Any]\n") == [1, 3]


def test_generated_code_names_no_any() -> None:
    roots = [c / "expected" for c in sorted(CASES.iterdir()) if (c / "expected").is_dir()]
    roots += [p for p in sorted(EXAMPLES.iterdir()) if p.is_dir()]
    found = _uses_of_any(roots)
    assert not found, "generated code names Any:\n" + textwrap.indent("\n".join(found), "  ")
