"""What only PostgreSQL has of the inspection lookups: the indexes behind them (created on
schemas of earlier releases, used by the plans), and the read-only store. Needs a server:
see postgres_env.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from esgen.runtime import (
    BackendError,
    NewEvent,
    PostgresEventStore,
    ReadOnlyStore,
    Snapshot,
    StreamAppend,
)
from esgen.runtime._postgres_schema import INDEXES, statements

from .postgres_env import connect, drop_schema, new_schema, require_postgres

DSN = require_postgres()


def _event(n: int, **extra: str) -> NewEvent:
    metadata = {"correlation_id": f"c{n % 3}", "causation_id": f"k{n % 5}", **extra}
    return NewEvent("Thing", 1, f'{{"n": {n}}}', metadata)


def _fill(store: PostgresEventStore, count: int) -> None:
    for n in range(count):
        stream_id = f"s-{n % 4}"
        store.append(stream_id, [_event(n)], store.stream_version(stream_id))


def _indexes(schema: str) -> set[str]:
    with connect(DSN) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {row[0] for row in rows} & set(INDEXES)


def _answers(store: PostgresEventStore) -> tuple[object, ...]:
    every = store.read_all(0, 1000)
    return (
        [e.position for e in store.read_correlation("c1")],
        [e.position for e in store.read_causation("k4")],
        store.find_event(every[5].event_id_text) == every[5],
        list(store.streams("s-")),
        store.position_at(every[6].recorded_at),
    )


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(DSN, name)


def _plan(
    conn: psycopg.Connection[tuple[object, ...]], query: str, params: tuple[object, ...]
) -> str:
    # Literal values, as the server sees them in a plan: a client-side cursor fills them in.
    with psycopg.ClientCursor(conn) as cursor:
        rows = cursor.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def test_the_lookups_use_their_indexes(schema: str) -> None:
    with PostgresEventStore(DSN, schema=schema) as store:
        _fill(store, 50)
    assert _indexes(schema) == set(INDEXES)
    queries = statements(schema)
    with connect(DSN) as conn:
        conn.execute("SET enable_seqscan = off")  # a small table: make the plan show the choice
        for index, query, value in (
            ("esgen_events_correlation", queries.by_correlation, "c1"),
            ("esgen_events_causation", queries.by_causation, "k1"),
            ("esgen_events_event_id", queries.by_event_id, "00000000-0000-4000-8000-000000000000"),
        ):
            plan = _plan(conn, query, (value,))
            assert index in plan, plan
            assert "Seq Scan" not in plan, plan
        plan = _plan(conn, queries.time_at, (3,))
        assert "esgen_events_pkey" in plan, plan
        plan = _plan(conn, queries.streams_page, ("", "s-", 500))
        assert "esgen_events_stream_version_key" in plan and "Seq Scan" not in plan, plan


def test_a_schema_without_the_indexes_gains_them_when_opened_writable(schema: str) -> None:
    with PostgresEventStore(DSN, schema=schema) as store:
        _fill(store, 30)
        expected = _answers(store)
    with connect(DSN) as conn:  # the schema as an earlier release left it
        for index in INDEXES:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, index)))
    with PostgresEventStore(DSN, schema=schema, read_only=True) as store:
        assert _answers(store) == expected  # by scanning
    assert _indexes(schema) == set()
    with PostgresEventStore(DSN, schema=schema) as store:
        assert _indexes(schema) == set(INDEXES)
        assert _answers(store) == expected
        _fill(store, 3)
        assert [e.position for e in store.read_correlation("c0")][-1] == 31


def test_metadata_with_nul_is_still_appended_and_found(schema: str) -> None:
    # ->> fails on any metadata holding an escaped NUL: the indexed expression must not.
    with PostgresEventStore(DSN, schema=schema) as store:
        store.append("s", [_event(0, note="\x00"), _event(3)], 0)
        store.append("t", [NewEvent("Thing", 1, "{}", {"correlation_id": "c\x00"})], 0)
        assert [e.position for e in store.read_correlation("c0")] == [1, 2]
        assert [e.position for e in store.read_correlation("c\x00")] == [3]
        assert store.read_correlation("c\ufffd") == []


def test_a_read_only_store_refuses_writes_and_writes_nothing(schema: str) -> None:
    with PostgresEventStore(DSN, schema=schema) as store:
        _fill(store, 6)
        head = store.head_position()
    with PostgresEventStore(DSN, schema=schema, read_only=True) as store:
        assert store.read_only
        with pytest.raises(ReadOnlyStore, match="read-only"):
            store.append("s-0", [_event(9)], 2)
        with pytest.raises(ReadOnlyStore, match="read-only"):
            store.append("new", [], 0)
        with pytest.raises(ReadOnlyStore, match="read-only"):
            store.append_streams([StreamAppend("s-0", [_event(9)], 2)])
        snapshot = Snapshot("s-0", 1, "f", "{}", datetime(2024, 1, 1, tzinfo=UTC))
        with pytest.raises(ReadOnlyStore, match="read-only"):
            store.save_snapshot(snapshot)
        # The server itself refuses writes in every session of the store.
        with store.transaction() as conn:
            row = conn.execute("SHOW default_transaction_read_only").fetchone()
            assert row is not None and row[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), store.transaction() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.esgen_snapshots VALUES ('x', 1, 'f', '{{}}', now())"
                ).format(sql.Identifier(schema))
            )
        assert store.head_position() == head
        assert [e.position for e in store.read_correlation("c1")] == [2, 5]
    with connect(DSN) as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.esgen_snapshots").format(sql.Identifier(schema))
        ).fetchone()
    assert count == (0,)


def test_a_fresh_schema_opened_read_only_is_an_error_and_stays_empty(schema: str) -> None:
    with pytest.raises(BackendError, match=r"holds no esgen event store.*creates nothing"):
        PostgresEventStore(DSN, schema=schema, read_only=True)
    with connect(DSN) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        assert found is None
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with pytest.raises(BackendError, match="holds no esgen event store"):
        PostgresEventStore(DSN, schema=schema, read_only=True)
    with connect(DSN) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
    assert tables == (0,)


def test_a_read_only_store_is_woken_by_appends(schema: str) -> None:
    with (
        PostgresEventStore(DSN, schema=schema) as writer,
        PostgresEventStore(DSN, schema=schema, read_only=True) as reader,
    ):
        _fill(writer, 2)
        assert reader.wait_for_events(2, 0) is False

        def append_soon() -> None:
            time.sleep(0.2)
            writer.append("s-9", [_event(7)], 0)

        thread = threading.Thread(target=append_soon)
        thread.start()
        try:
            assert reader.wait_for_events(2, 60)
        finally:
            thread.join()
        listener = reader._listener
        assert listener is not None and listener.listening
        assert reader.read_correlation("c1")[-1].stream_id == "s-9"


def test_a_role_that_may_not_create_indexes_still_opens_an_older_store(
    schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An application role with rights on the rows but not owning the table (the schema
    made by a migration role) opened stores of the previous release: it still does, with a
    warning naming the statements for the owner, and its appends still work."""
    with PostgresEventStore(DSN, schema=schema) as store:
        _fill(store, 4)
    role = f"{schema}_app"
    with connect(DSN) as conn:
        for name in INDEXES:
            conn.execute(
                sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            )
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for grant in (
            "GRANT USAGE ON SCHEMA {s} TO {r}",
            "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {s} TO {r}",
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r}",
        ):
            conn.execute(sql.SQL(grant).format(s=sql.Identifier(schema), r=sql.Identifier(role)))
    try:
        as_role = psycopg.conninfo.make_conninfo(DSN, user=role)
        with (
            caplog.at_level("WARNING", logger="esgen.runtime.postgres"),
            PostgresEventStore(as_role, schema=schema) as store,
        ):
            store.append("s-9", [_event(9)], 0)
            assert [e.stream_id for e in store.read_correlation("c0")][-1] == "s-9"
        assert "may not create them" in caplog.text and "CREATE INDEX" in caplog.text
        assert _indexes(schema) == set()
    finally:
        with connect(DSN) as conn:
            drop_schema(DSN, schema)
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
