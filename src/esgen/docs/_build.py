"""Schema model -> catalog IR: every cross-reference, version step and picture worked out."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from esgen.docs._asyncapi import asyncapi_document, asyncapi_file, channel_address
from esgen.docs._escape import mermaid_label
from esgen.docs._graph import EdgeKind, Flow, NodeKind, anchor, flow_of
from esgen.docs._ir import (
    AggregateDoc,
    AsyncApiDoc,
    Catalog,
    CommandDoc,
    ConsumerDoc,
    ContextDoc,
    EnumDoc,
    EventDoc,
    FieldDoc,
    JsonSchemaDoc,
    MatrixRow,
    ProjectionDoc,
    PublishedDoc,
    Ref,
    SagaDoc,
    Source,
    StepDoc,
    SubscribedEventDoc,
    SubscriptionDoc,
    TypePart,
    ValueTypeDoc,
    VersionDoc,
    context_page,
)
from esgen.docs._json import jsonable
from esgen.docs._layout import layout
from esgen.runtime._integration import Wire
from esgen.schema import (
    Aggregate,
    Command,
    Context,
    EnumType,
    Event,
    EventVersion,
    Field,
    JsonSchemaType,
    SchemaSet,
    Subscription,
    ValueType,
    analyse_step,
    erased_json,
    python_name,
)

__all__ = ["build_catalog", "source_label"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def source_label(root: Path, path: Path) -> str:
    """A schema file as headers name it: its folder's name, then the path inside."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.name
    return (PurePosixPath(root.resolve().name) / relative.as_posix()).as_posix()


def build_catalog(schema: SchemaSet, out_dir: Path) -> Catalog:
    """`out_dir` is where the catalog goes: links to schema files are relative to it."""
    contexts = tuple(_ContextBuilder(c, schema.root, out_dir).build() for c in schema.contexts)
    sources = sorted({source_label(schema.root, f) for c in schema.contexts for f in c.files})
    return Catalog(contexts, tuple(sources))


def paragraphs(text: str | None) -> tuple[str, ...]:
    """A description as paragraphs (blank lines apart), each on one line."""
    if not text:
        return ()
    return tuple(
        " ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip()) if block.strip()
    )


def literal(value: Any) -> str:
    """A default as JSON shows it, the way it is stored in events."""
    return json.dumps(jsonable(value), ensure_ascii=False, sort_keys=True)


def _shown(constraint: Any) -> str:
    # A flag as the schema spells it (`allow_nan true`), not as Python prints it.
    return json.dumps(constraint) if isinstance(constraint, bool) else str(constraint)


class _ContextBuilder:
    def __init__(self, context: Context, root: Path, out_dir: Path) -> None:
        self.context = context
        self.root = root
        self.out_dir = out_dir
        self.type_names = {t.name for t in context.types}

    def ref(self, kind: str, name: str) -> Ref:
        return Ref(name, anchor(self.context.name, kind, name))

    def source(self, path: Path) -> Source:
        # The file alone, never its line: a line number moves whenever anything above it
        # is edited, and would rewrite the "defined in" of every later entry in the diff.
        label = source_label(self.root, path)
        try:
            relative = os.path.relpath(path.resolve(), self.out_dir.resolve())
        except ValueError:  # another drive: no relative link exists
            return Source(label, None)
        # Quoted, so a space or a parenthesis in a folder name cannot end the link.
        return Source(label, quote(Path(relative).as_posix()))

    def field(self, field: Field, subject: str = "") -> FieldDoc:
        """`subject`: whose data the personal fields of this model are, as shown."""
        spelled = str(field.type)
        parts: list[TypePart] = []
        position = 0
        for match in _NAME.finditer(spelled):
            if match.group() not in self.type_names:
                continue
            if match.start() > position:
                parts.append(TypePart(spelled[position : match.start()]))
            parts.append(TypePart(match.group(), anchor(self.context.name, "type", match.group())))
            position = match.end()
        if position < len(spelled):
            parts.append(TypePart(spelled[position:]))
        return FieldDoc(
            name=field.name,
            type=spelled,
            type_parts=tuple(parts),
            default=literal(field.default) if field.has_default else None,
            optional=field.optional,
            constraints=tuple((name, _shown(value)) for name, value in field.constraints.items()),
            description=paragraphs(field.description),
            renamed_from=field.renamed_from,
            attribute=_attribute(field.name),
            personal=(
                None
                if field.personal is None
                else (subject, literal(erased_json(field.personal.erased)))
            ),
        )

    def build(self) -> ContextDoc:
        ctx = self.context
        flow = flow_of(ctx)
        document = asyncapi_document(ctx, tuple(source_label(self.root, f) for f in ctx.files))
        wire = Wire(ctx.name)
        return ContextDoc(
            name=ctx.name,
            anchor=f"{ctx.name}-context",
            page=context_page(ctx.name),
            description=paragraphs(ctx.description),
            compatibility=ctx.compatibility,
            files=tuple(self.source(f) for f in ctx.files),
            aggregates=tuple(self.aggregate(a) for a in ctx.aggregates),
            projections=tuple(
                ProjectionDoc(
                    name=p.name,
                    anchor=anchor(ctx.name, "projection", p.name),
                    description=paragraphs(p.description),
                    consumes=tuple(self.ref("event", e) for e in p.consumes),
                    key=p.key,
                    fields=tuple(self.field(f, p.subject_field) for f in p.fields),
                    source=self.source(p.location.file),
                    indexes=tuple(", ".join(columns) for columns in p.indexes),
                )
                for p in ctx.projections
            ),
            sagas=tuple(
                SagaDoc(
                    name=s.name,
                    anchor=anchor(ctx.name, "saga", s.name),
                    description=paragraphs(s.description),
                    starts_with=self.ref("event", s.starts_with),
                    correlation=s.correlation,
                    correlation_aggregate=s.correlation_aggregate,
                    handles=tuple(self.ref("event", e) for e in s.handles),
                    sends=tuple(self.ref("command", c) for c in s.sends),
                    fails_on=tuple(self.ref("event", e) for e in s.fails_on),
                    compensations=tuple(
                        (self.ref("command", done), self.ref("command", undo))
                        for done, undo in s.compensations
                    ),
                    timeout=s.timeout.text if s.timeout else None,
                    timeout_then=s.timeout.then if s.timeout else None,
                    state=tuple(self.field(f, s.subject or "") for f in s.state),
                    source=self.source(s.location.file),
                )
                for s in ctx.sagas
            ),
            value_types=tuple(
                ValueTypeDoc(
                    t.name,
                    anchor(ctx.name, "type", t.name),
                    paragraphs(t.description),
                    tuple(self.field(f) for f in t.fields),
                    self.source(t.location.file),
                )
                for t in ctx.types
                if isinstance(t, ValueType)
            ),
            enums=tuple(
                EnumDoc(
                    t.name,
                    anchor(ctx.name, "type", t.name),
                    paragraphs(t.description),
                    t.values,
                    self.source(t.location.file),
                )
                for t in ctx.types
                if isinstance(t, EnumType)
            ),
            json_types=tuple(
                JsonSchemaDoc(
                    t.name,
                    anchor(ctx.name, "type", t.name),
                    paragraphs(t.description),
                    self.source(t.schema_path),
                    self.source(t.location.file),
                )
                for t in ctx.types
                if isinstance(t, JsonSchemaType)
            ),
            mermaid=mermaid(flow),
            diagram=layout(flow),
            published=tuple(
                PublishedDoc(
                    self.ref("event", e.name),
                    tuple(v.version for v in e.versions),
                    channel_address(wire, e.aggregate, e.name),
                )
                for e in ctx.events
                if e.published
            ),
            asyncapi=None if document is None else AsyncApiDoc(asyncapi_file(ctx.name), document),
            subscriptions=tuple(self.subscription(s) for s in ctx.subscriptions),
            consumers=tuple(
                ConsumerDoc(
                    name=c.name,
                    anchor=anchor(ctx.name, "consumer", c.name),
                    description=paragraphs(c.description),
                    handles=tuple(
                        Ref(f"{upstream}.{event}", anchor(ctx.name, "subscription", upstream))
                        for upstream, event in c.handles
                    ),
                    key=c.key,
                    fields=tuple(self.field(f) for f in c.fields),
                    source=self.source(c.location.file),
                    indexes=tuple(", ".join(columns) for columns in c.indexes),
                )
                for c in ctx.consumers
            ),
        )

    def subscription(self, subscription: Subscription) -> SubscriptionDoc:
        # The contract's folder or lock file as `from:` names it, relative to the schema
        # file: an upstream usually lives outside this schema folder, where a label
        # relative to the project would say only its last name.
        written_in = subscription.location.file.resolve().parent
        label = Path(os.path.relpath(subscription.source.resolve(), written_in)).as_posix()
        link = self.source(subscription.source)
        return SubscriptionDoc(
            upstream=subscription.upstream,
            anchor=anchor(self.context.name, "subscription", subscription.upstream),
            contract=Source(label, link.href),
            events=tuple(
                SubscribedEventDoc(e.name, e.aggregate, tuple(v.version for v in e.versions))
                for e in subscription.events
            ),
            source=self.source(subscription.location.file),
        )

    def aggregate(self, aggregate: Aggregate) -> AggregateDoc:
        return AggregateDoc(
            name=aggregate.name,
            anchor=anchor(self.context.name, "aggregate", aggregate.name),
            description=paragraphs(aggregate.description),
            id=self.field(aggregate.id_field),
            snapshot_every=aggregate.snapshot_every,
            state=tuple(self.field(f, aggregate.id_field.name) for f in aggregate.state),
            commands=tuple(self.command(aggregate, c) for c in aggregate.commands),
            events=tuple(self.event(aggregate, e) for e in aggregate.events),
            source=self.source(aggregate.location.file),
        )

    def command(self, aggregate: Aggregate, command: Command) -> CommandDoc:
        sent_by = [
            self.ref("saga", s.name)
            for s in self.context.sagas
            if command.name in s.sends or command.name in {undo for _, undo in s.compensations}
        ]
        return CommandDoc(
            name=command.name,
            anchor=anchor(self.context.name, "command", command.name),
            aggregate=self.ref("aggregate", aggregate.name),
            description=paragraphs(command.description),
            fields=tuple(self.field(f) for f in command.fields),
            emits=tuple(self.ref("event", e) for e in command.emits),
            sent_by=tuple(sent_by),
            source=self.source(command.location.file),
            creates=command.creates,
        )

    def event(self, aggregate: Aggregate, event: Event) -> EventDoc:
        ctx = self.context
        consumed_by = [
            self.ref("projection", p.name) for p in ctx.projections if event.name in p.consumes
        ]
        consumed_by += [
            self.ref("saga", s.name)
            for s in ctx.sagas
            if event.name in (s.starts_with, *s.handles, *s.fails_on)
        ]
        return EventDoc(
            name=event.name,
            anchor=anchor(ctx.name, "event", event.name),
            aggregate=self.ref("aggregate", aggregate.name),
            description=paragraphs(event.description),
            compatibility=event.compatibility,
            versions=self.versions(event),
            matrix=self.matrix(event.versions, aggregate.id_field.name),
            emitted_by=tuple(
                self.ref("command", c.name) for c in aggregate.commands if event.name in c.emits
            ),
            consumed_by=tuple(consumed_by),
            source=self.source(event.location.file),
            published=event.published,
        )

    def versions(self, event: Event) -> tuple[VersionDoc, ...]:
        docs = []
        for index, version in enumerate(event.versions):
            step_doc = None
            if index:
                step = analyse_step(
                    event.name, event.versions[index - 1], version, self.context.user_type
                )
                # The generator scaffolds the hand-written upcaster in this module.
                module = f"{self.context.name}.domain.upcasting.{step.manual_module}"
                why = "; ".join(c.summary for c in step.blocking)
                step_doc = StepDoc(
                    changes=tuple(c.summary for c in step.changes) or ("no change to the fields",),
                    upcast="hand-written" if step.manual else "derived",
                    why=(why or "the schema asks for `upcast: manual`") if step.manual else "",
                    module=module if step.manual else None,
                )
            docs.append(
                VersionDoc(
                    version.version,
                    paragraphs(version.description),
                    step_doc,
                    self.source(version.location.file),
                )
            )
        return tuple(docs)

    def matrix(self, versions: tuple[EventVersion, ...], id_field: str) -> tuple[MatrixRow, ...]:
        """Fields as rows, versions as columns; a renamed field stays on its row."""
        rows: list[dict[int, Field]] = []
        looking_for: list[str | None] = []  # each row's name in the next older version
        for index in range(len(versions) - 1, -1, -1):
            version = versions[index]
            claimed: set[str] = set()
            for row, name in enumerate(looking_for):
                found = version.field_named(name) if name else None
                if found is None:
                    looking_for[row] = None
                    continue
                rows[row][index] = found
                claimed.add(found.name)
                looking_for[row] = found.renamed_from or found.name
            for field in version.fields:
                if field.name not in claimed:
                    rows.append({index: field})
                    looking_for.append(field.renamed_from or field.name)
        matrix = []
        for row_fields in rows:
            newest = max(row_fields)
            described = [row_fields[i] for i in sorted(row_fields, reverse=True)]
            description = next((f.description for f in described if f.description), None)
            matrix.append(
                MatrixRow(
                    name=row_fields[newest].name,
                    cells=tuple(
                        self.field(row_fields[i], versions[i].subject or id_field)
                        if i in row_fields
                        else None
                        for i in range(len(versions))
                    ),
                    description=paragraphs(description),
                )
            )
        return tuple(matrix)


def _attribute(name: str) -> str | None:
    """The Python attribute of a field, where it is not the field's name (`from_`)."""
    attribute = python_name(name)
    return attribute if attribute != name else None


def mermaid(flow: Flow) -> tuple[str, ...]:
    """The flow as Mermaid lines; ids are safe by construction, labels are escaped.

    One fact a line, so a diff shows what changed and nothing else: every class is
    defined whether used or not (fixed lines), and each node names its class on its own
    line (`:::event`) instead of in a shared `class a,b,c event` list that an added node
    would rewrite.
    """
    lines = ["flowchart LR"]
    # The classes of a context's own flow always; those of subscriptions only where it
    # subscribes, so the pages of contexts that consume nothing keep their lines.
    used = {node.kind for node in flow.nodes}
    for kind, style in _MERMAID_STYLES.items():
        if kind in _OWN_KINDS or kind in used:
            lines.append(f"    classDef {kind} {style}")
    for node in flow.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        lines.append(f"    {node.id}{opening}{mermaid_label(node.name)}{closing}:::{node.kind}")
    for edge in flow.edges:
        lines.append(f"    {edge.source} {_MERMAID_ARROWS[edge.kind]} {edge.target}")
    return tuple(lines)


_OWN_KINDS: frozenset[NodeKind] = frozenset(("command", "aggregate", "event", "projection", "saga"))
_MERMAID_SHAPES: dict[NodeKind, tuple[str, str]] = {
    "command": ("[", "]"),
    "aggregate": ("[[", "]]"),
    "event": ("([", "])"),
    "projection": ("[(", ")]"),
    "saga": ("{{", "}}"),
    "upstream": (">", "]"),
    "consumer": ("[(", ")]"),
}
_MERMAID_ARROWS: dict[EdgeKind, str] = {
    "handled_by": "-->",
    "records": "-->",
    "consumed_by": "-->",
    "starts": "==>|starts|",
    "fails": "-.->|fails|",
    "reacts": "-->",
    "sends": "-->",
    "compensates": "-.->|compensates|",
}
_MERMAID_STYLES: dict[NodeKind, str] = {
    "command": "fill:#dbeafe,stroke:#1d4ed8,color:#1e3a8a",
    "aggregate": "fill:#fef3c7,stroke:#b45309,color:#78350f",
    "event": "fill:#ffedd5,stroke:#c2410c,color:#7c2d12",
    "projection": "fill:#dcfce7,stroke:#15803d,color:#14532d",
    "saga": "fill:#f3e8ff,stroke:#7e22ce,color:#581c87",
    "upstream": "fill:#fce7f3,stroke:#be185d,color:#831843",
    "consumer": "fill:#ccfbf1,stroke:#0f766e,color:#134e4a",
}
