"""The compat package's public surface, its rule catalogue, the docs that describe it, and
the command line's import cost."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import esgen.compat
from esgen import EsgenError
from esgen.compat import RULES, Category, CompatError, GitError, LockError

DOCS = Path(__file__).parent.parent.parent / "docs" / "compat.md"

EXPORTS = [
    "FORMATS",
    "JSON_FORMAT",
    "LOCK_FORMAT",
    "LOCK_NAME",
    "RULES",
    "Category",
    "CompatError",
    "EventSummary",
    "Finding",
    "GitError",
    "Hit",
    "Kind",
    "LockError",
    "LockPlan",
    "Rebuild",
    "Replay",
    "Report",
    "Rule",
    "Side",
    "check",
    "current_side",
    "directory_side",
    "find_rule",
    "fingerprint",
    "fingerprints",
    "git_side",
    "load_contract",
    "load_lock",
    "plan_lock",
    "render",
    "render_lock",
    "repository_root",
    "rules_table",
]

# The hundreds and tens of an ID say its category.
_ID_CATEGORY = {
    "ES10": Category.STORAGE,
    "ES11": Category.STORAGE,  # personal data at rest (ES110-ES112)
    "ES20": Category.BACKWARD,
    "ES21": Category.FORWARD,
    "ES30": Category.SOURCE,
    "ES31": Category.SOURCE,
    "ES40": Category.CONSUMERS,
    "ES50": Category.CONTRACT,
}


def test_exports_are_pinned() -> None:
    assert esgen.compat.__all__ == EXPORTS
    for name in EXPORTS:
        assert hasattr(esgen.compat, name), name


def test_errors_share_the_root() -> None:
    assert issubclass(CompatError, EsgenError)
    assert issubclass(GitError, CompatError) and issubclass(GitError, RuntimeError)
    assert issubclass(LockError, CompatError) and issubclass(LockError, ValueError)


def test_rules_are_well_formed() -> None:
    ids = [r.id for r in RULES]
    names = [r.name for r in RULES]
    assert len(set(ids)) == len(ids) and len(set(names)) == len(names)
    assert ids == sorted(ids)
    for r in RULES:
        assert re.fullmatch(r"ES[1-5][0-9]{2}", r.id), r.id
        assert re.fullmatch(r"[A-Z][A-Z_]+", r.name), r.name
        assert _ID_CATEGORY[r.id[:4]] is r.category, r.id
        assert r.purpose and "\n" not in r.purpose and not r.purpose.endswith("."), r.id


def test_docs_list_every_rule_as_it_is() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for r in RULES:
        row = re.search(
            rf"^\| {r.id} \| {r.name} \| {r.category.value} \| [^|]+ \| (.+) \|$", text, re.M
        )
        assert row is not None, f"docs/compat.md has no row for {r.id} {r.name}"
        assert row.group(1) == r.purpose, r.id
    documented = re.findall(r"^\| (ES\d{3}) \|", text, re.M)
    assert documented == [r.id for r in RULES]


def test_docs_name_every_format_and_exit_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for fmt in esgen.compat.FORMATS:
        assert f"--format {fmt}" in text
    assert esgen.compat.JSON_FORMAT in text
    for code in range(4):
        assert f"\n| {code} |" in text


def test_importing_the_cli_does_not_import_compat() -> None:
    code = "import json, sys\nimport esgen.cli\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    modules = json.loads(result.stdout)
    assert "esgen.cli._compat" in modules
    assert not [m for m in modules if m.startswith("esgen.compat")]
