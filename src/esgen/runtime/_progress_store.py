"""Where projections and sagas keep their progress, in the event store's own database.

The port (`ProgressStorage`, one `ProgressUnit` per transaction) is what the projection
and saga runners use; each backend implements it on the connection of its `transaction()`
hook, so a checkpoint always commits with the read-model rows or saga state it covers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from esgen.runtime._errors import BackendError, ProjectionNeedsRebuild, ReadModelNotFound
from esgen.runtime._finite import dump_json
from esgen.runtime._memory import MemoryEventStore
from esgen.runtime._messages import Command
from esgen.runtime._readmodel import TableBackend, TableSpec
from esgen.runtime._readmodel_sqlite import (
    SQLiteTable,
    create_indexes,
    ensure_indexes,
    quote,
    sql_type,
)
from esgen.runtime._sqlite import SQLiteEventStore

__all__ = [
    "ProgressStorage",
    "ProgressUnit",
    "ReadModelAccess",
    "SQLiteProgressStorage",
    "SQLiteReadModels",
    "SagaRecord",
    "SwitchBlocked",
    "created_names",
    "is_looking",
    "looking",
    "physical_table",
    "progress_storage",
    "read_models",
    "saga_steps",
]


class SwitchBlocked(Exception):
    """`ProgressUnit.activate` gave up waiting for readers of the projection's current
    generation; its transaction must be rolled back and the switch tried again later.

    Waiting on would queue every new reader behind the switch for as long as the oldest
    reader lasts; giving up after a short wait lets them through.
    """


@dataclass(frozen=True, slots=True)
class SagaRecord:
    """A saga instance as stored: its state and the commands it sent, as JSON."""

    saga: str
    correlation: str
    status: str
    state: str | None
    steps: str  # JSON list of [command_type, command JSON]
    metadata: str  # JSON: the correlation id of the conversation that started it
    started_at: str
    deadline: str | None


class ProgressUnit(ABC):
    """Reads and writes of one transaction."""

    # -- projections ------------------------------------------------------------------

    @abstractmethod
    def generations(self, name: str) -> dict[int, tuple[int, bool]]:
        """generation -> (checkpoint position, active) for a projection."""

    @abstractmethod
    def set_checkpoint(self, name: str, generation: int, position: int, active: bool) -> None: ...

    @abstractmethod
    def layout(self, name: str, generation: int) -> str | None:
        """The layout fingerprint the generation's table was created with."""

    @abstractmethod
    def create_table(self, spec: TableSpec, generation: int) -> None:
        """Create the generation's table afresh (dropping any left over) and record its
        layout; the generation's checkpoint row must exist."""

    @abstractmethod
    def ensure_indexes(self, spec: TableSpec, generation: int) -> None:
        """Create the indexes `spec` declares that the generation's table lacks, and drop
        the ones it has (by their derived names) that `spec` no longer declares: indexes
        are not part of the layout, so changing them needs no rebuild."""

    @abstractmethod
    def activate(self, spec: TableSpec, generation: int) -> None:
        """Point the projection's view at `generation` and drop every other generation.

        May raise `SwitchBlocked` (leaving the transaction unusable) when readers hold
        the current generation for longer than the backend is willing to wait.
        """

    @abstractmethod
    def table(self, spec: TableSpec, generation: int) -> TableBackend: ...

    # -- sagas ------------------------------------------------------------------------

    @abstractmethod
    def saga(self, saga: str, correlation: str) -> SagaRecord | None: ...

    @abstractmethod
    def save_saga(self, record: SagaRecord, updated_at: datetime) -> None: ...

    @abstractmethod
    def due_sagas(self, saga: str, now: datetime) -> list[SagaRecord]:
        """Running instances whose deadline has passed."""

    @abstractmethod
    def mark_handled(self, saga: str, event_id: str) -> bool:
        """Record that the saga handled this event; False if it already had."""

    @abstractmethod
    def saga_counts(self, saga: str) -> dict[str, int]:
        """Stored status -> how many instances of the saga have it (statuses with none
        left out)."""

    @abstractmethod
    def sagas_with_status(
        self, saga: str, status: str, limit: int | None = None
    ) -> list[SagaRecord]:
        """Instances with that stored status, the most recently updated first (ties by
        correlation); at most `limit` of them."""

    # -- health -----------------------------------------------------------------------

    @abstractmethod
    def problem(self, name: str) -> str | None:
        """The last error recorded for a runner (a projection's name, or `saga:<Name>`),
        as the JSON `set_problem` stored; None when it has none."""

    @abstractmethod
    def set_problem(self, name: str, problem: str | None) -> None:
        """Record a runner's last error (JSON), or with None clear it."""

    # -- consumers' inbox --------------------------------------------------------------

    @abstractmethod
    def inbox_add(self, consumer: str, message_id: str, handled_at: datetime) -> bool:
        """Record that the consumer handled the message (its broker message id), in the
        transaction of the message's effects; False, changing nothing, if it already had:
        the message is a redelivery and must have no second effect."""

    @abstractmethod
    def inbox_has(self, consumer: str, message_id: str) -> bool: ...

    @abstractmethod
    def inbox_stats(self, consumer: str) -> tuple[int, str | None]:
        """(messages the consumer handled, the ISO time of the last one, None if none)."""

    # -- rebuilds ---------------------------------------------------------------------

    @abstractmethod
    def rebuild_code(self, name: str, generation: int) -> str | None:
        """The fingerprint of the code that started the projection's rebuild into
        `generation`; None when none was recorded for that generation."""

    @abstractmethod
    def set_rebuild_code(self, name: str, generation: int, code: str | None) -> None:
        """Record the code a rebuild into `generation` started with (a projection has at
        most one rebuild under way), or with None forget the projection's."""


class ProgressStorage(ABC):
    @abstractmethod
    def unit(self) -> AbstractContextManager[ProgressUnit]:
        """One transaction of the event store's database."""

    @abstractmethod
    def look(self) -> AbstractContextManager[ProgressUnit]:
        """One read transaction that takes no write lock and locks no checkpoint, so a
        health check answers at once while a runner is in the middle of a page (and on a
        store opened read-only). Only for reads: what the unit writes is not kept."""


_LOOKING: ContextVar[bool] = ContextVar("esgen_progress_looking", default=False)


@contextmanager
def looking() -> Iterator[None]:
    """Runners built inside only look at the store (status, instances, retry): they set up
    nothing in it, so a look neither waits for a runner in the middle of a page nor
    decides anything (where a saga that never ran there will start, for one). For the
    command line's status commands."""
    token = _LOOKING.set(True)
    try:
        yield
    finally:
        _LOOKING.reset(token)


def is_looking() -> bool:
    return _LOOKING.get()


def created_names(schema: Sequence[str]) -> list[str]:
    """The tables and indexes a list of `CREATE ... IF NOT EXISTS` statements creates:
    what a store must hold for the set-up to be skipped."""
    return [m.group(1) for m in map(_CREATED.search, schema) if m is not None]


_CREATED = re.compile(r"IF NOT EXISTS (?:\{schema\}\.)?(\w+)")


class ReadModelAccess(ABC):
    """Reading read models outside the runners: what `ReadModel` queries go through.

    Creates nothing and takes no write lock (a store opened read-only can serve queries).
    """

    @abstractmethod
    def read(self, spec: TableSpec) -> AbstractContextManager[TableBackend]:
        """The table of the read model's active generation, never one a rebuild is still
        filling, inside one read transaction; on a thread already inside a transaction of
        the store (a handler, a unit of work), inside that one, seeing its changes.

        `ReadModelNotFound` if no runner created the read model in this store;
        `ProjectionNeedsRebuild` if its active table was built with another layout than
        `spec`'s (its fields changed since). The backend it gives may only be read.
        """


def read_models(store: object) -> ReadModelAccess:
    """Read access to the read models kept in an event store."""
    if isinstance(store, SQLiteEventStore):
        return SQLiteReadModels(store)
    if isinstance(store, MemoryEventStore):
        from esgen.runtime._progress_memory import MemoryReadModels

        return MemoryReadModels(store)
    postgres = sys.modules.get("esgen.runtime._postgres")
    if postgres is not None and isinstance(store, postgres.PostgresEventStore):
        from esgen.runtime._progress_postgres import PostgresReadModels

        return PostgresReadModels(store)
    raise TypeError(f"{type(store).__name__} keeps no read models")


def progress_storage(store: object) -> ProgressStorage:
    """The progress storage of an event store that supports transactions."""
    if isinstance(store, SQLiteEventStore):
        return SQLiteProgressStorage(store)
    if isinstance(store, MemoryEventStore):
        from esgen.runtime._progress_memory import MemoryProgressStorage

        return MemoryProgressStorage(store)
    # Only a PostgreSQL store's module imports psycopg; look for it without importing it.
    postgres = sys.modules.get("esgen.runtime._postgres")
    if postgres is not None and isinstance(store, postgres.PostgresEventStore):
        from esgen.runtime._progress_postgres import PostgresProgressStorage

        return PostgresProgressStorage(store)
    raise TypeError(
        f"{type(store).__name__} cannot keep read models and checkpoints in the same "
        "transaction as their effects; use MemoryEventStore, SQLiteEventStore or "
        "PostgresEventStore"
    )


# -- SQLite -------------------------------------------------------------------------------

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS esgen_projections (
        name TEXT NOT NULL,
        generation INTEGER NOT NULL,
        position INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL DEFAULT 0,
        layout TEXT,
        PRIMARY KEY (name, generation)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS esgen_sagas (
        saga TEXT NOT NULL,
        correlation TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT,
        steps TEXT NOT NULL,
        metadata TEXT NOT NULL,
        started_at TEXT NOT NULL,
        deadline TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (saga, correlation)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS esgen_sagas_due ON esgen_sagas (saga, status, deadline)",
    """CREATE TABLE IF NOT EXISTS esgen_saga_events (
        saga TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (saga, event_id)
    ) WITHOUT ROWID""",
    # The last error of each runner, for `esgen ... status` and health checks; written in
    # a transaction of its own after the failed one rolled back.
    """CREATE TABLE IF NOT EXISTS esgen_problems (
        name TEXT NOT NULL PRIMARY KEY,
        problem TEXT NOT NULL
    ) WITHOUT ROWID""",
    # The code each unfinished rebuild started with: it is continued only by the same.
    """CREATE TABLE IF NOT EXISTS esgen_rebuilds (
        name TEXT NOT NULL PRIMARY KEY,
        generation INTEGER NOT NULL,
        code TEXT NOT NULL
    ) WITHOUT ROWID""",
    # The broker messages each consumer handled (see docs/consumers.md): a row commits
    # with the message's effects, so a redelivered message finds it and changes nothing.
    """CREATE TABLE IF NOT EXISTS esgen_inbox (
        consumer TEXT NOT NULL,
        message_id TEXT NOT NULL,
        handled_at TEXT NOT NULL,
        PRIMARY KEY (consumer, message_id)
    ) WITHOUT ROWID""",
)

_quote = quote


def physical_table(spec: TableSpec, generation: int) -> str:
    """The table of one generation of a read model; readers query the view `spec.name`."""
    return f"{spec.name}__g{generation}"


class SQLiteProgressStorage(ProgressStorage):
    def __init__(self, store: SQLiteEventStore) -> None:
        self._store = store
        # Looked for first, without the write lock: once a store has the tables, opening
        # progress never waits for a runner in the middle of a page.
        names = created_names(_SCHEMA)
        marks = ", ".join("?" * len(names))
        with store.read_transaction() as conn:
            found = conn.execute(
                f"SELECT count(*) FROM sqlite_master WHERE name IN ({marks})", names
            ).fetchone()[0]
        if found == len(names):
            return
        with store.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    @contextmanager
    def unit(self) -> Iterator[ProgressUnit]:
        try:
            with self._store.transaction() as conn:
                yield _SQLiteUnit(conn)
        except sqlite3.Error as exc:
            raise BackendError(f"projection or saga progress could not be stored: {exc}") from exc

    @contextmanager
    def look(self) -> Iterator[ProgressUnit]:
        try:
            with self._store.read_transaction() as conn:
                yield _SQLiteUnit(conn)
        except sqlite3.Error as exc:
            raise BackendError(f"projection or saga progress could not be read: {exc}") from exc


class _SQLiteUnit(ProgressUnit):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def generations(self, name: str) -> dict[int, tuple[int, bool]]:
        rows = self._conn.execute(
            "SELECT generation, position, active FROM esgen_projections WHERE name = ?", (name,)
        )
        return {g: (p, bool(a)) for g, p, a in rows}

    def set_checkpoint(self, name: str, generation: int, position: int, active: bool) -> None:
        self._conn.execute(
            "INSERT INTO esgen_projections (name, generation, position, active) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name, generation) "
            "DO UPDATE SET position = excluded.position, active = excluded.active",
            (name, generation, position, int(active)),
        )

    def layout(self, name: str, generation: int) -> str | None:
        row = self._conn.execute(
            "SELECT layout FROM esgen_projections WHERE name = ? AND generation = ?",
            (name, generation),
        ).fetchone()
        return None if row is None else row[0]

    def create_table(self, spec: TableSpec, generation: int) -> None:
        columns = ", ".join(
            f"{_quote(c.name)} {sql_type(c)}{'' if c.nullable else ' NOT NULL'}"
            for c in spec.columns
        )
        physical = physical_table(spec, generation)
        table = _quote(physical)
        # Afresh: rows (or columns) left by an interrupted rebuild must not survive.
        self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        self._conn.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({_quote(spec.key)}))")
        create_indexes(self._conn, spec, physical, spec.indexes)
        self._conn.execute(
            "UPDATE esgen_projections SET layout = ? WHERE name = ? AND generation = ?",
            (spec.layout, spec.name, generation),
        )

    def ensure_indexes(self, spec: TableSpec, generation: int) -> None:
        ensure_indexes(self._conn, spec, physical_table(spec, generation))

    def activate(self, spec: TableSpec, generation: int) -> None:
        view = _quote(spec.name)
        self._conn.execute(f"DROP VIEW IF EXISTS {view}")
        self._conn.execute(
            f"CREATE VIEW {view} AS SELECT * FROM {_quote(physical_table(spec, generation))}"
        )
        for other in self.generations(spec.name):
            if other != generation:
                self._conn.execute(f"DROP TABLE IF EXISTS {_quote(physical_table(spec, other))}")
                self._conn.execute(
                    "DELETE FROM esgen_projections WHERE name = ? AND generation = ?",
                    (spec.name, other),
                )
        self._conn.execute(
            "UPDATE esgen_projections SET active = (generation = ?) WHERE name = ?",
            (generation, spec.name),
        )

    def table(self, spec: TableSpec, generation: int) -> TableBackend:
        return SQLiteTable(self._conn, spec, physical_table(spec, generation))

    def saga(self, saga: str, correlation: str) -> SagaRecord | None:
        row = self._conn.execute(
            "SELECT saga, correlation, status, state, steps, metadata, started_at, deadline "
            "FROM esgen_sagas WHERE saga = ? AND correlation = ?",
            (saga, correlation),
        ).fetchone()
        return None if row is None else SagaRecord(*row)

    def save_saga(self, record: SagaRecord, updated_at: datetime) -> None:
        self._conn.execute(
            "INSERT INTO esgen_sagas (saga, correlation, status, state, steps, metadata, "
            "started_at, deadline, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (saga, correlation) DO UPDATE SET status = excluded.status, "
            "state = excluded.state, steps = excluded.steps, metadata = excluded.metadata, "
            "deadline = excluded.deadline, "
            "updated_at = excluded.updated_at",
            (record.saga, record.correlation, record.status, record.state, record.steps,
             record.metadata, record.started_at, record.deadline, updated_at.isoformat()),
        )  # fmt: skip

    def due_sagas(self, saga: str, now: datetime) -> list[SagaRecord]:
        rows = self._conn.execute(
            "SELECT saga, correlation, status, state, steps, metadata, started_at, deadline "
            "FROM esgen_sagas WHERE saga = ? AND status = 'running' AND deadline <= ? "
            "ORDER BY deadline, correlation",
            (saga, now.isoformat()),
        )
        return [SagaRecord(*row) for row in rows]

    def mark_handled(self, saga: str, event_id: str) -> bool:
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO esgen_saga_events (saga, event_id) VALUES (?, ?)",
            (saga, event_id),
        )
        return cursor.rowcount == 1

    def saga_counts(self, saga: str) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT status, count(*) FROM esgen_sagas WHERE saga = ? GROUP BY status", (saga,)
        )
        return {status: count for status, count in rows}

    def sagas_with_status(
        self, saga: str, status: str, limit: int | None = None
    ) -> list[SagaRecord]:
        rows = self._conn.execute(
            "SELECT saga, correlation, status, state, steps, metadata, started_at, deadline "
            "FROM esgen_sagas WHERE saga = ? AND status = ? "
            "ORDER BY updated_at DESC, correlation LIMIT ?",
            (saga, status, -1 if limit is None else limit),
        )
        return [SagaRecord(*row) for row in rows]

    def problem(self, name: str) -> str | None:
        row = self._conn.execute(
            "SELECT problem FROM esgen_problems WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_problem(self, name: str, problem: str | None) -> None:
        if problem is None:
            self._conn.execute("DELETE FROM esgen_problems WHERE name = ?", (name,))
            return
        self._conn.execute(
            "INSERT INTO esgen_problems (name, problem) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET problem = excluded.problem",
            (name, problem),
        )

    def inbox_add(self, consumer: str, message_id: str, handled_at: datetime) -> bool:
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO esgen_inbox (consumer, message_id, handled_at) VALUES (?, ?, ?)",
            (consumer, message_id, handled_at.isoformat()),
        )
        return cursor.rowcount == 1

    def inbox_has(self, consumer: str, message_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM esgen_inbox WHERE consumer = ? AND message_id = ?",
            (consumer, message_id),
        ).fetchone()
        return row is not None

    def inbox_stats(self, consumer: str) -> tuple[int, str | None]:
        count, last = self._conn.execute(
            "SELECT count(*), max(handled_at) FROM esgen_inbox WHERE consumer = ?", (consumer,)
        ).fetchone()
        return int(count), None if last is None else str(last)

    def rebuild_code(self, name: str, generation: int) -> str | None:
        row = self._conn.execute(
            "SELECT code FROM esgen_rebuilds WHERE name = ? AND generation = ?",
            (name, generation),
        ).fetchone()
        return None if row is None else str(row[0])

    def set_rebuild_code(self, name: str, generation: int, code: str | None) -> None:
        if code is None:
            self._conn.execute("DELETE FROM esgen_rebuilds WHERE name = ?", (name,))
            return
        self._conn.execute(
            "INSERT INTO esgen_rebuilds (name, generation, code) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, "
            "code = excluded.code",
            (name, generation, code),
        )


_ACTIVE = "SELECT generation, layout FROM esgen_projections WHERE name = ? AND active"


class SQLiteReadModels(ReadModelAccess):
    """Read models in a SQLite store, read in one read transaction of the thread's
    connection (or inside the thread's open transaction)."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self._store = store

    @contextmanager
    def read(self, spec: TableSpec) -> Iterator[TableBackend]:
        try:
            with self._store.read_transaction() as conn:
                generation = self._active(conn, spec)
                # The generation's own table, not the view: the lookup above and the reads
                # below share the transaction's snapshot, so it is the active one throughout.
                yield SQLiteTable(conn, spec, physical_table(spec, generation))
        except sqlite3.Error as exc:
            raise BackendError(f"reading read model {spec.name!r} failed: {exc}") from exc

    @staticmethod
    def _active(conn: sqlite3.Connection, spec: TableSpec) -> int:
        try:
            row = conn.execute(_ACTIVE, (spec.name,)).fetchone()
        except sqlite3.OperationalError:
            known = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'esgen_projections'"
            ).fetchone()
            if known is None:  # no runner ever ran in this store
                raise ReadModelNotFound(spec.name) from None
            raise
        if row is None:
            raise ReadModelNotFound(spec.name)
        generation, layout = row
        if layout != spec.layout:
            raise ProjectionNeedsRebuild([spec.name])
        return int(generation)


def saga_steps(
    sent: Sequence[Command],
    compensated: Sequence[Command],
    text: Callable[[Command], str] = dump_json,
) -> str:
    """The JSON of a saga's steps: commands sent, and compensations sent, each as `text`
    writes it (its personal fields sealed: see SagaSteps)."""
    data = {
        "sent": [[type(c).command_type, text(c)] for c in sent],
        "compensated": [[type(c).command_type, text(c)] for c in compensated],
    }
    return json.dumps(data, separators=(",", ":"))
