"""What a newcomer sees when something is wrong: one line that says what, where, what was
expected and what was found, an exit code of 1 or 2, and never a traceback.

Each test runs `esgen` as a user does, in a subprocess, on real files and folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from harness import CASES, EXAMPLES

from esgen.cli import main

BASIC = CASES / "basic" / "schemas"


def esgen(cwd: Path, *args: str, hash_seed: int | None = None) -> tuple[int, str, str]:
    """`esgen ARGS` run in `cwd`: exit code, standard output, standard error."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "80"}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = str(hash_seed)
    result = subprocess.run(
        [sys.executable, "-m", "esgen.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    """The error of a run that failed with one line, and nothing else: no usage screen."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    return stderr.removesuffix("\n")


def usage_error_line(stderr: str) -> str:
    """The error line of a command line that esgen could not run: click's usage screen
    (which says how to call the command), then one line that says what was wrong."""
    usage, _, error = stderr.partition("\n\n")
    # "Try 'esgen x --help'", or "-h" before click 8.2.1: either way, where help is.
    assert usage.startswith("Usage: ") and "for help." in usage, stderr
    return one_error_line(error)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(BASIC, tmp_path / "schemas")
    return tmp_path


# -- help screens -------------------------------------------------------------------------


def _help_screens(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    screens = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            screens.extend(_help_screens(sub, (*path, name)))
    return screens


@pytest.mark.parametrize("path", _help_screens(main, ()), ids=lambda p: " ".join(p) or "esgen")
def test_no_command_summary_is_cut_short_in_80_columns(path: tuple[str, ...]) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    _, _, commands = result.output.partition("\nCommands:\n")
    summaries = [line for line in commands.splitlines() if line.strip()]
    assert not [line for line in summaries if line.endswith("...")], result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output


# -- json-schema --out ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        (
            "missing/dir/x.json",
            "No such file or directory (the folder missing/dir does not exist; create it first)",
        ),
        ("folder", "Is a directory (give the path of a file)"),
        ("folder/", "Is a directory (give the path of a file)"),
        ("a-file/x.json", "Not a directory (a-file is a file, not a folder)"),
    ],
)
def test_json_schema_out_problems_are_one_line_and_write_nothing(
    tmp_path: Path, out: str, expected: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("kept\n")
    code, stdout, stderr = esgen(tmp_path, "json-schema", "--out", out)
    assert code == 2
    assert stdout == ""
    assert stderr == f"esgen: error: cannot write {out.rstrip('/')}: {expected}\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file", "folder"]
    assert (tmp_path / "a-file").read_text() == "kept\n"


def test_json_schema_out_replaces_a_file_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "esgen.schema.json"
    target.write_text("old\n")
    target.chmod(0o640)
    code, _, stderr = esgen(tmp_path, "json-schema", "--out", "esgen.schema.json")
    assert code == 0, stderr
    _, printed, _ = esgen(tmp_path, "json-schema")
    assert target.read_text(encoding="utf-8") == printed
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["esgen.schema.json"], "no temporary left"


# -- configuration files ---------------------------------------------------------------
# Every command that reads the project's settings.
SETTINGS_COMMANDS = (
    ["generate"],
    ["docs"],
    ["compat"],
    ["lock"],
    ["projections", "status", "--store", "events.db"],
    ["sagas", "run", "--store", "events.db"],
)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "pyproject.toml",
            b'[tool.esgen]\nschema_dir = "schemas"\n# caf\xe9\n',
            "pyproject.toml:3:6: error[C000]: the file is not UTF-8 text (byte 0xe9); "
            "save it as UTF-8",
        ),
        (
            "pyproject.toml",
            b"[tool.esgen\n",
            "pyproject.toml:1:12: error[C000]: invalid TOML: Expected ']' at the end of a "
            "table declaration",
        ),
        (
            "esgen.yaml",
            b"schema_dir: schemas\n\tout_dir: src\n",
            "esgen.yaml:2:1: error[C000]: invalid YAML: found a tab; YAML indents with "
            "spaces, never with tabs: replace it with spaces",
        ),
        (
            "esgen.yaml",
            b"\xff\xfe",
            "esgen.yaml:1:1: error[C000]: the file is not UTF-8 text (byte 0xff); save it as UTF-8",
        ),
        (
            "esgen.yaml",
            b"- schemas\n",
            "esgen.yaml: error[C002]: the esgen settings must be a table of keys (got list)",
        ),
    ],
)
def test_a_broken_configuration_file_is_one_located_line(
    project: Path, name: str, content: bytes, expected: str
) -> None:
    (project / name).write_bytes(content)
    for command in SETTINGS_COMMANDS:
        code, _, stderr = esgen(project, *command)
        assert code == 2, stderr
        assert one_error_line(stderr) == f"esgen: error: {expected}"


def test_an_unknown_setting_is_one_line_not_a_usage_screen(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.esgen]\nschema_dir = "schemas"\nout = "src"\n')
    for command in SETTINGS_COMMANDS:
        code, _, stderr = esgen(project, *command)
        assert code == 2, stderr
        assert one_error_line(stderr) == (
            "esgen: error: pyproject.toml:3:1: error[C001]: unknown esgen setting 'out'; "
            "did you mean 'out_dir'?"
        )


def test_every_problem_of_the_settings_is_told_at_once(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.esgen]\n"
        'SCHEMA_DIR = "schemas"\n'  # the case of a name is no reason to miss it
        "line_length = 10\n"
        'colour = "blue"\n'
        'out_dir = ""\n'
    )
    code, _, stderr = esgen(project, "generate")
    assert code == 2
    assert stderr.splitlines() == [
        "esgen: error: pyproject.toml:2:1: error[C001]: unknown esgen setting 'SCHEMA_DIR'; "
        "did you mean 'schema_dir'?",
        "esgen: error: pyproject.toml:3:1: error[C002]: line_length must be an integer >= 40",
        "esgen: error: pyproject.toml:4:1: error[C001]: unknown esgen setting 'colour' (known: "
        "schema_dir, out_dir, tests_dir, formatter, line_length, docs_dir, "
        "json_schema_remote_refs)",
        "esgen: error: pyproject.toml:5:1: error[C002]: out_dir must be a path (got '')",
    ]


def test_a_configured_schema_folder_that_is_missing_is_one_line(project: Path) -> None:
    (project / "esgen.yaml").write_text("schema_dir: schema\n")
    for command in SETTINGS_COMMANDS:
        code, _, stderr = esgen(project, *command)
        assert code == 2, stderr
        assert one_error_line(stderr) == (
            "esgen: error: schema folder 'schema' does not exist (did you mean 'schemas'?) "
            "(from esgen.yaml); pass SCHEMA_DIR or set schema_dir in [tool.esgen]"
        )


def test_compat_against_a_project_with_a_broken_configuration_is_one_line(
    project: Path,
) -> None:
    published = project / "published"
    shutil.copytree(project / "schemas", published / "schemas")
    (published / "esgen.yaml").write_text("schema_dirr: schemas\n")
    code, _, stderr = esgen(project, "compat", "schemas", "--against", "published")
    assert code == 2
    assert one_error_line(stderr) == (
        "esgen: error: published/esgen.yaml:1:1: error[C001]: unknown esgen setting "
        "'schema_dirr'; did you mean 'schema_dir'?"
    )


# -- schema files --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["generate", "docs", "compat", "lock"])
def test_a_misspelt_schema_folder_gets_a_suggestion(project: Path, command: str) -> None:
    code, _, stderr = esgen(project, command, "schema")
    assert code == 2
    assert one_error_line(stderr) == (
        "esgen: error: schema folder 'schema' does not exist (did you mean 'schemas'?); pass "
        "SCHEMA_DIR or set schema_dir in [tool.esgen]"
    )


def test_a_file_that_is_not_utf8_is_pointed_at_by_line_and_column(project: Path) -> None:
    (project / "schemas" / "extra.yaml").write_bytes(b"context: extra\ndescription: caf\xe9\n")
    code, _, stderr = esgen(project, "generate", "schemas")
    assert code == 1
    assert stderr.startswith(
        "schemas/extra.yaml:2:17: error[E100]: the file is not UTF-8 text: byte 0xe9 here"
    )


def test_a_suggestion_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    # Two fields that differ only in case: which one is suggested must not be left to the
    # order of a set, which changes from run to run.
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "till.yaml").write_text(
        "context: till\n"
        "types:\n"
        "  Price:\n"
        "    fields: {amount: int, Amount: int}\n"
        "aggregates:\n"
        "  Till:\n"
        "    id: {name: till_id, type: uuid}\n"
        "    state:\n"
        "      price: {type: Price, default: {AMOUNT: 1, amount: 1, Amount: 1}}\n"
    )
    messages = set()
    for seed in range(8):
        code, _, stderr = esgen(tmp_path, "generate", "schemas", hash_seed=seed)
        assert code == 1, stderr
        messages.add(stderr.splitlines()[0])
    assert messages == {
        "schemas/till.yaml:9:37: error[E303]: default of 'price': Price has no field "
        "'AMOUNT'; did you mean 'Amount'?"
    }


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda path: path.write_bytes(b'\xff\xfe{"type": "object"}'),
            "jsonschemas/address.json is not UTF-8 text; save it as UTF-8",
        ),
        (
            lambda path: path.mkdir(),
            "the JSON Schema file 'jsonschemas/address.json' is a folder, not a file (looked "
            "for schemas/jsonschemas/address.json)",
        ),
    ],
    ids=["not-utf8", "a-folder"],
)
def test_a_json_schema_file_that_cannot_be_read_is_a_diagnostic(
    tmp_path: Path, make: Callable[[Path], object], expected: str
) -> None:
    shutil.copytree(CASES / "json_schema_type" / "schemas", tmp_path / "schemas")
    schema = tmp_path / "schemas" / "jsonschemas" / "address.json"
    schema.unlink()
    make(schema)
    for command in ("generate", "docs"):
        code, _, stderr = esgen(tmp_path, command, "schemas")
        assert code == 1
        assert stderr.startswith(f"schemas/shop.yaml:5:18: error[E304]: {expected}\n"), stderr


def test_compat_against_a_folder_without_schemas_names_the_folder_only(project: Path) -> None:
    (project / "empty").mkdir()
    code, _, stderr = esgen(project, "compat", "schemas", "--against", "empty")
    assert code == 2
    assert "empty: error[E105]: no schema files (*.yaml, *.yml) in empty" in stderr
    assert ":0:0" not in stderr


def test_compat_against_nothing_is_refused(project: Path) -> None:
    code, _, stderr = esgen(project, "compat", "schemas", "--against", "")
    assert code == 2
    assert stderr == (
        "esgen compat: error: --against is empty; give a git ref, a schema folder or a lock file\n"
    )


def test_compat_against_a_schema_file_says_to_give_its_folder(project: Path) -> None:
    code, _, stderr = esgen(project, "compat", "schemas", "--against", "schemas/library.yaml")
    assert code == 2
    assert stderr == (
        "esgen compat: error: schemas/library.yaml is a schema file, not an esgen lock; to "
        "compare with a schema, give its folder: --against schemas\n"
    )


# -- docs ------------------------------------------------------------------------------


def test_docs_into_a_file_is_one_line(project: Path) -> None:
    (project / "README.md").write_text("# ours\n")
    code, _, stderr = esgen(project, "docs", "schemas", "--out", "README.md/catalog")
    assert code == 2
    assert stderr == (
        "esgen: error: catalog folder README.md/catalog: README.md is a file, not a folder\n"
    )
    (project / "pyproject.toml").write_text('[tool.esgen]\ndocs_dir = "README.md"\n')
    code, _, stderr = esgen(project, "docs")
    assert code == 2
    assert stderr == (
        "esgen: error: catalog folder README.md (docs_dir in the configuration) is a file, "
        "not a folder\n"
    )
    assert (project / "README.md").read_text() == "# ours\n"


def test_a_folder_where_the_catalog_writes_a_page_is_named(project: Path) -> None:
    (project / "docs" / "index.md").mkdir(parents=True)
    code, _, stderr = esgen(project, "docs", "schemas")
    assert code == 1
    assert stderr.startswith(
        "docs/index.md: error[E600]: is a folder where the catalog writes a page; move it away"
    )


# -- lock ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"esgen_lock: 1\n\xff\n",
            "esgen.lock: is not UTF-8 text (byte 0xff at line 2, column 1); restore it from git",
        ),
        (
            b"esgen_lock: [1\n",
            "esgen.lock: invalid YAML at line 2, column 1: expected ',' or ']' here, found "
            "the end of the file; is the '[' at line 1, column 13 missing its ']'?",
        ),
    ],
)
def test_a_damaged_lock_is_one_line_for_compat_and_lock(
    project: Path, content: bytes, expected: str
) -> None:
    (project / "esgen.lock").write_bytes(content)
    for command in ("compat", "lock"):
        code, _, stderr = esgen(project, command, "schemas")
        assert code == 2, stderr
        assert stderr.startswith(f"esgen {command}: error: {expected}"), stderr
        assert "\n" not in stderr.rstrip("\n")
    code, out, stderr = esgen(project, "lock", "schemas", "--force")
    assert code == 0, stderr
    assert "esgen lock: wrote esgen.lock" in out
    assert esgen(project, "compat", "schemas")[0] == 0


def test_a_lock_that_is_a_folder_is_named_as_one(project: Path) -> None:
    (project / "esgen.lock").mkdir()
    code, _, stderr = esgen(project, "lock", "schemas")
    assert code == 2
    assert stderr == "esgen lock: error: esgen.lock is a folder, not a lock file\n"
    code, _, stderr = esgen(project, "compat", "schemas")
    assert code == 2
    assert stderr == "esgen compat: error: esgen.lock is a folder, not a lock file\n"
    code, _, stderr = esgen(project, "lock", "schemas", "--force")
    assert code == 2
    assert stderr == (
        "esgen lock: error: cannot write esgen.lock: Is a directory (give the path of a file)\n"
    )


def test_a_lock_in_a_missing_folder_is_one_line(project: Path) -> None:
    code, _, stderr = esgen(project, "lock", "schemas", "--lock", "nowhere/esgen.lock")
    assert code == 2
    assert stderr == (
        "esgen lock: error: cannot write nowhere/esgen.lock: No such file or directory (the "
        "folder nowhere does not exist; create it first)\n"
    )


# -- projections and sagas -----------------------------------------------------------------


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    """The bank example with its generated code, where a user would run its read side."""
    root = tmp_path / "bank"
    for part in ("schemas", "src"):
        shutil.copytree(
            EXAMPLES / "bank" / part, root / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(EXAMPLES / "bank" / "pyproject.toml", root)
    return root


@pytest.mark.parametrize("command", [["projections", "status"], ["sagas", "run"]])
def test_a_store_that_is_a_folder_or_empty_is_one_line(bank: Path, command: list[str]) -> None:
    (bank / "store").mkdir()
    code, _, stderr = esgen(bank, *command, "--store", "store")
    assert code == 2
    assert one_error_line(stderr) == (
        "esgen: error: --store store: a folder, not a SQLite file; give the store's file"
    )
    code, _, stderr = esgen(bank, *command, "--store", "")
    assert code == 2
    assert one_error_line(stderr) == (
        "esgen: error: --store is empty; give a SQLite file path, or a postgresql:// DSN"
    )


def test_a_misspelt_context_gets_a_suggestion(bank: Path) -> None:
    code, _, stderr = esgen(bank, "projections", "status", "--store", "x.db", "--context", "bnk")
    assert code == 2
    assert one_error_line(stderr) == (
        "esgen: error: no context 'bnk' in schemas (found: bank); did you mean 'bank'?"
    )


def test_without_generated_code_the_folder_is_named_relative(bank: Path) -> None:
    shutil.rmtree(bank / "src")
    code, _, stderr = esgen(bank, "projections", "status", "--store", "x.db")
    assert code == 2
    assert one_error_line(stderr) == (
        "esgen: error: no generated bank.service in src: run esgen generate"
    )


def test_an_unreachable_postgres_is_one_line(bank: Path) -> None:
    pytest.importorskip("psycopg")
    # Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    dsn = "postgresql://nobody@127.0.0.1:1/none"
    code, _, stderr = esgen(bank, "projections", "status", "--store", dsn)
    assert code == 1  # what failed, not what was typed
    assert one_error_line(stderr).startswith("esgen: error: cannot reach PostgreSQL: ")
    code, _, stderr = esgen(bank, "sagas", "run", "--store", dsn, "--log-format", "json")
    assert code == 1
    error = json.loads(one_error_line(stderr))
    assert error["level"] == "error" and error["exit_code"] == 1
    assert error["message"].startswith("cannot reach PostgreSQL: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "nowhere.sqlite"], "no event store at 'nowhere.sqlite'"),
        (["--store", "x.db", "--context", "bnk"], "no context 'bnk' in schemas"),
        (["--store", "bank.sqlite", "--saga", "Nope"], "no saga 'Nope'"),
    ],
)
def test_what_was_typed_wrong_is_one_error_line_or_one_json_object(
    bank: Path, args: list[str], message: str
) -> None:
    from esgen.runtime import SQLiteEventStore

    SQLiteEventStore(bank / "bank.sqlite").close()
    code, _, stderr = esgen(bank, "sagas", "status", *args)
    assert code == 2
    assert one_error_line(stderr).startswith(f"esgen: error: {message}"), stderr
    code, _, stderr = esgen(bank, "sagas", "status", *args, "-q", "--log-format", "json")
    assert code == 2
    error = json.loads(one_error_line(stderr))
    assert error["level"] == "error" and error["event"] == "error"
    assert error["message"].startswith(message) and error["exit_code"] == 2


def test_only_a_malformed_command_line_gets_the_usage_screen(bank: Path) -> None:
    code, _, stderr = esgen(bank, "projections", "status", "--stor", "x.db")
    assert code == 2
    assert usage_error_line(stderr).startswith("Error: No such option")
    code, _, stderr = esgen(bank, "projections", "rebuild", "nope", "--store", "x.db")
    assert code == 2  # no store there: said before the name is looked at
    assert one_error_line(stderr).startswith("esgen: error: no event store at 'x.db'")
