"""Generated code of unrelated changes merges: two branches that each change one aggregate's
schema in different places, and regenerate, merge with git's default merge without a
conflict, and the result is what esgen generates from the merged schema.

Everything is real: a git repository, the `esgen` command line in a subprocess per run, and
git's own merge with no configuration but an identity.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import tree

BASE = """\
context: shop
description: Orders and customers.
types:
  Money:
    fields:
      cents: {type: int, min: 0}
      currency: str
  Channel:
    enum: [web, phone]
aggregates:
  Order:
    id: {name: order_id, type: uuid}
    state:
      total: Money
      open: {type: bool, default: true}
    commands:
      PlaceOrder:
        fields:
          total: Money
          channel: Channel
        emits: [OrderPlaced]
      PayOrder:
        fields:
          amount: Money
        emits: [OrderPaid]
      ShipOrder:
        fields:
          carrier: str
        emits: [OrderShipped]
    events:
      OrderPlaced:
        versions:
          1:
            fields:
              total: Money
              channel: Channel
      OrderPaid:
        versions:
          1:
            fields:
              amount: Money
      OrderShipped:
        versions:
          1:
            fields:
              carrier: str
  Customer:
    id: {name: customer_id, type: str}
    state:
      name: str
    commands:
      Register:
        fields:
          name: str
        emits: [Registered]
    events:
      Registered:
        versions:
          1:
            fields:
              name: str
projections:
  OrderTotals:
    key: order_id
    consumes: [OrderPlaced, OrderPaid]
    fields:
      order_id: uuid
      total: Money
"""


# An edit inserts text where the schema reads `before` then `after` (a place found once).
@dataclass(frozen=True)
class Edit:
    before: str
    after: str
    text: str


@dataclass(frozen=True)
class Scenario:
    name: str
    a: Sequence[Edit]
    b: Sequence[Edit]


def event(name: str, *fields: str, version: int = 1) -> str:
    lines = [f"      {name}:", "        versions:", f"          {version}:", "            fields:"]
    return "\n".join([*lines, *(f"              {f}" for f in fields)]) + "\n"


def command(name: str, emits: str, *fields: str) -> str:
    lines = [f"      {name}:", "        fields:", *(f"          {f}" for f in fields)]
    return "\n".join([*lines, f"        emits: [{emits}]"]) + "\n"


# What each branch adds, placed as two developers would: in different places of the YAML,
# so that the schema itself merges. Names the two branches add sort side by side
# (OrderCancelled and OrderClosed, CancelOrder and CloseOrder): in alphabetical lists they
# would land on neighbouring lines.
SCENARIOS = [
    Scenario(
        "events, commands and a new version in one aggregate",
        a=[
            Edit(
                "emits: [OrderPlaced]\n",
                "      PayOrder:",
                command("CancelOrder", "OrderCancelled", "reason: str"),
            ),
            Edit(
                "              channel: Channel\n",
                "      OrderPaid:",
                event("OrderCancelled", "reason: str"),
            ),
            # Version 2 of OrderShipped, with one more field.
            Edit(
                "carrier: str\n",
                "  Customer:",
                '          2:\n            fields:\n              carrier: str\n              tracking: {type: str, default: ""}\n',
            ),
        ],
        b=[
            Edit(
                "    events:\n",
                "      OrderPlaced:\n        versions",
                event("OrderClosed", "note: {type: str, optional: true}"),
            ),
            Edit(
                "emits: [OrderShipped]\n",
                "    events:\n",
                command("CloseOrder", "OrderClosed", "note: {type: str, optional: true}"),
            ),
        ],
    ),
    Scenario(
        "fields, and a command next to an event",
        a=[
            # An optional field added to a published version, a field of the state, and a
            # command last of all, just before the events.
            Edit(
                "              channel: Channel\n",
                "      OrderPaid:",
                "              note: {type: str, optional: true}\n",
            ),
            Edit(
                "      open: {type: bool, default: true}\n",
                "    commands:",
                "      paid: {type: int, default: 0}\n",
            ),
            Edit(
                "emits: [OrderShipped]\n",
                "    events:\n",
                command("RefundOrder", "OrderPaid", "amount: Money"),
            ),
        ],
        b=[
            # An event first of all, just after `events:`, and fields of a command and of
            # another event.
            Edit(
                "    events:\n",
                "      OrderPlaced:\n        versions",
                event("OrderHeld", "why: str"),
            ),
            Edit(
                "          carrier: str\n",
                "        emits: [OrderShipped]",
                "          urgent: {type: bool, default: false}\n",
            ),
            Edit(
                "              carrier: str\n",
                "  Customer:",
                "              weight: {type: int, optional: true}\n",
            ),
        ],
    ),
    Scenario(
        "two aggregates, at the boundary between them",
        a=[
            # The last event and the last command of Order...
            Edit("              carrier: str\n", "  Customer:", event("OrderLost", "where: str")),
            Edit(
                "emits: [OrderShipped]\n",
                "    events:\n",
                command("ReportLoss", "OrderLost", "where: str"),
            ),
        ],
        b=[
            # ... the first event and the first command of Customer.
            Edit("    events:\n", "      Registered:", event("Merged", "into: str")),
            Edit("    commands:\n", "      Register:", command("Merge", "Merged", "into: str")),
        ],
    ),
    Scenario(
        "a new version, and an event just before it",
        a=[
            Edit(
                "              amount: Money\n",
                "      OrderShipped:",
                "          2:\n            fields:\n              amount: Money\n"
                "              tip: {type: int, default: 0}\n",
            ),
        ],
        b=[
            Edit(
                "              channel: Channel\n",
                "      OrderPaid:",
                event("OrderPriced", "at: int"),
            )
        ],
    ),
    Scenario(
        "types: an enum last, a value type first",
        a=[
            Edit("    enum: [web, phone]\n", "aggregates:", "  Priority:\n    enum: [low, high]\n"),
            Edit(
                "              amount: Money\n",
                "      OrderShipped:",
                "              priority: {type: Priority, optional: true}\n",
            ),
        ],
        b=[
            Edit("types:\n", "  Money:", "  Address:\n    fields:\n      street: str\n"),
            Edit(
                "          carrier: str\n",
                "        emits: [OrderShipped]",
                "          to: {type: Address, optional: true}\n",
            ),
        ],
    ),
]


def edited(text: str, edits: Sequence[Edit]) -> str:
    for edit in edits:
        place = edit.before + edit.after
        assert text.count(place) == 1, place
        at = text.index(place) + len(edit.before)
        text = text[:at] + edit.text + text[at:]
    return text


GIT_ENV = {
    # The default merge: no user or system configuration, only an identity.
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "esgen tests",
    "GIT_AUTHOR_EMAIL": "tests@esgen.invalid",
    "GIT_COMMITTER_NAME": "esgen tests",
    "GIT_COMMITTER_EMAIL": "tests@esgen.invalid",
}


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"git {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def esgen(repo: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, with its own run cache (one developer's machine)."""
    return subprocess.run(
        [sys.executable, "-m", "esgen.cli", "generate", "schemas", "--out", "src",
         "--tests", "tests", *args],
        cwd=repo,
        env={**os.environ, "ESGEN_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def commit_generated(repo: Path, cache: Path, message: str) -> None:
    run = esgen(repo, cache)
    assert run.returncode == 0, run.stdout + run.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def generated(root: Path) -> dict[str, str]:
    """The files esgen generated (not the user's scaffolds) under `root`."""
    files = {**tree(root / "src"), **tree(root / "tests")}
    return {name: text for name, text in files.items() if text.startswith("# Code generated")}


def merged_repository(tmp_path: Path, scenario: Scenario) -> Path:
    repo = tmp_path / "repo"
    (repo / "schemas").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    schema = repo / "schemas" / "shop.yaml"
    schema.write_text(BASE)
    commit_generated(repo, tmp_path / "cache-base", "base")
    for branch, edits in (("a", scenario.a), ("b", scenario.b)):
        git(repo, "checkout", "-q", "-b", branch, "main")
        schema.write_text(edited(BASE, edits))
        # Each developer on a machine of their own.
        commit_generated(repo, tmp_path / f"cache-{branch}", f"branch {branch}")
    # The test means something only where both branches changed the same generated files.
    changed = [set(git(repo, "diff", "--name-only", "main", b).stdout.split()) for b in "ab"]
    both = {name for name in changed[0] & changed[1] if name.startswith("src/")}
    assert len(both) >= 2, both
    git(repo, "checkout", "-q", "b")
    merge = git(repo, "merge", "--no-edit", "a", check=False)
    assert merge.returncode == 0, f"the merge conflicts:\n{merge.stdout}{merge.stderr}"
    return repo


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_branches_with_unrelated_changes_merge_and_need_no_regeneration(
    tmp_path: Path, scenario: Scenario
) -> None:
    repo = merged_repository(tmp_path, scenario)
    schema = (repo / "schemas" / "shop.yaml").read_text()
    assert schema == edited(edited(BASE, scenario.a), scenario.b), "the YAML merges as written"

    # Nothing to change: with the merging developer's run cache, and in a fresh clone.
    for cache in (tmp_path / "cache-b", tmp_path / "cache-fresh"):
        check = esgen(repo, cache, "--check")
        assert check.returncode == 0, check.stderr
    # The same as generating the merged schema from scratch.
    fresh = tmp_path / "fresh"
    shutil.copytree(repo / "schemas", fresh / "schemas")
    run = esgen(fresh, tmp_path / "cache-scratch")
    assert run.returncode == 0, run.stderr
    assert generated(repo) == generated(fresh)


# The .gitattributes that folds generated code in reviews.


def init_project(tmp_path: Path, schema: str = BASE) -> Path:
    repo = tmp_path / "repo"
    (repo / "schemas").mkdir(parents=True)
    (repo / "schemas" / "shop.yaml").write_text(schema)
    git(repo, "init", "-q", "-b", "main")
    return repo


def attribute(repo: Path, paths: Sequence[str]) -> dict[str, str]:
    """linguist-generated of each path, as git (and so GitHub's linguist) reads it."""
    out = git(repo, "check-attr", "linguist-generated", "--", *paths).stdout
    return {line.split(": ")[0]: line.rsplit(": ", 1)[1] for line in out.splitlines()}


def test_gitattributes_marks_generated_files_and_not_the_users(tmp_path: Path) -> None:
    repo = init_project(tmp_path, edited(BASE, SCENARIOS[0].a))  # with an upcaster test
    run = esgen(repo, tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    assert "created   src/shop/.gitattributes" in run.stdout.splitlines()
    files = sorted(
        p.relative_to(repo).as_posix()
        for folder in ("src", "tests")
        for p in (repo / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    marks = attribute(repo, files)
    for name in files:
        text = (repo / name).read_text()
        if name.startswith("src/") and text.startswith("# Code generated by esgen"):
            assert marks[name] == "true", name
        elif name.startswith("src/"):
            assert name.startswith("src/shop/domain/"), name
            assert marks[name] == "false", name
        else:  # the tests folder is the user's: nothing there is marked
            assert marks[name] == "unspecified", name
    assert "src/shop/domain/order.py" in marks and "tests/shop/test_shop_upcasters.py" in marks


def test_gitattributes_is_the_same_whatever_the_schema(tmp_path: Path) -> None:
    """Its text never changes, so it never shows up in a diff (the header aside, which
    names the context's schema files like every generated file's)."""
    bodies = set()
    for index, schema in enumerate([BASE, edited(BASE, SCENARIOS[1].b), "context: bare\n"]):
        project = tmp_path / f"p{index}"
        (project / "schemas").mkdir(parents=True)
        (project / "schemas" / "shop.yaml").write_text(schema)
        assert esgen(project, tmp_path / "cache").returncode == 0
        (attributes,) = (project / "src").glob("*/.gitattributes")
        header, _, body = attributes.read_text().partition("\n")
        assert header.startswith("# Code generated by esgen from schemas/shop.yaml.")
        bodies.add(body)
    assert len(bodies) == 1


def test_gitattributes_is_checked_restored_and_removed_like_generated_code(
    tmp_path: Path,
) -> None:
    repo = init_project(tmp_path)
    cache = tmp_path / "cache"
    assert esgen(repo, cache).returncode == 0
    attributes = repo / "src" / "shop" / ".gitattributes"
    original = attributes.read_text()
    attributes.write_text(original + "/service.py -linguist-generated\n")
    check = esgen(repo, cache, "--check")
    assert check.returncode == 1
    assert "edited by hand src/shop/.gitattributes" in check.stderr.splitlines()
    assert esgen(repo, cache).returncode == 0
    assert attributes.read_text() == original
    assert esgen(repo, cache, "--check").returncode == 0

    # A context the schema no longer has leaves nothing of esgen's behind.
    (repo / "schemas" / "shop.yaml").write_text("context: other\n")
    run = esgen(repo, cache)
    assert "removed   src/shop/.gitattributes" in run.stdout.splitlines()
    assert not attributes.exists()
    assert (repo / "src" / "shop" / "domain" / "order.py").exists(), "the user's code stays"


def test_a_gitattributes_the_user_wrote_is_kept(tmp_path: Path) -> None:
    repo = init_project(tmp_path)
    cache = tmp_path / "cache"
    attributes = repo / "src" / "shop" / ".gitattributes"
    attributes.parent.mkdir(parents=True)
    attributes.write_text("*.py text eol=lf\n")
    run = esgen(repo, cache, "-v")
    assert run.returncode == 0, run.stderr
    assert "skipped   src/shop/.gitattributes" in run.stdout.splitlines()
    assert attributes.read_text() == "*.py text eol=lf\n"
    assert esgen(repo, cache, "--check", "--no-cache").returncode == 0
