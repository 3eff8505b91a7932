"""Read-model tables on SQLite: columns that order as Python does, queries, indexes.

Decimals and times are kept as text in the order-preserving forms of `_sortable`; every
other kind as itself (text in SQLite's default BINARY collation, which is code point
order, as Python compares str; booleans as 0 and 1). A decimal column is compared and
ordered on its sort prefix (`substr(col, 1, instr(col, ' '))`), so equal values written
with different scales (1.0, 1.00) tie as they do in Python; a nullable column on
`coalesce(col, X'')`, which puts nulls last; a declared index covers that same
expression, so SQLite uses it for both. A NanFloat's infinities are REAL infinities and
its NaN the text 'NaN', which SQLite orders after every number, as PostgreSQL orders NaN.

Every value is a bound parameter; every name is quoted (and checked to be an identifier).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from esgen.runtime._errors import UnstorableValue
from esgen.runtime._query import Condition, Order
from esgen.runtime._readmodel import Column, Index, TableBackend, TableSpec, is_index_name
from esgen.runtime._sortable import (
    EncodingRangeError,
    decode_decimal,
    encode_decimal,
    sort_prefix,
    utc_timestamp,
)

__all__ = ["SQLiteTable", "create_indexes", "ensure_indexes", "index_name", "quote", "sql_type"]

_SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "boolean": "INTEGER",
              "json": "TEXT", "decimal": "TEXT", "timestamp": "TEXT"}  # fmt: skip

_COMPARISONS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def quote(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a valid table, column or index name: {name!r}")
    return f'"{name}"'


def sql_type(column: Column) -> str:
    return _SQL_TYPES[column.type]


# What a null stands for in a nullable column's target: an empty blob, which SQLite
# orders after every number and every text, so nulls come after every value ascending
# and before every value descending, as `_query` says, with no second ORDER BY term.
# No value is ever stored as a blob, so only a null meets it.
_NULL = "X''"


def _target(column: Column) -> str:
    """What the column is compared, ordered and indexed on: a decimal's sort prefix, else
    itself; a nullable one's null as `_NULL`. One expression, in queries and indexes
    alike, so SQLite uses an index for filters and orders on it (SQLite's own order puts
    nulls first; `x IS NULL, x` would need a two-part index that `x = ?` cannot use, as
    SQLite then propagates the constant into `x IS NULL`)."""
    name = quote(column.name)
    target = f"substr({name}, 1, instr({name}, ' '))" if column.type == "decimal" else name
    return f"coalesce({target}, {_NULL})" if column.nullable else target


# Tag of the index form above (`Index.name`): indexes on nullable columns made before it
# covered the bare column, which no query uses any more.
_NULLABLE_INDEX_FORM = "null-last-v1"


def index_name(spec: TableSpec, index: Index, physical: str) -> str:
    """The name of `index` on SQLite: `Index.name`, tagged with the form if it covers a
    nullable column."""
    nullable = any(c.nullable for c in spec.columns if c.name in index.columns)
    return index.name(physical, _NULLABLE_INDEX_FORM if nullable else "")


# -- values -----------------------------------------------------------------------------


def _real(value: Any) -> Any:
    """A float column's value as SQLite keeps it. A NanFloat field gives "Infinity",
    "-Infinity" and "NaN" as text: the infinities become REAL infinities (SQLite holds
    them, and orders them as numbers); NaN stays the text 'NaN' (SQLite turns a REAL NaN
    into NULL), which SQLite orders after every number and which equals itself: NaN is
    above every number, as on PostgreSQL."""
    if type(value) is str and value != "NaN":
        return float(value)
    return value


def _stored(table: str, column: Column) -> Callable[[Any], Any] | None:
    """How a value in `_to_column`'s form becomes what the column holds; None if as is."""
    if column.type == "real":
        return _real
    if column.type == "decimal":

        def decimal(value: Any) -> Any:
            return None if value is None else _encode_decimal(table, column.name, value)

        return decimal
    if column.type == "timestamp":

        def timestamp(value: Any) -> Any:
            return None if value is None else _timestamp(table, column.name, value)

        return timestamp
    return None


def _bound(table: str, column: Column, value: Any) -> Any:
    """A condition's value (in `_to_column`'s form) as the column's target compares it."""
    if value is None:
        return None
    if column.type == "decimal":
        try:
            return sort_prefix(_decimal_text(value))
        except ValueError as exc:
            raise ValueError(f"{table}.{column.name}: {exc}") from None
    if column.type == "timestamp":
        return _timestamp(table, column.name, value)
    if column.type == "real":
        return _real(value)
    return value


def _decimal_text(value: Any) -> str:
    # `_to_column` gives decimals as text; a hand-written row may hold an int or a float.
    return value if type(value) is str else str(value)


def _encode_decimal(table: str, column: str, value: Any) -> str:
    text = _decimal_text(value)
    try:
        return encode_decimal(text)
    except EncodingRangeError as exc:
        raise UnstorableValue(table, column, Decimal(text), str(exc)) from None
    except ValueError as exc:
        raise ValueError(f"{table}.{column}: {exc}") from None


def _timestamp(table: str, column: str, value: Any) -> str:
    try:
        return utc_timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{table}.{column}: {exc}") from None


# -- statements -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Statements:
    names: tuple[str, ...]
    select: str
    select_all: str
    upsert: str
    delete: str
    columns: str  # the SELECT list
    table: str  # quoted
    key_order: str  # the ORDER BY that ends every query
    encoders: tuple[tuple[int, Callable[[Any], Any]], ...]
    key_encoder: Callable[[Any], Any] | None
    decimals: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def _statements(spec: TableSpec, physical: str) -> _Statements:
    names = tuple(c.name for c in spec.columns)
    table = quote(physical)
    columns = ", ".join(quote(n) for n in names)
    key_column = spec.column(spec.key)
    key = quote(spec.key)
    marks = ", ".join("?" for _ in names)
    encoders = tuple(
        (i, encode)
        for i, column in enumerate(spec.columns)
        if (encode := _stored(spec.name, column)) is not None
    )
    # A decimal key is stored in one form per value (`canonical_key`): the sort prefix
    # orders it; the text after it only makes the order total.
    key_order = f"{_target(key_column)}, {key}" if key_column.type == "decimal" else key
    return _Statements(
        names=names,
        select=f"SELECT {columns} FROM {table} WHERE {key} = ?",
        select_all=f"SELECT {columns} FROM {table} ORDER BY {key}",
        upsert=f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})",
        delete=f"DELETE FROM {table} WHERE {key} = ?",
        columns=columns,
        table=table,
        key_order=key_order,
        encoders=encoders,
        key_encoder=_stored(spec.name, key_column),
        decimals=tuple(c.name for c in spec.columns if c.type == "decimal"),
    )


class SQLiteTable(TableBackend):
    """One physical read-model table on a SQLite connection."""

    def __init__(self, conn: sqlite3.Connection, spec: TableSpec, physical: str) -> None:
        self._conn = conn
        self._spec = spec
        self._sql = _statements(spec, physical)

    def _row(self, row: Sequence[Any]) -> dict[str, Any]:
        values = dict(zip(self._sql.names, row, strict=True))
        for name in self._sql.decimals:
            stored = values[name]
            if stored is not None:
                values[name] = decode_decimal(stored)
        return values

    def _key(self, key: Any) -> Any:
        encode = self._sql.key_encoder
        return key if encode is None else encode(key)

    def select(self, key: Any) -> Mapping[str, Any] | None:
        row = self._conn.execute(self._sql.select, (self._key(key),)).fetchone()
        return None if row is None else self._row(row)

    def select_all(self) -> Iterator[Mapping[str, Any]]:
        for row in self._conn.execute(self._sql.select_all):
            yield self._row(row)

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        encoders = self._sql.encoders
        if encoders:
            rows = [_encoded(row, encoders) for row in rows]
        self._conn.executemany(self._sql.upsert, rows)

    def delete(self, keys: Sequence[Any]) -> None:
        self._conn.executemany(self._sql.delete, [(self._key(k),) for k in keys])

    def query(
        self,
        where: Sequence[Condition[Any]],
        order: Sequence[Order[Any]],
        limit: int | None,
        offset: int,
    ) -> list[Mapping[str, Any]]:
        sql, params = self.query_sql(where, order, limit, offset)
        return [self._row(row) for row in self._conn.execute(sql, params)]

    def query_sql(
        self,
        where: Sequence[Condition[Any]],
        order: Sequence[Order[Any]],
        limit: int | None,
        offset: int,
    ) -> tuple[str, list[Any]]:
        """The statement `query` runs, and its parameters (for EXPLAIN QUERY PLAN)."""
        clause, params = self._where(where)
        sql = f"SELECT {self._sql.columns} FROM {self._sql.table}{clause}{self._order(order)}"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else limit, offset]
        return sql, params

    def count(self, where: Sequence[Condition[Any]]) -> int:
        clause, params = self._where(where)
        row = self._conn.execute(f"SELECT count(*) FROM {self._sql.table}{clause}", params)
        return int(row.fetchone()[0])

    def _where(self, where: Sequence[Condition[Any]]) -> tuple[str, list[Any]]:
        if not where:
            return "", []
        parts: list[str] = []
        params: list[Any] = []
        for condition in where:
            parts.append(self._condition(condition, params))
        return " WHERE " + " AND ".join(parts), params

    def _condition(self, condition: Condition[Any], params: list[Any]) -> str:
        column = self._spec.column(condition.column)
        name = quote(column.name)
        op = condition.op
        target = _target(column)
        if op == "is_null":
            return f"{target} = {_NULL}" if column.nullable else f"{name} IS NULL"
        if op == "not_null":
            return f"{target} < {_NULL}" if column.nullable else f"{name} IS NOT NULL"
        table = self._spec.name
        if op == "in":
            values = [_bound(table, column, v) for v in condition.value if v is not None]
            # None in (None, ...) is true in Python; IN never matches NULL in SQL.
            nulls = f"{name} IS NULL" if len(values) < len(condition.value) else ""
            if not values:
                return nulls or "0"
            params.extend(values)
            listed = f"{target} IN ({', '.join('?' for _ in values)})"
            return f"({listed} OR {nulls})" if nulls else listed
        params.append(_bound(table, column, condition.value))
        if op == "ne":
            return f"{target} IS NOT ?"  # a null is not equal to a value: it matches
        compared = f"{target} {_COMPARISONS[op]} ?"
        if column.nullable and op in ("gt", "ge"):
            # A null's stand-in is above every value: bounded below it, still one range.
            return f"{compared} AND {target} < {_NULL}"
        return compared

    def _order(self, order: Sequence[Order[Any]]) -> str:
        parts = []
        for item in order:
            column = self._spec.column(item.column)
            if column.name == self._spec.key:
                text = self._sql.key_order
                if item.descending:
                    text = ", ".join(f"{part} DESC" for part in text.split(", "))
                parts.append(text)
                continue
            # A nullable column's target puts nulls last ascending (see `_target`).
            parts.append(f"{_target(column)} {'DESC' if item.descending else 'ASC'}")
        return " ORDER BY " + ", ".join(parts) if parts else ""


def _encoded(
    row: tuple[Any, ...], encoders: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    values = list(row)
    for i, encode in encoders:
        values[i] = encode(values[i])
    return tuple(values)


# -- indexes ----------------------------------------------------------------------------


def _index_columns(spec: TableSpec, index: Index) -> str:
    targets = []
    for name in index.columns:
        column = next((c for c in spec.columns if c.name == name), None)
        if column is None or column.type == "json":
            what = "has no column" if column is None else "cannot index the JSON column"
            raise ValueError(f"index {index.columns} of read model {spec.name!r} {what} {name!r}")
        targets.append(_target(column))
    return ", ".join(targets)


def create_indexes(
    conn: sqlite3.Connection, spec: TableSpec, physical: str, indexes: Sequence[Index]
) -> None:
    table = quote(physical)
    for index in indexes:
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(index_name(spec, index, physical))} ON {table} "
            f"({_index_columns(spec, index)})"
        )


def ensure_indexes(conn: sqlite3.Connection, spec: TableSpec, physical: str) -> None:
    """Create the declared indexes the table lacks; drop the undeclared ones whose names
    esgen derives (an index made by hand is left alone)."""
    found = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM pragma_index_list(?) WHERE origin = 'c'", (physical,)
        )
    }
    declared = {index_name(spec, index, physical): index for index in spec.indexes}
    for name in sorted(found - declared.keys()):
        if is_index_name(name, physical):
            conn.execute(f"DROP INDEX {quote(name)}")
    create_indexes(conn, spec, physical, [i for n, i in declared.items() if n not in found])
