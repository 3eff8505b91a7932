"""The PostgreSQL schema of the event store: tables, guards and the append function.

Set-up is idempotent and safe when several processes start at once: an up-to-date schema is
recognised without locks or DDL; otherwise one process creates everything in a single
transaction under an advisory lock while the others wait, then find it done.

Appends go through one PL/pgSQL function, `esgen_append_streams`, so that each costs one round
trip and the global order's lock is held for as short a time as possible (see the comment
above `_APPEND_FUNCTION`).
"""

from __future__ import annotations

import logging
import re
import zlib
from typing import Any, NamedTuple

import psycopg
import psycopg.errors
from psycopg import sql

from esgen.runtime._errors import BackendError

logger = logging.getLogger("esgen.runtime.postgres")

__all__ = [
    "INDEXES",
    "KEY_TABLE",
    "SCHEMA_VERSION",
    "Statements",
    "check_schema",
    "ensure_schema",
    "metadata_text",
    "statements",
    "validate_schema_name",
]

SCHEMA_VERSION = 2
"""1: the tables and `esgen_append` (one stream, one time for all its events);
2: adds `esgen_append_streams` (several streams at once, a time per event), which the store
now uses for every append. Version 1 schemas are upgraded on first use; nothing is dropped."""

# Advisory locks in PostgreSQL's two-int key space (which never overlaps the one-bigint
# space applications usually pick from): a class per purpose, then a key per schema.
_APPEND_LOCK_CLASS = 0x65736765  # "esge"
_SETUP_LOCK_CLASS = 0x65736766

# A plain SQL identifier: never needs quoting in psql, and never silently truncated (63 bytes).
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def validate_schema_name(schema: str) -> None:
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            "schema must be a PostgreSQL identifier of letters, digits and underscores, "
            f"starting with a letter or underscore, at most 63 characters (got {schema!r})"
        )
    if schema.lower().startswith("pg_"):
        raise ValueError(
            f"schema names starting with 'pg_' are reserved by PostgreSQL ({schema!r})"
        )


def schema_key(schema: str) -> int:
    """The schema's advisory lock key: a stable signed 32-bit hash of its name (two schemas
    sharing a key would only share a lock, never mix their events)."""
    key = zlib.crc32(schema.encode())
    return key - 2**32 if key >= 2**31 else key


def notify_channel(schema: str) -> str:
    # pg_notify's channel is limited to 63 bytes; schemas sharing a long prefix then share a
    # channel, which costs their listeners a spurious wake-up, never a missed one.
    return f"esgen_events_{schema}"[:63]


def channel_is_own(schema: str) -> bool:
    """Whether no other schema's store notifies on this schema's channel. A name of exactly
    63 bytes is not cut, but every longer one that starts with it is cut to it."""
    return len(notify_channel(schema).encode()) < 63


def metadata_text(key: str) -> str:
    """The SQL expression indexed for lookups by a metadata key (a string literal), and
    the one the lookups must spell exactly so for PostgreSQL to use the index.

    `metadata ->> key` alone fails ("\\u0000 cannot be converted to text") on any
    metadata holding an escaped NUL, in any key, which the store accepts: an index on it
    would make such appends fail. Those rows (rare: found by a cheap strpos) are read with
    NUL replaced by U+FFFD, so the lookup compares `normalized(id)` and checks the match
    exactly in Python.
    """
    return (
        rf"(CASE WHEN strpos(metadata::text, E'\\u0000') = 0 THEN metadata ->> '{key}' "
        rf"ELSE replace(metadata::text, E'\\u0000', E'\\ufffd')::json ->> '{key}' END)"
    )


def normalized(value: str) -> str:
    """What `metadata_text` gives for a stored string `value` (see there)."""
    return value.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")


# For inspection (`esgen inspect trace`, audits). Added after the first releases: set-up
# adds them to an older schema the next time a writable store opens it; without them the
# lookups scan, and stay correct. Creating them locks out appends while they are built.
INDEXES = {
    "esgen_events_correlation": "CREATE INDEX IF NOT EXISTS esgen_events_correlation "
    f"ON {{s}}.esgen_events ({metadata_text('correlation_id')})",
    "esgen_events_causation": "CREATE INDEX IF NOT EXISTS esgen_events_causation "
    f"ON {{s}}.esgen_events ({metadata_text('causation_id')})",
    "esgen_events_event_id": "CREATE INDEX IF NOT EXISTS esgen_events_event_id "
    "ON {s}.esgen_events (event_id)",
}


def _index_ddl(schema: str) -> list[sql.Composed]:
    s = sql.Identifier(schema)
    return [sql.SQL(text).format(s=s) for text in INDEXES.values()]


KEY_TABLE = "esgen_subject_keys"

# Personal data: each subject's data key, wrapped by the application's master key. Forgetting
# sets `wrapped` to NULL for good; the row stays, so a forgotten subject is told from one
# whose key is missing (which is an error, never a placeholder). Added after the first
# releases: set-up adds it to an older schema the next time a writable store opens it.
_KEY_TABLE_DDL = """CREATE TABLE IF NOT EXISTS {s}.esgen_subject_keys (
    subject      text        NOT NULL,
    wrapped      bytea,
    created_at   timestamptz NOT NULL,
    forgotten_at timestamptz,
    CONSTRAINT esgen_subject_keys_pkey PRIMARY KEY (subject),
    CONSTRAINT esgen_subject_keys_forgotten_check
        CHECK ((wrapped IS NULL) = (forgotten_at IS NOT NULL))
)"""


# What set-up adds to a schema of an earlier release without changing its version.
_ADDED = (*INDEXES, KEY_TABLE)


def _key_table_ddl(schema: str) -> sql.Composed:
    return sql.SQL(_KEY_TABLE_DDL).format(s=sql.Identifier(schema))


def _ddl(schema: str) -> list[sql.Composed]:
    s = sql.Identifier(schema)
    append_lock = sql.SQL("{}, {}").format(
        sql.Literal(_APPEND_LOCK_CLASS), sql.Literal(schema_key(schema))
    )
    statements = [
        # json, not jsonb: the text is kept byte for byte, as the contract requires, and is
        # still queryable with ->> in read models and ad-hoc SQL.
        """CREATE TABLE IF NOT EXISTS {s}.esgen_events (
            position       bigint      NOT NULL,
            stream_id      text        NOT NULL,
            stream_version bigint      NOT NULL,
            event_type     text        NOT NULL,
            event_version  integer     NOT NULL,
            data           json        NOT NULL,
            event_id       uuid        NOT NULL,
            metadata       json        NOT NULL,
            recorded_at    timestamptz NOT NULL,
            CONSTRAINT esgen_events_pkey PRIMARY KEY (position),
            CONSTRAINT esgen_events_stream_version_key UNIQUE (stream_id, stream_version),
            CONSTRAINT esgen_events_position_check CHECK (position >= 1),
            CONSTRAINT esgen_events_stream_version_check CHECK (stream_version >= 1),
            CONSTRAINT esgen_events_event_version_check CHECK (event_version >= 1)
        )""",
        # A trigger, because privileges do not bind the table's owner (usually the
        # application's own role); TRUNCATE skips row triggers, so it gets its own.
        """CREATE OR REPLACE FUNCTION {s}.esgen_events_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'esgen_events is append-only: recorded events cannot be %',
                lower(TG_OP) || 'd' USING ERRCODE = 'restrict_violation';
        END $$""",
        "DROP TRIGGER IF EXISTS esgen_events_no_update_or_delete ON {s}.esgen_events",
        """CREATE TRIGGER esgen_events_no_update_or_delete
            BEFORE UPDATE OR DELETE ON {s}.esgen_events
            FOR EACH ROW EXECUTE FUNCTION {s}.esgen_events_append_only()""",
        "DROP TRIGGER IF EXISTS esgen_events_no_truncate ON {s}.esgen_events",
        """CREATE TRIGGER esgen_events_no_truncate
            BEFORE TRUNCATE ON {s}.esgen_events
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.esgen_events_append_only()""",
        """CREATE TABLE IF NOT EXISTS {s}.esgen_snapshots (
            stream_id   text        PRIMARY KEY,
            version     bigint      NOT NULL,
            fingerprint text        NOT NULL,
            state       json        NOT NULL,
            taken_at    timestamptz NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS {s}.esgen_schema (
            component text    PRIMARY KEY,
            version   integer NOT NULL
        )""",
        _APPEND_FUNCTION,
    ]
    ddl = [sql.SQL(text).format(s=s, append_lock=append_lock) for text in statements]
    return [*ddl, *_index_ddl(schema), _key_table_ddl(schema)]


# The global order. Positions are handed out under a transaction-scoped advisory lock that
# every append takes as its first step and holds until its transaction ends, and each append
# takes the position after the highest one it can see. So the transaction holding positions
# n+1.. can only start numbering once the one holding ..n has committed (and is visible:
# PostgreSQL releases locks after making a commit visible) or rolled back (then its numbers
# are free again). Positions therefore appear to readers in order and without gaps, and a
# reader following `position > last seen` never skips one.
#
# The lock is taken inside this function, after the client has sent everything, and a
# stand-alone append is one autocommit statement: the lock is held for the checks, the
# inserts and the commit, not for any round trip. That is the trade-off: appends commit one
# at a time per schema (no group commit across writers), in exchange for an order readers
# need no gap detection for. Statements inside run in READ COMMITTED, each with a fresh
# snapshot, so what they read after the lock is the latest committed state.
#
# One append may cover several streams (a unit of work): every stream's version is checked
# before anything is inserted, so a conflict on any of them writes nothing. The advisory lock
# is the only lock an append waits for, and it is taken before any row is touched, so two
# appends over the same streams, in whatever order they list them, cannot deadlock; the
# snapshot rows are still upserted in stream-id order, so that a transaction() block writing
# snapshots of its own meets them in one order too.
_APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION {s}.esgen_append_streams(
    p_stream_ids       text[],         -- one element per stream, in the order given
    p_expected         bigint[],       -- per stream; NULL: any version
    p_counts           integer[],      -- per stream: how many of the events below are its
    p_event_streams    integer[],      -- per event: its stream's index in p_stream_ids
    p_now              timestamptz,    -- the store clock's time
    p_recorded_at      timestamptz[],  -- per event, not decreasing (NULL: all at p_now)
    p_event_types      text[],
    p_event_versions   integer[],
    p_data             json[],
    p_event_ids        uuid[],
    p_metadata         json[],
    p_channel          text,           -- NULL: no notification
    p_snapshot_versions     bigint[],  -- per stream, NULL for none; or NULL: no snapshots
    p_snapshot_fingerprints text[],
    p_snapshot_states       json[],
    p_snapshot_taken_at     timestamptz[],
    OUT actual_versions bigint[],      -- each stream's version before this append
    OUT conflict        integer,       -- the first stream (1-based) not at its expected version
    OUT last_position   bigint         -- NULL if nothing was written
) LANGUAGE plpgsql AS $$
DECLARE
    n         integer := cardinality(p_event_types);
    firsts    integer[];               -- per stream: the index of its first event, less one
    version   bigint;
    head      bigint;
    head_time timestamptz;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'esgen_append_streams needs READ COMMITTED isolation, not %',
            current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM pg_advisory_xact_lock({append_lock});
    FOR i IN 1 .. cardinality(p_stream_ids) LOOP
        SELECT coalesce(max(e.stream_version), 0) INTO version
            FROM {s}.esgen_events AS e WHERE e.stream_id = p_stream_ids[i];
        actual_versions[i] := version;
        IF p_expected[i] IS NOT NULL AND p_expected[i] <> version THEN
            conflict := i;
            RETURN;
        END IF;
        IF p_counts[i] > 0 AND p_snapshot_versions[i] > actual_versions[i] + p_counts[i] THEN
            RAISE EXCEPTION 'snapshot of stream % at version % does not fit an append to % '
                'ending at version %', quote_literal(p_stream_ids[i]), p_snapshot_versions[i],
                quote_literal(p_stream_ids[i]), actual_versions[i] + p_counts[i]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        firsts[i] := coalesce(firsts[i - 1] + p_counts[i - 1], 0);
    END LOOP;
    IF n = 0 THEN
        RETURN;
    END IF;
    SELECT e.position, e.recorded_at INTO head, head_time
        FROM {s}.esgen_events AS e ORDER BY e.position DESC LIMIT 1;
    head := coalesce(head, 0);
    -- Each stream's events are numbered on from its version, in the order given; a clock
    -- stepping back must not make recorded times run backwards along the order.
    INSERT INTO {s}.esgen_events (position, stream_id, stream_version, event_type,
                                  event_version, data, event_id, metadata, recorded_at)
    SELECT head + e.i, p_stream_ids[e.stream],
           actual_versions[e.stream] + e.i - firsts[e.stream],
           e.event_type, e.event_version, e.data, e.event_id, e.metadata,
           greatest(coalesce(e.recorded_at, p_now), head_time)
    FROM unnest(p_event_streams, p_event_types, p_event_versions, p_data, p_event_ids,
                p_metadata, p_recorded_at)
         WITH ORDINALITY AS e(stream, event_type, event_version, data, event_id, metadata,
                              recorded_at, i);
    last_position := head + n;
    IF cardinality(array_remove(p_snapshot_versions, NULL)) > 0 THEN
        INSERT INTO {s}.esgen_snapshots AS old (stream_id, version, fingerprint, state,
                                                taken_at)
        SELECT t.stream_id, t.version, t.fingerprint, t.state, t.taken_at
        FROM unnest(p_stream_ids, p_counts, p_snapshot_versions, p_snapshot_fingerprints,
                    p_snapshot_states, p_snapshot_taken_at)
             AS t(stream_id, n, version, fingerprint, state, taken_at)
        WHERE t.version IS NOT NULL AND t.n > 0
        ORDER BY t.stream_id
        ON CONFLICT (stream_id) DO UPDATE SET
            version = excluded.version, fingerprint = excluded.fingerprint,
            state = excluded.state, taken_at = excluded.taken_at
        WHERE excluded.version >= old.version;
    END IF;
    IF p_channel IS NOT NULL THEN
        -- Delivered at commit, and only if the append commits.
        PERFORM pg_notify(p_channel, last_position::text);
    END IF;
END $$"""


class Statements(NamedTuple):
    """The store's SQL with the schema filled in, built once per store."""

    append: str
    append_streams: str
    upsert_snapshot: str
    stream_version: str
    head_position: str
    read_stream: str
    read_stream_data: str
    read_stream_data_timed: str
    read_all: str
    stream_exists: str
    load_snapshot: str
    by_correlation: str
    by_causation: str
    by_event_id: str
    time_at: str
    streams_page: str
    lock_appends: str
    subject_keys: str
    add_subject_key: str
    subject_key: str
    forget_subject: str


# Text casts: the driver would otherwise parse JSON and build UUIDs for every row, which
# RecordedEvent does lazily, only for the fields a caller reads.
_COLUMNS = (
    "position, stream_id, stream_version, event_type, event_version, data::text, "
    "event_id::text, metadata::text, recorded_at"
)


def statements(schema: str) -> Statements:
    s = sql.Identifier(schema)
    append_lock = sql.SQL("{}, {}").format(
        sql.Literal(_APPEND_LOCK_CLASS), sql.Literal(schema_key(schema))
    )

    def build(text: str) -> str:
        return (
            sql.SQL(text)
            .format(s=s, columns=sql.SQL(_COLUMNS), append_lock=append_lock)
            .as_string()
        )

    return Statements(
        # One stream: its values as scalars, made arrays by the server, since psycopg dumps
        # array parameters element by element in Python (the hot path of every save).
        append=build(
            "SELECT actual_versions, conflict, last_position FROM {s}.esgen_append_streams("
            "ARRAY[%s::text], ARRAY[%s::bigint], ARRAY[%s::integer], "
            "array_fill(1, ARRAY[%s::integer]), %s::timestamptz, %b::timestamptz[], "
            "%b::text[], %b::integer[], %b::json[], %b::uuid[], %b::json[], %s::text, "
            "ARRAY[%s::bigint], ARRAY[%s::text], ARRAY[%s::json], ARRAY[%s::timestamptz])"
        ),
        append_streams=build(
            "SELECT actual_versions, conflict, last_position FROM {s}.esgen_append_streams("
            "%b::text[], %s::bigint[], %b::integer[], %b::integer[], %s::timestamptz, "
            "%b::timestamptz[], %b::text[], %b::integer[], %b::json[], %b::uuid[], %b::json[], "
            "%s::text, %s::bigint[], %s::text[], %s::json[], %s::timestamptz[])"
        ),
        upsert_snapshot=build(
            "INSERT INTO {s}.esgen_snapshots AS old "
            "(stream_id, version, fingerprint, state, taken_at) "
            "VALUES (%s, %s, %s, %s::json, %s) ON CONFLICT (stream_id) DO UPDATE SET "
            "version = excluded.version, fingerprint = excluded.fingerprint, "
            "state = excluded.state, taken_at = excluded.taken_at "
            "WHERE excluded.version >= old.version"
        ),
        stream_version=build(
            "SELECT coalesce(max(stream_version), 0) FROM {s}.esgen_events WHERE stream_id = %s"
        ),
        head_position=build("SELECT coalesce(max(position), 0) FROM {s}.esgen_events"),
        read_stream=build("SELECT {columns} FROM {s}.esgen_events WHERE stream_id = %s"),
        read_stream_data=build(
            "SELECT stream_version, event_type, event_version, data::text "
            "FROM {s}.esgen_events WHERE stream_id = %s AND stream_version BETWEEN %s AND %s "
            "ORDER BY stream_version"
        ),
        read_stream_data_timed=build(
            "SELECT stream_version, event_type, event_version, data::text, recorded_at "
            "FROM {s}.esgen_events WHERE stream_id = %s AND stream_version BETWEEN %s AND %s "
            "ORDER BY stream_version"
        ),
        read_all=build(
            "SELECT {columns} FROM {s}.esgen_events WHERE position > %s ORDER BY position LIMIT %s"
        ),
        stream_exists=build("SELECT 1 FROM {s}.esgen_events WHERE stream_id = %s LIMIT 1"),
        load_snapshot=build(
            "SELECT stream_id, version, fingerprint, state::text, taken_at "
            "FROM {s}.esgen_snapshots WHERE stream_id = %s"
        ),
        by_correlation=build(
            "SELECT {columns} FROM {s}.esgen_events "
            f"WHERE {metadata_text('correlation_id')} = %s ORDER BY position"
        ),
        by_causation=build(
            "SELECT {columns} FROM {s}.esgen_events "
            f"WHERE {metadata_text('causation_id')} = %s ORDER BY position"
        ),
        by_event_id=build("SELECT {columns} FROM {s}.esgen_events WHERE event_id = %s"),
        time_at=build("SELECT recorded_at FROM {s}.esgen_events WHERE position = %s"),
        # A page of streams, in the database's collation order (which the unique index
        # keeps, so the keyset needs no sort): each stream's version from the
        # (stream_id, stream_version) index, its first and last times from two point
        # lookups in it. starts_with, not a range: where a prefix's matches begin and end
        # depends on the collation.
        streams_page=build(
            "SELECT s.stream_id, s.version, f.recorded_at, l.recorded_at FROM ("
            "SELECT stream_id, max(stream_version) AS version FROM {s}.esgen_events "
            "WHERE stream_id > %s AND starts_with(stream_id, %s) "
            "GROUP BY stream_id ORDER BY stream_id LIMIT %s) AS s "
            "JOIN {s}.esgen_events AS f ON f.stream_id = s.stream_id AND f.stream_version = 1 "
            "JOIN {s}.esgen_events AS l "
            "ON l.stream_id = s.stream_id AND l.stream_version = s.version "
            "ORDER BY s.stream_id"
        ),
        # The lock every append takes first (see _APPEND_FUNCTION), for a transaction that
        # must take it before the locks it takes next.
        lock_appends=build("SELECT pg_advisory_xact_lock({append_lock})"),
        subject_keys=build(
            "SELECT subject, wrapped FROM {s}.esgen_subject_keys WHERE subject = ANY(%s)"
        ),
        # Waits for a writer inserting the same subject, then keeps whichever came first.
        add_subject_key=build(
            "INSERT INTO {s}.esgen_subject_keys (subject, wrapped, created_at) "
            "VALUES (%s, %s, %s) ON CONFLICT (subject) DO NOTHING RETURNING wrapped"
        ),
        subject_key=build("SELECT wrapped FROM {s}.esgen_subject_keys WHERE subject = %s"),
        # Returns a row only when the subject was not forgotten before.
        forget_subject=build(
            "INSERT INTO {s}.esgen_subject_keys AS old "
            "(subject, wrapped, created_at, forgotten_at) VALUES (%s, NULL, %s, %s) "
            "ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, "
            "forgotten_at = excluded.forgotten_at WHERE old.forgotten_at IS NULL "
            "RETURNING 1"
        ),
    )


def ensure_schema(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    """Create the schema's tables and functions unless they are there at the current version.

    `conn` is in autocommit mode; `where` names the database for messages.
    """
    encoding = conn.execute("SHOW server_encoding").fetchone()
    if encoding is None or encoding[0] != "UTF8":
        raise BackendError(
            f"{where} uses encoding {encoding[0] if encoding else '?'}; the event store needs "
            "a UTF8 database (JSON text must round-trip unchanged)"
        )
    # Fast path: nothing to lock or create, so a fleet of processes starts without queuing.
    version, missing = _installed(conn, schema, where)
    if version == SCHEMA_VERSION and not missing:
        return
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (_SETUP_LOCK_CLASS, schema_key(schema))
        )
        version, missing = _installed(conn, schema, where)  # another process may have done it
        if version == SCHEMA_VERSION:
            # Only what later releases added is missing (a schema of an earlier release):
            # add it, without rebuilding anything else.
            if missing & set(INDEXES):
                _add_indexes(conn, schema, where)
            if KEY_TABLE in missing:
                _add_key_table(conn, schema, where)
            return
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if exists.fetchone() is None:
            # Only when missing: CREATE SCHEMA IF NOT EXISTS demands the privilege anyway.
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for statement in _ddl(schema):
            conn.execute(statement)
        # (A later schema version adds its migration steps above, for `installed` < it.)
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.esgen_schema (component, version) VALUES ('events', %s) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version"
            ).format(sql.Identifier(schema)),
            (SCHEMA_VERSION,),
        )


def _add_indexes(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    """Add the inspection indexes to a store of an earlier release. They are optional
    (lookups scan without them), and creating one needs to own the table, which an
    application's role often does not: then the store opens as before, with a warning
    giving the statements for whoever owns it."""
    for statement in _index_ddl(schema):
        try:
            with conn.transaction():  # a savepoint: a refusal leaves the set-up going
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            statements = "; ".join(s.as_string(conn) for s in _index_ddl(schema))
            logger.warning(
                "the event store in schema %r of %s has no inspection indexes, and this "
                "role may not create them (%s); `esgen inspect trace` and audits will scan "
                "until the table's owner runs: %s",
                schema,
                where,
                str(exc).strip().splitlines()[0],
                statements,
            )
            return


def _add_key_table(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    """Add the personal-data key table to a store of an earlier release. Creating it needs
    the CREATE privilege on the schema, which an application's role may lack: then the
    store opens as before, reads nothing as personal data, and refuses to write keys."""
    statement = _key_table_ddl(schema)
    try:
        with conn.transaction():  # a savepoint: a refusal leaves the set-up going
            conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        logger.warning(
            "the event store in schema %r of %s has no table for personal-data keys, and "
            "this role may not create it (%s); personal data can be neither sealed nor "
            "forgotten until the schema's owner runs: %s",
            schema,
            where,
            str(exc).strip().splitlines()[0],
            " ".join(statement.as_string(conn).split()),
        )


def check_schema(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    """What a read-only store checks instead of creating anything: the tables are there,
    at a version this esgen reads. Missing inspection indexes only make lookups scan."""
    version, _ = _installed(conn, schema, where)
    if version is None:
        raise BackendError(
            f"schema {schema!r} of {where} holds no esgen event store (no esgen_events "
            "table), and a read-only store creates nothing: the application creates its "
            "tables the first time it opens the store (check the schema name)"
        )


def _installed(
    conn: psycopg.Connection[Any], schema: str, where: str
) -> tuple[int | None, set[str]]:
    """The installed schema version (None: no store) and which of the objects later
    releases added (inspection indexes, the key table) are missing, in two queries."""
    # A query on the catalog, not to_regclass(): that reads the session's catalog cache,
    # which may not yet know about tables another process created while we waited.
    names = {
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)",
            (schema, ["esgen_schema", "esgen_events", *_ADDED]),
        )
    }
    if not {"esgen_schema", "esgen_events"} <= names:
        return None, set(_ADDED)
    return _installed_version(conn, schema, where), set(_ADDED) - names


def _installed_version(conn: psycopg.Connection[Any], schema: str, where: str) -> int | None:
    row = conn.execute(
        sql.SQL("SELECT version FROM {}.esgen_schema WHERE component = 'events'").format(
            sql.Identifier(schema)
        )
    ).fetchone()
    if row is None:
        return None
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise BackendError(
            f"schema {schema!r} of {where} has event store schema version {version}; "
            f"this esgen understands up to version {SCHEMA_VERSION}: upgrade esgen"
        )
    return version
