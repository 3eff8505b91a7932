"""AsyncSQLiteEventStore: the event store contract through BlockingEventStore, then what only
asyncio code sees (the loop stays free, many tasks at once, closing, cancelling)."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from pathlib import Path

import pytest

from esgen.runtime import (
    AsyncSQLiteEventStore,
    BackendError,
    Clock,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    NewEvent,
    SQLiteEventStore,
    StreamAppend,
)
from esgen.runtime.testing import BlockingEventStore, EventStoreContract


async def _open(path: Path, clock: Clock | None = None) -> AsyncSQLiteEventStore:
    if clock is None:
        return await AsyncSQLiteEventStore.open(path, busy_timeout=30.0)
    return await AsyncSQLiteEventStore.open(path, clock=clock)


def _blocking(path: Path) -> BlockingEventStore:
    return BlockingEventStore(functools.partial(_open, path))


class TestAsyncSQLiteEventStore(EventStoreContract):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return BlockingEventStore(functools.partial(_open, tmp_path / "events.db", clock))

    def store_factory(self, tmp_path: Path) -> functools.partial[BlockingEventStore]:
        return functools.partial(_blocking, tmp_path / "shared.db")


def _event(n: int) -> NewEvent:
    return NewEvent("Thing", 1, json.dumps({"n": n}))


def test_the_loop_stays_free_while_the_file_is_busy(tmp_path: Path) -> None:
    # Appends that wait on SQLite's write lock (held by another connection) must leave the
    # loop running other tasks: a ticker counts while they wait.
    path = tmp_path / "events.db"
    holder = SQLiteEventStore(path)
    holder.append("s", [_event(0)], ExpectedVersion.NO_STREAM)

    async def main() -> tuple[int, list[int]]:
        async with await AsyncSQLiteEventStore.open(path) as store:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.005)

            ticker = asyncio.create_task(tick())
            conn = sqlite3.connect(path, isolation_level=None)  # another writer, holding
            conn.execute("BEGIN IMMEDIATE")  # SQLite's write lock
            appends = [
                asyncio.create_task(store.append(f"t-{n}", [_event(n)], 0)) for n in range(3)
            ]
            await asyncio.sleep(0.3)
            waiting_ticks = ticks
            conn.execute("COMMIT")
            conn.close()
            results = await asyncio.gather(*appends)
            ticker.cancel()
            return waiting_ticks, sorted(r.position or 0 for r in results)

    try:
        waiting_ticks, positions = asyncio.run(main())
    finally:
        holder.close()
    assert waiting_ticks >= 20  # about 60 at 5 ms a tick: the loop ran while they waited
    assert positions == [2, 3, 4]


def test_many_tasks_appending_to_one_stream_lose_nothing(tmp_path: Path) -> None:
    # Optimistic concurrency across tasks: each task reads the version and appends after
    # it, retrying on a conflict; every event lands once, in a gap-free stream.
    async def main() -> list[int]:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:

            async def add(n: int) -> None:
                while True:
                    version = await store.stream_version("counter")
                    try:
                        await store.append("counter", [_event(n)], version)
                        return
                    except ConcurrencyError:
                        await asyncio.sleep(0)

            await asyncio.gather(*(add(n) for n in range(40)))
            records = await store.read_stream("counter")
            assert [r.stream_version for r in records] == list(range(1, 41))
            return sorted(json.loads(r.data)["n"] for r in records)

    assert asyncio.run(main()) == list(range(40))


def test_a_unit_of_work_and_the_global_order(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:
            results = await store.append_streams(
                [
                    StreamAppend("a", [_event(1), _event(2)], ExpectedVersion.NO_STREAM),
                    StreamAppend("b", [_event(3)], ExpectedVersion.NO_STREAM),
                ]
            )
            assert [(r.stream_id, r.stream_version, r.position) for r in results] == [
                ("a", 2, 2),
                ("b", 1, 3),
            ]
            seen = [(r.stream_id, r.position) async for r in store.iter_all(page_size=2)]
            assert seen == [("a", 1), ("a", 2), ("b", 3)]
            assert await store.head_position() == 3

    asyncio.run(main())


def test_a_waiter_wakes_when_another_task_appends(tmp_path: Path) -> None:
    async def main() -> tuple[bool, float, bool]:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:

            async def append_soon() -> None:
                await asyncio.sleep(0.05)
                await store.append("s", [_event(1)], ExpectedVersion.NO_STREAM)

            started = time.monotonic()
            writer = asyncio.create_task(append_soon())
            woken = await store.wait_for_events(0, timeout=10)
            waited = time.monotonic() - started
            await writer
            timed_out = await store.wait_for_events(1, timeout=0.05)
            return woken, waited, timed_out

    woken, waited, timed_out = asyncio.run(main())
    assert woken and waited < 5  # woken by the append, long before the timeout
    assert not timed_out


def test_a_closed_store_refuses_calls_and_closing_twice_is_fine(tmp_path: Path) -> None:
    async def main() -> None:
        store = await AsyncSQLiteEventStore.open(tmp_path / "events.db")
        await store.append("s", [_event(1)], ExpectedVersion.NO_STREAM)
        await store.aclose()
        await store.aclose()
        with pytest.raises(BackendError, match="closed"):
            await store.head_position()

    asyncio.run(main())
    with SQLiteEventStore(tmp_path / "events.db") as again:  # written, and the file is free
        assert again.head_position() == 1


def test_a_cancelled_append_is_written_or_not_never_half(tmp_path: Path) -> None:
    # A worker thread cannot be stopped halfway: a cancelled append may still commit after
    # the cancel (whole, or not at all), as after a lost connection; the store stays
    # usable, and an append with the version read next lands once, after it.
    async def main() -> list[int]:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:
            task = asyncio.create_task(
                store.append("s", [_event(n) for n in range(50)], ExpectedVersion.NO_STREAM)
            )
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            while True:
                version = await store.stream_version("s")
                try:
                    await store.append("s", [_event(99)], version)
                    break
                except ConcurrencyError:  # the cancelled append committed meanwhile
                    continue
            return [json.loads(r.data)["n"] for r in await store.read_stream("s")]

    numbers = asyncio.run(main())
    assert numbers in ([*range(50), 99], [99])


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="wraps a SQLiteEventStore"):
        AsyncSQLiteEventStore("events.db")  # type: ignore[arg-type]

    async def main(threads: int) -> None:
        await AsyncSQLiteEventStore.open(tmp_path / "events.db", threads=threads)

    for threads in (0, -1):
        with pytest.raises(ValueError, match="threads must be an int >= 1"):
            asyncio.run(main(threads))
    assert not (tmp_path / "events.db").exists()  # refused before the file was made


def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    (tmp_path / "events.db").write_text("not a database")

    async def main() -> None:
        await AsyncSQLiteEventStore.open(tmp_path / "events.db")

    with pytest.raises(BackendError):
        asyncio.run(main())
    assert (tmp_path / "events.db").read_text() == "not a database"  # left as it was


def test_one_closing_serves_every_caller(tmp_path: Path) -> None:
    # A close waits for the calls under way; a second close, at once or after a cancelled
    # first one, waits for the same closing rather than returning early.
    path = tmp_path / "events.db"
    holder = sqlite3.connect(path, isolation_level=None)

    async def main() -> None:
        store = await AsyncSQLiteEventStore.open(path, busy_timeout=30.0)
        holder.execute("BEGIN IMMEDIATE")  # the append below waits for SQLite's lock
        appending = asyncio.create_task(store.append("s", [_event(1)], ExpectedVersion.NO_STREAM))
        await asyncio.sleep(0.1)
        first = asyncio.create_task(store.aclose())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(store.aclose())
        await asyncio.sleep(0.2)
        assert not second.done()  # the append under way is not finished
        holder.execute("COMMIT")
        await asyncio.gather(second, store.aclose())
        assert appending.done() and (await appending).position == 1
        with pytest.raises(BackendError, match="closed"):
            await store.head_position()

    try:
        asyncio.run(main())
    finally:
        holder.close()
