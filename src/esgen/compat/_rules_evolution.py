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
from esgen.compat._rules_storage import rename_at, widened_in_place
from esgen.schema import Location

__all__ = ["RULES"]


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


def _problems(c: Comparison, code: str) -> Iterator[Hit]:
    """The step problems (`esgen.schema.VersionStep.problems`, the rule `esgen generate`
    applies too) reported under one code."""
    for step in c.all_steps:
        if not _backward(step):
            continue
        for problem in step.analysis.problems():
            if problem.code != code:
                continue
            change = problem.change
            new = change.new
            assert new is not None
            source = problem.replaced.name if problem.replaced else (change.old or new).name
            yield _hit(
                step,
                problem.message,
                problem.fix,
                _previous(c, step, (source,) if code != "ES201" else ()),
                new.type_location if code == "ES202" else new.location,
                change.name,
            )


@rule(
    "ES201",
    "UPCAST_FIELD_ADDED_WITH_DEFAULT",
    Category.BACKWARD,
    "a field added in a new version has a default, or the version has a hand-written upcaster",
)
def upcast_field_added_with_default(c: Comparison) -> Iterator[Hit]:
    yield from _problems(c, "ES201")


@rule(
    "ES202",
    "UPCAST_TYPE_WIDENED_ONLY",
    Category.BACKWARD,
    "a field's type in a new version accepts every value of the previous one",
)
def upcast_type_widened_only(c: Comparison) -> Iterator[Hit]:
    yield from _problems(c, "ES202")


@rule(
    "ES203",
    "UPCAST_CONSTRAINTS_RELAXED_ONLY",
    Category.BACKWARD,
    "a field's constraints in a new version accept every value of the previous one",
)
def upcast_constraints_relaxed_only(c: Comparison) -> Iterator[Hit]:
    yield from _problems(c, "ES203")


@rule(
    "ES204",
    "UPCAST_RENAME_DECLARED",
    Category.BACKWARD,
    "a field removed in a new version next to an added one that could hold its values says "
    "which it is: `renamed_from` on the new field, or `dropped` on the version",
)
def upcast_rename_declared(c: Comparison) -> Iterator[Hit]:
    yield from _problems(c, "ES204")


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


@rule(
    "ES214",
    "FORWARD_PUBLISHED_VALUES_KNOWN",
    Category.FORWARD,
    "a published version whose enums or value types grew in place sends only values consumers "
    "of the previous schema know",
)
def forward_published_values_known(c: Comparison) -> Iterator[Hit]:
    for pair, old, new in c.changed_versions:
        assert pair.old is not None and pair.new is not None
        assert pair.old_ctx is not None and pair.new_ctx is not None
        modes = {pair.old.compatibility, pair.new.compatibility}
        if not modes & {"forward", "full"} or not widened_in_place(pair, old, new):
            continue  # anything else in place is a storage finding already (ES103, ES104)
        for m in misfits(
            version_record(new, pair.new_ctx),
            version_record(old, pair.old_ctx),
            tolerant=True,
            may_omit=False,
        ):
            k = old.version
            what = {
                MisfitKind.ENUM: f"do not know {m.data}, which version {k} may now send here",
                MisfitKind.TYPE: f"expect {m.reader} here; version {k} may now send {m.data}",
                MisfitKind.CONSTRAINT: f"check ({m.reader}) here; version {k} now allows "
                f"({m.data})",
            }.get(m.kind, m.detail)
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"published version changed in place: consumers on the previous schema {what}",
                "deploy every consumer with the new schema before any producer sends the new "
                "values (then `--ignore ES214:" + pair.name + "` for this change), or keep "
                "the type as it was",
                locate(old.fields, m.path, pair.old_ctx) or old.location,
                locate(new.fields, m.path, pair.new_ctx) or new.location,
                version=old.version,
                field=".".join(m.path),
            )


@rule(
    "ES215",
    "FORWARD_EVENT_NAME_KEPT",
    Category.FORWARD,
    "an event consumers of the previous schema read keeps the name they know it by",
)
def forward_event_name_kept(c: Comparison) -> Iterator[Hit]:
    # A rename changes the type name on the wire, whatever the versions say. A mode
    # relaxed in the same change does not switch the check off.
    renamed = [(p, p.old) for p in c.events if p.renamed]
    for pair, old in [*renamed, *c.absorbed]:
        assert pair.new is not None and old is not None
        modes = {old.compatibility, pair.new.compatibility} & {"forward", "full"}
        if not modes:
            continue
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"renamed from {old.name!r}, an event in {'/'.join(sorted(modes))} mode: "
            f"consumers on the previous schema wait for {old.name!r} and receive "
            f"{pair.name!r}, a type they do not know",
            f"keep the name {old.name!r} while other services consume it, and rename the "
            f"event once they read {pair.name!r} too",
            old.location,
            rename_at(pair.new),
        )


RULES: tuple[Rule, ...] = (
    upcast_field_added_with_default,
    upcast_type_widened_only,
    upcast_constraints_relaxed_only,
    upcast_rename_declared,
    forward_field_kept,
    forward_type_narrowed_only,
    forward_constraints_narrowed_only,
    forward_published_values_known,
    forward_event_name_kept,
)
