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
from esgen.runtime._integration import H_STREAM_ID
from esgen.schema import Context, EventVersion, Field, StepProblem

__all__ = ["RULES", "contract_note", "id_type_note"]


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
    # every field: neither side may leave one out or ignore one. The relay sends only the
    # latest version it knows, so previous consumers receive new messages of version k
    # only when k is still the latest; older versions live on in the stream alone, and
    # what matters there is that consumers of the new contract read what it holds.
    k = old.version
    assert pair.new is not None
    still_sent = k == pair.new.latest.version
    sent = misfits(after, before, tolerant=False, may_omit=False) if still_sent else []
    kept = misfits(before, after, tolerant=False, may_omit=False)
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


def _unread_growth(pair: EventPair, old: EventVersion, new: EventVersion) -> bool:
    """A version the relay no longer sends that only grew (every message of it the stream
    holds still reads): no consumer, previous or regenerated, is hurt."""
    assert pair.new is not None and pair.old_ctx is not None and pair.new_ctx is not None
    if old.version == pair.new.latest.version:
        return False
    before = version_record(old, pair.old_ctx)
    after = version_record(new, pair.new_ctx)
    return not misfits(before, after, tolerant=False, may_omit=False) and bool(
        misfits(after, before, tolerant=False, may_omit=False)
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
        if not _kept(pair) or _unread_growth(pair, old, new):
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


_NEW_EVENT = (
    "or publish the change as a new event next to this one; `upcast: manual` does not help "
    "here, as consumers in other services never run the publisher's upcasters"
)


def _derivable_fix(problem: StepProblem, k: int) -> str:
    """How to make a step consumers can derive: the generator's advice for the same
    problem ends in `upcast: manual`, which is ES503 again for a published event."""
    name = problem.change.name
    if problem.code == "ES201":
        return f"give {name!r} a default or make it optional, {_NEW_EVENT}"
    if problem.code == "ES202":
        return (
            "keep the type or widen it (int -> float or decimal, T -> T | None, an enum with "
            f"more values, a value type with more optional fields), {_NEW_EVENT}"
        )
    if problem.code == "ES203":
        return "keep the constraints (validate new input in the command instead), " + _NEW_EVENT
    gone = problem.replaced.name if problem.replaced is not None else name
    if gone == name:  # a rename onto a field the previous version has too
        return (
            f"if the old {gone!r} values are to go, write `dropped: [{gone}]` on version "
            f"{k}; otherwise give the renamed field another name, {_NEW_EVENT}"
        )
    return (
        f"if {name!r} is {gone!r} renamed, write `renamed_from: {gone}` on it; if the old "
        f"values are to be dropped, write `dropped: [{gone}]` on version {k}; {_NEW_EVENT}"
    )


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
            fix = _derivable_fix(problem, step.number)
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


def _id_field(ctx: Context, aggregate: str) -> Field | None:
    found = next((a for a in ctx.aggregates if a.name == aggregate), None)
    return found.id_field if found is not None else None


def id_type_note(pair: EventPair) -> str | None:
    """The change of its aggregate's id type, for the event summaries of published events
    (where ES505 makes it matter)."""
    if not _kept(pair):
        return None
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    before = _id_field(pair.old_ctx, pair.old.aggregate)
    after = _id_field(pair.new_ctx, pair.new.aggregate)
    if before is None or after is None or before.type == after.type:
        return None
    return f"ids of aggregate {pair.new.aggregate} changed from {before.type} to {after.type}"


def _id_readers(old: str, new: str) -> str:
    """Which consumers fail to read an aggregate's ids after its id type changed. A str
    id reads any stream id; the others must parse."""
    hurt = []
    if old != "str":
        hurt.append(
            f"consumers built on the previous contract read every id as {old} and fail on new ones"
        )
    if new != "str":
        hurt.append(
            f"consumers regenerated from the new contract read every id as {new} and fail "
            "on the ids of the messages the stream already holds"
        )
    return "; ".join(hurt)


@rule(
    "ES505",
    "CONTRACT_AGGREGATE_ID_SAME",
    Category.CONTRACT,
    "the aggregate of a published event keeps the type of its ids",
)
def contract_aggregate_id_same(c: Comparison) -> Iterator[Hit]:
    for pair in c.events:
        if not _kept(pair):
            continue
        assert pair.old is not None and pair.new is not None
        assert pair.old_ctx is not None and pair.new_ctx is not None
        before = _id_field(pair.old_ctx, pair.old.aggregate)
        after = _id_field(pair.new_ctx, pair.new.aggregate)
        if before is None or after is None or before.type == after.type:
            continue
        old, new = str(before.type), str(after.type)
        aggregate = pair.new.aggregate
        yield Hit(
            pair.context,
            Kind.EVENT,
            pair.name,
            f"the ids of its aggregate {aggregate} changed from {old} to {new}: consumers "
            f"in other services take the id from the message's stream id "
            f"({aggregate}-<id>, header {H_STREAM_ID}) as the contract's id type; "
            f"{_id_readers(old, new)}",
            f"keep {aggregate}'s id type ({old}) while other services consume its events; "
            "for ids of another type, publish the events of a new aggregate next to it",
            before.location,
            after.location,
        )


RULES: tuple[Rule, ...] = (
    contract_event_kept,
    contract_version_same,
    contract_upcast_derived,
    contract_new_version_announced,
    contract_aggregate_id_same,
)
