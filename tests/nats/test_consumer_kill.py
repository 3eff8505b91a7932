"""kill -9 of consumer processes at random points, at least 100 times, while events keep
arriving: at the end every event's effect is there exactly once, each account's events
were handled in their order, and the test prints its counts."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from consumer_domain import Sent, Statements
from fault_counts import report_counts
from servers import NatsServer, nats_server_binary

from esgen.runtime import SQLiteEventStore
from esgen.runtime._integration import Wire
from esgen.runtime._progress_store import progress_storage
from esgen.runtime._readmodel import Rows
from esgen.runtime.nats._consumer_runner import ConsumerRunner

pytestmark = pytest.mark.skipif(nats_server_binary() is None, reason="nats-server missing")

KILLS = 100
ACCOUNTS = 8
CHILD = Path(__file__).with_name("consumer_child.py")


def test_consumers_killed_at_random_points_leave_every_effect_once_and_in_order(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    from consumer_domain import publish

    wire = Wire("bank", partitions=4)
    rng = random.Random(17)
    server = NatsServer(tmp_path / "nats").start()
    store_path = tmp_path / "statements.sqlite"
    SQLiteEventStore(store_path).close()
    absorbed = tmp_path / "absorbed.txt"
    absorbed.touch()
    versions = dict.fromkeys(range(ACCOUNTS), 0)
    sent: list[Sent] = []

    def more(count: int) -> None:
        batch = []
        for _ in range(count):
            account = rng.randrange(ACCOUNTS)
            versions[account] += 1
            batch.append(Sent(f"a{account}", versions[account],
                              payload={"amount": 1, "currency": "EUR"}))  # fmt: skip
        publish(server.url, wire, batch)
        sent.extend(batch)

    try:
        more(200)
        kills = 0
        for _ in range(KILLS):
            child = subprocess.Popen(
                [sys.executable, str(CHILD), str(store_path), server.url, str(absorbed)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=CHILD.parent,
            )  # fmt: skip
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"ready"
            more(rng.randrange(0, 6))  # while it runs
            # A random point: connecting, fetching, in a transaction, between commit and ack.
            _pause(rng.uniform(0.0, 0.25))
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
        # The last one is not killed: a runner catching up (its idle longer than ack_wait,
        # so a killed process's unacknowledged message comes back to it).
        store = SQLiteEventStore(store_path)
        with ConsumerRunner(
            store, [Statements()], {"bank": wire}, context="statements", servers=server.url,
            ack_wait=1.0,
        ) as last:  # fmt: skip
            finished = last.catch_up(idle=2.5)
            (status,) = last.status()
        consumer = Statements()
        with progress_storage(store).unit() as unit:
            generation = next(g for g, (_, a) in unit.generations("statements").items() if a)
            rows = Rows(consumer.table, consumer.row_type, unit.table(consumer.table, generation))
            found = rows.all()
            rows.discard()
        store.close()
    finally:
        server.kill()

    effects = Counter(i for row in found for i in row.event_ids.split(","))
    twice = [i for i, n in effects.items() if n > 1]
    missing = {str(s.event_id) for s in sent} - set(effects)
    out_of_order = [row.account for row in found
                    if [int(v) for v in row.versions.split(",")] !=
                    list(range(1, versions[int(row.account[1:])] + 1))]  # fmt: skip
    absorbed_count = len(absorbed.read_text().splitlines())
    report_counts(
        pytestconfig,
        "consumer kill -9 counts",
        f"consumer kill -9: {kills} kills, {len(sent)} messages published, "
        f"{sum(effects.values())} effects, {len(twice)} twice, {len(missing)} missing, "
        f"{absorbed_count} redeliveries absorbed by the inbox, {finished} left for the last "
        f"runner, {len(out_of_order)} accounts out of order",
    )
    assert kills >= 100
    assert not twice and not missing and not out_of_order
    assert sum(effects.values()) == len(sent) == status.handled
    assert status.pending == 0


def _pause(seconds: float) -> None:
    import time

    time.sleep(seconds)
