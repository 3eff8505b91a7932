"""The command line as users run it: configuration, --check, --diff, exit codes, the writer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import CASES, chdir

from esgen import __version__
from esgen.cli import main

BASIC = CASES / "basic" / "schemas"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with [tool.esgen] in its pyproject.toml and the `basic` schemas."""
    shutil.copytree(BASIC, tmp_path / "model")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.esgen]\nschema_dir = "model"\nout_dir = "gen"\n'
    )
    return tmp_path


def test_version_and_help() -> None:
    assert run("--version").output.strip() == f"esgen, version {__version__}"
    for command in ([], ["generate"], ["json-schema"]):
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output


def test_generate_reads_the_project_configuration(project: Path) -> None:
    with chdir(project / "model"):  # from a subfolder: the config is found upwards
        result = run("generate")
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    assert (project / "gen" / "library" / "events" / "book.py").is_file()


def test_command_line_overrides_configuration(project: Path) -> None:
    with chdir(project):
        result = run("generate", "model", "--out", "elsewhere", "--formatter", "none")
    assert result.exit_code == 0, result.output
    assert (project / "elsewhere" / "library" / "__init__.py").is_file()
    assert not (project / "gen").exists()


def test_unchanged_files_are_not_rewritten(project: Path) -> None:
    with chdir(project):
        assert run("generate").exit_code == 0
        files = sorted((project / "gen").rglob("*.py"))
        past = 1_000_000_000
        for path in files:
            os.utime(path, (past, past))
        result = run("generate")
    assert result.exit_code == 0
    assert result.output.strip().endswith(f"{len(files)} unchanged")
    assert all(path.stat().st_mtime == past for path in files)


def test_check_lists_stale_and_missing_files_and_writes_nothing(project: Path) -> None:
    with chdir(project):
        assert run("generate").exit_code == 0
        events = project / "gen" / "library" / "events" / "book.py"
        events.write_text(events.read_text() + "\n# hand edit\n")
        (project / "gen" / "library" / "types.py").unlink()
        result = run("generate", "--check")
        assert result.exit_code == 1
        assert "stale     gen/library/events/book.py" in result.stderr
        assert "missing   gen/library/types.py" in result.stderr
        assert "# hand edit" in events.read_text()
        assert not (project / "gen" / "library" / "types.py").exists()
        assert run("generate").exit_code == 0
        assert run("generate", "--check").exit_code == 0


def test_diff_prints_a_unified_diff_and_writes_nothing(project: Path) -> None:
    with chdir(project):
        assert run("generate").exit_code == 0
        schema = project / "model" / "library.yaml"
        schema.write_text(schema.read_text().replace("member: str}", "member: str, days: int}"))
        result = run("generate", "--diff")
    assert result.exit_code == 0
    assert "--- a/gen/library/commands/book.py" in result.output
    assert "+    days: int" in result.output
    assert "days" not in (project / "gen" / "library" / "commands" / "book.py").read_text()


def test_removed_schema_parts_remove_only_generated_files(project: Path) -> None:
    with chdir(project):
        assert run("generate").exit_code == 0
        own = project / "gen" / "library" / "events" / "helpers.py"
        own.write_text("# mine\n")
        schema = project / "model" / "library.yaml"
        text = schema.read_text()
        schema.write_text(text[: text.index("  Book:")] + "  {}\n")
        result = run("generate")
    assert result.exit_code == 0, result.output
    assert "removed   gen/library/events/book.py" in result.output
    assert "removed   gen/library/commands/book.py" in result.output
    assert own.read_text() == "# mine\n"
    assert not (project / "gen" / "library" / "commands").exists()


def test_a_removed_context_is_removed(project: Path) -> None:
    with chdir(project):
        assert run("generate").exit_code == 0
        old = project / "model" / "library.yaml"
        new = project / "model" / "shelf.yaml"
        new.write_text(old.read_text().replace("context: library", "context: shelf"))
        old.unlink()
        assert run("generate").exit_code == 0
    assert not (project / "gen" / "library").exists()
    assert (project / "gen" / "shelf" / "__init__.py").exists()


def test_a_file_esgen_did_not_write_is_never_overwritten(project: Path) -> None:
    target = project / "gen" / "library" / "types.py"
    target.parent.mkdir(parents=True)
    target.write_text("# my own module\n")
    with chdir(project):
        result = run("generate")
    assert result.exit_code == 1
    assert "gen/library/types.py: error[E600]: exists but was not generated" in result.stderr
    assert target.read_text() == "# my own module\n"
    assert sorted(p.name for p in (project / "gen").rglob("*.py")) == ["types.py"]


def test_schema_errors_exit_1_and_touch_nothing(project: Path) -> None:
    with chdir(project):
        assert run("generate").exit_code == 0
        before = {p: p.read_text() for p in (project / "gen").rglob("*.py")}
        schema = project / "model" / "library.yaml"
        text = schema.read_text().replace("member: str}", "member: strr}")
        schema.write_text(text.replace("title: str,", "title: str, pages: int,"))
        result = run("generate")
    assert result.exit_code == 1
    assert "model/library.yaml:" in result.stderr and "error[E300]" in result.stderr
    assert "nothing was written" in result.stderr
    assert {p: p.read_text() for p in (project / "gen").rglob("*.py")} == before


CONFIG_ERRORS = [
    (
        '[tool.esgen]\nschema_dirr = "model"\n',
        "pyproject.toml:2:1: error[C001]: unknown esgen setting 'schema_dirr'; "
        "did you mean 'schema_dir'?",
    ),
    ('[tool.esgen]\nformatter = "yapf"\n', "formatter must be one of black, ruff, none"),
    ('[tool.esgen]\nline_length = "long"\n', "line_length must be an integer >= 40"),
    ("[tool.esgen\n", "invalid TOML"),
    ('[tool.esgen]\nschema_dir = "nowhere"\n', "schema folder 'nowhere' does not exist"),
]


@pytest.mark.parametrize(("config", "message"), CONFIG_ERRORS)
def test_configuration_errors_are_usage_errors(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "model").mkdir()
    with chdir(tmp_path):
        result = run("generate")
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_esgen_yaml_configures_a_project(tmp_path: Path) -> None:
    shutil.copytree(BASIC, tmp_path / "defs")
    (tmp_path / "esgen.yaml").write_text("schema_dir: defs\nout_dir: pkg\nformatter: none\n")
    with chdir(tmp_path):
        result = run("generate")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pkg" / "library" / "__init__.py").is_file()


def test_missing_schema_dir_argument_is_a_usage_error(tmp_path: Path) -> None:
    with chdir(tmp_path):
        result = run("generate", "does-not-exist")
    assert result.exit_code == 2
    assert "schema folder 'does-not-exist' does not exist" in result.stderr


def test_an_empty_schema_dir_is_reported(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    with chdir(tmp_path):
        result = run("generate", "schemas")
    assert result.exit_code == 1
    assert "schemas: error[E105]: no schema files (*.yaml, *.yml) in schemas" in result.stderr


def test_ruff_and_no_formatter_also_produce_importable_code(project: Path) -> None:
    for formatter in ("ruff", "none"):
        with chdir(project):
            result = run("generate", "--out", formatter, "--formatter", formatter)
        assert result.exit_code == 0, result.output
        assert (project / formatter / "library" / "events" / "book.py").is_file()


def test_readme_lists_every_diagnostic_code() -> None:
    from esgen.schema import CODES

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code, meaning in CODES.items():
        assert f"| {code} | {meaning} |" in readme
