"""A projection's page on SQLite is read without each event's id, metadata and time; a
handler that asks for one gets, for every event of the page, exactly what `read_all`
gives, from one more query per page; a handler that never asks costs no such query."""

from __future__ import annotations

import copy
import pickle
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    BackendError,
    Column,
    Event,
    ExpectedVersion,
    MemoryEventStore,
    NewEvent,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    SQLiteEventStore,
    TableSpec,
    ValueObject,
)
from esgen.runtime._records import DeferredColumns
from esgen.runtime.testing._domain import AccountOpened, MoneyDeposited, make_registry

PAGE = 7  # pages that end mid-stream, so one stream's events span two pages


class SeenRow(ValueObject):
    position: int
    event_id: str


class Seen(Projection[SeenRow]):
    """Keeps every record it was handed; reads nothing of it unless `reads` says which."""

    name: ClassVar[str] = "seen"
    table: ClassVar[TableSpec] = TableSpec(
        "seen", key="position", columns=(Column("position", "integer"), Column("event_id", "text"))
    )
    row_type: ClassVar[type[BaseModel]] = SeenRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_event",
        MoneyDeposited: "on_event",
    }

    def __init__(self, reads: str | None = None) -> None:
        super().__init__()
        self.reads = reads
        self.records: list[RecordedEvent] = []
        self.read: list[object] = []

    def on_event(self, event: Event, recorded: RecordedEvent) -> None:
        self.records.append(recorded)
        if self.reads is not None:
            self.read.append(_value(recorded, self.reads))
        self.rows.put(SeenRow(position=recorded.position, event_id=recorded.stream_id))


def _value(recorded: RecordedEvent, name: str) -> object:
    value = getattr(recorded, name)
    return dict(value) if name == "metadata" else value


def _fill(store: SQLiteEventStore | MemoryEventStore) -> None:
    for n in range(5):
        metadata = {"correlation_id": f"c-{n}", "causation_id": f"k-{n}", "n": n}
        events = [NewEvent.from_event(AccountOpened(owner=f"o{n}", currency="EUR"), metadata)]
        events += [NewEvent.from_event(MoneyDeposited(amount=a), metadata) for a in (1, 2, 3)]
        store.append(f"Account-{n}", events, ExpectedVersion.NO_STREAM)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    store = SQLiteEventStore(tmp_path / "events.db")
    _fill(store)
    yield store
    store.close()


class _Queries:
    """The statements the store's connection in this thread runs."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self.seen: list[str] = []
        store._conn().set_trace_callback(self.seen.append)

    def reading_columns(self) -> list[str]:
        return [
            q
            for q in self.seen
            if q.startswith("SELECT position, stream_id, stream_version, event_id")
        ]


def _expected(store: SQLiteEventStore) -> list[tuple[Any, ...]]:
    return [
        (r.position, r.event_id, dict(r.metadata), r.recorded_at, r.correlation_id)
        for r in store.read_all(0, 1000)
    ]


@pytest.mark.parametrize(
    "reads",
    [
        "event_id",
        "metadata",
        "recorded_at",
        "event_id_text",
        "recorded_at_text",
        "correlation_id",
        "causation_id",
    ],
)
def test_a_handler_reading_a_deferred_column_sees_what_read_all_gives(
    store: SQLiteEventStore, reads: str
) -> None:
    projection = Seen(reads)
    queries = _Queries(store)
    ProjectionRunner(store, make_registry(), [projection], page_size=PAGE).catch_up()
    got = [
        (r.position, r.event_id, dict(r.metadata), r.recorded_at, r.correlation_id)
        for r in projection.records
    ]
    assert got == _expected(store)
    # What the handler read in its page, first of its page or not, is read_all's.
    assert projection.read == [_value(r, reads) for r in store.read_all(0, 1000)]
    assert projection.records == store.read_all(0, 1000)  # every field, compared
    pages = -(-len(got) // PAGE)
    assert len(queries.reading_columns()) == pages  # one query per page, not per event


def test_a_handler_that_never_asks_costs_no_query_and_the_records_still_answer_later(
    store: SQLiteEventStore,
) -> None:
    projection = Seen()
    queries = _Queries(store)
    ProjectionRunner(store, make_registry(), [projection], page_size=PAGE).catch_up()
    assert queries.reading_columns() == []
    # Kept past its page (and its transaction), asked from another thread: still the
    # same values, since recorded events never change.
    answers: list[list[str]] = []
    thread = threading.Thread(
        target=lambda: answers.append([r.recorded_at_text for r in projection.records])
    )
    thread.start()
    thread.join()
    assert answers == [[r.recorded_at_text for r in store.read_all(0, 1000)]]
    assert [repr(r) for r in projection.records] == [repr(r) for r in store.read_all(0, 1000)]


def test_stores_that_do_not_defer_hand_over_whole_records(tmp_path: Path) -> None:
    store = MemoryEventStore()
    _fill(store)
    assert store._read_page(3, PAGE) == store.read_all(3, PAGE)
    projection = Seen("metadata")
    ProjectionRunner(store, make_registry(), [projection], page_size=PAGE).catch_up()
    assert projection.records == store.read_all(0, 1000)


def _break_the_deferred_reads(store: SQLiteEventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(first: int, last: int) -> list[tuple[Any, ...]]:
        raise BackendError("disk I/O error")

    monkeypatch.setattr(store, "_page_columns", broken)


class Failing(Seen):
    def on_event(self, event: Event, recorded: RecordedEvent) -> None:
        raise ValueError("the handler's own error")


def test_a_store_failing_to_read_the_deferred_columns_does_not_hide_a_handler_error(
    store: SQLiteEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_the_deferred_reads(store, monkeypatch)
    runner = ProjectionRunner(store, make_registry(), [Failing()], page_size=PAGE)
    with pytest.raises(ValueError, match="the handler's own error") as caught:
        runner.catch_up()
    assert caught.value.__notes__ == [
        "seen: handling AccountOpened at position 1, version 1 of stream 'Account-0'"
    ]


def test_the_problem_is_recorded_even_when_the_event_id_cannot_be_read(
    store: SQLiteEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_the_deferred_reads(store, monkeypatch)
    runner = ProjectionRunner(store, make_registry(), [Failing()], page_size=PAGE)
    for _ in (1, 2):
        with pytest.raises(ValueError, match="the handler's own error"):
            runner.catch_up()
        [status] = runner.status()
        assert status.problem is not None
        assert (status.problem.position, status.problem.event_id) == (1, None)
        assert status.problem.attempts == 1  # an unknown id is never "the same event again"


def test_a_record_of_a_rolled_back_event_never_takes_another_events_columns(
    tmp_path: Path,
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    projection = Seen()
    runner = ProjectionRunner(store, make_registry(), [projection], page_size=PAGE)
    opened = AccountOpened(owner="x", currency="EUR")
    with pytest.raises(RuntimeError), store.transaction():
        store.append("Account-x", [NewEvent.from_event(opened, {"who": "x"})], 0)
        runner.catch_up()
        raise RuntimeError("the caller's transaction rolls back")
    [kept] = projection.records
    # SQLite gives the rolled-back event's position to the next event appended.
    store.append("Account-y", [NewEvent.from_event(opened, {"who": "y"})], 0)
    assert store.read_all()[0].position == kept.position
    with pytest.raises(BackendError, match="no longer in the store"):
        kept.metadata  # noqa: B018
    store.close()


def test_a_deferred_record_pickles_and_copies_by_value_without_its_store(
    store: SQLiteEventStore,
) -> None:
    projection = Seen()
    ProjectionRunner(store, make_registry(), [projection], page_size=PAGE).catch_up()
    whole = store.read_all(0, 1000)
    pickled = [pickle.dumps(r) for r in projection.records]
    copied = [copy.deepcopy(r) for r in projection.records]
    store.close()
    unpickled = [pickle.loads(p) for p in pickled]
    assert unpickled == whole and copied == whole
    assert isinstance(unpickled[0].metadata, MappingProxyType)  # read-only, as read
    with pytest.raises(TypeError):
        unpickled[0].metadata["n"] = 1  # type: ignore[index]


def test_filling_a_record_that_another_thread_filled_meanwhile_is_harmless(
    store: SQLiteEventStore,
) -> None:
    [record] = store._read_page(0, 1)
    deferred = record._event_id  # what a property read, just before another thread ...
    assert isinstance(deferred, DeferredColumns)
    expected = store.read_all(0, 1)[0]
    assert record.event_id == expected.event_id  # ... filled the record
    assert record._undefer(deferred)[0] == str(expected.event_id)
    assert dict(record.metadata) == dict(expected.metadata)
