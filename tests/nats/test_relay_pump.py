"""The relay's pump against the machine's NATS: pages read on the broker's side of the
relay, an undecodable event met there (its predecessors out, the checkpoint just before
it), the message's headers exactly the wire contract's, and the checkpoint's commits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import relay_support as s

from esgen.runtime import MemoryEventStore, NewEvent
from esgen.runtime._integration import Wire, message_headers
from esgen.runtime.nats import Relay
from esgen.runtime.nats._relay import H_EXPECTED_LAST_MSG_ID, RelayError

SHARED = "nats://127.0.0.1:4222"


@pytest.fixture
def context() -> Iterator[str]:
    name = "t" + uuid.uuid4().hex[:10]
    yield name
    s.delete_stream(SHARED, Wire(name).stream)


def _opened(store: MemoryEventStore, order: int, customer: str) -> None:
    store.append(f"Order-{order}", [NewEvent("Opened", 1, json.dumps({"customer": customer}))], 0)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (NewEvent("Opened", 1, '{"customer": 5}'), r"does not validate"),
        (NewEvent("Paid", 7, '{"amount": 1}'), r"newer"),
    ],
)
def test_an_undecodable_event_pages_after_the_first_stops_the_relay_just_before_it(
    context: str, bad: NewEvent, reason: str
) -> None:
    store = MemoryEventStore()
    for n in range(9):  # pages of 2: the pump reads most of these itself
        _opened(store, n, f"c{n}")
    store.append("Order-9", [NewEvent("Noted", 1, '{"text": "unpublished"}')], 0)
    store.append("Order-9", [bad], 1)
    _opened(store, 10, "after")
    wire = s.wire(context=context)
    reported: list[int] = []
    with Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED, page_size=2) as relay:
        with pytest.raises(RelayError, match=rf"at position 11 .*{reason}"):
            relay.catch_up(lambda position, head: reported.append(position))
        # Everything before it went out, the unpublished event included in the checkpoint.
        assert relay.position() == 10
        assert relay.status().problem is not None
        # Met again at once, from the checkpoint, without sending anything twice.
        with pytest.raises(RelayError, match="at position 11"):
            relay.catch_up()
    assert reported and reported[-1] == 10 and reported == sorted(reported)
    messages = s.read_stream(SHARED, wire.stream)
    assert [int(m.headers["Esgen-Position"]) for m in messages] == list(range(1, 10))


def test_the_headers_are_the_contract_s_and_each_expects_the_one_before(context: str) -> None:
    store = MemoryEventStore()
    s.append_orders(store, orders=3, per_order=6)
    wire = s.wire(context=context)
    with Relay(store, s.registry(), wire, s.PUBLISHED, servers=SHARED, page_size=4) as relay:
        relay.catch_up()
    messages = s.read_stream(SHARED, wire.stream)
    recorded = {str(r.event_id): r for r in store.read_all(limit=1000)}
    previous: str | None = None
    for message in messages:
        headers = dict(message.headers)
        expected_last = headers.pop(H_EXPECTED_LAST_MSG_ID, None)
        event = recorded[headers["Nats-Msg-Id"]]
        version = int(headers["Esgen-Event-Version"])
        assert headers == message_headers(context, "Order", event, version)
        # The first of a fresh relay goes alone, expecting nothing; every later one names
        # its predecessor, so a lost message cannot be overtaken.
        assert expected_last == previous
        previous = headers["Nats-Msg-Id"]
    assert len(messages) == len([r for r in recorded.values() if r.event_type in s.PUBLISHED])
