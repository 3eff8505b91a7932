"""The schema fuzzer, seeded and bounded, as part of the test suite (`make fuzz` runs more).

The same campaign as `make fuzz` (worker processes under a watchdog, so a hang in C code
fails the test instead of hanging it), with a fixed seed: every run draws the same cases.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fuzz_target import judge
from run_fuzz import campaign

SEED = 20260114
COUNT = 300


def test_fuzzed_schemas_generate_or_fail_with_located_errors(tmp_path: Path) -> None:
    report = campaign(COUNT, SEED, jobs=2, keep=tmp_path / "failures", stall=60.0, shrink=True)
    assert report.schemas == COUNT, report.summary()
    assert not report.unexpected, (
        report.summary() + "\n\n" + _details(report.failures, report.minimal)
    )
    # The drawn cases reach every outcome: a fuzzer that only meets YAML errors tests little.
    # The mix of a seeded draw still moves with unrelated changes to esgen (13 to 27 of 300
    # schemas generated, between versions that judge identical files identically), so
    # the bound asks that generating succeeds regularly, not at a given rate.
    assert report.kinds["ok"] >= COUNT // 50, report.summary()
    assert report.kinds["imported"] >= 1, report.summary()
    assert report.kinds["located"] >= COUNT // 3, report.summary()


def _details(failures: dict[str, list[Path]], minimal: dict[str, Path]) -> str:
    shown = []
    for sig in sorted(failures):
        where = minimal.get(sig) or (failures[sig] or [None])[0]
        if where is not None:
            files = sorted((where / "schemas").iterdir())
            text = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[:1500]}" for f in files)
            detail = (where / "detail.txt").read_text(errors="replace")[-1500:]
            shown.append(f"== {sig}\n{text}\n{detail}")
    return "\n".join(shown)


CASES = Path(__file__).parents[1] / "cases"
# Every minimal reproducer the fuzzer found is a golden case, tests/cases/fuzz_<what>/,
# whose expected stderr test_cases.py compares; here each also goes through the fuzzer's
# own judge (no traceback, located errors, nothing written, in bounded time).


def _reproducers() -> list[Any]:
    return [
        pytest.param(case, id=case.name)
        for case in sorted(CASES.glob("fuzz_*"))
        if (case / "schemas").is_dir()
    ]


@pytest.mark.parametrize("case", _reproducers())
def test_reproducer_fails_with_located_errors(case: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(case / "schemas", project / "schemas")
    outcome = judge(project)
    assert outcome.kind in ("ok", "located"), f"{outcome.signature}\n{outcome.detail}"
