"""The event stores the read-side tests run on: in memory and a SQLite file always, and
PostgreSQL when `BANK_TEST_POSTGRES_DSN` names a server.

Each test gets a store of its own: a new memory store, a new SQLite file, or a new
PostgreSQL schema that is dropped afterwards, so runs against one server never meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from esgen.runtime import EventStore, MemoryEventStore, SQLiteEventStore
from esgen.runtime.testing import ManualClock

POSTGRES_DSN = "BANK_TEST_POSTGRES_DSN"


@pytest.fixture
def clock() -> ManualClock:
    """The time of every store and saga in a test: one second per call, moved by hand."""
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[EventStore]:
    kind: str = request.param
    if kind == "memory":
        yield MemoryEventStore(clock=clock)
    elif kind == "sqlite":
        sqlite = SQLiteEventStore(tmp_path / "bank.sqlite", clock=clock)
        yield sqlite
        sqlite.close()
    else:
        yield from _postgres(clock)


def _postgres(clock: ManualClock) -> Iterator[EventStore]:
    dsn = os.environ.get(POSTGRES_DSN)
    if not dsn:
        pytest.skip(
            f"PostgreSQL not tested: set {POSTGRES_DSN}=postgresql://user@host:5432/db "
            "to run these tests on that server too"
        )
    # Imported here: the memory and SQLite runs need no PostgreSQL driver.
    import psycopg
    from psycopg import sql

    from esgen.runtime import PostgresEventStore

    schema = f"bank_test_{uuid.uuid4().hex[:12]}"  # created by the store on first use
    postgres = PostgresEventStore(dsn, schema=schema, clock=clock)
    try:
        yield postgres
    finally:
        postgres.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
