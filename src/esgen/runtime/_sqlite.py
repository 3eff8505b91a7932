"""The SQLite backend: the embedded default, one file database, nothing to install.

Writers take the database's write lock up front (BEGIN IMMEDIATE), so the version check and
the insert see the same stream and several processes can append to one file safely; WAL mode
lets readers go on while one process writes. Global positions are assigned under that lock,
so they follow commit order with no gaps, which projections rely on.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from itertools import starmap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from esgen.runtime._errors import (
    BackendError,
    ConcurrencyError,
    EventStoreError,
    ReadOnlyStore,
    StoreDamaged,
    StreamNotFound,
)
from esgen.runtime._personal import FORGOTTEN_STREAM, Keyring, KeyWrapper, new_keys_tracked
from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    INVALID_DATA,
    EventStore,
    SnapshotStore,
    StoredData,
    TimedStoredData,
    check_expected_version,
    check_json,
    check_snapshot_fits,
    validate_append_args,
    validate_appends,
    validate_new_events,
    validate_page_args,
    validate_read_args,
    validate_snapshot,
)
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    StreamSummary,
    encode_metadata,
    to_utc,
    utc_now,
)
from esgen.runtime._text import check_stream_id, check_text, is_storable

__all__ = ["SQLiteEventStore"]

if TYPE_CHECKING:
    from esgen.runtime._ports import TransactionalStore

    def _keeps_the_projection_hook(
        store: SQLiteEventStore,
    ) -> TransactionalStore[sqlite3.Connection]:
        return store  # mypy checks the adapter still offers transaction() as projections need


SCHEMA_VERSION = 1

_CORRELATION = "json_extract(metadata, '$.correlation_id')"
_CAUSATION = "json_extract(metadata, '$.causation_id')"

# Times are stored as fixed-width ISO 8601 text in UTC ("2024-05-01T12:00:00.000000+00:00"),
# readable in the sqlite3 shell and ordered correctly by plain text comparison.
logger = logging.getLogger("esgen.runtime.sqlite")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS esgen_events (
        position       INTEGER PRIMARY KEY,
        stream_id      TEXT    NOT NULL,
        stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
        event_type     TEXT    NOT NULL,
        event_version  INTEGER NOT NULL CHECK (event_version >= 1),
        data           TEXT    NOT NULL CHECK (json_valid(data)),
        event_id       TEXT    NOT NULL,
        metadata       TEXT    NOT NULL,
        recorded_at    TEXT    NOT NULL,
        UNIQUE (stream_id, stream_version)
    )""",
    """CREATE TRIGGER IF NOT EXISTS esgen_events_no_update BEFORE UPDATE ON esgen_events
    BEGIN
        SELECT RAISE(ABORT, 'esgen_events is append-only: recorded events cannot be updated');
    END""",
    """CREATE TRIGGER IF NOT EXISTS esgen_events_no_delete BEFORE DELETE ON esgen_events
    BEGIN
        SELECT RAISE(ABORT, 'esgen_events is append-only: recorded events cannot be deleted');
    END""",
    # WITHOUT ROWID: one b-tree keyed by stream id instead of a table plus its index,
    # so the upsert that rides along with an append touches fewer pages.
    """CREATE TABLE IF NOT EXISTS esgen_snapshots (
        stream_id   TEXT    PRIMARY KEY,
        version     INTEGER NOT NULL,
        fingerprint TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        taken_at    TEXT    NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS esgen_schema (
        component TEXT    PRIMARY KEY,
        version   INTEGER NOT NULL
    )""",
    # For inspection (`esgen inspect trace`, audits): lookups by the ids in the metadata and
    # by event id. Added after the first release: set-up adds them to older files the next
    # time a writable store opens them; without them the lookups scan, and stay correct.
    # The queries below must spell each expression exactly as here for SQLite to use it.
    # Partial: events without the id (appended outside any command context) cost these
    # indexes nothing; `= ?` and `IN (...)` imply the condition, so lookups still use them.
    f"CREATE INDEX IF NOT EXISTS esgen_events_correlation ON esgen_events ({_CORRELATION}) "
    f"WHERE {_CORRELATION} IS NOT NULL",
    f"CREATE INDEX IF NOT EXISTS esgen_events_causation ON esgen_events ({_CAUSATION}) "
    f"WHERE {_CAUSATION} IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS esgen_events_event_id ON esgen_events (event_id)",
    # Personal data: each subject's data key, wrapped by the application's master key.
    # Forgetting sets `wrapped` to NULL for good (the row stays, so the subject is known as
    # forgotten rather than missing); the old bytes are zeroed (secure_delete) and the WAL
    # truncated, so no copy of the key stays in the file.
    """CREATE TABLE IF NOT EXISTS esgen_subject_keys (
        subject      TEXT PRIMARY KEY,
        wrapped      BLOB,
        created_at   TEXT NOT NULL,
        forgotten_at TEXT,
        CHECK ((wrapped IS NULL) = (forgotten_at IS NOT NULL))
    ) WITHOUT ROWID""",
)

# What set-up looks for; when all exist at this version, opening takes no lock at all.
_OBJECTS = (
    "esgen_events",
    "esgen_events_no_update",
    "esgen_events_no_delete",
    "esgen_snapshots",
    "esgen_schema",
    "esgen_events_correlation",
    "esgen_events_causation",
    "esgen_events_event_id",
    "esgen_subject_keys",
)

_FIND_OBJECTS = (
    f"SELECT name, sql FROM sqlite_master WHERE name IN ({', '.join('?' * len(_OBJECTS))})"
)

QUICK_CHECK_LIMIT = 64 * 2**20
"""Files up to this size (about 280,000 events) are scanned by `PRAGMA quick_check` when a
writable store opens them (about 0.1 s at 100,000 events)."""

_COLUMNS = (
    "position, stream_id, stream_version, event_type, event_version, "
    "data, event_id, metadata, recorded_at"
)
_INSERT = (
    "INSERT INTO esgen_events (position, stream_id, stream_version, event_type, event_version, "
    "data, event_id, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_SNAPSHOT = (
    "INSERT INTO esgen_snapshots (stream_id, version, fingerprint, state, taken_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET "
    "version = excluded.version, fingerprint = excluded.fingerprint, state = excluded.state, "
    "taken_at = excluded.taken_at WHERE excluded.version >= esgen_snapshots.version"
)
# IN (the id, the id up to a NUL): json_extract of SQLite before 3.45 ends its text at an
# escaped NUL, later ones may not; the exact match is made in Python.
_BY_CORRELATION = (
    f"SELECT {_COLUMNS} FROM esgen_events WHERE {_CORRELATION} IN (?, ?) ORDER BY position"
)
_BY_CAUSATION = (
    f"SELECT {_COLUMNS} FROM esgen_events WHERE {_CAUSATION} IN (?, ?) ORDER BY position"
)
_BY_EVENT_ID = f"SELECT {_COLUMNS} FROM esgen_events WHERE event_id IN (?, ?)"
_TIME_AT = "SELECT recorded_at FROM esgen_events WHERE position = ?"
# A page of streams: each stream's version from the (stream_id, stream_version) index, its
# first and last times from two point lookups in it. {lower} is >= on the first page (the
# prefix itself), > after it (the last stream of the page before); {upper}, with a prefix,
# the least text after every id that starts with it.
_STREAMS_PAGE = (
    "SELECT s.stream_id, s.version, f.recorded_at, l.recorded_at FROM ("
    "SELECT stream_id, max(stream_version) AS version FROM esgen_events "
    "WHERE stream_id {lower} ?{upper} GROUP BY stream_id ORDER BY stream_id LIMIT ?) AS s "
    "JOIN esgen_events AS f ON f.stream_id = s.stream_id AND f.stream_version = 1 "
    "JOIN esgen_events AS l ON l.stream_id = s.stream_id AND l.stream_version = s.version "
    "ORDER BY s.stream_id"
)
_STREAMS_PAGE_SIZE = 500
_STREAM_VERSION = "SELECT max(stream_version) FROM esgen_events WHERE stream_id = ?"
_MAX_VERSION = 2**63 - 1
_READ_STREAM_DATA = (
    "SELECT stream_version, event_type, event_version, data{} FROM esgen_events "
    "WHERE stream_id = ? AND stream_version BETWEEN ? AND ? ORDER BY stream_version"
)
_UNTIMED, _TIMED = _READ_STREAM_DATA.format(""), _READ_STREAM_DATA.format(", recorded_at")
# The stream's version, and the global head that the new positions and times follow, in
# one round trip (the head is the row with the highest position).
_STREAM_AND_HEAD = (
    "SELECT (SELECT max(stream_version) FROM esgen_events WHERE stream_id = ?), "
    "head.position, head.recorded_at FROM (SELECT 1) LEFT JOIN "
    "(SELECT position, recorded_at FROM esgen_events ORDER BY position DESC LIMIT 1) AS head"
)

_PAGE = f"SELECT {_COLUMNS} FROM esgen_events WHERE position > ? ORDER BY position LIMIT ?"
# A projection's page: the columns its handlers mostly read; the rest on first use.
_PAGE_WITHOUT_COLUMNS = (
    "SELECT position, stream_id, stream_version, event_type, event_version, data "
    "FROM esgen_events WHERE position > ? ORDER BY position LIMIT ?"
)
_PAGE_COLUMNS = (
    "SELECT position, stream_id, stream_version, event_id, metadata, recorded_at "
    "FROM esgen_events WHERE position BETWEEN ? AND ?"
)

# What _write takes: StreamAppend records, or plain tuples of the same four fields.
_Append = tuple[str, Sequence[NewEvent], int | ExpectedVersion, Snapshot | None]

# No "OFF": in WAL mode it can corrupt the file on power loss, which a store of record may not.
Synchronous = Literal["NORMAL", "FULL", "EXTRA"]


class SQLiteEventStore(EventStore, SnapshotStore):
    """Event store and snapshot store in one SQLite file.

    `synchronous="FULL"` (the default) makes every committed append survive a power cut;
    "NORMAL" is faster and still never corrupts the file in WAL mode, but may lose the last
    appends on power loss. Each thread gets its own connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        busy_timeout: float = 5.0,
        synchronous: Synchronous = "FULL",
        read_only: bool = False,
        quick_check_limit: int = QUICK_CHECK_LIMIT,
        master_key: KeyWrapper | None = None,
        key_cache_seconds: float = 60.0,
    ) -> None:
        text = os.fspath(path)
        if text == ":memory:" or text.startswith("file::memory:") or text == "":
            raise ValueError(
                "SQLiteEventStore needs a file path: an in-memory SQLite database is private "
                "to one connection; use MemoryEventStore for a store in memory"
            )
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA (got {synchronous!r})")
        self._path = Path(text)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self._read_only = read_only
        self._immutable = False  # set when a read-only file can only be opened as immutable
        self._damaged: str | None = None  # why appends are refused, once the file is damaged
        self._set_up()
        if not read_only:
            self._check_integrity(quick_check_limit)
        # Always a keyring: without a master key it still tells forgotten subjects
        # (placeholders) from the others (KeyUnavailable).
        self.keyring = Keyring(master_key, self, cache_seconds=key_cache_seconds)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- connections and transactions ---------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._read_only:
            return self._connect_read_only()
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # so close() may close every thread's connection
                cached_statements=256,
            )
            mode = _wal_mode(conn, self._busy_timeout)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open SQLite database {str(self._path)!r}: {exc}") from exc
        if mode != "wal":
            conn.close()
            raise BackendError(
                f"SQLite database {str(self._path)!r} cannot use WAL mode (journal mode is "
                f"{mode!r}); concurrent appends need a local file system"
            )
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that cannot write (`mode=ro`): no WAL switch, no set-up, no lock."""
        if not self._path.is_file():
            raise BackendError(f"no SQLite database at {str(self._path)!r} to open read-only")
        uri = self._path.resolve().as_uri() + "?mode=ro"
        try:
            if not self._immutable:
                conn = self._read_only_connection(uri)
                try:
                    conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                    return conn
                except sqlite3.OperationalError as exc:
                    conn.close()
                    if not self._only_immutable_opens(exc):
                        raise
                self._immutable = True
            return self._read_only_connection(uri + "&immutable=1")
        except sqlite3.Error as exc:
            raise BackendError(
                f"cannot open SQLite database {str(self._path)!r} read-only: {exc}"
            ) from exc

    def _read_only_connection(self, uri: str) -> sqlite3.Connection:
        return sqlite3.connect(
            uri,
            uri=True,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )

    def _only_immutable_opens(self, exc: sqlite3.OperationalError) -> bool:
        """Whether a read-only open failed only because SQLite cannot make the WAL index
        (-shm) next to the file: a read-only file system or folder, and no writer (a writer
        would have made it). Then nothing can change the file, which is what `immutable`
        tells SQLite; with a -wal file holding commits, reading without it would be wrong."""
        # CANTOPEN on a read-only file system; READONLY_CANTINIT when only modes forbid it.
        if not exc.sqlite_errorname.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
            return False
        wal = self._path.with_name(self._path.name + "-wal")
        folder = self._path.parent
        return not (wal.exists() and wal.stat().st_size) and not os.access(folder, os.W_OK)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._pid == os.getpid():
            return conn
        if self._closed:
            raise BackendError(f"the store for {str(self._path)!r} is closed")
        if self._pid != os.getpid():
            # A forked child must not touch the parent's connections (SQLite forbids it);
            # forget them without closing and open its own.
            self._pid = os.getpid()
            self._local = threading.local()
            self._connections = []
            self._connections_lock = threading.Lock()
        conn = self._connect()
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction on this thread's connection (in a
        read-only store, a read transaction: writes in it fail).

        Commits when the block ends, rolls back if it raises. Appends made inside the block
        (on this thread) join the transaction, so a projection can store its read-model
        rows, its checkpoint and even new events atomically. Nested blocks join the outer one.
        """
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        if self._damaged is not None and not self._read_only:
            # Rows, checkpoints and saga records are written here: a damaged file takes
            # none of them, as it takes no appends.
            self._refuse_writes("a write transaction")
        # Read-only: a read transaction, so the block still sees one consistent state.
        _execute(conn, "BEGIN" if self._read_only else "BEGIN IMMEDIATE", self._path)
        # A subject's new data key joins the transaction (`add_subject_key`): if it rolls
        # back, the keyring must not go on sealing with the key it cached.
        with new_keys_tracked():
            try:
                yield conn
                _execute(conn, "COMMIT", self._path)
            except BaseException:
                _rollback(conn)  # also after a failed COMMIT: never leave a transaction open
                self._local.purge_wal = False
                raise
        if getattr(self._local, "purge_wal", False):  # a forget committed in the block
            self._local.purge_wal = False
            self._purge_wal(conn)

    @contextmanager
    def save_transaction(self) -> Iterator[None]:
        """`transaction()` for one save that stores a new data key with its events (see
        `keys_stored_with`: a store with this method keeps keys in the caller's
        transaction, on its connection). When it is the outermost, an append that fails in it rolls
        all of it back, the key too, so the append takes no savepoint of its own: SQLite
        keeps a statement journal for a savepoint, which costs a small save a fifth of
        its time."""
        if self._conn().in_transaction:
            with self.transaction():
                yield
            return
        with self.transaction():
            self._local.whole_save = True
            try:
                yield
            finally:
                self._local.whole_save = False

    @contextmanager
    def read_transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one read transaction on this thread's connection: it sees one
        state of the file throughout, and takes no write lock (so it works on a store
        opened read-only, and never waits for a writer). Inside a `transaction()` block on
        this thread it joins that one, seeing its uncommitted changes. Only for reads."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        # Deferred: the first SELECT takes the snapshot, and nothing here ever writes.
        _execute(conn, "BEGIN", self._path)
        try:
            yield conn
        finally:
            _rollback(conn)  # nothing to commit: ending the read releases the snapshot

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _set_up(self) -> None:
        """Find the tables at this version, or create them. Looking takes no lock, so a
        store can be opened (to read, or to wait its turn to write) while another process
        holds the write lock; the lock is taken only to create or complete the schema."""
        try:
            found = self._schema_found(self._conn())
        except sqlite3.Error as exc:
            raise self._failed(
                f"cannot read the event store schema of {str(self._path)!r}", exc
            ) from exc
        if found is None or not found[2]:
            if self._read_only:
                if found is None:
                    raise BackendError(
                        f"SQLite database {str(self._path)!r} holds no esgen event store "
                        "(no esgen_events table), and a read-only store cannot create one"
                    )
                # Read-only on a file made by an older release (no inspection indexes):
                # everything still reads, the inspection lookups scan.
            elif found is None or found[0] is None or found[0] <= SCHEMA_VERSION:
                found = self._create_schema()
        version, table_sql, _ = found
        if version is not None and version > SCHEMA_VERSION:
            raise BackendError(
                f"SQLite database {str(self._path)!r} has event store schema version {version}; "
                f"this esgen understands up to version {SCHEMA_VERSION}: upgrade esgen"
            )
        # A table made before the JSON check (which SQLite cannot add to a table) gets the
        # same check here, in Python.
        self._check_json_here = "json_valid" not in table_sql

    @staticmethod
    def _schema_found(conn: sqlite3.Connection) -> tuple[int | None, str, bool] | None:
        """(schema version or None, the events table's SQL, whether every object exists),
        or None without an events table."""
        objects = dict(conn.execute(_FIND_OBJECTS, _OBJECTS).fetchall())
        if "esgen_events" not in objects:
            return None
        version = None
        if "esgen_schema" in objects:
            row = conn.execute(
                "SELECT version FROM esgen_schema WHERE component = 'events'"
            ).fetchone()
            version = None if row is None else row[0]
        complete = len(objects) == len(_OBJECTS) and version is not None
        return version, objects["esgen_events"], complete

    def _create_schema(self) -> tuple[int | None, str, bool]:
        # Statement by statement: executescript() would commit the transaction first.
        with self.transaction() as conn:
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                row = conn.execute(
                    "SELECT version FROM esgen_schema WHERE component = 'events'"
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO esgen_schema (component, version) VALUES ('events', ?)",
                        (SCHEMA_VERSION,),
                    )
                table = conn.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'esgen_events'"
                ).fetchone()
            except sqlite3.Error as exc:
                raise BackendError(f"cannot create the event store schema: {exc}") from exc
        return (SCHEMA_VERSION if row is None else row[0]), table[0], True

    def _check_integrity(self, limit: int) -> None:
        """Refuse appends to a damaged file from the start: SQLite finds a damaged page only
        when an operation reads it, and an append reads none but the last pages, so it
        would go on writing to a file whose older events can no longer be read.
        `PRAGMA quick_check` reads every page (about 1 s per million events), so files
        larger than `limit` bytes are not scanned; damage in them is still found, and
        appends refused from then on, when any operation meets it."""
        if limit <= 0 or self._path.stat().st_size > limit:
            return
        try:
            first = self._conn().execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._failed(f"checking {str(self._path)!r}", exc) from exc
        if first != "ok":
            self._damaged = f"its integrity check failed when it was opened: {first}"

    def _failed(self, what: str, exc: sqlite3.Error) -> EventStoreError:
        """The runtime's error for a driver error; a damaged file also stops appends."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_CORRUPT") or "malformed" in str(exc):
            if self._damaged is None:
                self._damaged = f"an operation found it damaged: {exc}"
            return StoreDamaged(f"{what}: {exc}; {self._damage_note()}")
        if name.startswith("SQLITE_READONLY"):
            return ReadOnlyStore(f"{what}: {exc} ({str(self._path)!r} cannot be written)")
        return BackendError(f"{what}: {exc}")

    def _damage_note(self) -> str:
        return (
            f"the SQLite file {str(self._path)!r} is damaged, so writes to it are refused "
            "(restore it from a backup; reads may still work)"
        )

    def _refuse_writes(self, what: str) -> None:
        if self._read_only:
            raise ReadOnlyStore(f"{what}: the store for {str(self._path)!r} was opened read-only")
        if self._damaged is not None:
            raise StoreDamaged(f"{what} refused: {self._damage_note()}; {self._damaged}")

    # -- EventStore ---------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        # append_streams with one stream, without its checks across streams and with a
        # plain tuple for the StreamAppend: the hot path of every save.
        validate_append_args(stream_id, expected_version)
        validate_new_events(events)
        if snapshot is not None:
            validate_snapshot(snapshot)
        if self._read_only or self._damaged is not None:
            self._refuse_writes(f"append to stream {stream_id!r}")
        return self._write(((stream_id, events, expected_version, snapshot),))[0]

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        validate_appends(appends)
        if not appends:
            return []
        if self._read_only or self._damaged is not None:
            self._refuse_writes(f"append to {_streams(appends)}")
        return self._write(appends)

    def _write(self, appends: Sequence[_Append]) -> list[AppendResult]:
        conn = self._conn()
        joined = conn.in_transaction
        if joined and getattr(self._local, "whole_save", False):
            # A save's own transaction (`save_transaction`): a failure here undoes it all.
            try:
                return self._append_locked(conn, appends)
            except sqlite3.Error as exc:
                raise self._append_failed(appends, exc) from exc
        try:
            # Inside the caller's transaction a savepoint undoes a failed append alone.
            conn.execute("SAVEPOINT esgen_append" if joined else "BEGIN IMMEDIATE")
            try:
                results = self._append_locked(conn, appends)
                conn.execute("RELEASE esgen_append" if joined else "COMMIT")
            except BaseException:
                if joined:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK TO esgen_append")
                        conn.execute("RELEASE esgen_append")
                else:
                    _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise self._append_failed(appends, exc) from exc
        return results

    def _append_failed(self, appends: Sequence[_Append], exc: sqlite3.Error) -> Exception:
        if isinstance(exc, sqlite3.IntegrityError):
            if "json_valid" in str(exc):
                return ValueError(INVALID_DATA)
            if "UNIQUE" in str(exc):
                # Only reachable if something bypassed the write lock; same meaning, same
                # error, for the stream that moved.
                for stream_id, _, expected_version, _ in appends:
                    actual = self.stream_version(stream_id)
                    try:
                        check_expected_version(stream_id, expected_version, actual)
                    except ConcurrencyError as conflict:
                        return conflict
            return self._failed(f"append to {_streams(appends)} refused", exc)
        return self._failed(f"append to {_streams(appends)} failed", exc)

    def _append_locked(
        self, conn: sqlite3.Connection, appends: Sequence[_Append]
    ) -> list[AppendResult]:
        # Rows are built in memory and inserted at the end, so a conflict (or bad input) on
        # any stream raises before anything is written.
        version, position, last_time = conn.execute(_STREAM_AND_HEAD, (appends[0][0],)).fetchone()
        version = version or 0
        position = position or 0
        # Times are kept as the stored text: fixed-width UTC ISO 8601 compares as the times
        # do, so the clamp needs no parsing ("" is before any time).
        last_time = last_time or ""
        clock_time = ""
        check_json_here = self._check_json_here
        rows = []
        results = []
        snapshots = []
        last_metadata: object = None
        metadata_json = ""
        for stream_id, events, expected_version, snapshot in appends:
            if version is None:  # every stream after the first
                version = conn.execute(_STREAM_VERSION, (stream_id,)).fetchone()[0] or 0
            check_expected_version(stream_id, expected_version, version)
            if not events:
                results.append(AppendResult(stream_id, version, None))
                version = None
                continue
            if snapshot is not None:
                check_snapshot_fits(snapshot, stream_id, version + len(events))
                snapshots.append(_snapshot_row(snapshot))
            for event in events:
                if event.recorded_at is not None:
                    break
            else:
                event = None
            own_times: list[str] | None = None
            if event is None:
                # The usual case, and the hot path of every save: one time for all.
                if not clock_time:
                    clock_time = self._clock_time()
                if clock_time < last_time:
                    clock_time = last_time  # a clock step back must not make time run backwards
                last_time = clock_time
            else:
                if not clock_time and None in [e.recorded_at for e in events]:
                    clock_time = self._clock_time()
                own_times = _recorded_times(events, clock_time, last_time)
                last_time = own_times[-1]
                first_version = version + 1
            recorded_at = clock_time
            for event in events:
                if check_json_here:
                    check_json(event.data)
                if event.metadata is not last_metadata:
                    # One append's events usually share one metadata mapping: encode it once.
                    last_metadata = event.metadata
                    metadata_json = encode_metadata(event.metadata)
                position += 1
                version += 1
                if own_times is not None:
                    recorded_at = own_times[version - first_version]
                rows.append(
                    (
                        position,
                        stream_id,
                        version,
                        event.event_type,
                        event.event_version,
                        event.data,
                        str(event.event_id),
                        metadata_json,
                        recorded_at,
                    )
                )
            results.append(AppendResult(stream_id, version, position))
            version = None
        if rows:
            conn.executemany(_INSERT, rows)
            for row in snapshots:
                conn.execute(_UPSERT_SNAPSHOT, row)
        return results

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        until: datetime | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        check_stream_id(stream_id)
        validate_read_args(from_version, to_version, limit)
        sql = [f"SELECT {_COLUMNS} FROM esgen_events WHERE stream_id = ?"]
        params: list[object] = [stream_id]
        if from_version > 1:
            sql.append("AND stream_version >= ?")
            params.append(from_version)
        if to_version is not None:
            sql.append("AND stream_version <= ?")
            params.append(to_version)
        if until is not None:
            sql.append("AND recorded_at <= ?")
            params.append(to_utc(until, "until").isoformat(timespec="microseconds"))
        sql.append("ORDER BY stream_version DESC" if backwards else "ORDER BY stream_version")
        if limit is not None:
            sql.append("LIMIT ?")
            params.append(limit)
        conn = self._conn()
        try:
            rows = conn.execute(" ".join(sql), params).fetchall()
            # An empty range of an existing stream is fine; a stream with no events is not.
            if not rows and (
                (from_version == 1 and until is None) or not self._stream_exists(conn, stream_id)
            ):
                raise StreamNotFound(stream_id)
        except sqlite3.Error as exc:
            raise self._failed(f"reading stream {stream_id!r} failed", exc) from exc
        return list(starmap(RecordedEvent, rows))

    def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        return self._stream_data(stream_id, from_version, to_version, _UNTIMED)

    def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        # recorded_at as stored: parsing it here would cost every load, for a field an
        # apply method may not read.
        return self._stream_data(stream_id, from_version, to_version, _TIMED)

    def _stream_data(
        self, stream_id: str, from_version: int, to_version: int | None, query: str
    ) -> list[Any]:
        check_stream_id(stream_id)
        validate_read_args(from_version, to_version, None)
        conn = self._conn()
        try:
            rows: list[Any] = conn.execute(
                query,
                (stream_id, from_version, _MAX_VERSION if to_version is None else to_version),
            ).fetchall()
            if not rows and (from_version == 1 or not self._stream_exists(conn, stream_id)):
                raise StreamNotFound(stream_id)
        except sqlite3.Error as exc:
            raise self._failed(f"reading stream {stream_id!r} failed", exc) from exc
        return rows

    def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        return list(starmap(RecordedEvent, self._page_rows(_PAGE, after, limit)))

    def _read_page(self, after: int, limit: int) -> list[RecordedEvent]:
        rows = self._page_rows(_PAGE_WITHOUT_COLUMNS, after, limit)
        return RecordedEvent._page_without_columns(rows, self._page_columns)

    def _page_rows(self, query: str, after: int, limit: int) -> list[Any]:
        validate_page_args(after, limit)
        try:
            rows: list[Any] = self._conn().execute(query, (after, limit)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(f"reading events after position {after} failed", exc) from exc
        return rows

    def _page_columns(self, first: int, last: int) -> list[tuple[Any, ...]]:
        """What `_read_page` left out, for its page (events never change: any later read
        gives what reading them with the page would have)."""
        try:
            return self._conn().execute(_PAGE_COLUMNS, (first, last)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(
                f"reading the events at positions {first} to {last} failed", exc
            ) from exc

    def _clock_time(self) -> str:
        return to_utc(self._clock(), "the store clock's time").isoformat(timespec="microseconds")

    @staticmethod
    def _stream_exists(conn: sqlite3.Connection, stream_id: str) -> bool:
        row = conn.execute("SELECT 1 FROM esgen_events WHERE stream_id = ? LIMIT 1", (stream_id,))
        return row.fetchone() is not None

    def stream_version(self, stream_id: str) -> int:
        check_stream_id(stream_id)
        try:
            row = self._conn().execute(_STREAM_VERSION, (stream_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(f"reading the version of stream {stream_id!r} failed", exc) from exc
        return int(row[0] or 0)

    def head_position(self) -> int:
        try:
            row = self._conn().execute("SELECT max(position) FROM esgen_events").fetchone()
        except sqlite3.Error as exc:
            raise self._failed("reading the head position failed", exc) from exc
        return int(row[0] or 0)

    # -- inspection ---------------------------------------------------------------------

    def streams(self, prefix: str = "") -> Iterator[StreamSummary]:
        if not is_storable(prefix, "stream id prefix"):
            return
        end = _prefix_end(prefix)
        upper = "" if end is None else " AND stream_id < ?"
        bound: list[object] = [] if end is None else [end]
        query = _STREAMS_PAGE.format(lower=">=", upper=upper)
        after = prefix
        while True:
            # One statement per page, no transaction held between them: a slow consumer
            # must not keep a read snapshot open (it would stop WAL checkpoints).
            try:
                rows = self._conn().execute(query, [after, *bound, _STREAMS_PAGE_SIZE]).fetchall()
            except sqlite3.Error as exc:
                raise self._failed("listing streams failed", exc) from exc
            for stream_id, version, first, last in rows:
                yield StreamSummary(
                    stream_id, version, datetime.fromisoformat(first), datetime.fromisoformat(last)
                )
            if len(rows) < _STREAMS_PAGE_SIZE:
                return
            after = rows[-1][0]
            query = _STREAMS_PAGE.format(lower=">", upper=upper)

    def read_correlation(self, correlation_id: str) -> list[RecordedEvent]:
        rows = self._lookup(_BY_CORRELATION, correlation_id, "correlation id")
        # The index holds any JSON value; only a string is a correlation id.
        return [r for r in rows if r.correlation_id == correlation_id]

    def read_causation(self, causation_id: str) -> list[RecordedEvent]:
        rows = self._lookup(_BY_CAUSATION, causation_id, "causation id")
        return [r for r in rows if r.causation_id == causation_id]

    def find_event(self, event_id: str) -> RecordedEvent | None:
        rows = self._lookup(_BY_EVENT_ID, event_id, "event id")
        return next((r for r in rows if r.event_id_text == event_id), None)

    def _lookup(self, query: str, value: str, what: str) -> list[RecordedEvent]:
        if not is_storable(value, what):
            return []  # no stored text can equal it
        try:
            rows = self._conn().execute(query, (value, value.partition("\x00")[0])).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(f"looking up events by {what} {value!r} failed", exc) from exc
        return list(starmap(RecordedEvent, rows))

    def position_at(self, moment: datetime) -> int:
        # Positions run from 1 without gaps and recorded times never decrease along them:
        # a binary search of point lookups on the primary key, in one read snapshot.
        moment = to_utc(moment, "moment")
        try:
            with self.read_transaction() as conn:
                high = conn.execute("SELECT max(position) FROM esgen_events").fetchone()[0] or 0
                low = 0  # the answer is in [low, high]; time(low) <= moment, 0 meaning none
                while low < high:
                    middle = (low + high + 1) // 2
                    row = conn.execute(_TIME_AT, (middle,)).fetchone()
                    if row is None:
                        raise BackendError(
                            f"position {middle} is missing from {str(self._path)!r}; "
                            "positions must run from 1 without gaps"
                        )
                    if datetime.fromisoformat(row[0]) <= moment:
                        low = middle
                    else:
                        high = middle - 1
        except sqlite3.Error as exc:
            raise self._failed(f"finding the position at {moment.isoformat()} failed", exc) from exc
        return low

    # -- SnapshotStore ------------------------------------------------------------------

    # -- personal data --------------------------------------------------------------------

    def subject_keys(self, subjects: Sequence[str]) -> Mapping[str, bytes | None]:
        # A subject no text can hold (a lone surrogate) has no key: it is absent.
        subjects = [s for s in subjects if is_storable(s, "subject")]
        if not subjects:
            return {}
        query = (
            "SELECT subject, wrapped FROM esgen_subject_keys "
            f"WHERE subject IN ({', '.join('?' * len(subjects))})"
        )
        try:
            # One statement: it reads one state of the file without a transaction around.
            rows = self._conn().execute(query, list(subjects)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}  # a file of an older release, opened read-only: no keys at all
            raise self._failed("reading the personal-data keys failed", exc) from exc
        except sqlite3.Error as exc:
            raise self._failed("reading the personal-data keys failed", exc) from exc
        return {subject: None if wrapped is None else bytes(wrapped) for subject, wrapped in rows}

    def add_subject_key(self, subject: str, wrapped: bytes) -> bytes | None:
        check_text(subject, "subject")
        if self._read_only or self._damaged is not None:
            self._refuse_writes(f"a new data key for subject {subject!r}")
        try:
            with self.transaction() as conn:
                inserted = conn.execute(
                    "INSERT INTO esgen_subject_keys (subject, wrapped, created_at) "
                    "VALUES (?, ?, ?) ON CONFLICT (subject) DO NOTHING",
                    (subject, bytes(wrapped), self._clock_time()),
                ).rowcount
                if inserted == 1:  # the usual case: ours is kept, nothing to read back
                    return bytes(wrapped)
                row = conn.execute(
                    "SELECT wrapped FROM esgen_subject_keys WHERE subject = ?", (subject,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(f"storing the data key of subject {subject!r} failed", exc) from exc
        return None if row[0] is None else bytes(row[0])

    def forget_subject(self, subject: str, audit: NewEvent) -> bool:
        check_text(subject, "subject")
        if self._read_only or self._damaged is not None:
            self._refuse_writes(f"forgetting subject {subject!r}")
        validate_new_events([audit])
        conn = self._conn()
        inside = conn.in_transaction
        try:
            # Freed bytes are overwritten with zeros: the wrapped key must not stay behind
            # in a free page of the file.
            conn.execute("PRAGMA secure_delete = ON")
            with self.transaction() as conn:
                now = self._clock_time()
                changed = conn.execute(
                    "INSERT INTO esgen_subject_keys (subject, wrapped, created_at, forgotten_at) "
                    "VALUES (?, NULL, ?, ?) ON CONFLICT (subject) DO UPDATE SET "
                    "wrapped = NULL, forgotten_at = excluded.forgotten_at "
                    "WHERE esgen_subject_keys.forgotten_at IS NULL",
                    (subject, now, now),
                ).rowcount
                if changed:
                    self._write(((FORGOTTEN_STREAM, [audit], ExpectedVersion.ANY, None),))
        except sqlite3.Error as exc:
            raise self._failed(f"forgetting subject {subject!r} failed", exc) from exc
        # The write-ahead log still holds pages as they were when the key was there. Also
        # when the subject was forgotten before: forgetting again retries what failed.
        if inside:
            self._local.purge_wal = True  # once the caller's transaction commits
        else:
            self._purge_wal(conn)
        return bool(changed)

    def _purge_wal(self, conn: sqlite3.Connection) -> bool:
        """Copy the log into the file and empty it, so that no page image holding a
        forgotten key stays in the -wal file. The checkpoint waits (up to the busy timeout)
        for readers still using older pages; if one outlasts it, the log keeps them, and a
        warning says so: forgetting the subject again (idempotent) tries once more."""
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            why = "a reader still holds older pages of it"
        except sqlite3.Error as exc:
            busy, why = 1, str(exc)
        if busy:
            logger.warning(
                "%s-wal may still hold a forgotten subject's wrapped key (%s): forget the "
                "subject again once readers are done, or run PRAGMA wal_checkpoint(TRUNCATE)",
                self._path,
                why,
            )
        return not busy

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        check_stream_id(stream_id)
        try:
            row = (
                self._conn()
                .execute(
                    "SELECT stream_id, version, fingerprint, state, taken_at "
                    "FROM esgen_snapshots WHERE stream_id = ?",
                    (stream_id,),
                )
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise self._failed(f"reading the snapshot of {stream_id!r} failed", exc) from exc
        if row is None:
            return None
        return Snapshot(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        validate_snapshot(snapshot)
        if self._read_only or self._damaged is not None:
            self._refuse_writes(f"saving the snapshot of {snapshot.stream_id!r}")
        try:
            with self.transaction() as conn:
                conn.execute(_UPSERT_SNAPSHOT, _snapshot_row(snapshot))
        except sqlite3.Error as exc:
            raise self._failed(
                f"saving the snapshot of {snapshot.stream_id!r} failed", exc
            ) from exc


def _recorded_times(events: Sequence[NewEvent], clock_time: str, last_time: str) -> list[str]:
    """The stored times of events of which some carry the writer's time: that time (else the
    clock's), never before the time of the event before. A datetime object shared by several
    events is formatted once."""
    times = []
    given: datetime | None = None
    given_text = ""
    # Events recorded one after another mostly fall in the same second: the text up to the
    # second is reused and only the microseconds formatted (isoformat costs about 1 us a
    # call, a save of ten events ten of them). `second` is that second's start.
    second: datetime | None = None
    second_text = ""
    for event in events:
        moment = event.recorded_at
        if moment is None:
            text = clock_time
        elif moment is given:
            text = given_text
        else:
            given = moment
            # recorded_at is in UTC (NewEvent normalises it), so the stored text ends in
            # +00:00 and a difference under a second means the same second on the clock.
            if second is not None and not (offset := moment - second).days and not offset.seconds:
                text = f"{second_text}.{offset.microseconds:06d}+00:00"
            else:
                text = moment.isoformat(timespec="microseconds")
                second = moment.replace(microsecond=0)
                second_text = text[:19]
            given_text = text
        if text < last_time:
            text = last_time
        times.append(text)
        last_time = text
    return times


def _prefix_end(prefix: str) -> str | None:
    """The least text after every text that starts with `prefix`, in code point order
    (SQLite's, which compares UTF-8 bytes); None when no such text exists (no prefix)."""
    chars = list(prefix)
    while chars:
        following = ord(chars.pop()) + 1
        if 0xD800 <= following <= 0xDFFF:
            following = 0xE000  # surrogates are never stored: skip them
        if following <= 0x10FFFF:
            return "".join(chars) + chr(following)
    return None


def _streams(appends: Sequence[_Append]) -> str:
    names = ", ".join(repr(append[0]) for append in appends)
    return f"stream {names}" if len(appends) == 1 else f"streams {names}"


def _snapshot_row(snapshot: Snapshot) -> tuple[object, ...]:
    return (
        snapshot.stream_id,
        snapshot.version,
        snapshot.fingerprint,
        snapshot.state,
        to_utc(snapshot.taken_at, "snapshot time").isoformat(timespec="microseconds"),
    )


def _execute(conn: sqlite3.Connection, sql: str, path: Path) -> None:
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        raise BackendError(f"{sql} failed on {str(path)!r}: {exc}") from exc


def _wal_mode(conn: sqlite3.Connection, timeout: float) -> str:
    """Switch the file to WAL (or find it there) and return the journal mode. While other
    processes open the same new file, SQLite can answer "database is locked" at once,
    without waiting through the busy timeout (the switch and WAL recovery take locks the
    busy handler does not cover), so the attempt is repeated until the timeout passes."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            mode: str = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            return mode
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (e.g. after a disk error); never mask the cause.
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
