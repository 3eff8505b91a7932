"""A context's published events as an AsyncAPI 3.0.0 document: the contract on the wire.

What the relay sends is defined once, in `esgen.runtime._integration` (stream, subject,
headers); this module describes that contract for tools and for teams that consume it
without esgen, and takes the subject layout and every header name from there (but
the relay's own `Nats-Expected-Last-Msg-Id`, which is JetStream's, not the contract's). Payloads
are JSON Schema of what the generated models write in pydantic's JSON mode: decimals as
strings, uuid, date, datetime and bytes (base64url) as formatted strings, the context's
own types as `components/schemas` referenced by `$ref`.

One channel per published event (every version of it travels on the same subject), one
message per version (a consumer may receive any of them: the relay sends the latest it
knows, older messages stay in the stream), one `send` operation per channel. Dead-letter
subjects belong to consumers, not to the publisher's contract, so they are not here.

The document is plain data (dicts and lists in a fixed order) so that rendering it is a
dump; `info.version` is a digest of the rest, so it changes exactly when the contract does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from esgen.docs._json import jsonable
from esgen.runtime._integration import (
    DEFAULT_PARTITIONS,
    DEFAULT_PREFIX,
    H_AGGREGATE,
    H_CAUSATION_ID,
    H_CONTEXT,
    H_CORRELATION_ID,
    H_EVENT_TYPE,
    H_EVENT_VERSION,
    H_MSG_ID,
    H_POSITION,
    H_RECORDED_AT,
    H_STREAM_ID,
    H_STREAM_VERSION,
    Wire,
    message_headers,
)
from esgen.runtime._records import RecordedEvent
from esgen.schema import (
    Constraints,
    Context,
    DictType,
    EnumType,
    Event,
    EventVersion,
    Field,
    JsonSchemaType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    TypeExpr,
    ValueType,
    named_types,
)

__all__ = [
    "ASYNCAPI_VERSION",
    "DEFAULT_SERVER",
    "PARTITION_PARAMETER",
    "asyncapi_document",
    "asyncapi_file",
    "channel_address",
    "message_id",
]

ASYNCAPI_VERSION = "3.0.0"
DEFAULT_SERVER = "127.0.0.1:4222"
PARTITION_PARAMETER = "partition"
_SERVER = "nats"
_CORRELATION = "correlation"

# How pydantic's JSON mode writes each scalar (`model_json_schema(mode="serialization")`
# of the generated models, whose config writes bytes as base64url).
_SCALARS: dict[ScalarKind, dict[str, Any]] = {
    ScalarKind.STR: {"type": "string"},
    ScalarKind.INT: {"type": "integer"},
    ScalarKind.FLOAT: {"type": "number"},
    ScalarKind.BOOL: {"type": "boolean"},
    ScalarKind.DECIMAL: {"type": "string"},
    ScalarKind.UUID: {"type": "string", "format": "uuid"},
    ScalarKind.DATETIME: {"type": "string", "format": "date-time"},
    ScalarKind.DATE: {"type": "string", "format": "date"},
    ScalarKind.BYTES: {"type": "string", "format": "base64url"},
}
# An allow_nan float writes NaN and the infinities as these strings (esgen.runtime.NanFloat).
_NON_FINITE = ["NaN", "Infinity", "-Infinity"]
_NAN = Constraints(allow_nan=True)
# Constraints as JSON Schema keywords, on the types they apply to. Decimal constraints have
# none: a decimal is a string on the wire (pydantic drops them from its schema too).
_NUMBER_KEYWORDS = {
    "min": "minimum",
    "max": "maximum",
    "exclusive_min": "exclusiveMinimum",
    "exclusive_max": "exclusiveMaximum",
}
_STRING_KEYWORDS = {"min_length": "minLength", "max_length": "maxLength", "pattern": "pattern"}
_LIST_KEYWORDS = {"min_length": "minItems", "max_length": "maxItems"}

# Set by the relay (esgen.runtime.nats), which this module must not import (it loads nats-py);
# tests/docs holds the two names together.
H_EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"

# What each header says; the names come from the wire contract, the words are for readers.
_HEADER_TEXT: dict[str, str] = {
    H_MSG_ID: "The event's id. JetStream drops a second publish of it within the stream's "
    "duplicate window; consumers' inboxes drop a redelivery of it for good.",
    H_CONTEXT: "The publishing context.",
    H_AGGREGATE: "The aggregate type that recorded the event.",
    H_EVENT_TYPE: "The event type.",
    H_EVENT_VERSION: "The version of the event the payload is written in.",
    H_STREAM_ID: "The id of the event's stream in the publisher's store, "
    "`<Aggregate>-<id>` (the aggregate instance); the partition in the subject is the crc32 "
    "of this text.",
    H_STREAM_VERSION: "The event's version within its stream, from 1: the order of one "
    "aggregate's events.",
    H_POSITION: "The event's position in the publisher's store (its global order).",
    H_RECORDED_AT: "When the publisher's store recorded the event (ISO 8601, UTC).",
    H_CORRELATION_ID: "The id shared by everything one request caused; absent when the "
    "command carried none.",
    H_CAUSATION_ID: "The id of the message that caused this event; absent when the command "
    "carried none.",
    H_EXPECTED_LAST_MSG_ID: "For JetStream, not for consumers: the id of the event the relay "
    "published just before this one (of any aggregate of the context). The stream refuses "
    "the message unless that is its last message, so a message lost on the way is never "
    "overtaken by later ones; absent on the first message the relay sends after it starts "
    "or recovers.",
}
_WHOLE_NUMBER = {"type": "string", "pattern": "^[0-9]+$"}


def asyncapi_file(context: str) -> str:
    """The document's file name in the catalog folder."""
    return f"{context}.asyncapi.yaml"


def message_id(event: str, version: int) -> str:
    return f"{event}V{version}"


def _required_headers() -> tuple[str, ...]:
    """The headers every message carries: those the relay writes for an event without
    correlation or causation ids (the others are there only when the metadata has them)."""
    sample = RecordedEvent(
        position=1,
        stream_id="s",
        stream_version=1,
        event_type="E",
        event_version=1,
        data="{}",
        event_id=UUID(int=0),
        metadata={},
        recorded_at=datetime(2000, 1, 1, tzinfo=UTC),
    )
    return tuple(message_headers("c", "A", sample, 1))


def channel_address(wire: Wire, aggregate: str, event: str) -> str:
    """The subject of an event's messages with `{partition}` for the partition number.

    Taken from `Wire.subject`, so the document cannot drift from what the relay sends: the
    partition is the third token from the end (aggregate and event names hold no dots).
    """
    tokens = wire.subject(aggregate, event, "").split(".")
    tokens[-3] = "{" + PARTITION_PARAMETER + "}"
    return ".".join(tokens)


def asyncapi_document(context: Context, sources: tuple[str, ...]) -> dict[str, Any] | None:
    """The AsyncAPI document of a context's published events; None when it publishes none.
    `sources` name the schema files, for the description."""
    published = [e for e in context.events if e.published]
    if not published:
        return None
    return _Builder(context, sources).document(published)


class _Builder:
    def __init__(self, context: Context, sources: tuple[str, ...]) -> None:
        self.context = context
        self.sources = sources
        self.wire = Wire(context.name)

    def document(self, published: list[Event]) -> dict[str, Any]:
        ctx = self.context
        channels: dict[str, Any] = {}
        operations: dict[str, Any] = {}
        messages: dict[str, Any] = {}
        for event in published:
            ids = [message_id(event.name, v.version) for v in event.versions]
            channels[event.name] = self.channel(event, ids)
            operations[f"send{event.name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{event.name}"},
                "title": f"Publish {event.name}",
                "summary": f"The relay of {ctx.name!r} publishes each recorded {event.name}, "
                "at least once, in order per aggregate.",
                "messages": [{"$ref": f"#/channels/{event.name}/messages/{i}"} for i in ids],
            }
            for version, mid in zip(event.versions, ids, strict=True):
                messages[mid] = self.message(event, version)
        components: dict[str, Any] = {}
        schemas = self.schemas(published)
        if schemas:
            components["schemas"] = schemas
        components["messages"] = messages
        components["correlationIds"] = {
            _CORRELATION: {
                "description": _HEADER_TEXT[H_CORRELATION_ID],
                "location": f"$message.header#/{H_CORRELATION_ID}",
            }
        }
        document: dict[str, Any] = {
            "asyncapi": ASYNCAPI_VERSION,
            "id": f"urn:esgen:{ctx.name}",
            "info": {
                "title": f"{ctx.name} (published events)",
                "version": "",  # the digest below
                "description": self.description(),
            },
            "defaultContentType": "application/json",
            "servers": {
                _SERVER: {
                    "host": "{host}",
                    "protocol": "nats",
                    "title": "NATS with JetStream",
                    "description": f"The stream {self.wire.stream} holds the subjects "
                    f"{self.wire.all_subjects}.",
                    "variables": {
                        "host": {
                            "default": DEFAULT_SERVER,
                            "description": "host:port of a NATS server of the cluster.",
                        }
                    },
                }
            },
            "channels": channels,
            "operations": operations,
            "components": components,
        }
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
        document["info"]["version"] = digest[:12]
        return document

    def description(self) -> str:
        ctx = self.context
        parts = [ctx.description.strip()] if ctx.description else []
        parts.append(
            f"The events context {ctx.name!r} publishes, as its relay sends them to NATS "
            f"JetStream: one channel per event, one message per version of it. Written by "
            f"`esgen docs` from {', '.join(self.sources) or 'the schema'}."
        )
        parts.append(
            f"Subjects start with the prefix {DEFAULT_PREFIX!r} and spread each context's "
            f"events over {DEFAULT_PARTITIONS} partitions by default; a deployment may set "
            "others (the relay's `prefix` and `partitions`), shared by the relay and every "
            "consumer. The payload is the event's JSON in the version its "
            f"{H_EVENT_VERSION} header names."
        )
        return "\n\n".join(parts)

    def channel(self, event: Event, ids: list[str]) -> dict[str, Any]:
        channel: dict[str, Any] = {
            "address": channel_address(self.wire, event.aggregate, event.name),
            "title": event.name,
        }
        text = f"Every version of {event.name}, recorded by {event.aggregate}."
        if event.description:
            text = f"{event.description.strip()}\n\n{text}"
        channel["description"] = text
        channel["servers"] = [{"$ref": f"#/servers/{_SERVER}"}]
        channel["messages"] = {i: {"$ref": f"#/components/messages/{i}"} for i in ids}
        channel["parameters"] = {
            PARTITION_PARAMETER: {
                "description": f"crc32 of the stream id `{event.aggregate}-<id>` (the "
                f"{H_STREAM_ID} header, not the aggregate's id alone) modulo the number of "
                f"partitions ({DEFAULT_PARTITIONS} by default): every event of one "
                "aggregate is on one partition.",
                "examples": ["0"],
            }
        }
        return channel

    def message(self, event: Event, version: EventVersion) -> dict[str, Any]:
        message: dict[str, Any] = {
            "name": event.name,
            "title": f"{event.name} v{version.version}",
            "contentType": "application/json",
        }
        text = version.description or event.description
        if text:
            message["description"] = text.strip()
        message["correlationId"] = {"$ref": f"#/components/correlationIds/{_CORRELATION}"}
        message["headers"] = self.headers(event, version.version)
        message["payload"] = self.object(version.fields, description=None)
        return message

    def headers(self, event: Event, version: int) -> dict[str, Any]:
        fixed = {
            H_CONTEXT: self.context.name,
            H_AGGREGATE: event.aggregate,
            H_EVENT_TYPE: event.name,
            H_EVENT_VERSION: str(version),
        }
        shapes: dict[str, dict[str, Any]] = {
            H_MSG_ID: {"type": "string", "format": "uuid"},
            H_EXPECTED_LAST_MSG_ID: {"type": "string", "format": "uuid"},
            H_STREAM_VERSION: _WHOLE_NUMBER,
            H_POSITION: _WHOLE_NUMBER,
            H_RECORDED_AT: {"type": "string", "format": "date-time"},
        }
        required = _required_headers()
        properties: dict[str, Any] = {}
        for name in (*required, H_CORRELATION_ID, H_CAUSATION_ID, H_EXPECTED_LAST_MSG_ID):
            schema: dict[str, Any] = {"type": "string"}
            if name in fixed:
                schema["const"] = fixed[name]
            schema.update(shapes.get(name, {}))
            schema["description"] = _HEADER_TEXT[name]
            properties[name] = schema
        return {"type": "object", "required": list(required), "properties": properties}

    def object(self, fields: tuple[Field, ...], description: str | None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object"}
        if description:
            schema["description"] = description.strip()
        schema["properties"] = {f.name: self.field(f) for f in fields}
        required = [f.name for f in fields if f.required]
        if required:
            schema["required"] = required
        # The generated models forbid fields they do not know (extra="forbid").
        schema["additionalProperties"] = False
        return schema

    def field(self, field: Field) -> dict[str, Any]:
        schema = self.type(field.type, field.constraints)
        notes: dict[str, Any] = {}
        if field.description:
            notes["description"] = field.description.strip()
        if field.has_default:
            notes["default"] = _json_value(field.default)
        if notes and "$ref" in schema:
            # Draft-07 tools ignore every keyword beside `$ref`: the reference goes one
            # level down, where the field's own words are read.
            schema = {"allOf": [schema]}
        return {**schema, **notes}

    def type(self, type_: TypeExpr, constraints: Constraints | None = None) -> dict[str, Any]:
        """A type expression's schema; constraints go on its non-null part, as in the
        generated annotation."""
        if isinstance(type_, NullableType):
            return {"anyOf": [self.type(type_.inner, constraints), {"type": "null"}]}
        if isinstance(type_, NamedType):
            return {"$ref": f"#/components/schemas/{type_.name}"}
        # allow_nan reaches the floats inside collections, as in the generated annotation;
        # the other constraints are the collection's own (its length).
        inner = _NAN if constraints is not None and constraints.allow_nan else None
        if isinstance(type_, ListType):
            schema: dict[str, Any] = {"type": "array", "items": self.type(type_.item, inner)}
            return _constrained(schema, constraints, _LIST_KEYWORDS)
        if isinstance(type_, DictType):
            return {"type": "object", "additionalProperties": self.type(type_.value, inner)}
        schema = dict(_SCALARS[type_.kind])
        if type_.kind is ScalarKind.STR:
            return _constrained(schema, constraints, _STRING_KEYWORDS)
        if type_.kind in (ScalarKind.INT, ScalarKind.FLOAT):
            schema = _constrained(schema, constraints, _NUMBER_KEYWORDS)
            if type_.kind is ScalarKind.FLOAT and constraints and constraints.allow_nan:
                return {"anyOf": [schema, {"type": "string", "enum": list(_NON_FINITE)}]}
        return schema

    def schemas(self, published: list[Event]) -> dict[str, Any]:
        """The context's own types the published events use, directly or through other
        types, in the order the schema declares them."""
        used: set[str] = set()
        pending = [n for e in published for v in e.versions for f in v.fields for n in _names(f)]
        while pending:
            name = pending.pop()
            if name in used:
                continue
            used.add(name)
            declared = self.context.user_type(name)
            if isinstance(declared, ValueType):
                pending.extend(n for f in declared.fields for n in _names(f))
        schemas: dict[str, Any] = {}
        for declared in self.context.types:
            if declared.name not in used:
                continue
            if isinstance(declared, ValueType):
                schemas[declared.name] = self.object(declared.fields, declared.description)
            elif isinstance(declared, EnumType):
                schema: dict[str, Any] = {"type": "string", "enum": list(declared.values)}
                if declared.description:
                    schema["description"] = declared.description.strip()
                schemas[declared.name] = schema
            else:
                schemas[declared.name] = _embedded(declared)
        return schemas


def _names(field: Field) -> Iterator[str]:
    return named_types(field.type)


def _constrained(
    schema: dict[str, Any], constraints: Constraints | None, keywords: dict[str, str]
) -> dict[str, Any]:
    if constraints is not None:
        for name, value in constraints.items():
            if name in keywords:
                schema[keywords[name]] = _json_value(value)
    return schema


def _json_value(value: Any) -> Any:
    """A Python value from the schema as the JSON the event holds; an allow_nan float's
    NaN or infinity as the string esgen stores (YAML would write `.nan`, not JSON)."""
    value = jsonable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _embedded(declared: JsonSchemaType) -> dict[str, Any]:
    """A `json_schema:` type inside the document: its `$ref`s into itself (the bundled
    `#/$defs/...`) now point at where it sits, `#/components/schemas/<Name>/...`; its own
    `$schema` and `$id` go, as they would re-base every reference inside it."""
    schema = json.loads(declared.schema_text)
    if not isinstance(schema, dict):  # a boolean schema: true or false
        return {} if schema else {"not": {}}
    base = f"#/components/schemas/{declared.name}"
    schema.pop("$schema", None)
    schema.pop("$id", None)
    rebased: dict[str, Any] = _rebase(schema, base)
    if declared.description and "description" not in rebased:
        rebased["description"] = declared.description.strip()
    return rebased


def _rebase(node: Any, base: str) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                out[key] = base + value[1:]
            else:
                out[key] = _rebase(value, base)
        return out
    if isinstance(node, list):
        return [_rebase(item, base) for item in node]
    return node
