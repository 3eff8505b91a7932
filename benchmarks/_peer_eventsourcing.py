"""The peer: the Python eventsourcing library doing the SQLite benchmarks' work, so that
each figure prints beside what the library most of our users know does in the same run.

Installed by `make bench` (the `bench` dependency group, a pinned version). Its SQLite
recorder opens the file in WAL mode; each new connection also gets the benchmark's
`synchronous` level, so both sides wait for the disk alike. Everything else is the
library's defaults: an `Application`, an aggregate whose methods are decorated events, one
`save` per aggregate, `repository.get` to load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import eventsourcing
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.sqlite import SQLiteConnectionPool
except ImportError:  # not installed: the benchmarks print esgen and the floor only
    eventsourcing = None

__all__ = ["available", "load", "save", "version"]


def available() -> bool:
    return eventsourcing is not None


def version() -> str:
    return str(getattr(eventsourcing, "__version__", "")) or _distribution_version()


def _distribution_version() -> str:
    from importlib.metadata import version as installed

    return installed("eventsourcing")


if eventsourcing is not None:

    class Account(Aggregate):  # type: ignore[misc]
        @event("Opened")
        def __init__(self, owner: str, currency: str) -> None:
            self.owner = owner
            self.currency = currency
            self.balance = 0
            self.deposits = 0

        @event("Deposited")
        def deposit(self, amount: int, reference: str) -> None:
            self.balance += amount
            self.deposits += 1

    _create: Callable[..., Any] = SQLiteConnectionPool._create_connection

    def _with_synchronous(level: str) -> Callable[..., Any]:
        def create(pool: Any) -> Any:
            connection = _create(pool)
            connection._sqlite_conn.execute(f"PRAGMA synchronous={level}")
            return connection

        return create


def _app(path: Path, synchronous: str) -> Any:
    SQLiteConnectionPool._create_connection = _with_synchronous(synchronous)  # type: ignore[method-assign]
    return Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )


def save(path: Path, synchronous: str, aggregates: int, events_per_aggregate: int) -> float:
    """Seconds to save `aggregates` new accounts of `events_per_aggregate` events each,
    one `save` (one transaction) per account; the accounts are built before the clock."""
    app = _app(path, synchronous)
    accounts = []
    for i in range(aggregates):
        account = Account(owner=f"owner-{i}", currency="EUR")
        for amount in range(1, events_per_aggregate):
            account.deposit(amount, f"ref-{amount}")
        accounts.append(account)
    start = time.perf_counter()
    for account in accounts:
        app.save(account)
    elapsed = time.perf_counter() - start
    app.close()
    return elapsed


def filled(path: Path, synchronous: str, events: int) -> tuple[Any, Any]:
    """An application over a file holding one account of `events` events, and its id."""
    app = _app(path, synchronous)
    account = Account(owner="big", currency="EUR")
    for n in range(1, events):
        account.deposit(n, f"ref-{n}")
    app.save(account)
    return app, account.id


def load(app: Any, account_id: Any, events: int) -> float:
    """Seconds to load the account through the library's repository (no snapshots)."""
    start = time.perf_counter()
    account = app.repository.get(account_id)
    elapsed = time.perf_counter() - start
    assert account.version == events, account.version
    return elapsed
