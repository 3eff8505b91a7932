"""Read-model queries on SQLite files: the shared cases, then what only SQLite has (the
stored forms, read-only stores, the indexes the query planner uses)."""

from __future__ import annotations

import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from esgen.runtime import (
    EventStore,
    Index,
    ProjectionRunner,
    ReadModelNotFound,
    SQLiteEventStore,
    TableSpec,
)
from esgen.runtime._progress_store import read_models
from esgen.runtime._readmodel import checked_order
from esgen.runtime._readmodel_sqlite import SQLiteTable, index_name

from .readmodel_cases import (
    ROWS,
    SPEC,
    Accounts,
    AccountsProjection,
    F,
    QueryCases,
    keys,
    python_query,
    registry,
)


def _path(store: EventStore) -> Path:
    return cast(SQLiteEventStore, store).path


class TestSQLiteQueries(QueryCases):
    def make_store(self, tmp_path: Path) -> EventStore:
        return SQLiteEventStore(tmp_path / "events.sqlite", synchronous="NORMAL")

    def reopen(self, store: EventStore, **options: Any) -> EventStore:
        return SQLiteEventStore(_path(store), **options)

    def index_name(self, spec: TableSpec, index: Index, physical: str) -> str:
        return index_name(spec, index, physical)

    def index_names(self, store: EventStore, table: str) -> set[str]:
        with sqlite3.connect(_path(store)) as conn:
            rows = conn.execute(
                "SELECT name FROM pragma_index_list(?) WHERE origin = 'c'", (table,)
            ).fetchall()
        return {name for (name,) in rows}

    def add_index_by_hand(self, store: EventStore, table: str, name: str, column: str) -> None:
        with sqlite3.connect(_path(store)) as conn:
            conn.execute(f'CREATE INDEX "{name}" ON "{table}" ("{column}")')

    def huge_decimal(self) -> Decimal:
        return Decimal("1E+5000000")


def plan(store: EventStore, sql: str, params: tuple[Any, ...] = ()) -> str:
    with sqlite3.connect(_path(store)) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(r[-1]) for r in rows)


@pytest.fixture
def filled(tmp_path: Path) -> EventStore:
    store = SQLiteEventStore(tmp_path / "events.sqlite", synchronous="NORMAL")
    QueryCases.write(store, ROWS)
    ProjectionRunner(store, registry(), [AccountsProjection()]).catch_up()
    return store


def test_any_sql_client_sees_readable_values_that_order_as_numbers(filled: EventStore) -> None:
    with sqlite3.connect(_path(filled)) as conn:
        stored = dict(conn.execute("SELECT account, balance FROM accounts").fetchall())
        opened = dict(conn.execute("SELECT account, opened FROM accounts").fetchall())
        by_balance = [a for (a,) in conn.execute("SELECT account FROM accounts ORDER BY balance")]
    assert stored["a01"].endswith(" 100.00") and stored["a04"].endswith(" -400.00")
    assert opened["a01"] == "2026-12-05T07:00:00.000000+00:00"  # 09:00+02:00, in UTC
    # Plain ORDER BY on the column: numbers in order (equal values then by their text).
    balances = [Decimal(stored[a].split(" ")[1]) for a in by_balance]
    assert balances == sorted(balances)


def test_a_read_only_store_serves_queries_without_any_lock(
    filled: EventStore, tmp_path: Path
) -> None:
    path = _path(filled)
    filled.close()
    reader = SQLiteEventStore(path, read_only=True, busy_timeout=0.05)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        # Another process holds the write lock: a read takes none, so it does not wait.
        writer.execute("BEGIN IMMEDIATE")
        accounts = Accounts(reader)
        assert keys(accounts.list(order_by=F.balance.desc())) == python_query(
            ROWS, order=[("balance", True)]
        )
        assert accounts.get("a01") == ROWS[0]
        assert accounts.count(F.vip.eq(True)) == sum(r.vip for r in ROWS)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
        reader.close()
    # Reading created nothing: the file has no other tables than before.
    with sqlite3.connect(path) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "accounts__g1" in names and not any(n.startswith("accounts__g2") for n in names)


def test_a_read_only_store_without_read_models_says_so(tmp_path: Path) -> None:
    SQLiteEventStore(tmp_path / "events.sqlite").close()
    reader = SQLiteEventStore(tmp_path / "events.sqlite", read_only=True)
    with pytest.raises(ReadModelNotFound):
        Accounts(reader).list()
    reader.close()


def test_each_call_is_one_read_transaction_on_the_threads_connection(
    filled: EventStore,
) -> None:
    """After a query, no transaction stays open (it would pin an old snapshot of the
    file, and block checkpoints); threads do not share one."""
    store = cast(SQLiteEventStore, filled)
    accounts = Accounts(store)
    accounts.list(F.owner.eq("alice"))
    assert not store._conn().in_transaction
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(accounts.count()))
    thread.start()
    thread.join()
    assert results == [len(ROWS)]


def test_declared_indexes_serve_filters_and_orders(filled: EventStore) -> None:
    by_owner = SPEC.indexes[0].name("accounts__g1")
    by_balance = SPEC.indexes[1].name("accounts__g1")
    owner_plan = plan(filled, 'SELECT * FROM accounts__g1 WHERE "owner" = ?', ("alice",))
    assert by_owner in owner_plan
    # The decimal column's index is on its sort prefix: the same expression the query
    # compares and orders on, so SQLite uses it for both.
    prefix = 'substr("balance", 1, instr("balance", \' \'))'
    assert by_balance in plan(filled, f"SELECT * FROM accounts__g1 ORDER BY {prefix} DESC")
    assert by_balance in plan(filled, f"SELECT * FROM accounts__g1 WHERE {prefix} >= ?", ("2",))
    assert "TEMP B-TREE" not in plan(filled, f"SELECT * FROM accounts__g1 ORDER BY {prefix}")


# Indexes on nullable columns: text, real, decimal.
NULLABLE_SPEC = TableSpec(
    "accounts_by_optional",
    key="account",
    columns=SPEC.columns,
    indexes=(Index(("nickname",)), Index(("score",)), Index(("limit", "owner"))),
)


class ByOptional(AccountsProjection):
    name: ClassVar[str] = NULLABLE_SPEC.name
    table: ClassVar[TableSpec] = NULLABLE_SPEC


def _query_plan(store: EventStore, where: list[Any], order: list[Any]) -> str:
    """The plan of the statement a query with these conditions and orders runs."""
    with read_models(store).read(NULLABLE_SPEC) as backend:
        assert isinstance(backend, SQLiteTable)
        sql, params = backend.query_sql(where, checked_order(NULLABLE_SPEC, order), 10, 0)
    return plan(store, sql, tuple(params))


def test_indexes_on_nullable_columns_serve_orders_and_filters(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.sqlite")
    QueryCases.write(store, ROWS)
    ProjectionRunner(store, registry(), [ByOptional()]).catch_up()
    physical = f"{NULLABLE_SPEC.name}__g1"
    names = TestSQLiteQueries().index_names(store, physical)
    by_nickname, by_score, by_limit = (
        index_name(NULLABLE_SPEC, index, physical) for index in NULLABLE_SPEC.indexes
    )
    assert names == {by_nickname, by_score, by_limit}
    for field, index in ((F.nickname, by_nickname), (F.score, by_score), (F.limit, by_limit)):
        for order in (field.asc(), field.desc()):
            found = _query_plan(store, [], [order])
            # The index gives the order; only ties (by key) are sorted, if any.
            assert index in found and "TEMP B-TREE FOR ORDER BY" not in found, (order, found)
    assert by_nickname in _query_plan(store, [F.nickname.eq("Al")], [])
    assert by_nickname in _query_plan(store, [F.nickname.in_(["Al", "Bo"])], [])
    assert by_nickname in _query_plan(store, [F.nickname.is_null()], [])
    assert by_score in _query_plan(store, [F.score.gt(1.0)], [F.score.asc()])
    assert by_score in _query_plan(store, [F.score.le(1.0)], [F.score.desc()])
    assert by_limit in _query_plan(store, [F.limit.ge(Decimal(5))], [F.limit.desc()])
    store.close()


def test_an_index_on_a_nullable_column_made_the_old_way_is_replaced_at_start(
    tmp_path: Path,
) -> None:
    """Before, an index on a nullable column covered the bare column, which the queries
    (ordering nulls last) could not use: the runner's start replaces it, no rebuild."""
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    QueryCases.write(store, ROWS)
    ProjectionRunner(store, registry(), [ByOptional()]).catch_up()
    physical = f"{NULLABLE_SPEC.name}__g1"
    old_name = NULLABLE_SPEC.indexes[0].name(physical)  # the name the old form had
    with sqlite3.connect(path) as conn:
        for name in TestSQLiteQueries().index_names(store, physical):
            if "__ix_nickname_" in name:
                conn.execute(f'DROP INDEX "{name}"')
        conn.execute(f'CREATE INDEX "{old_name}" ON "{physical}" ("nickname")')
    ProjectionRunner(store, registry(), [ByOptional()])
    names = TestSQLiteQueries().index_names(store, physical)
    assert old_name not in names
    assert len([n for n in names if "__ix_nickname_" in n]) == 1
    assert any(n in _query_plan(store, [], [F.nickname.asc()]) for n in names)
    store.close()
