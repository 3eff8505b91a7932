"""Every golden case, and the examples, through the same harness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import EXAMPLES, Case, cases, run_case, tree

from esgen.codegen import plan_generation
from esgen.config import load_settings

CASES = cases()
PASSING = [c for c in CASES if not c.fails]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_matches_golden(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stderr = run_case(case, out)
    if case.fails:
        assert code == 1, stderr
        assert stderr == case.expected_stderr.read_text(encoding="utf-8")
        assert not out.exists(), "a failing run must not write anything"
    else:
        assert code == 0, stderr
        assert tree(out) == tree(case.expected), "run `make goldens` and review the diff"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_generated_code_is_current(example: str) -> None:
    settings = load_settings(EXAMPLES / example)
    plan = plan_generation(settings.schema_dir, settings.out_dir, settings.formatter)
    stale = [str(c.path) for c in plan.pending]
    assert not stale, f"run `esgen generate` in examples/{example}"


def test_golden_output_passes_mypy_strict() -> None:
    roots = [c.expected for c in PASSING]
    roots += [p / "src" for p in sorted(EXAMPLES.iterdir()) if (p / "src").is_dir()]
    packages = [str(pkg) for root in roots for pkg in sorted(root.iterdir()) if pkg.is_dir()]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", PASSING, ids=[c.name for c in PASSING])
def test_golden_output_imports(case: Case) -> None:
    for package in sorted(p.name for p in case.expected.iterdir() if p.is_dir()):
        code = f"import {package}; print(len({package}.__all__))"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=case.expected,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def _generated_files() -> list[Path]:
    roots = [c.expected for c in PASSING]
    roots += [p / "src" for p in sorted(EXAMPLES.iterdir()) if (p / "src").is_dir()]
    return sorted(f for root in roots for f in root.rglob("*.py") if "__pycache__" not in f.parts)


def test_generated_output_is_black_formatted() -> None:
    """Templates lay code out in black's style, so black is skipped where lines fit."""
    import black
    from black.mode import TargetVersion

    mode = black.Mode(target_versions={TargetVersion.PY311})
    unformatted = [
        str(path)
        for path in _generated_files()
        if black.format_str(text := path.read_text(), mode=mode) != text
    ]
    assert not unformatted
