"""`esgen consumers`: run or inspect a context's consumers of other contexts' events."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import click

from esgen.cli._common import EXIT_ERROR, problem_text, utc_text
from esgen.cli._options import RunGroup, read_side_options

if TYPE_CHECKING:
    from esgen.cli._options import FeedbackArgs, ProjectArgs, StoreArgs

__all__ = ["consumers"]

_SERVERS = click.option(
    "--servers",
    default="nats://127.0.0.1:4222",
    show_default=True,
    help="The NATS servers, comma-separated (any node of a cluster will do).",
)


@click.group(cls=RunGroup, short_help="Run or inspect a context's consumers (NATS JetStream).")
def consumers() -> None:
    """Run or inspect the consumers of a context: read models fed by the events other
    contexts publish, over NATS JetStream."""


@consumers.command("run", short_help="Handle the messages waiting for each consumer.")
@read_side_options()
@_SERVERS
@click.option(
    "--partition",
    "partitions",
    type=int,
    multiple=True,
    metavar="K",
    help="Handle only partition K of each upstream (repeatable); default: every partition "
    "through one durable. See docs/consumers.md before mixing the two.",
)
@click.option("--follow", is_flag=True, help="Keep handling new messages until stopped.")
def run(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    servers: str,
    partitions: tuple[int, ...],
    follow: bool,
) -> None:
    """Handle every message waiting for the context's consumers, each committed with its
    id in the consumer's inbox before it is acknowledged.

    With --follow, go on until Ctrl-C (exit 130) or SIGTERM (stops after the message in
    hand, exit 0). A broker that cannot be reached is retried with backoff, said once.
    Exit 1 if a consumer's handler raised (its message is retried; see `status`).
    """
    from esgen.cli._feedback import Feedback, stop_on_sigterm
    from esgen.cli._store import opened_service

    said = Feedback(feedback)
    with opened_service(project, store, "consumers") as service:
        runner = service.consumers(
            servers=[s.strip() for s in servers.split(",") if s.strip()],
            partition=list(partitions) or None,
        )
        with runner:
            stop = threading.Event()
            counted = _Counted()
            with stop_on_sigterm(stop if follow else None):
                try:
                    handled = runner.catch_up()
                    said.say(f"{handled} message(s) handled; consumers are caught up")
                    if follow:
                        runner.run(stop, progress=counted)
                except KeyboardInterrupt:
                    said.stopped(
                        f"{counted.total} more message(s) handled, each committed and "
                        "acknowledged; `esgen consumers run` goes on from there"
                    )
            if follow:
                said.interrupted(
                    f"{counted.total} more message(s) handled; `esgen consumers run` goes on "
                    "from there",
                    how="stopped",
                )
            failing = [item for item in runner.status() if item.problem is not None]
        if failing:
            lines = [
                f"consumer {item.name}: {problem_text(item.problem)} (retried; fix the "
                "handler, then it goes on)"
                for item in failing
            ]
            said.error(lines, exit_code=EXIT_ERROR)
            raise SystemExit(EXIT_ERROR)


class _Counted:
    """The messages handled under --follow, for the line said when it stops."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, name: str, handled: int) -> None:
        self.total += 1


@consumers.command("status", short_help="Show each consumer's messages handled and pending.")
@read_side_options()
@_SERVERS
@click.option("--json", "as_json", is_flag=True, help="Print the health view as JSON.")
def status(
    project: ProjectArgs, store: StoreArgs, feedback: FeedbackArgs, servers: str, as_json: bool
) -> None:
    """Show each consumer's messages handled (its inbox), pending on the broker, when it
    last handled one, and the last error its handler raised."""
    from esgen.cli._store import opened_service
    from esgen.runtime._progress_store import looking

    with opened_service(project, store, "consumers") as service:
        with looking():  # builds nothing in the store
            runner = service.consumers(servers=[s.strip() for s in servers.split(",") if s.strip()])
        with runner:
            items: list[Any] = runner.status()
    if as_json:
        click.echo(json.dumps({"consumers": [item.to_json() for item in items]}, indent=2))
        return
    for item in items:
        pending = "pending unknown" if item.pending is None else f"{item.pending} pending"
        last = "never" if item.last_handled is None else utc_text(item.last_handled)
        click.echo(f"{item.name:30} {item.handled} handled  {pending}  last {last}")
        if item.broker is not None:
            click.echo(f"  broker: {item.broker}")
        if item.problem is not None:
            click.echo(f"  failing since {utc_text(item.problem.at)}: {problem_text(item.problem)}")
