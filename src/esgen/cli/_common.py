"""What every command shares: exit codes, how paths are shown, how errors end a run.

Imports click only; each command imports the parts of esgen it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from collections.abc import Sequence

    from esgen._errors import EsgenError
    from esgen.codegen import Plan
    from esgen.config import Settings

__all__ = [
    "EXIT_SCHEMA",
    "EXIT_USAGE",
    "UsageError",
    "fail",
    "fail_schema",
    "project_settings",
    "shown",
    "warn_remote",
    "write_plan",
]

EXIT_SCHEMA = 1
EXIT_USAGE = 2


class UsageError(click.UsageError):
    exit_code = EXIT_USAGE


def shown(path: Path) -> str:
    """A path as the user should read it: relative to where esgen runs, when it can be."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


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
    for line in message.splitlines() or [""]:
        click.echo(f"esgen: error: {line}", err=True)
    sys.exit(code)


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
) -> Settings:
    """The settings of the project esgen runs in, overridden by the command line's options,
    with a schema folder that is there. A bad configuration file ends the run with its
    diagnostics; only a mistake on the command line gets the usage screen."""
    from esgen.config import ConfigError, check_inside, load_settings

    try:
        settings = load_settings(Path.cwd()).with_overrides(
            schema_dir, out_dir, formatter, tests_dir
        )
        check_inside(settings)  # before anything is read or written
    except ConfigError as exc:
        fail(str(exc))
    _check_schema_dir(settings, given=schema_dir is not None)
    return settings


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
    raise UsageError(f"{message}; pass SCHEMA_DIR or set schema_dir in [tool.esgen]")


def write_plan(plan: Plan) -> None:
    """Write a plan's changes; a file that cannot be written is an error, not a traceback."""
    from esgen.codegen import WriteError, apply_plan

    try:
        apply_plan(plan)
    except WriteError as exc:
        fail(str(exc))
