"""Read models and commands: compat says which projections to rebuild, as the runtime will.

Each case's two sides are generated into real projects; the previous code opens a SQLite
store (its projections' tables get the previous layout), then the current code asks the
runtime which projections need a rebuild. compat's answer must be the runtime's, and the
command compat prints must be the one that satisfies it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from harness import chdir

from compat.cases import CASES
from esgen.cli import main
from esgen.compat import Report, check, current_side, directory_side, load_lock, render, render_lock

# Run by the previous or current generated code, in a process of its own: both define
# the package `shop`. `open` lists what the runtime says needs a rebuild (creating the
# tables of projections it has not seen); `put` stores rows as that code's row types
# write them; `read` lists the projections whose stored rows that code cannot read.
PROBE = """\
import json, sys
from esgen.runtime import Rows, SQLiteEventStore, progress_storage
from shop.service import ShopService

store = SQLiteEventStore(sys.argv[1])
try:
    runner = ShopService(store).projections()
    if sys.argv[2] == "open":
        print(json.dumps(sorted(runner.needing_rebuild())))
    storage = progress_storage(store)
    failed = []
    for name, projection in runner.projections.items():
        with storage.unit() as unit:
            active = [g for g, (_, on) in unit.generations(name).items() if on][0]
            rows = Rows(projection.table, projection.row_type, unit.table(projection.table, active))
            if sys.argv[2] == "put":
                for data in json.loads(sys.argv[3]).get(name, []):
                    rows.put(projection.row_type.model_validate(data))
                rows.flush()
            elif sys.argv[2] == "read":
                try:
                    rows.all()
                except ValueError:
                    failed.append(name)
    if sys.argv[2] == "read":
        print(json.dumps(sorted(failed)))
finally:
    store.close()
"""


def _project(root: Path, schemas: Path) -> Path:
    """A project generated from `schemas`, as a user has it after `esgen generate`."""
    root.mkdir()
    (root / "esgen.yaml").write_text("schema_dir: schemas\nout_dir: src\ntests_dir: tests\n")
    shutil.copytree(schemas, root / "schemas")
    with chdir(root):
        result = CliRunner().invoke(main, ["generate"])
    assert result.exit_code == 0, result.output
    (root / "probe.py").write_text(PROBE)
    return root


def _python(project: Path, *args: str) -> Any:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    done = subprocess.run(
        [sys.executable, "probe.py", *args], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def _esgen(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esgen", *args], cwd=project, capture_output=True, text=True
    )


def _compat(case: str) -> Report:
    with chdir(CASES / case):
        return check(directory_side(Path("previous")), current_side(Path("current")))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """case -> (previous project, current project); generated once for the module."""
    projects = {}
    for case in ("projection_needs_rebuild", "projection_changes"):
        root = tmp_path_factory.mktemp(case)
        projects[case] = (
            _project(root / "previous", CASES / case / "previous"),
            _project(root / "current", CASES / case / "current"),
        )
    return projects


@pytest.mark.parametrize("case", ["projection_needs_rebuild", "projection_changes"])
def test_compat_predicts_the_runtime_s_rebuilds(
    case: str, generated: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    previous, current = generated[case]
    store = tmp_path / "store.sqlite"
    assert _python(previous, str(store), "open") == []
    asked = _python(current, str(store), "open")

    report = _compat(case)
    predicted = sorted(r.name for r in report.rebuilds if r.enforced)
    assert asked and predicted == asked
    # ES404, the rule for what the runtime refuses, is found exactly for those projections,
    # each with the command that satisfies it.
    enforced = {(r.context, r.projection): r.command for r in report.rebuilds if r.enforced}
    table_findings = {
        (f.hit.context, f.hit.name): f.hit.fix for f in report.findings if f.rule == "ES404"
    }
    assert table_findings.keys() == enforced.keys()
    for key, fix in table_findings.items():
        assert f"`{enforced[key]}`" in (fix or "")


def test_the_printed_commands_are_what_the_deploy_needs(
    generated: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    previous, current = generated["projection_needs_rebuild"]
    store = tmp_path / "store.sqlite"
    assert _python(previous, str(store), "open") == []
    report = _compat("projection_needs_rebuild")
    refused = _esgen(current, "projections", "catch-up", "--store", str(store))
    assert refused.returncode == 1
    enforced = [r for r in report.rebuilds if r.enforced]
    said = re.search(r"the table of (.+) was built with another layout", refused.stderr)
    assert said is not None, refused.stderr
    assert sorted(said.group(1).split(", ")) == sorted(r.name for r in enforced)
    for r in enforced:
        command = shlex.split(r.command.replace("STORE", shlex.quote(str(store))))
        assert command[:3] == ["esgen", "projections", "rebuild"]
        rebuilt = _esgen(current, *command[1:])
        assert rebuilt.returncode == 0, rebuilt.stderr
    caught_up = _esgen(current, "projections", "catch-up", "--store", str(store))
    assert caught_up.returncode == 0, caught_up.stderr


def test_indexes_added_and_dropped_need_no_rebuild(tmp_path: Path) -> None:
    """Indexes are not part of a table's layout: compat predicts no rebuild, the runtime
    asks for none, and the current code catches up on the previous code's tables."""
    case = "projection_indexes"
    previous = _project(tmp_path / "previous", CASES / case / "previous")
    current = _project(tmp_path / "current", CASES / case / "current")
    store = tmp_path / "store.sqlite"
    assert _python(previous, str(store), "open") == []
    assert _python(current, str(store), "open") == []
    report = _compat(case)
    assert report.findings == () and report.rebuilds == ()
    caught_up = _esgen(current, "projections", "catch-up", "--store", str(store))
    assert caught_up.returncode == 0, caught_up.stderr


def test_stored_rows_the_new_code_cannot_read_are_reported(
    generated: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    """ES405 is about what the runtime cannot see: rows written by the previous code that
    the current row types refuse, in tables whose columns did not change."""
    previous, current = generated["projection_needs_rebuild"]
    store = tmp_path / "store.sqlite"
    _python(previous, str(store), "open")
    rows = {
        "order_statuses": [
            {"order_id": "00000000-0000-4000-8000-000000000001", "status": "lost",
             "state": "cancelled", "priority": 9},
        ],
        "customer_cards": [
            {"customer": "ada", "address": {"street": "Main St", "geo": {"lat": 1.5, "lon": 2}}},
        ],
        "shipping_log": [{"order_id": "00000000-0000-4000-8000-000000000001", "shipped": False}],
    }  # fmt: skip
    _python(previous, str(store), "put", json.dumps(rows))
    assert _python(previous, str(store), "read") == []

    unreadable = _python(current, str(store), "read")
    report = _compat("projection_needs_rebuild")
    refused = {
        r.name for r in report.rebuilds if any("may not read" in reason for reason in r.reasons)
    }
    assert unreadable == sorted(refused) == ["customer_cards", "order_statuses"]
    # The runtime does not ask for these rebuilds; compat is the only one to say them.
    assert not {r.name for r in report.rebuilds if not r.enforced} & set(
        _python(current, str(store), "open")
    )
    for name in unreadable:
        (r,) = [r for r in report.rebuilds if r.name == name]
        command = shlex.split(r.command.replace("STORE", shlex.quote(str(store))))
        assert _esgen(current, *command[1:]).returncode == 0
    assert _python(current, str(store), "read") == []


# -- the report ------------------------------------------------------------------------------


def _run(case: str, *args: str) -> Result:
    with chdir(CASES / case):
        return CliRunner().invoke(main, ["compat", "current", "--against", "previous", *args])


def test_a_rebuild_is_a_warning_that_names_the_command() -> None:
    result = _run("projection_needs_rebuild")
    assert result.exit_code == 0, result.output
    assert "no event changed" not in result.output
    last = result.output.splitlines()[-1]
    assert last == (
        "esgen compat: 9 warning(s) against previous; rebuild after deploying: shop.Archive, "
        "shop.CustomerCards, shop.OrderBoard, shop.OrderList, shop.OrderStatuses, "
        "shop.ShippingLog"
    )
    assert (
        "  shop.OrderList: esgen projections rebuild order_list --context shop --store STORE\n"
        "           table: column 'placed_at' added\n"
        "           (catch-up refuses it until it is rebuilt)\n"
    ) in result.output
    assert (
        "  shop.ShippingLog: esgen projections rebuild shipping_log --context shop --store STORE\n"
        "           now consumes OrderShipped; no longer consumes OrderCancelled\n"
        "           (the runtime does not ask for this rebuild)\n"
    ) in result.output
    assert _run("projection_needs_rebuild", "--strict").exit_code == 3


def test_json_and_markdown_list_the_rebuilds() -> None:
    data = json.loads(_run("projection_needs_rebuild", "--format", "json").output)
    assert data["compatible"] is True and data["errors"] == 0 and data["warnings"] == 9
    by_name = {r["name"]: r for r in data["rebuilds"]}
    assert sorted(by_name) == [
        "archive",
        "customer_cards",
        "order_board",
        "order_list",
        "order_statuses",
        "shipping_log",
    ]
    assert by_name["order_board"] == {
        "context": "shop",
        "projection": "OrderBoard",
        "name": "order_board",
        "command": "esgen projections rebuild order_board --context shop --store STORE",
        "enforced": True,
        "reasons": ["table: columns in another order"],
    }
    assert by_name["customer_cards"]["enforced"] is False
    markdown = _run("projection_needs_rebuild", "--format", "markdown").output
    assert markdown.startswith("### ⚠️ esgen compat: 9 warning(s) against previous; rebuild")
    assert (
        "| `shop.OrderList` | `esgen projections rebuild order_list --context shop --store "
        "STORE` | table: column 'placed_at' added | catch-up refuses it until it is rebuilt |"
    ) in markdown


def test_ignoring_a_rebuild_takes_it_off_the_list() -> None:
    data = json.loads(
        _run(
            "projection_needs_rebuild",
            "--format",
            "json",
            "--ignore",
            "ES404:OrderList",
            "--ignore",
            "ES406",
        ).output
    )
    names = [r["name"] for r in data["rebuilds"]]
    assert "order_list" not in names and "shipping_log" not in names
    assert "order_board" in names and "customer_cards" in names


def test_nothing_to_rebuild_reads_as_before() -> None:
    result = _run("safe_cosmetic")
    assert result.output == "esgen compat: compatible with previous (no event changed)\n"
    data = json.loads(_run("safe_cosmetic", "--format", "json").output)
    assert data["rebuilds"] == []


def test_against_a_lock_the_order_of_columns_is_not_known(tmp_path: Path) -> None:
    """The lock lists fields by name: a table whose columns only moved is not reported
    against it (a false alarm on every projection otherwise), every other change is."""
    case = CASES / "projection_needs_rebuild"
    with chdir(case):
        lock = tmp_path / "esgen.lock"
        lock.write_text(render_lock(directory_side(Path("previous")).schema, lock))
        against_lock = check(load_lock(lock), current_side(Path("current")))
        against_folder = _compat("projection_needs_rebuild")
    names = {r.name for r in against_lock.rebuilds}
    assert names == {r.name for r in against_folder.rebuilds} - {"order_board"}
    same = check(load_lock(lock), directory_side(case / "previous"))
    assert same.rebuilds == () and same.findings == ()
    assert "rebuild" not in render(same, "text")
