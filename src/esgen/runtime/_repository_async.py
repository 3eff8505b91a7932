"""`AsyncRepository`: `Repository` for asyncio code, on an `AsyncEventStore`.

The in-memory work of loading and saving (checking the class, decoding and applying events,
preparing the append and the snapshot) is `Repository`'s own: an AsyncRepository keeps one,
built on `_InMemoryOnly`, whose store methods are never called, and awaits every read and
write itself. So the two load and save alike, event for event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, cast

from esgen.runtime._async_ports import AsyncEventStore, AsyncSnapshotStore
from esgen.runtime._context import save_metadata
from esgen.runtime._errors import AggregateNotFound, EventStoreError, StreamNotFound
from esgen.runtime._ids import IdT
from esgen.runtime._personal import has_envelope
from esgen.runtime._ports import EventStore, SnapshotStore, StoredData, TimedStoredData
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
from esgen.runtime._registry import EventRegistry
from esgen.runtime._repository import (
    _DEFAULT,
    LOAD_PAGE_SIZE,
    AggregateFactory,
    AggT,
    Repository,
)

__all__ = ["AsyncRepository"]

logger = logging.getLogger("esgen.runtime")


class AsyncRepository(Generic[AggT, IdT]):
    """Loads and saves one aggregate class through an asynchronous event store.

    The same arguments and rules as `Repository` (typed ids, snapshots in the store itself
    by default and inside the append, `snapshot_every`, `clock`), with `load`,
    `load_or_new` and `save` awaited. Loads always read the events' times, so `event_time`
    is known after a load without another read (a synchronous load reads it when asked).

    Aggregates with personal data are refused for now: sealing and opening it reads keys
    from the store synchronously. Use a `Repository` on the store's `sync_store` for them,
    in a thread (`asyncio.to_thread`).
    """

    def __init__(
        self,
        aggregate_class: AggregateFactory[AggT, IdT],
        store: AsyncEventStore,
        registry: EventRegistry,
        *,
        snapshots: AsyncSnapshotStore | None = _DEFAULT,
        snapshot_every: int | None = _DEFAULT,
        clock: Clock = utc_now,
    ) -> None:
        if not isinstance(store, AsyncEventStore):
            raise TypeError(
                f"AsyncRepository needs an AsyncEventStore (got {type(store).__name__}); "
                "use Repository for a synchronous store"
            )
        if snapshots is _DEFAULT:
            snapshots = store if isinstance(store, AsyncSnapshotStore) else None
        elif snapshots is not None and not isinstance(snapshots, AsyncSnapshotStore):
            raise TypeError(
                f"AsyncRepository keeps snapshots in an AsyncSnapshotStore (got "
                f"{type(snapshots).__name__})"
            )
        ports = _InMemoryOnly()
        # The same object as the store when the snapshots ride along with the appends.
        # (Compared as objects: a store class may implement both ports.)
        rides_along = cast(object, snapshots) is store
        snapshot_ports = None if snapshots is None else ports if rides_along else _InMemoryOnly()
        self._core: Repository[AggT, IdT] = Repository(
            aggregate_class,
            ports,
            registry,
            snapshots=snapshot_ports,
            snapshot_every=snapshot_every,
            clock=clock,
        )
        if self._core.seals or any(
            registry._holds_personal_data(event_class.event_type)
            for event_class in self._core.aggregate_class._dispatch
        ):
            # Any version of an event it applies, not only the latest: older ones may have
            # been stored sealed.
            raise TypeError(
                f"{self._core.aggregate_class.__qualname__} holds personal data, which an "
                "AsyncRepository cannot seal or open yet: use a Repository on the store's "
                "sync_store, in a thread (asyncio.to_thread)"
            )
        self._store = store
        self._snapshots = snapshots if self._core._snapshots is not None else None

    @property
    def aggregate_class(self) -> type[AggT]:
        return self._core.aggregate_class

    @property
    def store(self) -> AsyncEventStore:
        return self._store

    @property
    def clock(self) -> Clock:
        return self._core.clock

    def stream_id(self, aggregate_id: IdT) -> str:
        return self._core.stream_id(aggregate_id)

    def new(self, aggregate_id: IdT) -> AggT:
        """A new, empty aggregate with this repository's clock (nothing is read)."""
        return self._core.new(aggregate_id)

    async def load(self, aggregate_id: IdT) -> AggT:
        """The aggregate at its latest version; `AggregateNotFound` if it has no events."""
        aggregate = await self._load(aggregate_id)
        if aggregate is None:
            raise AggregateNotFound(
                self.aggregate_class.aggregate_type, aggregate_id, self.stream_id(aggregate_id)
            )
        return aggregate

    async def load_or_new(self, aggregate_id: IdT) -> AggT:
        """The aggregate, or a new empty one (version 0, no state) if it has no events."""
        aggregate = await self._load(aggregate_id)
        return self.new(aggregate_id) if aggregate is None else aggregate

    async def _load(self, aggregate_id: IdT) -> AggT | None:
        core = self._core
        stream_id = core.stream_id(aggregate_id)
        aggregate = core.new(aggregate_id)
        snapshot = None
        if self._snapshots is not None:
            kept = await self._snapshots.load_snapshot(stream_id)
            if kept is not None and has_envelope(kept.state):
                # Sealed by an earlier release whose state held personal data: opening it
                # needs keys, so the aggregate is rebuilt from its events instead.
                kept = None
            snapshot = core._usable(kept, stream_id)
        if snapshot is not None:
            core._restore(aggregate, *snapshot)
        try:
            while True:  # a page at a time, as Repository._replay_stored
                start = aggregate._version + 1
                stored = await self._store.read_stream_data_timed(
                    stream_id, from_version=start, to_version=start + LOAD_PAGE_SIZE - 1
                )
                core._replay(aggregate, stored)
                if len(stored) < LOAD_PAGE_SIZE:
                    break
        except StreamNotFound:
            return None
        aggregate._snapshot_version = 0 if snapshot is None else snapshot[1]
        return aggregate

    async def save(
        self, aggregate: AggT, *, metadata: Mapping[str, Any] | None = None
    ) -> AppendResult | None:
        """Append the aggregate's pending events, expecting the version it was loaded at;
        as `Repository.save` (a `ConcurrencyError` writes nothing and leaves them pending)."""
        if not aggregate._pending:
            return None
        append, snapshot = self._core._prepare_save(aggregate, save_metadata(metadata))
        result = await self._store.append(
            append.stream_id, append.events, append.expected_version, snapshot=append.snapshot
        )
        self._saved(aggregate, snapshot)
        await self._store_snapshot(snapshot)
        return result

    @staticmethod
    def _saved(aggregate: AggT, snapshot: Snapshot | None) -> None:
        """After the append committed: the events are no longer pending (before anything
        is awaited, so that a cancel cannot leave written events pending)."""
        aggregate._pending.clear()
        aggregate._pending_times.clear()
        if snapshot is not None:
            aggregate._snapshot_version = snapshot.version

    async def _store_snapshot(self, snapshot: Snapshot | None) -> None:
        """A snapshot that fell due, stored unless it rode along with the append."""
        if snapshot is not None and not self._core._snapshot_with_append:
            await self._save_snapshot_separately(snapshot)

    async def _save_snapshot_separately(self, snapshot: Snapshot) -> None:
        assert self._snapshots is not None
        try:
            await self._snapshots.save_snapshot(snapshot)
        except EventStoreError as exc:
            # The events are saved; a missing snapshot only costs a longer load later.
            logger.warning("could not save the snapshot of %s: %s", snapshot.stream_id, exc)


class _InMemoryOnly(EventStore, SnapshotStore):
    """The store of the Repository inside an AsyncRepository: that Repository only decodes,
    applies and prepares; every read and write is awaited by the AsyncRepository. A call
    here would be a blocking call on the event loop, so it fails loudly instead."""

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError(
            "an AsyncRepository's repository called its store synchronously (a bug in esgen)"
        )

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        return cast(AppendResult, self._refuse())

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return cast("list[AppendResult]", self._refuse())

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
        return cast("list[RecordedEvent]", self._refuse())

    def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        return cast("Sequence[StoredData]", self._refuse())

    def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        return cast("Sequence[TimedStoredData]", self._refuse())

    def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        return cast("list[RecordedEvent]", self._refuse())

    def stream_version(self, stream_id: str) -> int:
        return cast(int, self._refuse())

    def head_position(self) -> int:
        return cast(int, self._refuse())

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return cast("Snapshot | None", self._refuse())

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._refuse()
