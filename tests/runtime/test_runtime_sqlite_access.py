"""Opening a SQLite store when the file is not all ours: another process holds its write
lock, the file or its file system is read-only, or a page of it is damaged. Real files and
real processes; nothing here asserts on time."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from esgen.runtime import (
    BackendError,
    ExpectedVersion,
    NewEvent,
    ReadOnlyStore,
    Snapshot,
    SQLiteEventStore,
    StoreDamaged,
)
from esgen.runtime.testing._clock import ManualClock


def _event(n: int) -> NewEvent:
    return NewEvent("Thing", 1, f'{{"n":{n},"pad":"{"x" * 40}"}}')


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        store.append("s", [_event(1), _event(2)], ExpectedVersion.NO_STREAM)
    return path


# Takes the lock named in argv[2], says so, and holds it until its stdin closes.
_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN " + sys.argv[2])
conn.execute("INSERT INTO esgen_schema (component, version) VALUES ('holder', 1)")
print("holding", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@pytest.fixture(params=["IMMEDIATE", "EXCLUSIVE"])
def lock_held(request: pytest.FixtureRequest, path: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), request.param],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "holding\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)


@pytest.mark.usefixtures("lock_held")
@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_opens_and_reads_while_another_process_holds_the_write_lock(
    path: Path, read_only: bool
) -> None:
    # A short busy timeout: set-up used to wait for the lock and fail after it.
    with SQLiteEventStore(path, busy_timeout=0.1, read_only=read_only) as store:
        assert [r.data for r in store.read_stream("s")] == [_event(1).data, _event(2).data]
        assert store.head_position() == 2
        if not read_only:
            with pytest.raises(BackendError, match="locked"):
                store.append("s", [_event(3)], 2)


def test_writes_to_a_read_only_store_are_refused_and_write_nothing(path: Path) -> None:
    before = path.read_bytes()
    with SQLiteEventStore(path, read_only=True) as store:
        assert store.read_only
        snapshot = Snapshot("s", 2, "f", "{}", ManualClock()())
        for write in (
            lambda: store.append("s", [_event(3)], 2),
            lambda: store.append("new", [], ExpectedVersion.NO_STREAM),
            lambda: store.save_snapshot(snapshot),
        ):
            with pytest.raises(ReadOnlyStore, match="opened read-only") as caught:
                write()
            assert isinstance(caught.value, PermissionError)
        with store.transaction() as conn:  # a read transaction
            assert conn.execute("SELECT count(*) FROM esgen_events").fetchone() == (2,)
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("DELETE FROM esgen_schema")
        assert store.stream_version("s") == 2
    assert path.read_bytes() == before


def test_a_read_only_store_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no SQLite database"):
        SQLiteEventStore(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(BackendError, match="no esgen_events table"):
        SQLiteEventStore(empty, read_only=True)


# Reads the store read-only and tries to append: what a reader on a read-only disk sees.
_READER = """
import sys
from esgen.runtime import ReadOnlyStore, SQLiteEventStore
with SQLiteEventStore(sys.argv[1], read_only=True) as store:
    print(*[r.stream_version for r in store.read_stream("s")], store.head_position())
    try:
        store.append("s", [], 2)
    except ReadOnlyStore:
        print("append refused")
"""


@pytest.fixture
def shared_copy(path: Path) -> Iterator[Path]:
    # pytest's tmp_path is private to root (0700): another user needs a folder it can enter.
    folder = Path(tempfile.mkdtemp(prefix="esgen-ro-"))
    try:
        folder.chmod(0o755)
        copy = folder / "events.db"
        shutil.copy(path, copy)
        yield copy
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_reading_a_read_only_file_in_a_read_only_folder(shared_copy: Path) -> None:
    # The WAL index (-shm) cannot be made next to the file: the store opens it immutable.
    shared_copy.chmod(0o444)
    shared_copy.parent.chmod(0o555)
    command = [sys.executable, "-c", _READER, str(shared_copy)]
    if os.geteuid() == 0:
        # root ignores file modes: read as an unprivileged user, for whom they hold.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop to another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 2 2", "append refused"]
    assert sorted(p.name for p in shared_copy.parent.iterdir()) == ["events.db"]


def test_reading_from_a_read_only_file_system(path: Path) -> None:
    # A read-only bind mount in a mount namespace of the reader's own (needs root, or user
    # namespaces): the real EROFS, which file modes only imitate.
    folder = str(path.parent)
    script = f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"'
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", "touch", f"{folder}/probe"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.strip()}")
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", sys.executable, "-c", _READER, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 2 2", "append refused"]


# -- a damaged file -----------------------------------------------------------------------


def _damaged_store(tmp_path: Path) -> Path:
    """A store of 2,000 events, one leaf page of the events table in the middle of it
    overwritten with random bytes (the file is checkpointed first: no -wal left)."""
    path = tmp_path / "damaged.db"
    with SQLiteEventStore(path) as store:
        for n in range(20):
            store.append(f"s{n}", [_event(i) for i in range(100)], ExpectedVersion.NO_STREAM)
    with sqlite3.connect(path) as raw:
        leaves = [
            page
            for (page,) in raw.execute(
                "SELECT pageno FROM dbstat WHERE name = 'esgen_events' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    assert len(leaves) > 10
    middle = leaves[len(leaves) // 2]
    with path.open("r+b") as file:
        file.seek((middle - 1) * page_size + 100)
        file.write(random.Random(14).randbytes(page_size - 200))
    return path


def _digest(path: Path) -> str:
    wal = path.with_name(path.name + "-wal")
    extra = wal.read_bytes() if wal.exists() else b""
    return hashlib.sha256(path.read_bytes() + extra).hexdigest()


def test_appends_to_a_file_that_fails_its_integrity_check_are_refused(tmp_path: Path) -> None:
    path = _damaged_store(tmp_path)
    before = _digest(path)
    with SQLiteEventStore(path) as store:
        for append in (
            lambda: store.append("new", [_event(0)], ExpectedVersion.NO_STREAM),
            lambda: store.append("s0", [_event(0)], ExpectedVersion.ANY),
        ):
            with pytest.raises(StoreDamaged, match="integrity check failed") as caught:
                append()
            assert str(path) in str(caught.value)
            assert isinstance(caught.value, BackendError)
        assert store.read_stream("s0")[0].stream_version == 1  # reads may still work
    assert _digest(path) == before


def test_a_damaged_page_met_by_an_operation_stops_appends(tmp_path: Path) -> None:
    path = _damaged_store(tmp_path)
    # Too large to scan at open: the damage is found by the read that meets it.
    with SQLiteEventStore(path, quick_check_limit=0) as store:
        with pytest.raises(StoreDamaged, match="malformed"):
            list(store.iter_all())
        before = _digest(path)
        with pytest.raises(StoreDamaged, match="damaged"):
            store.append("new", [_event(0)], ExpectedVersion.NO_STREAM)
    assert _digest(path) == before


@pytest.mark.parametrize("limit", [None, 0], ids=["found at open", "found by a read"])
def test_a_damaged_store_refuses_write_transactions(tmp_path: Path, limit: int | None) -> None:
    # Read-model rows, checkpoints and saga records are written through transaction().
    path = _damaged_store(tmp_path)
    options = {} if limit is None else {"quick_check_limit": limit}
    with SQLiteEventStore(path, **options) as store:
        if limit == 0:
            with pytest.raises(StoreDamaged):
                list(store.iter_all())
        before = _digest(path)
        refused = pytest.raises(StoreDamaged, match="write transaction refused")
        with refused, store.transaction() as conn:
            conn.execute("CREATE TABLE written (x)")
    assert _digest(path) == before
    with sqlite3.connect(path) as raw:
        assert raw.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'written'"
        ).fetchone() == (0,)
