"""`esgen consumers`: run or inspect a context's consumers of other contexts' events."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import click

from esgen.cli._common import EXIT_ERROR, UsageError, fail, problem_text, utc_text
from esgen.cli._options import RunGroup, broker_options, read_side_options

if TYPE_CHECKING:
    from esgen.cli._options import BrokerArgs, FeedbackArgs, ProjectArgs, StoreArgs

__all__ = ["consumers"]

_PARTITION = click.option(
    "--partition",
    "partition",
    type=int,
    multiple=True,
    metavar="K",
    help="Partition K of each upstream (repeatable; 0 to N-1 of --partitions N): its own "
    "durable, so that processes share the work; default: every partition through one "
    "durable. See docs/consumers.md before mixing the two.",
)


@click.group(cls=RunGroup, short_help="Run or inspect a context's consumers (NATS JetStream).")
def consumers() -> None:
    """Run or inspect the consumers of a context: read models fed by the events other
    contexts publish, over NATS JetStream."""


@consumers.command("run", short_help="Handle the messages waiting for each consumer.")
@read_side_options()
@broker_options
@_PARTITION
@click.option("--follow", is_flag=True, help="Keep handling new messages until stopped.")
def run(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    broker: BrokerArgs,
    partition: tuple[int, ...],
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

    chosen = _chosen(partition, broker)
    said = Feedback(feedback)
    with opened_service(project, store, "consumers") as service:
        runner = _runner(service, broker, chosen)
        with runner:
            stop = threading.Event()
            counted = _Counted()
            caught_up = False
            with stop_on_sigterm(stop if follow else None):
                try:
                    # SIGTERM under --follow sets `stop`: the catch-up ends too (after the
                    # message in hand), even while it waits for a broker that is down.
                    handled = runner.catch_up(stop=stop)
                    caught_up = not stop.is_set()
                    if caught_up:
                        said.say(f"{handled} message(s) handled; consumers are caught up")
                        if follow:
                            runner.run(stop, progress=counted)
                    else:
                        counted.total = handled
                except KeyboardInterrupt:
                    said.stopped(
                        f"{counted.total} more message(s) handled, each committed and "
                        "acknowledged; `esgen consumers run` goes on from there"
                    )
            if follow:
                more = "more " if caught_up else ""
                said.interrupted(
                    f"{counted.total} {more}message(s) handled; `esgen consumers run` goes on "
                    "from there",
                    how="stopped",
                )
            failing = [item for item in runner.status() if item.problem is not None]
        if failing:
            lines = [
                f"consumer {item.name}: {problem_text(item.problem)} ({_remedy(item.problem)})"
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
@broker_options
@_PARTITION
@click.option("--json", "as_json", is_flag=True, help="Print the health view as JSON.")
def status(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    broker: BrokerArgs,
    partition: tuple[int, ...],
    as_json: bool,
) -> None:
    """Show each consumer's messages handled (its inbox), pending on the broker, when it
    last handled one, and the last error its handler raised. Pending counts the
    durables `run` uses with the same --partition options (one try at the broker: an
    unreachable one leaves it unknown, and says why)."""
    from esgen.cli._store import opened_service
    from esgen.runtime._progress_store import looking

    chosen = _chosen(partition, broker)
    with opened_service(project, store, "consumers") as service:
        with looking():  # builds nothing in the store
            runner = _runner(service, broker, chosen)
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


def _remedy(problem: Any) -> str:
    """What to do about a consumer's problem: the broker's side (a durable gone, a dead
    letter refused) is retried on its own; a handler's bug needs a fix."""
    kind = problem.error.rpartition(".")[2]
    if kind == "DurableLost":
        return "retried; check its upstream stream on the broker"
    if kind == "DeadLetterFailed":
        return "retried; check the dead-letter stream on the broker"
    return "retried; fix the handler, then it goes on"


def _chosen(partition: tuple[int, ...], broker: BrokerArgs) -> list[int] | None:
    """The partitions given with --partition (None: all through one durable), each
    checked against --partitions before anything is opened."""
    wrong = [k for k in partition if not 0 <= k < broker.partitions]
    if wrong:
        raise UsageError(
            f"--partition {wrong[0]}: the upstreams are published in {broker.partitions} "
            f"partitions (--partitions {broker.partitions}), numbered 0 to "
            f"{broker.partitions - 1}"
        )
    return sorted(set(partition)) or None


def _runner(service: Any, broker: BrokerArgs, chosen: list[int] | None) -> Any:
    """The service's consumer runner; options it refuses (a server list with no URL, a
    prefix that is no subject token) are the command line's fault: one line, exit 2."""
    try:
        return service.consumers(**broker.service_options(), partition=chosen)
    except ValueError as exc:
        fail(str(exc))
