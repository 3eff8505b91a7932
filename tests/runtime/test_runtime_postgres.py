"""The contract suite against PostgreSQL, plus what only PostgreSQL has: the schema's own
guards, idempotent set-up, the transaction hook projections use, the commit-order lock and
LISTEN/NOTIFY. Needs a server: see postgres_env.py."""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from esgen.runtime import (
    BackendError,
    Clock,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    KeyWrapper,
    NewEvent,
    PostgresEventStore,
    Snapshot,
    StreamAppend,
)
from esgen.runtime._postgres_schema import SCHEMA_VERSION, channel_is_own, notify_channel
from esgen.runtime.testing import BackendContract

from .postgres_env import connect, drop_schema, new_schema, require_postgres

DSN = require_postgres()


def _event(n: int = 0) -> NewEvent:
    return NewEvent("Thing", 1, f'{{"n":{n}}}', {"user": "ann"})


class TestPostgresEventStore(BackendContract):
    @pytest.fixture(autouse=True)
    def _own_schemas(self) -> Iterator[None]:
        self.dsn = DSN
        self.schemas: list[str] = []
        yield
        for schema in self.schemas:
            drop_schema(self.dsn, schema)

    def _schema(self) -> str:
        self.schemas.append(new_schema())
        return self.schemas[-1]

    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return PostgresEventStore(self.dsn, schema=self._schema(), clock=clock)

    def make_keyed_store(self, tmp_path: Path, clock: Clock, master_key: KeyWrapper) -> EventStore:
        schema = self._schema()
        return PostgresEventStore(self.dsn, schema=schema, clock=clock, master_key=master_key)

    def store_factory(self, tmp_path: Path) -> functools.partial[PostgresEventStore]:
        # No store is opened here: the child processes create the schema, all at once.
        return functools.partial(
            PostgresEventStore, self.dsn, schema=self._schema(), pool_timeout=120
        )


@pytest.fixture
def dsn() -> str:
    return DSN


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(dsn, name)


@pytest.fixture
def store(dsn: str, schema: str) -> Iterator[PostgresEventStore]:
    with PostgresEventStore(dsn, schema=schema) as store:
        store.append("s", [_event(1), _event(2)], ExpectedVersion.NO_STREAM)
        yield store


def _table(schema: str, name: str = "esgen_events") -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


# -- the schema's own guards ------------------------------------------------------------


@pytest.mark.parametrize(
    "statement, verb",
    [
        ("UPDATE {t} SET data = '{{}}' WHERE stream_version = 1", "updated"),
        ("UPDATE {t} SET stream_id = 'other'", "updated"),
        ("DELETE FROM {t} WHERE stream_version = 2", "deleted"),
        ("DELETE FROM {t}", "deleted"),
        ("TRUNCATE {t}", "truncated"),
    ],
)
def test_raw_sql_cannot_change_or_delete_events(
    store: PostgresEventStore, dsn: str, schema: str, statement: str, verb: str
) -> None:
    before = store.read_stream("s")
    with connect(dsn) as raw, pytest.raises(psycopg.errors.RestrictViolation) as caught:
        raw.execute(sql.SQL(statement).format(t=_table(schema)))
    assert f"append-only: recorded events cannot be {verb}" in str(caught.value)
    assert isinstance(caught.value, psycopg.IntegrityError)
    assert store.read_stream("s") == before


def test_tables_indexes_and_constraints(store: PostgresEventStore, dsn: str, schema: str) -> None:
    with connect(dsn) as raw:
        indexes = {
            row[0]
            for row in raw.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                (schema, "esgen_events"),
            )
        }
        columns = dict(
            raw.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'esgen_events'",
                (schema,),
            ).fetchall()
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            raw.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT position + 100, stream_id, stream_version, event_type, "
                    "event_version, data, event_id, metadata, recorded_at FROM {} LIMIT 1"
                ).format(_table(schema), _table(schema))
            )
    assert any("UNIQUE" in i and "(stream_id, stream_version)" in i for i in indexes)
    assert any(i.startswith("CREATE UNIQUE INDEX esgen_events_pkey") for i in indexes)
    assert columns["data"] == columns["metadata"] == "json"
    assert columns["recorded_at"] == "timestamp with time zone"


def test_set_up_is_idempotent_and_keeps_events(dsn: str, schema: str) -> None:
    with PostgresEventStore(dsn, schema=schema) as first:
        first.append("s", [_event(1)], ExpectedVersion.NO_STREAM)
    with PostgresEventStore(dsn, schema=schema) as second:
        second.append("s", [_event(2)], 1)
        assert [r.position for r in second.read_stream("s")] == [1, 2]
    with connect(dsn) as raw:
        rows = raw.execute(
            sql.SQL("SELECT component, version FROM {}").format(_table(schema, "esgen_schema"))
        ).fetchall()
    assert rows == [("events", SCHEMA_VERSION)]


def test_many_stores_setting_up_one_new_schema_at_once(dsn: str, schema: str) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[object] = []

    def open_and_append(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            with PostgresEventStore(dsn, schema=schema) as store:
                store.append(f"s{n}", [_event(n)], ExpectedVersion.NO_STREAM)
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=open_and_append, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["ok"] * 6
    with PostgresEventStore(dsn, schema=schema) as store:
        assert store.head_position() == 6


def test_a_version_1_schema_is_upgraded_in_place(dsn: str, schema: str) -> None:
    with PostgresEventStore(dsn, schema=schema) as store:
        store.append("s", [_event(1)], ExpectedVersion.NO_STREAM)
    with connect(dsn) as raw:  # as esgen's first schema left it: no esgen_append_streams
        raw.execute(sql.SQL("UPDATE {} SET version = 1").format(_table(schema, "esgen_schema")))
        raw.execute(sql.SQL("DROP FUNCTION {}.esgen_append_streams").format(sql.Identifier(schema)))
    with PostgresEventStore(dsn, schema=schema) as store:
        store.append_streams([StreamAppend("s", [_event(2)], 1), StreamAppend("t", [_event()], 0)])
        assert [r.position for r in store.read_all()] == [1, 2, 3]
    with connect(dsn) as raw:
        rows = raw.execute(
            sql.SQL("SELECT version FROM {}").format(_table(schema, "esgen_schema"))
        ).fetchall()
    assert rows == [(SCHEMA_VERSION,)] == [(2,)]


def test_a_newer_schema_is_refused(store: PostgresEventStore, dsn: str, schema: str) -> None:
    with connect(dsn) as raw:
        raw.execute(sql.SQL("UPDATE {} SET version = 99").format(_table(schema, "esgen_schema")))
    with pytest.raises(BackendError, match=r"schema version 99.*upgrade esgen"):
        PostgresEventStore(dsn, schema=schema)


@pytest.mark.parametrize("name", ["", "has space", "1abc", "a" * 64, "pg_mine", 'x"y', "é"])
def test_unusable_schema_names_are_refused(dsn: str, name: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        PostgresEventStore(dsn, schema=name)


def test_json_is_kept_byte_for_byte_and_non_json_data_is_refused(
    store: PostgresEventStore,
) -> None:
    text = '{ "b" : 1,"a":[1.50, 2e3, "\\u00e9"] , "a": 2}'  # odd spacing, order, duplicates
    store.append("j", [NewEvent("T", 1, text)], ExpectedVersion.NO_STREAM)
    assert store.read_stream("j")[0].data == text
    head = store.head_position()
    with pytest.raises(ValueError, match="JSON text") as caught:  # as every backend says
        store.append("j", [_event(), NewEvent("T", 1, "not json")], 1)
    assert isinstance(caught.value.__cause__, psycopg.DataError)
    assert store.head_position() == head and store.stream_version("j") == 1


def test_a_snapshot_with_an_append_to_any_version_is_checked_under_the_lock(
    store: PostgresEventStore,
) -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(
        ValueError,
        match=r"^snapshot of stream 's' at version 9 does not fit an append to 's' ending at version 3$",
    ):
        store.append(
            "s", [_event(3)], ExpectedVersion.ANY, snapshot=Snapshot("s", 9, "fp", "{}", at)
        )
    assert store.stream_version("s") == 2 and store.load_snapshot("s") is None
    store.append("s", [_event(3)], ExpectedVersion.ANY, snapshot=Snapshot("s", 3, "fp", "{}", at))
    assert store.load_snapshot("s") == Snapshot("s", 3, "fp", "{}", at)


# -- connections and sessions -----------------------------------------------------------


def test_times_are_utc_whatever_the_session_settings(dsn: str, schema: str) -> None:
    options = "-c TimeZone=America/New_York -c default_transaction_isolation=serializable"
    with PostgresEventStore(make_conninfo(dsn, options=options), schema=schema) as store:
        store.append("s", [_event()], ExpectedVersion.NO_STREAM)
        with store.transaction() as conn:
            conn.execute("SET TIME ZONE 'Asia/Tokyo'")  # outlives the block
        for _ in range(3):  # whichever pooled connection serves the read
            (recorded,) = store.read_stream("s")
            offset = recorded.recorded_at.utcoffset()
            assert offset is not None and offset.total_seconds() == 0


def test_the_dsn_s_own_settings_win(dsn: str, schema: str) -> None:
    with (
        PostgresEventStore(make_conninfo(dsn, application_name="billing"), schema=schema) as store,
        store.transaction() as conn,
    ):
        row = conn.execute("SELECT current_setting('application_name')").fetchone()
    assert row == ("billing",)


def test_each_thread_appends_on_its_own_connection_without_gaps(
    store: PostgresEventStore,
) -> None:
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(20):
                store.append(f"t-{name}", [_event(i), _event(i)], 2 * i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(str(n),)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [store.stream_version(f"t-{n}") for n in range(6)] == [40] * 6
    assert [r.position for r in store.read_all()] == list(range(1, 243))


def test_repr_names_the_database_but_not_the_password(dsn: str, schema: str) -> None:
    with PostgresEventStore(make_conninfo(dsn, password="hunter2"), schema=schema) as store:
        assert "hunter2" not in repr(store)
        assert "database" in repr(store) and schema in repr(store)


def _append_in_child(store: PostgresEventStore, stream: str, results: Any) -> None:
    try:
        store.append(stream, [_event()], ExpectedVersion.NO_STREAM)
        results.put(None)
    except Exception as exc:
        results.put(repr(exc))


def test_a_forked_child_opens_connections_of_its_own(store: PostgresEventStore) -> None:
    # As in servers that open the store, then fork their workers.
    store.wait_for_events(0, timeout=0)  # the parent has a listener, too
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [
        context.Process(target=_append_in_child, args=(store, f"child-{n}", results))
        for n in range(2)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=120)
    assert outcomes == [None, None] and [c.exitcode for c in children] == [0, 0]
    store.append("s", [_event(3)], 2)  # the parent's own sessions were left alone
    assert sorted(r.stream_id for r in store.read_all(after=2)) == ["child-0", "child-1", "s"]


# -- the transaction hook ---------------------------------------------------------------


def test_transaction_commits_own_rows_and_joined_appends_together(
    store: PostgresEventStore, dsn: str, schema: str
) -> None:
    balances = _table(schema, "balances")
    with store.transaction() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, total int)").format(balances))
        conn.execute(sql.SQL("INSERT INTO {} VALUES ('s', 3)").format(balances))
        store.append("s", [_event(3)], 2)
        assert store.stream_version("s") == 3  # reads in the block see the block's writes
        with store.transaction() as inner:  # nested blocks join the outer one
            assert inner is conn
        with connect(dsn) as other:  # not visible elsewhere before the commit
            assert other.execute(
                sql.SQL("SELECT max(stream_version) FROM {}").format(_table(schema))
            ).fetchone() == (2,)
    assert store.stream_version("s") == 3
    with connect(dsn) as raw:
        assert raw.execute(sql.SQL("SELECT total FROM {}").format(balances)).fetchone() == (3,)


def test_transaction_rolls_back_everything_on_error(
    store: PostgresEventStore, dsn: str, schema: str
) -> None:
    balances = _table(schema, "balances")
    with store.transaction() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, total int)").format(balances))
    with pytest.raises(RuntimeError, match="projection failed"), store.transaction() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES ('s', 3)").format(balances))
        store.append("s", [_event(3)], 2)
        raise RuntimeError("projection failed")
    assert store.stream_version("s") == 2
    with connect(dsn) as raw:
        assert raw.execute(sql.SQL("SELECT count(*) FROM {}").format(balances)).fetchone() == (0,)
    # The rolled-back append's positions are free again: no gap.
    assert store.append("s", [_event(3)], 2).position == 3


def test_a_conflict_inside_a_transaction_undoes_only_the_append(
    store: PostgresEventStore, schema: str
) -> None:
    marks = _table(schema, "marks")
    with store.transaction() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (n int)").format(marks))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(marks))
        with pytest.raises(ConcurrencyError):
            store.append("s", [_event(3)], 1)
        with pytest.raises(ValueError):  # a failing append: its savepoint is undone
            store.append("s", [NewEvent("T", 1, "not json")], 2)
        store.append("s", [_event(3)], 2)
    assert store.stream_version("s") == 3
    with store.transaction() as conn:
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(marks)).fetchone() == (1,)


def test_several_streams_inside_a_transaction_commit_or_roll_back_with_it(
    store: PostgresEventStore,
) -> None:
    appends = [StreamAppend("s", [_event(3)], 2), StreamAppend("t", [_event(1)], 0)]
    with pytest.raises(RuntimeError, match="projection failed"), store.transaction():
        store.append_streams(appends)
        assert store.stream_version("t") == 1
        raise RuntimeError("projection failed")
    assert (store.stream_version("s"), store.stream_version("t")) == (2, 0)
    with store.transaction():
        with pytest.raises(ConcurrencyError, match="'t'"):  # undone alone: the block goes on
            store.append_streams([StreamAppend("s", [_event(3)], 2), StreamAppend("t", [], 5)])
        store.append_streams(appends)
    assert [r.position for r in store.read_all(after=2)] == [3, 4]


def test_an_open_unit_of_work_holds_back_later_appends(store: PostgresEventStore) -> None:
    # The append lock is taken once for every stream of the append, before any row: a rival
    # listing the same streams the other way round waits, never deadlocks.
    later: list[Any] = []
    started = threading.Event()

    def append_reversed() -> None:
        started.wait(timeout=60)
        later.append(
            store.append_streams(
                [
                    StreamAppend("t", [_event()], ExpectedVersion.ANY),
                    StreamAppend("s", [_event()], 3),
                ]
            )
        )

    thread = threading.Thread(target=append_reversed)
    thread.start()
    with store.transaction():
        store.append_streams([StreamAppend("s", [_event()], 2), StreamAppend("t", [_event()], 0)])
        started.set()
        thread.join(timeout=0.5)
        assert thread.is_alive() and later == []  # waiting for this block's commit
    thread.join()
    assert [(r.stream_id, r.stream_version) for r in store.read_all(after=2)] == [
        ("s", 3),
        ("t", 1),
        ("t", 2),
        ("s", 4),
    ]


def test_a_caught_error_in_a_block_rolls_it_back_loudly(
    store: PostgresEventStore, schema: str
) -> None:
    with pytest.raises(BackendError, match="rolled back"), store.transaction() as conn:
        store.append("s", [_event(3)], 2)
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table")
    assert store.stream_version("s") == 2


def test_appends_need_read_committed(store: PostgresEventStore) -> None:
    with pytest.raises(BackendError, match="READ COMMITTED"), store.transaction() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        store.append("s", [_event(3)], 2)
    assert store.stream_version("s") == 2


# -- the global order -------------------------------------------------------------------


def test_an_open_append_holds_back_later_ones_so_positions_follow_commits(
    store: PostgresEventStore,
) -> None:
    appended = threading.Event()
    later: list[Any] = []

    def append_later() -> None:
        appended.wait(timeout=60)
        later.append(store.append("later", [_event()], ExpectedVersion.NO_STREAM))

    thread = threading.Thread(target=append_later)
    thread.start()
    with store.transaction():
        first = store.append("first", [_event(), _event()], ExpectedVersion.NO_STREAM)
        appended.set()
        thread.join(timeout=0.5)
        assert thread.is_alive() and later == []  # waiting for this block's commit
    thread.join()
    assert (first.position, later[0].position) == (4, 5)
    assert [r.stream_id for r in store.read_all(after=2)] == ["first", "first", "later"]


def test_the_append_lock_is_one_per_schema(dsn: str, store: PostgresEventStore) -> None:
    other_schema = new_schema()
    try:
        with PostgresEventStore(dsn, schema=other_schema) as other, store.transaction():
            store.append("s", [_event(3)], 2)
            other.append("s", [_event(1)], ExpectedVersion.NO_STREAM)  # does not wait
            assert other.head_position() == 1
    finally:
        drop_schema(dsn, other_schema)


# -- live subscriptions -----------------------------------------------------------------


def test_a_waiter_is_woken_by_notify_not_by_polling(dsn: str, schema: str) -> None:
    with (
        PostgresEventStore(dsn, schema=schema, poll_interval=3600) as waiter,
        PostgresEventStore(dsn, schema=schema) as writer,
    ):
        writer.append("s", [_event()], ExpectedVersion.NO_STREAM)
        waiter.wait_for_events(1, timeout=0)  # starts the listener
        timer = threading.Timer(0.3, writer.append, ("t", [_event()], ExpectedVersion.NO_STREAM))
        timer.start()
        started = time.monotonic()
        try:
            woken = waiter.wait_for_events(1, timeout=600)
        finally:
            timer.join()
        # Polling would take an hour and the timeout ten minutes: only NOTIFY is this quick.
        assert woken is True and time.monotonic() - started < 300


class _CountingHeads(PostgresEventStore):
    """Counts the head reads of `wait_for_events`: each is a round trip to the server."""

    heads = 0

    def head_position(self) -> int:
        self.heads += 1
        return super().head_position()


def test_a_woken_waiter_takes_the_committed_position_from_the_notification(
    dsn: str, schema: str
) -> None:
    with (
        _CountingHeads(dsn, schema=schema, poll_interval=3600) as waiter,
        PostgresEventStore(dsn, schema=schema) as writer,
    ):
        writer.append("s", [_event()], ExpectedVersion.NO_STREAM)
        waiter.wait_for_events(1, timeout=0)  # starts the listener
        with connect(dsn) as raw:
            _wait_for_listener(raw, schema)
        for after in (1, 2, 3):
            timer = threading.Timer(
                0.2, writer.append, (f"t{after}", [_event()], ExpectedVersion.NO_STREAM)
            )
            timer.start()
            waiter.heads = 0
            try:
                assert waiter.wait_for_events(after, timeout=600) is True
            finally:
                timer.join()
            # The read on entry only: the notification said what was committed.
            assert waiter.heads == 1
            assert [r.position for r in waiter.read_all(after)] == [after + 1]


def test_on_a_shared_channel_a_notification_only_wakes(dsn: str) -> None:
    # A schema name this long has its channel cut to 63 bytes, so schemas sharing the
    # prefix share it: what a notification carries may be another store's position.
    schema = new_schema() + "_" + "x" * 30  # 54 characters; the channel needs 67
    try:
        with _CountingHeads(dsn, schema=schema, poll_interval=3600) as waiter:
            waiter.wait_for_events(0, timeout=0)
            with connect(dsn) as raw:
                _wait_for_listener(raw, schema)
                raw.execute("SELECT pg_notify(%s, '99')", (f"esgen_events_{schema}"[:63],))
            assert waiter.wait_for_events(0, timeout=1.0) is False
            assert waiter.heads >= 2  # woken, it read the head and found nothing
    finally:
        drop_schema(dsn, schema)


def test_a_position_sent_by_hand_answers_one_wait_at_most(dsn: str, schema: str) -> None:
    with (
        _CountingHeads(dsn, schema=schema, poll_interval=3600) as waiter,
        PostgresEventStore(dsn, schema=schema) as writer,
    ):
        writer.append("s", [_event()], ExpectedVersion.NO_STREAM)
        waiter.wait_for_events(1, timeout=0)
        with connect(dsn) as raw:
            _wait_for_listener(raw, schema)
            for payload in ("1000000", "\u00b2", "-5", "12a", ""):  # "²" passes str.isdigit()
                raw.execute("SELECT pg_notify(%s, %s)", (f"esgen_events_{schema}", payload))
        time.sleep(0.3)  # delivered before the waits below start
        # Nothing new: each wait reads the head and runs to its timeout.
        for _ in range(3):
            assert waiter.wait_for_events(1, timeout=0.2) is False
        # The listener lives on: an append still wakes a waiter at once.
        timer = threading.Timer(0.2, writer.append, ("t", [_event()], ExpectedVersion.NO_STREAM))
        timer.start()
        started = time.monotonic()
        try:
            assert waiter.wait_for_events(1, timeout=600) is True
        finally:
            timer.join()
        assert time.monotonic() - started < 25  # not the 30 s recheck of a dead listener


def test_a_channel_is_the_schemas_own_only_if_no_longer_name_is_cut_to_it() -> None:
    assert channel_is_own("a" * 49)
    # 13 + 50 = 63 bytes: not cut, but "a" * 50 + "_b" is cut to the same channel.
    assert notify_channel("a" * 50) == notify_channel("a" * 50 + "_b")
    assert not channel_is_own("a" * 50) and not channel_is_own("a" * 50 + "_b")


def test_without_notify_waiters_poll(dsn: str, schema: str) -> None:
    with (
        PostgresEventStore(dsn, schema=schema, notify=False, poll_interval=0.05) as waiter,
        PostgresEventStore(dsn, schema=schema, notify=False) as writer,
    ):
        timer = threading.Timer(0.2, writer.append, ("t", [_event()], ExpectedVersion.NO_STREAM))
        timer.start()
        try:
            assert waiter.wait_for_events(0, timeout=120) is True
        finally:
            timer.join()
        assert waiter.wait_for_events(1, timeout=0.1) is False


def test_a_lost_listening_connection_falls_back_to_polling_then_reconnects(
    dsn: str, schema: str
) -> None:
    with (
        PostgresEventStore(dsn, schema=schema, poll_interval=0.05) as waiter,
        PostgresEventStore(dsn, schema=schema) as writer,
    ):
        waiter.wait_for_events(0, timeout=0)
        with connect(dsn) as raw:
            listening = _wait_for_listener(raw, schema)
            raw.execute("SELECT pg_terminate_backend(%s)", (listening,))
        writer.append("s", [_event()], ExpectedVersion.NO_STREAM)
        assert waiter.wait_for_events(0, timeout=120) is True
        with connect(dsn) as raw:
            assert _wait_for_listener(raw, schema) != listening  # a new session listens
        timer = threading.Timer(0.2, writer.append, ("t", [_event()], ExpectedVersion.NO_STREAM))
        timer.start()
        try:
            assert waiter.wait_for_events(1, timeout=120) is True
        finally:
            timer.join()


def test_closing_the_store_ends_a_wait(dsn: str, schema: str) -> None:
    store = PostgresEventStore(dsn, schema=schema)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            store.wait_for_events(0, timeout=600)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    with connect(dsn) as raw:
        _wait_for_listener(raw, schema)
    store.close()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], BackendError)
    assert "closed" in str(errors[0])


def _wait_for_listener(raw: psycopg.Connection[Any], schema: str) -> int:
    """The backend pid of the session listening for the schema's appends."""
    for _ in range(600):
        row = raw.execute(
            "SELECT pid FROM pg_stat_activity WHERE query = %s AND state = 'idle'",
            (
                sql.SQL("LISTEN {}")
                .format(sql.Identifier(f"esgen_events_{schema}"[:63]))
                .as_string(),
            ),
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError(f"nobody listens for {schema}")


def test_a_closed_store_refuses_work(store: PostgresEventStore) -> None:
    store.close()
    with pytest.raises(BackendError, match="closed"):
        store.read_stream("s")
    with pytest.raises(BackendError, match="closed"):
        store.append("s", [_event()], ExpectedVersion.ANY)
    store.close()  # twice is fine
