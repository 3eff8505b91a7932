"""Projections: read models built from the store's global order, rebuildable at any time.

The runner reads events after a projection's checkpoint in pages; for each page it calls
the typed handlers of the events the projection consumes (upcast to their latest
version) and commits the changed rows with the new checkpoint in one transaction. An
event at or below the checkpoint is never applied again, whatever crashed when.

A rebuild fills a new generation of the table from the first event while the live one
keeps serving (and keeps being updated); when the new generation has caught up, it
replaces the old one in a single commit. Its pages commit like catch-up's, so an
interrupted rebuild leaves a consistent partial generation, which the next one continues
if it runs the same code (see `code_fingerprint`) on the same layout.

A page that raises leaves nothing behind; its error (with the event it was handling) is
recorded, for `status()` and monitoring, as the problem of the generation it was filling:
the live one's, or the rebuild's (kept apart: neither says anything of the other). Each is
cleared when a page of its generation next commits events, and the rebuild's also when the
rebuild switches over or starts afresh.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, cast
from uuid import UUID

from pydantic import BaseModel, ValidationError
from typing_extensions import TypeVar

from esgen.runtime._consistency import wait_for_position
from esgen.runtime._errors import (
    AggregateDefinitionError,
    DecodeError,
    ProjectionNeedsRebuild,
)
from esgen.runtime._health import Problem, event_id_of
from esgen.runtime._ids import decode_id
from esgen.runtime._messages import Event
from esgen.runtime._ports import EventStore
from esgen.runtime._progress_store import (
    ProgressStorage,
    ProgressUnit,
    SwitchBlocked,
    is_looking,
    progress_storage,
)
from esgen.runtime._readmodel import Rows, TableSpec, seal_table
from esgen.runtime._records import Clock, RecordedEvent, to_utc, utc_now
from esgen.runtime._registry import Decoder, EventRegistry, _where

__all__ = [
    "Progress",
    "Projection",
    "ProjectionNeedsRebuild",
    "ProjectionRunner",
    "ProjectionStatus",
    "RebuildStart",
    "code_fingerprint",
]

logger = logging.getLogger("esgen.runtime")

# Pauses (seconds) between attempts of a rebuild's switch-over while readers hold the
# old generation: short at first, as readers are usually brief; bounded, so the switch
# follows soon after a long reader ends.
_SWITCH_PAUSE = 0.05
_SWITCH_PAUSE_MAX = 1.0

RowT = TypeVar("RowT", bound=BaseModel)
_IdT = TypeVar("_IdT", UUID, int, str)
# The id type of the aggregates whose events a projection consumes (a union where they
# differ); text, as in the stream id, unless the projection says otherwise.
AggIdT = TypeVar("AggIdT", default=str)

Progress = Callable[[str, int, int], None]
"""Called after each page: (projection name, position reached, head position)."""


class Projection(Generic[RowT, AggIdT]):
    """Base of every projection. Generated bases set the class attributes; users write the
    handlers, each `(self, event, recorded) -> None`, changing rows through `self.rows`.

    The second type argument is the type of `aggregate_id(recorded)`; generated bases set
    it, with `aggregate_id_types`, to the id types of the aggregates they consume from."""

    name: ClassVar[str]
    """Stable name; also the name of the read model's table (a view) in the database."""
    table: ClassVar[TableSpec]
    row_type: ClassVar[type[BaseModel]]
    handlers: ClassVar[Mapping[type[Event], str]] = {}
    """Latest event class -> the method that handles it."""
    aggregate_id_types: ClassVar[Mapping[str, type[Any]]] = {}
    """Aggregate type -> the type of its ids, for `aggregate_id`; an aggregate type not
    listed has its id given as the text in the stream id."""

    _by_type: ClassVar[dict[str, str]] = {}
    _ids: ClassVar[dict[str, Any]] = {}
    """stream id -> aggregate id, per class: handlers ask for it once per event, and the
    events of one stream come in runs (parsing a UUID costs more than the lookup)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._by_type = {event.event_type: method for event, method in cls.handlers.items()}
        cls._ids = {}
        seal_table(cls)

    def __init__(self) -> None:
        self._rows: Rows[RowT] | None = None

    @property
    def rows(self) -> Rows[RowT]:
        """The read model's rows, inside the page being processed."""
        if self._rows is None:
            raise RuntimeError(f"{self.name}: rows are only available while handling events")
        return self._rows

    @classmethod
    def consumes(cls) -> frozenset[str]:
        return frozenset(cls._by_type)

    def aggregate_id(self, recorded: RecordedEvent) -> AggIdT:
        """The id of the aggregate whose stream holds the event (`Account-<id>` -> id), of
        the type its aggregate declares (`aggregate_id_types`); `DecodeError` if the stream
        id does not hold one."""
        stream_id = recorded.stream_id
        ids = self._ids
        found = ids.get(stream_id)
        if found is not None:
            return cast(AggIdT, found)
        aggregate_type, _, text = stream_id.partition("-")
        id_type = self.aggregate_id_types.get(aggregate_type)
        # The type argument and aggregate_id_types are generated from the same schema.
        found = text if id_type is None else self.aggregate_id_as(recorded, id_type)
        if len(ids) >= _ID_CACHE_SIZE:
            ids.clear()  # bounded: a replay of millions of streams must not keep them all
        ids[stream_id] = found
        return cast(AggIdT, found)

    @staticmethod
    def aggregate_id_as(recorded: RecordedEvent, id_type: type[_IdT]) -> _IdT:
        """The id of the aggregate whose stream holds the event, as `id_type` (UUID, int or
        str); `DecodeError` if the stream id does not hold an id of that type."""
        text = recorded.stream_id.partition("-")[2]
        try:
            return decode_id(id_type, text)
        except DecodeError as exc:
            raise DecodeError(
                f"event {recorded.stream_version} of stream {recorded.stream_id!r} "
                f"(position {recorded.position}): {exc}"
            ) from None


class ProjectionStatus:
    def __init__(
        self,
        name: str,
        generation: int,
        position: int,
        head: int,
        *,
        needs_rebuild: bool = False,
        rebuilding: tuple[int, int] | None = None,
        lag_seconds: float = 0.0,
        problem: Problem | None = None,
        rebuild_problem: Problem | None = None,
    ) -> None:
        self.name = name
        self.generation = generation
        self.position = position
        self.head = head
        self.needs_rebuild = needs_rebuild
        """The read model's fields changed since its table was built: catch-up refuses."""
        self.rebuilding = rebuilding
        """(generation, position) of a rebuild that started and has not switched over."""
        self.lag_seconds = lag_seconds
        """How long ago the oldest event not yet handled was recorded; 0.0 when caught up."""
        self.problem = problem
        """The last error a page of the live generation raised; cleared when one of its
        pages next commits events (or a rebuild replaces it)."""
        self.rebuild_problem = rebuild_problem
        """The last error the rebuild under way raised (a page, or its switch-over);
        cleared when one of its pages next commits events, or it switches over or starts
        afresh."""

    @property
    def behind(self) -> int:
        return max(0, self.head - self.position)

    def to_json(self) -> dict[str, Any]:
        """The stable form `esgen projections status --json` prints for monitoring."""
        rebuilding = self.rebuilding
        return {
            "name": self.name,
            "generation": self.generation,
            "position": self.position,
            "head": self.head,
            "behind": self.behind,
            "lag_seconds": self.lag_seconds,
            "needs_rebuild": self.needs_rebuild,
            "rebuilding": None
            if rebuilding is None
            else {"generation": rebuilding[0], "position": rebuilding[1]},
            "problem": None if self.problem is None else self.problem.to_json(),
            "rebuild_problem": None
            if self.rebuild_problem is None
            else self.rebuild_problem.to_json(),
        }

    def __repr__(self) -> str:
        return (
            f"ProjectionStatus(name={self.name!r}, generation={self.generation}, "
            f"position={self.position}, head={self.head})"
        )


RebuildReason = Literal[
    "resumed", "restart requested", "fields changed", "code changed", "no earlier rebuild"
]


@dataclass(frozen=True, slots=True)
class RebuildStart:
    """How a `rebuild()` began: from where it continued an unfinished rebuild, or why it
    started from the first event."""

    resumed_from: int | None
    """The checkpoint of the unfinished rebuild it continued; None when it started afresh."""
    reason: RebuildReason
    """"resumed", or why it started afresh: "restart requested", "fields changed" (the
    unfinished one has another layout), "code changed" (it was started by other code, or
    by an esgen that did not record its code), "no earlier rebuild"."""


def code_fingerprint(projection: type[Projection[Any, Any]]) -> str:
    """What a rebuild records of the code that fills it, so that only the same code
    continues it: a handler fixed since would otherwise keep the pages made before.

    The digest of the source file defining the class (with which class of it and which
    events go to which methods). Code the handlers call in other modules is not seen: a
    fix there needs `restart=True`.
    """
    digest = hashlib.sha256()
    # Not the module's name: the same file is `__main__` when run as a script.
    digest.update(f"{projection.__qualname__}\n".encode())
    handlers = sorted(
        (event.event_type, event.event_version, method)
        for event, method in projection.handlers.items()
    )
    digest.update(repr(handlers).encode())
    try:
        path = inspect.getsourcefile(projection)
        if path is None:
            raise OSError("no source file")
        digest.update(b"\nsource\n" + Path(path).read_bytes())
    except (OSError, TypeError):
        # No readable source (a class made at run time, an application shipped as bytecode
        # only): its names and handlers are all that can be compared, so a changed handler
        # body goes unnoticed there, and `restart=True` is the way to start afresh.
        digest.update(f"\nmodule {projection.__module__}".encode())
    return digest.hexdigest()


def _problems(unit: ProgressUnit, name: str) -> tuple[Problem | None, Problem | None]:
    """The recorded problems of a projection: (its live generation's, its rebuild's)."""
    live, rebuild = unit.problem(name), unit.problem(_rebuild_slot(name))
    return (
        None if live is None else Problem.loads(live),
        None if rebuild is None else Problem.loads(rebuild),
    )


def _rebuild_slot(name: str) -> str:
    """Where the problem of a projection's rebuild is recorded, apart from the live
    generation's (under the projection's own name)."""
    return f"{name}:rebuild"


class ProjectionRunner:
    """Keeps projections up to date with an event store that supports transactions."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry,
        projections: Sequence[Projection[Any, Any]],
        *,
        page_size: int = 1000,
        storage: ProgressStorage | None = None,
        clock: Clock = utc_now,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise AggregateDefinitionError(f"projection names must be unique: {names}")
        for projection in projections:
            for event_type in projection.consumes():
                if event_type not in registry:
                    raise AggregateDefinitionError(
                        f"projection {projection.name!r} consumes {event_type!r}, which the "
                        "registry does not know"
                    )
        self._store = store
        self._registry = registry
        self._projections = {p.name: p for p in projections}
        self._page_size = page_size
        self._storage = storage or progress_storage(store)
        self._clock = clock
        self.last_rebuild: RebuildStart | None = None
        """How the last `rebuild()` began (set before its first page)."""
        if is_looking():
            return  # built only to look (`looking()`): nothing set up, nothing waited for
        with self._storage.unit() as unit:
            for projection in projections:
                generations = unit.generations(projection.name)
                if not generations:
                    unit.set_checkpoint(projection.name, 1, 0, active=True)
                    unit.create_table(projection.table, 1)
                    unit.activate(projection.table, 1)
                    continue
                # Indexes are not part of the layout: one added to (or removed from) the
                # YAML is made (or dropped) here, with no rebuild. A generation built with
                # another layout is left alone: its columns may not be these; a rebuild
                # replaces it, indexes included.
                for generation in sorted(generations):
                    if unit.layout(projection.name, generation) == projection.table.layout:
                        unit.ensure_indexes(projection.table, generation)

    @property
    def projections(self) -> Mapping[str, Projection[Any, Any]]:
        return self._projections

    def status(self) -> list[ProjectionStatus]:
        result = self._statuses()
        # Outside the transaction, which need not last while the store is read.
        now = to_utc(self._clock(), "the projection clock")
        for item in result:
            item.lag_seconds = self._lag(item.position, now)
        return result

    def _statuses(self) -> list[ProjectionStatus]:
        """Each projection's status, but for its lag (which costs a read of the store)."""
        head = self._store.head_position()
        result = []
        # A read transaction: a health check answers at once while a page is handled.
        with self._storage.look() as unit:
            for name, projection in self._projections.items():
                generations = unit.generations(name)
                if not generations:  # never ran here (only looked at): nothing built yet
                    result.append(ProjectionStatus(name, 0, 0, head))
                    continue
                generation, position = _active(generations, name)
                pending = [(g, p) for g, (p, active) in generations.items() if not active]
                problem, rebuild_problem = _problems(unit, name)
                result.append(
                    ProjectionStatus(
                        name,
                        generation,
                        position,
                        head,
                        needs_rebuild=unit.layout(name, generation) != projection.table.layout,
                        rebuilding=max(pending) if pending else None,
                        problem=problem,
                        rebuild_problem=rebuild_problem,
                    )
                )
        return result

    def _lag(self, position: int, now: datetime) -> float:
        oldest = self._store.read_all(after=position, limit=1)
        if not oldest:
            return 0.0
        # Never negative: the store's clock may be another machine's, a little ahead.
        return max(0.0, (now - oldest[0].recorded_at).total_seconds())

    # -- catching up ------------------------------------------------------------------

    def catch_up(self, progress: Progress | None = None) -> int:
        """Process every event recorded so far; returns how many events were handled.

        A projection whose fields changed since its table was built is left as it is
        (the others still catch up) and reported with `ProjectionNeedsRebuild`.
        """
        handled = 0
        stale = self.needing_rebuild()
        for name in self._projections:
            if name in stale:
                continue
            while True:
                count, done = self._page(name, None, progress)
                handled += count
                if done:
                    break
        if stale:
            raise ProjectionNeedsRebuild(stale)
        return handled

    def needing_rebuild(self) -> list[str]:
        """Projections whose read-model layout changed since their table was built."""
        return [item.name for item in self._statuses() if item.needs_rebuild]

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 0.25,
        progress: Progress | None = None,
    ) -> None:
        """Catch up, then follow new events until `stop` is set.

        Waits on the store's notifications when it has them, else polls.
        """
        wait: Callable[[int, float], bool] | None = getattr(self._store, "wait_for_events", None)
        while not stop.is_set():
            self.catch_up(progress)
            head = self._store.head_position()
            if wait is not None:
                wait(head, poll_interval)
            else:
                stop.wait(poll_interval)

    # -- read-your-writes -------------------------------------------------------------

    def wait_for(
        self,
        position_or_token: int | str | bytes,
        *,
        timeout: float,
        projections: Sequence[str] | None = None,
    ) -> None:
        """Return once the projections (all of this runner's unless named) have processed
        the global position (or consistency token) a command's result gave; raise
        `ReadModelBehind` after `timeout` seconds.

        Reads the checkpoints, so the runner doing the work may be another process, or
        another machine on the same database. Refused at once rather than waited for: a
        position beyond the store's head (`InvalidConsistencyToken`), a projection never
        run in this store (`ReadModelNotFound`) or needing a rebuild
        (`ProjectionNeedsRebuild`).
        """
        if isinstance(projections, str):  # a name would be read as its letters
            raise TypeError(
                f"projections takes a sequence of names (got the one name {projections!r}: "
                f"write [{projections!r}])"
            )
        names = list(self._projections) if projections is None else list(projections)
        unknown = [name for name in names if name not in self._projections]
        if unknown:
            known = ", ".join(self._projections) or "none"
            raise ValueError(f"no projection named {', '.join(unknown)} here (known: {known})")
        layouts = {name: self._projections[name].table.layout for name in names}
        wait_for_position(
            self._store, lambda: self._storage, layouts, position_or_token, timeout=timeout
        )

    # -- rebuilding -------------------------------------------------------------------

    def rebuild(self, name: str, progress: Progress | None = None, *, restart: bool = False) -> int:
        """Replay every event into a new generation, then switch readers over to it;
        returns how many events this call handled.

        The current generation keeps serving, and is kept up to date by `catch_up`,
        until the switch; the switch itself is one commit. A rebuild interrupted earlier
        (its pages are committed) is continued from its checkpoint when its table has
        today's layout and it was started by the same code (`code_fingerprint`);
        otherwise, or with `restart=True`, it starts afresh. `last_rebuild` says which,
        and why.
        """
        projection = self._projections[name]
        code = code_fingerprint(type(projection))
        self.last_rebuild = None
        with self._recording(name, rebuild=True) as (unit, _):
            generations = unit.generations(name)
            pending = [g for g, (_, active) in generations.items() if not active]
            new = max(pending) if pending else max(generations) + 1
            start = self._rebuild_start(unit, projection, new if pending else None, code, restart)
            if start.resumed_from is not None:
                unit.ensure_indexes(projection.table, new)
                logger.info(
                    "projection %s: continuing the rebuild of generation %d after position %d",
                    name, new, start.resumed_from,
                )  # fmt: skip
            else:
                if pending:
                    logger.info(
                        "projection %s: starting the rebuild afresh (%s)", name, start.reason
                    )
                unit.set_checkpoint(name, new, 0, active=False)
                unit.create_table(projection.table, new)  # afresh, with today's layout
                unit.set_rebuild_code(name, new, code)
                # The error of a rebuild whose pages are gone says nothing of this one.
                unit.set_problem(_rebuild_slot(name), None)
        self.last_rebuild = start
        handled = 0
        pause = _SWITCH_PAUSE
        while True:
            done = False
            while not done:
                count, done = self._page(name, new, progress)
                handled += count
            # The last pages and the switch share a transaction (which holds the write
            # lock), so no event can fall between catching up and switching over.
            try:
                with self._recording(name, rebuild=True) as (unit, handling):
                    caught_up = 0
                    while True:
                        count, done, _ = self._process(unit, projection, new, handling)
                        caught_up += count
                        if done:
                            break
                    unit.activate(projection.table, new)
                    unit.set_rebuild_code(name, new, None)
                    # Both problems belonged to generations this one replaces; it has
                    # handled every event up to the head.
                    unit.set_problem(_rebuild_slot(name), None)
                    unit.set_problem(name, None)
            except SwitchBlocked:
                # Readers hold the old generation (see ProgressUnit.activate): the
                # transaction is rolled back, its pages with it. Catch up again (in
                # pages of their own, so the last transaction stays short) and retry,
                # waiting longer each time. Logged once at info: a long reader may make
                # this repeat for as long as it lasts.
                level = logging.INFO if pause == _SWITCH_PAUSE else logging.DEBUG
                logger.log(level, "projection %s: readers hold it, switching over later", name)
                time.sleep(pause)
                pause = min(pause * 2, _SWITCH_PAUSE_MAX)
                continue
            handled += caught_up
            break
        logger.info("projection %s rebuilt as generation %d", name, new)
        return handled

    @staticmethod
    def _rebuild_start(
        unit: ProgressUnit,
        projection: Projection[Any, Any],
        pending: int | None,
        code: str,
        restart: bool,
    ) -> RebuildStart:
        """Whether a rebuild continues the unfinished generation `pending` (None: there is
        none), and why not."""
        name = projection.name
        reason: RebuildReason
        if pending is None:
            reason = "no earlier rebuild"
        elif restart:
            reason = "restart requested"
        elif unit.layout(name, pending) != projection.table.layout:
            reason = "fields changed"
        elif unit.rebuild_code(name, pending) != code:
            # Also when no code was recorded (an esgen from before it was): its pages may
            # have been made by anything, and starting afresh is always correct.
            reason = "code changed"
        else:
            return RebuildStart(unit.generations(name)[pending][0], "resumed")
        return RebuildStart(None, reason)

    # -- one page ---------------------------------------------------------------------

    def _page(
        self, name: str, generation: int | None, progress: Progress | None
    ) -> tuple[int, bool]:
        with self._recording(name, rebuild=generation is not None) as (unit, handling):
            handled, done, position = self._process(
                unit, self._projections[name], generation, handling
            )
        # Reported after the commit: the callback may read the store, or even write to it.
        if progress is not None and position is not None:
            progress(name, position, self._store.head_position())
        return handled, done

    @contextmanager
    def _recording(self, name: str, *, rebuild: bool) -> Iterator[tuple[ProgressUnit, _Handling]]:
        """One transaction of the projection's live generation or of its rebuild; if it
        raises, the error is recorded as that one's problem once the transaction has
        rolled back, then goes on up."""
        handling = _Handling()
        try:
            with self._storage.unit() as unit:
                yield unit, handling
        except SwitchBlocked:
            raise  # not a failure: the switch is tried again
        except Exception as exc:
            self._record(name, rebuild, exc, handling.recorded)
            raise

    def _record(
        self, name: str, rebuild: bool, exc: Exception, recorded: RecordedEvent | None
    ) -> None:
        slot = _rebuild_slot(name) if rebuild else name
        try:
            with self._storage.unit() as unit:
                attempts = 1
                if recorded is not None and (text := unit.problem(slot)) is not None:
                    earlier = Problem.loads(text)
                    event_id = event_id_of(recorded)
                    if event_id is not None and earlier.event_id == event_id:  # again
                        attempts = earlier.attempts + 1
                at = to_utc(self._clock(), "the projection clock")
                problem = Problem.of(exc, recorded, at, attempts)
                unit.set_problem(slot, problem.dumps())
        except Exception as failure:
            # The store may be what failed: the original error is the one to report.
            logger.warning("projection %s: its error could not be recorded: %s", name, failure)

    def _process(
        self,
        unit: ProgressUnit,
        projection: Projection[Any, Any],
        generation: int | None,
        handling: _Handling,
    ) -> tuple[int, bool, int | None]:
        """Handle one page inside `unit`: (events handled, reached the head, new position).

        Names in `handling` the event a handler (or its decoding) failed on."""
        name = projection.name
        generations = unit.generations(name)
        rebuilding = generation is not None
        if generation is None:
            generation, position = _active(generations, name)
        else:
            position = generations[generation][0]
        active = generations.get(generation, (0, False))[1]
        # The checkpoint is read inside the transaction: two runners never apply one event.
        records = self._store._read_page(position, self._page_size)
        if not records:
            return 0, True, None
        # A page of events that commits clears its generation's last error (it starts at
        # the event that failed, as the failed page rolled back); an empty one proves
        # nothing. One read per page, a write only after a failure.
        slot = name if not rebuilding else _rebuild_slot(name)
        if unit.problem(slot) is not None:
            unit.set_problem(slot, None)
        table = unit.table(projection.table, generation)
        rows: Rows[Any] = Rows(
            projection.table, projection.row_type, table, keyring=self._store.keyring
        )
        projection._rows = rows
        handled = 0
        # Events stored under a former name of a renamed type reach that type's handler.
        # Bound once per page: catch-up is the loop below, and a lookup of the method per
        # event was a tenth of it.
        handlers = {
            stored: getattr(projection, method)
            for stored, method in self._registry.by_stored_type(projection._by_type).items()
        }
        registry = self._registry
        # The registry's cached decoders, called directly: one call per event instead of
        # three wrappers (decode_recorded -> decode -> the decoder).
        decoders: dict[tuple[str, int], Decoder] = {}
        keyring = self._store.keyring
        try:
            for recorded in records:
                kind = recorded.event_type
                handle = handlers.get(kind)
                if handle is None:
                    continue
                key = (kind, recorded.event_version)
                decode = decoders.get(key)
                if decode is None:
                    try:
                        decode = decoders[key] = registry.raw_decoder(*key, keyring)
                    except DecodeError as exc:
                        handling.recorded = recorded
                        exc.add_note(_where(recorded))
                        raise
                try:
                    event = decode(recorded.data)
                except ValidationError as exc:
                    handling.recorded = recorded
                    raise registry.invalid_recorded(recorded, exc) from exc
                try:
                    handle(event, recorded)
                except Exception as exc:
                    handling.recorded = recorded
                    # Which event broke it: the traceback shows only the handler's code.
                    exc.add_note(f"{name}: handling {_event_at(recorded)}")
                    raise
                handled += 1
            try:
                rows.flush()
            except Exception as exc:
                exc.add_note(
                    f"{name}: writing the rows of the page of events {records[0].position} "
                    f"to {records[-1].position}"
                )
                raise
        finally:
            rows.discard()
            projection._rows = None
        last = records[-1].position
        unit.set_checkpoint(name, generation, last, active=active)
        return handled, len(records) < self._page_size, last


_ID_CACHE_SIZE = 4096


class _Handling:
    """The event a page failed on, if a handler (or decoding it) raised; None when the
    page failed elsewhere (reading, writing its rows)."""

    __slots__ = ("recorded",)

    def __init__(self) -> None:
        self.recorded: RecordedEvent | None = None


def _event_at(recorded: RecordedEvent) -> str:
    # The id may be read only now, with the page's deferred columns: a store that fails
    # then must not hide the handler's own error, which this only annotates.
    event_id = event_id_of(recorded)
    event = "" if event_id is None else f" (event {event_id})"
    return (
        f"{recorded.event_type}{event} at position {recorded.position}, "
        f"version {recorded.stream_version} of stream {recorded.stream_id!r}"
    )


def _active(generations: Mapping[int, tuple[int, bool]], name: str) -> tuple[int, int]:
    for generation, (position, active) in generations.items():
        if active:
            return generation, position
    raise LookupError(f"projection {name!r} has no active generation")
