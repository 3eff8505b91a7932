"""Benchmark: the relay publishing events from a SQLite store to NATS JetStream.

Run: .venv/bin/python benchmarks/relay_nats.py [--repeat N] [--events N] [--servers URL]

Side by side in one run, against the same broker (the local one by default):
  - esgen: `Relay.catch_up` over N events of a SQLite store (read in pages, decoded and
    checked, headers built, published pipelined with acks, the checkpoint committed
    after each acknowledged window);
  - plain nats-py: the same subjects, payloads and headers published on one connection
    the way a careful user would pipeline them: up to 256 requests in flight through a
    reply-subject wildcard subscription, acks awaited in order, nothing read from a store.
Each run publishes into a fresh stream; prints the median throughput of each side and
their ratio. Then the end-to-end latency from the commit of an event to a JetStream
subscriber receiving it, with the relay following the store (median and p99), printed
beside the same for plain nats-py publishing right after the commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import nats
from nats.aio.msg import Msg

from esgen.runtime import Event, EventRegistry, ExpectedVersion, NewEvent, SQLiteEventStore
from esgen.runtime._integration import Wire, message_headers
from esgen.runtime.nats import Relay

WINDOW = 256
PAGE = 500


class Deposited(Event):
    event_type = "Deposited"
    event_version = 1
    amount: int
    note: str


REGISTRY = EventRegistry([Deposited])
PUBLISHED = {"Deposited": "Account"}


def fill(path: Path, events: int) -> None:
    with SQLiteEventStore(path) as store:
        for start in range(0, events, 100):
            batch = [
                NewEvent("Deposited", 1, json.dumps({"amount": n, "note": "x" * 40}))
                for n in range(start, min(events, start + 100))
            ]
            store.append(f"Account-{start % 1000}", batch, ExpectedVersion.ANY)


async def drop(servers: str, stream: str) -> None:
    nc = await nats.connect(servers)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_stream(stream)
    await nc.close()


async def create(servers: str, wire: Wire) -> None:
    nc = await nats.connect(servers)
    await nc.jetstream().add_stream(name=wire.stream, subjects=[wire.all_subjects],
                                    duplicate_window=120.0)  # fmt: skip
    await nc.close()


def run_relay(path: Path, servers: str) -> float:
    wire = Wire("b" + uuid.uuid4().hex[:8])
    asyncio.run(create(servers, wire))  # both sides publish into an existing stream
    with SQLiteEventStore(path) as store:
        # A fresh checkpoint per run: a context of its own.
        relay = Relay(store, REGISTRY, wire, PUBLISHED, servers=servers, page_size=PAGE)
        try:
            started = time.perf_counter()
            relay.catch_up()
            elapsed = time.perf_counter() - started
        finally:
            relay.close()
    asyncio.run(drop(servers, wire.stream))
    return elapsed


def run_plain(path: Path, servers: str) -> float:
    wire = Wire("p" + uuid.uuid4().hex[:8])
    with SQLiteEventStore(path) as store:
        records = list(store.iter_all())
    messages = [
        (
            wire.subject("Account", r.event_type, r.stream_id),
            r.data.encode(),
            message_headers(wire.context, "Account", r, 1),
        )
        for r in records
    ]
    asyncio.run(create(servers, wire))

    async def publish() -> float:
        nc = await nats.connect(servers)
        inbox = nc.new_inbox()
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Msg]] = {}

        async def on_ack(msg: Msg) -> None:
            futures.pop(msg.subject).set_result(msg)

        await nc.subscribe(inbox + ".*", cb=on_ack)
        started = time.perf_counter()
        pending: list[asyncio.Future[Msg]] = []
        for index, (subject, payload, headers) in enumerate(messages):
            reply = f"{inbox}.{index}"
            future = futures[reply] = loop.create_future()
            await nc.publish(subject, payload, reply, headers)
            pending.append(future)
            if len(pending) >= WINDOW:
                ack = await pending.pop(0)
                assert b'"seq"' in ack.data, ack.data
        for future in pending:
            ack = await future
            assert b'"seq"' in ack.data, ack.data
        elapsed = time.perf_counter() - started
        await nc.close()
        return elapsed

    elapsed = asyncio.run(publish())
    asyncio.run(drop(servers, wire.stream))
    return elapsed


def latency(path: Path, servers: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds from each append's return to a subscriber receiving its message: through
    the relay following the store, and published by hand right after the append."""
    wire = Wire("l" + uuid.uuid4().hex[:8])
    asyncio.run(create(servers, wire))
    received: dict[str, float] = {}
    ready = threading.Event()
    done = threading.Event()

    def subscriber() -> None:
        async def listen() -> None:
            nc = await nats.connect(servers)

            async def on_msg(msg: Msg) -> None:
                received[(msg.headers or {})["Nats-Msg-Id"]] = time.perf_counter()

            await nc.subscribe(wire.all_subjects, cb=on_msg)
            await nc.flush()
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.01)
            await nc.close()

        asyncio.run(listen())

    listener = threading.Thread(target=subscriber)
    listener.start()
    ready.wait()
    committed: dict[str, float] = {}
    with SQLiteEventStore(path) as store:
        relay = Relay(store, REGISTRY, wire, PUBLISHED, servers=servers)
        relay.catch_up()  # the filled events first, out of the measure
        stop = threading.Event()
        follower = threading.Thread(target=relay.run, args=(stop,))
        follower.start()
        for n in range(count):
            event = NewEvent("Deposited", 1, json.dumps({"amount": n, "note": "late"}))
            store.append(f"Late-{n % 10}", [event], ExpectedVersion.ANY)
            committed[str(event.event_id)] = time.perf_counter()
            time.sleep(0.005)
        while not all(k in received for k in committed):
            time.sleep(0.01)
        stop.set()
        follower.join()
        relay.close()
    ours = [received[k] - committed[k] for k in committed]

    async def plain() -> list[float]:
        nc = await nats.connect(servers)
        js = nc.jetstream()
        out: dict[str, float] = {}
        with SQLiteEventStore(path) as store:
            for n in range(count):
                event = NewEvent("Deposited", 1, json.dumps({"amount": n, "note": "plain"}))
                (result,) = [store.append(f"Plain-{n % 10}", [event], ExpectedVersion.ANY)]
                out[str(event.event_id)] = time.perf_counter()
                recorded = store.read_all(after=result.position - 1, limit=1)[0]
                await js.publish(
                    wire.subject("Account", "Deposited", recorded.stream_id),
                    recorded.data.encode(),
                    headers=message_headers(wire.context, "Account", recorded, 1),
                )
                await asyncio.sleep(0.005)
        await nc.close()
        return list(out.items())  # type: ignore[arg-type]

    sent = asyncio.run(plain())
    while not all(k in received for k, _ in sent):  # type: ignore[misc]
        time.sleep(0.01)
    done.set()
    listener.join()
    theirs = [received[k] - t for k, t in sent]  # type: ignore[misc]
    asyncio.run(drop(servers, wire.stream))
    return ours, theirs


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--servers", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.db"
        fill(path, args.events)
        ours, plain = [], []
        for _ in range(args.repeat):  # interleaved: the machine's load hits both alike
            ours.append(run_relay(path, args.servers))
            plain.append(run_plain(path, args.servers))
        a, b = statistics.median(ours), statistics.median(plain)
        print(f"relay throughput, {args.events} events, median of {args.repeat} runs:")
        print(f"  esgen Relay.catch_up   {args.events / a:10.0f} events/s  ({a:.3f} s)")
        print(f"  plain nats-py          {args.events / b:10.0f} events/s  ({b:.3f} s)")
        print(f"  ratio (esgen / plain)  {b / a:10.2f}x")
        relay_lat, plain_lat = latency(path, args.servers, args.latency_events)
        print(f"commit -> subscriber latency, {args.latency_events} events (ms):")
        print(f"  {'':22} {'median':>8} {'p99':>8}")
        for name, values in (("esgen relay (follow)", relay_lat), ("plain publish", plain_lat)):
            print(f"  {name:22} {statistics.median(values) * 1000:8.2f} {p99(values) * 1000:8.2f}")


if __name__ == "__main__":
    main()
