"""The two sides lined up: which contexts, events, commands and read models match by name,
and which version steps are new. Rules read this and never pair things up themselves.

An event that declares `renamed_from` is paired with the published event it names: one
event type under two names, whose stored events keep the old one. Its versions are then
compared as any event's are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

from esgen.compat._shapes import Record, record_of
from esgen.compat._sides import Side
from esgen.schema import (
    Command,
    Compatibility,
    Consumer,
    Context,
    Event,
    EventVersion,
    Field,
    Location,
    Projection,
    Saga,
    ValueType,
    VersionStep,
    analyse_step,
    named_types,
)

__all__ = [
    "Comparison",
    "EventPair",
    "Pair",
    "ReadModelPair",
    "Step",
    "is_consumer",
    "locate",
    "stored_names",
    "version_record",
]

T = TypeVar("T", Event, Command, Projection, Consumer, Saga)


@dataclass(frozen=True)
class Pair(Generic[T]):
    """One named element on both sides; `old` or `new` is None when it exists on one side."""

    context: str
    name: str
    old: T | None
    new: T | None
    old_ctx: Context | None
    new_ctx: Context | None

    def nearest_new(self) -> Location | None:
        """Where the element is now, or the closest thing that still exists: the aggregate
        an event or command belonged to, or else its context."""
        if self.new is not None:
            return self.new.location
        if self.new_ctx is None:
            return None
        owner = getattr(self.old, "aggregate", None)
        aggregate = next((a for a in self.new_ctx.aggregates if a.name == owner), None)
        return aggregate.location if aggregate is not None else self.new_ctx.location


class EventPair(Pair[Event]):
    @property
    def renamed(self) -> bool:
        """The new side continues the old event under another name (`renamed_from`)."""
        return self.old is not None and self.new is not None and self.old.name != self.new.name

    def old_version(self, number: int) -> EventVersion | None:
        return _version(self.old, number)

    def new_version(self, number: int) -> EventVersion | None:
        return _version(self.new, number)

    @property
    def published(self) -> tuple[int, ...]:
        """The versions the other side already had: stored events of them may exist."""
        return tuple(v.version for v in self.old.versions) if self.old else ()


ReadModelPair = Pair[Projection] | Pair[Consumer]


def is_consumer(pair: ReadModelPair) -> bool:
    """A consumer's read model: filled from the broker, so replayed, never rebuilt."""
    return isinstance(pair.old or pair.new, Consumer)


def stored_names(event: Event) -> tuple[str, ...]:
    """Every type name stored events of `event` may carry: its own and its former ones."""
    return (event.name, *event.renamed_from)


def _version(event: Event | None, number: int) -> EventVersion | None:
    if event is None:
        return None
    return next((v for v in event.versions if v.version == number), None)


@dataclass(frozen=True)
class Step:
    """A version step whose target version is not published yet: what this change adds."""

    pair: EventPair
    analysis: VersionStep
    mode: Compatibility

    @property
    def number(self) -> int:
        return self.analysis.new.version

    @property
    def ctx(self) -> Context:
        assert self.pair.new_ctx is not None
        return self.pair.new_ctx


def version_record(version: EventVersion, ctx: Context) -> Record:
    return record_of(version.fields, ctx.user_type, f"v{version.version}")


def locate(fields: Sequence[Field], path: Sequence[str], ctx: Context) -> Location | None:
    """The field at `path` ("amount", "currency"), walking into value types; the nearest
    enclosing field when the path leaves the schema."""
    current: Sequence[Field] = fields
    found: Location | None = None
    for name in path:
        f = next((x for x in current if x.name == name), None)
        if f is None:
            break
        found = f.location
        value_types = [
            t for n in named_types(f.type) if isinstance(t := ctx.user_type(n), ValueType)
        ]
        current = value_types[0].fields if value_types else ()
    return found


class Comparison:
    def __init__(self, old: Side, new: Side) -> None:
        self.old = old
        self.new = new

    @cached_property
    def contexts(self) -> list[tuple[str, Context | None, Context | None]]:
        old = {c.name: c for c in self.old.schema.contexts}
        new = {c.name: c for c in self.new.schema.contexts}
        return [(name, old.get(name), new.get(name)) for name in sorted(old.keys() | new.keys())]

    def _pairs(self, attribute: str, cls: type[Pair[T]]) -> list[Pair[T]]:
        pairs: list[Pair[T]] = []
        for name, old_ctx, new_ctx in self.contexts:
            old = {e.name: e for e in getattr(old_ctx, attribute, ())}
            new = {e.name: e for e in getattr(new_ctx, attribute, ())}
            for element in sorted(old.keys() | new.keys()):
                pairs.append(
                    cls(name, element, old.get(element), new.get(element), old_ctx, new_ctx)
                )
        return pairs

    @cached_property
    def _lined_up(self) -> tuple[list[EventPair], list[tuple[EventPair, Event]]]:
        pairs: list[EventPair] = []
        absorbed: list[tuple[EventPair, Event]] = []
        for context, old_ctx, new_ctx in self.contexts:
            old = {e.name: e for e in (old_ctx.events if old_ctx else ())}
            new = {e.name: e for e in (new_ctx.events if new_ctx else ())}
            partners = _renames(old, new)
            # Published events that a new event names in `renamed_from` besides its partner:
            # two event types read as one. They are not deleted; ES108 checks the merge.
            merged = {
                former: name
                for name, event in new.items()
                for former in event.renamed_from
                if former in old and former not in new and partners.get(name) != former
            }
            gone = old.keys() - new.keys() - set(partners.values()) - merged.keys()
            for name in sorted(new.keys() | gone):
                old_event = old.get(partners.get(name, name))
                pairs.append(EventPair(context, name, old_event, new.get(name), old_ctx, new_ctx))
            by_name = {p.name: p for p in pairs if p.context == context}
            absorbed.extend((by_name[reader], old[former]) for former, reader in merged.items())
        absorbed.sort(key=lambda item: (item[0].context, item[0].name, item[1].name))
        return pairs, absorbed

    @cached_property
    def events(self) -> list[EventPair]:
        return self._lined_up[0]

    @property
    def absorbed(self) -> list[tuple[EventPair, Event]]:
        """(reader, published event) where a new event also names, in `renamed_from`, a
        published event other than the one it continues: both types' stored events are
        read as the reader."""
        return self._lined_up[1]

    @cached_property
    def commands(self) -> list[Pair[Command]]:
        return self._pairs("commands", Pair[Command])

    @cached_property
    def projections(self) -> list[Pair[Projection]]:
        return self._pairs("projections", Pair[Projection])

    @cached_property
    def consumers(self) -> list[Pair[Consumer]]:
        return self._pairs("consumers", Pair[Consumer])

    @cached_property
    def read_models(self) -> list[ReadModelPair]:
        """Projections and consumers: read models alike to those who query them."""
        return [*self.projections, *self.consumers]

    @cached_property
    def sagas(self) -> list[Pair[Saga]]:
        return self._pairs("sagas", Pair[Saga])

    def event(self, context: str, name: str) -> EventPair | None:
        """The pair of the event called `name` on either side; a renamed event is also
        found by its old name."""
        here = [p for p in self.events if p.context == context]
        by_name = next((p for p in here if p.name == name), None)
        return by_name or next((p for p in here if p.old is not None and p.old.name == name), None)

    @cached_property
    def steps(self) -> list[Step]:
        """Every step into a version the other side did not have, in a stable order.

        Only events with a published version have any: events are always written at their
        latest version, so a chain of versions none of which was published has nothing
        stored to upcast and no consumer on an older version.
        """
        steps: list[Step] = []
        for pair in self.events:
            if pair.new is None or pair.new_ctx is None or not pair.published:
                continue
            published = set(pair.published)
            for new in pair.new.versions:
                previous = pair.new_version(new.version - 1)
                if new.version in published or previous is None:
                    continue
                analysis = analyse_step(pair.name, previous, new, pair.new_ctx.user_type)
                steps.append(Step(pair, analysis, _stricter(pair)))
        return steps

    @cached_property
    def all_steps(self) -> list[Step]:
        """Every version step of the schema, published or not: the rule for what a derived
        upcaster may do (ES201-ES204) holds for each, as `esgen generate` applies it."""
        added = {(s.pair.context, s.pair.name, s.number): s for s in self.steps}
        steps: list[Step] = []
        for pair in self.events:
            if pair.new is None or pair.new_ctx is None:
                continue
            for old, new in zip(pair.new.versions, pair.new.versions[1:], strict=False):
                step = added.get((pair.context, pair.name, new.version))
                if step is None:
                    analysis = analyse_step(pair.name, old, new, pair.new_ctx.user_type)
                    step = Step(pair, analysis, _stricter(pair))
                steps.append(step)
        return steps

    @cached_property
    def changed_versions(self) -> list[tuple[EventPair, EventVersion, EventVersion]]:
        """Published versions whose shape differs on the two sides."""
        changed = []
        for pair in self.events:
            if pair.old is None or pair.old_ctx is None or pair.new_ctx is None:
                continue
            for old in pair.old.versions:
                new = pair.new_version(old.version)
                if new is None:
                    continue
                # Shapes compare without names (value types, enums, trees renamed).
                if version_record(old, pair.old_ctx) != version_record(new, pair.new_ctx):
                    changed.append((pair, old, new))
        return changed


def _renames(old: dict[str, Event], new: dict[str, Event]) -> dict[str, str]:
    """New event name -> the published event it continues under another name.

    A new event continues the published one it names in `renamed_from`; failing that, one
    it shares a former name with (a second rename that left out the middle name: ES109
    says which stored name is no longer read). Only events whose name is on one side
    alone take part, and each published event is continued once.
    """
    free = {name: event for name, event in old.items() if name not in new}
    partners: dict[str, str] = {}
    fresh = sorted(new.keys() - old.keys())
    for name in fresh:
        direct = next((f for f in new[name].renamed_from if f in free), None)
        if direct is not None:
            partners[name] = direct
            del free[direct]
    # An event some new event names is that event's to read (as a partner or a merge).
    named = {former for event in new.values() for former in event.renamed_from}
    for name in fresh:
        formers = set(new[name].renamed_from)
        shared = next(
            (o for o in sorted(free) if o not in named and formers & set(free[o].renamed_from)),
            None,
        )
        if name not in partners and shared is not None:
            partners[name] = shared
            del free[shared]
    return partners


_GUARANTEES: dict[Compatibility, frozenset[str]] = {
    "none": frozenset(),
    "backward": frozenset({"backward"}),
    "forward": frozenset({"forward"}),
    "full": frozenset({"backward", "forward"}),
}


def _stricter(pair: EventPair) -> Compatibility:
    """The mode a new version is checked under: everything the published mode promised
    and everything the new one promises. Relaxing an event's mode in the same change
    that needs the relaxation would otherwise let the change switch off its own check;
    a relaxed mode applies once it is published."""
    assert pair.new is not None
    promised = _GUARANTEES[pair.new.compatibility]
    if pair.old is not None:
        promised |= _GUARANTEES[pair.old.compatibility]
    for mode, same in _GUARANTEES.items():
        if same == promised:
            return mode
    raise AssertionError(promised)  # pragma: no cover - every union is a mode
