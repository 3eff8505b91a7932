"""Read-model queries on every backend: filters, nulls, ordering and paging as
`esgen.runtime._query` defines them, and a property test that writes random rows through
a projection and checks every filter and order against Python's evaluation of the same
values (decimals at any scale, aware times at any offset, enums, booleans, ints, floats,
text, nulls). Written against the public API only."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from esgen.runtime import (
    Column,
    Condition,
    Event,
    EventRegistry,
    EventStore,
    Field,
    NanFloat,
    NewEvent,
    Projection,
    ProjectionRunner,
    ReadModel,
    RecordedEvent,
    TableSpec,
    UnstorableText,
    UnstorableValue,
    ValueObject,
)
from esgen.runtime.testing._fixtures import StoreFixtures

__all__ = ["QueryContract"]


class Shade(StrEnum):
    RED = "red"
    RED_TITLE = "Red"
    BLUE = "blue"
    APPLE = "äpfel"
    ZETA = "Zeta"


class SampleRow(ValueObject):
    key: str
    amount: Decimal | None = None
    at: datetime | None = None
    shade: Shade | None = None
    flag: bool | None = None
    count: int | None = None
    ratio: float | None = None
    label: str | None = None
    extra: tuple[int, ...] = ()


SAMPLE_COLUMNS = (
    Column("key", "text"),
    Column("amount", "decimal", nullable=True),
    Column("at", "timestamp", nullable=True),
    Column("shade", "text", nullable=True),
    Column("flag", "boolean", nullable=True),
    Column("count", "integer", nullable=True),
    Column("ratio", "real", nullable=True),
    Column("label", "text", nullable=True),
    Column("extra", "json"),
)

FIELDS = ("amount", "at", "shade", "flag", "count", "ratio", "label")
"""Every queryable field but the key."""


class SamplesWritten(Event):
    """Rows for the read model named `table` (each test or example has its own)."""

    event_type = "SamplesWritten"
    event_version = 1
    table: str
    rows: tuple[SampleRow, ...]


class Samples(Projection[SampleRow]):
    """The base of one projection per table: `samples(name)` makes one."""

    name: ClassVar[str] = "samples"
    table: ClassVar[TableSpec] = TableSpec("samples", key="key", columns=SAMPLE_COLUMNS)
    row_type: ClassVar[type[BaseModel]] = SampleRow
    handlers: ClassVar[Mapping[type[Event], str]] = {SamplesWritten: "on_written"}

    def on_written(self, event: SamplesWritten, recorded: RecordedEvent) -> None:
        if event.table == self.name:
            for row in event.rows:
                self.rows.put(row)


class SampleQuery(ReadModel[SampleRow, str]):
    table: ClassVar[TableSpec] = Samples.table
    row_type: ClassVar[type[BaseModel]] = SampleRow


def sample_field(name: str) -> Field[SampleRow, Any]:
    return Field(name)


def write_samples(store: EventStore, rows: Sequence[SampleRow]) -> SampleQuery:
    """The rows written through a projection of a table of their own; its query."""
    name = f"samples_{uuid.uuid4().hex[:10]}"
    spec = TableSpec(name, key="key", columns=SAMPLE_COLUMNS)
    projection = type(f"Samples_{name}", (Samples,), {"name": name, "table": spec})
    query = type(f"SampleQuery_{name}", (SampleQuery,), {"table": spec})
    registry = EventRegistry([SamplesWritten])
    runner = ProjectionRunner(store, registry, [projection()])
    event = SamplesWritten(table=name, rows=tuple(rows))
    store.append(f"Samples-{name}", [NewEvent.from_event(event)], 0)
    runner.catch_up()
    return cast(SampleQuery, query(store))


def keys(rows: Sequence[SampleRow]) -> list[str]:
    return [row.key for row in rows]


# -- floats that may be NaN or infinite (`allow_nan: true`) -----------------------------


class GaugeRow(ValueObject):
    key: str
    level: NanFloat | None = None


GAUGE_COLUMNS = (Column("key", "text"), Column("level", "real", nullable=True))


class GaugesWritten(Event):
    event_type = "GaugesWritten"
    event_version = 1
    table: str
    rows: tuple[GaugeRow, ...]


class Gauges(Projection[GaugeRow]):
    name: ClassVar[str] = "gauges"
    table: ClassVar[TableSpec] = TableSpec("gauges", key="key", columns=GAUGE_COLUMNS)
    row_type: ClassVar[type[BaseModel]] = GaugeRow
    handlers: ClassVar[Mapping[type[Event], str]] = {GaugesWritten: "on_written"}

    def on_written(self, event: GaugesWritten, recorded: RecordedEvent) -> None:
        if event.table == self.name:
            for row in event.rows:
                self.rows.put(row)


class GaugeQuery(ReadModel[GaugeRow, str]):
    table: ClassVar[TableSpec] = Gauges.table
    row_type: ClassVar[type[BaseModel]] = GaugeRow


def gauge_keys(rows: Sequence[GaugeRow]) -> list[str]:
    return [row.key for row in rows]


def write_gauges(store: EventStore, rows: Sequence[GaugeRow]) -> GaugeQuery:
    name = f"gauges_{uuid.uuid4().hex[:10]}"
    spec = TableSpec(name, key="key", columns=GAUGE_COLUMNS)
    projection = type(f"Gauges_{name}", (Gauges,), {"name": name, "table": spec})
    query = type(f"GaugeQuery_{name}", (GaugeQuery,), {"table": spec})
    runner = ProjectionRunner(store, EventRegistry([GaugesWritten]), [projection()])
    event = GaugesWritten(table=name, rows=tuple(rows))
    store.append(f"Gauges-{name}", [NewEvent.from_event(event)], 0)
    runner.catch_up()
    return cast(GaugeQuery, query(store))


# -- what Python makes of the same values ------------------------------------------------

_PYTHON: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda value, probe: value is not None and value == probe,
    "ne": lambda value, probe: value is None or value != probe,
    "lt": lambda value, probe: value is not None and value < probe,
    "le": lambda value, probe: value is not None and value <= probe,
    "gt": lambda value, probe: value is not None and value > probe,
    "ge": lambda value, probe: value is not None and value >= probe,
}


def _python(op: str, probe: Any) -> Callable[[Any], bool]:
    return lambda value: _PYTHON[op](value, probe)


def _python_in(probes: tuple[Any, ...]) -> Callable[[Any], bool]:
    return lambda value: value is not None and value in probes


def python_orders(rows: Sequence[SampleRow], orders: Sequence[tuple[str, bool]]) -> list[str]:
    """Python's sort by several fields (the first decides, then the next), ties by key:
    one stable sort per field, the last first."""
    result = sorted(rows, key=lambda row: row.key)
    for name, descending in reversed(orders):
        nulls = [row for row in result if getattr(row, name) is None]
        values = [row for row in result if getattr(row, name) is not None]
        values.sort(key=lambda row: getattr(row, name), reverse=descending)
        result = nulls + values if descending else values + nulls
    return keys(result)


def python_order(rows: Sequence[SampleRow], name: str, descending: bool) -> list[str]:
    """Python's sort of the field's values, nulls after them ascending and before them
    descending, ties by key."""
    by_key = sorted(rows, key=lambda row: row.key)
    nulls = [row for row in by_key if getattr(row, name) is None]
    values = [row for row in by_key if getattr(row, name) is not None]
    values.sort(key=lambda row: getattr(row, name), reverse=descending)  # stable: keys stay
    return keys(nulls + values if descending else values + nulls)


# -- random rows --------------------------------------------------------------------------

_OFFSETS = [timedelta(0), timedelta(hours=2), timedelta(hours=-5),
            timedelta(hours=5, minutes=30), timedelta(hours=14), timedelta(hours=-12),
            timedelta(hours=-3, minutes=-30)]  # fmt: skip
_ZONES = st.sampled_from([timezone(offset) for offset in _OFFSETS])
# A few instants many rows share (shown at different offsets), and any others.
_SHARED_INSTANTS = [
    datetime(2026, 3, 1, 12, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
_instants = st.sampled_from(_SHARED_INSTANTS) | st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2199, 12, 30), timezones=st.just(UTC)
)
_times = st.builds(lambda moment, zone: moment.astimezone(zone), _instants, _ZONES)

# One value at several scales ("1", "1.0", "1.00"), signs, zeros, exponents, large values.
_SHARED_DECIMALS = ["0", "-0", "0.00", "1", "1.0", "1.00", "-1", "-0.5", "-0.50", "100",
                    "1E+2", "99.99", "-400.00", "3.00", "20.00", "0.001"]  # fmt: skip
_decimals = st.sampled_from([Decimal(text) for text in _SHARED_DECIMALS]) | st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(-(10**18), 10**18),
    st.integers(-12, 12),
)
_SHARED_TEXT = ["", "a", "A", "b", "B", "é", "É", "z", "Zebra", "zebra", "ß", "日本", "😀"]
_text = st.sampled_from(_SHARED_TEXT) | st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=5,
)
_ints = st.sampled_from([0, 1, -1]) | st.integers(-(2**63), 2**63 - 1)
_floats = st.sampled_from([0.0, -0.0, 1.5, -1.5]) | st.floats(
    allow_nan=False, allow_infinity=False, allow_subnormal=False
)

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "amount": _decimals,
    "at": _times,
    "shade": st.sampled_from(Shade),
    "flag": st.booleans(),
    "count": _ints,
    "ratio": _floats,
    "label": _text,
}

_keys = st.text(st.sampled_from("abAB0é_"), min_size=1, max_size=3)


@st.composite
def _samples(draw: st.DrawFn) -> list[SampleRow]:
    names = draw(st.lists(_keys, min_size=2, max_size=16, unique=True))
    return [
        SampleRow(
            key=key,
            **{field: draw(st.none() | _VALUES[field]) for field in FIELDS},
            extra=draw(st.lists(st.integers(0, 9), max_size=2).map(tuple)),
        )
        for key in names
    ]


# One store serves every example (each writes a table of its own); derandomized, so a CI
# run sees the same examples as the last local one.
_PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


# -- fixed rows for the rules one by one --------------------------------------------------


class DecimalTally(ValueObject):
    key: Decimal
    n: int


class TimeTally(ValueObject):
    key: datetime
    n: int


class Tallied(Event):
    """One more for the row keyed `amount` (or `at`) of the read model named `table`."""

    event_type = "Tallied"
    event_version = 1
    table: str
    amount: Decimal | None = None
    at: datetime | None = None


class Tallies(Projection[Any]):
    """Counts events per key the way handlers do: get, then put or update."""

    name: ClassVar[str] = "tallies"
    handlers: ClassVar[Mapping[type[Event], str]] = {Tallied: "on_tallied"}

    def on_tallied(self, event: Tallied, recorded: RecordedEvent) -> None:
        if event.table != self.name:
            return
        key = event.amount if event.amount is not None else event.at
        row = self.rows.get(key)
        if row is None:
            self.rows.put(self.row_type.model_validate({"key": key, "n": 1}))
        else:
            self.rows.update(key, n=row.n + 1)


def tally(
    store: EventStore, row_type: type[BaseModel], kind: Any, events: Sequence[Tallied], page: int
) -> ReadModel[Any, Any]:
    """The events counted per key by a projection of its own, `page` events a unit."""
    name = f"tallies_{uuid.uuid4().hex[:10]}"
    spec = TableSpec(name, key="key", columns=(Column("key", kind), Column("n", "integer")))
    members = {"name": name, "table": spec, "row_type": row_type}
    projection = type(f"Tallies_{name}", (Tallies,), members)
    query = type(f"TallyQuery_{name}", (ReadModel,), {"table": spec, "row_type": row_type})
    runner = ProjectionRunner(store, EventRegistry([Tallied]), [projection()], page_size=page)
    news = [NewEvent.from_event(e.model_copy(update={"table": name})) for e in events]
    store.append(f"Tallies-{name}", news, 0)
    runner.catch_up()
    return cast(ReadModel[Any, Any], query(store))


def _row(key: str, **fields: Any) -> SampleRow:
    return SampleRow(key=key, **fields)


SCORES = [_row("a", count=1), _row("b"), _row("c", count=3), _row("d"), _row("e", count=2),
          _row("f", count=2)]  # fmt: skip


class QueryContract(StoreFixtures):
    """What every backend that keeps read models answers to typed queries."""

    def test_nulls_match_only_is_null_and_ne(self, progress: EventStore) -> None:
        query = write_samples(progress, SCORES)
        count = sample_field("count")
        assert keys(query.list(count.eq(None))) == ["b", "d"]
        assert keys(query.list(count.is_null())) == ["b", "d"]
        assert keys(query.list(count.ne(None))) == ["a", "c", "e", "f"]
        assert keys(query.list(count.ne(1))) == ["b", "c", "d", "e", "f"]
        assert keys(query.list(count.lt(3))) == ["a", "e", "f"]
        assert keys(query.list(count.ge(2))) == ["c", "e", "f"]
        assert keys(query.list(*count.between(1, 2))) == ["a", "e", "f"]
        assert keys(query.list(count.in_([1, 3, 7]))) == ["a", "c"]
        assert keys(query.list(count.in_([]))) == []
        # As Python's `None in (None, 1)`: a None among the values matches the nulls.
        assert keys(query.list(count.in_([None, 1]))) == ["a", "b", "d"]
        assert query.count(count.is_not_null()) == 4 and query.count(count.eq(2)) == 2
        assert query.exists(count.gt(2)) and not query.exists(count.gt(3))

    def test_nulls_sort_last_ascending_and_first_descending_ties_by_key(
        self, progress: EventStore
    ) -> None:
        query = write_samples(progress, SCORES)
        count = sample_field("count")
        assert keys(query.list(order_by=count.asc())) == ["a", "e", "f", "c", "b", "d"]
        assert keys(query.list(order_by=count.desc())) == ["b", "d", "c", "e", "f", "a"]
        # Paging is stable: the pages put together are the whole list.
        pages = [query.list(order_by=count.desc(), limit=2, offset=n) for n in (0, 2, 4, 6)]
        assert [keys(page) for page in pages] == [["b", "d"], ["c", "e"], ["f", "a"], []]
        assert keys(query.list(order_by=count.asc(), offset=4)) == ["b", "d"]
        assert keys(query.list(order_by=count.asc(), limit=0)) == []
        key = sample_field("key")
        assert keys(query.list(order_by=key.desc(), limit=3)) == ["f", "e", "d"]
        assert keys(query.list(order_by=[count.asc(), key.desc()])) == ["a", "f", "e", "c",
                                                                        "d", "b"]  # fmt: skip

    def test_decimals_compare_as_numbers_and_read_back_as_written(
        self, progress: EventStore
    ) -> None:
        written = ["3.00", "20.00", "100.00", "-400.00", "1.0", "1.00", "-0.50", "20"]
        rows = [_row(f"k{n}", amount=Decimal(text)) for n, text in enumerate(written)]
        query = write_samples(progress, rows)
        amount = sample_field("amount")
        largest = query.list(order_by=amount.desc(), limit=4)
        assert [str(r.amount) for r in largest] == ["100.00", "20.00", "20", "3.00"]
        assert keys(query.list(amount.eq(Decimal(1)))) == ["k4", "k5"]
        assert keys(query.list(amount.eq(Decimal("20.000")))) == ["k1", "k7"]
        assert keys(query.list(amount.lt(Decimal("-0.5")))) == ["k3"]
        assert keys(query.list(amount.le(Decimal("-0.5")))) == ["k3", "k6"]
        assert keys(query.list(amount.gt(Decimal(3)))) == ["k1", "k2", "k7"]
        assert query.count(amount.in_([Decimal("1.000"), Decimal("-400")])) == 3
        assert {r.key: str(r.amount) for r in query.list()} == {
            f"k{n}": text for n, text in enumerate(written)
        }

    def test_times_compare_as_instants_whatever_their_offset(self, progress: EventStore) -> None:
        two, minus_five = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
        rows = [
            _row("a", at=datetime(2026, 3, 1, 12, tzinfo=two)),  # 10:00 UTC
            _row("b", at=datetime(2026, 3, 1, 11, tzinfo=UTC)),
            _row("c", at=datetime(2026, 3, 1, 6, tzinfo=minus_five)),  # 11:00 UTC
            _row("d", at=datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        ]
        query = write_samples(progress, rows)
        at = sample_field("at")
        assert keys(query.list(order_by=at.asc())) == ["a", "d", "b", "c"]
        assert keys(query.list(order_by=at.desc())) == ["b", "c", "d", "a"]
        eleven = datetime(2026, 3, 1, 13, tzinfo=two)
        assert keys(query.list(at.eq(eleven))) == ["b", "c"]
        assert keys(query.list(at.lt(eleven))) == ["a", "d"]
        assert query.get("c") == rows[2]  # the same instant as written

    def test_what_cannot_be_queried_is_refused_by_name(self, progress: EventStore) -> None:
        query = write_samples(progress, SCORES)
        with pytest.raises(ValueError, match=r"\.extra is stored as JSON"):
            query.list(sample_field("extra").eq((1,)))
        with pytest.raises(ValueError, match="no column 'nothing'"):
            query.count(sample_field("nothing").is_null())
        with pytest.raises(ValueError, match="limit must be"):
            query.list(limit=-1)
        with pytest.raises(ValueError, match="lt"):
            query.list(sample_field("count").lt(None))
        with pytest.raises(ValueError):
            query.list(sample_field("count").eq("many"))

    def test_a_value_no_table_holds_is_refused_naming_the_row_and_the_page(
        self, progress: EventStore
    ) -> None:
        # Rows are written once per page: the refusal names the row's key and the events.
        for bad in (_row("z", count=2**70), _row("z", label="a\x00b")):
            with pytest.raises((UnstorableValue, UnstorableText)) as caught:
                write_samples(progress, [_row("y", count=1), bad])
            notes = "\n".join(getattr(caught.value, "__notes__", []))
            assert "the row with key = 'z'" in notes
            assert "writing the rows of the page of events" in notes

    def test_an_integer_past_64_bits_is_refused_by_name(self, progress: EventStore) -> None:
        # The same error on every backend, not the driver's OverflowError or out-of-range.
        for count in (2**63, -(2**63) - 1):
            with pytest.raises(UnstorableValue, match=r"\.count is -?\d+: a read-model integer"):
                write_samples(progress, [_row("z", count=count)])
        edge = write_samples(progress, [_row("y", count=2**63 - 1), _row("x", count=-(2**63))])
        assert keys(edge.list(order_by=sample_field("count").asc())) == ["x", "y"]

    @pytest.mark.parametrize("page", [1, 1000])
    def test_keys_equal_in_python_are_one_row(self, progress: EventStore, page: int) -> None:
        # 10, 10.0 and 10.00 are one decimal key; one instant at three offsets one time
        # key: whether the handler's get finds the row in the unit or in the table.
        weights = [Tallied(table="", amount=Decimal(t)) for t in ("10", "10.0", "10.00")]
        by_weight = tally(progress, DecimalTally, "decimal", weights, page)
        assert [(str(r.key), r.n) for r in by_weight.list()] == [("10", 3)]  # the one form
        assert by_weight.count() == 1 and by_weight.get(Decimal("10.000")) is not None
        key = Field[Any, Any]("key")
        assert by_weight.count(key.eq(Decimal("1E+1"))) == 1
        assert by_weight.count(key.in_([Decimal("10.0"), Decimal(3)])) == 1
        noon = datetime(2026, 3, 1, 12, tzinfo=UTC)
        offsets = [timezone(timedelta(hours=h)) for h in (0, 2, -5)]
        times = [Tallied(table="", at=noon.astimezone(o)) for o in offsets]
        by_time = tally(progress, TimeTally, "timestamp", times, page)
        [row] = by_time.list()
        assert row.n == 3 and row.key == noon and row.key.utcoffset() == timedelta(0)
        assert by_time.get(noon.astimezone(offsets[2])) == row
        assert by_time.count(key.eq(noon.astimezone(offsets[1]))) == 1

    def test_values_read_back_alike_on_every_backend(self, progress: EventStore) -> None:
        # Decimals in PostgreSQL numeric's form (no -0, no positive exponent), the scale
        # written kept; times in UTC.
        amounts = ["-0", "-0.00", "1E+3", "1.50", "1E-7", "-2.5E+1"]
        two = timezone(timedelta(hours=2))
        rows = [_row(f"k{n}", amount=Decimal(t)) for n, t in enumerate(amounts)]
        rows.append(_row("t", at=datetime(2026, 3, 1, 12, 30, tzinfo=two)))
        query = write_samples(progress, rows)
        read = {r.key: r for r in query.list()}
        assert [str(read[f"k{n}"].amount) for n in range(len(amounts))] == [
            "0", "0.00", "1000", "1.50", "1E-7", "-25"]  # fmt: skip
        at = read["t"].at
        assert at is not None and at.utcoffset() == timedelta(0) and at.hour == 10

    def test_values_no_column_holds_are_refused_by_name(self, progress: EventStore) -> None:
        edges = [
            _row("a", at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))),
            _row("b", at=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
            _row("c", amount=Decimal("1E+131072")),
            _row("d", amount=Decimal("-1E+131072")),
            _row("e", amount=Decimal("1E-16384")),
        ]
        for row in edges:
            with pytest.raises(UnstorableValue, match=r"SampleRow\.(at|amount) is "):
                write_samples(progress, [row])
        largest = Decimal("9" * 131072 + "." + "9" * 16383)
        smallest = largest.copy_negate()
        edge = write_samples(progress, [_row("y", amount=largest), _row("z", amount=smallest)])
        assert keys(edge.list(order_by=sample_field("amount").asc())) == ["z", "y"]
        assert edge.get("y") == _row("y", amount=largest)

    def test_bounds_past_every_storable_value_have_a_definite_answer(
        self, progress: EventStore
    ) -> None:
        rows = [_row("a", count=1, amount=Decimal(1), at=datetime(2026, 1, 1, tzinfo=UTC)),
                _row("b", count=-5, amount=Decimal(-5), at=datetime(2000, 1, 1, tzinfo=UTC)),
                _row("c")]  # fmt: skip
        query = write_samples(progress, rows)
        late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
        early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
        for name, huge, tiny in (
            ("count", 2**70, -(2**70)),
            ("amount", Decimal("1E+200000"), Decimal("-1E+200000")),
            ("at", late, early),
            ("ratio", float("inf"), float("-inf")),
        ):
            field = sample_field(name)
            nulls = ["c"] if name != "ratio" else ["a", "b", "c"]
            values = [k for k in ("a", "b") if k not in nulls]
            assert keys(query.list(field.lt(huge))) == values, name
            assert keys(query.list(field.le(huge))) == values, name
            assert keys(query.list(field.gt(huge))) == [], name
            assert keys(query.list(field.ge(tiny))) == values, name
            assert keys(query.list(field.lt(tiny))) == [], name
            assert query.count(field.eq(huge)) == 0 and query.count(field.ne(huge)) == 3, name
            assert keys(query.list(field.in_([huge, tiny]))) == [], name
        count = sample_field("count")
        assert keys(query.list(count.in_([2**70, 1, None]))) == ["a", "c"]
        assert query.count(sample_field("ratio").eq(float("nan"))) == 0
        assert query.count(sample_field("ratio").gt(float("nan"))) == 0
        assert query.count(sample_field("ratio").ne(float("nan"))) == 3
        assert query.get("a") is not None
        assert keys(query.list(limit=2**64)) == ["a", "b", "c"]
        assert keys(query.list(limit=2**63, offset=2**70)) == []
        with pytest.raises(ValueError, match=r"samples_\w+\.amount: cannot compare"):
            query.list(sample_field("amount").lt(Decimal("1E-20000")))
        assert query.count(sample_field("amount").eq(Decimal("1E-20000"))) == 0

    def test_a_key_past_every_storable_key_finds_no_row(self, progress: EventStore) -> None:
        weights = [Tallied(table="", amount=Decimal(1))]
        by_weight = tally(progress, DecimalTally, "decimal", weights, 1000)
        assert by_weight.get(Decimal("1E+200000")) is None
        samples = write_samples(progress, SCORES)
        assert samples.get("a\x00") is None and samples.get("a\ud800") is None
        assert by_weight.count(Field[Any, Any]("key").lt(Decimal("1E+200000"))) == 1

    def test_a_query_value_the_field_refuses_names_the_field(self, progress: EventStore) -> None:
        query = write_samples(progress, SCORES)
        with pytest.raises(ValueError, match=r"samples_\w+\.amount: cannot compare with 'abc'"):
            query.list(sample_field("amount").gt("abc"))
        with pytest.raises(ValueError, match=r"samples_\w+\.count: cannot compare with 'x'"):
            query.list(sample_field("count").in_(["x"]))
        # None among in_'s values matches the nulls, even of a field that cannot be null.
        assert query.count(sample_field("key").in_([None, "a"])) == 1
        label = sample_field("label")
        for text in ("a\x00b", "a\ud800b"):  # no row holds it: equal to none
            assert query.count(label.eq(text)) == 0 and query.count(label.ne(text)) == 6
            assert query.count(label.in_([text, None])) == 6
            with pytest.raises(ValueError, match=r"samples_\w+\.label: cannot compare") as info:
                query.list(label.lt(text))
            assert "written" not in str(info.value) and "stored as text" not in str(info.value)

    def test_nan_sorts_above_every_number_and_equals_itself(self, progress: EventStore) -> None:
        """PostgreSQL's rule for NaN, on every backend (not Python's, where NaN equals
        nothing and compares false): above +Infinity, equal to any NaN; the infinities
        are numbers like any other."""
        inf, nan = math.inf, math.nan
        levels = {"a": -inf, "b": -1.0, "c": 0.0, "d": 2.5, "e": inf, "f": nan, "g": None,
                  "h": nan}  # fmt: skip
        query = write_gauges(progress, [GaugeRow(key=k, level=v) for k, v in levels.items()])
        level: Field[GaugeRow, float | None] = Field("level")
        assert gauge_keys(query.list(order_by=level.asc())) == [
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "h",
            "g",
        ]
        assert gauge_keys(query.list(order_by=level.desc())) == [
            "g",
            "f",
            "h",
            "e",
            "d",
            "c",
            "b",
            "a",
        ]
        assert gauge_keys(query.list(level.lt(0.0))) == ["a", "b"]
        assert gauge_keys(query.list(level.gt(0.0))) == ["d", "e", "f", "h"]
        assert gauge_keys(query.list(level.le(-inf))) == ["a"]
        assert gauge_keys(query.list(level.lt(-inf))) == []
        assert gauge_keys(query.list(level.gt(inf))) == ["f", "h"]
        assert gauge_keys(query.list(level.eq(inf))) == ["e"]
        assert gauge_keys(query.list(level.eq(nan))) == ["f", "h"]
        assert gauge_keys(query.list(level.ge(nan))) == ["f", "h"]
        assert gauge_keys(query.list(level.lt(nan))) == ["a", "b", "c", "d", "e"]
        assert gauge_keys(query.list(level.ne(nan))) == ["a", "b", "c", "d", "e", "g"]
        assert gauge_keys(query.list(level.in_([nan, -inf, 7.0]))) == ["a", "f", "h"]
        assert query.count(level.is_not_null()) == 7
        assert gauge_keys(query.list(level.lt(0.0), order_by=level.desc(), limit=1)) == ["b"]
        back = {row.key: row.level for row in query.list()}
        assert back["a"] == -inf and back["e"] == inf and back["g"] is None
        assert back["f"] is not None and math.isnan(back["f"])

    @_PROPERTY_SETTINGS
    @given(rows=_samples(), data=st.data())
    def test_queries_agree_with_python_on_random_rows(
        self, progress: EventStore, rows: list[SampleRow], data: st.DataObject
    ) -> None:
        query = write_samples(progress, rows)
        by_key = sorted(rows, key=lambda row: row.key)
        assert query.list() == by_key
        assert query.count() == len(rows)
        for row in rows[:3]:
            assert query.get(row.key) == row
        for name in FIELDS:
            field = sample_field(name)
            for descending in (False, True):
                order = field.desc() if descending else field.asc()
                found = query.list(order_by=order)
                assert keys(found) == python_order(rows, name, descending), (name, descending)
            present = [getattr(row, name) for row in rows if getattr(row, name) is not None]
            choices = st.sampled_from(present) | _VALUES[name] if present else _VALUES[name]
            probe, other = data.draw(choices), data.draw(choices)
            conditions: list[tuple[Condition[SampleRow], Callable[[Any], bool]]] = [
                (getattr(field, op)(probe), _python(op, probe)) for op in _PYTHON
            ]
            conditions += [
                (field.in_([probe, other]), _python_in((probe, other))),
                (field.is_null(), lambda v: v is None),
                (field.is_not_null(), lambda v: v is not None),
            ]
            for condition, python in conditions:
                expected = [row.key for row in by_key if python(getattr(row, name))]
                assert keys(query.list(condition)) == expected, (name, condition)
                assert query.count(condition) == len(expected), (name, condition)
        # Two orders at once, and a page of the result.
        first, second = data.draw(st.permutations(FIELDS))[:2]
        first_down, second_down = data.draw(st.booleans()), data.draw(st.booleans())
        orders = [
            sample_field(first).desc() if first_down else sample_field(first).asc(),
            sample_field(second).desc() if second_down else sample_field(second).asc(),
        ]
        expected = python_orders(rows, [(first, first_down), (second, second_down)])
        assert keys(query.list(order_by=orders)) == expected, orders
        offset, limit = data.draw(st.integers(0, 16)), data.draw(st.integers(0, 16))
        page = query.list(order_by=orders, limit=limit, offset=offset)
        assert keys(page) == expected[offset : offset + limit], (orders, limit, offset)
