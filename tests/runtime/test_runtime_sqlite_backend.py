"""The contract suite against SQLite files, plus what only SQLite has: the schema's own
guards, WAL and busy timeout, and the transaction hook projections will use."""

from __future__ import annotations

import functools
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from esgen.runtime import (
    BackendError,
    Clock,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    KeyWrapper,
    NewEvent,
    SQLiteEventStore,
    StreamAppend,
)
from esgen.runtime.testing import BackendContract


def _event(n: int = 0) -> NewEvent:
    return NewEvent("Thing", 1, f'{{"n":{n}}}', {"user": "ann"})


class TestSQLiteEventStore(BackendContract):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return SQLiteEventStore(tmp_path / "events.db", clock=clock)

    def make_keyed_store(self, tmp_path: Path, clock: Clock, master_key: KeyWrapper) -> EventStore:
        return SQLiteEventStore(tmp_path / "events.db", clock=clock, master_key=master_key)

    def store_factory(self, tmp_path: Path) -> functools.partial[SQLiteEventStore]:
        return functools.partial(SQLiteEventStore, tmp_path / "shared.db", busy_timeout=30.0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def store(path: Path) -> SQLiteEventStore:
    store = SQLiteEventStore(path)
    store.append("s", [_event(1), _event(2)], ExpectedVersion.NO_STREAM)
    return store


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE esgen_events SET data = '{}' WHERE stream_version = 1",
        "UPDATE esgen_events SET stream_id = 'other'",
        "DELETE FROM esgen_events WHERE stream_version = 2",
        "DELETE FROM esgen_events",
    ],
)
def test_raw_sql_cannot_change_or_delete_events(
    store: SQLiteEventStore, path: Path, sql: str
) -> None:
    before = [r.data for r in store.read_stream("s")]
    with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute(sql)
    assert [r.data for r in store.read_stream("s")] == before


def test_database_is_in_wal_mode_with_a_busy_timeout(store: SQLiteEventStore, path: Path) -> None:
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store.transaction() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_events_survive_reopening(store: SQLiteEventStore, path: Path) -> None:
    store.close()
    with SQLiteEventStore(path) as reopened:
        assert [r.stream_version for r in reopened.read_stream("s")] == [1, 2]
        reopened.append("s", [_event(3)], 2)
        assert reopened.head_position() == 3


def test_a_closed_store_refuses_work(store: SQLiteEventStore) -> None:
    store.close()
    with pytest.raises(BackendError, match="closed"):
        store.read_stream("s")


def test_a_file_that_is_not_a_database_is_a_backend_error(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database, just some text " * 100)
    with pytest.raises(BackendError, match="not a database") as caught:
        SQLiteEventStore(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="MemoryEventStore"):
        SQLiteEventStore(":memory:")


def test_unknown_synchronous_level_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteEventStore(path, synchronous="SOMETIMES")  # type: ignore[arg-type]


def test_a_newer_schema_is_refused(store: SQLiteEventStore, path: Path) -> None:
    store.close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE esgen_schema SET version = 99 WHERE component = 'events'")
    with pytest.raises(BackendError, match="schema version 99"):
        SQLiteEventStore(path)


def test_a_locked_database_is_a_backend_error_after_the_busy_timeout(
    store: SQLiteEventStore, path: Path
) -> None:
    impatient = SQLiteEventStore(path, busy_timeout=0.2)
    # The outer block holds the write lock.
    with store.transaction(), pytest.raises(BackendError, match="locked") as caught:
        impatient.append("s", [_event(3)], 2)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    impatient.append("s", [_event(3)], 2)  # fine once the lock is gone
    assert store.stream_version("s") == 3


def test_transaction_commits_own_rows_and_joined_appends_together(
    store: SQLiteEventStore, path: Path
) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS balances (id TEXT PRIMARY KEY, total INT)")
        conn.execute("INSERT INTO balances VALUES ('s', 3)")
        store.append("s", [_event(3)], 2)
        with store.transaction() as inner:  # nested blocks join the outer one
            assert inner is conn
        with sqlite3.connect(path, timeout=0) as other:  # not visible before the commit
            assert other.execute("SELECT max(stream_version) FROM esgen_events").fetchone() == (2,)
    assert store.stream_version("s") == 3
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT total FROM balances").fetchone() == (3,)


def test_transaction_rolls_back_everything_on_error(store: SQLiteEventStore, path: Path) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE balances (id TEXT PRIMARY KEY, total INT)")
    with pytest.raises(RuntimeError, match="projection failed"), store.transaction() as conn:
        conn.execute("INSERT INTO balances VALUES ('s', 3)")
        store.append("s", [_event(3)], 2)
        raise RuntimeError("projection failed")
    assert store.stream_version("s") == 2
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM balances").fetchone() == (0,)


def test_a_conflict_inside_a_transaction_undoes_only_the_append(store: SQLiteEventStore) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE marks (n INT)")
        conn.execute("INSERT INTO marks VALUES (1)")
        with pytest.raises(ConcurrencyError):
            store.append("s", [_event(3)], 1)
        store.append("s", [_event(3)], 2)
    assert store.stream_version("s") == 3
    with store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM marks").fetchone() == (1,)


def test_several_streams_inside_a_transaction_commit_or_roll_back_with_it(
    store: SQLiteEventStore,
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


def test_the_writer_s_time_is_stored_as_the_clock_s_is(store: SQLiteEventStore, path: Path) -> None:
    moment = datetime(2030, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    store.append("w", [NewEvent("Thing", 1, "{}", recorded_at=moment)], 0)
    with sqlite3.connect(path) as raw:
        (text,) = raw.execute(
            "SELECT recorded_at FROM esgen_events WHERE stream_id = 'w'"
        ).fetchone()
    assert text == "2030-05-01T12:00:00.000005+00:00"
    # Loads get the stored text as it is: parsing is left to whoever needs the time.
    (row,) = store.read_stream_data_timed("w")
    assert row[4] == text


def test_each_thread_uses_its_own_connection(store: SQLiteEventStore) -> None:
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(20):
                store.append(f"t-{name}", [_event(i)], i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [store.stream_version(f"t-{n}") for n in range(4)] == [20] * 4
    positions = [r.position for r in store.read_all()]
    assert positions == list(range(1, 83))


def test_times_are_stored_as_sortable_utc_text(store: SQLiteEventStore, path: Path) -> None:
    with sqlite3.connect(path) as raw:
        (text,) = raw.execute("SELECT recorded_at FROM esgen_events LIMIT 1").fetchone()
    assert len(text) == len("2024-01-01T00:00:00.000000+00:00") and text.endswith("+00:00")


def test_a_table_made_before_the_json_check_still_refuses_non_json(path: Path) -> None:
    from esgen.runtime import _sqlite

    older = _sqlite._SCHEMA[0].replace(" CHECK (json_valid(data))", "")
    assert older != _sqlite._SCHEMA[0]
    with sqlite3.connect(path) as conn:
        conn.execute(older)
    store = SQLiteEventStore(path)
    with pytest.raises(ValueError, match="JSON text"):
        store.append("s", [NewEvent("T", 1, '{"a": NaN}')], ExpectedVersion.NO_STREAM)
    assert store.head_position() == 0
    store.append("s", [NewEvent("T", 1, '{"a": 1}')], ExpectedVersion.NO_STREAM)
    store.close()


# Opens the store once `go` appears, so that all the processes open a new file together.
_OPENER = """
import os, sys, time
from esgen.runtime import ExpectedVersion, NewEvent, SQLiteEventStore
path, go, name = sys.argv[1:]
while not os.path.exists(go):
    time.sleep(0.001)
with SQLiteEventStore(path) as store:
    store.append(name, [NewEvent("Thing", 1, "{}")], ExpectedVersion.NO_STREAM)
"""


def test_processes_opening_a_new_file_together_all_get_in(tmp_path: Path) -> None:
    # Switching a new file to WAL can answer "database is locked" at once, past the busy
    # timeout, while the others switch or recover it: every opener must still get in.
    for round_ in range(3):
        database, go = tmp_path / f"new-{round_}.db", tmp_path / f"go-{round_}"
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", _OPENER, str(database), str(go), f"s{n}"],
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(6)
        ]
        time.sleep(0.5)  # let them all start and wait at the line
        go.touch()
        errors = [p.communicate(timeout=120)[1] for p in openers]
        assert [p.returncode for p in openers] == [0] * 6, errors
        with SQLiteEventStore(database) as store:
            assert store.head_position() == 6
