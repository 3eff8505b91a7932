"""`esgen inspect`: read-only questions about a store, answered with the context's own types.

Each command opens the store read-only (SQLite without the write lock, PostgreSQL in
read-only transactions), so it is safe against a production store while the application
runs. Listings stream: a line is printed as each event is read. With --json, listings
print JSON lines (one object a line) and single answers one JSON document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
    name = names[0].strip()
    if not name:
        fail(f"{what} is empty")
    return name


_TIME_OF_DAY = re.compile(r"[T ](\d\d)(:\d\d)?(:\d\d)?(?:[.,](\d+))?")


def _moment(text: str, option: str, *, through: bool = False) -> datetime:
    """A time as typed; a time without a zone is UTC. `through`: the last moment of the
    unit typed, so that `--until 2026-01-05` takes in the whole day and `--until
    09:04:00.123` all of that millisecond, as a reader of the listings expects."""
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        fail(f"{option} {text!r}: not a time; use ISO 8601, such as 2026-01-05T09:03:00Z")
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if through:
            moment += _unit_typed(cleaned) - timedelta(microseconds=1)
    except OverflowError:
        fail(f"{option} {text!r}: out of the range of times (years 1 to 9999, in UTC)")
    return moment


def _unit_typed(text: str) -> timedelta:
    found = _TIME_OF_DAY.search(text)
    if found is None:
        return timedelta(days=1)
    _, minutes, seconds, fraction = found.groups()
    if minutes is None:
        return timedelta(hours=1)
    if seconds is None:
        return timedelta(minutes=1)
    digits = len(fraction or "")
    return timedelta(microseconds=10 ** max(6 - digits, 0))


def _bound(text: str | None, option: str, *, through: bool = False) -> int | datetime | None:
    """A global position (digits) or a time."""
    if text is None:
        return None
    cleaned = text.strip()
    if cleaned.isascii() and cleaned.isdigit():
        return int(cleaned)
    return _moment(text, option, through=through)


def _inverted(low: int | datetime | None, high: int | datetime | None) -> bool:
    if isinstance(low, int) and isinstance(high, int):
        return high < low
    return isinstance(low, datetime) and isinstance(high, datetime) and high < low


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ")


def _shown(value: object) -> str:
    """Text from the store, as one printable line (see esgen._printable)."""
    from esgen._printable import printable  # when printing: `esgen --help` needs none of it

    return printable(value if isinstance(value, str) else str(value))


def _compact(value: Any) -> str:
    return _shown(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


def _json(document: Any, **options: Any) -> str:
    """JSON text that can always be written out: a lone surrogate (from a row another
    program wrote) is escaped rather than failing the output."""
    text = json.dumps(document, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(document, ensure_ascii=True, **options)
    return text


def _printable_lines(text: str) -> str:
    """Indented JSON as printable lines (its own newlines kept)."""
    return "\n".join(_shown(line) for line in text.splitlines())


def _emit(document: Any) -> None:
    click.echo(_json(document, indent=2))


def _line(document: Any) -> None:
    click.echo(_json(document, separators=(",", ":")))


# -- streams ---------------------------------------------------------------------------


@inspect.command("streams", short_help="Streams by aggregate type, with counts and times.")
@read_side_options()
@click.option("--aggregate", help="Only the streams of this aggregate type.")
@click.option("--prefix", default="", help="Only the streams whose id starts with this.")
@click.option("--since", help="Only streams with events at or after this time.")
@click.option("--until", help="Only streams with events at or before this time.")
@_JSON
def streams(
    project: ProjectArgs,
    store: StoreArgs,
    feedback: FeedbackArgs,
    aggregate: str | None,
    prefix: str,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """List the streams: aggregate type, number of events, first and last event time."""
    low = None if since is None else _moment(since, "--since")
    high = None if until is None else _moment(until, "--until", through=True)
    if _inverted(low, high):
        fail(f"--until {until} is before --since {since}")
    with _inspector(project, store) as inspector:
        count = 0
        for view in inspector.streams(aggregate=aggregate, prefix=prefix, since=low, until=high):
            count += 1
            if as_json:
                _line(view.to_json())
                continue
            click.echo(
                f"{_shown(view.stream_id)}  {view.aggregate or '?'}  {view.events} events  "
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
    low, high = _bound(since, "--since"), _bound(until, "--until", through=True)
    if _inverted(low, high):
        fail(f"--until {until} is before --since {since}")
    with _inspector(project, store) as inspector:
        for view in inspector.events(stream_id, since=low, until=high, as_stored=as_stored):
            if as_json:
                _line(view.to_json())
            else:
                _print_event(view)


def _version_text(view: EventView) -> str:
    if view.current_version is None:
        return f"v{view.stored_version}, cannot be decoded"
    renamed = f" {_shown(view.stored_type)}" if view.stored_type != view.event_type else ""
    if view.current_version == view.stored_version and not renamed:
        return f"v{view.current_version}"
    return f"v{view.current_version}, stored as{renamed} v{view.stored_version}"


def _who(view: EventView) -> str:
    parts = []
    if view.actor is not None:
        parts.append(f"by {_shown(view.actor)}")
    if view.saga is not None:
        parts.append(f"saga {_shown(view.saga)}")
    if view.command is not None:
        parts.append(f"via {_shown(view.command)}")
    return ("  " + ", ".join(parts)) if parts else ""


def _print_event(view: EventView, indent: str = "") -> None:
    click.echo(
        f"{indent}#{view.position}  {_shown(view.stream_id)} v{view.stream_version}  "
        f"{_shown(view.event_type)} ({_version_text(view)})  {_time(view.recorded_at)}"
        f"{_who(view)}"
    )
    click.echo(
        f"{indent}    event {_shown(view.event_id)}  correlation {_shown(view.correlation_id)}"
        f"  causation {_shown(view.causation_id)}"
    )
    if view.error is not None:
        click.echo(f"{indent}    cannot decode: {_shown(view.error)}")
        click.echo(f"{indent}    stored: {_shown(view.stored_data)}")
    elif view.as_stored:
        click.echo(f"{indent}    stored: {_shown(view.stored_data)}")
    else:
        click.echo(f"{indent}    data: {_compact(view.data)}")


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
    click.echo(f"{_shown(view.stream_id)}{asked}: version {view.version}{when}")
    click.echo(_printable_lines(_json(view.state.model_dump(mode="json"), indent=2)))


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
        f"v{view.stream_version}  {_time(view.recorded_at)}  {_shown(view.event_type)}"
        f" ({_version_text(view)}){_who(view)}"
    )
    if view.error is not None:
        click.echo(f"    cannot decode: {_shown(view.error)}")
        click.echo(f"    stored: {_shown(view.stored_data)}")
        return
    if not step.changes:
        click.echo("    (no change)")
    for change in step.changes:
        path = _shown(change.path)
        if change.change == "added":
            click.echo(f"    {path}: {_compact(change.after)}")
        elif change.change == "removed":
            click.echo(f"    {path}: {_compact(change.before)} -> (removed)")
        else:
            click.echo(f"    {path}: {_compact(change.before)} -> {_compact(change.after)}")


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
    if use_pdb and as_json:
        fail("--pdb talks on standard output: give it without --json")
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
    click.echo(f"state of {_shown(stream_id)} at version {view.version}:")
    click.echo(_printable_lines(_json(view.state.model_dump(mode="json"), indent=2)))


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
    if html_file is not None:
        _check_page_target(html_file, store)
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
        f"conversation {_shown(found.correlation_id or '(none)')}: {len(found.events)} events in "
        f"{len(found.streams)} streams, {_time(found.events[0].recorded_at)} .. "
        f"{_time(found.events[-1].recorded_at)} (matched by {found.matched} id)"
    )
    _print_tree(found.roots)
    if html_file is not None:
        click.echo(f"wrote {html_file}", err=True)


_PAGE_MARK = '<meta name="generator" content="esgen inspect trace">'


def _check_page_target(page: Path, store: StoreArgs) -> None:
    """Before anything is read: the page may replace only an earlier trace page, never the
    store, another file or something that is not a file at all."""
    if not page.exists():
        return
    if not page.is_file():
        fail(f"--html {page}: not a regular file; give the path of a new .html file")
    location = Path(store.location)
    if location.exists() and page.samefile(location):
        fail(f"--html {page} is the event store itself")
    with page.open("rb") as existing:
        head = existing.read(4096)
    if _PAGE_MARK.encode() not in head:
        fail(
            f"--html {page} exists and is not a trace page esgen wrote; give a new path "
            "(or remove the file)"
        )


def _print_tree(roots: Iterable[TraceCommand]) -> None:
    """The causation tree, a line a node, deeper causes indented further. With a stack of
    its own: a long-running saga makes chains deeper than Python's recursion limit."""
    commands: list[tuple[TraceCommand, str]] = []
    events: list[tuple[TraceEvent, str]] = []
    # One stack in effect: each entry says which list holds the next node to print.
    order: list[bool] = []
    for root in reversed(list(roots)):
        commands.append((root, ""))
        order.append(True)
    while order:
        if order.pop():
            command, indent = commands.pop()
            _print_command(command, indent)
            for event in reversed(command.children):
                events.append((event, indent + "  "))
                order.append(False)
        else:
            event, indent = events.pop()
            _print_trace_event(event, indent)
            for child in reversed(event.children):
                commands.append((child, indent + "   "))
                order.append(True)


def _print_command(node: TraceCommand, indent: str) -> None:
    names = ", ".join(_shown(name) for name in node.commands) or "command"
    who = [f"by {_shown(node.actor)}"] if node.actor else []
    if node.saga:
        who.append(f"sent by saga {_shown(node.saga)}")
    said = f" ({', '.join(who)})" if who else ""
    click.echo(f"{indent}{names}{said}  [{_shown(node.causation_id)}]")


def _print_trace_event(node: TraceEvent, indent: str) -> None:
    view = node.view
    mark = "" if view.decoded else "  (cannot be decoded)"
    click.echo(
        f"{indent}-> {_shown(view.event_type)}  {_shown(view.stream_id)} v{view.stream_version}"
        f"  {_time(view.recorded_at)}  #{view.position}{mark}"
    )


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
    high = None if until is None else _moment(until, "--until", through=True)
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
                f"{_time(view.recorded_at)}  {_shown(view.actor or '-')}  "
                f"{_shown(view.stream_id)} v{view.stream_version}  {_shown(view.event_type)}  "
                f"{_shown(view.command or '-')}  {_shown(view.correlation_id)}"
            )
        if count == 0 and not as_json:
            click.echo("no events")
