"""How an event changes from one version to the next, and whether old payloads can follow.

One analysis serves two readers: the code generator derives an upcaster for every step
that is derivable (and asks the user for one otherwise), and `esgen compat` reports
what a step does and whether stored events stay readable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from esgen.schema._diagnostics import Diagnostic
from esgen.schema._model import (
    Constraints,
    DictType,
    EnumType,
    EventVersion,
    Field,
    JsonSchemaType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    SchemaSet,
    TypeExpr,
    UserType,
    ValueType,
)
from esgen.schema._names import snake
from esgen.schema._patterns import matches, pattern_problem
from esgen.schema._values import same_default

__all__ = [
    "ChangeKind",
    "Conversion",
    "DictConversion",
    "FieldChange",
    "ListConversion",
    "NullableConversion",
    "RecordConversion",
    "Relation",
    "StepProblem",
    "TypeRelation",
    "VersionStep",
    "analyse_step",
    "constraints_narrowed",
    "field_constraints_narrowed",
    "type_relation",
    "upcast_diagnostics",
    "values_refused",
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
    SAME = "same"  # the same values, if perhaps under another name (a renamed value type)
    WIDENED = "widened"  # every old value is a valid new value, as it is
    CONVERTED = "converted"  # every old value becomes a valid new value by a derived conversion
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True, slots=True)
class RecordConversion:
    """Stored data of a value type to its new shape: fields dropped, defaults put in place
    of added fields, and fields whose own values need converting."""

    target: str  # the new value type, for names in generated code
    dropped: tuple[str, ...]
    defaults: tuple[tuple[str, Any], ...]  # (field, default as a checked Python value)
    fields: tuple[tuple[str, Conversion], ...]


@dataclass(frozen=True, slots=True)
class ListConversion:
    item: Conversion


@dataclass(frozen=True, slots=True)
class DictConversion:
    value: Conversion


@dataclass(frozen=True, slots=True)
class NullableConversion:
    inner: Conversion


Conversion = RecordConversion | ListConversion | DictConversion | NullableConversion


@dataclass(frozen=True, slots=True)
class Relation:
    """What becomes of stored values of one type when they are read as another."""

    kind: TypeRelation
    conversion: Conversion | None = None  # set when kind is CONVERTED
    why: str = ""  # what does not fit, when kind is INCOMPATIBLE


_SAME = Relation(TypeRelation.SAME)
_WIDENED = Relation(TypeRelation.WIDENED)


@dataclass(frozen=True, slots=True)
class FieldChange:
    kind: ChangeKind
    name: str  # the field's name in the newer version (in the older one if removed)
    old: Field | None
    new: Field | None
    derivable: bool  # can an upcaster be derived for this change alone?
    summary: str  # what changed, for people: "type int -> decimal (widened)"
    conversion: Conversion | None = None  # TYPE_CHANGED whose stored values need converting
    detail: str = ""  # TYPE_CHANGED that does not fit: where, inside value types


@dataclass(frozen=True, slots=True)
class StepProblem:
    """Why a step without `upcast: manual` cannot be trusted to a derived upcaster.

    The one statement of the rule: `esgen generate` refuses the schema with it, and
    `esgen compat` reports it under the same code, so the two never disagree.
    """

    code: str  # the compat rule: ES201..ES204
    change: FieldChange  # the field of the new version at fault
    message: str
    fix: str
    replaced: FieldChange | None = None  # ES204: the removed field it may be a rename of


@dataclass(frozen=True, slots=True)
class VersionStep:
    """The step from `old` to `new` (new.version == old.version + 1)."""

    event: str
    old: EventVersion
    new: EventVersion
    changes: tuple[FieldChange, ...]
    # (removed, added) pairs where the added field could hold the removed one's values and
    # the schema says neither `renamed_from` nor `dropped`: a rename would lose them.
    suspected_renames: tuple[tuple[FieldChange, FieldChange], ...] = ()

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

    def problems(self) -> tuple[StepProblem, ...]:
        """What stops a derived upcaster from reading every stored event of the previous
        version without loss; nothing when the version asks for a hand-written one."""
        if self.new.upcast == "manual":
            return ()
        before, k = self.old.version, self.new.version
        manual = f"or set `upcast: manual` on version {k} and write the upcaster from {before}"
        problems: list[StepProblem] = []
        suspects = {id(added): gone for gone, added in self.suspected_renames}
        for change in self.changes:
            taker = self.new.field_named(change.name)
            if (
                change.kind is ChangeKind.REMOVED
                and taker is not None
                and change.name not in self.new.dropped
            ):
                mover = next(c for c in self.changes if c.new is taker)
                problems.append(
                    StepProblem(
                        "ES204",
                        mover,
                        f"renamed from {taker.renamed_from!r} onto {change.name!r}, which "
                        f"version {before} has too: its stored values are overwritten",
                        f"if the old {change.name!r} values are to go, write `dropped: "
                        f"[{change.name}]` on version {k}; otherwise give the renamed field "
                        "another name, " + manual,
                        change,
                    )
                )
                continue
            gone = suspects.get(id(change))
            if gone is not None:
                assert gone.old is not None and change.new is not None
                lost = (
                    "and no upcaster can be derived"
                    if not change.new.has_default
                    else "and the derived upcaster would put "
                    + ("None" if change.new.default is None else "the default")
                    + " in their place"
                )
                problems.append(
                    StepProblem(
                        "ES204",
                        change,
                        f"replaces {gone.name!r}, whose values it could hold: if this is a "
                        f"rename, stored {gone.name!r} values are lost " + lost,
                        f"if {change.name!r} is {gone.name!r} renamed, write `renamed_from: "
                        f"{gone.name}` on it; if the old values are to be dropped, write "
                        f"`dropped: [{gone.name}]` on version {k}; " + manual,
                        gone,
                    )
                )
            elif change.derivable:
                continue
            elif change.kind is ChangeKind.ADDED:
                assert change.new is not None
                problems.append(
                    StepProblem(
                        "ES201",
                        change,
                        f"new field ({change.new.type}) without a default: stored "
                        f"version-{before} events have no value for it, so no upcaster can "
                        "be derived",
                        f"give {change.name!r} a default or make it optional, " + manual,
                    )
                )
            elif change.kind is ChangeKind.TYPE_CHANGED:
                assert change.old is not None and change.new is not None
                why = change.detail
                problems.append(
                    StepProblem(
                        "ES202",
                        change,
                        f"type changed from {change.old.type} to {change.new.type}: not every "
                        f"stored version-{before} value fits" + (f" ({why})" if why else ""),
                        "keep the type or widen it (int -> float or decimal, T -> T | None, an "
                        "enum with more values, a value type with more optional fields), "
                        + manual
                        + " to convert the values",
                    )
                )
            elif change.kind is ChangeKind.CONSTRAINTS_CHANGED:
                problems.append(
                    StepProblem(
                        "ES203",
                        change,
                        f"{change.summary.split(': ', 1)[-1]}: stored version-{before} "
                        "values may break them",
                        "keep the constraints (validate new input in the command instead), "
                        + manual
                        + " to repair old values",
                    )
                )
        return tuple(problems)


@dataclass
class _Walk:
    """Value types being compared further up (a recursive type reaches itself again), and
    those that did: converting one of them would need a conversion without end."""

    open: set[tuple[str, str]] = dataclass_field(default_factory=set)
    looped: set[tuple[str, str]] = dataclass_field(default_factory=set)


def type_relation(old: TypeExpr, new: TypeExpr, lookup: Lookup) -> Relation:
    """What stored values of `old` become when read as `new`, compared by shape: a value
    type under another name with the same fields is the same type, one with more optional
    fields is a conversion esgen derives."""
    return _relation(old, new, lookup, _Walk())


def _relation(old: TypeExpr, new: TypeExpr, lookup: Lookup, walk: _Walk) -> Relation:
    if old == new:
        return _SAME
    if isinstance(new, NullableType):
        inner = old.inner if isinstance(old, NullableType) else old
        found = _relation(inner, new.inner, lookup, walk)
        if found.kind is TypeRelation.CONVERTED:
            assert found.conversion is not None
            return Relation(TypeRelation.CONVERTED, NullableConversion(found.conversion))
        if found.kind is TypeRelation.SAME and isinstance(old, NullableType):
            return _SAME
        return found if found.kind is TypeRelation.INCOMPATIBLE else _WIDENED
    if isinstance(old, NullableType):
        return Relation(TypeRelation.INCOMPATIBLE, why="stored values may be null")
    if isinstance(old, ListType) and isinstance(new, ListType):
        return _container(_relation(old.item, new.item, lookup, walk), ListConversion)
    if isinstance(old, DictType) and isinstance(new, DictType):
        return _container(_relation(old.value, new.value, lookup, walk), DictConversion)
    before = lookup(old.name) if isinstance(old, NamedType) else None
    after = lookup(new.name) if isinstance(new, NamedType) else None
    if isinstance(old, ScalarType) and isinstance(new, ScalarType):
        return _WIDENED if (old.kind, new.kind) in _WIDENING else _refused(old, new)
    if isinstance(before, EnumType) and isinstance(new, ScalarType):
        # An enum is stored as its value's text: every value is a valid str.
        return _WIDENED if new.kind is ScalarKind.STR else _refused(old, new)
    if isinstance(before, EnumType) and isinstance(after, EnumType):
        if set(before.values) == set(after.values):
            return _SAME
        if set(before.values) <= set(after.values):
            return _WIDENED
        missing = ", ".join(repr(v) for v in before.values if v not in after.values)
        return Relation(TypeRelation.INCOMPATIBLE, why=f"{new} lacks {missing}")
    if isinstance(before, ValueType) and isinstance(after, ValueType):
        return _record_relation(before, after, lookup, walk)
    if isinstance(before, JsonSchemaType) and isinstance(after, JsonSchemaType):
        return _SAME if _json_same(before.schema_text, after.schema_text) else _refused(old, new)
    return _refused(old, new)


def _refused(old: TypeExpr, new: TypeExpr) -> Relation:
    return Relation(TypeRelation.INCOMPATIBLE, why=f"{old} -> {new}")


_WIDENING = {(ScalarKind.INT, ScalarKind.FLOAT), (ScalarKind.INT, ScalarKind.DECIMAL)}


def _json_same(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b


def _container(found: Relation, wrap: Callable[[Conversion], Conversion]) -> Relation:
    if found.kind is TypeRelation.CONVERTED:
        assert found.conversion is not None
        return Relation(TypeRelation.CONVERTED, wrap(found.conversion))
    return found


def _record_relation(old: ValueType, new: ValueType, lookup: Lookup, walk: _Walk) -> Relation:
    pair = (old.name, new.name)
    if pair in walk.open:
        walk.looped.add(pair)
        return _SAME  # decided where the comparison of this pair started
    walk.open.add(pair)
    try:
        found = _record_fields(old, new, lookup, walk)
    finally:
        walk.open.discard(pair)
    if found.kind is TypeRelation.CONVERTED and pair in walk.looped:
        why = f"{new.name} contains itself, so its values cannot be converted by a derived step"
        return Relation(TypeRelation.INCOMPATIBLE, why=why)
    return found


def _record_fields(old: ValueType, new: ValueType, lookup: Lookup, walk: _Walk) -> Relation:
    def refused(name: str, what: str) -> Relation:
        return Relation(TypeRelation.INCOMPATIBLE, why=f"in {new.name}, field {name!r} {what}")

    before = {f.name: f for f in old.fields}
    after = {f.name: f for f in new.fields}
    dropped = tuple(name for name in before if name not in after)
    added = [f for f in new.fields if f.name not in before]
    defaults: list[tuple[str, Any]] = []
    converted: list[tuple[str, Conversion]] = []
    widened = False
    for f in added:
        if not f.has_default:
            return refused(f.name, "was added without a default")
        # A removed field whose values the new one could hold reads as a rename, which
        # a value type cannot declare: the upcaster has to say what becomes of them.
        for gone in dropped:
            if _relation(before[gone].type, f.type, lookup, _Walk()).kind is not (
                TypeRelation.INCOMPATIBLE
            ):
                return refused(f.name, f"replaces {gone!r}: a rename needs a hand-written upcaster")
        defaults.append((f.name, f.default))
    if before and not any(name in after for name in before):
        # Every field of the old type gone: the values would be replaced, not converted.
        return Relation(TypeRelation.INCOMPATIBLE, why=f"{new.name} keeps no field of {old.name}")
    for name, was in before.items():
        now = after.get(name)
        if now is None:
            continue
        if was.has_default and (not now.has_default or not same_default(now.default, was.default)):
            # Value types grow in place, so a stored value may lack a field that has a
            # default: it meant the old default, and keeps meaning it.
            defaults.append((name, was.default))
        found = _relation(was.type, now.type, lookup, walk)
        if found.kind is TypeRelation.INCOMPATIBLE:
            return refused(name, found.why or f"{was.type} -> {now.type}")
        narrowed = field_constraints_narrowed(was, now, lookup)
        if narrowed:
            return refused(name, "constraints narrowed: " + ", ".join(narrowed))
        if found.kind is TypeRelation.CONVERTED:
            assert found.conversion is not None
            converted.append((name, found.conversion))
        elif found.kind is TypeRelation.WIDENED or was.constraints != now.constraints:
            widened = True
    if dropped or defaults or converted:
        return Relation(
            TypeRelation.CONVERTED,
            RecordConversion(new.name, dropped, tuple(defaults), tuple(converted)),
        )
    return _WIDENED if widened else _SAME


def field_constraints_narrowed(old: Field, new: Field, lookup: Lookup) -> list[str]:
    """The constraints of `new` that a stored value of `old` might break. An enum read as a
    str is checked value by value, since the enum has no constraints of its own."""
    if (values := _enum_as_str(old, new, lookup)) is not None:
        return values_refused(values, new.constraints)
    return constraints_narrowed(old.constraints, new.constraints)


def _enum_as_str(old: Field, new: Field, lookup: Lookup) -> tuple[str, ...] | None:
    """The values of an enum field read as a str field (either may be nullable)."""
    before = old.type.inner if isinstance(old.type, NullableType) else old.type
    after = new.type.inner if isinstance(new.type, NullableType) else new.type
    target = lookup(before.name) if isinstance(before, NamedType) else None
    if isinstance(target, EnumType) and isinstance(after, ScalarType):
        return target.values
    return None


def values_refused(values: tuple[str, ...], c: Constraints) -> list[str]:
    refused: list[str] = []
    if c.min_length is not None and any(len(v) < c.min_length for v in values):
        refused.append(f"min_length unset -> {c.min_length}")
    if c.max_length is not None and any(len(v) > c.max_length for v in values):
        refused.append(f"max_length unset -> {c.max_length}")
    if c.pattern is not None:
        # Through pydantic's own linear-time engine: what the stored values will meet.
        usable = pattern_problem(c.pattern) is None
        if not usable or not all(matches(c.pattern, v) for v in values):
            refused.append(f"pattern unset -> {c.pattern!r}")
    return refused


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
    if old.allow_nan and not new.allow_nan:
        # Stored NaN or infinities would no longer validate: the stream stops loading.
        narrowed.append("allow_nan true -> unset")
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
        if field.name in renamed_sources:
            continue
        # Gone, or its name taken by a field renamed from another one: its values go.
        taker = new.field_named(field.name)
        if taker is None or taker.renamed_from not in (None, field.name):
            dropped = field.name in new.dropped
            changes.append(
                FieldChange(
                    ChangeKind.REMOVED,
                    field.name,
                    field,
                    None,
                    True,
                    f"field {field.name!r} " + ("dropped" if dropped else "removed"),
                )
            )
    return VersionStep(event, old, new, tuple(changes), _suspected_renames(changes, new, lookup))


def _suspected_renames(
    changes: list[FieldChange], new: EventVersion, lookup: Lookup
) -> tuple[tuple[FieldChange, FieldChange], ...]:
    """Pair each removed field (not declared `dropped`) with an added field that could hold
    its values: the same type first, then any type every old value fits."""
    removed = [
        c
        for c in changes
        if c.kind is ChangeKind.REMOVED
        and c.name not in new.dropped
        and new.field_named(c.name) is None  # a name taken by a rename: problems() says so
    ]
    added = [c for c in changes if c.kind is ChangeKind.ADDED]
    pairs: list[tuple[FieldChange, FieldChange]] = []
    taken: set[int] = set()
    for gone in removed:
        assert gone.old is not None
        candidates = [a for a in added if id(a) not in taken]
        exact = [a for a in candidates if a.new is not None and a.new.type == gone.old.type]
        fitting = exact or [
            a
            for a in candidates
            if a.new is not None
            and type_relation(gone.old.type, a.new.type, lookup).kind
            is not TypeRelation.INCOMPATIBLE
        ]
        if fitting:
            taken.add(id(fitting[0]))
            pairs.append((gone, fitting[0]))
    return tuple(pairs)


def _detail(relation: Relation, old: Field, new: Field) -> str:
    """What does not fit, when it is more than the two types already named."""
    same = f"{old.type} -> {new.type}"
    return f": {relation.why}" if relation.why and relation.why != same else ""


def _compare(new: Field, old: Field, lookup: Lookup) -> list[FieldChange]:
    changes: list[FieldChange] = []
    relation = type_relation(old.type, new.type, lookup)
    if relation.kind is not TypeRelation.SAME or old.type != new.type:
        how = {
            TypeRelation.SAME: "the same values",
            TypeRelation.WIDENED: "widened",
            TypeRelation.CONVERTED: "converted",
            TypeRelation.INCOMPATIBLE: "not every old value fits" + _detail(relation, old, new),
        }[relation.kind]
        changes.append(
            FieldChange(
                ChangeKind.TYPE_CHANGED,
                new.name,
                old,
                new,
                relation.kind is not TypeRelation.INCOMPATIBLE,
                f"field {new.name!r}: type {old.type} -> {new.type} ({how})",
                relation.conversion,
                _detail(relation, old, new).removeprefix(": "),
            )
        )
    # A type that does not fit is the finding; its constraints compared with the old
    # type's would only repeat it ("bool -> int, min unset -> 0").
    if relation.kind is not TypeRelation.INCOMPATIBLE and old.constraints != new.constraints:
        narrowed = field_constraints_narrowed(old, new, lookup)
        summary = "narrowed: " + ", ".join(narrowed) if narrowed else "relaxed"
        if not narrowed and _enum_as_str(old, new, lookup) is not None:
            summary = "added, and every value of the enum passes them"
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
    if old.has_default != new.has_default or not same_default(old.default, new.default):
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


def upcast_diagnostics(schema: SchemaSet) -> list[Diagnostic]:
    """Every step problem of every event whose mode promises that new code reads stored
    events (backward, full): what `esgen generate` refuses, worded as `esgen compat`
    reports it under the same code."""
    found: list[Diagnostic] = []
    for context in schema.contexts:
        for event in context.events:
            if event.compatibility not in ("backward", "full"):
                continue
            for old, new in zip(event.versions, event.versions[1:], strict=False):
                step = analyse_step(event.name, old, new, context.user_type)
                for problem in step.problems():
                    change = problem.change
                    field = change.new or change.old
                    assert field is not None
                    at = field.type_location if problem.code == "ES202" else field.location
                    found.append(
                        Diagnostic(
                            at,
                            problem.code,
                            f"{event.name} version {new.version}, field {change.name!r}: "
                            f"{problem.message}; {problem.fix}",
                        )
                    )
    return found
