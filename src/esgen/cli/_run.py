"""`esgen projections` and `esgen sagas`: run a context's read side against a store.

They import the generated package of the context (from the configured output folder)
and use its service, so they run the user's own projection and saga code.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

__all__ = ["projections", "sagas"]

STORE_HELP = "The event store: a SQLite file path, or a postgresql:// DSN."


def _fail(message: str) -> NoReturn:
    raise click.UsageError(message)


def _open_store(location: str, schema: str) -> Any:
    """The store at `location`, which must already be an esgen event store: these commands
    never turn another database (or a mistyped schema) into one."""
    from esgen.runtime import SQLiteEventStore

    if location.startswith(("postgresql://", "postgres://")):
        try:
            from esgen.runtime import PostgresEventStore
        except ImportError as exc:
            _fail(f"PostgreSQL support is not installed ({exc}); pip install 'esgen[postgres]'")
        _require_postgres_store(location, schema)
        return PostgresEventStore(location, schema=schema)
    if not location.strip():
        _fail("--store is empty; give a SQLite file path, or a postgresql:// DSN")
    path = Path(location)
    if not path.exists():
        _fail(f"no event store at {location!r} (a SQLite file path, or a postgresql:// DSN)")
    if path.is_dir():
        _fail(f"--store {location}: a folder, not a SQLite file; give the store's file")
    _require_sqlite_store(path)
    return SQLiteEventStore(path)


_NOT_A_STORE = "the application creates its tables the first time it opens the store"


def _require_sqlite_store(path: Path) -> None:
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'esgen_events'"
            ).fetchone()
    except sqlite3.DatabaseError as exc:
        _fail(f"{path} is not a SQLite database ({exc})")
    if found is None:
        _fail(f"{path} holds no esgen event store (no esgen_events table); {_NOT_A_STORE}")


def _require_postgres_store(dsn: str, schema: str) -> None:
    import psycopg

    from esgen.runtime import BackendUnavailable
    from esgen.runtime._postgres_schema import validate_schema_name

    try:
        validate_schema_name(schema)
    except ValueError as exc:
        _fail(f"--schema: {exc}")

    try:
        with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as db:
            row = db.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = 'esgen_events'",
                (schema,),
            ).fetchone()
    except psycopg.Error as exc:
        # libpq's messages run over several lines; one line is enough to say what failed.
        reason = " ".join(str(exc).split())
        raise BackendUnavailable(f"cannot reach PostgreSQL: {reason}") from None
    if row is None:
        _fail(f"schema {schema!r} holds no esgen event store (no esgen_events table); "
              f"check --schema, or {_NOT_A_STORE}")  # fmt: skip


@contextmanager
def _opened(location: str, schema: str) -> Iterator[Any]:
    store = _open_store(location, schema)
    try:
        yield store
    finally:
        store.close()  # a PostgreSQL pool left to the garbage collector complains


def _service_class(context: str | None) -> Any:
    """The context's generated service class, found before any store is opened."""
    from esgen.cli._common import project_settings, shown
    from esgen.schema import SchemaError, did_you_mean, load_schema_dir, pascal

    settings = project_settings()
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
            raise click.ClickException(f"importing {context}.service failed: {exc}") from exc
        _fail(f"no generated {context}.service in {shown(settings.out_dir)}: run esgen generate")
    except Exception as exc:  # the user's own code: say where, without a traceback
        raise click.ClickException(f"importing {context}.service failed: {exc!r}") from exc
    return getattr(module, f"{pascal(context)}Service")


@contextmanager
def _progress(label: str, total: int) -> Iterator[Any]:
    """A progress bar on long runs; quiet for short ones."""
    if total < 10_000:
        yield lambda name, position, head: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        done = 0

        def update(name: str, position: int, head: int) -> None:
            nonlocal done
            bar.length = max(bar.length or 0, head)
            bar.update(position - done)
            done = position

        yield update


class _Group(click.Group):
    """Reports esgen's own errors (a store that is not one, a projection to rebuild) as
    one line and exit 1, not as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from esgen._errors import EsgenError

        try:
            return super().invoke(ctx)
        except EsgenError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, short_help="Catch up, rebuild or inspect a context's projections.")
def projections() -> None:
    """Catch up, follow, rebuild or inspect the projections of a context."""


@contextmanager
def _runner(store: str, schema: str, context: str | None) -> Iterator[Any]:
    service_class = _service_class(context)
    if not hasattr(service_class, "projections"):
        _fail("the context declares no projections")
    with _opened(store, schema) as opened:
        yield service_class(opened).projections()


@projections.command(
    "status", short_help="Show each projection's checkpoint and how far behind it is."
)
@click.option("--store", required=True, help=STORE_HELP)
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="The PostgreSQL schema of the store's tables.",
)
@click.option("--context", help="The context, when the schema has several.")
def status(store: str, schema: str, context: str | None) -> None:
    """Show each projection's generation, checkpoint and how far behind it is."""
    with _runner(store, schema, context) as runner:
        for item in runner.status():
            notes = ""
            if item.needs_rebuild:
                notes += (
                    "  needs a rebuild: its table was built with other fields, or by an "
                    "esgen that stored them otherwise (esgen projections rebuild)"
                )
            if item.rebuilding is not None:
                generation, position = item.rebuilding
                notes += f"  rebuild of generation {generation} unfinished at {position}"
            click.echo(
                f"{item.name:30} generation {item.generation}  at {item.position} of "
                f"{item.head}  ({item.behind} behind){notes}"
            )


@projections.command("catch-up")
@click.option("--store", required=True, help=STORE_HELP)
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="The PostgreSQL schema of the store's tables.",
)
@click.option("--context", help="The context, when the schema has several.")
@click.option("--follow", is_flag=True, help="Keep following new events until interrupted.")
def catch_up(store: str, schema: str, context: str | None, follow: bool) -> None:
    """Apply every event recorded since each projection's checkpoint."""
    with _runner(store, schema, context) as runner:
        behind = sum(item.behind for item in runner.status())
        with _progress("catching up", behind) as progress:
            handled = runner.catch_up(progress)
        click.echo(f"esgen: {handled} event(s) applied; projections are up to date")
        if follow:
            stop = threading.Event()
            try:
                runner.run(stop)
            except KeyboardInterrupt:
                stop.set()


@projections.command("rebuild", short_help="Rebuild read models (all, or NAMES) from every event.")
@click.argument("names", nargs=-1)
@click.option("--store", required=True, help=STORE_HELP)
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="The PostgreSQL schema of the store's tables.",
)
@click.option("--context", help="The context, when the schema has several.")
def rebuild(names: tuple[str, ...], store: str, schema: str, context: str | None) -> None:
    """Replay all events into fresh read models (all, or NAMES), then switch readers over.

    Readers keep the current read model until the rebuilt one has caught up.
    """
    with _runner(store, schema, context) as runner:
        known = list(runner.projections)
        chosen = list(names) or known
        unknown = [n for n in chosen if n not in known]
        if unknown:
            _fail(f"no projection {unknown[0]!r} (known: {', '.join(known)})")
        head = runner.status()[0].head if known else 0
        for name in chosen:
            with _progress(f"rebuilding {name}", head) as progress:
                handled = runner.rebuild(name, progress)
            click.echo(f"esgen: {name} rebuilt from {handled} event(s)")


@click.group(cls=_Group)
def sagas() -> None:
    """Run the sagas of a context."""


@sagas.command("run", short_help="Handle events since each saga's checkpoint, and due deadlines.")
@click.option("--store", required=True, help=STORE_HELP)
@click.option(
    "--schema",
    default="public",
    show_default=True,
    help="The PostgreSQL schema of the store's tables.",
)
@click.option("--context", help="The context, when the schema has several.")
@click.option("--follow", is_flag=True, help="Keep following new events until interrupted.")
@click.option(
    "--from-beginning",
    is_flag=True,
    help="A saga's first run handles every event ever stored (default: from now on).",
)
def run_sagas(
    store: str, schema: str, context: str | None, follow: bool, from_beginning: bool
) -> None:
    """Handle every event recorded since each saga's checkpoint, and due deadlines.

    The first run of a saga on a store starts at the store's head, so history does not
    send commands again, unless --from-beginning.
    """
    service_class = _service_class(context)
    if not hasattr(service_class, "sagas"):
        _fail("the context declares no sagas")
    with _opened(store, schema) as opened:
        runners = service_class(opened).sagas(start="beginning" if from_beginning else "now")
        handled = sum(r.catch_up() for r in runners)
        click.echo(f"esgen: sagas handled {handled} event(s)")
        if follow:
            _follow(runners)


def _follow(runners: list[Any]) -> None:
    """Run every saga until interrupted; if one of them fails, stop them all and fail."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def run(runner: Any) -> None:
        try:
            runner.run(stop)
        except BaseException as exc:
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.5)
    except KeyboardInterrupt:
        stop.set()
    if failures:
        raise click.ClickException(f"a saga stopped: {failures[0]!r}")
