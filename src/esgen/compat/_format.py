"""A report as text for people, JSON for tools, workflow commands for GitHub annotations,
and a Markdown table for a pull-request comment. Pure: each returns a string."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esgen.compat._check import RULES, EventSummary, Rebuild, Replay, Report
from esgen.compat._findings import Finding, Severity
from esgen.compat._sides import Side
from esgen.schema import Location

__all__ = ["FORMATS", "JSON_FORMAT", "render", "rules_table"]

FORMATS = ("text", "json", "github", "markdown")
JSON_FORMAT = "esgen-compat/1"  # bumped only when the JSON changes incompatibly


def _versions(numbers: Sequence[int]) -> str:
    if not numbers:
        return "-"
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 1:
        return f"v{numbers[0]}-v{numbers[-1]}"
    return ", ".join(f"v{n}" for n in numbers)


def _counts(report: Report) -> str:
    parts = []
    if report.errors:
        parts.append(f"{report.errors} breaking change(s)")
    if report.warnings:
        parts.append(f"{report.warnings} warning(s)")
    return ", ".join(parts)


def _headline(report: Report) -> str:
    return _verdict(report) + _rebuild_note(report)


def _verdict(report: Report) -> str:
    against = report.old.label
    changed = len(report.events)
    if report.errors or report.warnings:
        return f"{_counts(report)} against {against}"
    if changed:
        return f"compatible with {against} ({changed} event(s) changed, all safe)"
    return f"compatible with {against} (no event changed)"


def _rebuild_note(report: Report) -> str:
    """A rebuild or a replay is a deploy step: the one line a CI log shows must name it."""
    note = ""
    if report.rebuilds:
        names = ", ".join(f"{r.context}.{r.projection}" for r in report.rebuilds)
        note += f"; rebuild after deploying: {names}"
    if report.replays:
        names = ", ".join(f"{r.context}.{r.consumer}" for r in report.replays)
        note += f"; replay after deploying: {names}"
    return note


def _replay_when(r: Replay) -> str:
    if r.enforced:
        return "its runner refuses to start until it is replayed"
    return "the runner does not ask for this replay"


# Consumers are filled from the broker: replayed from the upstream streams, not rebuilt.
_REPLAY_DOC = 'from the upstream streams: docs/consumers.md, "Changing a consumer\'s fields"'
_STORE = "STORE: the event store's SQLite file or postgresql:// DSN"


def _rebuild_when(r: Rebuild) -> str:
    if r.enforced:
        return "catch-up refuses it until it is rebuilt"
    return "the runtime does not ask for this rebuild"


# -- text ------------------------------------------------------------------------------------


def _text(report: Report) -> str:
    lines: list[str] = []
    for f in report.findings:
        hit = f.hit
        old = report.old.where(hit.old)
        at = report.new.where(hit.new) or old or f"{hit.context}"
        lines.append(f"{at}: {f.severity.value}[{f.rule}]: {f.subject}: {hit.message}")
        if old is not None and hit.new is not None:
            lines.append(f"  was: {old}")
        if hit.fix:
            lines.append(f"  fix: {hit.fix}")
    if report.events:
        if lines:
            lines.append("")
        lines.append(f"events changed since {report.old.label}:")
        for s in report.events:
            versions = f"{_versions(s.old_versions)} -> {_versions(s.new_versions)}"
            lines.append(f"  {s.verdict:8} {s.context}.{s.event} ({s.mode}, {versions})")
            lines.extend(f"           {change}" for change in s.changes)
    if report.rebuilds:
        if lines:
            lines.append("")
        lines.append(f"projections to rebuild after deploying ({_STORE}):")
        for r in report.rebuilds:
            lines.append(f"  {r.context}.{r.projection}: {r.command}")
            lines.extend(f"           {reason}" for reason in r.reasons)
            lines.append(f"           ({_rebuild_when(r)})")
    if report.replays:
        if lines:
            lines.append("")
        lines.append(f"consumers to replay after deploying ({_REPLAY_DOC}):")
        for p in report.replays:
            lines.append(f"  {p.context}.{p.consumer}")
            lines.extend(f"           {reason}" for reason in p.reasons)
            lines.append(f"           ({_replay_when(p)})")
    if lines:
        lines.append("")
    lines.append(f"esgen compat: {_headline(report)}")
    return "\n".join(lines) + "\n"


# -- json ------------------------------------------------------------------------------------


def _location(side: Side, location: Location | None) -> dict[str, Any] | None:
    if location is None:
        return None
    return {"file": side.show_file(location.file), "line": location.line, "col": location.col}


def _finding_json(report: Report, f: Finding) -> dict[str, Any]:
    hit = f.hit
    return {
        "rule": f.rule,
        "name": f.rule_name,
        "category": f.category.value,
        "severity": f.severity.value,
        "context": hit.context,
        "kind": hit.kind.value,
        "element": hit.name,
        "version": hit.version,
        "field": hit.field,
        "message": hit.message,
        "fix": hit.fix,
        "old": _location(report.old, hit.old),
        "new": _location(report.new, hit.new),
    }


def _summary_json(s: EventSummary) -> dict[str, Any]:
    return {
        "context": s.context,
        "event": s.event,
        "mode": s.mode,
        "status": s.status,
        "old_versions": list(s.old_versions),
        "new_versions": list(s.new_versions),
        "changes": list(s.changes),
        "verdict": s.verdict,
    }


def _rebuild_json(r: Rebuild) -> dict[str, Any]:
    return {
        "context": r.context,
        "projection": r.projection,
        "name": r.name,
        "command": r.command,
        "enforced": r.enforced,
        "reasons": list(r.reasons),
    }


def _replay_json(r: Replay) -> dict[str, Any]:
    return {
        "context": r.context,
        "consumer": r.consumer,
        "name": r.name,
        "enforced": r.enforced,
        "reasons": list(r.reasons),
    }


def _json(report: Report) -> str:
    data = {
        "format": JSON_FORMAT,
        "against": {"kind": report.old.kind, "label": report.old.label, **report.old.detail},
        "schema": {"path": report.new.label},
        "compatible": report.compatible,
        "errors": report.errors,
        "warnings": report.warnings,
        "findings": [_finding_json(report, f) for f in report.findings],
        "events": [_summary_json(s) for s in report.events],
        "rebuilds": [_rebuild_json(r) for r in report.rebuilds],
        "replays": [_replay_json(r) for r in report.replays],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# -- github ----------------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(report: Report, repository: Path | None) -> str:
    """Workflow commands: GitHub shows each as an annotation on the pull request's diff.

    Paths must be relative to the repository root, wherever esgen runs from.
    """
    lines = []
    for f in report.findings:
        hit = f.hit
        level = "error" if f.severity is Severity.ERROR else "warning"
        props = [f"title={_escape_property(f'{f.rule} {f.rule_name}')}"]
        if hit.new is not None:
            path = hit.new.file.resolve()
            shown = os.path.relpath(path, repository) if repository else os.path.relpath(path)
            props[:0] = [
                f"file={_escape_property(Path(shown).as_posix())}",
                f"line={hit.new.line}",
                f"col={hit.new.col}",
            ]
        text = f"{f.subject}: {hit.message}"
        if (old := report.old.where(hit.old)) is not None:
            text += f" (was {old})"
        if hit.fix:
            text += f". Fix: {hit.fix}"
        lines.append(f"::{level} {','.join(props)}::{_escape_data(text)}")
    lines.append(f"esgen compat: {_headline(report)}")
    return "\n".join(lines) + "\n"


# -- markdown --------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _markdown(report: Report) -> str:
    mark = "❌" if report.errors else ("⚠️" if report.warnings else "✅")
    out = [f"### {mark} esgen compat: {_cell(_headline(report))}", ""]
    verdicts = {"safe": "✅ safe", "warning": "⚠️ warning", "breaking": "❌ breaking"}
    if report.events:
        out += [
            "| Event | Versions | Mode | Changes | Verdict |",
            "| --- | --- | --- | --- | --- |",
        ]
        for s in report.events:
            versions = f"{_versions(s.old_versions)} → {_versions(s.new_versions)}"
            changes = "<br>".join(_cell(c) for c in s.changes)
            out.append(
                f"| `{s.context}.{s.event}` | {versions} | {s.mode} | {changes} "
                f"| {verdicts[s.verdict]} |"
            )
        out.append("")
    if report.rebuilds:
        out += [
            f"Projections to rebuild after deploying ({_cell(_STORE)}):",
            "",
            "| Projection | Command | Why | Runtime |",
            "| --- | --- | --- | --- |",
        ]
        for r in report.rebuilds:
            why = "<br>".join(_cell(reason) for reason in r.reasons)
            out.append(
                f"| `{r.context}.{r.projection}` | `{r.command}` | {why} | {_rebuild_when(r)} |"
            )
        out.append("")
    if report.replays:
        out += [
            f"Consumers to replay after deploying ({_cell(_REPLAY_DOC)}):",
            "",
            "| Consumer | Why | Runtime |",
            "| --- | --- | --- |",
        ]
        for p in report.replays:
            why = "<br>".join(_cell(reason) for reason in p.reasons)
            out.append(f"| `{p.context}.{p.consumer}` | {why} | {_replay_when(p)} |")
        out.append("")
    if report.findings:
        out += [
            "| | Rule | Where | Was | Problem | Fix |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in report.findings:
            hit = f.hit
            icon = "❌" if f.severity is Severity.ERROR else "⚠️"
            new = report.new.where(hit.new)
            old = report.old.where(hit.old)
            out.append(
                f"| {icon} | {f.rule} `{f.rule_name}` | {f'`{new}`' if new else '-'} "
                f"| {f'`{old}`' if old else '-'} | {_cell(f'{f.subject}: {hit.message}')} "
                f"| {_cell(hit.fix or '')} |"
            )
        out.append("")
    return "\n".join(out)


def render(report: Report, format: str, repository: Path | None = None) -> str:
    if format == "json":
        return _json(report)
    if format == "github":
        return _github(report, repository)
    if format == "markdown":
        return _markdown(report)
    return _text(report)


def rules_table() -> str:
    """Every rule, one a line: what `esgen compat --list-rules` prints."""
    width = max(len(r.name) for r in RULES)
    return "".join(f"{r.id}  {r.name:{width}}  {r.category.value:9}  {r.purpose}\n" for r in RULES)
