"""`BlockingEventStore`: an `AsyncEventStore` behind the synchronous ports.

So the one contract suite checks asynchronous backends too, rather than a copy of it in
`async def` tests: a backend subclass's `make_store` returns an asynchronous store wrapped
in this, and every test of the suite awaits the store's coroutines through it. Each call
runs on the adapter's own event loop, in a thread of its own, and waits for the result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from esgen.runtime._async_ports import AsyncEventStore, AsyncSnapshotStore
from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    SnapshotStore,
    StoredData,
    TimedStoredData,
)
from esgen.runtime._records import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
)

__all__ = ["BlockingEventStore"]

T = TypeVar("T")


class BlockingEventStore(EventStore, SnapshotStore):
    """Runs `open_store()` on a private event loop and exposes the store it returns through
    `EventStore` and `SnapshotStore`. For tests: production code awaits the store."""

    def __init__(self, open_store: Callable[[], Awaitable[AsyncEventStore]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="esgen-blocking-store", daemon=True
        )
        self._thread.start()
        self._closed = False
        try:
            self.inner = self._run(_awaited(open_store))
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _snapshots(self) -> AsyncSnapshotStore:
        if not isinstance(self.inner, AsyncSnapshotStore):
            raise TypeError(f"{type(self.inner).__name__} keeps no snapshots")
        return self.inner

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        return self._run(self.inner.append(stream_id, events, expected_version, snapshot=snapshot))

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return self._run(self.inner.append_streams(appends))

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        until: datetime | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        return self._run(
            self.inner.read_stream(
                stream_id,
                from_version=from_version,
                to_version=to_version,
                until=until,
                backwards=backwards,
                limit=limit,
            )
        )

    def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        return self._run(
            self.inner.read_stream_data(stream_id, from_version=from_version, to_version=to_version)
        )

    def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        return self._run(
            self.inner.read_stream_data_timed(
                stream_id, from_version=from_version, to_version=to_version
            )
        )

    def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        return self._run(self.inner.read_all(after, limit))

    def iter_all(
        self, after: int = 0, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[RecordedEvent]:
        # The asynchronous store's own iterator, one step at a time.
        records = self.inner.iter_all(after, page_size)
        try:
            while True:
                try:
                    yield self._run(_next(records))
                except StopAsyncIteration:
                    return
        finally:
            # An iterator left early: its generator's clean-up runs on the loop too.
            close = getattr(records, "aclose", None)
            if close is not None and not self._closed:
                self._run(close())

    def stream_version(self, stream_id: str) -> int:
        return self._run(self.inner.stream_version(stream_id))

    def head_position(self) -> int:
        return self._run(self.inner.head_position())

    def wait_for_events(self, after: int, timeout: float) -> bool:
        return self._run(self.inner.wait_for_events(after, timeout))

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return self._run(self._snapshots().load_snapshot(stream_id))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._run(self._snapshots().save_snapshot(snapshot))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.inner.aclose())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _awaited(open_store: Callable[[], Awaitable[AsyncEventStore]]) -> AsyncEventStore:
    return await open_store()


async def _next(records: AsyncIterator[RecordedEvent]) -> RecordedEvent:
    return await anext(records)
