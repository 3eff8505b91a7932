"""Consumer rules: projections and sagas can still be rebuilt from the stored history.

Read models are rebuilt by replaying every stored event from the start, and sagas find
their running instances again by a correlation field. Deleting an event (or a version of
it) that they consumed changes what a replay gives, even when the schema itself validates.

A read model whose table, stored rows or consumed events changed must be rebuilt after the
deploy (ES404 to ES406). That is a deploy step, not a loss, so these are warnings; the
report lists each projection with the exact command. The runtime refuses to catch up a
projection whose table changed (ES404); this module predicts that answer with the
runtime's own fingerprint of the table, from the table esgen generates, so the two agree.
The other two changes the runtime cannot see, which is why compat must say them.

A consumer's read model (fed by other contexts' published events through the broker) is
checked the same way, but it cannot be rebuilt from this context's store: it is replayed
from the upstream streams (docs/consumers.md), and its runner refuses to start while its
table was built with other fields (`ConsumerNeedsReplay`), as catch-up refuses a
projection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from esgen.compat._compare import Comparison, Pair, ReadModelPair, is_consumer, locate
from esgen.compat._findings import Category, Finding, Hit, Kind, Severity
from esgen.compat._fits import Misfit, MisfitKind, misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._rules_source import read_model_kind, reads_as_text
from esgen.compat._shapes import record_of
from esgen.runtime import Column, TableSpec
from esgen.schema import Consumer, Projection, ReadModelTable, read_model_table

__all__ = [
    "REPLAY_STEPS",
    "RULES",
    "Rebuild",
    "Replay",
    "plan_rebuilds",
    "plan_replays",
    "rebuild_command",
    "table_layout",
]


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
    "a saga keeps the correlation that finds its running instances",
)
def saga_correlation_same(c: Comparison) -> Iterator[Hit]:
    for pair in c.sagas:
        if pair.old is None or pair.new is None:
            continue
        old, new = pair.old, pair.new
        if (old.correlation, old.correlation_aggregate) != (
            new.correlation,
            new.correlation_aggregate,
        ):
            yield Hit(
                pair.context,
                Kind.SAGA,
                pair.name,
                f"correlates on {new.correlation_text!r} instead of "
                f"{old.correlation_text!r}: instances already running were found by "
                f"{old.correlation_text!r}",
                "keep the correlation; start a new saga for the new way",
                old.location,
                new.location,
                field=new.correlation,
            )


# -- rebuilds ----------------------------------------------------------------------------


def table_layout(table: ReadModelTable) -> str:
    """The fingerprint the runtime stores with each generation of a read model's table and
    compares with the running code's before catching up: computed by the runtime itself."""
    columns = tuple(Column(c.name, c.kind, c.nullable) for c in table.columns)
    return TableSpec(table.name, table.key, columns).layout


def rebuild_command(context: str, table: str) -> str:
    """What to run after the deploy; STORE is the event store's SQLite file or DSN."""
    return f"esgen projections rebuild {table} --context {context} --store STORE"


# What a consumer whose rows no longer fit needs (docs/consumers.md, "Changing a consumer's
# fields"): no store holds its history, the upstream streams do.
REPLAY_STEPS = (
    "replay it from the upstream streams: stop its runners, drop its table's generations and "
    "its `esgen_projections` row, delete its rows in `esgen_inbox` and its durables on the "
    'broker, and start it again (docs/consumers.md, "Changing a consumer\'s fields")'
)


def _tables(c: Comparison, pair: ReadModelPair) -> tuple[ReadModelTable, ReadModelTable]:
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    old = read_model_table(pair.old, pair.old_ctx.user_type)
    new = read_model_table(pair.new, pair.new_ctx.user_type)
    if c.old.kind == "lock":
        # The lock lists fields by name, not in the order the table was created with; the
        # order alone cannot be checked against it, so assume the current one.
        place = {col.name: i for i, col in enumerate(new.columns)}
        ordered = sorted(old.columns, key=lambda col: place.get(col.name, len(place)))
        old = ReadModelTable(old.name, old.key, tuple(ordered))
    return old, new


def _table_changes(old: ReadModelTable, new: ReadModelTable) -> list[str]:
    """What differs between two tables, for people; the verdict is the layout's."""
    changes: list[str] = []
    if old.key != new.key:
        changes.append(f"keyed by {new.key!r} instead of {old.key!r}")
    before = {col.name: col for col in old.columns}
    after = {col.name: col for col in new.columns}
    changes += [f"column {n!r} added" for n in after if n not in before]
    changes += [f"column {n!r} removed" for n in before if n not in after]
    for name, col in after.items():
        was = before.get(name)
        if was is None:
            continue
        if was.kind != col.kind:
            changes.append(f"column {name!r} stored as {col.kind} instead of {was.kind}")
        if was.nullable != col.nullable:
            changes.append(f"column {name!r} {'may now be' if col.nullable else 'no longer'} null")
    if [n for n in before if n in after] != [n for n in after if n in before]:
        changes.append("columns in another order")
    return changes


@dataclass(frozen=True, slots=True)
class _Rebuild:
    """One reason to rebuild, before it becomes a finding: the hit and a short note."""

    rule: str
    hit: Hit
    note: str  # for the list of projections to rebuild: "column 'opened_at' added"
    table: str  # the projection's name at run time
    consumer: bool = False  # a consumer's: replayed, not rebuilt


def _hit(pair: ReadModelPair, table: str, message: str, field: tuple[str, ...] = ()) -> Hit:
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    fix = (
        f"after deploying, {REPLAY_STEPS}"
        if is_consumer(pair)
        else f"after deploying, run `{rebuild_command(pair.context, table)}`: readers keep "
        "the current rows until the rebuilt table replaces them in one commit"
    )
    return Hit(
        pair.context,
        read_model_kind(pair),
        pair.name,
        message,
        fix,
        (locate(pair.old.fields, field, pair.old_ctx) if field else None) or pair.old.location,
        (locate(pair.new.fields, field, pair.new_ctx) if field else None) or pair.new.location,
        field=".".join(field) or None,
        severity=Severity.WARNING,
    )


def _stored_row_misfits(pair: ReadModelPair) -> Iterator[tuple[Misfit, str, str]]:
    """Why rows stored under the old shape may not read as the new row, and nested fields
    they lack: (misfit, message, note for the list of rebuilds)."""
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    old = record_of(pair.old.fields, pair.old_ctx.user_type, pair.name)
    new = record_of(pair.new.fields, pair.new_ctx.user_type, pair.name)
    seen: set[tuple[str, ...]] = set()
    # Rows are stored as JSON-mode values and row types forbid unknown fields.
    for m in misfits(old, new, tolerant=False, may_omit=False):
        if reads_as_text(m):
            continue
        seen.add(m.path)
        yield (
            m,
            f"rows stored before may not read as the new row ({m.detail})",
            f"{'.'.join(m.path)}: stored rows may not read as the new row ({m.detail})",
        )
    for m in misfits(new, old, tolerant=False, may_omit=False):
        if m.kind is MisfitKind.UNKNOWN and m.path not in seen:
            dotted = ".".join(m.path)
            yield (
                m,
                f"rows stored before have no {dotted!r}: they read as its default",
                f"{dotted}: stored rows have none, and read as its default",
            )


def _consumed_changes(c: Comparison, pair: Pair[Projection]) -> tuple[list[str], list[str]]:
    """(events consumed now whose stored events the rows never saw, events no longer
    consumed whose stored events the rows still reflect); renamed events are the same."""
    assert pair.old is not None and pair.new is not None
    successors: set[str] = set()
    dropped: list[str] = []
    for name in pair.old.consumes:
        event = c.event(pair.context, name)
        if event is None or event.new is None:
            continue  # deleted: ES401
        successors.add(event.new.name)
        if event.new.name not in pair.new.consumes:
            dropped.append(event.new.name)
    added = []
    for name in pair.new.consumes:
        event = c.event(pair.context, name)
        if name not in successors and event is not None and event.old is not None:
            added.append(name)  # only events that were stored before can be missing
    return added, dropped


def _handled_changes(pair: Pair[Consumer]) -> tuple[list[str], list[str]]:
    """(events handled now whose earlier messages were acknowledged without an effect,
    events no longer handled whose messages its rows still reflect), as upstream.Event.
    An upstream it did not read before gets a durable of its own, which delivers that
    upstream's stream from its first message: nothing of it was missed."""
    assert pair.old is not None and pair.new is not None
    before, after = set(pair.old.handles), set(pair.new.handles)
    read_before = {upstream for upstream, _ in before}
    added = [f"{u}.{e}" for u, e in pair.new.handles if (u, e) not in before and u in read_before]
    dropped = [f"{u}.{e}" for u, e in pair.old.handles if (u, e) not in after]
    return added, dropped


def _rebuilds(c: Comparison) -> Iterator[_Rebuild]:
    for pair in c.read_models:
        if pair.old is None or pair.new is None:
            continue
        consumer = is_consumer(pair)
        # What the runtime does with a read model whose rows are out of date: catch-up
        # leaves a projection behind; a consumer's runner does not start.
        if consumer:
            refused = (
                "the consumer runner refuses to start (ConsumerNeedsReplay) until it is replayed"
            )
            unasked = "the runner does not ask for a replay"
        else:
            refused = (
                "`esgen projections catch-up` leaves it behind and exits 1 until it is rebuilt"
            )
            unasked = "the runtime does not ask for a rebuild"
        old, new = _tables(c, pair)
        if table_layout(old) != table_layout(new):
            changes = _table_changes(old, new) or ["its layout"]
            note = "; ".join(changes)
            yield _Rebuild(
                "ES404",
                _hit(pair, new.name, f"its table changed ({note}): after the deploy, {refused}"),
                f"table: {note}",
                new.name,
                consumer,
            )
            continue  # the rebuild the runtime asks for also covers the rest
        for m, why, note in _stored_row_misfits(pair):
            yield _Rebuild(
                "ES405",
                _hit(
                    pair, new.name, f"{why}; {unasked}, as the table's columns are the same", m.path
                ),
                note,
                new.name,
                consumer,
            )
        if isinstance(pair.new, Consumer):
            assert isinstance(pair.old, Consumer)
            added, dropped = _handled_changes(pair)
            verb, gained, lost = "handles", "were acknowledged without an effect", "messages"
        else:
            added, dropped = _consumed_changes(c, pair)
            verb, gained, lost = "consumes", "were never applied to its rows", "stored events"
        parts, notes = [], []
        if added:
            before = "messages delivered" if consumer else "events stored"
            parts.append(f"now {verb} {', '.join(added)}, whose {before} before {gained}")
            notes.append(f"now {verb} {', '.join(added)}")
        if dropped:
            parts.append(
                f"no longer {verb} {', '.join(dropped)}, whose {lost} its rows still reflect"
            )
            notes.append(f"no longer {verb} {', '.join(dropped)}")
        if parts:
            message = "; ".join(parts) + f"; {unasked}"
            yield _Rebuild(
                "ES406", _hit(pair, new.name, message), "; ".join(notes), new.name, consumer
            )


@rule(
    "ES404",
    "PROJECTION_TABLE_SAME",
    Category.CONSUMERS,
    "a read model keeps its table's key and columns, or is rebuilt (a consumer's: replayed) "
    "after the deploy (catch-up, or the consumer runner, refuses it until then)",
)
def projection_table_same(c: Comparison) -> Iterator[Hit]:
    yield from (r.hit for r in _rebuilds(c) if r.rule == "ES404")


@rule(
    "ES405",
    "PROJECTION_STORED_ROWS_FIT",
    Category.CONSUMERS,
    "rows a read model stored still read as its new row type, or it is rebuilt (a consumer's: "
    "replayed) after the deploy",
)
def projection_stored_rows_fit(c: Comparison) -> Iterator[Hit]:
    yield from (r.hit for r in _rebuilds(c) if r.rule == "ES405")


@rule(
    "ES406",
    "PROJECTION_CONSUMES_SAME",
    Category.CONSUMERS,
    "a read model consumes the same stored events (a consumer's: handles the same events), or "
    "it is rebuilt (replayed) after the deploy",
)
def projection_consumes_same(c: Comparison) -> Iterator[Hit]:
    yield from (r.hit for r in _rebuilds(c) if r.rule == "ES406")


@dataclass(frozen=True)
class Rebuild:
    """A projection to rebuild after the deploy, and why."""

    context: str
    projection: str
    name: str  # its name at run time, which `esgen projections rebuild` takes
    command: str
    enforced: bool  # the runtime refuses to catch it up until it is rebuilt (ES404)
    reasons: tuple[str, ...]


def _kept(
    c: Comparison, findings: list[Finding], consumers: bool
) -> dict[tuple[str, str], list[_Rebuild]]:
    kept = {(f.rule, f.hit) for f in findings}
    found: dict[tuple[str, str], list[_Rebuild]] = {}
    for r in _rebuilds(c):
        if r.consumer is consumers and (r.rule, r.hit) in kept:
            found.setdefault((r.hit.context, r.hit.name), []).append(r)
    return found


@dataclass(frozen=True)
class Replay:
    """A consumer to replay from the upstream streams after the deploy, and why."""

    context: str
    consumer: str
    name: str  # its name at run time (its table's, its durables')
    enforced: bool  # the runner refuses to start until it is replayed (ES404)
    reasons: tuple[str, ...]


def plan_replays(c: Comparison, findings: list[Finding]) -> list[Replay]:
    """The consumers to replay, from the findings that were not ignored."""
    return [
        Replay(
            context,
            name,
            found[0].table,
            any(r.rule == "ES404" for r in found),
            tuple(r.note for r in found),
        )
        for (context, name), found in _kept(c, findings, consumers=True).items()
    ]


def plan_rebuilds(c: Comparison, findings: list[Finding]) -> list[Rebuild]:
    """The projections to rebuild, from the findings that were not ignored."""
    return [
        Rebuild(
            context,
            name,
            found[0].table,
            rebuild_command(context, found[0].table),
            any(r.rule == "ES404" for r in found),
            tuple(r.note for r in found),
        )
        for (context, name), found in _kept(c, findings, consumers=False).items()
    ]


RULES: tuple[Rule, ...] = (
    projection_consumes_existing,
    saga_handles_existing,
    saga_correlation_same,
    projection_table_same,
    projection_stored_rows_fit,
    projection_consumes_same,
)
