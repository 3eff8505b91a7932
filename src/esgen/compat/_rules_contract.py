"""Contract rules: what a consumer in another context or service, generated from the
previous contract, experiences when the publishing context changes.

A context's contract is the events it lists in `publishes`. The relay sends each of them to
the broker under `<prefix>.<context>.<partition>.<Aggregate>.<EventType>`, in the latest
version the publisher knows; the stream keeps the messages already sent in the versions they
were sent in. A consumer you do not control decodes messages with classes generated from
the contract it was built on (unknown fields refused, unknown versions dead-lettered), and
upcasts older versions with upcasters derived from that contract: it never runs the
publisher's hand-written code. These rules read only events published on the side compared
against; an event that was never in the contract has no external consumer.
"""

from __future__ import annotations

from collections.abc import Iterator

from esgen.compat._compare import Comparison, EventPair, Step, version_record
from esgen.compat._findings import Category, Hit, Kind, Severity
from esgen.compat._fits import misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._rules_storage import rename_at
from esgen.schema import EventVersion

__all__ = ["RULES", "contract_note"]


def _kept(pair: EventPair) -> bool:
    """Published on both sides under the same subject: the rules on its versions apply.
    Anything else is ES501's, whose one finding already says every consumer breaks."""
    return (
        pair.old is not None
        and pair.new is not None
        and pair.old.published
        and pair.new.published
        and not pair.renamed
        and pair.old.aggregate == pair.new.aggregate
    )


def contract_note(pair: EventPair) -> str | None:
    """How the event's place in the contract changed, for the event summaries."""
    was = pair.old is not None and pair.old.published
    now = pair.new is not None and pair.new.published
    if now and not was:
        return "now published to other contexts"
    if was and not now and pair.new is not None:
        return "no longer published to other contexts"
    return None


@rule(
    "ES501",
    "CONTRACT_EVENT_KEPT",
    Category.CONTRACT,
    "a published event stays published, under its name and aggregate",
)
def contract_event_kept(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        old, new = pair.old, pair.new
        if old is None or not old.published:
            continue
        subject = f"{old.aggregate}.{old.name}"
        listing_only = False  # only its entry in `publishes` went (the event is as it was)
        if new is None:
            why = "deleted"
            where = pair.nearest_new()
            fix = f"keep {old.name!r} in `publishes` as long as other services consume it"
        elif pair.renamed:
            why = f"renamed to {new.name!r}, which changes its subject and type name"
            where = rename_at(new)
            fix = (
                f"keep the name {old.name!r} while other services consume it; publish a new "
                "event next to it and retire the old one once every consumer reads the new"
            )
        elif new.aggregate != old.aggregate:
            why = f"moved to aggregate {new.aggregate!r}, which changes its subject"
            where = new.location
            fix = f"keep the event with aggregate {old.aggregate!r}"
        elif not new.published:
            listing_only = True
            why = "removed from `publishes`"
            where = new.location
            fix = (
                f"keep {old.name!r} in `publishes` until every consumer has stopped "
                "subscribing to it, then remove it (`--ignore ES501:" + old.name + "`)"
            )
        else:
            continue
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"published event {why}: the relay no longer sends {subject}, and consumers "
            "in other services subscribed to it receive nothing more",
            fix,
            # What was taken away is the entry in `publishes`, when that is the change.
            (old.published_location or old.location) if listing_only else old.location,
            where,
        )
    for reader, merged in c.absorbed:
        if not merged.published:
            continue
        yield Hit(
            reader.context,
            Kind.EVENT,
            merged.name,
            f"published event merged into {reader.name!r} (its `renamed_from`): the relay "
            f"no longer sends {merged.aggregate}.{merged.name}, and consumers in other "
            "services subscribed to it receive nothing more",
            f"keep {merged.name!r} as an event of its own in `publishes` while other "
            "services consume it",
            merged.location,
            rename_at(reader.new) if reader.new is not None else reader.nearest_new(),
        )


def _in_place(pair: EventPair, old: EventVersion, new: EventVersion) -> str:
    """Who is hurt by a published version changed in place, and how."""
    assert pair.old_ctx is not None and pair.new_ctx is not None
    before = version_record(old, pair.old_ctx)
    after = version_record(new, pair.new_ctx)
    # Generated message classes refuse fields they do not know, and the relay writes
    # every field: neither side may leave one out or ignore one.
    sent = misfits(after, before, tolerant=False, may_omit=False)
    kept = misfits(before, after, tolerant=False, may_omit=False)
    k = old.version
    if sent:
        return (
            f"consumers generated from the previous contract refuse the version-{k} "
            f"messages the relay now sends ({sent[0].detail} at '{'.'.join(sent[0].path)}')"
        )
    if kept:
        return (
            f"consumers generated from the new contract refuse the version-{k} messages "
            f"the stream already holds ({kept[0].detail} at '{'.'.join(kept[0].path)}')"
        )
    return (
        f"consumers generated from the previous contract and from the new one decode "
        f"version-{k} messages to different values"
    )


@rule(
    "ES502",
    "CONTRACT_VERSION_SAME",
    Category.CONTRACT,
    "every version of a published event stays as it was, with the value types and enums it uses",
)
def contract_version_same(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if not _kept(pair):
            continue
        assert pair.old is not None
        for old in pair.old.versions:
            if pair.new_version(old.version) is None:
                yield Hit(
                    pair.context,
                    Kind.EVENT,
                    pair.name,
                    f"published version deleted: consumers in other services decode the "
                    f"version-{old.version} messages the stream holds with it",
                    f"restore version {old.version} as it was: versions are only ever added",
                    old.location,
                    pair.nearest_new(),
                    version=old.version,
                )
    for pair, old, new in c.changed_versions:
        if not _kept(pair):
            continue
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"published version changed in place: {_in_place(pair, old, new)}",
            f"restore version {old.version} as it was (with the value types and enums it "
            "uses) and put the change in a new version of the event",
            old.location,
            new.location,
            version=old.version,
        )


def _new_steps(c: Comparison) -> Iterator[Step]:
    """Steps into versions the previous contract did not have, of events still in it."""
    return (step for step in c.steps if _kept(step.pair))


@rule(
    "ES503",
    "CONTRACT_UPCAST_DERIVED",
    Category.CONTRACT,
    "a new version of a published event has an upcaster consumers can derive from the contract",
)
def contract_upcast_derived(c: Comparison) -> Iterator[Hit]:
    for step in _new_steps(c):
        new, before = step.analysis.new, step.number - 1
        if new.upcast == "manual":
            why = f"its upcaster from version {before} is hand-written (`upcast: manual`)"
            fix = (
                "make the step derivable (new fields with defaults, types only widened, "
                "renames declared) and drop `upcast: manual`, or publish the change as a new "
                "event next to this one"
            )
        elif step.mode in ("backward", "full") or not step.analysis.problems():
            continue  # derivable; or not, and ES201-ES204 already say why
        else:
            problem = step.analysis.problems()[0]
            why = f"no upcaster from version {before} can be derived ({problem.change.summary})"
            fix = problem.fix
        yield Hit(
            step.pair.context,
            Kind.EVENT,
            step.pair.name,
            f"{why}: consumers in other services generated from the new contract cannot "
            f"read the version-{before} messages the stream holds, since they run only "
            "upcasters derived from the contract, never the publisher's code",
            fix,
            step.pair.old.latest.location if step.pair.old is not None else None,
            new.location,
            version=step.number,
        )


@rule(
    "ES504",
    "CONTRACT_NEW_VERSION_ANNOUNCED",
    Category.CONTRACT,
    "a new version of a published event reaches consumers only after they upgrade to the "
    "new contract (a warning: an order of deployment)",
)
def contract_new_version_announced(c: Comparison) -> Iterator[Hit]:
    latest: dict[tuple[str, str], Step] = {}
    for step in _new_steps(c):
        latest[(step.pair.context, step.pair.name)] = step  # steps come in version order
    for step in latest.values():
        pair, k = step.pair, step.number
        assert pair.old is not None
        known = pair.old.latest.version
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"the relay will send version {k}; consumers in other services built on the "
            f"previous contract know versions up to {known} and dead-letter every version-{k} "
            "message until they are regenerated from the new contract",
            "record the new contract (`esgen lock`) and publish it to the consuming teams; "
            "deploy the relay that sends version "
            f"{k} only after every consumer has been regenerated and deployed",
            pair.old.latest.location,
            step.analysis.new.location,
            version=k,
            severity=Severity.WARNING,
        )


RULES: tuple[Rule, ...] = (
    contract_event_kept,
    contract_version_same,
    contract_upcast_derived,
    contract_new_version_announced,
)
