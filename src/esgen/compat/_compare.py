"""The two sides lined up: which contexts, events, commands and read models match by name,
and which version steps are new. Rules read this and never pair things up themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

from esgen.compat._shapes import Record, fingerprint, record_of
from esgen.compat._sides import Side
from esgen.schema import (
    Command,
    Compatibility,
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

__all__ = ["Comparison", "EventPair", "Pair", "Step", "locate", "version_record"]

T = TypeVar("T", Event, Command, Projection, Saga)


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
    def old_version(self, number: int) -> EventVersion | None:
        return _version(self.old, number)

    def new_version(self, number: int) -> EventVersion | None:
        return _version(self.new, number)

    @property
    def published(self) -> tuple[int, ...]:
        """The versions the other side already had: stored events of them may exist."""
        return tuple(v.version for v in self.old.versions) if self.old else ()


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
    def events(self) -> list[EventPair]:
        return [p for p in self._pairs("events", EventPair) if isinstance(p, EventPair)]

    @cached_property
    def commands(self) -> list[Pair[Command]]:
        return self._pairs("commands", Pair[Command])

    @cached_property
    def projections(self) -> list[Pair[Projection]]:
        return self._pairs("projections", Pair[Projection])

    @cached_property
    def sagas(self) -> list[Pair[Saga]]:
        return self._pairs("sagas", Pair[Saga])

    def event(self, context: str, name: str) -> EventPair | None:
        return next((p for p in self.events if (p.context, p.name) == (context, name)), None)

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
                before = fingerprint(version_record(old, pair.old_ctx))
                if before != fingerprint(version_record(new, pair.new_ctx)):
                    changed.append((pair, old, new))
        return changed


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
