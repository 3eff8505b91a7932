"""AsyncPostgresEventStore: the event store contract through BlockingEventStore, then what only
asyncio code sees: many tasks at once on one pool, the global order under them, live
wake-ups, a server that is not there. Needs a server: see postgres_env.py."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
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

from .postgres_env import Proxy, connect, drop_schema, new_schema, require_postgres

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


def test_a_server_that_cannot_be_reached_is_reported_within_the_connect_timeout() -> None:
    with Proxy(DSN) as proxy:
        proxy.black_hole()  # accepts, never answers: the client waits for its timeout

        async def main() -> None:
            await AsyncPostgresEventStore.open(proxy.dsn, connect_timeout=2)

        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="cannot connect"):
            asyncio.run(main())
        waited = time.monotonic() - started
    assert 1.5 < waited < 15  # libpq's timeout of 2 s, not a hang


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


# -- what the review of the first version found ---------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_read_only_store_refuses_before_building_anything(schema: str, kind: str) -> None:
    # The refusal comes before the clock is asked and before the snapshot or the times are
    # checked, as on SQLite: a read-only store says it is read-only, not what else is wrong.
    PostgresEventStore(DSN, schema=schema).close()
    calls = 0

    def naive_clock() -> datetime:
        nonlocal calls
        calls += 1
        return datetime(2026, 1, 1)  # no time zone: appending would refuse it

    too_far = Snapshot("s", 9, "f", "{}", _now())
    naive = Snapshot("s", 1, "f", "{}", datetime(2026, 1, 1))
    appends = [StreamAppend("s", [_event(1)], ExpectedVersion.NO_STREAM)]
    calls_made = [
        lambda store: store.append("s", [_event(1)], 0, snapshot=too_far),
        lambda store: store.append("s", [_event(1)], ExpectedVersion.NO_STREAM),
        lambda store: store.append_streams(appends),
        lambda store: store.save_snapshot(naive),
    ]
    if kind == "sync":
        with PostgresEventStore(DSN, schema=schema, read_only=True, clock=naive_clock) as store:
            for call in calls_made:
                with pytest.raises(ReadOnlyStore):
                    call(store)
    else:

        async def main() -> None:
            async with await AsyncPostgresEventStore.open(
                DSN, schema=schema, read_only=True, clock=naive_clock
            ) as store:
                for call in calls_made:
                    with pytest.raises(ReadOnlyStore):
                        await call(store)

        asyncio.run(main())
    assert calls == 0


def _threads_of(schema: str) -> list[str]:
    return [t.name for t in threading.enumerate() if schema in t.name]


def test_a_cancelled_close_is_finished_by_the_next_one(schema: str) -> None:
    async def main() -> None:
        store = await AsyncPostgresEventStore.open(DSN, schema=schema)
        assert not await store.wait_for_events(0, timeout=0.05)  # the LISTEN thread runs
        assert _threads_of(schema)
        closing = asyncio.create_task(store.aclose())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await asyncio.gather(store.aclose(), store.aclose())  # both wait for the end
        assert store.sync_store._closed
        with pytest.raises(BackendError, match="closed"):
            await store.head_position()

    asyncio.run(main())
    assert _wait_until(lambda: not _threads_of(schema))


def test_closing_waits_for_a_call_under_way(schema: str) -> None:
    PostgresEventStore(DSN, schema=schema).close()

    async def main() -> tuple[int, float]:
        store = await AsyncPostgresEventStore.open(DSN, schema=schema)
        with connect(DSN) as blocker:
            blocker.execute("BEGIN")
            blocker.execute(f'LOCK TABLE "{schema}".esgen_events IN ACCESS EXCLUSIVE MODE')
            reading = asyncio.create_task(store.head_position())
            await asyncio.sleep(0.2)  # the read waits for the lock
            closing = asyncio.create_task(store.aclose())
            await asyncio.sleep(0.3)
            assert not closing.done()  # waiting for the read
            blocker.execute("ROLLBACK")
        return await reading, await asyncio.wait_for(closing, 10)

    head, _ = asyncio.run(main())
    assert head == 0  # the read under way finished, with its answer


def test_when_the_network_is_gone_every_caller_hears_of_it_at_once(schema: str) -> None:
    # The pool gives no connection; each failing call says why after one look at the
    # server shared by all, not one look each in turn.
    PostgresEventStore(DSN, schema=schema).close()
    with Proxy(DSN) as proxy:

        async def main() -> list[float]:
            async with await AsyncPostgresEventStore.open(
                proxy.dsn,
                schema=schema,
                connect_timeout=2,
                pool_timeout=1,
                min_connections=0,
                max_connections=2,
                notify=False,
            ) as store:
                await store.head_position()
                proxy.black_hole()
                started = time.monotonic()

                async def fail() -> float:
                    with pytest.raises(BackendUnavailable):
                        await store.head_position()
                    return time.monotonic() - started

                return list(await asyncio.gather(*(fail() for _ in range(24))))

        times = asyncio.run(main())
    assert max(times) - min(times) < 1.5, times  # one connect timeout for all, not 24


def test_bad_pool_sizes_are_refused_before_anything_is_created() -> None:
    schema = new_schema()

    async def main(low: int, high: int) -> None:
        await AsyncPostgresEventStore.open(
            DSN, schema=schema, min_connections=low, max_connections=high
        )

    try:
        for low, high in ((5, 2), (-1, 2), (0, 0)):
            with pytest.raises(ValueError, match="min_connections <= max_connections"):
                asyncio.run(main(low, high))
        with connect(DSN) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
        assert found is None
    finally:
        drop_schema(DSN, schema)


def test_a_cancelled_open_leaves_no_thread_behind() -> None:
    schema = new_schema()

    async def main() -> None:
        opening = asyncio.create_task(AsyncPostgresEventStore.open(DSN, schema=schema))
        await asyncio.sleep(0)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening

    try:
        asyncio.run(main())
        # The set-up runs to its end in its thread; what it built is then closed.
        assert _wait_until(lambda: not _threads_of(schema)), _threads_of(schema)
    finally:
        drop_schema(DSN, schema)


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
