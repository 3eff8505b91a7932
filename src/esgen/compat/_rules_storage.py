"""Storage rules: every published event version stays readable and means what it meant.

Stored events live forever. A published version (one the other side already had) must not
disappear, move or change in place, and that includes the value types and enums it uses:
they are not versioned, so changing one rewrites every published version that refers to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from esgen._suggest import closest
from esgen.compat._compare import Comparison, EventPair, stored_names, version_record
from esgen.compat._findings import Category, Hit, Kind, Severity
from esgen.compat._fits import misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._shapes import (
    Choice,
    MapOf,
    Nullable,
    Record,
    SeqOf,
    Shape,
    Slot,
    field_signature,
    fingerprint,
    json_digest,
    record_of,
    referenced_types,
)
from esgen.schema import (
    Context,
    EnumType,
    Event,
    EventVersion,
    Field,
    JsonSchemaType,
    Location,
    UserType,
    ValueType,
    named_types,
)

__all__ = ["RULES", "enum_values_added", "growth", "rename_at", "widened_in_place"]


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
            "it from the commands' `emits`" + _rename_hint(c, pair),
            pair.old.location,
            pair.nearest_new(),
        )


def _rename_hint(c: Comparison, deleted: EventPair) -> str:
    """How to say that a deleted event was renamed, naming the likely new name: an added
    event of the same aggregate whose versions have the deleted one's shapes."""
    assert deleted.old is not None and deleted.old_ctx is not None
    old = deleted.old
    shapes = [fingerprint(version_record(v, deleted.old_ctx)) for v in old.versions]
    for pair in c.events:
        new = pair.new
        if pair.old is not None or new is None or pair.context != deleted.context:
            continue
        assert pair.new_ctx is not None
        same = [fingerprint(version_record(v, pair.new_ctx)) for v in new.versions]
        if new.aggregate == old.aggregate and same[: len(shapes)] == shapes:
            return (
                f"; if {new.name!r} is {old.name!r} renamed, write `renamed_from: {old.name}` "
                f"on {new.name!r}: it then reads the stored events"
            )
    return (
        f"; to rename it, write `renamed_from: {old.name}` on the event under its new name, "
        "which then reads the stored events"
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


def _stored_read(
    pair: EventPair, old: EventVersion, new: EventVersion, path: tuple[str, ...] = ()
) -> str | None:
    """How stored events of `old` read as `new` at `path` (or anywhere) when not as they
    were: they may fail to decode, or decode to another value (a default removed or
    changed). Value types grow in place, so a stored value may lack a field that has a
    default (may_omit), and it meant that default."""
    assert pair.old_ctx is not None and pair.new_ctx is not None
    before = version_record(old, pair.old_ctx)
    after = version_record(new, pair.new_ctx)

    def under(at: tuple[str, ...]) -> bool:
        return at[: len(path)] == path

    if any(under(m.path) for m in misfits(before, after, tolerant=False, may_omit=True)):
        return f"stored version-{old.version} events may no longer decode"
    if any(under(p) for p in _defaults_changed(before, after, ())):
        return (
            f"stored version-{old.version} events that lack the field would read another "
            "default than the one they meant"
        )
    return None


def _defaults_changed(old: Shape, new: Shape, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    match old, new:
        case Record(before), Record():
            for was in before:
                now = new.slot(was.name)
                if now is None:
                    continue
                at = (*path, was.name)
                if was.default is not None and now.default not in (None, was.default):
                    yield at
                yield from _defaults_changed(was.shape, now.shape, at)
        case SeqOf(a), SeqOf(b):
            yield from _defaults_changed(a, b, path)
        case MapOf(a), MapOf(b):
            yield from _defaults_changed(a, b, path)
        case Nullable(a), Nullable(b):
            yield from _defaults_changed(a, b, path)


def _stored_still_read(
    pair: EventPair, old: EventVersion, new: EventVersion, path: tuple[str, ...]
) -> str:
    return _stored_read(pair, old, new, path) or (
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
                if enum_values_added(old_shape.slot(name), new_shape.slot(name)):
                    continue  # stored values all still valid: ES214's, for forward modes
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
        if (
            not reported
            and not _type_changes_of(pair, old, new)
            and not widened_in_place(pair, old, new)
        ):
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


def enum_values_added(old: Slot | None, new: Slot | None) -> bool:
    """Whether a field differs only by values added to enums it uses (in place)."""
    if (
        old is None
        or new is None
        or (old.required, old.default, old.constraints)
        != (
            new.required,
            new.default,
            new.constraints,
        )
    ):
        return False
    return _only_enums_grew(old.shape, new.shape)


def _only_enums_grew(old: Shape, new: Shape) -> bool:
    match old, new:
        case Choice(before), Choice(after):
            return set(before) <= set(after)
        case SeqOf(a), SeqOf(b):
            return _only_enums_grew(a, b)
        case MapOf(a), MapOf(b):
            return _only_enums_grew(a, b)
        case Nullable(a), Nullable(b):
            return _only_enums_grew(a, b)
        case Record(a), Record(b):
            return [s.name for s in a] == [s.name for s in b] and all(
                enum_values_added(x, y) for x, y in zip(a, b, strict=True)
            )
    return old == new


def widened_in_place(pair: EventPair, old: EventVersion, new: EventVersion) -> bool:
    """Whether a published version changed in place only where the value types and enums it
    uses grew (values added, fields with defaults added, types or constraints widened), and
    its own fields only by enum values: every stored event still decodes to what it held.

    Value types and enums are not versioned, so this is how they evolve; readers of the
    event's previous schema are another matter (ES214, in the forward modes).
    """
    assert pair.old_ctx is not None and pair.new_ctx is not None
    old_shape = version_record(old, pair.old_ctx)
    new_shape = version_record(new, pair.new_ctx)
    if [s.name for s in old_shape.slots] != [s.name for s in new_shape.slots]:
        return False
    before = {f.name: f for f in old.fields}
    after = {f.name: f for f in new.fields}
    for name in before:
        was, now = old_shape.slot(name), new_shape.slot(name)
        if was == now or enum_values_added(was, now):
            continue
        if field_signature(before[name], pair.old_ctx.user_type) != field_signature(
            after[name], pair.new_ctx.user_type
        ):
            return False  # the field itself changed: ES103's
    return _stored_read(pair, old, new) is None


def growth(pair: EventPair, old: EventVersion, new: EventVersion) -> list[str]:
    """What grew in a version `widened_in_place` accepts, for the report's summary."""
    assert pair.old_ctx is not None and pair.new_ctx is not None
    old_shape = version_record(old, pair.old_ctx)
    new_shape = version_record(new, pair.new_ctx)
    notes = [
        f"field {f.name!r}: "
        + field_signature(f, pair.old_ctx.user_type)
        + " -> "
        + field_signature(now, pair.new_ctx.user_type)
        for f in old.fields
        if (now := new.field_named(f.name)) is not None
        and old_shape.slot(f.name) != new_shape.slot(f.name)
        and field_signature(f, pair.old_ctx.user_type)
        != field_signature(now, pair.new_ctx.user_type)
    ]
    for name, (member, what, _, _) in _type_changes_of(pair, old, new):
        changed = pair.new_ctx.user_type(name)
        kind = _kind(changed) if changed is not None else "type"
        note = f"{kind} {name}: {what}"
        if member is None or note not in notes:
            notes.append(note)
    return list(dict.fromkeys(notes))


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
        if widened_in_place(pair, old, new):
            continue
        for type_name, (member, what, was, now) in _type_changes_of(pair, old, new):
            changed = pair.new_ctx.user_type(type_name)
            kind = _kind(changed) if changed is not None else "type"
            via = path_to_type(new.fields, type_name, pair.new_ctx)
            field = ".".join([*via, member] if member else via) or None
            top = via[0] if via else ""
            changed_path = tuple([*via, member] if member else via)
            how = _stored_read(pair, old, new, changed_path)
            if how is None:
                continue  # a widening (a value added to an enum...): see widened_in_place
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"published version changed in place through {kind} {type_name}, which "
                f"{top!r} uses: {what}; {how}",
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
            ("renamed from " + repr(pair.old.name) + " and " if pair.renamed else "")
            + f"moved from aggregate {pair.old.aggregate!r} to {pair.new.aggregate!r}: its "
            f"stored events sit in {pair.old.aggregate!r} streams",
            f"keep {pair.name!r} on {pair.old.aggregate!r} and give {pair.new.aggregate!r} "
            "an event of its own",
            pair.old.location,
            pair.new.location,
        )


def rename_at(event: Event) -> Location:
    """Where an event says what it was renamed from, or the event itself."""
    return event.renamed_from_location or event.location


@rule(
    "ES107",
    "EVENT_RENAME_KNOWN",
    Category.STORAGE,
    "an event's `renamed_from` names an event the other side published",
)
def event_rename_known(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if pair.new is None or not pair.new.renamed_from:
            continue
        published = {
            n for e in (pair.old_ctx.events if pair.old_ctx else ()) for n in stored_names(e)
        }
        # Deleted events of the aggregate: what a mistyped former name most likely meant.
        deleted = {
            p.name: p.old.location
            for p in c.events
            if p.context == pair.context
            and p.new is None
            and p.old is not None
            and p.old.aggregate == pair.new.aggregate
        }
        for former in pair.new.renamed_from:
            if former in published:
                continue
            if pair.old is None and deleted:
                meant = closest(former, deleted)
                yield Hit(
                    pair.context,
                    Kind.EVENT,
                    pair.name,
                    f"renamed from {former!r}, which the other side does not have, while "
                    f"{', '.join(map(repr, deleted))} of the same aggregate "
                    f"{'was' if len(deleted) == 1 else 'were'} deleted"
                    + (f"; did you mean {meant!r}?" if meant else ""),
                    "name the published event in `renamed_from`, exactly as it was spelled: "
                    "its stored events carry that name",
                    deleted[meant] if meant else None,
                    rename_at(pair.new),
                )
                continue
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"renamed from {former!r}, which no event of the other side had as its name: "
                "nothing published under it, so the declaration reads nothing",
                f"remove {former!r} from `renamed_from`, unless events were stored under that "
                "name outside this schema's history",
                None,
                rename_at(pair.new),
                severity=Severity.WARNING,
            )


@rule(
    "ES108",
    "EVENT_RENAME_MERGE_SAME_VERSIONS",
    Category.STORAGE,
    "an event renamed from a second published event reads its versions unchanged",
)
def event_rename_merge(c: Comparison) -> Iterator[Hit]:
    for pair, merged in c.absorbed:
        assert pair.new is not None and pair.old_ctx is not None and pair.new_ctx is not None
        reader = pair.new
        also = f"also renamed from {merged.name!r}, a published event of its own"
        if merged.aggregate != reader.aggregate:
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"also renamed from {merged.name!r}, a published event of aggregate "
                f"{merged.aggregate!r}: its stored events sit in {merged.aggregate!r} "
                f"streams, which {reader.aggregate!r} never reads",
                f"take {merged.name!r} out of `renamed_from` and keep it as an event",
                merged.location,
                rename_at(reader),
            )
        for old in merged.versions:
            new = pair.new_version(old.version)
            if new is None:
                what = f"{pair.name!r} has no version {old.version}"
            elif fingerprint(version_record(old, pair.old_ctx)) != fingerprint(
                version_record(new, pair.new_ctx)
            ):
                what = f"version {old.version} of {pair.name!r} has another shape"
            else:
                continue
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"{also}: its stored version-{old.version} events would be read as version "
                f"{old.version} of {pair.name!r}, but {what}",
                f"take {merged.name!r} out of `renamed_from` and keep it as an event; events of "
                "two types become one only when every stored version reads the same",
                old.location,
                new.location if new is not None else rename_at(reader),
                version=old.version,
            )


@rule(
    "ES109",
    "EVENT_FORMER_NAMES_KEPT",
    Category.STORAGE,
    "an event keeps reading every name its stored events carry, after any rename",
)
def event_former_names_kept(c: Comparison) -> Iterator[Hit]:
    readers = [(p, p.old) for p in c.events if p.old is not None and p.new is not None]
    for pair, old in [*readers, *c.absorbed]:
        assert pair.new is not None and old is not None and pair.new_ctx is not None
        reads = stored_names(pair.new)
        for lost in stored_names(old):
            if lost in reads:
                continue
            was = "its name" if lost == old.name else f"a former name of {old.name!r}"
            now = pair.new_ctx.event(lost)
            taken, rename = "", ""
            if now is not None:
                taken = f"; {lost!r} is now another event, which would read them as its own"
                rename = f"give the new {lost!r} another name and "
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"no longer reads events stored as {lost!r} ({was} on the other side): "
                "they could no longer be read" + taken,
                f"{rename}keep {lost!r} in the `renamed_from` of {pair.name!r}: stored events "
                "keep the name they were written under",
                old.location if lost == old.name else rename_at(old),
                rename_at(pair.new),
            )


RULES: tuple[Rule, ...] = (
    event_no_delete,
    event_version_no_delete,
    event_version_same,
    event_version_types_same,
    event_versions_contiguous,
    event_same_aggregate,
    event_rename_known,
    event_rename_merge,
    event_former_names_kept,
)
