"""The acceptance test of units of work: money moved between accounts by concurrent writers
is never lost nor created.

Each writer makes random transfers, each one unit of work that withdraws from one account
(refusing an overdraft) and deposits to another, with a pause between loading and
committing so that writers really do collide. Threads share a memory store; separate
processes share a SQLite file or a PostgreSQL schema. Afterwards the balances add up to the
start, none ever went below zero, every committed transfer is exactly two events sharing
one correlation id, and the writers report retries, which proves they were contending.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    Event,
    EventRegistry,
    EventStore,
    MemoryEventStore,
    RecordedEvent,
    Repository,
    SQLiteEventStore,
    UnitOfWork,
    run_in_unit_of_work,
)
from esgen.runtime.testing._contract import _run

StoreFactory = Callable[[], EventStore]

ACCOUNTS = {"alice": 100, "bob": 100, "carol": 100, "dave": 100}
WRITERS = 3
TRANSFERS_PER_WRITER = 40


class AccountOpened(Event):
    event_type = "AccountOpened"
    event_version = 1
    balance: int


class MoneyWithdrawn(Event):
    event_type = "MoneyWithdrawn"
    event_version = 1
    amount: int
    transfer: str


class MoneyDeposited(Event):
    event_type = "MoneyDeposited"
    event_version = 1
    amount: int
    transfer: str


class Balance(BaseModel):
    model_config = ConfigDict(frozen=True)
    balance: int


class Overdraft(ValueError):
    pass


class BankAccount(Aggregate[Balance]):
    aggregate_type = "BankAccount"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "_opened",
        MoneyWithdrawn: "_withdrawn",
        MoneyDeposited: "_deposited",
    }

    def open(self, balance: int) -> None:
        self.record(AccountOpened(balance=balance))

    def withdraw(self, amount: int, transfer: str) -> None:
        if amount > self.state.balance:
            raise Overdraft(f"{self.id}: balance {self.state.balance} < {amount}")
        self.record(MoneyWithdrawn(amount=amount, transfer=transfer))

    def deposit(self, amount: int, transfer: str) -> None:
        self.record(MoneyDeposited(amount=amount, transfer=transfer))

    def _opened(self, event: AccountOpened) -> Balance:
        return Balance(balance=event.balance)

    def _withdrawn(self, event: MoneyWithdrawn) -> Balance:
        return Balance(balance=self.state.balance - event.amount)

    def _deposited(self, event: MoneyDeposited) -> Balance:
        return Balance(balance=self.state.balance + event.amount)


def _repository(store: EventStore) -> Repository[BankAccount]:
    return Repository(
        BankAccount, store, EventRegistry([AccountOpened, MoneyWithdrawn, MoneyDeposited])
    )


def _make_transfers(
    store: EventStore, writer: str, transfers: int, start: Any
) -> tuple[list[tuple[str, str, str, int]], int, int]:
    """Random transfers through units of work; returns the committed ones (id, from, to,
    amount), how many were refused for want of money, and how many attempts were retries."""
    repo = _repository(store)
    rng = random.Random(writer)
    committed = []
    refused = retries = 0
    start.wait(timeout=120)
    for n in range(transfers):
        source, target = rng.sample(sorted(ACCOUNTS), 2)
        amount = rng.randint(1, 60)
        transfer = f"{writer}-{n}"
        attempts: list[None] = []
        move = functools.partial(_move, repo, rng, source, target, amount, transfer, attempts)
        try:
            run_in_unit_of_work(store, move, max_attempts=1000)
        except Overdraft:
            refused += 1
        else:
            committed.append((transfer, source, target, amount))
        retries += len(attempts) - 1
    return committed, refused, retries


def _move(
    repo: Repository[BankAccount],
    rng: random.Random,
    source: str,
    target: str,
    amount: int,
    transfer: str,
    attempts: list[None],
    unit: UnitOfWork,
) -> None:
    attempts.append(None)
    paying = unit.load(repo, source)
    paid = unit.load(repo, target)
    time.sleep(rng.random() / 250)  # deciding: widens the window for rivals
    paying.withdraw(amount, transfer)
    paid.deposit(amount, transfer)


def transfer_worker(
    factory: StoreFactory, writer: str, transfers: int, start: Any, results: Queue[Any]
) -> None:
    """A writer process (module-level, so a spawned child can import it)."""
    try:
        store = factory()
        try:
            results.put((writer, *_make_transfers(store, writer, transfers, start), None))
        finally:
            store.close()
    except Exception as exc:
        results.put((writer, [], 0, 0, repr(exc)))


def _open_accounts(store: EventStore) -> None:
    repo = _repository(store)
    for name, balance in ACCOUNTS.items():
        account = BankAccount(name)
        account.open(balance)
        repo.save(account)


def _check_the_books(store: EventStore, outcomes: list[tuple[Any, ...]]) -> None:
    assert [error for *_, error in outcomes if error] == []
    committed = {t[0]: t[1:] for _, done, *_ in outcomes for t in done}
    retries = sum(outcome[3] for outcome in outcomes)
    repo = _repository(store)
    balances = {name: repo.load(name).state.balance for name in ACCOUNTS}
    assert sum(balances.values()) == sum(ACCOUNTS.values()), balances
    for name in ACCOUNTS:
        history = [entry.state.balance for entry in repo.history(name)]  # type: ignore[attr-defined]
        assert min(history) >= 0, f"{name} went below zero: {history}"

    by_correlation: dict[str | None, list[RecordedEvent]] = defaultdict(list)
    for recorded in store.iter_all():
        if recorded.event_type != "AccountOpened":
            by_correlation[recorded.correlation_id].append(recorded)
    transfers = {}
    for correlation, events in by_correlation.items():
        assert correlation is not None
        assert [e.event_type for e in events] == ["MoneyWithdrawn", "MoneyDeposited"], events
        withdrawn, deposited = (registry_decode(e) for e in events)
        assert isinstance(withdrawn, MoneyWithdrawn) and isinstance(deposited, MoneyDeposited)
        assert withdrawn.transfer == deposited.transfer
        assert events[1].position == events[0].position + 1  # one atomic append
        transfers[withdrawn.transfer] = (
            events[0].stream_id.removeprefix("BankAccount-"),
            events[1].stream_id.removeprefix("BankAccount-"),
            withdrawn.amount,
        )
        assert deposited.amount == withdrawn.amount
    assert transfers == committed  # each committed transfer once, nothing else
    assert len(committed) > 0
    assert retries > 0, "the writers never collided: the test proved nothing"


def registry_decode(recorded: RecordedEvent) -> Event:
    return EventRegistry([AccountOpened, MoneyWithdrawn, MoneyDeposited]).decode_recorded(recorded)


def _in_processes(factory: StoreFactory) -> None:
    store = factory()
    try:
        _open_accounts(store)
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(WRITERS)
        results = context.Queue()
        processes = [
            context.Process(
                target=transfer_worker,
                args=(factory, f"w{i}", TRANSFERS_PER_WRITER, start, results),
            )
            for i in range(WRITERS)
        ]
        _check_the_books(store, _run(processes, results, WRITERS))
    finally:
        store.close()


def test_threads_on_the_memory_store_never_lose_or_create_money() -> None:
    store = MemoryEventStore()
    _open_accounts(store)
    threads = 4
    start = threading.Barrier(threads)
    outcomes: list[tuple[Any, ...]] = []

    def writer(name: str) -> None:
        try:
            outcomes.append((name, *_make_transfers(store, name, 60, start), None))
        except Exception as exc:
            outcomes.append((name, [], 0, 0, repr(exc)))

    workers = [threading.Thread(target=writer, args=(f"t{i}",)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(outcomes) == threads
    _check_the_books(store, outcomes)


def test_processes_on_sqlite_never_lose_or_create_money(tmp_path: Path) -> None:
    _in_processes(functools.partial(SQLiteEventStore, tmp_path / "bank.db", busy_timeout=30.0))


@pytest.fixture
def postgres_factory() -> Iterator[StoreFactory]:
    from esgen.runtime import PostgresEventStore

    from .postgres_env import drop_schema, new_schema, require_postgres

    dsn = require_postgres()
    schema = new_schema()
    try:
        yield functools.partial(PostgresEventStore, dsn, schema=schema, pool_timeout=120)
    finally:
        drop_schema(dsn, schema)


def test_processes_on_postgres_never_lose_or_create_money(
    postgres_factory: StoreFactory,
) -> None:
    _in_processes(postgres_factory)
