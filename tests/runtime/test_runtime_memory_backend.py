"""The contract suite against the in-memory store (no multi-process part: it is per process),
read models and sagas included: they run on memory through the same runners."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from esgen.runtime import (
    BackendError,
    Clock,
    ConcurrencyError,
    EventStore,
    MemoryEventStore,
    NewEvent,
    ProjectionRunner,
    Snapshot,
    StreamAppend,
    StreamNotFound,
)
from esgen.runtime.testing import (
    DecimalValuesContract,
    EventStoreContract,
    FloatValuesContract,
    ManualClock,
    ProjectionContract,
    QueryContract,
    RepositoryContract,
    RowTextContract,
    SagaContract,
)
from esgen.runtime.testing._contract_projections import Tallies, TallyQuery, TallyRow, fill
from esgen.runtime.testing._contract_query import SampleRow, sample_field, write_samples
from esgen.runtime.testing._domain import MoneyDeposited, make_registry


class TestMemoryEventStore(
    EventStoreContract,
    RepositoryContract,
    FloatValuesContract,
    DecimalValuesContract,
    RowTextContract,
    ProjectionContract,
    SagaContract,
    QueryContract,
):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return MemoryEventStore(clock=clock)


# -- transactions: what the contract cannot say for every backend ------------------------


class Undone(Exception):
    pass


def _thing(n: int = 0) -> list[NewEvent]:
    return [NewEvent("Thing", 1, json.dumps({"n": n}))]


def test_a_rolled_back_append_wakes_no_waiter_and_a_commit_does() -> None:
    store = MemoryEventStore()
    woke: list[tuple[bool, int]] = []

    def wait() -> None:
        found = store.wait_for_events(0, timeout=30)
        woke.append((found, store.head_position()))

    waiter = threading.Thread(target=wait)
    waiter.start()
    with pytest.raises(Undone), store.transaction():
        store.append("s", _thing(), 0)
        raise Undone
    waiter.join(0.2)
    assert waiter.is_alive() and woke == []  # nothing to see: it waits on
    with store.transaction():
        store.append("s", _thing(1), 0)
    waiter.join(30)
    assert woke == [(True, 1)]
    assert [json.loads(r.data) for r in store.read_all()] == [{"n": 1}]


def test_inside_its_own_transaction_a_thread_never_waits_for_events() -> None:
    store = MemoryEventStore()
    with store.transaction():
        assert store.wait_for_events(0, timeout=30) is False
        store.append("s", _thing(), 0)
        assert store.wait_for_events(0, timeout=30) is True


def test_other_threads_wait_for_the_block_and_see_what_it_committed() -> None:
    store = MemoryEventStore()
    seen: list[int] = []
    inside = threading.Event()

    def read() -> None:
        inside.wait(30)
        seen.append(store.head_position())

    reader = threading.Thread(target=read)
    reader.start()
    with store.transaction():
        store.append("s", _thing(), 0)
        inside.set()
        reader.join(0.2)
        assert reader.is_alive() and seen == []  # it waits for the block to end
        store.append("s", _thing(1), 1)
    reader.join(30)
    assert seen == [2]


def test_a_failed_append_inside_a_block_leaves_the_block_s_other_changes() -> None:
    store = MemoryEventStore()
    with store.transaction():
        store.append("a", _thing(), 0)
        with pytest.raises(ConcurrencyError):
            store.append_streams([StreamAppend("b", _thing(), 0), StreamAppend("a", _thing(), 0)])
        store.append("c", _thing(), 0)
    assert [(r.position, r.stream_id) for r in store.read_all()] == [(1, "a"), (2, "c")]
    assert store.stream_version("b") == 0


def _snapshot(stream_id: str, version: int, state: str = "{}") -> Snapshot:
    return Snapshot(stream_id, version, "f", state, datetime(2026, 1, 1, tzinfo=UTC))


def test_snapshots_streams_and_times_roll_back_with_the_block() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = MemoryEventStore(clock=clock)
    store.append("s", _thing(), 0, snapshot=_snapshot("s", 1))
    with pytest.raises(Undone), store.transaction():
        store.append("s", _thing(1), 1, snapshot=_snapshot("s", 2, '{"two": 2}'))
        store.save_snapshot(_snapshot("t", 1))
        later = NewEvent("Thing", 1, "{}", recorded_at=datetime(2030, 1, 1, tzinfo=UTC))
        store.append("t", [later], 0)
        raise Undone
    assert store.load_snapshot("s") == _snapshot("s", 1)
    assert store.load_snapshot("t") is None
    assert store.stream_version("s") == 1 and store.stream_version("t") == 0
    with pytest.raises(StreamNotFound):
        store.read_stream("t")
    # A later append is not held to the time of one rolled back (times never go back).
    store.append("t", _thing(3), 0)
    (recorded,) = store.read_stream("t")
    assert (recorded.position, recorded.recorded_at.year) == (2, 2026)


def test_a_block_s_undo_log_holds_what_it_changed_not_the_store() -> None:
    store = MemoryEventStore()
    fill(store, accounts=2000, deposits=0)
    runner = ProjectionRunner(store, make_registry(), [Tallies()])
    runner.catch_up()
    store.append("Account-7", [NewEvent.from_event(MoneyDeposited(amount=5))], 1)
    with store.transaction() as transaction:
        assert runner.catch_up() == 1  # its page joins this block
        saved = sum(len(entries) for _, entries in transaction._saved.values())
        undo = len(transaction._undo)
    # One row, one checkpoint: a handful of entries, whatever the size of the table.
    assert saved <= 3 and undo == 0
    assert TallyQuery(store).get("7") == TallyRow(account="7", owner="owner7", balance=5, events=2)


def test_a_query_in_another_thread_sees_a_page_only_once_it_commits() -> None:
    store = MemoryEventStore()
    fill(store, accounts=3, deposits=0)
    runner = ProjectionRunner(store, make_registry(), [Tallies()])
    runner.catch_up()
    counts: list[int] = []
    started = threading.Event()

    def query() -> None:
        started.wait(30)
        counts.append(TallyQuery(store).count())

    reader = threading.Thread(target=query)
    reader.start()
    fill(store, accounts=2, deposits=0, start=3)
    with store.transaction():
        runner.catch_up()
        started.set()
        reader.join(0.2)
        assert counts == []
    reader.join(30)
    assert counts == [5]


# -- rows memory refuses as the SQL backends would -----------------------------------------


def test_a_naive_time_or_an_integer_past_64_bits_is_refused_and_nothing_written() -> None:
    store = MemoryEventStore()
    query = write_samples(store, [SampleRow(key="a", count=1)])
    for row, message in [
        (SampleRow(key="b", at=datetime(2026, 1, 1)), r"\.at holds aware times"),
        (
            SampleRow(key="c", count=2**63),
            r"\.count is \d+: a read-model integer column holds 64-bit integers",
        ),
        (SampleRow(key="d", count=-(2**63) - 1), r"\.count is -\d+: a read-model integer"),
    ]:
        with pytest.raises((ValueError, BackendError), match=message):
            write_samples(store, [row])
    assert [r.key for r in query.list()] == ["a"]
    edge = write_samples(store, [SampleRow(key="e", count=2**63 - 1)])
    assert edge.list(order_by=sample_field("count").desc()) == [SampleRow(key="e", count=2**63 - 1)]


def test_a_wait_for_events_gives_up_on_time_while_another_thread_holds_a_transaction() -> None:
    store = MemoryEventStore()
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction():
            inside.set()
            leave.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(30)
        # Returns (False) within its own timeout, with the other transaction still open.
        assert store.wait_for_events(0, 0.05) is False
        assert holder.is_alive() and not leave.is_set()
    finally:
        leave.set()
        holder.join(30)
