"""Regenerating never loses hand-written code, and says what the schema now asks for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from harness import CASES, chdir

from esgen.cli import main

USER_EDIT = "    # a note the user wrote\n"


def generate(project: Path) -> str:
    with chdir(project):
        result = CliRunner().invoke(
            main, ["generate", "schemas", "--out", "src", "--tests", "tests"]
        )
    assert result.exit_code == 0, result.output
    return result.output


def test_user_module_survives_a_schema_change_and_the_new_obligations_are_reported(
    tmp_path: Path,
) -> None:
    shutil.copytree(CASES / "basic" / "schemas", tmp_path / "schemas")
    generate(tmp_path)
    user_module = tmp_path / "src" / "library" / "domain" / "book.py"
    user_tests = tmp_path / "tests" / "library" / "test_library_book.py"
    edited = user_module.read_text().replace(
        "class Book(BookBase):\n", "class Book(BookBase):\n" + USER_EDIT
    )
    user_module.write_text(edited)
    tests_before = user_tests.read_text()

    schema = tmp_path / "schemas" / "library.yaml"
    text = schema.read_text()
    text = text.replace(
        "      LendBook:\n",
        "      RetireBook:\n        fields: {why: str}\n        emits: [BookRetired]\n      LendBook:\n",
    )
    text = text.replace(
        "      BookLent:\n",
        "      BookRetired:\n        versions:\n          1: {fields: {why: str}}\n      BookLent:\n",
    )
    schema.write_text(text)
    output = generate(tmp_path)

    assert user_module.read_text() == edited, "the user's module was changed"
    assert user_tests.read_text() == tests_before, "the user's tests were changed"
    assert "to add (mypy and the tests fail until you do):" in output
    assert (
        "Book lacks handle_retire_book(self, command: RetireBook) -> Sequence[BookRetired]"
        in output
    )
    assert "Book lacks apply_book_retired(self, event: BookRetired) -> BookState" in output
    # The next run, answered from the run cache, still says what is missing.
    assert "Book lacks apply_book_retired(self, event: BookRetired) -> BookState" in (
        generate(tmp_path)
    )

    # mypy names the missing methods where the service builds the aggregate...
    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "library",
        ],
        cwd=tmp_path / "src",
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 1
    assert 'Cannot instantiate abstract class "Book"' in mypy.stdout
    assert "apply_book_retired" in mypy.stdout and "handle_retire_book" in mypy.stdout

    # ... and so do the tests.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(user_tests)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Can't instantiate abstract class Book" in tests.stdout
    assert "apply_book_retired" in tests.stdout


def test_a_deleted_scaffold_is_created_again(tmp_path: Path) -> None:
    shutil.copytree(CASES / "basic" / "schemas", tmp_path / "schemas")
    generate(tmp_path)
    user_module = tmp_path / "src" / "library" / "domain" / "book.py"
    user_module.unlink()
    output = generate(tmp_path)
    assert "created   src/library/domain/book.py" in output
