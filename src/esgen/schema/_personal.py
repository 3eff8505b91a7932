"""Personal data in the schema: placeholders, data subjects, and where a mark cannot be.

A field marked `personal` is stored sealed with a key of its data subject (see
esgen.runtime's `Personal`); forgetting the subject leaves its placeholder (`erased`).
Placeholders are checked field by field while fields are built (`erased_value`); the
rest needs the whole context (which events are published, what a read model consumes),
and is checked once it is built (`check_personal`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from esgen.schema._diagnostics import Diagnostic, Location
from esgen.schema._model import (
    Context,
    DictType,
    Event,
    Field,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
)

__all__ = [
    "ERASED_TEXT",
    "SUBJECT_KINDS",
    "check_personal",
    "default_erased",
    "erased_json",
    "field_paths",
    "marked_fields",
    "personal_paths",
]

ERASED_TEXT = "<erased>"
"""What a personal str reads as once forgotten, unless the schema says otherwise."""

# What can name a data subject: the runtime keys data keys by text, and these print as one.
SUBJECT_KINDS = frozenset({ScalarKind.STR, ScalarKind.UUID, ScalarKind.INT})

Lookup = Callable[[str], UserType | None]


def default_erased(type_: TypeExpr) -> tuple[bool, Any]:
    """The placeholder of a personal field whose schema gives none: (found, value)."""
    if isinstance(type_, NullableType):
        return True, None
    if isinstance(type_, ScalarType) and type_.kind is ScalarKind.STR:
        return True, ERASED_TEXT
    if isinstance(type_, ListType):
        return True, []
    if isinstance(type_, DictType):
        return True, {}
    return False, None


def erased_json(value: Any) -> Any:
    """A checked placeholder as the JSON value stored in the field's place: what the
    runtime's `Personal(erased=...)` holds (bytes as base64, as the models write them)."""
    if isinstance(value, dict):
        return {k: erased_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [erased_json(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def personal_paths(type_: TypeExpr, lookup: Lookup, prefix: str = "") -> Iterator[str]:
    """The dotted paths of the personal fields inside values of `type_` (value types,
    list items as `[]`, map values as `{}`), each once however often a type recurs."""
    yield from (path for path, _ in _marked(type_, lookup, prefix, frozenset()))


def field_paths(f: Field, lookup: Lookup) -> Iterator[str]:
    """The personal paths of one field: itself when marked, else those inside its type."""
    yield from (path for path, _ in marked_fields([f], lookup))


def marked_fields(fields: Sequence[Field], lookup: Lookup) -> list[tuple[str, Field]]:
    """Every personal field reached from `fields`, by dotted path (see personal_paths)."""
    return [found for f in fields for found in _marked_field(f, lookup, "", frozenset())]


def _marked_field(
    f: Field, lookup: Lookup, prefix: str, seen: frozenset[str]
) -> Iterator[tuple[str, Field]]:
    path = f"{prefix}.{f.name}" if prefix else f.name
    if f.personal is not None:
        yield path, f
    else:
        yield from _marked(f.type, lookup, path, seen)


def _marked(
    type_: TypeExpr, lookup: Lookup, prefix: str, seen: frozenset[str]
) -> Iterator[tuple[str, Field]]:
    if isinstance(type_, NullableType):
        yield from _marked(type_.inner, lookup, prefix, seen)
    elif isinstance(type_, ListType):
        yield from _marked(type_.item, lookup, prefix + "[]", seen)
    elif isinstance(type_, DictType):
        yield from _marked(type_.value, lookup, prefix + "{}", seen)
    elif isinstance(type_, NamedType) and type_.name not in seen:
        target = lookup(type_.name)
        if isinstance(target, ValueType):
            for f in target.fields:
                yield from _marked_field(f, lookup, prefix, seen | {type_.name})


def _holds_personal(fields: Sequence[Field], lookup: Lookup) -> bool:
    return any(True for f in fields for _ in field_paths(f, lookup))


class _Checker:
    def __init__(self, context: Context, lookup: Lookup) -> None:
        self.context = context
        self.lookup = lookup
        self.diagnostics: list[Diagnostic] = []

    def error(self, location: Location, code: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(location, code, message))

    def run(self) -> list[Diagnostic]:
        ctx = self.context
        for consumer in ctx.consumers:
            for f in consumer.fields:
                if f.personal is not None:
                    self.error(
                        f.personal.location,
                        "E700",
                        f"consumer {consumer.name!r}: field {f.name!r} is marked personal, but "
                        "a consumer's rows come from events other contexts published, which "
                        "hold no personal data",
                    )
        for event in ctx.events:
            self._event(event)
        for aggregate in ctx.aggregates:
            personal = self._event_fields(e.name for e in aggregate.events)
            self._copies(f"the state of aggregate {aggregate.name!r}", aggregate.state, personal)
        for projection in ctx.projections:
            who = f"projection {projection.name!r}"
            key = next((f for f in projection.fields if f.name == projection.key), None)
            if key is not None and key.personal is not None and projection.subject is not None:
                self.error(
                    key.personal.location,
                    "E703",
                    f"{who}: its key {key.name!r} is personal data, stored sealed, and "
                    "cannot identify a row; keep the key in plain text",
                )
            # The key by default: checked when there is personal data for it to name.
            if projection.subject is not None or _holds_personal(projection.fields, self.lookup):
                where = projection.subject_location or projection.location
                named = "its subject" if projection.subject else "its key (the subject by default)"
                self._subject(who, projection.subject_field, projection.fields, where, named)
            self._copies(who, projection.fields, self._event_fields(projection.consumes))
        for saga in ctx.sagas:
            who = f"saga {saga.name!r}"
            if saga.subject is not None:
                where = saga.subject_location or saga.location
                self._subject(who, saga.subject, saga.state, where)
            elif _holds_personal(saga.state, self.lookup):
                self.error(
                    saga.location,
                    "E702",
                    f"{who}: its state holds personal data, so it needs a `subject:` naming "
                    "the state field that identifies whose data it is",
                )
            elif sent := self._personal_commands(saga.sends):
                self.error(
                    saga.location,
                    "E702",
                    f"{who}: it sends commands with personal data ({sent}) and keeps them, "
                    "for its compensations, sealed under its subject, so it needs a `subject:` "
                    "naming the state field that identifies whose data it is",
                )
            handled = (saga.starts_with, *saga.handles)
            self._copies(f"the state of {who}", saga.state, self._event_fields(handled))
        return self.diagnostics

    def _event(self, event: Event) -> None:
        for version in event.versions:
            paths = [p for f in version.fields for p in field_paths(f, self.lookup)]
            who = f"event {event.name!r} version {version.version}"
            if event.published and paths:
                self.error(
                    event.published_location or event.location,
                    "E700",
                    f"{event.name!r} is published to other contexts, but {who} holds personal "
                    f"data ({', '.join(paths)}); what another context received cannot be "
                    "forgotten here: publish an event without it, or stop publishing this one",
                )
            if version.subject is not None:
                where = version.subject_location or version.location
                self._subject(who, version.subject, version.fields, where)

    def _subject(
        self,
        who: str,
        name: str,
        fields: Sequence[Field],
        where: Location,
        named: str = "its subject",
    ) -> None:
        f = next((f for f in fields if f.name == name), None)
        problem = None
        if f is None:
            names = ", ".join(repr(f.name) for f in fields) or "none"
            problem = f"{named} {name!r} is not one of its fields (found {names})"
        elif isinstance(f.type, NullableType) or f.has_default:
            problem = f"{named} {name!r} may be absent; a subject must be a required field"
        elif f.personal is not None:
            problem = (
                f"{named} {name!r} is itself personal: the subject finds the key that "
                "opens its personal data, so it is kept in plain text"
            )
        elif not (isinstance(f.type, ScalarType) and f.type.kind in SUBJECT_KINDS):
            problem = f"{named} {name!r} is a {f.type}; a subject must be a str, uuid or int"
        if problem is not None:
            self.error(where, "E702", f"{who}: {problem}")

    def _personal_commands(self, names: Sequence[str]) -> str:
        """The commands among `names` that hold personal data, with where, for a message
        (empty if none does)."""
        found = []
        for name in names:
            command = self.context.command(name)
            if command is None:
                continue
            paths = [p for f in command.fields for p in field_paths(f, self.lookup)]
            if paths:
                found.append(f"{name!r}: {', '.join(paths)}")
        return "; ".join(found)

    def _event_fields(self, names: Iterator[str] | Sequence[str]) -> dict[str, str]:
        """Top-level personal fields of any version of these events: name -> event."""
        found: dict[str, str] = {}
        for name in names:
            event = self.context.event(name)
            if event is None:
                continue
            for version in event.versions:
                for f in version.fields:
                    if f.personal is not None:
                        found.setdefault(f.name, event.name)
        return found

    def _copies(self, who: str, fields: Sequence[Field], personal: dict[str, str]) -> None:
        for f in fields:
            if f.personal is None and f.name in personal:
                self.error(
                    f.location,
                    "E704",
                    f"{who}: field {f.name!r} is not personal, but {personal[f.name]!r} "
                    f"carries a personal field {f.name!r}: a plain-text copy of personal "
                    "data that forgetting would not erase; mark it personal, or rename it "
                    "if it holds something else",
                )


def check_personal(context: Context, lookup: Lookup) -> list[Diagnostic]:
    """What the personal-data marks of a built context get wrong, each where it is written."""
    return _Checker(context, lookup).run()
