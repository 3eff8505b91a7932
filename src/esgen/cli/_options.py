"""The options commands share, each defined once: which project, which store, how much
to say, which broker. A command takes them with a decorator and gets them as one value
each.

Imports click and esgen.cli._common only, like every module a command module imports
at module level (see esgen.cli).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click

from esgen.cli._common import EXIT_ERROR, EXIT_INTERRUPTED, CommandError, UsageError

__all__ = [
    "MASTER_KEY_ENV",
    "SERVERS_ENV",
    "BrokerArgs",
    "FeedbackArgs",
    "ProjectArgs",
    "RunGroup",
    "StoreArgs",
    "broker_options",
    "project_options",
    "read_side_options",
]

Command = Callable[..., Any]


@dataclass(frozen=True)
class ProjectArgs:
    """SCHEMA_DIR and --config (see esgen.cli._common.configuration), and --out."""

    schema_dir: Path | None
    config: Path | None
    out_dir: Path | None = None


@dataclass(frozen=True)
class StoreArgs:
    location: str
    pg_schema: str
    context: str | None
    master_key_env: str | None = None
    """--master-key-env: the variable holding the master key; None: ESGEN_MASTER_KEY if set."""


@dataclass(frozen=True)
class FeedbackArgs:
    quiet: bool = False
    verbose: bool = False
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class BrokerArgs:
    """--servers, --prefix and --partitions: the NATS servers, and the subjects of a
    publishing context, which its relay and every consumer of it must share."""

    servers: tuple[str, ...]
    """As given: each may hold several URLs separated by commas (the runtime splits them
    and refuses an empty list)."""
    prefix: str
    partitions: int

    def service_options(self) -> dict[str, Any]:
        """The keywords of a generated service's relay() and consumers()."""
        return {"servers": list(self.servers), "prefix": self.prefix, "partitions": self.partitions}


SERVERS_ENV = "ESGEN_NATS_SERVERS"
"""Where --servers is read from when it is not given: a deployment sets it once for the
relay and every consumer."""

MASTER_KEY_ENV = click.option(
    "--master-key-env",
    metavar="NAME",
    help="The environment variable holding the master key of personal data (base64, as "
    "`esgen master-key` prints it).  [default: ESGEN_MASTER_KEY, when set]",
)
"""The store's master key, for every command that reads events: without one, reading a
personal field fails (KeyUnavailable) while everything else reads."""

_SCHEMA_DIR = click.argument("schema_dir", required=False, type=click.Path(path_type=Path))
_CONFIG = click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="The configuration: an esgen.yaml, or a pyproject.toml with [tool.esgen] "
    "(default: the nearest one above SCHEMA_DIR, else above the current folder).",
)


def project_options(command: Command) -> Command:
    """SCHEMA_DIR and --config, passed on as `schema_dir` and `config_file`."""
    return _SCHEMA_DIR(_CONFIG(command))


def read_side_options(*, names: str | None = None) -> Callable[[Command], Command]:
    """Everything a command on a context's read side takes: the project (SCHEMA_DIR,
    --config, --out), the store (--store, --pg-schema, --context) and the feedback (-q, -v,
    --log-format), passed on as `project`, `store` and `feedback`.

    With `names` (say "NAME"), the command takes `[SCHEMA_DIR] [NAME]...` and gets the
    names as `names`: the first argument is SCHEMA_DIR when it has a `/` in it or is a
    folder holding schema files (*.yaml, *.yml), which no projection name or saga id is.
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def wrapper(
            *args: Any,
            schema_dir: Path | None = None,
            arguments: tuple[str, ...] = (),
            config_file: Path | None,
            out_dir: Path | None,
            store: str,
            pg_schema: str | None,
            old_schema: str | None,
            context: str | None,
            master_key_env: str | None,
            quiet: bool,
            verbose: bool,
            log_format: Literal["text", "json"],
            **kwargs: Any,
        ) -> Any:
            from esgen._errors import EsgenError

            said = FeedbackArgs(quiet and not verbose, verbose, log_format)
            if names is not None:
                schema_dir, kwargs["names"] = _split(arguments)
            try:
                if old_schema is not None:
                    _said(said).warn(_OLD_SCHEMA, event="deprecated")
                return command(
                    *args,
                    project=ProjectArgs(schema_dir, config_file, out_dir),
                    store=StoreArgs(
                        store, _pg_schema(pg_schema, old_schema), context, master_key_env
                    ),
                    feedback=said,
                    **kwargs,
                )
            except CommandError as exc:
                _said(said).error(exc.message.splitlines() or [""], exit_code=exc.exit_code)
                sys.exit(exc.exit_code)
            except EsgenError as exc:  # the runtime's (the store failed, a rebuild is due)
                from esgen.cli._failures import explain

                _said(said).error([explain(exc)], exit_code=EXIT_ERROR)
                sys.exit(EXIT_ERROR)

        positional = (
            _SCHEMA_DIR
            if names is None
            else click.argument("arguments", nargs=-1, metavar=f"[SCHEMA_DIR] [{names}]...")
        )
        decorators = [
            positional,
            _CONFIG,
            click.option(
                "--out",
                "out_dir",
                type=click.Path(path_type=Path, file_okay=False),
                help="The folder of the generated packages (default: out_dir of the "
                "configuration).",
            ),
            click.option(
                "--store",
                required=True,
                help="The event store: a SQLite file path, or a postgresql:// DSN.",
            ),
            click.option(
                "--pg-schema",
                help="The PostgreSQL schema of the store's tables.  [default: public]",
            ),
            # The option's old name, easily taken for the schema folder: still read, with a
            # warning, so that scripts keep working while they are changed.
            click.option("--schema", "old_schema", hidden=True),
            click.option("--context", help="The context, when the schema folder has several."),
            MASTER_KEY_ENV,
            click.option("-q", "--quiet", is_flag=True, help="Say nothing but errors."),
            click.option(
                "-v", "--verbose", is_flag=True, help="Show the full traceback of an error."
            ),
            click.option(
                "--log-format",
                type=click.Choice(["text", "json"]),
                default="text",
                show_default=True,
                help="json: one JSON object a line on standard error, for services.",
            ),
        ]
        result: Command = wrapper
        for decorator in reversed(decorators):
            result = decorator(result)
        return result

    return decorate


def broker_options(command: Command) -> Command:
    """--servers, --prefix and --partitions, passed on as `broker` (a BrokerArgs)."""

    @functools.wraps(command)
    def wrapper(*args: Any, servers: tuple[str, ...], prefix: str, partitions: int,
                **kwargs: Any) -> Any:  # fmt: skip
        return command(*args, broker=BrokerArgs(servers, prefix, partitions), **kwargs)

    decorators = [
        click.option(
            "--servers",
            multiple=True,
            default=("nats://127.0.0.1:4222",),
            show_default=True,
            envvar=SERVERS_ENV,
            show_envvar=True,
            metavar="URL",
            help="A NATS server; repeat it, or separate URLs with commas, for a cluster's "
            f"(any node will do). {SERVERS_ENV} may hold several, separated by spaces or "
            "commas.",
        ),
        click.option(
            "--prefix",
            default="esgen",
            show_default=True,
            help="The first token of every subject (and of the streams' names); the same "
            "for a context's relay and its consumers.",
        ),
        click.option(
            "--partitions",
            metavar="N",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            help="The subject partitions of the publishing context: its relay's, which "
            "every consumer of it must give too; fixed for the life of its stream.",
        ),
    ]
    result: Command = wrapper
    for decorator in reversed(decorators):
        result = decorator(result)
    return result


def _said(args: FeedbackArgs) -> Any:
    """The command's way of saying things, for what is said around it (its own Feedback
    takes the runtime's log while it runs)."""
    from esgen.cli._feedback import Feedback

    return Feedback(args, log=False)


def _split(arguments: tuple[str, ...]) -> tuple[Path | None, tuple[str, ...]]:
    if arguments and _is_schema_dir(arguments[0]):
        return Path(arguments[0]), arguments[1:]
    return None, arguments


def _is_schema_dir(argument: str) -> bool:
    """A path (it has a `/`), or a folder holding schema files as the loader finds them:
    not a folder that merely happens to be named like a projection."""
    if "/" in argument or os.sep in argument:
        return True
    folder = Path(argument)
    if not folder.is_dir():
        return False
    return any(True for _ in folder.rglob("*.yaml")) or any(True for _ in folder.rglob("*.yml"))


_OLD_SCHEMA = (
    "--schema is now --pg-schema (the PostgreSQL schema of the store's tables; SCHEMA_DIR is "
    "the schema folder): use --pg-schema"
)


def _pg_schema(pg_schema: str | None, old_schema: str | None) -> str:
    if old_schema is None:
        return pg_schema or "public"
    if pg_schema is not None and pg_schema != old_schema:
        raise UsageError(
            f"--schema {old_schema} and --pg-schema {pg_schema}: give the PostgreSQL schema "
            "once, with --pg-schema"
        )
    return old_schema


class RunGroup(click.Group):
    """A group of commands where Ctrl-C is one line and exit 130, not click's "Aborted!"
    (the read-side commands first say what they kept; their errors are their own: see
    read_side_options)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # The commands that handle events say what they kept; this is the rest.
            click.echo("esgen: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
