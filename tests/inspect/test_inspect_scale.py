"""`esgen inspect` at scale, on real SQLite files: what must not grow with the store.

- `Inspector.events` streams: the memory it holds while listing a stream does not grow
  with the stream's length (tracemalloc), nor does the `esgen inspect events --json`
  process's (its peak resident size, in a subprocess);
- `trace` answers from indexes: none of the statements the store runs for it scans the
  events table (EXPLAIN QUERY PLAN of each, captured by a trace callback on the store's
  connection), and the work SQLite does for it (virtual machine steps, counted by a
  progress handler) does not grow with the number of other events;
- `state(at=...)` starts from a snapshot: the store returns only the events after it.

Sizes are small enough for a shared 2-core machine and still ten times apart; nothing
here measures time.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from esgen.runtime import (
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Repository,
    Snapshot,
    SQLiteEventStore,
    StreamAppend,
    state_fingerprint,
)
from esgen.runtime._ports import StoredData, TimedStoredData

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank"
sys.path.insert(0, str(BANK / "src"))

from bank.aggregates.account import AccountState  # noqa: E402
from bank.domain.account import Account  # noqa: E402
from bank.registry import REGISTRY  # noqa: E402
from bank.service import BankService  # noqa: E402

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
EUR = '{"amount":"10.00","currency":"EUR"}'


def account(n: int) -> str:
    return f"Account-{UUID(int=n)}"


def account_events(count: int, first: int = 0) -> list[NewEvent]:
    """An account's history (opened, then deposits), one second apart from `first`."""
    events = []
    for version in range(1, count + 1):
        moment = START + timedelta(seconds=first + version)
        own = str(UUID(int=first + version, version=4))
        metadata = {"correlation_id": own, "causation_id": own, "command": "DepositMoney"}
        if version == 1:
            events.append(
                NewEvent(
                    "AccountOpened",
                    2,
                    '{"owner":"Ada","currency":"EUR"}',
                    metadata,
                    recorded_at=moment,
                )
            )
        else:
            data = f'{{"amount":{EUR},"transfer_id":null}}'
            events.append(NewEvent("MoneyDeposited", 1, data, metadata, recorded_at=moment))
    return events


def fill(store: SQLiteEventStore, stream_id: str, count: int, first: int = 0) -> None:
    events = account_events(count, first)
    for start in range(0, count, 10_000):
        store.append(stream_id, events[start : start + 10_000], start or ExpectedVersion.NO_STREAM)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    opened = SQLiteEventStore(tmp_path / "bank.sqlite", synchronous="NORMAL")
    yield opened
    opened.close()


# -- events: streamed ----------------------------------------------------------------------


def test_listing_a_stream_holds_memory_independent_of_its_length(
    store: SQLiteEventStore,
) -> None:
    small, large = account(1), account(2)
    fill(store, small, 5_000)
    fill(store, large, 50_000, first=10_000)
    inspector = BankService(store).inspect()
    # Decoders and statement caches are built on first use: not what is measured.
    for _ in zip(range(10), inspector.events(small), strict=False):
        pass

    def peak(stream_id: str) -> tuple[int, int]:
        tracemalloc.start()
        try:
            count = 0
            for view in inspector.events(stream_id):
                count += 1
                assert view.decoded
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_count, small_peak = peak(small)
    large_count, large_peak = peak(large)
    assert (small_count, large_count) == (5_000, 50_000)
    # Ten times the events: held all at once they would need ten times the memory; a page
    # at a time needs about the same (twice allows for pages of up to 5,000 events).
    assert large_peak < 2 * small_peak, (small_peak, large_peak)


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_the_events_command_streams_without_growing(store: SQLiteEventStore) -> None:
    small, large = account(1), account(2)
    fill(store, small, 5_000)
    fill(store, large, 50_000, first=10_000)
    esgen = Path(sys.executable).with_name("esgen")

    def peak_kib(stream_id: str) -> int:
        # The peak resident size of the command alone: the only child of a fresh process.
        command = [str(esgen), "inspect", "events", stream_id, "--store", str(store.path)]
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, *command, "--json"],
            cwd=BANK,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    small_kib, large_kib = peak_kib(small), peak_kib(large)
    # 45,000 more events held in memory would add well over 50 MiB (typed events, views,
    # their JSON); streamed, the command stays within a few MiB of the smaller run.
    assert large_kib < small_kib + 16 * 1024, (small_kib, large_kib)


# -- trace: indexed --------------------------------------------------------------------------


def conversation(
    stream_ids: Sequence[str], correlation: str, command_id: str, first: int
) -> tuple[list[tuple[str, NewEvent]], list[str]]:
    """A command, then saga steps each caused by the event before it, one per stream in
    turn: 50 events on the given streams (accounts already opened)."""
    events = []
    ids: list[str] = []
    for k in range(50):
        cause = command_id if k == 0 else ids[k - 1]
        metadata: dict[str, Any] = {
            "correlation_id": correlation,
            "causation_id": cause,
            "command": "DepositMoney",
        }
        if k:
            metadata["saga"] = "MoneyTransfer"
        else:
            metadata["actor"] = "teller-7"
        event_id = UUID(int=2**100 + first + k, version=4)
        moment = START + timedelta(seconds=first + k)
        data = f'{{"amount":{EUR},"transfer_id":null}}'
        event = NewEvent("MoneyDeposited", 1, data, metadata, event_id, moment)
        events.append((stream_ids[k % len(stream_ids)], event))
        ids.append(str(event_id))
    return events, ids


def fill_traffic(store: SQLiteEventStore, accounts: int, per_account: int) -> list[str]:
    """`accounts` streams of `per_account` events, each event its own conversation, then
    a planted conversation of 50 events over 10 of them; returns its ids."""
    appends = []
    for n in range(accounts):
        events = account_events(per_account, first=n * per_account)
        appends.append(StreamAppend(account(100 + n), events, ExpectedVersion.NO_STREAM))
        if len(appends) == 200 or n == accounts - 1:
            store.append_streams(appends)
            appends = []
    streams = [account(100 + n) for n in range(0, 10 * (accounts // 10), accounts // 10)]
    # Apart from the ids of the other events, which count up from 1.
    correlation, command_id = (
        str(UUID(int=2**90 + 7, version=4)),
        str(UUID(int=2**90 + 8, version=4)),
    )
    planted, ids = conversation(streams, correlation, command_id, accounts * per_account)
    for stream_id, event in planted:
        store.append(stream_id, [event], store.stream_version(stream_id))
    return [correlation, ids[25], command_id]


class Watched:
    """The SQL a store runs on this thread's connection, and the SQLite VM steps it costs."""

    def __init__(self, store: SQLiteEventStore) -> None:
        with store.read_transaction() as conn:
            self.conn = conn  # the thread's own connection, which every call here uses
        self.statements: list[str] = []
        self.steps = 0

    def __enter__(self) -> Watched:
        self.statements, self.steps = [], 0
        self.conn.set_trace_callback(self.statements.append)
        self.conn.set_progress_handler(self._step, 100)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.set_trace_callback(None)
        self.conn.set_progress_handler(None, 0)

    def _step(self) -> int:
        self.steps += 1
        return 0  # go on


def scans(conn: sqlite3.Connection, statements: Sequence[str]) -> list[tuple[str, str]]:
    """The statements whose plan reads the whole events table (or a whole index of it)."""
    found = []
    for sql in statements:
        if not re.match(r"\s*(SELECT|WITH)\b", sql, re.IGNORECASE):
            continue
        for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
            if re.match(r"SCAN esgen_events\b", detail):
                found.append((sql, detail))
    return found


def trace_costs(path: Path, accounts: int, per_account: int) -> list[int]:
    store = SQLiteEventStore(path, synchronous="NORMAL")
    try:
        queries = fill_traffic(store, accounts, per_account)
        inspector = BankService(store).inspect()
        watched = Watched(store)
        costs = []
        for query, matched in zip(queries, ("correlation", "event", "causation"), strict=True):
            inspector.trace(query)  # warm: statement cache, decoders
            with watched:
                found = inspector.trace(query)
            assert (found.matched, len(found.events), len(found.streams)) == (matched, 50, 10)
            assert scans(watched.conn, watched.statements) == [], watched.statements
            costs.append(watched.steps)
        return costs
    finally:
        store.close()


def test_trace_reads_by_index_whatever_the_store_holds(tmp_path: Path) -> None:
    small = trace_costs(tmp_path / "small.sqlite", accounts=40, per_account=50)
    large = trace_costs(tmp_path / "large.sqlite", accounts=400, per_account=50)
    # 2,000 against 20,000 other events: a scan would cost ten times the steps; index
    # look-ups cost a few more (a b-tree one level deeper), the 50 rows the same.
    for by, few, many in zip(("correlation", "event", "causation"), small, large, strict=True):
        assert many < 1.5 * few + 50, (by, few, many)


# -- state(at=...): from the snapshot ---------------------------------------------------------


class CountingStore(SQLiteEventStore):
    """The real SQLite store, counting the events its reads return."""

    read = 0

    def read_stream(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        found = super().read_stream(*args, **kwargs)
        self.read += len(found)
        return found

    def read_stream_data(self, *args: Any, **kwargs: Any) -> Sequence[StoredData]:
        found = super().read_stream_data(*args, **kwargs)
        self.read += len(found)
        return found

    def read_stream_data_timed(self, *args: Any, **kwargs: Any) -> Sequence[TimedStoredData]:
        found = super().read_stream_data_timed(*args, **kwargs)
        self.read += len(found)
        return found

    def read_all(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        found = super().read_all(*args, **kwargs)
        self.read += len(found)
        return found


def test_state_at_a_time_starts_from_the_snapshot(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "bank.sqlite", synchronous="NORMAL")
    with_snapshot, without = account(1), account(2)
    fill(store, with_snapshot, 2_000)
    fill(store, without, 2_000, first=2_000)  # the same events, later: the same states
    plain = Repository(Account, store, REGISTRY, snapshots=None)
    at_1900 = plain.load_at(UUID(int=1), version=1_900)
    store.save_snapshot(
        Snapshot(
            with_snapshot,
            1_900,
            state_fingerprint(AccountState),
            at_1900.state.model_dump_json(),
            START,
        )
    )
    inspector = BankService(store).inspect()
    expected = plain.load_at(UUID(int=2), version=1_950).state

    def state(stream_id: str, first: int) -> tuple[int, int, object]:
        # At the time version 1,950 was recorded.
        moment = START + timedelta(seconds=first + 1_950)
        store.read = 0
        view = inspector.state(stream_id, at=moment)
        return store.read, view.version, view.state

    try:
        read, version, found = state(with_snapshot, 0)
        assert (version, found) == (1_950, expected)
        # The 50 events after the snapshot (and the snapshot's own, to check its time),
        # and the last one again for its time: not the 1,950 from the start.
        assert read <= 60, read
        read, version, found = state(without, 2_000)  # the count sees a replay from the start
        assert (version, found) == (1_950, expected)
        assert read >= 1_950, read
    finally:
        store.close()
