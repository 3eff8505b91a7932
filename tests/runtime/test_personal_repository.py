"""Personal data through the repository on the memory and SQLite stores: events and
snapshots sealed on save, opened on load, placeholders after `forget` (upcasting and
snapshots included), and every way a key can be missing is an error, never a placeholder.
The PostgreSQL run of the same scenarios is in test_personal_repository_postgres.py."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest

from esgen.runtime import (
    AppendResult,
    ConcurrencyError,
    Event,
    EventRegistry,
    EventStore,
    ForgottenSubject,
    Inspector,
    KeyUnavailable,
    MasterKey,
    MemoryEventStore,
    NewEvent,
    Personal,
    PersonalDataError,
    Repository,
    SQLiteEventStore,
    UnstorableText,
    UnstorableValue,
    ValueObject,
    command_context,
)
from esgen.runtime._personal import sealed_text

from .personal_model import (
    Address,
    AddressChanged,
    Customer,
    CustomerRegistered,
    Order,
    OrderPlaced,
    TierChanged,
    registry,
)

ADA = uuid.UUID("00000000-0000-4000-8000-00000000ada0")
BOB = uuid.UUID("00000000-0000-4000-8000-000000000b0b")
SECRETS = ("Ada Lovelace", "ada@example.org", "+44 1234", "12 St James Square", "Analytical Row")

StoreFactory = Callable[..., EventStore]


@pytest.fixture(params=["memory", "sqlite"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[EventStore] = []
    memory = MemoryEventStore()  # one store: "reopening" it keeps its keys, as a file does

    def factory(master: MasterKey | None = None) -> EventStore:
        if request.param == "memory":
            store: EventStore = MemoryEventStore()
            store.__dict__.update(memory.__dict__)  # same data, another keyring
            store.keyring = None
            if master is not None:
                from esgen.runtime import Keyring

                store.keyring = Keyring(master, store)
        else:
            store = SQLiteEventStore(tmp_path / "store.db", master_key=master)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def _register(repo: Repository[Customer, uuid.UUID], who: uuid.UUID, name: str) -> None:
    customer = repo.new(who)
    customer.record(
        CustomerRegistered(
            name=name, email=f"{name.split()[0].lower()}@example.org", phone="+44 1234"
        )
    )
    customer.record(AddressChanged(address=Address(street="12 St James Square", city="London")))
    repo.save(customer)


def _fill(store: EventStore) -> None:
    customers = Repository(Customer, store, registry())
    _register(customers, ADA, "Ada Lovelace")
    _register(customers, BOB, "Bob Babbage")
    ada = customers.load(ADA)
    ada.record(
        AddressChanged(
            address=Address(street="Analytical Row", city="London"),
            previous=(Address(street="12 St James Square", city="London"),),
        )
    )
    ada.record(TierChanged(tier="gold"))
    customers.save(ada)  # version 4: a snapshot (every 3) was taken
    orders = Repository(Order, store, registry())
    order = orders.new(uuid.uuid4())
    order.record(OrderPlaced(customer_id=ADA, ship_to="Analytical Row", total=3))
    orders.save(order)


def test_personal_fields_read_back_and_are_never_stored_in_clear(
    open_store: StoreFactory, tmp_path: Path
) -> None:
    master = MasterKey(os.urandom(32))
    store = open_store(master)
    _fill(store)
    ada = Repository(Customer, store, registry()).load(ADA)
    assert ada.state.name == "Ada Lovelace"
    assert ada.state.email == "ada@example.org"
    assert ada.state.address == Address(street="Analytical Row", city="London")
    stored = [r.data for r in store.read_all(0, 100)]
    for text in stored:
        assert not any(secret in text for secret in SECRETS), text
    first = json.loads(stored[0])
    assert first["name"] == "<erased>" and first["phone"] is None
    assert first["$personal"]["subject"] == str(ADA)
    order = json.loads(store.read_all(0, 100)[-1].data)
    assert order["$personal"]["subject"] == str(ADA)  # the event's subject field
    snapshot = store.load_snapshot(f"Customer-{ADA}")  # type: ignore[attr-defined]
    assert snapshot is not None and "Ada" not in snapshot.state
    if isinstance(store, SQLiteEventStore):
        _assert_file_free_of(tmp_path, SECRETS)


def test_forget_erases_every_copy_and_leaves_others_readable(
    open_store: StoreFactory, tmp_path: Path
) -> None:
    master = MasterKey(os.urandom(32))
    store = open_store(master)
    _fill(store)
    with command_context(actor="dpo@example.org"):
        assert store.forget(str(ADA)) is True
    assert store.forget(str(ADA)) is False  # idempotent: no second audit event
    audit = store.read_stream("esgen-forgotten-subjects")
    assert [json.loads(r.data) for r in audit] == [{"subject": str(ADA)}]
    assert audit[0].metadata["actor"] == "dpo@example.org"

    # A new process, with the same master key: nothing of Ada can be opened any more.
    again = open_store(master)
    customers = Repository(Customer, again, registry())
    ada = customers.load(ADA)
    assert (ada.state.name, ada.state.email) == ("<erased>", "<erased>")
    assert ada.state.address == Address(street="<erased>", city="London")
    assert ada.state.tier == "gold" and ada.version == 4  # non-personal data untouched
    # The snapshot (taken at version 3, sealed) is not used: the state is the full replay's.
    replayed = Repository(Customer, again, registry(), snapshots=None).load(ADA)
    assert ada.state == replayed.state
    order_stream = again.read_all(0, 100)[-2]
    placed = Repository(Order, again, registry()).load(
        Order.id_from_stream_id(order_stream.stream_id)
    )
    assert placed.state.ship_to == "<erased>"
    bob = customers.load(BOB)
    assert (bob.state.name, bob.state.email) == ("Bob Babbage", "bob@example.org")
    assert bob.state.address == Address(street="12 St James Square", city="London")
    # Inspection shows the placeholders too.
    view = next(Inspector(again, registry(), [customers]).events(f"Customer-{ADA}"))
    assert view.data["name"] == "<erased>" and view.error is None


def test_upcasting_reads_the_placeholder_of_an_old_version(open_store: StoreFactory) -> None:
    master = MasterKey(os.urandom(32))
    store = open_store(master)
    # An event stored at version 1 by earlier code, sealed as that code sealed it.
    from esgen.runtime._personal import sealed_text

    from .personal_model import CustomerRegisteredV1

    for who, name in ((ADA, "Ada Lovelace"), (BOB, "Bob Babbage")):
        text = sealed_text(CustomerRegisteredV1(name=name), store.keyring, str(who))
        store.append(f"Customer-{who}", [NewEvent("CustomerRegistered", 1, text, {})], 0)
    customers = Repository(Customer, store, registry())
    assert customers.load(ADA).state.email == "ada.lovelace@unknown"
    store.forget(str(ADA))
    ada = customers.load(ADA)
    assert (ada.state.name, ada.state.email) == ("<erased>", "<erased>@unknown")
    assert customers.load(BOB).state.email == "bob.babbage@unknown"


def test_after_forget_new_personal_data_is_refused_and_placeholders_are_accepted(
    open_store: StoreFactory,
) -> None:
    store = open_store(MasterKey(os.urandom(32)))
    _fill(store)
    store.forget(str(ADA))
    customers = Repository(Customer, store, registry())
    ada = customers.load(ADA)
    ada.record(AddressChanged(address=Address(street="Somewhere New", city="Paris")))
    with pytest.raises(ForgottenSubject, match=str(ADA)):
        customers.save(ada)
    ada = customers.load(ADA)
    # Copying the placeholders (what the state holds now) seals nothing: accepted.
    ada.record(AddressChanged(address=Address(street="<erased>", city="Paris")))
    ada.record(TierChanged(tier="platinum"))  # and the snapshot due is skipped, not refused
    customers.save(ada)
    assert customers.load(ADA).state.address == Address(street="<erased>", city="Paris")


def test_a_missing_key_is_an_error_never_a_placeholder(
    open_store: StoreFactory, tmp_path: Path
) -> None:
    master = MasterKey(os.urandom(32))
    store = open_store(master)
    _fill(store)
    # No master key: neither reading nor writing personal data.
    bare = open_store(None)
    with pytest.raises(KeyUnavailable, match="master key"):
        Repository(Customer, bare, registry()).load(ADA)
    fresh = Repository(Customer, bare, registry()).new(uuid.uuid4())
    fresh.record(CustomerRegistered(name="Cy", email="cy@example.org"))
    with pytest.raises(KeyUnavailable, match="master key"):
        Repository(Customer, bare, registry()).save(fresh)
    # The wrong master key.
    wrong = open_store(MasterKey(os.urandom(32)))
    with pytest.raises(KeyUnavailable, match="does not unwrap"):
        Repository(Customer, wrong, registry()).load(BOB)
    if isinstance(store, SQLiteEventStore):
        # A key row lost (a restore from an older backup), the subject never forgotten.
        with sqlite3.connect(tmp_path / "store.db") as conn:
            conn.execute("DELETE FROM esgen_subject_keys WHERE subject = ?", (str(BOB),))
        with pytest.raises(KeyUnavailable, match="never forgotten"):
            Repository(Customer, open_store(master), registry()).load(BOB)


def _assert_file_free_of(folder: Path, secrets: tuple[str, ...]) -> None:
    for path in folder.iterdir():
        if path.name.startswith("store.db"):
            raw = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in raw, (path.name, secret)


def test_without_the_master_key_a_forgotten_subject_reads_as_placeholders(
    open_store: StoreFactory,
) -> None:
    store = open_store(MasterKey(os.urandom(32)))
    _fill(store)
    store.forget(str(ADA))
    keyless = open_store(None)
    if isinstance(keyless, MemoryEventStore):
        from esgen.runtime import Keyring

        keyless.keyring = Keyring(None, keyless)
    # An operator's tool without the key: what was forgotten needs none to read.
    ada = Repository(Customer, keyless, registry(), snapshots=None).load(ADA)
    assert (ada.state.name, ada.state.address) == (
        "<erased>",
        Address(street="<erased>", city="London"),
    )
    with pytest.raises(KeyUnavailable, match=f"subject '{BOB}'.*no master key"):
        Repository(Customer, keyless, registry()).load(BOB)


def test_a_key_made_in_a_transaction_that_rolls_back_is_not_used_again(tmp_path: Path) -> None:
    master = MasterKey(os.urandom(32))
    store = SQLiteEventStore(tmp_path / "store.db", master_key=master)
    customers = Repository(Customer, store, registry())
    with pytest.raises(RuntimeError), store.transaction():
        _register(customers, ADA, "Ada Lovelace")
        raise RuntimeError("the caller's block fails after the save")
    assert store.subject_keys([str(ADA)]) == {}  # the key went with the events
    _register(customers, ADA, "Ada Lovelace")  # a new key, stored this time
    store.close()
    with SQLiteEventStore(tmp_path / "store.db", master_key=master) as again:
        assert Repository(Customer, again, registry()).load(ADA).state.name == "Ada Lovelace"


def _traced(store: SQLiteEventStore) -> list[str]:
    """The SQL the store runs from now on, on this thread's connection."""
    with store.read_transaction() as conn:
        pass  # the thread's own connection, which every call here uses
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    return statements


def test_a_save_makes_a_transaction_only_for_a_new_key(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "store.db", master_key=MasterKey(os.urandom(32)))
    orders = Repository(Order, store, registry())
    statements = _traced(store)

    def place(customer: uuid.UUID) -> list[str]:
        order = orders.new(uuid.uuid4())
        order.record(OrderPlaced(customer_id=customer, ship_to="Analytical Row", total=3))
        statements.clear()
        orders.save(order)
        return [
            " ".join(s.split()[:2]) if s.startswith("BEGIN") else s.split()[0] for s in statements
        ]

    # A new subject: its key and the events in one transaction, and no savepoint in it
    # (SQLite writes a statement journal for one); a known subject: a save as any other.
    first = place(ADA)
    assert first[0] == "BEGIN IMMEDIATE" and first[-1] == "COMMIT", first
    assert first.count("COMMIT") == 1 and "SAVEPOINT" not in first, first
    assert any(s.startswith("INSERT INTO esgen_subject_keys") for s in statements)
    again = place(ADA)
    assert again[0] == "BEGIN IMMEDIATE" and again.count("COMMIT") == 1, again
    assert not any("esgen_subject_keys" in s for s in statements)
    # Inside the caller's transaction the save joins it, the append with its savepoint.
    with store.transaction():
        joined = place(BOB)
    assert "SAVEPOINT" in joined and "COMMIT" not in joined, joined
    store.close()


def test_a_save_that_fails_after_making_its_key_keeps_neither(tmp_path: Path) -> None:
    master = MasterKey(os.urandom(32))
    path = tmp_path / "store.db"
    first, second = (SQLiteEventStore(path, master_key=master) for _ in range(2))
    order_id = uuid.uuid4()
    for store, customer in ((first, ADA), (second, BOB)):
        order = Repository(Order, store, registry()).new(order_id)
        order.record(OrderPlaced(customer_id=customer, ship_to=f"{customer} Row", total=3))
        if store is first:
            Repository(Order, store, registry()).save(order)
            continue
        # The second writer makes BOB's key, seals with it, then finds the stream taken.
        with pytest.raises(ConcurrencyError):
            Repository(Order, store, registry()).save(order)
    assert second.subject_keys([str(ADA), str(BOB)]).keys() == {str(ADA)}
    (stored,) = second.read_stream(f"Order-{order_id}")  # the first writer's event alone
    assert str(ADA) in stored.data and str(BOB) not in stored.data
    # BOB's key was dropped with the transaction: the next save makes and stores another.
    retry = Repository(Order, second, registry()).new(uuid.uuid4())
    retry.record(OrderPlaced(customer_id=BOB, ship_to="Bob Row", total=4))
    Repository(Order, second, registry()).save(retry)
    assert second.subject_keys([str(BOB)]).keys() == {str(BOB)}
    first.close()
    second.close()
    with SQLiteEventStore(path, master_key=master) as again:
        assert Repository(Order, again, registry()).load(retry.id).state.ship_to == "Bob Row"
        loaded = Repository(Order, again, registry()).load(order_id)
        assert loaded.state.ship_to == f"{ADA} Row"


def test_a_key_not_committed_yet_is_used_by_its_own_transaction_alone(tmp_path: Path) -> None:
    # Thread A makes BOB's key in its save's transaction, which then fails (the stream is
    # taken). Thread B, saving data of BOB meanwhile, must not seal with that key: its
    # row is rolled back, and B's events would be stored with no key to open them.
    master = MasterKey(os.urandom(32))
    store = SQLiteEventStore(tmp_path / "store.db", master_key=master, busy_timeout=30)
    taken = uuid.uuid4()
    first = Repository(Order, store, registry()).new(taken)
    first.record(OrderPlaced(customer_id=ADA, ship_to="Ada Row", total=1))
    Repository(Order, store, registry()).save(first)
    append = store.append
    holding, appending, release = threading.Event(), threading.Event(), threading.Event()

    def held_append(*args: Any, **kwargs: Any) -> AppendResult:
        if threading.current_thread().name == "A":
            holding.set()  # inside A's transaction, BOB's new key stored in it
            assert release.wait(30)
        else:
            appending.set()
        return append(*args, **kwargs)

    store.append = held_append  # type: ignore[method-assign]
    outcome: dict[str, BaseException | None] = {}

    def save(name: str, order_id: uuid.UUID, ship_to: str) -> None:
        order = Repository(Order, store, registry()).new(order_id)
        order.record(OrderPlaced(customer_id=BOB, ship_to=ship_to, total=2))
        try:
            Repository(Order, store, registry()).save(order)
            outcome[name] = None
        except BaseException as exc:
            outcome[name] = exc

    a = threading.Thread(target=save, args=("A", taken, "Bob Row A"), name="A")
    a.start()
    assert holding.wait(30)
    b_order = uuid.uuid4()
    b = threading.Thread(target=save, args=("B", b_order, "Bob Row B"), name="B")
    b.start()
    # B waits for A's transaction before it seals (it has to make a key of its own).
    assert not appending.wait(0.5)
    release.set()
    a.join(30)
    b.join(30)
    store.close()
    assert isinstance(outcome["A"], ConcurrencyError) and outcome["B"] is None, outcome
    with SQLiteEventStore(tmp_path / "store.db", master_key=master) as again:
        assert again.subject_keys([str(BOB)]).keys() == {str(BOB)}
        assert Repository(Order, again, registry()).load(b_order).state.ship_to == "Bob Row B"


def test_altered_sealed_text_reads_alike_whether_its_key_is_cached_or_not(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    master = MasterKey(os.urandom(32))
    warm = SQLiteEventStore(path, master_key=master)
    orders = Repository(Order, warm, registry())
    order = orders.new(uuid.uuid4())
    order.record(OrderPlaced(customer_id=ADA, ship_to="Analytical Row", total=3))
    orders.save(order)  # ADA's key is now cached by `warm`
    with sqlite3.connect(path) as raw:
        (data,) = raw.execute("SELECT data FROM esgen_events").fetchone()
        head, sealed = data.split('"sealed":"')
        # Characters lax base64 would skip, and a JSON key, added to the sealed text.
        altered = f'{head}"sealed":"{sealed[:10]}!*.,~{sealed[10:-3]}","extra":"?!"}}}}'
        raw.execute("DROP TRIGGER esgen_events_no_update")
        raw.execute("UPDATE esgen_events SET data = ?", (altered,))
    with SQLiteEventStore(path, master_key=master) as cold:
        for store in (warm, cold, cold):  # cached, not cached, cached by the failed read
            with pytest.raises(PersonalDataError, match="not base64"):
                Repository(Order, store, registry()).load(order.id)
    warm.close()


class _Reading(Event):
    patient: Annotated[str, Personal(erased="")]
    temperature: Annotated[float, Personal(erased=0.0)]
    room: float

    event_type: ClassVar[str] = "Reading"
    event_version: ClassVar[int] = 1


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"patient": "Ada", "temperature": math.nan, "room": 20.0}, UnstorableValue),
        ({"patient": "Ada", "temperature": 37.0, "room": math.inf}, UnstorableValue),
        ({"patient": "Ad\udc00a", "temperature": 37.0, "room": 20.0}, UnstorableText),
    ],
)
def test_sealing_refuses_what_no_store_can_keep_personal_or_not(
    values: dict[str, object], error: type[Exception]
) -> None:
    # Validation is skipped (model_construct): the check on writing is what stops them, in
    # the personal fields sealed apart as in the others.
    store = MemoryEventStore()
    with pytest.raises(error):
        sealed_text(_Reading.model_construct(**values), store.keyring, "pat-1")


def test_a_subject_no_store_can_keep_is_refused(open_store: StoreFactory) -> None:
    store = open_store(MasterKey(os.urandom(32)))
    orders = Repository(Order, store, registry())
    with pytest.raises(ValueError, match="NUL"):
        store.forget("a\x00b")
    order = orders.new(uuid.uuid4())
    order.record(OrderPlaced(customer_id=ADA, ship_to="Analytical Row", total=3))
    orders.save(order)
    assert orders.load(order.id).state.ship_to == "Analytical Row"


class _Scan(ValueObject):
    image: Annotated[bytes, Personal(erased="")]
    label: str


class _Scanned(Event):
    scans: tuple[_Scan, ...]
    note: Annotated[bytes, Personal(erased="")]

    event_type: ClassVar[str] = "Scanned"
    event_version: ClassVar[int] = 1


def test_bytes_read_back_as_stored_nested_or_not(open_store: StoreFactory) -> None:
    # JSON holds bytes as base64: sealed values are read as JSON too, never as Python str.
    store = open_store(MasterKey(os.urandom(32)))
    event = _Scanned(scans=(_Scan(image=b"\x00\xffraw", label="x"),), note=b"\x01note")
    registry_ = EventRegistry([_Scanned])
    text = sealed_text(event, store.keyring, "pat-1")
    assert "raw" not in text and json.loads(text)["note"] == ""
    assert registry_.decode("Scanned", 1, text, store.keyring) == event
    store.forget("pat-1")
    erased = registry_.decode("Scanned", 1, text, store.keyring)
    assert isinstance(erased, _Scanned) and erased.note == b"" and erased.scans[0].image == b""
