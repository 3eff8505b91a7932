"""The store ports for asyncio services: `EventStore` and `SnapshotStore` as coroutines.

The same records, errors and rules as the synchronous ports (`_ports.py`), whose docstrings
say what each method promises; only the calling convention differs. A backend implements
these without blocking the event loop: natively (an async driver) or by running its
synchronous store's calls in worker threads (SQLite).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    StoredData,
    TimedStoredData,
    validate_wait_args,
)
from esgen.runtime._records import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
)

__all__ = ["AsyncEventStore", "AsyncSnapshotStore", "open_in_thread"]

S = TypeVar("S")


class AsyncEventStore(ABC):
    """An event store for asyncio code: `EventStore`'s methods, awaited.

    Cancelling a call that writes does not undo it: like a lost connection, the append may
    or may not have been written. Read the stream, or retry with the same expected version
    (a `ConcurrencyError` then means the first attempt was written).
    """

    @abstractmethod
    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        """See `EventStore.append`."""

    @abstractmethod
    async def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """See `EventStore.append_streams`."""

    @abstractmethod
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
        """See `EventStore.read_stream`."""

    @abstractmethod
    async def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        """See `EventStore.read_stream_data`."""

    @abstractmethod
    async def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        """See `EventStore.read_stream_data_timed`."""

    @abstractmethod
    async def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        """See `EventStore.read_all`."""

    async def iter_all(
        self, after: int = 0, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[RecordedEvent]:
        """Every event after `after` in global order, fetched a page at a time."""
        while True:
            page = await self.read_all(after, page_size)
            for record in page:
                yield record
            if len(page) < page_size:
                return
            after = page[-1].position

    @abstractmethod
    async def stream_version(self, stream_id: str) -> int:
        """See `EventStore.stream_version`."""

    @abstractmethod
    async def head_position(self) -> int:
        """See `EventStore.head_position`."""

    poll_interval: float = 0.1
    """The longest pause between two looks at the head in the polling `wait_for_events`."""

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        """See `EventStore.wait_for_events`. This default polls `head_position()`, every
        millisecond at first and backing off to `poll_interval`; the loop stays free
        between looks."""
        validate_wait_args(after, timeout)
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            if await self.head_position() > after:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, self.poll_interval)

    async def aclose(self) -> None:  # noqa: B027 (a no-op default, as EventStore.close)
        """Release connections and threads; the store must not be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncSnapshotStore(ABC):
    """`SnapshotStore` for asyncio code."""

    @abstractmethod
    async def load_snapshot(self, stream_id: str) -> Snapshot | None: ...

    @abstractmethod
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store the snapshot unless one of a higher version is already stored."""


async def open_in_thread(build: Callable[[], S], close: Callable[[S], None]) -> S:
    """`build()` (a synchronous store's constructor: set-up, checks, a first connection)
    run in a worker thread, so the loop stays free. If the caller is cancelled meanwhile,
    the thread still finishes (it cannot be stopped halfway) and what it built is closed,
    not left to the garbage collector with its threads and connections."""
    lock = threading.Lock()
    abandoned = False
    built: list[S] = []

    def run() -> S:
        store = build()
        with lock:
            keep = not abandoned
            if keep:
                built.append(store)
        if not keep:
            close(store)
        return store

    context = contextvars.copy_context()
    future = asyncio.get_running_loop().run_in_executor(None, context.run, run)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with lock:
            abandoned = True
            orphans = list(built)
        for store in orphans:  # built before the cancel: closed off the loop
            threading.Thread(target=close, args=(store,), daemon=True).start()
        raise
