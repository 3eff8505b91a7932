"""How long a tailing reader takes to see an event once its append commits, on PostgreSQL,
beside plain psycopg doing the same, in one run.

    .venv/bin/python benchmarks/tailing_postgres.py [--dsn DSN] [--events N] [--repeat N]

A writer (this process) appends one event at a time, a few milliseconds apart, and notes
the time each append returned. A reader (a child process) waits for new events and reads
them, noting when each arrived. Latency is arrival minus commit, on the machine's monotonic
clock, which both processes share; the figure is the median over every event.

The store's reader calls `wait_for_events(after, ...)` then `read_all(after)`, as a
projection runner does. The plain reader is what a hand-written one would do: LISTEN on a
channel its writer notifies in the same transaction, and on each notification one SELECT
of the rows after the last seen. The peer, the eventsourcing library (installed by `make
bench`), follows its application with its own subscription. Everything happens in a schema
of random name, dropped at the end. The DSN defaults to $ESGEN_TEST_POSTGRES_DSN, else the
local server.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as Signal
from typing import Any

import _peer_eventsourcing as peer
import psycopg
from psycopg import sql

from esgen.runtime import ExpectedVersion, NewEvent, PostgresEventStore

GAP = 0.003  # seconds between appends: one event in flight at a time

PLAIN_TABLE = """
CREATE TABLE {t} (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id text NOT NULL,
    stream_version bigint NOT NULL, event_type text NOT NULL, event_version integer NOT NULL,
    data json NOT NULL, event_id uuid NOT NULL, metadata json NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, stream_version)
)"""


def _metadata() -> dict[str, str]:
    own = str(uuid.uuid4())
    return {"correlation_id": own, "causation_id": own}


# -- readers (module level, so "spawn" children can import them) --------------------------


def store_reader(dsn: str, schema: str, count: int, ready: Signal, out: Queue[Any]) -> None:
    seen: dict[int, int] = {}
    with PostgresEventStore(dsn, schema=schema) as store:
        after = store.head_position()
        store.wait_for_events(after, 0.01)  # the listener started before the clock
        ready.set()
        while len(seen) < count:
            if not store.wait_for_events(after, 10.0):
                break
            page = store.read_all(after)
            arrived = time.monotonic_ns()
            for event in page:
                seen[event.position] = arrived
            after = page[-1].position
    out.put(seen)


def plain_reader(dsn: str, table: str, count: int, ready: Signal, out: Queue[Any]) -> None:
    seen: dict[int, int] = {}
    name = sql.Identifier(*table.split("."))
    select = sql.SQL(
        "SELECT position, stream_id, stream_version, event_type, event_version, data, "
        "event_id, metadata, recorded_at FROM {} WHERE position > %s ORDER BY position"
    ).format(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(_channel(table))))
        # A notification that arrives during the SELECT never reaches notifies() (psycopg
        # drops it), so the wait is short and a read follows a timeout too: such a miss
        # costs one event a late arrival, which the median passes over.
        after = 0
        ready.set()
        while len(seen) < count:
            for _ in conn.notifies(timeout=0.05, stop_after=1):
                pass
            rows = conn.execute(select, (after,)).fetchall()
            arrived = time.monotonic_ns()
            for row in rows:
                seen[row[0]] = arrived
            if rows:
                after = rows[-1][0]
    out.put(seen)


def _channel(table: str) -> str:
    return "plain_" + table.replace(".", "_")


# -- writers (this process) ---------------------------------------------------------------


def store_writes(dsn: str, schema: str, count: int) -> dict[int, int]:
    committed: dict[int, int] = {}
    data = json.dumps({"amount": 1, "reference": "ref"})
    with PostgresEventStore(dsn, schema=schema) as store:
        for n in range(count):
            event = NewEvent("MoneyDeposited", 1, data, _metadata())
            result = store.append(f"Account-{n}", [event], ExpectedVersion.NO_STREAM)
            committed[result.position or 0] = time.monotonic_ns()
            time.sleep(GAP)
    return committed


def plain_writes(dsn: str, table: str, count: int) -> dict[int, int]:
    committed: dict[int, int] = {}
    data = json.dumps({"amount": 1, "reference": "ref"})
    insert = sql.SQL(
        "INSERT INTO {} (stream_id, stream_version, event_type, event_version, data, "
        "event_id, metadata) VALUES (%s, 1, 'MoneyDeposited', 1, %s, %s, %s) "
        "RETURNING position"
    ).format(sql.Identifier(*table.split(".")))
    notify = sql.SQL("SELECT pg_notify({}, %s)").format(sql.Literal(_channel(table)))
    with psycopg.connect(dsn) as conn:
        for n in range(count):
            with conn.transaction():
                row = conn.execute(
                    insert, (f"Account-{n}", data, uuid.uuid4(), json.dumps(_metadata()))
                ).fetchone()
                assert row is not None
                conn.execute(notify, (str(row[0]),))
            committed[row[0]] = time.monotonic_ns()
            time.sleep(GAP)
    return committed


def peer_reader(dsn: str, schema: str, count: int, ready: Signal, out: Queue[Any]) -> None:
    """The eventsourcing library's own way to follow an application: a subscription
    (LISTEN/NOTIFY, and a thread that pulls), each notification decoded."""
    app = peer.postgres_app(dsn, schema)
    seen: dict[int, int] = {}
    with app.recorder.subscribe(gt=0) as subscription:
        ready.set()
        for notification in subscription:
            app.mapper.to_domain_event(notification)
            seen[notification.id] = time.monotonic_ns()
            if len(seen) >= count:
                break
    app.close()
    out.put(seen)


def peer_writes(dsn: str, schema: str, count: int) -> dict[int, int]:
    committed: dict[int, int] = {}
    app = peer.postgres_app(dsn, schema)
    for n in range(count):
        recordings = app.save(peer.Account(owner=f"owner-{n}", currency="EUR"))
        committed[recordings[-1].notification.id] = time.monotonic_ns()
        time.sleep(GAP)
    app.close()
    return committed


def one_run(target: Any, writes: Any, dsn: str, where: str, count: int) -> float:
    """The median latency in milliseconds of `count` events from commit to the reader."""
    context = multiprocessing.get_context("spawn")
    ready, out = context.Event(), context.Queue()
    reader = context.Process(target=target, args=(dsn, where, count, ready, out))
    reader.start()
    if not ready.wait(30):
        reader.kill()
        raise SystemExit("the reader did not start: see its traceback above")
    time.sleep(0.5)  # a reader's LISTEN may be a thread's: under way before the first commit
    committed = writes(dsn, where, count)
    seen = out.get(timeout=30)
    reader.join()
    assert sorted(seen) == sorted(committed), "the reader missed events"
    return statistics.median(seen[p] - committed[p] for p in committed) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("ESGEN_TEST_POSTGRES_DSN")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--events", type=int, default=300, help="events per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per side (median)")
    args = parser.parse_args()
    schema = f"esgen_tail_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.dsn, autocommit=True)
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    print(
        f"python {sys.version.split()[0]}, psycopg {psycopg.__version__}, {os.cpu_count()} "
        f"CPUs; {args.events} events a run, {GAP * 1000:.0f} ms apart; median of "
        f"{args.repeat} runs' medians\n"
    )
    ours, theirs, peers = [], [], []
    try:
        for run in range(args.repeat):
            if peer.available():
                peer_schema = f"{schema}_p{run}"
                admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(peer_schema)))
                try:
                    peer.postgres_tables(args.dsn, peer_schema)
                    peers.append(
                        one_run(peer_reader, peer_writes, args.dsn, peer_schema, args.events)
                    )
                finally:
                    admin.execute(
                        sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(peer_schema))
                    )
            store_schema = f"{schema}_s{run}"
            PostgresEventStore(args.dsn, schema=store_schema).close()
            table = f"{schema}.plain_{run}"
            admin.execute(sql.SQL(PLAIN_TABLE).format(t=sql.Identifier(schema, f"plain_{run}")))
            try:
                ours.append(
                    one_run(store_reader, store_writes, args.dsn, store_schema, args.events)
                )
                theirs.append(one_run(plain_reader, plain_writes, args.dsn, table, args.events))
            finally:
                admin.execute(
                    sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(store_schema))
                )
    finally:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        admin.close()
    mine, plain = statistics.median(ours), statistics.median(theirs)
    print(f"{'':40s} {'esgen':>10s} {'plain psycopg':>14s} {'ratio':>6s}")
    print(
        f"{'tailing reader, commit -> seen':40s} {mine:7.3f} ms {plain:11.3f} ms "
        f"{mine / plain:5.2f}x  target <= 1.2x"
    )
    if peers:
        theirs_peer = statistics.median(peers)
        label = f"  eventsourcing {peer.version()} subscription (peer)"
        print(
            f"{label:40s} {theirs_peer:7.3f} ms {plain:11.3f} ms "
            f"{theirs_peer / plain:5.2f}x  (peer, beside plain)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
