"""Handling a command in asyncio code: `handle_command` on an `AsyncRepository`.

The same steps, rules and result as `handle_command` (see `_commands.py`): load, decide,
append, and on a concurrency conflict reload and decide again, a bounded number of times,
all attempts in one command context. Only the loads and the append are awaited; `decide`
stays a plain function, since deciding reads the aggregate and records events, nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from typing import Any, overload

from typing_extensions import TypeVar

from esgen.runtime._commands import COMMAND_KEY, AggT, CommandResult, EventT, check_decided
from esgen.runtime._context import command_context, current_context
from esgen.runtime._errors import ConcurrencyError
from esgen.runtime._ids import IdT
from esgen.runtime._messages import Command, Event
from esgen.runtime._repository_async import AsyncRepository

__all__ = ["handle_command_async", "retry_on_conflict_async"]

R = TypeVar("R")
T = TypeVar("T")


@overload
async def handle_command_async(
    repository: AsyncRepository[AggT, IdT],
    aggregate_id: IdT,
    decide: Callable[[AggT], tuple[EventT, ...]],
    *,
    max_attempts: int = 3,
    must_exist: bool = False,
    metadata: Mapping[str, Any] | None = None,
    command: Command | None = None,
) -> CommandResult[AggT, tuple[EventT, ...], EventT]: ...


@overload
async def handle_command_async(
    repository: AsyncRepository[AggT, IdT],
    aggregate_id: IdT,
    decide: Callable[[AggT], R],
    *,
    max_attempts: int = 3,
    must_exist: bool = False,
    metadata: Mapping[str, Any] | None = None,
    command: Command | None = None,
) -> CommandResult[AggT, R, Event]: ...


async def handle_command_async(
    repository: AsyncRepository[AggT, IdT],
    aggregate_id: IdT,
    decide: Callable[[AggT], Any],
    *,
    max_attempts: int = 3,
    must_exist: bool = False,
    metadata: Mapping[str, Any] | None = None,
    command: Command | None = None,
) -> CommandResult[AggT, Any, Any]:
    """Load the aggregate, call `decide(aggregate)`, save what it recorded: as
    `handle_command`, awaited."""
    if command is not None:
        metadata = {COMMAND_KEY: command.command_type, **(metadata or {})}

    async def attempt(number: int) -> CommandResult[AggT, Any, Any]:
        if must_exist:
            aggregate = await repository.load(aggregate_id)
        else:
            aggregate = await repository.load_or_new(aggregate_id)
        value = check_decided(decide(aggregate))
        events = aggregate.pending_events
        appended = await repository.save(aggregate, metadata=metadata)
        return CommandResult(aggregate, value, events, appended, number)

    return await retry_on_conflict_async(attempt, max_attempts)


async def retry_on_conflict_async(attempt: Callable[[int], Awaitable[T]], max_attempts: int) -> T:
    """`retry_on_conflict` for coroutines: `await attempt(1)`, and on a `ConcurrencyError`
    `attempt(2)`... up to `max_attempts` times, all in one command context (opened here if
    none is active in this task)."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1 (got {max_attempts})")
    scope = command_context() if current_context() is None else nullcontext()
    with scope:
        number = 1
        while True:
            try:
                return await attempt(number)
            except ConcurrencyError as exc:
                if number >= max_attempts:
                    exc.add_note(f"gave up after {number} attempt(s)")
                    raise
                number += 1
