"""The store ports: what the repository, projections and sagas need from a database.

Backends (memory, SQLite, later PostgreSQL) implement these; everything above them is written
against the ports only, and one contract suite (`esgen.runtime.testing`) checks every backend.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from esgen.runtime._errors import ConcurrencyError
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    StreamSummary,
    to_utc,
)
from esgen.runtime._text import check_json_text, check_stream_id, check_text

if TYPE_CHECKING:
    from esgen.runtime._personal import Keyring

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EventStore",
    "SnapshotStore",
    "StoredData",
    "TimedStoredData",
    "TransactionalStore",
]

DEFAULT_PAGE_SIZE = 1000
"""Events per page of `read_all`: large enough that a catching-up projection is not
dominated by round trips, small enough to keep a page's memory modest."""

ConnT_co = TypeVar("ConnT_co", covariant=True)

StoredData = tuple[int, str, int, str]
"""(stream_version, event_type, event_version, data): a stored event without its envelope,
all that rebuilding an aggregate needs."""

TimedStoredData = tuple[int, str, int, str, datetime | str]
"""StoredData and recorded_at, for aggregates whose apply methods read `event_time`:
a UTC datetime, or the ISO 8601 text a backend stores (SQLite), left for the reader to
parse only if it needs it."""


class EventStore(ABC):
    """An append-only log of streams of events, with one global order across streams.

    There is deliberately no way to change or delete a recorded event.
    """

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        """Append all events to the stream, or none of them.

        `expected_version` is the version the caller last saw (0 or `NO_STREAM` for a new
        stream, `ANY` to skip the check); if the stream is elsewhere, `ConcurrencyError` is
        raised and nothing is written. With no events, only the check is made.

        `snapshot`, if given, is stored in the same transaction (stores that also implement
        `SnapshotStore` keep it there), so saving a snapshot never costs a second commit.

        Each event is recorded at its `recorded_at` if it has one, else at the store clock's
        time; never earlier than the event before it in the global order.
        """
        return self.append_streams([StreamAppend(stream_id, events, expected_version, snapshot)])[0]

    @abstractmethod
    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Append to several streams in one atomic step: all of it is written, or nothing.

        Each `StreamAppend` is checked against its own expected version, as `append` does;
        if any is wrong, `ConcurrencyError` names that stream and nothing at all is written.
        A stream may appear only once (`ValueError`). The events take consecutive global
        positions in the order given; the results are in that order too.
        """

    @abstractmethod
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
        """Events of one stream with from_version <= version <= to_version, oldest first.

        `until` keeps only events recorded at or before that (aware) time; `backwards`
        returns newest first (with `limit`, the newest `limit` events of the range).
        Raises `StreamNotFound` if the stream has no events at all; an empty range of an
        existing stream is an empty list.
        """

    def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        """(stream_version, event_type, event_version, data) of a stream's events, oldest
        first: all that rebuilding an aggregate needs. Backends override this to skip the
        other columns; raises `StreamNotFound` like `read_stream`."""
        return [
            (r.stream_version, r.event_type, r.event_version, r.data)
            for r in self.read_stream(stream_id, from_version=from_version, to_version=to_version)
        ]

    def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        """`read_stream_data` with each event's recorded time: for aggregates that read
        `event_time`. Apart, because the column costs every other load."""
        return [
            (r.stream_version, r.event_type, r.event_version, r.data, r.recorded_at)
            for r in self.read_stream(stream_id, from_version=from_version, to_version=to_version)
        ]

    @abstractmethod
    def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        """One page of events of all streams in global order, with positions > `after`."""

    def _read_page(self, after: int, limit: int) -> list[RecordedEvent]:
        """`read_all` for a projection's page: a store may leave out the event id, metadata
        and time and read them for the page when a handler first asks (SQLite does)."""
        return self.read_all(after, limit)

    def iter_all(
        self, after: int = 0, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[RecordedEvent]:
        """Every event after `after` in global order, fetched a page at a time."""
        while True:
            page = self.read_all(after, page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].position

    @abstractmethod
    def stream_version(self, stream_id: str) -> int:
        """The version of the stream's last event; 0 if the stream does not exist."""

    @abstractmethod
    def head_position(self) -> int:
        """The global position of the last event in the store; 0 if it is empty."""

    # -- inspection: what `esgen inspect` and audits ask; rare, so defaults may scan --------

    def streams(self, prefix: str = "") -> Iterator[StreamSummary]:
        """Every stream whose id starts with `prefix`, ordered by stream id (code point
        order; PostgreSQL uses the database's collation, the same in C and C.UTF-8
        databases), with its version and the times of its first and last events. Streams
        the result; SQL backends page through it, so memory does not grow with the number
        of streams."""
        found: dict[str, list[RecordedEvent]] = {}
        for recorded in self.iter_all():
            if recorded.stream_id.startswith(prefix):
                entry = found.setdefault(recorded.stream_id, [recorded, recorded])
                entry[1] = recorded
        for stream_id in sorted(found):
            first, last = found[stream_id]
            yield StreamSummary(stream_id, last.stream_version, first.recorded_at, last.recorded_at)

    def read_correlation(self, correlation_id: str) -> list[RecordedEvent]:
        """Every event whose metadata carries this `correlation_id`, in global order.
        SQL backends answer from an index on it."""
        return [r for r in self.iter_all() if r.correlation_id == correlation_id]

    def read_causation(self, causation_id: str) -> list[RecordedEvent]:
        """Every event whose metadata carries this `causation_id` (the command or event
        that caused it), in global order. SQL backends answer from an index on it."""
        return [r for r in self.iter_all() if r.causation_id == causation_id]

    def find_event(self, event_id: str) -> RecordedEvent | None:
        """The event with this id (its text form), or None. SQL backends use an index."""
        for recorded in self.iter_all():
            if recorded.event_id_text == event_id:
                return recorded
        return None

    def position_at(self, moment: datetime) -> int:
        """The position of the last event recorded at or before `moment` (aware), 0 if
        none was. Recorded times never decrease along the global order, so SQL backends
        answer by a search over positions rather than a scan."""
        moment = to_utc(moment, "moment")
        position = 0
        for recorded in self.iter_all():
            if recorded.recorded_at > moment:
                break
            position = recorded.position
        return position

    # -- personal data: per-subject data keys, wrapped, in the store's own database ------

    keyring: Keyring | None = None
    """Seals and opens personal data; set by the store when opened with `master_key=`.
    Without one, writing or reading a personal field raises `KeyUnavailable`."""

    def subject_keys(self, subjects: Sequence[str]) -> Mapping[str, bytes | None]:
        """The wrapped data key of each subject that has one, None for each forgotten
        subject; a subject never seen is absent."""
        raise NotImplementedError(f"{type(self).__name__} keeps no personal-data keys")

    def add_subject_key(self, subject: str, wrapped: bytes) -> bytes | None:
        """Keep `wrapped` as the subject's key unless it has one already. Returns the key
        kept (another writer's, if it came first), or None if the subject was forgotten."""
        raise NotImplementedError(f"{type(self).__name__} keeps no personal-data keys")

    def forget_subject(self, subject: str, audit: NewEvent) -> bool:
        """In one transaction: delete the subject's key, remember the subject as forgotten,
        and append `audit` to the forgotten-subjects stream. False, with nothing done, if
        the subject was forgotten before."""
        raise NotImplementedError(f"{type(self).__name__} keeps no personal-data keys")

    def forget(self, subject: str, *, metadata: Mapping[str, Any] | None = None) -> bool:
        """Erase every personal field of `subject` for good (crypto-shredding): its key is
        deleted and a `SubjectForgotten` event without personal data is recorded, with the
        active command context's metadata (who asked) plus `metadata`. Needs no master
        key. Idempotent: False if the subject was forgotten before."""
        from esgen.runtime._personal import forget_subject

        return forget_subject(self, subject, metadata)

    poll_interval: float = 0.1
    """The longest pause between two looks at the head in the polling `wait_for_events`."""

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Block until the store holds an event after position `after`, or until `timeout`
        seconds have passed; True if it does. Followers of the global order (projections,
        sagas) call this when they have caught up, rather than sleeping a fixed time.

        This default polls `head_position()`, every millisecond at first and backing off to
        `poll_interval`; backends told about commits (the in-memory store, PostgreSQL with
        LISTEN/NOTIFY) override it to wake at once. A True only says that reading after
        `after` will find something; what is read is all that counts.
        """
        validate_wait_args(after, timeout)
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            if self.head_position() > after:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, self.poll_interval)

    def close(self) -> None:  # noqa: B027 (a no-op default: not every backend holds resources)
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SnapshotStore(ABC):
    """Keeps the newest snapshot per stream. Snapshots are a cache: losing one costs time only."""

    @abstractmethod
    def load_snapshot(self, stream_id: str) -> Snapshot | None: ...

    @abstractmethod
    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store the snapshot unless one of a higher version is already stored."""


class TransactionalStore(Protocol[ConnT_co]):
    """A store whose database the caller may write to in the store's own transaction.

    Projections whose read model lives in the event store's database use this to store their
    checkpoint and their writes atomically; `append` calls made inside the block join it.
    """

    def transaction(self) -> AbstractContextManager[ConnT_co]: ...


def check_expected_version(stream_id: str, expected: int | ExpectedVersion, actual: int) -> None:
    """Raise `ConcurrencyError` unless a stream at `actual` satisfies `expected`."""
    if expected is ExpectedVersion.ANY:
        return
    wanted = 0 if expected is ExpectedVersion.NO_STREAM else expected
    if wanted != actual:
        raise ConcurrencyError(stream_id, expected, actual)


def validate_append_args(stream_id: str, expected: int | ExpectedVersion) -> None:
    check_stream_id(stream_id)
    if not isinstance(expected, ExpectedVersion) and (
        not isinstance(expected, int) or isinstance(expected, bool) or expected < 0
    ):
        raise ValueError(
            "expected version must be an int >= 0, ExpectedVersion.NO_STREAM or "
            f"ExpectedVersion.ANY (got {expected!r})"
        )


def validate_appends(appends: Sequence[StreamAppend]) -> None:
    """What every backend refuses of an `append_streams` call before touching the database."""
    seen: set[str] = set()
    for append in appends:
        if not isinstance(append, StreamAppend):
            raise TypeError(f"append_streams takes StreamAppend records (got {append!r})")
        stream_id = append.stream_id
        validate_append_args(stream_id, append.expected_version)
        if stream_id in seen:
            raise ValueError(
                f"stream {stream_id!r} appears more than once in one append_streams call; "
                "give each stream one StreamAppend with all its events"
            )
        seen.add(stream_id)
        validate_new_events(append.events)
        if append.snapshot is not None:
            validate_snapshot(append.snapshot)


def validate_new_events(events: Sequence[NewEvent]) -> None:
    """The same refusal from every backend, before anything is written."""
    for event in events:
        kind = event.event_type
        data = event.data
        version = event.event_version
        # The usual event (what a repository saves): ASCII type and data without NUL or
        # JSON escapes, a plain int version; nothing below could refuse it, and this runs
        # once per event appended.
        if (
            type(kind) is str
            and type(data) is str
            and type(version) is int
            and 1 <= version < 2**31
            and kind
            and kind.isascii()
            and data.isascii()
            and "\x00" not in kind
            and "\x00" not in data
            and "\\u" not in data
        ):
            continue
        _validate_new_event(event)


def _validate_new_event(event: NewEvent) -> None:
    """One event's refusal, with the reason named; only events the check above did not pass."""
    kind = event.event_type
    if not isinstance(kind, str) or not kind or "\x00" in kind:
        raise ValueError(f"event type must be a non-empty str without NUL (got {kind!r})")
    check_text(kind, "event type")
    version = event.event_version
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31:
        raise ValueError(
            f"event version of {kind!r} must be an int from 1 to 2**31 - 1 (got {version!r})"
        )
    # A raw NUL is never valid JSON; PostgreSQL would refuse it as text before parsing.
    if not isinstance(event.data, str) or "\x00" in event.data:
        raise ValueError(INVALID_DATA)
    check_json_text(event.data, f"the data of event {kind}")


def validate_snapshot(snapshot: Snapshot) -> None:
    """A snapshot's text, refused like an append's before anything is written."""
    check_stream_id(snapshot.stream_id)
    check_text(snapshot.fingerprint, f"the fingerprint of the snapshot of {snapshot.stream_id!r}")
    check_json_text(snapshot.state, f"the state of the snapshot of {snapshot.stream_id!r}")


INVALID_DATA = "event data must be JSON text, as Event.model_dump_json() gives (no NaN)"


def _refuse_constant(name: str) -> object:
    raise ValueError(name)


def check_json(data: str) -> None:
    """What the databases check of event data, for stores that cannot (memory, and SQLite
    tables made before the check)."""
    try:
        json.loads(data, parse_constant=_refuse_constant)
    except (TypeError, ValueError):
        raise ValueError(INVALID_DATA) from None


def validate_read_args(from_version: int, to_version: int | None, limit: int | None) -> None:
    if from_version < 1:
        raise ValueError(f"from_version must be >= 1 (got {from_version})")
    if to_version is not None and to_version < from_version:
        raise ValueError(f"to_version must be >= from_version (got {to_version} < {from_version})")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit})")


def validate_page_args(after: int, limit: int) -> None:
    if after < 0:
        raise ValueError(f"after must be a position >= 0 (got {after})")
    if limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit})")


def validate_wait_args(after: int, timeout: float) -> None:
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise ValueError(f"after must be a position >= 0 (got {after!r})")
    if not timeout >= 0:  # also refuses NaN
        raise ValueError(f"timeout must be >= 0 seconds (got {timeout!r})")


def recorded_times(
    events: Sequence[NewEvent], clock: Clock, last: datetime | None
) -> Iterator[datetime]:
    """The time to record each event at, in order: its own `recorded_at`, else the clock's
    (read once, and only if needed), never earlier than `last` nor than the time before it,
    so recorded times never decrease along the global order."""
    now: datetime | None = None
    for event in events:
        moment = event.recorded_at
        if moment is None:
            if now is None:
                now = to_utc(clock(), "the store clock's time")
            moment = now
        if last is not None and moment < last:
            moment = last
        last = moment
        yield moment


def check_snapshot_fits(snapshot: Snapshot, stream_id: str, new_version: int) -> None:
    """A snapshot passed to `append` must describe the stream being appended to, at most at
    the version this append produces: anything else is a bug in the caller."""
    if snapshot.stream_id != stream_id or not 1 <= snapshot.version <= new_version:
        raise ValueError(
            f"snapshot of stream {snapshot.stream_id!r} at version {snapshot.version} "
            f"does not fit an append to {stream_id!r} ending at version {new_version}"
        )
