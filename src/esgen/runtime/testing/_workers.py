"""Code run in child processes by the multi-process contract tests.

Module-level functions so a "spawn" child can import them; they report through a queue
instead of raising, so the parent sees every outcome.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from esgen.runtime import ConcurrencyError, EventStore, ExpectedVersion, NewEvent

__all__ = ["append_later_worker", "append_worker", "race_worker"]

StoreFactory = Callable[[], EventStore]


def _events(writer: str, first: int, count: int) -> list[NewEvent]:
    return [
        NewEvent("Counted", 1, json.dumps({"writer": writer, "seq": first + i}), {"writer": writer})
        for i in range(count)
    ]


def race_worker(
    factory: StoreFactory,
    writer: str,
    rounds: int,
    barrier: Barrier,
    results: Queue[tuple[Any, ...]],
) -> None:
    """Each round, wait for the rival, then append 3 events to the round's stream at once.

    Even rounds race to create a new stream; odd rounds race on a stream the parent created
    with one event (expected version 1).
    """
    store = factory()
    try:
        for round_ in range(rounds):
            expected: int | ExpectedVersion = 1 if round_ % 2 else ExpectedVersion.NO_STREAM
            barrier.wait(timeout=120)
            try:
                store.append(f"race-{round_}", _events(writer, 0, 3), expected)
            except ConcurrencyError:
                results.put((round_, writer, "conflict"))
            except Exception as exc:
                results.put((round_, writer, f"error: {exc!r}"))
            else:
                results.put((round_, writer, "won"))
    finally:
        store.close()


def append_worker(
    factory: StoreFactory,
    writer: str,
    appends: int,
    start: Barrier,
    results: Queue[tuple[Any, ...]],
) -> None:
    """Append small batches, alternating between an own stream and one shared by all
    writers (optimistic: read the version, append, on conflict read again). All writers
    start together, once every process has imported and opened its store."""
    store = factory()
    rng = random.Random(writer)
    written = conflicts = 0
    try:
        start.wait(timeout=120)
        for i in range(appends):
            events = _events(writer, written, rng.randint(1, 4))
            stream = f"own-{writer}" if i % 2 == 0 else "shared"
            while True:
                version = store.stream_version(stream)
                time.sleep(rng.random() / 500)  # "deciding": widens the window for rivals
                try:
                    store.append(stream, events, version)
                    break
                except ConcurrencyError:
                    conflicts += 1
            written += len(events)
        results.put((writer, written, conflicts, None))
    except Exception as exc:
        results.put((writer, written, conflicts, repr(exc)))
    finally:
        store.close()


def append_later_worker(
    factory: StoreFactory, stream: str, delay: float, results: Queue[tuple[Any, ...]]
) -> None:
    """Open the store, pause (so the parent is most likely waiting by then), append one
    event to a new stream."""
    try:
        store = factory()
        try:
            time.sleep(delay)
            store.append(stream, _events(stream, 0, 1), ExpectedVersion.NO_STREAM)
        finally:
            store.close()
    except Exception as exc:
        results.put((stream, repr(exc)))
    else:
        results.put((stream, None))
