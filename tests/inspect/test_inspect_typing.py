"""The inspection API as user code types it, against the bank example's generated service:
`service.inspect()` and what its methods return pass mypy --strict and pyright strict;
misuse fails both, on the line it is written."""

from __future__ import annotations

import re
from pathlib import Path

from harness import run_pyright
from runtime.test_read_your_writes_typing import GENERATED, _mypy, _write

USAGE = """\
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, assert_type

from pydantic import BaseModel

from esgen.runtime import EventView, InspectError, Inspector, StateView, Trace, TraceCommand
from bank.service import BankService


def look(bank: BankService) -> list[str]:
    inspector = bank.inspect()
    assert_type(inspector, Inspector)
    found: list[str] = [view.stream_id for view in inspector.streams(aggregate="Account")]
    for view in inspector.events(found[0], since=datetime(2026, 1, 5, tzinfo=UTC), until=40):
        assert_type(view, EventView)
        found.append(f"{view.event_type} {view.actor} {view.current_version}")
    state = inspector.state(found[0], at=datetime(2026, 1, 5, 9, 4, tzinfo=UTC))
    assert_type(state, StateView)
    assert_type(state.state, BaseModel)
    for step in inspector.history(found[0]):
        found.extend(change.path for change in step.changes)
    try:
        trace = inspector.trace("c0000000-0000-4000-8000-000000000002")
    except InspectError as exc:
        return [str(exc)]
    assert_type(trace, Trace)
    roots: tuple[TraceCommand, ...] = trace.roots
    document: dict[str, Any] = trace.to_json()
    found.extend(str(root.commands) for root in roots)
    found.append(str(document["event_count"]))
    found.extend(v.event_id for v in inspector.audit(actor="teller-7"))
    return found
"""

MISUSE = """\
from __future__ import annotations

from bank.service import BankService


def misuse(bank: BankService) -> None:
    inspector = bank.inspect()
    inspector.trace(7)  # wrong: an id is text
    inspector.state("Account-1", at="2026-01-05")  # wrong: a datetime, not text
    inspector.replay("Account-1")  # wrong: until is required
"""

WRONG = [i for i, line in enumerate(MISUSE.splitlines(), 1) if "# wrong" in line]


def test_inspection_passes_mypy_strict_and_misuse_fails_on_its_line(tmp_path: Path) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    misuse = _write(tmp_path, "misuse.py", MISUSE)
    output = _mypy([usage, misuse], tmp_path / "cache")
    assert not re.search(r"usage\.py:\d+: error", output), output
    lines = {int(n) for n in re.findall(r"^[^\n]*misuse\.py:(\d+): error:", output, re.M)}
    assert sorted(lines) == WRONG, output


def test_inspection_passes_pyright_strict_and_misuse_fails_on_its_line(tmp_path: Path) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    _write(tmp_path, "misuse.py", MISUSE)
    result = run_pyright([usage.parent], tmp_path, extra_paths=[GENERATED])
    assert result.files >= 2, result.report
    assert not re.search(r"usage\.py:\d+:\d+: error", result.report), result.report
    lines = {int(n) for n in re.findall(r"misuse\.py:(\d+):\d+: error:", result.report)}
    assert sorted(lines) == WRONG, result.report
