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
    from esgen._errors import EsgenError
    from esgen.codegen import Plan
    from esgen.config import Settings

__all__ = [
    "EXIT_SCHEMA",
    "EXIT_USAGE",
    "UsageError",
    "check_schema_dir",
    "fail",
    "fail_schema",
    "shown",
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


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """End the run with one line on standard error."""
    click.echo(f"esgen: error: {message}", err=True)
    sys.exit(code)


def fail_schema(exc: EsgenError) -> NoReturn:
    from esgen.schema import SchemaError

    if isinstance(exc, SchemaError):
        click.echo(exc.render(), err=True)
        errors = sum(1 for d in exc.diagnostics if d.severity.value == "error")
        click.echo(f"esgen: {errors} error(s); nothing was written", err=True)
        sys.exit(EXIT_SCHEMA)
    fail(str(exc), EXIT_SCHEMA)


def check_schema_dir(settings: Settings, *, given: bool) -> None:
    """A usage error unless the schema folder in use is a folder."""
    path = settings.schema_dir
    if path.is_dir():
        return
    what = "is a file, not a folder" if path.exists() else "does not exist"
    config = settings.config_file
    where = f" (from {shown(config)})" if config is not None and not given else ""
    raise UsageError(
        f"schema folder {shown(path)!r} {what}{where}; "
        "pass SCHEMA_DIR or set schema_dir in [tool.esgen]"
    )


def write_plan(plan: Plan) -> None:
    """Write a plan's changes; a file that cannot be written is an error, not a traceback."""
    from esgen.codegen import WriteError, apply_plan

    try:
        apply_plan(plan)
    except WriteError as exc:
        fail(str(exc))
