"""Storage rules for personal data: what a published version keeps sealed, and under whom.

Which fields of a version are personal, and which field names their data subject, decide
what is at rest: sealed values under a subject's key, or plain text. Events already stored
keep what they were written with, so changing either on a published version splits that
version's events in two, some erased by `forget` and some not. The placeholder only says
what a forgotten value reads as; changing it changes no stored byte, so it is a warning.
"""

from __future__ import annotations

from collections.abc import Iterator

from esgen.compat._compare import Comparison, EventPair
from esgen.compat._findings import Category, Hit, Kind, Severity
from esgen.compat._rule import Rule, rule
from esgen.schema import (
    Context,
    EventVersion,
    Field,
    Location,
    erased_json,
    marked_fields,
)

__all__ = ["RULES"]


def _versions(c: Comparison) -> Iterator[tuple[EventPair, EventVersion, EventVersion]]:
    """Every published version on both sides, whatever its shape."""
    for pair in c.events:
        if pair.old is None or pair.new is None or pair.old_ctx is None or pair.new_ctx is None:
            continue
        for old in pair.old.versions:
            new = pair.new_version(old.version)
            if new is not None:
                yield pair, old, new


def _marks(version: EventVersion, ctx: Context) -> dict[str, Field]:
    return dict(marked_fields(version.fields, ctx.user_type))


def _where(version: EventVersion, path: str) -> Location:
    """The version's top-level field on the way to `path`, or the version."""
    top = path.split(".", 1)[0]
    while top.endswith(("[]", "{}")):
        top = top[:-2]
    f = version.field_named(top)
    return f.location if f is not None else version.location


def _fix(number: int, latest: int) -> str:
    if number == latest:
        return (
            f"restore version {number} as published and add version {number + 1} with the "
            "change: stored events keep what they were written with, new ones get the new "
            "version"
        )
    return f"restore version {number} as published: stored events were written with it"


@rule(
    "ES110",
    "EVENT_VERSION_PERSONAL_SAME",
    Category.STORAGE,
    "a published event version, and the value types it uses, keep which fields are personal",
)
def event_version_personal_same(c: Comparison) -> Iterator[Hit]:
    for pair, old, new in _versions(c):
        assert pair.old_ctx is not None and pair.new_ctx is not None and pair.new is not None
        before, after = _marks(old, pair.old_ctx), _marks(new, pair.new_ctx)
        for path in sorted(before.keys() ^ after.keys()):
            if path in after:
                what = (
                    "became personal data: stored version-{n} events hold it in plain text, "
                    "which forgetting a subject would not erase, while new ones would seal it"
                )
            else:
                what = (
                    "is no longer personal data: stored version-{n} events hold it sealed, "
                    "new ones would hold it in plain text that forgetting a subject would "
                    "not erase"
                )
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"published version changed at rest: the field {what.format(n=old.version)}",
                _fix(old.version, pair.new.latest.version),
                _where(old, path),
                _where(new, path),
                version=old.version,
                field=path,
            )


def _subject(version: EventVersion) -> str:
    return "the aggregate's id" if version.subject is None else repr(version.subject)


@rule(
    "ES111",
    "EVENT_VERSION_SUBJECT_SAME",
    Category.STORAGE,
    "a published event version with personal data keeps the field naming its data subject",
)
def event_version_subject_same(c: Comparison) -> Iterator[Hit]:
    for pair, old, new in _versions(c):
        assert pair.old_ctx is not None and pair.new_ctx is not None and pair.new is not None
        if old.subject == new.subject:
            continue
        if not (_marks(old, pair.old_ctx) or _marks(new, pair.new_ctx)):
            continue  # nothing sealed, so no subject to keep
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"published version changed at rest: its data subject was {_subject(old)} and is "
            f"now {_subject(new)}; stored version-{old.version} events are sealed under the "
            "former subject's key, new ones would be under the other, so forgetting one "
            "subject would erase only part of what this version holds",
            _fix(old.version, pair.new.latest.version),
            old.subject_location or old.location,
            new.subject_location or new.location,
            version=old.version,
        )


@rule(
    "ES112",
    "EVENT_VERSION_PLACEHOLDER_SAME",
    Category.STORAGE,
    "a personal field of a published event version keeps what it reads as once forgotten",
)
def event_version_placeholder_same(c: Comparison) -> Iterator[Hit]:
    for pair, old, new in _versions(c):
        assert pair.old_ctx is not None and pair.new_ctx is not None
        before, after = _marks(old, pair.old_ctx), _marks(new, pair.new_ctx)
        for path in sorted(before.keys() & after.keys()):
            was, now = before[path].personal, after[path].personal
            assert was is not None and now is not None
            a, b = erased_json(was.erased), erased_json(now.erased)
            if a == b:
                continue
            yield Hit(
                pair.context,
                Kind.EVENT,
                pair.name,
                f"the placeholder of a forgotten value changed from {a!r} to {b!r}: nothing "
                "stored changes, but events of subjects already forgotten now read as the "
                "new one",
                None,
                was.location,
                now.location,
                version=old.version,
                field=path,
                severity=Severity.WARNING,
            )


RULES: tuple[Rule, ...] = (
    event_version_personal_same,
    event_version_subject_same,
    event_version_placeholder_same,
)
