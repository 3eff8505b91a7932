"""`make faults` in miniature, so the fault harness cannot rot: the scenarios with a few
kills on SQLite and on PostgreSQL, and a few server-side terminations there. The full run,
with 200 kills per backend, is `make faults`."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime.postgres_env import drop_schema, new_schema, require_postgres

from .harness import Backend, Fault
from .scenarios import SCENARIOS, run_scenario

KILLS = 2
# Killed projection runners already have tests of their own on both backends
# (tests/runtime/test_runtime_projection.py, test_runtime_postgres_progress.py).
NAMES = [name for name in SCENARIOS if name != "projections"]


def _check(name: str, backend: Backend, fault: Fault, tmp_path: Path) -> None:
    tally = run_scenario(name, backend, fault, KILLS, seed=7, run_dir=tmp_path / "run")
    assert tally.problems == []
    assert tally.kills == KILLS
    assert tally.events > 0
    assert (tally.lost, tally.duplicated, tally.skipped) == (0, 0, 0)
    for sent_and_expected in (tally.sent, tally.compensations):
        if sent_and_expected is not None:
            assert sent_and_expected[0] == sent_and_expected[1]
    assert tally.ok


@pytest.mark.parametrize("name", NAMES)
def test_killed_on_sqlite(name: str, tmp_path: Path) -> None:
    backend = Backend("sqlite", str(tmp_path / "events.sqlite"))
    _check(name, backend, "kill", tmp_path)


# Terminations only where they cut through a transaction in progress most often.
@pytest.mark.parametrize(
    ("name", "fault"),
    [*((name, "kill") for name in NAMES), ("writers", "terminate"), ("sagas", "terminate")],
)
def test_faulted_on_postgres(name: str, fault: Fault, tmp_path: Path) -> None:
    dsn = require_postgres()
    backend = Backend("postgres", new_schema(), dsn, drop_schema)
    _check(name, backend, fault, tmp_path)
