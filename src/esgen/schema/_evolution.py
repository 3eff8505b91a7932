"""How an event changes from one version to the next, and whether old payloads can follow.

One analysis serves two readers: the code generator derives an upcaster for every step
that is derivable (and asks the user for one otherwise), and `esgen compat` reports
what a step does and whether stored events stay readable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from esgen.schema._model import (
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
)
from esgen.schema._names import snake

__all__ = [
    "ChangeKind",
    "FieldChange",
    "TypeRelation",
    "VersionStep",
    "analyse_step",
    "constraints_narrowed",
    "type_relation",
]

Lookup = Callable[[str], UserType | None]


class ChangeKind(StrEnum):
    ADDED = "added"  # a new field
    REMOVED = "removed"  # a field that is gone
    RENAMED = "renamed"  # renamed_from names the field of the previous version
    TYPE_CHANGED = "type_changed"  # same field, another type (widened or not)
    CONSTRAINTS_CHANGED = "constraints_changed"
    DEFAULT_CHANGED = "default_changed"


class TypeRelation(StrEnum):
    SAME = "same"
    WIDENED = "widened"  # every old value is a valid new value
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True, slots=True)
class FieldChange:
    kind: ChangeKind
    name: str  # the field's name in the newer version (in the older one if removed)
    old: Field | None
    new: Field | None
    derivable: bool  # can an upcaster be derived for this change alone?
    summary: str  # what changed, for people: "type int -> decimal (widened)"


@dataclass(frozen=True, slots=True)
class VersionStep:
    """The step from `old` to `new` (new.version == old.version + 1)."""

    event: str
    old: EventVersion
    new: EventVersion
    changes: tuple[FieldChange, ...]

    @property
    def derivable(self) -> bool:
        """True when an upcaster can be generated from the schema alone."""
        return all(c.derivable for c in self.changes)

    @property
    def manual(self) -> bool:
        """True when a hand-written upcaster is needed (or was asked for)."""
        return self.new.upcast == "manual" or not self.derivable

    @property
    def manual_module(self) -> str:
        """The module (under `<context>.domain.upcasting`) of a hand-written upcaster:
        the generator scaffolds it there, and the docs point at it."""
        return f"{snake(self.event)}_v{self.old.version}"

    @property
    def blocking(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if not c.derivable)


def type_relation(old: TypeExpr, new: TypeExpr, lookup: Lookup) -> TypeRelation:
    """Whether every value of `old` is also a value of `new`."""
    if old == new:
        return TypeRelation.SAME
    if isinstance(new, NullableType):
        inner = old.inner if isinstance(old, NullableType) else old
        relation = type_relation(inner, new.inner, lookup)
        return (
            TypeRelation.INCOMPATIBLE
            if relation is TypeRelation.INCOMPATIBLE
            else (TypeRelation.WIDENED)
        )
    if isinstance(old, NullableType):
        return TypeRelation.INCOMPATIBLE  # stored nulls would not fit
    if isinstance(old, ScalarType) and isinstance(new, ScalarType):
        widening = {(ScalarKind.INT, ScalarKind.FLOAT), (ScalarKind.INT, ScalarKind.DECIMAL)}
        if (old.kind, new.kind) in widening:
            return TypeRelation.WIDENED
        return TypeRelation.INCOMPATIBLE
    if isinstance(old, ListType) and isinstance(new, ListType):
        return _container(type_relation(old.item, new.item, lookup))
    if isinstance(old, DictType) and isinstance(new, DictType):
        return _container(type_relation(old.value, new.value, lookup))
    if isinstance(old, NamedType) and isinstance(new, NamedType):
        before, after = lookup(old.name), lookup(new.name)
        # A different enum that still has every old value reads old events.
        if (
            isinstance(before, EnumType)
            and isinstance(after, EnumType)
            and set(before.values) <= set(after.values)
        ):
            return TypeRelation.WIDENED
    return TypeRelation.INCOMPATIBLE


def _container(relation: TypeRelation) -> TypeRelation:
    return TypeRelation.WIDENED if relation is TypeRelation.SAME else relation


def constraints_narrowed(old: Constraints, new: Constraints) -> list[str]:
    """The constraints of `new` that an old, valid value might break."""
    narrowed: list[str] = []

    def tighter(
        name: str,
        before: int | Decimal | None,
        after: int | Decimal | None,
        bigger_is_tighter: bool,
    ) -> None:
        if after is None:
            return
        if before is None or (after > before if bigger_is_tighter else after < before):
            narrowed.append(f"{name} {before if before is not None else 'unset'} -> {after}")

    tighter("min", old.min, new.min, True)
    tighter("exclusive_min", old.exclusive_min, new.exclusive_min, True)
    tighter("min_length", old.min_length, new.min_length, True)
    tighter("max", old.max, new.max, False)
    tighter("exclusive_max", old.exclusive_max, new.exclusive_max, False)
    tighter("max_length", old.max_length, new.max_length, False)
    tighter("max_digits", old.max_digits, new.max_digits, False)
    tighter("decimal_places", old.decimal_places, new.decimal_places, False)
    if new.pattern is not None and new.pattern != old.pattern:
        narrowed.append(f"pattern {old.pattern!r} -> {new.pattern!r}")
    return narrowed


def analyse_step(event: str, old: EventVersion, new: EventVersion, lookup: Lookup) -> VersionStep:
    changes: list[FieldChange] = []
    renamed_sources = {f.renamed_from for f in new.fields if f.renamed_from}
    for field in new.fields:
        source_name = field.renamed_from or field.name
        before = old.field_named(source_name)
        if before is None:
            derivable = field.has_default
            why = "" if derivable else " without a default"
            changes.append(
                FieldChange(
                    ChangeKind.ADDED,
                    field.name,
                    None,
                    field,
                    derivable,
                    f"field {field.name!r} ({field.type}) added{why}",
                )
            )
            continue
        if field.renamed_from:
            changes.append(
                FieldChange(
                    ChangeKind.RENAMED,
                    field.name,
                    before,
                    field,
                    True,
                    f"field {before.name!r} renamed to {field.name!r}",
                )
            )
        changes.extend(_compare(field, before, lookup))
    for field in old.fields:
        if new.field_named(field.name) is None and field.name not in renamed_sources:
            changes.append(
                FieldChange(
                    ChangeKind.REMOVED,
                    field.name,
                    field,
                    None,
                    True,
                    f"field {field.name!r} removed",
                )
            )
    return VersionStep(event, old, new, tuple(changes))


def _compare(new: Field, old: Field, lookup: Lookup) -> list[FieldChange]:
    changes: list[FieldChange] = []
    relation = type_relation(old.type, new.type, lookup)
    if relation is not TypeRelation.SAME:
        widened = relation is TypeRelation.WIDENED
        how = "widened" if widened else "not every old value fits"
        changes.append(
            FieldChange(
                ChangeKind.TYPE_CHANGED,
                new.name,
                old,
                new,
                widened,
                f"field {new.name!r}: type {old.type} -> {new.type} ({how})",
            )
        )
    narrowed = constraints_narrowed(old.constraints, new.constraints)
    if old.constraints != new.constraints:
        summary = "narrowed: " + ", ".join(narrowed) if narrowed else "relaxed"
        changes.append(
            FieldChange(
                ChangeKind.CONSTRAINTS_CHANGED,
                new.name,
                old,
                new,
                not narrowed,
                f"field {new.name!r}: constraints {summary}",
            )
        )
    if (old.has_default, old.default) != (new.has_default, new.default):
        changes.append(
            FieldChange(
                ChangeKind.DEFAULT_CHANGED,
                new.name,
                old,
                new,
                True,
                f"field {new.name!r}: default changed",
            )
        )
    return changes
