"""What every command shares: exit codes, how paths are shown, how errors end a run.

Imports click only; each command imports the parts of esgen it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from esgen._errors import EsgenError
    from esgen.codegen import Plan
    from esgen.config import Settings

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_SCHEMA",
    "EXIT_STALLED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "CommandError",
    "UsageError",
    "configuration",
    "fail",
    "fail_schema",
    "problem_text",
    "project_settings",
    "shown",
    "shown_where",
    "utc_text",
    "warn_remote",
    "write_plan",
]

EXIT_SCHEMA = 1
EXIT_ERROR = 1  # the same code: a run that failed (a handler's error, a store's)
EXIT_USAGE = 2
# 3 is `esgen compat`'s breaking changes (see _compat).
EXIT_STALLED = 4  # `esgen sagas run` / `retry`: saga instances stalled on an error
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT (128 + 2)
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): `timeout`, a Job's deadline, `docker stop`


class UsageError(click.UsageError):
    """A malformed command line: click's usage screen, exit 2."""

    exit_code = EXIT_USAGE


class CommandError(click.ClickException):
    """Everything else that ends a command: one `esgen: error:` line per line of the
    message, no usage screen; exit 2 for what the person typed wrong (a store that is not
    one, an unknown name), 1 for what failed. The read-side commands write it as a JSON
    object under --log-format json."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        # click declares exit_code on the class; click's main reads it from the instance.
        setattr(self, "exit_code", code)  # noqa: B010

    def show(self, file: IO[Any] | None = None) -> None:
        for line in self.message.splitlines() or [""]:
            click.echo(f"esgen: error: {line}", err=True)


def shown(path: Path) -> str:
    """A path as the user should read it: relative to where esgen runs, when it can be."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def shown_where(where: str | None) -> str | None:
    """A `file:line in func` (Problem.where) with its file as `shown` says it when the file
    is under the current folder; absolute otherwise, so that it can be found from anywhere."""
    if where is None:
        return None
    place, sep, func = where.rpartition(" in ")
    if not sep:
        place, func = where, ""
    path, colon, line = place.rpartition(":")
    if not colon or not os.path.isabs(path):
        return where
    try:
        relative = Path(path).relative_to(Path.cwd())
    except ValueError:
        return where
    return f"{relative}:{line}{sep}{func}"


def problem_text(problem: Any) -> str:
    """A recorded `Problem` as the status commands show it: the error on its event, the
    user's line, and how many attempts failed when more than one."""
    where = shown_where(problem.where)
    attempts = f" ({problem.attempts} attempts)" if problem.attempts > 1 else ""
    return f"{problem.describe()}{f' at {where}' if where else ''}{attempts}"


def utc_text(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


def warn_remote(urls: Sequence[str]) -> None:
    """Say, once a run, that the output depends on documents fetched from the network."""
    for url in urls:
        click.echo(
            f"esgen: warning: the output depends on the remote document {url} "
            "(json_schema_remote_refs = true): it changes when that document does; copy the "
            "file into the project and refer to it by a relative path to pin it",
            err=True,
        )


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """End the run with one line on standard error (one per problem, when several)."""
    raise CommandError(message, code)


def fail_schema(exc: EsgenError) -> NoReturn:
    from esgen.schema import SchemaError

    if isinstance(exc, SchemaError):
        click.echo(exc.render(), err=True)
        errors = sum(1 for d in exc.diagnostics if d.severity.value == "error")
        click.echo(f"esgen: {errors} error(s); nothing was written", err=True)
        sys.exit(EXIT_SCHEMA)
    fail(str(exc), EXIT_SCHEMA)


def project_settings(
    schema_dir: Path | None = None,
    out_dir: Path | None = None,
    formatter: str | None = None,
    tests_dir: Path | None = None,
    *,
    config: Path | None = None,
) -> Settings:
    """The settings of the project (see `configuration`), overridden by the command line's
    options, with a schema folder that is there. A bad configuration file ends the run with
    its diagnostics; only a mistake on the command line gets the usage screen."""
    from esgen.config import ConfigError, check_inside

    try:
        settings = configuration(schema_dir, config).with_overrides(
            schema_dir, out_dir, formatter, tests_dir
        )
        check_inside(settings)  # before anything is read or written
    except ConfigError as exc:
        fail(str(exc))
    _check_schema_dir(settings, given=schema_dir is not None)
    return settings


def configuration(schema_dir: Path | None, config: Path | None) -> Settings:
    """Which configuration a command reads, the one rule for every command: `--config FILE`
    if given; else, with SCHEMA_DIR, the nearest one above that folder (so a project's
    commands work from anywhere), falling back to the one above the current directory;
    else the one above the current directory. Its relative paths are relative to its
    own folder."""
    from esgen.config import find_config, load_config, load_settings

    if config is not None:
        return load_config(config)
    if schema_dir is not None:
        # Absolute and without `..`, so that the search goes on above the current
        # directory and visits each folder once. From the folder holding SCHEMA_DIR: a
        # configuration lives beside or above its schemas, and every YAML file inside
        # the schema folder is a schema (an `esgen.yaml` there is one, not settings).
        found = find_config(Path(os.path.abspath(schema_dir)).parent)
        if found is not None:
            return load_config(found)
    return load_settings(Path.cwd())


def _check_schema_dir(settings: Settings, *, given: bool) -> None:
    path = settings.schema_dir
    if path.is_dir():
        return
    what = "is a file, not a folder" if path.exists() else "does not exist"
    if not path.exists() and path.parent.is_dir():
        from esgen._suggest import closest

        near = closest(path.name, sorted(p.name for p in path.parent.iterdir() if p.is_dir()))
        what += f" (did you mean {shown(path.parent / near)!r}?)" if near else ""
    config = settings.config_file
    message = f"schema folder {shown(path)!r} {what}"
    if config is not None and not given:
        # The configuration named it (or left the default): not the command line's fault.
        fail(f"{message} (from {shown(config)}); pass SCHEMA_DIR or set schema_dir in [tool.esgen]")
    fail(f"{message}; pass SCHEMA_DIR or set schema_dir in [tool.esgen]")


def write_plan(plan: Plan) -> None:
    """Write a plan's changes; a file that cannot be written is an error, not a traceback."""
    from esgen.codegen import WriteError, apply_plan

    try:
        apply_plan(plan)
    except WriteError as exc:
        fail(str(exc))
