"""The consumer runner when the broker's side changes under it while the connection stays
up, on a private nats-server: a durable deleted (one partition's; the other goes on), the
upstream stream deleted and made again, the dead-letter stream deleted or its name taken,
a server without JetStream, and a catch-up stopped while the broker is down."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from consumer_domain import Sent, publish, read_stream
from servers import NatsServer, free_port, nats_server_binary
from test_consumer_runner import WIRE, lines, runner, until

from esgen.runtime import EventStore, SQLiteEventStore
from esgen.runtime._integration import H_DEAD_LETTER_REASON, partition_of
from esgen.runtime.nats._consumer_runner import ConsumerRunner, DeadLetterFailed, DurableLost

pytestmark = pytest.mark.skipif(nats_server_binary() is None, reason="nats-server missing")

DEAD_LETTERS = "ESGEN_DEADLETTER_STATEMENTS"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = SQLiteEventStore(tmp_path / "statements.sqlite")
    try:
        yield opened
    finally:
        opened.close()


def _jetstream(url: str, action: Callable[[Any], Any]) -> None:
    """One JetStream API action of an operator (`action(js)` is awaited)."""
    import nats

    async def main() -> None:
        nc = await nats.connect(url)
        try:
            await action(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(main())


def _accounts_in(partitions: set[int], each: int) -> list[str]:
    """`each` account names per partition of WIRE, for the partitions given."""
    found: dict[int, list[str]] = {k: [] for k in partitions}
    n = 0
    while any(len(names) < each for names in found.values()):
        name = f"a{n}"
        k = partition_of(f"Account-{name}", WIRE.partitions)
        if k in found and len(found[k]) < each:
            found[k].append(name)
        n += 1
    return sorted(name for names in found.values() for name in names)


def _handled(store: EventStore) -> int:
    return sum(len(versions) for _, versions, _ in lines(store).values())


@dataclass
class _Following:
    """`run` on a thread, stopped (and joined) at the end of the `with`."""

    consumers: ConsumerRunner
    stop: threading.Event
    thread: threading.Thread

    def __enter__(self) -> _Following:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _following(consumers: ConsumerRunner) -> _Following:
    stop = threading.Event()
    return _Following(consumers, stop, threading.Thread(target=consumers.run, args=(stop,)))


def _said(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_deleted_durable_is_created_again_while_the_other_partition_goes_on(
    store: EventStore, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    accounts = _accounts_in({0, 1}, each=2)
    publish(server.url, WIRE, [Sent(a, 1) for a in accounts])
    with (
        caplog.at_level(logging.INFO, "esgen.runtime"),
        runner(store, server, partitions=[0, 1]) as consumers,
        _following(consumers),
    ):
        until(lambda: _handled(store) == 4, "the first deposits")
        p0 = consumers.durables[0]
        _jetstream(server.url, lambda js: js.delete_consumer(WIRE.stream, p0))
        publish(server.url, WIRE, [Sent(a, v) for v in (2, 3) for a in accounts])
        until(lambda: _handled(store) == 12, "every deposit, partition 0's included")
        (status,) = consumers.status()
        assert status.pending == 0 and status.problem is None
    gone = _said(caplog, "is gone from the broker")
    assert len(gone) == 1 and p0 in gone[0], gone
    assert len(_said(caplog, f"{p0} is on the broker again")) == 1
    # The new durable replays the stream from its start: the inbox drops the first deposits.
    assert {a: v for a, (_, v, _) in lines(store).items()} == {a: [1, 2, 3] for a in accounts}


def test_a_stream_deleted_is_the_consumers_problem_until_it_is_back(
    store: EventStore, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = [Sent("a0", 1), Sent("a1", 1)]
    publish(server.url, WIRE, first)
    with (
        caplog.at_level(logging.WARNING, "esgen.runtime"),
        runner(store, server) as consumers,
        _following(consumers),
    ):
        until(lambda: _handled(store) == 2, "the first deposits")
        _jetstream(server.url, lambda js: js.delete_stream(WIRE.stream))
        until(lambda: consumers.status()[0].problem is not None, "the problem recorded")
        (status,) = consumers.status()
        assert status.problem is not None
        assert status.problem.error.endswith(DurableLost.__name__)
        assert consumers.durables[0] in status.problem.message
        assert f"its stream {WIRE.stream} is gone" in status.problem.message
        # The operator makes it again (say with more replicas); the relay fills it again.
        publish(server.url, WIRE, [*first, Sent("a0", 2)])
        until(lambda: _handled(store) == 3, "the deposit made after the stream came back")
        until(lambda: consumers.status()[0].problem is None, "the problem cleared")
    assert len(_said(caplog, "is gone from the broker")) == 1
    assert len(_said(caplog, "is on the broker again")) == 1  # a warning: it was a problem
    assert not _said(caplog, "unreachable")  # the broker was up all along
    assert lines(store)["a0"][1] == [1, 2]


def _bad(account: str) -> tuple[str, dict[str, str], bytes]:
    sent = Sent(account, 1)
    headers = {**sent.headers(), "Esgen-Event-Version": "9"}  # newer than this context knows
    return sent.subject(WIRE), headers, b'{"amount": 1, "currency": "EUR"}'


def test_a_deleted_dead_letter_stream_is_made_again(
    store: EventStore, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "esgen.runtime"), runner(store, server) as consumers:
        publish(server.url, WIRE, [_bad("x"), Sent("a0", 1)])
        assert consumers.catch_up(idle=0.5) == 1
        _jetstream(server.url, lambda js: js.delete_stream(DEAD_LETTERS))
        publish(server.url, WIRE, [_bad("y"), Sent("a0", 2)])
        assert consumers.catch_up(idle=0.5) == 1
        (status,) = consumers.status()
        assert status.problem is None and status.pending == 0
    letters = read_stream(server.url, DEAD_LETTERS)
    # The one sent after the stream was deleted, in the stream made again.
    assert [subject for subject, _, _ in letters] == ["esgen.deadletter.statements.statements"]
    assert "newer than the latest" in letters[0][1][H_DEAD_LETTER_REASON]
    assert lines(store)["a0"][1] == [1, 2]
    assert len(_said(caplog, "dead-lettered to")) == 2  # one each


def test_a_dead_letter_the_broker_refuses_is_the_consumers_problem_not_an_outage(
    store: EventStore, server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Another application holds the dead-letter stream's name, with other subjects.
    _jetstream(server.url, lambda js: js.add_stream(name=DEAD_LETTERS, subjects=["other.>"]))
    publish(server.url, WIRE, [_bad("x"), Sent("a0", 1)])
    with (
        caplog.at_level(logging.WARNING, "esgen.runtime"),
        runner(store, server) as consumers,
        _following(consumers),
    ):
        until(lambda: consumers.status()[0].problem is not None, "the problem recorded")
        (status,) = consumers.status()
        assert status.problem is not None
        assert status.problem.error.endswith(DeadLetterFailed.__name__)
        assert "could not be dead-lettered" in status.problem.message
        assert "holds the subjects ['other.>']" in status.problem.message
        assert _handled(store) == 0  # the good one waits behind it (one in flight)
        _jetstream(server.url, lambda js: js.delete_stream(DEAD_LETTERS))
        until(lambda: _handled(store) == 1, "the message behind it, once the name is free")
        until(lambda: consumers.status()[0].problem is None, "the problem cleared")
    assert _said(caplog, "could not be dead-lettered")
    assert not _said(caplog, "unreachable")
    assert len(read_stream(server.url, DEAD_LETTERS)) == 1


@dataclass
class _WithoutJetStream(NatsServer):
    def command(self) -> list[str]:
        return [arg for arg in super().command() if arg != "-js"]


def test_a_server_without_jetstream_is_said_once(
    tmp_path: Path, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    plain = _WithoutJetStream(tmp_path / "plain").start()
    try:
        with (
            caplog.at_level(logging.WARNING, "esgen.runtime"),
            ConsumerRunner(
                store, [_statements()], {"bank": WIRE}, context="statements", servers=plain.url
            ) as consumers,
            _following(consumers),
        ):
            until(lambda: bool(_said(caplog, "JetStream is not enabled")), "the line")
            # Backoff 0.1 s doubling: a few more attempts fail meanwhile, unsaid.
            threading.Event().wait(2.0)
            (status,) = consumers.status()
            assert status.broker == f"JetStream is not enabled on {plain.url}"
        said = [r.getMessage() for r in caplog.records]
        assert len(_said(caplog, "JetStream is not enabled")) == 1, said
        assert plain.url in said[0]
        assert not [m for m in said if "reachable" in m or "again" in m], said
    finally:
        plain.kill()


def _statements() -> Any:
    from consumer_domain import Statements

    return Statements()


def test_a_catch_up_waiting_for_a_broker_that_is_down_ends_when_asked(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"nats://127.0.0.1:{free_port()}"  # nobody listens there
    stop = threading.Event()
    handled: list[int] = []
    with (
        caplog.at_level(logging.WARNING, "esgen.runtime"),
        ConsumerRunner(
            store, [_statements()], {"bank": WIRE}, context="statements", servers=down
        ) as consumers,
    ):
        thread = threading.Thread(target=lambda: handled.append(consumers.catch_up(stop=stop)))
        thread.start()
        try:
            until(lambda: bool(_said(caplog, "unreachable")), "the outage said")
            stop.set()
            thread.join(30)
            assert not thread.is_alive(), "catch_up went on after stop was set"
        finally:
            stop.set()
            thread.join()
    assert handled == [0]


def test_a_lost_durable_recorded_by_an_earlier_run_is_cleared_when_it_is_bound(
    store: EventStore, server: NatsServer
) -> None:
    first = [Sent("a0", 1)]
    publish(server.url, WIRE, first)
    with runner(store, server) as consumers, _following(consumers):
        until(lambda: _handled(store) == 1, "the first deposit")
        _jetstream(server.url, lambda js: js.delete_stream(WIRE.stream))
        until(lambda: consumers.status()[0].problem is not None, "the problem recorded")
    # That process stopped while the stream was gone; the next finds it back, with
    # nothing new for this consumer to handle.
    publish(server.url, WIRE, first)
    with runner(store, server) as consumers:
        assert consumers.catch_up(idle=0.3) == 0
        (status,) = consumers.status()
        assert status.problem is None and status.pending == 0
