"""`esgen compat` and `esgen lock`: the compatibility gate and the record of what was published.

Exit codes: 0 compatible (or lock written / up to date); 1 `lock --check` found the lock out
of date; 2 usage or input errors (unknown ref, missing or damaged lock, a schema that does
not load); 3 breaking changes (`lock`: refused to record them without --force).

Only click is imported here: the command line must start fast, so the compat package is
imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from esgen.cli._common import fail, project_settings, shown, warn_remote
from esgen.cli._options import project_options

if TYPE_CHECKING:
    from esgen.compat import Side
    from esgen.config import Settings

__all__ = ["EXIT_BREAKING", "EXIT_INPUT", "EXIT_STALE", "compat", "lock"]

EXIT_STALE = 1
EXIT_INPUT = 2
EXIT_BREAKING = 3

# Kept in step with esgen.compat.FORMATS by a test; importing it here would be slow.
_FORMATS = ("text", "json", "github", "markdown")


def _fail(command: str, message: str) -> NoReturn:
    click.echo(f"esgen {command}: error: {message}", err=True)
    sys.exit(EXIT_INPUT)


def _current(command: str, settings: Settings, strict: bool = False) -> Side:
    from esgen.compat import current_side
    from esgen.schema import SchemaError

    remote = settings.json_schema_remote_refs
    try:
        side = current_side(settings.schema_dir, strict=strict, remote_refs=remote)
    except SchemaError as exc:
        click.echo(exc.render(), err=True)
        _fail(command, f"the schema does not load ({exc}); fix it first")
    warn_remote(side.schema.remote_documents)
    return side


def _folder_schema_dir(folder: Path) -> Path:
    """A project folder stands for its configured schema folder; any other for itself."""
    from esgen.config import ConfigError, check_inside, find_config, load_settings

    config = find_config(folder)
    if config is not None and config.parent.resolve() == folder.resolve():
        try:
            settings = load_settings(folder)
            check_inside(settings)
            return settings.schema_dir
        except ConfigError as exc:  # the other project's configuration, as ours would be
            fail(str(exc))
    return folder


def _against(against: str | None, settings: Settings, lock_file: Path | None) -> Side:
    from esgen.compat import LOCK_NAME, CompatError, directory_side, git_side, load_lock

    remote = settings.json_schema_remote_refs
    if against is None:
        return load_lock(lock_file or settings.root / LOCK_NAME)
    if not against.strip():
        # Path("") is ".", which would quietly compare the schema with itself.
        raise CompatError("--against is empty; give a git ref, a schema folder or a lock file")
    path = Path(against)
    if path.is_file():
        return load_lock(path)
    if path.is_dir():
        return directory_side(_folder_schema_dir(path), remote_refs=remote)
    if against.startswith(("/", "./", "../", "~")) or against in (".", ".."):
        # No git ref can be spelt like this: it was meant as a path.
        raise CompatError(f"--against {against}: no such file or folder")
    return git_side(settings.schema_dir, against, remote_refs=remote)


@click.command(short_help="Check that the schema still reads what was published.")
@project_options
@click.option(
    "--against",
    metavar="REF|PATH",
    help="A git ref (branch, tag, commit), a schema folder, or a lock file to compare with. "
    "Default: esgen.lock.",
)
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The lock file, when not esgen.lock next to the configuration.",
)
@click.option("--format", "output", type=click.Choice(_FORMATS), default="text", show_default=True)
@click.option(
    "--ignore",
    multiple=True,
    metavar="RULE[:ELEMENT]",
    help="Skip a rule (ES103 or EVENT_VERSION_SAME), everywhere or for one element "
    "(ES103:bank.AccountOpened). Repeatable.",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--list-rules", is_flag=True, help="Print every rule and exit.")
def compat(
    schema_dir: Path | None,
    config_file: Path | None,
    against: str | None,
    lock_file: Path | None,
    output: str,
    ignore: tuple[str, ...],
    strict: bool,
    list_rules: bool,
) -> None:
    """Check that the schema still reads everything that was published.

    Compares SCHEMA_DIR (default: from the configuration) with a git ref, another folder,
    or esgen.lock, and reports every breaking change. Exit 0: compatible; 3: breaking
    changes; 2: the comparison could not be made.
    """
    from esgen.compat import CompatError, GitError, check, render, repository_root, rules_table

    if list_rules:
        click.echo(rules_table(), nl=False)
        return
    settings = project_settings(schema_dir, config=config_file)
    new = _current("compat", settings)
    try:
        old = _against(against, settings, lock_file)
        report = check(old, new, ignore)
    except CompatError as exc:
        _fail("compat", str(exc))
    if old.kind == "git" and not old.schema.contexts and new.schema.contexts:
        # Silent "everything is new" would pass a moved folder's in-place changes.
        click.echo(
            f"esgen compat: note: no schema files in {old.detail.get('path')} at {against}, "
            "so every event counts as new. If the folder moved, check out the ref elsewhere "
            "(`git worktree add`) and compare with that folder: --against PATH",
            err=True,
        )
    repository = None
    if output == "github":
        try:
            repository = repository_root(settings.schema_dir)
        except GitError:
            repository = None
    click.echo(render(report, output, repository), nl=False)
    if report.errors or (strict and report.warnings):
        sys.exit(EXIT_BREAKING)


@click.command(short_help="Record the published event versions in esgen.lock.")
@project_options
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The lock file, when not esgen.lock next to the configuration.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Record the schema even where published versions changed or vanished.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the lock is out of date.")
def lock(
    schema_dir: Path | None,
    config_file: Path | None,
    lock_file: Path | None,
    force: bool,
    check: bool,
) -> None:
    """Record every event version of the schema as published, in esgen.lock.

    Like a schema registry, it refuses to record a published version that changed in place
    or disappeared (exit 3) unless --force is given.
    """
    from esgen.compat import LOCK_NAME, CompatError, plan_lock, render

    settings = project_settings(schema_dir, config=config_file)
    default = settings.root / LOCK_NAME
    if lock_file is None and default.is_symlink():
        # The project's own lock: read and replaced in place, never through a link that a
        # checkout could aim anywhere. A path given with --lock is the person's choice.
        message = (
            f"{shown(default)} is a link (to {os.readlink(default)}); esgen reads and writes "
            "the project's lock only as a file of its own: replace the link with the file, "
            "or name it with --lock"
        )
        _fail("lock", message)
    new = _current("lock", settings, strict=True)
    try:
        plan = plan_lock(new, lock_file or default, force=force)
    except CompatError as exc:
        _fail("lock", str(exc))
    if plan.breaking:
        assert plan.report is not None
        click.echo(render(plan.report, "text"), nl=False)
        if not force:
            click.echo(
                f"esgen lock: refusing to record {plan.breaking} breaking change(s) in "
                f"{plan.label}; fix the schema, or record them anyway with --force (only when "
                "no stored events and no consumers depend on what changed)",
                err=True,
            )
            sys.exit(EXIT_BREAKING)
        click.echo(f"esgen lock: --force: recording {plan.breaking} breaking change(s)", err=True)
    if plan.up_to_date:
        click.echo(f"esgen lock: {plan.label} is up to date ({plan.recorded} event version(s))")
        return
    if check:
        click.echo(f"esgen lock: {plan.label} is out of date; run `esgen lock`", err=True)
        sys.exit(EXIT_STALE)
    from esgen.codegen import WriteError, write_file

    try:
        write_file(plan.path, plan.text)
    except WriteError as exc:
        _fail("lock", str(exc))
    click.echo(
        f"esgen lock: wrote {plan.label} ({plan.recorded} event version(s), "
        f"{plan.newly} newly recorded)"
    )
