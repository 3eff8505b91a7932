"""The in-memory backend: for unit tests and examples; everything is lost on exit.

It keeps the same rules as the durable backends (JSON-only metadata, UTC times that never go
backwards, positions from 1 without gaps) so that code tested against it behaves the same
on SQLite or PostgreSQL; the shared contract suite checks that.

`transaction()` gives it the durable stores' hook: a block on one thread whose appends,
snapshots, and whatever the progress storage (`_progress_memory`) keeps in the store commit
together or are undone together. The store's lock is held for the block, so other threads
neither see its changes early nor write meanwhile; an undo log makes a transaction cost
what it changes, never a copy of the store.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from esgen.runtime._errors import StreamNotFound
from esgen.runtime._personal import FORGOTTEN_STREAM, EphemeralMasterKey, Keyring, KeyWrapper
from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    SnapshotStore,
    check_expected_version,
    check_json,
    check_snapshot_fits,
    recorded_times,
    validate_appends,
    validate_page_args,
    validate_read_args,
    validate_snapshot,
    validate_wait_args,
)
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    StreamSummary,
    encode_metadata,
    to_utc,
    utc_now,
)
from esgen.runtime._text import check_stream_id

__all__ = ["MemoryEventStore", "MemoryTransaction"]

K = TypeVar("K")


class _Missing:
    pass


_MISSING = _Missing()


class MemoryTransaction:
    """What one `MemoryEventStore.transaction()` block changed, so it can be undone.

    Whatever keeps data in the store records, before each change, how to undo it:
    `remember(mapping, key)` keeps an entry's value from before the block the first time
    the block changes it; `on_rollback(undo)` runs `undo` if the block raises. Both cost
    what the block changes, however large the store.
    """

    __slots__ = ("_saved", "_undo")

    def __init__(self) -> None:
        self._saved: dict[int, tuple[dict[Any, Any], dict[Any, Any]]] = {}
        self._undo: list[Callable[[], None]] = []

    def remember(self, mapping: dict[K, Any], key: K) -> None:
        """Keep `mapping[key]` (or its absence) as it was before the block."""
        entry = self._saved.get(id(mapping))
        if entry is None:
            # The mapping is kept too, so its id cannot be reused while this lives.
            entry = self._saved[id(mapping)] = (mapping, {})
        saved = entry[1]
        if key not in saved:
            saved[key] = mapping.get(key, _MISSING)

    def on_rollback(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def _roll_back(self) -> None:
        for undo in reversed(self._undo):
            undo()
        # Each mapping's entries go back to their value from before the block; entries are
        # independent of each other, so the order between mappings does not matter.
        for mapping, saved in self._saved.values():
            for key, value in saved.items():
                if value is _MISSING:
                    mapping.pop(key, None)
                else:
                    mapping[key] = value
        self._saved.clear()
        self._undo.clear()


class MemoryEventStore(EventStore, SnapshotStore):
    """Event store and snapshot store in process memory, safe to share between threads."""

    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        master_key: KeyWrapper | None = None,
        key_cache_seconds: float = 60.0,
    ) -> None:
        self._clock = clock
        # Subject -> wrapped data key, or None once forgotten.
        self._subject_keys: dict[str, bytes | None] = {}
        # Without a master key, one made for this store alone: its data dies with the
        # process, and so may its keys (tests of personal data need no set-up).
        self.keyring = Keyring(
            EphemeralMasterKey() if master_key is None else master_key,
            self,
            cache_seconds=key_cache_seconds,
        )
        # Re-entrant: appends and reads made inside a transaction() block take it again.
        self._lock = threading.RLock()
        self._appended = threading.Condition(self._lock)
        # The open transaction; only the thread holding the lock can see it set.
        self._transaction: MemoryTransaction | None = None
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._log: list[RecordedEvent] = []
        self._snapshots: dict[str, Snapshot] = {}
        self._last_recorded_at: datetime | None = None

    # -- personal data --------------------------------------------------------------------

    def subject_keys(self, subjects: Sequence[str]) -> Mapping[str, bytes | None]:
        with self._lock:
            return {s: self._subject_keys[s] for s in subjects if s in self._subject_keys}

    def add_subject_key(self, subject: str, wrapped: bytes) -> bytes | None:
        with self._lock:
            # Kept even if a transaction() block around it rolls back: a key without data
            # is harmless, and the keyring may already seal with it.
            return self._subject_keys.setdefault(subject, bytes(wrapped))

    def forget_subject(self, subject: str, audit: NewEvent) -> bool:
        with self._lock:
            if subject in self._subject_keys and self._subject_keys[subject] is None:
                return False
            self.append_streams([StreamAppend(FORGOTTEN_STREAM, [audit], ExpectedVersion.ANY)])
            if self._transaction is not None:  # undone with the audit event, if it rolls back
                self._transaction.remember(self._subject_keys, subject)
            self._subject_keys[subject] = None
            return True

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        validate_appends(appends)
        with self._lock:
            # Everything that can fail (versions, snapshots, JSON, metadata, the clock)
            # happens before the first write, so a failure leaves the store untouched.
            actual = [len(self._streams.get(a.stream_id, ())) for a in appends]
            for append, version in zip(appends, actual, strict=True):
                check_expected_version(append.stream_id, append.expected_version, version)
                if append.snapshot is not None and append.events:
                    check_snapshot_fits(
                        append.snapshot, append.stream_id, version + len(append.events)
                    )
            head = position = len(self._log)
            times = recorded_times(
                [event for append in appends for event in append.events],
                self._clock,
                self._last_recorded_at,
            )
            batches: list[list[RecordedEvent]] = []
            results = []
            last_metadata: object = None
            metadata_json = ""
            for append, version in zip(appends, actual, strict=True):
                records = []
                for event in append.events:
                    check_json(event.data)
                    if event.metadata is not last_metadata:
                        last_metadata = event.metadata
                        metadata_json = encode_metadata(event.metadata)
                    position += 1
                    version += 1
                    records.append(
                        RecordedEvent(
                            position,
                            append.stream_id,
                            version,
                            event.event_type,
                            event.event_version,
                            event.data,
                            event.event_id,
                            metadata_json,
                            next(times),
                        )
                    )
                batches.append(records)
                results.append(
                    AppendResult(append.stream_id, version, position if records else None)
                )
            transaction = self._transaction
            if transaction is not None and position > head:
                self._undo_later(transaction, appends, head)
            for append, records in zip(appends, batches, strict=True):
                if not records:
                    continue
                self._streams.setdefault(append.stream_id, []).extend(records)
                self._log.extend(records)
                self._last_recorded_at = records[-1].recorded_at
                if append.snapshot is not None:
                    self._store_snapshot(append.snapshot)
            if position > head and transaction is None:
                self._appended.notify_all()  # in a transaction: when it commits
            return results

    def _undo_later(
        self, transaction: MemoryTransaction, appends: Sequence[StreamAppend], head: int
    ) -> None:
        """Record how to take back an append made inside a transaction."""
        lengths = [(a.stream_id, len(self._streams.get(a.stream_id, ()))) for a in appends]
        last_recorded_at = self._last_recorded_at

        def undo() -> None:
            del self._log[head:]
            for stream_id, length in lengths:
                if length:
                    del self._streams[stream_id][length:]
                else:  # a stream exists only with events
                    self._streams.pop(stream_id, None)
            self._last_recorded_at = last_recorded_at

        transaction.on_rollback(undo)

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
        check_stream_id(stream_id)
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
        check_stream_id(stream_id)
        with self._lock:
            return len(self._streams.get(stream_id, ()))

    def head_position(self) -> int:
        with self._lock:
            return len(self._log)

    # -- inspection: the ports' scanning defaults would do; these use what is at hand ------

    def streams(self, prefix: str = "") -> Iterator[StreamSummary]:
        with self._lock:  # a list made under the lock: appends may follow while it is read
            found = [
                StreamSummary(stream_id, len(events), events[0].recorded_at, events[-1].recorded_at)
                for stream_id, events in self._streams.items()
                if stream_id.startswith(prefix)
            ]
        found.sort(key=_stream_id)
        yield from found

    def position_at(self, moment: datetime) -> int:
        # Recorded times never decrease along the log, so "at or before" is a prefix of it.
        moment = to_utc(moment, "moment")
        with self._lock:
            return bisect_right(self._log, moment, key=_recorded_at)

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Like the polling default, but woken by the append itself (by its commit, inside
        a transaction; a waiter woken by one rolled back looks again and waits on)."""
        validate_wait_args(after, timeout)
        deadline = time.monotonic() + timeout
        # Another thread's transaction holds the lock: wait for it no longer than asked.
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            if self._transaction is not None:
                # This thread's own transaction: waiting would let other threads write
                # into it, and no other thread can append before it ends.
                return len(self._log) > after
            remaining = max(0.0, deadline - time.monotonic())
            return self._appended.wait_for(lambda: len(self._log) > after, remaining)
        finally:
            self._lock.release()

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        """Run the block as one transaction of the store, as the durable stores'
        `transaction()` does: appends, snapshots, read-model rows, checkpoints and saga
        state changed in it (on this thread) commit when it ends, or are all undone if it
        raises. Other threads wait for the block to end before reading or writing the
        store; nested blocks join the outer one.
        """
        with self._lock:
            current = self._transaction
            if current is not None:
                yield current
                return
            transaction = self._transaction = MemoryTransaction()
            head = len(self._log)
            try:
                yield transaction
            except BaseException:
                transaction._roll_back()
                raise
            finally:
                self._transaction = None
            if len(self._log) > head:
                self._appended.notify_all()

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        check_stream_id(stream_id)
        with self._lock:
            return self._snapshots.get(stream_id)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        validate_snapshot(snapshot)
        with self._lock:
            self._store_snapshot(snapshot)

    def _store_snapshot(self, snapshot: Snapshot) -> None:
        current = self._snapshots.get(snapshot.stream_id)
        if current is None or snapshot.version >= current.version:
            if self._transaction is not None:
                self._transaction.remember(self._snapshots, snapshot.stream_id)
            self._snapshots[snapshot.stream_id] = snapshot


def _recorded_at(record: RecordedEvent) -> datetime:
    return record.recorded_at


def _stream_id(summary: StreamSummary) -> str:
    return summary.stream_id
