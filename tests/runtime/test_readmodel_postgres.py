"""Read-model queries on PostgreSQL: the shared cases, then what only PostgreSQL has (the
column types, long names, readers and switch-overs). Needs a server: see postgres_env.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo

from esgen.runtime import (
    BackendError,
    BackendUnavailable,
    Column,
    EventStore,
    Index,
    PostgresEventStore,
    ProjectionRunner,
    ReadModelNotFound,
    TableSpec,
)
from esgen.runtime._progress_store import read_models
from esgen.runtime._readmodel_postgres import PostgresTable

from .postgres_env import connect, drop_schema, new_schema, require_postgres
from .readmodel_cases import (
    COLUMNS,
    ROWS,
    Accounts,
    AccountsProjection,
    F,
    QueryCases,
    keys,
    python_query,
    registry,
)

DSN = require_postgres()


def _schema(store: EventStore) -> str:
    return cast(PostgresEventStore, store).schema


class TestPostgresQueries(QueryCases):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        schema = new_schema()
        store = PostgresEventStore(DSN, schema=schema)
        try:
            yield store
        finally:
            store.close()
            drop_schema(DSN, schema)

    def reopen(self, store: EventStore, **options: Any) -> EventStore:
        return PostgresEventStore(DSN, schema=_schema(store), **options)

    def index_names(self, store: EventStore, table: str) -> set[str]:
        with connect(DSN) as conn:
            rows = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
                "AND indexname NOT LIKE '%%_pkey'",
                (_schema(store), table),
            ).fetchall()
        return {str(name) for (name,) in rows}

    def add_index_by_hand(self, store: EventStore, table: str, name: str, column: str) -> None:
        with connect(DSN) as conn:
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(name),
                    sql.Identifier(_schema(store), table),
                    sql.Identifier(column),
                )
            )

    def huge_decimal(self) -> Decimal:
        return Decimal("1E+200000")


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(DSN, name)


@pytest.fixture
def filled(schema: str) -> Iterator[PostgresEventStore]:
    with PostgresEventStore(DSN, schema=schema) as store:
        QueryCases.write(store, ROWS)
        ProjectionRunner(store, registry(), [AccountsProjection()]).catch_up()
        yield store


def test_columns_have_the_types_that_compare_as_python(
    filled: PostgresEventStore, schema: str
) -> None:
    with connect(DSN) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, CASE WHEN collation_name IS NULL THEN data_type "
                "ELSE data_type || ' ' || collation_name END FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'accounts__g1'",
                (schema,),
            ).fetchall()
        )
        balance = conn.execute(
            sql.SQL("SELECT balance::text FROM {} WHERE account = 'a01'").format(
                sql.Identifier(schema, "accounts")
            )
        ).fetchone()
    assert types["account"] == types["owner"] == "text C"
    assert types["balance"] == types["limit"] == "numeric"
    assert types["opened"] == "timestamp with time zone"
    assert (types["vip"], types["score"]) == ("boolean", "double precision")
    assert balance == ("100.00",)  # exact, with its scale, for any SQL client


def test_long_names_give_distinct_index_names_within_the_limit(schema: str) -> None:
    long = "a_column_whose_name_is_long_enough_to_push_an_index_name_past"
    columns = (*COLUMNS, Column(f"{long}_one", "text"), Column(f"{long}_two", "text"))
    spec = TableSpec(
        "accounts_with_a_name_that_is_rather_long_too",
        key="account",
        columns=columns,
        indexes=(
            Index((f"{long}_one",)),
            Index((f"{long}_two",)),
            Index((f"{long}_one", f"{long}_two")),
        ),
    )

    class Long(AccountsProjection):
        name: ClassVar[str] = spec.name
        table: ClassVar[TableSpec] = spec

    physical = f"{spec.name}__g1"
    names = {index.name(physical) for index in spec.indexes}
    assert len(names) == 3 and all(len(n.encode()) <= 63 for n in names)
    with PostgresEventStore(DSN, schema=schema) as store:
        ProjectionRunner(store, registry(), [Long()])
        assert TestPostgresQueries().index_names(store, physical) == names
        # Found again by name at the next start: nothing to create, nothing dropped.
        ProjectionRunner(store, registry(), [Long()])
        assert TestPostgresQueries().index_names(store, physical) == names
        Long.table = TableSpec(spec.name, spec.key, spec.columns, indexes=spec.indexes[1:])
        try:
            ProjectionRunner(store, registry(), [Long()])
        finally:
            Long.table = spec
        assert TestPostgresQueries().index_names(store, physical) == names - {
            spec.indexes[0].name(physical)
        }


def test_reading_creates_nothing_and_needs_no_write_access(schema: str) -> None:
    """A reader that may only SELECT (no CREATE, no UPDATE) reads read models."""
    with PostgresEventStore(DSN, schema=schema) as store:
        with pytest.raises(ReadModelNotFound):
            Accounts(store).get("a01")
        QueryCases.write(store, ROWS)
        ProjectionRunner(store, registry(), [AccountsProjection()]).catch_up()
    role = f"{schema}_reader"
    with connect(DSN) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL(
                "GRANT USAGE ON SCHEMA {0} TO {1}; GRANT SELECT ON ALL TABLES IN SCHEMA {0} TO {1}"
            ).format(sql.Identifier(schema), sql.Identifier(role))
        )
    try:
        reader_dsn = make_conninfo(DSN, user=role)
        with PostgresEventStore(reader_dsn, schema=schema) as reader:
            accounts = Accounts(reader)
            assert keys(accounts.list(order_by=F.balance.desc())) == python_query(
                ROWS, order=[("balance", True)]
            )
            assert accounts.get("a01") == ROWS[0]
    finally:
        with connect(DSN) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(role)))


def test_a_reader_waits_for_a_switch_under_way_then_reads_the_new_generation(
    filled: PostgresEventStore, schema: str
) -> None:
    """A switch-over that has replaced the view and dropped the old table, not yet
    committed: a reader neither fails nor reads the dropped table; it waits for the
    commit, then reads the new generation."""
    runner = ProjectionRunner(filled, registry(), [AccountsProjection(tag="v2")])
    results: list[Any] = []

    def read() -> None:
        try:
            results.append({r.generation_tag for r in Accounts(filled).list()})
        except BaseException as exc:
            results.append(exc)

    # The last step of rebuild(), by hand, with the transaction held open.
    storage = runner._storage
    with storage.unit() as unit:
        unit.set_checkpoint("accounts", 2, 0, active=False)
        unit.create_table(AccountsProjection.table, 2)
    runner._page("accounts", 2, None)
    with connect(DSN) as watcher:
        view = sql.Identifier(schema, "accounts").as_string(watcher)
        oid = watcher.execute("SELECT %s::regclass::oid", (view,)).fetchone()
        with storage.unit() as unit:
            unit.activate(AccountsProjection.table, 2)  # holds the view and the old table
            thread = threading.Thread(target=read)
            thread.start()
            # Until the reader is seen waiting for the old view's lock; the bound only
            # keeps a broken reader (one that waits elsewhere) from hanging the run.
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s"
            for _ in range(6000):
                if watcher.execute(waiting, oid).fetchone() == (1,):
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the reader never waited for the view the switch holds")
            assert results == []
    thread.join()
    assert results == [{"v2"}]


def test_read_access_translates_driver_errors(filled: PostgresEventStore, schema: str) -> None:
    access = read_models(filled)
    with connect(DSN) as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME COLUMN owner TO holder").format(
                sql.Identifier(schema, "accounts__g1")
            )
        )
    with (
        pytest.raises(BackendError, match="reading read model 'accounts'"),
        access.read(AccountsProjection.table) as backend,
    ):
        backend.query([], [], None, 0)


def test_a_long_reader_delays_the_switch_but_holds_up_no_other_reader(
    filled: PostgresEventStore, schema: str
) -> None:
    """A transaction reading the read model for long: the rebuild's switch-over gives up
    waiting for it again and again, so readers arriving meanwhile are not queued behind
    the switch (and so behind the long reader); the switch goes through once it ends."""
    runner = ProjectionRunner(filled, registry(), [AccountsProjection(tag="v2")])
    failures: list[BaseException] = []
    read_old = threading.Event()
    seen: list[set[str]] = []

    def rebuild() -> None:
        try:
            runner.rebuild("accounts")
        except BaseException as exc:
            failures.append(exc)

    def read() -> None:
        try:
            seen.append({r.generation_tag for r in Accounts(filled).list()})
        except BaseException as exc:
            failures.append(exc)
        read_old.set()

    with connect(DSN) as watcher, connect(DSN) as long_reader:
        view = sql.Identifier(schema, "accounts")
        oid = watcher.execute("SELECT %s::regclass::oid", (view.as_string(watcher),)).fetchone()
        long_reader.execute("BEGIN")
        long_reader.execute(sql.SQL("SELECT count(*) FROM {}").format(view)).fetchone()
        rebuilding = threading.Thread(target=rebuild)
        rebuilding.start()
        # Until the switch is seen waiting for the view the long reader holds; the bounds
        # only keep a broken switch or reader from hanging the run.
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s "
            "AND mode = 'AccessExclusiveLock'"
        )
        for _ in range(6000):
            if watcher.execute(waiting, oid).fetchone() == (1,):
                break
            threading.Event().wait(0.01)
        else:
            pytest.fail("the switch never waited for the long reader")
        threading.Thread(target=read).start()
        if not read_old.wait(60):
            pytest.fail("the reader was held up behind the switch")
        # The long reader still holds its transaction: the switch has not happened.
        assert long_reader.info.transaction_status == pq.TransactionStatus.INTRANS
        assert rebuilding.is_alive()
        assert failures == [] and seen == [{""}]
        # An event stored while the switch waits reaches the new generation too.
        late = ROWS[0].model_copy(update={"account": "z99"})
        QueryCases.write(filled, [late])
        long_reader.execute("ROLLBACK")
        rebuilding.join()
    assert failures == []
    rows = Accounts(filled).list()
    assert {r.generation_tag for r in rows} == {"v2"}
    assert keys(rows) == sorted([*keys(ROWS), "z99"])


def test_a_statement_the_driver_refuses_is_no_lost_connection(
    filled: PostgresEventStore,
) -> None:
    """libpq refuses a statement with too many parameters as an OperationalError without
    a SQLSTATE, as it reports a closed socket; the connection is still open, so it is a
    plain BackendError, not BackendUnavailable (which callers may retry)."""
    access = read_models(filled)
    marks = ", ".join(["%s"] * 70_000)
    with pytest.raises(BackendError) as raised, access.read(AccountsProjection.table) as backend:
        assert isinstance(backend, PostgresTable)
        backend._conn.execute(f"SELECT 1 WHERE 1 IN ({marks})", list(range(70_000)))
    assert not isinstance(raised.value, BackendUnavailable)
    assert "lost the connection" not in str(raised.value)
    assert Accounts(filled).count() == len(ROWS)
