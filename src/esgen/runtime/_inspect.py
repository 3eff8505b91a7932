"""Read-only questions about a store, for people: what `esgen inspect` and audits ask.

Everything here reads through the context's own registry and aggregate classes, so events
come back typed and upcast to their latest version, and states are computed by the user's
own apply methods. Nothing here writes. Iterators stream: a store of millions of events is
read a page at a time, so memory does not grow with what is listed.

An event this code cannot decode (an unknown type, data that no longer validates) is shown
as such, with its stored payload, instead of stopping a listing: inspecting a broken store
is when these tools are needed most.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from esgen.runtime._aggregate import Aggregate
from esgen.runtime._errors import AggregateNotFound, DecodeError, EventStoreError
from esgen.runtime._messages import Event
from esgen.runtime._ports import DEFAULT_PAGE_SIZE, EventStore
from esgen.runtime._records import RecordedEvent, to_utc
from esgen.runtime._registry import EventRegistry
from esgen.runtime._repository import Repository

__all__ = [
    "ACTOR_KEYS",
    "EventView",
    "FieldChange",
    "HistoryStep",
    "InspectError",
    "Inspector",
    "StateView",
    "StreamView",
    "Trace",
    "TraceCommand",
    "TraceEvent",
]

ACTOR_KEYS = ("actor", "user")
"""Metadata keys naming who acted, in the order looked at: `command_context(actor=...)`
(or `user=...`, which many applications already write) puts them on every event."""

_MICROSECOND = timedelta(microseconds=1)

ApplyCall = Callable[[Aggregate[Any, Any], Event], BaseModel]
Debugger = Callable[[ApplyCall, Aggregate[Any, Any], Event], BaseModel]
"""Calls an apply method (the function, the aggregate, the event) and returns what it
returns: `pdb.Pdb().runcall` is one, stopping at the method's first line."""


class InspectError(EventStoreError, LookupError):
    """What was asked for is not in the store (a stream, an id, a moment): one line that
    says what was looked for and where."""


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def actor_of(metadata: Mapping[str, Any]) -> str | None:
    for key in ACTOR_KEYS:
        value = metadata.get(key)
        if isinstance(value, str):
            return value
    return None


def _text(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _finite(text: str) -> float | str:
    # A number too large for a float (1e400) stays the text it was: JSON has no infinity.
    number = float(text)
    return number if math.isfinite(number) else text


def _stored_payload(recorded: RecordedEvent) -> Any:
    """The stored JSON as values; `EventView.stored_data` keeps the exact text (a float
    with more digits than a double holds is rounded here, not there)."""
    try:
        return json.loads(recorded.data, parse_float=_finite)
    except ValueError:  # stores check JSON on the way in; an old or foreign row may not
        return recorded.data


def _reason(exc: DecodeError) -> str:
    """Why an event cannot be decoded, on one line: the first problem pydantic names
    (field and message) after the summary, not the summary alone."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("For further information", "Note:"))]
    return "; ".join(lines[:3]) if lines else type(exc).__name__


@dataclass(frozen=True, slots=True)
class StreamView:
    stream_id: str
    aggregate: str | None
    """The aggregate type whose stream this is; None for a stream of no known type."""
    events: int
    first_recorded_at: datetime
    last_recorded_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "aggregate": self.aggregate,
            "events": self.events,
            "first_recorded_at": _time(self.first_recorded_at),
            "last_recorded_at": _time(self.last_recorded_at),
        }


@dataclass(frozen=True, slots=True)
class EventView:
    """One recorded event as a person reads it: where, when, why, by whom, and its data,
    upcast to the current version (or as stored)."""

    position: int
    stream_id: str
    stream_version: int
    event_type: str
    """The type it is read as (a renamed type's current name)."""
    stored_type: str
    stored_version: int
    current_version: int | None
    """The version it is read as; None when it cannot be decoded."""
    recorded_at: datetime
    event_id: str
    correlation_id: str | None
    causation_id: str | None
    actor: str | None
    command: str | None
    saga: str | None
    metadata: Mapping[str, Any]
    data: Any
    """The payload: the typed event's fields at the current version, or the stored JSON
    (when asked for as stored, or when it cannot be decoded)."""
    as_stored: bool
    stored_data: str
    """The payload exactly as recorded (JSON text)."""
    error: str | None = None
    """Why the event cannot be decoded; None when it can."""
    event: Event | None = field(default=None, compare=False, repr=False)

    @property
    def decoded(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "event_type": self.event_type,
            "stored_type": self.stored_type,
            "stored_version": self.stored_version,
            "current_version": self.current_version,
            "recorded_at": _time(self.recorded_at),
            "event_id": self.event_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "command": self.command,
            "saga": self.saga,
            "metadata": dict(self.metadata),
            "as_stored": self.as_stored,
            "decoded": self.decoded,
            "error": self.error,
            "data": self.data,
            # The exact text where the values may not be the decoded event's (as stored,
            # or undecodable): a float's digits, key order and spacing as recorded.
            "stored_data": self.stored_data if self.as_stored or not self.decoded else None,
        }


@dataclass(frozen=True, slots=True)
class StateView:
    stream_id: str
    aggregate: str
    version: int
    """The version of the last event applied."""
    recorded_at: datetime | None
    """When that event was recorded (None if not read, as when restored from a snapshot
    with no later event)."""
    at: datetime | None
    """The moment asked for, if one was."""
    state: BaseModel

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "aggregate": self.aggregate,
            "version": self.version,
            "recorded_at": None if self.recorded_at is None else _time(self.recorded_at),
            "at": None if self.at is None else _time(self.at),
            "state_type": type(self.state).__qualname__,
            "state": self.state.model_dump(mode="json"),
        }


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of the state, by dotted path, before and after an event."""

    path: str
    change: Literal["added", "removed", "changed"]
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"field": self.path, "change": self.change}
        if self.change != "added":
            found["before"] = self.before
        if self.change != "removed":
            found["after"] = self.after
        return found


@dataclass(frozen=True, slots=True)
class HistoryStep:
    event: EventView
    changes: tuple[FieldChange, ...]
    """What the event changed in the state, field by field."""
    state: BaseModel | None
    """The state after the event; None when the event cannot be decoded (and the state
    after it cannot be known)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.event.stream_version,
            "event": self.event.to_json(),
            "changes": [change.to_json() for change in self.changes],
            "state": None if self.state is None else self.state.model_dump(mode="json"),
        }


def diff_states(before: Any, after: Any, prefix: str = "") -> list[FieldChange]:
    """Field-by-field differences of two JSON-shaped values; objects are walked into, any
    other value (lists included) is compared whole."""
    if before is None and isinstance(after, dict) and not prefix:
        return _added("", after)  # the first event: every field is new
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in (*before, *(k for k in after if k not in before)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in after:
                changes.append(FieldChange(path, "removed", before[key], None))
            elif key not in before:
                changes.extend(_added(path, after[key]))
            else:
                changes.extend(diff_states(before[key], after[key], path))
        return changes
    if before == after and type(before) is type(after):
        return []
    return [FieldChange(prefix or "(state)", "changed", before, after)]


def _added(path: str, value: Any) -> list[FieldChange]:
    if isinstance(value, dict) and value:
        return [
            change
            for key, item in value.items()
            for change in _added(f"{path}.{key}" if path else str(key), item)
        ]
    return [FieldChange(path, "added", None, value)]


@dataclass(slots=True)
class TraceEvent:
    view: EventView
    aggregate: str | None
    children: list[TraceCommand] = field(default_factory=list)
    """The commands sagas sent reacting to this event."""

    def node_json(self) -> dict[str, Any]:
        """This node without its children (`to_json` adds them)."""
        view = self.view
        return {
            "kind": "event",
            "position": view.position,
            "event_id": view.event_id,
            "stream_id": view.stream_id,
            "aggregate": self.aggregate,
            "stream_version": view.stream_version,
            "event_type": view.event_type,
            "stored_version": view.stored_version,
            "current_version": view.current_version,
            "recorded_at": _time(view.recorded_at),
            "actor": view.actor,
            "command": view.command,
            "saga": view.saga,
            "decoded": view.decoded,
        }

    def to_json(self) -> dict[str, Any]:
        return _tree_json(self)


@dataclass(slots=True)
class TraceCommand:
    """What caused a group of events: a command (or several handled under one command
    context), known by the causation id its events carry."""

    causation_id: str
    saga: str | None
    actor: str | None
    recorded_at: datetime
    commands: list[str] = field(default_factory=list)
    children: list[TraceEvent] = field(default_factory=list)

    def node_json(self) -> dict[str, Any]:
        """This node without its children (`to_json` adds them)."""
        return {
            "kind": "command",
            "causation_id": self.causation_id,
            "commands": list(self.commands),
            "saga": self.saga,
            "actor": self.actor,
            "recorded_at": _time(self.recorded_at),
        }

    def to_json(self) -> dict[str, Any]:
        return _tree_json(self)


def _tree_json(root: TraceEvent | TraceCommand) -> dict[str, Any]:
    """The subtree as JSON, built with a stack of its own: a saga that ran for thousands of
    steps makes a causation chain deeper than Python's recursion limit."""
    top = {**root.node_json(), "children": []}
    pending: list[tuple[TraceEvent | TraceCommand, list[dict[str, Any]]]] = [
        (root, top["children"])
    ]
    while pending:
        node, into = pending.pop()
        for child in node.children:
            built = {**child.node_json(), "children": []}
            into.append(built)
            pending.append((child, built["children"]))
    return top


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole conversation: every event of one correlation id, as a causation tree."""

    query: str
    matched: Literal["correlation", "event", "causation"]
    correlation_id: str | None
    """None when the events found carry no correlation id (written without a context by
    code older than command contexts)."""
    events: tuple[EventView, ...]
    roots: tuple[TraceCommand, ...]

    @property
    def streams(self) -> list[str]:
        return list(dict.fromkeys(view.stream_id for view in self.events))

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "matched": self.matched,
            "correlation_id": self.correlation_id,
            "first_recorded_at": _time(self.events[0].recorded_at),
            "last_recorded_at": _time(self.events[-1].recorded_at),
            "event_count": len(self.events),
            "streams": self.streams,
            "roots": [root.to_json() for root in self.roots],
        }


class Inspector:
    """Read-only inspection of one context's store; `service.inspect()` builds one."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry,
        repositories: Sequence[Repository[Any, Any]],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1 (got {page_size})")
        self.store = store
        self.registry = registry
        self._repositories = {r.aggregate_class.aggregate_type: r for r in repositories}
        self._page_size = page_size

    @property
    def aggregate_types(self) -> list[str]:
        return sorted(self._repositories)

    def aggregate_of(self, stream_id: str) -> str | None:
        """The aggregate type whose stream this is (`Account-<id>` -> "Account")."""
        kind, dash, _ = stream_id.partition("-")
        return kind if dash and kind in self._repositories else None

    # -- listing ----------------------------------------------------------------------

    def streams(
        self,
        *,
        aggregate: str | None = None,
        prefix: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[StreamView]:
        """Every stream, by stream id: of one aggregate type, whose id starts with
        `prefix`, with events recorded between `since` and `until` (both included)."""
        if aggregate is not None and aggregate not in self._repositories:
            raise InspectError(
                f"no aggregate type {aggregate!r} in this context "
                f"(aggregate types: {', '.join(self.aggregate_types)})"
            )
        since = None if since is None else to_utc(since, "since")
        until = None if until is None else to_utc(until, "until")
        wanted = "" if aggregate is None else f"{aggregate}-"
        if prefix.startswith(wanted):
            wanted = prefix
        elif not wanted.startswith(prefix):
            return  # the prefix names streams of another aggregate type: none of these
        for summary in self.store.streams(wanted):
            if since is not None and summary.last_recorded_at < since:
                continue
            if until is not None and summary.first_recorded_at > until:
                continue
            yield StreamView(
                summary.stream_id,
                self.aggregate_of(summary.stream_id),
                summary.version,
                summary.first_recorded_at,
                summary.last_recorded_at,
            )

    def view(self, recorded: RecordedEvent, *, as_stored: bool = False) -> EventView:
        """One recorded event as `events` shows it; decoding errors are kept, not raised."""
        metadata = recorded.metadata
        event: Event | None = None
        error: str | None = None
        current_version: int | None = None
        try:
            event = self.registry.decode_recorded(recorded, self.store.keyring)
        except DecodeError as exc:
            error = _reason(exc)
        else:
            current_version = event.event_version
        if as_stored or event is None:
            data = _stored_payload(recorded)
        else:
            data = event.model_dump(mode="json")
        return EventView(
            position=recorded.position,
            stream_id=recorded.stream_id,
            stream_version=recorded.stream_version,
            event_type=event.event_type
            if event is not None
            else self.registry.current_type(recorded.event_type),
            stored_type=recorded.event_type,
            stored_version=recorded.event_version,
            current_version=current_version,
            recorded_at=recorded.recorded_at,
            event_id=recorded.event_id_text,
            correlation_id=recorded.correlation_id,
            causation_id=recorded.causation_id,
            actor=actor_of(metadata),
            command=_text(metadata, "command"),
            saga=_text(metadata, "saga"),
            metadata=metadata,
            data=data,
            as_stored=as_stored,
            stored_data=recorded.data,
            error=error,
            event=event,
        )

    def events(
        self,
        stream_id: str,
        *,
        since: int | datetime | None = None,
        until: int | datetime | None = None,
        as_stored: bool = False,
    ) -> Iterator[EventView]:
        """The stream's events, oldest first, from `since` to `until` (both included): a
        global position (int) or a time. Read a page at a time."""
        since_position, since_time = _bound(since, "since")
        until_position, until_time = _bound(until, "until")
        for low, high in ((since_position, until_position), (since_time, until_time)):
            if low is not None and high is not None and high < low:  # type: ignore[operator]
                raise ValueError(f"until ({high}) is before since ({low})")
        if self.store.stream_version(stream_id) == 0:
            raise self._no_stream(stream_id)
        if until_time is not None:
            first = self.store.read_stream(stream_id, limit=1)[0]
            if first.recorded_at > until_time:
                raise InspectError(
                    f"{stream_id} has no events until {_time(until_time)}: its first event "
                    f"was recorded at {_time(first.recorded_at)}"
                )
        version = 1
        while True:
            page = self.store.read_stream(
                stream_id, from_version=version, until=until_time, limit=self._page_size
            )
            for recorded in page:
                if until_position is not None and recorded.position > until_position:
                    return
                if since_position is not None and recorded.position < since_position:
                    continue
                if since_time is not None and recorded.recorded_at < since_time:
                    continue
                yield self.view(recorded, as_stored=as_stored)
            if len(page) < self._page_size:
                return
            version = page[-1].stream_version + 1

    def _no_stream(self, stream_id: str) -> InspectError:
        kinds = ", ".join(self.aggregate_types) or "none"
        hint = ""
        if self.aggregate_of(stream_id) is None:
            hint = f"; stream ids look like <Aggregate>-<id> (aggregate types: {kinds})"
        return InspectError(f"no stream {stream_id!r} in the store{hint}")

    # -- states -----------------------------------------------------------------------

    def _repository(self, stream_id: str) -> tuple[Repository[Any, Any], Any]:
        if self.store.stream_version(stream_id) == 0:
            raise self._no_stream(stream_id)
        kind = self.aggregate_of(stream_id)
        if kind is None:
            raise InspectError(
                f"stream {stream_id!r} is not the stream of an aggregate of this context "
                f"(aggregate types: {', '.join(self.aggregate_types)})"
            )
        repository = self._repositories[kind]
        try:
            aggregate_id = repository.aggregate_class.id_from_stream_id(stream_id)
        except (TypeError, ValueError) as exc:
            raise InspectError(f"stream {stream_id!r}: {exc}") from None
        return repository, aggregate_id

    def state(
        self, stream_id: str, *, at: datetime | None = None, version: int | None = None
    ) -> StateView:
        """The aggregate's state at a version or as of a time (its latest without either),
        computed by its own apply methods from the newest usable snapshot on."""
        if at is not None and version is not None:
            raise TypeError("state takes at most one of at= and version=")
        repository, aggregate_id = self._repository(stream_id)
        kind = repository.aggregate_class.aggregate_type
        try:
            if at is not None:
                aggregate = repository.load_at(aggregate_id, at=to_utc(at, "at"))
            elif version is not None:
                aggregate = repository.load_at(aggregate_id, version=version)
                if aggregate.version < version:
                    raise InspectError(
                        f"{stream_id} has no version {version} (it ends at {aggregate.version})"
                    )
            else:
                aggregate = repository.load(aggregate_id)
        except AggregateNotFound:
            if self.store.stream_version(stream_id) == 0:
                raise self._no_stream(stream_id) from None
            first = self.store.read_stream(stream_id, limit=1)[0]
            raise InspectError(
                f"{stream_id} did not exist yet at {_time(to_utc(at, 'at'))}: its first event "
                f"was recorded at {_time(first.recorded_at)}"
                if at is not None
                else f"{stream_id} has no version {version}"
            ) from None
        except DecodeError as exc:
            raise InspectError(f"{stream_id}: {_one_line(exc)}") from None
        recorded_at = None
        if aggregate.version > 0:
            last = self.store.read_stream(
                stream_id, from_version=aggregate.version, to_version=aggregate.version
            )
            recorded_at = last[0].recorded_at if last else None
        return StateView(stream_id, kind, aggregate.version, recorded_at, at, aggregate.state)

    def history(self, stream_id: str) -> Iterator[HistoryStep]:
        """The state after each event, with what it changed. An event that cannot be
        decoded ends the history: it is the last step, with no state."""
        repository, aggregate_id = self._repository(stream_id)
        aggregate = repository.new(aggregate_id)
        before: Any = None
        for view in self.events(stream_id):
            if view.event is None:
                yield HistoryStep(view, (), None)
                return
            state = _apply(aggregate, view)
            after = state.model_dump(mode="json")
            yield HistoryStep(view, tuple(diff_states(before, after)), state)
            before = after

    def replay(
        self,
        stream_id: str,
        *,
        until: int,
        debugger: Debugger | None = None,
        on_step: Callable[[HistoryStep], None] | None = None,
    ) -> StateView:
        """Replay the stream through the aggregate's apply methods up to version `until`;
        the apply call of event `until` goes through `debugger` (a breakpoint in domain
        code, at the moment that event is applied). `on_step` sees every step."""
        if until < 1:
            raise ValueError(f"until must be a stream version >= 1 (got {until})")
        repository, aggregate_id = self._repository(stream_id)
        aggregate = repository.new(aggregate_id)
        before: Any = None
        last: EventView | None = None
        for view in self.events(stream_id):
            if view.stream_version > until:
                break
            if view.event is None:
                raise InspectError(
                    f"{stream_id} version {view.stream_version} ({view.stored_type} "
                    f"v{view.stored_version}) cannot be decoded: {view.error}"
                )
            hook = debugger if view.stream_version == until else None
            state = _apply(aggregate, view, hook)
            after = state.model_dump(mode="json")
            if on_step is not None:
                on_step(HistoryStep(view, tuple(diff_states(before, after)), state))
            before, last = after, view
        if last is None or last.stream_version < until:
            reached = 0 if last is None else last.stream_version
            raise InspectError(f"{stream_id} has no version {until} (it ends at {reached})")
        kind = repository.aggregate_class.aggregate_type
        return StateView(
            stream_id, kind, last.stream_version, last.recorded_at, None, aggregate.state
        )

    # -- conversations ----------------------------------------------------------------

    def trace(self, id: str) -> Trace:
        """The conversation `id` belongs to: a correlation id, an event id, or a causation
        id (the id of a command, or of the event a saga reacted to)."""
        query = id.strip()
        if not query:
            raise InspectError("trace needs a correlation id, an event id or a command id")
        # Ids are text in metadata, written by whoever wrote the event; a UUID is also
        # looked for in its canonical form, as a person may type or paste it otherwise.
        forms = list(dict.fromkeys((query, _uuid_text(query))))
        matched: Literal["correlation", "event", "causation"] = "correlation"
        correlation: str | None = None
        records: list[RecordedEvent] = []
        for form in forms:
            records = self.store.read_correlation(form)
            if records:
                correlation = form
                break
        if not records:
            found = self.store.find_event(forms[-1])
            if found is not None:
                matched, correlation = "event", found.correlation_id
                records = self.store.read_correlation(correlation) if correlation else [found]
            else:
                caused = next((c for c in map(self.store.read_causation, forms) if c), [])
                if not caused:
                    raise InspectError(
                        f"no event has {query!r} as its correlation id, event id or "
                        "causation (command) id"
                    )
                matched, correlation = "causation", caused[0].correlation_id
                records = self.store.read_correlation(correlation) if correlation else caused
        views = tuple(self.view(recorded) for recorded in records)
        return Trace(query, matched, correlation, views, tuple(self._tree(views)))

    def _tree(self, views: Sequence[EventView]) -> list[TraceCommand]:
        roots: list[TraceCommand] = []
        nodes: dict[str, TraceEvent] = {}
        groups: dict[tuple[str, str | None], TraceCommand] = {}
        for view in views:
            cause = view.causation_id or ""
            key = (cause, view.saga)
            group = groups.get(key)
            if group is None:
                group = groups[key] = TraceCommand(cause, view.saga, view.actor, view.recorded_at)
                parent = nodes.get(cause)
                (roots if parent is None else parent.children).append(group)
            if view.command is not None and view.command not in group.commands:
                group.commands.append(view.command)
            node = TraceEvent(view, self.aggregate_of(view.stream_id))
            group.children.append(node)
            nodes[view.event_id] = node
        return roots

    def audit(
        self,
        *,
        actor: str | None = None,
        correlation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[EventView]:
        """Every event recorded under an actor and/or a correlation id, in a time range
        (both ends included), in global order. Streams through the range."""
        since = None if since is None else to_utc(since, "since")
        until = None if until is None else to_utc(until, "until")
        if since is not None and until is not None and until < since:
            raise ValueError(f"until ({_time(until)}) is before since ({_time(since)})")

        def wanted(recorded: RecordedEvent) -> bool:
            if since is not None and recorded.recorded_at < since:
                return False
            if until is not None and recorded.recorded_at > until:
                return False
            return actor is None or actor_of(recorded.metadata) == actor

        if correlation_id is not None:
            conversation = self.store.read_correlation(correlation_id)
            if not conversation:
                raise InspectError(f"no event has the correlation id {correlation_id!r}")
            for recorded in conversation:
                if wanted(recorded):
                    yield self.view(recorded)
            return
        after = 0
        if since is not None and since > datetime.min.replace(tzinfo=UTC):
            after = self.store.position_at(since - _MICROSECOND)
        last = None if until is None else self.store.position_at(until)
        while last is None or after < last:
            page = self.store.read_all(after, self._page_size)
            for recorded in page:
                if last is not None and recorded.position > last:
                    return
                if wanted(recorded):
                    yield self.view(recorded)
            if len(page) < self._page_size:
                return
            after = page[-1].position


def _apply(
    aggregate: Aggregate[Any, Any], view: EventView, debugger: Debugger | None = None
) -> BaseModel:
    """Apply one decoded event as loading does, optionally through a debugger."""
    event = view.event
    assert event is not None
    apply = aggregate._apply_function(event)
    aggregate._event_time = view.recorded_at
    state = apply(aggregate, event) if debugger is None else debugger(apply, aggregate, event)
    aggregate._state = state
    aggregate._version = view.stream_version
    return state


def _bound(value: int | datetime | None, name: str) -> tuple[int | None, datetime | None]:
    if value is None:
        return None, None
    if isinstance(value, datetime):
        return None, to_utc(value, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a position >= 0 or an aware datetime (got {value!r})")
    return value, None


def _uuid_text(text: str) -> str:
    """An event id in its canonical text form (lower case, with dashes) if it is one."""
    try:
        return str(UUID(text))
    except ValueError:
        return text


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
