"""Projection and saga progress in a `MemoryEventStore`: read models and sagas in memory.

The same port as SQLite and PostgreSQL (`ProgressStorage`), on the store's own
`transaction()`: a page's read-model rows, its checkpoint, saga state, dedupe marks and
the events its commands append commit together, or the transaction's undo log takes
them all back. What the durable stores keep in tables lives here in dicts of the store:

- checkpoints: projection name -> generation -> (position, active, layout), each inner
  dict replaced whole when it changes (a handful of generations: copying is cheapest);
- tables: physical table name (`physical_table`) -> its rows, keyed by the key's value;
- sagas: saga name -> correlation -> record; handled: (saga, event id) marks;
- inbox: (consumer, message id) -> when handled, the broker messages consumers handled.

Rows are kept as `_to_column` writes them (decimals as text in PostgreSQL numeric's
form, times as ISO text in UTC, so a row reads back as from the durable stores), beside
the values queries compare: Decimal and aware datetimes, so "1.0" equals "1.00" and
times compare as instants (`esgen.runtime._query` has the rules).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from esgen.runtime._errors import BackendError, ReadModelNotFound
from esgen.runtime._memory import MemoryEventStore, MemoryTransaction
from esgen.runtime._progress_store import (
    ProgressStorage,
    ProgressUnit,
    ReadModelAccess,
    SagaRecord,
    physical_table,
)
from esgen.runtime._projection import ProjectionNeedsRebuild
from esgen.runtime._query import Condition, Order
from esgen.runtime._readmodel import Column, Index, TableBackend, TableSpec

__all__ = ["MemoryProgressStorage", "MemoryReadModels"]


class _Checkpoint(NamedTuple):
    position: int
    active: bool
    layout: str | None


# A row: its values as stored, and the values queries compare (the same tuple when no
# column needs converting).
_Row = tuple[tuple[Any, ...], tuple[Any, ...]]


@dataclass(slots=True)
class _Table:
    spec: TableSpec
    rows: dict[Any, _Row] = field(default_factory=dict)


@dataclass(slots=True)
class _Data:
    """Everything progress keeps in one store; changed only inside its transactions."""

    checkpoints: dict[str, dict[int, _Checkpoint]] = field(default_factory=dict)
    tables: dict[str, _Table] = field(default_factory=dict)
    indexes: dict[str, tuple[Index, ...]] = field(default_factory=dict)
    sagas: dict[str, dict[str, tuple[SagaRecord, str]]] = field(default_factory=dict)
    handled: dict[tuple[str, str], bool] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    rebuilds: dict[str, tuple[int, str]] = field(default_factory=dict)
    """projection -> (generation, code) of its unfinished rebuild"""
    inbox: dict[tuple[str, str], str] = field(default_factory=dict)
    """(consumer, message id) -> when it was handled (ISO, UTC)"""


# Kept beside the store rather than in it: the store knows nothing of progress, and the
# data lives exactly as long as the store does.
_DATA: weakref.WeakKeyDictionary[MemoryEventStore, _Data] = weakref.WeakKeyDictionary()
_DATA_LOCK = threading.Lock()


def _data_of(store: MemoryEventStore) -> _Data:
    with _DATA_LOCK:
        data = _DATA.get(store)
        if data is None:
            data = _DATA[store] = _Data()
        return data


class MemoryProgressStorage(ProgressStorage):
    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store
        self._data = _data_of(store)

    @contextmanager
    def unit(self) -> Iterator[ProgressUnit]:
        with self._store.transaction() as transaction:
            yield _MemoryUnit(self._data, transaction)

    def look(self) -> AbstractContextManager[ProgressUnit]:
        # The store's lock: a runner's page in another thread is short and in memory, and
        # reading while it changes the dictionaries would not be safe.
        return self.unit()


class MemoryReadModels(ReadModelAccess):
    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store
        self._data = _data_of(store)

    @contextmanager
    def read(self, spec: TableSpec) -> Iterator[TableBackend]:
        # The store's transaction: joins the thread's own (seeing its changes), or holds
        # the lock for the read, so no commit lands half-way through it.
        with self._store.transaction():
            generations = self._data.checkpoints.get(spec.name, {})
            active = [(g, c) for g, c in generations.items() if c.active]
            table = self._data.tables.get(physical_table(spec, active[0][0])) if active else None
            if table is None:
                raise ReadModelNotFound(spec.name)
            if active[0][1].layout != spec.layout:
                raise ProjectionNeedsRebuild([spec.name])
            yield _MemoryTable(table, None)


class _MemoryUnit(ProgressUnit):
    def __init__(self, data: _Data, transaction: MemoryTransaction) -> None:
        self._data = data
        self._transaction = transaction

    # -- projections ------------------------------------------------------------------

    def generations(self, name: str) -> dict[int, tuple[int, bool]]:
        return {g: (c.position, c.active) for g, c in self._data.checkpoints.get(name, {}).items()}

    def _set_generations(self, name: str, generations: dict[int, _Checkpoint]) -> None:
        self._transaction.remember(self._data.checkpoints, name)
        if generations:
            self._data.checkpoints[name] = generations
        else:
            self._data.checkpoints.pop(name, None)

    def set_checkpoint(self, name: str, generation: int, position: int, active: bool) -> None:
        generations = dict(self._data.checkpoints.get(name, {}))
        old = generations.get(generation)
        layout = None if old is None else old.layout
        generations[generation] = _Checkpoint(position, active, layout)
        self._set_generations(name, generations)

    def layout(self, name: str, generation: int) -> str | None:
        checkpoint = self._data.checkpoints.get(name, {}).get(generation)
        return None if checkpoint is None else checkpoint.layout

    def create_table(self, spec: TableSpec, generation: int) -> None:
        _check_names(spec)
        physical = physical_table(spec, generation)
        # Afresh, dropping whatever an interrupted rebuild left, indexes included.
        self._drop(physical)
        self._transaction.remember(self._data.tables, physical)
        self._data.tables[physical] = _Table(spec)
        generations = self._data.checkpoints.get(spec.name, {})
        old = generations.get(generation)
        if old is not None:
            self._set_generations(
                spec.name, {**generations, generation: old._replace(layout=spec.layout)}
            )

    def _drop(self, physical: str) -> None:
        for mapping in (self._data.tables, self._data.indexes):
            if physical in mapping:
                self._transaction.remember(mapping, physical)
                del mapping[physical]

    def ensure_indexes(self, spec: TableSpec, generation: int) -> None:
        # Nothing to build: a query scans the rows. Recorded, so a table knows its own.
        physical = self._physical(spec, generation)
        for index in spec.indexes:
            for column in index.columns:
                if not any(c.name == column for c in spec.columns):
                    raise ValueError(
                        f"index {index.name(physical)} names {column!r}, which is not a "
                        f"column of {spec.name}"
                    )
        self._transaction.remember(self._data.indexes, physical)
        self._data.indexes[physical] = spec.indexes

    def activate(self, spec: TableSpec, generation: int) -> None:
        generations = self._data.checkpoints.get(spec.name, {})
        for other in generations:
            if other != generation:
                self._drop(physical_table(spec, other))
        kept = generations.get(generation)
        self._set_generations(
            spec.name, {} if kept is None else {generation: kept._replace(active=True)}
        )

    def table(self, spec: TableSpec, generation: int) -> TableBackend:
        return _MemoryTable(self._data.tables[self._physical(spec, generation)], self._transaction)

    def _physical(self, spec: TableSpec, generation: int) -> str:
        physical = physical_table(spec, generation)
        if physical not in self._data.tables:
            raise BackendError(f"no table {physical}: generation {generation} of {spec.name} "
                               "was never created (or was dropped)")  # fmt: skip
        return physical

    # -- sagas ------------------------------------------------------------------------

    def saga(self, saga: str, correlation: str) -> SagaRecord | None:
        found = self._data.sagas.get(saga, {}).get(correlation)
        return None if found is None else found[0]

    def save_saga(self, record: SagaRecord, updated_at: datetime) -> None:
        instances = self._data.sagas.get(record.saga)
        if instances is None:
            self._transaction.remember(self._data.sagas, record.saga)
            instances = self._data.sagas[record.saga] = {}
        old = instances.get(record.correlation)
        if old is not None:  # an instance keeps the time it started, as in the tables
            record = replace(record, started_at=old[0].started_at)
        self._transaction.remember(instances, record.correlation)
        instances[record.correlation] = (record, updated_at.isoformat())

    def due_sagas(self, saga: str, now: datetime) -> list[SagaRecord]:
        # Deadlines are compared as the tables compare them: as their ISO text in UTC.
        moment = now.isoformat()
        due = [
            record
            for record, _ in self._data.sagas.get(saga, {}).values()
            if record.status == "running" and record.deadline is not None
            and record.deadline <= moment
        ]  # fmt: skip
        due.sort(key=lambda r: (r.deadline, r.correlation))
        return due

    def mark_handled(self, saga: str, event_id: str) -> bool:
        key = (saga, event_id)
        if key in self._data.handled:
            return False
        self._transaction.remember(self._data.handled, key)
        self._data.handled[key] = True
        return True

    def saga_counts(self, saga: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record, _ in self._data.sagas.get(saga, {}).values():
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts

    def sagas_with_status(
        self, saga: str, status: str, limit: int | None = None
    ) -> list[SagaRecord]:
        found = [
            (updated_at, record)
            for record, updated_at in self._data.sagas.get(saga, {}).values()
            if record.status == status
        ]
        # Newest first, ties by correlation: what the tables' ORDER BY gives.
        found.sort(key=lambda item: item[1].correlation)
        found.sort(key=lambda item: item[0], reverse=True)
        records = [record for _, record in found]
        return records if limit is None else records[:limit]

    # -- health -----------------------------------------------------------------------

    def problem(self, name: str) -> str | None:
        return self._data.problems.get(name)

    def set_problem(self, name: str, problem: str | None) -> None:
        self._transaction.remember(self._data.problems, name)
        if problem is None:
            self._data.problems.pop(name, None)
        else:
            self._data.problems[name] = problem

    # -- consumers' inbox --------------------------------------------------------------

    def inbox_add(self, consumer: str, message_id: str, handled_at: datetime) -> bool:
        key = (consumer, message_id)
        if key in self._data.inbox:
            return False
        self._transaction.remember(self._data.inbox, key)
        self._data.inbox[key] = handled_at.isoformat()
        return True

    def inbox_has(self, consumer: str, message_id: str) -> bool:
        return (consumer, message_id) in self._data.inbox

    def inbox_stats(self, consumer: str) -> tuple[int, str | None]:
        times = [at for (name, _), at in self._data.inbox.items() if name == consumer]
        return len(times), max(times, default=None)

    # -- rebuilds ---------------------------------------------------------------------

    def rebuild_code(self, name: str, generation: int) -> str | None:
        found = self._data.rebuilds.get(name)
        return found[1] if found is not None and found[0] == generation else None

    def set_rebuild_code(self, name: str, generation: int, code: str | None) -> None:
        self._transaction.remember(self._data.rebuilds, name)
        if code is None:
            self._data.rebuilds.pop(name, None)
        else:
            self._data.rebuilds[name] = (generation, code)


def _check_names(spec: TableSpec) -> None:
    """The names the SQL backends would refuse, refused here too."""
    for name in (spec.name, *(c.name for c in spec.columns)):
        if not name.isidentifier():
            raise ValueError(f"not a valid table or column name: {name!r}")


# -- one table ---------------------------------------------------------------------------


class _NaN:
    """A float column's NaN (a NanFloat field), as PostgreSQL orders it: equal to itself,
    above every number."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __le__(self, other: object) -> bool:
        return other is self

    def __ge__(self, other: object) -> bool:
        return True


_NAN = _NaN()


def _real(value: Any) -> Any:
    # NanFloat fields store "NaN", "Infinity", "-Infinity" as text (JSON has no such
    # numbers); compared as the floats they stand for.
    if type(value) is str:
        number = float(value)
        return _NAN if math.isnan(number) else number
    if type(value) is float and math.isnan(value):
        return _NAN
    return value


def _converter(table: str, column: Column) -> Callable[[Any], Any] | None:
    """How a stored value becomes the value queries compare; None: as it is."""
    where = f"{table}.{column.name}"
    if column.type == "decimal":

        def decimal(value: Any) -> Any:
            if value is None:
                return None
            try:
                return Decimal(value)
            except (InvalidOperation, TypeError, ValueError):
                raise ValueError(f"{where} holds decimals, got {value!r}") from None

        return decimal
    if column.type == "timestamp":

        def timestamp(value: Any) -> Any:
            if value is None:
                return None
            try:
                moment = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where} holds times, got {value!r}") from None
            if moment.tzinfo is None:
                raise ValueError(
                    f"{where} holds aware times (with a UTC offset), got {value!r}: a naive "
                    "time is no instant to compare"
                )
            return moment

        return timestamp
    if column.type == "real":
        return lambda value: None if value is None else _real(value)
    return None


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    # Nulls match only is_null and ne, as None compares in Python (see _query).
    "eq": lambda value, wanted: value is not None and value == wanted,
    "ne": lambda value, wanted: value is None or value != wanted,
    "lt": lambda value, wanted: value is not None and value < wanted,
    "le": lambda value, wanted: value is not None and value <= wanted,
    "gt": lambda value, wanted: value is not None and value > wanted,
    "ge": lambda value, wanted: value is not None and value >= wanted,
    "in": lambda value, wanted: value in wanted,
    "is_null": lambda value, wanted: value is None,
    "not_null": lambda value, wanted: value is not None,
}


class _MemoryTable(TableBackend):
    """One generation's rows; writes record their undo in the unit's transaction."""

    def __init__(self, table: _Table, transaction: MemoryTransaction | None) -> None:
        spec = table.spec
        self._rows = table.rows
        self._transaction = transaction
        self._name = spec.name
        self._names = [c.name for c in spec.columns]
        self._positions = {c.name: i for i, c in enumerate(spec.columns)}
        self._key = self._positions[spec.key]
        self._converters = [_converter(spec.name, c) for c in spec.columns]
        self._convert_key = self._converters[self._key]
        self._plain = all(c is None for c in self._converters)
        self._required = [i for i, c in enumerate(spec.columns) if not c.nullable]

    def _mapping(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self._names, values, strict=True))

    def _key_of(self, stored: Any) -> Any:
        return stored if self._convert_key is None else self._convert_key(stored)

    def select(self, key: Any) -> Mapping[str, Any] | None:
        row = self._rows.get(self._key_of(key))
        return None if row is None else self._mapping(row[0])

    def select_all(self) -> Iterator[Mapping[str, Any]]:
        for key in sorted(self._rows):
            yield self._mapping(self._rows[key][0])

    def _writing(self) -> MemoryTransaction:
        if self._transaction is None:
            raise RuntimeError(f"{self._name} is read outside its projection: it is read-only")
        return self._transaction

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        transaction = self._writing()
        names = self._names
        converters = self._converters
        # Checked and converted whole before the first write: a refused row changes nothing.
        checked: list[_Row] = []
        for values in rows:
            for i in self._required:
                if values[i] is None:
                    raise BackendError(
                        f"{self._name}.{names[i]} may not be null (NOT NULL), but the row "
                        f"with {names[self._key]} = {values[self._key]!r} has no value for it"
                    )
            if self._plain:
                checked.append((values, values))
            else:
                compared = tuple(
                    v if convert is None else convert(v)
                    for v, convert in zip(values, converters, strict=True)
                )
                checked.append((values, compared))
        stored = self._rows
        key = self._key
        for row in checked:
            transaction.remember(stored, row[1][key])
            stored[row[1][key]] = row

    def delete(self, keys: Sequence[Any]) -> None:
        transaction = self._writing()
        stored = self._rows
        for key in map(self._key_of, keys):
            if key in stored:
                transaction.remember(stored, key)
                del stored[key]

    def _matching(self, where: Sequence[Condition[Any]]) -> list[tuple[Any, ...]]:
        tests = []
        for condition in where:
            i = self._positions[condition.column]
            convert = self._converters[i]
            wanted = condition.value
            if convert is not None:
                if condition.op == "in":
                    wanted = tuple(convert(v) for v in wanted)
                elif condition.op not in ("is_null", "not_null"):
                    wanted = convert(wanted)
            tests.append((i, _OPS[condition.op], wanted))
        return [
            row
            for _, row in self._rows.values()
            if all(test(row[i], wanted) for i, test, wanted in tests)
        ]

    def query(
        self,
        where: Sequence[Condition[Any]],
        order: Sequence[Order[Any]],
        limit: int | None,
        offset: int,
    ) -> list[Mapping[str, Any]]:
        found = self._matching(where)
        # One stable sort per order, the last first; None sorts above every value (after
        # them ascending, before them descending), never compared with one.
        for item in reversed(order):
            found.sort(key=_sort_key(self._positions[item.column]), reverse=item.descending)
        end = None if limit is None else offset + limit
        key = self._key
        stored = self._rows
        return [self._mapping(stored[row[key]][0]) for row in found[offset:end]]

    def count(self, where: Sequence[Condition[Any]]) -> int:
        if not where:
            return len(self._rows)
        return len(self._matching(where))


def _sort_key(i: int) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        value = row[i]
        return (True,) if value is None else (False, value)

    return key
