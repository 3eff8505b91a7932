"""Benchmark: projection catch-up over 100,000 events into a SQLite read model.

Run: .venv/bin/python benchmarks/projection_sqlite.py [--repeat N] [--events N]

Side by side in one run, on the same event store file:
  - esgen: ProjectionRunner with a typed projection (decode and upcast every consumed
    event, typed handlers, rows through `self.rows`, a checkpoint per page);
  - plain sqlite3: the same pages read with SELECT, each event's JSON decoded with
    json.loads and applied with one upsert statement, the checkpoint per page.
Both commit once per page of 1,000 events. Prints medians and the ratio.

With `--decimal` the balance is an exact decimal on both sides: esgen stores it in a
"decimal" column (its sortable text form), plain sqlite3 as TEXT, adding in Python.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel

from esgen.runtime import (
    Column,
    Event,
    ExpectedVersion,
    NewEvent,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    SQLiteEventStore,
    TableSpec,
    ValueObject,
)
from esgen.runtime.testing._domain import AccountOpened, MoneyDeposited, make_registry

PAGE = 1000


class BalanceRow(ValueObject):
    account: str
    owner: str
    balance: int

    def evolve(self, **changes: Any) -> Self:
        """As generated rows have it: a copy validating only the changed fields."""
        return self._evolve(changes)


class DecimalBalanceRow(BalanceRow):
    balance: Decimal  # type: ignore[assignment]


class Balances(Projection[BalanceRow]):
    name: ClassVar[str] = "balances"
    table: ClassVar[TableSpec] = TableSpec(
        "balances",
        key="account",
        columns=(Column("account", "text"), Column("owner", "text"), Column("balance", "integer")),
    )
    row_type: ClassVar[type[BaseModel]] = BalanceRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_opened",
        MoneyDeposited: "on_deposited",
    }
    zero: ClassVar[int | Decimal] = 0

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        key = self.aggregate_id(recorded)
        row_type = self.row_type
        self.rows.put(row_type(account=key, owner=event.owner, balance=self.zero))  # type: ignore[arg-type]

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        # As generated projections write a change: `evolve` validates only that field.
        key = self.aggregate_id(recorded)
        row = self.rows.get(key)
        if row is not None:
            self.rows.put(row.evolve(balance=row.balance + event.amount))


class DecimalBalances(Balances):
    table: ClassVar[TableSpec] = TableSpec(
        "balances",
        key="account",
        columns=(Column("account", "text"), Column("owner", "text"), Column("balance", "decimal")),
    )
    row_type: ClassVar[type[BaseModel]] = DecimalBalanceRow
    zero: ClassVar[int | Decimal] = Decimal("0.00")


def fill(path: Path, events: int) -> None:
    store = SQLiteEventStore(path, synchronous="NORMAL")
    per_stream = 10
    for n in range(events // per_stream):
        batch = [NewEvent.from_event(AccountOpened(owner=f"owner{n}", currency="EUR"))]
        batch += [
            NewEvent.from_event(MoneyDeposited(amount=n % 7 + 1)) for _ in range(per_stream - 1)
        ]
        store.append(f"Account-{n}", batch, ExpectedVersion.NO_STREAM)
    store.close()


def run_esgen(path: Path, decimal: bool) -> float:
    store = SQLiteEventStore(path, synchronous="NORMAL")
    runner = ProjectionRunner(
        store, make_registry(), [DecimalBalances() if decimal else Balances()], page_size=PAGE
    )
    start = time.perf_counter()
    runner.catch_up()
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def run_plain(path: Path, decimal: bool) -> float:
    if decimal:
        return run_plain_decimal(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS plain_balances (account TEXT PRIMARY KEY, owner TEXT, "
        "balance INTEGER)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS plain_checkpoint (position INTEGER)")
    conn.execute("INSERT INTO plain_checkpoint VALUES (0)")
    start = time.perf_counter()
    position = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT position, stream_id, event_type, data FROM esgen_events "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (position, PAGE),
        ).fetchall()
        for pos, stream_id, event_type, data in rows:
            payload = json.loads(data)
            account = stream_id.partition("-")[2]
            if event_type == "AccountOpened":
                conn.execute(
                    "INSERT OR REPLACE INTO plain_balances VALUES (?, ?, 0)",
                    (account, payload["owner"]),
                )
            elif event_type == "MoneyDeposited":
                conn.execute(
                    "UPDATE plain_balances SET balance = balance + ? WHERE account = ?",
                    (payload["amount"], account),
                )
            position = pos
        conn.execute("UPDATE plain_checkpoint SET position = ?", (position,))
        conn.execute("COMMIT")
        if len(rows) < PAGE:
            break
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def run_plain_decimal(path: Path) -> float:
    """Exact balances as TEXT: each page keeps the balances it touches in a dict (read
    once, as esgen's identity map does) and writes them back with one executemany."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS plain_balances (account TEXT PRIMARY KEY, owner TEXT, "
        "balance TEXT)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS plain_checkpoint (position INTEGER)")
    conn.execute("INSERT INTO plain_checkpoint VALUES (0)")
    start = time.perf_counter()
    position = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT position, stream_id, event_type, data FROM esgen_events "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (position, PAGE),
        ).fetchall()
        touched: dict[str, list[Any]] = {}
        for pos, stream_id, event_type, data in rows:
            payload = json.loads(data)
            account = stream_id.partition("-")[2]
            if event_type == "AccountOpened":
                touched[account] = [account, payload["owner"], Decimal("0.00")]
            elif event_type == "MoneyDeposited":
                row = touched.get(account)
                if row is None:
                    found = conn.execute(
                        "SELECT account, owner, balance FROM plain_balances WHERE account = ?",
                        (account,),
                    ).fetchone()
                    row = touched[account] = [found[0], found[1], Decimal(found[2])]
                row[2] += payload["amount"]
            position = pos
        conn.executemany(
            "INSERT OR REPLACE INTO plain_balances VALUES (?, ?, ?)",
            [(a, o, str(b)) for a, o, b in touched.values()],
        )
        conn.execute("UPDATE plain_checkpoint SET position = ?", (position,))
        conn.execute("COMMIT")
        if len(rows) < PAGE:
            break
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def check(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        ours = conn.execute("SELECT account, balance FROM balances ORDER BY account").fetchall()
        plain = conn.execute(
            "SELECT account, balance FROM plain_balances ORDER BY account"
        ).fetchall()
    # A decimal column holds "<sort key> <the decimal>": compare the decimals.
    ours = [(a, b.split(" ")[1] if isinstance(b, str) else b) for a, b in ours]
    assert ours == plain, "the two read models differ"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--decimal", action="store_true", help="exact decimal balances")
    args = parser.parse_args()
    ours: list[float] = []
    plain: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.repeat):
            path = Path(tmp) / f"events{index}.sqlite"
            fill(path, args.events)
            # Alternate the order so neither side always finds the OS cache warmer.
            if index % 2:
                plain.append(run_plain(path, args.decimal))
                ours.append(run_esgen(path, args.decimal))
            else:
                ours.append(run_esgen(path, args.decimal))
                plain.append(run_plain(path, args.decimal))
            check(path)
    a, b = statistics.median(ours), statistics.median(plain)
    kind = "decimal" if args.decimal else "integer"
    print(
        f"projection catch-up over {args.events:,} events ({kind} balances), "
        f"median of {args.repeat} runs"
    )
    print(f"  esgen ProjectionRunner  {a * 1000:8.0f} ms  {args.events / a:10,.0f} events/s")
    print(f"  plain sqlite3           {b * 1000:8.0f} ms  {args.events / b:10,.0f} events/s")
    print(f"  ratio esgen / plain     {a / b:8.2f}x   (target: at most 1.2x)")


if __name__ == "__main__":
    main()
