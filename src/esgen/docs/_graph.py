"""The flow of a context as a graph: command -> aggregate -> event -> projection / saga -> command.

One graph feeds both pictures, the Mermaid source and esgen's own SVG, so they never
disagree. Node ids are made from the kind and the schema name (a validated identifier),
so Mermaid diffs stay readable and no name can clash with a Mermaid keyword.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from esgen.schema import Context

__all__ = [
    "EDGE_KINDS",
    "LAYERS",
    "Edge",
    "EdgeKind",
    "Flow",
    "Node",
    "NodeKind",
    "flow_of",
    "upstream_node_id",
]

# `upstream`: another context's published event that this one subscribes to, drawn
# beside its own events; `consumer`: the read model such events feed.
NodeKind = Literal["command", "aggregate", "event", "projection", "saga", "upstream", "consumer"]
EdgeKind = Literal[
    "handled_by",  # command -> its aggregate
    "records",  # aggregate -> its events
    "consumed_by",  # event -> projection, upstream event -> consumer
    "starts",  # event -> the saga it starts
    "fails",  # event -> a saga it makes compensate
    "reacts",  # event -> a saga that handles it
    "sends",  # saga -> command
    "compensates",  # saga -> a command it sends to undo another
]
# Also the order of precedence when two kinds link the same pair of nodes.
EDGE_KINDS: tuple[EdgeKind, ...] = (
    "handled_by",
    "records",
    "consumed_by",
    "starts",
    "fails",
    "reacts",
    "compensates",
    "sends",
)
# The column of each kind in the diagram, left to right.
LAYERS: dict[NodeKind, int] = {
    "command": 0,
    "aggregate": 1,
    "event": 2,
    "projection": 3,
    "saga": 3,
    "upstream": 2,
    "consumer": 3,
}
_PREFIX: dict[NodeKind, str] = {
    "command": "cmd",
    "aggregate": "agg",
    "event": "evt",
    "projection": "prj",
    "saga": "saga",
    "upstream": "up",
    "consumer": "csm",
}


@dataclass(frozen=True, slots=True)
class Node:
    id: str  # "evt_AccountOpened": safe in Mermaid and in SVG
    kind: NodeKind
    name: str
    anchor: str  # where the catalog describes it

    @property
    def layer(self) -> int:
        return LAYERS[self.kind]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind

    @property
    def label(self) -> str:
        """A few words for the edges whose meaning the colour alone would not carry."""
        return {"starts": "starts", "fails": "fails", "compensates": "compensates"}.get(
            self.kind, ""
        )


@dataclass(frozen=True, slots=True)
class Flow:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def anchor(context: str, kind: str, name: str) -> str:
    return f"{context}-{kind}-{name}"


def node_id(kind: NodeKind, name: str) -> str:
    return f"{_PREFIX[kind]}_{name}"


def upstream_node_id(upstream: str, event: str) -> str:
    # Two underscores between the parts: a context's name is snake_case and an event's
    # an identifier, so `bank__X` names one pair only where the context has no `__`.
    return f"up_{upstream}__{event}"


def flow_of(context: Context) -> Flow:
    """Nodes grouped by aggregate in schema order, then projections and sagas; then the
    subscribed upstream events and the consumers they feed, in schema order."""
    nodes: list[Node] = []

    def add(kind: NodeKind, name: str) -> None:
        nodes.append(Node(node_id(kind, name), kind, name, anchor(context.name, kind, name)))

    for aggregate in context.aggregates:
        add("aggregate", aggregate.name)
        for command in aggregate.commands:
            add("command", command.name)
        for event in aggregate.events:
            add("event", event.name)
    for projection in context.projections:
        add("projection", projection.name)
    for saga in context.sagas:
        add("saga", saga.name)
    for subscription in context.subscriptions:
        for event in subscription.events:
            name = f"{subscription.upstream}.{event.name}"
            nodes.append(
                Node(
                    upstream_node_id(subscription.upstream, event.name),
                    "upstream",
                    name,
                    anchor(context.name, "subscription", subscription.upstream),
                )
            )
    for consumer in context.consumers:
        add("consumer", consumer.name)

    edges: dict[tuple[str, str], EdgeKind] = {}

    def link(source: str, target: str, kind: EdgeKind) -> None:
        # One edge per pair of nodes, the most telling kind winning: an event that both
        # starts a saga and is handled by it is drawn once, as "starts"; a saga's `sends`
        # includes its compensating commands, drawn as "compensates".
        key = (source, target)
        if key not in edges or EDGE_KINDS.index(kind) < EDGE_KINDS.index(edges[key]):
            edges[key] = kind

    for aggregate in context.aggregates:
        agg = node_id("aggregate", aggregate.name)
        for command in aggregate.commands:
            link(node_id("command", command.name), agg, "handled_by")
        for event in aggregate.events:
            link(agg, node_id("event", event.name), "records")
    for projection in context.projections:
        for name in projection.consumes:
            link(node_id("event", name), node_id("projection", projection.name), "consumed_by")
    for saga in context.sagas:
        sid = node_id("saga", saga.name)
        link(node_id("event", saga.starts_with), sid, "starts")
        for name in saga.fails_on:
            link(node_id("event", name), sid, "fails")
        for name in saga.handles:
            link(node_id("event", name), sid, "reacts")
        for name in saga.sends:
            link(sid, node_id("command", name), "sends")
        for _, undo in saga.compensations:
            link(sid, node_id("command", undo), "compensates")
    for consumer in context.consumers:
        for upstream, event_name in consumer.handles:
            link(
                upstream_node_id(upstream, event_name),
                node_id("consumer", consumer.name),
                "consumed_by",
            )
    order = {n.id: i for i, n in enumerate(nodes)}
    ordered = sorted(edges.items(), key=lambda item: (order[item[0][0]], order[item[0][1]]))
    return Flow(tuple(nodes), tuple(Edge(s, t, kind) for (s, t), kind in ordered))
