"""Consumer rules: projections and sagas can still be rebuilt from the stored history.

Read models are rebuilt by replaying every stored event from the start, and sagas find
their running instances again by a correlation field. Deleting an event (or a version of
it) that they consumed changes what a replay gives, even when the schema itself validates.
"""

from __future__ import annotations

from collections.abc import Iterator

from esgen.compat._compare import Comparison
from esgen.compat._findings import Category, Hit, Kind
from esgen.compat._rule import Rule, rule

__all__ = ["RULES"]


def _gone(c: Comparison, context: str, event: str) -> Iterator[str]:
    """How `event` (consumed on the old side) went missing: the whole event, or versions."""
    pair = c.event(context, event)
    if pair is None or pair.old is None:
        return
    if pair.new is None:
        yield f"event {event!r}, which was deleted"
        return
    for old in pair.old.versions:
        if pair.new_version(old.version) is None:
            yield f"version {old.version} of {event!r}, which was deleted"


@rule(
    "ES401",
    "PROJECTION_CONSUMES_EXISTING",
    Category.CONSUMERS,
    "events and versions a projection consumed still exist, so it can be rebuilt",
)
def projection_consumes_existing(c: Comparison) -> Iterator[Hit]:
    for pair in c.projections:
        if pair.old is None or pair.new is None:
            continue  # a deleted projection is ES311's
        for event in pair.old.consumes:
            for gone in _gone(c, pair.context, event):
                yield Hit(
                    pair.context,
                    Kind.PROJECTION,
                    pair.name,
                    f"consumed {gone}: rebuilding it from the stored events no longer gives "
                    "the same read model",
                    "restore the event; if the read model should really change, say so with a "
                    "new projection and retire this one",
                    pair.old.location,
                    pair.new.location,
                )


@rule(
    "ES402",
    "SAGA_HANDLES_EXISTING",
    Category.CONSUMERS,
    "events and versions a saga handled still exist",
)
def saga_handles_existing(c: Comparison) -> Iterator[Hit]:
    for pair in c.sagas:
        if pair.old is None:
            continue
        for event in dict.fromkeys([pair.old.starts_with, *pair.old.handles]):
            for gone in _gone(c, pair.context, event):
                yield Hit(
                    pair.context,
                    Kind.SAGA,
                    pair.name,
                    f"handled {gone}: instances waiting for it never complete, and stored "
                    "ones can no longer be replayed",
                    "restore the event, and let running instances finish before retiring it",
                    pair.old.location,
                    pair.nearest_new(),
                )


@rule(
    "ES403",
    "SAGA_CORRELATION_SAME",
    Category.CONSUMERS,
    "a saga keeps the field that finds its running instances",
)
def saga_correlation_same(c: Comparison) -> Iterator[Hit]:
    for pair in c.sagas:
        if pair.old is None or pair.new is None:
            continue
        if pair.old.correlation != pair.new.correlation:
            yield Hit(
                pair.context,
                Kind.SAGA,
                pair.name,
                f"correlates on {pair.new.correlation!r} instead of "
                f"{pair.old.correlation!r}: instances already running were found by "
                f"{pair.old.correlation!r}",
                "keep the correlation field; start a new saga for the new way",
                pair.old.location,
                pair.new.location,
                field=pair.new.correlation,
            )


RULES: tuple[Rule, ...] = (
    projection_consumes_existing,
    saga_handles_existing,
    saga_correlation_same,
)
