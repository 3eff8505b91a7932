"""Personal data in read-model rows, saga state and steps on the SQLite and memory stores (the
cases in personal_cases.py), and what every backend refuses alike."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    AggregateDefinitionError,
    Column,
    Command,
    EventStore,
    Keyring,
    MasterKey,
    MemoryEventStore,
    Personal,
    PersonalDataError,
    Projection,
    SagaRunner,
    SQLiteEventStore,
    TableSpec,
    ValueObject,
)
from esgen.runtime._progress_store import progress_storage, saga_steps
from esgen.runtime._readmodel import ENVELOPE_COLUMN, personal_table

from .personal_cases import (
    COLUMNS,
    DIRECTORY,
    SPEC,
    Greet,
    GreetState,
    PeopleProjection,
    PersonalCases,
    PersonJoined,
    PersonRow,
    PlainPersonRow,
    SendWelcome,
    Welcome,
    WelcomeState,
    joined,
    no_commands,
    registry,
)


class TestSQLite(PersonalCases):
    def make_store(self, tmp_path: Path, master_key: MasterKey | None) -> EventStore:
        tmp_path.mkdir(parents=True, exist_ok=True)
        return SQLiteEventStore(tmp_path / "events.db", master_key=master_key)

    def raw(self, store: EventStore) -> bytes:
        path = Path(str(store._path))  # type: ignore[attr-defined]
        found = [path.with_name(path.name + tail) for tail in ("", "-wal", "-journal")]
        return b"".join(p.read_bytes() for p in found if p.exists())


class TestMemory(PersonalCases):
    def make_store(self, tmp_path: Path, master_key: MasterKey | None) -> EventStore:
        store = MemoryEventStore(master_key=master_key)
        if master_key is None:  # a memory store makes a key of its own unless told not to
            store.keyring = Keyring(None, store)
        return store

    def raw(self, store: EventStore) -> bytes:
        """Every str and bytes the store's objects reach: its database, in memory."""
        seen: set[int] = set()
        found: list[bytes] = []
        todo: list[Any] = [store]
        while todo:
            item = todo.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, str):
                found.append(item.encode())
            elif isinstance(item, bytes | bytearray):
                found.append(bytes(item))
            elif isinstance(item, dict):
                todo.extend(item.keys())
                todo.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                todo.extend(item)
            elif type(item).__module__.startswith("esgen."):
                todo.extend(getattr(item, "__dict__", {}).values())
                for name in getattr(type(item), "__slots__", ()):
                    todo.append(getattr(item, name, None))
        return b"\n".join(found)


def test_a_table_without_personal_columns_keeps_its_layout() -> None:
    # Rows with no personal fields: the table and its layout are as they always were.
    assert personal_table(SPEC, PlainPersonRow) is SPEC
    assert SPEC.layout == TableSpec("people", key="person_id", columns=COLUMNS).layout
    sealed = PeopleProjection.table
    assert sealed.personal == ("name", "email")
    assert sealed.columns[-1] == Column(ENVELOPE_COLUMN, "json", nullable=True)
    assert sealed.layout != SPEC.layout
    assert personal_table(sealed, PersonRow) is sealed


def test_the_key_cannot_be_personal() -> None:
    class Keyed(ValueObject):
        email: Annotated[str, Personal(erased="<erased>")]
        city: str

    spec = TableSpec(
        "keyed", key="email", columns=(Column("email", "text"), Column("city", "text"))
    )
    with pytest.raises(PersonalDataError, match="its key 'email' cannot be personal data"):

        class KeyedProjection(Projection[Keyed]):
            name: ClassVar[str] = "keyed"
            table: ClassVar[TableSpec] = spec
            row_type: ClassVar[type[BaseModel]] = Keyed


def test_a_row_field_cannot_take_the_envelope_column_name() -> None:
    class Clashing(ValueObject):
        key: str
        esgen_personal: Annotated[str, Personal(erased="")]

    spec = TableSpec(
        "clash", key="key", columns=(Column("key", "text"), Column(ENVELOPE_COLUMN, "text"))
    )
    with pytest.raises(PersonalDataError, match="no field can be named so"):
        personal_table(spec, Clashing)


def test_a_saga_state_with_personal_fields_names_its_subject(tmp_path: Path) -> None:
    class Nameless(BaseModel):
        person_id: str
        name: Annotated[str, Personal(erased="<erased>")]

    class Careless(Welcome):
        name = "Careless"
        state_type = Nameless

    store = SQLiteEventStore(tmp_path / "events.db", master_key=MasterKey(os.urandom(32)))
    try:
        with pytest.raises(
            AggregateDefinitionError, match="saga Careless: its state Nameless has personal fields"
        ):
            SagaRunner(Careless, store, registry(), no_commands)
        SagaRunner(Welcome, store, registry(), no_commands)  # WelcomeState names it
        assert WelcomeState.data_subject == "person_id"
    finally:
        store.close()


def test_a_saga_sending_personal_commands_names_its_subject(tmp_path: Path) -> None:
    class Anonymous(BaseModel):
        person_id: str
        cities: list[str] = []

    class Careless(Greet):
        name = "CarelessGreet"
        state_type = Anonymous

    class Misnamed(GreetState):
        data_subject: ClassVar[str] = "person"

    class Mistaken(Greet):
        name = "MistakenGreet"
        state_type = Misnamed

    store = MemoryEventStore()
    with pytest.raises(AggregateDefinitionError) as refused:
        SagaRunner(Careless, store, registry(), no_commands)
    message = str(refused.value)
    assert message.startswith("saga CarelessGreet: it sends commands with personal fields (")
    assert "SendWelcome: name, email" in message and "RetractWelcome: email" in message
    assert "its state Anonymous names none: set `data_subject: ClassVar[str]`" in message
    with pytest.raises(AggregateDefinitionError, match="names 'person', which is not a field"):
        SagaRunner(Mistaken, store, registry(), no_commands)
    SagaRunner(Greet, store, registry(), no_commands)  # GreetState names it


def test_personal_steps_need_a_state_to_name_their_subject() -> None:
    class Hasty(Greet):
        name = "Hasty"

        def on_joined(self, event: PersonJoined) -> None:
            name, email = DIRECTORY[event.person_id]
            self.send(SendWelcome(person_id=event.person_id, name=name, email=email))

    store = MemoryEventStore()
    sent: list[Command] = []
    runner = SagaRunner(Hasty, store, registry(), sent.append, start="beginning")
    store.append("Person-p1", [joined("p1", "Oslo")], 0)
    runner.catch_up()
    [stalled] = runner.instances("stalled")
    assert stalled.problem is not None
    assert "SendWelcome, a step of saga Hasty, holds personal data, but the instance has no " \
        "state yet" in stalled.problem.message  # fmt: skip


def test_steps_without_personal_fields_are_stored_as_before() -> None:
    class Ping(Command):
        command_type: ClassVar[str] = "Ping"
        person_id: str

    class Pinger(Welcome):
        name = "Pinger"
        sends: ClassVar[frozenset[type[Command]]] = frozenset({Ping})

        def on_joined(self, event: PersonJoined) -> None:
            super().on_joined(event)
            self.send(Ping(person_id=event.person_id))

    store = MemoryEventStore()
    runner = SagaRunner(Pinger, store, registry(), lambda command: None, start="beginning")
    store.append("Person-p1", [joined("p1", "Oslo")], 0)
    runner.catch_up()
    with progress_storage(store).unit() as unit:
        record = unit.saga("Pinger", "p1")
    assert record is not None and record.steps == saga_steps([Ping(person_id="p1")], [])
    assert json.loads(record.steps) == {"sent": [["Ping", '{"person_id":"p1"}']], "compensated": []}
