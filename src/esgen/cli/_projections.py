"""`esgen projections`: catch up, follow, rebuild or inspect a context's projections."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import click

from esgen.cli._common import fail, problem_text, utc_text
from esgen.cli._options import RunGroup, read_side_options

if TYPE_CHECKING:
    from esgen.cli._feedback import Feedback, Tracker
    from esgen.cli._options import FeedbackArgs, ProjectArgs, StoreArgs
    from esgen.runtime import ProjectionRunner

__all__ = ["projections"]


@click.group(cls=RunGroup, short_help="Catch up, rebuild or inspect a context's projections.")
def projections() -> None:
    """Catch up, follow, rebuild or inspect the projections of a context."""


@projections.command("status", short_help="Show each projection's checkpoint, lag and last error.")
@read_side_options()
@click.option("--json", "as_json", is_flag=True, help="Print the health view as JSON.")
def status(project: ProjectArgs, store: StoreArgs, feedback: FeedbackArgs, as_json: bool) -> None:
    """Show each projection's generation, checkpoint, how far behind it is (events and
    seconds) and the last error that stopped it."""
    from esgen.cli._feedback import lag_text
    from esgen.cli._store import opened_service
    from esgen.runtime._progress_store import looking

    with opened_service(project, store, "projections") as service:
        with looking():  # answers at once while a runner is in the middle of a page
            runner = service.projections()
        items = runner.status()
    if as_json:
        click.echo(json.dumps({"projections": [item.to_json() for item in items]}, indent=2))
        return
    for item in items:
        notes = ""
        if item.needs_rebuild:
            notes += (
                "  needs a rebuild: its table was built with other fields, or by an esgen "
                "that stored them otherwise (esgen projections rebuild)"
            )
        if item.generation == 0:
            notes += "  not built in this store yet (esgen projections catch-up builds it)"
        if item.rebuilding is not None:
            generation, position = _rebuilding(item.rebuilding)
            notes += f"  rebuild of generation {generation} unfinished at {position}"
        lag = getattr(item, "lag_seconds", 0.0)
        click.echo(
            f"{item.name:30} generation {item.generation}  at {item.position} of {item.head}  "
            f"({item.behind} behind, lag {lag_text(lag)}){notes}"
        )
        problem = getattr(item, "problem", None)
        if problem is not None:
            click.echo(f"  stopped {utc_text(problem.at)}: {problem_text(problem)}")
        rebuild_problem = getattr(item, "rebuild_problem", None)
        if rebuild_problem is not None:
            at = utc_text(rebuild_problem.at)
            click.echo(f"  rebuild stopped {at}: {problem_text(rebuild_problem)}")


@projections.command("catch-up", short_help="Apply the events recorded since each checkpoint.")
@read_side_options()
@click.option("--follow", is_flag=True, help="Keep following new events until stopped.")
def catch_up(project: ProjectArgs, store: StoreArgs, feedback: FeedbackArgs, follow: bool) -> None:
    """Apply every event recorded since each projection's checkpoint.

    With --follow, go on applying new events, a line per page (or per interval when
    busy), until Ctrl-C (exit 130) or SIGTERM (stops after the current page, exit 0).
    Without --follow, SIGTERM interrupts as Ctrl-C does (exit 143).
    """
    from esgen.cli._feedback import Feedback, StopRequested, stop_on_sigterm
    from esgen.cli._store import opened_service
    from esgen.runtime import ProjectionNeedsRebuild

    said = Feedback(feedback)
    with opened_service(project, store, "projections") as service:
        runner = service.projections()
        items = runner.status()
        stop = threading.Event()
        tracker = said.tracker(
            "catching up",
            {item.name: item.position for item in items if not item.needs_rebuild},
            max((item.head for item in items), default=0),
            follow=follow,
            stop=stop,
        )
        resume = "`esgen projections catch-up` continues from there"
        with stop_on_sigterm(stop if follow else None):
            try:
                handled = runner.catch_up(tracker)
                tracker.finish()
                said.say(f"{handled} event(s) applied; projections are up to date")
                if follow:
                    runner.run(stop, progress=tracker)
            except KeyboardInterrupt:
                tracker.finish()
                tracker.settle(_checkpoints(runner))
                said.stopped(f"projections committed {tracker.committed()}; {resume}")
            except StopRequested:
                pass
            except ProjectionNeedsRebuild:
                tracker.finish()
                raise  # one line, from read_side_options
            except Exception as exc:
                tracker.finish()
                _failed(said, runner, exc)
        if follow:
            tracker.finish()
            said.interrupted(
                f"projections committed {tracker.committed()}; {resume}", how="stopped"
            )


@projections.command("rebuild", short_help="Rebuild read models (all, or NAMES) from every event.")
@read_side_options(names="NAME")
@click.option(
    "--restart", is_flag=True, help="Start afresh, even where an unfinished rebuild could go on."
)
def rebuild(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    restart: bool,
) -> None:
    """Replay all events into fresh read models (all, or NAMES), then switch readers over.

    Readers keep the current read model until the rebuilt one has caught up. A rebuild
    that was interrupted (Ctrl-C: exit 130; SIGTERM: exit 143) goes on from its last
    committed page, unless --restart. SCHEMA_DIR is taken as such when it has a `/` in it
    or is a folder holding schema files; otherwise the first argument is a NAME.
    """
    from esgen.cli._failures import runner_failed
    from esgen.cli._feedback import Feedback, stop_on_sigterm
    from esgen.cli._store import opened_service

    said = Feedback(feedback)
    with opened_service(project, store, "projections") as service:
        runner = service.projections()
        known = list(runner.projections)
        chosen = list(dict.fromkeys(names)) or known
        unknown = [n for n in chosen if n not in known]
        if unknown:
            from esgen.schema import did_you_mean

            fail(
                f"no projection {unknown[0]!r} (known: {', '.join(known)})"
                f"{did_you_mean(unknown[0], known)}"
            )
        items = {item.name: item for item in runner.status()}
        for name in chosen:
            item = items[name]
            start = 0
            if item.rebuilding is not None and not restart:
                start = _rebuilding(item.rebuilding)[1]
            tracker = said.tracker(f"rebuilding {name}", {name: start}, item.head)
            progress = _Resumed(said, runner, name, tracker)
            try:
                with stop_on_sigterm(None):
                    handled = runner.rebuild(name, progress, restart=restart)
            except KeyboardInterrupt:
                tracker.finish()
                tracker.settle(_rebuilt(runner, name))
                said.stopped(
                    f"{name} rebuild committed up to position {tracker.positions[name]} of "
                    f"{tracker.head}; `esgen projections rebuild {name}` continues from there "
                    "(--restart starts afresh)"
                )
            except Exception as exc:
                tracker.finish()
                runner_failed(said, f"projection {name}", exc)
            progress.tell()
            tracker.finish()
            said.say(f"{name} rebuilt from {handled} event(s)", projection=name, events=handled)


class _Resumed:
    """The progress callback of a rebuild that may go on from an unfinished one: once its
    first page is committed (or at the end, when there was nothing left to do), says
    whether the runtime continued it or why it started afresh (`last_rebuild`)."""

    def __init__(
        self, said: Feedback, runner: ProjectionRunner, name: str, tracker: Tracker
    ) -> None:
        self._said = said
        self._runner = runner
        self._name = name
        self._tracker = tracker
        self._told = False

    def __call__(self, name: str, position: int, head: int) -> None:
        self.tell()
        self._tracker(name, position, head)

    def tell(self) -> None:
        start = self._runner.last_rebuild
        if self._told or start is None:
            return
        self._told = True
        name = self._name
        if start.resumed_from is not None:
            message = (
                f"continuing the rebuild of {name} from position {start.resumed_from} "
                "(--restart starts afresh)"
            )
            self._said.say(message, event="resume", projection=name, position=start.resumed_from)
        elif start.reason in ("fields changed", "code changed"):
            self._tracker.starts[name] = 0
            message = (
                f"starting the rebuild of {name} afresh: {start.reason} since the unfinished "
                "one began"
            )
            self._said.say(message, event="restart", projection=name, reason=start.reason)


def _failed(said: Any, runner: Any, exc: Exception) -> None:
    """A catch-up stopped: which projection, from the runtime's note on the error (or the
    problem it recorded), then the error block."""
    from esgen.cli._failures import runner_failed

    notes = [str(note) for note in getattr(exc, "__notes__", ())]
    name = next((n for n in runner.projections for note in notes if note.startswith(f"{n}:")), None)
    if name is None:
        try:
            failed = [i for i in runner.status() if getattr(i, "problem", None) is not None]
        except Exception:  # the store itself failed: the error says so
            failed = []
        if failed:
            name = max(failed, key=lambda i: i.problem.at).name
    runner_failed(said, "projections" if name is None else f"projection {name}", exc)


def _checkpoints(runner: ProjectionRunner) -> dict[str, int]:
    """Each projection's checkpoint as committed (nothing, if the store cannot say)."""
    try:
        return {item.name: item.position for item in runner.status()}
    except Exception:  # the line is then as the progress calls left it
        return {}


def _rebuilt(runner: ProjectionRunner, name: str) -> dict[str, int]:
    """Where the unfinished rebuild of `name` committed its last page, as stored."""
    try:
        item = next(i for i in runner.status() if i.name == name)
    except Exception:  # the line is then as the progress calls left it
        return {}
    if item.rebuilding is None:
        return {}
    return {name: _rebuilding(item.rebuilding)[1]}


def _rebuilding(value: Any) -> tuple[int, int]:
    """(generation, position) of an unfinished rebuild, as a pair or as its JSON form."""
    if isinstance(value, dict):
        return int(value["generation"]), int(value["position"])
    generation, position = value
    return int(generation), int(position)
