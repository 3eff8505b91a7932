"""How much the PostgreSQL store costs over plain psycopg doing the same work, in one run.

    .venv/bin/python benchmarks/runtime_postgres.py [--dsn DSN] [--repeat N]
                                                     [--synchronous-commit on|off]

The DSN defaults to $ESGEN_TEST_POSTGRES_DSN, else postgresql://postgres@127.0.0.1:5432/postgres.
Everything happens in a schema of random name, dropped at the end. Each figure is the median
of several repetitions, the two sides interleaved so that noise hits both.

Appends: 1,000 streams x 10 events, one transaction per stream, split between 1, 4 or 8
writer processes (each with its own connection, started together). The plain side is what a
hand-written store would do: a table of the same shape (an identity position as primary key,
a unique (stream_id, stream_version) index, json columns) and, per stream, one transaction
with psycopg's executemany of the rows (pipelined: one round trip). It numbers events with
a sequence and so keeps no commit order; the store serialises appends for that (see
docs/postgres.md), which is what the 4 and 8 writer figures show. Both sides build the same
rows from the same payloads (json.dumps, a uuid4 per event, shared metadata, the time).

Reads: the 10,000 events in global order, pages of 1,000. The plain side selects the rows
(psycopg decoding the JSON, UUID and time columns); the store's side reads RecordedEvents and
decodes them into typed pydantic events, as a projection would.

The peer, the eventsourcing library (installed by `make bench`), does the same appends with
its PostgreSQL recorder (an application per writer process saving the same accounts) and
the same read through its notification log, printed beside plain psycopg measured
alongside it.

By default commits wait for the WAL flush on both sides, as in production; with
--synchronous-commit off (both sides' sessions) the disk drops out and what is left is the
CPU and the round trips. The machine's other load shows in the figures: compare ratios
within one run, and run it more than once.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import queue
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import _peer_eventsourcing as peer
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from esgen.runtime import Event, EventRegistry, ExpectedVersion, NewEvent, PostgresEventStore

STREAMS = 1000
EVENTS_PER_STREAM = 10
PAGE = 1000


class AccountOpened(Event):
    event_type = "AccountOpened"
    event_version = 1
    owner: str
    currency: str


class MoneyDeposited(Event):
    event_type = "MoneyDeposited"
    event_version = 1
    amount: int
    reference: str


REGISTRY = EventRegistry([AccountOpened, MoneyDeposited])

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
PLAIN_SELECT = (
    "SELECT position, stream_id, stream_version, event_type, event_version, data, event_id, "
    "metadata, recorded_at FROM {t} WHERE position > %s ORDER BY position LIMIT %s"
)


def payloads(streams: range) -> list[tuple[str, list[tuple[str, dict[str, object]]]]]:
    out = []
    for i in streams:
        events: list[tuple[str, dict[str, object]]] = [
            ("AccountOpened", {"owner": f"owner-{i}", "currency": "EUR"})
        ]
        events += [
            ("MoneyDeposited", {"amount": amount, "reference": f"ref-{amount}"})
            for amount in range(1, EVENTS_PER_STREAM)
        ]
        out.append((f"Account-acc-{i}", events))
    return out


# -- writer processes (module level, so "spawn" children can import them) -----------------


def store_writer(
    dsn: str, schema: str, notify: bool, streams: range, start: Barrier, out: Queue[Any]
) -> None:
    work = payloads(streams)
    dumps = json.dumps
    with PostgresEventStore(dsn, schema=schema, notify=notify) as store:
        store.head_position()  # connected before the clock starts
        start.wait()
        began = time.monotonic()
        for stream_id, events in work:
            own_id = str(uuid.uuid4())
            metadata = {"correlation_id": own_id, "causation_id": own_id}
            store.append(
                stream_id,
                [NewEvent(kind, 1, dumps(data), metadata) for kind, data in events],
                ExpectedVersion.NO_STREAM,
            )
        out.put((began, time.monotonic()))


def plain_writer(dsn: str, table: str, streams: range, start: Barrier, out: Queue[Any]) -> None:
    work = payloads(streams)
    dumps = json.dumps
    with psycopg.connect(dsn) as conn:
        insert = sql.SQL(PLAIN_INSERT).format(t=sql.Identifier(*table.split("."))).as_string()
        conn.execute("SELECT 1")
        conn.commit()
        start.wait()
        began = time.monotonic()
        with conn.cursor() as cur:
            for stream_id, events in work:
                own_id = str(uuid.uuid4())
                metadata = dumps({"correlation_id": own_id, "causation_id": own_id})
                recorded_at = datetime.now(UTC)
                rows = [
                    (stream_id, v, kind, 1, dumps(data), uuid.uuid4(), metadata, recorded_at)
                    for v, (kind, data) in enumerate(events, 1)
                ]
                with conn.transaction():
                    cur.executemany(insert, rows)
        out.put((began, time.monotonic()))


def run_writers(target: Callable[..., None], args: tuple[Any, ...], writers: int) -> float:
    """Elapsed seconds from the common start to the last writer's end."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(writers)
    out = context.Queue()
    share = STREAMS // writers
    processes = [
        context.Process(
            target=target,
            args=(
                *args,
                range(n * share, STREAMS if n == writers - 1 else (n + 1) * share),
                start,
                out,
            ),
        )
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    spans: list[tuple[float, float]] = []
    while len(spans) < writers:
        try:
            spans.append(out.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                for process in processes:
                    process.kill()
                raise SystemExit("a writer failed: see its traceback above") from None
    for process in processes:
        process.join()
    return max(end for _, end in spans) - min(began for began, _ in spans)


# -- the bench ----------------------------------------------------------------------------


class Bench:
    def __init__(self, dsn: str, schema: str, repeat: int) -> None:
        self.dsn = dsn
        self.schema = schema
        self.repeat = repeat
        self.counter = 0
        self.admin = psycopg.connect(dsn, autocommit=True)
        # The peer runs at the server's synchronous_commit: only beside a run that does too.
        self.peer = "synchronous_commit" not in dsn

    def fresh_store_schema(self) -> str:
        self.counter += 1
        name = f"{self.schema}_s{self.counter}"
        PostgresEventStore(self.dsn, schema=name).close()
        return name

    def fresh_plain_table(self) -> str:
        self.counter += 1
        name = f"plain_{self.counter}"
        self.admin.execute(
            sql.SQL(PLAIN_TABLE).format(t=sql.Identifier(self.schema, name)).as_string()
        )
        return f"{self.schema}.{name}"

    def drop(self, name: str) -> None:
        if "." in name:
            self.admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(*name.split("."))))
        else:
            self.admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    def report(
        self, label: str, ours: float, plain: float | None, target: str, events: int
    ) -> None:
        rate = f"{events / ours:9,.0f}/s"
        plain_text = f"{plain * 1000:9.1f} ms {events / plain:9,.0f}/s" if plain else " " * 23
        ratio = f"{ours / plain:5.2f}x" if plain else "      "
        print(
            f"{label:44s} {ours * 1000:9.1f} ms {rate} {plain_text} {ratio}  {target}", flush=True
        )


def median_pair(
    repeat: int, ours: Callable[[], float], plain: Callable[[], float] | None
) -> tuple[float, float | None]:
    mine, theirs = [], []
    for _ in range(repeat):
        mine.append(ours())
        if plain is not None:
            theirs.append(plain())
    return statistics.median(mine), (statistics.median(theirs) if theirs else None)


def append_once(bench: Bench, writers: int, notify: bool = True) -> float:
    schema = bench.fresh_store_schema()
    try:
        return run_writers(store_writer, (bench.dsn, schema, notify), writers)
    finally:
        bench.drop(schema)


def plain_append_once(bench: Bench, writers: int) -> float:
    table = bench.fresh_plain_table()
    try:
        return run_writers(plain_writer, (bench.dsn, table), writers)
    finally:
        bench.drop(table)


def peer_append_once(bench: Bench, writers: int) -> float:
    schema = f"{bench.schema}_p{bench.counter}"
    bench.counter += 1
    bench.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        peer.postgres_tables(bench.dsn, schema)
        return run_writers(peer.postgres_writer, (bench.dsn, schema), writers)
    finally:
        bench.drop(schema)


def scenario_appends(bench: Bench) -> None:
    total = STREAMS * EVENTS_PER_STREAM
    ours: dict[int, float] = {}
    plain: dict[int, float] = {}
    for writers in (1, 4, 8):
        mine, theirs = median_pair(
            bench.repeat,
            functools.partial(append_once, bench, writers),
            functools.partial(plain_append_once, bench, writers),
        )
        assert theirs is not None
        ours[writers], plain[writers] = mine, theirs
        target = "target <= 1.2x" if writers == 1 else "target <= 1.3x"
        label = f"append {STREAMS:,} streams x {EVENTS_PER_STREAM}, {writers} writer(s)"
        bench.report(label, ours[writers], plain[writers], target, total)
        if peer.available() and bench.peer:
            mine, theirs = median_pair(
                bench.repeat,
                functools.partial(peer_append_once, bench, writers),
                functools.partial(plain_append_once, bench, writers),
            )
            assert theirs is not None
            label = f"  eventsourcing {peer.version()}, {writers} writer(s) (peer)"
            bench.report(label, mine, theirs, "(peer, beside plain)", total)
    quiet, _ = median_pair(bench.repeat, lambda: append_once(bench, 1, notify=False), None)
    bench.report("  1 writer, notify=False (cost of NOTIFY)", quiet, None, "(info)", total)
    for name, side in (("esgen", ours), ("plain psycopg", plain)):
        gains = ", ".join(f"{w} writers {side[1] / side[w]:.2f}x" for w in (4, 8))
        print(f"  {name} throughput vs 1 writer: {gains}", flush=True)


def scenario_read_all(bench: Bench) -> None:
    total = STREAMS * EVENTS_PER_STREAM
    schema = bench.fresh_store_schema()
    table = bench.fresh_plain_table()
    try:
        run_writers(store_writer, (bench.dsn, schema, True), 1)
        bench.admin.execute(
            sql.SQL(
                "INSERT INTO {} (stream_id, stream_version, event_type, event_version, data, "
                "event_id, metadata, recorded_at) SELECT stream_id, stream_version, event_type, "
                "event_version, data, event_id, metadata, recorded_at FROM {}.esgen_events "
                "ORDER BY position"
            ).format(sql.Identifier(*table.split(".")), sql.Identifier(schema))
        )
        store = PostgresEventStore(bench.dsn, schema=schema)
        plain = psycopg.connect(bench.dsn, autocommit=True)
        select = sql.SQL(PLAIN_SELECT).format(t=sql.Identifier(*table.split("."))).as_string()

        def ours(decode: bool = True) -> float:
            started = time.perf_counter()
            count = after = 0
            while True:
                page = store.read_all(after, PAGE)
                count += len(REGISTRY.decode_all(page)) if decode else len(page)
                if len(page) < PAGE:
                    break
                after = page[-1].position
            assert count == total
            return time.perf_counter() - started

        def theirs() -> float:
            started = time.perf_counter()
            count = after = 0
            while True:
                rows = plain.execute(select, (after, PAGE)).fetchall()
                count += len(rows)
                if len(rows) < PAGE:
                    break
                after = rows[-1][0]
            assert count == total
            return time.perf_counter() - started

        label = f"read all {total:,} events, pages of {PAGE}"
        bench.report(
            f"{label}, typed", *median_pair(bench.repeat * 3, ours, theirs), "target <= 2x", total
        )
        raw = median_pair(bench.repeat * 3, lambda: ours(decode=False), theirs)
        bench.report("  as RecordedEvents (no pydantic)", *raw, "(info)", total)
        if peer.available() and bench.peer:
            peer_schema = f"{schema}_peer"
            bench.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(peer_schema)))
            try:
                peer.postgres_tables(bench.dsn, peer_schema)
                run_writers(peer.postgres_writer, (bench.dsn, peer_schema), 1)
                read = peer.postgres_reader(bench.dsn, peer_schema)
                bench.report(
                    f"  eventsourcing {peer.version()}: the same read, decoded (peer)",
                    *median_pair(bench.repeat * 3, lambda: read(total, PAGE), theirs),
                    "(peer, beside plain)",
                    total,
                )
            finally:
                bench.drop(peer_schema)
        store.close()
        plain.close()
    finally:
        bench.drop(schema)
        bench.drop(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("ESGEN_TEST_POSTGRES_DSN")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (median)")
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="on")
    args = parser.parse_args()
    if args.synchronous_commit == "off":
        args.dsn = make_conninfo(args.dsn, options="-c synchronous_commit=off")
    schema = f"esgen_bench_{uuid.uuid4().hex[:8]}"
    bench = Bench(args.dsn, schema, args.repeat)
    settings = bench.admin.execute(
        "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
    ).fetchone()
    assert settings is not None
    print(
        f"python {sys.version.split()[0]}, psycopg {psycopg.__version__}, PostgreSQL "
        f"{settings[0]}, synchronous_commit={settings[1]}, {os.cpu_count()} CPUs, "
        f"median of {args.repeat}+ runs\n"
    )
    print(f"{'':44s} {'esgen':>22s} {'plain psycopg':>23s} {'ratio':>6s}")
    bench.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        scenario_appends(bench)
        scenario_read_all(bench)
    finally:
        bench.drop(schema)
        bench.admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
