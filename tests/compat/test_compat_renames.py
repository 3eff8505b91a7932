"""Renamed events through `esgen compat` and `esgen lock` as users run them: the lock keeps
former names so a later change cannot drop one unnoticed, and a schema that keeps the old
event next to its rename does not load on either side."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from harness import chdir

from esgen.cli import main
from esgen.compat import check, current_side, directory_side, load_lock

EXIT_INPUT = 2
EXIT_BREAKING = 3

PUBLISHED = """\
context: shop
aggregates:
  Order:
    events:
      OrderPlaced:
        versions:
          1: {fields: {total: decimal}}
"""

RENAMED = """\
context: shop
aggregates:
  Order:
    events:
      OrderSubmitted:
        renamed_from: OrderPlaced
        versions:
          1: {fields: {total: decimal}}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _project(root: Path, schema: str) -> Path:
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.esgen]\nschema_dir = "model"\n')
    (root / "model" / "shop.yaml").write_text(schema)
    return root


def test_a_rename_passes_against_the_lock_and_is_recorded_with_its_former_name(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, PUBLISHED)
    with chdir(project):
        assert run("lock").exit_code == 0
        (project / "model" / "shop.yaml").write_text(RENAMED)
        result = run("compat")
        assert result.exit_code == 0, result.output
        assert "shop.OrderSubmitted" in result.output
        assert "renamed from OrderPlaced" in result.output
        assert run("lock").exit_code == 0
    lock = (project / "esgen.lock").read_text()
    assert "renamed_from: [OrderPlaced]" in lock
    # The lock loads through the schema validator, former names and all.
    (event,) = load_lock(project / "esgen.lock").schema.contexts[0].events
    assert (event.name, event.renamed_from) == ("OrderSubmitted", ("OrderPlaced",))


def test_a_second_rename_that_forgets_the_first_name_fails_against_the_lock(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, RENAMED)
    with chdir(project):
        assert run("lock").exit_code == 0
        again = RENAMED.replace("OrderSubmitted", "OrderSent").replace(
            "renamed_from: OrderPlaced", "renamed_from: OrderSubmitted"
        )
        (project / "model" / "shop.yaml").write_text(again)
        result = run("compat")
    assert result.exit_code == EXIT_BREAKING, result.output
    assert "error[ES109]: event shop.OrderSent: no longer reads events stored as " in (
        result.output
    )
    assert "'OrderPlaced' (a former name of 'OrderSubmitted' on the other side)" in result.output
    assert "was: esgen.lock:" in result.output


def test_keeping_the_old_event_next_to_its_rename_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / "previous").mkdir()
    (tmp_path / "previous" / "shop.yaml").write_text(PUBLISHED)
    both = RENAMED + PUBLISHED.split("    events:\n", 1)[1]
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "shop.yaml").write_text(both)
    with chdir(tmp_path):
        result = run("compat", "current", "--against", "previous")
    assert result.exit_code == EXIT_INPUT, result.output
    assert (
        "current/shop.yaml:6:23: error[E205]: event 'OrderSubmitted' is renamed from "
        "'OrderPlaced', but 'OrderPlaced' is still an event (at current/shop.yaml:9:7)"
    ) in result.output


def test_without_renamed_from_a_rename_is_a_deletion_whose_fix_names_the_new_event(
    tmp_path: Path,
) -> None:
    (tmp_path / "previous").mkdir()
    (tmp_path / "previous" / "shop.yaml").write_text(PUBLISHED)
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "shop.yaml").write_text(
        RENAMED.replace("        renamed_from: OrderPlaced\n", "")
    )
    with chdir(tmp_path):
        report = check(directory_side(Path("previous")), current_side(Path("current")))
    (finding,) = report.findings
    assert finding.rule == "ES101"
    assert finding.hit.fix is not None
    assert "write `renamed_from: OrderPlaced` on 'OrderSubmitted'" in finding.hit.fix
