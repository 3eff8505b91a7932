"""Every golden case, and the examples, through the same harness."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from harness import EXAMPLES, Case, cases, chdir, run_case, run_pyright, tree

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
    plan = plan_generation(
        settings.schema_dir, settings.out_dir, settings.formatter, settings.tests_dir
    )
    stale = [str(c.path) for c in plan.pending]
    assert not stale, f"run `esgen generate` in examples/{example}"


def _no_formatting(*args: object) -> str:
    raise AssertionError("the formatter ran, though every file holds the code it would get")


@pytest.mark.parametrize(
    "root",
    [c.root for c in PASSING] + sorted(p for p in EXAMPLES.iterdir() if p.is_dir()),
    ids=[c.name for c in PASSING] + sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()),
)
def test_a_fresh_clone_checks_without_formatting(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine with no record of esgen's last run (a CI clone), a check of current
    output keeps every file that holds the same code as rendered, and never formats.

    Each template must lay out its text so that its code (docstrings included, which
    black rewrites when a closing quote overflows) is what black leaves."""
    import esgen._formatter

    monkeypatch.setattr(esgen._formatter, "_format_with_black", _no_formatting)
    monkeypatch.setattr(esgen._formatter, "_ruff", _no_formatting)
    if root.parent == EXAMPLES:
        settings = load_settings(root)
        schema_dir, out, tests, formatter = (
            settings.schema_dir,
            settings.out_dir,
            settings.tests_dir,
            settings.formatter,
        )
    else:
        schema_dir, out, tests = root / "schemas", root / "expected/src", root / "expected/tests"
        formatter = load_settings(root).formatter
    with chdir(root):
        plan = plan_generation(schema_dir, out, formatter, tests)
    assert not plan.pending


def test_a_fresh_clone_still_sees_a_changed_file(tmp_path: Path) -> None:
    """The other side of the test above: a generated file on disk whose code differs
    from what the schema gives (one line of it edited, or the layout of a line with
    another comment) is still reported, with no record of esgen's last run either."""
    bank = tmp_path / "bank"
    shutil.copytree(EXAMPLES / "bank", bank, ignore=shutil.ignore_patterns("__pycache__", "*.db*"))
    settings = load_settings(bank)
    service = settings.out_dir / "bank" / "service.py"
    types = settings.out_dir / "bank" / "types.py"
    service.write_text(service.read_text().replace('prefix: str = "esgen"', 'prefix: str = "x"'))
    types.write_text(types.read_text().replace("\n\n\nclass ", "\n\n\n# hand\nclass ", 1))
    with chdir(bank):
        plan = plan_generation(
            settings.schema_dir, settings.out_dir, settings.formatter, settings.tests_dir
        )
    assert sorted(c.path.name for c in plan.pending) == ["service.py", "types.py"]


def _source_roots() -> list[Path]:
    roots = [c.expected / "src" for c in PASSING]
    return roots + [p / "src" for p in sorted(EXAMPLES.iterdir()) if (p / "src").is_dir()]


def test_golden_output_passes_mypy_strict(tmp_path: Path) -> None:
    """Generated code, scaffolds and generated tests, as users would type-check them."""
    roots = _source_roots()
    packages = [str(pkg) for root in roots for pkg in sorted(root.iterdir()) if pkg.is_dir()]
    test_files = [str(f) for c in PASSING for f in sorted((c.expected / "tests").rglob("*.py"))]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path),
         *packages, *test_files],
        env={**os.environ, "MYPYPATH": os.pathsep.join(str(r) for r in roots)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_golden_output_passes_pyright_strict(tmp_path: Path) -> None:
    """The same files through pyright's strict mode, with the explicit-override check."""
    roots = _source_roots()
    test_files = [f for c in PASSING for f in sorted((c.expected / "tests").rglob("*.py"))]
    result = run_pyright([*roots, *test_files], tmp_path, extra_paths=roots)
    assert result.files > len(roots) + len(test_files), result.report
    assert result.errors == 0, result.report


@pytest.mark.parametrize("case", PASSING, ids=[c.name for c in PASSING])
def test_golden_output_imports(case: Case) -> None:
    for package in sorted(p.name for p in (case.expected / "src").iterdir() if p.is_dir()):
        modules = [package]
        if (case.expected / "src" / package / "service.py").exists():
            modules.append(f"{package}.service")
        # A context of empty aggregates exports nothing, so its package has no __all__.
        code = "; ".join(f"import {m}" for m in modules) + f"; print({package}.__name__)"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=case.expected / "src",
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def _pytest(case: Case, pattern: str, cwd: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run a case's tests from elsewhere, so nothing (say, .hypothesis/) lands in the case."""
    files = sorted(str(f) for f in (case.expected / "tests").rglob(pattern))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(case.expected), *options, *files],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(case.expected / "src")},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


WITH_UPCASTER_TESTS = [c for c in PASSING if list(c.expected.rglob("test_*_upcasters.py"))]


@pytest.mark.parametrize("case", WITH_UPCASTER_TESTS, ids=[c.name for c in WITH_UPCASTER_TESTS])
def test_generated_upcaster_property_tests_pass(case: Case, tmp_path: Path) -> None:
    result = _pytest(case, "test_*_upcasters.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


@pytest.mark.parametrize("case", PASSING, ids=[c.name for c in PASSING])
def test_scaffolded_tests_fail_until_written(case: Case, tmp_path: Path) -> None:
    scaffolds = [
        f
        for f in (case.expected / "tests").rglob("test_*.py")
        if not f.name.endswith("_upcasters.py")
    ]
    expected = sum(f.read_text().count("\ndef test_") for f in scaffolds)
    if not expected:
        pytest.skip("the case has no commands, so no scenarios to write")
    # The JUnit report, not the console: pytest cuts summary lines to the terminal's
    # width, so what the console shows depends on how long the paths are.
    report = tmp_path / "report.xml"
    result = _pytest(case, "test_*.py", tmp_path, f"--junitxml={report}")
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = [
        (test.get("name"), [(o.tag, o.get("message", "")) for o in test])
        for test in ElementTree.parse(report).getroot().iter("testcase")
    ]
    # The scaffolds fail, each saying what to write; everything else (the upcaster
    # property tests) passes.
    failed = {name: found for name, found in outcomes if found}
    assert len(failed) == expected, failed
    for name, found in failed.items():
        assert [tag for tag, _ in found] == ["failure"], (name, found)
        assert found[0][1].startswith("Failed: not written yet: "), (name, found)


def _generated_files() -> list[Path]:
    roots = [c.expected for c in PASSING]
    roots += [p / "src" for p in sorted(EXAMPLES.iterdir()) if (p / "src").is_dir()]
    return sorted(
        f
        for root in roots
        for f in root.rglob("*.py")
        if "__pycache__" not in f.parts and f.read_text().startswith("# Code generated by esgen")
    )


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


def test_every_name_generated_modules_import_is_reserved() -> None:
    """A schema class named like something a generated module imports would shadow it."""
    import ast

    from esgen.schema._names import GENERATED_MODULE_NAMES

    imported: dict[str, Path] = {}
    files = [f for c in PASSING for f in c.expected.rglob("*.py")] + _generated_files()
    context_packages = {p.name for root in _source_roots() for p in root.iterdir() if p.is_dir()}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in context_packages:
                    continue  # the context's own names, which the validator claims
                for alias in node.names:
                    name = alias.asname or alias.name
                    if name[:1].isupper() and not name.isupper():
                        imported.setdefault(name, path)
    missing = {n: str(p) for n, p in imported.items() if n not in GENERATED_MODULE_NAMES}
    assert not missing, missing


def test_every_public_attribute_of_the_models_becomes_a_suffixed_attribute() -> None:
    """The list is written out so that attributes do not change with pydantic; a pydantic
    that adds a public model attribute must be added to it."""
    from pydantic import BaseModel

    from esgen.runtime import Command, Event
    from esgen.schema import python_name

    public = {n for cls in (BaseModel, Event, Command) for n in dir(cls) if n[:1] != "_"}
    assert {n for n in public if python_name(n) == n} == set()
