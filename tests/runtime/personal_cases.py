"""Personal data in read-model rows, saga state and saga steps: the cases each backend runs.

`PersonalCases` is subclassed once per backend (`test_personal_rows_sqlite.py` for the
memory and SQLite stores, `test_personal_rows_postgres.py`), which says how to make a
store with a master key and how to read its database's raw bytes.

The events here hold no personal data: sealing events is the repository's part. The
handlers take each person's name and email from `DIRECTORY`, so what the rows, the saga
state and the commands a saga sent (its steps) hold is what is under test, and a raw scan
of the database finds a name only where one of those kept it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    Column,
    Command,
    Event,
    EventRegistry,
    EventStore,
    Field,
    KeyUnavailable,
    MasterKey,
    NewEvent,
    Personal,
    Projection,
    ProjectionNeedsRebuild,
    ProjectionRunner,
    RecordedEvent,
    Saga,
    SagaRunner,
    TableSpec,
    ValueObject,
)
from esgen.runtime._readmodel import ENVELOPE_COLUMN
from esgen.runtime._views import ReadModel

__all__ = ["DIRECTORY", "PersonalCases"]

ERASED = "<erased>"

# name, email: what the handlers know of each person (never in an event).
DIRECTORY = {
    "p1": ("Adelheid Quarterman", "adelheid.q@example.org"),
    "p2": ("Bartholomew Ingersoll", "bart.ingersoll@example.org"),
}


class PersonJoined(Event):
    event_type = "PersonJoined"
    event_version = 1
    person_id: str
    city: str


class PersonMoved(Event):
    event_type = "PersonMoved"
    event_version = 1
    person_id: str
    city: str


def joined(person: str, city: str) -> NewEvent:
    return NewEvent.from_event(PersonJoined(person_id=person, city=city))


def moved(person: str, city: str) -> NewEvent:
    return NewEvent.from_event(PersonMoved(person_id=person, city=city))


def registry() -> EventRegistry:
    return EventRegistry([PersonJoined, PersonMoved])


# -- the read model -----------------------------------------------------------------------


class PersonRow(ValueObject):
    """Its subject is its key (no `data_subject`)."""

    person_id: str
    city: str
    name: Annotated[str, Personal(erased=ERASED)]
    email: Annotated[str | None, Personal(erased=None)] = None


class PlainPersonRow(ValueObject):
    """The same row before its fields were marked personal."""

    person_id: str
    city: str
    name: str
    email: str | None = None


COLUMNS = (
    Column("person_id", "text"),
    Column("city", "text"),
    Column("name", "text"),
    Column("email", "text", nullable=True),
)
SPEC = TableSpec("people", key="person_id", columns=COLUMNS)


class PeopleFields:
    city = Field[PersonRow, str]("city")
    name = Field[PersonRow, str]("name")
    email = Field[PersonRow, str | None]("email")


class People(ReadModel[PersonRow, str]):
    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = PersonRow


class PeopleProjection(Projection[PersonRow]):
    name: ClassVar[str] = "people"
    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = PersonRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        PersonJoined: "on_joined",
        PersonMoved: "on_moved",
    }

    def on_joined(self, event: PersonJoined, recorded: RecordedEvent) -> None:
        name, email = DIRECTORY[event.person_id]
        self.rows.put(
            self.row_type.model_validate(
                {"person_id": event.person_id, "city": event.city, "name": name, "email": email}
            )  # type: ignore[arg-type]
        )

    def on_moved(self, event: PersonMoved, recorded: RecordedEvent) -> None:
        self.rows.update(event.person_id, city=event.city)


class PlainPeopleProjection(PeopleProjection):
    """The projection as it was before the row's fields were marked personal."""

    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = PlainPersonRow


# -- the saga -------------------------------------------------------------------------------


class WelcomeState(BaseModel):
    person_id: str
    name: Annotated[str, Personal(erased=ERASED)]
    email: Annotated[str | None, Personal(erased=None)] = None
    cities: list[str] = []

    data_subject: ClassVar[str] = "person_id"


class Welcome(Saga[WelcomeState, str]):
    """Follows a person from joining; keeps their name and the cities they lived in."""

    name = "Welcome"
    starts_with = PersonJoined
    correlation = "person_id"
    state_type = WelcomeState
    handlers: ClassVar[Mapping[type[Event], str]] = {
        PersonJoined: "on_joined",
        PersonMoved: "on_moved",
    }
    sends: ClassVar[frozenset[type[Command]]] = frozenset()

    def on_joined(self, event: PersonJoined) -> None:
        name, email = DIRECTORY[event.person_id]
        self.state = WelcomeState(
            person_id=event.person_id, name=name, email=email, cities=[event.city]
        )

    def on_moved(self, event: PersonMoved) -> None:
        state = self.state
        self.state = state.model_copy(update={"cities": [*state.cities, event.city]})


def no_commands(command: object) -> object:
    raise AssertionError(f"no command is sent: {command!r}")


# -- a saga whose steps hold personal data ------------------------------------------------


class SendWelcome(Command):
    """The classic copy: a saga puts what it knows of a person into a command."""

    command_type: ClassVar[str] = "SendWelcome"
    person_id: str
    name: Annotated[str, Personal(erased=ERASED)]
    email: Annotated[str | None, Personal(erased=None)] = None


class RetractWelcome(Command):
    command_type: ClassVar[str] = "RetractWelcome"
    person_id: str
    email: Annotated[str | None, Personal(erased=None)] = None


class GreetState(BaseModel):
    """No personal field of its own: it names the subject of the steps."""

    person_id: str
    cities: list[str] = []

    data_subject: ClassVar[str] = "person_id"


class Greet(Saga[GreetState, str]):
    """Welcomes a person who joins; one who moves away before it completes had the welcome
    retracted (the compensation, built from the step as stored)."""

    name = "Greet"
    starts_with = PersonJoined
    correlation = "person_id"
    state_type = GreetState
    handlers: ClassVar[Mapping[type[Event], str]] = {
        PersonJoined: "on_joined",
        PersonMoved: "on_moved",
    }
    sends: ClassVar[frozenset[type[Command]]] = frozenset({SendWelcome, RetractWelcome})
    compensations: ClassVar[Mapping[type[Command], str]] = {SendWelcome: "retract"}

    def on_joined(self, event: PersonJoined) -> None:
        self.state = GreetState(person_id=event.person_id, cities=[event.city])
        name, email = DIRECTORY[event.person_id]
        self.send(SendWelcome(person_id=event.person_id, name=name, email=email))

    def on_moved(self, event: PersonMoved) -> None:
        self.state = self.state.model_copy(update={"cities": [*self.state.cities, event.city]})
        self.fail(f"moved to {event.city}")

    def retract(self, sent: SendWelcome) -> RetractWelcome:
        return RetractWelcome(person_id=sent.person_id, email=sent.email)


class PersonalCases:
    """The cases; a subclass provides `make_store` and `raw`."""

    def make_store(self, tmp_path: Path, master_key: MasterKey | None) -> EventStore:
        raise NotImplementedError

    def raw(self, store: EventStore) -> bytes:
        """Every byte the store's database holds (None: a store with no bytes to scan)."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        store = self.make_store(tmp_path, MasterKey(os.urandom(32)))
        try:
            yield store
        finally:
            store.close()

    @staticmethod
    def people(store: EventStore) -> ProjectionRunner:
        store.append("Person-p1", [joined("p1", "Oslo")], 0)
        store.append("Person-p2", [joined("p2", "Lima")], 0)
        runner = ProjectionRunner(store, registry(), [PeopleProjection()])
        runner.catch_up()
        return runner

    def assert_no_plaintext(self, store: EventStore, *people: str) -> None:
        raw = self.raw(store)
        for person in people:
            for value in DIRECTORY[person]:
                assert value.encode() not in raw, f"{value!r} is in the database"

    # -- rows ------------------------------------------------------------------------

    def test_rows_read_back_then_as_placeholders_once_forgotten(self, store: EventStore) -> None:
        self.people(store)
        people = People(store)
        alice = PersonRow(
            person_id="p1", city="Oslo", name=DIRECTORY["p1"][0], email=DIRECTORY["p1"][1]
        )
        bart = PersonRow(
            person_id="p2", city="Lima", name=DIRECTORY["p2"][0], email=DIRECTORY["p2"][1]
        )
        assert people.get("p1") == alice
        assert people.list() == [alice, bart]
        assert people.list(PeopleFields.city.eq("Lima")) == [bart]

        assert store.forget("p1") is True
        erased = PersonRow(person_id="p1", city="Oslo", name=ERASED, email=None)
        assert people.get("p1") == erased
        assert people.list() == [erased, bart]
        assert people.count(PeopleFields.city.eq("Oslo")) == 1

    def test_the_database_holds_no_plaintext_of_a_row(self, store: EventStore) -> None:
        runner = self.people(store)
        # Never written as it is, forgotten or not.
        self.assert_no_plaintext(store, "p1", "p2")
        store.forget("p1")
        # A forgotten subject's row written again (a handler changing it) keeps the
        # placeholders; the other subject's row still reads back.
        store.append("Person-p1", [moved("p1", "Bergen")], 1)
        store.append("Person-p2", [moved("p2", "Cusco")], 1)
        runner.catch_up()
        self.assert_no_plaintext(store, "p1", "p2")
        people = People(store)
        assert people.get("p1") == PersonRow(person_id="p1", city="Bergen", name=ERASED, email=None)
        bart = people.get("p2")
        assert bart is not None and (bart.name, bart.city) == (DIRECTORY["p2"][0], "Cusco")

    def test_a_rebuild_after_a_forget_writes_the_placeholders(self, store: EventStore) -> None:
        runner = self.people(store)
        store.forget("p1")
        assert runner.rebuild("people") == 2  # a forgotten subject stops nothing
        people = People(store)
        assert people.get("p1") == PersonRow(person_id="p1", city="Oslo", name=ERASED)
        bart = people.get("p2")
        assert bart is not None and bart.email == DIRECTORY["p2"][1]
        self.assert_no_plaintext(store, "p2")

    def test_personal_columns_are_neither_filtered_nor_ordered_on(self, store: EventStore) -> None:
        self.people(store)
        people = People(store)
        F = PeopleFields
        with pytest.raises(ValueError, match=r"people\.name is personal data, stored sealed"):
            people.list(F.name.eq(DIRECTORY["p1"][0]))
        with pytest.raises(ValueError, match=r"people\.email is personal data"):
            people.count(F.email.is_null())
        with pytest.raises(ValueError, match=r"people\.name is personal data"):
            people.list(order_by=F.name.asc())
        with pytest.raises(ValueError, match="stored as JSON"):
            people.list(Field[PersonRow, Any](ENVELOPE_COLUMN).is_null())

    def test_a_row_type_that_gains_personal_fields_rebuilds_its_table(
        self, store: EventStore
    ) -> None:
        store.append("Person-p1", [joined("p1", "Oslo")], 0)
        ProjectionRunner(store, registry(), [PlainPeopleProjection()]).catch_up()
        assert PlainPeopleProjection.table.layout != PeopleProjection.table.layout
        runner = ProjectionRunner(store, registry(), [PeopleProjection()])
        assert runner.needing_rebuild() == ["people"]
        with pytest.raises(ProjectionNeedsRebuild):
            runner.catch_up()
        runner.rebuild("people")
        row = People(store).get("p1")
        assert row is not None and row.name == DIRECTORY["p1"][0]
        store.forget("p1")
        assert People(store).get("p1") == PersonRow(person_id="p1", city="Oslo", name=ERASED)

    def test_personal_rows_need_the_master_key(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path / "keyless", None)
        try:
            store.append("Person-p1", [joined("p1", "Oslo")], 0)
            runner = ProjectionRunner(store, registry(), [PeopleProjection()])
            with pytest.raises(KeyUnavailable, match="no master key"):
                runner.catch_up()
        finally:
            store.close()

    # -- saga state ------------------------------------------------------------------

    def test_saga_state_is_sealed_and_reads_as_placeholders_once_forgotten(
        self, store: EventStore
    ) -> None:
        runner = SagaRunner(Welcome, store, registry(), no_commands, start="beginning")
        store.append("Person-p1", [joined("p1", "Oslo")], 0)
        store.append("Person-p2", [joined("p2", "Lima")], 0)
        runner.catch_up()
        first = runner.instance("p1")
        assert first is not None
        assert (first.state.name, first.state.email) == DIRECTORY["p1"]
        self.assert_no_plaintext(store, "p1", "p2")

        store.forget("p1")
        store.append("Person-p1", [moved("p1", "Bergen")], 1)
        store.append("Person-p2", [moved("p2", "Cusco")], 1)
        runner.catch_up()  # the forgotten person's saga goes on, with the placeholders
        first = runner.instance("p1")
        assert first is not None and first.status == "running"
        assert first.state == WelcomeState(
            person_id="p1", name=ERASED, email=None, cities=["Oslo", "Bergen"]
        )
        second = runner.instance("p2")
        assert second is not None and second.state.cities == ["Lima", "Cusco"]
        assert (second.state.name, second.state.email) == DIRECTORY["p2"]
        self.assert_no_plaintext(store, "p1", "p2")

    # -- saga steps ------------------------------------------------------------------

    def test_saga_steps_are_sealed_and_compensate_with_placeholders_once_forgotten(
        self, store: EventStore
    ) -> None:
        sent: list[Command] = []
        runner = SagaRunner(Greet, store, registry(), sent.append, start="beginning")
        store.append("Person-p1", [joined("p1", "Oslo")], 0)
        store.append("Person-p2", [joined("p2", "Lima")], 0)
        runner.catch_up()
        welcome = {p: SendWelcome(person_id=p, name=n, email=e) for p, (n, e) in DIRECTORY.items()}
        assert sent == [welcome["p1"], welcome["p2"]]
        first = runner.instance("p1")
        assert first is not None and first.steps == [welcome["p1"]]  # read back, opened
        self.assert_no_plaintext(store, "p1", "p2")

        store.forget("p1")
        first = runner.instance("p1")
        erased = SendWelcome(person_id="p1", name=ERASED, email=None)
        assert first is not None and first.steps == [erased]

        # Both move away: each compensation is built from its step as stored.
        store.append("Person-p1", [moved("p1", "Bergen")], 1)
        store.append("Person-p2", [moved("p2", "Cusco")], 1)
        runner.catch_up()
        retracted = RetractWelcome(person_id="p1", email=None)
        kept = RetractWelcome(person_id="p2", email=DIRECTORY["p2"][1])
        assert sent[2:] == [retracted, kept]
        first = runner.instance("p1")
        assert first is not None and first.status == "failed"
        assert (first.steps, first.compensated) == ([erased], [retracted])
        second = runner.instance("p2")
        assert second is not None and second.status == "failed"
        assert (second.steps, second.compensated) == ([welcome["p2"]], [kept])
        self.assert_no_plaintext(store, "p1", "p2")
