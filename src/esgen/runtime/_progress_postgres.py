"""Projection and saga progress on PostgreSQL, in the store's schema and transactions.

The same port as on SQLite (`ProgressStorage`), on the connection of the PostgreSQL
store's `transaction()`: checkpoints commit with read-model rows and saga state. Only
this module and `_postgres` import psycopg, and only when a PostgreSQL store is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from esgen.runtime._errors import BackendError
from esgen.runtime._postgres import PostgresEventStore
from esgen.runtime._progress_store import (
    ProgressStorage,
    ProgressUnit,
    ReadModelAccess,
    SagaRecord,
    physical_table,
)
from esgen.runtime._readmodel import TableBackend, TableSpec

__all__ = ["PostgresProgressStorage", "PostgresReadModels"]

_SQL_TYPES = {"text": "text", "integer": "bigint", "real": "double precision",
              "boolean": "boolean", "json": "jsonb"}  # fmt: skip

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
)

# Serialises the creation of these tables by several processes starting at once.
_SETUP_LOCK = 0x65736765_70726F67  # "esgeprog"


class PostgresProgressStorage(ProgressStorage):
    def __init__(self, store: PostgresEventStore) -> None:
        self._store = store
        self._schema = sql.Identifier(store.schema)
        with self.unit() as unit:
            assert isinstance(unit, _PostgresUnit)
            unit.execute(sql.SQL("SELECT pg_advisory_xact_lock(%s)"), (_SETUP_LOCK,))
            for statement in _SCHEMA:
                unit.execute(sql.SQL(statement).format(schema=self._schema))

    @contextmanager
    def unit(self) -> Iterator[ProgressUnit]:
        try:
            with self._store.transaction() as conn:
                yield _PostgresUnit(conn, self._schema)
        except psycopg.Error as exc:
            raise BackendError(f"projection or saga progress could not be stored: {exc}") from exc


class PostgresReadModels(ReadModelAccess):
    def __init__(self, store: PostgresEventStore) -> None:
        self._store = store

    def read(self, spec: TableSpec) -> AbstractContextManager[TableBackend]:
        raise NotImplementedError("PostgresReadModels.read (issue 15)")


class _PostgresUnit(ProgressUnit):
    def __init__(self, conn: psycopg.Connection[Any], schema: sql.Identifier) -> None:
        self._conn = conn
        self._schema = schema

    def execute(self, query: sql.Composed | sql.SQL, params: Sequence[object] = ()) -> Any:
        return self._conn.execute(query, params)

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(self._schema, sql.Identifier(name))

    def generations(self, name: str) -> dict[int, tuple[int, bool]]:
        # FOR UPDATE: a second runner of the same projection waits here, then reads the
        # checkpoint the first one committed; no event is applied twice.
        rows = self.execute(
            sql.SQL(
                "SELECT generation, position, active FROM {} WHERE name = %s FOR UPDATE"
            ).format(self._table("esgen_projections")),
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
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name),
                sql.SQL(_SQL_TYPES[c.type]),
                sql.SQL("" if c.nullable else " NOT NULL"),
            )
            for c in spec.columns
        )
        table = self._table(physical_table(spec, generation))
        # Afresh: rows (or columns) left by an interrupted rebuild must not survive.
        self.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        self.execute(
            sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                table, columns, sql.Identifier(spec.key)
            )
        )
        self.execute(
            sql.SQL("UPDATE {} SET layout = %s WHERE name = %s AND generation = %s").format(
                self._table("esgen_projections")
            ),
            (spec.layout, spec.name, generation),
        )

    def ensure_indexes(self, spec: TableSpec, generation: int) -> None:
        raise NotImplementedError("ensure_indexes (issue 15)")

    def activate(self, spec: TableSpec, generation: int) -> None:
        view = self._table(spec.name)
        self.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
        self.execute(
            sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
                view, self._table(physical_table(spec, generation))
            )
        )
        for other in self.generations(spec.name):
            if other != generation:
                self.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        self._table(physical_table(spec, other))
                    )
                )
                self.execute(
                    sql.SQL("DELETE FROM {} WHERE name = %s AND generation = %s").format(
                        self._table("esgen_projections")
                    ),
                    (spec.name, other),
                )
        self.execute(
            sql.SQL("UPDATE {} SET active = (generation = %s) WHERE name = %s").format(
                self._table("esgen_projections")
            ),
            (generation, spec.name),
        )

    def table(self, spec: TableSpec, generation: int) -> TableBackend:
        return _PostgresTable(self, spec, self._table(physical_table(spec, generation)))

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


class _PostgresTable(TableBackend):
    def __init__(self, unit: _PostgresUnit, spec: TableSpec, table: sql.Composed) -> None:
        self._unit = unit
        self._names = [c.name for c in spec.columns]
        self._json = [c.type == "json" for c in spec.columns]
        columns = sql.SQL(", ").join(sql.Identifier(n) for n in self._names)
        key = sql.Identifier(spec.key)
        self._select = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(columns, table, key)
        self._select_all = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(columns, table, key)
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(n)) for n in self._names
        )
        marks = sql.SQL(", ").join(
            sql.SQL("%s::jsonb" if is_json else "%s") for is_json in self._json
        )
        self._upsert = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}"
        ).format(table, columns, marks, key, updates)
        self._delete = sql.SQL("DELETE FROM {} WHERE {} = %s").format(table, key)

    def select(self, key: Any) -> Mapping[str, Any] | None:
        row = self._unit.execute(self._select, (key,)).fetchone()
        return None if row is None else dict(zip(self._names, row, strict=True))

    def select_all(self) -> Iterator[Mapping[str, Any]]:
        for row in self._unit.execute(self._select_all).fetchall():
            yield dict(zip(self._names, row, strict=True))

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._unit._conn.cursor() as cursor:
            cursor.executemany(self._upsert, rows)

    def delete(self, keys: Sequence[Any]) -> None:
        with self._unit._conn.cursor() as cursor:
            cursor.executemany(self._delete, [(k,) for k in keys])
