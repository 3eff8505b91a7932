"""The consumer runner on a private nats-server: handled once, per-aggregate order,
redeliveries absorbed by the inbox, dead letters, a handler's bug retried, partitions,
status, on memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from consumer_domain import (
    AccountClosed,
    Sent,
    Statements,
    deposits,
    publish,
    read_stream,
)
from nats.js.api import StreamConfig
from servers import NatsServer, nats_server_binary

from esgen.runtime import EventStore, MemoryEventStore, SQLiteEventStore
from esgen.runtime._integration import (
    H_DEAD_LETTER_REASON,
    H_MSG_ID,
    H_ORIGINAL_SUBJECT,
    Wire,
)
from esgen.runtime._progress_store import progress_storage
from esgen.runtime.nats._consumer_runner import ConsumerRunner, durable_name

pytestmark = pytest.mark.skipif(nats_server_binary() is None, reason="nats-server missing")

WIRE = Wire("bank", partitions=4)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.kill()


def _sqlite(tmp_path: Path) -> EventStore:
    return SQLiteEventStore(tmp_path / "statements.sqlite")


def _memory(tmp_path: Path) -> EventStore:
    return MemoryEventStore()


def _postgres(tmp_path: Path) -> EventStore:
    from runtime.postgres_env import require_postgres

    from esgen.runtime import PostgresEventStore

    dsn = require_postgres()
    return PostgresEventStore(dsn, schema=f"esgen_test_{tmp_path.name[-20:].lower()}_c")


STORES: dict[str, Callable[[Path], EventStore]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened = STORES[request.param](tmp_path)
    try:
        yield opened
    finally:
        schema = getattr(opened, "schema", None)
        opened.close()
        if schema is not None:
            from runtime.postgres_env import drop_schema, require_postgres

            drop_schema(require_postgres(), schema)


def runner(
    store: EventStore, server: NatsServer, consumer: Statements | None = None, **options: Any
) -> ConsumerRunner:
    options.setdefault("ack_wait", 2.0)
    return ConsumerRunner(
        store, [consumer or Statements()], {"bank": WIRE}, context="statements",
        servers=server.url, **options,
    )  # fmt: skip


def lines(store: EventStore) -> dict[str, tuple[int, list[int], list[str]]]:
    """account -> (balance, versions handled in order, event ids handled)."""
    from esgen.runtime._readmodel import Rows

    consumer = Statements()
    with progress_storage(store).unit() as unit:
        generation = next(g for g, (_, active) in unit.generations("statements").items() if active)
        rows = Rows(consumer.table, consumer.row_type, unit.table(consumer.table, generation))
        found = {
            row.account: (
                row.balance,
                [int(v) for v in row.versions.split(",")],
                row.event_ids.split(","),
            )
            for row in rows.all()
        }
        rows.discard()
    return found


def until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Wait for something a runner in another thread does (a bound only against hangs)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def test_each_message_handled_once_in_order_and_a_redelivery_has_no_second_effect(
    store: EventStore, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    sent = deposits(accounts=5, per_account=6)
    old = Sent("a0", 7, version=1, payload={"amount": 7})  # v1: upcast to v2 on the way in
    closed = Sent("a0", 8, event_type="AccountClosed", version=1, payload={})
    publish(server.url, WIRE, [*sent, old, closed], duplicate_window=0.2)
    consumer = Statements()
    with runner(store, server, consumer) as consumers:
        assert consumers.catch_up(idle=0.5) == len(sent) + 1
        found = lines(store)
        assert sorted(found) == [f"a{n}" for n in range(5)]
        for account, (balance, versions, ids) in found.items():
            expected = list(range(1, 8)) if account == "a0" else list(range(1, 7))
            assert versions == expected  # in each account's order, AccountClosed skipped
            assert balance == sum(expected)
            assert len(set(ids)) == len(ids)
        assert consumer.currencies.count("EUR") == len(sent) + 1
        assert AccountClosed.event_type not in Statements.handles()
        # The same event ids again, after the broker's duplicate window: the inbox drops them.
        time.sleep(0.3)
        publish(server.url, WIRE, [sent[0], sent[7], old])
        assert len(read_stream(server.url, WIRE.stream)) == len(sent) + 2 + 3  # not deduped
        with caplog.at_level(logging.DEBUG, "esgen.runtime"):
            assert consumers.catch_up(idle=0.5) == 0
        absorbed = [r for r in caplog.records if "already handled" in r.getMessage()]
        assert len(absorbed) == 3
        assert lines(store) == found
        (status,) = consumers.status()
        assert status.handled == len(sent) + 1 and status.pending == 0
        assert status.problem is None and status.last_handled is not None
        assert status.to_json()["durables"] == [
            durable_name("statements", "statements", "bank", None)
        ]
        json.dumps(status.to_json())


def _bad_messages(wire: Wire) -> list[tuple[str, tuple[str, dict[str, str], bytes]]]:
    """(what the reason must say, the message) for every kind of undecodable message."""
    good = Sent("bad", 1)
    subject = good.subject(wire)
    payload = json.dumps(good.payload).encode()

    def changed(**headers: str | None) -> dict[str, str]:
        result = {**Sent("bad", 1).headers()}
        for name, value in headers.items():
            key = name.replace("_", "-")
            if value is None:
                result.pop(key)
            else:
                result[key] = value
        return result

    return [
        ("no Esgen-Event-Type header", (subject, changed(Esgen_Event_Type=None), payload)),
        ("not a whole number", (subject, changed(Esgen_Stream_Version="x"), payload)),
        ("'Refunded' (version 1) is not one this context knows",
         (subject, changed(Esgen_Event_Type="Refunded", Esgen_Event_Version="1"), payload)),
        ("newer than the latest registered version 2",
         (subject, changed(Esgen_Event_Version="3"), payload)),
        ("does not validate as MoneyDeposited",
         (subject, changed(), b'{"amount": "lots", "currency": "EUR"}')),
        ("a v1 deposit of -1 cannot be upcast",
         (subject, changed(Esgen_Event_Version="1"), b'{"amount": -1}')),
        ("comes from context 'shop'", (subject, changed(Esgen_Context="shop"), payload)),
        ("not UTF-8", (subject, changed(), b"\xff\xfe")),
    ]  # fmt: skip


def test_an_undecodable_message_is_dead_lettered_with_its_reason_and_the_consumer_goes_on(
    tmp_path: Path, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _bad_messages(WIRE)
    after = Sent("bad", 2, payload={"amount": 5, "currency": "EUR"})
    publish(server.url, WIRE, [item for _, item in bad] + [after])
    store = _sqlite(tmp_path)
    with caplog.at_level(logging.WARNING, "esgen.runtime"), runner(store, server) as consumers:
        assert consumers.catch_up(idle=0.5) == 1
    assert lines(store) == {"bad": (5, [2], [str(after.event_id)])}
    letters = read_stream(server.url, "ESGEN_DEADLETTER_STATEMENTS")
    assert len(letters) == len(bad)
    for (expected, (subject, headers, payload)), (dl_subject, dl_headers, dl_payload) in zip(
        bad, letters, strict=True
    ):
        assert dl_subject == "esgen.deadletter.statements.statements"
        assert expected in dl_headers[H_DEAD_LETTER_REASON], dl_headers[H_DEAD_LETTER_REASON]
        assert dl_headers[H_ORIGINAL_SUBJECT] == subject
        assert dl_payload == payload
        for name, value in headers.items():  # the original headers kept, but the id
            if name != H_MSG_ID:
                assert dl_headers[name] == value
        assert dl_headers[H_MSG_ID] == f"statements.{headers[H_MSG_ID]}"
    said = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(said) == len(bad)
    store.close()


def test_a_handler_that_raises_is_retried_not_dead_lettered_and_later_events_wait(
    tmp_path: Path, server: NatsServer
) -> None:
    store = _sqlite(tmp_path)
    consumer = Statements()
    consumer.fail_on = {2}
    publish(server.url, WIRE, deposits(accounts=1, per_account=3))
    stop = threading.Event()
    with runner(store, server, consumer) as consumers:
        thread = threading.Thread(target=consumers.run, args=(stop,))
        thread.start()
        try:
            until(lambda: (consumers.status()[0].problem or _NoProblem).attempts >= 2,
                  "the failing message delivered twice")  # fmt: skip
            (status,) = consumers.status()
            assert status.problem is not None
            assert status.problem.error == "RuntimeError"
            assert status.problem.stream_version == 2
            assert "cannot book 2" in status.problem.message
            assert status.pending == 2  # the failing one and the one behind it
            assert lines(store) == {"a0": (1, [1], lines(store)["a0"][2])}  # 3 waits for 2
            consumer.fail_on = set()  # the bug fixed: the next delivery goes through
            until(lambda: lines(store).get("a0", (0, []))[1] == [1, 2, 3], "all three handled")
            (status,) = consumers.status()
            assert status.problem is None and status.handled == 3
        finally:
            stop.set()
            thread.join()
    assert read_stream_or_empty(server.url, "ESGEN_DEADLETTER_STATEMENTS") == []
    store.close()


class _NoProblem:
    attempts = 0


def read_stream_or_empty(url: str, stream: str) -> list[Any]:
    from nats.js.errors import NotFoundError

    try:
        return read_stream(url, stream)
    except NotFoundError:
        return []


def test_partitions_split_the_work_between_runners_each_keeping_its_aggregates_order(
    tmp_path: Path, server: NatsServer
) -> None:
    sent = deposits(accounts=12, per_account=4)
    publish(server.url, WIRE, sent)
    store = _sqlite(tmp_path)
    with (
        runner(store, server, partitions=[0, 1]) as low,
        runner(store, server, partitions=[2, 3]) as high,
    ):
        assert low.durables == [f"esgen-statements-statements-bank-p{k}" for k in (0, 1)]
        handled = low.catch_up(idle=0.5) + high.catch_up(idle=0.5)
        assert low.catch_up(idle=0.3) + high.catch_up(idle=0.3) == 0
    assert handled == len(sent)
    found = lines(store)
    assert len(found) == 12 and all(v == [1, 2, 3, 4] for _, v, _ in found.values())
    with pytest.raises(ValueError, match=r"partition 4 is not one of 0\.\.3"):
        runner(store, server, partitions=[4])
    store.close()


def test_a_broker_stopped_and_restarted_mid_run_is_waited_for_and_said_once(
    tmp_path: Path, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = _sqlite(tmp_path)
    first = deposits(accounts=3, per_account=3)
    publish(server.url, WIRE, first)
    stop = threading.Event()
    with caplog.at_level(logging.WARNING, "esgen.runtime"), runner(store, server) as consumers:
        thread = threading.Thread(target=consumers.run, args=(stop,))
        thread.start()
        try:
            until(lambda: sum(len(v) for _, v, _ in lines(store).values()) == 9, "first batch")
            server.stop()
            # The write side of the consumer's store keeps working meanwhile.
            assert sum(len(v) for _, v, _ in lines(store).values()) == 9
            until(lambda: any("unreachable" in r.getMessage() for r in caplog.records),
                  "the outage said")  # fmt: skip
            time.sleep(1.0)  # several attempts while it is down: still one line
            server.start()
            publish(server.url, WIRE, deposits(accounts=3, per_account=3, start=4))
            until(lambda: sum(len(v) for _, v, _ in lines(store).values()) == 18, "second batch")
        finally:
            stop.set()
            thread.join()
    messages = [r.getMessage() for r in caplog.records]
    down = [m for m in messages if "unreachable" in m]
    back = [m for m in messages if "reachable again" in m]
    assert len(down) == 1, messages
    assert len(back) == 1, messages
    assert all(v == list(range(1, 7)) for _, v, _ in lines(store).values())
    store.close()


def test_bad_configuration_is_refused_with_what_is_wrong(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    with pytest.raises(Exception, match="no wire is given for it"):
        ConsumerRunner(store, [Statements()], {}, context="statements")
    with pytest.raises(Exception, match="consumer names must be unique"):
        ConsumerRunner(store, [Statements(), Statements()], {"bank": WIRE}, context="statements")
    with pytest.raises(ValueError, match="ack_wait"):
        ConsumerRunner(store, [Statements()], {"bank": WIRE}, context="statements", ack_wait=0)
    with pytest.raises(ValueError, match="cannot be part of a JetStream consumer name"):
        durable_name("state.ments", "statements", "bank", None)
    store.close()


def test_a_cluster_node_killed_mid_run_is_left_for_another(tmp_path: Path) -> None:
    from servers import NatsCluster

    cluster = NatsCluster.of_three(tmp_path / "cluster").start()
    store = _sqlite(tmp_path)
    try:
        cluster.add_stream(
            StreamConfig(name=WIRE.stream, subjects=[WIRE.all_subjects], num_replicas=3)
        )
        publish(cluster.urls, WIRE, deposits(accounts=3, per_account=3))
        stop = threading.Event()
        with ConsumerRunner(
            store, [Statements()], {"bank": WIRE}, context="statements",
            servers=cluster.urls, ack_wait=2.0,
        ) as consumers:  # fmt: skip
            thread = threading.Thread(target=consumers.run, args=(stop,))
            thread.start()
            try:
                until(lambda: sum(len(v) for _, v, _ in lines(store).values()) == 9, "first")
                cluster.nodes[0].kill()
                cluster.wait_jetstream()
                alive = [node.url for node in cluster.nodes[1:]]
                until(lambda: _published(alive, deposits(accounts=3, per_account=3, start=4)),
                      "publishing to the nodes left", limit=60)  # fmt: skip
                until(lambda: sum(len(v) for _, v, _ in lines(store).values()) == 18,
                      "second batch", limit=60)  # fmt: skip
            finally:
                stop.set()
                thread.join()
        assert all(v == list(range(1, 7)) for _, v, _ in lines(store).values())
    finally:
        store.close()
        for node in cluster.nodes:
            node.kill()


def _published(urls: list[str], messages: list[Sent]) -> bool:
    """Publish (True), or False while the cluster is still electing leaders."""
    try:
        publish(urls, WIRE, messages)
    except Exception:
        return False
    return True
