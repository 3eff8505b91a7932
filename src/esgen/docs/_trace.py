"""A trace (the JSON of `esgen inspect trace`) -> one offline HTML page, in memory.

The page shows the trace's header, its causation tree as nested lists, and a timeline
drawn as inline SVG: one lane per stream, x following time, a marker per event, and a line
from each event to the events of the commands sagas sent in reaction to it.

Every string of a trace may hold whatever a user or an attacker wrote: it reaches the
page through Jinja's autoescape only, shown on one line with control characters spelled
out, and cut short where the drawing has no room for it. The trace's nesting may be as
deep as its saga chains: it is walked with an explicit stack, never by recursion.
Everything is plain arithmetic on the input rounded to a tenth, so the same trace always
gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from esgen._printable import printable
from esgen.docs._layout import format_number
from esgen.docs._render import _environment

__all__ = ["render_trace_html"]

MARGIN = 16.0
LANE_HEIGHT = 56.0
LANE_CHAR = 7.3  # advance of a 12px monospace glyph (DejaVu Sans Mono, Menlo, Consolas)
LABEL_CHAR = 6.7  # advance of an 11px monospace glyph
# A lane's label is cut to this (a type name and a UUID fit); its <title> holds the whole id.
LANE_LABEL_CHARS = 48
EVENT_LABEL_CHARS = 24
MIN_LABEL_CHARS = 4  # below this a label says nothing: the marker's <title> alone names it
GAP = 30.0  # the least distance between two events along the time axis
MIN_PLOT = 480.0
RADIUS = 6.0
AXIS = 40.0  # room below the lanes for the time axis and its labels
TEXT_LIMIT = 300  # the tree and the header show this much of any one string
TIME_LIMIT = 64  # longer "times" are not parsed: no ISO time is that long
# Deeper nodes of the tree are listed at this depth, each saying its own: the indentation
# stays on the page, and the lists stay well below the browsers' limit of nested elements
# (Chromium flattens anything deeper than 512).
MAX_NESTING = 12


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    value: str
    code: bool = True
    more: tuple[str, ...] = ()  # further values of a list, after `value`


@dataclass(frozen=True, slots=True)
class Row:
    """One node of the causation tree, with the tags that nest it among its neighbours
    (`before` opens or closes lists; it holds fixed tags only, never input)."""

    before: Markup
    kind: str  # "command" or "event"
    depth: int | None  # from 1 at the roots; shown where the nesting cannot show it
    anchor: str
    title: str
    facts: tuple[Fact, ...]
    undecodable: bool


@dataclass(frozen=True, slots=True)
class Lane:
    label: str
    stream_id: str
    y: float  # centre line
    top: float
    height: float
    odd: bool
    label_x: float
    label_y: float


@dataclass(frozen=True, slots=True)
class Marker:
    anchor: str
    x: float
    y: float
    label: str
    label_x: float
    label_y: float
    title: str
    undecodable: bool


@dataclass(frozen=True, slots=True)
class Link:
    d: str
    title: str


@dataclass(frozen=True, slots=True)
class Timeline:
    width: float
    height: float
    gutter: float  # where the plot starts
    plot_right: float
    lanes: tuple[Lane, ...]
    markers: tuple[Marker, ...]
    links: tuple[Link, ...]
    axis_y: float
    start: str
    end: str
    proportional: bool  # False: placed in order, the times could not be read or are all one


@dataclass(frozen=True, slots=True)
class _Event:
    index: int  # in tree order, from 1: the anchor `ev-N`
    node: Mapping[str, Any]
    stream_id: str
    moment: datetime | None
    position: int | None


def render_trace_html(trace: Mapping[str, Any]) -> str:
    """The trace as one self-contained HTML page: no script, no network, no resource."""
    rows, closing, events, links = _walk(trace)
    streams = _streams(trace, events)
    header = _header(trace, streams)
    timeline = _timeline(streams, events, links)
    return (
        _environment()
        .get_template("trace.html.jinja")
        .render(
            query=_visible(trace.get("query")),
            header=header,
            rows=rows,
            closing=closing,
            timeline=timeline,
            event_count=len(events),
            link_count=len(timeline.links),
        )
    )


# -- input: every value is treated as untrusted and of any type ---------------------------


def _visible(value: object, limit: int = TEXT_LIMIT) -> str:
    """`value` as one line of text, control characters spelled out, cut at `limit`."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # Cut before spelling out: a huge string costs no more than `limit` characters' work,
    # and one character more than fits still shows that it was cut.
    shown = printable(text[: limit + 1])
    return _clip(shown, limit)


def _clip(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    return text[: max(chars - 1, 0)] + "…"


def _clip_middle(text: str, chars: int) -> str:
    """Cut from the middle: stream ids share their start (`Account-`) and differ at the end."""
    if len(text) <= chars:
        return text
    head = (chars - 1) // 2
    return text[:head] + "…" + text[len(text) - (chars - 1 - head) :]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > TIME_LIMIT:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _nodes(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def _names(value: object) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _clip(", ".join(_visible(v) for v in value[:TEXT_LIMIT]), TEXT_LIMIT)
    return _visible(value)


# -- the causation tree --------------------------------------------------------------------


def _walk(
    trace: Mapping[str, Any],
) -> tuple[list[Row], Markup, list[_Event], list[tuple[int, int, str]]]:
    """The rows of the tree in document order, the tags that close it, the events, and
    the links between events (source index, target index, title): event -> the command a
    saga sent reacting to it -> that command's events."""
    rows: list[Row] = []
    events: list[_Event] = []
    links: list[tuple[int, int, str]] = []
    # Each entry: a node, its depth, and the event (index, type) whose saga sent it, if any.
    stack: list[tuple[Mapping[str, Any], int, tuple[int, str] | None]] = [
        (node, 0, None) for node in reversed(_nodes(trace.get("roots")))
    ]
    depth = -1
    commands = 0
    while stack:
        node, level, cause = stack.pop()
        nesting = min(level, MAX_NESTING)
        before = _nesting(depth, nesting)
        depth = nesting
        shown = level + 1 if level >= MAX_NESTING else None
        if node.get("kind") == "event":
            index = len(events) + 1
            event = _Event(
                index,
                node,
                _visible(node.get("stream_id"), 10 * TEXT_LIMIT),
                _moment(node.get("recorded_at")),
                _int(node.get("position")),
            )
            events.append(event)
            rows.append(_event_row(before, shown, event))
            if cause is not None:
                links.append((cause[0], index, cause[1]))
            source = (index, _visible(node.get("event_type"), 80))
            for child in reversed(_nodes(node.get("children"))):
                stack.append((child, level + 1, source))
        else:
            commands += 1
            rows.append(_command_row(before, shown, commands, node))
            sent = None
            if cause is not None:
                saga = _visible(node.get("saga"), 80) or "a saga"
                what = _names(node.get("commands")) or "a command"
                sent = (cause[0], f"{saga} sends {_clip(what, 80)} after {cause[1]}")
            for child in reversed(_nodes(node.get("children"))):
                stack.append((child, level + 1, sent))
    closing = Markup("</li>\n" + "</ul>\n</li>\n" * depth + "</ul>") if rows else Markup()
    return rows, closing, events, links


def _nesting(depth: int, level: int) -> Markup:
    """The tags between the previous row (at `depth`, -1 before the first) and the next
    (at `level`): a child follows its parent directly, whose item stays open."""
    if depth < 0:
        return Markup('<ul class="tree">\n')
    if level > depth:
        return Markup("<ul>\n")
    return Markup("</li>\n" + "</ul>\n</li>\n" * (depth - level))


def _command_row(before: Markup, depth: int | None, number: int, node: Mapping[str, Any]) -> Row:
    names = _names(node.get("commands"))
    facts = [
        Fact("saga", _visible(node.get("saga"))),
        Fact("actor", _visible(node.get("actor"))),
        Fact("at", _visible(node.get("recorded_at"))),
        Fact("causation", _visible(node.get("causation_id"))),
    ]
    return Row(
        before,
        "command",
        depth,
        f"cmd-{number}",
        names or "unknown command",
        tuple(f for f in facts if f.value),
        undecodable=False,
    )


def _event_row(before: Markup, depth: int | None, event: _Event) -> Row:
    node = event.node
    stored = _visible(node.get("stored_version"), 20)
    current = _visible(node.get("current_version"), 20)
    upcast = current and current != stored
    version = f"v{stored}" + (f" stored, read as v{current}" if upcast else "")
    facts = [
        Fact("position", _visible(node.get("position"), 20)),
        Fact("aggregate", _visible(node.get("aggregate"))),
        Fact("stream", _visible(node.get("stream_id"))),
        Fact("stream version", _visible(node.get("stream_version"), 20)),
        Fact("event version", version if stored else ""),
        Fact("at", _visible(node.get("recorded_at"))),
        Fact("actor", _visible(node.get("actor"))),
        Fact("command", _visible(node.get("command"))),
        Fact("saga", _visible(node.get("saga"))),
        Fact("id", _visible(node.get("event_id"))),
    ]
    return Row(
        before,
        "event",
        depth,
        f"ev-{event.index}",
        _visible(node.get("event_type")) or "unknown event",
        tuple(f for f in facts if f.value),
        undecodable=node.get("decoded") is False,
    )


# -- the header ------------------------------------------------------------------------------


def _streams(trace: Mapping[str, Any], events: list[_Event]) -> list[str]:
    """The trace's streams in its order, then any stream only its events name."""
    named = trace.get("streams")
    listed = named if isinstance(named, Sequence) and not isinstance(named, str) else []
    streams = list(dict.fromkeys(_visible(s, 10 * TEXT_LIMIT) for s in listed))
    seen = set(streams)
    for event in events:
        if event.stream_id not in seen:
            seen.add(event.stream_id)
            streams.append(event.stream_id)
    return streams


def _header(trace: Mapping[str, Any], streams: list[str]) -> tuple[Fact, ...]:
    return (
        Fact("Query", _visible(trace.get("query"))),
        Fact("Matched", _visible(trace.get("matched")), code=False),
        Fact("Correlation id", _visible(trace.get("correlation_id"))),
        Fact("First event", _visible(trace.get("first_recorded_at"))),
        Fact("Last event", _visible(trace.get("last_recorded_at"))),
        Fact("Events", _visible(trace.get("event_count"), 20), code=False),
        Fact("Streams", *_list(streams)),
    )


def _list(values: list[str]) -> tuple[str, bool, tuple[str, ...]]:
    if not values:
        return "none", False, ()
    clipped = [_clip(v, TEXT_LIMIT) for v in values]
    return clipped[0], True, tuple(clipped[1:])


# -- the timeline --------------------------------------------------------------------------


def _timeline(
    streams: list[str], events: list[_Event], links: list[tuple[int, int, str]]
) -> Timeline:
    lane_of = {stream: i for i, stream in enumerate(streams)}
    longest = max((len(_clip_middle(s, LANE_LABEL_CHARS)) for s in streams), default=0)
    gutter = MARGIN + max(longest, 6) * LANE_CHAR + 2 * MARGIN
    width_for_order = max(MIN_PLOT, GAP * (len(events) - 1))
    order, xs, proportional = _abscissae(events, gutter, width_for_order)

    lanes = tuple(
        Lane(
            _clip_middle(stream, LANE_LABEL_CHARS),
            stream,
            _r(MARGIN + i * LANE_HEIGHT + LANE_HEIGHT / 2),
            _r(MARGIN + i * LANE_HEIGHT),
            LANE_HEIGHT,
            i % 2 == 1,
            MARGIN,
            _r(MARGIN + i * LANE_HEIGHT + LANE_HEIGHT / 2 + 4),
        )
        for i, stream in enumerate(streams)
    )
    # Labels alternate above and below their lane's line; each may run up to the next
    # label on its side of the same lane.
    by_lane: dict[int, list[_Event]] = {}
    for event in order:
        by_lane.setdefault(lane_of[event.stream_id], []).append(event)
    markers: dict[int, Marker] = {}
    right = gutter + width_for_order
    for lane, members in by_lane.items():
        y = lanes[lane].y
        for k, event in enumerate(members):
            x = xs[event.index]
            following = members[k + 2] if k + 2 < len(members) else None
            room = EVENT_LABEL_CHARS
            if following is not None:
                room = min(room, int((xs[following.index] - x - 8) // LABEL_CHAR))
            name = _visible(event.node.get("event_type"), 200) or "?"
            label = _clip(name, room) if room >= MIN_LABEL_CHARS else ""
            label_x = x - RADIUS
            markers[event.index] = Marker(
                f"ev-{event.index}",
                _r(x),
                y,
                label,
                _r(label_x),
                _r(y - 11 if k % 2 == 0 else y + 19),
                _marker_title(event),
                event.node.get("decoded") is False,
            )
            right = max(right, label_x + len(label) * LABEL_CHAR, x + RADIUS)
    lines = tuple(_link(markers[a], markers[b], title) for a, b, title in links)
    bottom = MARGIN + len(streams) * LANE_HEIGHT
    # Out of time order where some times cannot be read: the axis spans those that can.
    times = [e.moment for e in order if e.moment is not None]
    return Timeline(
        width=_r(right + MARGIN),
        height=_r(bottom + AXIS),
        gutter=_r(gutter),
        plot_right=_r(right),
        lanes=lanes,
        markers=tuple(markers[e.index] for e in events),
        links=lines,
        axis_y=_r(bottom + 8),
        start=_clock(min(times)) if times else "",
        end=_span(min(times), max(times)) if times else "",
        proportional=proportional,
    )


def _abscissae(
    events: list[_Event], left: float, width: float
) -> tuple[list[_Event], dict[int, float], bool]:
    """Events in time order and the x of each: proportional to time where every time can
    be read and they differ, each at least GAP after the one before; otherwise spread
    evenly in the order of their positions."""
    timed = bool(events) and all(e.moment is not None for e in events)
    moments = [e.moment for e in events if e.moment is not None]
    span = (max(moments) - min(moments)).total_seconds() if timed else 0.0
    if timed and span > 0:
        order = sorted(events, key=lambda e: (e.moment, _rank(e), e.index))
        start = order[0].moment
        assert start is not None  # every event is timed here
        xs: dict[int, float] = {}
        previous = left - GAP
        for event in order:
            assert event.moment is not None
            offset = (event.moment - start).total_seconds() / span * width
            previous = max(left + offset, previous + GAP)
            xs[event.index] = previous
        return order, xs, True
    order = sorted(events, key=lambda e: (_rank(e), e.index))
    step = width / (len(order) - 1) if len(order) > 1 else 0.0
    return order, {e.index: left + i * step for i, e in enumerate(order)}, False


def _rank(event: _Event) -> int:
    # Events without a readable position keep their tree order, after the others.
    return event.position if event.position is not None else 1 << 62


def _link(source: Marker, target: Marker, title: str) -> Link:
    n = format_number
    x1, y1, x2, y2 = source.x, source.y, target.x, target.y
    if y1 == y2:
        # Within one lane: an arch above the line, so it does not hide under it.
        d = f"M{n(x1)},{n(y1)} C{n(x1)},{n(y1 - 30)} {n(x2)},{n(y2 - 30)} {n(x2)},{n(y2)}"
    else:
        middle = (x1 + x2) / 2
        d = f"M{n(x1)},{n(y1)} C{n(middle)},{n(y1)} {n(middle)},{n(y2)} {n(x2)},{n(y2)}"
    return Link(d, title)


def _marker_title(event: _Event) -> str:
    node = event.node
    parts = [
        _visible(node.get("event_type"), 120) or "unknown event",
        f"at {_visible(node.get('stream_id'), 120)} version "
        f"{_visible(node.get('stream_version'), 20)}",
        _visible(node.get("recorded_at"), TIME_LIMIT),
    ]
    if node.get("decoded") is False:
        parts.append("undecodable")
    return " · ".join(p for p in parts if p)


def _clock(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _span(first: datetime, last: datetime) -> str:
    """How long the trace took, in the largest unit that keeps it readable."""
    seconds = (last - first).total_seconds()
    if seconds < 120:
        return f"+{seconds:.3f} s"
    if seconds < 2 * 3600:
        return f"+{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"+{seconds / 3600:.1f} h"
    return f"+{seconds / 86400:,.1f} days"


def _r(value: float) -> float:
    return round(value, 1) + 0.0
