"""How much the runtime costs over plain sqlite3 doing the same work, measured in one run.

    .venv/bin/python benchmarks/runtime_sqlite.py [--repeat N] [--synchronous NORMAL|FULL]

Both sides use file databases in a fresh temporary directory with the same PRAGMAs
(journal_mode=WAL, the chosen synchronous level; default NORMAL, where commits do not wait
for fsync, so the Python overhead is not hidden behind the disk) and the same table layout
(a unique (stream_id, stream_version) index). Each figure is the median of several
repetitions, the two sides interleaved so that noise from other processes hits both.

The plain side does what a hand-written store would: it builds the same rows (uuid4 ids,
json.dumps of each payload and of the shared metadata, an ISO timestamp) and inserts them
in one transaction per aggregate; on reading it selects the rows and json.loads the data.
The runtime side goes through Repository / EventStore / EventRegistry as an application
would, including checking the expected version, applying events to a state written as
esgen generates one (a value type changed with `evolve`) and validating typed events.

The peer, the eventsourcing library (installed by `make bench`), saves and loads the same
accounts with its defaults at the same synchronous level (benchmarks/_peer_eventsourcing.py),
printed beside the plain side measured alongside it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, TypedDict, Unpack

import _peer_eventsourcing as peer

from esgen.runtime import (
    Aggregate,
    Event,
    EventRegistry,
    ExpectedVersion,
    NewEvent,
    Repository,
    Snapshot,
    SQLiteEventStore,
    ValueObject,
    new_event_id,
    state_fingerprint,
)
from esgen.runtime._sqlite import _SCHEMA as _STORE_SCHEMA

# -- the domain both sides store ------------------------------------------------------


class AccountOpened(Event):
    event_type = "AccountOpened"
    event_version = 1
    owner: str
    currency: str


class MoneyDeposited(Event):
    event_type = "MoneyDeposited"
    event_version = 1
    amount: int
    reference: str


class AccountState(ValueObject):
    """Written as esgen generates a state: a value type with a keyword-typed evolve."""

    owner: str
    currency: str
    balance: int = 0
    deposits: int = 0

    class Changes(TypedDict, total=False):
        owner: str
        currency: str
        balance: int
        deposits: int

    def evolve(self, **changes: Unpack[AccountState.Changes]) -> AccountState:
        return self._evolve(changes)


class Account(Aggregate[AccountState]):
    aggregate_type = "Account"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "_opened",
        MoneyDeposited: "_deposited",
    }

    def open(self, owner: str) -> None:
        self.record(AccountOpened(owner=owner, currency="EUR"))

    def deposit(self, amount: int) -> None:
        self.record(MoneyDeposited(amount=amount, reference=f"ref-{self.version}"))

    def _opened(self, event: AccountOpened) -> AccountState:
        return AccountState(owner=event.owner, currency=event.currency)

    def _deposited(self, event: MoneyDeposited) -> AccountState:
        state = self.state
        return state.evolve(balance=state.balance + event.amount, deposits=state.deposits + 1)


REGISTRY = EventRegistry([AccountOpened, MoneyDeposited])

RAW_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
    event_type TEXT NOT NULL, event_version INTEGER NOT NULL, data TEXT NOT NULL,
    event_id TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL,
    UNIQUE (stream_id, stream_version)
)
"""
RAW_INSERT = (
    "INSERT INTO events (stream_id, stream_version, event_type, event_version, data, "
    "event_id, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The store's own DDL, so that the second floor cannot drift from what the store creates.
STORE_SCHEMA = _STORE_SCHEMA
STORE_INSERT = RAW_INSERT.replace("INTO events", "INTO esgen_events")


class Bench:
    def __init__(self, root: Path, repeat: int, synchronous: str) -> None:
        self.root = root
        self.repeat = repeat
        self.synchronous = synchronous
        self.counter = 0
        self.rows: list[tuple[str, float, float | None, str]] = []

    def path(self, name: str) -> Path:
        self.counter += 1
        return self.root / f"{self.counter:03d}-{name}.db"

    def store(self, path: Path, synchronous: str | None = None) -> SQLiteEventStore:
        return SQLiteEventStore(path, synchronous=synchronous or self.synchronous)  # type: ignore[arg-type]

    def raw(
        self, path: Path, synchronous: str | None = None, same_table: bool = False
    ) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous or self.synchronous}")
        for statement in STORE_SCHEMA if same_table else (RAW_SCHEMA,):
            conn.execute(statement)
        return conn

    def report(self, label: str, ours: float, raw: float | None, target: str) -> None:
        self.rows.append((label, ours, raw, target))
        ratio = f"{ours / raw:5.2f}x" if raw else "     "
        raw_text = f"{raw * 1000:10.2f} ms" if raw is not None else " " * 13
        print(f"{label:58s} {ours * 1000:10.2f} ms {raw_text} {ratio}  {target}", flush=True)


def median_pair(
    repeat: int,
    ours: Callable[[], float],
    raw: Callable[[], float] | None,
) -> tuple[float, float | None]:
    mine, theirs = [], []
    for _ in range(repeat):
        mine.append(ours())
        if raw is not None:
            theirs.append(raw())
    return statistics.median(mine), (statistics.median(theirs) if raw else None)


# -- scenarios --------------------------------------------------------------------------

AGGREGATES = 1000
EVENTS_PER_AGGREGATE = 10


def build_accounts() -> list[Account]:
    accounts = []
    for i in range(AGGREGATES):
        account = Account(f"acc-{i}")
        account.open(f"owner-{i}")
        for amount in range(1, EVENTS_PER_AGGREGATE):
            account.deposit(amount)
        accounts.append(account)
    return accounts


def build_raw_payloads() -> list[tuple[str, list[tuple[str, dict[str, object]]]]]:
    out = []
    for i in range(AGGREGATES):
        events: list[tuple[str, dict[str, object]]] = [
            ("AccountOpened", {"owner": f"owner-{i}", "currency": "EUR"})
        ]
        events += [
            ("MoneyDeposited", {"amount": amount, "reference": f"ref-{amount}"})
            for amount in range(1, EVENTS_PER_AGGREGATE)
        ]
        out.append((f"Account-acc-{i}", events))
    return out


def time_save(bench: Bench, snapshot_every: int | None, synchronous: str | None = None) -> float:
    store = bench.store(bench.path("save"), synchronous)
    repo = Repository(Account, store, REGISTRY, snapshot_every=snapshot_every)
    accounts = build_accounts()
    start = time.perf_counter()
    for account in accounts:
        repo.save(account)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def time_raw_save(bench: Bench, synchronous: str | None = None, same_table: bool = False) -> float:
    """`same_table`: into the store's own table (its JSON check, the indexes `esgen inspect`
    looks events up by), with time-ordered ids as the store makes them: what the store's
    layout costs before any of the runtime's Python."""
    conn = bench.raw(bench.path("raw-save"), synchronous, same_table)
    insert = STORE_INSERT if same_table else RAW_INSERT
    make_id = new_event_id if same_table else uuid.uuid4
    payloads = build_raw_payloads()
    dumps = json.dumps
    start = time.perf_counter()
    for stream_id, events in payloads:
        own_id = str(make_id())
        metadata = dumps({"correlation_id": own_id, "causation_id": own_id})
        recorded_at = datetime.now(UTC).isoformat(timespec="microseconds")
        rows = [
            (
                stream_id,
                version,
                event_type,
                1,
                dumps(data),
                str(make_id()),
                metadata,
                recorded_at,
            )
            for version, (event_type, data) in enumerate(events, 1)
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def fill_stream(store: SQLiteEventStore, stream_id: str, count: int) -> None:
    """Write one account's history straight through the store, in batches (fast set-up)."""
    metadata = {"correlation_id": "setup", "causation_id": "setup"}
    version = 0
    batch = [NewEvent("AccountOpened", 1, '{"owner":"big","currency":"EUR"}', metadata)]
    while version < count:
        while len(batch) < min(5000, count - version):
            n = version + len(batch) + 1
            batch.append(
                NewEvent("MoneyDeposited", 1, f'{{"amount":{n},"reference":"ref-{n}"}}', metadata)
            )
        store.append(stream_id, batch, version or ExpectedVersion.NO_STREAM)
        version += len(batch)
        batch = []


def fill_raw_copy(store_path: Path, raw: sqlite3.Connection) -> None:
    raw.execute("ATTACH DATABASE ? AS src", (str(store_path),))
    raw.execute(
        "INSERT INTO events SELECT position, stream_id, stream_version, event_type, "
        "event_version, data, event_id, metadata, recorded_at FROM src.esgen_events"
    )
    raw.execute("DETACH DATABASE src")


def scenario_load_no_snapshot(bench: Bench) -> None:
    count = 10_000
    path = bench.path("load")
    store = bench.store(path)
    fill_stream(store, "Account-big", count)
    raw = bench.raw(bench.path("raw-load"))
    fill_raw_copy(path, raw)
    repo = Repository(Account, store, REGISTRY, snapshots=None)
    assert repo.load("big").version == count

    def ours() -> float:
        start = time.perf_counter()
        repo.load("big")
        return time.perf_counter() - start

    def plain() -> float:
        start = time.perf_counter()
        rows = raw.execute(
            "SELECT stream_version, event_type, event_version, data FROM events "
            "WHERE stream_id = ? ORDER BY stream_version",
            ("Account-big",),
        ).fetchall()
        loads = json.loads
        decoded = [loads(row[3]) for row in rows]
        assert len(decoded) == count
        return time.perf_counter() - start

    load, plain_load = median_pair(bench.repeat * 2, ours, plain)
    bench.report(
        f"load 1 aggregate, {count:,} events, no snapshot", load, plain_load, "target <= 1.2x"
    )
    events = REGISTRY.decode_all(store.read_stream("Account-big"))

    def apply_only() -> float:
        account = Account("big")
        dispatch = Account._dispatch
        start = time.perf_counter()
        for event in events:
            account._state = dispatch[event.__class__](account, event)
        return time.perf_counter() - start

    applying = median_pair(bench.repeat * 2, apply_only, None)[0]
    bench.report(
        "  of which the aggregate's apply methods (evolve)", applying, None, "(user code, info)"
    )
    # What the runtime itself spends (reading, decoding into typed events, dispatching),
    # beside the plain side, which applies nothing: the load less the apply methods.
    bench.report("  the load less the apply methods", load - applying, plain_load, "(info)")
    if peer.available():
        app, account_id = peer.filled(bench.path("peer-load"), bench.synchronous, count)
        bench.report(
            f"  eventsourcing {peer.version()}: the same load (peer)",
            *median_pair(bench.repeat * 2, lambda: peer.load(app, account_id, count), plain),
            "(peer, beside plain)",
        )
        app.close()
    store.close()
    raw.close()


def scenario_load_with_snapshot(bench: Bench) -> None:
    for count in (1_000, 10_000, 100_000):
        store = bench.store(bench.path(f"snap-{count}"))
        fill_stream(store, "Account-big", count)
        repo = Repository(Account, store, REGISTRY, snapshot_every=100)
        at = repo.load_at("big", version=count - 99)
        store.save_snapshot(
            Snapshot(
                "Account-big",
                at.version,
                state_fingerprint(AccountState),
                at.state.model_dump_json(),
                datetime.now(UTC),
            )
        )
        loaded = repo.load("big")
        assert loaded.version == count and loaded._snapshot_version == count - 99

        def ours(repo: Repository[Account] = repo) -> float:
            start = time.perf_counter()
            repo.load("big")
            return time.perf_counter() - start

        ours_median, _ = median_pair(bench.repeat * 4, ours, None)
        bench.report(
            f"load with snapshot 99 events behind head, {count:>7,} events",
            ours_median,
            None,
            "target < 5 ms, flat",
        )
        store.close()


def scenario_read_all(bench: Bench) -> None:
    path = bench.path("read-all")
    store = bench.store(path)
    repo = Repository(Account, store, REGISTRY, snapshots=None)
    for account in build_accounts():
        repo.save(account)
    raw = bench.raw(bench.path("raw-read-all"))
    fill_raw_copy(path, raw)
    total = AGGREGATES * EVENTS_PER_AGGREGATE
    page_size = 1000

    def ours() -> float:
        start = time.perf_counter()
        count = 0
        after = 0
        while True:
            page = store.read_all(after, page_size)
            count += len(REGISTRY.decode_all(page))
            if len(page) < page_size:
                break
            after = page[-1].position
        assert count == total
        return time.perf_counter() - start

    def plain() -> float:
        start = time.perf_counter()
        loads = json.loads
        count = 0
        after = 0
        while True:
            rows = raw.execute(
                "SELECT position, stream_id, stream_version, event_type, event_version, data, "
                "event_id, metadata, recorded_at FROM events WHERE position > ? "
                "ORDER BY position LIMIT ?",
                (after, page_size),
            ).fetchall()
            count += len([loads(row[5]) for row in rows])
            if len(rows) < page_size:
                break
            after = rows[-1][0]
        assert count == total
        return time.perf_counter() - start

    bench.report(
        f"read all {total:,} events into typed events (pages of {page_size})",
        *median_pair(bench.repeat * 2, ours, plain),
        "target <= 2x",
    )
    store.close()
    raw.close()


def scenario_save(bench: Bench) -> None:
    label = f"save {AGGREGATES:,} aggregates x {EVENTS_PER_AGGREGATE} events"
    bench.report(
        f"{label} (synchronous={bench.synchronous})",
        *median_pair(bench.repeat, lambda: time_save(bench, None), lambda: time_raw_save(bench)),
        "target <= 1.15x",
    )
    bench.report(
        "  the same, beside plain sqlite3 into the store's table",
        *median_pair(
            bench.repeat,
            lambda: time_save(bench, None),
            lambda: time_raw_save(bench, same_table=True),
        ),
        "(its indexes and JSON check)",
    )
    if peer.available():
        bench.report(
            f"  eventsourcing {peer.version()}: the same saves (peer)",
            *median_pair(
                bench.repeat,
                lambda: peer.save(
                    bench.path("peer-save"), bench.synchronous, AGGREGATES, EVENTS_PER_AGGREGATE
                ),
                lambda: time_raw_save(bench),
            ),
            "(peer, beside plain)",
        )
    else:
        print("  (eventsourcing is not installed: `pip install --group bench` adds the peer)")
    on, off = median_pair(
        bench.repeat, lambda: time_save(bench, EVENTS_PER_AGGREGATE), lambda: time_save(bench, None)
    )
    bench.report(
        f"{label}, snapshot every {EVENTS_PER_AGGREGATE} (vs none)", on, off, "target <= 1.3x"
    )
    if bench.synchronous != "FULL":
        # The store's default: every commit waits for fsync, which then dominates both sides.
        bench.report(
            f"{label} (synchronous=FULL)",
            *median_pair(
                bench.repeat,
                lambda: time_save(bench, None, "FULL"),
                lambda: time_raw_save(bench, "FULL"),
            ),
            "(store default, info)",
        )


def scenario_example_replay(bench: Bench) -> None:
    """The bank example's Account replayed through its own apply methods (evolve), beside
    the same methods written with model_copy, as the example was before: the per-event cost
    of a state change, on one SQLite stream of deposits and withdrawals."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "examples" / "bank" / "src"))
    from decimal import Decimal

    from bank.aggregates.account import AccountState as BankState
    from bank.domain.account import Account as BankAccount
    from bank.events.account import AccountOpened as Opened
    from bank.events.account import MoneyDeposited, MoneyWithdrawn
    from bank.registry import REGISTRY as BANK_REGISTRY
    from bank.types import Money

    class CopyingAccount(BankAccount):
        # The apply methods as the example wrote them with model_copy(update=...).
        def apply_money_deposited(self, event: MoneyDeposited) -> BankState:
            balance = self.state.balance
            new = Money(amount=balance.amount + event.amount.amount, currency=balance.currency)
            return self.state.model_copy(update={"balance": new})

        def apply_money_withdrawn(self, event: MoneyWithdrawn) -> BankState:
            balance = self.state.balance
            new = Money(amount=balance.amount - event.amount.amount, currency=balance.currency)
            return self.state.model_copy(update={"balance": new})

    count = 10_000
    store = bench.store(bench.path("example"))
    account_id = uuid.UUID(int=1)
    stream = f"Account-{account_id}"
    euro = Money(amount=Decimal("1.00"), currency="EUR")
    events: list[NewEvent] = [NewEvent.from_event(Opened(owner="Ada", currency="EUR"))]
    for n in range(1, count):
        moved = MoneyDeposited(amount=euro) if n % 3 else MoneyWithdrawn(amount=euro)
        events.append(NewEvent.from_event(moved))
    store.append(stream, events, ExpectedVersion.NO_STREAM)
    evolving = Repository(BankAccount, store, BANK_REGISTRY, snapshots=None)
    copying = Repository(CopyingAccount, store, BANK_REGISTRY, snapshots=None)
    assert evolving.load(account_id).state == copying.load(account_id).state

    def timed(repo: Repository[BankAccount, uuid.UUID]) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            repo.load(account_id)
            return time.perf_counter() - start

        return run

    ours, before = median_pair(bench.repeat * 2, timed(evolving), timed(copying))
    assert before is not None
    per_event = f"{ours / count * 1e6:.2f} us/event vs {before / count * 1e6:.2f} with model_copy"
    bench.report(f"bank example: load {count:,} events, evolve", ours, None, per_event)
    bench.report(
        "  the same with model_copy (the example before)", before, None, "(baseline, info)"
    )
    print(f"{'':58s} evolve / model_copy: {ours / before:.2f}x", flush=True)
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per figure (median)")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"PRAGMA journal_mode=WAL, synchronous={args.synchronous}, "
        f"median of {args.repeat}+ runs\n"
    )
    print(f"{'':58s} {'esgen':>13s} {'plain sqlite3':>13s} {'ratio':>6s}")
    with tempfile.TemporaryDirectory(prefix="esgen-bench-") as tmp:
        bench = Bench(Path(tmp), args.repeat, args.synchronous)
        scenario_save(bench)
        scenario_load_no_snapshot(bench)
        scenario_load_with_snapshot(bench)
        scenario_read_all(bench)
        scenario_example_replay(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
