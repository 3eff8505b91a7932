"""Typed upcasters: the stored JSON payload of every event version as a TypedDict, and the
derived steps between them.

A payload type describes the JSON object as stored (events are written with
`model_dump_json(by_alias=True)`), not the Python model: keys are the schema's field
names, uuid, date, datetime and bytes (base64) are text, enums are their values, value
types are TypedDicts of their own. A decimal is `str | int`: written as text, but a step
that widened an int to a decimal reads the stored number as it is, and so does a value
type widened in place. Every field of an event version is present (events are stored
with all their fields, and derived steps fill in every field they add); a field of a
value type that has a default may be missing, since value types grow in place and a
value stored before the field existed lacks it.

A derived step builds the new payload as a literal of its TypedDict, so type checkers
check it key by key: added fields get their default as JSON data, renamed fields move,
removed fields are left out. Values whose JSON type changed are reshaped by a nested
function per pair of value types; a step that changes no key and converts no value needs
no function at all (`same_payload`): the registry reads the old JSON as the new version.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from esgen.codegen._pyexpr import float_literal, string
from esgen.schema import (
    ChangeKind,
    DictType,
    EnumType,
    Field,
    JsonSchemaType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
    VersionStep,
    same_default,
    snake,
)

__all__ = ["Payloads", "class_syntax_fits", "derived_body", "json_literal", "same_payload"]

Lookup = Callable[[str], UserType | None]

# How pydantic writes each scalar in JSON, as read back by json.loads.
_JSON_SCALARS: dict[ScalarKind, str] = {
    ScalarKind.STR: "str",
    ScalarKind.INT: "int",
    # A float field also holds ints: JSON keeps 1 and 1.0 apart, and int -> float widens.
    ScalarKind.FLOAT: "float",
    ScalarKind.BOOL: "bool",
    ScalarKind.DECIMAL: "str | int",
    ScalarKind.UUID: "str",
    ScalarKind.DATETIME: "str",
    ScalarKind.DATE: "str",
    ScalarKind.BYTES: "str",
}


def same_payload(step: VersionStep) -> bool:
    """True when every stored payload of the old version already is a valid payload of the
    new one: no key added, removed or renamed, no value converted (widenings only)."""
    return not step.manual and not any(
        change.kind in (ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.RENAMED)
        or (change.kind is ChangeKind.TYPE_CHANGED and change.conversion is not None)
        for change in step.changes
    )


def class_syntax_fits(keys: Iterable[str]) -> bool:
    """Whether a TypedDict with these keys can be written as a class: keywords (`from`,
    `class`) can only be keys of the functional form."""
    return all(key.isidentifier() and not keyword.iskeyword(key) for key in keys)


class Payloads:
    """The JSON types of one context's event versions and value types, and their names."""

    def __init__(self, lookup: Lookup, taken: Iterable[str] = ()) -> None:
        self.lookup = lookup
        self.taken = frozenset(taken)  # the event payloads' names

    @staticmethod
    def event_name(event: str, version: int) -> str:
        # Numbered even for the latest version: adding a version renames nothing.
        return f"{event}V{version}Payload"

    def value_name(self, type_name: str) -> str:
        name = f"{type_name}Payload"
        # A value type named like an event's version (`OpenedV2` next to event `Opened`).
        return f"{type_name}ValuePayload" if name in self.taken else name

    def annotation(self, type_: TypeExpr) -> str:
        match type_:
            case ScalarType(kind):
                return _JSON_SCALARS[kind]
            case ListType(item):
                return f"list[{self.annotation(item)}]"
            case DictType(value):
                return f"dict[str, {self.annotation(value)}]"
            case NullableType(inner):
                return f"{self.annotation(inner)} | None"
            case NamedType(name):
                target = self.lookup(name)
                if isinstance(target, EnumType):
                    return f"Literal[{', '.join(string(v) for v in target.values)}]"
                if isinstance(target, ValueType):
                    return self.value_name(name)
                # A JSON Schema type: any JSON value its schema allows.
                return "object"
        raise AssertionError(type_)  # pragma: no cover

    def field_annotation(self, field: Field, in_value_type: bool) -> str:
        text = self.annotation(field.type)
        return f"NotRequired[{text}]" if in_value_type and field.has_default else text

    def value_types(self, types: Iterable[TypeExpr]) -> set[str]:
        """The value types these types reach, however deep."""
        found: set[str] = set()
        todo = list(types)
        while todo:
            type_ = todo.pop()
            for name in _named(type_):
                target = self.lookup(name)
                if isinstance(target, ValueType) and name not in found:
                    found.add(name)
                    todo.extend(f.type for f in target.fields)
        return found

    # -- how stored values of one type read as another ---------------------------------

    def same(self, old: TypeExpr, new: TypeExpr, open_: frozenset[tuple[str, str]]) -> bool:
        """Whether the two JSON types are one type to a type checker (TypedDicts compare
        by their keys): what a list item, a dict value or a TypedDict key needs, since
        those are invariant."""
        if old == new:
            return True
        match old, new:
            case NullableType(a), NullableType(b):
                return self.same(a, b, open_)
            case ListType(a), ListType(b):
                return self.same(a, b, open_)
            case DictType(a), DictType(b):
                return self.same(a, b, open_)
            case ScalarType(a), ScalarType(b):
                return _JSON_SCALARS[a] == _JSON_SCALARS[b]
            case NamedType(a), NamedType(b):
                before, after = self.lookup(a), self.lookup(b)
                if isinstance(before, EnumType) and isinstance(after, EnumType):
                    return set(before.values) == set(after.values)
                if isinstance(before, JsonSchemaType) and isinstance(after, JsonSchemaType):
                    return True
                if isinstance(before, ValueType) and isinstance(after, ValueType):
                    if (a, b) in open_:
                        return True
                    inner = open_ | {(a, b)}
                    was = {f.name: f for f in before.fields}
                    return len(was) == len(after.fields) and all(
                        f.name in was
                        and was[f.name].has_default == f.has_default
                        and self.same(was[f.name].type, f.type, inner)
                        for f in after.fields
                    )
        return False

    def assignable(self, old: TypeExpr, new: TypeExpr) -> bool:
        """Whether a value of the old JSON type may stand where the new one is expected."""
        if isinstance(new, NullableType):
            inner = old.inner if isinstance(old, NullableType) else old
            return self.assignable(inner, new.inner)
        if isinstance(old, NullableType):
            return False
        if isinstance(old, ScalarType) and isinstance(new, ScalarType):
            was, now = _JSON_SCALARS[old.kind], _JSON_SCALARS[new.kind]
            return was == now or (was, now) in _WIDER
        before = self.lookup(old.name) if isinstance(old, NamedType) else None
        if isinstance(before, EnumType):
            after = self.lookup(new.name) if isinstance(new, NamedType) else None
            if isinstance(after, EnumType):
                return set(before.values) <= set(after.values)
            return isinstance(new, ScalarType) and "str" in _JSON_SCALARS[new.kind].split(" | ")
        return self.same(old, new, frozenset())


_WIDER = {("int", "float"), ("int", "str | int"), ("str", "str | int")}


def _named(type_: TypeExpr) -> Iterator[str]:
    match type_:
        case NamedType(name):
            yield name
        case ListType(inner) | DictType(inner) | NullableType(inner):
            yield from _named(inner)


def derived_body(step: VersionStep, payloads: Payloads) -> tuple[list[str], set[str]]:
    """The body of a derived upcaster of `data` (the old payload): nested reshaping
    functions, then the new payload as one literal, each field from its old value; and the
    value types' payloads the nested functions name."""
    body = _Body(payloads)
    items: list[str] = []
    for field in step.new.fields:
        key = string(field.name)
        source = step.old.field_named(field.renamed_from or field.name)
        if source is None:
            items.append(f"{key}: {json_literal(field.default)}")
        else:
            value = body.convert(source.type, field.type, f"data[{string(source.name)}]", 0)
            items.append(f"{key}: {value}")
    lines = [*body.lines, ""] if body.lines else []
    return [*lines, *_literal("return ", items)], body.used


def _literal(prefix: str, items: list[str]) -> list[str]:
    """A dict display one item a line, with the trailing comma that keeps black from
    joining the lines: a field added later adds one line."""
    if not items:
        return [prefix + "{}"]
    return [prefix + "{", *(f"    {item}," for item in items), "}"]


class _Body:
    """Expressions converting stored values of one type to another, and the nested
    functions they call: one per pair of value types, named after the type it produces."""

    def __init__(self, payloads: Payloads) -> None:
        self.payloads = payloads
        self.lines: list[str] = []
        self.names: dict[tuple[str, str], str] = {}
        self.used: set[str] = set()

    def convert(
        self, old: TypeExpr, new: TypeExpr, value: str, depth: int, compound: bool = False
    ) -> str:
        """An expression for `value` (of JSON type `old`) as a value of `new`; `compound`
        says `value` needs parentheses to be an operand."""
        payloads = self.payloads
        if payloads.assignable(old, new):
            return value
        operand = f"({value})" if compound else value
        match old, new:
            case NullableType(a), NullableType(b):
                return f"None if {operand} is None else {self.convert(a, b, operand, depth)}"
            case _, NullableType(b):
                return self.convert(old, b, value, depth, compound)
            case ListType(a), ListType(b):
                each = f"item{depth}"
                item = _grouped(self.convert(a, b, each, depth + 1))
                return f"[{item} for {each} in {operand}]"
            case DictType(a), DictType(b):
                key, each = f"key{depth}", f"value{depth}"
                item = _grouped(self.convert(a, b, each, depth + 1))
                return f"{{{key}: {item} for {key}, {each} in {operand}.items()}}"
            case NamedType(a), NamedType(b):
                before, after = payloads.lookup(a), payloads.lookup(b)
                if isinstance(before, ValueType) and isinstance(after, ValueType):
                    return f"{self.record(before, after)}({value})"
        raise AssertionError(f"no derived conversion from {old} to {new}")  # pragma: no cover

    def record(self, old: ValueType, new: ValueType) -> str:
        pair = (old.name, new.name)
        if pair in self.names:
            return self.names[pair]
        base = f"_to_{snake(new.name)}"
        taken = set(self.names.values())
        name = next(
            n for n in (base, *(f"{base}_{k}" for k in range(2, len(taken) + 3))) if n not in taken
        )
        # Named before its body is built: a recursive value type calls itself.
        self.names[pair] = name
        was = {f.name: f for f in old.fields}
        items: list[str] = []
        kept: list[str] = []
        for field in new.fields:
            key = string(field.name)
            before = was.get(field.name)
            if before is None:
                items.append(f"{key}: {json_literal(field.default)}")
            elif (
                before.has_default
                and field.has_default
                and same_default(before.default, field.default)
            ):
                # Missing in the old value, missing in the new: the default stays implied.
                value = self.convert(before.type, field.type, f"value[{key}]", 0)
                kept += [f"if {key} in value:", f"    reshaped[{key}] = {value}"]
            elif before.has_default:
                # A value stored without the field meant the old default; say it.
                stored = f"value[{key}] if {key} in value else {json_literal(before.default)}"
                items.append(f"{key}: {self.convert(before.type, field.type, stored, 0, True)}")
            else:
                items.append(f"{key}: {self.convert(before.type, field.type, f'value[{key}]', 0)}")
        old_name = self.payloads.value_name(old.name)
        new_name = self.payloads.value_name(new.name)
        self.used |= {old_name, new_name}
        if kept:
            body = [*_literal(f"reshaped: {new_name} = ", items), *kept, "return reshaped"]
        else:
            body = _literal("return ", items)
        # Blank lines around nested functions, as black lays them out.
        self.lines.append("")
        self.lines.append(f"def {name}(value: {old_name}) -> {new_name}:")
        self.lines.extend(f"    {line}" for line in body)
        return name


def _grouped(expression: str) -> str:
    """A conditional expression as a comprehension's item reads best in parentheses."""
    return f"({expression})" if expression.startswith("None if ") else expression


def json_literal(value: Any) -> str:
    """A Python literal of the JSON form of a checked default, as pydantic would store it."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        # A NaN or infinite default (an allow_nan field's) stays a float: pydantic reads it
        # as itself, and the payload TypedDicts type the field as float.
        return float_literal(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, Enum):
        return json_literal(value.value)
    if isinstance(value, Decimal | UUID):
        return string(str(value))
    if isinstance(value, datetime | date):
        return string(value.isoformat())
    if isinstance(value, bytes):
        import base64

        return string(base64.urlsafe_b64encode(value).decode())
    if isinstance(value, list):
        return "[" + ", ".join(json_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{string(k)}: {json_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no JSON literal for {value!r}")  # pragma: no cover
