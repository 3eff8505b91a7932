"""Read-model tables on PostgreSQL: columns that order as Python does, queries, indexes.

Each kind has the type that compares as its Python type: text in the "C" collation
(code point order, whatever the database's default collation), bigint, double precision,
boolean, numeric (exact, keeping the scale written; no negative zero nor positive
exponent, which `_readmodel._to_column` removes before any backend sees a value, so every
backend reads back what numeric does), timestamptz (instants) and jsonb.
Every value is a bound parameter, cast to the column's type; every name an identifier.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from esgen.runtime._query import Condition, Order
from esgen.runtime._readmodel import Column, Index, TableBackend, TableSpec, is_index_name
from esgen.runtime._sortable import utc_timestamp

__all__ = ["PostgresTable", "column_definition", "create_indexes", "ensure_indexes"]

_SQL_TYPES = {"text": 'text COLLATE "C"', "integer": "bigint", "real": "double precision",
              "boolean": "boolean", "json": "jsonb", "decimal": "numeric",
              "timestamp": "timestamptz"}  # fmt: skip

# Text parameters are given their column's type, so PostgreSQL parses them as one.
_PLACEHOLDERS = {"json": "%s::jsonb", "decimal": "%s::numeric", "timestamp": "%s::timestamptz"}

# `IN` takes the values as one array parameter, however many (a list of placeholders
# stops at 65535 parameters, which libpq refuses before anything reaches the server).
_ARRAYS = {"text": "%s::text[]", "integer": "%s::bigint[]", "real": "%s::double precision[]",
           "boolean": "%s::boolean[]", "json": "%s::jsonb[]", "decimal": "%s::numeric[]",
           "timestamp": "%s::timestamptz[]"}  # fmt: skip

_COMPARISONS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def column_definition(column: Column) -> sql.Composable:
    return sql.SQL("{} {}{}").format(
        sql.Identifier(column.name),
        sql.SQL(_SQL_TYPES[column.type]),
        sql.SQL("" if column.nullable else " NOT NULL"),
    )


def _placeholder(column: Column) -> sql.SQL:
    return sql.SQL(_PLACEHOLDERS.get(column.type, "%s"))


def _timestamp(table: str, column: str, value: Any) -> Any:
    """An aware time's text in UTC; a naive one is refused, as on every backend (the
    server would read it in the session's time zone)."""
    if value is None:
        return None
    try:
        return utc_timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{table}.{column}: {exc}") from None


class PostgresTable(TableBackend):
    """One physical read-model table (`table`, schema-qualified) on a connection."""

    def __init__(
        self, conn: psycopg.Connection[Any], spec: TableSpec, table: sql.Composable
    ) -> None:
        self._conn = conn
        self._spec = spec
        self._table = table
        self._names = [c.name for c in spec.columns]
        # Decimals need no second look: `_to_column` gave numeric's own text, in range.
        self._checks = [(i, c) for i, c in enumerate(spec.columns) if c.type == "timestamp"]
        key_column = spec.column(spec.key)
        self._key_column = key_column
        self._columns = sql.SQL(", ").join(sql.Identifier(n) for n in self._names)
        key = sql.Identifier(spec.key)
        self._select = sql.SQL("SELECT {} FROM {} WHERE {} = {}").format(
            self._columns, table, key, _placeholder(key_column)
        )
        self._select_all = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            self._columns, table, key
        )
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(n)) for n in self._names
        )
        marks = sql.SQL(", ").join(_placeholder(c) for c in spec.columns)
        self._upsert = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}"
        ).format(table, self._columns, marks, key, updates)
        self._delete = sql.SQL("DELETE FROM {} WHERE {} = {}").format(
            table, key, _placeholder(key_column)
        )

    def _key(self, key: Any) -> Any:
        return self._bound(self._key_column, key)

    def select(self, key: Any) -> Mapping[str, Any] | None:
        row = self._conn.execute(self._select, (self._key(key),)).fetchone()
        return None if row is None else dict(zip(self._names, row, strict=True))

    def select_all(self) -> Iterator[Mapping[str, Any]]:
        for row in self._conn.execute(self._select_all).fetchall():
            yield dict(zip(self._names, row, strict=True))

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._checks:
            rows = [self._checked(row) for row in rows]
        with self._conn.cursor() as cursor:
            cursor.executemany(self._upsert, rows)

    def _checked(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i, column in self._checks:
            values[i] = _timestamp(self._spec.name, column.name, row[i])
        return tuple(values)

    def delete(self, keys: Sequence[Any]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(self._delete, [(self._key(k),) for k in keys])

    def query(
        self,
        where: Sequence[Condition[Any]],
        order: Sequence[Order[Any]],
        limit: int | None,
        offset: int,
    ) -> list[Mapping[str, Any]]:
        params: list[Any] = []
        query = sql.SQL("SELECT {} FROM {}{}{}").format(
            self._columns, self._table, self._where(where, params), self._order(order)
        )
        if limit is not None or offset:
            query = sql.SQL("{} LIMIT %s OFFSET %s").format(query)
            params += [limit, offset]
        rows = self._conn.execute(query, params).fetchall()
        return [dict(zip(self._names, row, strict=True)) for row in rows]

    def count(self, where: Sequence[Condition[Any]]) -> int:
        params: list[Any] = []
        query = sql.SQL("SELECT count(*) FROM {}{}").format(self._table, self._where(where, params))
        row = self._conn.execute(query, params).fetchone()
        assert row is not None
        return int(row[0])

    def _where(self, where: Sequence[Condition[Any]], params: list[Any]) -> sql.Composable:
        if not where:
            return sql.SQL("")
        parts = [self._condition(c, params) for c in where]
        return sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(parts))

    def _bound(self, column: Column, value: Any) -> Any:
        if column.type == "timestamp":
            return _timestamp(self._spec.name, column.name, value)
        if column.type == "real" and type(value) is str:
            # A NanFloat's "NaN", "Infinity", "-Infinity": as the float, so that an IN
            # array holds one type (PostgreSQL reads the floats as double precision).
            return float(value)
        return value

    def _condition(self, condition: Condition[Any], params: list[Any]) -> sql.Composable:
        column = self._spec.column(condition.column)
        name = sql.Identifier(column.name)
        op = condition.op
        if op == "is_null":
            return sql.SQL("{} IS NULL").format(name)
        if op == "not_null":
            return sql.SQL("{} IS NOT NULL").format(name)
        mark = _placeholder(column)
        if op == "in":
            values = [self._bound(column, v) for v in condition.value if v is not None]
            # None in (None, ...) is true in Python; IN never matches NULL in SQL.
            nulls = len(values) < len(condition.value)
            if not values:
                return sql.SQL("{} IS NULL").format(name) if nulls else sql.SQL("false")
            params.append(values)
            listed = sql.SQL("{} = ANY({})").format(name, sql.SQL(_ARRAYS[column.type]))
            return sql.SQL("({} OR {} IS NULL)").format(listed, name) if nulls else listed
        params.append(self._bound(column, condition.value))
        if op == "ne":
            # A null is not equal to a value: it matches.
            return sql.SQL("{} IS DISTINCT FROM {}").format(name, mark)
        return sql.SQL("{} {} {}").format(name, sql.SQL(_COMPARISONS[op]), mark)

    def _order(self, order: Sequence[Order[Any]]) -> sql.Composable:
        if not order:
            return sql.SQL("")
        # PostgreSQL's own defaults, written out: nulls after every value ascending,
        # before every value descending; an index serves both directions.
        parts = [
            sql.SQL("{} DESC NULLS FIRST" if item.descending else "{} ASC NULLS LAST").format(
                sql.Identifier(item.column)
            )
            for item in order
        ]
        return sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(parts))


# -- indexes ----------------------------------------------------------------------------


def _index_columns(spec: TableSpec, index: Index) -> sql.Composable:
    for name in index.columns:
        column = next((c for c in spec.columns if c.name == name), None)
        if column is None or column.type == "json":
            what = "has no column" if column is None else "cannot index the JSON column"
            raise ValueError(f"index {index.columns} of read model {spec.name!r} {what} {name!r}")
    return sql.SQL(", ").join(sql.Identifier(name) for name in index.columns)


def create_indexes(
    conn: psycopg.Connection[Any],
    schema: str,
    spec: TableSpec,
    physical: str,
    indexes: Sequence[Index],
) -> None:
    for index in indexes:
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(index.name(physical)),
                sql.Identifier(schema, physical),
                _index_columns(spec, index),
            )
        )


def ensure_indexes(
    conn: psycopg.Connection[Any], schema: str, spec: TableSpec, physical: str
) -> None:
    """Create the declared indexes the table lacks; drop the undeclared ones whose names
    esgen derives (an index made by hand is left alone)."""
    table = sql.Identifier(schema, physical).as_string(conn)
    found = {
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
            (table,),
        ).fetchall()
    }
    declared = {index.name(physical): index for index in spec.indexes}
    for name in sorted(found - declared.keys()):
        if is_index_name(name, physical):
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    create_indexes(conn, schema, spec, physical, [i for n, i in declared.items() if n not in found])
