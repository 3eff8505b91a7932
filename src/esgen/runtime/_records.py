"""The values that cross the store port: events going in, events coming out, snapshots.

These are plain slotted classes rather than pydantic models: every event read or written goes
through them, so construction must cost next to nothing. Fields that are expensive to parse
(event id, metadata, recorded-at) are kept as the backend returned them and parsed on first use,
because rebuilding an aggregate or running a projection rarely looks at them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from itertools import starmap
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from esgen.runtime._errors import BackendError
from esgen.runtime._finite import dump_json
from esgen.runtime._text import check_text, strings

if TYPE_CHECKING:
    from esgen.runtime._messages import Event

__all__ = [
    "AppendResult",
    "Clock",
    "ExpectedVersion",
    "NewEvent",
    "RecordedEvent",
    "Snapshot",
    "StreamAppend",
    "StreamSummary",
    "new_event_id",
    "utc_now",
]

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime; stores take one so tests can control time."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def utc_now() -> datetime:
    return datetime.now(UTC)


# Ids are UUID version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then random bits.
# Ids made one after another share their leading bytes, so the indexes on event ids and on
# correlation and causation ids (which are event ids or command context ids, made here too)
# grow at their right edge instead of touching a random page per insert: a random uuid4
# made each indexed append about 1.5x slower. The time in an id is the writer's clock, read
# for order only; `recorded_at` stays the time of record.
_V7_SET = (0x7 << 76) | (0b10 << 62)
_V7_CLEAR = ~((0xF << 76) | (0b11 << 62)) & ((1 << 80) - 1)  # 74 random bits kept


def new_event_id() -> UUID:
    milliseconds = time.time_ns() // 1_000_000
    return UUID(int=(milliseconds << 80) | (int.from_bytes(os.urandom(10)) & _V7_CLEAR) | _V7_SET)


# One encoder reused for every append: json.dumps with options builds a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode_metadata(metadata: Mapping[str, Any]) -> str:
    try:
        text: str = _encode_json(metadata if type(metadata) is dict else dict(metadata))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"event metadata must be JSON-serialisable ({exc}): {metadata!r}") from exc
    if not text.isascii():
        _check_metadata_text(metadata)
    return text


def _check_metadata_text(metadata: Mapping[str, Any]) -> None:
    # The encoder keeps non-ASCII as is (ensure_ascii=False), lone surrogates too, which
    # no driver can send: refuse them here naming the key, as every backend does.
    for path, text in strings(metadata, ""):
        check_text(text, f"event metadata {path}")


def to_utc(moment: datetime, what: str = "time") -> datetime:
    """Normalise to UTC; a naive datetime is refused because its zone would be a guess."""
    if moment.tzinfo is UTC:
        # Already UTC (every clock of the runtime's): the same object, not a copy, so that
        # events sharing one moment share one datetime, formatted once when stored.
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {moment.isoformat()})")
    return moment.astimezone(UTC)


class ExpectedVersion(Enum):
    """What `append` may assume about a stream besides an exact version number."""

    NO_STREAM = "no stream"
    """The stream must not exist yet (same as expected version 0)."""
    ANY = "any"
    """Append whatever the stream's version; no optimistic concurrency check."""


class AppendResult(NamedTuple):
    stream_id: str
    stream_version: int
    """The stream's version after the append (unchanged if no events were given)."""
    position: int | None
    """Global position of the last event written; None if no events were given."""


class NewEvent:
    """One event to append: type and schema version, JSON data, metadata and a fresh id."""

    __slots__ = ("data", "event_id", "event_type", "event_version", "metadata", "recorded_at")

    def __init__(
        self,
        event_type: str,
        event_version: int,
        data: str,
        metadata: Mapping[str, Any] | None = None,
        event_id: UUID | None = None,
        recorded_at: datetime | None = None,
    ) -> None:
        self.event_type = event_type
        self.event_version = event_version
        self.data = data
        """The event's fields as JSON text (what `Event.model_dump_json()` returns)."""
        self.metadata = _EMPTY if metadata is None else metadata
        """Correlation and causation ids and free-form keys; must be JSON-serialisable."""
        self.event_id = new_event_id() if event_id is None else event_id
        self.recorded_at = None if recorded_at is None else to_utc(recorded_at, "recorded_at")
        """When the writer decided the event (in UTC), recorded instead of the store's clock;
        a store still never records a time earlier than the events before it."""

    @classmethod
    def from_event(
        cls,
        event: Event,
        metadata: Mapping[str, Any] | None = None,
        event_id: UUID | None = None,
        recorded_at: datetime | None = None,
    ) -> NewEvent:
        return cls(
            event.event_type,
            event.event_version,
            dump_json(event),
            metadata,
            event_id,
            recorded_at,
        )

    def __repr__(self) -> str:
        when = "" if self.recorded_at is None else f", recorded_at={self.recorded_at!r}"
        return (
            f"NewEvent({self.event_type!r}, {self.event_version}, {self.data!r}, "
            f"metadata={dict(self.metadata)!r}, event_id={self.event_id!r}{when})"
        )


class StreamAppend(NamedTuple):
    """One stream's part of `EventStore.append_streams`: its events, the version the writer
    last saw (as for `append`) and optionally a snapshot stored in the same transaction."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | ExpectedVersion
    snapshot: Snapshot | None = None


class StreamSummary(NamedTuple):
    """One stream as `EventStore.streams` lists it, for inspection tools."""

    stream_id: str
    version: int
    """The version of its last event: its number of events."""
    first_recorded_at: datetime
    last_recorded_at: datetime


# len("2026-01-05T09:00:00.000000+00:00"): a time stored in the canonical UTC form.
_STORED_TIME_LENGTH = 32


class DeferredColumns:
    """The event id, metadata and time of a page of events read without them, read for the
    whole page on first use. A projection's handlers mostly read the data alone, and
    those three columns were a third of reading a page (benchmarks/projection_sqlite.py).
    Committed events never change, so reading them later gives what reading them with the
    page would have given; an event whose transaction rolled back since (its position may
    hold another event now) is refused, not mixed with another's columns. Holds no
    reference to the records: no cycle for the collector.
    """

    __slots__ = ("_fetch", "_first", "_last", "_rows")

    def __init__(
        self, fetch: Callable[[int, int], Iterable[tuple[Any, ...]]], first: int, last: int
    ) -> None:
        self._fetch = fetch
        """(first, last) -> rows of (position, stream id, stream version, event id,
        metadata, recorded_at) between those positions"""
        self._first = first
        self._last = last
        self._rows: dict[int, tuple[Any, ...]] | None = None

    def columns(self, position: int, stream_id: str, stream_version: int) -> tuple[Any, ...]:
        """(event id, metadata, recorded_at) of the event read at `position`."""
        rows = self._rows
        if rows is None:
            rows = self._rows = {row[0]: row[1:] for row in self._fetch(self._first, self._last)}
        row = rows.get(position)
        if row is None or row[0] != stream_id or row[1] != stream_version:
            raise BackendError(
                f"the event read at position {position} (version {stream_version} of stream "
                f"{stream_id!r}) is no longer in the store: the transaction that wrote it "
                "rolled back after it was read"
            )
        return row[2:]


class RecordedEvent:
    """An event as the store recorded it. Read-only; upcasting never changes it.

    `data` is the JSON text exactly as stored, at the stored schema `event_version`; use
    `EventRegistry.decode_recorded` to get the typed event of the latest version.
    """

    __slots__ = (
        "_data",
        "_event_id",
        "_event_type",
        "_event_version",
        "_metadata",
        "_position",
        "_recorded_at",
        "_stream_id",
        "_stream_version",
    )
    # The last three: as given, the stored text (parsed once by the properties), or the
    # page's DeferredColumns until one of them is first read.
    _event_id: UUID | str | DeferredColumns
    _metadata: Mapping[str, Any] | str | DeferredColumns
    _recorded_at: datetime | str | DeferredColumns

    def __init__(
        self,
        position: int,
        stream_id: str,
        stream_version: int,
        event_type: str,
        event_version: int,
        data: str,
        event_id: UUID | str,
        metadata: Mapping[str, Any] | str,
        recorded_at: datetime | str,
    ) -> None:
        # Backends may pass the stored text of the last three; the properties parse it once.
        self._position = position
        self._stream_id = stream_id
        self._stream_version = stream_version
        self._event_type = event_type
        self._event_version = event_version
        self._data = data
        self._event_id = event_id
        self._metadata = metadata
        self._recorded_at = recorded_at

    @classmethod
    def _page_without_columns(
        cls,
        rows: Sequence[tuple[int, str, int, str, int, str]],
        fetch: Callable[[int, int], Iterable[tuple[Any, ...]]],
    ) -> list[RecordedEvent]:
        """Records of a page of rows read without event id, metadata and time: `fetch`
        reads those for the page when one of them is first asked for."""
        if not rows:
            return []
        # Typed as the columns it stands for: the properties fill them in before use.
        deferred: Any = DeferredColumns(fetch, rows[0][0], rows[-1][0])
        rest = (deferred, deferred, deferred)
        return list(starmap(cls, [row + rest for row in rows]))

    @property
    def _recorded_at_as_stored(self) -> datetime | str:
        """The time as the store gave it: text is parsed only if someone asks."""
        value = self._recorded_at
        if isinstance(value, DeferredColumns):
            value = self._undefer(value)[2]
        return value

    @property
    def position(self) -> int:
        """Position in the store's global order, unique and increasing with commit order."""
        return self._position

    @property
    def stream_id(self) -> str:
        return self._stream_id

    @property
    def stream_version(self) -> int:
        """1 for the first event of the stream, then 2, 3, ... without gaps."""
        return self._stream_version

    @property
    def event_type(self) -> str:
        return self._event_type

    @property
    def event_version(self) -> int:
        """The schema version the data was written with (not upcast)."""
        return self._event_version

    @property
    def data(self) -> str:
        return self._data

    def _undefer(self, deferred: DeferredColumns) -> tuple[Any, ...]:
        """The event id, metadata and time of a record read without them, now kept. Given
        the value its caller read: another thread may have filled the slots meanwhile."""
        columns = deferred.columns(self._position, self._stream_id, self._stream_version)
        self._event_id, self._metadata, self._recorded_at = columns
        return columns

    @property
    def event_id(self) -> UUID:
        value = self._event_id
        if isinstance(value, DeferredColumns):
            value = self._undefer(value)[0]
        if isinstance(value, str):
            value = self._event_id = UUID(value)
        return value

    @property
    def event_id_text(self) -> str:
        """The event id as text, without parsing it when the store gave text (the relay
        writes it into every message's headers)."""
        value = self._event_id
        if isinstance(value, DeferredColumns):
            value = self._undefer(value)[0]
        return value if isinstance(value, str) else str(value)

    @property
    def recorded_at_text(self) -> str:
        """`recorded_at` in ISO 8601 with microseconds and UTC offset, without parsing it
        when the store gave it so (SQLite stores exactly that text)."""
        value = self._recorded_at
        if isinstance(value, DeferredColumns):
            value = self._undefer(value)[2]
        if isinstance(value, str) and len(value) == _STORED_TIME_LENGTH and value[-6:] == "+00:00":
            return value
        return self.recorded_at.isoformat(timespec="microseconds")

    @property
    def metadata(self) -> Mapping[str, Any]:
        value = self._metadata
        if isinstance(value, DeferredColumns):
            value = self._undefer(value)[1]
        if isinstance(value, str):
            value = self._metadata = MappingProxyType(json.loads(value))
        return value

    @property
    def recorded_at(self) -> datetime:
        """When the store committed the event, in UTC; never decreases along the global order."""
        value = self._recorded_at
        if isinstance(value, DeferredColumns):
            value = self._undefer(value)[2]
        if isinstance(value, str):
            value = self._recorded_at = datetime.fromisoformat(value)
        return value

    @property
    def correlation_id(self) -> str | None:
        value = self.metadata.get("correlation_id")
        return value if isinstance(value, str) else None

    @property
    def causation_id(self) -> str | None:
        value = self.metadata.get("causation_id")
        return value if isinstance(value, str) else None

    def _values(self) -> tuple[Any, ...]:
        """Every field, in the constructor's order, the deferred ones read."""
        return (
            self._position,
            self._stream_id,
            self._stream_version,
            self._event_type,
            self._event_version,
            self._data,
            self.event_id,
            self.metadata,
            self.recorded_at,
        )

    def _key(self) -> tuple[Any, ...]:
        *head, metadata, recorded_at = self._values()
        return (*head, dict(metadata), recorded_at)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordedEvent):
            return NotImplemented
        return self._key() == other._key()

    def __reduce__(self) -> tuple[Any, ...]:
        # By value, deferred columns read first: a copy needs neither the store nor the
        # page it was read with. The metadata's read-only view does not pickle: its JSON
        # text does, and is read back as that view.
        *head, metadata, recorded_at = self._values()
        return (RecordedEvent, (*head, encode_metadata(metadata), recorded_at))

    def __hash__(self) -> int:
        return hash((self._stream_id, self._stream_version, self._position))

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(position={self._position}, stream_id={self._stream_id!r}, "
            f"stream_version={self._stream_version}, event_type={self._event_type!r}, "
            f"event_version={self._event_version}, data={self._data!r}, "
            f"event_id={str(self.event_id)!r}, metadata={dict(self.metadata)!r}, "
            f"recorded_at={self.recorded_at.isoformat()!r})"
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state at one version, so loading need not replay the whole stream.

    A cache, not a fact: it may be dropped or replaced at any time, and it is ignored when
    `fingerprint` (of the state class's schema) no longer matches the code.
    """

    stream_id: str
    version: int
    fingerprint: str
    state: str
    """The state as JSON text (`model_dump_json()` of the aggregate's state)."""
    taken_at: datetime
