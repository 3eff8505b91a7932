"""Golden catalog cases: `tests/docs/cases/<case>/schemas` in, the catalog in `docs/` out.

Each case keeps its expected catalog where `esgen docs` puts it by default (docs/ beside
the schemas), so links to the schema files are the same in the goldens as in a run.
Regenerate them with `python tests/docs/regenerate_goldens.py` and review the diff.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from harness import chdir

from esgen.cli import main

CASES = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class DocsCase:
    name: str
    root: Path

    @property
    def expected(self) -> Path:
        return self.root / "docs"


def docs_cases() -> list[DocsCase]:
    return [DocsCase(p.name, p) for p in sorted(CASES.iterdir()) if (p / "schemas").is_dir()]


def run_docs(folder: Path, *args: str) -> tuple[int, str, str]:
    """`esgen docs` in `folder`: exit code, standard output and standard error."""
    with chdir(folder):
        result = CliRunner().invoke(main, ["docs", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def catalog_files(folder: Path) -> dict[str, str]:
    """Every file of a catalog folder by name, its `.gitattributes` too (the catalog
    writes only directly in its folder)."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


def build_in(case: DocsCase, workdir: Path) -> dict[str, str]:
    """The catalog of a case, built in a copy of it; returns the catalog's files."""
    copy = workdir / case.name
    # Everything beside the expected catalog: a case whose context subscribes to other
    # contexts keeps their schema folders or esgen.lock files next to its `schemas`.
    for entry in sorted(case.root.iterdir()):
        if entry.is_dir() and entry.name != "docs":
            shutil.copytree(entry, copy / entry.name)
    code, _, stderr = run_docs(copy, "schemas")
    assert code == 0, stderr
    return catalog_files(copy / "docs")


def regenerate(case: DocsCase) -> None:
    shutil.rmtree(case.expected, ignore_errors=True)
    code, _, stderr = run_docs(case.root, "schemas")
    if code != 0:
        raise SystemExit(f"{case.name}: {stderr}")
