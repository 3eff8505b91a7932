"""Derived upcasters: the body of `vK -> vK+1` for a step the schema fully explains.

The step works on the stored JSON data (a dict), so a chain of steps never builds the
intermediate models. Added fields get their default as JSON data, renamed fields move,
removed fields go; widened types need nothing, since every old value is already valid.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from esgen.codegen._pyexpr import string
from esgen.schema import ChangeKind, VersionStep

__all__ = ["derived_statements", "json_literal"]


def derived_statements(step: VersionStep) -> list[str]:
    """Lines of Python operating on `result`, a copy of the stored data."""
    lines: list[str] = []
    for change in step.changes:  # renames first: a new field may reuse an old name
        if change.kind is ChangeKind.RENAMED and change.old is not None:
            old, new = string(change.old.name), string(change.name)
            lines.append(f"if {old} in result:")
            lines.append(f"    result[{new}] = result.pop({old})")
    for change in step.changes:
        if change.kind is ChangeKind.REMOVED:
            lines.append(f"result.pop({string(change.name)}, None)")
    for change in step.changes:
        if change.kind is ChangeKind.ADDED and change.new is not None:
            value = json_literal(change.new.default)
            lines.append(f"result.setdefault({string(change.name)}, {value})")
    return lines


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
