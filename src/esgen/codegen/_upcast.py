"""Derived upcasters: the body of `vK -> vK+1` for a step the schema fully explains.

The step works on the stored JSON data (a dict), so a chain of steps never builds the
intermediate models. Added fields get their default as JSON data, renamed fields move,
removed fields go; widened types need nothing, since every old value is already valid.
A value type replaced by one of a compatible shape (more fields with defaults, fewer
fields, fields of widened types) is reshaped by a nested function per value type.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from esgen.codegen._pyexpr import string
from esgen.schema import (
    ChangeKind,
    Conversion,
    DictConversion,
    ListConversion,
    NullableConversion,
    RecordConversion,
    VersionStep,
    snake,
)

__all__ = ["derived_statements", "json_literal"]


def derived_statements(step: VersionStep) -> list[str]:
    """Lines of Python operating on `result`, a copy of the stored data."""
    helpers = _Helpers()
    lines: list[str] = []
    # Removals first: a field renamed onto a removed field's name takes its place.
    for change in step.changes:
        if change.kind is ChangeKind.REMOVED:
            lines.append(f"result.pop({string(change.name)}, None)")
    for change in step.changes:
        if change.kind is ChangeKind.RENAMED and change.old is not None:
            old, new = string(change.old.name), string(change.name)
            lines.append(f"if {old} in result:")
            lines.append(f"    result[{new}] = result.pop({old})")
    for change in step.changes:
        if change.kind is ChangeKind.TYPE_CHANGED and change.conversion is not None:
            key = string(change.name)
            value = helpers.expression(change.conversion, f"result[{key}]", 0)
            lines.append(f"if {key} in result:")
            lines.append(f"    result[{key}] = {value}")
    for change in step.changes:
        if change.kind is ChangeKind.ADDED and change.new is not None:
            value = json_literal(change.new.default)
            lines.append(f"result.setdefault({string(change.name)}, {value})")
    return [*helpers.lines, "", *lines] if helpers.lines else lines


class _Helpers:
    """Nested functions that reshape stored values of value types, defined at the top of the
    upcaster: one per distinct conversion, named after the value type it produces."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[tuple[str, ...], str] = {}

    def expression(self, conversion: Conversion, value: str, depth: int) -> str:
        """An expression converting `value` (stored JSON data) to the new shape."""
        match conversion:
            case RecordConversion():
                return f"{self.record(conversion)}({value})"
            case ListConversion(item):
                each = f"item{depth}"
                return f"[{self.expression(item, each, depth + 1)} for {each} in {value}]"
            case DictConversion(inner):
                key, each = f"key{depth}", f"value{depth}"
                converted = self.expression(inner, each, depth + 1)
                return f"{{{key}: {converted} for {key}, {each} in {value}.items()}}"
            case NullableConversion(inner):
                return f"(None if {value} is None else {self.expression(inner, value, depth)})"
        raise AssertionError(conversion)  # pragma: no cover

    def record(self, conversion: RecordConversion) -> str:
        body = ["reshaped = dict(value)"]
        body.extend(f"reshaped.pop({string(name)}, None)" for name in conversion.dropped)
        for name, inner in conversion.fields:
            field = string(name)
            body.append(f"if {field} in reshaped:")
            converted = self.expression(inner, f"reshaped[{field}]", 0)
            body.append(f"    reshaped[{field}] = {converted}")
        body.extend(
            f"reshaped.setdefault({string(name)}, {json_literal(default)})"
            for name, default in conversion.defaults
        )
        key = tuple(body)
        if key in self.names:
            return self.names[key]
        base = f"_to_{snake(conversion.target)}"
        taken = set(self.names.values())
        name = (
            base
            if base not in taken
            else next(f"{base}_{n}" for n in range(2, len(taken) + 2) if f"{base}_{n}" not in taken)
        )
        self.names[key] = name
        # Blank lines around nested functions, as black lays them out.
        self.lines.append("")
        self.lines.append(f"def {name}(value: dict[str, Any]) -> dict[str, Any]:")
        self.lines.extend(f"    {line}" for line in (*body, "return reshaped"))
        return name


def json_literal(value: Any) -> str:
    """A Python literal of the JSON form of a checked default, as pydantic would store it."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "None"
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
