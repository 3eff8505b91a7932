"""How much the asynchronous PostgreSQL store costs over plain asynchronous psycopg, and over
the synchronous store run in a thread pool, with 50 tasks appending at once in one process.

    .venv/bin/python benchmarks/async_postgres.py [--dsn DSN] [--repeat N]

The DSN defaults to $ESGEN_TEST_POSTGRES_DSN, else postgresql://postgres@127.0.0.1:5432/postgres.
Everything happens in schemas of random names, dropped at the end. Each figure is the median
of several repetitions, the sides interleaved so that noise hits all of them.

The work: 1,000 streams x 10 events, one append (one transaction) per stream, shared out
between 50 asyncio tasks, as 50 requests of a web service would. Every side uses a pool of
10 connections (the store's default):

- esgen: `AsyncPostgresEventStore.append`;
- plain: psycopg's `AsyncConnectionPool`, and per stream one transaction with the async
  cursor's `executemany` of the rows, into a table of the same shape (an identity position
  as primary key, a unique (stream_id, stream_version) index, json columns). It numbers
  events with a sequence and keeps no commit order; the store serialises appends for that
  (see docs/postgres.md);
- esgen, synchronous: `PostgresEventStore.append` called through `asyncio.to_thread`-style
  `run_in_executor` on a pool of 50 threads, which is what a service does without the
  asynchronous API.

All build the same rows from the same payloads (json.dumps, a uuid4 per event, shared
metadata, the time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from esgen.runtime import AsyncPostgresEventStore, ExpectedVersion, NewEvent, PostgresEventStore

STREAMS = 1000
EVENTS_PER_STREAM = 10
TASKS = 50
CONNECTIONS = 10

PLAIN_TABLE = """
CREATE TABLE {t} (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id text NOT NULL,
    stream_version bigint NOT NULL, event_type text NOT NULL, event_version integer NOT NULL,
    data json NOT NULL, event_id uuid NOT NULL, metadata json NOT NULL,
    recorded_at timestamptz NOT NULL, UNIQUE (stream_id, stream_version)
)"""
PLAIN_INSERT = (
    "INSERT INTO {t} (stream_id, stream_version, event_type, event_version, data, event_id, "
    "metadata, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)

Work = list[tuple[str, list[tuple[str, dict[str, object]]]]]


def payloads() -> Work:
    out: Work = []
    for i in range(STREAMS):
        events: list[tuple[str, dict[str, object]]] = [
            ("AccountOpened", {"owner": f"owner-{i}", "currency": "EUR"})
        ]
        events += [
            ("MoneyDeposited", {"amount": amount, "reference": f"ref-{amount}"})
            for amount in range(1, EVENTS_PER_STREAM)
        ]
        out.append((f"Account-acc-{i}", events))
    return out


def shares(work: Work) -> list[Work]:
    return [work[n::TASKS] for n in range(TASKS)]


def new_events(events: list[tuple[str, dict[str, object]]]) -> list[NewEvent]:
    own_id = str(uuid.uuid4())
    metadata = {"correlation_id": own_id, "causation_id": own_id}
    return [NewEvent(kind, 1, json.dumps(data), metadata) for kind, data in events]


async def esgen_async(dsn: str, schema: str, work: Work) -> float:
    async with await AsyncPostgresEventStore.open(
        dsn, schema=schema, min_connections=CONNECTIONS, max_connections=CONNECTIONS
    ) as store:
        await store.head_position()

        async def task(share: Work) -> None:
            for stream_id, events in share:
                await store.append(stream_id, new_events(events), ExpectedVersion.NO_STREAM)

        started = time.perf_counter()
        await asyncio.gather(*(task(share) for share in shares(work)))
        elapsed = time.perf_counter() - started
        assert await store.head_position() == STREAMS * EVENTS_PER_STREAM
        return elapsed


async def esgen_threads(dsn: str, schema: str, work: Work) -> float:
    loop = asyncio.get_running_loop()
    with (
        PostgresEventStore(
            dsn, schema=schema, min_connections=CONNECTIONS, max_connections=CONNECTIONS
        ) as store,
        ThreadPoolExecutor(TASKS) as threads,
    ):
        store.head_position()

        def append(stream_id: str, events: list[tuple[str, dict[str, object]]]) -> None:
            store.append(stream_id, new_events(events), ExpectedVersion.NO_STREAM)

        async def task(share: Work) -> None:
            for stream_id, events in share:
                await loop.run_in_executor(threads, append, stream_id, events)

        started = time.perf_counter()
        await asyncio.gather(*(task(share) for share in shares(work)))
        elapsed = time.perf_counter() - started
        assert store.head_position() == STREAMS * EVENTS_PER_STREAM
        return elapsed


async def plain_async(dsn: str, table: str, work: Work) -> float:
    insert = sql.SQL(PLAIN_INSERT).format(t=sql.Identifier(*table.split("."))).as_string()
    dumps = json.dumps
    async with AsyncConnectionPool(
        dsn, min_size=CONNECTIONS, max_size=CONNECTIONS, open=False
    ) as pool:
        await pool.wait()

        async def task(share: Work) -> None:
            for stream_id, events in share:
                own_id = str(uuid.uuid4())
                metadata = dumps({"correlation_id": own_id, "causation_id": own_id})
                recorded_at = datetime.now(UTC)
                rows = [
                    (stream_id, v, kind, 1, dumps(data), uuid.uuid4(), metadata, recorded_at)
                    for v, (kind, data) in enumerate(events, 1)
                ]
                async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(insert, rows)

        started = time.perf_counter()
        await asyncio.gather(*(task(share) for share in shares(work)))
        return time.perf_counter() - started


class Bench:
    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self.admin = psycopg.connect(dsn, autocommit=True)
        self.counter = 0

    def fresh_schema(self) -> str:
        self.counter += 1
        name = f"{self.schema}_s{self.counter}"
        PostgresEventStore(self.dsn, schema=name).close()
        return name

    def fresh_table(self) -> str:
        self.counter += 1
        table = f"{self.schema}.plain_{self.counter}"
        self.admin.execute(sql.SQL(PLAIN_TABLE).format(t=sql.Identifier(*table.split("."))))
        return table

    def drop(self, name: str) -> None:
        if "." in name:
            self.admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(*name.split("."))))
        else:
            self.admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    def once(
        self, side: Callable[[str, str, Work], Coroutine[Any, Any, float]], work: Work
    ) -> float:
        where = self.fresh_table() if side is plain_async else self.fresh_schema()
        try:
            return asyncio.run(side(self.dsn, where, work))
        finally:
            self.drop(where)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("ESGEN_TEST_POSTGRES_DSN")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per figure (median)")
    args = parser.parse_args()
    bench = Bench(args.dsn, f"esgen_bench_{uuid.uuid4().hex[:8]}")
    version = bench.admin.execute("SELECT current_setting('server_version')").fetchone()
    assert version is not None
    print(
        f"python {sys.version.split()[0]}, psycopg {psycopg.__version__}, PostgreSQL "
        f"{version[0]}, {os.cpu_count()} CPUs, {TASKS} tasks, pools of {CONNECTIONS} "
        f"connections, median of {args.repeat} runs\n"
    )
    bench.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(bench.schema)))
    work = payloads()
    times: dict[str, list[float]] = {"esgen": [], "threads": [], "plain": []}
    try:
        for _ in range(args.repeat):
            times["esgen"].append(bench.once(esgen_async, work))
            times["plain"].append(bench.once(plain_async, work))
            times["threads"].append(bench.once(esgen_threads, work))
    finally:
        bench.drop(bench.schema)
        bench.admin.close()
    total = STREAMS * EVENTS_PER_STREAM
    median = {side: statistics.median(values) for side, values in times.items()}
    label = f"append {STREAMS:,} streams x {EVENTS_PER_STREAM}"
    for name, side in (
        ("plain psycopg, async", "plain"),
        ("esgen AsyncPostgresEventStore", "esgen"),
        ("esgen PostgresEventStore, thread pool", "threads"),
    ):
        ratio = median[side] / median["plain"]
        print(
            f"{label}, {name:38s} {median[side] * 1000:8.1f} ms {total / median[side]:9,.0f}/s"
            f"  {ratio:5.2f}x plain"
        )
    print(
        f"  target: esgen async <= 1.3x plain; async vs the thread pool: "
        f"{median['esgen'] / median['threads']:.2f}x the time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
