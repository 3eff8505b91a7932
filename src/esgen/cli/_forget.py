"""`esgen forget` and `esgen master-key`: erasing a data subject's personal data for good
(crypto-shredding), and making the master key that protects it.

`forget` needs only the store, neither the schema nor the master key: it deletes the
subject's data key in the store's own database and records a `SubjectForgotten` event
naming who asked (`--actor`) and why (`--reason`). It cannot be undone, so it asks on a
terminal and wants `--yes` anywhere else.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from esgen.cli._common import EXIT_ERROR, EXIT_USAGE, CommandError, fail

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["forget", "master_key"]


@click.command(short_help="Erase data subjects' personal data for good (crypto-shredding).")
@click.argument("subjects", nargs=-1, required=True, metavar="SUBJECT...")
@click.option(
    "--store", required=True, help="The event store: a SQLite file path, or a postgresql:// DSN."
)
@click.option("--pg-schema", default="public", show_default=True,
              help="The PostgreSQL schema of the store's tables.")  # fmt: skip
@click.option("-y", "--yes", is_flag=True, help="Forget without asking (required off a terminal).")
@click.option(
    "--actor",
    help="Who asks, recorded in the audit event's metadata.  [default: the OS user name]",
)
@click.option("--reason", help="Why, recorded in the audit event's metadata (a ticket, a law).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object a line, one per subject."
)
def forget(
    subjects: tuple[str, ...],
    store: str,
    pg_schema: str,
    yes: bool,
    actor: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Forget each SUBJECT: delete its data key, so that every personal field sealed under
    it (in events, snapshots, saga state, read-model rows and backups) reads as its declared
    placeholder from now on, and record a SubjectForgotten event (the subject, who asked and
    why; nothing of what was known) in the stream esgen-forgotten-subjects.

    Cannot be undone. A subject forgotten before is said so, and nothing is done (exit 0).
    Needs no master key. Other processes that read the subject's data within the last
    minute may still read it until their key cache expires (key_cache_seconds, 60 by
    default).
    """
    wanted = _subjects(subjects)
    metadata: dict[str, Any] = {"actor": actor if actor is not None else _os_user()}
    if reason is not None:
        metadata["reason"] = reason
    from esgen._errors import EsgenError
    from esgen.cli._failures import explain
    from esgen.cli._store import open_store
    from esgen.runtime import command_context

    done: list[str] = []
    try:
        opened = open_store(store, pg_schema, with_key=False)
        try:
            _confirm(wanted, store, yes)
            # One command context: the audit events of one run share their ids, so that
            # `esgen inspect trace` shows them together.
            with command_context(None, **metadata):
                for subject in wanted:
                    known = subject in opened.subject_keys([subject])
                    forgotten = opened.forget(subject)
                    done.append(subject)
                    _report(subject, forgotten, known, as_json)
        finally:
            opened.close()
    except NotImplementedError:
        fail("this store keeps no personal-data keys (a store of an esgen without them)")
    except EsgenError as exc:
        left = [s for s in wanted if s not in done]
        tail = f" ({len(left)} subject(s) not forgotten: {', '.join(left)})" if done else ""
        raise CommandError(f"{explain(exc)}{tail}", EXIT_ERROR) from exc


@click.command("master-key", short_help="Print a new master key for personal data.")
def master_key() -> None:
    """Print a new random master key (32 bytes, base64) for the personal data of a store.

    The application and esgen read it from the environment variable ESGEN_MASTER_KEY
    (MasterKey.from_env()). Keep it secret, and apart from the store's backups: whoever
    has both reads every subject not yet forgotten; losing it loses every personal field.
    """
    from esgen.runtime import MasterKey

    click.echo(MasterKey.generate())
    click.echo(
        "esgen: a new master key: give it to the application and to esgen in the environment "
        "variable ESGEN_MASTER_KEY; keep it secret, and apart from the store's backups",
        err=True,
    )


def _subjects(given: Sequence[str]) -> list[str]:
    """The subjects once each, in the order given; an empty one is a mistake on the
    command line (an unset shell variable), said before anything is done."""
    wanted: list[str] = []
    for subject in given:
        if not subject.strip():
            raise CommandError(
                f"an empty SUBJECT ({subject!r}): give each data subject's id", EXIT_USAGE
            )
        if subject not in wanted:
            wanted.append(subject)
    return wanted


def _confirm(subjects: Sequence[str], store: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail(
            "forgetting cannot be undone: pass --yes to forget "
            f"{_named(subjects)} (standard input is not a terminal to ask on)"
        )
    question = (
        f"Forget {_named(subjects)} in {_shown_store(store)}? Their personal data can never be "
        "read again"
    )
    # Asked on standard error and read here rather than by click.confirm, whose releases
    # differ in where the prompt's last character goes (click 8.2.0 wrote it to stdout).
    click.echo(f"{question} [y/N]: ", err=True, nl=False)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if not answer.endswith("\n"):  # Ctrl-C or the end of input at the question
        click.echo(err=True)
    agreed = answer.strip().lower() in ("y", "yes")
    if not agreed:
        fail("nothing was forgotten", EXIT_ERROR)


def _shown_store(store: str) -> str:
    """The store as a question may show it: a DSN without its password."""
    if not store.startswith(("postgresql://", "postgres://")):
        return store
    from psycopg.conninfo import conninfo_to_dict

    from esgen.runtime._postgres_calls import describe_dsn

    try:
        return describe_dsn(conninfo_to_dict(store))
    except Exception:  # an unparsable DSN: say nothing of it rather than leak it
        return "the PostgreSQL store"


def _named(subjects: Sequence[str]) -> str:
    if len(subjects) == 1:
        return f"subject {subjects[0]!r}"
    return f"{len(subjects)} subjects"


def _report(subject: str, forgotten: bool, known: bool, as_json: bool) -> None:
    if as_json:
        line: dict[str, Any] = {"subject": subject, "forgotten": forgotten, "known": known}
        click.echo(json.dumps(line, ensure_ascii=False))
        return
    if not forgotten:
        click.echo(f"subject {subject!r} was forgotten before: nothing to do")
    elif known:
        click.echo(f"forgot subject {subject!r}")
    else:
        # Forgetting an unknown subject still counts (no personal data of it is ever kept
        # from now on), but an id mistyped is the likelier reason.
        click.echo(
            f"forgot subject {subject!r} (no personal data of it was stored: is the id right?)"
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return "unknown"
