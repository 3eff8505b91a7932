"""Run every rule over a comparison, summarise each event whose schema changed, and list
the projections to rebuild and the consumers to replay after the deploy."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from esgen.compat import (
    _rules_consumers,
    _rules_contract,
    _rules_evolution,
    _rules_personal,
    _rules_source,
    _rules_storage,
)
from esgen.compat._compare import Comparison, EventPair, Step, stored_names, version_record
from esgen.compat._errors import CompatError
from esgen.compat._findings import Finding, Kind, Severity
from esgen.compat._fits import misfits
from esgen.compat._rule import Rule
from esgen.compat._rules_consumers import Rebuild, Replay, plan_rebuilds, plan_replays
from esgen.compat._rules_storage import growth, widened_in_place
from esgen.compat._sides import Side

__all__ = [
    "RULES",
    "EventSummary",
    "Rebuild",
    "Replay",
    "Report",
    "check",
    "find_rule",
    "parse_ignore",
]

RULES: tuple[Rule, ...] = (
    *_rules_storage.RULES,
    *_rules_personal.RULES,
    *_rules_evolution.RULES,
    *_rules_source.RULES,
    *_rules_consumers.RULES,
    *_rules_contract.RULES,
)

Verdict = Literal["safe", "warning", "breaking"]


@dataclass(frozen=True)
class EventSummary:
    """One event whose schema differs between the sides, safe or not."""

    context: str
    event: str
    mode: str
    status: Literal["added", "deleted", "changed"]
    old_versions: tuple[int, ...]
    new_versions: tuple[int, ...]
    changes: tuple[str, ...]
    verdict: Verdict


@dataclass(frozen=True)
class Report:
    old: Side
    new: Side
    findings: tuple[Finding, ...]
    events: tuple[EventSummary, ...]
    rebuilds: tuple[Rebuild, ...] = ()  # projections to rebuild after the deploy
    replays: tuple[Replay, ...] = ()  # consumers to replay from the upstream streams

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.WARNING)

    @property
    def compatible(self) -> bool:
        return self.errors == 0


def find_rule(key: str) -> Rule | None:
    """A rule by its ID (ES103) or its name (EVENT_VERSION_SAME), in any case."""
    key = key.upper()
    return next((r for r in RULES if key in (r.id, r.name)), None)


def _ignored(finding: Finding, ignore: list[tuple[Rule, str | None]]) -> bool:
    hit = finding.hit
    for rule, target in ignore:
        if rule.id != finding.rule:
            continue
        if target is None or target in (hit.name, f"{hit.context}.{hit.name}"):
            return True
    return False


def parse_ignore(entries: Collection[str]) -> list[tuple[Rule, str | None]]:
    """`ES103` or `ES103:bank.AccountOpened` (or `:AccountOpened`): a rule, everywhere or for one
    element, as buf's `ignore_only`."""
    parsed: list[tuple[Rule, str | None]] = []
    for entry in entries:
        key, _, target = entry.partition(":")
        found = find_rule(key.strip())
        if found is None:
            known = ", ".join(r.id for r in RULES)
            raise CompatError(f"--ignore {entry!r}: no rule {key!r} (rules: {known})")
        parsed.append((found, target.strip() or None))
    return parsed


def check(old: Side, new: Side, ignore: Collection[str] = ()) -> Report:
    comparison = Comparison(old, new)
    skip = parse_ignore(ignore)
    findings = sorted(
        (f for rule in RULES for f in rule.run(comparison) if not _ignored(f, skip)),
        key=Finding.sort_key,
    )
    return Report(
        old,
        new,
        tuple(findings),
        tuple(_summaries(comparison, findings)),
        tuple(plan_rebuilds(comparison, findings)),
        tuple(plan_replays(comparison, findings)),
    )


def _step_note(step: Step) -> str:
    analysis = step.analysis
    what = "; ".join(ch.summary for ch in analysis.changes) or "same fields"
    notes: list[str] = []
    if step.mode in ("backward", "full"):
        if analysis.new.upcast == "manual":
            notes.append(f"hand-written upcaster from v{step.number - 1} (upcast: manual)")
        elif analysis.derivable and analysis.problems():
            notes.append(
                f"the upcaster from v{step.number - 1} esgen would derive loses stored values"
            )
        elif analysis.derivable:
            notes.append(f"upcaster from v{step.number - 1} derived from the schema")
        else:
            notes.append(f"no upcaster from v{step.number - 1} can be derived")
    if step.mode in ("forward", "full"):
        problems = misfits(
            version_record(analysis.new, step.ctx),
            version_record(analysis.old, step.ctx),
            tolerant=True,
            may_omit=False,
        )
        notes.append(f"consumers on v{step.number - 1} {'cannot' if problems else 'can'} read it")
    if step.mode == "none":
        notes.append("not checked (compatibility: none)")
    return f"v{step.number} added: {what} ({'; '.join(notes)})"


def _summary(c: Comparison, pair: EventPair, findings: list[Finding]) -> EventSummary | None:
    mine = [
        f
        for f in findings
        if f.hit.kind is Kind.EVENT and (f.hit.context, f.hit.name) == (pair.context, pair.name)
    ]
    old_versions = tuple(v.version for v in pair.old.versions) if pair.old else ()
    new_versions = tuple(v.version for v in pair.new.versions) if pair.new else ()
    changes: list[str] = []
    if pair.old is None:
        changes.append("new event")
    elif pair.new is None:
        changes.append("deleted")
    else:
        if pair.renamed:
            changes.append(f"renamed from {pair.old.name}")
        if pair.old.aggregate != pair.new.aggregate:
            changes.append(f"moved from aggregate {pair.old.aggregate} to {pair.new.aggregate}")
        if pair.old.compatibility != pair.new.compatibility:
            changes.append(f"compatibility {pair.old.compatibility} -> {pair.new.compatibility}")
        changes.extend(f"v{n} deleted" for n in old_versions if n not in new_versions)
        for p, old, new in c.changed_versions:
            if p is pair and widened_in_place(p, old, new):
                grown = "; ".join(growth(p, old, new))
                changes.append(
                    f"v{old.version} grew in place, every stored event still reads: {grown}"
                )
            elif p is pair:
                fields = sorted(
                    {f.hit.field for f in mine if f.hit.version == old.version and f.hit.field}
                )
                where = f": {', '.join(fields)}" if fields else ""
                changes.append(f"v{old.version} changed in place{where}")
    changes.extend(_rename_notes(c, pair))
    if (note := _rules_contract.contract_note(pair)) is not None:
        changes.append(note)
    if (note := _rules_contract.id_type_note(pair)) is not None:
        changes.append(note)
    changes.extend(_step_note(step) for step in c.steps if step.pair is pair)
    if not changes:
        return None
    verdict: Verdict = "safe"
    if any(f.severity is Severity.ERROR for f in mine):
        verdict = "breaking"
    elif mine:
        verdict = "warning"
    event = pair.new or pair.old
    assert event is not None
    status: Literal["added", "deleted", "changed"] = (
        "added" if pair.old is None else "deleted" if pair.new is None else "changed"
    )
    return EventSummary(
        pair.context,
        pair.name,
        event.compatibility,
        status,
        old_versions,
        new_versions,
        tuple(changes),
        verdict,
    )


def _rename_notes(c: Comparison, pair: EventPair) -> list[str]:
    """Which stored type names the event reads now and did not, or read and does not."""
    if pair.new is None:
        return []
    merged = [m.name for reader, m in c.absorbed if reader is pair]
    before = stored_names(pair.old) if pair.old else ()
    now = stored_names(pair.new)
    return [
        *(f"also reads the stored events of {name}" for name in merged),
        *(
            f"also reads events stored as {name}"
            for name in pair.new.renamed_from
            if name not in before and name not in merged
        ),
        *(f"no longer reads events stored as {name}" for name in before if name not in now),
    ]


def _summaries(c: Comparison, findings: list[Finding]) -> list[EventSummary]:
    return [s for pair in c.events if (s := _summary(c, pair, findings)) is not None]
