"""`esgen generate`: the schema folder's code, scaffolds and tests, written or checked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from esgen.cli._common import (
    EXIT_SCHEMA,
    fail_schema,
    project_settings,
    shown,
    warn_remote,
    write_plan,
)
from esgen.cli._options import project_options

if TYPE_CHECKING:
    from collections.abc import Sequence

    from esgen._runcache import ObligationLike, RunCache
    from esgen.codegen import Change, Plan

__all__ = ["generate"]


@click.command()
@project_options
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
    config_file: Path | None,
    out_dir: Path | None,
    tests_dir: Path | None,
    check: bool,
    show_diff: bool,
    formatter: str | None,
    verbose: bool,
    no_cache: bool,
) -> None:
    """Generate code for every context in SCHEMA_DIR.

    Reads [tool.esgen] from pyproject.toml (or esgen.yaml): --config, else the nearest one
    above SCHEMA_DIR, else above the folder esgen runs in.
    """
    from esgen._errors import EsgenError
    from esgen._runcache import RunCache

    settings = project_settings(schema_dir, out_dir, formatter, tests_dir, config=config_file)
    cache = RunCache.for_run(
        settings.schema_dir,
        settings.out_dir,
        f"{settings.formatter.id}:{settings.tests_dir.resolve()}",
    )
    # With --diff, standard output is the diff alone (for `git apply`), and --check says
    # nothing there either: everything else goes to standard error.
    quiet = check or show_diff
    # A remote document is an input the run cache cannot see change without fetching it.
    remote = settings.json_schema_remote_refs
    fresh = None if no_cache or remote else cache.fresh_outputs()
    if fresh is not None:
        if not quiet:
            if verbose:
                for status, paths in (("skipped", fresh.user), ("unchanged", fresh.generated)):
                    for path in paths:
                        click.echo(f"{status:9} {shown(path)}")
            skipped = f"{len(fresh.user)} skipped, " if fresh.user else ""
            click.echo(f"esgen: {skipped}{len(fresh.generated)} unchanged")
        _report_obligations(fresh.obligations, err=quiet)
        return

    from esgen.codegen import Written, plan_generation

    # Read even with --no-cache: it is the only way to tell a hand edit from a stale file.
    written = {p: [Written(k, d) for k, d in h] for p, h in cache.written().items()}
    try:
        plan = plan_generation(
            settings.schema_dir,
            settings.out_dir,
            settings.formatter,
            settings.tests_dir,
            written,
            remote_refs=remote,
        )
    except EsgenError as exc:
        fail_schema(exc)
    warn_remote(plan.remote)
    pending = plan.pending
    edited = [c for c in pending if c.edited]
    if show_diff:
        for change in pending:
            click.echo(change.diff(shown(change.path)), nl=False)
        if edited and not check:  # --check lists them below
            for change in edited:
                click.echo(_out_of_date(change), err=True)
            click.echo(f"esgen: the diff replaces hand edits in {len(edited)} file(s)", err=True)
    if check and pending:
        for change in pending:
            click.echo(_out_of_date(change), err=True)
        of_them = f", {len(edited)} of them edited by hand" if edited else ""
        replaces = " (it replaces hand edits)" if edited else ""
        click.echo(
            f"esgen: {len(pending)} file(s) out of date{of_them}; run `esgen generate`{replaces}",
            err=True,
        )
        _report_obligations(plan.obligations, err=True)
        sys.exit(EXIT_SCHEMA)
    if quiet:
        if not pending:
            _remember(cache, plan, settings.tests_dir)
        _report_obligations(plan.obligations, err=True)
        return
    write_plan(plan)
    _remember(cache, plan, settings.tests_dir)
    counts: dict[str, int] = {}
    for change in plan.changes:
        counts[change.status.value] = counts.get(change.status.value, 0) + 1
        if change.is_change or verbose:
            click.echo(f"{change.status.value:9} {shown(change.path)}{_replaced(change)}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"esgen: {summary or 'nothing to generate'}")
    _report_obligations(plan.obligations, err=False)


def _out_of_date(change: Change) -> str:
    """Why a file differs from what esgen would write now, as --check and --diff say it."""
    path = shown(change.path)
    if change.new is None:
        return f"obsolete  {path}" + (" (edited by hand)" if change.edited else "")
    if change.edited:
        # Not "stale": a hand edit is not the schema's doing, and regenerating loses it.
        return f"edited by hand {path}" + (" (and stale)" if change.stale else "")
    if change.old is None:
        return f"missing   {path}"
    # Without the run cache's record (a fresh clone), a hand edit and a stale file look
    # the same: say no more than what is known.
    return f"stale     {path}" if change.traced else f"out of date {path}"


def _replaced(change: Change) -> str:
    """What a written change did to hand edits of a generated file, if it had any."""
    if not change.edited:
        return ""
    if change.new is None:
        return " (edited by hand; removed with your edits)"
    return " (edited by hand; your edits were replaced)"


def _report_obligations(obligations: Sequence[ObligationLike], *, err: bool) -> None:
    """What the user's own modules still need, most urgent (missing) first."""
    missing = [o for o in obligations if o.missing]
    behind = [o for o in obligations if o.left_behind]
    stubs = [o for o in obligations if not (o.missing or o.left_behind)]
    if behind:
        click.echo("\nleft behind (remove them, or rename them after the new name):", err=err)
        for item in behind:
            click.echo(f"  {shown(item.path)}: {item.what}", err=err)
    if missing:
        click.echo("\nto add (mypy and the tests fail until you do):", err=err)
        for item in missing:
            click.echo(f"  {shown(item.path)}: {item.what}", err=err)
    if stubs:
        click.echo(f"\nstill to implement ({len(stubs)}):", err=err)
        for item in stubs:
            click.echo(f"  {shown(item.path)}: {item.what}", err=err)


def _remember(cache: RunCache, plan: Plan, tests_dir: Path) -> None:
    """Record the run, so that the next one can tell at once whether anything changed."""
    generated: dict[Path, tuple[str, str]] = {}
    # The obligations were read from exactly these texts (see plan_generation); their
    # digests tell the next run whether the user changed one since.
    user: dict[Path, str] = {}
    for change in plan.changes:
        if change.new is None:
            continue
        if change.owner == "user":
            user[change.path] = change.new
        elif change.key is not None:
            generated[change.path] = (change.key, change.new)
    cache.record(generated, user, plan.obligations, list(plan.roots), list(plan.inputs), tests_dir)
