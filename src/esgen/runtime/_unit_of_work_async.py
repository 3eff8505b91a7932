"""Units of work in asyncio code: `UnitOfWork` on an `AsyncEventStore`.

The same identity map, checks and commit as `UnitOfWork` (see `_unit_of_work.py`), sharing
its in-memory part: loads and the one `append_streams` of `commit` are awaited.
`run_in_unit_of_work_async` retries on a conflict as `run_in_unit_of_work` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from esgen.runtime._async_ports import AsyncEventStore
from esgen.runtime._commands_async import retry_on_conflict_async
from esgen.runtime._context import save_metadata
from esgen.runtime._errors import AggregateNotFound
from esgen.runtime._ids import IdT
from esgen.runtime._messages import Command, Event
from esgen.runtime._records import AppendResult
from esgen.runtime._repository import AggT
from esgen.runtime._repository_async import AsyncRepository
from esgen.runtime._unit_of_work import UnitOfWorkResult, _Tracking

__all__ = ["AsyncUnitOfWork", "run_in_unit_of_work_async"]

R = TypeVar("R")


class AsyncUnitOfWork(_Tracking[AsyncRepository[Any, Any], AsyncEventStore]):
    """Aggregates loaded or added through it, appended together by `commit`: as
    `UnitOfWork`, with `load`, `load_or_new`, `execute` and `commit` awaited. Every
    repository used with it must be an `AsyncRepository` on its store. One unit of work
    serves one command, in one task."""

    __slots__ = ()

    _repository_class = AsyncRepository
    _repository_kind = "an AsyncRepository"

    def __init__(self, store: AsyncEventStore) -> None:
        if not isinstance(store, AsyncEventStore):
            raise TypeError(f"AsyncUnitOfWork needs an AsyncEventStore (got {store!r})")
        super().__init__(store)

    async def load(self, repository: AsyncRepository[AggT, IdT], aggregate_id: IdT) -> AggT:
        """The aggregate, loaded once and then the same object; `AggregateNotFound` if it
        has no events (saved or pending in this unit of work)."""
        aggregate = self._tracked_aggregate(repository, aggregate_id)
        if aggregate is None:
            aggregate = self._track_loaded(repository, await repository.load(aggregate_id))
        if aggregate.version == 0:
            raise AggregateNotFound(
                repository.aggregate_class.aggregate_type,
                aggregate_id,
                repository.stream_id(aggregate_id),
            )
        return aggregate

    async def load_or_new(self, repository: AsyncRepository[AggT, IdT], aggregate_id: IdT) -> AggT:
        """The aggregate, or a new empty one (version 0) if it has no events; tracked."""
        aggregate = self._tracked_aggregate(repository, aggregate_id)
        if aggregate is None:
            loaded = await repository.load_or_new(aggregate_id)
            aggregate = self._track_loaded(repository, loaded)
        return aggregate

    def _track_loaded(self, repository: AsyncRepository[AggT, IdT], loaded: AggT) -> AggT:
        """Track what a load returned, unless another task of the work function (two
        dispatches under `asyncio.gather`) tracked the stream while it was loading: then
        that object stays the one, so that neither command's events are lost."""
        tracked = self._tracked_aggregate(repository, loaded.id)
        return self._track(repository, loaded) if tracked is None else tracked

    def add(self, repository: AsyncRepository[AggT, IdT], aggregate: AggT) -> AggT:
        """As `UnitOfWork.add`: track an aggregate made outside the unit of work."""
        return self._add(repository, aggregate)

    async def execute(
        self,
        repository: AsyncRepository[AggT, IdT],
        aggregate_id: IdT,
        command: Command,
        *,
        must_exist: bool = False,
    ) -> tuple[Event, ...]:
        """As `UnitOfWork.execute`: the events the command recorded, appended by `commit`."""
        if must_exist:
            aggregate = await self.load(repository, aggregate_id)
        else:
            aggregate = await self.load_or_new(repository, aggregate_id)
        return self.by_command(command, aggregate.execute(command))

    async def commit(self, *, metadata: Mapping[str, Any] | None = None) -> list[AppendResult]:
        """As `UnitOfWork.commit`: every tracked aggregate's pending events in one
        `append_streams`, each stream expecting the version its aggregate was loaded at."""
        changed = [(repo, agg) for repo, agg in self._tracked.values() if agg._pending]
        if not changed:
            return []
        shared = save_metadata(metadata)
        metadata_of = self._metadata_by_command(shared) if self._commands else None
        prepared = [repo._core._prepare_save(agg, shared, metadata_of) for repo, agg in changed]
        results = await self._store.append_streams([append for append, _ in prepared])
        # Written: nothing stays pending, before the snapshots' own saves are awaited (a
        # cancel there must not leave committed events to be appended twice).
        for (_, aggregate), (_, snapshot) in zip(changed, prepared, strict=True):
            AsyncRepository._saved(aggregate, snapshot)
        self._commands.clear()
        for (repository, _), (_, snapshot) in zip(changed, prepared, strict=True):
            await repository._store_snapshot(snapshot)
        return results


async def run_in_unit_of_work_async(
    store: AsyncEventStore,
    work: Callable[[AsyncUnitOfWork], Awaitable[R]],
    *,
    max_attempts: int = 3,
    metadata: Mapping[str, Any] | None = None,
) -> UnitOfWorkResult[R]:
    """As `run_in_unit_of_work`: await `work` with a fresh unit of work on `store`, then
    commit it; on a conflict run it again on fresh aggregates, up to `max_attempts` times,
    every attempt in one command context."""

    async def attempt(number: int) -> UnitOfWorkResult[R]:
        unit = AsyncUnitOfWork(store)
        value = await work(unit)
        events = unit.pending_events
        return UnitOfWorkResult(value, events, await unit.commit(metadata=metadata), number)

    return await retry_on_conflict_async(attempt, max_attempts)
