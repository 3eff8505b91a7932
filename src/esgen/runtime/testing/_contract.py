"""The backend contract: one suite every event store must pass, written once.

Subclass it once per backend in a test module (the subclass name must start with `Test`)
and implement `make_store`; backends that several processes can share also implement
`store_factory` to get the multi-process tests:

    class TestSQLite(BackendContract):
        def make_store(self, tmp_path, clock):
            return SQLiteEventStore(tmp_path / "events.db", clock=clock)

        def store_factory(self, tmp_path):
            return functools.partial(SQLiteEventStore, tmp_path / "events.db")
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esgen.runtime import (
    DEFAULT_PAGE_SIZE,
    AggregateNotCreated,
    AggregateNotFound,
    AppendResult,
    CommandContext,
    ConcurrencyError,
    Event,
    EventRegistry,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Repository,
    Snapshot,
    SnapshotStore,
    StreamAppend,
    StreamNotFound,
    UnitOfWork,
    UnstorableText,
    UpcastError,
    ValueObject,
    command_context,
    current_context,
    handle_command,
    run_in_unit_of_work,
    state_fingerprint,
)
from esgen.runtime.testing._clock import ManualClock
from esgen.runtime.testing._contract_decimals import DecimalValuesContract
from esgen.runtime.testing._contract_floats import FloatValuesContract
from esgen.runtime.testing._contract_inspection import InspectionContract
from esgen.runtime.testing._contract_personal import PersonalDataContract
from esgen.runtime.testing._contract_projections import ProjectionContract
from esgen.runtime.testing._contract_query import QueryContract
from esgen.runtime.testing._contract_rows import RowTextContract
from esgen.runtime.testing._contract_sagas import SagaContract
from esgen.runtime.testing._domain import (
    Account,
    AccountOpened,
    AccountOpenedV1,
    AccountState,
    InsufficientFunds,
    MoneyDeposited,
    MoneyWithdrawn,
    make_registry,
)
from esgen.runtime.testing._fixtures import StoreFixtures as _StoreFixtures
from esgen.runtime.testing._workers import append_later_worker, append_worker, race_worker

__all__ = [
    "BackendContract",
    "EventStoreContract",
    "MultiProcessContract",
    "RepositoryContract",
]

StoreFactory = Callable[[], EventStore]

# Hypothesis runs many examples against one store (fresh stream ids keep them apart), and
# the same test method runs once per backend subclass (a contract suite's whole point).
_PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,  # shared CI machines: never fail on time
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
    ],
)


def _new(data: dict[str, Any], event_type: str = "Thing", **metadata: Any) -> NewEvent:
    return NewEvent(event_type, 1, json.dumps(data), metadata)


def _timed(moment: datetime) -> NewEvent:
    return NewEvent("Thing", 1, "{}", recorded_at=moment)


def _events(count: int, start: int = 0) -> list[NewEvent]:
    return [_new({"n": start + i}) for i in range(count)]


def _as_time(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _stream() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


# -- JSON payloads for the round-trip properties ------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


class _Money(ValueObject):
    amount: Decimal
    currency: str


class _Everything(Event):
    event_type = "Everything"
    event_version = 1
    text: str
    number: int
    ratio: float
    flag: bool
    maybe: str | None
    when: datetime
    tags: list[str]
    counts: dict[str, int]
    money: _Money
    blob: Any


_everything = st.builds(
    _Everything,
    text=st.text(),
    number=st.integers(),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    flag=st.booleans(),
    maybe=st.none() | st.text(),
    when=st.datetimes(timezones=st.just(UTC)),
    tags=st.lists(st.text(), max_size=5),
    counts=st.dictionaries(st.text(), st.integers(), max_size=5),
    money=st.builds(
        _Money,
        amount=st.decimals(allow_nan=False, allow_infinity=False, places=2),
        currency=st.text(min_size=3, max_size=3),
    ),
    blob=_json_values,
)


class EventStoreContract(_StoreFixtures):
    """What every `EventStore` (and `SnapshotStore`) must do."""

    gapless_positions = True
    """Whether positions go 1, 2, 3, ... with no holes (true for memory and SQLite)."""

    # -- append ---------------------------------------------------------------------------

    def test_append_to_a_new_stream_numbers_events_from_one(self, store: EventStore) -> None:
        result = store.append("s", _events(3), ExpectedVersion.NO_STREAM)
        assert result.stream_id == "s"
        assert result.stream_version == 3
        recorded = store.read_stream("s")
        assert [r.stream_version for r in recorded] == [1, 2, 3]
        assert [json.loads(r.data)["n"] for r in recorded] == [0, 1, 2]
        assert result.position == recorded[-1].position
        assert store.stream_version("s") == 3

    def test_expected_version_zero_means_no_stream(self, store: EventStore) -> None:
        store.append("s", _events(1), 0)
        with pytest.raises(ConcurrencyError):
            store.append("s", _events(1), 0)
        with pytest.raises(ConcurrencyError):
            store.append("s", _events(1), ExpectedVersion.NO_STREAM)

    def test_append_with_the_current_version_succeeds(self, store: EventStore) -> None:
        store.append("s", _events(2), ExpectedVersion.NO_STREAM)
        result = store.append("s", _events(2, start=2), 2)
        assert result.stream_version == 4
        assert [json.loads(r.data)["n"] for r in store.read_stream("s")] == [0, 1, 2, 3]

    @pytest.mark.parametrize("expected", [0, 1, 3, ExpectedVersion.NO_STREAM])
    def test_conflict_names_stream_and_versions_and_writes_nothing(
        self, store: EventStore, expected: int | ExpectedVersion
    ) -> None:
        store.append("s", _events(2), ExpectedVersion.NO_STREAM)
        head = store.head_position()
        with pytest.raises(ConcurrencyError) as caught:
            store.append("s", _events(3, start=10), expected)
        error = caught.value
        assert (error.stream_id, error.expected, error.actual) == ("s", expected, 2)
        assert "'s'" in str(error) and "version 2" in str(error)
        assert store.stream_version("s") == 2
        assert store.head_position() == head

    def test_conflict_on_a_missing_stream_says_no_stream(self, store: EventStore) -> None:
        with pytest.raises(ConcurrencyError, match="found no stream") as caught:
            store.append("s", _events(1), 4)
        assert caught.value.actual == 0
        with pytest.raises(StreamNotFound):
            store.read_stream("s")

    def test_any_skips_the_check(self, store: EventStore) -> None:
        store.append("s", _events(1), ExpectedVersion.ANY)
        store.append("s", _events(1), ExpectedVersion.ANY)
        assert store.stream_version("s") == 2

    def test_empty_append_only_checks_the_version(self, store: EventStore) -> None:
        store.append("s", _events(2), ExpectedVersion.NO_STREAM)
        result = store.append("s", [], 2)
        assert (result.stream_version, result.position) == (2, None)
        with pytest.raises(ConcurrencyError):
            store.append("s", [], 1)
        assert store.append("new", [], ExpectedVersion.NO_STREAM).stream_version == 0
        with pytest.raises(StreamNotFound):
            store.read_stream("new")

    @pytest.mark.parametrize("expected", [-1, True, "1", None, 1.0])
    def test_invalid_expected_version_is_refused(self, store: EventStore, expected: Any) -> None:
        with pytest.raises(ValueError, match="expected version"):
            store.append("s", _events(1), expected)

    def test_empty_stream_id_is_refused(self, store: EventStore) -> None:
        with pytest.raises(ValueError, match="stream id"):
            store.append("", _events(1), ExpectedVersion.ANY)

    # NUL: PostgreSQL text cannot hold it, SQLite could; a lone surrogate: no UTF-8 form.
    _ODD_IDS = ("\x00", "a\x00b", "\ud800", "x\udfff")

    @pytest.mark.parametrize("stream_id", _ODD_IDS)
    def test_an_odd_stream_id_is_refused_alike_by_every_method(
        self, store: EventStore, stream_id: str
    ) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.append(stream_id, _events(1), ExpectedVersion.ANY),
            lambda: store.append(stream_id, [], ExpectedVersion.ANY),
            lambda: store.append_streams(
                [
                    StreamAppend("fine", _events(1), ExpectedVersion.ANY),
                    StreamAppend(stream_id, _events(1), ExpectedVersion.ANY),
                ]
            ),
            lambda: store.read_stream(stream_id),
            lambda: store.read_stream_data(stream_id),
            lambda: store.read_stream_data_timed(stream_id),
            lambda: store.stream_version(stream_id),
        ]
        if isinstance(store, SnapshotStore):
            snapshot = Snapshot(stream_id, 1, "f", "{}", datetime.now(UTC))
            calls += [
                lambda: store.load_snapshot(stream_id),
                lambda: store.save_snapshot(snapshot),
            ]
        for call in calls:
            with pytest.raises(UnstorableText, match="stream id") as caught:
                call()
            assert isinstance(caught.value, ValueError)
            assert caught.value.value == stream_id
        assert store.head_position() == 0

    @pytest.mark.parametrize(
        ("event", "match"),
        [
            (NewEvent("Thing", 1, '{"a": "\ud800"}'), "data of event Thing"),
            (NewEvent("Th\udc00ing", 1, "{}"), "event type"),
            (NewEvent("Thing", 1, "{}", {"user": "\ud800"}), "metadata user"),
            (NewEvent("Thing", 1, "{}", {"\ud800": 1}), "metadata"),
            (NewEvent("Thing", 1, "{}", {"who": ["ok", {"n": "\udfff"}]}), r"who\[1\]\.n"),
            # Valid JSON, but its escape is a lone surrogate: no parser gives it back as text.
            (NewEvent("Sensed", 1, '{"sensor":"a\\ud800","value":1.0}'), "Sensed field sensor"),
            (NewEvent("Thing", 1, '{"a":["ok",{"\\uDC00":1}]}'), r"field a\[1\]\..* \(its key\)"),
        ],
        ids=[
            "data",
            "type",
            "metadata value",
            "metadata key",
            "nested metadata",
            "escaped in data",
            "escaped key in data",
        ],
    )
    def test_a_lone_surrogate_is_refused_naming_where(
        self, store: EventStore, event: NewEvent, match: str
    ) -> None:
        with pytest.raises(UnstorableText, match=match):
            store.append("s", [*_events(1), event], ExpectedVersion.NO_STREAM)
        assert store.head_position() == 0

    def test_escaped_surrogate_pairs_and_backslashes_are_stored(self, store: EventStore) -> None:
        # A pair is one character; "\\\\ud800" is a backslash and the letters "ud800".
        data = '{"a":"\\ud83d\\ude00","b":"\\\\ud800"}'
        store.append("s", [NewEvent("Thing", 1, data)], ExpectedVersion.NO_STREAM)
        (stored,) = store.read_stream("s")
        assert json.loads(stored.data) == {"a": "\U0001f600", "b": "\\ud800"}

    @pytest.mark.parametrize(
        "state", ['{"a": "\ud800"}', '{"a": "\\udbff"}'], ids=["raw", "escaped"]
    )
    def test_a_snapshot_holding_a_lone_surrogate_is_refused(
        self, store: EventStore, state: str
    ) -> None:
        snapshot = Snapshot("s", 1, "f", state, datetime.now(UTC))
        with pytest.raises(UnstorableText, match="state of the snapshot"):
            store.append("s", _events(1), ExpectedVersion.NO_STREAM, snapshot=snapshot)
        assert store.head_position() == 0
        if isinstance(store, SnapshotStore):
            with pytest.raises(UnstorableText, match="state of the snapshot"):
                store.save_snapshot(snapshot)
            assert store.load_snapshot("s") is None

    def test_odd_but_storable_text_round_trips(self, store: EventStore) -> None:
        stream_id = "\U0001f600 \u200b\t\x7f\U0010ffff"
        # An escaped pair and NUL decode; an escaped lone surrogate would not (refused above).
        event = NewEvent("Thing", 1, '{"a": "\\ud83d\\ude00 \\u0000 \U0001f600"}', {"k": "\x00"})
        store.append(stream_id, [event], ExpectedVersion.NO_STREAM)
        [recorded] = store.read_stream(stream_id)
        assert (recorded.stream_id, recorded.data) == (stream_id, event.data)
        assert recorded.metadata == {"k": "\x00"}

    @pytest.mark.parametrize(
        ("event", "match"),
        [
            (NewEvent("Thing", 0, "{}"), "event version"),
            (NewEvent("Thing", True, "{}"), "event version"),
            (NewEvent("", 1, "{}"), "event type"),
            (NewEvent("Thing", 1, "not json"), "JSON text"),
            (NewEvent("Thing", 1, '{"amount": NaN}'), "JSON text"),
            (NewEvent("Thing", 1, b"{}"), "JSON text"),  # type: ignore[arg-type]
            (NewEvent("Thing", 1, 5), "JSON text"),  # type: ignore[arg-type]
            (NewEvent("Thing", 1, '{"a": "\x00"}'), "JSON text"),
            (NewEvent("Thing", 2**31, "{}"), "event version"),
            (NewEvent("Th\x00ing", 1, "{}"), "event type"),
            (NewEvent("Thing", "1", "{}"), "event version"),  # type: ignore[arg-type]
            (NewEvent(5, 1, "{}"), "event type"),  # type: ignore[arg-type]
        ],
        ids=[
            "version 0",
            "bool version",
            "no type",
            "not JSON",
            "NaN",
            "bytes",
            "int",
            "raw NUL",
            "version too big",
            "NUL in type",
            "str version",
            "int type",
        ],
    )
    def test_an_event_no_reader_could_decode_is_refused_and_nothing_written(
        self, store: EventStore, event: NewEvent, match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            store.append("s", [*_events(1), event], ExpectedVersion.NO_STREAM)
        assert store.stream_version("s") == 0
        assert store.head_position() == 0

    def test_append_is_all_or_nothing(self, store: EventStore) -> None:
        store.append("other", _events(1), ExpectedVersion.NO_STREAM)
        events = [*_events(2), NewEvent("Thing", 1, "{}", {"bad": object()})]
        with pytest.raises(TypeError, match="JSON"):
            store.append("s", events, ExpectedVersion.NO_STREAM)
        assert store.stream_version("s") == 0
        assert store.head_position() == 1
        store.append("s", _events(1), ExpectedVersion.NO_STREAM)  # the stream is still usable
        assert [r.position for r in store.read_all()] == [1, 2]

    def test_there_is_no_api_to_change_or_remove_events(self, store: EventStore) -> None:
        verbs = ("update", "delete", "remove", "truncate", "replace", "edit", "purge")
        assert [n for n in dir(store) if n.lower().startswith(verbs)] == []

    # -- several streams at once ----------------------------------------------------------

    def test_append_streams_writes_each_stream_in_the_order_given(self, store: EventStore) -> None:
        store.append("b", _events(1), ExpectedVersion.NO_STREAM)
        head = store.head_position()
        results = store.append_streams(
            [
                StreamAppend("a", _events(2), ExpectedVersion.NO_STREAM),
                StreamAppend("b", _events(3, start=10), 1),
                StreamAppend("c", [], ExpectedVersion.NO_STREAM),  # checked, nothing written
                StreamAppend("d", _events(1, start=20), ExpectedVersion.ANY),
            ]
        )
        written = store.read_all(after=head)
        assert [(r.stream_id, r.stream_version) for r in written] == [
            ("a", 1),
            ("a", 2),
            ("b", 2),
            ("b", 3),
            ("b", 4),
            ("d", 1),
        ]
        assert [json.loads(r.data)["n"] for r in written] == [0, 1, 10, 11, 12, 20]
        positions = [r.position for r in written]
        if self.gapless_positions:
            assert positions == list(range(head + 1, head + 7))
        assert results == [
            AppendResult("a", 2, positions[1]),
            AppendResult("b", 4, positions[4]),
            AppendResult("c", 0, None),
            AppendResult("d", 1, positions[5]),
        ]
        assert store.stream_version("c") == 0
        assert store.append_streams([]) == []

    @pytest.mark.parametrize("which", [0, 1, 2])
    def test_a_conflict_on_any_stream_writes_nothing_and_names_it(
        self, store: EventStore, which: int
    ) -> None:
        store.append("a", _events(1), ExpectedVersion.NO_STREAM)
        store.append("b", _events(2), ExpectedVersion.NO_STREAM)
        head = store.head_position()
        appends = [
            StreamAppend("a", _events(2, start=10), 1),
            StreamAppend("b", _events(2, start=20), 2),
            StreamAppend("c", _events(2, start=30), ExpectedVersion.NO_STREAM),
        ]
        appends[which] = appends[which]._replace(expected_version=5)
        with pytest.raises(ConcurrencyError) as caught:
            store.append_streams(appends)
        error = caught.value
        stream = appends[which].stream_id
        assert (error.stream_id, error.expected, error.actual) == (stream, 5, [1, 2, 0][which])
        assert f"{stream!r}" in str(error) and "nothing was written" in str(error)
        assert store.head_position() == head
        assert [store.stream_version(s) for s in "abc"] == [1, 2, 0]

    def test_a_check_only_stream_that_moved_stops_the_others(self, store: EventStore) -> None:
        store.append("read", _events(2), ExpectedVersion.NO_STREAM)
        with pytest.raises(ConcurrencyError, match="'read'"):
            store.append_streams(
                [
                    StreamAppend("written", _events(1), ExpectedVersion.NO_STREAM),
                    StreamAppend("read", [], 1),
                ]
            )
        assert store.stream_version("written") == 0

    def test_a_stream_twice_in_one_call_is_refused(self, store: EventStore) -> None:
        with pytest.raises(ValueError, match="'a' appears more than once"):
            store.append_streams(
                [
                    StreamAppend("a", _events(1), ExpectedVersion.NO_STREAM),
                    StreamAppend("b", _events(1), ExpectedVersion.NO_STREAM),
                    StreamAppend("a", _events(1), 1),
                ]
            )
        assert store.head_position() == 0

    @pytest.mark.parametrize(
        ("second", "error", "match"),
        [
            (StreamAppend("", _events(1), 0), ValueError, "stream id"),
            (StreamAppend("b", _events(1), -1), ValueError, "expected version"),
            (StreamAppend("b", [NewEvent("Thing", 1, "{]")], 0), ValueError, "JSON text"),
            (StreamAppend("b", [NewEvent("T", 1, "{}", {"x": object()})], 0), TypeError, "JSON"),
            (("b", _events(1), 0), TypeError, "StreamAppend"),
        ],
        ids=["no stream id", "bad version", "bad data", "bad metadata", "plain tuple"],
    )
    def test_a_bad_second_stream_writes_nothing_on_the_first(
        self, store: EventStore, second: Any, error: type[Exception], match: str
    ) -> None:
        first = StreamAppend("a", _events(2), ExpectedVersion.NO_STREAM)
        with pytest.raises(error, match=match):
            store.append_streams([first, second])
        assert store.head_position() == 0
        assert store.stream_version("a") == 0

    def test_append_streams_stores_each_snapshot_with_its_events(
        self, store: EventStore, snapshots: SnapshotStore
    ) -> None:
        at = datetime(2024, 1, 1, tzinfo=UTC)
        store.append_streams(
            [
                StreamAppend("a", _events(2), 0, Snapshot("a", 2, "fp", '{"a":2}', at)),
                StreamAppend("b", _events(1), 0),
                StreamAppend("c", _events(3), ExpectedVersion.ANY, Snapshot("c", 3, "", "{}", at)),
            ]
        )
        assert snapshots.load_snapshot("a") == Snapshot("a", 2, "fp", '{"a":2}', at)
        assert snapshots.load_snapshot("b") is None
        assert snapshots.load_snapshot("c") == Snapshot("c", 3, "", "{}", at)
        head = store.head_position()
        for misfit in (
            StreamAppend("c", _events(1), 3, Snapshot("c", 9, "fp", "{}", at)),
            StreamAppend("c", _events(1), ExpectedVersion.ANY, Snapshot("c", 9, "fp", "{}", at)),
        ):
            with pytest.raises(ValueError, match="does not fit"):
                store.append_streams(
                    [StreamAppend("a", _events(1), 2, Snapshot("a", 3, "fp", "{}", at)), misfit]
                )
        assert store.head_position() == head
        assert snapshots.load_snapshot("a") == Snapshot("a", 2, "fp", '{"a":2}', at)

    # -- recorded time from the writer ----------------------------------------------------

    def test_the_writer_s_recorded_at_is_kept_in_utc(
        self, store: EventStore, clock: ManualClock
    ) -> None:
        clock.set(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
        decided = datetime(2024, 6, 1, 11, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2)))
        store.append(
            "s",
            [
                _timed(decided),
                _timed(decided + timedelta(microseconds=1)),
                _new({}),  # no time of its own: the store's clock
            ],
            ExpectedVersion.NO_STREAM,
        )
        assert [r.recorded_at for r in store.read_stream("s")] == [
            datetime(2024, 6, 1, 9, 0, 0, 250_000, tzinfo=UTC),
            datetime(2024, 6, 1, 9, 0, 0, 250_001, tzinfo=UTC),
            datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
        ]
        assert all(r.recorded_at.utcoffset() == timedelta(0) for r in store.read_stream("s"))

    def test_the_writer_s_recorded_at_never_goes_back_either(
        self, store: EventStore, clock: ManualClock
    ) -> None:
        clock.set(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
        clock.step = timedelta(0)
        store.append("a", _events(1), ExpectedVersion.NO_STREAM)  # 12:00 by the clock
        noon = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
        late = datetime(2024, 6, 1, 13, 0, tzinfo=UTC)
        store.append_streams(
            [
                StreamAppend("b", [_timed(noon - timedelta(hours=2))], 0),  # raised to 12:00
                StreamAppend("c", [_timed(late), _timed(noon), _new({})], 0),  # to 13:00
                StreamAppend("d", [_new({})], 0),  # the clock says 12:00: raised to 13:00
            ]
        )
        times = [(r.stream_id, r.recorded_at) for r in store.read_all()]
        assert times == [
            ("a", noon),
            ("b", noon),
            ("c", late),
            ("c", late),
            ("c", late),
            ("d", late),
        ]
        store.append("e", [_timed(late + timedelta(seconds=1))], 0)
        assert store.read_stream("e")[0].recorded_at == late + timedelta(seconds=1)

    def test_a_naive_recorded_at_is_refused(self) -> None:
        with pytest.raises(ValueError, match="recorded_at must be timezone-aware"):
            NewEvent("Thing", 1, "{}", recorded_at=datetime(2024, 1, 1))

    # -- what is recorded -----------------------------------------------------------------

    def test_recorded_event_keeps_everything_given(
        self, store: EventStore, clock: ManualClock
    ) -> None:
        event_id = uuid.uuid4()
        clock.set(datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))))
        new = NewEvent(
            "AccountOpened",
            2,
            '{"owner":"Zoë","currency":"EUR"}',
            {"correlation_id": "c-1", "causation_id": "k-1", "user": "ann", "n": [1, 2.5, None]},
            event_id,
        )
        store.append("acc-1", [new], ExpectedVersion.NO_STREAM)
        (recorded,) = store.read_stream("acc-1")
        assert recorded.event_id == event_id
        assert recorded.stream_id == "acc-1"
        assert recorded.stream_version == 1
        assert recorded.position == 1
        assert (recorded.event_type, recorded.event_version) == ("AccountOpened", 2)
        assert recorded.data == '{"owner":"Zoë","currency":"EUR"}'
        assert dict(recorded.metadata) == {
            "correlation_id": "c-1",
            "causation_id": "k-1",
            "user": "ann",
            "n": [1, 2.5, None],
        }
        assert (recorded.correlation_id, recorded.causation_id) == ("c-1", "k-1")
        assert recorded.recorded_at == datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=UTC)
        assert recorded.recorded_at.utcoffset() == timedelta(0)
        assert store.read_all() == [recorded]

    def test_recorded_metadata_is_read_only(self, store: EventStore) -> None:
        store.append("s", [_new({}, user="ann")], ExpectedVersion.NO_STREAM)
        (recorded,) = store.read_stream("s")
        with pytest.raises(TypeError):
            recorded.metadata["user"] = "eve"  # type: ignore[index]
        with pytest.raises(AttributeError):
            recorded.data = "{}"  # type: ignore[misc]

    def test_one_append_shares_one_time(self, store: EventStore) -> None:
        store.append("s", _events(3), ExpectedVersion.NO_STREAM)
        assert len({r.recorded_at for r in store.read_stream("s")}) == 1

    def test_recorded_time_never_goes_back_when_the_clock_does(
        self, store: EventStore, clock: ManualClock
    ) -> None:
        store.append("a", _events(1), ExpectedVersion.NO_STREAM)
        first = store.read_stream("a")[0].recorded_at
        clock.advance(timedelta(hours=-5))
        store.append("b", _events(1), ExpectedVersion.NO_STREAM)
        assert store.read_stream("b")[0].recorded_at == first

    def test_a_naive_clock_is_refused(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, lambda: datetime(2024, 1, 1))
        try:
            with pytest.raises(ValueError, match="timezone-aware"):
                store.append("s", _events(1), ExpectedVersion.NO_STREAM)
            assert store.head_position() == 0
        finally:
            store.close()

    # -- reading a stream -----------------------------------------------------------------

    def test_read_stream_ranges_and_direction(self, store: EventStore) -> None:
        store.append("s", _events(10), ExpectedVersion.NO_STREAM)

        def versions(**kwargs: Any) -> list[int]:
            return [r.stream_version for r in store.read_stream("s", **kwargs)]

        assert versions() == list(range(1, 11))
        assert versions(from_version=4) == [4, 5, 6, 7, 8, 9, 10]
        assert versions(to_version=3) == [1, 2, 3]
        assert versions(from_version=3, to_version=5) == [3, 4, 5]
        assert versions(backwards=True) == list(range(10, 0, -1))
        assert versions(backwards=True, limit=2) == [10, 9]
        assert versions(from_version=2, to_version=6, backwards=True, limit=3) == [6, 5, 4]
        assert versions(limit=2) == [1, 2]
        assert versions(from_version=11) == []
        assert versions(to_version=50) == list(range(1, 11))

    def test_reading_a_missing_stream_raises_stream_not_found(self, store: EventStore) -> None:
        store.append("other", _events(1), ExpectedVersion.NO_STREAM)
        with pytest.raises(StreamNotFound, match="'missing'") as caught:
            store.read_stream("missing")
        assert isinstance(caught.value, LookupError)
        assert caught.value.stream_id == "missing"
        with pytest.raises(StreamNotFound):
            store.read_stream("missing", from_version=5)
        with pytest.raises(StreamNotFound):
            store.read_stream_data("missing")
        assert store.stream_version("missing") == 0

    @pytest.mark.parametrize(
        "kwargs", [{"from_version": 0}, {"from_version": 3, "to_version": 2}, {"limit": 0}]
    )
    def test_invalid_read_ranges_are_refused(
        self, store: EventStore, kwargs: dict[str, Any]
    ) -> None:
        store.append("s", _events(3), ExpectedVersion.NO_STREAM)
        with pytest.raises(ValueError):
            store.read_stream("s", **kwargs)

    def test_read_stream_data_matches_read_stream(self, store: EventStore) -> None:
        store.append("s", _events(5), ExpectedVersion.NO_STREAM)
        expected = [
            (r.stream_version, r.event_type, r.event_version, r.data, r.recorded_at)
            for r in store.read_stream("s", from_version=2, to_version=4)
        ]
        timed = store.read_stream_data_timed("s", from_version=2, to_version=4)
        # recorded_at may come as the stored ISO text, for the reader to parse if it wants.
        assert [(*row[:4], _as_time(row[4])) for row in timed] == expected
        data = store.read_stream_data("s", from_version=2, to_version=4)
        assert [tuple(row) for row in data] == [row[:4] for row in expected]
        assert list(store.read_stream_data("s", from_version=6)) == []
        assert list(store.read_stream_data_timed("s", from_version=6)) == []

    def test_read_stream_until_a_time(self, store: EventStore, clock: ManualClock) -> None:
        clock.set(datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
        clock.step = timedelta(0)
        for hour in range(9, 14):  # one event per hour, 09:00 .. 13:00
            store.append("s", _events(1, start=hour), ExpectedVersion.ANY)
            clock.advance(timedelta(hours=1))

        def hours(until: datetime, **kwargs: Any) -> list[int]:
            return [json.loads(r.data)["n"] for r in store.read_stream("s", until=until, **kwargs)]

        assert hours(datetime(2024, 3, 1, 11, 0, tzinfo=UTC)) == [9, 10, 11]  # at = included
        assert hours(datetime(2024, 3, 1, 11, 59, tzinfo=UTC)) == [9, 10, 11]
        assert hours(datetime(2024, 3, 1, 8, 59, tzinfo=UTC)) == []
        assert hours(datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=1)))) == [
            9,
            10,
            11,
        ]
        assert hours(datetime(2025, 1, 1, tzinfo=UTC), backwards=True, limit=2) == [13, 12]
        with pytest.raises(ValueError, match="timezone-aware"):
            store.read_stream("s", until=datetime(2024, 3, 1, 11, 0))

    # -- reading everything ---------------------------------------------------------------

    def test_read_all_in_global_order_in_pages(self, store: EventStore) -> None:
        for i in range(7):
            store.append(f"s{i % 3}", _events(3, start=3 * i), ExpectedVersion.ANY)
        everything = store.read_all()
        positions = [r.position for r in everything]
        assert len(everything) == 21
        assert positions == sorted(positions) and len(set(positions)) == 21
        if self.gapless_positions:
            assert positions == list(range(1, 22))
        assert [json.loads(r.data)["n"] for r in everything] == list(range(21))
        page = store.read_all(after=positions[4], limit=5)
        assert page == everything[5:10]
        assert store.read_all(after=positions[-1]) == []
        assert list(store.iter_all(page_size=4)) == everything
        assert list(store.iter_all(after=positions[9], page_size=5)) == everything[10:]
        assert store.head_position() == positions[-1]

    def test_default_page_size_is_in_the_hundreds_or_more(self, store: EventStore) -> None:
        assert DEFAULT_PAGE_SIZE >= 500
        store.append("s", _events(DEFAULT_PAGE_SIZE + 5), ExpectedVersion.NO_STREAM)
        assert len(store.read_all()) == DEFAULT_PAGE_SIZE
        assert len(list(store.iter_all())) == DEFAULT_PAGE_SIZE + 5

    def test_an_empty_store(self, store: EventStore) -> None:
        assert store.head_position() == 0
        assert store.read_all() == []
        assert list(store.iter_all()) == []

    @pytest.mark.parametrize("kwargs", [{"after": -1}, {"limit": 0}])
    def test_invalid_pages_are_refused(self, store: EventStore, kwargs: dict[str, int]) -> None:
        with pytest.raises(ValueError):
            store.read_all(**kwargs)

    # -- waiting for new events -----------------------------------------------------------

    def test_wait_for_events_answers_at_once_when_it_can(self, store: EventStore) -> None:
        assert store.wait_for_events(0, timeout=0) is False
        store.append("s", _events(2), ExpectedVersion.NO_STREAM)
        first, last = (r.position for r in store.read_all())
        assert store.wait_for_events(0, timeout=0) is True
        assert store.wait_for_events(first, timeout=60) is True
        assert store.wait_for_events(last, timeout=0.05) is False

    def test_wait_for_events_wakes_when_another_thread_appends(self, store: EventStore) -> None:
        store.append("s", _events(1), ExpectedVersion.NO_STREAM)
        head = store.head_position()
        waiting = threading.Event()

        def append_soon() -> None:
            waiting.wait(timeout=60)
            time.sleep(0.05)  # most likely while the main thread is blocked in the wait
            store.append("t", _events(1), ExpectedVersion.NO_STREAM)

        thread = threading.Thread(target=append_soon)
        thread.start()
        try:
            waiting.set()
            assert store.wait_for_events(head, timeout=120) is True
        finally:
            thread.join()
        assert [r.stream_id for r in store.read_all(after=head)] == ["t"]

    @pytest.mark.parametrize("after, timeout", [(-1, 1.0), (0, -1.0), (0, float("nan"))])
    def test_invalid_waits_are_refused(self, store: EventStore, after: int, timeout: float) -> None:
        with pytest.raises(ValueError):
            store.wait_for_events(after, timeout)

    # -- snapshots ------------------------------------------------------------------------

    def test_snapshots_keep_the_newest(self, snapshots: SnapshotStore) -> None:
        assert snapshots.load_snapshot("s") is None
        at = datetime(2024, 1, 1, tzinfo=UTC)
        snapshots.save_snapshot(Snapshot("s", 5, "fp", '{"x":5}', at))
        snapshots.save_snapshot(Snapshot("s", 3, "fp", '{"x":3}', at))
        assert snapshots.load_snapshot("s") == Snapshot("s", 5, "fp", '{"x":5}', at)
        snapshots.save_snapshot(Snapshot("s", 9, "new", '{"x":9}', at))
        loaded = snapshots.load_snapshot("s")
        assert loaded is not None and (loaded.version, loaded.fingerprint) == (9, "new")

    def test_snapshot_rides_along_with_an_append(
        self, store: EventStore, snapshots: SnapshotStore
    ) -> None:
        at = datetime(2024, 1, 1, tzinfo=UTC)
        store.append("s", _events(3), 0, snapshot=Snapshot("s", 3, "fp", "{}", at))
        assert snapshots.load_snapshot("s") == Snapshot("s", 3, "fp", "{}", at)
        with pytest.raises(ConcurrencyError):
            store.append("s", _events(1), 1, snapshot=Snapshot("s", 2, "fp", "{}", at))
        with pytest.raises(ValueError, match="does not fit"):
            store.append("s", _events(1), 3, snapshot=Snapshot("s", 9, "fp", "{}", at))
        with pytest.raises(ValueError, match="does not fit"):
            store.append("s", _events(1), 3, snapshot=Snapshot("other", 4, "fp", "{}", at))
        assert store.stream_version("s") == 3
        assert snapshots.load_snapshot("s") == Snapshot("s", 3, "fp", "{}", at)

    # -- properties -----------------------------------------------------------------------

    @_PROPERTY_SETTINGS
    @given(events=st.lists(_everything, min_size=1, max_size=5))
    def test_random_payloads_round_trip(self, store: EventStore, events: list[_Everything]) -> None:
        registry = EventRegistry([_Everything])
        stream = _stream()
        store.append(stream, [NewEvent.from_event(e) for e in events], ExpectedVersion.NO_STREAM)
        assert registry.decode_all(store.read_stream(stream)) == events

    @_PROPERTY_SETTINGS
    @given(
        metadata=st.dictionaries(st.text(), _json_values, max_size=6),
        data=st.dictionaries(st.text(), _json_values, max_size=6),
    )
    def test_random_metadata_and_data_round_trip(
        self, store: EventStore, metadata: dict[str, Any], data: dict[str, Any]
    ) -> None:
        stream = _stream()
        text = json.dumps(data)
        store.append(stream, [NewEvent("Any", 1, text, metadata)], ExpectedVersion.NO_STREAM)
        (recorded,) = store.read_stream(stream)
        assert recorded.data == text
        assert dict(recorded.metadata) == metadata

    @_PROPERTY_SETTINGS
    @given(batches=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=8))
    def test_batches_of_any_size_read_back_in_order(
        self, store: EventStore, batches: list[int]
    ) -> None:
        stream = _stream()
        head = store.head_position()
        total = 0
        for size in batches:
            result = store.append(stream, _events(size, start=total), total)
            total += size
            assert result.stream_version == total
        if total == 0:
            with pytest.raises(StreamNotFound):
                store.read_stream(stream)
            return
        recorded = store.read_stream(stream)
        assert [json.loads(r.data)["n"] for r in recorded] == list(range(total))
        assert [r.stream_version for r in recorded] == list(range(1, total + 1))
        assert [r.position for r in store.read_all(after=head)] == [r.position for r in recorded]


class RepositoryContract(_StoreFixtures):
    """Aggregates, the repository and command handling on top of every backend."""

    @pytest.fixture
    def registry(self) -> EventRegistry:
        return make_registry()

    @pytest.fixture
    def repo(
        self, store: EventStore, registry: EventRegistry, clock: ManualClock
    ) -> Repository[Account]:
        # The store's clock too: events are stored at the time their aggregate recorded
        # them, which is the repository's clock.
        return Repository(Account, store, registry, clock=clock)

    @staticmethod
    def _opened(repo: Repository[Account], deposits: Sequence[int] = (), id: str = "a1") -> Account:
        account = Account(id)
        account.open("ann")
        for amount in deposits:
            account.deposit(amount)
        repo.save(account)
        return account

    def test_save_then_load(self, repo: Repository[Account], store: EventStore) -> None:
        account = self._opened(repo, [10, 20])
        assert (account.version, account.committed_version, account.pending_events) == (3, 3, ())
        loaded = repo.load("a1")
        assert loaded.version == 3
        assert loaded.state == AccountState(owner="ann", currency="EUR", balance=30)
        assert [r.event_type for r in store.read_stream("Account-a1")] == [
            "AccountOpened",
            "MoneyDeposited",
            "MoneyDeposited",
        ]

    def test_loading_a_missing_aggregate(self, repo: Repository[Account]) -> None:
        with pytest.raises(AggregateNotFound, match="Account 'nope' does not exist") as caught:
            repo.load("nope")
        assert isinstance(caught.value, StreamNotFound)
        assert isinstance(caught.value, LookupError)
        fresh = repo.load_or_new("nope")
        assert (fresh.version, fresh.exists, fresh.state_or_none) == (0, False, None)
        with pytest.raises(AggregateNotCreated, match="no state yet"):
            _ = fresh.state

    def test_an_event_field_holding_a_lone_surrogate_is_refused_naming_it(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        account = Account("a1")
        account.open("ann\ud800")  # pydantic takes it; its JSON serialiser cannot
        with pytest.raises(UnstorableText, match="AccountOpened field owner"):
            repo.save(account)
        assert store.head_position() == 0

    def test_an_aggregate_id_with_nul_is_refused(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        with pytest.raises(UnstorableText, match="NUL"):
            self._opened(repo, id="a\x001")
        assert store.head_position() == 0

    def test_saving_nothing_is_a_no_op(self, repo: Repository[Account], store: EventStore) -> None:
        assert repo.save(Account("a1")) is None
        assert store.head_position() == 0

    def test_stale_aggregate_cannot_be_saved(self, repo: Repository[Account]) -> None:
        self._opened(repo)
        first, second = repo.load("a1"), repo.load("a1")
        first.deposit(5)
        repo.save(first)
        second.deposit(7)
        with pytest.raises(ConcurrencyError) as caught:
            repo.save(second)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert len(second.pending_events) == 1  # kept: the caller decides what to do
        assert repo.load("a1").state.balance == 5

    def test_two_new_aggregates_with_one_id_conflict(self, repo: Repository[Account]) -> None:
        self._opened(repo)
        with pytest.raises(ConcurrencyError):
            self._opened(repo)

    def test_events_are_decoded_to_the_latest_version(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        # Written years ago by version 1 of AccountOpened, which had no currency.
        store.append(
            "Account-old",
            [
                NewEvent("AccountOpened", 1, '{"owner":"bob"}'),
                _new({"amount": 4}, "MoneyDeposited"),
            ],
            ExpectedVersion.NO_STREAM,
        )
        assert repo.load("old").state == AccountState(owner="bob", currency="EUR", balance=4)
        assert store.read_stream("Account-old")[0].data == '{"owner":"bob"}'  # never rewritten

    def test_missing_upcaster_is_an_error_naming_type_and_versions(self, store: EventStore) -> None:
        # As if the generated upcaster from version 1 to 2 had been forgotten.
        registry = EventRegistry([AccountOpenedV1, AccountOpened, MoneyDeposited, MoneyWithdrawn])
        repo = Repository(Account, store, registry)
        store.append("Account-old", [_new({"owner": "bob"}, "AccountOpened")], 0)
        with pytest.raises(UpcastError, match=r"'AccountOpened' from version 1 to 2") as caught:
            repo.load("old")
        assert "Account-old" in "".join(getattr(caught.value, "__notes__", []))

    # -- commands and metadata ------------------------------------------------------------

    def test_command_context_sets_ids_and_extra_keys_on_every_event(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        with command_context(correlation_id="req-1", causation_id="cmd-1", user="ann"):
            self._opened(repo, [1, 2])
        for recorded in store.read_stream("Account-a1"):
            assert dict(recorded.metadata) == {
                "correlation_id": "req-1",
                "causation_id": "cmd-1",
                "user": "ann",
            }

    def test_events_of_a_saga_follow_their_cause(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        with command_context(user="ann") as first:
            self._opened(repo)
        (cause,) = store.read_stream("Account-a1")
        with command_context(caused_by=cause, user="saga"):
            self._opened(repo, id="a2")
        (effect,) = store.read_stream("Account-a2")
        assert effect.correlation_id == first.correlation_id
        assert effect.causation_id == str(cause.event_id)
        assert effect.metadata["user"] == "saga"

    def test_without_a_context_each_save_starts_a_conversation(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        self._opened(repo, [1])
        recorded = store.read_stream("Account-a1")
        ids = {(r.correlation_id, r.causation_id) for r in recorded}
        assert len(ids) == 1
        ((correlation, causation),) = ids
        assert correlation == causation and uuid.UUID(str(correlation))

    def test_save_adds_explicit_metadata(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        account = Account("a1")
        account.open("ann")
        with command_context(user="ann"):
            repo.save(account, metadata={"ip": "10.0.0.1"})
        (recorded,) = store.read_stream("Account-a1")
        assert (recorded.metadata["user"], recorded.metadata["ip"]) == ("ann", "10.0.0.1")

    def test_handle_command_loads_decides_and_saves(self, repo: Repository[Account]) -> None:
        result = handle_command(repo, "a1", lambda account: account.open("ann"))
        assert result.attempts == 1
        assert result.events == (AccountOpened(owner="ann", currency="EUR"),)
        assert result.appended is not None and result.appended.stream_version == 1

        def deposit(account: Account) -> str:
            account.deposit(5)
            return "ok"

        result2 = handle_command(repo, "a1", deposit)
        assert result2.value == "ok"
        assert result2.aggregate.state.balance == 5
        assert repo.load("a1").version == 2

    def test_handle_command_retries_after_a_conflict(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo, [100])
        rival = Repository(Account, store, registry)
        calls = []

        def withdraw(account: Account) -> None:
            calls.append(account.version)
            if len(calls) == 1:  # someone else withdraws between our load and our save
                other = rival.load("a1")
                other.withdraw(60)
                rival.save(other)
            account.withdraw(30)

        with command_context(correlation_id="req-7"):
            result = handle_command(repo, "a1", withdraw)
        assert result.attempts == 2
        assert calls == [2, 3]  # the retry decided again on the reloaded aggregate
        assert repo.load("a1").state.balance == 10
        last = store.read_stream("Account-a1", backwards=True, limit=1)[0]
        assert last.correlation_id == "req-7"

    def test_handle_command_gives_up_after_max_attempts(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo)
        rival = Repository(Account, store, registry)
        attempts = []

        def always_raced(account: Account) -> None:
            attempts.append(1)
            other = rival.load("a1")
            other.deposit(1)
            rival.save(other)
            account.deposit(1)

        with pytest.raises(ConcurrencyError) as caught:
            handle_command(repo, "a1", always_raced, max_attempts=3)
        assert len(attempts) == 3
        assert "gave up after 3 attempt(s)" in "".join(caught.value.__notes__)

    def test_handle_command_can_require_an_existing_aggregate(
        self, repo: Repository[Account]
    ) -> None:
        with pytest.raises(AggregateNotFound):
            handle_command(repo, "a1", lambda account: account.deposit(1), must_exist=True)

    def test_a_rejected_command_writes_nothing(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        self._opened(repo, [5])
        with pytest.raises(ValueError, match="balance 5 < 50"):
            handle_command(repo, "a1", lambda account: account.withdraw(50))
        assert store.stream_version("Account-a1") == 2

    def test_threads_saving_through_repositories_lose_no_update(
        self, repo: Repository[Account]
    ) -> None:
        self._opened(repo)
        threads, deposits = 4, 15
        start = threading.Barrier(threads)
        errors: list[BaseException] = []

        def deposit_ones() -> None:
            try:
                start.wait(timeout=60)
                for _ in range(deposits):
                    handle_command(repo, "a1", lambda account: account.deposit(1), max_attempts=100)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=deposit_ones) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        account = repo.load("a1")
        assert (account.version, account.state.balance) == (1 + threads * deposits, 60)

    # -- units of work --------------------------------------------------------------------

    def test_a_unit_of_work_loads_each_aggregate_once(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo, [5])
        unit = UnitOfWork(store)
        loaded = unit.load(repo, "a1")
        assert unit.load(repo, "a1") is loaded
        assert unit.load_or_new(repo, "a1") is loaded
        assert unit.load(Repository(Account, store, registry), "a1") is loaded
        new = unit.load_or_new(repo, "a2")
        assert (new.version, unit.load_or_new(repo, "a2")) == (0, new)
        with pytest.raises(AggregateNotFound, match="'a2'"):
            unit.load(repo, "a2")  # tracked, but still without events
        new.open("bob")
        assert unit.load(repo, "a2") is new
        with pytest.raises(AggregateNotFound, match="'a3'"):
            unit.load(repo, "a3")
        assert unit.aggregates == (loaded, new)

    def test_commit_appends_every_changed_aggregate_at_once(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        self._opened(repo, [10])
        self._opened(repo, id="a2")
        self._opened(repo, id="untouched")
        head = store.head_position()
        unit = UnitOfWork(store)
        source, target = unit.load(repo, "a1"), unit.load(repo, "a2")
        unit.load(repo, "untouched")
        source.withdraw(4)
        target.deposit(4)
        assert unit.pending_events == (MoneyWithdrawn(amount=4), MoneyDeposited(amount=4))
        results = unit.commit()
        written = store.read_all(after=head)
        assert [(r.stream_id, r.stream_version) for r in written] == [
            ("Account-a1", 3),
            ("Account-a2", 2),
        ]
        assert [(r.stream_id, r.stream_version) for r in results] == [
            ("Account-a1", 3),
            ("Account-a2", 2),
        ]
        # Without a command context, one conversation for the whole unit of work.
        assert len({(r.correlation_id, r.causation_id) for r in written}) == 1
        assert len(unit.pending_events) == 0 and source.committed_version == 3
        assert unit.commit() == []
        assert (repo.load("a1").state.balance, repo.load("a2").state.balance) == (6, 4)

    def test_a_conflict_on_one_aggregate_writes_none_of_them(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo, [10])
        self._opened(repo, id="a2")
        unit = UnitOfWork(store)
        source, target = unit.load(repo, "a1"), unit.load(repo, "a2")
        source.withdraw(4)
        target.deposit(4)
        rival = Repository(Account, store, registry)
        moved = rival.load("a2")
        moved.deposit(1)
        rival.save(moved)
        head = store.head_position()
        with pytest.raises(ConcurrencyError) as caught:
            unit.commit()
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            "Account-a2",
            1,
            2,
        )
        assert store.head_position() == head
        assert repo.load("a1").state.balance == 10
        assert len(unit.pending_events) == 2  # kept, as Repository.save keeps them

    def test_add_tracks_a_new_aggregate(self, repo: Repository[Account], store: EventStore) -> None:
        unit = UnitOfWork(store)
        account = Account("n1")
        account.open("ann")
        assert unit.add(repo, account) is account
        assert unit.add(repo, account) is account
        assert unit.load(repo, "n1") is account
        other = Account("n1")
        other.open("eve")
        with pytest.raises(ValueError, match="'n1' is already tracked"):
            unit.add(repo, other)
        unit.commit()
        assert repo.load("n1").state.owner == "ann"
        twice = UnitOfWork(store)
        twice.add(repo, other)
        with pytest.raises(ConcurrencyError, match="'Account-n1'"):
            twice.commit()

    def test_a_unit_of_work_keeps_to_one_store(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry, tmp_path: Path
    ) -> None:
        (tmp_path / "other").mkdir()
        other_store = self.make_store(tmp_path / "other", ManualClock())
        try:
            elsewhere = Repository(Account, other_store, registry)
            unit = UnitOfWork(store)
            unit.load_or_new(repo, "a1").open("ann")
            attempts: list[Callable[[], Account]] = [
                lambda: unit.load_or_new(elsewhere, "a2"),
                lambda: unit.load(elsewhere, "a2"),
                lambda: unit.add(elsewhere, Account("a2")),
            ]
            for attempt in attempts:
                with pytest.raises(ValueError, match="one unit of work appends to one store"):
                    attempt()
            unit.commit()
            assert other_store.head_position() == 0
        finally:
            other_store.close()

    def test_commit_takes_the_context_s_ids_and_snapshots(
        self, store: EventStore, registry: EventRegistry
    ) -> None:
        repo = Repository(Account, store, registry, snapshot_every=2)
        self._opened(repo, [5], id="a2")  # version 2, snapshot at 2
        unit = UnitOfWork(store)
        first = unit.load_or_new(repo, "a1")
        first.open("ann")
        first.deposit(3)
        second = unit.load(repo, "a2")
        second.deposit(1)
        with command_context(correlation_id="req-1", causation_id="cmd-1", user="ann"):
            unit.commit(metadata={"ip": "10.0.0.1"})
        written = [*store.read_stream("Account-a1"), *store.read_stream("Account-a2")[2:]]
        assert len(written) == 3
        for recorded in written:
            assert dict(recorded.metadata) == {
                "correlation_id": "req-1",
                "causation_id": "cmd-1",
                "user": "ann",
                "ip": "10.0.0.1",
            }
        if isinstance(store, SnapshotStore):
            taken = store.load_snapshot("Account-a1")
            assert taken is not None and (taken.version, taken.state) == (
                2,
                first.state.model_dump_json(),
            )
            kept = store.load_snapshot("Account-a2")  # one event since: not due
            assert kept is not None and kept.version == 2
            assert (first._snapshot_version, second._snapshot_version) == (2, 2)

    def test_run_in_unit_of_work_retries_on_fresh_state(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo, [100])
        self._opened(repo, id="a2")
        rival = Repository(Account, store, registry)
        seen = []

        def transfer(unit: UnitOfWork) -> int:
            source = unit.load(repo, "a1")
            seen.append(source.state.balance)
            if len(seen) == 1:  # someone else withdraws between our load and our commit
                other = rival.load("a1")
                other.withdraw(60)
                rival.save(other)
            source.withdraw(30)
            unit.load(repo, "a2").deposit(30)
            return source.state.balance

        result = run_in_unit_of_work(store, transfer)
        assert (result.value, result.attempts, seen) == (10, 2, [100, 40])
        assert result.events == (MoneyWithdrawn(amount=30), MoneyDeposited(amount=30))
        assert [(a.stream_id, a.stream_version) for a in result.appended] == [
            ("Account-a1", 4),
            ("Account-a2", 2),
        ]
        written = store.read_all(after=store.head_position() - 2)
        assert len({(r.correlation_id, r.causation_id) for r in written}) == 1
        assert (repo.load("a1").state.balance, repo.load("a2").state.balance) == (10, 30)

    def test_run_in_unit_of_work_keeps_one_context_for_every_attempt(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo)
        rival = Repository(Account, store, registry)
        contexts: list[CommandContext | None] = []

        def raced_twice(unit: UnitOfWork) -> None:
            contexts.append(current_context())
            account = unit.load(repo, "a1")
            if len(contexts) < 3:
                other = rival.load("a1")
                other.deposit(1)
                rival.save(other)
            account.deposit(5)

        result = run_in_unit_of_work(store, raced_twice, metadata={"ip": "10.0.0.1"})
        assert result.attempts == 3
        assert contexts[0] is not None and contexts == [contexts[0]] * 3
        (recorded,) = store.read_stream("Account-a1", from_version=4)
        assert recorded.correlation_id == contexts[0].correlation_id
        assert recorded.causation_id == contexts[0].causation_id
        assert recorded.metadata["ip"] == "10.0.0.1"
        with command_context(correlation_id="outer") as outer:
            inner = run_in_unit_of_work(store, lambda unit: current_context())
        assert inner.value is outer and (inner.events, inner.appended) == ((), [])

    def test_run_in_unit_of_work_gives_up_after_max_attempts(
        self, repo: Repository[Account], store: EventStore, registry: EventRegistry
    ) -> None:
        self._opened(repo)
        rival = Repository(Account, store, registry)
        attempts = []

        def always_raced(unit: UnitOfWork) -> None:
            attempts.append(1)
            account = unit.load(repo, "a1")
            other = rival.load("a1")
            other.deposit(1)
            rival.save(other)
            account.deposit(1)

        with pytest.raises(ConcurrencyError) as caught:
            run_in_unit_of_work(store, always_raced, max_attempts=2)
        assert len(attempts) == 2
        assert "gave up after 2 attempt(s)" in "".join(caught.value.__notes__)
        with pytest.raises(ValueError, match="max_attempts"):
            run_in_unit_of_work(store, always_raced, max_attempts=0)

    def test_a_failing_work_function_writes_nothing(
        self, repo: Repository[Account], store: EventStore
    ) -> None:
        self._opened(repo, [5])
        self._opened(repo, id="a2")
        head = store.head_position()

        def overdraw(unit: UnitOfWork) -> None:
            unit.load(repo, "a2").deposit(50)
            unit.load(repo, "a1").withdraw(50)

        with pytest.raises(InsufficientFunds, match="balance 5 < 50"):
            run_in_unit_of_work(store, overdraw)
        assert store.head_position() == head

    # -- snapshots ------------------------------------------------------------------------

    def test_snapshot_every_n_events_from_memory(
        self, store: EventStore, snapshots: SnapshotStore, registry: EventRegistry
    ) -> None:
        counting = _CountingStore(store)
        repo = Repository(Account, counting, registry, snapshots=snapshots, snapshot_every=3)
        account = Account("a1")
        account.open("ann")
        account.deposit(1)
        repo.save(account)  # version 2: no snapshot yet
        assert snapshots.load_snapshot("Account-a1") is None
        account.deposit(2)
        account.deposit(3)
        repo.save(account)  # version 4: 4 events since none
        snapshot = snapshots.load_snapshot("Account-a1")
        assert snapshot is not None and snapshot.version == 4
        assert snapshot.fingerprint == state_fingerprint(AccountState)
        assert AccountState.model_validate_json(snapshot.state).balance == 6
        account.deposit(4)
        repo.save(account)  # version 5: 1 since the snapshot
        assert snapshots.load_snapshot("Account-a1").version == 4  # type: ignore[union-attr]
        account.deposit(5)
        account.deposit(6)
        repo.save(account)  # version 7: 3 since the snapshot
        assert snapshots.load_snapshot("Account-a1").version == 7  # type: ignore[union-attr]
        assert counting.reads == 0  # taken from the state in memory

    def test_load_starts_from_the_snapshot(
        self, store: EventStore, snapshots: SnapshotStore, registry: EventRegistry
    ) -> None:
        repo = Repository(Account, store, registry, snapshot_every=100)
        self._opened(repo, [1, 2, 3])  # version 4
        # A snapshot whose state replay could not produce proves the snapshot is used.
        marker = AccountState(owner="from-snapshot", currency="EUR", balance=1000)
        fingerprint = state_fingerprint(AccountState)
        at = datetime(2024, 1, 1, tzinfo=UTC)
        snapshots.save_snapshot(
            Snapshot("Account-a1", 3, fingerprint, marker.model_dump_json(), at)
        )
        loaded = repo.load("a1")
        assert loaded.version == 4
        assert loaded.state == AccountState(owner="from-snapshot", currency="EUR", balance=1003)
        assert Repository(Account, store, registry, snapshots=None).load("a1").state.balance == 6

    def test_snapshot_of_an_old_state_schema_is_ignored_then_replaced(
        self, store: EventStore, snapshots: SnapshotStore, registry: EventRegistry
    ) -> None:
        repo = Repository(Account, store, registry, snapshot_every=2)
        self._opened(repo, [1, 2, 3])  # version 4, snapshot at 4
        old = snapshots.load_snapshot("Account-a1")
        assert old is not None and old.version == 4

        class WiderState(AccountState):  # the state class gained a field
            overdraft: int = 0

        class WiderAccount(Account):
            state_type = WiderState

            def _opened(self, event: AccountOpened) -> AccountState:
                return WiderState(owner=event.owner, currency=event.currency)

        wider = Repository(WiderAccount, store, registry, snapshot_every=2)
        loaded = wider.load("a1")  # rebuilt from events: the snapshot has another fingerprint
        assert type(loaded.state) is WiderState
        assert loaded.state.balance == 6
        loaded.deposit(4)
        wider.save(loaded)  # the next save snapshots again, with the new fingerprint
        new = snapshots.load_snapshot("Account-a1")
        assert new is not None and new.version == 5
        assert new.fingerprint == state_fingerprint(WiderState) != old.fingerprint

    def test_unreadable_snapshot_is_ignored(
        self, store: EventStore, snapshots: SnapshotStore, registry: EventRegistry
    ) -> None:
        repo = Repository(Account, store, registry, snapshot_every=100)
        self._opened(repo, [1])
        fingerprint = state_fingerprint(AccountState)
        at = datetime(2024, 1, 1, tzinfo=UTC)
        snapshots.save_snapshot(Snapshot("Account-a1", 2, fingerprint, '{"owner": 1}', at))
        assert repo.load("a1").state.balance == 1

    # -- temporal queries -----------------------------------------------------------------

    def _timeline(self, repo: Repository[Account], clock: ManualClock) -> list[datetime]:
        """Open at 10:00, then deposit 1, 2, 3 at 11:00, 12:00, 13:00; returns the times."""
        clock.step = timedelta(0)
        times = []
        account = repo.new("a1")  # on the repository's clock, as a loaded one would be
        commands: list[Callable[[], None]] = [
            lambda: account.open("ann"),
            lambda: account.deposit(1),
            lambda: account.deposit(2),
        ]
        for hour, command in enumerate(commands, start=10):
            clock.set(datetime(2024, 6, 1, hour, tzinfo=UTC))
            times.append(clock.now)
            command()
            repo.save(account)
        clock.set(datetime(2024, 6, 1, 13, tzinfo=UTC))
        times.append(clock.now)
        account.deposit(3)
        repo.save(account)
        return times

    def test_load_as_of_a_version(self, repo: Repository[Account], clock: ManualClock) -> None:
        self._timeline(repo, clock)
        assert [repo.load_at("a1", version=v).state.balance for v in (1, 2, 3, 4)] == [0, 1, 3, 6]
        assert repo.load_at("a1", version=99).version == 4
        with pytest.raises(AggregateNotFound):
            repo.load_at("nope", version=1)
        with pytest.raises(ValueError):
            repo.load_at("a1", version=0)
        with pytest.raises(TypeError):
            repo.load_at("a1")

    def test_load_as_of_a_time(self, repo: Repository[Account], clock: ManualClock) -> None:
        times = self._timeline(repo, clock)

        def at(moment: datetime) -> tuple[int, int]:
            account = repo.load_at("a1", at=moment)
            return account.version, account.state.balance

        assert at(times[0]) == (1, 0)  # an event recorded exactly then is included
        assert at(times[1] - timedelta(microseconds=1)) == (1, 0)
        assert at(times[1]) == (2, 1)
        assert at(times[2] + timedelta(minutes=30)) == (3, 3)
        assert at(datetime(2030, 1, 1, tzinfo=UTC)) == (4, 6)
        assert at(datetime(2024, 6, 1, 14, tzinfo=timezone(timedelta(hours=2)))) == (3, 3)
        with pytest.raises(AggregateNotFound, match="does not exist at 2024-06-01 09:59"):
            repo.load_at("a1", at=times[0] - timedelta(minutes=1))

    def test_temporal_loads_use_a_snapshot_only_when_it_is_old_enough(
        self, store: EventStore, registry: EventRegistry, clock: ManualClock
    ) -> None:
        if not isinstance(store, SnapshotStore):
            pytest.skip("this store keeps no snapshots")
        repo = Repository(Account, store, registry, snapshot_every=3, clock=clock)
        times = self._timeline(repo, clock)  # snapshot at version 3 (12:00)
        snapshot = store.load_snapshot("Account-a1")
        assert snapshot is not None and snapshot.version == 3
        assert repo.load_at("a1", version=2).state.balance == 1
        assert repo.load_at("a1", version=4).state.balance == 6
        assert repo.load_at("a1", at=times[1]).state.balance == 1
        assert repo.load_at("a1", at=times[2]).state.balance == 3
        assert repo.load_at("a1", at=times[3]).state.balance == 6

    def test_history_lists_each_event_with_the_state_after_it(
        self, repo: Repository[Account], clock: ManualClock
    ) -> None:
        times = self._timeline(repo, clock)
        history = repo.history("a1")
        assert [entry.state.balance for entry in history] == [0, 1, 3, 6]  # type: ignore[attr-defined]
        assert [entry.recorded.recorded_at for entry in history] == times
        assert [type(entry.event) for entry in history] == [
            AccountOpened,
            MoneyDeposited,
            MoneyDeposited,
            MoneyDeposited,
        ]
        assert len(repo.history("a1", to_version=2)) == 2
        assert len(repo.history("a1", until=times[2])) == 3
        with pytest.raises(AggregateNotFound):
            repo.history("nope")


class _CountingStore(EventStore):
    """A real store, wrapped to count reads (a spy, not a mock: every call goes through)."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.reads = 0

    def append(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.append(*args, **kwargs)

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return self.inner.append_streams(appends)

    def read_stream(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        self.reads += 1
        return self.inner.read_stream(*args, **kwargs)

    def read_stream_data(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return self.inner.read_stream_data(*args, **kwargs)

    def read_stream_data_timed(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return self.inner.read_stream_data_timed(*args, **kwargs)

    def read_all(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        self.reads += 1
        return self.inner.read_all(*args, **kwargs)

    def stream_version(self, stream_id: str) -> int:
        self.reads += 1
        return self.inner.stream_version(stream_id)

    def head_position(self) -> int:
        self.reads += 1
        return self.inner.head_position()


class MultiProcessContract(_StoreFixtures):
    """Several processes sharing one store (for backends that are not process-local)."""

    race_rounds = 12
    writers = 4
    appends_per_writer = 60

    def test_two_processes_racing_on_one_stream(self, factory: StoreFactory) -> None:
        store = factory()
        try:
            for round_ in range(1, self.race_rounds, 2):
                store.append(f"race-{round_}", [_new({"setup": True})], ExpectedVersion.NO_STREAM)
            context = multiprocessing.get_context("spawn")
            barrier = context.Barrier(2)
            results = context.Queue()
            processes = [
                context.Process(
                    target=race_worker, args=(factory, name, self.race_rounds, barrier, results)
                )
                for name in ("left", "right")
            ]
            outcomes = _run(processes, results, 2 * self.race_rounds)
            for round_ in range(self.race_rounds):
                got = sorted(outcome for r, _, outcome in outcomes if r == round_)
                assert got == ["conflict", "won"], f"round {round_}: {got}"
                (winner,) = [w for r, w, o in outcomes if r == round_ and o == "won"]
                recorded = store.read_stream(f"race-{round_}")
                written = [r for r in recorded if "writer" in r.metadata]
                assert [r.metadata["writer"] for r in written] == [winner] * 3
                assert [r.stream_version for r in recorded] == list(range(1, len(recorded) + 1))
                assert len(recorded) == 3 + round_ % 2
        finally:
            store.close()

    def test_many_processes_appending_lose_and_duplicate_nothing(
        self, factory: StoreFactory
    ) -> None:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        start = context.Barrier(self.writers)
        names = [f"w{i}" for i in range(self.writers)]
        processes = [
            context.Process(
                target=append_worker,
                args=(factory, name, self.appends_per_writer, start, results),
            )
            for name in names
        ]
        outcomes = _run(processes, results, len(names))
        assert [error for *_, error in outcomes if error] == []
        written = {name: count for name, count, _, _ in outcomes}
        store = factory()
        try:
            everything = list(store.iter_all(page_size=97))
            positions = [r.position for r in everything]
            assert positions == sorted(set(positions))  # unique and increasing
            assert len({r.event_id for r in everything}) == len(everything)
            seen = Counter(
                (json.loads(r.data)["writer"], json.loads(r.data)["seq"]) for r in everything
            )
            expected = Counter((name, seq) for name in names for seq in range(written[name]))
            assert seen == expected  # nothing lost, nothing twice
            for stream in ["shared", *(f"own-{name}" for name in names)]:
                versions = [r.stream_version for r in store.read_stream(stream)]
                assert versions == list(range(1, len(versions) + 1))
            assert store.head_position() == positions[-1]
        finally:
            store.close()

    def test_a_waiter_wakes_when_another_process_appends(self, factory: StoreFactory) -> None:
        store = factory()
        try:
            head = store.head_position()
            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            process = context.Process(
                target=append_later_worker, args=(factory, "woken", 0.2, results)
            )
            process.start()
            try:
                assert store.wait_for_events(head, timeout=120) is True
            finally:
                process.join(timeout=120)
            assert results.get(timeout=10) == ("woken", None)
            assert [r.stream_id for r in store.read_all(after=head)] == ["woken"]
        finally:
            store.close()


def _run(processes: list[Any], results: Any, expected: int) -> list[tuple[Any, ...]]:
    """Start the processes and collect `expected` outcomes, without hanging if one dies."""
    for process in processes:
        process.start()
    outcomes: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + 600
    try:
        while len(outcomes) < expected and time.monotonic() < deadline:
            try:
                outcomes.append(results.get(timeout=1))
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    break
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes)
    assert len(outcomes) == expected, f"got {len(outcomes)} of {expected} outcomes"
    return outcomes


class BackendContract(
    EventStoreContract,
    RepositoryContract,
    FloatValuesContract,
    DecimalValuesContract,
    RowTextContract,
    ProjectionContract,
    SagaContract,
    QueryContract,
    InspectionContract,
    PersonalDataContract,
    MultiProcessContract,
):
    """Everything a durable backend must pass."""
