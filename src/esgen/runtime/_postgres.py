"""The PostgreSQL backend: the production store, safe under many concurrent writers.

The only runtime module that imports psycopg; driver and pool errors are translated here
into the runtime's exceptions. The tables, the append function and the reasoning behind the
global order live in `_postgres_schema`; live wake-ups in `_postgres_listen`.

Each operation borrows a connection from a psycopg_pool pool, in autocommit mode: a read is
one statement, and an append is one call of the `esgen_append` function, which checks the
expected version, numbers and inserts the events, stores the snapshot and sends the
notification in one implicit transaction, so it costs one round trip and either all of it
commits or none of it does.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from itertools import starmap
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from esgen.runtime._errors import (
    BackendError,
    BackendUnavailable,
    EventStoreError,
    ReadOnlyStore,
    StreamNotFound,
)
from esgen.runtime._personal import FORGOTTEN_STREAM, Keyring, KeyWrapper
from esgen.runtime._pool_log import install as _collapse_pool_warnings
from esgen.runtime._ports import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    SnapshotStore,
    StoredData,
    TimedStoredData,
    check_expected_version,
    validate_appends,
    validate_new_events,
    validate_page_args,
    validate_snapshot,
    validate_wait_args,
)
from esgen.runtime._postgres_calls import (
    CONFIGURE,
    CONFIGURE_READ_ONLY,
    RECHECK_WHILE_LISTENING,
    AppendCall,
    append_call,
    append_results,
    append_streams_call,
    append_value_error,
    check_append,
    connection_lost,
    lost_append_note,
    pool_in_use,
    read_stream_query,
    reason,
    session_changed,
    settings,
    snapshot_params,
    stream_data_params,
    streams_text,
)
from esgen.runtime._postgres_listen import Listener
from esgen.runtime._postgres_schema import (
    channel_is_own,
    check_schema,
    ensure_schema,
    normalized,
    notify_channel,
    statements,
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
    to_utc,
    utc_now,
)
from esgen.runtime._text import check_key, check_stream_id, is_storable

__all__ = ["PostgresEventStore"]

if TYPE_CHECKING:
    from esgen.runtime._ports import TransactionalStore

    def _keeps_the_projection_hook(
        store: PostgresEventStore,
    ) -> TransactionalStore[psycopg.Connection[Any]]:
        return store  # mypy checks the adapter still offers transaction() as projections need


_STREAMS_PAGE_SIZE = 500


class PostgresEventStore(EventStore, SnapshotStore):
    """Event store and snapshot store in one PostgreSQL schema.

    `dsn` is a libpq connection string or URL (`postgresql://user@host:5432/db`); its own
    settings win over the keyword defaults here (`connect_timeout`, `application_name`).
    Tables are created in `schema` on first use (idempotent, safe with many processes).
    The store is thread-safe; each thread's `transaction()` block has its own connection.

    `read_only=True` creates nothing (the tables must exist), runs every transaction
    read-only on the server (`default_transaction_read_only`), and refuses appends and
    snapshots with `ReadOnlyStore`; waiting for events still works.

    `master_key` (a `MasterKey`, or any `KeyWrapper` such as a KMS client) lets the store
    seal and open personal data: `store.keyring`, with data keys kept in the schema's
    `esgen_subject_keys` table and unwrapped ones cached for `key_cache_seconds`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        clock: Clock = utc_now,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 5.0,
        pool_timeout: float = 30.0,
        notify: bool = True,
        poll_interval: float = 1.0,
        read_only: bool = False,
        master_key: KeyWrapper | None = None,
        key_cache_seconds: float = 60.0,
    ) -> None:
        config = settings(
            dsn,
            schema,
            min_connections,
            max_connections,
            connect_timeout,
            pool_timeout,
            poll_interval,
        )
        self._schema = schema
        self._clock = clock
        self._where = config.where
        self._conninfo = config.conninfo
        self._connect_kwargs = config.connect_kwargs
        self._min_connections = min_connections
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._connect_timeout = connect_timeout
        # Set after a connection failed for want of a server: until something succeeds again,
        # callers wait for a pooled connection no longer than a connection attempt takes, so
        # an outage is reported in seconds rather than after the full pool timeout.
        self._unreachable = False
        self._channel = notify_channel(schema) if notify else None
        self.poll_interval = poll_interval
        self._sql = statements(schema)
        self._read_only = read_only
        self._closed = False
        self._lock = threading.Lock()
        self._local = threading.local()
        self._listener: Listener | None = None
        what = "checking" if read_only else "setting up"
        with self._direct_connection(f"{what} the event store schema") as conn:
            try:
                if read_only:
                    check_schema(conn, schema, self._where)
                else:
                    ensure_schema(conn, schema, self._where)
            except psycopg.Error as exc:
                raise self._error(f"{what} the event store schema", exc) from exc
        self._pool_instance: ConnectionPool[psycopg.Connection[Any]] | None = self._new_pool()
        _open_stores.add(self)
        # Always a keyring: without a master key it still tells forgotten subjects
        # (placeholders) from the others (KeyUnavailable).
        self.keyring = Keyring(master_key, self, cache_seconds=key_cache_seconds)

    def __repr__(self) -> str:
        return f"PostgresEventStore({self._where}, schema={self._schema!r})"

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def read_only(self) -> bool:
        return self._read_only

    def _refuse_writes(self, what: str) -> None:
        if self._read_only:
            raise ReadOnlyStore(
                f"{what}: the store for schema {self._schema!r} of {self._where} was opened "
                "read-only"
            )

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _direct_connection(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection outside the pool, so a server that is down or a wrong DSN is reported
        with libpq's reason within the connect timeout."""
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise self._error(what, exc, connecting=True) from exc
        with conn:
            if self._read_only:
                # Set-up only reads, but the server makes sure of it.
                _configure_read_only(conn)
            yield conn

    def _new_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True, **self._connect_kwargs},
            min_size=self._min_connections,
            max_size=self._max_connections,
            open=False,
            configure=_configure_read_only if self._read_only else _configure,
            reset=_reset_read_only if self._read_only else _reset,
            timeout=self._pool_timeout,
            name=f"esgen-{self._schema}",
            num_workers=2,
        )
        pool.open(wait=False)
        return pool

    def _forget_inherited_connections(self) -> None:
        # In a forked child: the connections it inherited are the parent's, not to be used
        # nor closed (closing would end the parent's sessions). They stay referenced, and
        # the child's first operation opens a pool of its own.
        _inherited.append((self._pool_instance, self._listener))
        self._pool_instance = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._listener = None

    def _pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pool_instance
        if pool is None or self._closed:
            with self._lock:
                if self._closed:
                    raise BackendError(f"the store for {self._where} is closed")
                if self._pool_instance is None:
                    self._pool_instance = self._new_pool()
                pool = self._pool_instance
        return pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The thread's `transaction()` connection inside a block, else one from the pool.
        Raises driver errors: callers translate them."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._pool().connection(timeout=self._wait_for_pool()) as conn:
            yield conn

    def _wait_for_pool(self) -> float:
        if self._unreachable:
            return min(self._connect_timeout, self._pool_timeout)
        return self._pool_timeout

    def _in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    def _fetch(self, what: str, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Run a read; once more on a fresh connection if the first one turned out dead
        (e.g. after the server restarted), since reading twice is harmless."""
        try:
            with self._connection() as conn:
                rows = conn.execute(query, params).fetchall()
            self._unreachable = False
            return rows
        except psycopg.Error as exc:
            if not connection_lost(exc) or self._in_transaction():
                raise self._error(what, exc) from exc
            self._purge_dead_connections()
        try:
            with self._connection() as conn:
                rows = conn.execute(query, params).fetchall()
            self._unreachable = False
            return rows
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc

    def _purge_dead_connections(self) -> None:
        # The pool hands out idle connections unchecked (checking costs a round trip each
        # time); after one turned out dead, check the others at once.
        self._unreachable = True
        with suppress(psycopg.Error):
            self._pool().check()

    def _error(
        self,
        what: str,
        exc: BaseException,
        *,
        connecting: bool = False,
        conn: psycopg.Connection[Any] | None = None,
        no_connection: tuple[str, bool] | None = None,
    ) -> EventStoreError:
        """The runtime's error for a driver error; never quotes the DSN (passwords).

        `conn`, when given, is the connection the statement ran on: if it is still open,
        the error was not a lost connection, whatever its class (libpq refuses some
        statements itself, e.g. too many parameters, as an OperationalError).
        `no_connection`, for a pool that gave none, is `_why_no_connection()` found
        already (by the asynchronous store, which looks without blocking its loop).
        """
        text = reason(exc)
        if isinstance(exc, PoolClosed) or self._closed:
            return BackendError(f"{what}: the store for {self._where} is closed")
        if isinstance(exc, PoolTimeout):
            waited = self._wait_for_pool()
            why, down = no_connection or self._why_no_connection()
            self._unreachable = down
            return BackendUnavailable(
                f"{what}: no connection to {self._where} within {waited:g} s: {why}"
            )
        if connecting:
            self._unreachable = True
            return BackendUnavailable(f"{what}: cannot connect to {self._where}: {text}")
        if connection_lost(exc) and (conn is None or conn.broken or conn.closed):
            self._unreachable = True
            return BackendUnavailable(f"{what}: lost the connection to {self._where}: {text}")
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return ReadOnlyStore(f"{what}: {text} (the store was opened read-only)")
        return BackendError(f"{what} failed on {self._where}: {text}")

    def _why_no_connection(self) -> tuple[str, bool]:
        """Why the pool had no connection to give, and whether the server is to blame.

        The pool only says it waited in vain; one direct attempt (within the connect
        timeout) tells the server's or the network's reason, or that the pool is in full use.
        """
        try:
            psycopg.connect(self._conninfo, **self._connect_kwargs).close()
        except psycopg.Error as exc:
            return reason(exc), True
        return pool_in_use(self._max_connections), False

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """Run the block in one transaction on a connection of its own, yielded.

        Commits when the block ends, rolls back if it raises. Reads and appends made inside
        the block (on this thread) join the transaction, so a projection can store its
        read-model rows, its checkpoint and even new events atomically; nested blocks join
        the outer one. An append inside a block holds the store's append lock until the block
        ends (see docs/postgres.md), so append last and keep such blocks short.
        """
        outer: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        pool = self._pool()
        conn = self._begin(pool)
        try:
            self._local.conn = conn
            try:
                yield conn
            except BaseException:
                _rollback(conn)
                raise
            finally:
                self._local.conn = None
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                # COMMIT would quietly roll back: a statement failed and its error was caught.
                _rollback(conn)
                raise BackendError(
                    f"transaction on {self._where} rolled back: a statement in the block "
                    "failed and its error was caught, which aborts a PostgreSQL transaction"
                )
            try:
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                _rollback(conn)
                raise self._error("committing a transaction", exc) from exc
        finally:
            pool.putconn(conn)

    @contextmanager
    def read_transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """Run the block in one read-only transaction (REPEATABLE READ: every statement
        sees one snapshot) on a connection of its own; inside a `transaction()` block on
        this thread, in that one, seeing its changes. Only for reads; rolled back at the
        end, as there is nothing to commit. Raises driver errors: callers translate them."""
        outer: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        pool = self._pool()
        conn = self._begin(pool, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield conn
        finally:
            _rollback(conn)
            pool.putconn(conn)

    def _begin(
        self,
        pool: ConnectionPool[psycopg.Connection[Any]],
        begin: str = "BEGIN",
        retry: bool = True,
    ) -> psycopg.Connection[Any]:
        try:
            conn = pool.getconn(timeout=self._wait_for_pool())
        except psycopg.Error as exc:
            raise self._error("starting a transaction", exc) from exc
        try:
            conn.execute(begin)
        except psycopg.Error as exc:
            pool.putconn(conn)
            if not (retry and connection_lost(exc)):
                raise self._error("starting a transaction", exc) from exc
            self._purge_dead_connections()  # nothing was done yet: try a fresh connection
            return self._begin(pool, begin, retry=False)
        return conn

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if self._pool_instance is not None:
            self._pool_instance.close(timeout=5.0)
        _open_stores.discard(self)

    # -- EventStore ---------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        check_append(stream_id, events, expected_version, snapshot)
        if self._read_only:
            self._refuse_writes(f"append to stream {stream_id!r}")
        call = append_call(
            self._sql, self._clock, self._channel, stream_id, events, expected_version, snapshot
        )
        if call is None:
            return self._check_only([StreamAppend(stream_id, events, expected_version)])[0]
        return self._call_append(call)[0]

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        validate_appends(appends)
        if self._read_only and appends:
            self._refuse_writes(f"append to {streams_text([a.stream_id for a in appends])}")
        call = append_streams_call(self._sql, self._clock, self._channel, appends)
        if call is None:
            return self._check_only(appends)
        return self._call_append(call)

    def _check_only(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        # No events: reading the versions needs neither the append lock nor a write.
        results = []
        for append in appends:
            actual = self.stream_version(append.stream_id)
            check_expected_version(append.stream_id, append.expected_version, actual)
            results.append(AppendResult(append.stream_id, actual, None))
        return results

    def _call_append(self, call: AppendCall) -> list[AppendResult]:
        try:
            with self._connection() as conn:
                if self._in_transaction():
                    # A savepoint, so a failed append leaves the caller's transaction usable.
                    with conn.transaction():
                        row = conn.execute(call.statement, call.params).fetchone()
                else:
                    row = conn.execute(call.statement, call.params).fetchone()
        except psycopg.Error as exc:
            mistake = append_value_error(exc)
            if mistake is not None:
                raise mistake from exc
            error = self._error(call.what, exc)
            if connection_lost(exc):
                error.add_note(lost_append_note(call.events))
                self._purge_dead_connections()
            raise error from exc
        self._unreachable = False
        return append_results(row, call)

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
        query, params = read_stream_query(
            self._sql, stream_id, from_version, to_version, until, backwards, limit
        )
        rows = self._fetch(f"reading stream {stream_id!r}", query, params)
        # An empty range of an existing stream is fine; a stream with no events is not.
        if not rows and (
            (from_version == 1 and until is None) or not self._stream_exists(stream_id)
        ):
            raise StreamNotFound(stream_id)
        return list(starmap(RecordedEvent, rows))

    def read_stream_data(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[StoredData]:
        return self._stream_data(stream_id, from_version, to_version, self._sql.read_stream_data)

    def read_stream_data_timed(
        self, stream_id: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Sequence[TimedStoredData]:
        query = self._sql.read_stream_data_timed
        return self._stream_data(stream_id, from_version, to_version, query)

    def _stream_data(
        self, stream_id: str, from_version: int, to_version: int | None, query: str
    ) -> list[Any]:
        rows = self._fetch(
            f"reading stream {stream_id!r}",
            query,
            stream_data_params(stream_id, from_version, to_version),
        )
        if not rows and (from_version == 1 or not self._stream_exists(stream_id)):
            raise StreamNotFound(stream_id)
        return rows

    def read_all(self, after: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        validate_page_args(after, limit)
        rows = self._fetch(
            f"reading events after position {after}", self._sql.read_all, (after, limit)
        )
        return list(starmap(RecordedEvent, rows))

    def _stream_exists(self, stream_id: str) -> bool:
        rows = self._fetch(f"reading stream {stream_id!r}", self._sql.stream_exists, (stream_id,))
        return bool(rows)

    def stream_version(self, stream_id: str) -> int:
        check_stream_id(stream_id)
        rows = self._fetch(
            f"reading the version of stream {stream_id!r}", self._sql.stream_version, (stream_id,)
        )
        return int(rows[0][0])

    def head_position(self) -> int:
        rows = self._fetch("reading the head position", self._sql.head_position, ())
        return int(rows[0][0])

    # -- inspection ---------------------------------------------------------------------

    def streams(self, prefix: str = "") -> Iterator[StreamSummary]:
        """Streams in the database's collation order (code point order in C and C.UTF-8
        databases, as the other backends; another collation may order punctuation and case
        otherwise)."""
        if not is_storable(prefix, "stream id prefix"):
            return
        after = ""  # before every stream id, which are never empty
        while True:
            # One statement per page: a slow consumer holds no connection nor snapshot.
            rows = self._fetch(
                "listing streams", self._sql.streams_page, (after, prefix, _STREAMS_PAGE_SIZE)
            )
            for stream_id, version, first, last in rows:
                yield StreamSummary(stream_id, version, first, last)
            if len(rows) < _STREAMS_PAGE_SIZE:
                return
            after = rows[-1][0]

    def read_correlation(self, correlation_id: str) -> list[RecordedEvent]:
        rows = self._lookup(self._sql.by_correlation, correlation_id, "correlation id")
        # The index holds normalized text of any JSON value: the exact match is made here.
        return [r for r in rows if r.correlation_id == correlation_id]

    def read_causation(self, causation_id: str) -> list[RecordedEvent]:
        rows = self._lookup(self._sql.by_causation, causation_id, "causation id")
        return [r for r in rows if r.causation_id == causation_id]

    def _lookup(self, query: str, value: str, what: str) -> list[RecordedEvent]:
        if not is_storable(value, what):
            return []
        rows = self._fetch(f"looking up events by {what} {value!r}", query, (normalized(value),))
        return list(starmap(RecordedEvent, rows))

    def find_event(self, event_id: str) -> RecordedEvent | None:
        if not is_storable(event_id, "event id"):
            return None
        try:
            parsed = UUID(event_id)
        except ValueError:
            return None  # the column holds UUIDs only
        if str(parsed) != event_id:
            return None  # the same text as the other backends: the canonical form only
        rows = self._fetch(f"looking up event {event_id!r}", self._sql.by_event_id, (parsed,))
        return RecordedEvent(*rows[0]) if rows else None

    def position_at(self, moment: datetime) -> int:
        # Positions run from 1 without gaps and recorded times never decrease along them:
        # a binary search of point lookups on the primary key, in one snapshot.
        moment = to_utc(moment, "moment")
        what = f"finding the position at {moment.isoformat()}"
        try:
            with self.read_transaction() as conn:
                row = conn.execute(self._sql.head_position).fetchone()
                high = int(row[0]) if row else 0
                low = 0  # the answer is in [low, high]; time(low) <= moment, 0 meaning none
                while low < high:
                    middle = (low + high + 1) // 2
                    found = conn.execute(self._sql.time_at, (middle,)).fetchone()
                    if found is None:
                        raise BackendError(
                            f"{what}: position {middle} is missing from schema "
                            f"{self._schema!r}; positions must run from 1 without gaps"
                        )
                    if found[0] <= moment:
                        low = middle
                    else:
                        high = middle - 1
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc
        return low

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Block until an event after position `after` is committed, or `timeout` seconds
        pass; True if there is one. Woken by LISTEN/NOTIFY; polls every `poll_interval`
        seconds while the listening connection is down (or with `notify=False`)."""
        validate_wait_args(after, timeout)
        deadline = time.monotonic() + timeout
        listener = self._listening()
        while True:
            # Read the generation before the table: a notification arriving after the read
            # changes it, so the wait below cannot sleep through it.
            seen = listener.generation if listener is not None else 0
            if self.head_position() > after:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if listener is None:
                time.sleep(min(remaining, self.poll_interval))
            elif listener.listening:
                listener.wait(seen, min(remaining, RECHECK_WHILE_LISTENING))
            else:
                listener.wait(seen, min(remaining, self.poll_interval))
            if listener is not None:
                generation, position = listener.latest()
                if generation != seen and position > after:
                    # The notification that woke this wait said so: the caller's read is
                    # the next round trip.
                    return True
            if self._closed:
                raise BackendError(f"the store for {self._where} was closed while waiting")

    def _listening(self) -> Listener | None:
        if self._channel is None:
            return None
        self._pool()  # raises if closed
        with self._lock:
            if self._listener is None:
                self._listener = Listener(
                    self._conninfo,
                    self._connect_kwargs,
                    self._channel,
                    trust_positions=channel_is_own(self._schema),
                )
            return self._listener

    # -- personal data --------------------------------------------------------------------

    def subject_keys(self, subjects: Sequence[str]) -> Mapping[str, bytes | None]:
        # A subject no text column can hold (a lone surrogate, NUL) has no key: it is absent.
        wanted = [s for s in subjects if is_storable(s, "subject") and "\x00" not in s]
        if not wanted:
            return {}
        what = "reading the personal-data keys"
        try:
            with self._connection() as conn:
                if self._in_transaction():
                    with conn.transaction():  # a savepoint: a missing table spares the block
                        rows = conn.execute(self._sql.subject_keys, (wanted,)).fetchall()
                else:
                    rows = conn.execute(self._sql.subject_keys, (wanted,)).fetchall()
        except pg_errors.UndefinedTable:
            # A schema of an earlier release that this store could not add the table to
            # (read-only, or a role without CREATE on the schema): it holds no keys at all.
            return {}
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc
        self._unreachable = False
        return {subject: None if wrapped is None else bytes(wrapped) for subject, wrapped in rows}

    def add_subject_key(self, subject: str, wrapped: bytes) -> bytes | None:
        check_key(subject, "subject")
        if self._read_only:
            self._refuse_writes(f"a new data key for subject {subject!r}")
        what = f"storing the data key of subject {subject!r}"
        params = (subject, bytes(wrapped), to_utc(self._clock(), "the store clock's time"))
        # Never in the caller's transaction() block: the keyring caches the key it gets
        # back, so a key rolled back with the block would go on sealing data that no
        # stored key opens. A key kept for a block that rolled back is merely unused.
        try:
            with self._pool().connection(timeout=self._wait_for_pool()) as conn:
                row = conn.execute(self._sql.add_subject_key, params).fetchone()
                if row is None:  # another writer came first: its key, committed, is the one
                    row = conn.execute(self._sql.subject_key, (subject,)).fetchone()
        except pg_errors.UndefinedTable as exc:
            raise self._no_key_table(what) from exc
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc
        self._unreachable = False
        if row is None:
            raise BackendError(f"{what}: the key row vanished (was it deleted by hand?)")
        return None if row[0] is None else bytes(row[0])

    def forget_subject(self, subject: str, audit: NewEvent) -> bool:
        check_key(subject, "subject")
        if self._read_only:
            self._refuse_writes(f"forgetting subject {subject!r}")
        validate_new_events([audit])
        what = f"forgetting subject {subject!r}"
        now = to_utc(self._clock(), "the store clock's time")
        try:
            with self.transaction() as conn:
                # The append lock first, as every append takes it before any row: taking
                # the key's row first could deadlock with a transaction that appended and
                # then waits for a new key of this subject on another connection.
                conn.execute(self._sql.lock_appends)
                with conn.transaction():  # a savepoint: a missing table spares a joined block
                    done = conn.execute(self._sql.forget_subject, (subject, now, now)).fetchone()
                if done is not None:
                    # The store's own append, inside this transaction: the event and the
                    # key's erasure commit together or not at all.
                    self.append_streams(
                        [StreamAppend(FORGOTTEN_STREAM, [audit], ExpectedVersion.ANY)]
                    )
        except pg_errors.UndefinedTable as exc:
            raise self._no_key_table(what) from exc
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc
        return done is not None

    def _no_key_table(self, what: str) -> BackendError:
        return BackendError(
            f"{what}: schema {self._schema!r} of {self._where} has no esgen_subject_keys "
            "table, and this role could not create it when the store opened (see the "
            "warning then); the schema's owner must create it"
        )

    # -- SnapshotStore ------------------------------------------------------------------

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        check_stream_id(stream_id)
        rows = self._fetch(
            f"reading the snapshot of {stream_id!r}", self._sql.load_snapshot, (stream_id,)
        )
        if not rows:
            return None
        return Snapshot(*rows[0])

    def save_snapshot(self, snapshot: Snapshot) -> None:
        validate_snapshot(snapshot)
        if self._read_only:
            self._refuse_writes(f"saving the snapshot of {snapshot.stream_id!r}")
        params = snapshot_params(snapshot)
        try:
            with self._connection() as conn:
                conn.execute(self._sql.upsert_snapshot, params)
        except psycopg.Error as exc:
            raise self._error(f"saving the snapshot of {snapshot.stream_id!r}", exc) from exc


_open_stores: weakref.WeakSet[PostgresEventStore] = weakref.WeakSet()
_inherited: list[object] = []


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._forget_inherited_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)
_collapse_pool_warnings()


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute(CONFIGURE)


def _configure_read_only(conn: psycopg.Connection[Any]) -> None:
    conn.execute(CONFIGURE_READ_ONLY)


def _reset(conn: psycopg.Connection[Any]) -> None:
    if session_changed(conn.info, read_only=False):
        _configure(conn)


def _reset_read_only(conn: psycopg.Connection[Any]) -> None:
    if session_changed(conn.info, read_only=True):
        _configure_read_only(conn)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    # The connection may be gone (then the server rolled back); never mask the first error.
    with suppress(psycopg.Error):
        conn.execute("ROLLBACK")
