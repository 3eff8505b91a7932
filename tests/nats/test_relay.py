"""The relay on memory, SQLite and PostgreSQL stores against the machine's NATS: subjects,
headers and payloads per the wire contract, the checkpoint, status, and bad events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import relay_support as s

from esgen.runtime import MemoryEventStore, NewEvent, SQLiteEventStore
from esgen.runtime._integration import Wire, partition_of
from esgen.runtime._ports import EventStore
from esgen.runtime.nats import Relay
from esgen.runtime.nats._relay import RelayError

SHARED = "nats://127.0.0.1:4222"


@pytest.fixture
def context() -> Iterator[str]:
    """A context of its own, its stream deleted afterwards: runs never see each other's."""
    name = "t" + uuid.uuid4().hex[:10]
    yield name
    s.delete_stream(SHARED, Wire(name).stream)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
    elif request.param == "sqlite":
        with SQLiteEventStore(tmp_path / "events.db") as sqlite:
            yield sqlite
    else:
        from runtime.postgres_env import drop_schema, new_schema, require_postgres

        from esgen.runtime._postgres import PostgresEventStore

        dsn = require_postgres()
        schema = new_schema()
        try:
            with PostgresEventStore(dsn, schema=schema) as postgres:
                yield postgres
        finally:
            drop_schema(dsn, schema)


def test_every_published_event_once_in_order_with_the_contract(
    store: EventStore, context: str
) -> None:
    wire = s.wire(context=context)
    published = s.append_orders(store, orders=6, per_order=12)
    with Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED, page_size=7) as relay:
        assert relay.catch_up() == published
        status = relay.status()
        assert (status.position, status.behind, status.problem) == (store.head_position(), 0, None)
        assert relay.catch_up() == 0  # nothing new: nothing sent again
        # A healthy run sends each message once (a window that stopped early would
        # send the rest again, and the broker would drop them as duplicates).
        assert (relay.resent, relay.duplicates) == (0, 0)
    messages = s.read_stream(SHARED, wire.stream)
    assert len(messages) == published
    s.check_order(messages)
    recorded = {str(r.event_id): r for r in store.read_all(limit=10_000)}
    # The store's order, exactly: one connection, in-order sends.
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        str(r.event_id) for r in recorded.values() if r.event_type in s.PUBLISHED
    ]
    for message in messages:
        original = recorded[message.headers["Nats-Msg-Id"]]
        aggregate = s.PUBLISHED[original.event_type]
        partition = partition_of(original.stream_id, wire.partitions)
        assert message.subject == (f"esgen.{context}.{partition}.{aggregate}.{original.event_type}")
        headers = message.headers
        assert headers["Esgen-Context"] == context
        assert headers["Esgen-Aggregate"] == "Order"
        assert headers["Esgen-Event-Type"] == original.event_type
        assert headers["Esgen-Stream-Id"] == original.stream_id
        assert headers["Esgen-Stream-Version"] == str(original.stream_version)
        assert headers["Esgen-Position"] == str(original.position)
        assert headers["Esgen-Recorded-At"] == original.recorded_at.isoformat()
        if original.event_type == "Paid":
            # The latest version, upcast from version 1 where it was stored so.
            assert headers["Esgen-Event-Version"] == "2"
            expected = json.loads(original.data)
            if original.event_version == 1:
                expected["currency"] = "EUR"
            assert message.payload == expected
        else:
            assert headers["Esgen-Event-Version"] == "1"
            assert message.payload == json.loads(original.data)


def test_correlation_and_causation_ids_travel_as_headers(context: str) -> None:
    store = MemoryEventStore()
    metadata = {"correlation_id": "corr-1", "causation_id": "cause-1"}
    store.append("Order-1", [NewEvent("Opened", 1, '{"customer":"x"}', metadata)], 0)
    wire = s.wire(context=context)
    with Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED) as relay:
        relay.catch_up()
    (message,) = s.read_stream(SHARED, wire.stream)
    assert message.headers["Esgen-Correlation-Id"] == "corr-1"
    assert message.headers["Esgen-Causation-Id"] == "cause-1"


def test_the_checkpoint_survives_the_relay_and_only_new_events_are_sent(
    tmp_path: Path, context: str
) -> None:
    wire = s.wire(context=context)
    with SQLiteEventStore(tmp_path / "events.db") as store:
        first = s.append_orders(store, orders=3, per_order=5)
        with Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED) as relay:
            assert relay.catch_up() == first
        second = s.append_orders(store, orders=2, per_order=4, start=3)
    # Another process, another relay object: it starts from the stored checkpoint.
    with (
        SQLiteEventStore(tmp_path / "events.db") as store,
        Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED) as relay,
    ):
        assert relay.status().behind == 8
        assert relay.catch_up() == second
    assert len(s.read_stream(SHARED, wire.stream)) == first + second


def test_an_event_that_cannot_be_decoded_stops_the_relay_and_is_named(context: str) -> None:
    store = MemoryEventStore()
    store.append("Order-1", [NewEvent("Opened", 1, '{"customer":"x"}')], 0)
    store.append("Order-1", [NewEvent("Paid", 3, '{"amount":1}')], 1)  # a future version
    store.append("Order-1", [NewEvent("Opened", 1, '{"customer":"y"}')], 2)
    wire = s.wire(context=context)
    with Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED) as relay:
        with pytest.raises(RelayError, match=r"Paid v3 at position 2 .*newer"):
            relay.catch_up()
        status = relay.status()
        # Everything before it went out; it and what follows did not.
        assert status.position == 1
        assert status.problem is not None and status.problem.position == 2
        assert status.to_json()["problem"]["event_type"] == "Paid"
    assert len(s.read_stream(SHARED, wire.stream)) == 1


def test_a_stream_of_that_name_with_other_subjects_is_refused(context: str) -> None:
    import asyncio

    import nats

    wire = s.wire(context=context)

    async def squat() -> None:
        nc = await nats.connect(SHARED)
        await nc.jetstream().add_stream(name=wire.stream, subjects=[f"other.{context}"])
        await nc.close()

    asyncio.run(squat())
    store = MemoryEventStore()
    s.append_orders(store, 1, 2)
    with (
        Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED) as relay,
        pytest.raises(Exception, match=rf"{wire.stream} holds the subjects .*other"),
    ):
        relay.catch_up()


def test_unknown_published_types_are_refused() -> None:
    with pytest.raises(ValueError, match="publishes Shipped, which the registry"):
        Relay(MemoryEventStore(), s.registry(), s.wire(), {"Shipped": "Order"})
