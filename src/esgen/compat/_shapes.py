"""What a field accepts, as a structure free of names: the basis of fingerprints and fit checks.

Value types and enums are not versioned: they belong to the context, so changing one changes
every event version that uses it, in place. A version's shape therefore inlines the shapes of
the types it refers to, recursively, and leaves out their names (renaming a value type does
not change one stored byte) and everything that is prose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from esgen.schema import (
    Constraints,
    DictType,
    EnumType,
    Field,
    JsonSchemaType,
    ListType,
    NamedType,
    NullableType,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
    named_types,
)

__all__ = [
    "Choice",
    "Cycle",
    "Lookup",
    "MapOf",
    "Nullable",
    "Opaque",
    "Record",
    "Scalar",
    "SeqOf",
    "Shape",
    "Slot",
    "canonical_number",
    "constraints_text",
    "field_signature",
    "fingerprint",
    "json_digest",
    "record_of",
    "referenced_types",
    "render_value",
    "shape_of",
    "type_text",
]

Lookup = Callable[[str], UserType | None]


@dataclass(frozen=True, slots=True)
class Scalar:
    kind: str


@dataclass(frozen=True, slots=True)
class SeqOf:
    item: Shape


@dataclass(frozen=True, slots=True)
class MapOf:
    value: Shape


@dataclass(frozen=True, slots=True)
class Nullable:
    inner: Shape


@dataclass(frozen=True, slots=True)
class Choice:
    """An enum: what it accepts is its set of values; the name is for messages only."""

    values: tuple[str, ...]
    name: str = field(compare=False)


@dataclass(frozen=True, slots=True)
class Opaque:
    """A JSON Schema type: compared by a digest of its canonical JSON."""

    digest: str
    name: str = field(compare=False)


@dataclass(frozen=True, slots=True)
class Cycle:
    """A value type that contains itself (a tree): refers back to the enclosing record
    `up` levels out. Compared by that position, so a tree renamed stays the same shape."""

    up: int
    name: str = field(compare=False)


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    shape: Shape
    required: bool
    default: str | None  # canonical text of the default; None when there is none
    constraints: Constraints


@dataclass(frozen=True, slots=True)
class Record:
    slots: tuple[Slot, ...]  # sorted by name: field order changes nothing that is stored
    name: str = field(compare=False)

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


Shape = Scalar | SeqOf | MapOf | Nullable | Choice | Opaque | Cycle | Record


def shape_of(type_: TypeExpr, lookup: Lookup, within: tuple[str, ...] = ()) -> Shape:
    if isinstance(type_, ScalarType):
        return Scalar(type_.kind.value)
    if isinstance(type_, ListType):
        return SeqOf(shape_of(type_.item, lookup, within))
    if isinstance(type_, DictType):
        return MapOf(shape_of(type_.value, lookup, within))
    if isinstance(type_, NullableType):
        return Nullable(shape_of(type_.inner, lookup, within))
    if type_.name in within:
        nearest = len(within) - 1 - within[::-1].index(type_.name)
        return Cycle(len(within) - nearest, type_.name)
    target = lookup(type_.name)
    if isinstance(target, EnumType):
        return Choice(tuple(sorted(target.values)), type_.name)
    if isinstance(target, ValueType):
        return record_of(target.fields, lookup, type_.name, (*within, type_.name))
    if isinstance(target, JsonSchemaType):
        return Opaque(json_digest(target.schema_text), type_.name)
    return Opaque("unresolved:" + type_.name, type_.name)  # only in schemas with errors


def record_of(
    fields: Sequence[Field], lookup: Lookup, name: str, within: tuple[str, ...] = ()
) -> Record:
    slots = (
        Slot(
            f.name,
            shape_of(f.type, lookup, within),
            not f.has_default,
            render_value(f.default) if f.has_default else None,
            f.constraints,
        )
        for f in fields
    )
    return Record(tuple(sorted(slots, key=lambda s: s.name)), name)


def _plain(shape: Shape) -> Any:
    """The shape as JSON-able data without names: what a fingerprint hashes."""
    match shape:
        case Scalar(kind):
            return kind
        case SeqOf(item):
            return ["list", _plain(item)]
        case MapOf(value):
            return ["dict", _plain(value)]
        case Nullable(inner):
            return ["nullable", _plain(inner)]
        case Choice(values):
            return ["enum", list(values)]
        case Opaque(digest):
            return ["json_schema", digest]
        case Cycle():
            # The name, not the position: fingerprints recorded in esgen.lock before
            # cycles were compared by position must still match.
            return ["cycle", shape.name]
        case Record(slots):
            return ["record", [_plain_slot(s) for s in slots]]
    raise AssertionError(shape)  # pragma: no cover


def _plain_slot(slot: Slot) -> Any:
    return {
        "name": slot.name,
        "type": _plain(slot.shape),
        "required": slot.required,
        "default": slot.default,
        "constraints": [[k, canonical_number(v)] for k, v in slot.constraints.items()],
    }


def fingerprint(record: Record) -> str:
    """16 hex digits of SHA-256 over the record's canonical JSON (as the runtime's snapshots)."""
    text = json.dumps(_plain(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def json_digest(schema_text: str) -> str:
    """A JSON Schema's digest; formatting and key order do not count."""
    try:
        data = json.loads(schema_text)
    except json.JSONDecodeError:
        data = schema_text
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def canonical_number(value: Any) -> Any:
    """Equal numbers written differently (0.10, 0.1) give the same text."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        text = format(value.normalize(), "f")
        return text if text != "-0" else "0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return str(value) if isinstance(value, int) else repr(value)


def render_value(value: Any) -> str:
    """A default as one deterministic line of JSON-like text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(canonical_number(value))
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, UUID):
        return json.dumps(str(value))
    if isinstance(value, bytes):
        return json.dumps(value.decode("utf-8", "backslashreplace"), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        inner = ", ".join(
            f"{json.dumps(str(k), ensure_ascii=False)}: {render_value(v)}" for k, v in items
        )
        return "{" + inner + "}"
    return json.dumps(str(value), ensure_ascii=False)


def type_text(type_: TypeExpr, lookup: Lookup) -> str:
    """The type as written, except that enums declared in place show their values.

    Their generated names follow the version they sit in (`OrderPlacedV1Status`), so the
    name would change each time a version is added while nothing about the field did.
    """
    if isinstance(type_, ListType):
        return f"list[{type_text(type_.item, lookup)}]"
    if isinstance(type_, DictType):
        return f"dict[str, {type_text(type_.value, lookup)}]"
    if isinstance(type_, NullableType):
        return f"{type_text(type_.inner, lookup)} | None"
    if isinstance(type_, NamedType):
        target = lookup(type_.name)
        if isinstance(target, EnumType) and target.declared_inline:
            return (
                "enum[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in target.values) + "]"
            )
    return str(type_)


def constraints_text(constraints: Constraints) -> str:
    # Strings and booleans as JSON, the way the YAML spells them (`allow_nan=true`).
    return ", ".join(
        f"{name}={json.dumps(value) if isinstance(value, str | bool) else canonical_number(value)}"
        for name, value in constraints.items()
    )


def field_signature(f: Field, lookup: Lookup) -> str:
    """`decimal (min=0, max_digits=10) = 0.1`: everything about a field that decides what it
    accepts, apart from the insides of the named types it refers to."""
    text = type_text(f.type, lookup)
    if constraints := constraints_text(f.constraints):
        text += f" ({constraints})"
    if f.has_default:
        text += f" = {render_value(f.default)}"
    return text


def referenced_types(fields: Sequence[Field], lookup: Lookup) -> list[str]:
    """Every named type the fields reach, directly or through value types, first seen first."""
    seen: list[str] = []
    pending = [name for f in fields for name in named_types(f.type)]
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.append(name)
        target = lookup(name)
        if isinstance(target, ValueType):
            pending.extend(n for f in target.fields for n in named_types(f.type))
    return seen
