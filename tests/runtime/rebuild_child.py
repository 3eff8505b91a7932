"""The child process of test_rebuild_interrupted.py: rebuilds `balances` over a store the
parent filled, reporting each committed page on stdout, and stops inside the handler of
the event at a given position (its page half-written) until the parent signals it.

Run: python rebuild_child.py sqlite PATH PAGE_SIZE PAUSE_AT
     python rebuild_child.py postgres DSN SCHEMA PAGE_SIZE PAUSE_AT

Lines written: `page POSITION HEAD` after each committed page, `paused POSITION` when it
waits for the signal, `interrupted` when SIGINT arrived (exit code 130); `done HANDLED`
if it was never stopped.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from esgen.runtime import (
    Column,
    Event,
    EventStore,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    SQLiteEventStore,
    TableSpec,
    ValueObject,
)
from esgen.runtime.testing._domain import AccountOpened, MoneyDeposited, make_registry


class BalanceRow(ValueObject):
    account: str
    balance: int
    events: int


class Balances(Projection[BalanceRow]):
    """Counts every event it applies, so one applied twice (or skipped) shows in the rows."""

    name: ClassVar[str] = "balances"
    table: ClassVar[TableSpec] = TableSpec(
        "balances",
        key="account",
        columns=(
            Column("account", "text"),
            Column("balance", "integer"),
            Column("events", "integer"),
        ),
    )
    row_type: ClassVar[type[BaseModel]] = BalanceRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_opened",
        MoneyDeposited: "on_deposited",
    }

    def __init__(self, pause_at: int | None = None) -> None:
        super().__init__()
        self.pause_at = pause_at

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        self.rows.put(BalanceRow(account=self.aggregate_id(recorded), balance=0, events=1))

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        row = self.rows.get(self.aggregate_id(recorded))
        assert row is not None
        self.rows.update(row.account, balance=row.balance + event.amount, events=row.events + 1)
        if recorded.position == self.pause_at:
            self.rows.count()  # the page's rows so far reach the table, uncommitted
            print(f"paused {recorded.position}", flush=True)
            sys.stdin.readline()  # until the signal; the parent never writes


def open_store(argv: list[str]) -> tuple[EventStore, list[str]]:
    if argv[0] == "sqlite":
        return SQLiteEventStore(Path(argv[1])), argv[2:]
    from esgen.runtime import PostgresEventStore

    return PostgresEventStore(argv[1], schema=argv[2]), argv[3:]


def main() -> int:
    # Python leaves SIGINT ignored when its parent ignored it (a background job): the
    # test needs Ctrl-C's KeyboardInterrupt whatever started the test run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    store, rest = open_store(sys.argv[1:])
    page_size, pause_at = int(rest[0]), int(rest[1])
    runner = ProjectionRunner(store, make_registry(), [Balances(pause_at)], page_size=page_size)

    def report(name: str, position: int, head: int) -> None:
        print(f"page {position} {head}", flush=True)

    try:
        handled = runner.rebuild("balances", report)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    print(f"done {handled}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
