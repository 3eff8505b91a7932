"""A context's contract (`publishes`) through every side compat reads (folder, git ref,
esgen.lock), `load_contract` as downstream contexts call it, and the contract rules in the
CLI's every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import EXAMPLES, chdir

from compat.gitrepo import make_project
from esgen.cli import main
from esgen.compat import (
    FORMATS,
    CompatError,
    LockError,
    check,
    current_side,
    directory_side,
    fingerprints,
    git_side,
    load_contract,
    load_lock,
    render_lock,
)
from esgen.schema import Context, SchemaError

EXIT_INPUT = 2
EXIT_BREAKING = 3

SHOP = """\
context: shop
publishes: [OrderPlaced, OrderPaid]
aggregates:
  Order:
    commands:
      PlaceOrder:
        fields: {total: decimal}
        emits: [OrderPlaced]
    events:
      OrderPlaced:
        versions:
          1: {fields: {total: decimal}}
      OrderPaid:
        versions:
          1: {fields: {amount: decimal}}
      OrderNoted:
        versions:
          1: {fields: {note: str}}
"""

CONTRACT = {"OrderPaid", "OrderPlaced"}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def published(ctx: Context) -> set[str]:
    return {e.name for e in ctx.events if e.published}


def folder(root: Path, text: str = SHOP, name: str = "shop.yaml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    return root


def test_every_side_gives_the_contract(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SHOP)
    schema_dir = project / "model"
    lock = project / "esgen.lock"
    lock.write_text(render_lock(current_side(schema_dir).schema, lock))
    sides = {
        "folder": directory_side(schema_dir),
        "git": git_side(schema_dir, "main"),
        "lock": load_lock(lock),
    }
    for kind, side in sides.items():
        (ctx,) = side.schema.contexts
        assert published(ctx) == CONTRACT, kind


def test_the_lock_records_the_contract_and_reads_it_back(tmp_path: Path) -> None:
    schema = directory_side(folder(tmp_path / "model")).schema
    lock = tmp_path / "esgen.lock"
    text = render_lock(schema, lock)
    assert "publishes:\n  shop: [OrderPaid, OrderPlaced]\n---\n" in text
    assert "\ncompatibility: backward\npublishes: [OrderPaid, OrderPlaced]\n" in text
    lock.write_text(text)
    locked = load_lock(lock)
    assert published(locked.schema.contexts[0]) == CONTRACT
    assert render_lock(locked.schema, lock) == text
    report = check(locked, directory_side(tmp_path / "model"))
    assert report.findings == () and report.events == ()


def test_the_contract_leaves_fingerprints_alone_and_old_locks_read(tmp_path: Path) -> None:
    with_contract = directory_side(folder(tmp_path / "a")).schema
    without = directory_side(
        folder(tmp_path / "b", SHOP.replace("publishes: [OrderPlaced, OrderPaid]\n", ""))
    ).schema
    assert fingerprints(with_contract) == fingerprints(without)
    # A lock written before `publishes` existed is exactly today's lock of a schema
    # without it: no `publishes` anywhere.
    lock = tmp_path / "esgen.lock"
    old_text = render_lock(without, lock)
    assert "publishes" not in old_text
    lock.write_text(old_text)
    assert published(load_lock(lock).schema.contexts[0]) == set()
    # Against the old lock, publishing is safe: a note in the summary, no finding.
    report = check(load_lock(lock), directory_side(tmp_path / "a"))
    assert report.findings == ()
    assert [(s.event, s.changes) for s in report.events] == [
        ("OrderPaid", ("now published to other contexts",)),
        ("OrderPlaced", ("now published to other contexts",)),
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  shop: [OrderPaid, OrderPlaced]\n", "  shop: [OrderPlaced]\n"),
        ("\npublishes: [OrderPaid, OrderPlaced]\n", "\npublishes: [OrderPaid]\n"),
        ("publishes:\n  shop: [OrderPaid, OrderPlaced]\n", ""),
    ],
    ids=["header", "context", "header-removed"],
)
def test_a_contract_edited_in_one_place_of_the_lock_is_refused(
    tmp_path: Path, old: str, new: str
) -> None:
    schema = directory_side(folder(tmp_path / "model")).schema
    lock = tmp_path / "esgen.lock"
    text = render_lock(schema, lock)
    assert old in text
    lock.write_text(text.replace(old, new))
    with pytest.raises(LockError, match="its list of published events does not match"):
        load_lock(lock)


def test_compat_against_a_git_ref_reports_a_withdrawn_event(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SHOP)
    shop = project / "model" / "shop.yaml"
    shop.write_text(SHOP.replace("[OrderPlaced, OrderPaid]", "[OrderPlaced]"))
    with chdir(project):
        result = run("compat", "--against", "main")
    assert result.exit_code == EXIT_BREAKING, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "model/shop.yaml:13:7: error[ES501]: event shop.OrderPaid: published event removed "
        "from `publishes`: the relay no longer sends Order.OrderPaid, and consumers in other "
        "services subscribed to it receive nothing more"
    )
    assert lines[1] == "  was: main:model/shop.yaml:2:26"  # its entry in `publishes`
    # Once every consumer has moved on, the team says so for this change.
    with chdir(project):
        assert run("compat", "--against", "main", "--ignore", "ES501:OrderPaid").exit_code == 0


def test_lock_refuses_to_withdraw_a_published_event_and_records_a_new_version(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p", SHOP)
    shop = project / "model" / "shop.yaml"
    with chdir(project):
        assert run("lock").exit_code == 0
        shop.write_text(SHOP.replace("[OrderPlaced, OrderPaid]", "[OrderPlaced]"))
        refused = run("lock")
        assert refused.exit_code == EXIT_BREAKING, refused.output
        assert "ES501" in refused.output
        # A derivable new version is a warning: the lock records it (the new contract the
        # consuming teams regenerate from).
        shop.write_text(
            SHOP.replace(
                "          1: {fields: {amount: decimal}}\n",
                "          1: {fields: {amount: decimal}}\n"
                "          2: {fields: {amount: decimal, note: {type: str, default: ''}}}\n",
            )
        )
        warned = run("compat")
        assert warned.exit_code == 0, warned.output
        assert "warning[ES504]: event shop.OrderPaid v2: the relay will send version 2" in (
            warned.output
        )
        assert run("compat", "--strict").exit_code == EXIT_BREAKING
        assert run("lock").exit_code == 0
        assert run("compat", "--strict").exit_code == 0


CASE = Path(__file__).parent.parent / "compat_cases" / "contract_events_withdrawn"


@pytest.mark.parametrize("format", FORMATS)
def test_contract_findings_in_every_format(format: str) -> None:
    with chdir(CASE):
        result = run("compat", "current", "--against", "previous", "--format", format)
    assert result.exit_code == EXIT_BREAKING, result.output
    if format == "json":
        data = json.loads(result.output)
        found = [f for f in data["findings"] if f["rule"] == "ES501"]
        assert len(found) == 5
        assert all(f["category"] == "contract" for f in found)
    else:
        assert result.output.count("ES501") >= 5
        # MoneyWithdrawn, still an event of the context, is where it is now.
        where = "bank.yaml,line=15,col=7" if format == "github" else "current/bank.yaml:15:7"
        assert where in result.output


# -- load_contract ----------------------------------------------------------------------


def test_load_contract_from_a_folder_and_from_its_lock(tmp_path: Path) -> None:
    model = folder(tmp_path / "model")
    lock = tmp_path / "esgen.lock"
    lock.write_text(render_lock(current_side(model).schema, lock))
    from_folder = load_contract(model)
    from_lock = load_contract(lock)
    assert from_folder.name == from_lock.name == "shop"
    assert published(from_folder) == published(from_lock) == CONTRACT
    assert sorted(e.name for e in from_folder.events) == sorted(e.name for e in from_lock.events)


def test_load_contract_of_the_bank_example() -> None:
    bank = EXAMPLES / "bank"
    for path in (bank / "schemas", bank / "esgen.lock"):
        ctx = load_contract(path)
        assert published(ctx) == {"MoneyDeposited", "MoneyWithdrawn"}, path


def test_load_contract_picks_one_of_several_contexts(tmp_path: Path) -> None:
    model = folder(tmp_path / "model")
    folder(model, SHOP.replace("context: shop", "context: stock"), "stock.yaml")
    with pytest.raises(CompatError, match=r"holds 2 contexts \(shop, stock\); a contract is"):
        load_contract(model)
    assert load_contract(model, context="stock").name == "stock"
    with pytest.raises(CompatError, match=r"no context 'bank' \(its contexts: shop, stock\)"):
        load_contract(model, context="bank")


def test_load_contract_errors_point_at_the_input(tmp_path: Path) -> None:
    with chdir(tmp_path):
        with pytest.raises(CompatError, match=r"^nowhere: no such schema folder or esgen\.lock$"):
            load_contract(Path("nowhere"))
        model = folder(Path("model"), SHOP.replace("[OrderPlaced, OrderPaid]", "[OrderGone]"))
        with pytest.raises(SchemaError) as bad:
            load_contract(model)
        assert bad.value.render().startswith("model/shop.yaml:2:13: error[")
        # A folder holding only the lock: the message names the file to give instead.
        only_lock = Path("released")
        only_lock.mkdir()
        (only_lock / "esgen.lock").write_text(
            render_lock(directory_side(folder(Path("good"))).schema, only_lock / "esgen.lock")
        )
        with pytest.raises(CompatError, match=r"give the lock: released/esgen\.lock$"):
            load_contract(only_lock)
        assert load_contract(only_lock / "esgen.lock").name == "shop"
        (only_lock / "esgen.lock").write_text("just: text\n")
        with pytest.raises(LockError, match=r"^released/esgen\.lock: not an esgen lock file"):
            load_contract(only_lock / "esgen.lock")
