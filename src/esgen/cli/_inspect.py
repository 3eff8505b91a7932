"""`esgen inspect`: read-only questions about a store, answered with the context's own types.

Each command opens the store read-only (SQLite without the write lock, PostgreSQL in
read-only transactions), so it is safe against a production store while the application
runs. Listings stream: a line is printed as each event is read. With --json, listings
print JSON lines (one object a line) and single answers one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from esgen.cli._common import fail
from esgen.cli._options import RunGroup, read_side_options

if TYPE_CHECKING:
    from pydantic import BaseModel

    from esgen.cli._options import FeedbackArgs, ProjectArgs, StoreArgs
    from esgen.runtime import (
        Aggregate,
        Event,
        EventView,
        HistoryStep,
        Inspector,
        TraceCommand,
        TraceEvent,
    )
    from esgen.runtime._inspect import ApplyCall

__all__ = ["inspect"]

_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (JSON lines for listings)."
)


@click.group(cls=RunGroup, short_help="Streams, events, states, histories, traces, audits.")
def inspect() -> None:
    """Look into a context's event store, read-only: streams, events (typed and upcast),
    an aggregate's state at any moment, its history field by field, a replay that stops
    in the debugger at an event, the whole conversation behind an id, audits by actor.

    Times are ISO 8601 (2026-01-05T09:03:00Z); a time without a zone is UTC.
    """


@contextmanager
def _inspector(project: ProjectArgs, store: StoreArgs) -> Iterator[Inspector]:
    from esgen.cli._store import opened_service

    with opened_service(project, store, "inspect", read_only=True) as service:
        yield service.inspect()


def _one(names: tuple[str, ...], what: str) -> str:
    if len(names) != 1:
        fail(f"give one {what} (got {len(names)})")
    return names[0]


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r}: not a time; use ISO 8601, such as 2026-01-05T09:03:00Z")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _bound(text: str | None, option: str) -> int | datetime | None:
    """A global position (digits) or a time."""
    if text is None:
        return None
    if text.strip().isdigit():
        return int(text)
    return _moment(text, option)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=False)


def _emit(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


def _line(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


# -- streams ---------------------------------------------------------------------------


@inspect.command("streams", short_help="Streams by aggregate type, with counts and times.")
@read_side_options()
@click.option("--aggregate", help="Only the streams of this aggregate type.")
@_JSON
def streams(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    aggregate: str | None,
    as_json: bool,
) -> None:
    """List the streams: aggregate type, number of events, first and last event time."""
    with _inspector(project, store) as inspector:
        count = 0
        for view in inspector.streams(aggregate=aggregate):
            count += 1
            if as_json:
                _line(view.to_json())
                continue
            click.echo(
                f"{view.stream_id}  {view.aggregate or '?'}  {view.events} events  "
                f"{_time(view.first_recorded_at)} .. {_time(view.last_recorded_at)}"
            )
        if count == 0 and not as_json:
            click.echo("no streams")


# -- events ----------------------------------------------------------------------------


@inspect.command("events", short_help="A stream's events: typed, upcast, with their metadata.")
@read_side_options(names="STREAM")
@click.option("--since", help="From this global position or time (included).")
@click.option("--until", help="Up to this global position or time (included).")
@click.option("--as-stored", is_flag=True, help="Show each payload as it was recorded.")
@_JSON
def events(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    since: str | None,
    until: str | None,
    as_stored: bool,
    as_json: bool,
) -> None:
    """Each event of STREAM: position, version, type, stored and current version, time,
    correlation and causation ids, actor, and its data (upcast to the current version,
    or as recorded with --as-stored). An event that cannot be decoded is shown with its
    stored payload."""
    stream_id = _one(names, "STREAM")
    low, high = _bound(since, "--since"), _bound(until, "--until")
    with _inspector(project, store) as inspector:
        for view in inspector.events(stream_id, since=low, until=high, as_stored=as_stored):
            if as_json:
                _line(view.to_json())
            else:
                _print_event(view)


def _version_text(view: EventView) -> str:
    if view.current_version is None:
        return f"v{view.stored_version}, cannot be decoded"
    renamed = f" {view.stored_type}" if view.stored_type != view.event_type else ""
    if view.current_version == view.stored_version and not renamed:
        return f"v{view.current_version}"
    return f"v{view.current_version}, stored as{renamed} v{view.stored_version}"


def _who(view: EventView) -> str:
    parts = []
    if view.actor is not None:
        parts.append(f"by {view.actor}")
    if view.saga is not None:
        parts.append(f"saga {view.saga}")
    if view.command is not None:
        parts.append(f"via {view.command}")
    return ("  " + ", ".join(parts)) if parts else ""


def _print_event(view: EventView, indent: str = "") -> None:
    click.echo(
        f"{indent}#{view.position}  {view.stream_id} v{view.stream_version}  "
        f"{view.event_type} ({_version_text(view)})  {_time(view.recorded_at)}{_who(view)}"
    )
    click.echo(
        f"{indent}    event {view.event_id}  correlation {view.correlation_id}  "
        f"causation {view.causation_id}"
    )
    if view.error is not None:
        click.echo(f"{indent}    cannot decode: {view.error}")
        click.echo(f"{indent}    stored: {_compact(view.data)}")
    else:
        label = "stored" if view.as_stored else "data"
        click.echo(f"{indent}    {label}: {_compact(view.data)}")


# -- state, history, replay -------------------------------------------------------------


@inspect.command("state", short_help="An aggregate's state now, at a time, or at a version.")
@read_side_options(names="STREAM")
@click.option("--at", "at_text", help="The state as of this time.")
@click.option("--version", type=click.IntRange(min=1), help="The state at this version.")
@_JSON
def state(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    at_text: str | None,
    version: int | None,
    as_json: bool,
) -> None:
    """The state of the aggregate of STREAM, computed by its own apply methods (from a
    snapshot where one is usable): now, as of --at TIME, or at --version N."""
    stream_id = _one(names, "STREAM")
    if at_text is not None and version is not None:
        fail("give --at or --version, not both")
    at = None if at_text is None else _moment(at_text, "--at")
    with _inspector(project, store) as inspector:
        view = inspector.state(stream_id, at=at, version=version)
    if as_json:
        _emit(view.to_json())
        return
    when = "" if view.recorded_at is None else f", recorded {_time(view.recorded_at)}"
    asked = "" if view.at is None else f" as of {_time(view.at)}"
    click.echo(f"{view.stream_id}{asked}: version {view.version}{when}")
    click.echo(json.dumps(view.state.model_dump(mode="json"), ensure_ascii=False, indent=2))


@inspect.command("history", short_help="The state after each event, as field-by-field changes.")
@read_side_options(names="STREAM")
@_JSON
def history(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    as_json: bool,
) -> None:
    """Each event of STREAM with what it changed in the aggregate's state, field by field.
    An event that cannot be decoded ends the history (exit 1): the states after it cannot
    be known."""
    stream_id = _one(names, "STREAM")
    with _inspector(project, store) as inspector:
        for step in inspector.history(stream_id):
            if as_json:
                _line(step.to_json())
            else:
                _print_step(step)
            if step.state is None:
                fail(
                    f"{stream_id} version {step.event.stream_version} cannot be decoded: the "
                    "states after it cannot be computed",
                    1,
                )


def _print_step(step: HistoryStep) -> None:
    view = step.event
    click.echo(
        f"v{view.stream_version}  {_time(view.recorded_at)}  {view.event_type}"
        f" ({_version_text(view)}){_who(view)}"
    )
    if view.error is not None:
        click.echo(f"    cannot decode: {view.error}")
        click.echo(f"    stored: {_compact(view.data)}")
        return
    if not step.changes:
        click.echo("    (no change)")
    for change in step.changes:
        if change.change == "added":
            click.echo(f"    {change.path}: {_compact(change.after)}")
        elif change.change == "removed":
            click.echo(f"    {change.path}: {_compact(change.before)} -> (removed)")
        else:
            click.echo(f"    {change.path}: {_compact(change.before)} -> {_compact(change.after)}")


@inspect.command("replay", short_help="Replay a stream up to an event; --pdb stops there.")
@read_side_options(names="STREAM")
@click.option(
    "--until",
    "until",
    type=click.IntRange(min=1),
    required=True,
    help="The stream version to stop at.",
)
@click.option(
    "--pdb",
    "use_pdb",
    is_flag=True,
    help="Apply event N under the debugger: it stops on the first line of its apply method.",
)
@_JSON
def replay(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    until: int,
    use_pdb: bool,
    as_json: bool,
) -> None:
    """Replay STREAM through the aggregate's own apply methods, event by event, up to
    version --until N, and print the state there. With --pdb, event N is applied inside
    the debugger, stopped on the first line of your apply method: step through your domain
    code with the state of that moment (`c` continues and prints the state)."""
    stream_id = _one(names, "STREAM")
    steps: list[dict[str, Any]] = []

    def seen(step: HistoryStep) -> None:
        if as_json:
            steps.append(step.to_json())
        else:
            _print_step(step)

    with _inspector(project, store) as inspector:
        debugger = _under_pdb if use_pdb else None
        if use_pdb:
            click.echo(
                f"stopping in the apply method of {stream_id} version {until}; "
                "`c` continues, `q` quits",
                err=True,
            )
        view = inspector.replay(stream_id, until=until, debugger=debugger, on_step=seen)
    if as_json:
        _emit({"steps": steps, "state": view.to_json()})
        return
    click.echo(f"state of {stream_id} at version {view.version}:")
    click.echo(json.dumps(view.state.model_dump(mode="json"), ensure_ascii=False, indent=2))


def _under_pdb(apply: ApplyCall, aggregate: Aggregate[Any, Any], event: Event) -> BaseModel:
    """Call the apply method inside pdb, stopped on its first line."""
    import pdb

    state = pdb.Pdb().runcall(apply, aggregate, event)
    if state is None:  # `q` in the debugger ends the call without a result
        fail("replay stopped in the debugger", 1)
    return state


# -- trace, audit ------------------------------------------------------------------------


@inspect.command("trace", short_help="The whole conversation behind an id, as a causation tree.")
@read_side_options(names="ID")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write an offline page with the tree and a timeline.",
)
@_JSON
def trace(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    names: tuple[str, ...],
    html_file: Path | None,
    as_json: bool,
) -> None:
    """The conversation ID belongs to, across aggregates, sagas and commands: ID is a
    correlation id, an event id, or a command (causation) id. Printed as a causation tree:
    each command (who sent it, which saga), the events it recorded, and what sagas did in
    reaction to them."""
    query = _one(names, "ID")
    with _inspector(project, store) as inspector:
        found = inspector.trace(query)
    document = found.to_json()
    if html_file is not None:
        from esgen.codegen._write import WriteError, write_file
        from esgen.docs import render_trace_html

        try:
            write_file(html_file, render_trace_html(document))
        except WriteError as exc:
            fail(str(exc), 1)
    if as_json:
        _emit(document)
        return
    click.echo(
        f"conversation {found.correlation_id}: {len(found.events)} events in "
        f"{len(found.streams)} streams, {_time(found.events[0].recorded_at)} .. "
        f"{_time(found.events[-1].recorded_at)} (matched by {found.matched} id)"
    )
    for root in found.roots:
        _print_command(root, "")
    if html_file is not None:
        click.echo(f"wrote {html_file}", err=True)


def _print_command(node: TraceCommand, indent: str) -> None:
    names = ", ".join(node.commands) or "command"
    who = [f"by {node.actor}"] if node.actor else []
    if node.saga:
        who.append(f"sent by saga {node.saga}")
    said = f" ({', '.join(who)})" if who else ""
    click.echo(f"{indent}{names}{said}  [{node.causation_id}]")
    for event in node.children:
        _print_trace_event(event, indent + "  ")


def _print_trace_event(node: TraceEvent, indent: str) -> None:
    view = node.view
    mark = "" if view.decoded else "  (cannot be decoded)"
    click.echo(
        f"{indent}-> {view.event_type}  {view.stream_id} v{view.stream_version}  "
        f"{_time(view.recorded_at)}  #{view.position}{mark}"
    )
    for child in node.children:
        _print_command(child, indent + "   ")


@inspect.command("audit", short_help="Every event under an actor or correlation id, by time.")
@read_side_options()
@click.option("--actor", help="Events recorded under this actor (metadata actor or user).")
@click.option("--correlation", "correlation_id", help="Events of this conversation.")
@click.option("--since", help="From this time (included).")
@click.option("--until", help="Up to this time (included).")
@_JSON
def audit(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    actor: str | None,
    correlation_id: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Every event recorded under --actor and/or --correlation, in a time range, in the
    order recorded: a table, or JSON lines with --json (for an audit request)."""
    if actor is None and correlation_id is None:
        fail("give --actor or --correlation (or both)")
    low = None if since is None else _moment(since, "--since")
    high = None if until is None else _moment(until, "--until")
    if low is not None and high is not None and high < low:
        fail(f"--until {until} is before --since {since}")
    with _inspector(project, store) as inspector:
        count = 0
        for view in inspector.audit(
            actor=actor, correlation_id=correlation_id, since=low, until=high
        ):
            count += 1
            if as_json:
                _line(view.to_json())
                continue
            click.echo(
                f"{_time(view.recorded_at)}  {view.actor or '-'}  {view.stream_id} "
                f"v{view.stream_version}  {view.event_type}  "
                f"{view.command or '-'}  {view.correlation_id}"
            )
        if count == 0 and not as_json:
            click.echo("no events")
