"""Subscriptions and consumers in the schema, and what is generated for them: the
upstream loaded from its folder or its esgen.lock, errors pointing where they are, the
upstream's contract (readable versions only) and the consumer bases.

The golden cases `consumers` and `err_consumers` hold the generated code and the full
list of errors; these tests look at what a golden file cannot show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest
from harness import EXAMPLES, cases

from esgen.runtime import DecodeError, Event, RecordedEvent
from esgen.schema import SchemaError, load_schema_dir, load_sources, read_schema_files

UPSTREAM = """\
context: shop
publishes: [OrderPlaced]
aggregates:
  Order:
    id: {name: order_id, type: uuid}
    events:
      OrderPlaced:
        versions:
          1: {fields: {total: decimal}}
      OrderCancelled:
        versions:
          1: {fields: {reason: str}}
"""

DOWNSTREAM = """\
context: fulfilment
subscribes:
  shop:
    from: {source}
    events: [{events}]
consumers:
  Board:
    handles: [shop.OrderPlaced]
    key: order_id
    fields: {{order_id: uuid}}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def downstream(tmp_path: Path, source: str, events: str = "OrderPlaced") -> Path:
    write(
        tmp_path / "fulfilment" / "schemas" / "f.yaml",
        DOWNSTREAM.format(source=source, events=events),
    )
    return tmp_path / "fulfilment" / "schemas"


def lock(body: str) -> str:
    return f"# a lock written by hand\nesgen_lock: 1\nfingerprints: {{}}\n---\n{body}"


def errors(schemas: Path) -> list[str]:
    with pytest.raises(SchemaError) as caught:
        load_schema_dir(schemas)
    return [str(d) for d in caught.value.diagnostics]


def test_the_upstream_from_its_folder(tmp_path: Path) -> None:
    write(tmp_path / "shop" / "schemas" / "shop.yaml", UPSTREAM)
    (context,) = load_schema_dir(downstream(tmp_path, "../../shop/schemas")).contexts
    (subscription,) = context.subscriptions
    assert subscription.upstream == "shop"
    assert [e.name for e in subscription.events] == ["OrderPlaced"]
    # The contract: the subscribed events only, their aggregate's id, no commands.
    (aggregate,) = subscription.contract.aggregates
    assert (aggregate.name, aggregate.id_field.name, aggregate.commands) == (
        "Order",
        "order_id",
        (),
    )
    (consumer,) = context.consumers
    assert consumer.handles == (("shop", "OrderPlaced"),)


def test_the_upstream_from_its_lock_with_publishes(tmp_path: Path) -> None:
    write(tmp_path / "shop" / "esgen.lock", lock(UPSTREAM))
    (context,) = load_schema_dir(downstream(tmp_path, "../../shop/esgen.lock")).contexts
    (subscription,) = context.subscriptions
    assert subscription.source.name == "esgen.lock"
    assert subscription.events[0].location.file.name == "esgen.lock"
    # Lines of the whole lock file: the context's document starts after the header.
    assert subscription.events[0].location.line == 11


def test_a_lock_without_publishes_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks written before they recorded `publishes`: nothing in them is a contract."""
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "shop" / "esgen.lock", lock(UPSTREAM.replace("publishes: [OrderPlaced]\n", ""))
    )
    (problem,) = errors(downstream(tmp_path, "../../shop/esgen.lock"))
    assert problem.startswith(
        "fulfilment/schemas/f.yaml:5:14: error[E410]: 'shop' does not publish 'OrderPlaced' "
        "(it publishes: none)"
    ), problem


def test_an_error_inside_the_lock_points_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "shop" / "esgen.lock", lock(UPSTREAM.replace("total: decimal", "total: money"))
    )
    (problem,) = errors(downstream(tmp_path, "../../shop/esgen.lock"))
    assert problem.startswith("shop/esgen.lock:13:"), problem
    assert "error[E300]: unknown type 'money'" in problem


def test_an_unpublished_event_says_how_to_publish_it(tmp_path: Path) -> None:
    write(tmp_path / "shop" / "schemas" / "shop.yaml", UPSTREAM)
    schemas = downstream(tmp_path, "../../shop/schemas", "OrderPlaced, OrderCancelled")
    (problem,) = errors(schemas)
    assert "error[E410]: 'shop' does not publish 'OrderCancelled'" in problem
    assert "under `publishes:` in shop's schema" in problem


def test_without_the_disk_subscriptions_are_not_followed(tmp_path: Path) -> None:
    """A git ref or a lock (no folders given): `from` names a folder of another time, so
    the upstream is not read and the consumer's events are taken as written."""
    schemas = downstream(tmp_path, "../../nowhere")
    texts, _ = read_schema_files(sorted(schemas.glob("*.yaml")))
    schema, diagnostics = load_sources(schemas, texts, lambda p: p.read_text())
    assert diagnostics == []
    (context,) = schema.contexts
    assert context.subscriptions == ()
    assert context.consumers[0].handles == (("shop", "OrderPlaced"),)


def test_two_contexts_may_subscribe_to_each_other(tmp_path: Path) -> None:
    """An upstream's own subscriptions are not followed: no endless loading."""
    write(
        tmp_path / "shop" / "schemas" / "shop.yaml",
        UPSTREAM + "subscribes:\n  fulfilment:\n    from: ../../fulfilment/schemas\n"
        "    events: [Nothing]\n",
    )
    (context,) = load_schema_dir(downstream(tmp_path, "../../shop/schemas")).contexts
    assert context.subscriptions[0].upstream == "shop"


# -- the generated code (the `consumers` golden case, and the statements example) -----


def _golden_src() -> Path:
    (case,) = [c for c in cases() if c.name == "consumers"]
    return case.expected / "src"


def _recorded(event_type: str, version: int, data: str) -> RecordedEvent:
    return RecordedEvent(
        1,
        f"Order-{uuid4()}",
        1,
        event_type,
        version,
        data,
        uuid4(),
        {},
        "2026-03-01T12:00:00+00:00",
    )


def test_the_contract_reads_older_versions_it_can_derive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_golden_src()))
    from fulfilment.upstream.shop import REGISTRY, OrderPlaced, OrderShipped

    lines = '[{"sku": "A", "price": {"amount": "2.50", "currency": "EUR"}, "quantity": 1}]'
    placed = REGISTRY.decode_recorded(_recorded("OrderPlaced", 1, f'{{"lines": {lines}}}'))
    assert isinstance(placed, OrderPlaced)
    assert placed.channel.value == "web"
    shipped = REGISTRY.decode_recorded(
        _recorded("OrderShipped", 2, '{"carrier": "X", "parcels": 2}')
    )
    assert isinstance(shipped, OrderShipped) and shipped.tracking is None


def test_versions_behind_an_upstream_manual_upcast_are_not_readable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Version 1 of OrderShipped needs the shop's hand-written upcaster: the contract
    leaves it out, so such a message is refused (and dead-lettered by the runner)."""
    monkeypatch.syspath_prepend(str(_golden_src()))
    from fulfilment.upstream.shop import REGISTRY

    with pytest.raises(DecodeError, match="needs the hand-written upcaster of the shop"):
        REGISTRY.decode_recorded(_recorded("OrderShipped", 1, '{"carrier": "X"}'))


def test_a_consumer_base_knows_its_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_golden_src()))
    from fulfilment.domain.order_board import OrderBoard
    from fulfilment.upstream import billing, shop

    assert OrderBoard.subscriptions == {"shop": shop.REGISTRY, "billing": billing.REGISTRY}
    assert OrderBoard.handles() == {
        ("shop", "OrderPlaced"),
        ("shop", "OrderShipped"),
        ("billing", "InvoicePaid"),
    }
    upstream_of: dict[type[Event], str] = dict(OrderBoard.upstream_of)
    assert upstream_of[shop.OrderPlaced] == "shop"
    assert OrderBoard.aggregate_id_types == {"Order": __import__("uuid").UUID, "Invoice": str}


def test_the_service_imports_nats_only_when_consumers_run() -> None:
    code = (
        "import sys; import statements.service as s; "
        "assert hasattr(s.StatementsService, 'consumers'); "
        "assert not any(m == 'nats' or m.startswith(('nats.', 'esgen.runtime.nats')) "
        "for m in sys.modules), sorted(m for m in sys.modules if 'nats' in m)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=EXAMPLES / "statements" / "src",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_change_upstream_is_generated_again(tmp_path: Path) -> None:
    """The upstream's schema is an input of the run: the run cache must not answer
    "unchanged" after it changed."""
    upstream = write(tmp_path / "shop" / "schemas" / "shop.yaml", UPSTREAM)
    downstream(tmp_path, "../../shop/schemas")

    def generate() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "esgen.cli", "generate", "schemas", "--out", "out"],
            cwd=tmp_path / "fulfilment",
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    generate()
    assert "updated" not in generate()
    upstream.write_text(
        UPSTREAM.replace("total: decimal", "total: decimal, note: {type: str, optional: true}")
    )
    assert "updated   out/fulfilment/upstream/shop/events/order.py" in generate()


def test_an_empty_upstream_folder_is_said_at_the_from_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "shop" / "schemas").mkdir(parents=True)
    (message,) = errors(downstream(tmp_path, "../../shop/schemas"))
    # Shown relative to the current folder, wherever the run is.
    assert "fulfilment/schemas/f.yaml:4:11: error[E409]: " in message
    assert "holds no schema files" in message


def test_a_misspelt_from_is_told_as_written_in_yaml(tmp_path: Path) -> None:
    write(tmp_path / "shop" / "schemas" / "shop.yaml", UPSTREAM)
    schemas = downstream(tmp_path, "../../shop/schemas")
    path = schemas / "f.yaml"
    path.write_text(path.read_text().replace("from:", "form:"))
    assert any(
        "unknown key 'form' in subscribes.shop; did you mean 'from'?" in e for e in errors(schemas)
    )


def test_a_consumer_named_like_a_keyword_module_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "shop" / "schemas" / "shop.yaml", UPSTREAM)
    schemas = downstream(tmp_path, "../../shop/schemas")
    path = schemas / "f.yaml"
    path.write_text(path.read_text().replace("  Board:", "  Import:"))
    (message,) = errors(schemas)
    assert "error[E201]: consumer name 'Import' would name its module 'import'" in message


@pytest.mark.parametrize("name", ["deadletter", "deadletter_statements"])
def test_a_context_may_not_take_the_dead_letters_names(tmp_path: Path, name: str) -> None:
    write(tmp_path / "s.yaml", f"context: {name}\n")
    (message,) = errors(tmp_path)
    assert f"error[E203]: context name {name!r} is reserved" in message


def test_one_consumer_refuses_one_aggregate_name_from_two_upstreams(tmp_path: Path) -> None:
    """`aggregate_id(recorded)` knows an id's type by the aggregate's name alone."""
    write(tmp_path / "shop" / "schemas" / "shop.yaml", UPSTREAM)
    billing = UPSTREAM.replace("context: shop", "context: billing")
    billing = billing.replace("type: uuid", "type: int").replace("OrderPlaced", "OrderBilled")
    write(tmp_path / "billing" / "schemas" / "billing.yaml", billing)
    schemas = downstream(tmp_path, "../../shop/schemas")
    path = schemas / "f.yaml"
    text = path.read_text().replace(
        "consumers:",
        "  billing:\n    from: ../../billing/schemas\n    events: [OrderBilled]\nconsumers:",
    )
    path.write_text(text.replace("[shop.OrderPlaced]", "[shop.OrderPlaced, billing.OrderBilled]"))
    (message,) = errors(schemas)
    assert "error[E204]: consumer 'Board' handles events of aggregate 'Order' from both" in message


def test_a_consumers_query_does_not_wait_for_this_stores_positions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its rows follow another context's events through the broker: no position of this
    store says whether they hold a write, so waiting is refused instead of timing out."""
    monkeypatch.syspath_prepend(str(EXAMPLES / "statements" / "src"))
    from statements.consumers.account_statements import AccountStatementsQuery

    from esgen.runtime import ConsumerReadModel, MemoryEventStore

    query = AccountStatementsQuery(MemoryEventStore())
    assert isinstance(query, ConsumerReadModel)
    with pytest.raises(TypeError, match="positions and tokens of this store do not apply"):
        query.wait_for("p1.1", timeout=1.0)


def test_a_consumers_changed_table_says_replay_not_rebuild(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES / "statements" / "src"))
    from statements.consumers.account_statements import AccountStatementsQuery
    from statements.domain.account_statements import AccountStatements
    from statements.upstream.bank import REGISTRY

    from esgen.runtime import ConsumerNeedsReplay, ProjectionRunner, SQLiteEventStore, TableSpec

    store = SQLiteEventStore(tmp_path / "statements.sqlite")
    # The table as an older version of the consumer built it: one column fewer.
    older = type("Older", (AccountStatements,), {})
    spec = AccountStatements.table
    older.table = TableSpec(spec.name, spec.key, spec.columns[:-1])
    ProjectionRunner(store, REGISTRY, [older()])
    with pytest.raises(ConsumerNeedsReplay, match="replay it from the upstream streams"):
        AccountStatementsQuery(store).count()
    store.close()
