"""The runtime's exceptions: one tree, raised the same way by every backend.

EsgenError
└── EventStoreError                        anything the runtime raises
    ├── ConcurrencyError                   append saw another stream version than expected
    ├── StreamNotFound (LookupError)       a stream with no events was read
    │   └── AggregateNotFound              an aggregate with no events (at that point) was loaded
    ├── AggregateNotCreated (LookupError)  `.state` read before the aggregate's first event
    ├── DecodeError (ValueError)           a stored event cannot become a typed event
    │   ├── UnknownEventType (LookupError) no class is registered for its type
    │   └── UpcastError                    a missing or failing step from its version to the latest
    ├── RegistryError (ValueError)         conflicting or incomplete event registrations
    ├── AggregateDefinitionError (TypeError)  an aggregate class that cannot work as declared
    ├── UnhandledEvent (TypeError)         an aggregate got an event it has no apply method for
    ├── UnhandledCommand (TypeError)       an aggregate got a command it has no handler for
    ├── UndeclaredEvent (TypeError)        a command handler returned an event it may not emit
    └── BackendError                       a database driver failure, translated at the adapter edge
        └── BackendUnavailable             the database cannot be reached: down, wrong address,
                                           connection lost (an append's outcome: all or nothing)

Backends translate driver exceptions into these, so callers never import sqlite3 or psycopg
to handle errors; the driver exception stays available as `__cause__`.
"""

from __future__ import annotations

from typing import Any

from esgen._errors import EsgenError

__all__ = [
    "AggregateDefinitionError",
    "AggregateNotCreated",
    "AggregateNotFound",
    "BackendError",
    "BackendUnavailable",
    "ConcurrencyError",
    "DecodeError",
    "EventStoreError",
    "RegistryError",
    "StreamNotFound",
    "UndeclaredEvent",
    "UnhandledCommand",
    "UnhandledEvent",
    "UnknownEventType",
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
    def __init__(
        self, aggregate_type: str, aggregate_id: str, stream_id: str, when: str = ""
    ) -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.when = when
        super().__init__(
            stream_id,
            f"{aggregate_type} {aggregate_id!r} does not exist{when} (stream {stream_id!r})",
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.aggregate_type, self.aggregate_id, self.stream_id, self.when))


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
