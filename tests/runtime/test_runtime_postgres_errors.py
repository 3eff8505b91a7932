"""PostgreSQL failures: a server that is down, silent or misnamed gives a clear error in
bounded time, never a hang and never the password; a connection lost mid-append leaves the
whole batch or nothing; the store recovers when the server comes back.

The time bounds asserted here are minutes wide: they catch hangs, not slowness."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from esgen.runtime import (
    BackendError,
    BackendUnavailable,
    ExpectedVersion,
    NewEvent,
    PostgresEventStore,
)

from .postgres_env import Proxy, connect, drop_schema, new_schema, require_postgres

DSN = require_postgres()

HANG = 120  # seconds: far beyond any timeout configured below


def _events(count: int) -> list[NewEvent]:
    return [NewEvent("Thing", 1, f'{{"n":{n}}}', {"user": "ann"}) for n in range(count)]


@pytest.fixture
def dsn() -> str:
    return DSN


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(dsn, name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- no server, wrong server ------------------------------------------------------------


def test_a_server_that_is_down_is_named_without_the_password() -> None:
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        PostgresEventStore(f"postgresql://ann:s3cret-pw@127.0.0.1:{port}/ledger", schema="x")
    assert time.monotonic() - started < HANG
    message = str(caught.value)
    assert f"database ledger on 127.0.0.1:{port} as user ann" in message
    assert "refused" in message.lower()
    assert "s3cret-pw" not in message and "s3cret-pw" not in str(caught.value.__cause__)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


def test_a_server_that_never_answers_times_out() -> None:
    # Accepts TCP connections (the kernel does, from the backlog) and then says nothing.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="timeout") as caught:
            PostgresEventStore(f"postgresql://ann@127.0.0.1:{port}/ledger", connect_timeout=2)
        assert time.monotonic() - started < HANG
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_a_database_that_does_not_exist(dsn: str) -> None:
    with pytest.raises(BackendUnavailable, match=r"no_such_db_for_esgen.*does not exist"):
        PostgresEventStore(make_conninfo(dsn, dbname="no_such_db_for_esgen"))


def test_a_malformed_dsn_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError, match="invalid PostgreSQL DSN") as caught:
        PostgresEventStore("host=db password=s3cret-pw and then some")
    assert "s3cret-pw" not in str(caught.value) and caught.value.__cause__ is None


# -- losing the connection --------------------------------------------------------------


def _block_version(raw: psycopg.Connection[Any], schema: str, stream: str, version: int) -> None:
    """Insert, and leave uncommitted, the stream's event at `version`: an append reaching that
    version waits on the unique index for this transaction, half-way through its inserts."""
    raw.execute("BEGIN")
    raw.execute(
        sql.SQL(
            "INSERT INTO {}.esgen_events VALUES (%s, %s, %s, 'Blocker', 1, '{{}}', "
            "gen_random_uuid(), '{{}}', now())"
        ).format(sql.Identifier(schema)),
        (10**12, stream, version),
    )


def _waiting_append(raw: psycopg.Connection[Any], schema: str) -> int:
    """The backend pid of the store's append once it waits for the blocker."""
    for _ in range(1200):
        row = raw.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            (f"%{schema}%esgen_append%",),
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("the append never started waiting")


def _append_in_thread(
    store: PostgresEventStore, stream: str, count: int
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            store.append(stream, _events(count), ExpectedVersion.NO_STREAM)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_backend_killed_mid_append_writes_nothing(dsn: str, schema: str) -> None:
    with PostgresEventStore(dsn, schema=schema) as store, connect(dsn) as blocker:
        store.append("other", _events(1), ExpectedVersion.NO_STREAM)
        _block_version(blocker, schema, "big", 3000)
        thread, errors = _append_in_thread(store, "big", 5000)
        with connect(dsn) as killer:
            pid = _waiting_append(killer, schema)  # 2,999 of 5,000 rows are in by now
            killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(timeout=HANG)
        blocker.execute("ROLLBACK")
        (error,) = errors
        assert isinstance(error, BackendUnavailable)
        assert "append to stream 'big'" in str(error) and "lost the connection" in str(error)
        assert "either all 5000 event(s) were written or none" in " ".join(error.__notes__)
        assert store.stream_version("big") == 0 and store.head_position() == 1
        # The store carries on with a new connection; the lost positions are reused.
        result = store.append("big", _events(5000), ExpectedVersion.NO_STREAM)
        assert (result.stream_version, result.position) == (5000, 5001)


def test_a_connection_cut_mid_append_can_still_write_the_whole_batch(dsn: str, schema: str) -> None:
    # The client loses the connection while the server goes on (it only notices when it
    # answers, after the commit): the error says all or nothing, and here it is all.
    with (
        Proxy(dsn) as proxy,
        PostgresEventStore(proxy.dsn, schema=schema) as store,
        connect(dsn) as blocker,
    ):
        _block_version(blocker, schema, "big", 3000)
        thread, errors = _append_in_thread(store, "big", 5000)
        with connect(dsn) as watcher:
            _waiting_append(watcher, schema)
            proxy.cut()
            thread.join(timeout=HANG)
            blocker.execute("ROLLBACK")  # the server-side append can now finish
            for _ in range(1200):
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state <> 'idle'",
                    (f"%{schema}%esgen_append%",),
                ).fetchone()
                if row == (0,):
                    break
                time.sleep(0.05)
        (error,) = errors
        assert isinstance(error, BackendUnavailable)
        versions = [r.stream_version for r in store.read_stream("big")]
        assert versions == list(range(1, 5001))


def test_the_store_survives_the_server_going_away_and_coming_back(dsn: str, schema: str) -> None:
    with (
        Proxy(dsn) as proxy,
        PostgresEventStore(
            proxy.dsn, schema=schema, min_connections=2, pool_timeout=60, connect_timeout=2
        ) as store,
    ):
        store.append("s", _events(1), ExpectedVersion.NO_STREAM)
        proxy.stop()  # the server is down
        started = time.monotonic()
        messages = []
        for attempt in (store.read_all, store.read_all, lambda: store.append("s", _events(1), 1)):
            with pytest.raises(BackendUnavailable) as caught:
                attempt()
            messages.append(str(caught.value))
        assert time.monotonic() - started < HANG
        assert all(f"127.0.0.1:{proxy.port} as user" in message for message in messages)
        # Pooled connections fail as lost; then the wait for a new one is only the connect
        # timeout's, and the error says why there is none.
        assert "within 2 s" in messages[-1] and "refused" in messages[-1]
        proxy.start()  # back, on the same address
        for _ in range(HANG * 10):
            try:
                store.append("s", _events(1), 1)
                break
            except BackendUnavailable:
                time.sleep(0.1)
        assert [r.stream_version for r in store.read_all()] == [1, 2]


def test_reads_survive_the_server_dropping_idle_connections(dsn: str, schema: str) -> None:
    # A name of its own, so that only this store's sessions are ended, not those of tests
    # running in parallel against the same server.
    name = f"esgen-{schema}"
    with PostgresEventStore(
        make_conninfo(dsn, application_name=name), schema=schema, min_connections=3
    ) as store:
        store.append("s", _events(2), ExpectedVersion.NO_STREAM)
        with connect(dsn) as raw:
            for _ in range(100):  # until the pool has opened its connections
                if _sessions(raw, name) >= 3:
                    break
                time.sleep(0.05)
            raw.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        assert store.head_position() == 2  # retried once on a fresh connection
        assert store.append("s", _events(1), 2).stream_version == 3


def _sessions(raw: psycopg.Connection[Any], application_name: str) -> int:
    row = raw.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        (application_name,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_an_exhausted_pool_says_so_after_the_pool_timeout(dsn: str, schema: str) -> None:
    with PostgresEventStore(dsn, schema=schema, max_connections=1, pool_timeout=0.5) as store:
        errors: list[BaseException] = []
        with store.transaction():  # holds the only connection
            thread = threading.Thread(target=lambda: _capture(errors, store.head_position))
            thread.start()
            thread.join(timeout=HANG)
        (error,) = errors
        assert isinstance(error, BackendUnavailable)
        assert "within 0.5 s" in str(error) and "all 1 connection(s)" in str(error)
        assert store.head_position() == 0


def _capture(errors: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:
        errors.append(exc)


def test_errors_from_the_server_are_backend_errors_naming_the_database(
    dsn: str, schema: str
) -> None:
    with PostgresEventStore(dsn, schema=schema) as store:
        # NUL is refused before the server (UnstorableText); an id too large for the
        # stream index, even compressed, is refused by the server itself.
        stream_id = secrets.token_hex(6000)
        with pytest.raises(BackendError, match=r"append to stream '[0-9a-f]+' failed") as caught:
            store.append(stream_id, _events(1), ExpectedVersion.ANY)
        assert not isinstance(caught.value, BackendUnavailable)
        database = conninfo_to_dict(dsn).get("dbname")
        assert database is None or f"database {database}" in str(caught.value)


def test_a_statement_timeout_is_a_backend_error_not_an_outage(dsn: str, schema: str) -> None:
    PostgresEventStore(dsn, schema=schema).close()
    timed = make_conninfo(dsn, options="-c statement_timeout=200")
    with PostgresEventStore(timed, schema=schema) as store, connect(dsn) as blocker:
        _block_version(blocker, schema, "s", 2)
        with pytest.raises(BackendError, match="statement timeout") as caught:
            store.append("s", _events(3), ExpectedVersion.NO_STREAM)
        blocker.execute("ROLLBACK")
        assert not isinstance(caught.value, BackendUnavailable)
        assert store.stream_version("s") == 0
        assert store.append("s", _events(3), ExpectedVersion.NO_STREAM).stream_version == 3


def test_the_pool_warns_once_per_incident_not_once_per_connection(
    dsn: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Sessions ended while in use, and idle: the pool meets eight dead connections of each.
    name = f"esgen-{schema}"
    size = 8
    with PostgresEventStore(
        make_conninfo(dsn, application_name=name),
        schema=schema,
        min_connections=size,
        max_connections=size * 2,
    ) as store:
        store.append("s", _events(2), ExpectedVersion.NO_STREAM)
        holding, ended = threading.Barrier(size + 1), threading.Event()
        failures: list[BaseException] = []

        def hold_then_use() -> None:
            try:
                with store.transaction() as conn:
                    holding.wait(timeout=HANG)
                    ended.wait(timeout=HANG)
                    conn.execute("SELECT 1")
            except BackendError as exc:
                failures.append(exc)
            except psycopg.Error as exc:
                failures.append(exc)

        caplog.set_level("WARNING", logger="psycopg.pool")
        threads = [threading.Thread(target=hold_then_use) for _ in range(size)]
        for thread in threads:
            thread.start()
        holding.wait(timeout=HANG)
        with connect(dsn) as raw:
            for _ in range(100):  # until the idle ones are open too
                if _sessions(raw, name) >= size * 2 - 1:
                    break
                time.sleep(0.05)
            raw.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        ended.set()
        for thread in threads:
            thread.join(timeout=HANG)
        assert len(failures) == size  # every holder saw its session end
        for _ in range(size * 2):  # the store recovers: reads retry on fresh connections
            assert store.head_position() == 2
        assert store.append("s", _events(1), 2).stream_version == 3
    pool_warnings = [r for r in caplog.records if r.name == "psycopg.pool"]
    kinds = Counter(str(r.msg).split(":")[0] for r in pool_warnings)
    # At most one: a warning of this kind from an earlier test moments ago may have
    # opened the incident already, in this process-wide filter.
    assert all(count == 1 for count in kinds.values()), [r.getMessage() for r in pool_warnings]
