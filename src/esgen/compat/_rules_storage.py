"""Storage rules: every published event version stays readable and means what it meant.

Stored events live forever. A published version (one the other side already had) must not
disappear, move or change in place, and that includes the value types and enums it uses:
they are not versioned, so changing one rewrites every published version that refers to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from esgen.compat._compare import Comparison, EventPair, version_record
from esgen.compat._findings import Category, Hit, Kind
from esgen.compat._fits import misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._shapes import field_signature, json_digest, record_of, referenced_types
from esgen.schema import (
    Context,
    EnumType,
    EventVersion,
    Field,
    JsonSchemaType,
    Location,
    UserType,
    ValueType,
    named_types,
)

__all__ = ["RULES"]


@rule(
    "ES101",
    "EVENT_NO_DELETE",
    Category.STORAGE,
    "an event type with published versions is never deleted",
)
def event_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if pair.old is None or pair.new is not None:
            continue
        count = len(pair.old.versions)
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"deleted, but stored events of its {count} published version(s) remain and "
            "could no longer be read",
            "keep the event (say in its description that it is no longer emitted) and remove "
            "it from the commands' `emits`; a renamed event is a new event, since stored "
            "events carry the old name",
            pair.old.location,
            pair.nearest_new(),
        )


@rule(
    "ES102",
    "EVENT_VERSION_NO_DELETE",
    Category.STORAGE,
    "a published version of an event is never deleted",
)
def event_version_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if pair.old is None or pair.new is None:
            continue
        for old in pair.old.versions:
            if pair.new_version(old.version) is None:
                yield Hit(
                    pair.context,
                    Kind.EVENT,
                    pair.name,
                    f"published version deleted, but stored version-{old.version} events "
                    "remain and could no longer be read",
                    f"restore version {old.version} as it was: versions are only ever added",
                    old.location,
                    pair.nearest_new(),
                    version=old.version,
                )


def _in_place_fix(pair: EventPair, number: int) -> str:
    assert pair.old is not None and pair.new is not None
    old_latest, new_latest = pair.old.latest.version, pair.new.latest.version
    if number == old_latest == new_latest:
        return (
            f"the shape changed without a new version: restore version {number} as published "
            f"and add version {number + 1} with the new shape (esgen derives the upcaster "
            "when it can, or set `upcast: manual`)"
        )
    if number == old_latest:
        return (
            f"restore version {number} as published; the change belongs in version "
            f"{new_latest}, which is new"
        )
    return f"restore version {number} as published: stored events were written with it"


def _stored_still_read(
    pair: EventPair, old: EventVersion, new: EventVersion, path: tuple[str, ...]
) -> str:
    """Whether stored events of `old` still validate as `new` where `path` changed."""
    assert pair.old_ctx is not None and pair.new_ctx is not None
    problems = misfits(
        version_record(old, pair.old_ctx),
        version_record(new, pair.new_ctx),
        tolerant=False,
        may_omit=False,
    )
    if any(m.path[: len(path)] == path for m in problems):
        return f"stored version-{old.version} events may no longer decode"
    return (
        f"stored version-{old.version} events still decode, but the version no longer says "
        "what it said when they were written"
    )


@rule(
    "ES103",
    "EVENT_VERSION_SAME",
    Category.STORAGE,
    "a published event version keeps its fields, types, constraints and defaults",
)
def event_version_same(c: Comparison) -> Iterator[Hit]:
    for pair, old, new in c.changed_versions:
        assert pair.old_ctx is not None and pair.new_ctx is not None
        before = {f.name: f for f in old.fields}
        after = {f.name: f for f in new.fields}
        old_shape = version_record(old, pair.old_ctx)
        new_shape = version_record(new, pair.new_ctx)
        reported = False
        for name in sorted(before.keys() | after.keys()):
            was, now = before.get(name), after.get(name)
            if was is not None and now is not None:
                if old_shape.slot(name) == new_shape.slot(name):
                    continue  # the same shape, if perhaps under a renamed value type
                old_sig = field_signature(was, pair.old_ctx.user_type)
                new_sig = field_signature(now, pair.new_ctx.user_type)
                if old_sig == new_sig:
                    continue  # the change is inside a named type it uses: ES104's
                what = f"{old_sig} -> {new_sig}"
            elif was is not None:
                what = f"the field ({field_signature(was, pair.old_ctx.user_type)}) was removed"
            else:
                assert now is not None
                what = f"the field ({field_signature(now, pair.new_ctx.user_type)}) was added"
            reported = True
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"published version changed in place: {what}; "
                + _stored_still_read(pair, old, new, (name,)),
                _in_place_fix(pair, old.version),
                was.location if was else old.location,
                now.location if now else new.location,
                version=old.version,
                field=name,
            )
        if not reported and not _type_changes_of(pair, old, new):
            # The fingerprints differ but nothing above shows why: say so rather than stay quiet.
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                "published version changed in place",
                _in_place_fix(pair, old.version),
                old.location,
                new.location,
                version=old.version,
            )


def _kind(t: UserType) -> str:
    return {ValueType: "value type", EnumType: "enum", JsonSchemaType: "JSON Schema type"}[type(t)]


# (member or None, what changed, old location, new location)
TypeChange = tuple[str | None, str, Location, Location]


def type_changes(name: str, old_ctx: Context, new_ctx: Context) -> list[TypeChange]:
    """How a named type differs between the sides, member by member."""
    a, b = old_ctx.user_type(name), new_ctx.user_type(name)
    if a is None or b is None:
        return []  # a renamed type shows as a changed field type where it is used
    if type(a) is not type(b):
        return [(None, f"it changed from a {_kind(a)} to a {_kind(b)}", a.location, b.location)]
    if isinstance(a, ValueType) and isinstance(b, ValueType):
        return _member_changes(a, b, old_ctx, new_ctx)
    if isinstance(a, EnumType) and isinstance(b, EnumType):
        removed = [v for v in a.values if v not in b.values]
        added = [v for v in b.values if v not in a.values]
        parts = []
        if removed:
            parts.append("value(s) " + ", ".join(map(repr, removed)) + " removed")
        if added:
            parts.append("value(s) " + ", ".join(map(repr, added)) + " added")
        return [(None, "; ".join(parts), a.location, b.location)] if parts else []
    if (
        isinstance(a, JsonSchemaType)
        and isinstance(b, JsonSchemaType)
        and json_digest(a.schema_text) != json_digest(b.schema_text)
    ):
        return [(None, f"its JSON Schema ({b.schema_path.name}) changed", a.location, b.location)]
    return []


def _member_changes(
    a: ValueType, b: ValueType, old_ctx: Context, new_ctx: Context
) -> list[TypeChange]:
    before = {f.name: f for f in a.fields}
    after = {f.name: f for f in b.fields}
    changes: list[TypeChange] = []
    for member in sorted(before.keys() | after.keys()):
        was, now = before.get(member), after.get(member)
        if was is not None and now is not None:
            same_shape = record_of([was], old_ctx.user_type, a.name) == record_of(
                [now], new_ctx.user_type, b.name
            )
            old_sig = field_signature(was, old_ctx.user_type)
            new_sig = field_signature(now, new_ctx.user_type)
            if old_sig != new_sig and not same_shape:
                changes.append(
                    (
                        member,
                        f"field {member!r}: {old_sig} -> {new_sig}",
                        was.location,
                        now.location,
                    )
                )
        elif was is not None:
            changes.append((member, f"field {member!r} removed", was.location, b.location))
        elif now is not None:
            sig = field_signature(now, new_ctx.user_type)
            changes.append((member, f"field {member!r} ({sig}) added", a.location, now.location))
    return changes


def _type_changes_of(
    pair: EventPair, old: EventVersion, new: EventVersion
) -> list[tuple[str, TypeChange]]:
    assert pair.old_ctx is not None and pair.new_ctx is not None
    before = referenced_types(old.fields, pair.old_ctx.user_type)
    after = set(referenced_types(new.fields, pair.new_ctx.user_type))
    return [
        (name, change)
        for name in before
        if name in after and not _inline_enum(pair.new_ctx.user_type(name))
        for change in type_changes(name, pair.old_ctx, pair.new_ctx)
    ]


def _inline_enum(t: UserType | None) -> bool:
    """Enums declared on a field show their values in the field's own signature (ES103)."""
    return isinstance(t, EnumType) and t.declared_inline


def path_to_type(fields: Sequence[Field], name: str, ctx: Context) -> list[str]:
    """The field names leading from `fields` to a field whose type names `name`."""
    queue: list[tuple[Sequence[Field], list[str]]] = [(fields, [])]
    seen: set[str] = set()
    while queue:
        current, path = queue.pop(0)
        for f in current:
            names = list(named_types(f.type))
            if name in names:
                return [*path, f.name]
            for n in names:
                target = ctx.user_type(n)
                if isinstance(target, ValueType) and n not in seen:
                    seen.add(n)
                    queue.append((target.fields, [*path, f.name]))
    return []


@rule(
    "ES104",
    "EVENT_VERSION_TYPES_SAME",
    Category.STORAGE,
    "value types and enums used by a published event version keep their shape",
)
def event_version_types_same(c: Comparison) -> Iterator[Hit]:
    for pair, old, new in c.changed_versions:
        assert pair.new_ctx is not None
        for type_name, (member, what, was, now) in _type_changes_of(pair, old, new):
            changed = pair.new_ctx.user_type(type_name)
            kind = _kind(changed) if changed is not None else "type"
            via = path_to_type(new.fields, type_name, pair.new_ctx)
            field = ".".join([*via, member] if member else via) or None
            top = via[0] if via else ""
            changed_path = tuple([*via, member] if member else via)
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"published version changed in place through {kind} {type_name}, which "
                f"{top!r} uses: {what}; " + _stored_still_read(pair, old, new, changed_path),
                f"leave {type_name} as it was; declare a new type (say {type_name}V2) and use "
                f"it in a new version of each event that needs it",
                was,
                now,
                version=old.version,
                field=field,
            )


@rule(
    "ES105",
    "EVENT_VERSIONS_CONTIGUOUS",
    Category.STORAGE,
    "event versions are numbered 1..N, without gaps",
)
def event_versions_contiguous(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if pair.new is None:
            continue
        numbers = [v.version for v in pair.new.versions]
        expected = list(range(1, len(numbers) + 1))
        if numbers == expected:
            continue
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        found = ", ".join(map(str, numbers))
        gap = next(v for v, n in zip(pair.new.versions, expected, strict=True) if v.version != n)
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"versions must be numbered 1..N: found {found}"
            + (f" (missing {', '.join(map(str, missing))})" if missing else ""),
            "a version keeps its number forever: restore the missing versions, and number "
            "new ones after the latest",
            pair.old.location if pair.old else None,
            gap.location,
            version=gap.version,
        )


@rule(
    "ES106", "EVENT_SAME_AGGREGATE", Category.STORAGE, "a published event stays with its aggregate"
)
def event_same_aggregate(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if pair.old is None or pair.new is None or pair.old.aggregate == pair.new.aggregate:
            continue
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"moved from aggregate {pair.old.aggregate!r} to {pair.new.aggregate!r}: its "
            f"stored events sit in {pair.old.aggregate!r} streams",
            f"keep {pair.name!r} on {pair.old.aggregate!r} and give {pair.new.aggregate!r} "
            "an event of its own",
            pair.old.location,
            pair.new.location,
        )


RULES: tuple[Rule, ...] = (
    event_no_delete,
    event_version_no_delete,
    event_version_same,
    event_version_types_same,
    event_versions_contiguous,
    event_same_aggregate,
)
