"""The esgen runtime: what generated code and production services import.

Loads pydantic and the standard library only; never the generator's dependencies. The
contract suite and test helpers live in `esgen.runtime.testing`, which imports pytest.
"""

from esgen.runtime._aggregate import Aggregate, state_fingerprint
from esgen.runtime._commands import CommandResult, handle_command
from esgen.runtime._context import CommandContext, command_context, current_context
from esgen.runtime._errors import (
    AggregateDefinitionError,
    AggregateNotCreated,
    AggregateNotFound,
    BackendError,
    BackendUnavailable,
    ConcurrencyError,
    DecodeError,
    EventStoreError,
    RegistryError,
    StreamNotFound,
    UnhandledEvent,
    UnknownEventType,
    UpcastError,
)
from esgen.runtime._memory import MemoryEventStore
from esgen.runtime._messages import Command, Event, ValueObject
from esgen.runtime._ports import DEFAULT_PAGE_SIZE, EventStore, SnapshotStore, TransactionalStore
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    new_event_id,
    utc_now,
)
from esgen.runtime._registry import Decoder, EventRegistry, Upcaster
from esgen.runtime._repository import HistoryEntry, Repository
from esgen.runtime._sqlite import SQLiteEventStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "Aggregate",
    "AggregateDefinitionError",
    "AggregateNotCreated",
    "AggregateNotFound",
    "AppendResult",
    "BackendError",
    "BackendUnavailable",
    "Clock",
    "Command",
    "CommandContext",
    "CommandResult",
    "ConcurrencyError",
    "DecodeError",
    "Decoder",
    "Event",
    "EventRegistry",
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
    "HistoryEntry",
    "MemoryEventStore",
    "NewEvent",
    "RecordedEvent",
    "RegistryError",
    "Repository",
    "SQLiteEventStore",
    "Snapshot",
    "SnapshotStore",
    "StreamNotFound",
    "TransactionalStore",
    "UnhandledEvent",
    "UnknownEventType",
    "UpcastError",
    "Upcaster",
    "ValueObject",
    "command_context",
    "current_context",
    "handle_command",
    "new_event_id",
    "state_fingerprint",
    "utc_now",
]
