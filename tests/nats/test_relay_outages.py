"""The relay through broker outages, on private nats-server processes: a server stopped
and restarted mid-run, and a 3-node JetStream cluster losing a node."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import relay_support as s
from nats.js.api import StreamConfig
from servers import NatsCluster, NatsServer

from esgen.runtime import SQLiteEventStore
from esgen.runtime.nats import Relay


def _wait(condition: object, what: str, timeout: float = 60.0) -> None:
    """Until `condition()` holds: a bound on a hang, not a timed assertion."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def test_broker_stopped_and_restarted_mid_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = NatsServer(tmp_path / "nats").start()
    wire = s.wire()
    caplog.set_level(logging.INFO, logger="esgen.runtime")
    try:
        with SQLiteEventStore(tmp_path / "events.db") as store:
            published = s.append_orders(store, orders=5, per_order=6)
            stop = threading.Event()
            with Relay(store, s.registry(), wire, s.PUBLISHED, servers=server.url) as relay:
                runner = threading.Thread(target=relay.run, args=(stop,))
                runner.start()
                try:
                    _wait(lambda: relay.status().behind == 0, "the first events relayed")
                    server.stop()
                    # The store is the outbox: commands keep being recorded meanwhile.
                    published += s.append_orders(store, orders=5, per_order=6, start=5)
                    _wait(lambda: "unreachable" in caplog.text, "the outage said")
                    server.start()
                    published += s.append_orders(store, orders=3, per_order=4, start=10)
                    _wait(lambda: relay.status().behind == 0, "every event relayed")
                finally:
                    stop.set()
                    runner.join()
        messages = s.read_stream(server.url, wire.stream)
        assert len(messages) == published
        assert len({m.headers["Nats-Msg-Id"] for m in messages}) == published
        s.check_order(messages)
        outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(outage_lines) == 1, [r.getMessage() for r in outage_lines]
        assert outage_lines[0].levelno == logging.WARNING
        assert outage_lines[0].exc_info is None  # one line, no traceback
        assert "retrying every" in outage_lines[0].getMessage()
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


def test_the_relay_waits_for_a_broker_that_is_down_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = NatsServer(tmp_path / "nats")  # not started yet
    wire = s.wire()
    caplog.set_level(logging.INFO, logger="esgen.runtime")
    with SQLiteEventStore(tmp_path / "events.db") as store:
        published = s.append_orders(store, orders=2, per_order=3)
        stop = threading.Event()
        with Relay(store, s.registry(), wire, s.PUBLISHED, servers=server.url) as relay:
            runner = threading.Thread(target=relay.run, args=(stop,))
            runner.start()
            try:
                _wait(lambda: "unreachable" in caplog.text, "the outage said")
                server.start()
                _wait(lambda: relay.status().behind == 0, "every event relayed")
            finally:
                stop.set()
                runner.join()
    try:
        assert len(s.read_stream(server.url, wire.stream)) == published
    finally:
        server.stop()
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1


def test_a_cluster_node_killed_mid_run(tmp_path: Path) -> None:
    cluster = NatsCluster.of_three(tmp_path).start()
    wire = s.wire()

    try:
        config = StreamConfig(
            name=wire.stream, subjects=[wire.all_subjects], num_replicas=3, duplicate_window=120.0
        )
        cluster.add_stream(config)  # the relay leaves an existing stream alone
        with SQLiteEventStore(tmp_path / "events.db") as store:
            published = s.append_orders(store, orders=8, per_order=5)
            stop = threading.Event()
            with Relay(store, s.registry(), wire, s.PUBLISHED, servers=cluster.urls) as relay:
                runner = threading.Thread(target=relay.run, args=(stop,))
                runner.start()
                try:
                    _wait(lambda: relay.status().position > 0, "the relay under way")
                    cluster.nodes[0].kill()
                    published += s.append_orders(store, orders=8, per_order=5, start=8)
                    _wait(lambda: relay.status().behind == 0, "every event relayed", 120)
                finally:
                    stop.set()
                    runner.join()
        alive = [node.url for node in cluster.nodes[1:]]
        messages = s.read_stream(alive, wire.stream)
        assert len({m.headers["Nats-Msg-Id"] for m in messages}) == published
        assert len(messages) == published
        s.check_order(messages)
        print(f"\ncluster: {published} events relayed with a node killed, order held")
    finally:
        cluster.stop()
