"""The runtime's exceptions: one tree, raised the same way by every backend.

EsgenError
└── EventStoreError                        anything the runtime raises
    ├── ConcurrencyError                   append saw another stream version than expected
    ├── StreamNotFound (LookupError)       a stream with no events was read
    │   └── AggregateNotFound              an aggregate with no events (at that point) was loaded
    ├── AggregateNotCreated (LookupError)  `.state` read before the aggregate's first event
    ├── AggregateAlreadyExists (ValueError)  a creating command on an aggregate that exists
    ├── UnstorableText (ValueError)        a stream id, key or text no backend can store as given
    ├── ReadOnlyStore (PermissionError)    a write to a store opened read-only
    ├── DecodeError (ValueError)           a stored event cannot become a typed event
    │   ├── UnknownEventType (LookupError) no class is registered for its type
    │   └── UpcastError                    a missing or failing step from its version to the latest
    ├── RegistryError (ValueError)         conflicting or incomplete event registrations
    ├── UnstorableValue (ValueError)       NaN or ±Infinity where a field does not allow it, or
    │                                      a decimal a read-model column cannot order
    ├── ProjectionNeedsRebuild (RuntimeError)  a read model's fields changed since it was built
    ├── ReadModelNotFound (LookupError)    a read model queried where no projection created it
    ├── ReadModelBehind (TimeoutError)     a wait for a read model to reach a position timed out
    ├── InvalidConsistencyToken (ValueError)  a consistency token that is not one, or is another
    │                                      store's (a position beyond this store's head)
    ├── AggregateDefinitionError (TypeError)  an aggregate class that cannot work as declared
    ├── UnhandledEvent (TypeError)         an aggregate got an event it has no apply method for
    ├── UnhandledCommand (TypeError)       an aggregate got a command it has no handler for
    ├── UndeclaredEvent (TypeError)        a command handler returned an event it may not emit
    └── BackendError                       a database driver failure, translated at the adapter edge
        ├── BackendUnavailable             the database cannot be reached: down, wrong address,
        │                                  connection lost (an append's outcome: all or nothing)
        └── StoreDamaged                   the database file is damaged: appends are refused

Backends translate driver exceptions into these, so callers never import sqlite3 or psycopg
to handle errors; the driver exception stays available as `__cause__`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from esgen._errors import EsgenError

__all__ = [
    "AggregateAlreadyExists",
    "AggregateDefinitionError",
    "AggregateNotCreated",
    "AggregateNotFound",
    "BackendError",
    "BackendUnavailable",
    "ConcurrencyError",
    "DecodeError",
    "EventStoreError",
    "InvalidConsistencyToken",
    "ProjectionNeedsRebuild",
    "ReadModelBehind",
    "ReadModelNotFound",
    "ReadOnlyStore",
    "RegistryError",
    "StoreDamaged",
    "StreamNotFound",
    "UndeclaredEvent",
    "UnhandledCommand",
    "UnhandledEvent",
    "UnknownEventType",
    "UnstorableText",
    "UnstorableValue",
    "UpcastError",
]


class EventStoreError(EsgenError):
    """Catch this to catch everything the runtime raises on purpose."""


class ConcurrencyError(EventStoreError):
    """Someone else appended to the stream first; nothing was written.

    Reload and decide again (`handle_command` does this a bounded number of times).
    """

    def __init__(self, stream_id: str, expected: object, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r}: expected version {_describe_expected(expected)}, "
            f"found {'no stream' if actual == 0 else f'version {actual}'}; nothing was written"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Keeps the error intact when it crosses a process boundary (multiprocessing).
        return (type(self), (self.stream_id, self.expected, self.actual))


class StreamNotFound(EventStoreError, LookupError):
    def __init__(self, stream_id: str, message: str | None = None) -> None:
        self.stream_id = stream_id
        super().__init__(message or f"stream {stream_id!r} has no events")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.stream_id, str(self)))


class AggregateNotFound(StreamNotFound):
    """An aggregate with no events was loaded, or given a command that needs it to exist.

    `aggregate_id` is the id as the aggregate types it (a UUID, an int or a str).
    """

    def __init__(
        self,
        aggregate_type: str,
        aggregate_id: object,
        stream_id: str,
        when: str = "",
        *,
        hint: str = "",
    ) -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.when = when
        self.hint = hint
        super().__init__(
            stream_id,
            f"{aggregate_type} {show_id(aggregate_id)} does not exist{when} "
            f"(stream {stream_id!r}){hint}",
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        fields = (self.aggregate_type, self.aggregate_id, self.stream_id, self.when, self.hint)
        return (_rebuild, (type(self), *fields))


def _rebuild(
    cls: type[AggregateNotFound],
    aggregate_type: str,
    aggregate_id: object,
    stream_id: str,
    when: str,
    hint: str,
) -> AggregateNotFound:
    # __reduce__ cannot pass keyword arguments; this restores `hint` after unpickling.
    return cls(aggregate_type, aggregate_id, stream_id, when, hint=hint)


class AggregateAlreadyExists(EventStoreError, ValueError):
    """A command that creates an aggregate was given one that exists already.

    Not a `ConcurrencyError`: when two creators race, the loser's retry (in
    `handle_command`) sees the winner's aggregate and raises this, for good.
    """

    def __init__(
        self, aggregate_type: str, aggregate_id: object, stream_id: str, command: str
    ) -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.stream_id = stream_id
        self.command = command
        super().__init__(
            f"{aggregate_type} {show_id(aggregate_id)} already exists (stream {stream_id!r}): "
            f"{command} creates it, so it may only be sent for a new id"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (
            type(self),
            (self.aggregate_type, self.aggregate_id, self.stream_id, self.command),
        )


def show_id(aggregate_id: object) -> str:
    """An id in a message: text quoted (so spaces and emptiness show), others as written."""
    return repr(aggregate_id) if isinstance(aggregate_id, str) else str(aggregate_id)


class UnstorableText(EventStoreError, ValueError):
    """Text that no backend can store as given, refused before any database sees it: NUL in
    a stream id (PostgreSQL text cannot hold it), or a lone surrogate anywhere (it is not
    Unicode text and has no UTF-8 form). `what` names the slot, e.g. "stream id"."""

    def __init__(self, what: str, value: str, message: str) -> None:
        self.what = what
        self.value = value
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.what, self.value, str(self)))


class ReadOnlyStore(EventStoreError, PermissionError):
    """A write (append, snapshot, write transaction) to a store opened with `read_only=True`."""


class ReadModelNotFound(EventStoreError, LookupError):
    """A read model was queried in a store where its projection never ran: no runner has
    created its table there (or this is not the store the projections write to)."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(
            message
            or f"read model {name!r} does not exist in this store yet: run its projection "
            f"(esgen projections catch-up, or ProjectionRunner.catch_up) against this store first"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.name, str(self)))


class ReadModelBehind(EventStoreError, TimeoutError):
    """A wait for a read model to process a position (read-your-writes) ran out of time:
    its projection's runner is slow, stopped on an error, or not running at all.

    `problem` is the projection's recorded error, if it has one (the likely reason)."""

    def __init__(
        self,
        projection: str,
        wanted: int,
        reached: int,
        timeout: float,
        problem: str | None = None,
    ) -> None:
        self.projection = projection
        self.wanted = wanted
        self.reached = reached
        self.timeout = timeout
        self.problem = problem
        why = (
            f"; it stopped on an error: {problem}"
            if problem is not None
            else "; is its projection runner running against this store?"
        )
        super().__init__(
            f"read model {projection!r} has processed events up to position {reached}, not "
            f"yet {wanted}, after waiting {timeout:g} s{why}"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (
            type(self),
            (self.projection, self.wanted, self.reached, self.timeout, self.problem),
        )


class InvalidConsistencyToken(EventStoreError, ValueError):
    """A consistency token that `consistency_token` did not make, or a position this store
    has not reached (a token from another store): the client sent something wrong, so a
    web API answers 400, not 500. `text` is what was given (shortened when long)."""

    def __init__(self, text: str, message: str) -> None:
        self.text = text
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.text, str(self)))


class AggregateNotCreated(EventStoreError, LookupError):
    """Raised by `Aggregate.state` when no event has been applied yet."""


class DecodeError(EventStoreError, ValueError):
    """A stored event's type, version or data does not fit the registered classes."""


class UnknownEventType(DecodeError, LookupError):
    pass


class UpcastError(DecodeError):
    pass


class RegistryError(EventStoreError, ValueError):
    pass


class ProjectionNeedsRebuild(EventStoreError, RuntimeError):
    """A projection's table was built with another layout (its fields changed since, or an
    earlier esgen stored them otherwise): rebuild it (`esgen projections rebuild NAME`)
    before it can catch up again, or be read."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        listed = ", ".join(names)
        super().__init__(
            f"the table of {listed} was built with another layout (its fields changed, or "
            "an earlier esgen stored them otherwise); rebuild it "
            f"(esgen projections rebuild {' '.join(names)}, or ProjectionRunner.rebuild)"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.names,))


class UnstorableValue(EventStoreError, ValueError):
    """A value that would not read back as itself was about to be written: NaN or ±Infinity
    in a float field that does not allow it (JSON would hold it as null), or a NaN, sNaN or
    infinite Decimal (no decimal field reads one back); or a value a read-model column
    cannot hold (`rule` says why). Nothing was written.
    """

    def __init__(
        self, model: str, field: str, value: float | Decimal, rule: str | None = None
    ) -> None:
        self.model = model
        self.field = field
        self.value = value
        self.rule = rule
        where = f"{model}.{field}" if field else model
        if rule is None:
            if isinstance(value, Decimal):
                rule = "a decimal field stores only finite numbers"
            else:
                rule = (
                    "a float field stores only finite numbers unless its schema says "
                    "`allow_nan: true`"
                )
        super().__init__(f"{where} is {value!r}: {rule}; nothing was written")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.model, self.field, self.value, self.rule))


class AggregateDefinitionError(EventStoreError, TypeError):
    pass


class UnhandledEvent(EventStoreError, TypeError):
    pass


class BackendError(EventStoreError):
    """The database failed (locked past the busy timeout, disk full, corrupt file, ...)."""


class BackendUnavailable(BackendError):
    """The database server could not be reached, or the connection to it was lost.

    Usually worth retrying later. Raised by an append, the events were written either all
    or not at all; reading the stream tells which.
    """


class StoreDamaged(BackendError):
    """The database file is damaged (SQLite's integrity check failed, or an operation met a
    malformed page). Appends are refused so nothing more is written to a damaged file;
    reads may still be tried. Restore the file from a backup."""


def _describe_expected(expected: object) -> str:
    # ExpectedVersion lives in _records, which imports this module: compare by enum name.
    name = getattr(expected, "name", None)
    if name == "NO_STREAM" or expected == 0:
        return "no stream"
    if isinstance(name, str):
        return name.lower()
    return str(expected)


class UnhandledCommand(EventStoreError, TypeError):
    """An aggregate was asked to execute a command class it declares no handler for."""


class UndeclaredEvent(EventStoreError, TypeError):
    """A command handler returned an event its command does not list in `emits`.

    The schema says which events a command may produce; anything else is a bug in the
    handler, refused before it is recorded.
    """
