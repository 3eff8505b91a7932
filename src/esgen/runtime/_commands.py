"""Handling a command: load, decide, append; on a concurrency conflict, reload and try again.

Retrying is safe because deciding has no side effects besides recording events on the
aggregate: a conflicting writer means the decision was made on stale state, so it is made
again on fresh state, a bounded number of times.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Generic, overload

from typing_extensions import TypeVar

from esgen.runtime._aggregate import Aggregate
from esgen.runtime._consistency import consistency_token
from esgen.runtime._context import command_context, current_context
from esgen.runtime._errors import ConcurrencyError
from esgen.runtime._ids import IdT
from esgen.runtime._messages import Command, Event
from esgen.runtime._records import AppendResult
from esgen.runtime._repository import Repository

__all__ = ["CommandResult", "check_decided", "handle_command"]

AggT = TypeVar("AggT", bound=Aggregate[Any, Any])
R = TypeVar("R")
T = TypeVar("T")
EventT = TypeVar("EventT", bound=Event)

# Covariant (the result is read-only), so a result typed for one command is also a
# CommandResult[Any, tuple[Event, ...]] wherever any command's result is expected.
AggT_co = TypeVar("AggT_co", bound=Aggregate[Any, Any], covariant=True)
R_co = TypeVar("R_co", covariant=True)
EventT_co = TypeVar("EventT_co", bound=Event, covariant=True, default=Event)


COMMAND_KEY = "command"
"""The metadata key naming the command type that recorded an event."""


@dataclass(frozen=True, slots=True)
class CommandResult(Generic[AggT_co, R_co, EventT_co]):
    aggregate: AggT_co
    """The aggregate after the command, saved."""
    value: R_co
    """What `decide` returned."""
    events: tuple[EventT_co, ...]
    """The events the command recorded and saved (empty if it decided nothing); typed as
    the events `decide` returns when it returns them (as `Aggregate.execute` does)."""
    appended: AppendResult | None
    """Where the events were written; None if there were none."""
    attempts: int

    @property
    def position(self) -> int | None:
        """The global position of the last event recorded (None if none was): a read model
        that has processed it shows this command's effect (see `ReadModel.wait_for`)."""
        return None if self.appended is None else self.appended.position

    @property
    def token(self) -> str | None:
        """`position` as an opaque consistency token, for a web API to hand to its client
        and take back (`ReadModel.wait_for` accepts either); None if nothing was recorded."""
        position = self.position
        return None if position is None else consistency_token(position)


@overload
def handle_command(
    repository: Repository[AggT, IdT],
    aggregate_id: IdT,
    decide: Callable[[AggT], tuple[EventT, ...]],
    *,
    max_attempts: int = 3,
    must_exist: bool = False,
    metadata: Mapping[str, Any] | None = None,
    command: Command | None = None,
) -> CommandResult[AggT, tuple[EventT, ...], EventT]: ...


@overload
def handle_command(
    repository: Repository[AggT, IdT],
    aggregate_id: IdT,
    decide: Callable[[AggT], R],
    *,
    max_attempts: int = 3,
    must_exist: bool = False,
    metadata: Mapping[str, Any] | None = None,
    command: Command | None = None,
) -> CommandResult[AggT, R, Event]: ...


def handle_command(
    repository: Repository[AggT, IdT],
    aggregate_id: IdT,
    decide: Callable[[AggT], Any],
    *,
    max_attempts: int = 3,
    must_exist: bool = False,
    metadata: Mapping[str, Any] | None = None,
    command: Command | None = None,
) -> CommandResult[AggT, Any, Any]:
    """Load the aggregate, call `decide(aggregate)`, save what it recorded.

    `decide` calls the aggregate's command methods (or `execute`) and may return a value
    for the caller; it must not have other side effects, since a conflict runs it again on
    the reloaded aggregate (up to `max_attempts` times in all, then the `ConcurrencyError`
    is raised). A new aggregate (no events yet) is passed as an empty one, unless
    `must_exist`, which raises `AggregateNotFound`; aggregates that declare
    `creation_commands` check that in `execute`, and when two creators race, the retry of
    the one that lost raises `AggregateAlreadyExists`. Without an active
    `command_context`, one is opened, so every attempt writes the same correlation and
    causation ids.

    When `decide` returns a tuple of events, the result's `events` have that type: return
    what `execute` (or a typed wrapper of it) returns, which is what was recorded.

    `command`, if given, names the command in the events' metadata (key "command"), so
    that `esgen inspect trace` can show which command recorded them; the caller's own
    `metadata` may still set that key.
    """
    if command is not None:
        metadata = {COMMAND_KEY: command.command_type, **(metadata or {})}

    def attempt(number: int) -> CommandResult[AggT, Any, Any]:
        if must_exist:
            aggregate = repository.load(aggregate_id)
        else:
            aggregate = repository.load_or_new(aggregate_id)
        value = check_decided(decide(aggregate))
        events = aggregate.pending_events
        appended = repository.save(aggregate, metadata=metadata)
        return CommandResult(aggregate, value, events, appended, number)

    return retry_on_conflict(attempt, max_attempts)


def check_decided(value: T) -> T:
    """What `decide` returned, unless it is awaitable: an `async def` decide would record
    nothing before its result is discarded, so it is refused rather than saving nothing."""
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()  # no "never awaited" warning on top of the error
        raise TypeError(
            "decide returned an awaitable: it must be a plain function that calls the "
            "aggregate's command methods (an async def decide records nothing)"
        )
    return value


def retry_on_conflict(attempt: Callable[[int], T], max_attempts: int) -> T:
    """Call `attempt(1)`, and on a `ConcurrencyError` `attempt(2)`... up to `max_attempts`
    times in all, then let the error out with a note. All attempts run in one command
    context (opened here if none is active), so every one writes the same correlation and
    causation ids: what handling a command and running a unit of work share."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1 (got {max_attempts})")
    scope = command_context() if current_context() is None else nullcontext()
    with scope:
        number = 1
        while True:
            try:
                return attempt(number)
            except ConcurrencyError as exc:
                if number >= max_attempts:
                    exc.add_note(f"gave up after {number} attempt(s)")
                    raise
                number += 1
