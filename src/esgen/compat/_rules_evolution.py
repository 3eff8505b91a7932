"""Evolution rules: each new version step keeps the event readable in the event's mode.

backward (the default): new code reads every stored event, through the upcaster chain, so
each new step needs an upcaster: one esgen derives from the schema, or a hand-written one
(`upcast: manual`). The derivation is `esgen.schema.analyse_step`, the same analysis the
generator uses, so compat and the generated upcasters never disagree.

forward: consumers still on the previous version read the new version's payloads, ignoring
fields they do not know (tolerant readers). full is both; none checks neither.
"""

from __future__ import annotations

from collections.abc import Iterator

from esgen.compat._compare import Comparison, Step, locate, version_record
from esgen.compat._findings import Category, Hit, Kind, Severity
from esgen.compat._fits import Misfit, MisfitKind, misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._shapes import type_text
from esgen.schema import ChangeKind, FieldChange, Location

__all__ = ["RULES", "suspected_renames"]


def _backward(step: Step) -> bool:
    """Steps whose upcaster esgen must derive: a hand-written one can do anything."""
    return step.mode in ("backward", "full") and step.analysis.new.upcast != "manual"


def _forward(step: Step) -> bool:
    return step.mode in ("forward", "full")


def _previous(c: Comparison, step: Step, path: tuple[str, ...] = ()) -> Location | None:
    """The previous version (or a field of it) on the side compared against."""
    before = step.pair.old_version(step.number - 1)
    if before is None or step.pair.old_ctx is None:
        return None
    return locate(before.fields, path, step.pair.old_ctx) or before.location


def suspected_renames(step: Step) -> list[tuple[FieldChange, FieldChange]]:
    """(removed, added) pairs of one type in one step: a rename without `renamed_from`.

    Only exact type matches, and never an optional field: that says "may be absent",
    which is not how a rename reads.
    """
    lookup = step.ctx.user_type
    removed = [ch for ch in step.analysis.changes if ch.kind is ChangeKind.REMOVED and ch.old]
    added = [ch for ch in step.analysis.changes if ch.kind is ChangeKind.ADDED and ch.new]
    pairs: list[tuple[FieldChange, FieldChange]] = []
    for gone in removed:
        assert gone.old is not None
        for new in added:
            assert new.new is not None
            same = type_text(gone.old.type, lookup) == type_text(new.new.type, lookup)
            if same and not new.new.optional and all(new is not p[1] for p in pairs):
                pairs.append((gone, new))
                break
    return pairs


def _hit(
    step: Step,
    message: str,
    fix: str,
    old: Location | None,
    new: Location | None,
    field: str | None,
    severity: Severity = Severity.ERROR,
) -> Hit:
    return Hit(
        step.pair.context,
        Kind.EVENT,
        step.pair.name,
        message,
        fix,
        old,
        new,
        version=step.number,
        field=field,
        severity=severity,
    )


def _manual_fix(step: Step) -> str:
    return (
        f"or set `upcast: manual` on version {step.number} and write the upcaster "
        f"from {step.number - 1}"
    )


@rule(
    "ES201",
    "UPCAST_FIELD_ADDED_WITH_DEFAULT",
    Category.BACKWARD,
    "a field added in a new version has a default, or the version has a hand-written upcaster",
)
def upcast_field_added_with_default(c: Comparison) -> Iterator[Hit]:
    for step in c.steps:
        if not _backward(step):
            continue
        renamed = {id(added) for _, added in suspected_renames(step)}
        for change in step.analysis.blocking:
            if change.kind is not ChangeKind.ADDED or id(change) in renamed:
                continue
            assert change.new is not None
            yield _hit(
                step,
                f"new field ({change.new.type}) without a default: stored "
                f"version-{step.number - 1} events have no value for it, so no upcaster can "
                "be derived",
                f"give {change.name!r} a default or make it optional, " + _manual_fix(step),
                _previous(c, step),
                change.new.location,
                change.name,
            )


@rule(
    "ES202",
    "UPCAST_TYPE_WIDENED_ONLY",
    Category.BACKWARD,
    "a field's type in a new version accepts every value of the previous one",
)
def upcast_type_widened_only(c: Comparison) -> Iterator[Hit]:
    for step in c.steps:
        if not _backward(step):
            continue
        for change in step.analysis.blocking:
            if change.kind is not ChangeKind.TYPE_CHANGED:
                continue
            assert change.old is not None and change.new is not None
            yield _hit(
                step,
                f"type changed from {change.old.type} to {change.new.type}: not every stored "
                f"version-{step.number - 1} value fits",
                "keep the type or widen it (int -> float or decimal, T -> T | None, an enum "
                "with more values), " + _manual_fix(step) + " to convert the values",
                _previous(c, step, (change.old.name,)),
                change.new.type_location,
                change.name,
            )


@rule(
    "ES203",
    "UPCAST_CONSTRAINTS_RELAXED_ONLY",
    Category.BACKWARD,
    "a field's constraints in a new version accept every value of the previous one",
)
def upcast_constraints_relaxed_only(c: Comparison) -> Iterator[Hit]:
    for step in c.steps:
        if not _backward(step):
            continue
        for change in step.analysis.blocking:
            if change.kind is not ChangeKind.CONSTRAINTS_CHANGED:
                continue
            assert change.old is not None and change.new is not None
            yield _hit(
                step,
                f"{change.summary.split(': ', 1)[-1]}: stored version-{step.number - 1} "
                "values may break them",
                "keep the constraints (validate new input in the command instead), "
                + _manual_fix(step)
                + " to repair old values",
                _previous(c, step, (change.old.name,)),
                change.new.location,
                change.name,
            )


@rule(
    "ES204",
    "UPCAST_RENAME_DECLARED",
    Category.BACKWARD,
    "a renamed field says `renamed_from`, or it reads as a removal and an addition",
)
def upcast_rename_declared(c: Comparison) -> Iterator[Hit]:
    for step in c.steps:
        if not _backward(step):
            continue
        for gone, added in suspected_renames(step):
            assert gone.old is not None and added.new is not None
            lost = (
                "and no upcaster can be derived"
                if not added.new.has_default
                else "and the upcaster would put the default in their place"
            )
            yield _hit(
                step,
                f"replaces {gone.name!r}, of the same type: if this is a rename, stored "
                f"{gone.name!r} values are lost " + lost,
                f"if {added.name!r} is {gone.name!r} renamed, write `renamed_from: {gone.name}` on "
                f"it; if not, set `upcast: manual` on version {step.number} to say so",
                _previous(c, step, (gone.name,)),
                added.new.location,
                added.name,
                Severity.ERROR if not added.new.has_default else Severity.WARNING,
            )


def _forward_misfits(step: Step) -> list[Misfit]:
    previous = step.analysis.old
    return misfits(
        version_record(step.analysis.new, step.ctx),
        version_record(previous, step.ctx),
        tolerant=True,
        may_omit=False,
    )


def _forward_hits(c: Comparison, kinds: set[MisfitKind], say: str) -> Iterator[Hit]:
    for step in c.steps:
        if not _forward(step):
            continue
        for m in _forward_misfits(step):
            if m.kind not in kinds:
                continue
            name = ".".join(m.path)
            before, k = step.number - 1, step.number
            what = {
                MisfitKind.MISSING: f"require this field, which version {k} no longer has",
                MisfitKind.TYPE: f"expect {m.reader} here; version {k} sends {m.data}",
                MisfitKind.NULL: f"expect {m.reader} here; version {k} may send null",
                MisfitKind.ENUM: f"do not know {m.data}, which version {k} may send here",
                MisfitKind.CONSTRAINT: f"check ({m.reader}) here; version {k} allows ({m.data})",
            }[m.kind]
            yield _hit(
                step,
                f"consumers still on version {before} {what}",
                say,
                _previous(c, step, m.path),
                locate(step.analysis.new.fields, m.path, step.ctx) or step.analysis.new.location,
                name,
            )


@rule(
    "ES211",
    "FORWARD_FIELD_KEPT",
    Category.FORWARD,
    "a new version keeps every field consumers of the previous version require",
)
def forward_field_kept(c: Comparison) -> Iterator[Hit]:
    yield from _forward_hits(
        c,
        {MisfitKind.MISSING},
        "keep the field (it may get a default), or publish the change as a new event type "
        "once every consumer reads it",
    )


@rule(
    "ES212",
    "FORWARD_TYPE_NARROWED_ONLY",
    Category.FORWARD,
    "a new version sends only values of the types consumers of the previous version know",
)
def forward_type_narrowed_only(c: Comparison) -> Iterator[Hit]:
    yield from _forward_hits(
        c,
        {MisfitKind.TYPE, MisfitKind.NULL, MisfitKind.ENUM},
        "keep the type consumers know and add a new field next to it for the new values",
    )


@rule(
    "ES213",
    "FORWARD_CONSTRAINTS_NARROWED_ONLY",
    Category.FORWARD,
    "a new version sends only values the previous version's constraints accept",
)
def forward_constraints_narrowed_only(c: Comparison) -> Iterator[Hit]:
    yield from _forward_hits(
        c,
        {MisfitKind.CONSTRAINT},
        "keep the constraints consumers check, or relax them only after every consumer has",
    )


RULES: tuple[Rule, ...] = (
    upcast_field_added_with_default,
    upcast_type_widened_only,
    upcast_constraints_relaxed_only,
    upcast_rename_declared,
    forward_field_kept,
    forward_type_narrowed_only,
    forward_constraints_narrowed_only,
)
