"""kill -9 of the relay at random points, at least 100 times, while a writer appends:
every published event reaches the stream, none twice, each aggregate's in order.

Real processes: a relay child on a SQLite store, killed with SIGKILL after a random delay
(while it starts, reads, publishes or commits); then one relay runs to completion and the
whole JetStream stream is read back. The counts are printed in the summary of the run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import relay_support as s
from fault_counts import report_counts
from servers import NatsServer

from esgen.runtime import SQLiteEventStore
from esgen.runtime.nats import Relay

KILLS = 100
CHILD = Path(__file__).with_name("relay_child.py")


def test_kill_9_of_the_relay_at_random_points(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    server = NatsServer(tmp_path / "nats").start()
    db = tmp_path / "events.db"
    wire = s.wire()
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    published = 0
    stopped = threading.Event()
    appended = [0]

    def writer() -> None:
        # The write side goes on all along: the relay's crashes are nothing to it.
        with SQLiteEventStore(db) as store:
            start = 0
            while not stopped.is_set():
                appended[0] += s.append_orders(store, orders=4, per_order=4, start=start)
                start += 4
                stopped.wait(0.05)  # ~300 events a second: enough to be mid-page at a kill

    try:
        with SQLiteEventStore(db) as store:
            published += s.append_orders(store, orders=20, per_order=10, start=100_000)
        thread = threading.Thread(target=writer)
        thread.start()
        counts = tmp_path / "counts"
        counts.mkdir()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        try:
            for kill in range(KILLS):
                child = subprocess.Popen(
                    [sys.executable, str(CHILD), str(db), server.url, str(counts / str(kill))],
                    env=env, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    child.wait(timeout=rng.uniform(0.4, 1.2))
                    raise AssertionError(f"the relay child exited by itself ({child.returncode})")
                except subprocess.TimeoutExpired:
                    child.send_signal(signal.SIGKILL)
                    child.wait()
        finally:
            stopped.set()
            thread.join()
        published += appended[0]
        # The last relay runs to the end.
        with (
            SQLiteEventStore(db) as store,
            Relay(store, s.registry(), wire, s.PUBLISHED, servers=server.url) as relay,
        ):
            relay.catch_up()
            assert relay.status().behind == 0
            expected = [str(r.event_id) for r in store.iter_all() if r.event_type in s.PUBLISHED]
        messages = s.read_stream(server.url, wire.stream)
        ids = [m.headers["Nats-Msg-Id"] for m in messages]
        duplicates_in_stream = len(ids) - len(set(ids))
        missing = set(expected) - set(ids)
        dropped = sum(int(lines[-1]) for f in counts.iterdir() if (lines := f.read_text().split()))
        report_counts(
            pytestconfig,
            "relay kill -9 counts",
            f"relay kill -9: {KILLS} kills, {len(expected)} published events "
            f"(of {published} appended), {len(messages)} messages in the stream, "
            f"{len(missing)} missing, {duplicates_in_stream} duplicates in the stream, "
            f"at least {dropped} resends dropped by the broker as duplicates",
        )
        assert not missing
        assert duplicates_in_stream == 0
        assert ids == expected  # the store's order, hence each aggregate's
        s.check_order(messages)
    finally:
        server.stop()
