"""Typed queries on read models: conditions, ordering and paging built from typed fields.

A generated projection module declares, beside its row type, a `<Name>Fields` class
whose attributes are `Field[Row, T]` (one per queryable field) and a `<Name>Query`
(a `ReadModel[Row, Key]`) that runs them against any store:

    balances = AccountBalancesQuery(store)
    F = AccountBalancesFields
    top = balances.list(F.status.eq("open"), order_by=F.balance.desc(), limit=10)

Conditions and orders carry the row type, so a condition on one read model cannot be
passed to another's query. Values are validated as the field's type and turned into
the column's stored form before a backend sees them, so every backend compares the
same values; each backend stores them so that its order is the Python order of the
field's type (see `TableBackend`).

Semantics, the same on every backend:
- `eq(None)` is `is_null()`; `ne(v)` keeps rows whose value is null (None != v in Python).
- `lt`/`le`/`gt`/`ge` never match a null value.
- Ordering puts nulls after every value ascending, before every value descending (None
  sorts as if greater than any value); the key (ascending) always breaks ties, so paging
  with `offset` is stable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal

from pydantic import BaseModel
from typing_extensions import TypeVar

__all__ = ["Condition", "Field", "Op", "Order"]

RowT = TypeVar("RowT", bound=BaseModel)
ValueT = TypeVar("ValueT")

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null", "not_null"]


@dataclass(frozen=True, slots=True)
class Condition(Generic[RowT]):
    """One condition on a read model's column; a query keeps rows matching all of them.

    `value` is the Python value as given (a tuple of values for "in"); `stored_condition`
    turns it into the column's stored form.
    """

    column: str
    op: Op
    value: Any = None


@dataclass(frozen=True, slots=True)
class Order(Generic[RowT]):
    column: str
    descending: bool = False


class Field(Generic[RowT, ValueT]):
    """A queryable field of a read model's row: builds conditions and orders on it."""

    __slots__ = ("column",)

    def __init__(self, column: str) -> None:
        self.column = column

    def __repr__(self) -> str:
        return f"Field({self.column!r})"

    def eq(self, value: ValueT) -> Condition[RowT]:
        return (
            Condition(self.column, "is_null")
            if value is None
            else Condition(self.column, "eq", value)
        )

    def ne(self, value: ValueT) -> Condition[RowT]:
        return (
            Condition(self.column, "not_null")
            if value is None
            else Condition(self.column, "ne", value)
        )

    def lt(self, value: ValueT) -> Condition[RowT]:
        return Condition(self.column, "lt", _not_none(self.column, "lt", value))

    def le(self, value: ValueT) -> Condition[RowT]:
        return Condition(self.column, "le", _not_none(self.column, "le", value))

    def gt(self, value: ValueT) -> Condition[RowT]:
        return Condition(self.column, "gt", _not_none(self.column, "gt", value))

    def ge(self, value: ValueT) -> Condition[RowT]:
        return Condition(self.column, "ge", _not_none(self.column, "ge", value))

    def between(self, low: ValueT, high: ValueT) -> tuple[Condition[RowT], Condition[RowT]]:
        """low <= value <= high, as two conditions: `query.list(*F.x.between(a, b))`."""
        return self.ge(low), self.le(high)

    def in_(self, values: Iterable[ValueT]) -> Condition[RowT]:
        return Condition(self.column, "in", tuple(values))

    def is_null(self) -> Condition[RowT]:
        return Condition(self.column, "is_null")

    def is_not_null(self) -> Condition[RowT]:
        return Condition(self.column, "not_null")

    def asc(self) -> Order[RowT]:
        return Order(self.column, descending=False)

    def desc(self) -> Order[RowT]:
        return Order(self.column, descending=True)


def _not_none(column: str, op: str, value: object) -> object:
    if value is None:
        raise ValueError(f"{column}: {op}(None) matches nothing; use is_null() or is_not_null()")
    return value
