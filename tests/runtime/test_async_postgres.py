"""AsyncPostgresEventStore: the event store contract through BlockingEventStore, then what only
asyncio code sees: many tasks at once on one pool, the global order under them, live
wake-ups, a server that is not there. Needs a server: see postgres_env.py."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from esgen.runtime import (
    AsyncPostgresEventStore,
    BackendError,
    BackendUnavailable,
    Clock,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    NewEvent,
    PostgresEventStore,
    ReadOnlyStore,
    Snapshot,
    StreamAppend,
)
from esgen.runtime.testing import BlockingEventStore, EventStoreContract

from .postgres_env import drop_schema, new_schema, require_postgres

DSN = require_postgres()


async def _open(schema: str, clock: Clock | None = None) -> AsyncPostgresEventStore:
    if clock is None:
        return await AsyncPostgresEventStore.open(DSN, schema=schema, pool_timeout=120)
    return await AsyncPostgresEventStore.open(DSN, schema=schema, clock=clock)


def _blocking(schema: str) -> BlockingEventStore:
    return BlockingEventStore(functools.partial(_open, schema))


class TestAsyncPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _own_schemas(self) -> Iterator[None]:
        self.schemas: list[str] = []
        yield
        for schema in self.schemas:
            drop_schema(DSN, schema)

    def _schema(self) -> str:
        self.schemas.append(new_schema())
        return self.schemas[-1]

    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return BlockingEventStore(functools.partial(_open, self._schema(), clock))

    def store_factory(self, tmp_path: Path) -> functools.partial[BlockingEventStore]:
        return functools.partial(_blocking, self._schema())


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(DSN, name)


def _event(n: int) -> NewEvent:
    return NewEvent("Thing", 1, json.dumps({"n": n}))


def test_fifty_tasks_append_in_one_gap_free_order(schema: str) -> None:
    async def main() -> tuple[list[int], list[str]]:
        async with await AsyncPostgresEventStore.open(
            DSN, schema=schema, max_connections=8
        ) as store:
            results = await asyncio.gather(
                *(
                    store.append(f"s-{n}", [_event(n), _event(n)], ExpectedVersion.NO_STREAM)
                    for n in range(50)
                )
            )
            records = [r async for r in store.iter_all(page_size=17)]
            ends = sorted(r.position or 0 for r in results)
            assert [r.position for r in records] == list(range(1, 101))
            return ends, [r.stream_id for r in records]

    ends, streams = asyncio.run(main())
    assert ends == list(range(2, 101, 2))  # each append's two events are side by side
    assert all(streams[i] == streams[i + 1] for i in range(0, 100, 2))


def test_many_tasks_on_one_stream_lose_no_update(schema: str) -> None:
    # Read the version, append after it, retry on a conflict: exactly one task wins each
    # version, and every task's event lands once.
    async def main() -> list[int]:
        async with await AsyncPostgresEventStore.open(
            DSN, schema=schema, max_connections=6
        ) as store:
            conflicts = 0

            async def add(n: int) -> None:
                nonlocal conflicts
                while True:
                    version = await store.stream_version("counter")
                    try:
                        await store.append("counter", [_event(n)], version)
                        return
                    except ConcurrencyError:
                        conflicts += 1

            await asyncio.gather(*(add(n) for n in range(30)))
            records = await store.read_stream("counter")
            assert [r.stream_version for r in records] == list(range(1, 31))
            return sorted(json.loads(r.data)["n"] for r in records)

    assert asyncio.run(main()) == list(range(30))


def test_a_unit_of_work_and_a_snapshot(schema: str) -> None:
    async def main() -> None:
        async with await AsyncPostgresEventStore.open(DSN, schema=schema) as store:
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
            with pytest.raises(ConcurrencyError):
                await store.append_streams(
                    [StreamAppend("a", [_event(4)], 2), StreamAppend("b", [_event(5)], 0)]
                )
            assert await store.head_position() == 3  # the conflict wrote nothing
            snapshot = Snapshot("a", 3, "f", '{"n": 4}', _now())
            await store.append("a", [_event(4)], 2, snapshot=snapshot)
            assert await store.load_snapshot("a") == snapshot
            assert await store.read_stream_data("a", from_version=3) == [
                (3, "Thing", 1, '{"n": 4}')
            ]

    asyncio.run(main())


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_waiter_is_woken_by_an_append_in_another_process_store(schema: str) -> None:
    # The notification of a commit made by a synchronous store elsewhere wakes an
    # asynchronous waiter at once, long before its poll interval.
    async def main() -> tuple[bool, float]:
        async with await AsyncPostgresEventStore.open(
            DSN, schema=schema, poll_interval=3600
        ) as store:
            assert not await store.wait_for_events(0, timeout=0.2)  # listening by now

            def append_elsewhere() -> None:
                time.sleep(0.1)
                with PostgresEventStore(DSN, schema=schema) as other:
                    other.append("s", [_event(1)], ExpectedVersion.NO_STREAM)

            writer = asyncio.create_task(asyncio.to_thread(append_elsewhere))
            started = time.monotonic()
            woken = await store.wait_for_events(0, timeout=60)
            waited = time.monotonic() - started
            await writer
            return woken, waited

    woken, waited = asyncio.run(main())
    assert woken and waited < 30  # woken by NOTIFY, not by a poll (3,600 s) or the timeout


def test_waiting_leaves_the_loop_free(schema: str) -> None:
    async def main() -> int:
        async with await AsyncPostgresEventStore.open(DSN, schema=schema) as store:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.005)

            ticker = asyncio.create_task(tick())
            waiters = [store.wait_for_events(0, timeout=0.3) for _ in range(20)]
            assert await asyncio.gather(*waiters) == [False] * 20
            ticker.cancel()
            return ticks

    assert asyncio.run(main()) >= 20  # about 60 at 5 ms a tick


def test_a_server_that_is_not_there_is_reported_within_the_connect_timeout() -> None:
    async def main() -> None:
        await AsyncPostgresEventStore.open("postgresql://esgen@127.0.0.1:1/none", connect_timeout=2)

    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        asyncio.run(main())
    assert time.monotonic() - started < 30


def test_a_read_only_store_refuses_writes(schema: str) -> None:
    PostgresEventStore(DSN, schema=schema).close()

    async def main() -> None:
        async with await AsyncPostgresEventStore.open(DSN, schema=schema, read_only=True) as store:
            assert store.read_only
            with pytest.raises(ReadOnlyStore):
                await store.append("s", [_event(1)], ExpectedVersion.NO_STREAM)
            assert await store.head_position() == 0

    asyncio.run(main())


def test_a_closed_store_refuses_calls(schema: str) -> None:
    async def main() -> None:
        store = await AsyncPostgresEventStore.open(DSN, schema=schema)
        await store.append("s", [_event(1)], ExpectedVersion.NO_STREAM)
        await store.aclose()
        await store.aclose()
        with pytest.raises(BackendError, match="closed"):
            await store.head_position()

    asyncio.run(main())
