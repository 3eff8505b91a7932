"""Read-model tables: typed rows in the event store's own database.

A projection's rows live in a real table with one column per field, so they can be read
with plain SQL; the table's name is a view over the active generation, so a rebuild can
fill a new generation while readers keep seeing the old one, then switch in one commit.

Within one unit of work (one page of events), rows are kept in an identity map: reads
of a row already touched cost nothing, and writes go to the database once per page.

Rows whose type has personal fields (`Personal`) are sealed as events are: their
personal columns hold the placeholders, and one more column (`esgen_personal`, JSON) the
envelope with the real values, opened with the store's keyring on every read (the
placeholders stay once the row's subject is forgotten). The row's subject is the field
its type's `data_subject` names, else the key. A personal column cannot be filtered or
ordered on: the database only holds its placeholder.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Generic, Literal, Self, cast
from uuid import UUID

from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import TypeVar

from esgen.runtime._errors import UnstorableText, UnstorableValue
from esgen.runtime._finite import (
    may_hold_decimal,
    refuse_non_finite,
    refuse_non_finite_decimals,
    to_json_text,
)
from esgen.runtime._messages import _Message
from esgen.runtime._personal import (
    ENVELOPE_KEY,
    Keyring,
    PersonalDataError,
    PersonalFields,
    open_json,
    personal_fields,
)
from esgen.runtime._query import Condition, Order
from esgen.runtime._sealed import seal_derived
from esgen.runtime._text import check_key, strings

__all__ = [
    "ENVELOPE_COLUMN",
    "Column",
    "ColumnType",
    "Index",
    "Rows",
    "TableSpec",
    "is_index_name",
    "personal_table",
]

RowT = TypeVar("RowT", bound=BaseModel)
# The type of the key field; Any for rows typed by hand (`Rows[MyRow]`).
KeyT = TypeVar("KeyT", default=Any)

ColumnType = Literal["text", "integer", "real", "boolean", "json", "decimal", "timestamp"]
"""How a field is stored, so that the database orders and compares it as Python does:
- "text": str, enums, uuids (canonical lower-case text), dates (ISO); in code point order
  (PostgreSQL: `COLLATE "C"`), as Python compares str.
- "integer", "real", "boolean": themselves (no NaN: refused before it is stored).
- "decimal": exact; PostgreSQL `numeric`; SQLite a text encoding whose byte order and
  equality are Decimal's (`_sortable`), the value kept with it in numeric's form (the
  scale written; no -0, no positive exponent: see `_to_column`). A key column holds one
  form per value (`canonical_key`: 10.00 is 10).
- "timestamp": aware datetimes, compared as instants, read back in UTC on every backend;
  PostgreSQL `timestamptz`; SQLite fixed-width UTC ISO text.
- "json": value types, lists and maps; neither filtered nor ordered on.
"""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    """An index declared in the projection's YAML (`indexes:`), created with each
    generation's table. Not part of the layout: adding or dropping one needs no rebuild.
    Never unique: a constraint a handler's write could break would stop the projection
    on that event for good; uniqueness is the key's job."""

    columns: tuple[str, ...]

    def name(self, table: str, form: str = "") -> str:
        """The index's name on one physical table: derived, so it is found again, and
        unique in the schema (a digest of the table and the columns ends it, since the
        readable part is ambiguous: ("a_b", "c") and ("a", "b_c")). At most 63 bytes, the
        length PostgreSQL keeps of an identifier: a longer readable part is cut.

        `form` is a backend's tag for how it builds the index, when that changed since
        the plain name was first used: it enters the digest, so an index built the old way
        has another name, and `ensure_indexes` replaces it at the runner's start."""
        named: list[object] = [table, self.columns, form] if form else [table, self.columns]
        digest = hashlib.sha256(json.dumps(named).encode()).hexdigest()[:8]
        readable = f"{table}__ix_{'_'.join(self.columns)}".encode()
        if len(readable) > INDEX_NAME_BYTES - 9:
            # Cut at a character boundary, so the name stays valid UTF-8.
            readable = readable[: INDEX_NAME_BYTES - 9].decode(errors="ignore").encode()
        return f"{readable.decode()}_{digest}"


INDEX_NAME_BYTES = 63
"""The longest index name esgen derives (PostgreSQL's identifier limit, in bytes)."""


def is_index_name(name: str, table: str) -> bool:
    """Whether an index on `table` has a name of the form esgen derives (so esgen may
    drop it when no longer declared): an index made by hand keeps its place."""
    prefix = f"{table}__ix_".encode()[: INDEX_NAME_BYTES - 9].decode(errors="ignore")
    return (
        name.startswith(prefix)
        and len(name) >= len(prefix) + 9
        and len(name.encode()) <= INDEX_NAME_BYTES
        and _DIGEST_TAIL.fullmatch(name[-9:]) is not None
    )


_DIGEST_TAIL = re.compile(r"_[0-9a-f]{8}")


ENVELOPE_COLUMN = "esgen_personal"
"""The column holding a row's sealed personal values (see `TableSpec.sealing`)."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    """The read model's table: its name (the view readers query), key and columns.

    `personal` names the columns holding personal data: a table with any has the column
    `ENVELOPE_COLUMN` last (see `sealing`, and `personal_table`, which derives both from
    the row type)."""

    name: str
    key: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = ()
    personal: tuple[str, ...] = ()

    def sealing(self, personal: Sequence[str]) -> TableSpec:
        """This table with the columns `personal` sealed: they hold placeholders, and the
        nullable JSON column `ENVELOPE_COLUMN` (added) the envelope of the real values."""
        names = [c.name for c in self.columns]
        if self.personal or ENVELOPE_COLUMN in names:
            raise ValueError(f"read model {self.name!r}: its personal columns are set already")
        for name in personal:
            if name not in names:
                raise ValueError(f"read model {self.name!r} has no column {name!r}")
        if self.key in personal:
            raise PersonalDataError(
                f"read model {self.name!r}: its key {self.key!r} cannot be personal data "
                "(rows are found by it, so the database must hold it as it is)"
            )
        if not personal:
            return self
        envelope = Column(ENVELOPE_COLUMN, "json", nullable=True)
        return TableSpec(
            self.name, self.key, (*self.columns, envelope), self.indexes, tuple(personal)
        )

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def layout(self) -> str:
        """A fingerprint of the columns: a stored generation built with another layout
        must be rebuilt before it can take rows of this one. It includes the storage
        version: tables whose columns are stored another way (before 2, PostgreSQL text
        compared in the database's collation, not in code point order) need a rebuild too."""
        columns = [[c.name, c.type, c.nullable] for c in self.columns]
        layout: list[Any] = [_STORAGE_VERSION, self.key, columns]
        if self.column(self.key).type == "decimal":
            # Decimal keys are stored in one form per value (`canonical_key`) since then:
            # a table made before may hold one value as several rows (10, 10.0).
            layout.append("canonical-decimal-key")
        if self.personal:
            # A column that becomes personal holds plaintext in a table made before: the
            # table is rebuilt, so that it is sealed (the envelope column alone would not
            # tell which columns are).
            layout.append(["personal", list(self.personal)])
        text = json.dumps(layout)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_STORAGE_VERSION = 2
"""How read-model columns are stored; raised when a change needs every table rebuilt."""


class _Deleted:
    pass


_DELETED = _Deleted()
_UNSEEN: Any = object()  # a key this page has not looked up yet (None: looked up, no row)


class Rows(Generic[RowT, KeyT]):
    """Typed access to one projection's rows inside the current unit of work.

    Handlers use `get`, `put`, `update` and `delete`; the runner flushes the changes
    with the projection's checkpoint, in one transaction.

    A generated projection declares a subclass for its row type (`class
    AccountBalancesRows(Rows[AccountBalancesRow, UUID], row_type=AccountBalancesRow)`)
    whose `update` takes the row's fields as typed keywords; `Rows(spec, row_type, ...)`
    then builds that subclass, so the runner needs to know nothing of it.
    """

    _typed: ClassVar[dict[type[BaseModel], type[Rows[Any, Any]]]] = {}

    def __init_subclass__(cls, row_type: type[BaseModel] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if row_type is not None:
            Rows._typed[row_type] = cls

    def __new__(
        cls,
        spec: TableSpec,
        row_type: type[RowT],
        backend: TableBackend,
        *,
        keyring: Keyring | None = None,
    ) -> Self:
        chosen = Rows._typed.get(row_type, cls) if cls is Rows else cls
        return cast(Self, super().__new__(chosen))

    def __init__(
        self,
        spec: TableSpec,
        row_type: type[RowT],
        backend: TableBackend,
        *,
        keyring: Keyring | None = None,
    ) -> None:
        """`keyring` (the store's) seals and opens the rows of a type with personal
        fields; `spec` must then be the table `personal_table` derives."""
        self._spec = spec
        self._row_type = row_type
        self._backend = backend
        self._touched: dict[Any, RowT | _Deleted | None] = {}
        # Rows without personal fields take the plain paths, with no check per row.
        self._encode: Callable[[RowT], tuple[Any, ...]] = self._encode_plain
        self._decode: Callable[[Mapping[str, Any]], RowT] = self._decode_plain
        sealed = personal_fields(row_type)
        if sealed is not None or spec.personal:
            self._seal_with(sealed, keyring)
        # The key exactly as the table stores it, whatever form the handler passes: `1`
        # and `"1"`, a UUID and its text, a datetime and its ISO text all find one row.
        self._key = _key_function(row_type, spec.key, spec.column(spec.key))
        self._key_attribute = _attribute(row_type, spec.key)
        key_column = spec.column(spec.key)
        self._decimal_key = (
            [c.name for c in spec.columns].index(spec.key) if key_column.type == "decimal" else -1
        )

    @classmethod
    def of(cls, rows: Rows[Any, Any]) -> Self:
        """`rows` as this subclass: how a generated projection types its `rows`."""
        if not isinstance(rows, cls):
            raise TypeError(
                f"{cls.__name__} expected, got {type(rows).__name__}: rows of another "
                "row type, or built before the generated module was imported"
            )
        return rows

    def get(self, key: KeyT) -> RowT | None:
        try:
            db_key = self._key(key)
        except (_OutOfRange, UnstorableText):
            return None  # a key no table can hold (past 64 bits, NUL): no row has it
        row = self._touched.get(db_key, _UNSEEN)
        if row is not _UNSEEN:
            return None if isinstance(row, _Deleted) else row
        values = self._backend.select(db_key)
        row = None if values is None else self._decode(values)
        self._touched[db_key] = row
        return row

    def put(self, row: RowT) -> None:
        """Insert the row, or replace the row with the same key.

        Rows are written once per page, as the page leaves them: a value no table can hold
        (an int past 64 bits, text with NUL, a time past the year 9999 in UTC, ...) is
        refused then, with `UnstorableValue` naming the row's key. Checking every put
        instead cost a fifth of a catch-up (benchmarks/projection_sqlite.py)."""
        self._touched[self._key(getattr(row, self._key_attribute))] = row

    # `*args` is never used: with it, type checkers read the signature as open-ended, so a
    # generated subclass may narrow the keywords to the row's fields. The key is
    # positional-only, so a row may have a field named `key` and still change it.
    def update(self, key: KeyT, /, *args: Any, **changes: Any) -> RowT:
        """Change some fields of an existing row; KeyError if there is none. A change may
        name the attribute (`from_`) or the column (`from`)."""
        if args:
            raise TypeError(f"update() takes the key and then keywords, got {args!r} too")
        return self._update(key, changes)

    def _update(self, key: KeyT, changes: Mapping[str, Any]) -> RowT:
        row = self.get(key)
        if row is None:
            raise KeyError(f"{self._spec.name}: no row with {self._spec.key} = {key!r}")
        row_type = self._row_type
        updated: RowT
        if isinstance(row, _Message):
            # Only the changed values are validated, as `evolve` does.
            if not changes.keys() <= row_type.model_fields.keys():
                changes = {_attribute(row_type, name): value for name, value in changes.items()}
            updated = row._evolve(changes)
        else:
            # A row model written by hand: by column, validated whole.
            data = row.model_dump(by_alias=True)
            for name, value in changes.items():
                data[_column(row_type, name)] = value
            updated = row_type.model_validate(data)
        self.put(updated)
        return updated

    def delete(self, key: KeyT) -> None:
        try:
            db_key = self._key(key)
        except (_OutOfRange, UnstorableText):
            return  # no row can have it
        self._touched[db_key] = _DELETED

    def list(
        self,
        *where: Condition[RowT],
        order_by: Order[RowT] | Sequence[Order[RowT]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[RowT]:
        """Rows matching every condition, with this unit's changes, in the order asked
        (then by key), paged with `limit` and `offset`."""
        limit, offset = check_page(limit, offset)
        conditions = stored_conditions(self._spec, self._row_type, where)
        orders = checked_order(self._spec, [order_by] if isinstance(order_by, Order) else order_by)
        # The unit's changes go to the table first (in its transaction), so the query sees
        # them; they still commit or roll back with the checkpoint.
        self.flush()
        found = self._backend.query(conditions, orders, limit, offset)
        return [self._decode(values) for values in found]

    def count(self, *where: Condition[RowT]) -> int:
        """How many rows match every condition, with this unit's changes."""
        conditions = stored_conditions(self._spec, self._row_type, where)
        self.flush()
        return self._backend.count(conditions)

    def all(self) -> builtins.list[RowT]:
        """Every row, with this unit's changes applied, ordered by key."""
        rows = {self._key(v[self._spec.key]): self._decode(v) for v in self._backend.select_all()}
        for key, row in self._touched.items():
            if isinstance(row, _Deleted):
                rows.pop(key, None)
            elif row is not None:
                rows[key] = row
        try:
            order = sorted(rows)
        except TypeError:  # keys of mixed kinds cannot happen in one table; be safe anyway
            order = sorted(rows, key=str)
        return [rows[k] for k in order]

    def flush(self) -> None:
        upserts = []
        for key, row in self._touched.items():
            if isinstance(row, BaseModel):
                try:
                    upserts.append(self._encode(row))
                except (UnstorableValue, UnstorableText) as exc:
                    exc.add_note(f"{self._spec.name}: the row with {self._spec.key} = {key!r}")
                    raise
        deletes = [k for k, r in self._touched.items() if isinstance(r, _Deleted)]
        if deletes:
            self._backend.delete(deletes)
        if upserts:
            self._backend.upsert(upserts)
        self._touched.clear()

    def discard(self) -> None:
        self._touched.clear()

    def _encode_plain(self, row: RowT) -> tuple[Any, ...]:
        return self._values(row, row.model_dump(mode="json", by_alias=True))

    def _values(self, row: RowT, data: Mapping[str, Any]) -> tuple[Any, ...]:
        owner = type(row).__name__
        values = tuple(_to_column(c, data[c.name], owner) for c in self._spec.columns)
        if self._decimal_key >= 0:
            # The key in its one form per value, as `get` looks it up (10.00 -> 10).
            i = self._decimal_key
            values = (*values[:i], canonical_key(values[i]), *values[i + 1 :])
        for column, value in zip(self._spec.columns, values, strict=True):
            # JSON mode writes a NaN Decimal as "NaN", which no decimal field reads back;
            # Python values tell it from a str or a NanFloat that reads the same.
            if type(value) is str and may_hold_decimal(value, json_text=column.type == "json"):
                python = row.model_dump(by_alias=True)[column.name]
                refuse_non_finite_decimals(owner, column.name, python)
        return values

    def _decode_plain(self, values: Mapping[str, Any]) -> RowT:
        data = {c.name: _from_column(c, values[c.name]) for c in self._spec.columns}
        return self._row_type.model_validate(data)

    # -- rows with personal fields ----------------------------------------------------

    def _seal_with(self, sealed: PersonalFields | None, keyring: Keyring | None) -> None:
        spec = self._spec
        if sealed is None or spec.personal != _personal_columns(spec, self._row_type):
            raise PersonalDataError(
                f"read model {spec.name!r}: its table does not seal the personal fields of "
                f"{self._row_type.__qualname__} (build it with personal_table(spec, row_type), "
                "as projections and read models do)"
            )
        self._sealed = sealed
        self._keyring = keyring
        self._what = f"a row of read model {spec.name!r}"
        names = [c.name for c in spec.columns]
        self._personal_columns = [(names.index(n), spec.column(n)) for n in spec.personal]
        self._envelope_index = names.index(ENVELOPE_COLUMN)
        # Without `data_subject` on the row type, the row's subject is its key.
        self._key_index = -1 if sealed.subject is not None else names.index(spec.key)
        self._encode = self._encode_sealed
        self._decode = self._decode_sealed

    def _encode_sealed(self, row: RowT) -> tuple[Any, ...]:
        data = row.model_dump(mode="json", by_alias=True)
        data[ENVELOPE_COLUMN] = None
        # Every value checked as in a row without personal fields (64-bit ints, no NUL,
        # finite decimals), the personal ones included, before they are sealed.
        values = list(self._values(row, data))
        subject = None
        if self._key_index >= 0:
            key = values[self._key_index]  # in its stored form: one subject per row
            subject = key if type(key) is str else str(key)
        data = seal_derived(self._keyring, self._sealed, data, subject, self._what)
        envelope = data.pop(ENVELOPE_KEY, None)
        owner = type(row).__name__
        for i, column in self._personal_columns:
            values[i] = _to_column(column, data[column.name], owner)
        if envelope is not None:
            values[self._envelope_index] = to_json_text(owner, ENVELOPE_COLUMN, envelope)
        return tuple(values)

    def _decode_sealed(self, values: Mapping[str, Any]) -> RowT:
        data = {c.name: _from_column(c, values[c.name]) for c in self._spec.columns}
        envelope = data.pop(ENVELOPE_COLUMN)
        if envelope is not None:
            data[ENVELOPE_KEY] = envelope
            data = open_json(self._keyring, data, self._what, self._sealed)
        return self._row_type.model_validate(data)


def personal_table(spec: TableSpec, row_type: type[BaseModel]) -> TableSpec:
    """The table of rows of `row_type`: `spec` with the row type's personal columns
    sealed (`TableSpec.sealing`), or `spec` itself when it has none or names them
    already. Projections and read models derive their `table` so, once per class."""
    personal = _personal_columns(spec, row_type)
    if spec.personal:
        if spec.personal != personal:
            raise PersonalDataError(
                f"read model {spec.name!r} declares the personal columns {spec.personal}, "
                f"but {row_type.__qualname__} has {personal}"
            )
        return spec
    return spec.sealing(personal) if personal else spec


def seal_table(owner: type[Any]) -> None:
    """Set `owner.table` (a projection's or read model's class) to `personal_table` of
    its row type, if it declares both: every use of the table (creating it, its layout,
    its rows) then sees the personal columns."""
    spec = getattr(owner, "table", None)
    row_type = getattr(owner, "row_type", None)
    if isinstance(spec, TableSpec) and isinstance(row_type, type):
        sealed = personal_table(spec, row_type)
        if sealed is not spec:
            owner.table = sealed


def _personal_columns(spec: TableSpec, row_type: type[BaseModel]) -> tuple[str, ...]:
    """The columns (in table order) holding personal data of `row_type`."""
    sealed = personal_fields(row_type)
    if sealed is None:
        return ()
    names = [c.name for c in spec.columns]
    unknown = sorted(set(sealed.tree.fields) - set(names))
    if unknown:
        raise PersonalDataError(
            f"read model {spec.name!r}: the personal fields {unknown} of "
            f"{row_type.__qualname__} are not columns of its table"
        )
    if ENVELOPE_COLUMN in row_type.model_fields or (ENVELOPE_COLUMN in names and not spec.personal):
        raise PersonalDataError(
            f"read model {spec.name!r}: {ENVELOPE_COLUMN!r} holds sealed personal data; "
            "no field can be named so"
        )
    return tuple(n for n in names if n in sealed.tree.fields)


@functools.cache
def _attribute(row_type: type[BaseModel], column: str) -> str:
    """The row attribute behind a column: columns are named by the field's JSON key."""
    for name, info in row_type.model_fields.items():
        if (info.serialization_alias or name) == column:
            return name
    return column


@functools.cache
def _column(row_type: type[BaseModel], name: str) -> str:
    """The column of a row attribute (`from_` -> `from`); a column name stays itself."""
    info = row_type.model_fields.get(name)
    return (info.serialization_alias or name) if info is not None else name


@functools.cache
def _key_function(row_type: type[BaseModel], key: str, column: Column) -> Callable[[Any], Any]:
    """How a key becomes its stored form, one form per value: keys equal in Python (10 and
    10.00, one instant at two offsets) are one row. `_OutOfRange` for a key no row can
    have. Plain types skip pydantic, as this runs for every row a handler touches."""
    annotation = row_type.model_fields[_attribute(row_type, key)].annotation
    owner = row_type.__name__
    if annotation is str:

        def text_key(value: Any) -> str:
            text = value if type(value) is str else str(value)
            if not text.isascii() or "\x00" in text:
                check_key(text, f"{owner}.{column.name}")
            return text

        return text_key
    if annotation is int:

        def int_key(value: Any) -> int:
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"{owner}.{column.name}: {value!r} is no int key") from None
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise _OutOfRange(owner, column.name, number, _INT64_RULE, _side(number > 0))
            return number

        return int_key
    if annotation is UUID:
        return lambda value: str(value if type(value) is UUID else UUID(str(value)))
    adapter: TypeAdapter[Any] = TypeAdapter(Any if annotation is None else annotation)

    def stored(value: Any) -> Any:
        json_value = adapter.dump_python(adapter.validate_python(value), mode="json")
        result = _to_column(column, json_value, owner)
        return canonical_key(result) if column.type == "decimal" else result

    return stored


def canonical_key(text: Any) -> Any:
    """A decimal key's one form per value (`_to_column`'s text without trailing zeros
    after the point: 10.00 -> 10, 2.50 -> 2.5), so equal keys are one row everywhere."""
    if type(text) is not str or "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


@functools.cache
def _stored_value(row_type: type[BaseModel], column: Column) -> Callable[[Any], Any]:
    """How a value given for a column becomes its stored form: validated as the field's
    type (so "5" for an int field is refused, as the row would refuse it), then as
    `_to_column` writes rows."""
    info = row_type.model_fields[_attribute(row_type, column.name)]
    annotation = info.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(Any if annotation is None else annotation)
    owner = f"{row_type.__name__} query"

    def stored(value: Any) -> Any:
        checked = adapter.validate_python(value, strict=False)
        return _to_column(column, adapter.dump_python(checked, mode="json"), owner)

    return stored


def stored_conditions(
    spec: TableSpec, row_type: type[BaseModel], where: Sequence[Condition[Any]]
) -> list[Condition[Any]]:
    """The conditions in stored form (`stored_condition`), without those every row meets."""
    stored = (stored_condition(spec, row_type, condition) for condition in where)
    return [condition for condition in stored if condition is not None]


def stored_condition(
    spec: TableSpec, row_type: type[BaseModel], condition: Condition[Any]
) -> Condition[Any] | None:
    """The condition with its value in the column's stored form (as `Rows` writes it).

    A value past everything the column can hold (an int past 64 bits, a decimal past
    PostgreSQL numeric, a time outside the years 1 to 9999 in UTC, ±inf or NaN in a
    float field that stores neither) has a definite answer, the same on every backend:
    `lt(2**70)` is every non-null row, `gt(2**70)` and `eq(2**70)` none, `ne(2**70)`
    every row (None here), and `in_` ignores it; text no row can hold (NUL, a lone
    surrogate) or a decimal with more places than numeric keeps is equal to no row, but
    ordering against it is a ValueError. A value the field's type refuses is a ValueError
    naming the read model and the field."""
    column = _queryable(spec, condition.column)
    op = condition.op
    if op in ("is_null", "not_null"):
        return condition
    convert = _stored_value(row_type, column)
    where = f"{spec.name}.{column.name}"
    if op == "in":
        kept: list[Any] = []
        for value in condition.value:
            if value is None:  # matches the nulls, as `eq(None)` (a column may have none)
                kept.append(None)
                continue
            try:
                kept.append(_query_value(convert, where, value))
            except _OutOfRange:
                continue  # no row holds it; the others still count
        return Condition(column.name, "in", tuple(kept))
    try:
        return Condition(column.name, op, _query_value(convert, where, condition.value))
    except _OutOfRange as exc:
        return _beyond(column.name, op, exc, where)


def _query_value(convert: Callable[[Any], Any], where: str, value: Any) -> Any:
    try:
        return convert(value)
    except _OutOfRange:
        raise
    except ValidationError as exc:
        reasons = "; ".join(error["msg"] for error in exc.errors())
        raise ValueError(f"{where}: cannot compare with {value!r}: {reasons}") from None
    except UnstorableValue as exc:
        if type(exc.value) is float:  # ±inf or NaN in a field that stores neither
            side = "unordered" if math.isnan(exc.value) else _side(exc.value > 0)
            raise _OutOfRange(exc.model, exc.field, exc.value, exc.rule, side) from None
        raise ValueError(f"{where}: cannot compare with {value!r}: {exc.rule}") from None
    except UnstorableText:
        # No row holds it: equal to none, unequal to all; where it sorts is not asked.
        model, field = where.split(".", 1)
        raise _OutOfRange(model, field, value, _TEXT_RULE, "between") from None
    except ValueError as exc:  # e.g. a naive time for a column of instants
        raise ValueError(f"{where}: cannot compare with {value!r}: {exc}") from None


def _beyond(column: str, op: str, exc: _OutOfRange, where: str) -> Condition[Any] | None:
    """The condition a comparison with an unstorable value amounts to (None: every row)."""
    nothing: Condition[Any] = Condition(column, "in", ())
    if op == "eq":
        return nothing
    if op == "ne":
        return None
    if exc.side == "unordered":  # NaN: no value is below, above or equal to it
        return nothing
    if exc.side == "between":  # where it sorts among stored values is not known here
        raise ValueError(f"{where}: cannot compare with {exc.value!r}: {exc.rule}")
    below_it = op in ("lt", "le")
    return Condition(column, "not_null", None) if below_it == (exc.side == "above") else nothing


def checked_order(spec: TableSpec, order: Sequence[Order[Any]]) -> tuple[Order[Any], ...]:
    """The orders, checked, with the key (ascending) last so equal values page stably."""
    for item in order:
        _queryable(spec, item.column)
    if not any(item.column == spec.key for item in order):
        order = (*order, Order(spec.key))
    return tuple(order)


def _queryable(spec: TableSpec, name: str) -> Column:
    for column in spec.columns:
        if column.name == name:
            if name in spec.personal:
                raise ValueError(
                    f"{spec.name}.{name} is personal data, stored sealed: it cannot be "
                    "filtered or ordered on (the table holds only its placeholder)"
                )
            if column.type == "json":
                raise ValueError(
                    f"{spec.name}.{name} is stored as JSON: it cannot be filtered or ordered on"
                )
            return column
    raise ValueError(f"{spec.name} has no column {name!r}")


def check_page(limit: int | None, offset: int) -> tuple[int | None, int]:
    """The page, checked; past 2**63 - 1 (more rows than any table holds) a limit is no
    limit and an offset is 2**63 - 1, so every backend answers as the other."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    if type(offset) is not int or offset < 0:
        raise ValueError(f"offset must be a non-negative int, got {offset!r}")
    return (None if limit is not None and limit > _INT64_MAX else limit), min(offset, _INT64_MAX)


Side = Literal["above", "below", "unordered", "between"]


class _OutOfRange(UnstorableValue):
    """A value no row can hold, with where it lies: above or below every storable value,
    "unordered" (NaN), or "between" them (a decimal with more places than numeric keeps)."""

    def __init__(self, model: str, field: str, value: Any, rule: str | None, side: Side) -> None:
        super().__init__(model, field, value, rule)
        self.side: Side = side

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.model, self.field, self.value, self.rule, self.side))


def _side(above: bool) -> Side:
    return "above" if above else "below"


def _to_column(column: Column, value: Any, owner: str = "a key") -> Any:
    """A row's JSON-mode value as its column stores it, by one rule on every backend. A
    non-finite float is refused (SQLite would store NaN as NULL, JSON cannot hold it); a
    field that allows it (NanFloat) gives the strings "NaN", "Infinity", "-Infinity",
    which read back. Text follows the stores' one rule: no NUL (PostgreSQL text and jsonb
    cannot hold it, SQLite would) and no lone surrogate (no UTF-8 form), refused by name
    on every backend. Integers hold 64 bits, decimals what PostgreSQL numeric holds (in
    its form: no negative zero nor positive exponent, 1E+3 is 1000), times the years 1 to
    9999 in UTC (kept in UTC, as PostgreSQL gives them back)."""
    if value is None:
        return None
    if column.type == "json":
        text = to_json_text(owner, column.name, value)
        if "\\u" in text:  # json.dumps escapes every non-ASCII character, NUL included
            for path, inner in strings(value, column.name):
                check_key(inner, f"{owner}.{path}")
        return text
    if type(value) is str:
        if column.type == "decimal":
            return _decimal(owner, column.name, value)
        if column.type == "timestamp":
            return _utc(owner, column.name, value)
        if not value.isascii() or "\x00" in value:
            check_key(value, f"{owner}.{column.name}")
        return value
    if column.type == "boolean":
        return bool(value)
    if type(value) is float and value - value != 0.0:
        refuse_non_finite(owner, column.name, value)
    elif type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
        # Refused here, the same on every backend: SQLite's driver would raise a bare
        # OverflowError, PostgreSQL a numeric-out-of-range error aborting the page.
        raise _OutOfRange(owner, column.name, value, _INT64_RULE, _side(value > 0))
    return value


_INT64_RULE = "a read-model integer column holds 64-bit integers"
_TEXT_RULE = "no stored text holds NUL (U+0000) or a lone surrogate"

NUMERIC_WHOLE_DIGITS = 131072
NUMERIC_SCALE = 16383
"""What PostgreSQL numeric holds: digits before the point, and after it."""


def _decimal(owner: str, field: str, text: str) -> str:
    """A decimal's text in the form PostgreSQL numeric gives back, checked to fit it."""
    if len(text) <= NUMERIC_SCALE and "E" not in text and "e" not in text and text[:1] != "-":
        return text  # plain positive fixed-point text that fits: already numeric's form
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text  # no decimal: the column's backend says so
    if not number.is_finite():
        return text  # refused by `Rows._encode`, by name
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if any(digits):
        if number.adjusted() >= NUMERIC_WHOLE_DIGITS:
            raise _OutOfRange(owner, field, number, _NUMERIC_RULE, _side(not sign))
        if -exponent > NUMERIC_SCALE:
            raise _OutOfRange(owner, field, number, _NUMERIC_RULE, "between")
    elif -exponent > NUMERIC_SCALE:
        exponent = -NUMERIC_SCALE  # zero with more places than numeric keeps: still zero
    if exponent > 0:
        digits, exponent = (*digits, *(0,) * exponent), 0
    if not any(digits):
        sign = 0
    # Always fixed-point, so one value has one text (1E-7 and 0.0000001 alike).
    return format(Decimal((sign, digits, exponent)), "f")


_NUMERIC_RULE = (
    f"a read-model decimal column holds what PostgreSQL numeric holds: at most "
    f"{NUMERIC_WHOLE_DIGITS} digits before the point and {NUMERIC_SCALE} after it"
)


def _utc(owner: str, field: str, text: str) -> str:
    """An aware time's ISO text in UTC, checked to be within the years 1 to 9999 there."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # no time: the column's backend says so
    offset = moment.utcoffset()
    if offset is None:
        return text  # naive: the column's backend says so, by name
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError:
        rule = "a read-model time column holds the years 1 to 9999 in UTC"
        raise _OutOfRange(owner, field, moment, rule, _side(moment.year > 1)) from None


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _from_column(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.type == "json":
        return json.loads(value) if isinstance(value, str) else value
    if column.type == "boolean":
        return bool(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


class TableBackend:
    """One physical table, in the dialect of the connection it runs on.

    Values go in and come out in the forms `_to_column` makes (JSON-mode values: text for
    decimals and times, JSON text for "json" columns); a backend may store them otherwise
    (SQLite decimals as sortable text, PostgreSQL numeric and timestamptz) as long as it
    gives back values the row type validates to the same row, and compares and orders
    them as Python compares the row's values (see `esgen.runtime._query`).
    """

    def select(self, key: Any) -> Mapping[str, Any] | None:
        raise NotImplementedError

    def select_all(self) -> Iterator[Mapping[str, Any]]:
        raise NotImplementedError

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def delete(self, keys: Sequence[Any]) -> None:
        raise NotImplementedError

    def query(
        self,
        where: Sequence[Condition[Any]],
        order: Sequence[Order[Any]],
        limit: int | None,
        offset: int,
    ) -> list[Mapping[str, Any]]:
        """Rows matching every condition (values already in stored form, see
        `stored_condition`), ordered by `order` (which ends with the key), paged."""
        raise NotImplementedError

    def count(self, where: Sequence[Condition[Any]]) -> int:
        raise NotImplementedError
