"""How a projection's read model is stored: its table's name, key, columns and indexes.

The generated projection declares this table (a `TableSpec`), and the runtime asks for a
rebuild when the table a generation was built with differs from it. `esgen compat`
predicts that answer from the schema alone, so both read the table from here and cannot
disagree about it. Indexes are not part of that answer: the runtime creates missing ones
on the table it has, so adding or dropping one needs no rebuild.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from esgen.schema._model import (
    Consumer,
    DictType,
    EnumType,
    ListType,
    NamedType,
    NullableType,
    Projection,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
)
from esgen.schema._names import snake

__all__ = [
    "ColumnKind",
    "ReadModelColumn",
    "ReadModelTable",
    "column_kind",
    "queryable",
    "read_model_table",
]

ColumnKind = Literal["text", "integer", "real", "boolean", "json", "decimal", "timestamp"]
"""The runtime's column types (`esgen.runtime.ColumnType`); mypy holds the two together
where compat builds the runtime's `Column` from these."""

# Each backend stores these so that it orders and compares them as Python does (see
# `esgen.runtime.ColumnType`); str, uuid, date, bytes and enums are text, whose order
# (code points of canonical text) is already theirs.
_SCALAR_COLUMNS: dict[ScalarKind, ColumnKind] = {
    ScalarKind.INT: "integer",
    ScalarKind.FLOAT: "real",
    ScalarKind.BOOL: "boolean",
    ScalarKind.DECIMAL: "decimal",
    ScalarKind.DATETIME: "timestamp",
}


@dataclass(frozen=True, slots=True)
class ReadModelColumn:
    name: str  # the field's name as written, which is also its JSON key
    kind: ColumnKind
    nullable: bool


@dataclass(frozen=True, slots=True)
class ReadModelTable:
    name: str  # the projection's name at run time, the table's (a view's) name, and the
    # NAME that `esgen projections rebuild NAME` takes
    key: str
    columns: tuple[ReadModelColumn, ...]  # in the order the fields are written
    # Each index's columns, in the order written; not part of the layout.
    indexes: tuple[tuple[str, ...], ...] = ()


def column_kind(
    type_: TypeExpr, lookup: Callable[[str], UserType | None]
) -> tuple[ColumnKind, bool]:
    """(column type, nullable) for a read-model field: numbers, booleans, decimals and
    datetimes as themselves, ids, dates, bytes and enums as text, anything structured
    (value types, lists, maps) as JSON, which is neither filtered nor ordered on."""
    if isinstance(type_, NullableType):
        return column_kind(type_.inner, lookup)[0], True
    if isinstance(type_, ScalarType):
        return _SCALAR_COLUMNS.get(type_.kind, "text"), False
    if isinstance(type_, NamedType) and isinstance(lookup(type_.name), EnumType):
        return "text", False
    if isinstance(type_, ListType | DictType | NamedType):
        return "json", False
    raise TypeError(type_)  # pragma: no cover


def read_model_table(
    projection: Projection | Consumer, lookup: Callable[[str], UserType | None]
) -> ReadModelTable:
    columns = []
    for f in projection.fields:
        kind, nullable = column_kind(f.type, lookup)
        columns.append(ReadModelColumn(f.name, kind, nullable))
    return ReadModelTable(
        snake(projection.name), projection.key, tuple(columns), projection.indexes
    )


def queryable(kind: ColumnKind) -> bool:
    """Whether a column of this kind can be filtered, ordered on and indexed."""
    return kind != "json"
