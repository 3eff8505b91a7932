"""The peer: the Python eventsourcing library doing the benchmarks' work (SQLite saves and
loads, PostgreSQL appends, reads and tailing), so that each figure prints beside what the
library most of our users know does in the same run.

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

__all__ = [
    "available",
    "filled",
    "load",
    "postgres_app",
    "postgres_env",
    "postgres_reader",
    "postgres_tables",
    "postgres_writer",
    "save",
    "version",
]


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


# -- PostgreSQL -----------------------------------------------------------------------------


def postgres_env(dsn: str, schema: str) -> dict[str, str]:
    """The library's settings for the server and database of `dsn`, tables in `schema`."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parts.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(parts.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(parts.get("port") or 5432),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_SCHEMA": schema,
    }


def postgres_app(dsn: str, schema: str) -> Any:
    """An application on the tables `postgres_tables` made."""
    return Application(env={**postgres_env(dsn, schema), "CREATE_TABLE": "n"})


def postgres_tables(dsn: str, schema: str) -> None:
    """Create the library's tables in `schema` (which exists) before writers start: two
    applications creating them at once would race."""
    Application(env=postgres_env(dsn, schema)).close()


def postgres_writer(
    dsn: str, schema: str, streams: range, start: Any, out: Any, events_per_stream: int = 10
) -> None:
    """One writer process: an application saving an account per stream, one transaction
    each; the accounts are built before the common start."""
    app = postgres_app(dsn, schema)
    accounts = []
    for i in streams:
        account = Account(owner=f"owner-{i}", currency="EUR")
        for amount in range(1, events_per_stream):
            account.deposit(amount, f"ref-{amount}")
        accounts.append(account)
    app.recorder.max_notification_id()  # connected before the clock starts
    start.wait()
    began = time.monotonic()
    for account in accounts:
        app.save(account)
    out.put((began, time.monotonic()))
    app.close()


def postgres_reader(dsn: str, schema: str) -> Callable[[int, int], float]:
    """A function timing a read of `total` events in pages of `page`, each decoded into
    the library's domain events, as its process applications read them."""
    app = postgres_app(dsn, schema)

    def read_all(total: int, page: int) -> float:
        started = time.perf_counter()
        count, start = 0, 1
        while True:
            notifications = app.recorder.select_notifications(start, page)
            count += len([app.mapper.to_domain_event(n) for n in notifications])
            if len(notifications) < page:
                break
            start = notifications[-1].id + 1
        assert count == total, count
        return time.perf_counter() - started

    return read_all
