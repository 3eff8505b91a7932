"""`AsyncPostgresEventStore`: the PostgreSQL event store for asyncio code.

Every operation of the `AsyncEventStore` port runs on psycopg's asynchronous connections,
borrowed from a `psycopg_pool.AsyncConnectionPool`: the same statements, the same append
function and the same errors as `PostgresEventStore` (the statements and the reading of
their results are shared, in `_postgres_calls`), so the two may work on one schema side by
side, in one process or many.

What happens once, or rarely, is left to a `PostgresEventStore` the store keeps (opened
in a worker thread, with no pooled connection of its own until one is asked for): setting
the schema up, the LISTEN thread that wakes waiters, telling why no connection could be had,
and everything that has no asynchronous form yet (`sync_store`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from functools import partial
from itertools import starmap
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from esgen.runtime._async_ports import AsyncEventStore, AsyncSnapshotStore, open_in_thread
from esgen.runtime._errors import BackendError, EventStoreError, StreamNotFound
from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    StoredData,
    TimedStoredData,
    check_expected_version,
    validate_appends,
    validate_page_args,
    validate_snapshot,
    validate_wait_args,
)
from esgen.runtime._postgres import PostgresEventStore
from esgen.runtime._postgres_calls import (
    CONFIGURE,
    CONFIGURE_READ_ONLY,
    RECHECK_WHILE_LISTENING,
    AppendCall,
    append_call,
    append_results,
    append_streams_call,
    append_value_error,
    check_append,
    connection_lost,
    lost_append_note,
    pool_in_use,
    read_stream_query,
    reason,
    session_changed,
    settings,
    snapshot_params,
    stream_data_params,
    streams_text,
)
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    utc_now,
)
from esgen.runtime._text import check_stream_id

if TYPE_CHECKING:
    from esgen.runtime._personal import KeyWrapper

__all__ = ["AsyncPostgresEventStore"]

_Connection = psycopg.AsyncConnection[Any]
P = ParamSpec("P")
T = TypeVar("T")

# How long closing waits for calls under way, then for the pool's connections.
_CLOSE_WAIT = 5.0


class AsyncPostgresEventStore(AsyncEventStore, AsyncSnapshotStore):
    """Event store and snapshot store in one PostgreSQL schema, for asyncio code.

    Open one with `await AsyncPostgresEventStore.open(dsn, schema=...)`: the arguments are
    `PostgresEventStore`'s, and so is everything said there of the DSN, the schema, the
    pool, the timeouts, errors and `read_only`. Close it with `await store.aclose()` or
    `async with`.
    """

    def __init__(
        self,
        store: PostgresEventStore,
        pool: AsyncConnectionPool[_Connection],
    ) -> None:
        """Use `open`; this only puts an opened store and pool together."""
        self._store = store
        self._pool = pool
        self._sql = store._sql
        self.poll_interval = store.poll_interval
        # Calls holding a pooled connection, which closing waits for (up to _CLOSE_WAIT).
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing: asyncio.Task[None] | None = None
        # One look at the server at a time when the pool gives no connection: failures
        # at once share it, rather than each waiting its connect timeout in turn.
        self._diagnosis: asyncio.Task[tuple[str, bool]] | None = None

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str = "public",
        clock: Clock = utc_now,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 5.0,
        pool_timeout: float = 30.0,
        notify: bool = True,
        poll_interval: float = 1.0,
        read_only: bool = False,
        master_key: KeyWrapper | None = None,
        key_cache_seconds: float = 60.0,
    ) -> AsyncPostgresEventStore:
        # The arguments as given, before anything is created (the store underneath is
        # opened with no pooled connection of its own).
        settings(
            dsn,
            schema,
            min_connections,
            max_connections,
            connect_timeout,
            pool_timeout,
            poll_interval,
        )
        # Set-up (checks, schema, a direct connection within the connect timeout) is the
        # synchronous store's; its pool opens no connection until `sync_store` is used.
        store = await open_in_thread(
            partial(
                PostgresEventStore,
                dsn,
                schema=schema,
                clock=clock,
                min_connections=0,
                max_connections=max_connections,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
                notify=notify,
                poll_interval=poll_interval,
                read_only=read_only,
                master_key=master_key,
                key_cache_seconds=key_cache_seconds,
            ),
            PostgresEventStore.close,
        )
        try:
            pool: AsyncConnectionPool[_Connection] = AsyncConnectionPool(
                store._conninfo,
                kwargs={"autocommit": True, **store._connect_kwargs},
                min_size=min_connections,
                max_size=max_connections,
                open=False,
                configure=_configure_read_only if read_only else _configure,
                reset=_reset_read_only if read_only else _reset,
                timeout=pool_timeout,
                name=f"esgen-async-{schema}",
                num_workers=2,
            )
            await pool.open(wait=False)
        except BaseException:
            # Off the loop, and even if cancelled: its threads must not outlive it.
            threading.Thread(target=store.close, daemon=True).start()
            raise
        return cls(store, pool)

    def __repr__(self) -> str:
        return f"AsyncPostgresEventStore({self._store._where}, schema={self._store.schema!r})"

    @property
    def schema(self) -> str:
        return self._store.schema

    @property
    def read_only(self) -> bool:
        return self._store.read_only

    @property
    def sync_store(self) -> PostgresEventStore:
        """The synchronous store on the same schema, for what has no asynchronous form yet
        (`transaction()` for projections, inspection, personal data); calling it blocks
        the calling thread."""
        return self._store

    # -- connections and errors -------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        """A pooled connection; raises driver errors, which callers translate."""
        async with (
            self._call_under_way(),
            self._pool.connection(timeout=self._store._wait_for_pool()) as conn,
        ):
            yield conn

    @asynccontextmanager
    async def _call_under_way(self) -> AsyncIterator[None]:
        """Counts the call among those `aclose` waits for; refused once closing began."""
        if self._closing is not None:
            raise PoolClosed("the store is closing")  # translated as a closed store
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def run_sync(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)`, a synchronous call on `sync_store` (a read-model
        query, say), run in a worker thread: counted among the calls `aclose` waits for,
        and refused once the store is closing."""
        try:
            async with self._call_under_way():
                return await asyncio.to_thread(function, *args, **kwargs)
        except PoolClosed as exc:
            raise self._store._error("a call on the store", exc) from exc

    async def _error(self, what: str, exc: BaseException) -> EventStoreError:
        # The synchronous store's translation, with the same messages; for a pool that
        # gave no connection, the reason is looked for here, without blocking the loop.
        if isinstance(exc, PoolTimeout) and not self._store._closed:
            diagnosis = self._diagnosis
            if diagnosis is None or diagnosis.done():
                diagnosis = self._diagnosis = asyncio.ensure_future(self._why_no_connection())
            why = await asyncio.shield(diagnosis)
            return self._store._error(what, exc, no_connection=why)
        return self._store._error(what, exc)

    async def _why_no_connection(self) -> tuple[str, bool]:
        """As `PostgresEventStore._why_no_connection`: one direct attempt, awaited."""
        store = self._store
        try:
            conn = await psycopg.AsyncConnection.connect(store._conninfo, **store._connect_kwargs)
        except psycopg.Error as exc:
            return reason(exc), True
        await conn.close()
        return pool_in_use(self._pool.max_size), False

    async def _purge_dead_connections(self) -> None:
        # As the synchronous store: after one pooled connection turned out dead, check
        # the others at once.
        self._store._unreachable = True
        with suppress(psycopg.Error):
            await self._pool.check()

    async def _fetch(
        self, what: str, query: str, params: Sequence[object]
    ) -> list[tuple[Any, ...]]:
        """Run a read; once more on a fresh connection if the first one turned out dead
        (e.g. after the server restarted), since reading twice is harmless."""
        for attempt in (1, 2):
            try:
                async with self._connection() as conn:
                    cursor = await conn.execute(query, params)
                    rows = await cursor.fetchall()
                self._store._unreachable = False
                return rows
            except psycopg.Error as exc:
                if attempt == 2 or not connection_lost(exc):
                    raise await self._error(what, exc) from exc
                await self._purge_dead_connections()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- AsyncEventStore ------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        store = self._store
        check_append(stream_id, events, expected_version, snapshot)
        if store.read_only:
            store._refuse_writes(f"append to stream {stream_id!r}")
        call = append_call(
            self._sql, store._clock, store._channel, stream_id, events, expected_version, snapshot
        )
        if call is None:
            return (await self._check_only([StreamAppend(stream_id, events, expected_version)]))[0]
        return (await self._call_append(call))[0]

    async def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        store = self._store
        validate_appends(appends)
        if store.read_only and appends:
            store._refuse_writes(f"append to {streams_text([a.stream_id for a in appends])}")
        call = append_streams_call(self._sql, store._clock, store._channel, appends)
        if call is None:
            return await self._check_only(appends)
        return await self._call_append(call)

    async def _check_only(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        # No events: reading the versions needs neither the append lock nor a write.
        results = []
        for append in appends:
            actual = await self.stream_version(append.stream_id)
            check_expected_version(append.stream_id, append.expected_version, actual)
            results.append(AppendResult(append.stream_id, actual, None))
        return results

    async def _call_append(self, call: AppendCall) -> list[AppendResult]:
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(call.statement, call.params)
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            mistake = append_value_error(exc)
            if mistake is not None:
                raise mistake from exc
            error = await self._error(call.what, exc)
            if connection_lost(exc):
                error.add_note(lost_append_note(call.events))
                await self._purge_dead_connections()
            raise error from exc
        self._store._unreachable = False
        return append_results(row, call)

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        until: datetime | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        query, params = read_stream_query(
            self._sql, stream_id, from_version, to_version, until, backwards, limit
        )
        rows = await self._fetch(f"reading stream {stream_id!r}", query, params)
        # An empty range of an existing stream is fine; a stream with no events is not.
        if not rows and (
            (from_version == 1 and until is None) or not await self._stream_exists(stream_id)
        ):
            raise StreamNotFound(stream_id)
        return list(starmap(RecordedEvent, rows))

    async def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        query = self._sql.read_stream_data
        return await self._stream_data(stream_id, from_version, to_version, query)

    async def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        query = self._sql.read_stream_data_timed
        return await self._stream_data(stream_id, from_version, to_version, query)

    async def _stream_data(
        self, stream_id: str, from_version: int, to_version: int | None, query: str
    ) -> list[Any]:
        params = stream_data_params(stream_id, from_version, to_version)
        rows = await self._fetch(f"reading stream {stream_id!r}", query, params)
        if not rows and (from_version == 1 or not await self._stream_exists(stream_id)):
            raise StreamNotFound(stream_id)
        return rows

    async def _stream_exists(self, stream_id: str) -> bool:
        what = f"reading stream {stream_id!r}"
        return bool(await self._fetch(what, self._sql.stream_exists, (stream_id,)))

    async def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        validate_page_args(after, limit)
        what = f"reading events after position {after}"
        rows = await self._fetch(what, self._sql.read_all, (after, limit))
        return list(starmap(RecordedEvent, rows))

    async def stream_version(self, stream_id: str) -> int:
        check_stream_id(stream_id)
        what = f"reading the version of stream {stream_id!r}"
        rows = await self._fetch(what, self._sql.stream_version, (stream_id,))
        return int(rows[0][0])

    async def head_position(self) -> int:
        rows = await self._fetch("reading the head position", self._sql.head_position, ())
        return int(rows[0][0])

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        """As `PostgresEventStore.wait_for_events`: woken by LISTEN/NOTIFY (the synchronous
        store's listening thread hands each notification to this loop), polling every
        `poll_interval` seconds while it cannot listen (or with `notify=False`)."""
        validate_wait_args(after, timeout)
        listener = self._store._listening()
        if listener is None:
            return await super().wait_for_events(after, timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        woken = asyncio.Event()

        def wake() -> None:  # from the listening thread
            with suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(woken.set)

        listener.add_waker(wake)
        try:
            while True:
                # Clear, then read the generation, then the table: a notification after the
                # read sets the event again, so the wait below cannot sleep through it.
                woken.clear()
                seen = listener.generation
                if await self.head_position() > after:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                pause = RECHECK_WHILE_LISTENING if listener.listening else self.poll_interval
                with suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(remaining, pause))
                generation, position = listener.latest()
                if generation != seen and position > after:
                    return True  # the notification that woke this wait said so
                if listener.stopping:
                    raise BackendError(
                        f"the store for {self._store._where} was closed while waiting"
                    )
        finally:
            listener.remove_waker(wake)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        check_stream_id(stream_id)
        what = f"reading the snapshot of {stream_id!r}"
        rows = await self._fetch(what, self._sql.load_snapshot, (stream_id,))
        return Snapshot(*rows[0]) if rows else None

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        validate_snapshot(snapshot)
        what = f"saving the snapshot of {snapshot.stream_id!r}"
        if self._store.read_only:
            self._store._refuse_writes(what)
        params = snapshot_params(snapshot)
        try:
            async with self._connection() as conn:
                await conn.execute(self._sql.upsert_snapshot, params)
        except psycopg.Error as exc:
            raise await self._error(what, exc) from exc

    async def aclose(self) -> None:
        """Refuse new calls, wait (up to 5 s) for those under way, then close the pool and
        the synchronous store (its LISTEN thread, which ends every wait). Closing once is
        enough: later calls, or a call cancelled meanwhile, share the same closing."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), _CLOSE_WAIT)
            await self._pool.close(timeout=_CLOSE_WAIT)
        finally:
            await asyncio.to_thread(self._store.close)


async def _configure(conn: _Connection) -> None:
    await conn.execute(CONFIGURE)


async def _configure_read_only(conn: _Connection) -> None:
    await conn.execute(CONFIGURE_READ_ONLY)


async def _reset(conn: _Connection) -> None:
    if session_changed(conn.info, read_only=False):
        await _configure(conn)


async def _reset_read_only(conn: _Connection) -> None:
    if session_changed(conn.info, read_only=True):
        await _configure_read_only(conn)
