"""The global order subscribers rely on, under real concurrency: 8 writer processes append
thousands of events in transactions of very different sizes (some held open a while before
they commit), while a reader process tails the store by position. The reader must see every
committed event exactly once, positions without a hole, and each stream in version order.

A store that numbered events when they are inserted rather than in commit order would fail
this: the reader would pass over a position whose transaction had not committed yet, and
never come back for it.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as EventFlag
from typing import Any

import pytest

from esgen.runtime import ConcurrencyError, NewEvent, PostgresEventStore

from .postgres_env import drop_schema, new_schema, require_postgres

DSN = require_postgres()

WRITERS = 8
APPENDS_PER_WRITER = 50
# Mostly small appends, some large ones that keep their transaction busy for longer.
SIZES = (1, 1, 2, 3, 5, 8, 13, 40, 100)


def writer_process(
    dsn: str, schema: str, writer: str, start: Barrier, results: Queue[tuple[Any, ...]]
) -> None:
    rng = random.Random(writer)
    written = blocks = 0
    try:
        with PostgresEventStore(dsn, schema=schema, max_connections=2) as store:
            start.wait(timeout=120)
            for _ in range(APPENDS_PER_WRITER):
                size = rng.choice(SIZES)
                shared = rng.random() < 0.3
                stream = f"shared-{rng.randrange(2)}" if shared else f"{writer}-{rng.randrange(3)}"
                events = [
                    NewEvent("Counted", 1, json.dumps({"writer": writer, "seq": written + i}))
                    for i in range(size)
                ]
                held = rng.random() < 0.25
                while True:
                    version = store.stream_version(stream)
                    try:
                        if held:
                            # Commits well after its append: later appends must wait for it
                            # rather than take later positions and commit first.
                            with store.transaction():
                                store.append(stream, events, version)
                                time.sleep(rng.random() / 100)
                        else:
                            store.append(stream, events, version)
                        break
                    except ConcurrencyError:
                        continue
                written += size
                blocks += held
        results.put((writer, written, blocks, None))
    except Exception as exc:
        results.put((writer, written, blocks, repr(exc)))


def reader_process(
    dsn: str, schema: str, start: Barrier, done: EventFlag, results: Queue[tuple[Any, ...]]
) -> None:
    seen: list[tuple[int, str, int, str, int]] = []
    pages_while_writing = 0
    try:
        with PostgresEventStore(dsn, schema=schema) as store:
            start.wait(timeout=120)
            after = 0
            while True:
                finished = done.is_set()  # read before the page: all writes are in by then
                page = store.read_all(after, 500)
                for record in page:
                    data = json.loads(record.data)
                    seen.append(
                        (
                            record.position,
                            record.stream_id,
                            record.stream_version,
                            data["writer"],
                            data["seq"],
                        )
                    )
                if page:
                    after = page[-1].position
                    pages_while_writing += not finished
                elif finished:
                    break
                else:
                    store.wait_for_events(after, timeout=1.0)
        results.put(("reader", seen, pages_while_writing, None))
    except Exception as exc:
        results.put(("reader", seen, pages_while_writing, repr(exc)))


@pytest.fixture
def dsn() -> str:
    return DSN


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    name = new_schema()
    PostgresEventStore(dsn, schema=name).close()
    yield name
    drop_schema(dsn, name)


def test_a_tailing_reader_sees_every_event_once_in_commit_order(dsn: str, schema: str) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Barrier(WRITERS + 1)
    done = context.Event()
    reader = context.Process(target=reader_process, args=(dsn, schema, start, done, results))
    writers = [
        context.Process(target=writer_process, args=(dsn, schema, f"w{n}", start, results))
        for n in range(WRITERS)
    ]
    reader.start()
    for process in writers:
        process.start()
    outcomes: dict[str, tuple[Any, ...]] = {}
    try:
        deadline = time.monotonic() + 600
        while len(outcomes) < WRITERS and time.monotonic() < deadline:
            try:
                outcome = results.get(timeout=1)
            except queue.Empty:
                if not any(p.is_alive() for p in writers) and results.empty():
                    break
                continue
            outcomes[outcome[0]] = outcome
        done.set()
        reader_outcome = results.get(timeout=600)
    finally:
        for process in [*writers, reader]:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()

    assert [o[-1] for o in outcomes.values()] == [None] * WRITERS, outcomes
    _, seen, pages_while_writing, error = reader_outcome
    assert error is None, error
    written = {writer: count for writer, count, _, _ in outcomes.values()}
    assert sum(written.values()) >= 1000
    assert sum(blocks for _, _, blocks, _ in outcomes.values()) > 0
    assert pages_while_writing >= 2  # it really tailed, rather than read once at the end

    assert Counter((w, s) for *_, w, s in seen) == Counter(
        (w, s) for w, count in written.items() for s in range(count)
    )  # every event, once: nothing skipped
    positions = [position for position, *_ in seen]
    assert positions == list(range(1, len(seen) + 1))  # in order, no hole
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version, _, _ in seen:
        versions[stream].append(version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())

    with PostgresEventStore(dsn, schema=schema) as store:
        stored = [
            (r.position, r.stream_id, r.stream_version, *json.loads(r.data).values())
            for r in store.iter_all()
        ]
    assert stored == seen
