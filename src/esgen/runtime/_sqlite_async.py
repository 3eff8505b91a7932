"""`AsyncSQLiteEventStore`: the SQLite event store for asyncio code.

SQLite has no asynchronous interface: every call of the synchronous `SQLiteEventStore`
runs in one of this store's own worker threads, so the event loop never waits on the file
(the same approach as aiosqlite). Each worker thread has its own connection, as any thread
of `SQLiteEventStore` does; appends from many tasks are serialised by SQLite's write lock,
as appends from many threads are.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from esgen.runtime._async_ports import AsyncEventStore, AsyncSnapshotStore, open_in_thread
from esgen.runtime._errors import BackendError
from esgen.runtime._ports import DEFAULT_PAGE_SIZE, StoredData, TimedStoredData
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
from esgen.runtime._sqlite import QUICK_CHECK_LIMIT, SQLiteEventStore, Synchronous

if TYPE_CHECKING:
    from esgen.runtime._personal import KeyWrapper

__all__ = ["AsyncSQLiteEventStore"]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_THREADS = 4
"""Worker threads per store: reads run side by side (WAL mode), appends one at a time."""


class AsyncSQLiteEventStore(AsyncEventStore, AsyncSnapshotStore):
    """A `SQLiteEventStore` whose calls are awaited; see the module docstring.

    Open one with `await AsyncSQLiteEventStore.open(path, ...)`, which sets the file up in a
    worker thread, or wrap a store opened already: `AsyncSQLiteEventStore(SQLiteEventStore(
    path))`. Close it with `await store.aclose()` or `async with`.
    """

    def __init__(self, store: SQLiteEventStore, *, threads: int = DEFAULT_THREADS) -> None:
        if not isinstance(store, SQLiteEventStore):
            raise TypeError(
                f"AsyncSQLiteEventStore wraps a SQLiteEventStore (got {type(store).__name__})"
            )
        _check_threads(threads)
        self._store = store
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="esgen-sqlite")
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        busy_timeout: float = 5.0,
        synchronous: Synchronous = "FULL",
        read_only: bool = False,
        quick_check_limit: int = QUICK_CHECK_LIMIT,
        master_key: KeyWrapper | None = None,
        key_cache_seconds: float = 60.0,
        threads: int = DEFAULT_THREADS,
    ) -> AsyncSQLiteEventStore:
        """Open (and on first use create) the store in `path`; the arguments are those of
        `SQLiteEventStore`, plus the number of worker threads."""
        _check_threads(threads)  # before the file is touched
        store = await open_in_thread(
            functools.partial(
                SQLiteEventStore,
                path,
                clock=clock,
                busy_timeout=busy_timeout,
                synchronous=synchronous,
                read_only=read_only,
                quick_check_limit=quick_check_limit,
                master_key=master_key,
                key_cache_seconds=key_cache_seconds,
            ),
            SQLiteEventStore.close,
        )
        return cls(store, threads=threads)

    @property
    def sync_store(self) -> SQLiteEventStore:
        """The synchronous store underneath, for what has no asynchronous form yet (the
        command line, `transaction()`); calling it blocks the calling thread."""
        return self._store

    @property
    def read_only(self) -> bool:
        return self._store.read_only

    def __repr__(self) -> str:
        return f"AsyncSQLiteEventStore({os.fspath(self._store.path)!r})"

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise BackendError(f"the store for {os.fspath(self._store.path)!r} is closed")
        # The caller's context goes along, as with asyncio.to_thread.
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def run_sync(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)`, a synchronous call on `sync_store` (a read-model
        query, say), run in one of this store's worker threads: counted among its calls,
        which `aclose` waits for, and refused once the store is closed."""
        return await self._call(function, *args, **kwargs)

    # -- AsyncEventStore ------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        return await self._call(
            self._store.append, stream_id, events, expected_version, snapshot=snapshot
        )

    async def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return await self._call(self._store.append_streams, appends)

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
        return await self._call(
            self._store.read_stream,
            stream_id,
            from_version=from_version,
            to_version=to_version,
            until=until,
            backwards=backwards,
            limit=limit,
        )

    async def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        return await self._call(
            self._store.read_stream_data,
            stream_id,
            from_version=from_version,
            to_version=to_version,
        )

    async def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        return await self._call(
            self._store.read_stream_data_timed,
            stream_id,
            from_version=from_version,
            to_version=to_version,
        )

    async def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        return await self._call(self._store.read_all, after, limit)

    async def stream_version(self, stream_id: str) -> int:
        return await self._call(self._store.stream_version, stream_id)

    async def head_position(self) -> int:
        return await self._call(self._store.head_position)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return await self._call(self._store.load_snapshot, stream_id)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        await self._call(self._store.save_snapshot, snapshot)

    async def aclose(self) -> None:
        """Refuse new calls, let those under way finish (a worker thread cannot be stopped
        halfway), then close every thread's connection; the loop stays free meanwhile.
        Closing once is enough: later calls, or a call cancelled meanwhile, share the same
        closing."""
        self._closed = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(asyncio.to_thread(self._shut_down))
        await asyncio.shield(self._closing)

    def _shut_down(self) -> None:
        self._executor.shutdown(wait=True)
        self._store.close()


def _check_threads(threads: int) -> None:
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1 (got {threads!r})")
