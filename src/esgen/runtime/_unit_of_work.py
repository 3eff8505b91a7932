"""Units of work: change several aggregates, then append all their events in one atomic step.

A command that touches more than one aggregate (a transfer debits one account and credits
another) cannot go through `handle_command`, which saves one aggregate; saving two in turn
can leave the first saved and the second refused. A unit of work tracks every aggregate it
loads (one object per stream: loading twice returns the same object), and `commit` appends
all their pending events with one `EventStore.append_streams`, each stream checked against
the version it was loaded at. `run_in_unit_of_work` adds what `handle_command` gives a
single aggregate: one command context for every attempt, and retries on fresh state after
a conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from esgen.runtime._aggregate import Aggregate
from esgen.runtime._commands import COMMAND_KEY, retry_on_conflict
from esgen.runtime._consistency import consistency_token
from esgen.runtime._context import save_metadata
from esgen.runtime._errors import AggregateNotFound
from esgen.runtime._ids import IdT
from esgen.runtime._messages import Command, Event
from esgen.runtime._personal import keys_stored_with
from esgen.runtime._ports import EventStore
from esgen.runtime._records import AppendResult
from esgen.runtime._repository import Repository

__all__ = ["UnitOfWork", "UnitOfWorkResult", "run_in_unit_of_work"]

AggT = TypeVar("AggT", bound=Aggregate[Any, Any])
R = TypeVar("R")
EventT = TypeVar("EventT", bound=Event)
RepoT = TypeVar("RepoT")
StoreT = TypeVar("StoreT")
AggT_co = TypeVar("AggT_co", bound=Aggregate[Any, Any], covariant=True)
IdT_contra = TypeVar("IdT_contra", contravariant=True)


class _Repository(Protocol[AggT_co, IdT_contra]):
    """What a unit of work reads of a repository, synchronous or asynchronous."""

    @property
    def aggregate_class(self) -> type[AggT_co]: ...

    @property
    def store(self) -> object: ...

    def stream_id(self, aggregate_id: IdT_contra, /) -> str: ...


# The identity map is keyed by stream id, not by aggregate id: a stream id is a str whatever
# type a repository's ids have, and it is what append_streams refuses to see twice.


class _Tracking(Generic[RepoT, StoreT]):
    """What a unit of work does in memory, whether it loads and commits synchronously
    (`UnitOfWork`) or awaited (`AsyncUnitOfWork`): the identity map, the commands that
    recorded each event, and the checks of what is tracked."""

    __slots__ = ("_commands", "_store", "_tracked")

    _repository_class: ClassVar[type]
    _repository_kind: ClassVar[str]  # as messages name it: "a Repository"

    def __init__(self, store: StoreT) -> None:
        self._store = store
        self._tracked: dict[str, tuple[RepoT, Aggregate[Any, Any]]] = {}
        # id(event) -> the type of the command that recorded it (the events stay pending on
        # their aggregates until commit, so their ids are stable until then).
        self._commands: dict[int, str] = {}

    @property
    def store(self) -> StoreT:
        return self._store

    def _add(self, repository: _Repository[AggT, Any], aggregate: AggT) -> AggT:
        """`add`, typed by each subclass for its own kind of repository."""
        self._check_store(repository)
        if not isinstance(aggregate, repository.aggregate_class):
            raise TypeError(
                f"the repository of {repository.aggregate_class.__qualname__} cannot save "
                f"{type(aggregate).__qualname__} {aggregate.id!r}"
            )
        tracked = self._tracked_aggregate(repository, aggregate.id)
        if tracked is aggregate:
            return aggregate
        if tracked is not None:
            raise ValueError(
                f"{aggregate.aggregate_type} {aggregate.id!r} is already tracked by this unit "
                "of work as another object; change the tracked one (from load or "
                "load_or_new) instead"
            )
        return self._track(repository, aggregate)

    def by_command(self, command: Command, events: tuple[EventT, ...]) -> tuple[EventT, ...]:
        """Note that `command` recorded `events` (returned as they are): `commit` names the
        command in their metadata (key "command"), as `dispatch` does, so a trace shows
        which command of the unit of work recorded what."""
        name = command.command_type
        for event in events:
            self._commands[id(event)] = name
        return events

    @property
    def aggregates(self) -> tuple[Aggregate[Any, Any], ...]:
        """Every tracked aggregate, in the order it was first loaded or added."""
        return tuple(aggregate for _, aggregate in self._tracked.values())

    @property
    def pending_events(self) -> tuple[Event, ...]:
        """The events `commit` would append, in the order it appends them."""
        return tuple(event for _, agg in self._tracked.values() for event in agg._pending)

    def _metadata_by_command(
        self, shared: Mapping[str, Any]
    ) -> Callable[[Event], Mapping[str, Any]]:
        """Each event's metadata: the shared one, plus the name of its command (one mapping
        per command, so that the store encodes each once)."""
        by_name: dict[str, Mapping[str, Any]] = {}
        commands = self._commands

        def metadata_of(event: Event) -> Mapping[str, Any]:
            name = commands.get(id(event))
            if name is None or COMMAND_KEY in shared:
                return shared
            found = by_name.get(name)
            if found is None:
                found = by_name[name] = {**shared, COMMAND_KEY: name}
            return found

        return metadata_of

    def _tracked_aggregate(
        self, repository: _Repository[AggT, IdT], aggregate_id: IdT
    ) -> AggT | None:
        self._check_store(repository)
        entry = self._tracked.get(repository.stream_id(aggregate_id))
        if entry is None:
            return None
        aggregate = entry[1]
        if type(aggregate) is not repository.aggregate_class:
            raise TypeError(
                f"stream {repository.stream_id(aggregate_id)!r} is tracked by this unit of "
                f"work as {type(aggregate).__qualname__}, so it cannot also be loaded as "
                f"{repository.aggregate_class.__qualname__}"
            )
        return aggregate

    def _track(self, repository: _Repository[AggT, Any], aggregate: AggT) -> AggT:
        # The subclass's repository type: _check_store saw it before anything is tracked.
        self._tracked[repository.stream_id(aggregate.id)] = (cast("RepoT", repository), aggregate)
        return aggregate

    def _check_store(self, repository: _Repository[Any, Any]) -> None:
        if not isinstance(repository, self._repository_class):
            raise TypeError(f"expected {self._repository_kind} (got {repository!r})")
        if repository.store is not self._store:
            raise ValueError(
                f"the repository of {repository.aggregate_class.__qualname__} writes to "
                f"{repository.store!r}, but this unit of work commits to {self._store!r}: "
                "one unit of work appends to one store, atomically; build every repository "
                "it uses on that store"
            )

    def __repr__(self) -> str:
        streams = ", ".join(self._tracked)
        return f"{type(self).__name__}(store={self._store!r}, tracked=[{streams}])"


class UnitOfWork(_Tracking[Repository[Any, Any], EventStore]):
    """Aggregates loaded or added through it, appended together by `commit`.

    Every repository used with one unit of work must write to its store (one atomic append
    cannot span two databases). Not thread-safe: one unit of work serves one command.
    """

    __slots__ = ()

    _repository_class = Repository
    _repository_kind = "a Repository"

    def __init__(self, store: EventStore) -> None:
        if not isinstance(store, EventStore):
            raise TypeError(f"UnitOfWork needs an EventStore (got {store!r})")
        super().__init__(store)

    def add(self, repository: Repository[AggT, IdT], aggregate: AggT) -> AggT:
        """Track an aggregate made outside the unit of work (usually a new one), so that
        `commit` appends its events; returns it. Refused if another object already stands
        for its stream here."""
        return self._add(repository, aggregate)

    def load(self, repository: Repository[AggT, IdT], aggregate_id: IdT) -> AggT:
        """The aggregate, loaded once and then the same object; `AggregateNotFound` if it
        has no events (saved or pending in this unit of work)."""
        aggregate = self._tracked_aggregate(repository, aggregate_id)
        if aggregate is None:
            aggregate = self._track(repository, repository.load(aggregate_id))
        elif aggregate.version == 0:
            raise AggregateNotFound(
                repository.aggregate_class.aggregate_type,
                aggregate_id,
                repository.stream_id(aggregate_id),
            )
        return aggregate

    def load_or_new(self, repository: Repository[AggT, IdT], aggregate_id: IdT) -> AggT:
        """The aggregate, or a new empty one (version 0) if it has no events; tracked."""
        aggregate = self._tracked_aggregate(repository, aggregate_id)
        if aggregate is None:
            aggregate = self._track(repository, repository.load_or_new(aggregate_id))
        return aggregate

    def execute(
        self,
        repository: Repository[AggT, IdT],
        aggregate_id: IdT,
        command: Command,
        *,
        must_exist: bool = False,
    ) -> tuple[Event, ...]:
        """Load the aggregate (the tracked one if loaded before), run `aggregate.execute`
        and return the events it recorded; they are appended by `commit`. A missing
        aggregate starts empty unless `must_exist` (then `AggregateNotFound`)."""
        if must_exist:
            aggregate = self.load(repository, aggregate_id)
        else:
            aggregate = self.load_or_new(repository, aggregate_id)
        return self.by_command(command, aggregate.execute(command))

    def commit(self, *, metadata: Mapping[str, Any] | None = None) -> list[AppendResult]:
        """Append every tracked aggregate's pending events in one `append_streams`, each
        stream expecting the version its aggregate was loaded at, with snapshots that fall
        due; returns one result per stream written, in order (none if nothing was pending).

        Every event carries the active command context's metadata plus `metadata` (without
        a context, one pair of fresh ids shared by all of them). On `ConcurrencyError`
        nothing is written and the events stay pending; load again in a new unit of work
        to retry (`run_in_unit_of_work` does).
        """
        changed = [(repo, agg) for repo, agg in self._tracked.values() if agg._pending]
        if not changed:
            return []
        shared = save_metadata(metadata)
        metadata_of = self._metadata_by_command(shared) if self._commands else None
        seals = any(repo.seals for repo, _ in changed)
        with keys_stored_with(self._store) if seals else nullcontext():
            prepared = [repo._prepare_save(agg, shared, metadata_of) for repo, agg in changed]
            results = self._store.append_streams([append for append, _ in prepared])
        for (repository, aggregate), (_, snapshot) in zip(changed, prepared, strict=True):
            repository._finish_save(aggregate, snapshot)
        self._commands.clear()
        return results


@dataclass(frozen=True, slots=True)
class UnitOfWorkResult(Generic[R]):
    value: R
    """What the work function returned."""
    events: tuple[Event, ...]
    """The events appended, in append order (empty if the work recorded none)."""
    appended: list[AppendResult]
    """One result per stream written, in append order."""
    attempts: int

    @property
    def position(self) -> int | None:
        """The highest global position appended (None if nothing was): a read model that
        has processed it shows every change of the unit of work (see `ReadModel.wait_for`)."""
        positions = [r.position for r in self.appended if r.position is not None]
        return max(positions) if positions else None

    @property
    def token(self) -> str | None:
        """`position` as an opaque consistency token (None if nothing was recorded)."""
        position = self.position
        return None if position is None else consistency_token(position)


def run_in_unit_of_work(
    store: EventStore,
    work: Callable[[UnitOfWork], R],
    *,
    max_attempts: int = 3,
    metadata: Mapping[str, Any] | None = None,
) -> UnitOfWorkResult[R]:
    """Call `work` with a fresh unit of work on `store`, then commit it.

    `work` loads aggregates through the unit of work, calls their command methods and may
    return a value for the caller. It must have no other side effects: after a conflict it
    runs again, on freshly loaded aggregates (up to `max_attempts` times in all, then the
    `ConcurrencyError` is raised). Without an active `command_context`, one is opened, so
    every attempt writes the same correlation and causation ids.
    """

    def attempt(number: int) -> UnitOfWorkResult[R]:
        unit = UnitOfWork(store)
        value = work(unit)
        events = unit.pending_events
        return UnitOfWorkResult(value, events, unit.commit(metadata=metadata), number)

    return retry_on_conflict(attempt, max_attempts)
