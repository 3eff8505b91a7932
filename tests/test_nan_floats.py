"""`allow_nan: true`, end to end: the golden case `nan_floats` is generated afresh, its
events holding NaN and both infinities are appended to SQLite and memory stores and read
back as themselves (through the upcasters too), and a plain float field still refuses them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from harness import CASES, Case, run_case
from pydantic import ValidationError

from esgen.compat import current_side, render_lock
from esgen.docs._build import literal
from esgen.runtime import (
    EventStore,
    MemoryEventStore,
    NewEvent,
    SQLiteEventStore,
    UnstorableValue,
)

INF = math.inf


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("nan_floats")
    code, stderr = run_case(Case("nan_floats", CASES / "nan_floats"), out)
    assert code == 0, stderr
    sys.path.insert(0, str(out / "src"))
    try:
        import lab.aggregates.probe
        import lab.events.probe
        import lab.registry
        import lab.types

        yield lab
    finally:
        # Another test may generate a package of the same name.
        sys.path.remove(str(out / "src"))
        for name in [m for m in sys.modules if m == "lab" or m.startswith("lab.")]:
            del sys.modules[name]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
        return
    sqlite = SQLiteEventStore(tmp_path / "events.db")
    try:
        yield sqlite
    finally:
        sqlite.close()


def _round_trip(lab: ModuleType, store: EventStore, event: Any) -> Any:
    store.append("probe-1", [NewEvent.from_event(event)], 0)
    (recorded,) = store.read_stream("probe-1")
    return lab.registry.REGISTRY.decode_recorded(recorded)


def test_nan_and_infinities_read_back_where_the_schema_allows_them(
    lab: ModuleType, store: EventStore
) -> None:
    reading = lab.types.Reading(value=-INF, label="saturated low")
    event = lab.events.probe.Measured(
        value=math.nan,
        series=(1.5, math.nan, INF, -INF),
        by_channel={"a": INF, "b": math.nan},
        maybe=-INF,
        reading=reading,
    )
    read = _round_trip(lab, store, event)
    assert type(read) is lab.events.probe.Measured
    assert math.isnan(read.value)
    assert read.series[0] == 1.5 and math.isnan(read.series[1])
    assert read.series[2:] == (INF, -INF)
    assert read.by_channel["a"] == INF and math.isnan(read.by_channel["b"])
    assert read.maybe == -INF
    assert read.reading.value == -INF
    assert read.plain == 0.0


def test_a_stored_older_version_with_nan_reads_through_the_upcaster(
    lab: ModuleType, store: EventStore
) -> None:
    old = lab.events.probe.MeasuredV2(value=INF, series=(math.nan,), maybe=math.nan)
    read = _round_trip(lab, store, old)
    assert type(read) is lab.events.probe.Measured
    assert read.value == INF
    assert math.isnan(read.series[0]) and math.isnan(read.maybe)
    assert read.note == ""


@pytest.mark.parametrize("bad", [math.nan, INF, -INF])
def test_a_plain_float_field_refuses_them_by_name(lab: ModuleType, bad: float) -> None:
    with pytest.raises(ValidationError) as caught:
        lab.events.probe.Measured(value=1.0, plain=bad)
    assert [e["loc"] for e in caught.value.errors()] == [("plain",)]
    # The version before allow_nan was added refuses them too: it is what old code wrote.
    with pytest.raises(ValidationError, match=r"(?s)^1 validation error.*\nvalue\n"):
        lab.events.probe.MeasuredV1(value=bad)


def test_a_plain_float_that_slipped_past_validation_is_not_written(
    lab: ModuleType, store: EventStore
) -> None:
    # model_construct skips validation: the store's own check is what stops it.
    event = lab.events.probe.Measured.model_construct(value=1.0, plain=math.nan)
    with pytest.raises(UnstorableValue, match=r"^Measured\.plain is nan"):
        store.append("probe-1", [NewEvent.from_event(event)], 0)
    assert store.read_all() == []


def test_nan_and_infinite_defaults_read_back_as_themselves(
    lab: ModuleType, store: EventStore
) -> None:
    # `default: .nan`, `.NaN`, `-.inf` and `[.inf, -.inf, 1.5]` in the schema.
    event = lab.events.probe.Measured(value=1.0, reading=lab.types.Reading(value=2.0, label="x"))
    assert math.isnan(event.drift) and math.isnan(event.reading.spread)
    read = _round_trip(lab, store, event)
    assert math.isnan(read.drift)
    assert read.peaks == (INF, -INF, 1.5)
    assert math.isnan(read.reading.spread)
    state = lab.aggregates.probe.ProbeState(last=0.0, count=0)
    assert state.low == -INF
    assert type(state).model_validate_json(state.model_dump_json()).low == -INF


def test_the_upcaster_fills_in_nan_and_infinite_defaults(
    lab: ModuleType, store: EventStore
) -> None:
    # Version 2 adds drift (NaN), version 3 keeps it, NaN as it was, and adds peaks.
    read = _round_trip(lab, store, lab.events.probe.MeasuredV1(value=0.5))
    assert type(read) is lab.events.probe.Measured
    assert math.isnan(read.drift)
    assert read.peaks == (INF, -INF, 1.5)


def test_nan_defaults_in_the_lock_and_the_catalog(tmp_path: Path) -> None:
    schema = current_side(CASES / "nan_floats" / "schemas", strict=True).schema
    lock = render_lock(schema, tmp_path / "esgen.lock")
    # YAML's own spellings, which the lock reads back as the same floats.
    assert "drift: {type: float, allow_nan: true, default: .nan}" in lock
    assert "default: [.inf, -.inf, 1.5]" in lock
    # Numbers, not the stored strings: `"NaN"` would read as a str default.
    assert literal(math.nan) == "NaN"
    assert literal([INF, -INF, 1.5]) == "[Infinity, -Infinity, 1.5]"
