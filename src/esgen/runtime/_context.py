"""The command context: who and what caused the events being written.

Every event gets a correlation id (the conversation it belongs to: the same for everything
that follows from one user request, across aggregates and sagas) and a causation id (the
message that directly caused it: the command, or the event a saga reacted to), plus
free-form keys such as the acting user. The context lives in a `ContextVar`, so it follows
the code through calls, threads started with `contextvars.copy_context()` and asyncio tasks,
without being passed to every function.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from uuid import UUID

from esgen.runtime._records import RecordedEvent, new_event_id

__all__ = ["CommandContext", "command_context", "current_context"]

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"


@dataclass(frozen=True, slots=True)
class CommandContext:
    correlation_id: str
    causation_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(init=False, repr=False, compare=False)
    """What every event written in this context carries: the two ids and the extra keys."""

    def __post_init__(self) -> None:
        reserved = {CORRELATION_ID, CAUSATION_ID} & self.extra.keys()
        if reserved:
            raise ValueError(f"extra metadata may not set {sorted(reserved)}: they are set apart")
        metadata = {CORRELATION_ID: self.correlation_id, CAUSATION_ID: self.causation_id}
        metadata.update(self.extra)
        # Built once per context: every save in it shares this mapping (and its JSON).
        object.__setattr__(self, "metadata", MappingProxyType(metadata))

    @classmethod
    def new(
        cls,
        *,
        correlation_id: str | UUID | None = None,
        causation_id: str | UUID | None = None,
        caused_by: RecordedEvent | None = None,
        parent: CommandContext | None = None,
        **extra: Any,
    ) -> CommandContext:
        """Build a context; see `command_context` for how missing ids are filled in."""
        if caused_by is not None:
            if correlation_id is None:
                correlation_id = caused_by.correlation_id or str(caused_by.event_id)
            if causation_id is None:
                causation_id = str(caused_by.event_id)
        cause = str(new_event_id()) if causation_id is None else str(causation_id)
        if correlation_id is not None:
            correlation = str(correlation_id)
        elif parent is not None:
            correlation = parent.correlation_id
        else:
            correlation = cause
        merged = {**parent.extra, **extra} if parent is not None else extra
        return cls(correlation, cause, MappingProxyType(merged))


_current: ContextVar[CommandContext | None] = ContextVar("esgen_command_context", default=None)


def current_context() -> CommandContext | None:
    return _current.get()


@contextmanager
def command_context(
    context: CommandContext | None = None,
    *,
    correlation_id: str | UUID | None = None,
    causation_id: str | UUID | None = None,
    caused_by: RecordedEvent | None = None,
    **extra: Any,
) -> Iterator[CommandContext]:
    """Make every event saved inside the block carry these ids and extra keys.

    - `causation_id`: the id of the command being handled; a new uuid if not given.
    - `correlation_id`: propagated from the caller (e.g. a request id); if not given, taken
      from an enclosing context, else equal to the causation id (a new conversation).
    - `caused_by`: a recorded event a saga or process manager is reacting to; its correlation
      id is propagated and its event id becomes the causation id.
    - extra keys (e.g. `user="alice"`) are added to, or override, an enclosing context's.

    Pass a prepared `CommandContext` instead to activate it as it is.
    """
    if context is None:
        context = CommandContext.new(
            correlation_id=correlation_id,
            causation_id=causation_id,
            caused_by=caused_by,
            parent=_current.get(),
            **extra,
        )
    elif correlation_id is not None or causation_id is not None or caused_by is not None or extra:
        raise TypeError("pass either a prepared CommandContext or the values to build one")
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def save_metadata(extra: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The metadata for one save: the active context's, or a fresh pair of ids if none."""
    context = _current.get()
    if context is None:
        own_id = str(new_event_id())
        metadata: Mapping[str, Any] = {CORRELATION_ID: own_id, CAUSATION_ID: own_id}
    else:
        metadata = context.metadata
    if extra:
        metadata = {**metadata, **extra}
    return metadata
