"""Check a literal from a schema (a default) against a field type, and normalise it.

The normalised value is a real Python value (Decimal, UUID, datetime, ...) that the code
generator renders with `repr`-based literals, never by pasting schema text into code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, TypeAdapter, ValidationError

from esgen._suggest import did_you_mean
from esgen.schema._model import (
    Constraints,
    DictType,
    EnumType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
)
from esgen.schema._patterns import matches
from esgen.schema._typeexpr import MAX_NESTING

__all__ = ["MAX_DEFAULT_CHARACTERS", "ValueProblem", "check_value", "describe", "same_default"]

Lookup = Callable[[str], UserType | None]


class ValueProblem(Exception):
    pass


def describe(value: Any) -> str:
    """`'abc', a str` - what we show when a value has the wrong kind."""
    kind = {
        bool: "a bool",
        int: "an int",
        Decimal: "a number",
        str: "a str",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, Decimal) else str(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown}, {kind}" if value is not None else "null"


class _NaN:
    """What a NaN default compares as: NaN equals nothing, not even itself."""


_NAN = _NaN()


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def same_default(a: Any, b: Any) -> bool:
    """Whether two checked defaults are one value: `==`, except that a NaN (an allow_nan
    field's) is the same as a NaN, so `default: .nan` kept as it was is no change."""
    return bool(_comparable(a) == _comparable(b))


# A default is written into generated code as a literal, which the formatter then reads:
# black takes seconds on 30,000 list items. 10,000 characters is a page of data, far past
# any real default; more belongs in code or in a stored event.
MAX_DEFAULT_CHARACTERS = 10_000


def _size_problem(value: Any) -> str | None:
    """Why a default is too big to write into code: too long a literal, or nested deeper
    than any type may be. Walked without recursion, stopping as soon as it is too big."""
    size = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            if depth >= MAX_NESTING:
                return f"it nests more than {MAX_NESTING} deep"
            items = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((i, depth + 1) for i in items)
            size += 2 + 2 * len(items)  # brackets, and a separator after each item
        else:
            size += len(str(item)) + 2  # quotes or a sign, give or take
        if size > MAX_DEFAULT_CHARACTERS:
            return (
                f"it is longer than {MAX_DEFAULT_CHARACTERS:,} characters written as a literal; "
                "set a large value in code instead"
            )
    return None


def check_value(
    type_: TypeExpr, value: Any, lookup: Lookup, constraints: Constraints | None = None
) -> Any:
    if (problem := _size_problem(value)) is not None:
        raise ValueProblem(problem)
    nan = constraints is not None and bool(constraints.allow_nan)
    result = _check(type_, value, lookup, nan)
    if constraints is not None and result is not None:
        _check_constraints(result, constraints)
    return result


def _check(type_: TypeExpr, value: Any, lookup: Lookup, nan: bool = False) -> Any:
    """With `nan` (the field's allow_nan), its floats and its items' may be NaN or infinite;
    a value type's floats say so on their own fields."""
    if isinstance(type_, NullableType):
        return None if value is None else _check(type_.inner, value, lookup, nan)
    if value is None:
        raise ValueProblem(f"null is not a valid {type_} (make the type '{type_} | None')")
    if isinstance(type_, ScalarType):
        return _scalar(type_.kind, value, nan)
    if isinstance(type_, ListType):
        if not isinstance(value, list):
            raise ValueProblem(f"expected a list, got {describe(value)}")
        return [_check(type_.item, item, lookup, nan) for item in value]
    if isinstance(type_, DictType):
        if not isinstance(value, dict):
            raise ValueProblem(f"expected a mapping, got {describe(value)}")
        if bad := [k for k in value if not isinstance(k, str)]:
            raise ValueProblem(f"map keys must be strings, got {describe(bad[0])}")
        return {k: _check(type_.value, v, lookup, nan) for k, v in value.items()}
    return _named(type_, value, lookup)


def _named(type_: NamedType, value: Any, lookup: Lookup) -> Any:
    target = lookup(type_.name)
    if isinstance(target, EnumType):
        if not isinstance(value, str) or value not in target.values:
            allowed = ", ".join(repr(v) for v in target.values)
            hint = did_you_mean(value, target.values) if isinstance(value, str) else ""
            raise ValueProblem(f"expected one of {allowed}, got {describe(value)}{hint}")
        return value
    if isinstance(target, ValueType):
        if not isinstance(value, dict):
            raise ValueProblem(
                f"expected a mapping of {type_.name}'s fields, got {describe(value)}"
            )
        names = {f.name for f in target.fields}
        if unknown := [k for k in value if k not in names]:
            raise ValueProblem(
                f"{type_.name} has no field {unknown[0]!r}"
                + (did_you_mean(unknown[0], sorted(names)) if isinstance(unknown[0], str) else "")
            )
        result: dict[str, Any] = {}
        for f in target.fields:
            if f.name in value:
                try:
                    result[f.name] = check_value(f.type, value[f.name], lookup, f.constraints)
                except ValueProblem as exc:
                    raise ValueProblem(f"{type_.name}.{f.name}: {exc}") from None
            elif not f.has_default:
                raise ValueProblem(f"{type_.name} needs a value for {f.name!r}")
        return result
    if target is None:  # the type itself is broken and already reported
        return value
    raise ValueProblem(f"defaults are not supported for the JSON Schema type {type_.name}")


def _scalar(kind: ScalarKind, value: Any, nan: bool = False) -> Any:
    bad = ValueProblem(f"expected {kind.value}, got {describe(value)}")
    match kind:
        case ScalarKind.STR:
            if isinstance(value, str):
                return value
            if isinstance(value, bool | int | Decimal):
                # `1e3`, `true`, `0x1F`: YAML 1.2 reads these as numbers or bools.
                raise ValueProblem(f"{bad}; quote it to keep it as text")
        case ScalarKind.INT:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        case ScalarKind.FLOAT:
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                if nan and not Decimal(value).is_finite():
                    # `.nan`, `.inf`, `-.inf`: YAML's own floats, the only way to write them.
                    return float(value)
                _finite(Decimal(value), kind)
                result = float(value)
                if math.isinf(result):
                    raise ValueProblem(f"{value} is too large for a float")
                if result == 0 and value != 0:
                    raise ValueProblem(f"{value} is too small for a float: it would be 0.0")
                return result
        case ScalarKind.DECIMAL:
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                return _finite(Decimal(value), kind)
            if isinstance(value, str):
                try:
                    number = Decimal(value)
                except InvalidOperation:
                    raise bad from None
                return _finite(number, kind)
        case ScalarKind.BOOL:
            if isinstance(value, bool):
                return value
        case ScalarKind.UUID:
            if isinstance(value, str):
                try:
                    return UUID(value)
                except ValueError:
                    raise bad from None
        case ScalarKind.DATETIME:
            if isinstance(value, str):
                try:
                    parsed = datetime.fromisoformat(value)
                except ValueError:
                    raise bad from None
                if parsed.tzinfo is None:
                    raise ValueProblem(f"datetime {value!r} needs a timezone, e.g. {value}Z")
                return parsed
        case ScalarKind.DATE:
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    raise bad from None
        case ScalarKind.BYTES:
            if isinstance(value, str):
                return value.encode()
    raise bad


def _finite(value: Decimal, kind: ScalarKind) -> Decimal:
    # Events are stored as JSON, which has no NaN or infinity: an event carrying one
    # could be written but never read back.
    if not value.is_finite():
        if kind is ScalarKind.FLOAT:
            raise ValueProblem(
                f"{value} is not a finite number; a float stored in an event must be one "
                "unless its field says `allow_nan: true` (add that if NaN and infinities "
                "are meant)"
            )
        raise ValueProblem(
            f"{value} is not a finite number; a {kind.value} stored in an event must be one"
        )
    return value


def _check_constraints(value: Any, c: Constraints) -> None:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        if c.min is not None and value < c.min:
            raise ValueProblem(f"{value} is below the minimum {c.min}")
        if c.max is not None and value > c.max:
            raise ValueProblem(f"{value} is above the maximum {c.max}")
        if c.exclusive_min is not None and value <= c.exclusive_min:
            raise ValueProblem(f"{value} must be greater than {c.exclusive_min}")
        if c.exclusive_max is not None and value >= c.exclusive_max:
            raise ValueProblem(f"{value} must be less than {c.exclusive_max}")
    if isinstance(value, str | bytes | list | dict):
        if c.min_length is not None and len(value) < c.min_length:
            raise ValueProblem(f"length {len(value)} is below min_length {c.min_length}")
        if c.max_length is not None and len(value) > c.max_length:
            raise ValueProblem(f"length {len(value)} is above max_length {c.max_length}")
    if isinstance(value, str) and c.pattern is not None and not matches(c.pattern, value):
        raise ValueProblem(f"{value!r} does not match the pattern {c.pattern!r}")
    if isinstance(value, Decimal) and (c.max_digits is not None or c.decimal_places is not None):
        # Counted by pydantic itself, which is what will read the stored events back.
        limits = Field(max_digits=c.max_digits, decimal_places=c.decimal_places)
        try:
            TypeAdapter(Annotated[Decimal, limits]).validate_python(value)
        except ValidationError as exc:
            raise ValueProblem(f"{value}: {exc.errors()[0]['msg'].lower()}") from None
