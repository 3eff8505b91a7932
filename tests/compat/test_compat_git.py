"""`esgen compat --against REF` on real repositories: branches, tags, commits, subfolders,
shallow clones, and files that exist only on one side."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import chdir

from compat.gitrepo import SHOP_V1, git, make_project
from esgen.cli import main

EXIT_BREAKING = 3
EXIT_INPUT = 2


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def change_in_place(project: Path) -> None:
    text = (project / "model" / "shop.yaml").read_text()
    (project / "model" / "shop.yaml").write_text(text.replace("total: decimal\n", "total: int\n"))


def test_unchanged_schema_is_compatible(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against", "main")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "esgen compat: compatible with main (no event changed)"


def test_old_locations_read_ref_colon_path(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    text = SHOP_V1.replace("  Order:\n", "  # a comment moves every line down\n  Order:\n")
    (project / "model" / "shop.yaml").write_text(text.replace("total: decimal\n", "total: int\n"))
    with chdir(project):
        result = run("compat", "--against", "main")
    assert result.exit_code == EXIT_BREAKING, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "model/shop.yaml:14:15: error[ES103]: event shop.OrderPlaced v1 field 'total': "
        "published version changed in place: decimal -> int"
    )
    assert lines[1] == "  was: main:model/shop.yaml:13:15"


def test_branch_tag_and_commit_give_the_same_findings(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    git(project, "tag", "v1.0")
    commit = git(project, "rev-parse", "HEAD")
    git(project, "switch", "-q", "-c", "feature")
    change_in_place(project)
    outputs = []
    with chdir(project):
        for ref in ("main", "v1.0", commit, commit[:8], "HEAD"):
            result = run("compat", "--against", ref, "--format", "json")
            assert result.exit_code == EXIT_BREAKING, result.output
            data = json.loads(result.output)
            assert data["against"]["commit"] == commit
            assert data["findings"][0]["old"]["file"] == f"{ref}:model/shop.yaml"
            outputs.append([(f["rule"], f["new"]) for f in data["findings"]])
    assert all(o == outputs[0] for o in outputs)


def test_runs_from_a_subfolder(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    change_in_place(project)
    (project / "model" / "deep").mkdir()
    with chdir(project / "model" / "deep"):
        text = run("compat", "--against", "main")
        github = run("compat", "--against", "main", "--format", "github")
    assert text.exit_code == EXIT_BREAKING, text.output
    # Paths as seen from where esgen runs; old paths as git names them, from the root.
    assert text.output.startswith("../shop.yaml:13:15: error[ES103]")
    assert "  was: main:model/shop.yaml:13:15" in text.output
    # GitHub wants paths from the repository root, wherever the command ran.
    assert github.output.startswith("::error file=model/shop.yaml,line=13,col=15,")


def test_working_tree_files_added_and_deleted(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "model" / "billing.yaml").write_text(
        "context: billing\naggregates:\n  Invoice:\n    events:\n"
        "      InvoiceSent:\n        versions:\n          1: {fields: {number: str}}\n"
    )
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "billing")
    (project / "model" / "billing.yaml").unlink()  # deleted, not committed
    (project / "model" / "crm.yaml").write_text(  # new, untracked
        "context: crm\naggregates:\n  Customer:\n    events:\n"
        "      CustomerNamed:\n        versions:\n          1: {fields: {name: str}}\n"
    )
    with chdir(project):
        result = run("compat", "--against", "main", "--format", "json")
    data = json.loads(result.output)
    assert [(f["rule"], f["context"], f["element"]) for f in data["findings"]] == [
        ("ES101", "billing", "InvoiceSent")
    ]
    assert data["findings"][0]["new"] is None  # its whole context is gone
    assert data["findings"][0]["old"] == {"file": "main:model/billing.yaml", "line": 5, "col": 7}
    assert [(e["event"], e["status"]) for e in data["events"]] == [
        ("InvoiceSent", "deleted"),
        ("CustomerNamed", "added"),
    ]


def test_schema_folder_absent_at_the_ref_means_nothing_was_published(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "README").write_text("before the schema\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "readme")
    git(project, "tag", "before")
    (project / "schemas").mkdir()
    (project / "schemas" / "shop.yaml").write_text(SHOP_V1)
    with chdir(project):
        result = run("compat", "--against", "before")
    assert result.exit_code == 0, result.output
    assert "compatible with before (1 event(s) changed, all safe)" in result.output
    # Said, so a moved folder's in-place changes do not pass unseen.
    assert "note: no schema files in schemas at before" in result.stderr
    assert "--against PATH" in result.stderr


def test_json_schema_files_are_read_at_the_ref_too(tmp_path: Path) -> None:
    schema = (
        "context: crm\ntypes:\n  Address: {json_schema: ../shared/address.json}\n"
        "aggregates:\n  Customer:\n    events:\n      CustomerMoved:\n"
        "        versions:\n          1: {fields: {address: Address}}\n"
    )
    project = make_project(tmp_path / "p", schema)
    (project / "shared").mkdir()
    address = project / "shared" / "address.json"
    address.write_text('{"type": "object", "properties": {"street": {"type": "string"}}}')
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "address")
    with chdir(project):
        assert run("compat", "--against", "main").exit_code == 0
        address.write_text(
            '{\n  "properties": {"street": {"type": "string"}},\n  "type": "object"\n}\n'
        )
        assert run("compat", "--against", "main").exit_code == 0, "only reformatted"
        address.write_text('{"type": "object", "properties": {"street": {"type": "integer"}}}')
        result = run("compat", "--against", "main")
    assert result.exit_code == EXIT_BREAKING, result.output
    assert (
        "error[ES104]" in result.output
        and "its JSON Schema (address.json) changed" in result.output
    )


def test_unknown_ref_says_how_to_fetch_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against", "no-such-branch")
    assert result.exit_code == EXIT_INPUT
    assert result.stdout == ""
    assert "unknown git ref 'no-such-branch'" in result.stderr
    assert "git fetch origin no-such-branch:refs/remotes/origin/no-such-branch" in result.stderr


def test_option_like_ref_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against=--output=/tmp/x")
    assert result.exit_code == EXIT_INPUT
    assert "is not a git ref" in result.stderr


def test_not_a_repository(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "schemas").mkdir(parents=True)
    (project / "schemas" / "shop.yaml").write_text(SHOP_V1)
    with chdir(project):
        result = run("compat", "--against", "main")
    assert result.exit_code == EXIT_INPUT
    assert "is not inside a git repository" in result.stderr


def test_shallow_clone_explains_and_the_hint_works(tmp_path: Path) -> None:
    origin = make_project(tmp_path / "origin")
    git(origin, "branch", "release")  # the published state
    change_in_place(origin)
    git(origin, "commit", "-q", "-am", "change in place")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "main", f"file://{origin}", "clone")
    with chdir(clone):
        missing = run("compat", "--against", "origin/release")
    assert missing.exit_code == EXIT_INPUT
    assert "is not in this clone, which is shallow" in missing.stderr
    assert "git fetch --unshallow" in missing.stderr
    fetch = re.search(r"`(git fetch --depth=1 origin [^`]+)`", missing.stderr)
    assert fetch is not None, missing.stderr
    assert fetch.group(1) == "git fetch --depth=1 origin release:refs/remotes/origin/release"
    git(clone, *fetch.group(1).split()[1:])
    with chdir(clone):
        result = run("compat", "--against", "origin/release")
    assert result.exit_code == EXIT_BREAKING, result.output
    assert "was: origin/release:model/shop.yaml:13:15" in result.output


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("v9.9", "`git fetch --depth=1 origin tag v9.9` and compare with `--against v9.9`"),
        # git fetches a commit by its full hash only: the hint must not offer the short one.
        ("deadbeef", "`git fetch origin` (its branches; an abbreviated hash cannot be fetched"),
        ("HEAD~3", "fetch the whole history: `git fetch --unshallow`"),
    ],
)
def test_shallow_hint_for_tags_and_commits(tmp_path: Path, ref: str, expected: str) -> None:
    origin = make_project(tmp_path / "origin")
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", "clone")
    with chdir(tmp_path / "clone"):
        result = run("compat", "--against", ref)
    assert result.exit_code == EXIT_INPUT
    assert "is not in this clone, which is shallow" in result.stderr
    assert expected in result.stderr
    assert "git fetch --depth=1 origin deadbeef" not in result.stderr


def _hint(stderr: str) -> tuple[list[str], str]:
    """The first `git fetch ...` command of a hint and the `--against` ref it names."""
    fetch = re.search(r"`git (fetch [^`]+)`", stderr)
    against = re.search(r"`--against ([^`]+)`", stderr)
    assert fetch is not None and against is not None, stderr
    return fetch.group(1).split(), against.group(1)


def _published(tmp_path: Path) -> tuple[Path, str]:
    """An origin with a `release` branch, a `v1.0` tag and a later change in place; the
    full hash of the published commit."""
    origin = make_project(tmp_path / "origin")
    git(origin, "branch", "release")
    git(origin, "tag", "v1.0")
    published = git(origin, "rev-parse", "HEAD")
    change_in_place(origin)
    git(origin, "commit", "-q", "-am", "change in place")
    return origin, published


def test_no_remotes_at_all_says_so_and_how_to_add_one(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against", "origin/main")
    assert result.exit_code == EXIT_INPUT
    assert result.stderr == (
        "esgen compat: error: unknown git ref 'origin/main': no branch, tag or commit of that "
        "name here. This repository has no remote to fetch it from; add the repository it "
        "was published in: `git remote add origin URL`, then fetch it: `git fetch origin "
        "main:refs/remotes/origin/main` and compare with `--against origin/main`\n"
    )
    assert "origin/origin" not in result.stderr


@pytest.mark.parametrize("ref", ["upstream/release", "refs/remotes/fork/release"])
def test_no_remotes_at_all_adds_the_remote_the_ref_names(tmp_path: Path, ref: str) -> None:
    origin, _ = _published(tmp_path)
    project = tmp_path / "p"
    git(tmp_path, "clone", "-q", "--single-branch", "--branch", "main", f"file://{origin}", "p")
    git(project, "remote", "remove", "origin")
    remote = ref.removeprefix("refs/remotes/").partition("/")[0]
    with chdir(project):
        missing = run("compat", "--against", ref)
    assert missing.exit_code == EXIT_INPUT
    assert f"`git remote add {remote} URL`" in missing.stderr, missing.stderr
    assert "origin" not in missing.stderr
    fetch, against = _hint(missing.stderr)
    assert fetch == ["fetch", remote, f"release:refs/remotes/{remote}/release"]
    assert against == f"{remote}/release"
    # Following the hint word for word works.
    git(project, "remote", "add", remote, f"file://{origin}")
    git(project, *fetch)
    with chdir(project):
        result = run("compat", "--against", against)
    assert result.exit_code == EXIT_BREAKING, result.output


def test_a_remote_that_is_not_configured_points_at_the_one_that_is(tmp_path: Path) -> None:
    origin, _ = _published(tmp_path)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--single-branch", "--branch", "main", f"file://{origin}", "clone")
    git(clone, "remote", "rename", "origin", "upstream")
    with chdir(clone):
        missing = run("compat", "--against", "origin/release")
    assert missing.exit_code == EXIT_INPUT
    assert "no remote here is called 'origin' (remotes: upstream)" in missing.stderr
    fetch, against = _hint(missing.stderr)
    assert fetch == ["fetch", "upstream", "release:refs/remotes/upstream/release"]
    git(clone, *fetch)
    with chdir(clone):
        result = run("compat", "--against", against)
    assert result.exit_code == EXIT_BREAKING, result.output


def test_a_branch_fetched_under_a_remote_is_named_with_it(tmp_path: Path) -> None:
    origin, _ = _published(tmp_path)
    git(tmp_path, "clone", "-q", f"file://{origin}", "clone")
    with chdir(tmp_path / "clone"):
        result = run("compat", "--against", "release")
    assert result.exit_code == EXIT_INPUT
    assert result.stderr.endswith("but origin has it: compare with `--against origin/release`\n"), (
        result.stderr
    )


@pytest.mark.parametrize("ref", ["release", "v1.0", "full-hash"])
def test_the_hint_for_a_branch_a_tag_or_a_commit_works(tmp_path: Path, ref: str) -> None:
    origin, published = _published(tmp_path)
    ref = published if ref == "full-hash" else ref
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-tags", "--single-branch", "--branch",
        "main", f"file://{origin}", "clone")  # fmt: skip
    with chdir(clone):
        missing = run("compat", "--against", ref)
    assert missing.exit_code == EXIT_INPUT
    fetch, against = (
        _hint(missing.stderr) if ref != published else (["fetch", "--depth=1", "origin", ref], ref)
    )
    assert f"`git {' '.join(fetch)}`" in missing.stderr
    git(clone, *fetch)
    with chdir(clone):
        result = run("compat", "--against", against)
    assert result.exit_code == EXIT_BREAKING, result.output


def test_a_misspelt_ref_gets_a_suggestion(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against", "mian")
    assert result.exit_code == EXIT_INPUT
    assert result.stderr == (
        "esgen compat: error: unknown git ref 'mian': no branch, tag or commit of that name "
        "here; did you mean 'main'?\n"
    )


def test_a_ref_past_the_history_says_so(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against", "HEAD~5")
    assert result.exit_code == EXIT_INPUT
    assert "the history does not reach that far" in result.stderr
    assert "git fetch" not in result.stderr


def test_schema_files_that_are_symbolic_links_are_refused_at_the_ref(
    tmp_path: Path,
) -> None:
    """On disk a linked schema file is refused (E107); at a ref it is too, never followed
    to wherever it points in the repository, or out of it."""
    project = make_project(tmp_path / "p")
    shared = project / "shared"
    shared.mkdir()
    git(project, "mv", "model/shop.yaml", "shared/shop.yaml")
    (project / "model" / "shop.yaml").symlink_to(Path("..") / "shared" / "shop.yaml")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "share the schema")
    (project / "model" / "shop.yaml").unlink()
    shutil.copy(shared / "shop.yaml", project / "model" / "shop.yaml")
    with chdir(project):
        result = run("compat", "--against", "main")
    assert result.exit_code == EXIT_INPUT, result.output
    assert "(E107): main:model/shop.yaml (to ../shared/shop.yaml)" in result.stderr


def test_a_repository_git_distrusts_says_how_to_trust_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p")
    # git's own switch for "the repository belongs to someone else", as in CI containers.
    monkeypatch.setenv("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1")
    with chdir(project):
        result = run("compat", "--against", "main")
    assert result.exit_code == EXIT_INPUT
    assert "it belongs to another user" in result.stderr
    assert f"safe.directory {project.resolve()}`" in result.stderr


def test_a_path_that_does_not_exist_is_not_taken_for_a_ref(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with chdir(project):
        result = run("compat", "--against", "../no/such/folder")
    assert result.exit_code == EXIT_INPUT
    assert "--against ../no/such/folder: no such file or folder" in result.stderr
    assert "git fetch" not in result.stderr
