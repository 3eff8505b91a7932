"""The catalog's intermediate representation: what the pages say, already worked out.

Templates read only these objects. Every text here is plain, unescaped text from the
schema; each output format escapes it in its own way (Markdown, Mermaid, HTML).
Anchors are computed once, so the Markdown and the HTML page link alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from esgen.docs._layout import Diagram

__all__ = [
    "GITATTRIBUTES",
    "INDEX",
    "PAGE",
    "AggregateDoc",
    "AsyncApiDoc",
    "Catalog",
    "CommandDoc",
    "ConsumerDoc",
    "ContextDoc",
    "EnumDoc",
    "EventDoc",
    "FieldDoc",
    "JsonSchemaDoc",
    "MatrixRow",
    "ProjectionDoc",
    "PublishedDoc",
    "Ref",
    "SagaDoc",
    "Source",
    "StepDoc",
    "SubscribedEventDoc",
    "SubscriptionDoc",
    "TypePart",
    "ValueTypeDoc",
    "VersionDoc",
    "context_page",
]

# The catalog's own files, beside one Markdown page per context.
INDEX = PurePosixPath("index.md")
PAGE = PurePosixPath("catalog.html")
# Marks the catalog's files `linguist-generated`, so review tools fold them in diffs.
GITATTRIBUTES = PurePosixPath(".gitattributes")
_OWN = frozenset(p.as_posix().casefold() for p in (INDEX, PAGE))


def context_page(context: str) -> str:
    """The Markdown page of a context: `<name>.md`, unless that is one of the catalog's own
    files (a context named `index`). Then `<name>-context.md`, matching the context's
    anchor: a context name is snake_case, so no other context's page can be spelt with a
    '-'. Only such contexts get the longer name, so existing catalogs keep their pages.
    Compared without case, for the file systems that do the same."""
    page = f"{context}.md"
    return f"{context}-context.md" if page.casefold() in _OWN else page


@dataclass(frozen=True, slots=True)
class Ref:
    """A link to another entry of the catalog."""

    name: str
    anchor: str


@dataclass(frozen=True, slots=True)
class Source:
    """The schema file something is written in: `label` to show, `href` relative to the
    catalog folder. No line numbers: they move with every edit above them."""

    label: str  # "schemas/bank.yaml"
    href: str | None  # "../schemas/bank.yaml"; None when no relative link exists


@dataclass(frozen=True, slots=True)
class TypePart:
    """A piece of a type expression; names of the context's own types link to them."""

    text: str
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    type: str  # the schema's spelling: "list[Money] | None"
    type_parts: tuple[TypePart, ...]
    default: str | None  # a JSON literal, or None when the field is required
    optional: bool
    constraints: tuple[tuple[str, str], ...]  # ("pattern", "^[A-Z]{3}$")
    description: tuple[str, ...]  # paragraphs
    renamed_from: str | None = None
    attribute: str | None = None  # the Python attribute, where it differs from the name
    # Personal data: (whose, the placeholder as JSON); whose is "" inside a value type,
    # whose subject is that of the event, state or row holding it.
    personal: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CommandDoc:
    name: str
    anchor: str
    aggregate: Ref
    description: tuple[str, ...]
    fields: tuple[FieldDoc, ...]
    emits: tuple[Ref, ...]
    sent_by: tuple[Ref, ...]  # sagas that send it, or send it to compensate
    source: Source
    creates: bool = False  # it creates its aggregate (refused on one that exists)


@dataclass(frozen=True, slots=True)
class StepDoc:
    """How a stored event of the previous version is read as this version."""

    changes: tuple[str, ...]  # what changed, one line a change
    upcast: Literal["derived", "hand-written"]
    why: str  # why hand-written ("" when derived)
    module: str | None  # the hand-written upcaster's module


@dataclass(frozen=True, slots=True)
class VersionDoc:
    version: int
    description: tuple[str, ...]
    step: StepDoc | None  # None for the first version
    source: Source


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One field across every version of an event, oldest version first."""

    name: str  # its name in the newest version that has it
    cells: tuple[FieldDoc | None, ...]  # None where a version does not have it
    description: tuple[str, ...]  # from the newest version that describes it

    @property
    def attribute(self) -> str | None:
        """The Python attribute of the newest version's field, where it differs."""
        return next(cell.attribute for cell in reversed(self.cells) if cell is not None)


@dataclass(frozen=True, slots=True)
class EventDoc:
    name: str
    anchor: str
    aggregate: Ref
    description: tuple[str, ...]
    compatibility: str
    versions: tuple[VersionDoc, ...]
    matrix: tuple[MatrixRow, ...]
    emitted_by: tuple[Ref, ...]  # commands
    consumed_by: tuple[Ref, ...]  # projections and sagas
    source: Source
    published: bool = False  # part of the context's public contract (`publishes`)

    @property
    def latest(self) -> int:
        return self.versions[-1].version


@dataclass(frozen=True, slots=True)
class AggregateDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    id: FieldDoc
    snapshot_every: int | None
    state: tuple[FieldDoc, ...]
    commands: tuple[CommandDoc, ...]
    events: tuple[EventDoc, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class ProjectionDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    consumes: tuple[Ref, ...]
    key: str
    fields: tuple[FieldDoc, ...]
    source: Source
    indexes: tuple[str, ...] = ()  # each index's columns, comma-separated, in order


@dataclass(frozen=True, slots=True)
class SubscribedEventDoc:
    """An upstream event as this context knows it: the versions its contract holds."""

    name: str
    aggregate: str
    versions: tuple[int, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class SubscriptionDoc:
    """Another context's published events that this one consumes."""

    upstream: str
    anchor: str
    # Where the upstream's contract is read from: `label` relative to the schema file
    # that names it (as `from:` is written), `href` relative to the catalog folder.
    contract: Source
    events: tuple[SubscribedEventDoc, ...]
    source: Source  # the schema file holding the subscription


@dataclass(frozen=True, slots=True)
class ConsumerDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    handles: tuple[Ref, ...]  # "bank.MoneyDeposited", linking to its subscription
    key: str
    fields: tuple[FieldDoc, ...]
    source: Source
    indexes: tuple[str, ...] = ()  # each index's columns, comma-separated, in order


@dataclass(frozen=True, slots=True)
class SagaDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    starts_with: Ref
    correlation: str  # the field (with correlation_aggregate: on other aggregates' events)
    handles: tuple[Ref, ...]
    sends: tuple[Ref, ...]
    fails_on: tuple[Ref, ...]
    compensations: tuple[tuple[Ref, Ref], ...]  # (command sent, command that undoes it)
    timeout: str | None  # "1h"
    timeout_then: str | None  # "compensate" or "handler"
    state: tuple[FieldDoc, ...]
    source: Source
    correlation_aggregate: str | None = None  # correlates on this aggregate's id


@dataclass(frozen=True, slots=True)
class ValueTypeDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    fields: tuple[FieldDoc, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class EnumDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    values: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class JsonSchemaDoc:
    name: str
    anchor: str
    description: tuple[str, ...]
    schema: Source  # the JSON Schema file
    source: Source


@dataclass(frozen=True, slots=True)
class PublishedDoc:
    """One event of the context's public contract, as it travels on the broker."""

    event: Ref
    versions: tuple[int, ...]  # every version a consumer may receive, oldest first
    subject: str  # with `{partition}` for the partition's number


@dataclass(frozen=True, slots=True)
class AsyncApiDoc:
    """The AsyncAPI document of the published events: its file in the catalog folder and
    its content, already plain data (see `esgen.docs._asyncapi`)."""

    file: str
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ContextDoc:
    name: str
    anchor: str
    page: str  # the Markdown file of the context, relative to the catalog folder
    description: tuple[str, ...]
    compatibility: str
    files: tuple[Source, ...]
    aggregates: tuple[AggregateDoc, ...]
    projections: tuple[ProjectionDoc, ...]
    sagas: tuple[SagaDoc, ...]
    value_types: tuple[ValueTypeDoc, ...]
    enums: tuple[EnumDoc, ...]
    json_types: tuple[JsonSchemaDoc, ...]
    # The flow, ready for each picture: Mermaid source and a laid-out SVG diagram.
    mermaid: tuple[str, ...]  # lines, already escaped for Mermaid
    diagram: Diagram
    published: tuple[PublishedDoc, ...] = ()
    asyncapi: AsyncApiDoc | None = None  # None when the context publishes nothing
    subscriptions: tuple[SubscriptionDoc, ...] = ()
    consumers: tuple[ConsumerDoc, ...] = ()

    @property
    def commands(self) -> tuple[CommandDoc, ...]:
        return tuple(c for a in self.aggregates for c in a.commands)

    @property
    def events(self) -> tuple[EventDoc, ...]:
        return tuple(e for a in self.aggregates for e in a.events)


@dataclass(frozen=True, slots=True)
class Catalog:
    contexts: tuple[ContextDoc, ...]
    sources: tuple[str, ...]  # schema files, named as in headers: "schemas/bank.yaml"
