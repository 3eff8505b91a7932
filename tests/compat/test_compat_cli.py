"""`esgen compat` as users run it: exit codes, each output format, options, input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import chdir

from compat.cases import CASES
from esgen.cli import main

EXIT_INPUT = 2
EXIT_BREAKING = 3


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def case(tmp_path: Path) -> Path:
    """A copy of a case with two findings of different rules and one safe event."""
    root = tmp_path / "case"
    shutil.copytree(CASES / "full_and_none_modes", root)
    return root


def compat(root: Path, *args: str) -> Result:
    with chdir(root):
        return run("compat", "current", "--against", "previous", *args)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert "compat" in result.output and "lock" in result.output
    for command in ("compat", "lock"):
        assert run(command, "--help").exit_code == 0


def test_exit_codes(tmp_path: Path, case: Path) -> None:
    assert compat(case).exit_code == EXIT_BREAKING
    with chdir(CASES / "safe_new_versions"):
        safe = run("compat", "current", "--against", "previous")
    assert safe.exit_code == 0, safe.output
    assert "esgen compat: compatible with previous (1 event(s) changed, all safe)" in safe.output
    assert "  safe     shop.OrderPlaced (backward, v1 -> v1-v2)" in safe.output


def test_text_format(case: Path) -> None:
    lines = compat(case).output.splitlines()
    assert lines[0] == (
        "current/shop.yaml:9:11: error[ES211]: event shop.OrderPlaced v2 field 'note': "
        "consumers still on version 1 require this field, which version 2 no longer has"
    )
    assert lines[1] == "  was: previous/shop.yaml:8:40"
    assert lines[2].startswith("  fix: keep the field")
    assert lines[-1] == "esgen compat: 3 breaking change(s) against previous"
    assert "events changed since previous:" in lines


def test_json_format(case: Path) -> None:
    result = compat(case, "--format", "json")
    data = json.loads(result.output)
    assert data["format"] == "esgen-compat/1"
    assert data["against"] == {"kind": "files", "label": "previous", "path": "previous"}
    assert (data["compatible"], data["errors"], data["warnings"]) == (False, 3, 0)
    first = data["findings"][0]
    assert set(first) == {
        "rule", "name", "category", "severity", "context", "kind", "element",
        "version", "field", "message", "fix", "old", "new",
    }  # fmt: skip
    assert (first["rule"], first["category"], first["kind"]) == ("ES211", "forward", "event")
    assert first["new"] == {"file": "current/shop.yaml", "line": 9, "col": 11}
    assert first["old"] == {"file": "previous/shop.yaml", "line": 8, "col": 40}
    assert [e["verdict"] for e in data["events"]] == ["breaking", "breaking"]
    assert data["events"][0]["old_versions"] == [1] and data["events"][0]["new_versions"] == [1, 2]


def test_github_format_escapes_what_workflow_commands_need(tmp_path: Path) -> None:
    root = tmp_path / "case"
    shutil.copytree(CASES / "inline_enum_changed", root)
    # A value with a percent sign and a comma, and a folder name with a comma and colon;
    # version 1 loses a value in place (gaining one is no finding).
    previous = root / "previous" / "shop.yaml"
    previous.write_text(previous.read_text().replace("[open, closed]", "[open, closed, gone]"))
    for side in ("previous", "current"):
        path = root / side / "shop.yaml"
        path.write_text(path.read_text().replace("closed", "'100%,closed'"))
    (root / "current").rename(root / "now, 1:0")
    with chdir(root):
        result = run("compat", "now, 1:0", "--against", "previous", "--format", "github")
    assert result.exit_code == EXIT_BREAKING
    line = result.output.splitlines()[0]
    assert line.startswith(
        "::error file=now%2C 1%3A0/shop.yaml,line=7,col=24,title=ES103 EVENT_VERSION_SAME::"
    )
    assert "100%25,closed" in line and "\n" not in line
    assert result.output.splitlines()[-1] == "esgen compat: 2 breaking change(s) against previous"


def test_github_warnings_are_warnings() -> None:
    with chdir(CASES / "projection_changes"):
        result = run("compat", "current", "--against", "previous", "--format", "github")
    lines = result.output.splitlines()[:-1]
    levels = {line.split(" ", 1)[0] for line in lines}
    assert levels == {"::error", "::warning"}
    # A rebuild after deploy is a warning, a read model that breaks its readers an error.
    assert all(("title=ES404" in line) == line.startswith("::warning") for line in lines)


def test_markdown_format(case: Path) -> None:
    text = compat(case, "--format", "markdown").output
    assert text.startswith("### ❌ esgen compat: 3 breaking change(s) against previous\n")
    assert "| Event | Versions | Mode | Changes | Verdict |" in text
    assert "| `shop.OrderPlaced` | v1 → v1-v2 | full | v2 added: " in text
    assert (
        "| ❌ | ES211 `FORWARD_FIELD_KEPT` | `current/shop.yaml:9:11` | `previous/shop.yaml:8:40` |"
        in text
    )
    with chdir(CASES / "lists_maps_nullable_in_place"):
        piped = run("compat", "current", "--against", "previous", "--format", "markdown").output
    assert "int \\| None" in piped and " int | None" not in piped


def test_markdown_when_nothing_changed() -> None:
    with chdir(CASES / "safe_cosmetic"):
        result = run("compat", "current", "--against", "previous", "--format", "markdown")
    assert result.exit_code == 0
    assert result.output == "### ✅ esgen compat: compatible with previous (no event changed)\n"


def test_ignore_and_strict(case: Path) -> None:
    assert (
        compat(
            case,
            "--ignore",
            "ES211",
            "--ignore",
            "upcast_field_added_with_default",
            "--ignore",
            "ES103:OrderDrafted",
        ).exit_code
        == 0
    )
    scoped = compat(case, "--ignore", "ES103:shop.OrderPlaced", "--format", "json")
    assert json.loads(scoped.output)["errors"] == 3, "scoped to another event: nothing skipped"
    unknown = compat(case, "--ignore", "ES999")
    assert unknown.exit_code == EXIT_INPUT
    assert "--ignore 'ES999': no rule 'ES999'" in unknown.stderr
    with chdir(CASES / "projection_needs_rebuild"):
        skip = ("--ignore", "ES406:ShippingLog")
        lenient = run("compat", "current", "--against", "previous", *skip)
        strict = run("compat", "current", "--against", "previous", *skip, "--strict")
    assert lenient.exit_code == 0, lenient.output
    assert "esgen compat: 8 warning(s) against previous" in lenient.output
    assert strict.exit_code == EXIT_BREAKING


def test_list_rules() -> None:
    from esgen.compat import RULES

    lines = run("compat", "--list-rules").output.splitlines()
    assert [line.split()[0] for line in lines] == [r.id for r in RULES]
    assert lines[0].split()[:3] == ["ES101", "EVENT_NO_DELETE", "storage"]


def test_against_a_project_folder_uses_its_configured_schema_folder(tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(CASES / "version_deleted" / "previous", old / "model")
    (old / "esgen.yaml").write_text("schema_dir: model\n")
    with chdir(CASES / "version_deleted"):
        result = run("compat", "current", "--against", str(old), "--format", "json")
    data = json.loads(result.output)
    assert data["findings"][0]["rule"] == "ES102"
    assert data["findings"][0]["old"]["file"].endswith("old/model/shop.yaml")


def test_current_schema_with_errors_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "shop.yaml").write_text(
        "context: shop\naggregates: {A: {events: {E: {versions: {1: {fields: {a: nope}}}}}}}\n"
    )
    with chdir(tmp_path):
        result = run("compat", "--against", str(CASES / "version_deleted" / "previous"))
    assert result.exit_code == EXIT_INPUT
    assert "schemas/shop.yaml:2:58: error[E300]" in result.stderr
    assert "esgen compat: error: the schema does not load" in result.stderr


def test_old_side_with_errors_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "shop.yaml").write_text(
        "context: shop\naggregates: {A: {events: {E: {versions: {1: {fields: {a: nope}}}}}}}\n"
    )
    with chdir(CASES / "version_deleted"):
        result = run("compat", "current", "--against", str(tmp_path / "old"))
    assert result.exit_code == EXIT_INPUT
    assert "does not load, so there is nothing sound to compare with" in result.stderr
    assert "error[E300]" in result.stderr


def test_missing_schema_folder_is_a_usage_error(tmp_path: Path) -> None:
    with chdir(tmp_path):
        result = run("compat", "nowhere", "--against", "main")
    assert result.exit_code == EXIT_INPUT
    assert "schema folder 'nowhere' does not exist" in result.output


def test_cli_formats_match_the_package() -> None:
    from esgen.cli._compat import _FORMATS
    from esgen.compat import FORMATS

    assert _FORMATS == FORMATS
