"""Hypothesis strategies, as source text, that build valid instances of schema types.

Used by the generated property tests of derived upcasters. Strategies honour the
schema's constraints, so every example is a payload the old code could have stored.
"""

from __future__ import annotations

import math
from decimal import Decimal

from esgen.codegen._pyexpr import Imports, string
from esgen.schema import (
    Constraints,
    DictType,
    EnumType,
    EventVersion,
    Field,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
    python_name,
)

__all__ = ["Unsupported", "model_strategy"]

# Keeps examples small: upcasting cost does not depend on collection sizes.
_MAX_ITEMS = 3


class Unsupported(Exception):
    """No strategy can be written for this type (JSON Schema types, recursive types)."""


def model_strategy(
    class_name: str,
    version: EventVersion,
    types: dict[str, UserType],
    imports: Imports,
    types_module: str,
) -> str:
    """`st.builds(...)` of a version class; raises Unsupported when no strategy fits."""
    return _Writer(types, imports, types_module).builds(class_name, version.fields, frozenset())


class _Writer:
    def __init__(self, types: dict[str, UserType], imports: Imports, types_module: str) -> None:
        self.types = types
        self.imports = imports
        self.types_module = types_module

    def builds(self, class_name: str, fields: tuple[Field, ...], seen: frozenset[str]) -> str:
        args = [
            f"{python_name(f.name)}={self.strategy(f.type, f.constraints, seen)}" for f in fields
        ]
        return f"st.builds({', '.join([class_name, *args])})"

    def strategy(self, type_: TypeExpr, c: Constraints, seen: frozenset[str]) -> str:
        if isinstance(type_, NullableType):
            return f"st.none() | {self.strategy(type_.inner, c, seen)}"
        if isinstance(type_, ListType):
            item = self.strategy(type_.item, Constraints(allow_nan=c.allow_nan), seen)
            return f"st.lists({item}, {_sizes(c)})"
        if isinstance(type_, DictType):
            value = self.strategy(type_.value, Constraints(allow_nan=c.allow_nan), seen)
            return f"st.dictionaries(st.text(max_size=8), {value}, {_sizes(c)})"
        if isinstance(type_, NamedType):
            return self.named(type_.name, seen)
        return _scalar(type_, c, self.imports)

    def named(self, name: str, seen: frozenset[str]) -> str:
        target = self.types.get(name)
        if isinstance(target, EnumType):
            self.imports.add(self.types_module, name)
            return f"st.sampled_from({name})"
        if isinstance(target, ValueType):
            if name in seen:
                raise Unsupported(f"{name} refers to itself")
            self.imports.add(self.types_module, name)
            return self.builds(name, target.fields, seen | {name})
        raise Unsupported(f"{name} is described by a JSON Schema")


def _sizes(c: Constraints) -> str:
    low = c.min_length or 0
    high = c.max_length if c.max_length is not None else max(low, _MAX_ITEMS)
    return f"min_size={low}, max_size={min(high, low + _MAX_ITEMS)}"


def _bound(value: int | Decimal | None) -> str:
    return "None" if value is None else str(value)


def _scalar(type_: ScalarType, c: Constraints, imports: Imports) -> str:
    kind = type_.kind
    if kind is ScalarKind.STR:
        if c.pattern is not None:
            # fullmatch: Python lets `$` match before a final newline; pydantic does not.
            text = f"st.from_regex({string(c.pattern)}, fullmatch=True)"
            if c.min_length is not None or c.max_length is not None:
                low, high = c.min_length or 0, c.max_length
                check = f"{low} <= len(s)" + (f" <= {high}" if high is not None else "")
                text += f".filter(lambda s: {check})"
            return text
        return f"st.text({_sizes(c)})"
    if kind is ScalarKind.BYTES:
        return f"st.binary({_sizes(c)})"
    if kind is ScalarKind.BOOL:
        return "st.booleans()"
    if kind is ScalarKind.UUID:
        return "st.uuids()"
    if kind is ScalarKind.DATE:
        return "st.dates()"
    if kind is ScalarKind.DATETIME:
        imports.add("datetime", "timezone")
        return "st.datetimes(timezones=st.just(timezone.utc))"
    if kind is ScalarKind.INT:
        return _integers(c)
    if kind is ScalarKind.FLOAT:
        bounded = (c.min, c.max, c.exclusive_min, c.exclusive_max) != (None,) * 4
        if c.allow_nan and not bounded:
            return "st.floats()"  # NaN and both infinities among them
        parts = ["allow_nan=False", "allow_infinity=False"]
        for name, value, exclude in (
            ("min_value", c.min if c.exclusive_min is None else c.exclusive_min, "exclude_min"),
            ("max_value", c.max if c.exclusive_max is None else c.exclusive_max, "exclude_max"),
        ):
            if value is not None:
                parts.append(f"{name}={float(value)!r}")
                if (c.exclusive_min if name == "min_value" else c.exclusive_max) is not None:
                    parts.append(f"{exclude}=True")
        return f"st.floats({', '.join(parts)})"
    text = _decimals(c)
    if "Decimal(" in text:  # bounds name it; an unbounded strategy does not
        imports.add("decimal", "Decimal")
    return text


def _integers(c: Constraints) -> str:
    bounds: list[int | None] = [None, None]
    if c.min is not None:
        bounds[0] = math.ceil(c.min)
    if c.exclusive_min is not None:
        bounds[0] = math.floor(c.exclusive_min) + 1
    if c.max is not None:
        bounds[1] = math.floor(c.max)
    if c.exclusive_max is not None:
        bounds[1] = math.ceil(c.exclusive_max) - 1
    return f"st.integers(min_value={_bound(bounds[0])}, max_value={_bound(bounds[1])})"


def _decimals(c: Constraints) -> str:
    places = c.decimal_places
    if places is None:  # as many as max_digits leaves room for, up to two
        places = 2 if c.max_digits is None else max(0, min(2, c.max_digits - 1))
    parts = ["allow_nan=False", "allow_infinity=False", f"places={places}"]
    low: Decimal | int | None = c.min if c.min is not None else c.exclusive_min
    high: Decimal | int | None = c.max if c.max is not None else c.exclusive_max
    if c.max_digits is not None:
        limit = Decimal(10) ** (c.max_digits - places) - 1
        high = limit if high is None else min(Decimal(high), limit)
        low = -limit if low is None else max(Decimal(low), -limit)
    if low is not None:
        parts.append(f"min_value=Decimal({string(str(low))})")
    if high is not None:
        parts.append(f"max_value=Decimal({string(str(high))})")
    text = f"st.decimals({', '.join(parts)})"
    if c.exclusive_min is not None or c.exclusive_max is not None:
        checks = []
        if c.exclusive_min is not None:
            checks.append(f"d > Decimal({string(str(c.exclusive_min))})")
        if c.exclusive_max is not None:
            checks.append(f"d < Decimal({string(str(c.exclusive_max))})")
        text += f".filter(lambda d: {' and '.join(checks)})"
    return text
