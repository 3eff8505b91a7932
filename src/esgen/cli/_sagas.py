"""`esgen sagas`: run a context's sagas, see their instances by state, retry stalled ones.

An instance stalls when handling one of its events raised an error that is no refusal (a
bug, an event the code cannot read): it waits, its later events kept in order, until it
is retried after a fix. `sagas run` lists the instances it stalled and exits 4.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from esgen.cli._common import (
    EXIT_ERROR,
    EXIT_STALLED,
    UsageError,
    fail,
    problem_text,
    utc_text,
)
from esgen.cli._options import RunGroup, read_side_options

if TYPE_CHECKING:
    from esgen.cli._feedback import Feedback, Tracker
    from esgen.cli._options import FeedbackArgs, ProjectArgs, StoreArgs

__all__ = ["sagas"]

# The states `status` lists instance by instance: those an operator acts on.
LISTED = ("stalled", "failed", "compensated", "timed_out")


@click.group(cls=RunGroup, short_help="Run a context's sagas; list and retry their instances.")
def sagas() -> None:
    """Run the sagas of a context, see their instances by state, retry stalled ones."""


@sagas.command("status", short_help="Show each saga's checkpoint and instances by state.")
@read_side_options()
@click.option("--json", "as_json", is_flag=True, help="Print the health view as JSON.")
@click.option("--saga", "saga_name", metavar="NAME", help="Only this saga.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="List at most this many instances of each state.",
)
def status(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    as_json: bool,
    saga_name: str | None,
    limit: int,
) -> None:
    """Show each saga's checkpoint, lag, instances by state and the last error that stopped
    it; stalled instances with their error, and failed, compensated and timed-out ones
    with their reason, the event that ended them and when."""
    from esgen.cli._feedback import lag_text
    from esgen.cli._store import opened_service
    from esgen.runtime._progress_store import looking

    with opened_service(project, store, "sagas") as service:
        reports = []
        with looking():  # a saga that never ran here gets no starting point from a look
            runners = service.sagas()
        for runner in _chosen(runners, saga_name):
            lists = {state: runner.instances(state, limit=limit) for state in LISTED}
            reports.append((runner.status(), lists))
    if as_json:
        document = {
            "sagas": [
                {**report.to_json(), **{s: [i.to_json() for i in lists[s]] for s in LISTED}}
                for report, lists in reports
            ]
        }
        click.echo(json.dumps(document, indent=2))
        return
    for report, lists in reports:
        counts = ", ".join(f"{state} {n}" for state, n in report.counts.items())
        click.echo(
            f"{report.name}: at {report.position} of {report.head} ({report.behind} behind, "
            f"lag {lag_text(report.lag_seconds)}); {counts}"
        )
        if report.problem is not None:
            # What stopped the runner, or the last event a pass skipped (see SagaRunnerStatus).
            at = utc_text(report.problem.at)
            click.echo(f"  runner's problem since {at}: {problem_text(report.problem)}")
        for state in LISTED:
            listed = lists[state]
            if not listed:
                continue
            click.echo(f"  {state} ({report.counts.get(state, len(listed))}):")
            for instance in listed:
                click.echo(f"    {_instance(instance)}")
            more = report.counts.get(state, 0) - len(listed)
            if more > 0:
                click.echo(f"    ... and {more} more (--limit)")


@sagas.command("run", short_help="Handle events since each saga's checkpoint, and due deadlines.")
@read_side_options()
@click.option("--follow", is_flag=True, help="Keep following new events until stopped.")
@click.option(
    "--from-beginning",
    is_flag=True,
    help="A saga's first run handles every event ever stored (default: from now on).",
)
def run(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    follow: bool,
    from_beginning: bool,
) -> None:
    """Handle every event recorded since each saga's checkpoint, and due deadlines.

    The first run of a saga on a store starts at the store's head, so history does not
    send commands again, unless --from-beginning. Instances that stall on an error are
    listed at the end, and the exit code is then 4 (retry them after a fix: esgen sagas
    retry). With --follow, go on until Ctrl-C (exit 130) or SIGTERM (stops after the
    current page); without it, SIGTERM interrupts as Ctrl-C does (exit 143).
    """
    from esgen.cli._failures import runner_failed
    from esgen.cli._feedback import Feedback, StopRequested, stop_on_sigterm
    from esgen.cli._store import opened_service

    said = Feedback(feedback)
    with opened_service(project, store, "sagas") as service:
        runners = service.sagas(start="beginning" if from_beginning else "now")
        by_name = {runner.name: runner for runner in runners}
        reports = [runner.status() for runner in runners]
        stalls: list[Any] = []

        def collect(name: str) -> None:
            for instance in by_name[name].take_stalls():
                stalls.append(instance)
                if follow:  # told as it happens: a service may follow for weeks
                    said.warn(f"stalled: {_stall(instance)}", event="stalled", **instance.to_json())

        stop = threading.Event()
        tracker = said.tracker(
            "running sagas",
            {report.name: report.position for report in reports},
            max((report.head for report in reports), default=0),
            follow=follow,
            stop=stop,
            on_page=collect,
            fixed_total=True,  # the sagas' own commands move the head
        )

        def interrupted() -> NoReturn:
            tracker.finish()
            for runner in runners:
                collect(runner.name)
            tracker.settle(_checkpoints(runners))
            if stalls:  # stalled before the interruption: listed, or they would go unseen
                _list_stalls(said, stalls)
            said.stopped(f"sagas committed {tracker.committed()}; {resume}")

        resume = "the next `esgen sagas run` continues from there"
        handled = 0
        current: Any = None
        with stop_on_sigterm(stop if follow else None):
            try:
                for current in runners:
                    handled += current.catch_up(progress=tracker)
                    collect(current.name)  # deadlines, after the last page
                tracker.finish()
                said.say(f"sagas handled {handled} event(s)", events=handled)
            except KeyboardInterrupt:
                interrupted()
            except StopRequested:
                tracker.finish()
            except Exception as exc:
                tracker.finish()
                runner_failed(said, f"saga {current.name}", exc)
            if follow and not stop.is_set():
                _follow(said, runners, tracker, stop, interrupted)
            if follow:
                tracker.finish()
                for runner in runners:
                    collect(runner.name)
                said.interrupted(f"sagas committed {tracker.committed()}; {resume}", how="stopped")
        for runner in runners:
            collect(runner.name)
    if stalls:
        _list_stalls(said, stalls)
        sys.exit(EXIT_STALLED)


def _follow(
    said: Feedback,
    runners: list[Any],
    tracker: Tracker,
    stop: threading.Event,
    interrupted: Callable[[], NoReturn],
) -> None:
    """Every saga in a thread of its own until `stop` (SIGTERM) or Ctrl-C; if one of them
    fails, stop them all and fail."""
    from esgen.cli._failures import runner_failed
    from esgen.cli._feedback import StopRequested

    failures: list[tuple[str, BaseException]] = []

    def follow(runner: Any) -> None:
        try:
            runner.run(stop, progress=tracker)
        except StopRequested:
            pass
        except BaseException as exc:
            failures.append((runner.name, exc))
            stop.set()

    threads = [threading.Thread(target=follow, args=(r,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    was_interrupted = False
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.5)
    except KeyboardInterrupt:
        # The runners end after their current page; a second Ctrl-C leaves at once (the
        # page is rolled back, as any unfinished one is).
        was_interrupted = True
        stop.set()
        for thread in threads:
            thread.join()
    tracker.finish()
    if failures:
        name, exc = failures[0]
        runner_failed(said, f"saga {name}", exc)
    if was_interrupted:
        interrupted()


@sagas.command("retry", short_help="Handle stalled instances again, after a fix.")
@read_side_options(names="ID")
@click.option("--stalled", "every", is_flag=True, help="Retry every stalled instance.")
# The flag's first name: it retries stalled instances, not the `failed` ones status counts.
@click.option("--failed", "every_old", is_flag=True, hidden=True)
@click.option(
    "--saga", "saga_name", metavar="NAME", help="The saga, when several hold an instance ID."
)
def retry(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    every: bool,
    every_old: bool,
    saga_name: str | None,
) -> None:
    """Handle the event a stalled instance stopped on, and the events kept for it since,
    again: after a fix, the instance goes on. ID is an instance's correlation value (as
    `esgen sagas status` lists it); --stalled retries every stalled instance, the one
    stalled longest first. SCHEMA_DIR is taken as such when it has a `/` in it or is a
    folder holding schema files.

    One line per instance with its outcome; exit 4 if any is still stalled, 1 if one
    could not be retried (not stalled, gone).
    """
    from esgen.cli._failures import runner_failed
    from esgen.cli._feedback import Feedback, stop_on_sigterm
    from esgen.cli._store import opened_service
    from esgen.runtime._progress_store import looking

    every = every or every_old
    if bool(names) == every:
        raise UsageError("give the IDs of the instances to retry, or --stalled for every one")
    said = Feedback(feedback)
    with opened_service(project, store, "sagas") as service:
        with looking():  # retrying decides nothing about where a saga starts
            runners = _chosen(service.sagas(), saga_name)
        targets: list[tuple[Any, Any, str]] = []
        if every:
            found = [(r, i) for r in runners for i in r.instances("stalled")]
            found.sort(key=lambda pair: _stalled_since(pair[1]))
            targets = [(r, r.parse_correlation(i.correlation), i.correlation) for r, i in found]
        else:
            targets = [_holder(runners, text, saga_name) for text in dict.fromkeys(names)]
        tracker = said.tracker("retrying", {"retry": 0}, len(targets), unit="instances")
        stalled = errors = 0
        for done, (runner, value, text) in enumerate(targets, 1):
            try:
                with stop_on_sigterm(None):
                    instance = runner.retry(value)
            except KeyboardInterrupt:
                tracker.finish()
                said.stopped(
                    f"retried {done - 1} of {len(targets)} instance(s); the others are still "
                    "stalled: retry them again"
                )
            except Exception as exc:
                from esgen.runtime import SagaError

                # Gone since it was listed (a LookupError), or not stalled: the runtime's
                # message names the saga and the instance.
                if not isinstance(exc, SagaError | LookupError):
                    tracker.finish()  # the store: nothing else can go on
                    runner_failed(said, f"saga {runner.name}", exc)
                said.error([str(exc)], saga=runner.name, correlation=text)
                errors += 1
                continue
            tracker("retry", done, len(targets))
            if instance.status == "stalled":  # why it exits 4: said even with -q
                stalled += 1
                said.error([f"still stalled: {_stall(instance)}"], retried=instance.to_json())
            else:
                said.say(f"{runner.name} {text}: {instance.status}", event="retried",
                         **instance.to_json())  # fmt: skip
        tracker.finish()
    if stalled:
        sys.exit(EXIT_STALLED)
    if errors:
        sys.exit(EXIT_ERROR)
    if not targets:
        said.say("no stalled instance to retry")


def _stalled_since(instance: Any) -> tuple[int, Any, int]:
    """Oldest stall first (then in the store's order); one without a recorded error last."""
    problem = instance.problem
    if problem is None:
        return (1, None, 0)
    return (0, problem.at, problem.position if problem.position is not None else 0)


# -- choosing ---------------------------------------------------------------------------


def _chosen(runners: list[Any], saga_name: str | None) -> list[Any]:
    if saga_name is None:
        return runners
    chosen = [r for r in runners if r.name == saga_name]
    if not chosen:
        from esgen.schema import did_you_mean

        names = [r.name for r in runners]
        fail(f"no saga {saga_name!r} (known: {', '.join(names)}){did_you_mean(saga_name, names)}")
    return chosen


def _holder(runners: list[Any], text: str, saga_name: str | None) -> tuple[Any, Any, str]:
    """The saga holding the instance `text` (a correlation value), and the value."""
    from esgen.runtime import DecodeError

    holders = []
    for runner in runners:
        try:
            value = runner.parse_correlation(text)
        except DecodeError:
            continue  # not an id of this saga's type
        if runner.instance(value) is not None:
            holders.append((runner, value, text))
    if not holders:
        where = saga_name or ", ".join(r.name for r in runners)
        fail(f"no saga instance {text!r} (looked in {where}); esgen sagas status lists them")
    if len(holders) > 1:
        names = ", ".join(r.name for r, _, _ in holders)
        fail(f"several sagas hold an instance {text!r} ({names}); choose one with --saga")
    return holders[0]


# -- lines --------------------------------------------------------------------------------


def _list_stalls(said: Feedback, stalls: list[Any]) -> None:
    said.error(
        [
            f"{len(stalls)} saga instance(s) stalled in this run; fix the error, then "
            "`esgen sagas retry --stalled` (or retry ID):",
            *(_stall(instance) for instance in stalls),
        ],
        stalled=[instance.to_json() for instance in stalls],
    )


def _stall(instance: Any) -> str:
    problem = instance.problem
    what = "no error recorded" if problem is None else problem_text(problem)
    return f"{instance.saga} {instance.correlation}: {what}"


def _instance(instance: Any) -> str:
    if instance.status == "stalled":
        parked = f"; {instance.parked} event(s) kept for it" if instance.parked else ""
        if instance.problem is None:
            return f"{instance.correlation}: no error recorded{parked}"
        since = f" since {utc_text(instance.problem.at)}"
        return f"{instance.correlation}{since}: {problem_text(instance.problem)}{parked}"
    reason = instance.reason or "no reason given"
    ended = instance.ended
    if not ended:  # ended before esgen recorded what ended an instance
        return f"{instance.correlation}: {reason}"
    if ended.get("deadline"):
        how = "its deadline"
    else:
        how = f"{ended.get('event_type')} at position {ended.get('position')}"
    return f"{instance.correlation}: {reason}; ended by {how} on {utc_text(_parsed(ended['at']))}"


def _checkpoints(runners: list[Any]) -> dict[str, int]:
    """Each saga's checkpoint as committed (nothing, if the store cannot say)."""
    try:
        return {runner.name: runner.status().position for runner in runners}
    except Exception:  # the line is then as the progress calls left it
        return {}


def _parsed(at: Any) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(at) if isinstance(at, str) else at
