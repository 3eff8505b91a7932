"""Projection and saga progress on PostgreSQL, in the store's schema and transactions.

The same port as on SQLite (`ProgressStorage`), on the connection of the PostgreSQL
store's `transaction()`: checkpoints commit with read-model rows and saga state. Only
the `_postgres*` modules, this one and `_readmodel_postgres` import psycopg, and only when
a PostgreSQL store is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from esgen.runtime._errors import BackendError, ProjectionNeedsRebuild, ReadModelNotFound
from esgen.runtime._postgres import PostgresEventStore
from esgen.runtime._progress_store import (
    ProgressStorage,
    ProgressUnit,
    ReadModelAccess,
    SagaRecord,
    SwitchBlocked,
    created_names,
    physical_table,
)
from esgen.runtime._readmodel import TableBackend, TableSpec
from esgen.runtime._readmodel_postgres import (
    PostgresTable,
    column_definition,
    create_indexes,
    ensure_indexes,
)

__all__ = ["PostgresProgressStorage", "PostgresReadModels"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {schema}.esgen_projections (
        name text NOT NULL,
        generation integer NOT NULL,
        position bigint NOT NULL DEFAULT 0,
        active boolean NOT NULL DEFAULT false,
        layout text,
        PRIMARY KEY (name, generation)
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.esgen_sagas (
        saga text NOT NULL,
        correlation text NOT NULL,
        status text NOT NULL,
        state text,
        steps text NOT NULL,
        metadata text NOT NULL,
        started_at text NOT NULL,
        deadline text,
        updated_at text NOT NULL,
        PRIMARY KEY (saga, correlation)
    )""",
    "CREATE INDEX IF NOT EXISTS esgen_sagas_due ON {schema}.esgen_sagas (saga, status, deadline)",
    """CREATE TABLE IF NOT EXISTS {schema}.esgen_saga_events (
        saga text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (saga, event_id)
    )""",
    # The last error of each runner (see the SQLite store's table of the same name).
    """CREATE TABLE IF NOT EXISTS {schema}.esgen_problems (
        name text NOT NULL PRIMARY KEY,
        problem text NOT NULL
    )""",
    # The code each unfinished rebuild started with (see the SQLite store's table).
    """CREATE TABLE IF NOT EXISTS {schema}.esgen_rebuilds (
        name text NOT NULL PRIMARY KEY,
        generation integer NOT NULL,
        code text NOT NULL
    )""",
    # The messages each consumer handled (see the SQLite store's table of the same name).
    """CREATE TABLE IF NOT EXISTS {schema}.esgen_inbox (
        consumer text NOT NULL,
        message_id text NOT NULL,
        handled_at text NOT NULL,
        PRIMARY KEY (consumer, message_id)
    )""",
)

# Serialises the creation of these tables by several processes starting at once.
_SETUP_LOCK = 0x65736765_70726F67  # "esgeprog"


class PostgresProgressStorage(ProgressStorage):
    """Progress in the store's schema.

    `switch_lock_timeout` (seconds) is how long a rebuild's switch-over waits for readers
    of the old generation before giving up and trying again later (see `activate`): the
    longest a reader arriving during the switch can be held up by it.
    """

    switch_lock_timeout: float = 0.2

    def __init__(self, store: PostgresEventStore) -> None:
        self._store = store
        self._schema = sql.Identifier(store.schema)
        # Looked for first, in a read-only transaction: `CREATE INDEX IF NOT EXISTS` locks
        # its table even when the index is there, so it would wait for a runner's page.
        names = created_names(_SCHEMA)
        with self.look() as unit:
            assert isinstance(unit, _PostgresUnit)
            found = unit.execute(
                sql.SQL(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)"
                ),
                (store.schema, names),
            ).fetchone()[0]
        if found == len(names):
            return
        with self.unit() as unit:
            assert isinstance(unit, _PostgresUnit)
            unit.execute(sql.SQL("SELECT pg_advisory_xact_lock(%s)"), (_SETUP_LOCK,))
            for statement in _SCHEMA:
                unit.execute(sql.SQL(statement).format(schema=self._schema))

    @contextmanager
    def unit(self) -> Iterator[ProgressUnit]:
        try:
            with self._store.transaction() as conn:
                yield _PostgresUnit(conn, self._store.schema, self.switch_lock_timeout)
        except psycopg.Error as exc:
            raise BackendError(f"projection or saga progress could not be stored: {exc}") from exc

    @contextmanager
    def look(self) -> Iterator[ProgressUnit]:
        try:
            with self._store.read_transaction() as conn:
                yield _PostgresUnit(
                    conn, self._store.schema, self.switch_lock_timeout, locking=False
                )
        except psycopg.Error as exc:
            raise BackendError(f"projection or saga progress could not be read: {exc}") from exc


class PostgresReadModels(ReadModelAccess):
    """Read models in a PostgreSQL store, each read in one read-only transaction (or in
    the thread's open transaction).

    A rebuild's switch-over replaces the view and drops the old generation's table in
    one commit. A reader first locks the view (ACCESS SHARE, what any SELECT on it takes),
    which also locks the table behind it: from then on no switch can happen until the
    read ends, so the generation it then looks up is the one the view shows, and its
    table stays. A switch already under way makes the lock wait for its commit, then
    PostgreSQL resolves the view's name again, to the new generation.
    """

    def __init__(self, store: PostgresEventStore) -> None:
        self._store = store

    @contextmanager
    def read(self, spec: TableSpec) -> Iterator[TableBackend]:
        store = self._store
        joined = store._in_transaction()
        used: psycopg.Connection[Any] | None = None
        try:
            with store.read_transaction() as conn:
                used = conn
                generation = self._active(conn, spec, joined)
                table = sql.Identifier(store.schema, physical_table(spec, generation))
                yield PostgresTable(conn, spec, table)
        except psycopg.Error as exc:
            raise store._error(f"reading read model {spec.name!r}", exc, conn=used) from exc

    def _active(self, conn: psycopg.Connection[Any], spec: TableSpec, joined: bool) -> int:
        schema = self._store.schema
        view = sql.Identifier(schema, spec.name)
        progress = sql.Identifier(schema, "esgen_projections")
        lock = sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(view)
        if joined:
            # A failed statement would abort the caller's transaction: look first.
            found = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                (view.as_string(conn), progress.as_string(conn)),
            ).fetchone()
            if not (found and found[0]):
                raise ReadModelNotFound(spec.name)
            conn.execute(lock)
        try:
            if not joined:
                conn.execute(lock)
            row = conn.execute(
                sql.SQL("SELECT generation, layout FROM {} WHERE name = %s AND active").format(
                    progress
                ),
                (spec.name,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            raise ReadModelNotFound(spec.name) from None
        if row is None:
            raise ReadModelNotFound(spec.name)
        generation, layout = row
        if layout != spec.layout:
            raise ProjectionNeedsRebuild([spec.name])
        return int(generation)


class _PostgresUnit(ProgressUnit):
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        switch_lock_timeout: float,
        *,
        locking: bool = True,
    ) -> None:
        self._conn = conn
        self._locking = locking
        self._switch_lock_timeout = switch_lock_timeout
        self._schema = sql.Identifier(schema)
        self._schema_name = schema

    def execute(self, query: sql.Composed | sql.SQL, params: Sequence[object] = ()) -> Any:
        return self._conn.execute(query, params)

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(self._schema, sql.Identifier(name))

    def generations(self, name: str) -> dict[int, tuple[int, bool]]:
        # FOR UPDATE: a second runner of the same projection waits here, then reads the
        # checkpoint the first one committed; no event is applied twice.
        # (Not when only looking: a read-only transaction may not lock rows, and a health
        # check must not wait for a runner's page.)
        query = "SELECT generation, position, active FROM {} WHERE name = %s"
        rows = self.execute(
            sql.SQL(query + (" FOR UPDATE" if self._locking else "")).format(
                self._table("esgen_projections")
            ),
            (name,),
        ).fetchall()
        return {g: (p, bool(a)) for g, p, a in rows}

    def set_checkpoint(self, name: str, generation: int, position: int, active: bool) -> None:
        self.execute(
            sql.SQL(
                "INSERT INTO {} (name, generation, position, active) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name, generation) "
                "DO UPDATE SET position = excluded.position, active = excluded.active"
            ).format(self._table("esgen_projections")),
            (name, generation, position, active),
        )

    def layout(self, name: str, generation: int) -> str | None:
        row = self.execute(
            sql.SQL("SELECT layout FROM {} WHERE name = %s AND generation = %s").format(
                self._table("esgen_projections")
            ),
            (name, generation),
        ).fetchone()
        return None if row is None else row[0]

    def create_table(self, spec: TableSpec, generation: int) -> None:
        columns = sql.SQL(", ").join(column_definition(c) for c in spec.columns)
        physical = physical_table(spec, generation)
        table = self._table(physical)
        # Afresh: rows (or columns) left by an interrupted rebuild must not survive.
        self.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        self.execute(
            sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                table, columns, sql.Identifier(spec.key)
            )
        )
        create_indexes(self._conn, self._schema_name, spec, physical, spec.indexes)
        self.execute(
            sql.SQL("UPDATE {} SET layout = %s WHERE name = %s AND generation = %s").format(
                self._table("esgen_projections")
            ),
            (spec.layout, spec.name, generation),
        )

    def ensure_indexes(self, spec: TableSpec, generation: int) -> None:
        ensure_indexes(self._conn, self._schema_name, spec, physical_table(spec, generation))

    def activate(self, spec: TableSpec, generation: int) -> None:
        view = self._table(spec.name)
        progress = self._table("esgen_projections")
        others = [g for g in self.generations(spec.name) if g != generation]
        # The DDL waits for an ACCESS EXCLUSIVE lock on the view and the old table, and
        # every reader arriving meanwhile queues behind that wait: give up soon instead
        # (readers then wait at most this long) and let the runner try again later.
        row = self.execute(
            sql.SQL("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)"),
            (f"{max(1, round(self._switch_lock_timeout * 1000))}ms",),
        ).fetchone()
        assert row is not None
        try:
            self.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
            self.execute(
                sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
                    view, self._table(physical_table(spec, generation))
                )
            )
            for other in others:
                table = self._table(physical_table(spec, other))
                self.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        except psycopg.errors.LockNotAvailable as exc:
            raise SwitchBlocked(f"read model {spec.name!r} is being read") from exc
        self.execute(sql.SQL("SELECT set_config('lock_timeout', %s, true)"), (row[0],))
        for other in others:
            self.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s AND generation = %s").format(progress),
                (spec.name, other),
            )
        self.execute(
            sql.SQL("UPDATE {} SET active = (generation = %s) WHERE name = %s").format(progress),
            (generation, spec.name),
        )

    def table(self, spec: TableSpec, generation: int) -> TableBackend:
        return PostgresTable(self._conn, spec, self._table(physical_table(spec, generation)))

    def saga(self, saga: str, correlation: str) -> SagaRecord | None:
        row = self.execute(
            sql.SQL(
                "SELECT saga, correlation, status, state, steps, metadata, started_at, deadline "
                "FROM {} WHERE saga = %s AND correlation = %s"
            ).format(self._table("esgen_sagas")),
            (saga, correlation),
        ).fetchone()
        return None if row is None else SagaRecord(*row)

    def save_saga(self, record: SagaRecord, updated_at: datetime) -> None:
        self.execute(
            sql.SQL(
                "INSERT INTO {} (saga, correlation, status, state, steps, metadata, started_at, "
                "deadline, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (saga, correlation) DO UPDATE SET status = excluded.status, "
                "state = excluded.state, steps = excluded.steps, metadata = excluded.metadata, "
                "deadline = excluded.deadline, updated_at = excluded.updated_at"
            ).format(self._table("esgen_sagas")),
            (record.saga, record.correlation, record.status, record.state, record.steps,
             record.metadata, record.started_at, record.deadline, updated_at.isoformat()),
        )  # fmt: skip

    def due_sagas(self, saga: str, now: datetime) -> list[SagaRecord]:
        rows = self.execute(
            sql.SQL(
                "SELECT saga, correlation, status, state, steps, metadata, started_at, deadline "
                "FROM {} WHERE saga = %s AND status = 'running' AND deadline <= %s "
                "ORDER BY deadline, correlation FOR UPDATE"
            ).format(self._table("esgen_sagas")),
            (saga, now.isoformat()),
        ).fetchall()
        return [SagaRecord(*row) for row in rows]

    def mark_handled(self, saga: str, event_id: str) -> bool:
        cursor = self.execute(
            sql.SQL(
                "INSERT INTO {} (saga, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            ).format(self._table("esgen_saga_events")),
            (saga, event_id),
        )
        return bool(cursor.rowcount == 1)

    def saga_counts(self, saga: str) -> dict[str, int]:
        rows = self.execute(
            sql.SQL("SELECT status, count(*) FROM {} WHERE saga = %s GROUP BY status").format(
                self._table("esgen_sagas")
            ),
            (saga,),
        ).fetchall()
        return {str(status): int(count) for status, count in rows}

    def sagas_with_status(
        self, saga: str, status: str, limit: int | None = None
    ) -> list[SagaRecord]:
        rows = self.execute(
            sql.SQL(
                "SELECT saga, correlation, status, state, steps, metadata, started_at, deadline "
                "FROM {} WHERE saga = %s AND status = %s "
                'ORDER BY updated_at DESC, correlation COLLATE "C" LIMIT %s'
            ).format(self._table("esgen_sagas")),
            (saga, status, limit),
        ).fetchall()
        return [SagaRecord(*row) for row in rows]

    def problem(self, name: str) -> str | None:
        row = self.execute(
            sql.SQL("SELECT problem FROM {} WHERE name = %s").format(self._table("esgen_problems")),
            (name,),
        ).fetchone()
        return None if row is None else str(row[0])

    def set_problem(self, name: str, problem: str | None) -> None:
        table = self._table("esgen_problems")
        if problem is None:
            self.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(table), (name,))
            return
        self.execute(
            sql.SQL(
                "INSERT INTO {} (name, problem) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET problem = excluded.problem"
            ).format(table),
            (name, problem),
        )

    def inbox_add(self, consumer: str, message_id: str, handled_at: datetime) -> bool:
        # A second process handling the same redelivered message waits here for the first
        # one's commit, then inserts nothing: one effect, whichever commits first.
        cursor = self.execute(
            sql.SQL(
                "INSERT INTO {} (consumer, message_id, handled_at) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING"
            ).format(self._table("esgen_inbox")),
            (consumer, message_id, handled_at.isoformat()),
        )
        return bool(cursor.rowcount == 1)

    def inbox_has(self, consumer: str, message_id: str) -> bool:
        row = self.execute(
            sql.SQL("SELECT 1 FROM {} WHERE consumer = %s AND message_id = %s").format(
                self._table("esgen_inbox")
            ),
            (consumer, message_id),
        ).fetchone()
        return row is not None

    def inbox_stats(self, consumer: str) -> tuple[int, str | None]:
        row = self.execute(
            sql.SQL("SELECT count(*), max(handled_at) FROM {} WHERE consumer = %s").format(
                self._table("esgen_inbox")
            ),
            (consumer,),
        ).fetchone()
        return int(row[0]), None if row[1] is None else str(row[1])

    def rebuild_code(self, name: str, generation: int) -> str | None:
        row = self.execute(
            sql.SQL("SELECT code FROM {} WHERE name = %s AND generation = %s").format(
                self._table("esgen_rebuilds")
            ),
            (name, generation),
        ).fetchone()
        return None if row is None else str(row[0])

    def set_rebuild_code(self, name: str, generation: int, code: str | None) -> None:
        table = self._table("esgen_rebuilds")
        if code is None:
            self.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(table), (name,))
            return
        self.execute(
            sql.SQL(
                "INSERT INTO {} (name, generation, code) VALUES (%s, %s, %s) ON CONFLICT "
                "(name) DO UPDATE SET generation = excluded.generation, code = excluded.code"
            ).format(table),
            (name, generation, code),
        )
