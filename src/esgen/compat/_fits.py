"""Does every value one shape allows pass validation by another? And if not, why not.

Three rule families ask this with different roles: consumers still on version N reading
payloads of version N+1 (forward), a changed command validating what callers sent before
(source), readers of a read model receiving rows of its new shape. Pydantic models accept
an int where a float or decimal is expected; esgen's own classes reject unknown fields,
while consumers of published events and read models are expected to ignore them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from esgen.compat._shapes import (
    Choice,
    Cycle,
    MapOf,
    Nullable,
    Opaque,
    Record,
    Scalar,
    SeqOf,
    Shape,
    Slot,
    constraints_text,
)
from esgen.schema import Constraints, constraints_narrowed, values_refused

__all__ = ["Misfit", "MisfitKind", "describe", "misfits"]

_PROMOTIONS = {("int", "float"), ("int", "decimal")}


class MisfitKind(StrEnum):
    MISSING = "missing"  # the reader requires a field the data may lack
    UNKNOWN = "unknown"  # the data has a field the reader rejects
    TYPE = "type"  # values of another type
    NULL = "null"  # null where the reader wants a value
    ENUM = "enum"  # enum values the reader does not know
    CONSTRAINT = "constraint"  # values the reader's constraints reject


@dataclass(frozen=True, slots=True)
class Misfit:
    kind: MisfitKind
    path: tuple[str, ...]  # field names from the top: ("amount", "currency")
    detail: str  # neutral: "type int -> str", "enum value(s) 'c' not in Colour"
    data: str = ""  # what the data side has: "int", "max=5"; "absent" or "optional" (MISSING)
    reader: str = ""  # ... and what the reader wants, so rules can word either direction


@dataclass(frozen=True, slots=True)
class _Roles:
    tolerant: bool  # the reader ignores fields it does not know
    may_omit: bool  # writers may leave out fields that have a default


def misfits(data: Record, reader: Record, *, tolerant: bool, may_omit: bool) -> list[Misfit]:
    """Why some value valid for `data` may fail validation by `reader` (empty: it never does)."""
    return list(_record(data, reader, (), _Roles(tolerant, may_omit)))


def describe(shape: Shape) -> str:
    match shape:
        case Scalar(kind):
            return kind
        case SeqOf(item):
            return f"list[{describe(item)}]"
        case MapOf(value):
            return f"dict[str, {describe(value)}]"
        case Nullable(inner):
            return f"{describe(inner)} | None"
        case Choice() | Opaque() | Record():
            return shape.name
        case Cycle():
            return shape.name
    raise AssertionError(shape)  # pragma: no cover


def _record(data: Record, reader: Record, path: tuple[str, ...], roles: _Roles) -> Iterator[Misfit]:
    for want in reader.slots:
        at = (*path, want.name)
        have = data.slot(want.name)
        if have is None:
            if want.required:
                yield Misfit(MisfitKind.MISSING, at, f"field {want.name!r} absent", "absent")
            continue
        if want.required and not have.required and roles.may_omit:
            yield Misfit(
                MisfitKind.MISSING, at, f"field {want.name!r} no longer has a default", "optional"
            )
        found = list(_value(have.shape, want.shape, at, roles))
        yield from found
        if any(m.kind is MisfitKind.TYPE and m.path == at for m in found):
            continue  # constraints of another type would only repeat the type change
        narrowed = _narrowed(have, want)
        if narrowed:
            yield Misfit(
                MisfitKind.CONSTRAINT,
                at,
                "constraints " + ", ".join(narrowed),
                _checks(have.constraints, want.constraints),
                _checks(want.constraints, have.constraints),
            )
    if not roles.tolerant:
        for have in data.slots:
            if reader.slot(have.name) is None:
                yield Misfit(MisfitKind.UNKNOWN, (*path, have.name), f"field {have.name!r} unknown")


def _checks(mine: Constraints, other: Constraints) -> str:
    """One side's constraints as a message shows them. Refusing NaN and infinities is no
    constraint of its own (it is what unset allow_nan means), so it is named only where
    the other side allows them; otherwise the side would read as checking nothing."""
    text = constraints_text(mine)
    if other.allow_nan and not mine.allow_nan:
        text = f"{text}, finite floats only" if text else "finite floats only"
    return text or "none"


def _narrowed(have: Slot, want: Slot) -> list[str]:
    """Constraints of the reader some value of the data may break. An enum read as a str
    has no constraints of its own: its values are checked one by one."""
    data, reader = _bare(have.shape), _bare(want.shape)
    if isinstance(data, Choice) and isinstance(reader, Scalar):
        return values_refused(data.values, want.constraints)
    return constraints_narrowed(have.constraints, want.constraints)


def _bare(shape: Shape) -> Shape:
    return shape.inner if isinstance(shape, Nullable) else shape


def _value(data: Shape, reader: Shape, path: tuple[str, ...], roles: _Roles) -> Iterator[Misfit]:
    if data == reader:
        return
    if isinstance(reader, Nullable):
        yield from _value(
            data.inner if isinstance(data, Nullable) else data, reader.inner, path, roles
        )
        return
    if isinstance(data, Nullable):
        yield Misfit(
            MisfitKind.NULL,
            path,
            f"type {describe(data)} -> {describe(reader)}",
            describe(data),
            describe(reader),
        )
        yield from _value(data.inner, reader, path, roles)
        return
    match data, reader:
        case Scalar(old), Scalar(new) if (old, new) in _PROMOTIONS:
            return
        case Choice(), Scalar("str"):
            return  # an enum is stored as its value's text
        case SeqOf(old), SeqOf(new):
            yield from _value(old, new, path, roles)
        case MapOf(old), MapOf(new):
            yield from _value(old, new, path, roles)
        case Record(), Record():
            yield from _record(data, reader, path, roles)
        case Choice(old), Choice(new):
            unknown = [v for v in old if v not in new]
            if unknown:
                shown = ", ".join(repr(v) for v in unknown)
                yield Misfit(
                    MisfitKind.ENUM,
                    path,
                    f"enum value(s) {shown} not in {reader.name}",
                    shown,
                    reader.name,
                )
        case Cycle(), Cycle() if data.up == reader.up:
            return
        case Opaque(), Opaque():
            yield Misfit(
                MisfitKind.TYPE,
                path,
                f"the JSON Schema of {reader.name} changed",
                data.name,
                reader.name,
            )
        case _:
            yield Misfit(
                MisfitKind.TYPE,
                path,
                f"type {describe(data)} -> {describe(reader)}",
                describe(data),
                describe(reader),
            )
