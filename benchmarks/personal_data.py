"""What sealing personal data costs: the same aggregates saved and loaded with and without
two personal fields in every event, measured in one run.

    .venv/bin/python benchmarks/personal_data.py [--repeat N] [--synchronous NORMAL|FULL]

Both sides save 1,000 customers x 10 events through Repository onto SQLite files in a
fresh temporary directory (journal_mode=WAL, synchronous NORMAL by default, as in
runtime_sqlite.py, so that Python's share is not hidden behind fsync), then load all of
them. The two domains are the same classes, field for field and byte for byte; on the
personal side two fields of every event are `Annotated[str, Personal(...)]` and the store
has a master key. So the personal side pays for: one data key per customer (made, wrapped
and stored in its own transaction on its first save), AES-GCM over the two values of each
event, the envelope in the stored JSON; on loading, one key read and unwrap per customer
(the store is opened afresh, so its key cache is cold), then a decryption per event. The
warm figure loads again from the same store, its keys cached.

Each figure is the median of several repetitions, the two sides interleaved so that noise
from other processes hits both. The targets are issue 19's: at most 1.3x for both.
"""

from __future__ import annotations

import argparse
import binascii
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    Event,
    EventRegistry,
    MasterKey,
    Personal,
    Repository,
    SQLiteEventStore,
)

CUSTOMERS = 1000
EVENTS_PER_CUSTOMER = 10  # one registration, then changes of contact details
TARGET = 1.3

Secret = Annotated[str, Personal(erased="<erased>")]

# -- the personal domain: two personal fields in every event --------------------------


class CustomerRegistered(Event):
    event_type = "CustomerRegistered"
    event_version = 1
    name: Secret
    email: Secret
    plan: str


class ContactChanged(Event):
    event_type = "ContactChanged"
    event_version = 1
    phone: Secret
    address: Secret
    channel: str


class CustomerState(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: Secret
    email: Secret
    plan: str
    phone: Secret = ""
    address: Secret = ""
    changes: int = 0


class Customer(Aggregate[CustomerState]):
    aggregate_type = "Customer"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        CustomerRegistered: "_registered",
        ContactChanged: "_changed",
    }

    def register(self, n: int) -> None:
        self.record(CustomerRegistered(**registration(n)))

    def change(self, n: int, k: int) -> None:
        self.record(ContactChanged(**change(n, k)))

    def _registered(self, event: CustomerRegistered) -> CustomerState:
        return CustomerState(name=event.name, email=event.email, plan=event.plan)

    def _changed(self, event: ContactChanged) -> CustomerState:
        state = self.state
        return state.model_copy(
            update={"phone": event.phone, "address": event.address, "changes": state.changes + 1}
        )


# -- the same without the marks ---------------------------------------------------------


class PlainCustomerRegistered(Event):
    event_type = "CustomerRegistered"
    event_version = 1
    name: str
    email: str
    plan: str


class PlainContactChanged(Event):
    event_type = "ContactChanged"
    event_version = 1
    phone: str
    address: str
    channel: str


class PlainCustomerState(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    email: str
    plan: str
    phone: str = ""
    address: str = ""
    changes: int = 0


class PlainCustomer(Aggregate[PlainCustomerState]):
    aggregate_type = "Customer"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        PlainCustomerRegistered: "_registered",
        PlainContactChanged: "_changed",
    }

    def register(self, n: int) -> None:
        self.record(PlainCustomerRegistered(**registration(n)))

    def change(self, n: int, k: int) -> None:
        self.record(PlainContactChanged(**change(n, k)))

    def _registered(self, event: PlainCustomerRegistered) -> PlainCustomerState:
        return PlainCustomerState(name=event.name, email=event.email, plan=event.plan)

    def _changed(self, event: PlainContactChanged) -> PlainCustomerState:
        state = self.state
        return state.model_copy(
            update={"phone": event.phone, "address": event.address, "changes": state.changes + 1}
        )


def registration(n: int) -> dict[str, str]:
    return {"name": f"Customer Number {n:05d}", "email": f"customer{n:05d}@example.org",
            "plan": "standard"}  # fmt: skip


def change(n: int, k: int) -> dict[str, str]:
    return {"phone": f"+44 20 7946 {n:04d}", "address": f"{k} Station Road, Flat {n:05d}",
            "channel": "web"}  # fmt: skip


PERSONAL = (Customer, EventRegistry([CustomerRegistered, ContactChanged]))
PLAIN = (PlainCustomer, EventRegistry([PlainCustomerRegistered, PlainContactChanged]))

# -- measuring ----------------------------------------------------------------------------


class Bench:
    def __init__(self, root: Path, repeat: int, synchronous: str) -> None:
        self.root = root
        self.repeat = repeat
        self.synchronous = synchronous
        self.master = MasterKey(os.urandom(32))
        self.counter = 0

    def store(self, path: Path, personal: bool) -> SQLiteEventStore:
        return SQLiteEventStore(
            path,
            synchronous=self.synchronous,  # type: ignore[arg-type]
            master_key=self.master if personal else None,
        )

    def path(self, name: str) -> Path:
        self.counter += 1
        return self.root / f"{self.counter:03d}-{name}.db"


def customers(personal: bool) -> list[Aggregate[Any]]:
    cls = Customer if personal else PlainCustomer
    built: list[Aggregate[Any]] = []
    for n in range(CUSTOMERS):
        customer: Any = cls(f"cust-{n}")
        customer.register(n)
        for k in range(1, EVENTS_PER_CUSTOMER):
            customer.change(n, k)
        built.append(customer)
    return built


def time_save(bench: Bench, personal: bool) -> tuple[float, Path]:
    """Saves every customer into a new store; the store is kept for the loads."""
    aggregate, registry = PERSONAL if personal else PLAIN
    path = bench.path("personal" if personal else "plain")
    store = bench.store(path, personal)
    repo: Repository[Any] = Repository(aggregate, store, registry, snapshots=None)
    todo = customers(personal)
    start = time.perf_counter()
    for customer in todo:
        repo.save(customer)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, path


def time_load(bench: Bench, path: Path, personal: bool, *, warm: bool) -> float:
    """Loads every customer from the store at `path`, opened afresh (cold key cache); with
    `warm`, loads them once first and times the second time."""
    aggregate, registry = PERSONAL if personal else PLAIN
    store = bench.store(path, personal)
    repo: Repository[Any] = Repository(aggregate, store, registry, snapshots=None)
    ids = [f"cust-{n}" for n in range(CUSTOMERS)]
    if warm:
        for customer_id in ids:
            repo.load(customer_id)
    start = time.perf_counter()
    for customer_id in ids:
        loaded = repo.load(customer_id)
    elapsed = time.perf_counter() - start
    assert loaded.version == EVENTS_PER_CUSTOMER
    assert loaded.state.name == registration(CUSTOMERS - 1)["name"]
    store.close()
    return elapsed


def time_crypto(bench: Bench, path: Path, *, cold: bool) -> float:
    """The cryptography a load of the personal store cannot do without, alone: base64 and
    AES-GCM over every event's sealed text (the texts read beforehand, untimed), and with
    `cold`, each customer's key read, unwrapped and made a cipher. Added to the plain
    load, it is the floor no implementation with this cipher library can go under."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    store = bench.store(path, True)
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT stream_id, data FROM esgen_events ORDER BY position").fetchall()
    finally:
        db.close()
    sealed: dict[str, list[bytes]] = {}
    for stream_id, data in rows:
        subject = stream_id.removeprefix("Customer-")
        text = data[data.rindex('"sealed":"') + len('"sealed":"') : -3]
        sealed.setdefault(subject, []).append(text)
    ciphers = {}
    if not cold:
        for subject in sealed:
            wrapped = store.subject_keys([subject])[subject]
            assert wrapped is not None
            ciphers[subject] = AESGCM(bench.master.unwrap(subject, wrapped))
    a2b = binascii.a2b_base64
    start = time.perf_counter()
    for subject, texts in sealed.items():
        if cold:
            wrapped = store.subject_keys([subject])[subject]
            assert wrapped is not None
            cipher = AESGCM(bench.master.unwrap(subject, wrapped))
        else:
            cipher = ciphers[subject]
        associated = subject.encode()
        for text in texts:
            raw = a2b(text)
            cipher.decrypt(raw[1:13], raw[13:], associated)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def sealed_share(path: Path) -> float:
    """The share of stored events that carry a personal-data envelope: 1.0 when sealing is
    on, 0.0 on a runtime that stores personal fields as they are."""
    db = sqlite3.connect(path)
    try:
        total, sealed = db.execute(
            "SELECT count(*), sum(instr(data, '\"$personal\"') > 0) FROM esgen_events"
        ).fetchone()
    finally:
        db.close()
    return (sealed or 0) / total


def report(label: str, personal: float, plain: float, target: float | None) -> None:
    ratio = personal / plain
    verdict = ""
    if target is not None:
        verdict = f"target <= {target}x  {'ok' if ratio <= target else 'OVER'}"
    print(
        f"{label:44s} {personal * 1000:10.1f} ms {plain * 1000:10.1f} ms {ratio:6.2f}x  {verdict}",
        flush=True,
    )


def paired(repeat: int, measure: Callable[[bool], float]) -> tuple[float, float]:
    times: dict[bool, list[float]] = {True: [], False: []}
    for n in range(repeat):
        # Each side goes first every other time: whatever the first run pays (a cold page
        # cache, a disk flush of the previous run's files) falls on both alike.
        for personal in (n % 2 == 0, n % 2 != 0):
            times[personal].append(measure(personal))
    return statistics.median(times[True]), statistics.median(times[False])


def main() -> int:
    global CUSTOMERS  # --customers: the functions above read it
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per figure (median)")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    parser.add_argument(
        "--customers", type=int, default=CUSTOMERS, help="customers saved and loaded (a smoke run)"
    )
    args = parser.parse_args()
    CUSTOMERS = args.customers
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"PRAGMA journal_mode=WAL, synchronous={args.synchronous}, median of {args.repeat} "
        f"runs; {CUSTOMERS:,} customers x {EVENTS_PER_CUSTOMER} events, 2 personal fields "
        "in each\n"
    )
    print(f"{'':44s} {'personal':>13s} {'plain':>13s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory(prefix="esgen-bench-") as tmp:
        bench = Bench(Path(tmp), args.repeat, args.synchronous)
        stores: dict[bool, Path] = {}

        def save(personal: bool) -> float:
            elapsed, stores[personal] = time_save(bench, personal)
            return elapsed

        report("save (Repository.save, one per customer)", *paired(args.repeat, save), TARGET)
        share = sealed_share(stores[True])
        report(
            "load, key cache cold (a new store)",
            *paired(args.repeat, lambda p: time_load(bench, stores[p], p, warm=False)),
            TARGET,
        )
        report(
            "load, key cache warm",
            *paired(args.repeat, lambda p: time_load(bench, stores[p], p, warm=True)),
            None,
        )
        # The floor: the plain load plus only the cryptography (see time_crypto).
        for cold in (True, False):
            crypto, plain = paired(
                args.repeat,
                lambda p, cold=cold: (
                    time_crypto(bench, stores[True], cold=cold)
                    if p
                    else time_load(bench, stores[False], False, warm=not cold)
                ),
            )
            label = "cold" if cold else "warm"
            report(f"floor, {label} (plain load + cryptography)", plain + crypto, plain, None)
        sizes = {p: stores[p].stat().st_size for p in (True, False)}
        note = "" if share == 1 else " (this runtime does not seal events: the ratios say nothing)"
        print(f"\nevents sealed on the personal side: {share:.0%}{note}")
        print(f"store file: {sizes[True] / 1e6:.1f} MB personal, {sizes[False] / 1e6:.1f} MB plain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
