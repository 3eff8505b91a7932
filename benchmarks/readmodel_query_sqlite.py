"""Benchmark: queries on a 1,000,000-row SQLite read model, by key and by an indexed field.

Run: .venv/bin/python benchmarks/readmodel_query_sqlite.py [--rows N] [--queries N]

The read model is built directly through the runtime's own write path (a ProjectionRunner
creates the table, then `Rows.put` in transactions of 100,000 rows, with decimals and
times in their sortable forms), not by replaying 1,000,000 events: replay is what
`projection_sqlite.py` measures.

Side by side in one run, on the same file, random keys:
  - esgen: `ReadModel.get(key)` from outside any handler (one read transaction: the
    active-generation lookup, the SELECT, the row validated into the row type), and
    `ReadModel.list(F.owner.eq(...), limit=10)` through the declared index;
  - plain sqlite3: one SELECT by primary key (and by owner) on an open connection, the
    row left as a tuple.
Prints the median time of one call of each, and the ratio.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel

from esgen.runtime import (
    Column,
    Event,
    Field,
    Index,
    Projection,
    ProjectionRunner,
    Rows,
    SQLiteEventStore,
    TableSpec,
    ValueObject,
)
from esgen.runtime._progress_store import progress_storage
from esgen.runtime._views import ReadModel
from esgen.runtime.testing._domain import make_registry

BATCH = 100_000
OWNERS = 50_000


class AccountRow(ValueObject):
    account: str
    owner: str
    balance: Decimal
    opened: AwareDatetime
    status: str


SPEC = TableSpec(
    "accounts",
    key="account",
    columns=(
        Column("account", "text"),
        Column("owner", "text"),
        Column("balance", "decimal"),
        Column("opened", "timestamp"),
        Column("status", "text"),
    ),
    indexes=(Index(("owner",)),),
)


class Accounts(Projection[AccountRow]):
    name: ClassVar[str] = "accounts"
    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = AccountRow
    handlers: ClassVar[Mapping[type[Event], str]] = {}


class AccountsQuery(ReadModel[AccountRow, str]):
    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = AccountRow


class AccountsFields:
    owner = Field[AccountRow, str]("owner")


def key(n: int) -> str:
    return f"acct-{n:07d}"


def build(path: Path, count: int) -> float:
    store = SQLiteEventStore(path, synchronous="NORMAL")
    ProjectionRunner(store, make_registry(), [Accounts()])  # table, view, checkpoint
    storage = progress_storage(store)
    start = time.perf_counter()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, BATCH):
        with storage.unit() as unit:
            rows: Rows[AccountRow] = Rows(SPEC, AccountRow, unit.table(SPEC, 1))
            for n in range(first, min(first + BATCH, count)):
                rows.put(
                    AccountRow(
                        account=key(n),
                        owner=f"owner{n % OWNERS}",
                        balance=Decimal(n % 100_000 - 50_000).scaleb(-2),
                        opened=base + timedelta(seconds=n),
                        status="open" if n % 3 else "closed",
                    )
                )
            rows.flush()
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def median_call(call: Callable[[Any], object], args: list[Any]) -> float:
    times = []
    for arg in args:
        start = time.perf_counter_ns()
        call(arg)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6  # ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(15)
    keys = [key(rng.randrange(args.rows)) for _ in range(args.queries)]
    owners = [f"owner{rng.randrange(OWNERS)}" for _ in range(args.queries // 10)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.sqlite"
        built = build(path, args.rows)

        store = SQLiteEventStore(path, synchronous="NORMAL")
        query = AccountsQuery(store)
        found = query.get(keys[0])
        assert found is not None and found.account == keys[0]
        plain = sqlite3.connect(path, isolation_level=None)
        by_key = "SELECT account, owner, balance, opened, status FROM accounts WHERE account = ?"
        by_owner = (
            "SELECT account, owner, balance, opened, status FROM accounts WHERE owner = ? "
            "ORDER BY account LIMIT 10"
        )
        assert plain.execute(by_key, (keys[0],)).fetchone()[0] == keys[0]
        owner = AccountsFields.owner
        # Warm both (the OS cache, SQLite's page cache), then alternate the two sides.
        for _ in range(2):
            median_call(query.get, keys[:2000])
            median_call(lambda k: plain.execute(by_key, (k,)).fetchone(), keys[:2000])
        ours = median_call(query.get, keys)
        floor = median_call(lambda k: plain.execute(by_key, (k,)).fetchone(), keys)
        ours_list = median_call(lambda o: query.list(owner.eq(o), limit=10), owners)
        floor_list = median_call(lambda o: plain.execute(by_owner, (o,)).fetchall(), owners)
        plain.close()
        store.close()
    print(f"read model of {args.rows:,} rows (built in {built:.1f} s through Rows.put)")
    print(f"median of {args.queries:,} random keys / {len(owners):,} random owners:")
    print(f"  esgen ReadModel.get(key)          {ours:8.4f} ms   (target: under 1 ms)")
    print(f"  plain sqlite3 SELECT by key       {floor:8.4f} ms")
    print(f"  ratio                             {ours / floor:8.1f}x")
    print(f"  esgen list(owner == x, limit=10)  {ours_list:8.4f} ms")
    print(f"  plain sqlite3 SELECT by owner     {floor_list:8.4f} ms")
    print(f"  ratio                             {ours_list / floor_list:8.1f}x")


if __name__ == "__main__":
    main()
