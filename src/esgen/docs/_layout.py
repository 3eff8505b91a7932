"""A small layered-graph layout, so the HTML page can draw the flow as inline SVG itself.

Columns are fixed by kind (commands, aggregates, events, projections and sagas). Within a
column, nodes are ordered by the barycentre of their neighbours (a few sweeps, ties kept
in schema order), then placed as close to their neighbours as the order and the spacing
allow (isotonic regression, so a column is never squeezed or reordered). Edges between
neighbouring columns are cubic curves; a saga's commands, which flow back to the first
column, go round the drawing in nested lanes below it. Everything is plain arithmetic on
the schema order, rounded to a tenth: the same schema always gives the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from esgen.docs._graph import Edge, EdgeKind, Flow, Node, NodeKind

__all__ = ["Box", "Column", "Diagram", "Line", "format_number", "layout"]

NODE_HEIGHT = 40.0
ROW_GAP = 14.0
COLUMN_GAP = 96.0
MARGIN = 16.0
HEADING = 30.0  # room above the columns for their titles
LANE = 10.0  # distance between the lanes of edges that go round the drawing
NAME_CHAR = 7.9  # advance of a 13px monospace glyph (DejaVu Sans Mono, Menlo, Consolas)
MIN_WIDTH = 112.0
SWEEPS = 4
COLUMN_TITLES = ("Commands", "Aggregates", "Events", "Projections and sagas")


@dataclass(frozen=True, slots=True)
class Box:
    id: str
    kind: NodeKind
    name: str
    anchor: str
    x: float
    y: float
    width: float
    height: float

    # Where the two lines of text go: the kind, small, above the name.
    @property
    def text_x(self) -> float:
        return _r(self.x + 12)

    @property
    def kind_y(self) -> float:
        return _r(self.y + 15)

    @property
    def name_y(self) -> float:
        return _r(self.y + 31)


@dataclass(frozen=True, slots=True)
class Line:
    kind: EdgeKind
    d: str  # SVG path data
    title: str  # "MoneyTransfer sends WithdrawMoney", shown on hover


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    x: float  # centre
    y: float = MARGIN + 12  # baseline


@dataclass(frozen=True, slots=True)
class Diagram:
    width: float
    height: float
    columns: tuple[Column, ...]
    boxes: tuple[Box, ...]
    lines: tuple[Line, ...]


def _r(value: float) -> float:
    return round(value, 1) + 0.0  # + 0.0 turns -0.0 into 0.0


def format_number(value: float) -> str:
    """Shortest text of a coordinate: `12`, `12.5`; never `-0`."""
    text = f"{_r(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _width(name: str) -> float:
    return max(MIN_WIDTH, float(round(24 + NAME_CHAR * len(name))))


def _order(flow: Flow, columns: list[list[Node]]) -> None:
    """Barycentre sweeps, down then up; a stable sort keeps schema order on ties."""
    forward = [e for e in flow.edges if _is_forward(flow, e)]

    def sweep(index: int, neighbour_index: int) -> None:
        position = {n.id: i for i, n in enumerate(columns[neighbour_index])}
        own = {n.id: i for i, n in enumerate(columns[index])}

        def barycentre(node: Node) -> float:
            linked = [
                position[e.target if e.source == node.id else e.source]
                for e in forward
                if node.id in (e.source, e.target)
                and (e.target if e.source == node.id else e.source) in position
            ]
            if not linked:
                # Scaled to the neighbour column, so a lone node keeps its relative place.
                size = max(len(columns[index]) - 1, 1)
                return own[node.id] * max(len(position) - 1, 0) / size
            return sum(linked) / len(linked)

        columns[index].sort(key=barycentre)

    for _ in range(SWEEPS):
        for index in range(1, len(columns)):
            sweep(index, index - 1)
        for index in range(len(columns) - 2, -1, -1):
            sweep(index, index + 1)


def _is_forward(flow: Flow, edge: Edge) -> bool:
    return flow.node(edge.source).layer < flow.node(edge.target).layer


def _isotonic(desired: Sequence[float], step: float) -> list[float]:
    """Positions closest to `desired` (least squares) that keep the order, `step` apart."""
    # Shift out the spacing, fit a non-decreasing sequence (pool adjacent violators),
    # and add the spacing back.
    shifted = [d - i * step for i, d in enumerate(desired)]
    blocks: list[list[float]] = []  # [mean, count]
    for value in shifted:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            prev_mean, prev_count = blocks[-1]
            total = prev_count + count
            blocks[-1] = [(prev_mean * prev_count + mean * count) / total, total]
    fitted = [mean for mean, count in blocks for _ in range(int(count))]
    return [f + i * step for i, f in enumerate(fitted)]


def _place(flow: Flow, columns: list[list[Node]]) -> dict[str, float]:
    """The top of every box: each column stacked, then pulled towards its neighbours."""
    step = NODE_HEIGHT + ROW_GAP
    tallest = max((len(c) for c in columns), default=0)
    top: dict[str, float] = {}
    for column in columns:
        offset = (tallest - len(column)) * step / 2
        for i, node in enumerate(column):
            top[node.id] = offset + i * step
    forward = [e for e in flow.edges if _is_forward(flow, e)]
    for _ in range(SWEEPS):
        for column in [*columns[1:], *reversed(columns[:-1])]:
            desired = []
            for node in column:
                linked = [
                    top[e.target if e.source == node.id else e.source]
                    for e in forward
                    if node.id in (e.source, e.target)
                ]
                desired.append(sum(linked) / len(linked) if linked else top[node.id])
            for node, y in zip(column, _isotonic(desired, step), strict=True):
                top[node.id] = y
    lowest = min(top.values(), default=0.0)
    return {node: y - lowest for node, y in top.items()}


def _ports(edges: list[Edge], boxes: dict[str, Box], end: str) -> dict[tuple[str, str], float]:
    """The y where each edge leaves (`end="source"`) or meets its box, spread evenly and
    ordered by the other end's height, so edges of one box do not cross near it."""
    ports: dict[tuple[str, str], float] = {}
    by_box: dict[str, list[Edge]] = {}
    for edge in edges:
        by_box.setdefault(getattr(edge, end), []).append(edge)
    for box_id, group in by_box.items():
        box = boxes[box_id]
        other = "target" if end == "source" else "source"
        group.sort(key=lambda e: (_centre(boxes[getattr(e, other)]), getattr(e, other)))
        for k, edge in enumerate(group):
            ports[edge.source, edge.target] = box.y + box.height * (k + 1) / (len(group) + 1)
    return ports


def _centre(box: Box) -> float:
    return box.y + box.height / 2


def _titles(flow: Flow) -> tuple[str, ...]:
    # The last column names consumers only where a context has them, so the diagrams of
    # contexts that subscribe to nothing keep their titles.
    kinds = {n.kind for n in flow.nodes if n.layer == len(COLUMN_TITLES) - 1}
    if "consumer" not in kinds:
        return COLUMN_TITLES
    # No longer than the usual title, which the narrowest column (MIN_WIDTH) must hold.
    last = "Read models and sagas" if kinds - {"consumer"} else "Consumers"
    return (*COLUMN_TITLES[:-1], last)


def layout(flow: Flow) -> Diagram:
    count = max((n.layer for n in flow.nodes), default=-1) + 1
    # A context that only consumes other contexts' events has no commands or aggregates
    # to leave room for: its picture starts at the events. Every other context keeps its
    # columns (even an empty one of commands), so its picture stays as it was.
    consumes_only = bool(flow.nodes) and all(n.kind in ("upstream", "consumer") for n in flow.nodes)
    first = min(n.layer for n in flow.nodes) if consumes_only else 0
    layers = range(first, count)
    titles = [_titles(flow)[i] for i in layers]
    columns: list[list[Node]] = [[n for n in flow.nodes if n.layer == i] for i in layers]
    _order(flow, columns)
    top = _place(flow, columns)

    back = [e for e in flow.edges if not _is_forward(flow, e)]
    lanes = len(back)
    left = MARGIN + lanes * LANE + (LANE if lanes else 0)
    widths = [max((_width(n.name) for n in column), default=MIN_WIDTH) for column in columns]
    boxes: dict[str, Box] = {}
    heads: list[Column] = []
    x = left
    for index, column in enumerate(columns):
        heads.append(Column(titles[index], _r(x + widths[index] / 2)))
        for node in column:
            boxes[node.id] = Box(
                node.id,
                node.kind,
                node.name,
                node.anchor,
                _r(x),
                _r(MARGIN + HEADING + top[node.id]),
                _width(node.name),
                NODE_HEIGHT,
            )
        x += widths[index] + COLUMN_GAP
    right = x - COLUMN_GAP
    bottom = max((b.y + b.height for b in boxes.values()), default=MARGIN + HEADING)

    out_port = _ports(list(flow.edges), boxes, "source")
    in_port = _ports(list(flow.edges), boxes, "target")
    lines: list[Line] = []
    n = format_number
    for edge in flow.edges:
        if edge in back:
            continue
        source, target = boxes[edge.source], boxes[edge.target]
        x1, y1 = source.x + source.width, out_port[edge.source, edge.target]
        x2, y2 = target.x, in_port[edge.source, edge.target]
        middle = (x1 + x2) / 2
        d = f"M{n(x1)},{n(y1)} C{n(middle)},{n(y1)} {n(middle)},{n(y2)} {n(x2)},{n(y2)}"
        lines.append(Line(edge.kind, d, _title(edge, source, target)))
    # Back edges go round the drawing, the higher the further out: that way they nest
    # and never cross one another (the last one is the outermost).
    back.sort(key=lambda e: (-out_port[e.source, e.target], -in_port[e.source, e.target]))
    for k, edge in enumerate(back):
        source, target = boxes[edge.source], boxes[edge.target]
        lane = (k + 1) * LANE
        x1, y1 = source.x + source.width, out_port[edge.source, edge.target]
        x2, y2 = target.x, in_port[edge.source, edge.target]
        d = (
            f"M{n(x1)},{n(y1)} H{n(right + lane)} V{n(bottom + lane)} "
            f"H{n(left - lane)} V{n(y2)} H{n(x2)}"
        )
        lines.append(Line(edge.kind, d, _title(edge, source, target)))
    width = right + MARGIN + lanes * LANE + (LANE if lanes else 0)
    height = bottom + MARGIN + lanes * LANE + (LANE if lanes else 0)
    return Diagram(
        _r(max(width, 2 * MARGIN)),
        _r(max(height, 2 * MARGIN)),
        tuple(heads),
        tuple(sorted(boxes.values(), key=lambda b: (b.x, b.y))),
        tuple(lines),
    )


_VERBS: dict[EdgeKind, str] = {
    "handled_by": "is handled by",
    "records": "records",
    "consumed_by": "is consumed by",
    "starts": "starts",
    "fails": "makes compensate",
    "reacts": "is handled by",
    "sends": "sends",
    "compensates": "compensates with",
}


def _title(edge: Edge, source: Box, target: Box) -> str:
    return f"{source.name} {_VERBS[edge.kind]} {target.name}"
