"""What only SQLite has of personal data: the bytes of the file and its write-ahead log
after a forget, the read-only store, and files made by the previous release. (The key
port itself is tested on every backend by `BackendContract`.)"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest

from esgen.runtime import (
    KeyUnavailable,
    MasterKey,
    NewEvent,
    ReadOnlyStore,
    SQLiteEventStore,
)
from esgen.runtime._personal import open_json, personal_fields, seal_json
from esgen.runtime.testing._contract_personal import (
    Customer,
    customer,
    erased_customer,
    plaintexts,
)


def _append_customer(store: SQLiteEventStore, subject: str) -> None:
    spec = personal_fields(Customer)
    assert spec is not None and store.keyring is not None
    data = seal_json(store.keyring, spec, customer(subject).model_dump(mode="json"))
    store.append(f"customer-{subject}", [NewEvent("CustomerSeen", 1, json.dumps(data))], 0)


def _read_customer(store: SQLiteEventStore, subject: str) -> Customer:
    (event,) = store.read_stream(f"customer-{subject}")
    return Customer.model_validate(open_json(store.keyring, json.loads(event.data)))


def _file_bytes(path: Path) -> bytes:
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _fragments(secret: bytes) -> list[bytes]:
    """Every 12 bytes in a row of a key (a freed cell partly overwritten still leaks
    some), and the key written as text."""
    return [secret[i : i + 12] for i in range(len(secret) - 11)] + [
        secret.hex().encode(),
        base64.b64encode(secret),
    ]


@pytest.mark.parametrize("with_master_key", [True, False])
def test_after_forget_the_file_holds_neither_the_key_nor_plaintext(
    tmp_path: Path, with_master_key: bool
) -> None:
    path = tmp_path / "events.db"
    master = MasterKey(os.urandom(32))
    store = SQLiteEventStore(path, master_key=master)
    for subject in ("ann", "bob"):
        _append_customer(store, subject)
    wrapped = store.subject_keys(["ann"])["ann"]
    assert wrapped is not None
    data_key = master.unwrap("ann", wrapped)
    assert wrapped in _file_bytes(path)  # the scan below can see it, while it is there
    # The forget from the store itself, or from one opened without the master key
    # (an operator's tool), while the application's store is open.
    forgetter = store if with_master_key else SQLiteEventStore(path)
    assert forgetter.forget("ann") is True
    if forgetter is not store:
        forgetter.close()
    raw = _file_bytes(path)
    for secret in (wrapped, data_key):
        for fragment in _fragments(secret):
            assert fragment not in raw
    for plaintext in plaintexts(customer("ann")):
        assert plaintext.encode() not in raw
    store.close()
    again = SQLiteEventStore(path, master_key=master)
    try:
        assert _read_customer(again, "ann") == erased_customer("ann")
        assert _read_customer(again, "bob") == customer("bob")
        assert again.subject_keys(["ann"]) == {"ann": None}
    finally:
        again.close()


def test_a_read_only_store_reads_keys_and_refuses_to_write_them(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    master = MasterKey(os.urandom(32))
    with SQLiteEventStore(path, master_key=master) as writer:
        _append_customer(writer, "ann")
        keys = writer.subject_keys(["ann"])
    with SQLiteEventStore(path, read_only=True, master_key=master) as reader:
        assert reader.subject_keys(["ann"]) == keys
        assert _read_customer(reader, "ann") == customer("ann")
        with pytest.raises(ReadOnlyStore, match="read-only"):
            reader.add_subject_key("bob", b"w")
        with pytest.raises(ReadOnlyStore, match="read-only"):
            reader.forget("ann")
        assert reader.keyring is not None
        with pytest.raises(ReadOnlyStore):
            reader.keyring.seal("bob", b"x")
        head = reader.head_position()
    with SQLiteEventStore(path) as writer:
        assert writer.subject_keys(["ann", "bob"]) == keys
        assert writer.head_position() == head


def test_a_file_of_the_previous_release_gains_the_key_table(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        store.append("s", [NewEvent("Thing", 1, "{}")], 0)
    with sqlite3.connect(path) as raw:  # the file as the previous release left it
        raw.execute("DROP TABLE esgen_subject_keys")
    master = MasterKey(os.urandom(32))
    with SQLiteEventStore(path, read_only=True, master_key=master) as reader:
        assert reader.subject_keys(["ann"]) == {}
        assert reader.keyring is not None and reader.keyring.forgotten("ann") is False
    with SQLiteEventStore(path, master_key=master) as store:
        _append_customer(store, "ann")
        assert _read_customer(store, "ann") == customer("ann")
        assert store.forget("ann") is True
        assert _read_customer(store, "ann") == erased_customer("ann")


def test_a_missing_key_row_is_key_unavailable(tmp_path: Path) -> None:
    """A key table restored from an older backup than the events: an error, never the
    placeholders."""
    path = tmp_path / "events.db"
    master = MasterKey(os.urandom(32))
    with SQLiteEventStore(path, master_key=master) as store:
        _append_customer(store, "ann")
    with sqlite3.connect(path) as raw:
        raw.execute("DELETE FROM esgen_subject_keys")
    with (
        SQLiteEventStore(path, master_key=master) as store,
        pytest.raises(KeyUnavailable, match="no data key is stored for subject 'ann'"),
    ):
        _read_customer(store, "ann")


def test_the_key_table_refuses_a_key_and_a_forgotten_time_together(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SQLiteEventStore(path).close()
    with sqlite3.connect(path) as raw:
        for wrapped, forgotten in ((b"w", "2024-01-01"), (None, None)):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                raw.execute(
                    "INSERT INTO esgen_subject_keys VALUES ('ann', ?, '2024-01-01', ?)",
                    (wrapped, forgotten),
                )
