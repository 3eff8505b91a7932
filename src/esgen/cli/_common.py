"""What every command shares: exit codes, how paths are shown, how errors end a run.

Imports click only; each command imports the parts of esgen it needs when it runs.
"""

from __future__ import annotations

import errno
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
    "write_file",
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
    if not path.exists() and path.parent.is_dir():
        from esgen.schema import closest

        near = closest(path.name, [p.name for p in path.parent.iterdir() if p.is_dir()])
        what += f" (did you mean {shown(path.parent / near)!r}?)" if near else ""
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


def write_file(path: Path, text: str) -> None:
    """Replace one file whole: written beside it, then renamed over it, so that a failure
    leaves the old file (or none), never half of one. Raises WriteError saying why."""
    import tempfile

    from esgen.codegen import WriteError

    def named(where: Path) -> str:  # as the user wrote it, unless shown shorter
        relative = shown(where)
        return str(where) if relative.startswith(os.pardir + os.sep + os.pardir) else relative

    target = Path(os.path.realpath(path)) if path.is_symlink() else path  # through a link
    folder = target.parent
    # Found before writing, and told as the OS would, followed by what it means here.
    problem = None
    if target.is_dir():
        problem = f"{os.strerror(errno.EISDIR)} (give the path of a file)"
    elif not folder.is_dir():
        found = next((p for p in (folder, *folder.parents) if p.exists()), None)
        problem = (
            f"{os.strerror(errno.ENOTDIR)} ({named(found)} is a file, not a folder)"
            if found is not None and not found.is_dir()
            else f"{os.strerror(errno.ENOENT)} (the folder {named(folder)} does not exist; "
            "create it first)"
        )
    if problem is not None:
        raise WriteError(f"cannot write {named(path)}: {problem}")
    temporary = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        temporary = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        # mkstemp makes the file private; keep the mode of the file it replaces, or the usual.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~umask)
        os.replace(name, target)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise WriteError(
            f"cannot write {named(path)}: {exc.strerror or exc}; nothing was written"
        ) from None
