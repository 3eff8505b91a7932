"""The in-memory backend: for unit tests and examples; everything is lost on exit.

It keeps the same rules as the durable backends (JSON-only metadata, UTC times that never go
backwards, positions from 1 without gaps) so that code tested against it behaves the same
on SQLite or PostgreSQL; the shared contract suite checks that.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime

from esgen.runtime._errors import StreamNotFound
from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    SnapshotStore,
    check_expected_version,
    check_json,
    check_snapshot_fits,
    validate_append_args,
    validate_new_events,
    validate_page_args,
    validate_read_args,
    validate_wait_args,
)
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    encode_metadata,
    to_utc,
    utc_now,
)

__all__ = ["MemoryEventStore"]


class MemoryEventStore(EventStore, SnapshotStore):
    """Event store and snapshot store in process memory, safe to share between threads."""

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._log: list[RecordedEvent] = []
        self._snapshots: dict[str, Snapshot] = {}
        self._last_recorded_at: datetime | None = None

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        validate_append_args(stream_id, expected_version)
        validate_new_events(events)
        with self._lock:
            stream = self._streams.get(stream_id)
            actual = len(stream) if stream else 0
            check_expected_version(stream_id, expected_version, actual)
            if not events:
                return AppendResult(stream_id, actual, None)
            if snapshot is not None:
                check_snapshot_fits(snapshot, stream_id, actual + len(events))
            recorded_at = to_utc(self._clock(), "the store clock's time")
            if self._last_recorded_at is not None and recorded_at < self._last_recorded_at:
                recorded_at = self._last_recorded_at  # a clock step back must not reorder time
            # Everything that can fail (metadata encoding) happens before the first write.
            records = []
            position = len(self._log)
            version = actual
            last_metadata: object = None
            metadata_json = ""
            for event in events:
                check_json(event.data)
                if event.metadata is not last_metadata:
                    last_metadata = event.metadata
                    metadata_json = encode_metadata(event.metadata)
                position += 1
                version += 1
                records.append(
                    RecordedEvent(
                        position,
                        stream_id,
                        version,
                        event.event_type,
                        event.event_version,
                        event.data,
                        event.event_id,
                        metadata_json,
                        recorded_at,
                    )
                )
            if stream is None:
                stream = self._streams[stream_id] = []
            stream.extend(records)
            self._log.extend(records)
            self._last_recorded_at = recorded_at
            if snapshot is not None:
                self._store_snapshot(snapshot)
            self._appended.notify_all()
            return AppendResult(stream_id, version, position)

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
        validate_read_args(from_version, to_version, limit)
        until = None if until is None else to_utc(until, "until")
        with self._lock:
            stream = self._streams.get(stream_id)
            if not stream:
                raise StreamNotFound(stream_id)
            end = len(stream) if to_version is None else min(to_version, len(stream))
            selected = stream[from_version - 1 : end]
        if until is not None:
            # recorded_at never decreases along a stream, so "at or before" is a prefix.
            selected = selected[: bisect_right(selected, until, key=_recorded_at)]
        if backwards:
            selected.reverse()
        if limit is not None:
            del selected[limit:]
        return selected

    def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        validate_page_args(after, limit)
        with self._lock:
            return self._log[after : after + limit]

    def stream_version(self, stream_id: str) -> int:
        with self._lock:
            return len(self._streams.get(stream_id, ()))

    def head_position(self) -> int:
        with self._lock:
            return len(self._log)

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Like the polling default, but woken by the append itself."""
        validate_wait_args(after, timeout)
        with self._appended:
            return self._appended.wait_for(lambda: len(self._log) > after, timeout)

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        with self._lock:
            return self._snapshots.get(stream_id)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._store_snapshot(snapshot)

    def _store_snapshot(self, snapshot: Snapshot) -> None:
        current = self._snapshots.get(snapshot.stream_id)
        if current is None or snapshot.version >= current.version:
            self._snapshots[snapshot.stream_id] = snapshot


def _recorded_at(record: RecordedEvent) -> datetime:
    return record.recorded_at
