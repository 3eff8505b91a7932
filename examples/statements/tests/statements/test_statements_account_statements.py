"""The AccountStatements consumer on a store of its own, fed the bank's published events.

Without a broker: the bank's events are appended to a memory store and a SQLite file
under the bank's stream ids, as the bank records them, and read through the bank's
contract registry by a projection runner, which drives a consumer's handlers and rows
exactly as the consumer runner does for each message.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from statements.consumers.account_statements import AccountStatementsFields as F
from statements.consumers.account_statements import AccountStatementsQuery
from statements.domain.account_statements import AccountStatements
from statements.types import Direction
from statements.upstream.bank import REGISTRY, MoneyDeposited, MoneyWithdrawn
from statements.upstream.bank.types import Money

from esgen.runtime import (
    Event,
    EventStore,
    MemoryEventStore,
    NewEvent,
    ProjectionRunner,
    SQLiteEventStore,
)
from esgen.runtime.testing import ManualClock

ADA = UUID("a0000000-0000-4000-8000-000000000001")
GRACE = UUID("a0000000-0000-4000-8000-000000000002")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    if request.param == "memory":
        yield MemoryEventStore(clock=clock)
        return
    sqlite = SQLiteEventStore(tmp_path / "statements.sqlite", clock=clock)
    yield sqlite
    sqlite.close()


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def record(store: EventStore, account: UUID, *events: Event) -> None:
    """Append as the bank does: to the account's stream, in order."""
    stream = f"Account-{account}"
    version = store.stream_version(stream)
    store.append(stream, [NewEvent.from_event(e) for e in events], version)


def consume(store: EventStore) -> int:
    runner = ProjectionRunner(store, REGISTRY, [AccountStatements()])
    return runner.catch_up()


def test_a_row_per_movement_with_the_running_balance(store: EventStore) -> None:
    record(store, ADA, MoneyDeposited(amount=eur("100")), MoneyWithdrawn(amount=eur("30")))
    record(store, GRACE, MoneyDeposited(amount=eur("5")))
    record(store, ADA, MoneyDeposited(amount=eur("0.50")))

    assert consume(store) == 4

    query = AccountStatementsQuery(store)
    rows = query.list(F.account_id.eq(ADA), order_by=F.sequence.asc())
    assert [(r.sequence, r.direction, r.amount, r.balance_after) for r in rows] == [
        (1, Direction.DEPOSIT, Decimal("100"), Decimal("100")),
        (2, Direction.WITHDRAWAL, Decimal("30"), Decimal("70")),
        (3, Direction.DEPOSIT, Decimal("0.50"), Decimal("70.50")),
    ]
    (grace,) = query.list(F.account_id.eq(GRACE))
    assert (grace.balance_after, grace.currency) == (Decimal("5"), "EUR")


def test_each_row_is_keyed_by_the_upstream_event_id(store: EventStore) -> None:
    record(store, ADA, MoneyDeposited(amount=eur("1")), MoneyDeposited(amount=eur("2")))
    consume(store)

    recorded = [r.event_id for r in store.read_all()]
    rows = AccountStatementsQuery(store).list(order_by=F.sequence.asc())
    assert [r.entry_id for r in rows] == recorded
    assert consume(store) == 0  # read to the end: nothing more to do
