"""What the relay tests share: a small published context, appending to it, and reading a
JetStream stream back in full (with a plain nats-py connection, not the relay's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats

from esgen.runtime import Event, EventRegistry, ExpectedVersion, NewEvent
from esgen.runtime._integration import Wire
from esgen.runtime._ports import EventStore

CONTEXT = "shop"
# Two aggregates; Opened and Paid are published, Noted is not. Paid has two versions: the
# relay sends version 2, upcasting events stored in version 1.
PUBLISHED = {"Opened": "Order", "Paid": "Order"}


class Opened(Event):
    event_type = "Opened"
    event_version = 1
    customer: str


class PaidV1(Event):
    event_type = "Paid"
    event_version = 1
    amount: int


class Paid(Event):
    event_type = "Paid"
    event_version = 2
    amount: int
    currency: str


class Noted(Event):
    event_type = "Noted"
    event_version = 1
    text: str


def registry() -> EventRegistry:
    registry = EventRegistry([Opened, PaidV1, Paid, Noted])
    registry.register_upcaster("Paid", 1, lambda data: {**data, "currency": "EUR"})
    registry.check()
    return registry


def wire(prefix: str = "esgen", partitions: int = 4, context: str = CONTEXT) -> Wire:
    return Wire(context, prefix=prefix, partitions=partitions)


def order_events(index: int, count: int) -> list[NewEvent]:
    """`count` events for order `index`: opened, then paid (v1 and v2 in turn), with a
    note (unpublished) every third."""
    events = [NewEvent("Opened", 1, json.dumps({"customer": f"c{index}"}))]
    for n in range(1, count):
        if n % 3 == 0:
            events.append(NewEvent("Noted", 1, json.dumps({"text": f"n{n}"})))
        elif n % 2:
            events.append(NewEvent("Paid", 1, json.dumps({"amount": n})))
        else:
            events.append(NewEvent("Paid", 2, json.dumps({"amount": n, "currency": "USD"})))
    return events


def append_orders(store: EventStore, orders: int, per_order: int, start: int = 0) -> int:
    """Appends `per_order` events to each of `orders` streams, one event at a time and the
    streams interleaved; returns how many of them are published."""
    published = 0
    batches = {i: order_events(i, per_order) for i in range(start, start + orders)}
    for n in range(per_order):
        for i in range(start, start + orders):
            event = batches[i][n]
            store.append(f"Order-{i}", [event], ExpectedVersion.ANY)
            published += event.event_type in PUBLISHED
    return published


@dataclass(frozen=True)
class Received:
    seq: int
    subject: str
    headers: dict[str, str]
    payload: dict[str, Any]

    @property
    def stream_id(self) -> str:
        return self.headers["Esgen-Stream-Id"]

    @property
    def stream_version(self) -> int:
        return int(self.headers["Esgen-Stream-Version"])


def read_stream(servers: str | Sequence[str], stream: str) -> list[Received]:
    """Every message in the stream, in stream order."""

    async def read() -> list[Received]:
        nc = await nats.connect(servers if isinstance(servers, str) else list(servers))
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            out = []
            first, last = info.state.first_seq, info.state.last_seq
            for seq in range(first, last + 1) if info.state.messages else ():
                msg = await js.get_msg(stream, seq)
                assert msg.seq is not None and msg.subject is not None and msg.data is not None
                out.append(
                    Received(msg.seq, msg.subject, dict(msg.headers or {}), json.loads(msg.data))
                )
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def delete_stream(servers: str, stream: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(servers)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(delete())


def check_order(messages: Sequence[Received]) -> dict[str, int]:
    """Per-aggregate order: each stream's versions rise in the stream; returns, per stream,
    the last version seen. Raises AssertionError naming the first inversion."""
    last: dict[str, int] = {}
    for message in messages:
        version = message.stream_version
        previous = last.get(message.stream_id, 0)
        assert version > previous, (
            f"{message.stream_id}: version {version} after {previous} (seq {message.seq})"
        )
        last[message.stream_id] = version
    return last
