"""The esgen runtime: what generated code and production services import.

Loads pydantic and the standard library only; never the generator's dependencies. The
contract suite and test helpers live in `esgen.runtime.testing`, which imports pytest.
`PostgresEventStore` needs the `esgen[postgres]` extra (psycopg) and is imported on first
use, so importing the runtime never loads the driver.
"""

from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from esgen.runtime._aggregate import Aggregate, state_fingerprint
from esgen.runtime._commands import CommandResult, handle_command
from esgen.runtime._consistency import consistency_token, parse_consistency_token
from esgen.runtime._consumer import Consumer, ConsumerNeedsReplay, ConsumerReadModel
from esgen.runtime._context import CommandContext, command_context, current_context
from esgen.runtime._errors import (
    AggregateAlreadyExists,
    AggregateDefinitionError,
    AggregateNotCreated,
    AggregateNotFound,
    BackendError,
    BackendUnavailable,
    ConcurrencyError,
    DecodeError,
    EventStoreError,
    InvalidConsistencyToken,
    ReadModelBehind,
    ReadModelNotFound,
    ReadOnlyStore,
    RegistryError,
    StoreDamaged,
    StreamNotFound,
    UndeclaredEvent,
    UnhandledCommand,
    UnhandledEvent,
    UnknownEventType,
    UnstorableText,
    UnstorableValue,
    UpcastError,
)
from esgen.runtime._finite import NanFloat
from esgen.runtime._frozen import FrozenDict, FrozenMap
from esgen.runtime._health import Problem, SagaInstance, SagaRunnerStatus
from esgen.runtime._ids import decode_id, encode_id
from esgen.runtime._inspect import (
    EventView,
    FieldChange,
    HistoryStep,
    InspectError,
    Inspector,
    StateView,
    StreamView,
    Trace,
    TraceCommand,
    TraceEvent,
)
from esgen.runtime._memory import MemoryEventStore
from esgen.runtime._messages import Command, Event, ValueObject
from esgen.runtime._personal import (
    ForgottenSubject,
    Keyring,
    KeyUnavailable,
    KeyWrapper,
    MasterKey,
    Personal,
    PersonalDataError,
    SubjectForgotten,
    sealed_text,
)
from esgen.runtime._ports import DEFAULT_PAGE_SIZE, EventStore, SnapshotStore, TransactionalStore
from esgen.runtime._progress_store import ProgressStorage, progress_storage
from esgen.runtime._projection import (
    Projection,
    ProjectionNeedsRebuild,
    ProjectionRunner,
    ProjectionStatus,
    RebuildStart,
)
from esgen.runtime._query import Condition, Field, Order
from esgen.runtime._readmodel import Column, Index, Rows, TableSpec
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    StreamSummary,
    new_event_id,
    utc_now,
)
from esgen.runtime._registry import Decoder, EventRegistry, Upcaster, upcast_events
from esgen.runtime._repository import HistoryEntry, Repository
from esgen.runtime._saga import Saga, SagaError, SagaStatus
from esgen.runtime._saga_runner import SagaInstanceNotFound, SagaRunner
from esgen.runtime._sqlite import SQLiteEventStore
from esgen.runtime._unit_of_work import UnitOfWork, UnitOfWorkResult, run_in_unit_of_work
from esgen.runtime._views import ReadModel

if TYPE_CHECKING:
    from esgen.runtime._postgres import PostgresEventStore as PostgresEventStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "Aggregate",
    "AggregateAlreadyExists",
    "AggregateDefinitionError",
    "AggregateNotCreated",
    "AggregateNotFound",
    "AppendResult",
    "BackendError",
    "BackendUnavailable",
    "Clock",
    "Column",
    "Command",
    "CommandContext",
    "CommandResult",
    "ConcurrencyError",
    "Condition",
    "Consumer",
    "ConsumerNeedsReplay",
    "ConsumerReadModel",
    "DecodeError",
    "Decoder",
    "Event",
    "EventRegistry",
    "EventStore",
    "EventStoreError",
    "EventView",
    "ExpectedVersion",
    "Field",
    "FieldChange",
    "ForgottenSubject",
    "FrozenDict",
    "FrozenMap",
    "HistoryEntry",
    "HistoryStep",
    "Index",
    "InspectError",
    "Inspector",
    "InvalidConsistencyToken",
    "KeyUnavailable",
    "KeyWrapper",
    "Keyring",
    "MasterKey",
    "MemoryEventStore",
    "NanFloat",
    "NewEvent",
    "Order",
    "Personal",
    "PersonalDataError",
    "PostgresEventStore",
    "Problem",
    "ProgressStorage",
    "Projection",
    "ProjectionNeedsRebuild",
    "ProjectionRunner",
    "ProjectionStatus",
    "ReadModel",
    "ReadModelBehind",
    "ReadModelNotFound",
    "ReadOnlyStore",
    "RebuildStart",
    "RecordedEvent",
    "RegistryError",
    "Repository",
    "Rows",
    "SQLiteEventStore",
    "Saga",
    "SagaError",
    "SagaInstance",
    "SagaInstanceNotFound",
    "SagaRunner",
    "SagaRunnerStatus",
    "SagaStatus",
    "Snapshot",
    "SnapshotStore",
    "StateView",
    "StoreDamaged",
    "StreamAppend",
    "StreamNotFound",
    "StreamSummary",
    "StreamView",
    "SubjectForgotten",
    "TableSpec",
    "Trace",
    "TraceCommand",
    "TraceEvent",
    "TransactionalStore",
    "UndeclaredEvent",
    "UnhandledCommand",
    "UnhandledEvent",
    "UnitOfWork",
    "UnitOfWorkResult",
    "UnknownEventType",
    "UnstorableText",
    "UnstorableValue",
    "UpcastError",
    "Upcaster",
    "ValueObject",
    "command_context",
    "consistency_token",
    "current_context",
    "decode_id",
    "encode_id",
    "handle_command",
    "new_event_id",
    "parse_consistency_token",
    "progress_storage",
    "run_in_unit_of_work",
    "sealed_text",
    "state_fingerprint",
    "upcast_events",
    "utc_now",
]

# Listed only where it can be imported, so `from esgen.runtime import *` works without the
# extra (find_spec locates the driver without importing it).
if find_spec("psycopg") is None or find_spec("psycopg_pool") is None:
    __all__.remove("PostgresEventStore")


def __getattr__(name: str) -> Any:
    if name == "PostgresEventStore":
        try:
            from esgen.runtime._postgres import PostgresEventStore
        except ImportError as exc:
            if exc.name not in ("psycopg", "psycopg_pool"):
                raise
            raise ImportError(
                f"PostgresEventStore needs {exc.name}, which is not installed: "
                "pip install 'esgen[postgres]'",
                name=exc.name,
            ) from exc
        globals()[name] = PostgresEventStore  # later lookups skip this function
        return PostgresEventStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
