"""Loading an aggregate reads its stream a page at a time (`LOAD_PAGE_SIZE` events per
query): the same state and version as one read, on every backend, around page boundaries,
from a snapshot, with `load_at`, and for an aggregate whose apply methods read
`event_time`; and the memory a load takes does not grow with the stream's length."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from esgen.runtime import (
    AggregateNotFound,
    EventStore,
    MemoryEventStore,
    Repository,
    SQLiteEventStore,
    _repository,
)
from esgen.runtime.testing import ManualClock
from esgen.runtime.testing._domain import (
    Account,
    Deposit,
    OpenWallet,
    Wallet,
    make_registry,
    make_wallet_registry,
)

PAGE = 3
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    # A time a minute apart for each append, so that times name versions.
    clock = ManualClock(T0, timedelta(minutes=1))
    if request.param == "memory":
        yield MemoryEventStore(clock=clock)
    elif request.param == "sqlite":
        with SQLiteEventStore(tmp_path / "events.db", clock=clock) as sqlite:
            yield sqlite
    else:
        from .postgres_env import postgres_event_store

        yield from postgres_event_store(clock=clock)


class Reads:
    """The version ranges a store is asked for by loads, and its `read_stream` calls (for
    loads as of a time): (from_version, to_version, limit)."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ranges: list[tuple[int, int | None]] = []
        self.records: list[tuple[int, int | None, int | None]] = []
        for name in ("read_stream_data", "read_stream_data_timed"):
            monkeypatch.setattr(store, name, self._counting(getattr(store, name)))
        read_stream = store.read_stream

        def counted(stream_id: str, **kwargs: Any) -> Any:
            self.records.append(
                (kwargs.get("from_version", 1), kwargs.get("to_version"), kwargs.get("limit"))
            )
            return read_stream(stream_id, **kwargs)

        monkeypatch.setattr(store, "read_stream", counted)

    def _counting(self, read: Any) -> Any:
        def counted(stream_id: str, *, from_version: int = 1, to_version: int | None = None) -> Any:
            self.ranges.append((from_version, to_version))
            return read(stream_id, from_version=from_version, to_version=to_version)

        return counted


@pytest.fixture
def reads(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> Reads:
    monkeypatch.setattr(_repository, "LOAD_PAGE_SIZE", PAGE)
    return Reads(store, monkeypatch)


def _account(store: EventStore, events: int, **options: Any) -> Account:
    accounts = Repository(Account, store, make_registry(), **options)
    account = accounts.new("acc-1")
    account.open("ann")
    for n in range(1, events):
        account.deposit(n)
    accounts.save(account)
    return account


@pytest.mark.parametrize("events", [1, 2, 3, 4, 6, 7, 10])
def test_a_stream_read_in_pages_loads_as_in_one_read(
    store: EventStore, reads: Reads, events: int
) -> None:
    saved = _account(store, events)
    loaded = Repository(Account, store, make_registry(), snapshots=None).load("acc-1")
    assert (loaded.version, loaded.state) == (events, saved.state)
    # Pages of PAGE events each; a stream ending on a page's end takes one empty read more.
    assert reads.ranges == [(v, v + PAGE - 1) for v in range(1, events + 2, PAGE)]


def test_pages_start_after_a_snapshot_and_stop_at_a_version(
    store: EventStore, reads: Reads
) -> None:
    saved = _account(store, 10, snapshot_every=4)  # a snapshot at version 8, if kept
    accounts = Repository(Account, store, make_registry(), snapshot_every=4)
    loaded = accounts.load("acc-1")
    assert (loaded.version, loaded.state) == (10, saved.state)
    assert all(to is not None and to - start < PAGE for start, to in reads.ranges)
    reads.ranges.clear()
    at_seven = accounts.load_at("acc-1", version=7)
    assert (at_seven.version, at_seven.state.balance) == (7, sum(range(1, 7)))
    # From the first event (the snapshot is past version 7), and no further than 7.
    assert reads.ranges == [(1, 3), (4, 6), (7, 7)]
    assert accounts.load_at("acc-1", version=99).version == 10


def test_an_aggregate_reading_event_time_is_loaded_in_pages(
    store: EventStore, reads: Reads
) -> None:
    wallets = Repository(Wallet, store, make_wallet_registry(), snapshots=None)
    wallet_id = UUID("0b5f8e3c-1d2a-4f6b-9c8d-7e6f5a4b3c2d")
    wallet = wallets.new(wallet_id)
    wallet.execute(OpenWallet(wallet_id=wallet_id, owner="ann"))
    for amount in range(1, 8):
        wallet.execute(Deposit(wallet_id=wallet_id, amount=amount))
    wallets.save(wallet)
    last = store.read_stream(wallets.stream_id(wallet_id))[-1]
    loaded = wallets.load(wallet_id)
    assert loaded.version == last.stream_version and loaded.state.balance == sum(range(1, 8))
    assert loaded.state.changed_at == last.recorded_at
    assert len(reads.ranges) > 1


def test_a_load_as_of_a_time_reads_pages_up_to_it(store: EventStore, reads: Reads) -> None:
    accounts = Repository(Account, store, make_registry(), snapshot_every=4)
    account = accounts.new("acc-1")
    account.open("ann")
    accounts.save(account)
    for n in range(1, 10):  # one append each: versions 2 to 10, a minute apart
        account.deposit(n)
        accounts.save(account)
    times = {e.stream_version: e.recorded_at for e in store.read_stream("Account-acc-1")}
    reads.records.clear()
    seven = accounts.load_at("acc-1", at=times[7])
    assert (seven.version, seven.state.balance) == (7, sum(range(1, 7)))
    # The snapshot (version 8) was not recorded yet at that time: from the first event.
    assert reads.records[-3:] == [(1, None, PAGE), (4, None, PAGE), (7, None, PAGE)]
    reads.records.clear()
    nine = accounts.load_at("acc-1", at=times[9])
    assert (nine.version, nine.state.balance) == (9, sum(range(1, 9)))
    assert reads.records == [(8, 8, None), (9, None, PAGE)]  # the snapshot's event, then on
    with pytest.raises(AggregateNotFound):
        accounts.load_at("acc-1", at=times[1] - timedelta(seconds=1))


def _peak_while_loading(accounts: Repository[Account, str], account_id: str) -> int:
    tracemalloc.start()
    try:
        accounts.load(account_id)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_load_holds_a_page_of_the_stream_not_the_whole_of_it(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db", synchronous="NORMAL")
    accounts = Repository(Account, store, make_registry(), snapshots=None)
    for account_id, events in (("short", 2_000), ("long", 20_000)):
        account = accounts.new(account_id)
        account.open("ann")
        for n in range(1, events):
            account.deposit(n)
        accounts.save(account)
    _peak_while_loading(accounts, "short")  # decoders built, caches warm
    short = _peak_while_loading(accounts, "short")
    long = _peak_while_loading(accounts, "long")
    # Ten times the events: read whole, the rows alone would take ten times the memory.
    assert long < 2 * short, (short, long)
    assert accounts.load("long").state.balance == sum(range(1, 20_000))
    store.close()
