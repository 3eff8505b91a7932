"""What `esgen generate` tells the user at the end of every run, cached or not: what their
own modules still lack, and which generated files were edited by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import CASES, EXAMPLES

# Runs esgen's command line in a fresh interpreter and says whether the generator was
# loaded: "SKIPPED" proves an answer came from the run cache.
PROBE = """
import sys
from esgen.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("LOADED" if "esgen.schema" in sys.modules else "SKIPPED", file=sys.stderr)
"""

DOMAIN = Path("src/library/domain/book.py")
EVENTS = Path("src/library/events/book.py")
UPCASTERS = Path("src/library/upcasters/book.py")
STUBS = {
    "handle_add_book": "return [BookAdded(title=command.title, isbn=command.isbn)]",
    "handle_lend_book": "return [BookLent(member=command.member)]",
    "apply_book_added": "return BookState(title=event.title, isbn=event.isbn)",
    "apply_book_lent": "return self.state.evolve(on_loan=True)",
}
ALL_STUBS = [
    "still to implement (4):",
    f"  {DOMAIN}: Book.handle_add_book still raises NotImplementedError",
    f"  {DOMAIN}: Book.handle_lend_book still raises NotImplementedError",
    f"  {DOMAIN}: Book.apply_book_added still raises NotImplementedError",
    f"  {DOMAIN}: Book.apply_book_lent still raises NotImplementedError",
]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str  # without the probe's own line
    cached: bool


def esgen(project: Path, *args: str, cache: Path | None = None) -> Run:
    """Run `esgen generate`; with `cache`, on a run cache of its own (say, an empty one:
    a fresh clone on another machine)."""
    command = ["generate", "schemas", "--out", "src", "--tests", "tests", *args]
    # By default with the tests' private ESGEN_CACHE_DIR (conftest.py).
    env = os.environ.copy() if cache is None else {**os.environ, "ESGEN_CACHE_DIR": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    err, _, probe = result.stderr.rstrip("\n").rpartition("\n")
    assert probe in ("LOADED", "SKIPPED"), result.stderr
    return Run(result.returncode, result.stdout, err + "\n" if err else "", probe == "SKIPPED")


def implement(project: Path, *methods: str) -> None:
    """Write the bodies of the named stubs, as the user would."""
    path = project / DOMAIN
    text = path.read_text()
    for method in methods:
        stub = f'raise NotImplementedError("Book.{method}")'
        assert stub in text
        text = text.replace(stub, STUBS[method])
    path.write_text(text)


def edit_schema(project: Path, old: str, new: str) -> None:
    schema = project / "schemas" / "library.yaml"
    text = schema.read_text()
    assert old in text
    schema.write_text(text.replace(old, new))


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=root,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The `basic` case generated once, the run recorded in the cache, and everything
    committed to git, as a project is."""
    shutil.copytree(CASES / "basic" / "schemas", tmp_path / "schemas")
    first = esgen(tmp_path)
    assert first.code == 0, first.err
    assert not first.cached
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "generated")
    return tmp_path


# Item A: the obligations are never hidden.


def test_a_cached_run_ends_with_what_is_still_to_implement(project: Path) -> None:
    run = esgen(project)
    assert run.cached and run.code == 0
    assert run.out.splitlines() == ["esgen: 3 skipped, 15 unchanged", "", *ALL_STUBS]
    assert run.err == ""


def test_the_list_empties_once_the_stubs_are_implemented_also_on_a_cached_run(
    project: Path,
) -> None:
    implement(project, *STUBS)
    full = esgen(project)
    assert not full.cached, "a user's edit must not be answered from the cache"
    assert "still to implement" not in full.out and "to add" not in full.out
    cached = esgen(project)
    assert cached.cached
    assert cached.out == "esgen: 3 skipped, 15 unchanged\n"
    for flag in ("--check", "--diff"):
        quiet = esgen(project, flag)
        assert (quiet.code, quiet.out, quiet.err, quiet.cached) == (0, "", "", True)


def test_an_edit_of_a_user_owned_module_after_a_cached_run_is_noticed(project: Path) -> None:
    assert esgen(project).cached
    implement(project, "handle_add_book")
    after = esgen(project)
    assert "still to implement (3):" in after.out
    assert "Book.handle_add_book" not in after.out
    assert "Book.apply_book_lent still raises NotImplementedError" in after.out
    again = esgen(project)
    assert again.cached and again.out == after.out

    # A method the user deletes is named as one to add, also after a cached run.
    path = project / DOMAIN
    text = path.read_text()
    start = text.index("    @override\n    def apply_book_lent")
    path.write_text(text[:start].rstrip("\n") + "\n")
    removed = esgen(project)
    assert "to add (mypy and the tests fail until you do):" in removed.out
    assert f"  {DOMAIN}: Book lacks apply_book_lent(self, event: BookLent) -> BookState" in (
        removed.out
    )
    assert "still to implement (2):" in removed.out
    assert esgen(project).out == removed.out


def test_methods_left_behind_by_a_removed_event_or_command_are_named(project: Path) -> None:
    implement(project, *STUBS)
    path = project / DOMAIN
    text = path.read_text()
    # What a removed event and a removed command leave in the user's class; a helper of
    # the user's own, and a method named like a handler outside the class, are not news.
    path.write_text(
        text.rstrip("\n")
        + "\n\n    @override\n    def apply_book_burnt(self, event: object) -> BookState:\n"
        "        return self.state\n\n"
        "    def handle_burn_book(self, command: object) -> list[object]:\n        return []\n\n"
        "    def _helper(self) -> None:\n        pass\n\n\n"
        "def apply_elsewhere() -> None:\n    pass\n"
    )
    lines = path.read_text().splitlines()
    burnt = next(n for n, line in enumerate(lines, 1) if "def apply_book_burnt" in line)
    burn = next(n for n, line in enumerate(lines, 1) if "def handle_burn_book" in line)
    run = esgen(project)
    assert run.code == 0
    assert run.out.splitlines()[1:] == [
        "",
        "left behind (remove them, or rename them after the new name):",
        f"  {DOMAIN}: Book.apply_book_burnt (line {burnt}) is not called any more: its event "
        "or command was removed, renamed, or is no longer handled here",
        f"  {DOMAIN}: Book.handle_burn_book (line {burn}) is not called any more: its event "
        "or command was removed, renamed, or is no longer handled here",
    ]
    again = esgen(project)
    assert again.cached and again.out == run.out


def test_a_user_owned_test_module_that_does_not_parse_is_noticed_after_a_cached_run(
    project: Path,
) -> None:
    assert esgen(project).cached
    tests = project / "tests" / "library" / "test_library_book.py"
    tests.write_text(tests.read_text() + "\ndef broken(:\n")
    run = esgen(project)
    assert not run.cached
    assert "tests/library/test_library_book.py: does not parse" in run.out


@pytest.mark.parametrize("cache", ["cached", "--no-cache"])
def test_check_and_diff_list_the_obligations_on_stderr(project: Path, cache: str) -> None:
    extra = ("--no-cache",) if cache == "--no-cache" else ()
    for flag in ("--check", "--diff"):
        run = esgen(project, flag, *extra)
        assert run.cached == (cache == "cached")
        assert run.code == 0
        assert run.out == "", f"{flag} writes nothing to stdout when nothing changed"
        assert run.err.splitlines() == ["", *ALL_STUBS]


def test_diff_output_applies_cleanly_while_the_obligations_go_to_stderr(project: Path) -> None:
    edit_schema(
        project,
        "      LendBook:\n",
        "      RetireBook:\n        fields: {why: str}\n        emits: [BookRetired]\n"
        "      LendBook:\n",
    )
    edit_schema(
        project,
        "      BookLent:\n",
        "      BookRetired:\n        versions:\n          1: {fields: {why: str}}\n"
        "      BookLent:\n",
    )
    diff = esgen(project, "--diff")
    assert diff.code == 0
    assert diff.out.startswith("--- a/")
    assert "to add" not in diff.out and "still to implement" not in diff.out
    assert "to add (mypy and the tests fail until you do):" in diff.err
    assert "Book lacks handle_retire_book(self, command: RetireBook)" in diff.err
    assert "still to implement (4):" in diff.err

    check = esgen(project, "--check")
    assert check.code == 1 and check.out == ""
    assert check.err.rstrip("\n").endswith(ALL_STUBS[-1]), "the list ends the output"
    assert "Book lacks handle_retire_book" in check.err

    # `esgen generate --diff | git apply` brings the project up to date.
    subprocess.run(["git", "apply"], input=diff.out, cwd=project, text=True, check=True)
    after = esgen(project, "--check")
    assert after.code == 0, after.err
    assert "Book lacks handle_retire_book" in after.err


# Item B: hand edits of generated files are named.


def hand_edit(project: Path, relative: Path) -> str:
    """Edit the body of a generated file as a user would; returns its content before."""
    path = project / relative
    before = path.read_text()
    assert before.startswith("# Code generated by esgen")
    path.write_text(before + "\n\ndef helper() -> int:  # mine\n    return 1\n")
    return before


@pytest.mark.parametrize("cache", ["cached", "--no-cache"])
def test_check_names_a_hand_edited_file_instead_of_calling_it_stale(
    project: Path, cache: str
) -> None:
    extra = ("--no-cache",) if cache == "--no-cache" else ()
    assert esgen(project).cached  # the cache holds the run before the edit
    hand_edit(project, EVENTS)
    check = esgen(project, "--check", *extra)
    assert check.code == 1 and check.out == ""
    lines = check.err.splitlines()
    assert f"edited by hand {EVENTS}" in lines
    assert not any(line.startswith("stale") for line in lines)
    assert (
        "esgen: 1 file(s) out of date, 1 of them edited by hand; "
        "run `esgen generate` (it replaces hand edits)"
    ) in lines
    assert lines[-1] == ALL_STUBS[-1]
    assert "# mine" in (project / EVENTS).read_text(), "--check wrote nothing"


@pytest.mark.parametrize("cache", ["cached", "--no-cache"])
def test_diff_names_a_hand_edited_file_on_stderr(project: Path, cache: str) -> None:
    extra = ("--no-cache",) if cache == "--no-cache" else ()
    assert esgen(project).cached
    hand_edit(project, EVENTS)
    diff = esgen(project, "--diff", *extra)
    assert diff.code == 0
    assert diff.out.startswith(f"--- a/{EVENTS}\n+++ b/{EVENTS}\n")
    assert "-def helper() -> int:  # mine" in diff.out
    assert "edited by hand" not in diff.out
    lines = diff.err.splitlines()
    assert lines[:2] == [
        f"edited by hand {EVENTS}",
        "esgen: the diff replaces hand edits in 1 file(s)",
    ]
    assert lines[-1] == ALL_STUBS[-1]


@pytest.mark.parametrize("cache", ["cached", "--no-cache"])
def test_generate_restores_a_hand_edited_file_and_says_so(project: Path, cache: str) -> None:
    extra = ("--no-cache",) if cache == "--no-cache" else ()
    assert esgen(project).cached
    before = hand_edit(project, EVENTS)
    run = esgen(project, *extra)
    assert run.code == 0
    assert run.out.splitlines()[:2] == [
        f"updated   {EVENTS} (edited by hand; your edits were replaced)",
        "esgen: 3 skipped, 14 unchanged, 1 updated",
    ]
    assert (project / EVENTS).read_text() == before
    again = esgen(project)
    assert again.cached and "edited by hand" not in again.out


def test_a_file_both_edited_by_hand_and_stale_is_named_as_both(project: Path) -> None:
    hand_edit(project, EVENTS)
    edit_schema(project, "1: {fields: {member: str}}", "1: {fields: {member: str, days: int}}")
    check = esgen(project, "--check")
    assert check.code == 1
    lines = check.err.splitlines()
    assert f"edited by hand {EVENTS} (and stale)" in lines
    assert "1 of them edited by hand" in check.err
    run = esgen(project)
    assert f"updated   {EVENTS} (edited by hand; your edits were replaced)" in run.out
    text = (project / EVENTS).read_text()
    assert "days: int" in text and "# mine" not in text


def test_a_hand_edited_file_the_schema_no_longer_produces_is_named(project: Path) -> None:
    hand_edit(project, UPCASTERS)
    # Without version 2 of BookAdded, no upcaster is left to generate.
    edit_schema(
        project,
        "          2: {fields: {title: str, isbn: Isbn, genre: {type: Genre, default: fiction}}}\n",
        "",
    )
    check = esgen(project, "--check")
    assert f"obsolete  {UPCASTERS} (edited by hand)" in check.err.splitlines()
    run = esgen(project)
    assert f"removed   {UPCASTERS} (edited by hand; removed with your edits)" in run.out
    assert not (project / UPCASTERS).exists()


def test_a_schema_change_alone_is_still_called_stale(project: Path) -> None:
    edit_schema(project, "1: {fields: {member: str}}", "1: {fields: {member: str, days: int}}")
    check = esgen(project, "--check")
    assert f"stale     {EVENTS}" in check.err.splitlines()
    assert "edited by hand" not in check.err
    assert "edited by hand" not in esgen(project).out


# Without the run cache's record, and files laid out by another formatter.


def test_without_the_record_a_hand_edit_is_simply_out_of_date(
    project: Path, tmp_path: Path
) -> None:
    """A fresh clone: nothing says what esgen wrote, so an edit and a stale file look alike."""
    clone = tmp_path / "clone-cache"
    hand_edit(project, EVENTS)
    check = esgen(project, "--check", cache=clone)
    assert check.code == 1 and not check.cached
    lines = check.err.splitlines()
    assert f"out of date {EVENTS}" in lines
    assert "edited by hand" not in check.err and "stale" not in check.err
    assert "esgen: 1 file(s) out of date; run `esgen generate`" in lines
    run = esgen(project, cache=clone)
    assert f"updated   {EVENTS}" in run.out.splitlines()
    assert "# mine" not in (project / EVENTS).read_text()
    # Now the clone has a record: the next hand edit is named as one.
    hand_edit(project, EVENTS)
    assert f"edited by hand {EVENTS}" in esgen(project, "--check", cache=clone).err


def test_a_file_esgen_wrote_earlier_is_stale_not_edited(project: Path) -> None:
    """Switching branches brings back files esgen wrote before: the record knows them."""
    before = (project / EVENTS).read_text()
    edit_schema(project, "1: {fields: {member: str}}", "1: {fields: {member: str, days: int}}")
    assert esgen(project).code == 0
    (project / EVENTS).write_text(before)  # as `git checkout <branch> -- src` would
    check = esgen(project, "--check")
    assert f"stale     {EVENTS}" in check.err.splitlines()
    assert "edited by hand" not in check.err


@pytest.mark.parametrize("cache", ["recorded", "fresh clone"])
def test_a_file_laid_out_by_another_formatter_is_up_to_date(
    project: Path, tmp_path: Path, cache: str
) -> None:
    """Same code and comments, other line breaks: another release of black, or the user's
    own formatter run over the project, must not make `--check` fail."""
    own = tmp_path / "clone-cache" if cache == "fresh clone" else None
    service = project / "src" / "library" / "service.py"
    before = service.read_text()
    subprocess.run(
        [sys.executable, "-m", "black", "-q", "--line-length", "50", str(service)], check=True
    )
    relaid = service.read_text()
    assert relaid != before
    check = esgen(project, "--check", cache=own)
    assert check.code == 0, check.err
    run = esgen(project, "-v", cache=own)
    assert "unchanged src/library/service.py" in run.out.splitlines()
    assert service.read_text() == relaid, "left as it is"

    # A change of the code itself is not a matter of layout.
    service.write_text(relaid.replace("max_attempts: int = 3", "max_attempts: int = 4"))
    assert esgen(project, "--check", cache=own).code == 1


def test_generated_files_carry_no_digest_of_their_own(project: Path) -> None:
    """Only the header says where a file comes from; what the cache needs stays in the
    cache, so no line of a file changes with every edit of it."""
    for path in sorted((project / "src").rglob("*.py")) + sorted((project / "tests").rglob("*.py")):
        lines = path.read_text().splitlines()
        if lines and lines[0].startswith("# Code generated by esgen"):
            assert not any("digest" in line for line in lines[:3]), path


def test_a_teammates_generated_code_pulled_by_git_is_not_called_a_hand_edit(
    project: Path, tmp_path: Path
) -> None:
    # A teammate, in a clone with a run cache of its own, changes the schema and commits.
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(project), str(mate))
    edit_schema(mate, "1: {fields: {member: str}}", "1: {fields: {member: str, days: int}}")
    assert esgen(mate, cache=tmp_path / "mate-cache").code == 0
    git(mate, "commit", "-q", "-am", "days")
    git(project, "pull", "-q", str(mate), "main")
    # Here, esgen never wrote what git brought; the schema changes again.
    edit_schema(project, "member: str, days: int}", "member: str, days: int, note: str}")
    run = esgen(project)
    assert run.code == 0, run.err
    assert f"updated   {EVENTS}" in run.out.splitlines()
    assert "edited by hand" not in run.out
    # A real edit on top of what git brought is still named.
    hand_edit(project, EVENTS)
    edit_schema(project, "days: int, note: str}", "days: int}")
    assert f"updated   {EVENTS} (edited by hand; your edits were replaced)" in esgen(project).out


def test_refusal_hooks_are_no_obligation_and_never_left_behind_while_sent(
    tmp_path: Path,
) -> None:
    project = tmp_path / "bank"
    shutil.copytree(EXAMPLES / "bank", project, ignore=shutil.ignore_patterns("docs"))
    saga = project / "src" / "bank" / "domain" / "money_transfer.py"
    # The bank's saga overrides two of its five hooks, and leaves the rest to the base.
    assert "def on_deposit_money_refused" in saga.read_text()
    assert esgen(project).out.splitlines()[1:] == []
    # A hook for a command the saga does not send (any more) is named.
    saga.write_text(
        saga.read_text()
        + "\n    def on_close_account_refused(self, command: object, error: Exception) -> None:\n"
        "        pass\n"
    )
    line = len(saga.read_text().splitlines()) - 1
    assert esgen(project).out.splitlines()[1:] == [
        "",
        "left behind (remove them, or rename them after the new name):",
        f"  src/bank/domain/money_transfer.py: MoneyTransfer.on_close_account_refused (line "
        f"{line}) is not called any more: its event or command was removed, renamed, or is "
        "no longer handled here",
    ]
