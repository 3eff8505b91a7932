"""The repository: loads aggregates (snapshot + later events, upcast on read) and saves them.

Also answers temporal questions: the aggregate as of a version or a point in time, and the
stream's history with the state after each event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from functools import partial
from typing import Any, Generic, NamedTuple, Protocol, cast

from pydantic import BaseModel, ValidationError
from typing_extensions import TypeVar

from esgen.runtime._aggregate import NOT_FETCHED, Aggregate, TimesNotFetched, state_fingerprint
from esgen.runtime._context import save_metadata
from esgen.runtime._errors import (
    AggregateDefinitionError,
    AggregateNotFound,
    DecodeError,
    EventStoreError,
    RegistryError,
    StreamNotFound,
    UnhandledEvent,
    show_id,
)
from esgen.runtime._finite import dump_json
from esgen.runtime._ids import AnyId, IdT, encode_id
from esgen.runtime._messages import Event
from esgen.runtime._personal import (
    ENVELOPE_KEY,
    ForgottenSubject,
    has_envelope,
    keys_stored_with,
    open_json,
    personal_fields,
    sealed_text,
    without_values,
)
from esgen.runtime._ports import EventStore, SnapshotStore, StoredData, TimedStoredData
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    to_utc,
    utc_now,
)
from esgen.runtime._registry import EventRegistry

__all__ = ["AggregateFactory", "HistoryEntry", "Repository"]

logger = logging.getLogger("esgen.runtime")

AggT = TypeVar("AggT", bound=Aggregate[Any, Any])
AggT_co = TypeVar("AggT_co", bound=Aggregate[Any, Any], covariant=True)
IdT_contra = TypeVar("IdT_contra", bound=AnyId, contravariant=True, default=str)


class AggregateFactory(Protocol[AggT_co, IdT_contra]):
    """An aggregate class seen as what builds it from an id.

    Taking the class this way lets type checkers read both the aggregate class and its id
    type off one argument: `Repository(Account, ...)` is a `Repository[Account, UUID]`
    when Account subclasses `Aggregate[AccountState, UUID]`.
    """

    def __call__(self, aggregate_id: IdT_contra, /) -> AggT_co: ...


class _Default:
    def __repr__(self) -> str:
        return "<the store, if it keeps snapshots>"


_DEFAULT: Any = _Default()

# Events read per query when an aggregate is loaded: only one page of stored rows is held
# at a time, so a load takes memory independent of its stream's length; each page is one
# range of the (stream_id, stream_version) index, and a stream shorter than a page is
# read in one query, as before.
LOAD_PAGE_SIZE = 1000


class HistoryEntry(NamedTuple):
    """One step of an aggregate's history: the stored event, its typed (upcast) form, and
    the state right after it."""

    recorded: RecordedEvent
    event: Event
    state: BaseModel


class Repository(Generic[AggT, IdT]):
    """Loads and saves one aggregate class through an event store.

    Ids are typed as the aggregate declares them (`Aggregate[State, UUID]`); an id of
    another type raises TypeError rather than opening another stream.

    `snapshots` defaults to the event store itself when it keeps snapshots (so a snapshot is
    written in the same transaction as the events). `snapshot_every` overrides the aggregate
    class's setting; with None there (the default) or `snapshots=None`, snapshots are
    neither taken nor read. `clock` is handed to every aggregate it builds (`now()`).
    """

    def __init__(
        self,
        aggregate_class: AggregateFactory[AggT, IdT],
        store: EventStore,
        registry: EventRegistry,
        *,
        snapshots: SnapshotStore | None = _DEFAULT,
        snapshot_every: int | None = _DEFAULT,
        clock: Clock = utc_now,
    ) -> None:
        _check_aggregate_class(aggregate_class, registry)
        self._class = cast("type[AggT]", aggregate_class)
        self._store = store
        self._registry = registry
        self._clock = clock
        if snapshots is _DEFAULT:
            snapshots = store if isinstance(store, SnapshotStore) else None
        every = self._class.snapshot_every if snapshot_every is _DEFAULT else snapshot_every
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"snapshot_every must be an int >= 1 or None (got {every!r})")
        self._snapshots = snapshots if every is not None else None
        self._snapshot_every = every or 0
        # The snapshot travels inside the append when the store is also the snapshot store.
        self._snapshot_with_append = cast(object, self._snapshots) is store
        self._state_type = self._class.state_type
        self._fingerprint = self._class.state_fingerprint or state_fingerprint(self._state_type)
        # Whether saving may seal personal data (and so may make a subject's key).
        self.seals = personal_fields(self._state_type) is not None or any(
            personal_fields(event_class) is not None for event_class in self._class._dispatch
        )
        if self._snapshots is not None and _mixes_subjects(self._class, registry):
            # A snapshot is sealed under the aggregate's id; personal state filled from
            # events of another subject would outlive that subject's forget in it. Such an
            # aggregate is always rebuilt from its events, whose placeholders are right.
            logger.info(
                "%s takes no snapshots: its state holds personal data and it applies events "
                "whose data subject is not its id",
                self._class.__qualname__,
            )
            self._snapshots = None
            self._snapshot_every = 0

    @property
    def aggregate_class(self) -> type[AggT]:
        return self._class

    @property
    def store(self) -> EventStore:
        return self._store

    @property
    def clock(self) -> Clock:
        return self._clock

    def stream_id(self, aggregate_id: IdT) -> str:
        return self._class.stream_id_for(aggregate_id)

    def new(self, aggregate_id: IdT) -> AggT:
        """A new, empty aggregate with this repository's clock (nothing is read)."""
        return self._class(aggregate_id, clock=self._clock)

    # -- loading ------------------------------------------------------------------------

    def load(self, aggregate_id: IdT) -> AggT:
        """The aggregate at its latest version; `AggregateNotFound` if it has no events."""
        aggregate = self._load(aggregate_id)
        if aggregate is None:
            raise AggregateNotFound(
                self._class.aggregate_type, aggregate_id, self.stream_id(aggregate_id)
            )
        return aggregate

    def load_or_new(self, aggregate_id: IdT) -> AggT:
        """The aggregate, or a new empty one (version 0, no state) if it has no events."""
        aggregate = self._load(aggregate_id)
        return self.new(aggregate_id) if aggregate is None else aggregate

    def load_at(
        self, aggregate_id: IdT, *, version: int | None = None, at: datetime | None = None
    ) -> AggT:
        """The aggregate as it was at a version (or its last version, if lower), or as of a
        time: after the last event recorded at or before it. Raises `AggregateNotFound` if
        it did not exist yet. Meant for reading: saving it would raise `ConcurrencyError`
        unless it is at the stream's head."""
        if (version is None) == (at is None):
            raise TypeError("load_at needs exactly one of version= or at=")
        if version is not None and version < 1:
            raise ValueError(f"version must be >= 1 (got {version})")
        stream_id = self.stream_id(aggregate_id)
        aggregate = self.new(aggregate_id)
        snapshot = self._usable_snapshot(stream_id)
        try:
            if at is not None:
                self._replay_until(aggregate, stream_id, snapshot, to_utc(at, "at"))
            elif version is not None:
                if snapshot is not None and snapshot[1] <= version:
                    self._restore(aggregate, *snapshot)
                self._replay_stored(aggregate, stream_id, version)
        except StreamNotFound:
            pass
        except TimesNotFetched:  # the class reads event_time after all: again, with them
            return self.load_at(aggregate_id, version=version, at=at)
        if aggregate._version == 0:
            when = f" at version {version}" if version is not None else f" at {at}"
            raise AggregateNotFound(self._class.aggregate_type, aggregate_id, stream_id, when)
        return aggregate

    def history(
        self,
        aggregate_id: IdT,
        *,
        to_version: int | None = None,
        until: datetime | None = None,
    ) -> list[HistoryEntry]:
        """Every event of the aggregate with the state after it, oldest first: for audits
        and time-travel debugging. Always replays from the first event."""
        stream_id = self.stream_id(aggregate_id)
        try:
            records = self._store.read_stream(stream_id, to_version=to_version, until=until)
        except StreamNotFound:
            raise AggregateNotFound(self._class.aggregate_type, aggregate_id, stream_id) from None
        aggregate = self.new(aggregate_id)
        entries = []
        for recorded in records:
            event = self._registry.decode_recorded(recorded, self._store.keyring)
            aggregate._event_time = recorded.recorded_at
            aggregate._state = aggregate._apply_function(event)(aggregate, event)
            aggregate._version = recorded.stream_version
            entries.append(HistoryEntry(recorded, event, aggregate._state))
        return entries

    def _load(self, aggregate_id: IdT) -> AggT | None:
        stream_id = self.stream_id(aggregate_id)
        aggregate = self.new(aggregate_id)
        snapshot = self._usable_snapshot(stream_id)
        if snapshot is not None:
            self._restore(aggregate, *snapshot)
        try:
            self._replay_stored(aggregate, stream_id)
        except StreamNotFound:
            return None
        except TimesNotFetched:  # the class reads event_time after all: again, with them
            return self._load(aggregate_id)
        aggregate._snapshot_version = 0 if snapshot is None else snapshot[1]
        return aggregate

    def _replay_stored(
        self, aggregate: AggT, stream_id: str, to_version: int | None = None
    ) -> None:
        """Apply the stream's events after the aggregate's version (up to `to_version`),
        read a page at a time (`LOAD_PAGE_SIZE`). `StreamNotFound` if it has none at all."""
        while to_version is None or aggregate._version < to_version:
            start = aggregate._version + 1
            end = start + LOAD_PAGE_SIZE - 1
            if to_version is not None and to_version < end:
                end = to_version
            stored = self._read_data(stream_id, start, end)
            self._replay(aggregate, stored)
            if len(stored) <= end - start:
                return  # a short page: the stream's end

    def _read_data(
        self, stream_id: str, from_version: int, to_version: int | None = None
    ) -> Sequence[StoredData] | Sequence[TimedStoredData]:
        """The stream's events from `from_version`, with their times only for a class
        whose code reads `event_time`: the column costs every load that fetches it."""
        if self._class._reads_event_time:
            return self._store.read_stream_data_timed(
                stream_id, from_version=from_version, to_version=to_version
            )
        return self._store.read_stream_data(
            stream_id, from_version=from_version, to_version=to_version
        )

    def _usable_snapshot(self, stream_id: str) -> tuple[BaseModel, int] | None:
        """The stored snapshot's state and version, unless snapshots are off or it was taken
        with another state schema (then the aggregate is rebuilt from its events, and the
        next save snapshots again)."""
        if self._snapshots is None:
            return None
        return self._usable(self._snapshots.load_snapshot(stream_id), stream_id)

    def _usable(self, snapshot: Snapshot | None, stream_id: str) -> tuple[BaseModel, int] | None:
        """`_usable_snapshot` once the snapshot is read (an AsyncRepository reads it)."""
        if snapshot is None:
            return None
        if snapshot.fingerprint != self._fingerprint:
            logger.info(
                "ignoring snapshot of %s at version %d: state schema changed (%s != %s)",
                stream_id,
                snapshot.version,
                snapshot.fingerprint,
                self._fingerprint,
            )
            return None
        try:
            if not has_envelope(snapshot.state):
                return self._state_type.model_validate_json(snapshot.state), snapshot.version
            data = json.loads(snapshot.state)
            subject = data.get(ENVELOPE_KEY, {}).get("subject")
            keyring = self._store.keyring
            if isinstance(subject, str) and keyring is not None and keyring.forgotten(subject):
                # Rebuilt from the events instead, as it would be without the snapshot.
                logger.info("ignoring snapshot of %s: its subject was forgotten", stream_id)
                return None
            state = open_json(keyring, data, f"the snapshot of {stream_id!r}")
            # As JSON, as stored text is always read: bytes are base64 there.
            text = json.dumps(state, ensure_ascii=False)
            try:
                return self._state_type.model_validate_json(text), snapshot.version
            except ValidationError as exc:  # its values are personal data: not logged
                logger.warning(
                    "ignoring unreadable snapshot of %s: %s", stream_id, without_values(exc)
                )
                return None
        except ValidationError as exc:
            logger.warning("ignoring unreadable snapshot of %s: %s", stream_id, exc)
            return None

    def _replay_until(
        self,
        aggregate: AggT,
        stream_id: str,
        snapshot: tuple[BaseModel, int] | None,
        until: datetime,
    ) -> None:
        """Apply the stream's events recorded by `until`, a page at a time, from the
        snapshot if its own last event was recorded by then (times never decrease along a
        stream, so those events are a prefix of it)."""
        if snapshot is not None and self._store.read_stream(
            stream_id, from_version=snapshot[1], to_version=snapshot[1], until=until
        ):
            self._restore(aggregate, *snapshot)
        while True:
            records = self._store.read_stream(
                stream_id, from_version=aggregate._version + 1, until=until, limit=LOAD_PAGE_SIZE
            )
            self._replay(
                aggregate,
                [
                    (
                        r.stream_version,
                        r.event_type,
                        r.event_version,
                        r.data,
                        r._recorded_at_as_stored,
                    )
                    for r in records
                ],
            )
            if len(records) < LOAD_PAGE_SIZE:
                return

    @staticmethod
    def _restore(aggregate: AggT, state: BaseModel, version: int) -> None:
        aggregate._state = state
        aggregate._version = version

    def _replay(
        self, aggregate: AggT, stored: Sequence[StoredData] | Sequence[TimedStoredData]
    ) -> None:
        # The hot loop of every load: one dict lookup for the decoder (built once per stored
        # type and version), one for the apply method, no other per-event work. Errors are
        # explained after the fact, so explaining them costs nothing while all goes well.
        if not stored:
            return
        keyring = self._store.keyring
        decoders = self._registry.decoders(keyring)
        fast_decoder = self._registry._fast_decoder
        dispatch = aggregate._dispatch
        version = aggregate._version
        try:
            # Two loops alike but for one line, rather than a test per event: this is the
            # cost of every load.
            if len(stored[0]) == 5:
                # B007: `version` is read after the loop; it is the last version applied.
                for version, event_type, event_version, data, recorded_at in cast(  # noqa: B007
                    "Sequence[TimedStoredData]", stored
                ):
                    decode = decoders.get((event_type, event_version)) or fast_decoder(
                        event_type, event_version, keyring
                    )
                    event = decode(data)
                    apply = dispatch.get(event.__class__) or aggregate._apply_function(event)
                    # As the store gave it (text from SQLite): parsed only if read.
                    aggregate._event_time = recorded_at
                    aggregate._state = apply(aggregate, event)
            else:
                # Without the times (the class's code names no event_time): reading it
                # raises TimesNotFetched, and the load starts again with them.
                aggregate._event_time = NOT_FETCHED
                for version, event_type, event_version, data in cast(  # noqa: B007
                    "Sequence[StoredData]", stored
                ):
                    decode = decoders.get((event_type, event_version)) or fast_decoder(
                        event_type, event_version, keyring
                    )
                    event = decode(data)
                    apply = dispatch.get(event.__class__) or aggregate._apply_function(event)
                    aggregate._state = apply(aggregate, event)
                # Read after the load, event_time is the last event's, from the store.
                aggregate._event_time = version
                aggregate._event_time_of = partial(self._stored_time, self.stream_id(aggregate.id))
        except Exception as exc:
            error = self._explain(exc, aggregate, version, stored)
            if error is exc:
                raise
            raise error from exc
        aggregate._version = version

    def _stored_time(self, stream_id: str, version: int) -> datetime:
        (recorded,) = self._store.read_stream(stream_id, from_version=version, to_version=version)
        return recorded.recorded_at

    def _explain(
        self,
        exc: Exception,
        aggregate: AggT,
        version: int,
        stored: Sequence[StoredData] | Sequence[TimedStoredData],
    ) -> Exception:
        """Turn a failure while replaying event `version` into an error that says where."""
        event_type, event_version, data = next(s[1:4] for s in stored if s[0] == version)
        if isinstance(exc, ValidationError):
            try:
                self._registry.decode(event_type, event_version, data, self._store.keyring)
            except DecodeError as decode_error:
                exc = decode_error  # the stored data did not validate, not an apply method
        if isinstance(exc, DecodeError | UnhandledEvent):
            exc.add_note(
                f"while loading {aggregate.aggregate_type} {show_id(aggregate.id)}: event "
                f"{version} of stream {self.stream_id(aggregate.id)!r}"
            )
        return exc

    # -- saving -------------------------------------------------------------------------

    def save(
        self, aggregate: AggT, *, metadata: Mapping[str, Any] | None = None
    ) -> AppendResult | None:
        """Append the aggregate's pending events, expecting the version it was loaded at.

        Raises `ConcurrencyError` (writing nothing) if the stream moved on meanwhile; the
        events then stay pending. Every event carries the active command context's
        metadata plus `metadata`. Returns None if there was nothing to save.
        """
        if not aggregate._pending:
            return None
        with keys_stored_with(self._store) if self.seals else nullcontext():
            append, snapshot = self._prepare_save(aggregate, save_metadata(metadata))
            result = self._store.append(
                append.stream_id, append.events, append.expected_version, snapshot=append.snapshot
            )
        self._finish_save(aggregate, snapshot)
        return result

    def _save_snapshot_separately(self, snapshot: Snapshot) -> None:
        assert self._snapshots is not None
        try:
            self._snapshots.save_snapshot(snapshot)
        except EventStoreError as exc:
            # The events are saved; a missing snapshot only costs a longer load later.
            logger.warning("could not save the snapshot of %s: %s", snapshot.stream_id, exc)

    def _prepare_save(
        self,
        aggregate: AggT,
        metadata: Mapping[str, Any],
        metadata_of: Callable[[Event], Mapping[str, Any]] | None = None,
    ) -> tuple[StreamAppend, Snapshot | None]:
        """What saving the aggregate's pending events appends, and the snapshot due (also
        inside the append when the store keeps it); changes nothing. A unit of work gathers
        these from several repositories into one `append_streams`."""
        pending = aggregate._pending
        latest = self._registry._latest
        for event in pending:
            cls = event.__class__
            if latest.get(cls.event_type) is not cls:
                raise RegistryError(_not_latest(self._registry, cls))
        # Each event is stored with the time the aggregate recorded it (what its apply
        # method saw as event_time), so a reload replays it at the same moment. Positional
        # arguments: this runs once per event saved.
        encode: Callable[[Event], str] = dump_json
        if any(personal_fields(event.__class__) for event in pending):
            # Sealed under the event's own subject field, or the aggregate's id.
            encode = partial(
                sealed_text, keyring=self._store.keyring, subject=encode_id(aggregate.id)
            )
        new_events = [
            NewEvent(
                event.event_type,
                event.event_version,
                encode(event),
                metadata if metadata_of is None else metadata_of(event),
                None,
                moment,
            )
            for event, moment in zip(pending, aggregate._pending_times, strict=True)
        ]
        version = aggregate._version
        expected = version - len(pending)
        stream_id = self.stream_id(aggregate.id)
        snapshot = None
        if self._snapshot_every and version - aggregate._snapshot_version >= self._snapshot_every:
            # From the state in memory: no read of the aggregate to take it.
            state = self._snapshot_state(aggregate, stream_id)
            if state is not None:
                snapshot = Snapshot(
                    stream_id,
                    version,
                    self._fingerprint,
                    state,
                    to_utc(self._clock(), "the snapshot clock's time"),
                )
        append = StreamAppend(
            stream_id,
            new_events,
            expected or ExpectedVersion.NO_STREAM,
            snapshot if self._snapshot_with_append else None,
        )
        return append, snapshot

    def _snapshot_state(self, aggregate: AggT, stream_id: str) -> str | None:
        """The state's stored text, its personal fields sealed under the aggregate's id;
        None (no snapshot) once that subject is forgotten: a snapshot is only a cache."""
        what = f"the state of {stream_id!r}"
        if personal_fields(type(aggregate.state)) is None:
            return dump_json(aggregate.state, what)
        try:
            return sealed_text(aggregate.state, self._store.keyring, encode_id(aggregate.id), what)
        except ForgottenSubject:
            return None

    def _finish_save(self, aggregate: AggT, snapshot: Snapshot | None) -> None:
        """After the append of `_prepare_save` committed: the events are no longer pending,
        and the snapshot, if one was due, is stored (unless it rode along) and remembered."""
        aggregate._pending.clear()
        aggregate._pending_times.clear()
        if snapshot is not None:
            if not self._snapshot_with_append:
                self._save_snapshot_separately(snapshot)
            aggregate._snapshot_version = snapshot.version


def _mixes_subjects(cls: type[Aggregate[Any, Any]], registry: EventRegistry) -> bool:
    """Whether the aggregate's state has personal fields and some version of an event it
    applies names its own data subject (`data_subject`), which may be another's than the
    aggregate's id."""
    if personal_fields(cls.state_type) is None:
        return False
    versions = registry._classes
    return any(
        spec is not None and spec.subject is not None
        for event_class in cls._dispatch
        for version in versions.get(event_class.event_type, {}).values()
        for spec in (personal_fields(version),)
    )


def _check_aggregate_class(cls: object, registry: EventRegistry) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Aggregate)):
        raise AggregateDefinitionError(f"Repository needs an Aggregate subclass (got {cls!r})")
    name = cls.__qualname__
    if not isinstance(getattr(cls, "aggregate_type", None), str) or not cls.aggregate_type:
        raise AggregateDefinitionError(
            f"{name} must set aggregate_type: it is part of every stream id, so it is never "
            "derived from the class name (renaming the class would orphan its streams)"
        )
    state_type = getattr(cls, "state_type", None)
    if not (isinstance(state_type, type) and issubclass(state_type, BaseModel)):
        raise AggregateDefinitionError(
            f"{name} needs a pydantic state class: subclass Aggregate[YourState] or set state_type"
        )
    if cls._definition_problems:
        raise AggregateDefinitionError("; ".join(cls._definition_problems))
    for event_class in cls._dispatch:
        if not registry.is_latest(event_class):
            raise RegistryError(
                f"{name} applies {event_class.__qualname__}, but "
                + _not_latest(registry, event_class)
            )


def _not_latest(registry: EventRegistry, cls: type[Event]) -> str:
    event_type = getattr(cls, "event_type", None)
    if not isinstance(event_type, str) or event_type not in registry:
        return f"{cls.__qualname__} (event type {event_type!r}) is not registered in the registry"
    latest = registry.latest(event_type)
    return (
        f"{cls.__qualname__} is version {cls.event_version} of {event_type!r}, and only the "
        f"latest version ({latest.__qualname__}, version {latest.event_version}) may be "
        "recorded or applied: older versions are upcast on read"
    )
