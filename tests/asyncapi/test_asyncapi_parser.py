"""The AsyncAPI documents `esgen docs` writes, read by the official AsyncAPI parser: no
errors (warnings are printed, for whoever reads the log)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from asyncapi_parser import Parsed, parse
from harness import EXAMPLES

from esgen.docs import plan_docs

CASES = Path(__file__).parent.parent / "docs" / "cases"
# Every committed AsyncAPI document: the bank's, and the golden cases' (one of them with
# several versions, value types, enums, a JSON Schema type and optional fields).
DOCUMENTS = sorted(
    [*EXAMPLES.glob("*/docs/*.asyncapi.yaml"), *CASES.glob("*/docs/*.asyncapi.yaml")]
)


def _shown(parsed: Parsed) -> str:
    return "\n".join(str(d) for d in parsed.diagnostics)


def test_the_bank_and_a_golden_case_have_documents() -> None:
    names = {p.name for p in DOCUMENTS}
    assert {"bank.asyncapi.yaml", "shop.asyncapi.yaml"} <= names


@pytest.mark.parametrize("document", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_document_parses_without_errors(document: Path) -> None:
    parsed = parse(document)
    for warning in parsed.of("warning"):
        print(f"{document.name}: {warning}")
    assert not parsed.of("error"), _shown(parsed)
    assert parsed.valid and parsed.version == "3.0.0", _shown(parsed)


def test_the_committed_documents_are_what_esgen_docs_writes() -> None:
    # The parser reads the committed files: they must be the current ones.
    for folder in sorted({p.parent for p in DOCUMENTS}):
        plan = plan_docs(folder.parent / "schemas", folder)
        assert not [c.path for c in plan.pending if c.path.suffix == ".yaml"]


def test_a_broken_document_is_reported(tmp_path: Path) -> None:
    """The check can fail: a message that points at nothing, and an operation that sends
    on a channel that does not exist, are errors the parser names."""
    bank = next(p for p in DOCUMENTS if p.name == "bank.asyncapi.yaml")
    document = yaml.safe_load(bank.read_text(encoding="utf-8"))
    channel = document["channels"]["MoneyDeposited"]
    channel["messages"]["MoneyDepositedV1"] = {"$ref": "#/components/messages/Nowhere"}
    document["operations"]["sendMoneyWithdrawn"]["action"] = "publish"  # AsyncAPI 2's word
    broken = tmp_path / "broken.asyncapi.yaml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    parsed = parse(broken)
    assert not parsed.valid
    errors = _shown(parsed)
    assert "Nowhere" in errors or "#/components/messages" in errors, errors
    assert any("action" in d.path for d in parsed.of("error")), errors


def test_a_document_written_now_parses(tmp_path: Path) -> None:
    """From a schema folder to a parsed document through the command, not the goldens."""
    from click.testing import CliRunner

    from esgen.cli import main

    shutil.copytree(CASES / "published" / "schemas", tmp_path / "schemas")
    result = CliRunner().invoke(main, ["docs", str(tmp_path / "schemas")])
    assert result.exit_code == 0, result.output
    parsed = parse(tmp_path / "docs" / "shop.asyncapi.yaml")
    assert parsed.valid, _shown(parsed)
