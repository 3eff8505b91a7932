"""What a rule reports: a finding names the element it is about and points at both sides."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from esgen.schema import Location, Severity

__all__ = ["Category", "Finding", "Hit", "Kind", "Severity"]


class Category(StrEnum):
    """Who is hurt when a rule's finding is ignored."""

    STORAGE = "storage"  # stored events: published versions must stay as they were
    BACKWARD = "backward"  # new code reading stored events through the upcaster chain
    FORWARD = "forward"  # consumers still on the previous version reading new events
    SOURCE = "source"  # code and clients calling commands or reading read models
    CONSUMERS = "consumers"  # projections and sagas rebuilt from the stored history (and
    # consumers replayed from the upstream streams)
    CONTRACT = "contract"  # other services' consumers of the events a context publishes


class Kind(StrEnum):
    EVENT = "event"
    COMMAND = "command"
    PROJECTION = "projection"
    SAGA = "saga"
    CONSUMER = "consumer"  # a read model fed by other contexts' published events


@dataclass(frozen=True, slots=True)
class Hit:
    """A finding before the rule that made it is attached; what rule functions yield."""

    context: str
    kind: Kind
    name: str
    message: str
    fix: str | None
    old: Location | None  # where it was on the side compared against
    new: Location | None  # where it is now, or the nearest place that still exists
    version: int | None = None
    field: str | None = None  # dotted for fields of value types: "amount.currency"
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # "ES103"
    rule_name: str  # "EVENT_VERSION_SAME"
    category: Category
    hit: Hit

    @property
    def severity(self) -> Severity:
        return self.hit.severity

    @property
    def subject(self) -> str:
        """`bank.AccountOpened v1 field 'owner'`: what the finding is about, for people."""
        hit = self.hit
        text = f"{hit.kind.value} {hit.context}.{hit.name}"
        if hit.version is not None:
            text += f" v{hit.version}"
        if hit.field is not None:
            text += f" field {hit.field!r}"
        return text

    def sort_key(self) -> tuple[str, int, int, str, str, int, str]:
        at = self.hit.new or self.hit.old
        file, line, col = (str(at.file), at.line, at.col) if at else ("", 0, 0)
        hit = self.hit
        return (file, line, col, self.rule, hit.name, hit.version or 0, hit.field or "")
