"""Opening a context's service on a store, for the read-side commands.

The generated package of the context (from the configuration's output folder, or --out)
is imported, so the commands run the user's own projection and saga code. The store must
already be an esgen event store: these commands never turn another database (or a
mistyped PostgreSQL schema) into one.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from esgen.cli._common import EXIT_ERROR, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from esgen.cli._options import ProjectArgs, StoreArgs

__all__ = ["KEY_ENV", "key_hint", "open_store", "opened_service", "service_class"]

_NOT_A_STORE = "the application creates its tables the first time it opens the store"

KEY_ENV = "ESGEN_MASTER_KEY"
"""Where the master key is read from unless --master-key-env names another variable (the
runtime's MasterKey.from_env reads the same one by default)."""

# How this run's store was opened, for the message of a key that cannot be had: an esgen
# command opens one store per process, and the error that needs it is raised deep inside
# the runtime (a projection's decode, an inspector's read), far from the options.
_key_source: tuple[str, bool] = (KEY_ENV, False)  # (variable, whether it held the key)


def _fail(message: str) -> NoReturn:
    """What the person typed is wrong (the store, the context): one line, exit 2."""
    raise CommandError(message, EXIT_USAGE)


@contextmanager
def opened_service(
    project: ProjectArgs, store: StoreArgs, needs: str, *, read_only: bool = False
) -> Iterator[Any]:
    """The context's service on the store; `needs` is the method it must have
    ("projections", "sagas", "inspect"), checked before the store is opened. `read_only`
    opens a SQLite store without the write lock and PostgreSQL in read-only transactions."""
    found = service_class(project, store.context)
    if not hasattr(found, needs):
        what = "aggregates" if needs == "inspect" else needs
        _fail(f"the context declares no {what}")
    opened = open_store(
        store.location, store.pg_schema, read_only=read_only, key_env=store.master_key_env
    )
    try:
        yield found(opened)
    finally:
        opened.close()  # a PostgreSQL pool left to the garbage collector complains


def service_class(project: ProjectArgs, context: str | None) -> Any:
    """The context's generated service class, found before any store is opened."""
    from esgen.cli._common import project_settings, shown
    from esgen.schema import SchemaError, did_you_mean, load_schema_dir, pascal

    settings = project_settings(project.schema_dir, project.out_dir, config=project.config)
    try:
        schema = load_schema_dir(settings.schema_dir, remote_refs=settings.json_schema_remote_refs)
    except SchemaError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(1)
    names = [c.name for c in schema.contexts]
    if context is None:
        if len(names) != 1:
            _fail(f"choose a context with --context (one of: {', '.join(names)})")
        context = names[0]
    elif context not in names:
        _fail(
            f"no context {context!r} in {shown(settings.schema_dir)} (found: "
            f"{', '.join(names)}){did_you_mean(context, names)}"
        )
    sys.path.insert(0, str(settings.out_dir.resolve()))
    try:
        module = importlib.import_module(f"{context}.service")
    except ModuleNotFoundError as exc:
        if exc.name not in (context, f"{context}.service"):
            raise CommandError(f"importing {context}.service failed: {exc}", EXIT_ERROR) from exc
        _fail(f"no generated {context}.service in {shown(settings.out_dir)}: run esgen generate")
    except Exception as exc:  # the user's own code: say where, without a traceback
        raise CommandError(f"importing {context}.service failed: {exc!r}", EXIT_ERROR) from exc
    return getattr(module, f"{pascal(context)}Service")


def open_store(
    location: str,
    pg_schema: str,
    *,
    read_only: bool = False,
    key_env: str | None = None,
    with_key: bool = True,
) -> Any:
    """The store at `location` (a SQLite file or a postgresql:// DSN), which must already
    be an esgen event store; `read_only` opens it so that nothing can be written (for
    `esgen inspect`: no set-up, no new indexes, a file on a read-only disk).

    With `with_key`, the store gets the master key held by the environment variable
    `key_env` (--master-key-env; None: ESGEN_MASTER_KEY, which may be unset: the store
    then reads everything but personal data)."""
    from esgen.runtime import SQLiteEventStore

    master_key = _master_key(key_env) if with_key else None
    keys: dict[str, Any] = {} if master_key is None else {"master_key": master_key}
    if location.startswith(("postgresql://", "postgres://")):
        try:
            from esgen.runtime import PostgresEventStore
        except ImportError as exc:
            _fail(f"PostgreSQL support is not installed ({exc}); pip install 'esgen[postgres]'")
        _require_postgres_store(location, pg_schema)
        return PostgresEventStore(location, schema=pg_schema, read_only=read_only, **keys)
    if not location.strip():
        _fail("--store is empty; give a SQLite file path, or a postgresql:// DSN")
    path = Path(location)
    if not path.exists():
        _fail(f"no event store at {location!r} (a SQLite file path, or a postgresql:// DSN)")
    if path.is_dir():
        _fail(f"--store {location}: a folder, not a SQLite file; give the store's file")
    _require_sqlite_store(path)
    return SQLiteEventStore(path, read_only=read_only, **keys)


def _master_key(key_env: str | None) -> Any:
    """The master key in the environment, or None when ESGEN_MASTER_KEY is not set. A
    variable named by --master-key-env must be set: asking for it and not having it is a
    mistake to say at once, not at the first personal field."""
    global _key_source
    from esgen.runtime import MasterKey, PersonalDataError

    name = key_env or KEY_ENV
    if not name or "=" in name or "\0" in name:
        _fail(f"--master-key-env {name!r} is not the name of an environment variable")
    text = os.environ.get(name, "")
    if not text.strip():
        if key_env is not None:
            _fail(f"--master-key-env {name}: the environment variable {name} is not set")
        _key_source = (name, False)
        return None
    try:
        key = MasterKey.from_text(text, f"the environment variable {name}")
    except PersonalDataError as exc:
        _fail(str(exc))
    _key_source = (name, True)
    return key


def key_hint(message: str) -> str:
    """The message of a KeyUnavailable as a person running esgen should read it: where
    esgen took the master key from, or that it had none."""
    name, had_key = _key_source
    if had_key:
        return f"{message}; esgen read the master key from the environment variable {name}"
    # The runtime's advice is for code that opens a store; here the key comes from the
    # environment.
    message = message.split(" (open the store with master_key=")[0]
    return (
        f"{message}: esgen reads the master key from the environment variable {name}, "
        "which is not set"
    )


def _require_sqlite_store(path: Path) -> None:
    import sqlite3

    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        try:
            found = _events_table(uri)
        except sqlite3.OperationalError:
            # A folder this user may not write to (a read-only disk, a copy owned by someone
            # else): SQLite cannot make the WAL's shared-memory file there, so the file is
            # read as immutable, as the read-only store does.
            found = _events_table(uri + "&immutable=1")
    except sqlite3.DatabaseError as exc:
        _fail(f"{path} is not a SQLite database ({exc})")
    if not found:
        _fail(f"{path} holds no esgen event store (no esgen_events table); {_NOT_A_STORE}")


def _events_table(uri: str) -> bool:
    import sqlite3

    with closing(sqlite3.connect(uri, uri=True)) as db:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'esgen_events'"
        ).fetchone()
    return found is not None


def _require_postgres_store(dsn: str, pg_schema: str) -> None:
    import psycopg

    from esgen.runtime import BackendUnavailable
    from esgen.runtime._postgres_schema import validate_schema_name

    try:
        validate_schema_name(pg_schema)
    except ValueError as exc:
        _fail(f"--pg-schema: {exc}")

    try:
        with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as db:
            row = db.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = 'esgen_events'",
                (pg_schema,),
            ).fetchone()
    except psycopg.Error as exc:
        # libpq's messages run over several lines; one line is enough to say what failed.
        reason = " ".join(str(exc).split())
        raise BackendUnavailable(f"cannot reach PostgreSQL: {reason}") from None
    if row is None:
        _fail(
            f"PostgreSQL schema {pg_schema!r} holds no esgen event store (no esgen_events "
            f"table); check --pg-schema, or {_NOT_A_STORE}"
        )
