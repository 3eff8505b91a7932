"""Loading an aggregate reads its stream a page at a time (`LOAD_PAGE_SIZE` events per
query): the same state and version as one read, on every backend, around page boundaries,
from a snapshot, with `load_at`, and for an aggregate whose apply methods read
`event_time`; and the memory a load takes does not grow with the stream's length."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from esgen.runtime import EventStore, MemoryEventStore, Repository, SQLiteEventStore, _repository
from esgen.runtime.testing._domain import (
    Account,
    Deposit,
    OpenWallet,
    Wallet,
    make_registry,
    make_wallet_registry,
)

PAGE = 3


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
    elif request.param == "sqlite":
        with SQLiteEventStore(tmp_path / "events.db") as sqlite:
            yield sqlite
    else:
        from esgen.runtime import PostgresEventStore

        from .postgres_env import drop_schema, new_schema, require_postgres

        dsn = require_postgres()
        schema = new_schema()
        try:
            with PostgresEventStore(dsn, schema=schema) as postgres:
                yield postgres
        finally:
            drop_schema(dsn, schema)


class Reads:
    """The version ranges a store is asked for by loads."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ranges: list[tuple[int, int | None]] = []
        for name in ("read_stream_data", "read_stream_data_timed"):
            monkeypatch.setattr(store, name, self._counting(getattr(store, name)))

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
