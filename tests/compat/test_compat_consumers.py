"""Consumers (read models fed by other contexts' published events) through every side compat
reads: the lock records them with their subscriptions, a git ref and a folder give them,
and a changed consumer is reported as a changed projection would be, with a replay from
the upstream streams for a fix instead of a rebuild. The rules' every case is in
tests/compat_cases/consumer_changes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from harness import chdir

from compat.gitrepo import git
from esgen.cli import main
from esgen.compat import check, current_side, git_side, load_contract, load_lock, render_lock
from esgen.schema import Consumer

EXIT_BREAKING = 3

SHOP = """\
context: shop
publishes: [OrderPlaced, OrderShipped]
aggregates:
  Order:
    events:
      OrderPlaced:
        versions:
          1: {fields: {total: decimal}}
      OrderShipped:
        versions:
          1: {fields: {carrier: str}}
"""

# The downstream publishes an event of its own too, so a third context can subscribe to it
# through its lock.
LEDGER = """\
context: ledger
publishes: [EntryPosted]
subscribes:
  shop:
    from: ../../shop/schemas
    events: [OrderPlaced, OrderShipped]
aggregates:
  Entry:
    events:
      EntryPosted:
        versions:
          1: {fields: {amount: decimal}}
consumers:
  Orders:
    handles: [shop.OrderPlaced, shop.OrderShipped]
    key: order_id
    fields:
      order_id: uuid
      total: decimal
      shipped: bool
"""

AUDIT = """\
context: audit
subscribes:
  ledger:
    from: ../../ledger/esgen.lock
    events: [EntryPosted]
consumers:
  Entries:
    handles: [ledger.EntryPosted]
    key: entry_id
    fields:
      entry_id: uuid
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def projects(root: Path) -> Path:
    """shop/ (upstream) and ledger/ (downstream, a committed git project); ledger's path."""
    (root / "shop" / "schemas").mkdir(parents=True)
    (root / "shop" / "schemas" / "shop.yaml").write_text(SHOP)
    ledger = root / "ledger"
    (ledger / "schemas").mkdir(parents=True)
    (ledger / "pyproject.toml").write_text('[project]\nname = "ledger"\n\n[tool.esgen]\n')
    (ledger / "schemas" / "ledger.yaml").write_text(LEDGER)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first schemas")
    return ledger


def consumers(side_schema: object) -> dict[str, tuple[object, ...]]:
    (ctx,) = side_schema.contexts  # type: ignore[attr-defined]
    found: tuple[Consumer, ...] = ctx.consumers
    # The lock lists fields by name, as it does a projection's.
    return {
        c.name: (c.handles, c.key, sorted((f.name, str(f.type)) for f in c.fields)) for c in found
    }


def test_the_lock_records_consumers_and_their_subscriptions(tmp_path: Path) -> None:
    ledger = projects(tmp_path)
    lock = ledger / "esgen.lock"
    current = current_side(ledger / "schemas")
    text = render_lock(current.schema, lock)
    assert (
        "subscribes:\n"
        "  shop:\n"
        "    from: ../shop/schemas\n"
        "    events: [OrderPlaced, OrderShipped]\n"
        "consumers:\n"
        "  Orders:\n"
        "    handles: [shop.OrderPlaced, shop.OrderShipped]\n"
        "    key: order_id\n"
        "    fields:\n"
        "      order_id: uuid\n"
        "      shipped: bool\n"
        "      total: decimal\n"
    ) in text
    lock.write_text(text)
    locked = load_lock(lock)
    assert consumers(locked.schema) == consumers(current.schema)
    report = check(locked, current)
    assert report.findings == () and report.replays == ()


def test_a_changed_consumer_is_found_against_the_lock_and_a_git_ref(tmp_path: Path) -> None:
    ledger = projects(tmp_path)
    with chdir(ledger):
        assert run("lock").exit_code == 0
        schema = ledger / "schemas" / "ledger.yaml"
        schema.write_text(LEDGER.replace("shipped: bool", "shipped: int"))
        for against in ([], ["--against", "main"]):
            result = run("compat", *against)
            assert result.exit_code == EXIT_BREAKING, result.output
            out = result.output
            assert (
                "error[ES314]: consumer ledger.Orders field 'shipped': changed from bool to int"
            ) in out
            assert (
                "warning[ES404]: consumer ledger.Orders: its table changed (column 'shipped' "
                "stored as integer instead of boolean): after the deploy, the consumer runner "
                "refuses to start (ConsumerNeedsReplay) until it is replayed"
            ) in out
            assert "fix: after deploying, replay it from the upstream streams" in out
            assert "rebuild" not in out  # a consumer's rows come from the broker
            assert out.endswith("; replay after deploying: ledger.Orders\n"), out
        data = json.loads(run("compat", "--format", "json").output)
        assert data["rebuilds"] == []
        assert data["replays"] == [
            {
                "context": "ledger",
                "consumer": "Orders",
                "name": "orders",
                "enforced": True,
                "reasons": ["table: column 'shipped' stored as integer instead of boolean"],
            }
        ]
        assert {f["kind"] for f in data["findings"]} == {"consumer"}
        # `esgen lock` refuses the change like any breaking one.
        assert run("lock").exit_code == EXIT_BREAKING
        # The git side gives the consumers without following `from` (it reads one tree).
        old = git_side(ledger / "schemas", "main")
        assert consumers(old.schema)["Orders"][0] == (
            ("shop", "OrderPlaced"),
            ("shop", "OrderShipped"),
        )


def test_a_downstream_lock_with_consumers_still_serves_as_an_upstream(tmp_path: Path) -> None:
    ledger = projects(tmp_path)
    with chdir(ledger):
        assert run("lock").exit_code == 0
    assert "consumers:" in (ledger / "esgen.lock").read_text()
    contract = load_contract(ledger / "esgen.lock")
    assert [e.name for e in contract.events if e.published] == ["EntryPosted"]
    # A third context subscribes to the ledger through its lock, as another repository would.
    audit = tmp_path / "audit" / "schemas"
    audit.mkdir(parents=True)
    (audit / "audit.yaml").write_text(AUDIT)
    (ctx,) = current_side(audit, strict=True).schema.contexts
    (subscription,) = ctx.subscriptions
    assert [e.name for e in subscription.events] == ["EntryPosted"]
    assert ctx.consumers[0].handles == (("ledger", "EntryPosted"),)
