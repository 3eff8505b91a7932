"""Golden catalogs, the examples' committed catalogs, and byte-identical output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import EXAMPLES
from harness_docs import DocsCase, build_in, catalog_files, docs_cases

from esgen.config import load_settings
from esgen.docs import plan_docs

CASES = docs_cases()
EXAMPLES_WITH_DOCS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "docs").is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalog_matches_golden(case: DocsCase, tmp_path: Path) -> None:
    assert build_in(case, tmp_path) == catalog_files(case.expected), (
        "run `python tests/docs/regenerate_goldens.py` and review the diff"
    )


@pytest.mark.parametrize("example", EXAMPLES_WITH_DOCS)
def test_example_catalog_is_current(example: str) -> None:
    settings = load_settings(EXAMPLES / example)
    plan = plan_docs(settings.schema_dir, settings.docs_dir)
    stale = [str(c.path) for c in plan.pending]
    assert not stale, f"run `esgen docs` in examples/{example}"


def test_the_bank_catalog_names_the_hand_written_upcaster_users_edit() -> None:
    page = (EXAMPLES / "bank" / "docs" / "bank.md").read_text()
    assert "a hand-written upcaster, `bank.domain.upcasting.account_closed_v1`" in page
    assert (EXAMPLES / "bank" / "src/bank/domain/upcasting/account_closed_v1.py").is_file()
    assert "field 'reason' (str) added without a default" in page
    assert "| 2 | Accounts gained a currency; every account opened before held euros. |" in page


def test_catalog_is_identical_across_hash_seeds_and_working_directories(tmp_path: Path) -> None:
    source = next(c for c in CASES if c.name == "two_contexts").root / "schemas"
    outputs = []
    for index, (seed, cwd) in enumerate([("0", tmp_path), ("1", EXAMPLES), ("4321", Path("/"))]):
        project = tmp_path / f"run{index}"
        shutil.copytree(source, project / "schemas")
        subprocess.run(
            [sys.executable, "-m", "esgen.cli", "docs", str(project / "schemas")],
            cwd=cwd,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
        )
        outputs.append(catalog_files(project / "docs"))
    assert outputs[0] == outputs[1] == outputs[2]
    assert all(str(tmp_path) not in text for text in outputs[0].values())
