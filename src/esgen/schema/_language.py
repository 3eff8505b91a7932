"""The schema language, as pydantic models.

These models are the single source of truth for the shape of a schema file: they
validate every document, and `schemas/esgen.schema.json` (the JSON Schema editors use to
complete and check YAML) is exported from them. Meaning (do referenced types exist, are
versions contiguous, ...) is checked afterwards, in `_validate`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from esgen.schema._yaml import MAX_DIGITS, number_key

__all__ = [
    "AggregateDef",
    "AggregateIdDef",
    "CommandDef",
    "ConsumerDef",
    "Document",
    "EnumTypeDef",
    "EventDef",
    "EventVersionDef",
    "FieldDef",
    "FieldSpec",
    "IndexSpec",
    "JsonSchemaTypeDef",
    "PersonalDef",
    "ProjectionDef",
    "SagaCorrelationDef",
    "SagaDef",
    "SagaTimeoutDef",
    "SubscriptionDef",
    "TypeDef",
    "ValueTypeDef",
    "language_json_schema",
]

Compatibility = Literal["backward", "forward", "full", "none"]
# Numbers arrive as int or exact Decimal from the loader; editors just see a number.
Number = Annotated[int | Decimal, WithJsonSchema({"type": "number"})]
# The largest length pydantic can check (its limits are machine words); digit counts stop
# where the numbers the loader reads do.
_MAX_LENGTH = 2**63 - 1
# Enum values are checked by `_validate` (with a better message than a type error).
EnumValues = Annotated[list[Any], WithJsonSchema({"type": "array", "items": {"type": "string"}})]
# Descriptions become docstrings that the formatter reads: 5 MB took 12 s. 10,000
# characters is pages of prose, more than any docstring wants.
Description = Annotated[
    str, Field(max_length=10_000, description="Free text; shown in docstrings and docs.")
]


def _version_number(key: Any) -> Any:
    # pydantic would read `1.0` (or `"1.0"`) as 1 too, and merge its version into version
    # 1's; only the spellings the loader already counts as one key are numbers here.
    number = number_key(key)
    if number is None:
        raise ValueError("not a version number")
    return number


VersionNumber = Annotated[int, BeforeValidator(_version_number)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonalDef(_Node):
    """Personal data, with what it reads as once its subject is forgotten."""

    erased: Any = Field(
        None,
        description=(
            "What the field reads as once its data subject is forgotten: a valid value of "
            'the field. Defaults: null for an optional field, "<erased>" for a str, [] for '
            "a list, {} for a map; any other type must say."
        ),
    )


def _personal_kind(value: Any) -> str:
    return "flag" if isinstance(value, bool) else "mark"


# `personal: true`, or `personal: {erased: ...}` to say what a forgotten value reads as.
PersonalSpec = Annotated[
    Annotated[bool, Tag("flag")] | Annotated[PersonalDef, Tag("mark")],
    Discriminator(_personal_kind),
]


class FieldDef(_Node):
    """A field written out in full. `owner: str` is the short form of `owner: {type: str}`."""

    type: str | None = Field(
        None,
        description=(
            "str, int, float, bool, decimal, uuid, datetime, date, bytes, list[T], "
            "dict[str, T], T | None, or the name of a type of this context."
        ),
    )
    enum: EnumValues | None = Field(
        None, description="An enum declared in place; its values are strings.", min_length=1
    )
    description: Description | None = None
    default: Any = Field(None, description="The value used when the field is absent.")
    optional: bool = Field(False, description="May be omitted: the type becomes T | None = None.")
    renamed_from: str | None = Field(
        None, description="The name this field had in the previous version of the event."
    )
    min: Number | None = Field(None, description="Smallest allowed value (inclusive).")
    max: Number | None = Field(None, description="Largest allowed value (inclusive).")
    exclusive_min: Number | None = None
    exclusive_max: Number | None = None
    min_length: int | None = Field(
        None, ge=0, le=_MAX_LENGTH, description="For str, bytes, lists and maps."
    )
    max_length: int | None = Field(
        None, ge=0, le=_MAX_LENGTH, description="For str, bytes, lists and maps."
    )
    pattern: str | None = Field(
        None,
        description=(
            "A regular expression a str must match somewhere (anchor it with ^ and $ to match "
            "all of it), in the syntax pydantic's linear-time engine (Rust regex) and Python "
            "both accept: no look-arounds, no backreferences."
        ),
    )
    max_digits: int | None = Field(None, gt=0, le=MAX_DIGITS, description="For decimal.")
    decimal_places: int | None = Field(None, ge=0, le=MAX_DIGITS, description="For decimal.")
    allow_nan: bool | None = Field(
        None,
        description=(
            "For float, and lists, maps and optionals of float: also NaN, Infinity and "
            '-Infinity, stored as the JSON strings "NaN", "Infinity", "-Infinity". '
            "Without it such a value is refused before it is written. Not with min, max or "
            "their exclusive forms: NaN compares false with every bound."
        ),
    )
    personal: PersonalSpec | None = Field(
        None,
        description=(
            "Personal data (`true`, or `{erased: value}`): stored encrypted with a key of "
            "its data subject, so that forgetting the subject erases it everywhere. On a "
            "command: sealed where a saga keeps the commands it sent. Not in events the "
            "context publishes, nor on consumers."
        ),
    )


def _field_kind(value: Any) -> str:
    return "type" if isinstance(value, str) else "field"


FieldSpec = Annotated[
    Annotated[str, Tag("type")] | Annotated[FieldDef, Tag("field")],
    Discriminator(_field_kind),
]
Fields = dict[str, FieldSpec]


class ValueTypeDef(_Node):
    """A value object: a small immutable record compared by value."""

    description: Description | None = None
    fields: Fields


class EnumTypeDef(_Node):
    description: Description | None = None
    enum: EnumValues = Field(min_length=1, description="The values, as strings.")


class JsonSchemaTypeDef(_Node):
    """A type described by a JSON Schema file, turned into pydantic models."""

    description: Description | None = None
    json_schema: str = Field(description="Path to the JSON Schema, relative to this file.")


def _type_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "enum" in value:
            return "enum"
        if "json_schema" in value:
            return "json_schema"
    return "value"


TypeDef = Annotated[
    Annotated[ValueTypeDef, Tag("value")]
    | Annotated[EnumTypeDef, Tag("enum")]
    | Annotated[JsonSchemaTypeDef, Tag("json_schema")],
    Discriminator(_type_kind),
]


class AggregateIdDef(_Node):
    name: str | None = Field(None, description="Defaults to <aggregate in snake_case>_id.")
    type: Literal["uuid", "str", "int"] = "uuid"


class CommandDef(_Node):
    description: Description | None = None
    fields: Fields = Field(
        default_factory=dict,
        description="The aggregate's id field is added first when not listed.",
    )
    emits: list[str] = Field(min_length=1, description="Events of this aggregate it may emit.")
    creates: bool = Field(
        False,
        description=(
            "This command creates its aggregate: it is refused on an aggregate that exists, "
            "and once any command of the aggregate says so, every other command is refused "
            "on an id that has no events yet."
        ),
    )


class EventVersionDef(_Node):
    description: Description | None = None
    fields: Fields = Field(default_factory=dict, description="The complete field list.")
    upcast: Literal["auto", "manual"] | None = Field(
        None,
        description=(
            "How stored events of the previous version become this one: `auto` derives it "
            "from the schema, `manual` asks for a hand-written upcaster."
        ),
    )
    dropped: list[str] | None = Field(
        None,
        description=(
            "Fields of the previous version whose stored values this version discards on "
            "purpose. Needed when a removed field's values would fit a field added in the "
            "same version, so that a rename without `renamed_from` is not taken for one."
        ),
    )
    subject: str | None = Field(
        None,
        description=(
            "The field (str, uuid or int, required, not personal) naming the data subject "
            "of this version's personal fields; the aggregate's id when not given."
        ),
    )


def _names_kind(value: Any) -> str:
    return "names" if isinstance(value, list) else "name"


# One name, or a list for an event renamed more than once; tagged so that a wrong value
# gets one message, not one per alternative.
FormerNames = Annotated[
    Annotated[str, Tag("name")] | Annotated[list[str], Tag("names"), Field(min_length=1)],
    Discriminator(_names_kind),
]


class EventDef(_Node):
    description: Description | None = None
    compatibility: Compatibility | None = Field(
        None, description="Overrides the context's compatibility mode for this event."
    )
    renamed_from: FormerNames | None = Field(
        None,
        description=(
            "The name this event had before, or every name it had: stored events written "
            "under them are read as this event, version for version."
        ),
    )
    versions: dict[VersionNumber, EventVersionDef] = Field(
        min_length=1,
        description="Every version ever published, numbered 1..N.",
        json_schema_extra={"propertyNames": {"pattern": "^[1-9][0-9]*$"}},
    )


class AggregateDef(_Node):
    description: Description | None = None
    id: AggregateIdDef = Field(default_factory=AggregateIdDef)
    snapshot_every: int | None = Field(None, gt=0, description="Snapshot every N events.")
    state: Fields = Field(default_factory=dict)
    commands: dict[str, CommandDef] = Field(default_factory=dict)
    events: dict[str, EventDef] = Field(default_factory=dict)


def _index_kind(value: Any) -> str:
    return "columns" if isinstance(value, list) else "column"


# One field, or several in the order the index sorts them; tagged so that a wrong value
# gets one message, not one per alternative.
IndexSpec = Annotated[
    Annotated[str, Tag("column")] | Annotated[list[str], Tag("columns"), Field(min_length=1)],
    Discriminator(_index_kind),
]


class ProjectionDef(_Node):
    description: Description | None = None
    consumes: list[str] = Field(min_length=1, description="The events it reads.")
    key: str = Field(description="The read-model field that identifies a row.")
    fields: Fields = Field(description="The read model's columns.")
    indexes: list[IndexSpec] = Field(
        default_factory=list,
        description=(
            "Indexes created with the read model's table, for the queries it answers: a "
            "field, or a list of fields in the order the index sorts them. Fields stored "
            "as JSON (value types, lists, maps) cannot be indexed. Never unique; adding or "
            "dropping one needs no rebuild."
        ),
    )
    subject: str | None = Field(
        None,
        description=(
            "The row field naming the data subject of its personal fields; the key when not given."
        ),
    )


class SubscriptionDef(_Node):
    """Another context's published events that this context consumes."""

    from_: str = Field(
        alias="from",
        description=(
            "The upstream context's schema folder, or its esgen.lock, relative to this file."
        ),
    )
    events: list[str] = Field(
        min_length=1, description="Events the upstream publishes that this context reads."
    )


class ConsumerDef(_Node):
    """A read model of this context fed by other contexts' published events."""

    description: Description | None = None
    handles: list[str] = Field(
        min_length=1, description="The events it reads, each as <upstream context>.<Event>."
    )
    key: str = Field(description="The read-model field that identifies a row.")
    fields: Fields = Field(description="The read model's columns.")
    indexes: list[IndexSpec] = Field(
        default_factory=list,
        description="Indexes of the read model's table, as for a projection.",
    )


class SagaTimeoutDef(_Node):
    after: str = Field(
        pattern=r"^[1-9][0-9]*(s|m|h|d)$", description="A duration such as 30s, 15m, 2h or 1d."
    )
    then: Literal["compensate", "handler"] = Field(
        "compensate", description="Run the compensations, or a timeout handler."
    )


class SagaCorrelationDef(_Node):
    """Correlation on an aggregate's id, taken from the stream that recorded the event."""

    aggregate_id: str = Field(
        description=(
            "The aggregate whose id finds the instance: its events correlate by the id of "
            "the stream that recorded them; events of other aggregates carry a field named "
            "and typed like its id field."
        )
    )


def _correlation_kind(value: Any) -> str:
    return "aggregate" if isinstance(value, dict) else "field"


SagaCorrelation = Annotated[
    Annotated[str, Tag("field")] | Annotated[SagaCorrelationDef, Tag("aggregate")],
    Discriminator(_correlation_kind),
]


class SagaDef(_Node):
    description: Description | None = None
    starts_with: str = Field(description="The event that starts an instance.")
    correlation: SagaCorrelation = Field(
        description=(
            "What finds the instance again: a field of every event it handles, or "
            "`{aggregate_id: Aggregate}` for the id of the aggregate whose stream recorded "
            "the event."
        )
    )
    handles: list[str] = Field(default_factory=list, description="Events it reacts to.")
    sends: list[str] = Field(default_factory=list, description="Commands it may send.")
    compensations: dict[str, str] = Field(
        default_factory=dict, description="Command sent -> command that undoes it."
    )
    fails_on: list[str] = Field(
        default_factory=list, description="Events after which the compensations run."
    )
    timeout: SagaTimeoutDef | None = None
    state: Fields = Field(default_factory=dict)
    subject: str | None = Field(
        None,
        description=(
            "The state field naming the data subject of its personal fields and of the "
            "commands it sends; needed when the state or those commands have any."
        ),
    )


class Document(_Node):
    """One schema file. Several files with the same `context` form one context."""

    context: str = Field(description="The bounded context; also the generated package name.")
    description: Description | None = None
    compatibility: Compatibility | None = Field(
        None, description="Default compatibility mode of its events (backward if unset)."
    )
    types: dict[str, TypeDef] = Field(default_factory=dict)
    aggregates: dict[str, AggregateDef] = Field(default_factory=dict)
    projections: dict[str, ProjectionDef] = Field(default_factory=dict)
    sagas: dict[str, SagaDef] = Field(default_factory=dict)
    publishes: list[str] = Field(
        default_factory=list,
        description=(
            "Events of this context that other contexts may consume: its public contract, "
            "sent to the broker by `esgen relay` and checked by compat for consumers you do "
            "not control."
        ),
    )
    subscribes: dict[str, SubscriptionDef] = Field(
        default_factory=dict,
        description=(
            "Upstream context name -> where its schema is and which of its published "
            "events this context consumes."
        ),
    )
    consumers: dict[str, ConsumerDef] = Field(
        default_factory=dict,
        description="Read models fed by the subscribed events, delivered through the broker.",
    )


def language_json_schema() -> str:
    """The JSON Schema of a schema file, as committed in `schemas/esgen.schema.json`."""
    schema = Document.model_json_schema()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:esgen:schema-file",
        "title": "esgen schema file",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
