"""Ways a forgotten subject's data could outlive its key, found by a review, each shut:
the SQLite write-ahead log while a reader holds it or inside a caller's transaction,
values in error messages a runner stores, the length and the clear form of placeholder-like
values, a memory store's rolled-back forget, and snapshots of state filled from events of
another subject."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    DecodeError,
    Event,
    EventRegistry,
    MasterKey,
    MemoryEventStore,
    NewEvent,
    Personal,
    Repository,
    SQLiteEventStore,
)
from esgen.runtime._personal import sealed_text


class Noted(Event):
    note: Annotated[str, Personal(erased="<erased>")]
    code: Annotated[str, Personal(erased="none")] = "none"

    event_type: ClassVar[str] = "Noted"
    event_version: ClassVar[int] = 1


def _wal_holds(path: Path, needle: bytes) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and needle in wal.read_bytes()


def test_a_reader_holding_the_log_delays_its_purge_and_forgetting_again_finishes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.db"
    store = SQLiteEventStore(path, master_key=MasterKey(os.urandom(32)), busy_timeout=0.2)
    store.keyring.seal("alice", b"x")  # type: ignore[union-attr]
    wrapped = store.subject_keys(["alice"])["alice"]
    assert wrapped is not None and _wal_holds(path, wrapped)
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM esgen_events").fetchone()  # a snapshot is held
    with caplog.at_level(logging.WARNING, logger="esgen.runtime.sqlite"):
        assert store.forget("alice") is True
    assert "may still hold a forgotten subject's wrapped key" in caplog.text
    assert _wal_holds(path, wrapped)
    reader.rollback()
    reader.close()
    assert store.forget("alice") is False  # idempotent, and the purge is tried again
    assert not _wal_holds(path, wrapped)
    assert wrapped not in path.read_bytes()
    store.close()


def test_a_forget_inside_a_transaction_empties_the_log_once_it_commits(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SQLiteEventStore(path, master_key=MasterKey(os.urandom(32)))
    for subject in ("alice", "carol"):
        store.keyring.seal(subject, b"x")  # type: ignore[union-attr]
    keys = store.subject_keys(["alice", "carol"])
    with store.transaction():
        store.forget("alice")
        store.forget("carol")
    for wrapped in keys.values():
        assert wrapped is not None
        assert not _wal_holds(path, wrapped) and wrapped not in path.read_bytes()
    store.close()


class NotedV2(Event):
    note: Annotated[str, Personal(erased="<erased>")]
    digits: int

    event_type: ClassVar[str] = "Noted"
    event_version: ClassVar[int] = 2


def test_errors_on_opened_data_never_show_its_values(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "store.db", master_key=MasterKey(os.urandom(32)))
    text = sealed_text(Noted(note="call Adelheid at home 555"), store.keyring, "p1")
    store.append("Note-1", [NewEvent("Noted", 1, text, {})], 0)
    registry = EventRegistry([Noted])
    # A version-2 reader whose upcaster makes data that does not validate.
    later = EventRegistry([NotedV2])
    later.register_upcaster("Noted", 1, lambda old: {"note": old["note"], "digits": old["note"]})
    with pytest.raises(DecodeError) as raised:
        later.decode_recorded(store.read_stream("Note-1")[0], store.keyring)
    assert "values not shown" in str(raised.value)
    assert "Adelheid" not in str(raised.value) and "Adelheid" not in repr(raised.value)
    assert registry.decode("Noted", 1, text, store.keyring) == Noted(
        note="call Adelheid at home 555"
    )
    store.close()


def test_values_like_the_placeholder_are_sealed_and_lengths_are_padded(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "store.db", master_key=MasterKey(os.urandom(32)))
    negative = json.loads(sealed_text(Noted(note="x", code="none"), store.keyring, "p1"))
    positive = json.loads(sealed_text(Noted(note="x", code="positive"), store.keyring, "p2"))
    assert negative["code"] == positive["code"] == "none"  # the placeholder, in both
    male = json.loads(sealed_text(Noted(note="male"), store.keyring, "p3"))
    female = json.loads(sealed_text(Noted(note="female"), store.keyring, "p4"))
    lengths = {len(d["$personal"]["sealed"]) for d in (negative, positive, male, female)}
    assert len(lengths) == 1
    # Once forgotten, placeholders alone may be written again (a late copy of them).
    store.forget("p1")
    assert "$personal" not in sealed_text(Noted(note="<erased>"), store.keyring, "p1")
    store.close()


def test_a_memory_forget_rolled_back_keeps_the_key(tmp_path: Path) -> None:
    store = MemoryEventStore()
    assert store.keyring is not None
    sealed = store.keyring.seal("alice", b"secret")
    with pytest.raises(RuntimeError), store.transaction():
        store.forget("alice")
        raise RuntimeError("the block fails")
    assert store.subject_keys(["alice"])["alice"] is not None
    assert store.head_position() == 0  # no audit event either
    assert store.keyring.open("alice", sealed) == b"secret"


# -- a state filled from events of another subject -------------------------------------


class VisitRecorded(Event):
    doctor_id: str
    remark: Annotated[str, Personal(erased="<erased>")]

    event_type: ClassVar[str] = "VisitRecorded"
    event_version: ClassVar[int] = 1
    data_subject: ClassVar[str] = "doctor_id"


class PatientState(BaseModel):
    model_config = ConfigDict(frozen=True)
    last_remark: Annotated[str, Personal(erased="<erased>")] = ""
    visits: int = 0


class Patient(Aggregate[PatientState, uuid.UUID]):
    aggregate_type = "Patient"
    snapshot_every = 1
    apply_methods: ClassVar[Mapping[type[Event], str]] = {VisitRecorded: "_visited"}

    def _visited(self, event: VisitRecorded) -> PatientState:
        state = self.state_or_none or PatientState()
        return PatientState(last_remark=event.remark, visits=state.visits + 1)


def test_a_state_holding_another_subjects_data_is_never_snapshotted(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "store.db", master_key=MasterKey(os.urandom(32)))
    patients = Repository(Patient, store, EventRegistry([VisitRecorded]))
    who = uuid.uuid4()
    patient = patients.new(who)
    patient.record(VisitRecorded(doctor_id="dr-house", remark="a private remark"))
    patient.record(VisitRecorded(doctor_id="dr-house", remark="another private remark"))
    patients.save(patient)
    assert store.load_snapshot(f"Patient-{who}") is None
    store.forget("dr-house")
    assert patients.load(who).state.last_remark == "<erased>"
    store.close()


# -- a placeholder changed since (compat ES112 says forgotten data reads as the new one) --


class _Seen(Event):
    where: str
    who: Annotated[str, Personal(erased="<erased>")]

    event_type: ClassVar[str] = "Seen"
    event_version: ClassVar[int] = 1


class _SeenNow(Event):
    where: str
    who: Annotated[str, Personal(erased="[deleted]")]

    event_type: ClassVar[str] = "Seen"
    event_version: ClassVar[int] = 1


class _Place(BaseModel):
    model_config = ConfigDict(frozen=True)
    street: Annotated[str, Personal(erased="<erased>")]


class _PlaceNow(BaseModel):
    model_config = ConfigDict(frozen=True)
    street: Annotated[str, Personal(erased="[deleted]")]


class _Moved(Event):
    to: _Place

    event_type: ClassVar[str] = "Moved"
    event_version: ClassVar[int] = 1


class _MovedNow(Event):
    to: _PlaceNow

    event_type: ClassVar[str] = "Moved"
    event_version: ClassVar[int] = 1


def test_a_forgotten_subject_reads_as_the_placeholder_declared_now(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "store.db", master_key=MasterKey(os.urandom(32)))
    seen = sealed_text(_Seen(where="Oslo", who="Ada"), store.keyring, "p1")
    moved = sealed_text(_Moved(to=_Place(street="1 Main St")), store.keyring, "p1")
    now = EventRegistry([_SeenNow, _MovedNow])
    assert now.decode("Seen", 1, seen, store.keyring) == _SeenNow(where="Oslo", who="Ada")
    store.forget("p1")
    assert now.decode("Seen", 1, seen, store.keyring) == _SeenNow(where="Oslo", who="[deleted]")
    assert now.decode("Moved", 1, moved, store.keyring) == _MovedNow(
        to=_PlaceNow(street="[deleted]")
    )
    before = EventRegistry([_Seen, _Moved])  # unchanged code reads what it stored
    assert before.decode("Seen", 1, seen, store.keyring) == _Seen(where="Oslo", who="<erased>")
    store.close()
