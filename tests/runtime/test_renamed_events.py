"""Renamed event types on real stores: events written under the old names, by the old
schema's generated code and by a release in between, read back through the renamed
schema's generated code as the new classes, in aggregates, projections and sagas.

Both schemas are generated here, as two contexts (`shipping_v1` before the renames,
`shipping_v2` after): stored events carry only their type name, never the context, so the
two packages share one store the way two releases of one service do.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from psycopg import sql

from esgen.cli import main
from esgen.runtime import (
    EventRegistry,
    EventStore,
    ExpectedVersion,
    NewEvent,
    PostgresEventStore,
    RegistryError,
    SQLiteEventStore,
    UnknownEventType,
)

from .postgres_env import connect, drop_schema, new_schema, require_postgres

BEFORE = """\
context: shipping_v1
aggregates:
  Cargo:
    id: {type: str}
    state: {origin: str, voyages: "list[str]"}
    commands:
      BookCargo: {fields: {origin: str}, emits: [CargoCreated]}
      LoadCargo: {fields: {voyage: str}, emits: [CargoShipped]}
    events:
      CargoCreated:
        versions:
          1: {fields: {cargo_id: str, origin: str}}
      CargoShipped:
        versions:
          1: {fields: {cargo_id: str, voyage: str}}
"""

# CargoCreated was renamed CargoRegistered in a release in between (which also added
# version 2), and is CargoBooked now: both former names are listed.
AFTER = """\
context: shipping_v2
aggregates:
  Cargo:
    id: {type: str}
    snapshot_every: 2
    state: {origin: str, destination: str, voyages: "list[str]", claimed: bool}
    commands:
      BookCargo: {fields: {origin: str, destination: str}, emits: [CargoBooked]}
      LoadCargo: {fields: {voyage: str}, emits: [CargoLoaded]}
      ClaimCargo: {emits: [CargoClaimed]}
    events:
      CargoBooked:
        renamed_from: [CargoRegistered, CargoCreated]
        versions:
          1: {fields: {cargo_id: str, origin: str}}
          2: {fields: {cargo_id: str, origin: str, destination: {type: str, default: unknown}}}
      CargoLoaded:
        renamed_from: CargoShipped
        versions:
          1: {fields: {cargo_id: str, voyage: str}}
      CargoClaimed:
        versions:
          1: {fields: {cargo_id: str}}
projections:
  CargoList:
    consumes: [CargoBooked, CargoLoaded]
    key: cargo_id
    fields: {cargo_id: str, origin: str, destination: str, loads: int}
sagas:
  Delivery:
    starts_with: CargoBooked
    correlation: cargo_id
    handles: [CargoLoaded]
    sends: [ClaimCargo]
"""

# The user-owned modules esgen scaffolds, written as a user would.
BEFORE_DOMAIN = {
    "cargo.py": """\
from __future__ import annotations

from collections.abc import Sequence

from ..aggregates.cargo import CargoBase, CargoState
from ..commands.cargo import BookCargo, LoadCargo
from ..events.cargo import CargoCreated, CargoShipped


class Cargo(CargoBase):
    def handle_book_cargo(self, command: BookCargo) -> Sequence[CargoCreated]:
        return [CargoCreated(cargo_id=command.cargo_id, origin=command.origin)]

    def handle_load_cargo(self, command: LoadCargo) -> Sequence[CargoShipped]:
        return [CargoShipped(cargo_id=command.cargo_id, voyage=command.voyage)]

    def apply_cargo_created(self, event: CargoCreated) -> CargoState:
        return CargoState(origin=event.origin, voyages=())

    def apply_cargo_shipped(self, event: CargoShipped) -> CargoState:
        return self.state.evolve(voyages=(*self.state.voyages, event.voyage))
""",
}

AFTER_DOMAIN = {
    "cargo.py": """\
from __future__ import annotations

from collections.abc import Sequence

from ..aggregates.cargo import CargoBase, CargoState
from ..commands.cargo import BookCargo, ClaimCargo, LoadCargo
from ..events.cargo import CargoBooked, CargoClaimed, CargoLoaded


class Cargo(CargoBase):
    def handle_book_cargo(self, command: BookCargo) -> Sequence[CargoBooked]:
        return [
            CargoBooked(
                cargo_id=command.cargo_id,
                origin=command.origin,
                destination=command.destination,
            )
        ]

    def handle_load_cargo(self, command: LoadCargo) -> Sequence[CargoLoaded]:
        return [CargoLoaded(cargo_id=command.cargo_id, voyage=command.voyage)]

    def handle_claim_cargo(self, command: ClaimCargo) -> Sequence[CargoClaimed]:
        return [CargoClaimed(cargo_id=command.cargo_id)]

    def apply_cargo_booked(self, event: CargoBooked) -> CargoState:
        return CargoState(
            origin=event.origin, destination=event.destination, voyages=(), claimed=False
        )

    def apply_cargo_loaded(self, event: CargoLoaded) -> CargoState:
        return self.state.evolve(voyages=(*self.state.voyages, event.voyage))

    def apply_cargo_claimed(self, event: CargoClaimed) -> CargoState:
        return self.state.evolve(claimed=True)
""",
    "cargo_list.py": """\
from __future__ import annotations

from esgen.runtime import RecordedEvent

from ..events.cargo import CargoBooked, CargoLoaded
from ..projections.cargo_list import CargoListBase, CargoListRow


class CargoList(CargoListBase):
    def on_cargo_booked(self, event: CargoBooked, recorded: RecordedEvent) -> None:
        self.rows.put(
            CargoListRow(
                cargo_id=event.cargo_id,
                origin=event.origin,
                destination=event.destination,
                loads=0,
            )
        )

    def on_cargo_loaded(self, event: CargoLoaded, recorded: RecordedEvent) -> None:
        row = self.rows.get(event.cargo_id)
        assert row is not None
        self.rows.update(event.cargo_id, loads=row.loads + 1)
""",
    "delivery.py": """\
from __future__ import annotations

from ..commands.cargo import ClaimCargo
from ..events.cargo import CargoBooked, CargoLoaded
from ..sagas.delivery import DeliveryBase, DeliveryState


class Delivery(DeliveryBase):
    def on_cargo_booked(self, event: CargoBooked) -> None:
        self.state = DeliveryState()

    def on_cargo_loaded(self, event: CargoLoaded) -> None:
        self.send_claim_cargo(ClaimCargo(cargo_id=event.cargo_id))
        self.complete()
""",
}


def _generate(root: Path, schema: str, domain: dict[str, str]) -> str:
    (root / "schemas").mkdir(parents=True)
    (root / "schemas" / "shipping.yaml").write_text(schema, encoding="utf-8")
    args = ["generate", str(root / "schemas"), "--out", str(root / "src"), "--tests",
            str(root / "tests")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    package = schema.split("\n", 1)[0].removeprefix("context: ")
    for name, text in domain.items():
        (root / "src" / package / "domain" / name).write_text(text, encoding="utf-8")
    return package


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The generated services of both schemas: (before the renames, after them)."""
    root = tmp_path_factory.mktemp("renamed")
    before = _generate(root / "before", BEFORE, BEFORE_DOMAIN)
    after = _generate(root / "after", AFTER, AFTER_DOMAIN)
    paths = [str(root / "before" / "src"), str(root / "after" / "src")]
    sys.path[:0] = paths
    try:
        yield (
            importlib.import_module(f"{before}.service"),
            importlib.import_module(f"{after}.service"),
        )
    finally:
        for path in paths:
            sys.path.remove(path)
        for name in [m for m in sys.modules if m.split(".")[0] in (before, after)]:
            del sys.modules[name]


StoreAndView = tuple[EventStore, Callable[[], dict[str, tuple[str, str, int]]]]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreAndView]:
    """A real store and the projection's rows as an SQL client reads them."""
    if request.param == "sqlite":
        path = tmp_path / "events.db"
        sqlite_store = SQLiteEventStore(path)

        def sqlite_rows() -> dict[str, tuple[str, str, int]]:
            with sqlite3.connect(path) as conn:
                found = conn.execute("SELECT cargo_id, origin, destination, loads FROM cargo_list")
                return {r[0]: (r[1], r[2], r[3]) for r in found.fetchall()}

        yield sqlite_store, sqlite_rows
        sqlite_store.close()
        return
    dsn = require_postgres()
    schema = new_schema()
    postgres_store = PostgresEventStore(dsn, schema=schema)

    def postgres_rows() -> dict[str, tuple[str, str, int]]:
        query = sql.SQL("SELECT cargo_id, origin, destination, loads FROM {}.cargo_list")
        with connect(dsn) as conn:
            found = conn.execute(query.format(sql.Identifier(schema))).fetchall()
        return {str(r[0]): (str(r[1]), str(r[2]), int(str(r[3]))) for r in found}

    try:
        yield postgres_store, postgres_rows
    finally:
        postgres_store.close()
        drop_schema(dsn, schema)


def _history(store: EventStore, stream: str) -> list[tuple[str, int]]:
    return [(r.event_type, r.event_version) for r in store.read_stream(stream)]


def test_events_stored_under_former_names_read_as_the_renamed_types(
    releases: tuple[ModuleType, ModuleType], store: StoreAndView
) -> None:
    old, new = releases
    events, read_model = store
    v1 = old.ShippingV1Service(events)
    v1_cargo = importlib.import_module("shipping_v1.commands.cargo")
    v1.dispatch(v1_cargo.BookCargo(cargo_id="c1", origin="Oslo"))
    v1.dispatch(v1_cargo.LoadCargo(cargo_id="c1", voyage="V100"))
    # What the release in between wrote: CargoRegistered, at versions 1 and 2.
    registered = {"cargo_id": "c2", "origin": "Rome", "destination": "Lima"}
    events.append(
        "Cargo-c2",
        [NewEvent("CargoRegistered", 2, json.dumps(registered), {}),
         NewEvent("CargoShipped", 1, json.dumps({"cargo_id": "c2", "voyage": "V7"}), {})],
        ExpectedVersion.NO_STREAM,
    )  # fmt: skip
    registered_v1 = {"cargo_id": "c3", "origin": "Kobe"}
    events.append(
        "Cargo-c3",
        [NewEvent("CargoRegistered", 1, json.dumps(registered_v1), {})],
        ExpectedVersion.NO_STREAM,
    )

    v2 = new.ShippingV2Service(events)
    v2_events = importlib.import_module("shipping_v2.events.cargo")
    v2_cargo = importlib.import_module("shipping_v2.commands.cargo")

    # Aggregates: every former name, at every version, is the renamed class, upcast.
    history = v2.cargo_repository.history("c1")
    assert [type(e.event) for e in history] == [v2_events.CargoBooked, v2_events.CargoLoaded]
    assert [e.recorded.stream_version for e in history] == [1, 2]
    assert history[0].event == v2_events.CargoBooked(
        cargo_id="c1", origin="Oslo", destination="unknown"
    )
    c1 = v2.cargo_repository.load("c1")
    assert (c1.version, c1.state.destination, c1.state.voyages) == (2, "unknown", ("V100",))
    c2 = v2.cargo_repository.load("c2")
    assert (c2.version, c2.state.origin, c2.state.destination) == (2, "Rome", "Lima")
    c3 = v2.cargo_repository.load("c3")
    assert (c3.version, c3.state.origin, c3.state.destination) == (1, "Kobe", "unknown")

    # New events are written under the new name, after the old ones, in the same stream;
    # the aggregate snapshots every 2 events, and the snapshot reads back too.
    v2.dispatch(v2_cargo.LoadCargo(cargo_id="c1", voyage="V200"))
    assert _history(events, "Cargo-c1") == [
        ("CargoCreated", 1),
        ("CargoShipped", 1),
        ("CargoLoaded", 1),
    ]
    assert v2.cargo_repository.load("c1").state.voyages == ("V100", "V200")

    # A projection built from the first event sees the old rows under the new names.
    assert v2.projections().catch_up() == 6
    assert read_model() == {
        "c1": ("Oslo", "unknown", 2),
        "c2": ("Rome", "Lima", 1),
        "c3": ("Kobe", "unknown", 0),
    }

    # A saga that starts with a renamed event and handles another: each loaded cargo
    # started an instance (from CargoCreated or CargoRegistered) and got its claim.
    (delivery,) = v2.sagas(start="beginning")
    delivery.catch_up()
    assert _history(events, "Cargo-c2")[-1] == ("CargoClaimed", 1)
    assert v2.cargo_repository.load("c1").state.claimed
    assert v2.cargo_repository.load("c2").state.claimed
    assert not v2.cargo_repository.load("c3").state.claimed
    assert delivery.instance("c1") is not None
    assert delivery.instance("c3") is not None  # started, waiting for a load


def test_the_generated_registry_reads_former_names(
    releases: tuple[ModuleType, ModuleType],
) -> None:
    registry: EventRegistry = importlib.import_module("shipping_v2.registry").REGISTRY
    assert dict(registry.renamed) == {
        "CargoCreated": "CargoBooked",
        "CargoRegistered": "CargoBooked",
        "CargoShipped": "CargoLoaded",
    }
    assert registry.event_types == {"CargoBooked", "CargoLoaded", "CargoClaimed"}
    assert "CargoCreated" not in registry  # only current types can be written
    booked = registry.decode("CargoCreated", 1, '{"cargo_id": "c9", "origin": "Oslo"}')
    assert type(booked).__name__ == "CargoBooked"
    assert booked.event_type == "CargoBooked"
    assert booked.event_version == 2


def _registry() -> EventRegistry:
    from esgen.runtime.testing._domain import make_registry

    return make_registry()


def test_a_rename_is_refused_when_it_would_give_a_stored_name_two_readers() -> None:
    registry = _registry()
    registry.register_rename("AccountCreated", "AccountOpened")
    registry.register_rename("AccountCreated", "AccountOpened")  # the same again is fine
    cases: list[tuple[tuple[str, str], str]] = [
        (("AccountCreated", "MoneyDeposited"), "already read as 'AccountOpened'"),
        (("MoneyDeposited", "AccountOpened"), "itself a registered event type"),
        (("AccountOpened", "AccountOpened"), "cannot be renamed from itself"),
        (("Older", "AccountCreated"), "itself a former name of 'AccountOpened'"),
        (("AccountOpened", "Newer"), "itself a registered event type"),
        (("", "AccountOpened"), "must be a non-empty str"),
    ]
    for (old, new), message in cases:
        with pytest.raises(RegistryError, match=message):
            registry.register_rename(old, new)
    chained = _registry()
    chained.register_rename("Older", "Middle")
    with pytest.raises(RegistryError, match="register each former name with the current"):
        chained.register_rename("Middle", "AccountOpened")


def test_a_class_cannot_take_a_name_whose_stored_events_another_type_reads() -> None:
    registry = _registry()
    registry.register_rename("AccountCreated", "AccountOpened")

    from esgen.runtime import Event

    class AccountCreated(Event):
        event_type = "AccountCreated"
        event_version = 1

    with pytest.raises(RegistryError, match="former name of 'AccountOpened'"):
        registry.register(AccountCreated)


def test_check_names_a_rename_to_a_type_with_no_class() -> None:
    registry = _registry()
    registry.register_rename("Gone", "Nowhere")
    with pytest.raises(RegistryError, match="'Gone': renamed to 'Nowhere', which has no"):
        registry.check()
    with pytest.raises(UnknownEventType, match="stored events of 'Gone' are read as that"):
        registry.decode("Gone", 1, "{}")


def test_errors_name_the_stored_name_and_the_type_it_is_read_as() -> None:
    registry = _registry()
    registry.register_rename("AccountCreated", "AccountOpened")
    with pytest.raises(Exception, match="'AccountOpened' \\(stored as its former name "):
        registry.decode("AccountCreated", 3, "{}")
    assert "AccountCreated -> AccountOpened" in repr(registry)


def _handlers(registry: EventRegistry, table: dict[str, Any]) -> dict[str, Any]:
    return dict(registry.by_stored_type(table))


def test_tables_keyed_by_type_reach_events_stored_under_former_names() -> None:
    registry = _registry()
    table = {"AccountOpened": "on_opened"}
    assert registry.by_stored_type(table) is table  # nothing renamed: no copy per page
    registry.register_rename("AccountCreated", "AccountOpened")
    registry.register_rename("CashIn", "MoneyDeposited")
    assert _handlers(registry, table) == {
        "AccountOpened": "on_opened",
        "AccountCreated": "on_opened",
    }
    assert registry.current_type("AccountCreated") == "AccountOpened"
    assert registry.current_type("MoneyDeposited") == "MoneyDeposited"
