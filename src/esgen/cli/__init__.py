"""The `esgen` command line: thin commands that map errors to exit codes.

Exit codes: 0 success; 1 schema errors, or `--check` found stale files; 2 usage or
configuration errors; 3 `esgen compat` found breaking changes (see `_cli_compat`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from esgen._cli_compat import compat, lock
from esgen._cli_docs import docs
from esgen._cli_new import new
from esgen._cli_run import projections, sagas
from esgen._errors import EsgenError
from esgen._version import __version__

if TYPE_CHECKING:
    from esgen._runcache import RunCache
    from esgen.codegen import Plan
    from esgen.config import Settings

__all__ = ["main"]

EXIT_SCHEMA = 1
EXIT_USAGE = 2


class UsageError(click.UsageError):
    exit_code = EXIT_USAGE


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _fail_schema(exc: EsgenError) -> None:
    from esgen.schema import SchemaError

    if isinstance(exc, SchemaError):
        click.echo(exc.render(), err=True)
        errors = sum(1 for d in exc.diagnostics if d.severity.value == "error")
        click.echo(f"esgen: {errors} error(s); nothing was written", err=True)
        sys.exit(EXIT_SCHEMA)
    click.echo(f"esgen: error: {exc}", err=True)
    sys.exit(EXIT_SCHEMA)


def check_schema_dir(settings: Settings, *, given: bool) -> None:
    """A usage error unless the schema folder in use is a folder."""
    path = settings.schema_dir
    if path.is_dir():
        return
    what = "is a file, not a folder" if path.exists() else "does not exist"
    config = settings.config_file
    where = f" (from {_shown(config)})" if config is not None and not given else ""
    raise UsageError(
        f"schema folder {_shown(path)!r} {what}{where}; "
        "pass SCHEMA_DIR or set schema_dir in [tool.esgen]"
    )


def write_plan(plan: Plan) -> None:
    """Write a plan's changes; a file that cannot be written is an error, not a traceback."""
    from esgen.codegen import WriteError, apply_plan

    try:
        apply_plan(plan)
    except WriteError as exc:
        click.echo(f"esgen: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="esgen")
def main() -> None:
    """Generate typed, event-sourced Python from YAML schemas."""


main.add_command(compat)
main.add_command(lock)


@main.command()
@click.argument("schema_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder; each context becomes a package in it.",
)
@click.option(
    "--tests",
    "tests_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for test modules (default: tests_dir of [tool.esgen], else next to --out).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file is stale.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option(
    "--formatter",
    type=click.Choice(["black", "ruff", "none"]),
    help="Override the configured formatter.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also list files that did not change.")
@click.option("--no-cache", is_flag=True, help="Do the full run even if nothing changed.")
def generate(
    schema_dir: Path | None,
    out_dir: Path | None,
    tests_dir: Path | None,
    check: bool,
    show_diff: bool,
    formatter: str | None,
    verbose: bool,
    no_cache: bool,
) -> None:
    """Generate code for every context in SCHEMA_DIR.

    Without SCHEMA_DIR, reads [tool.esgen] from pyproject.toml (or esgen.yaml) of the
    project esgen runs in.
    """
    from esgen._runcache import RunCache
    from esgen.config import ConfigError, load_settings

    try:
        settings = load_settings(Path.cwd()).with_overrides(
            schema_dir, out_dir, formatter, tests_dir
        )
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    check_schema_dir(settings, given=schema_dir is not None)
    cache = RunCache.for_run(
        settings.schema_dir,
        settings.out_dir,
        f"{settings.formatter.id}:{settings.tests_dir.resolve()}",
    )
    fresh = None if no_cache else cache.fresh_outputs()
    if fresh is not None:
        generated, user = fresh
        if verbose:
            for status, paths in (("skipped", user), ("unchanged", generated)):
                for path in paths:
                    click.echo(f"{status:9} {_shown(path)}")
        skipped = f"{len(user)} skipped, " if user else ""
        click.echo(f"esgen: {skipped}{len(generated)} unchanged")
        return

    from esgen.codegen import plan_generation

    try:
        plan = plan_generation(
            settings.schema_dir, settings.out_dir, settings.formatter, settings.tests_dir
        )
    except EsgenError as exc:
        _fail_schema(exc)
        return
    pending = plan.pending
    if show_diff:
        for change in pending:
            click.echo(change.diff(_shown(change.path)), nl=False)
    if check or show_diff:
        if check and pending:
            for change in pending:
                what = {"created": "missing", "updated": "stale", "removed": "obsolete"}
                click.echo(f"{what[change.status.value]:9} {_shown(change.path)}", err=True)
            click.echo(f"esgen: {len(pending)} file(s) out of date; run `esgen generate`", err=True)
            sys.exit(EXIT_SCHEMA)
        if not pending:
            _remember(cache, plan, settings.tests_dir)
        return
    write_plan(plan)
    _remember(cache, plan, settings.tests_dir)
    counts: dict[str, int] = {}
    for change in plan.changes:
        counts[change.status.value] = counts.get(change.status.value, 0) + 1
        if change.is_change or verbose:
            click.echo(f"{change.status.value:9} {_shown(change.path)}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"esgen: {summary or 'nothing to generate'}")
    _report_obligations(plan)


def _report_obligations(plan: Plan) -> None:
    """What the user's own modules still need, most urgent (missing) first."""
    missing = [o for o in plan.obligations if o.missing]
    stubs = [o for o in plan.obligations if not o.missing]
    if missing:
        click.echo("\nto add (mypy and the tests fail until you do):")
        for item in missing:
            click.echo(f"  {_shown(item.path)}: {item.what}")
    if stubs:
        click.echo(f"\nstill to implement ({len(stubs)}):")
        for item in stubs:
            click.echo(f"  {_shown(item.path)}: {item.what}")


def _remember(cache: RunCache, plan: Plan, tests_dir: Path) -> None:
    """Record the run, so that the next one can tell at once whether anything changed."""
    generated: dict[Path, str] = {}
    user: list[Path] = []
    for change in plan.changes:
        if change.new is None:
            continue
        if change.owner == "user":
            user.append(change.path)
        else:
            generated[change.path] = change.new
    cache.record(generated, user, list(plan.roots), list(plan.inputs), tests_dir)


@main.command("json-schema")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)
def json_schema(out_file: Path | None) -> None:
    """Print the JSON Schema of esgen's YAML language (for editor support)."""
    from esgen.schema import language_json_schema

    text = language_json_schema()
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")


# These modules import click only; each command imports what it needs when it runs.
main.add_command(docs)
main.add_command(new)
main.add_command(projections)
main.add_command(sagas)

if __name__ == "__main__":  # pragma: no cover
    main()
