"""The personal-data part of the contract: the key port every store offers for
crypto-shredding (`subject_keys`, `add_subject_key`, `forget_subject`, `forget`) and what
a keyring over it does (seal, open, forget), the same on every backend.

What only one backend has (its read-only mode, scans of its raw bytes or rows) is tested
in that backend's own test module."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    Clock,
    EventStore,
    ForgottenSubject,
    Keyring,
    KeyUnavailable,
    KeyWrapper,
    MasterKey,
    Personal,
    command_context,
    current_context,
)
from esgen.runtime._personal import (
    ENVELOPE_KEY,
    FORGOTTEN_STREAM,
    open_json,
    personal_fields,
    seal_json,
)
from esgen.runtime.testing._clock import ManualClock
from esgen.runtime.testing._fixtures import StoreFixtures

__all__ = [
    "Address",
    "Customer",
    "PersonalDataContract",
    "customer",
    "erased_customer",
    "plaintexts",
    "seal_worker",
]

StoreFactory = Callable[[], EventStore]


# -- a hand-written model, as generated code marks personal fields -------------------------


class Address(BaseModel):
    street: Annotated[str, Personal(erased="<erased>")]
    city: str


class Customer(BaseModel):
    customer_id: str
    name: Annotated[str, Personal(erased="<erased>")]
    phone: Annotated[str | None, Personal(erased=None)] = None
    address: Address
    emails: list[Annotated[str, Personal(erased="")]] = []
    previous: list[Address] = []
    note: str = ""

    data_subject: ClassVar[str] = "customer_id"


def customer(subject: str, phone: str | None = "+44 20 7946 0958") -> Customer:
    return Customer(
        customer_id=subject,
        name=f"Ann Example of {subject}",
        phone=phone,
        address=Address(street=f"1 Secret Lane ({subject})", city="Leeds"),
        emails=[f"ann@{subject}.example", f"work@{subject}.example"],
        previous=[Address(street=f"9 Old Road ({subject})", city="York")],
        note="not personal",
    )


def _stored(keyring: Keyring | None, model: Customer) -> str:
    """The text a store would keep for `model`."""
    spec = personal_fields(Customer)
    assert spec is not None
    data = seal_json(keyring, spec, model.model_dump(mode="json"), what="Customer")
    return json.dumps(data)


def _read(keyring: Keyring | None, text: str) -> Customer:
    return Customer.model_validate(open_json(keyring, json.loads(text), "Customer"))


def erased_customer(subject: str) -> Customer:
    """What `customer(subject)` reads as once its subject is forgotten."""
    return Customer(
        customer_id=subject,
        name="<erased>",
        phone=None,
        address=Address(street="<erased>", city="Leeds"),
        emails=["", ""],
        previous=[Address(street="<erased>", city="York")],
        note="not personal",
    )


def plaintexts(model: Customer) -> list[str]:
    """Its personal values, none of which may be found at rest."""
    assert model.phone is not None
    return [
        model.name,
        model.phone,
        model.address.street,
        *model.emails,
        model.previous[0].street,
    ]


def _new_master_key() -> MasterKey:
    return MasterKey(os.urandom(32))


def seal_worker(factory: StoreFactory, key: bytes, subject: str, results: Any) -> None:
    """In a child process: seal one customer with a store of its own, report the text."""
    store = factory()
    try:
        keyring = Keyring(MasterKey(key), store)
        results.put(("ok", _stored(keyring, customer(subject))))
    except Exception as exc:
        results.put(("error", repr(exc)))
    finally:
        store.close()


class PersonalDataContract(StoreFixtures):
    def make_keyed_store(self, tmp_path: Path, clock: Clock, master_key: KeyWrapper) -> EventStore:
        """A new, empty store opened with `master_key=` (it has `store.keyring`).

        The default gives `make_store`'s store a keyring; backends override it to pass
        the key to their constructor, as applications do."""
        store = self.make_store(tmp_path, clock)
        store.keyring = Keyring(master_key, store)
        return store

    @pytest.fixture
    def master_key(self) -> MasterKey:
        return _new_master_key()

    @pytest.fixture
    def keyed(
        self, tmp_path: Path, clock: ManualClock, master_key: MasterKey
    ) -> Iterator[EventStore]:
        store = self.make_keyed_store(tmp_path, clock, master_key)
        try:
            yield store
        finally:
            store.close()

    @staticmethod
    def _keyring(store: EventStore) -> Keyring:
        keyring = store.keyring
        assert isinstance(keyring, Keyring), "a store opened with master_key= has a keyring"
        return keyring

    # -- the key port ---------------------------------------------------------------------

    def test_keys_absent_present_and_forgotten(self, keyed: EventStore) -> None:
        assert keyed.subject_keys([]) == {}
        assert keyed.subject_keys(["ann", "bob"]) == {}
        assert keyed.add_subject_key("ann", b"wrapped-ann") == b"wrapped-ann"
        assert keyed.subject_keys(["ann", "bob"]) == {"ann": b"wrapped-ann"}
        assert keyed.forget("ann") is True
        assert keyed.subject_keys(["ann", "bob"]) == {"ann": None}
        assert keyed.subject_keys(["bob"]) == {}

    def test_a_subject_keeps_its_first_key(self, keyed: EventStore) -> None:
        assert keyed.add_subject_key("ann", b"first") == b"first"
        assert keyed.add_subject_key("ann", b"second") == b"first"
        assert keyed.subject_keys(["ann"]) == {"ann": b"first"}
        keyed.forget("ann")
        assert keyed.add_subject_key("ann", b"third") is None  # forgotten stays forgotten
        assert keyed.subject_keys(["ann"]) == {"ann": None}

    def test_subjects_are_text_compared_exactly(self, keyed: EventStore) -> None:
        odd = ["Ann", "ann ", "über-\U0001f600", "x' OR '1'='1", "50%_off\\"]
        for n, subject in enumerate(odd):
            keyed.add_subject_key(subject, bytes([n]) * 40)
        assert keyed.subject_keys(["ann", *odd]) == {
            subject: bytes([n]) * 40 for n, subject in enumerate(odd)
        }
        assert keyed.subject_keys(["\ud800"]) == {}  # no stored subject can equal it

    # -- forgetting ---------------------------------------------------------------------

    def test_forget_records_one_event_with_the_command_context(self, keyed: EventStore) -> None:
        keyring = self._keyring(keyed)
        keyring.seal("ann", b"x")
        head = keyed.head_position()
        with command_context(actor="dpo@example.com") as context:
            assert keyed.forget("ann", metadata={"reason": "erasure request"}) is True
        (event,) = keyed.read_all(after=head)
        assert (event.stream_id, event.stream_version) == (FORGOTTEN_STREAM, 1)
        assert (event.event_type, event.event_version) == ("esgen.SubjectForgotten", 1)
        assert json.loads(event.data) == {"subject": "ann"}
        assert event.metadata["actor"] == "dpo@example.com"
        assert event.metadata["reason"] == "erasure request"
        assert event.correlation_id == context.correlation_id
        assert current_context() is None

    def test_forget_is_idempotent(self, keyed: EventStore) -> None:
        self._keyring(keyed).seal("ann", b"x")
        assert keyed.forget("ann") is True
        head = keyed.head_position()
        assert keyed.forget("ann") is False
        assert self._keyring(keyed).forget("ann") is False
        assert keyed.head_position() == head
        assert [e.data for e in keyed.read_stream(FORGOTTEN_STREAM)] == ['{"subject":"ann"}']
        assert keyed.subject_keys(["ann"]) == {"ann": None}

    def test_forgetting_a_subject_that_never_had_a_key(self, keyed: EventStore) -> None:
        keyring = self._keyring(keyed)
        assert keyring.forgotten("nobody") is False  # never raises for a subject without a key
        assert keyed.forget("nobody") is True
        assert keyed.subject_keys(["nobody"]) == {"nobody": None}
        assert keyring.forgotten("nobody") is True
        assert len(keyed.read_stream(FORGOTTEN_STREAM)) == 1
        with pytest.raises(ForgottenSubject, match="nobody"):
            keyring.seal("nobody", b"x")
        assert keyed.forget("nobody") is False

    def test_forget_is_one_transaction(self, keyed: EventStore, master_key: MasterKey) -> None:
        """The audit event cannot be written (its metadata is not JSON): the key stays."""
        keyring = self._keyring(keyed)
        text = _stored(keyring, customer("ann"))
        before = keyed.subject_keys(["ann"])
        with pytest.raises(TypeError, match="JSON-serialisable"):
            keyed.forget("ann", metadata={"not json": object()})
        assert keyed.subject_keys(["ann"]) == before
        assert keyed.head_position() == 0
        assert _read(Keyring(master_key, keyed), text) == customer("ann")
        assert keyed.forget("ann") is True
        assert len(keyed.read_stream(FORGOTTEN_STREAM)) == 1

    def test_no_new_personal_data_of_a_forgotten_subject(
        self, keyed: EventStore, master_key: MasterKey
    ) -> None:
        keyring = self._keyring(keyed)
        _stored(keyring, customer("ann"))
        keyed.forget("ann")
        with pytest.raises(ForgottenSubject, match="'ann' was forgotten"):
            _stored(keyring, customer("ann"))
        # Also through a keyring that never saw the subject (another process, say).
        with pytest.raises(ForgottenSubject):
            Keyring(master_key, keyed).seal("ann", b"x")
        assert keyed.subject_keys(["ann"]) == {"ann": None}

    def test_forget_needs_no_master_key(self, store: EventStore, master_key: MasterKey) -> None:
        # A memory store makes a key of its own; the others open without one.
        keyring = store.keyring
        assert (
            keyring is None
            or not keyring.has_master_key
            or type(store).__name__ == "MemoryEventStore"
        )
        # Data sealed by an application holding the key, forgotten by one that has none
        # (cache_seconds=0: this keyring sees the forget at once, as the store's own would).
        sealer = Keyring(master_key, store, cache_seconds=0)
        text = _stored(sealer, customer("ann"))
        with command_context(actor="ops"):
            assert store.forget("ann") is True
        assert _read(sealer, text) == erased_customer("ann")
        with pytest.raises(KeyUnavailable, match="no master key"):
            _read(None, text)
        (event,) = store.read_stream(FORGOTTEN_STREAM)
        assert event.metadata["actor"] == "ops"
        assert store.forget("ann") is False

    # -- keys that cannot be had --------------------------------------------------------

    def test_a_wrong_master_key_is_key_unavailable(self, keyed: EventStore) -> None:
        text = _stored(self._keyring(keyed), customer("ann"))
        wrong = Keyring(_new_master_key(), keyed)
        with pytest.raises(KeyUnavailable, match="does not unwrap with this master key"):
            _read(wrong, text)
        with pytest.raises(KeyUnavailable):
            wrong.seal("ann", b"x")  # never a second key for a subject that has one
        assert wrong.forgotten("ann") is False
        assert _read(self._keyring(keyed), text) == customer("ann")

    def test_a_subject_without_a_key_never_forgotten_is_key_unavailable(
        self, keyed: EventStore
    ) -> None:
        """Sealed data whose key row is missing (restored from another database, say)
        is an error, never read as the placeholders."""
        text = _stored(self._keyring(keyed), customer("ann"))
        data = json.loads(text)
        data[ENVELOPE_KEY]["subject"] = "ghost"
        with pytest.raises(KeyUnavailable, match="no data key is stored for subject 'ghost'"):
            open_json(self._keyring(keyed), data, "Customer")
        assert self._keyring(keyed).forgotten("ghost") is False
        assert keyed.subject_keys(["ghost"]) == {}  # opening never makes a key

    def test_sealed_data_without_a_keyring_is_key_unavailable(self, keyed: EventStore) -> None:
        text = _stored(self._keyring(keyed), customer("ann"))
        with pytest.raises(KeyUnavailable, match="no master key"):
            _read(None, text)
        with pytest.raises(KeyUnavailable, match="no master key"):
            _stored(None, customer("bob"))

    # -- sealing and opening ------------------------------------------------------------

    @pytest.mark.parametrize("phone", ["+44 20 7946 0958", None])
    def test_sealed_data_holds_no_plaintext_and_reads_back(
        self, keyed: EventStore, master_key: MasterKey, phone: str | None
    ) -> None:
        original = customer("ann", phone)
        text = _stored(self._keyring(keyed), original)
        for plaintext in plaintexts(customer("ann")):
            assert plaintext not in text
        stored = json.loads(text)
        assert stored["name"] == "<erased>" and stored["address"]["city"] == "Leeds"
        assert stored[ENVELOPE_KEY]["subject"] == "ann"
        assert _read(self._keyring(keyed), text) == original
        # A keyring of another store object on the same keys, with its own cache.
        assert _read(Keyring(master_key, keyed), text) == original

    def test_forgotten_data_reads_as_its_placeholders(
        self, keyed: EventStore, master_key: MasterKey
    ) -> None:
        keyring = self._keyring(keyed)
        ann, bob = _stored(keyring, customer("ann")), _stored(keyring, customer("bob"))
        keyed.forget("ann")
        assert _read(keyring, ann) == erased_customer("ann")
        assert _read(Keyring(master_key, keyed), ann) == erased_customer("ann")
        assert _read(keyring, bob) == customer("bob")

    # -- several stores on one database -------------------------------------------------

    def test_two_stores_share_keys(self, factory: StoreFactory, master_key: MasterKey) -> None:
        first, second = factory(), factory()
        try:
            one = Keyring(master_key, first, cache_seconds=0)
            two = Keyring(master_key, second, cache_seconds=0)
            text = _stored(one, customer("ann"))
            assert _read(two, text) == customer("ann")
            assert second.forget("ann") is True
            assert first.forget("ann") is False
            assert _read(one, text) == erased_customer("ann")
            with pytest.raises(ForgottenSubject):
                one.seal("ann", b"x")
        finally:
            first.close()
            second.close()

    def test_stores_racing_to_add_a_key_end_with_the_same_one(self, factory: StoreFactory) -> None:
        stores = [factory() for _ in range(4)]
        subjects = [f"racer-{n}" for n in range(25)]
        barrier = threading.Barrier(len(stores))
        kept: dict[int, list[bytes | None]] = {}
        errors: list[BaseException] = []

        def add(index: int) -> None:
            try:
                barrier.wait(timeout=60)
                kept[index] = [
                    stores[index].add_subject_key(s, f"{index}:{s}".encode()) for s in subjects
                ]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=add, args=(i,)) for i in range(len(stores))]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert errors == []
            stored = stores[0].subject_keys(subjects)
            assert set(stored) == set(subjects)
            for index in range(len(stores)):
                assert kept[index] == [stored[s] for s in subjects]
        finally:
            for store in stores:
                store.close()

    def test_data_sealed_in_another_process_opens_here(
        self, factory: StoreFactory, master_key: MasterKey
    ) -> None:
        raw = os.urandom(32)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        process = context.Process(target=seal_worker, args=(factory, raw, "ann", results))
        process.start()
        try:
            status, text = results.get(timeout=120)
        finally:
            process.join(timeout=120)
        assert status == "ok", text
        store = factory()
        try:
            assert _read(Keyring(MasterKey(raw), store), text) == customer("ann")
            with pytest.raises(KeyUnavailable):
                _read(Keyring(master_key, store), text)
        finally:
            store.close()
