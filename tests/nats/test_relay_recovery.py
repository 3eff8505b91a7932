"""The relay where a review found it wanting, on private nats-server processes: a type its
code does not know (a rolling deploy), a stream deleted under it, a server without
JetStream, the status while the broker is down at start, and SIGTERM then."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import relay_support as s
from servers import NatsServer, free_port

from esgen.runtime import MemoryEventStore, NewEvent, SQLiteEventStore
from esgen.runtime.nats import Relay
from esgen.runtime.nats._relay import RelayError

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank"


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Until `condition()` holds: a bound on a hang, not a timed assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    nats_server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    try:
        yield nats_server
    finally:
        nats_server.stop()


class _WithoutJetStream(NatsServer):
    """A plain NATS server: it answers, JetStream's API does not."""

    def command(self) -> list[str]:
        return [arg for arg in super().command() if arg != "-js"]


# -- a type this code does not know ------------------------------------------------------


@pytest.mark.parametrize("before", [0, 1], ids=["first-in-page", "after-a-published-one"])
def test_a_type_the_code_does_not_know_stops_the_relay(server: NatsServer, before: int) -> None:
    """A newer writer in a rolling deploy records (and publishes) a type this relay has
    never heard of: the relay stops before it, naming it, rather than pass over it."""
    store = MemoryEventStore()
    version = 0
    for n in range(before):
        store.append("Order-1", [NewEvent("Opened", 1, f'{{"customer":"c{n}"}}')], version)
        version += 1
    # Known and unpublished: passes without a message.
    store.append("Order-1", [NewEvent("Noted", 1, '{"text":"x"}')], version)
    store.append("Order-1", [NewEvent("Gifted", 2, '{"amount":5}')], version + 1)
    store.append("Order-1", [NewEvent("Opened", 1, '{"customer":"z"}')], version + 2)
    unknown_at = before + 2
    wire = s.wire(prefix="unknown" + str(before))
    with Relay(store, s.registry(), wire, s.PUBLISHED, servers=server.url) as relay:
        with pytest.raises(RelayError, match=rf"Gifted v2 at position {unknown_at} .*unknown"):
            relay.catch_up()
        status = relay.status()
        assert status.position == unknown_at - 1  # everything before it, none after
        assert status.problem is not None
        assert (status.problem.position, status.problem.event_type) == (unknown_at, "Gifted")
        assert status.problem.event_version == 2
        # It stays stopped there: a second run meets the same event.
        with pytest.raises(RelayError, match="Gifted"):
            relay.catch_up()
        assert relay.position() == unknown_at - 1
    if before:
        assert len(s.read_stream(server.url, wire.stream)) == before


# -- the stream deleted while the relay runs ---------------------------------------------


def test_a_deleted_stream_is_created_again(
    server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wire = s.wire(prefix="deleted")
    caplog.set_level(logging.INFO, logger="esgen.runtime")
    with SQLiteEventStore(tmp_path / "events.db") as store:
        s.append_orders(store, orders=2, per_order=3)
        stop = threading.Event()
        with Relay(store, s.registry(), wire, s.PUBLISHED, servers=server.url) as relay:
            runner = threading.Thread(target=relay.run, args=(stop,))
            runner.start()
            try:
                _wait(lambda: relay.status().behind == 0, "the first events relayed")
                s.delete_stream(server.url, wire.stream)
                later = s.append_orders(store, orders=3, per_order=3, start=2)
                _wait(lambda: relay.status().behind == 0, "the later events relayed")
                status = relay.status()
            finally:
                stop.set()
                runner.join()
    messages = s.read_stream(server.url, wire.stream)
    assert len(messages) == later  # the new stream holds what came after its deletion
    s.check_order(messages)
    assert status.problem is None
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"{wire.stream} is missing: created again" in line for line in lines), lines
    assert not any("unreachable" in line for line in lines), lines


# -- a server without JetStream -----------------------------------------------------------


def test_a_server_without_jetstream_is_named_so_and_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = _WithoutJetStream(tmp_path / "plain").start()
    wire = s.wire(prefix="nojs")
    caplog.set_level(logging.INFO, logger="esgen.runtime")
    jetstream: NatsServer | None = None
    try:
        with SQLiteEventStore(tmp_path / "events.db") as store:
            published = s.append_orders(store, orders=2, per_order=3)
            stop = threading.Event()
            with Relay(store, s.registry(), wire, s.PUBLISHED, servers=plain.url) as relay:
                runner = threading.Thread(target=relay.run, args=(stop,))
                runner.start()
                try:
                    _wait(lambda: relay.status().problem is not None, "the problem recorded")
                    problem = relay.status().problem
                    assert problem is not None
                    assert f"JetStream is not enabled on {plain.url}" in problem.message
                    before_restart = [r.getMessage() for r in caplog.records]
                    # The operator restarts it with JetStream, on the same port.
                    plain.stop()
                    jetstream = NatsServer(tmp_path / "js", port=plain.port).start()
                    _wait(lambda: relay.status().behind == 0, "every event relayed")
                    assert relay.status().problem is None
                finally:
                    stop.set()
                    runner.join()
        assert jetstream is not None
        assert len(s.read_stream(jetstream.url, wire.stream)) == published
    finally:
        plain.stop()
        if jetstream is not None:
            jetstream.stop()
    lines = [r.getMessage() for r in caplog.records]
    said = [line for line in lines if "JetStream is not enabled" in line]
    assert len(said) == 1, lines  # one line for the whole wait
    # The server answered all along (until the restart, which is an outage indeed).
    assert not any("unreachable" in line for line in before_restart), before_restart
    assert any("JetStream answers again" in line for line in lines), lines


# -- the broker down at start: status, and SIGTERM ----------------------------------------


def test_status_shows_the_broker_unreachable_from_the_first_attempt(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")  # not started yet
    wire = s.wire(prefix="down")
    try:
        with SQLiteEventStore(tmp_path / "events.db") as store:
            published = s.append_orders(store, orders=2, per_order=3)
            stop = threading.Event()
            with Relay(store, s.registry(), wire, s.PUBLISHED, servers=server.url) as relay:
                runner = threading.Thread(target=relay.run, args=(stop,))
                runner.start()
                try:
                    _wait(lambda: relay.status().problem is not None, "the problem recorded")
                    problem = relay.status().problem
                    assert problem is not None and "unreachable" in problem.message
                    assert server.url in problem.message
                    server.start()
                    _wait(lambda: relay.status().behind == 0, "every event relayed")
                    assert relay.status().problem is None  # cleared once it publishes
                finally:
                    stop.set()
                    runner.join()
        assert len(s.read_stream(server.url, wire.stream)) == published
    finally:
        server.stop()


_WRITE = """
import sys
sys.path.insert(0, "src")
from decimal import Decimal
from uuid import UUID
from bank.commands.account import DepositMoney, OpenAccount
from bank.service import BankService
from bank.types import Money
from esgen.runtime import SQLiteEventStore

with SQLiteEventStore(sys.argv[1]) as store:
    service = BankService(store)
    account = UUID(int=1)
    service.dispatch(OpenAccount(account_id=account, owner="o", currency="EUR"))
    service.dispatch(DepositMoney(account_id=account, amount=Money(amount=Decimal(5), currency="EUR")))
"""


def test_sigterm_stops_relay_run_follow_while_the_broker_is_down(tmp_path: Path) -> None:
    db = tmp_path / "bank.db"
    subprocess.run([sys.executable, "-c", _WRITE, str(db)], cwd=BANK, check=True, timeout=120)
    down = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    process = subprocess.Popen(
        [sys.executable, "-m", "esgen", "relay", "run", "--follow", "--store", str(db),
         "--servers", down],
        cwd=BANK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        seen: list[str] = []
        for line in process.stdout:  # until the outage is said: the first catch-up waits
            seen.append(line)
            if "unreachable" in line:
                break
        assert any("unreachable" in line for line in seen), seen
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)  # a bound on a hang: it used to ignore it
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, "".join(seen) + rest
    assert "up to date" not in rest  # it was not: it stopped
