"""What only SQLite has of the inspection lookups: the indexes behind them (the plans use
them), older files that gain them when opened writable and still answer read-only, and a
read-only store following a file another process writes to."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from esgen.runtime import NewEvent, SQLiteEventStore
from esgen.runtime import _sqlite as sqlite_backend
from esgen.runtime.testing import ManualClock

_INDEXES = ("esgen_events_correlation", "esgen_events_causation", "esgen_events_event_id")


def _event(n: int) -> NewEvent:
    return NewEvent(
        "Thing", 1, f'{{"n": {n}}}', {"correlation_id": f"c{n % 3}", "causation_id": f"k{n % 5}"}
    )


def _fill(store: SQLiteEventStore, count: int) -> None:
    for n in range(count):
        stream_id = f"s-{n % 4}"
        store.append(stream_id, [_event(n)], store.stream_version(stream_id))


def _indexes(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {row[0] for row in rows} & set(_INDEXES)


def _plan(path: Path, query: str, params: tuple[object, ...]) -> str:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(f"EXPLAIN QUERY PLAN {query}", params).fetchall()
    return " | ".join(row[3] for row in rows)


def _answers(store: SQLiteEventStore) -> tuple[object, ...]:
    """Everything the inspection methods say about a store filled by `_fill`."""
    every = store.read_all(0, 1000)
    return (
        [e.position for e in store.read_correlation("c1")],
        [e.position for e in store.read_causation("k4")],
        store.find_event(every[5].event_id_text) == every[5],
        list(store.streams("s-")),
        store.position_at(every[6].recorded_at),
    )


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "events.db"


def test_each_lookup_uses_its_index(path: Path) -> None:
    with SQLiteEventStore(path) as store:
        _fill(store, 20)
    assert _indexes(path) == set(_INDEXES)
    by = {
        "esgen_events_correlation": sqlite_backend._BY_CORRELATION,
        "esgen_events_causation": sqlite_backend._BY_CAUSATION,
        "esgen_events_event_id": sqlite_backend._BY_EVENT_ID,
    }
    for index, query in by.items():
        plan = _plan(path, query, ("x", "x"))
        assert f"USING INDEX {index} " in plan, plan
        assert "SCAN esgen_events" not in plan, plan  # (the few matches are then sorted)
    # position_at: point lookups on the primary key.
    assert "USING INTEGER PRIMARY KEY" in _plan(path, sqlite_backend._TIME_AT, (1,))
    # streams: the (stream_id, stream_version) index for the page and both times.
    page = sqlite_backend._STREAMS_PAGE.format(lower=">", upper=" AND stream_id < ?")
    plan = _plan(path, page, ("a", "b", 500))
    assert "SCAN esgen_events" not in plan, plan
    assert plan.count("sqlite_autoindex_esgen_events_1") == 3, plan


def test_an_older_file_gains_the_indexes_when_opened_writable(path: Path) -> None:
    clock = ManualClock(step=timedelta(minutes=1))
    with SQLiteEventStore(path, clock=clock) as store:
        _fill(store, 30)
        expected = _answers(store)
    with closing(sqlite3.connect(path)) as db:  # the file as the previous release left it
        for index in _INDEXES:
            db.execute(f"DROP INDEX {index}")
        db.commit()
    before = path.read_bytes()

    with SQLiteEventStore(path, read_only=True) as store:
        assert _answers(store) == expected  # by scanning
        plan = _plan(path, sqlite_backend._BY_CORRELATION, ("x", "x"))
        assert "SCAN esgen_events" in plan
    assert _indexes(path) == set()
    assert path.read_bytes() == before  # read-only wrote nothing

    with SQLiteEventStore(path) as store:
        assert _indexes(path) == set(_INDEXES)
        assert _answers(store) == expected
        _fill(store, 3)  # appends keep working with the new indexes
    with SQLiteEventStore(path, read_only=True) as store:
        assert [e.position for e in store.read_correlation("c0")][-1] == 31


def test_a_file_with_every_object_is_opened_without_a_write(path: Path) -> None:
    with SQLiteEventStore(path) as store:
        _fill(store, 5)
    with closing(sqlite3.connect(path)) as db:
        db.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with SQLiteEventStore(path, busy_timeout=0.1) as store:
            assert [e.position for e in store.read_correlation("c1")] == [2, 5]
        db.rollback()


_WRITER = """
import sys
from esgen.runtime import NewEvent, SQLiteEventStore
with SQLiteEventStore(sys.argv[1]) as store:
    for n in range(int(sys.argv[2])):
        store.append(f"w-{n % 7}", [NewEvent("Thing", 1, "{}", {"correlation_id": "w",
                     "causation_id": f"k{n}"})], store.stream_version(f"w-{n % 7}"))
"""


def test_a_read_only_store_follows_a_file_another_process_writes(path: Path) -> None:
    with SQLiteEventStore(path) as store:
        _fill(store, 4)
    count = 300
    with SQLiteEventStore(path, read_only=True) as reader:
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(count)])
        try:
            seen = 0
            deadline = time.monotonic() + 120
            while seen < count and time.monotonic() < deadline:
                found = reader.read_correlation("w")
                # What a reader sees while appends go on: a prefix of the writer's events.
                assert [e.causation_id for e in found] == [f"k{n}" for n in range(len(found))]
                assert len(found) >= seen
                seen = len(found)
                summaries = list(reader.streams("w-"))
                assert sum(s.version for s in summaries) >= seen
            assert writer.wait(timeout=120) == 0
        finally:
            writer.kill()
        assert len(reader.read_correlation("w")) == count
        assert reader.position_at(reader.read_all(count + 3, 1)[0].recorded_at) == count + 4
        last = reader.read_all(count + 3, 1)[0]
        assert reader.find_event(last.event_id_text) == last
    assert _indexes(path) == set(_INDEXES)
