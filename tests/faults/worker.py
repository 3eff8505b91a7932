"""The processes the fault suite kills: `python -m tests.faults.worker ROLE STORE RUN_DIR SLOT`.

Run from the repository root. STORE is `sqlite:PATH` or `postgres:SCHEMA` (the server from
ESGEN_TEST_POSTGRES_DSN, which the harness sets); each process names its connections
`esgen_faults_<role><slot>` so the harness can terminate them server-side. A process prints
`ready` once its store is open, works until RUN_DIR/stop exists, and keeps what it knows for
certain in RUN_DIR/<role><slot>.journal. Errors the runtime raises on purpose for a lost
connection (BackendError) are survived, as a supervised service would; anything else ends the
process with a traceback, which the harness counts as a crash.

Roles: writer, reader, projector and saga are killed; deposits and transfers feed the
projectors and sagas and are left alone.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from esgen.runtime import (
    BackendError,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    NewEvent,
    PostgresEventStore,
    ProjectionRunner,
    SQLiteEventStore,
    StreamAppend,
)

from .journal import Journal, read_lines

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank" / "src"
DSN_VARIABLE = "ESGEN_TEST_POSTGRES_DSN"
# Mostly small appends; some large ones keep a transaction busy longer, a wider target.
SIZES = (1, 1, 2, 3, 5, 8, 20)


def open_store(spec: str, app: str) -> EventStore:
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        return SQLiteEventStore(where, busy_timeout=30.0)
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(os.environ[DSN_VARIABLE], application_name=app)
    return PostgresEventStore(dsn, schema=where, max_connections=2, poll_interval=0.2)


def survive(what: Callable[[], None], stop: Callable[[], bool]) -> None:
    """Run `what` until `stop()`, again after each BackendError (a terminated connection)."""
    while not stop():
        try:
            what()
        except BackendError as exc:
            print(f"survived: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(0.02)


# -- writers ------------------------------------------------------------------------------


def write(store: EventStore, journal: Journal, slot: str, stop: Callable[[], bool]) -> None:
    """Append to own and shared streams with optimistic concurrency. Before each append the
    event ids go to the journal as intended (`I`), after it returned as acknowledged (`A`,
    fsynced): an acknowledged event must be in the store, whatever happens afterwards."""
    rng = random.Random(f"{slot}-{os.getpid()}")
    while not stop():
        first = (
            f"shared-{rng.randrange(2)}" if rng.random() < 0.4 else f"own-{slot}-{rng.randrange(3)}"
        )
        streams = [first]
        if rng.random() < 0.2:  # now and then one atomic append to two streams
            second = f"own-{slot}-{rng.randrange(3)}"
            if second != first:
                streams.append(second)
        batches = {
            stream: [
                NewEvent("Counted", 1, json.dumps({"writer": slot}), event_id=uuid4())
                for _ in range(rng.choice(SIZES))
            ]
            for stream in streams
        }
        ids = ",".join(str(e.event_id) for events in batches.values() for e in events)
        journal.write([f"I {ids}"])
        held = rng.random() < 0.2
        try:
            while True:
                appends = [StreamAppend(s, e, store.stream_version(s)) for s, e in batches.items()]
                try:
                    if held:
                        # Commits a while after appending: a kill now leaves a transaction
                        # open that must vanish without a trace.
                        with store.transaction():  # type: ignore[attr-defined]
                            store.append_streams(appends)
                            time.sleep(rng.random() / 50)
                    else:
                        store.append_streams(appends)
                    break
                except ConcurrencyError:
                    continue
        except BackendError as exc:
            # The connection was terminated: the outcome is unknown, so not acknowledged.
            print(f"survived: {exc!r}", file=sys.stderr, flush=True)
            continue
        journal.write([f"A {ids}"], sync=True)


# -- readers ------------------------------------------------------------------------------


def tail(store: EventStore, journal: Journal, stop: Callable[[], bool]) -> None:
    """Follow the global order from where the journal ends, logging each event seen as
    `position event_id`; after a restart nothing may be seen twice or skipped."""
    lines = read_lines(journal.path)
    after = int(lines[-1].split()[0]) if lines else 0
    while True:
        try:
            page = store.read_all(after, 50)
            if not page:
                if stop():
                    return
                store.wait_for_events(after, 0.5)
                continue
        except BackendError as exc:
            print(f"survived: {exc!r}", file=sys.stderr, flush=True)
            continue
        journal.write([f"{r.position} {r.event_id}" for r in page], sync=True)
        after = page[-1].position


# -- projections and sagas ----------------------------------------------------------------


def project(store: EventStore, stop: threading.Event) -> None:
    from esgen.runtime.testing._domain import make_registry
    from tests.runtime.test_runtime_projection import Balances

    Balances.delay = 0.001  # a page takes a while: kills land inside pages

    def run() -> None:
        runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=20)
        runner.run(stop, poll_interval=0.2)

    survive(run, stop.is_set)


def saga_runner(store: EventStore) -> Any:
    """The bank example's MoneyTransfer saga, whose every command (compensations included)
    also appends a `CommandSent` marker in the same transaction, so the suite can count
    what was sent, even where the domain would absorb a repeat (refunds are idempotent)."""
    sys.path.insert(0, str(BANK))
    from bank.domain.money_transfer import MoneyTransfer
    from bank.registry import REGISTRY
    from bank.service import BankService

    from esgen.runtime import SagaRunner

    bank = BankService(store)

    def dispatch(command: Any) -> object:
        result = bank.dispatch(command)
        marker = NewEvent("CommandSent", 1, json.dumps({"command": type(command).__name__}))
        store.append(f"Sent-{command.transfer_id}", [marker], ExpectedVersion.ANY)
        return result

    return SagaRunner(MoneyTransfer, store, REGISTRY, dispatch)


def run_saga(store: EventStore, stop: threading.Event) -> None:
    survive(lambda: saga_runner(store).run(stop, poll_interval=0.2), stop.is_set)


# -- feeders ------------------------------------------------------------------------------


def deposit(store: EventStore, plan: dict[str, Any], stop: Callable[[], bool]) -> None:
    from esgen.runtime.testing._domain import MoneyDeposited

    rng = random.Random(os.getpid())
    while not stop():
        event = NewEvent.from_event(MoneyDeposited(amount=rng.randint(1, 9)))
        account = rng.randrange(plan["accounts"])
        store.append(f"Account-{account}", [event], ExpectedVersion.ANY)
        time.sleep(0.002)


def request_transfers(store: EventStore, plan: dict[str, Any], stop: Callable[[], bool]) -> None:
    sys.path.insert(0, str(BANK))
    from bank.commands.transfer import RequestTransfer
    from bank.service import BankService
    from bank.types import Money

    bank = BankService(store)
    rng = random.Random(os.getpid())
    one = Money(amount=1, currency="EUR")
    while not stop():
        bank.dispatch(
            RequestTransfer(
                transfer_id=uuid4(),
                source_account=UUID(rng.choice(plan["sources"])),
                target_account=UUID(rng.choice(plan["targets"] + plan["closed"])),
                amount=one,
            )
        )
        time.sleep(0.03)


# -- entry point --------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    role, spec, run_dir_text, slot = argv
    run_dir = Path(run_dir_text)
    stop_file = run_dir / "stop"
    store = open_store(spec, f"esgen_faults_{role}{slot}")
    journal = Journal(run_dir / f"{role}{slot}.journal")

    def stopped() -> bool:
        return stop_file.exists()

    stop = threading.Event()

    def watch() -> None:
        while not stopped():
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    print("ready", flush=True)
    if role == "writer":
        write(store, journal, slot, stopped)
    elif role == "reader":
        tail(store, journal, stopped)
    elif role == "projector":
        project(store, stop)
    elif role == "saga":
        run_saga(store, stop)
    else:
        plan = json.loads((run_dir / "plan.json").read_text())
        feed = deposit if role == "deposits" else request_transfers
        survive(lambda: feed(store, plan, stopped), stopped)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
