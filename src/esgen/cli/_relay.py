"""`esgen relay`: publish a context's published events to NATS JetStream, or inspect it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from esgen.cli._common import fail, problem_text, utc_text
from esgen.cli._options import RunGroup, broker_options, read_side_options

if TYPE_CHECKING:
    from esgen.cli._options import BrokerArgs, FeedbackArgs, ProjectArgs, StoreArgs

__all__ = ["relay"]


@click.group(cls=RunGroup, short_help="Publish a context's published events to NATS.")
def relay() -> None:
    """Publish the events a context publishes to NATS JetStream, or inspect the relay."""


@relay.command("status", short_help="Show the relay's checkpoint, lag and last error.")
@read_side_options()
@broker_options
@click.option("--json", "as_json", is_flag=True, help="Print the health view as JSON.")
def status(
    project: ProjectArgs, store: StoreArgs, feedback: FeedbackArgs, broker: BrokerArgs,
    as_json: bool,
) -> None:  # fmt: skip
    """Show where the relay is in the store's order, how far behind (events and seconds)
    and the last error that stopped or held it back. Reads the store only: it answers
    while a relay runs, and without a broker (the broker's options are taken, and
    checked, so that a deployment gives every command the same ones)."""
    from esgen.cli._feedback import lag_text
    from esgen.cli._store import opened_service

    with opened_service(project, store, "relay") as service:
        item = _relay(service, broker).status()
    if as_json:
        click.echo(json.dumps({"relay": item.to_json()}, indent=2))
        return
    click.echo(
        f"{item.name:30} at {item.position} of {item.head}  "
        f"({item.behind} behind, lag {lag_text(item.lag_seconds)})"
    )
    if item.problem is not None:
        click.echo(f"  stopped {utc_text(item.problem.at)}: {problem_text(item.problem)}")


@relay.command("run", short_help="Publish the events recorded since the checkpoint.")
@read_side_options()
@broker_options
@click.option("--follow", is_flag=True, help="Keep publishing new events until stopped.")
def run(
    project: ProjectArgs, store: StoreArgs, feedback: FeedbackArgs, broker: BrokerArgs,
    follow: bool,
) -> None:  # fmt: skip
    """Publish every published event recorded since the relay's checkpoint, each
    acknowledged by JetStream before the checkpoint moves past it.

    A broker that is down or unreachable is waited for (one line says so). With
    --follow, go on publishing new events until Ctrl-C (exit 130) or SIGTERM (stops after
    the current page, exit 0). Without --follow, SIGTERM interrupts as Ctrl-C does (exit
    143).
    """
    from esgen.cli._failures import runner_failed
    from esgen.cli._feedback import Feedback, StopRequested, stop_on_sigterm
    from esgen.cli._store import opened_service

    said = Feedback(feedback)
    with opened_service(project, store, "relay") as service:
        runner = _relay(service, broker)
        with runner:
            item = runner.status()
            name = item.name
            stop = threading.Event()
            tracker = said.tracker(
                "relaying", {name: item.position}, item.head, follow=follow, stop=stop
            )
            progress: Callable[[int, int], None] = lambda p, h: tracker(name, p, h)  # noqa: E731
            resume = "`esgen relay run` continues from there"
            with stop_on_sigterm(stop if follow else None):
                try:
                    # Under --follow, SIGTERM ends the first catch-up too, after its page
                    # (or while it waits for a broker that is down).
                    sent = runner.catch_up(progress, stop=stop if follow else None)
                    tracker.finish()
                    if not stop.is_set():
                        said.say(f"{sent} event(s) published; the relay is up to date")
                    if follow:
                        runner.run(stop, progress=progress)
                except KeyboardInterrupt:
                    tracker.finish()
                    tracker.settle({name: runner.position()})
                    said.stopped(f"the relay committed {tracker.committed()}; {resume}")
                except StopRequested:
                    pass
                except Exception as exc:
                    tracker.finish()
                    runner_failed(said, "the relay", exc)
            if follow:
                tracker.finish()
                said.interrupted(f"the relay committed {tracker.committed()}; {resume}",
                                 how="stopped")  # fmt: skip


def _relay(service: Any, broker: BrokerArgs) -> Any:
    """The service's relay; options it refuses (a server list with no URL, a prefix that
    is no subject token) are the command line's fault: one line, exit 2."""
    try:
        return service.relay(**broker.service_options())
    except ValueError as exc:
        fail(str(exc))
