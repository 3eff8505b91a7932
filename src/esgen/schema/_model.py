"""The validated schema: what a context means, with a location on everything.

Produced by `_validate` from the language models once every reference resolves. The
code generator, the compatibility checker and the docs read this, never raw YAML.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from esgen.schema._diagnostics import Location

__all__ = [
    "Aggregate",
    "Command",
    "Compatibility",
    "Constraints",
    "Consumer",
    "Context",
    "DictType",
    "EnumType",
    "Event",
    "EventVersion",
    "Field",
    "JsonSchemaType",
    "ListType",
    "NamedType",
    "NullableType",
    "Personal",
    "Projection",
    "Saga",
    "SagaTimeout",
    "ScalarKind",
    "ScalarType",
    "SchemaSet",
    "Subscription",
    "TypeExpr",
    "UserType",
    "ValueType",
    "named_types",
]

Compatibility = Literal["backward", "forward", "full", "none"]


class ScalarKind(StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DECIMAL = "decimal"
    UUID = "uuid"
    DATETIME = "datetime"
    DATE = "date"
    BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class ScalarType:
    kind: ScalarKind

    def __str__(self) -> str:
        return self.kind.value


@dataclass(frozen=True, slots=True)
class ListType:
    item: TypeExpr

    def __str__(self) -> str:
        return f"list[{self.item}]"


@dataclass(frozen=True, slots=True)
class DictType:
    """Maps always have string keys: they must survive a JSON round trip."""

    value: TypeExpr

    def __str__(self) -> str:
        return f"dict[str, {self.value}]"


@dataclass(frozen=True, slots=True)
class NullableType:
    inner: TypeExpr

    def __str__(self) -> str:
        return f"{self.inner} | None"


@dataclass(frozen=True, slots=True)
class NamedType:
    """A type declared in the context (value object, enum or JSON Schema type)."""

    name: str

    def __str__(self) -> str:
        return self.name


TypeExpr = ScalarType | ListType | DictType | NullableType | NamedType


def named_types(type_: TypeExpr) -> Iterator[str]:
    """The names of the context's own types that a type expression refers to."""
    if isinstance(type_, NamedType):
        yield type_.name
    elif isinstance(type_, ListType):
        yield from named_types(type_.item)
    elif isinstance(type_, DictType):
        yield from named_types(type_.value)
    elif isinstance(type_, NullableType):
        yield from named_types(type_.inner)


@dataclass(frozen=True, slots=True)
class Constraints:
    min: Decimal | int | None = None
    max: Decimal | int | None = None
    exclusive_min: Decimal | int | None = None
    exclusive_max: Decimal | int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    max_digits: int | None = None
    decimal_places: int | None = None
    allow_nan: bool | None = None  # True or unset: False says what unset says

    def items(self) -> list[tuple[str, Any]]:
        """The constraints that are set, in a fixed order."""
        return [
            (name, value)
            for name in self.__dataclass_fields__
            if (value := getattr(self, name)) is not None
        ]


@dataclass(frozen=True, slots=True)
class Personal:
    """A field's personal-data mark: sealed per data subject, `erased` once forgotten."""

    erased: Any  # a Python value already checked against the field's type, like a default
    location: Location  # of the `personal` key
    declared: bool = False  # `erased` written in the schema (else the type's default)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: TypeExpr
    location: Location
    type_location: Location
    description: str | None = None
    has_default: bool = False
    default: Any = None  # a Python value already checked against `type`
    optional: bool = False
    renamed_from: str | None = None
    constraints: Constraints = field(default_factory=Constraints)
    personal: Personal | None = None

    @property
    def required(self) -> bool:
        return not self.has_default


@dataclass(frozen=True, slots=True)
class ValueType:
    name: str
    fields: tuple[Field, ...]
    location: Location
    description: str | None = None


@dataclass(frozen=True, slots=True)
class EnumType:
    name: str
    values: tuple[str, ...]
    location: Location
    description: str | None = None
    declared_inline: bool = False  # written as `{enum: [...]}` on a field


@dataclass(frozen=True, slots=True)
class JsonSchemaType:
    name: str
    schema_path: Path
    schema_text: str  # with the parts of other files its `$ref`s name (see _jsonbundle)
    location: Location
    description: str | None = None
    referenced: tuple[Path, ...] = ()  # the files those parts were read from
    remote: tuple[str, ...] = ()  # the URLs fetched for it (json_schema_remote_refs)


UserType = ValueType | EnumType | JsonSchemaType


@dataclass(frozen=True, slots=True)
class EventVersion:
    version: int
    fields: tuple[Field, ...]
    location: Location
    description: str | None = None
    upcast: Literal["auto", "manual"] | None = None
    # Fields of the previous version whose stored values this version discards on purpose.
    dropped: tuple[str, ...] = ()
    # The field naming the data subject of its personal fields; None: the aggregate's id.
    subject: str | None = None
    subject_location: Location | None = None

    def field_named(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    aggregate: str
    versions: tuple[EventVersion, ...]
    location: Location
    compatibility: Compatibility
    description: str | None = None
    # Former names, as written: stored events of those types are read as this event.
    renamed_from: tuple[str, ...] = ()
    renamed_from_location: Location | None = None
    # Listed in the context's `publishes`: part of its public contract (the relay sends
    # it to the broker; compat checks it for consumers outside the context).
    published: bool = False
    published_location: Location | None = None  # its entry in `publishes`

    @property
    def latest(self) -> EventVersion:
        return self.versions[-1]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    aggregate: str
    fields: tuple[Field, ...]
    emits: tuple[str, ...]
    location: Location
    description: str | None = None
    creates: bool = False


@dataclass(frozen=True, slots=True)
class Aggregate:
    name: str
    id_field: Field
    state: tuple[Field, ...]
    commands: tuple[Command, ...]
    events: tuple[Event, ...]
    location: Location
    snapshot_every: int | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Projection:
    name: str
    consumes: tuple[str, ...]
    key: str
    fields: tuple[Field, ...]
    location: Location
    description: str | None = None
    # Each index's fields (their names as written, which are the columns), in order.
    indexes: tuple[tuple[str, ...], ...] = ()
    # The row field naming the data subject of its personal fields; None: the key.
    subject: str | None = None
    subject_location: Location | None = None

    @property
    def subject_field(self) -> str:
        return self.subject or self.key


@dataclass(frozen=True, slots=True)
class Subscription:
    """Published events of another context that this one consumes, as its schema (a
    folder or an esgen.lock) describes them."""

    upstream: str  # the upstream context's name
    source: Path  # its schema folder, or its esgen.lock
    location: Location  # of the subscription's key
    # The upstream's contract as this context sees it: a context named `upstream` holding
    # the subscribed events (every version), the aggregates they belong to (their id
    # fields, no commands, no state) and the types those events use.
    contract: Context

    @property
    def events(self) -> tuple[Event, ...]:
        return self.contract.events

    def event(self, name: str) -> Event | None:
        return self.contract.event(name)


@dataclass(frozen=True, slots=True)
class Consumer:
    """A read model fed by subscribed events; stored like a projection's."""

    name: str
    handles: tuple[tuple[str, str], ...]  # (upstream context, event), as listed
    key: str
    fields: tuple[Field, ...]
    location: Location
    description: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class SagaTimeout:
    seconds: int
    then: Literal["compensate", "handler"]
    text: str  # as written, e.g. "15m"


@dataclass(frozen=True, slots=True)
class Saga:
    name: str
    starts_with: str
    correlation: str  # the field (with correlation_aggregate: its id field, on other events)
    handles: tuple[str, ...]
    sends: tuple[str, ...]
    compensations: tuple[tuple[str, str], ...]
    fails_on: tuple[str, ...]
    state: tuple[Field, ...]
    location: Location
    timeout: SagaTimeout | None = None
    description: str | None = None
    # The aggregate whose stream ids give the correlation ({aggregate_id: ...}); None when
    # every event carries the `correlation` field.
    correlation_aggregate: str | None = None
    # The state field naming the data subject of its personal fields.
    subject: str | None = None
    subject_location: Location | None = None

    @property
    def correlation_text(self) -> str:
        """The correlation as written, for messages and documentation."""
        if self.correlation_aggregate is None:
            return self.correlation
        return f"{{aggregate_id: {self.correlation_aggregate}}}"


@dataclass(frozen=True, slots=True)
class Context:
    name: str
    files: tuple[Path, ...]
    types: tuple[UserType, ...]
    aggregates: tuple[Aggregate, ...]
    projections: tuple[Projection, ...]
    sagas: tuple[Saga, ...]
    location: Location
    compatibility: Compatibility = "backward"
    description: str | None = None
    subscriptions: tuple[Subscription, ...] = ()
    consumers: tuple[Consumer, ...] = ()

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(e for a in self.aggregates for e in a.events)

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(c for a in self.aggregates for c in a.commands)

    def event(self, name: str) -> Event | None:
        return next((e for e in self.events if e.name == name), None)

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)

    def user_type(self, name: str) -> UserType | None:
        return next((t for t in self.types if t.name == name), None)

    def subscription(self, upstream: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.upstream == upstream), None)


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """Every context found in one schema directory."""

    root: Path
    contexts: tuple[Context, ...]

    @property
    def remote_documents(self) -> tuple[str, ...]:
        """The URLs fetched for json_schema types (json_schema_remote_refs), each once."""
        return tuple(
            sorted(
                {
                    url
                    for c in self.contexts
                    for t in c.types
                    if isinstance(t, JsonSchemaType)
                    for url in t.remote
                }
            )
        )
