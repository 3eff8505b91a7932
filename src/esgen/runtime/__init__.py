"""The esgen runtime: what generated code and production services import.

Loads pydantic and the standard library only; never the generator's dependencies. The
contract suite and test helpers live in `esgen.runtime.testing`, which imports pytest.
Every public name is imported from its module on first use: `import esgen.runtime` loads
neither pydantic nor any store, and a module of generated events loads only the message
classes. `PostgresEventStore` needs the `esgen[postgres]` extra (psycopg), so importing the
runtime never loads the driver.
"""

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esgen.runtime._aggregate import Aggregate, state_fingerprint
    from esgen.runtime._async_ports import AsyncEventStore, AsyncSnapshotStore
    from esgen.runtime._commands import CommandResult, handle_command
    from esgen.runtime._commands_async import handle_command_async
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
    from esgen.runtime._lazy import lazy_exports
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
    from esgen.runtime._ports import (
        DEFAULT_PAGE_SIZE,
        EventStore,
        SnapshotStore,
        TransactionalStore,
    )
    from esgen.runtime._postgres import PostgresEventStore as PostgresEventStore
    from esgen.runtime._postgres_async import (
        AsyncPostgresEventStore as AsyncPostgresEventStore,
    )
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
    from esgen.runtime._repository_async import AsyncRepository
    from esgen.runtime._saga import Saga, SagaError, SagaStatus
    from esgen.runtime._saga_runner import SagaInstanceNotFound, SagaRunner
    from esgen.runtime._sqlite import SQLiteEventStore
    from esgen.runtime._sqlite_async import AsyncSQLiteEventStore
    from esgen.runtime._unit_of_work import UnitOfWork, UnitOfWorkResult, run_in_unit_of_work
    from esgen.runtime._unit_of_work_async import AsyncUnitOfWork, run_in_unit_of_work_async
    from esgen.runtime._views import ReadModel
    from esgen.runtime._views_async import AsyncReadModel

# Where each public name is defined: it is imported from there on first use (PEP 562),
# so `import esgen.runtime` costs a few milliseconds and a program pays only for the
# parts it touches (a module of events loads pydantic and the message classes, not the
# stores, runners and inspector).
_HOME: dict[str, str] = {
    "Aggregate": "_aggregate",
    "AsyncEventStore": "_async_ports",
    "AsyncReadModel": "_views_async",
    "AsyncRepository": "_repository_async",
    "AsyncSQLiteEventStore": "_sqlite_async",
    "AsyncSnapshotStore": "_async_ports",
    "AsyncUnitOfWork": "_unit_of_work_async",
    "AggregateAlreadyExists": "_errors",
    "AggregateDefinitionError": "_errors",
    "AggregateNotCreated": "_errors",
    "AggregateNotFound": "_errors",
    "AppendResult": "_records",
    "BackendError": "_errors",
    "BackendUnavailable": "_errors",
    "Clock": "_records",
    "Column": "_readmodel",
    "Command": "_messages",
    "CommandContext": "_context",
    "CommandResult": "_commands",
    "ConcurrencyError": "_errors",
    "Condition": "_query",
    "Consumer": "_consumer",
    "ConsumerNeedsReplay": "_consumer",
    "ConsumerReadModel": "_consumer",
    "DEFAULT_PAGE_SIZE": "_ports",
    "DecodeError": "_errors",
    "Decoder": "_registry",
    "Event": "_messages",
    "EventRegistry": "_registry",
    "EventStore": "_ports",
    "EventStoreError": "_errors",
    "EventView": "_inspect",
    "ExpectedVersion": "_records",
    "Field": "_query",
    "FieldChange": "_inspect",
    "ForgottenSubject": "_personal",
    "FrozenDict": "_frozen",
    "FrozenMap": "_frozen",
    "HistoryEntry": "_repository",
    "HistoryStep": "_inspect",
    "Index": "_readmodel",
    "InspectError": "_inspect",
    "Inspector": "_inspect",
    "InvalidConsistencyToken": "_errors",
    "KeyUnavailable": "_personal",
    "KeyWrapper": "_personal",
    "Keyring": "_personal",
    "MasterKey": "_personal",
    "MemoryEventStore": "_memory",
    "NanFloat": "_finite",
    "NewEvent": "_records",
    "Order": "_query",
    "Personal": "_personal",
    "PersonalDataError": "_personal",
    "Problem": "_health",
    "ProgressStorage": "_progress_store",
    "Projection": "_projection",
    "ProjectionNeedsRebuild": "_projection",
    "ProjectionRunner": "_projection",
    "ProjectionStatus": "_projection",
    "ReadModel": "_views",
    "ReadModelBehind": "_errors",
    "ReadModelNotFound": "_errors",
    "ReadOnlyStore": "_errors",
    "RebuildStart": "_projection",
    "RecordedEvent": "_records",
    "RegistryError": "_errors",
    "Repository": "_repository",
    "Rows": "_readmodel",
    "SQLiteEventStore": "_sqlite",
    "Saga": "_saga",
    "SagaError": "_saga",
    "SagaInstance": "_health",
    "SagaInstanceNotFound": "_saga_runner",
    "SagaRunner": "_saga_runner",
    "SagaRunnerStatus": "_health",
    "SagaStatus": "_saga",
    "Snapshot": "_records",
    "SnapshotStore": "_ports",
    "StateView": "_inspect",
    "StoreDamaged": "_errors",
    "StreamAppend": "_records",
    "StreamNotFound": "_errors",
    "StreamSummary": "_records",
    "StreamView": "_inspect",
    "SubjectForgotten": "_personal",
    "TableSpec": "_readmodel",
    "Trace": "_inspect",
    "TraceCommand": "_inspect",
    "TraceEvent": "_inspect",
    "TransactionalStore": "_ports",
    "UndeclaredEvent": "_errors",
    "UnhandledCommand": "_errors",
    "UnhandledEvent": "_errors",
    "UnitOfWork": "_unit_of_work",
    "UnitOfWorkResult": "_unit_of_work",
    "UnknownEventType": "_errors",
    "UnstorableText": "_errors",
    "UnstorableValue": "_errors",
    "UpcastError": "_errors",
    "Upcaster": "_registry",
    "ValueObject": "_messages",
    "command_context": "_context",
    "consistency_token": "_consistency",
    "current_context": "_context",
    "decode_id": "_ids",
    "encode_id": "_ids",
    "handle_command": "_commands",
    "handle_command_async": "_commands_async",
    "lazy_exports": "_lazy",
    "new_event_id": "_records",
    "parse_consistency_token": "_consistency",
    "progress_storage": "_progress_store",
    "run_in_unit_of_work": "_unit_of_work",
    "run_in_unit_of_work_async": "_unit_of_work_async",
    "sealed_text": "_personal",
    "state_fingerprint": "_aggregate",
    "upcast_events": "_registry",
    "utc_now": "_records",
}

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "Aggregate",
    "AggregateAlreadyExists",
    "AggregateDefinitionError",
    "AggregateNotCreated",
    "AggregateNotFound",
    "AppendResult",
    "AsyncEventStore",
    "AsyncPostgresEventStore",
    "AsyncReadModel",
    "AsyncRepository",
    "AsyncSQLiteEventStore",
    "AsyncSnapshotStore",
    "AsyncUnitOfWork",
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
    "handle_command_async",
    "lazy_exports",
    "new_event_id",
    "parse_consistency_token",
    "progress_storage",
    "run_in_unit_of_work",
    "run_in_unit_of_work_async",
    "sealed_text",
    "state_fingerprint",
    "upcast_events",
    "utc_now",
]

# The names that need the `postgres` extra, and where they are defined.
_DRIVER_HOME = {
    "AsyncPostgresEventStore": "_postgres_async",
    "PostgresEventStore": "_postgres",
}

# Listed only where it can be imported, so `from esgen.runtime import *` works without the
# extra (find_spec locates the driver without importing it).
if find_spec("psycopg") is None or find_spec("psycopg_pool") is None:
    __all__.remove("PostgresEventStore")
    __all__.remove("AsyncPostgresEventStore")


# Run time only: a module __getattr__ that type checkers saw would make a misspelt name
# an Any; they read the imports above instead.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        home = _HOME.get(name)
        if home is not None:
            value = getattr(import_module(f"{__name__}.{home}"), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _DRIVER_HOME:
            try:
                value = getattr(import_module(f"{__name__}.{_DRIVER_HOME[name]}"), name)
            except ImportError as exc:
                if exc.name not in ("psycopg", "psycopg_pool"):
                    raise
                raise ImportError(
                    f"{name} needs {exc.name}, which is not installed: "
                    "pip install 'esgen[postgres]'",
                    name=exc.name,
                ) from exc
            globals()[name] = value  # later lookups skip this function
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
