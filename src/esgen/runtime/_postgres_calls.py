"""What the synchronous and the asynchronous PostgreSQL stores share: reading the settings,
building each call's statement and parameters, and making sense of what comes back. No I/O
here: each store runs the calls on its own kind of connection."""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolClosed, PoolTimeout

from esgen.runtime._errors import ConcurrencyError
from esgen.runtime._ports import (
    INVALID_DATA,
    check_snapshot_fits,
    recorded_times,
    validate_append_args,
    validate_new_events,
    validate_read_args,
    validate_snapshot,
)
from esgen.runtime._postgres_schema import Statements, validate_schema_name
from esgen.runtime._records import (
    AppendResult,
    Clock,
    ExpectedVersion,
    NewEvent,
    Snapshot,
    StreamAppend,
    encode_metadata,
    to_utc,
)
from esgen.runtime._text import check_stream_id

__all__ = [
    "CONFIGURE",
    "CONFIGURE_READ_ONLY",
    "MAX_VERSION",
    "RECHECK_WHILE_LISTENING",
    "AppendCall",
    "Settings",
    "append_call",
    "append_results",
    "append_streams_call",
    "append_value_error",
    "check_append",
    "connection_lost",
    "describe_dsn",
    "lost_append_note",
    "pool_in_use",
    "read_stream_query",
    "reason",
    "session_changed",
    "settings",
    "snapshot_params",
    "stream_data_params",
    "streams_text",
]

MAX_VERSION = 2**63 - 1

# While LISTEN works, waiters still look at the table this often: a connection that died
# without a word (a half-open socket) must not stall a projection for long.
RECHECK_WHILE_LISTENING = 30.0

# Every pooled session: UTC so recorded times come back in UTC; READ COMMITTED because the
# append function needs a fresh snapshot after its lock, whatever the server's default.
CONFIGURE = (
    "SELECT set_config('TimeZone', 'UTC', false), "
    "set_config('default_transaction_isolation', 'read committed', false)"
)
# A read-only store's sessions: every transaction, autocommit statements included, is
# read-only on the server, whatever a caller runs in a transaction() block.
CONFIGURE_READ_ONLY = (
    "SELECT set_config('TimeZone', 'UTC', false), "
    "set_config('default_transaction_isolation', 'read committed', false), "
    "set_config('default_transaction_read_only', 'on', false)"
)


def session_changed(info: psycopg.ConnectionInfo, read_only: bool) -> bool:
    """Whether a pooled session needs configuring again before it is lent out: a
    transaction() block may have changed its time zone, or made a read-only store's session
    writable. The server reports both with every change (the second since PostgreSQL 14;
    older servers report nothing, and are not checked), so asking costs no round trip."""
    if info.parameter_status("TimeZone") != "UTC":
        return True
    return read_only and info.parameter_status("default_transaction_read_only") == "off"


# Server errors that end the session: the server shut down, was shut down, or is starting.
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})


class Settings(NamedTuple):
    conninfo: str
    connect_kwargs: dict[str, Any]
    where: str  # the database, for messages (never the password)


def settings(
    dsn: str,
    schema: str,
    min_connections: int,
    max_connections: int,
    connect_timeout: float,
    pool_timeout: float,
    poll_interval: float,
) -> Settings:
    """Check a store's arguments and work out how it connects."""
    validate_schema_name(schema)
    if not 0 <= min_connections <= max_connections or max_connections < 1:
        raise ValueError(
            "connections must satisfy 0 <= min_connections <= max_connections, "
            f"max_connections >= 1 (got {min_connections} and {max_connections})"
        )
    for name, value in (
        ("connect_timeout", connect_timeout),
        ("pool_timeout", pool_timeout),
        ("poll_interval", poll_interval),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be > 0 seconds (got {value!r})")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        # libpq quotes the part it choked on, which may be the password: say nothing.
        raise ValueError(
            "invalid PostgreSQL DSN (not shown: it may hold a password); expected a "
            "URL such as postgresql://user@host:5432/dbname or key=value pairs"
        ) from None
    # The DSN's own settings win; these only fill gaps.
    connect_kwargs: dict[str, Any] = {}
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        # libpq counts whole seconds (and at least 2).
        connect_kwargs["connect_timeout"] = max(2, math.ceil(connect_timeout))
    if "application_name" not in params and "PGAPPNAME" not in os.environ:
        connect_kwargs["application_name"] = "esgen"
    return Settings(dsn, connect_kwargs, describe_dsn(params))


def describe_dsn(params: dict[str, Any]) -> str:
    """Where a DSN points, for messages: host, port, database and user, never the password.
    Unset parts are shown as libpq will resolve them (environment, then defaults)."""
    env = os.environ
    host = params.get("host") or params.get("hostaddr") or env.get("PGHOST") or "localhost"
    port = params.get("port") or env.get("PGPORT") or "5432"
    user = params.get("user") or env.get("PGUSER") or _login_name()
    dbname = params.get("dbname") or env.get("PGDATABASE") or user
    place = f"socket {host}" if host.startswith("/") else f"{host}:{port}"
    return f"PostgreSQL database {dbname} on {place} as user {user}"


def _login_name() -> str:
    # libpq's default user name: the operating system's.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "(default)"


def streams_text(stream_ids: Sequence[str]) -> str:
    names = ", ".join(repr(stream_id) for stream_id in stream_ids)
    return f"stream {names}" if len(stream_ids) == 1 else f"streams {names}"


# -- appends ------------------------------------------------------------------------------


class AppendCall(NamedTuple):
    """One call of esgen_append_streams: what to send, and what it was for."""

    statement: str
    params: tuple[object, ...]
    appends: tuple[StreamAppend, ...]
    events: int  # in all

    @property
    def what(self) -> str:
        return f"append to {streams_text([append.stream_id for append in self.appends])}"


def _expected(expected_version: int | ExpectedVersion) -> int | None:
    """The function's form of an expected version: NULL for any."""
    if expected_version is ExpectedVersion.ANY:
        return None
    return 0 if expected_version is ExpectedVersion.NO_STREAM else expected_version


def check_append(
    stream_id: str,
    events: Sequence[NewEvent],
    expected_version: int | ExpectedVersion,
    snapshot: Snapshot | None,
) -> None:
    """The checks of an append's arguments, made before anything else (a read-only store
    refuses only what passes them, and before building anything: see `append_call`)."""
    validate_append_args(stream_id, expected_version)
    validate_new_events(events)
    if snapshot is not None:
        validate_snapshot(snapshot)


def append_call(
    sql: Statements,
    clock: Clock,
    channel: str | None,
    stream_id: str,
    events: Sequence[NewEvent],
    expected_version: int | ExpectedVersion,
    snapshot: Snapshot | None,
) -> AppendCall | None:
    """The call appending `events` to one stream (sent as scalars, see Statements.append),
    whose arguments `check_append` passed; None when there are no events (only the version
    is to be checked)."""
    if not events:
        return None
    expected = _expected(expected_version)
    count = len(events)
    snapshot_values: tuple[object, ...] = (None, None, None, None)
    if snapshot is not None:
        snapshot_values = _snapshot_values(snapshot, stream_id, expected, count)
    now, times = _times(clock, events)
    params = (
        stream_id,
        expected,
        count,
        count,
        now,
        times,
        *_event_params(events),
        channel,
        *snapshot_values,
    )
    appends = (StreamAppend(stream_id, events, expected_version),)
    return AppendCall(sql.append, params, appends, count)


def append_streams_call(
    sql: Statements, clock: Clock, channel: str | None, appends: Sequence[StreamAppend]
) -> AppendCall | None:
    """The call appending to several streams at once, whose arguments `validate_appends`
    passed; None when there are no events."""
    events = [event for append in appends for event in append.events]
    if not events:
        return None
    stream_ids = []
    expected: list[int | None] = []
    counts = []
    event_streams = []
    snapshots: list[tuple[object, ...]] = []
    for index, append in enumerate(appends, start=1):
        stream_ids.append(append.stream_id)
        expected.append(_expected(append.expected_version))
        count = len(append.events)
        counts.append(count)
        event_streams.extend([index] * count)
        if append.snapshot is not None and count:
            snapshots.append(
                _snapshot_values(append.snapshot, append.stream_id, expected[-1], count)
            )
        else:
            snapshots.append((None, None, None, None))
    # Four lists of a value per stream, or four NULLs when no stream has a snapshot.
    snapshot_values = (
        [list(column) for column in zip(*snapshots, strict=True)]
        if any(row[0] is not None for row in snapshots)
        else [None, None, None, None]
    )
    now, times = _times(clock, events)
    params = (
        stream_ids,
        expected,
        counts,
        event_streams,
        now,
        times,
        *_event_params(events),
        channel,
        *snapshot_values,
    )
    return AppendCall(sql.append_streams, params, tuple(appends), len(events))


def _snapshot_values(
    snapshot: Snapshot, stream_id: str, expected: int | None, count: int
) -> tuple[object, ...]:
    # With ANY the stream's version is known only under the lock: the function checks
    # the snapshot's version then.
    last = MAX_VERSION if expected is None else expected + count
    check_snapshot_fits(snapshot, stream_id, last)
    return (
        snapshot.version,
        snapshot.fingerprint,
        snapshot.state,
        to_utc(snapshot.taken_at, "snapshot time"),
    )


def _times(
    clock: Clock, events: Sequence[NewEvent]
) -> tuple[datetime | None, list[datetime] | None]:
    """The clock's time (unless every event brings its own) and, if some do, every
    event's time in order; the function only raises these to the head's time."""
    for event in events:
        if event.recorded_at is not None:
            break
    else:
        return to_utc(clock(), "the store clock's time"), None
    times = list(recorded_times(events, clock, None))
    return times[0], times


def _event_params(events: Sequence[NewEvent]) -> tuple[list[Any], ...]:
    types = []
    versions = []
    data = []
    ids = []
    metadata = []
    last_metadata: object = None
    metadata_json = ""
    for event in events:
        if event.metadata is not last_metadata:
            # One append's events usually share one metadata mapping: encode it once.
            last_metadata = event.metadata
            metadata_json = encode_metadata(event.metadata)
        types.append(event.event_type)
        versions.append(event.event_version)
        data.append(event.data)
        ids.append(event.event_id)
        metadata.append(metadata_json)
    return types, versions, data, ids, metadata


def append_value_error(exc: psycopg.Error) -> ValueError | None:
    """The caller's mistake a failed append reports, if it was one."""
    if isinstance(exc, pg_errors.InvalidParameterValue):
        return ValueError(reason(exc))
    if isinstance(exc, pg_errors.InvalidTextRepresentation):  # data the json type refuses
        return ValueError(INVALID_DATA)
    return None


def append_results(row: tuple[Any, ...] | None, call: AppendCall) -> list[AppendResult]:
    """Each stream's outcome from the function's row; a conflict raises ConcurrencyError."""
    assert row is not None  # the function always returns its one row
    actual, conflict, last_position = row
    if conflict is not None:
        append = call.appends[conflict - 1]
        raise ConcurrencyError(append.stream_id, append.expected_version, actual[conflict - 1])
    position = last_position - call.events
    results = []
    for append, version in zip(call.appends, actual, strict=True):
        written = len(append.events)
        position += written
        results.append(
            AppendResult(append.stream_id, version + written, position if written else None)
        )
    return results


def pool_in_use(max_connections: int) -> str:
    """Why a pool gave no connection when the server accepts new ones."""
    return (
        f"all {max_connections} connection(s) of the pool are in use "
        "(raise max_connections, or look for transaction() blocks left open)"
    )


def lost_append_note(count: int) -> str:
    return (
        f"An append is one transaction: either all {count} event(s) were "
        "written or none. Read the stream(s) to see which, or retry with the same "
        "expected version(s) (a ConcurrencyError then means they were written)."
    )


# -- reads --------------------------------------------------------------------------------


def read_stream_query(
    sql: Statements,
    stream_id: str,
    from_version: int,
    to_version: int | None,
    until: datetime | None,
    backwards: bool,
    limit: int | None,
) -> tuple[str, list[object]]:
    check_stream_id(stream_id)
    validate_read_args(from_version, to_version, limit)
    query = [sql.read_stream]
    params: list[object] = [stream_id]
    if from_version > 1:
        query.append("AND stream_version >= %s")
        params.append(from_version)
    if to_version is not None:
        query.append("AND stream_version <= %s")
        params.append(to_version)
    if until is not None:
        query.append("AND recorded_at <= %s")
        params.append(to_utc(until, "until"))
    query.append("ORDER BY stream_version DESC" if backwards else "ORDER BY stream_version")
    if limit is not None:
        query.append("LIMIT %s")
        params.append(limit)
    return " ".join(query), params


def stream_data_params(
    stream_id: str, from_version: int, to_version: int | None
) -> tuple[str, int, int]:
    check_stream_id(stream_id)
    validate_read_args(from_version, to_version, None)
    return stream_id, from_version, MAX_VERSION if to_version is None else to_version


def snapshot_params(snapshot: Snapshot) -> tuple[object, ...]:
    """The upsert's parameters for a snapshot `validate_snapshot` passed."""
    return (
        snapshot.stream_id,
        snapshot.version,
        snapshot.fingerprint,
        snapshot.state,
        to_utc(snapshot.taken_at, "snapshot time"),
    )


def reason(exc: BaseException) -> str:
    """The error's message on one line: the server's message and detail when it sent one
    (its CONTEXT only retraces esgen_append's own lines), else libpq's or the pool's text."""
    text = str(exc)
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        primary, detail = exc.diag.message_primary, exc.diag.message_detail
        text = f"{primary} ({detail})" if detail else primary
    return " ".join(text.split()) or type(exc).__name__


def connection_lost(exc: BaseException) -> bool:
    """Whether the error ended the connection (as opposed to, say, a deadlock or a query
    cancelled by statement_timeout, which PostgreSQL also reports as operational errors)."""
    if isinstance(exc, PoolTimeout | PoolClosed):
        return False
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    sqlstate = exc.sqlstate
    # No SQLSTATE: libpq's own report of a socket that closed or failed.
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SESSION_ENDED
