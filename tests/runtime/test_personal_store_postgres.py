"""What only PostgreSQL has of personal data: the rows of every esgen table after a
forget, the key table added to schemas of the previous release (also by a role that may
not create it), the read-only store, transactions and concurrent forgets. (The key port
itself is tested on every backend by `BackendContract`.) Needs a server: see
postgres_env.py."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from esgen.runtime import (
    BackendError,
    Keyring,
    KeyUnavailable,
    MasterKey,
    NewEvent,
    PostgresEventStore,
    ReadOnlyStore,
)
from esgen.runtime._personal import (
    FORGOTTEN_STREAM,
    SubjectForgotten,
    open_json,
    personal_fields,
    seal_json,
)
from esgen.runtime._postgres_schema import _APPEND_LOCK_CLASS, schema_key
from esgen.runtime.testing._contract_personal import (
    Customer,
    customer,
    erased_customer,
    plaintexts,
)

from .postgres_env import connect, drop_schema, new_schema, require_postgres

DSN = require_postgres()


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(DSN, name)


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(os.urandom(32))


def _append_customer(store: PostgresEventStore, subject: str) -> None:
    spec = personal_fields(Customer)
    assert spec is not None and store.keyring is not None
    data = seal_json(store.keyring, spec, customer(subject).model_dump(mode="json"))
    stream = f"customer-{subject}"
    store.append(stream, [NewEvent("CustomerSeen", 1, json.dumps(data))], 0)


def _read_customer(store: PostgresEventStore, subject: str) -> Customer:
    (event,) = store.read_stream(f"customer-{subject}")
    return Customer.model_validate(open_json(store.keyring, json.loads(event.data)))


def _rows(schema: str) -> list[tuple[str, str, list[object]]]:
    """Every row of every table in the schema: (table, the row cast to text, its values
    as the driver gives them, bytea as bytes)."""
    found = []
    with connect(DSN) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
        ]
        assert {"esgen_events", "esgen_snapshots", "esgen_subject_keys"} <= set(tables)
        for table in tables:
            name = sql.Identifier(schema, table)
            query = sql.SQL("SELECT t::text, t.* FROM {} AS t").format(name)
            for text, *values in conn.execute(query).fetchall():
                found.append((table, text, values))
    return found


def _key_table(schema: str) -> sql.Composed:
    return sql.SQL("{}.esgen_subject_keys").format(sql.Identifier(schema))


@pytest.mark.parametrize("with_master_key", [True, False])
def test_after_forget_no_row_holds_the_key(
    schema: str, master: MasterKey, with_master_key: bool
) -> None:
    with PostgresEventStore(DSN, schema=schema, master_key=master) as store:
        for subject in ("ann", "bob"):
            _append_customer(store, subject)
        wrapped = store.subject_keys(["ann"])["ann"]
        assert wrapped is not None
        data_key = master.unwrap("ann", wrapped)
        assert any(wrapped in values for _, _, values in _rows(schema))  # the scan sees it
        if with_master_key:
            assert store.forget("ann") is True
        else:  # an operator's tool, without the master key, while the application runs
            with PostgresEventStore(DSN, schema=schema) as tool:
                assert tool.keyring is not None and not tool.keyring.has_master_key
                assert tool.forget("ann") is True
        texts = [wrapped.hex(), base64.b64encode(wrapped).decode(), data_key.hex()]
        texts += plaintexts(customer("ann"))
        for table, text, values in _rows(schema):
            for secret in (wrapped, data_key):
                assert not any(isinstance(v, bytes) and secret in v for v in values), table
            for secret_text in texts:
                assert secret_text not in text, table
    with PostgresEventStore(DSN, schema=schema, master_key=master) as store:
        assert _read_customer(store, "ann") == erased_customer("ann")
        assert _read_customer(store, "bob") == customer("bob")
        (event,) = store.read_stream(FORGOTTEN_STREAM)
        assert json.loads(event.data) == {"subject": "ann"}


def test_the_key_table_and_its_guard(schema: str) -> None:
    PostgresEventStore(DSN, schema=schema).close()
    with connect(DSN) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'esgen_subject_keys' "
            "ORDER BY ordinal_position",
            (schema,),
        ).fetchall()
        assert columns == [
            ("subject", "text", "NO"),
            ("wrapped", "bytea", "YES"),
            ("created_at", "timestamp with time zone", "NO"),
            ("forgotten_at", "timestamp with time zone", "YES"),
        ]
        for wrapped, forgotten in ((b"w", "2024-01-01Z"), (None, None)):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    sql.SQL("INSERT INTO {} VALUES ('ann', %s, now(), %s)").format(
                        _key_table(schema)
                    ),
                    (wrapped, forgotten),
                )


def test_a_schema_of_the_previous_release_gains_the_key_table(
    schema: str, master: MasterKey
) -> None:
    with PostgresEventStore(DSN, schema=schema) as store:
        store.append("s", [NewEvent("Thing", 1, "{}")], 0)
    with connect(DSN) as conn:  # the schema as the previous release left it
        conn.execute(sql.SQL("DROP TABLE {}").format(_key_table(schema)))
    with PostgresEventStore(DSN, schema=schema, read_only=True, master_key=master) as reader:
        assert reader.subject_keys(["ann"]) == {}  # creates nothing, reads no keys
        assert reader.keyring is not None and reader.keyring.forgotten("ann") is False
        with reader.transaction():  # a missing table spares the block it is read in
            assert reader.subject_keys(["ann"]) == {}
            assert reader.head_position() == 1
    with PostgresEventStore(DSN, schema=schema, master_key=master) as store:
        _append_customer(store, "ann")
        assert _read_customer(store, "ann") == customer("ann")
        assert store.forget("ann") is True
        assert _read_customer(store, "ann") == erased_customer("ann")


def test_a_role_that_may_not_create_the_key_table_still_opens_an_older_store(
    schema: str, master: MasterKey, caplog: pytest.LogCaptureFixture
) -> None:
    with PostgresEventStore(DSN, schema=schema) as store:
        store.append("s", [NewEvent("Thing", 1, "{}")], 0)
    role = f"{schema}_app"
    with connect(DSN) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(_key_table(schema)))
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
            caplog.at_level(logging.WARNING, logger="esgen.runtime.postgres"),
            PostgresEventStore(as_role, schema=schema, master_key=master) as store,
        ):
            store.append("s", [NewEvent("Thing", 1, "{}")], 1)
            assert store.subject_keys(["ann"]) == {}
            with pytest.raises(BackendError, match="no esgen_subject_keys table"):
                store.add_subject_key("ann", b"w")
            with pytest.raises(BackendError, match="no esgen_subject_keys table"):
                store.forget("ann")
            with store.transaction():  # the failure leaves a joined block usable
                with pytest.raises(BackendError, match="no esgen_subject_keys table"):
                    store.forget("ann")
                store.append("s", [NewEvent("Thing", 1, "{}")], 2)
            assert store.head_position() == 3  # no audit event without the erasure
        assert "no table for personal-data keys" in caplog.text
        assert "CREATE TABLE IF NOT EXISTS" in caplog.text
    finally:
        drop_schema(DSN, schema)
        with connect(DSN) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_read_only_store_reads_keys_and_refuses_to_write_them(
    schema: str, master: MasterKey
) -> None:
    with PostgresEventStore(DSN, schema=schema, master_key=master) as writer:
        _append_customer(writer, "ann")
        keys = writer.subject_keys(["ann"])
    with PostgresEventStore(DSN, schema=schema, read_only=True, master_key=master) as reader:
        assert reader.subject_keys(["ann"]) == keys
        assert _read_customer(reader, "ann") == customer("ann")
        with pytest.raises(ReadOnlyStore, match="read-only"):
            reader.add_subject_key("bob", b"w")
        with pytest.raises(ReadOnlyStore, match="read-only"):
            reader.forget("ann")
        assert reader.keyring is not None
        with pytest.raises(ReadOnlyStore):
            reader.keyring.seal("bob", b"x")
        head = reader.head_position()
    with PostgresEventStore(DSN, schema=schema) as writer:
        assert writer.subject_keys(["ann", "bob"]) == keys
        assert writer.head_position() == head


def test_a_missing_key_row_is_key_unavailable(schema: str, master: MasterKey) -> None:
    with PostgresEventStore(DSN, schema=schema, master_key=master) as store:
        _append_customer(store, "ann")
    with connect(DSN) as conn:
        conn.execute(sql.SQL("DELETE FROM {}").format(_key_table(schema)))
    with (
        PostgresEventStore(DSN, schema=schema, master_key=master) as store,
        pytest.raises(KeyUnavailable, match="no data key is stored for subject 'ann'"),
    ):
        _read_customer(store, "ann")


def _audit(subject: str) -> NewEvent:
    return NewEvent.from_event(SubjectForgotten(subject=subject), {"actor": "test"})


def test_a_forget_joins_the_transaction_it_is_made_in(schema: str) -> None:
    with PostgresEventStore(DSN, schema=schema) as store:
        store.add_subject_key("ann", b"wrapped")

        class Undone(Exception):
            pass

        with pytest.raises(Undone), store.transaction():
            assert store.forget_subject("ann", _audit("ann")) is True
            assert store.subject_keys(["ann"]) == {"ann": None}  # seen inside the block
            raise Undone
        assert store.subject_keys(["ann"]) == {"ann": b"wrapped"}
        assert store.head_position() == 0
        with store.transaction():
            store.append("other", [NewEvent("Thing", 1, "{}")], 0)
            assert store.forget_subject("ann", _audit("ann")) is True
        assert store.subject_keys(["ann"]) == {"ann": None}
        assert [e.stream_id for e in store.read_all()] == ["other", FORGOTTEN_STREAM]


def test_a_key_added_inside_a_block_outlives_its_rollback(schema: str, master: MasterKey) -> None:
    """The keyring keeps the key it got: had the key been rolled back with the block,
    data sealed with it afterwards would never open."""
    with PostgresEventStore(DSN, schema=schema, master_key=master) as store:
        assert store.keyring is not None
        with pytest.raises(ZeroDivisionError), store.transaction():
            store.keyring.seal("ann", b"x")
            _ = 1 / 0
        _append_customer(store, "ann")
    with PostgresEventStore(DSN, schema=schema, master_key=master) as store:
        assert _read_customer(store, "ann") == customer("ann")


def test_concurrent_forgets_of_one_subject_record_it_once(schema: str) -> None:
    stores = [PostgresEventStore(DSN, schema=schema) for _ in range(4)]
    try:
        stores[0].add_subject_key("ann", b"wrapped")
        barrier = threading.Barrier(len(stores))
        outcomes: list[bool | BaseException] = []

        def forget(store: PostgresEventStore) -> None:
            try:
                barrier.wait(timeout=60)
                outcomes.append(store.forget("ann"))
            except BaseException as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=forget, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(outcomes, key=str) == [False, False, False, True]
        assert len(stores[0].read_stream(FORGOTTEN_STREAM)) == 1
    finally:
        for store in stores:
            store.close()


def test_a_forget_waits_for_an_open_append_without_deadlock(schema: str, master: MasterKey) -> None:
    """A block that appended (holding the append lock) then makes a new key, while
    another thread forgets that subject: the forget waits for the append lock before it
    touches the key's row, so the block's key is made and both finish."""
    # Were there a deadlock, it would span two sessions of one thread, which the server
    # cannot see: a statement timeout makes it a failure instead of a hang.
    bounded = psycopg.conninfo.make_conninfo(DSN, options="-c statement_timeout=20000")
    with (
        PostgresEventStore(bounded, schema=schema, master_key=master) as store,
        PostgresEventStore(bounded, schema=schema) as other,
    ):
        assert store.keyring is not None
        appended = threading.Event()
        forgotten: list[bool | BaseException] = []

        def forget() -> None:
            appended.wait(timeout=60)
            try:
                forgotten.append(other.forget("ann"))
            except BaseException as exc:
                forgotten.append(exc)

        thread = threading.Thread(target=forget)
        thread.start()
        try:
            with store.transaction() as conn:
                store.append("s", [NewEvent("Thing", 1, "{}")], 0)
                appended.set()
                _wait_for_the_forget(conn, schema)
                sealed = store.keyring.seal("ann", b"x")
        finally:
            thread.join(timeout=60)
        assert forgotten == [True]
        assert store.subject_keys(["ann"]) == {"ann": None}
        assert Keyring(master, store).open("ann", sealed) is None


def _wait_for_the_forget(conn: psycopg.Connection[object], schema: str) -> None:
    """Until another session waits for the schema's append lock (the forget)."""
    key = schema_key(schema) & 0xFFFFFFFF  # the lock's second int, as pg_locks shows it
    for _ in range(400):
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s AND objid = %s AND objsubid = 2",
            (_APPEND_LOCK_CLASS, key),
        ).fetchone()
        if row is not None and row[0]:
            return
        threading.Event().wait(0.05)
    pytest.fail("the forget never waited for the append lock")
