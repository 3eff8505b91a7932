"""The runtime's public surface: pinned export lists and the import boundary."""

from __future__ import annotations

import json
import subprocess
import sys

import esgen.runtime
import esgen.runtime.testing
from esgen import EsgenError
from esgen.runtime import EventStoreError

# The names that need the `postgres` extra.
DRIVER_EXPORTS = ["AsyncPostgresEventStore", "PostgresEventStore"]

RUNTIME_EXPORTS = [
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

TESTING_EXPORTS = [
    "AggregateScenario",
    "BackendContract",
    "BlockingEventStore",
    "DecimalValuesContract",
    "EventStoreContract",
    "FloatValuesContract",
    "ManualClock",
    "MultiProcessContract",
    "ProjectionContract",
    "QueryContract",
    "RepositoryContract",
    "RowTextContract",
    "SagaContract",
    "SagaScenario",
    "UpcasterScenario",
    "todo",
]


def test_runtime_exports_are_pinned() -> None:
    assert esgen.runtime.__all__ == RUNTIME_EXPORTS
    for name in RUNTIME_EXPORTS:
        value = getattr(esgen.runtime, name)
        module = getattr(value, "__module__", "esgen.runtime")
        if isinstance(value, type) or (callable(value) and module.startswith("esgen")):
            assert module.startswith("esgen.runtime._"), f"{name} defined in {module}"


def test_testing_exports_are_pinned() -> None:
    assert esgen.runtime.testing.__all__ == TESTING_EXPORTS
    for name in TESTING_EXPORTS:
        assert getattr(esgen.runtime.testing, name).__module__.startswith("esgen.runtime.testing._")


def test_every_runtime_error_is_an_event_store_error_and_an_esgen_error() -> None:
    errors = [
        getattr(esgen.runtime, name)
        for name in RUNTIME_EXPORTS
        if isinstance(getattr(esgen.runtime, name), type)
        and issubclass(getattr(esgen.runtime, name), BaseException)
    ]
    # PersonalDataError, KeyUnavailable, ForgottenSubject: personal data (crypto-shredding)
    assert len(errors) == 31
    assert all(issubclass(error, EventStoreError) for error in errors)
    assert issubclass(EventStoreError, EsgenError)
    assert issubclass(esgen.runtime.StreamNotFound, LookupError)
    assert issubclass(esgen.runtime.AggregateNotFound, esgen.runtime.StreamNotFound)
    assert issubclass(esgen.runtime.UpcastError, esgen.runtime.DecodeError)
    assert issubclass(esgen.runtime.DecodeError, ValueError)
    assert issubclass(esgen.runtime.BackendUnavailable, esgen.runtime.BackendError)
    assert issubclass(esgen.runtime.StoreDamaged, esgen.runtime.BackendError)
    assert issubclass(esgen.runtime.UnstorableText, ValueError)
    assert issubclass(esgen.runtime.ReadOnlyStore, PermissionError)
    assert issubclass(esgen.runtime.SagaInstanceNotFound, LookupError)
    # A creation refused is final: not a ConcurrencyError, so handle_command never retries it.
    assert issubclass(esgen.runtime.AggregateAlreadyExists, ValueError)
    assert not issubclass(esgen.runtime.AggregateAlreadyExists, esgen.runtime.ConcurrencyError)
    # Read-your-writes: a wait that ran out is a timeout; a bad token is the client's error.
    assert issubclass(esgen.runtime.ReadModelBehind, TimeoutError)
    assert issubclass(esgen.runtime.InvalidConsistencyToken, ValueError)


def test_errors_survive_pickling() -> None:
    import pickle
    from uuid import UUID

    from esgen.runtime import (
        AggregateAlreadyExists,
        AggregateNotFound,
        ConcurrencyError,
        InvalidConsistencyToken,
        ReadModelBehind,
        StreamNotFound,
        UnstorableText,
    )

    uuid = UUID("0b5f8e3c-1d2a-4f6b-9c8d-7e6f5a4b3c2d")
    for error in [
        ConcurrencyError("s", 3, 5),
        StreamNotFound("s"),
        AggregateNotFound("Account", "a1", "Account-a1", " at version 2"),
        AggregateNotFound("Account", uuid, f"Account-{uuid}", hint=": Deposit needs one"),
        AggregateAlreadyExists("Account", 7, "Account-7", "OpenAccount"),
        UnstorableText("stream id", "a\x00", "stream id 'a\\x00' holds NUL"),
        ReadModelBehind("account_balances", 9, 4, 2.0, "ZeroDivisionError: division by zero"),
        InvalidConsistencyToken("p9.1", "not a consistency token: 'p9.1'"),
    ]:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


# What may be imported by `import esgen.runtime`: the standard library, pydantic and what
# pydantic itself needs. The generator's dependencies, drivers and test tools must not be.
ALLOWED_THIRD_PARTY = {
    "esgen",
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
}
FORBIDDEN = {
    "jinja2",
    "black",
    "click",
    "yaml",
    "datamodel_code_generator",
    "psycopg",
    "psycopg_pool",
    "pytest",
    "hypothesis",
}


def test_every_public_name_is_imported_from_its_module_on_first_use() -> None:
    lazy = dict(esgen.runtime._HOME)
    assert sorted(lazy) == sorted(set(RUNTIME_EXPORTS) - set(DRIVER_EXPORTS))
    for name, home in lazy.items():
        module = sys.modules[f"esgen.runtime.{home}"]
        assert getattr(esgen.runtime, name) is getattr(module, name)
    code = (
        "import sys, esgen.runtime\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('pydantic', 'esgen.runtime.')))\n"
        "assert not loaded, loaded\n"
        "from esgen.runtime import Event\n"
        "assert 'esgen.runtime._sqlite' not in sys.modules, 'an event loaded the SQLite store'\n"
        "assert 'esgen.runtime._inspect' not in sys.modules, 'an event loaded the inspector'\n"
        "assert 'Repository' in dir(esgen.runtime)\n"
    )
    subprocess.run([sys.executable, "-I", "-c", code], check=True)


def test_importing_the_runtime_loads_pydantic_and_the_standard_library_only() -> None:
    # Every name but the PostgreSQL stores (their own test below), not only the package.
    code = (
        "import json, sys\nimport esgen.runtime as r\n"
        f"[getattr(r, name) for name in r.__all__ if name not in {DRIVER_EXPORTS}]\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-I", "-c", code], check=True, capture_output=True, text=True
    ).stdout
    modules = json.loads(output)
    top_level = {name.split(".")[0] for name in modules}
    assert top_level & FORBIDDEN == set()
    third_party = {
        name
        for name in top_level
        if name not in sys.stdlib_module_names and not name.startswith("_")
    }
    assert third_party <= ALLOWED_THIRD_PARTY, third_party - ALLOWED_THIRD_PARTY
    esgen_modules = {name for name in modules if name.startswith("esgen.")}
    assert all(
        name in {"esgen._errors", "esgen._version", "esgen.runtime"}
        or name.startswith("esgen.runtime.")
        for name in esgen_modules
    ), esgen_modules
    assert "esgen.runtime.testing" not in modules


# Runs with psycopg hidden, as in an install without the `postgres` extra.
WITHOUT_PSYCOPG = """
import sys
for name in ("psycopg", "psycopg_pool"):
    sys.modules[name] = None  # imports fail and find_spec finds nothing, as if not installed
import esgen.runtime
for name in ("PostgresEventStore", "AsyncPostgresEventStore"):
    assert name not in esgen.runtime.__all__
namespace = {}
exec("from esgen.runtime import *", namespace)
assert "SQLiteEventStore" in namespace and "AsyncSQLiteEventStore" in namespace
assert "PostgresEventStore" not in namespace and "AsyncPostgresEventStore" not in namespace
for name in ("PostgresEventStore", "AsyncPostgresEventStore"):
    try:
        getattr(esgen.runtime, name)
    except ImportError as exc:
        print(exc)
"""


def test_without_psycopg_the_runtime_works_and_says_how_to_get_postgres() -> None:
    output = subprocess.run(
        [sys.executable, "-I", "-c", WITHOUT_PSYCOPG], check=True, capture_output=True, text=True
    ).stdout
    assert output.count("pip install 'esgen[postgres]'") == 2, output
    assert "AsyncPostgresEventStore needs" in output


def test_the_postgres_store_is_imported_on_first_use() -> None:
    code = (
        "import sys, esgen.runtime\n"
        "assert 'psycopg' not in sys.modules and 'esgen.runtime._postgres' not in sys.modules\n"
        "from esgen.runtime import PostgresEventStore\n"
        "assert PostgresEventStore.__module__ == 'esgen.runtime._postgres'\n"
        "assert 'PostgresEventStore' in dir(esgen.runtime)\n"
        "from esgen.runtime import AsyncPostgresEventStore\n"
        "assert AsyncPostgresEventStore.__module__ == 'esgen.runtime._postgres_async'\n"
    )
    subprocess.run([sys.executable, "-I", "-c", code], check=True)
