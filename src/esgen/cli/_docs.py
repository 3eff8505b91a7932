"""`esgen docs`: the catalog of a schema folder, as Markdown pages and one offline HTML page,
and the AsyncAPI documents of published events.

Registered on `esgen.cli.main`; only click is imported at module level, so the commands
that do not write docs load nothing of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from esgen.cli._common import (
    EXIT_SCHEMA,
    fail,
    fail_schema,
    project_settings,
    shown,
    write_plan,
)
from esgen.cli._options import project_options

__all__ = ["docs"]


@click.command()
@project_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Catalog folder (default: docs_dir of [tool.esgen], else docs/ beside the schemas).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the catalog is stale.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Also list files that did not change.")
def docs(
    schema_dir: Path | None,
    config_file: Path | None,
    out_dir: Path | None,
    check: bool,
    show_diff: bool,
    verbose: bool,
) -> None:
    """Write the catalog of every context in SCHEMA_DIR.

    Per context a Markdown page (with a Mermaid flow GitHub draws), an index, and one
    HTML page with the same content that works offline; for each context that publishes
    events, an AsyncAPI 3 document of them (<context>.asyncapi.yaml). Reads the
    configuration as `esgen generate` does.
    """
    from esgen._errors import EsgenError
    from esgen.docs import plan_docs

    settings = project_settings(schema_dir, config=config_file)
    # --out, else docs_dir of [tool.esgen], else docs/ beside the schema folder in use.
    target = out_dir or settings.docs_dir
    blocker = next((p for p in (target, *target.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        where = " (docs_dir in the configuration)" if out_dir is None else ""
        part = "" if blocker == target else f": {shown(blocker)}"
        fail(f"catalog folder {shown(target)}{where}{part} is a file, not a folder")
    try:
        plan = plan_docs(settings.schema_dir, target, remote_refs=settings.json_schema_remote_refs)
    except EsgenError as exc:
        fail_schema(exc)
    pending = plan.pending
    if show_diff:
        for change in pending:
            click.echo(change.diff(shown(change.path)), nl=False)
    if check or show_diff:
        if check and pending:
            what = {"created": "missing", "updated": "stale", "removed": "obsolete"}
            for change in pending:
                click.echo(f"{what[change.status.value]:9} {shown(change.path)}", err=True)
            click.echo(
                f"esgen: {len(pending)} catalog file(s) out of date; run `esgen docs`", err=True
            )
            sys.exit(EXIT_SCHEMA)
        return
    write_plan(plan)
    counts: dict[str, int] = {}
    for change in plan.changes:
        counts[change.status.value] = counts.get(change.status.value, 0) + 1
        if change.is_change or verbose:
            click.echo(f"{change.status.value:9} {shown(change.path)}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"esgen: {summary}")
