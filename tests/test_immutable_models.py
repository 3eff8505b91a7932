"""Generated models are immutable all the way down, and change only through typed `evolve`.

One schema with lists and maps everywhere (value types, nested collections, defaults,
events, commands, an aggregate state, a read model and a saga state) is generated once;
the tests use the generated package as users do: through the service on real stores,
and through mypy (and pyright, where installed) on code written against it.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner
from pydantic import Field, ValidationError

from esgen.cli import main
from esgen.runtime import (
    EventStore,
    ExpectedVersion,
    FrozenDict,
    NewEvent,
    SQLiteEventStore,
    ValueObject,
    state_fingerprint,
)

SCHEMA = """\
context: travel
types:
  Stop:
    fields:
      name: str
      minutes: {type: int, min: 0}
  Leg:
    fields:
      stops: "list[Stop]"
      tags: {type: "dict[str, int]", default: {}}
      notes: {type: "list[str]", default: [a, b]}
      grid: {type: "list[dict[str, list[int]]]", default: []}
      index: {type: "dict[str, list[Stop]]", default: {x: [{name: X, minutes: 1}]}}
  TripStatus:
    enum: [planned, done]
aggregates:
  Trip:
    id: {name: trip_id, type: uuid}
    state:
      legs: "list[Leg]"
      status: TripStatus
      budget: {type: decimal, min: 0}
      seats: {type: "dict[str, str]", default: {}}
      late: {type: "list[int]", optional: true}
    commands:
      PlanTrip:
        fields: {trip_id: uuid, legs: "list[Leg]", labels: "dict[str, str]"}
        emits: [TripPlanned]
      FinishTrip:
        fields: {trip_id: uuid}
        emits: [TripFinished]
    events:
      TripPlanned:
        versions:
          1: {fields: {trip_id: uuid, legs: "list[Leg]", labels: "dict[str, str]"}}
      TripFinished:
        versions:
          1: {fields: {trip_id: uuid}}
projections:
  Trips:
    consumes: [TripPlanned, TripFinished]
    key: trip_id
    fields:
      trip_id: uuid
      stops: "list[str]"
      counts: "dict[str, list[int]]"
      status: str
sagas:
  Tour:
    starts_with: TripPlanned
    correlation: trip_id
    handles: [TripFinished]
    sends: [FinishTrip]
    state:
      trip_id: uuid
      visited: {type: "list[str]", default: []}
      marks: {type: "dict[str, list[int]]", default: {}}
"""

DOMAIN = {
    "trip.py": """\
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ..aggregates.trip import TripBase, TripState
from ..commands.trip import FinishTrip, PlanTrip
from ..events.trip import TripFinished, TripPlanned
from ..types import TripStatus


class Trip(TripBase):
    def handle_plan_trip(self, command: PlanTrip) -> Sequence[TripPlanned]:
        return [TripPlanned(trip_id=command.trip_id, legs=command.legs, labels=command.labels)]

    def handle_finish_trip(self, command: FinishTrip) -> Sequence[TripFinished]:
        return [TripFinished(trip_id=command.trip_id)]

    def apply_trip_planned(self, event: TripPlanned) -> TripState:
        return TripState(
            legs=event.legs, status=TripStatus.PLANNED, budget=Decimal(0), seats=event.labels
        )

    def apply_trip_finished(self, event: TripFinished) -> TripState:
        seats = {**self.state.seats, "done": "yes"}
        return self.state.evolve(status=TripStatus.DONE, late=(1, 2), seats=seats)
""",
    "trips.py": """\
from __future__ import annotations

from esgen.runtime import RecordedEvent

from ..events.trip import TripFinished, TripPlanned
from ..projections.trips import TripsBase, TripsRow


class Trips(TripsBase):
    def on_trip_planned(self, event: TripPlanned, recorded: RecordedEvent) -> None:
        stops = tuple(stop.name for leg in event.legs for stop in leg.stops)
        counts = {leg.stops[0].name: (len(leg.stops),) for leg in event.legs}
        self.rows.put(
            TripsRow(trip_id=event.trip_id, stops=stops, counts=counts, status="planned")
        )

    def on_trip_finished(self, event: TripFinished, recorded: RecordedEvent) -> None:
        row = self.rows.get(event.trip_id)
        assert row is not None
        counts = {**row.counts, "end": (len(row.stops), 0)}
        self.rows.update(event.trip_id, status="done", stops=(*row.stops, "end"), counts=counts)
""",
    "tour.py": """\
from __future__ import annotations

from ..events.trip import TripFinished, TripPlanned
from ..sagas.tour import TourBase, TourState


class Tour(TourBase):
    def on_trip_planned(self, event: TripPlanned) -> None:
        self.state = TourState(trip_id=event.trip_id)

    def on_trip_finished(self, event: TripFinished) -> None:
        self.state = self.state.evolve(visited=("end",), marks={"end": (1,)})
        self.complete()
""",
}

TRIP = UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated source folder, its package importable as `travel`."""
    root = tmp_path_factory.mktemp("immutable")
    (root / "schemas").mkdir()
    (root / "schemas" / "travel.yaml").write_text(SCHEMA, encoding="utf-8")
    args = ["generate", str(root / "schemas"), "--out", str(root / "src"), "--tests",
            str(root / "tests")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for name, text in DOMAIN.items():
        (root / "src" / "travel" / "domain" / name).write_text(text, encoding="utf-8")
    sys.path.insert(0, str(root / "src"))
    try:
        yield root / "src"
    finally:
        sys.path.remove(str(root / "src"))
        for name in [m for m in sys.modules if m.split(".")[0] == "travel"]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def travel(generated: Path) -> SimpleNamespace:
    def load(name: str) -> ModuleType:
        return importlib.import_module(f"travel.{name}")

    return SimpleNamespace(
        types=load("types"),
        events=load("events.trip"),
        commands=load("commands.trip"),
        state=load("aggregates.trip").TripState,
        rows=load("projections.trips"),
        tour=load("sagas.tour"),
        service=load("service"),
    )


def _leg(t: SimpleNamespace) -> Any:
    stop = t.types.Stop(name="A", minutes=5)
    return t.types.Leg(stops=[stop], tags={"k": 1}, grid=[{"g": [1, 2]}])


# -- immutability ----------------------------------------------------------------------


def test_lists_are_tuples_and_maps_refuse_every_change(travel: SimpleNamespace) -> None:
    leg = _leg(travel)
    assert type(leg.stops) is tuple and type(leg.notes) is tuple
    assert type(leg.tags) is FrozenDict and type(leg.grid[0]) is FrozenDict
    assert type(leg.grid[0]["g"]) is tuple
    with pytest.raises(AttributeError):
        leg.stops.append(leg.stops[0])
    changes: list[Callable[[Any], object]] = [
        lambda m: m.__setitem__("k", 2),
        lambda m: m.__delitem__("k"),
        lambda m: m.update({"k": 2}),
        lambda m: m.setdefault("new", 1),
        lambda m: m.pop("k"),
        lambda m: m.popitem(),
        lambda m: m.clear(),
        lambda m: m.__ior__({"k": 2}),
    ]
    for change in changes:
        for mapping in (leg.tags, leg.grid[0]):
            with pytest.raises(TypeError, match="cannot be changed"):
                change(mapping)
    assert leg.tags == {"k": 1} and leg.grid[0] == {"g": (1, 2)}
    mutable = leg.tags.copy()  # a copy is a plain dict, to change and set again
    mutable["k"] = 2
    assert leg.evolve(tags=mutable).tags == {"k": 2} and leg.tags == {"k": 1}


def test_defaults_are_immutable_values(travel: SimpleNamespace) -> None:
    leg = travel.types.Leg(stops=())
    assert leg.notes == ("a", "b") and leg.grid == () and leg.tags == {}
    assert type(leg.tags) is FrozenDict and type(leg.index) is FrozenDict
    assert leg.index == {"x": (travel.types.Stop(name="X", minutes=1),)}
    state = travel.tour.TourState(trip_id=TRIP)
    assert state.visited == () and type(state.marks) is FrozenDict
    with pytest.raises(TypeError):
        state.marks["x"] = (1,)
    assert travel.tour.TourState(trip_id=TRIP).marks == {}


def test_frozen_models_hash_by_value_all_the_way_down(travel: SimpleNamespace) -> None:
    first, second = _leg(travel), _leg(travel)
    assert first == second and hash(first) == hash(second)
    assert hash(first) != hash(first.evolve(tags={"k": 2}))
    state = travel.state(legs=[first], status="planned", budget=Decimal(1), seats={"a": "1"})
    same = travel.state.model_validate_json(state.model_dump_json())
    assert hash(state) == hash(same)
    assert len({state, same, state.evolve(budget=Decimal(2))}) == 2
    row = travel.rows.TripsRow(trip_id=TRIP, stops=["A"], counts={"A": [1]}, status="x")
    event = travel.events.TripPlanned(trip_id=TRIP, legs=[first], labels={"a": "b"})
    assert hash(row) == hash(row.evolve()) and hash(event) == hash(event.model_copy())


def test_pickle_and_copies_round_trip(travel: SimpleNamespace) -> None:
    leg = _leg(travel)
    values = [
        leg,
        travel.state(legs=[leg], status="done", budget=Decimal(3), late=[1]),
        travel.rows.TripsRow(trip_id=TRIP, stops=["A"], counts={"A": [1]}, status="x"),
        travel.tour.TourState(trip_id=TRIP, visited=["A"], marks={"A": [2]}),
        travel.events.TripPlanned(trip_id=TRIP, legs=[leg], labels={"a": "b"}),
    ]
    for value in values:
        for twin in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
            assert twin == value and hash(twin) == hash(value)
    tags = pickle.loads(pickle.dumps(leg.tags))
    assert type(tags) is FrozenDict and tags == leg.tags
    assert copy.copy(leg.tags) is leg.tags


# -- the same JSON as before -------------------------------------------------------------


def _list_models() -> SimpleNamespace:
    """The models as esgen generated them before: plain lists and dicts, same names."""
    from enum import StrEnum

    class Stop(ValueObject):
        name: str
        minutes: int = Field(ge=0)

    class Leg(ValueObject):
        stops: list[Stop]
        tags: dict[str, int] = Field(default={})
        notes: list[str] = Field(default=["a", "b"])
        grid: list[dict[str, list[int]]] = Field(default=[])
        index: dict[str, list[Stop]] = Field(default={"x": [Stop(name="X", minutes=1)]})

    class TripStatus(StrEnum):
        PLANNED = "planned"
        DONE = "done"

    class TripState(ValueObject):
        legs: list[Leg]
        status: TripStatus
        budget: Decimal = Field(ge=0)
        seats: dict[str, str] = Field(default={})
        late: list[int] | None = None

    class TripPlanned(ValueObject):
        trip_id: UUID
        legs: list[Leg]
        labels: dict[str, str]

    return SimpleNamespace(Stop=Stop, Leg=Leg, TripState=TripState, TripPlanned=TripPlanned)


def test_json_and_the_state_fingerprint_are_those_of_lists_and_dicts(
    travel: SimpleNamespace,
) -> None:
    old = _list_models()
    data = {
        "legs": [
            {"stops": [{"name": "A", "minutes": 1}], "tags": {"b": 2, "a": 1}, "grid": [{"g": [3]}]}
        ],
        "status": "planned",
        "budget": "1.50",
        "seats": {"1A": "Ada"},
        "late": [4, 5],
    }  # fmt: skip
    new_state = travel.state.model_validate(data)
    old_state = old.TripState.model_validate(data)
    assert new_state.model_dump_json() == old_state.model_dump_json()
    assert new_state.model_dump(mode="json") == old_state.model_dump(mode="json")
    # Snapshots are keyed by the state's JSON schema: old snapshots stay usable.
    assert state_fingerprint(travel.state) == state_fingerprint(old.TripState)
    assert travel.types.Leg.model_json_schema() == old.Leg.model_json_schema()
    event = {"trip_id": str(TRIP), "legs": data["legs"], "labels": {"x": "y"}}
    assert (
        travel.events.TripPlanned.model_validate(event).model_dump_json()
        == old.TripPlanned.model_validate(event).model_dump_json()
    )


def test_events_stored_in_the_list_form_read_back(tmp_path: Path, travel: SimpleNamespace) -> None:
    old = _list_models()
    stored = old.TripPlanned(
        trip_id=TRIP,
        legs=[old.Leg(stops=[old.Stop(name="A", minutes=1)], grid=[{"g": [1]}])],
        labels={"1A": "Ada"},
    )
    store = SQLiteEventStore(tmp_path / "events.sqlite")
    store.append(
        f"Trip-{TRIP}",
        [NewEvent("TripPlanned", 1, stored.model_dump_json())],
        ExpectedVersion.NO_STREAM,
    )
    service = travel.service.TravelService(store)
    trip = service.trip_repository.load(TRIP)
    assert trip.state.legs == (
        travel.types.Leg(stops=[{"name": "A", "minutes": 1}], grid=[{"g": [1]}]),
    )
    assert type(trip.state.legs[0].grid[0]) is FrozenDict
    service.dispatch(travel.commands.FinishTrip(trip_id=TRIP))
    (planned, _) = [e.event for e in service.trip_repository.history(TRIP)]
    assert planned.model_dump_json() == stored.model_dump_json()
    state = service.trip_repository.load(TRIP).state
    assert (state.status, state.late, state.seats) == ("done", (1, 2), {"1A": "Ada", "done": "yes"})


# -- read models and saga state with collections, on real stores --------------------------


def _sqlite(tmp_path: Path) -> tuple[EventStore, Callable[[], list[tuple[Any, ...]]]]:
    path = tmp_path / "events.sqlite"

    def rows() -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT trip_id, stops, counts, status FROM trips").fetchall()

    return SQLiteEventStore(path), rows


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rows_with_collections_store_and_load(
    backend: str, tmp_path: Path, travel: SimpleNamespace
) -> None:
    if backend == "sqlite":
        store, rows = _sqlite(tmp_path)
        _run_projection(travel, store, rows)
        return
    from psycopg import sql
    from runtime.postgres_env import connect, drop_schema, new_schema, require_postgres

    from esgen.runtime import PostgresEventStore

    dsn = require_postgres()
    schema = new_schema()

    def pg_rows() -> list[tuple[Any, ...]]:
        with connect(dsn) as conn:
            query = sql.SQL("SELECT trip_id, stops, counts, status FROM {}.trips")
            return conn.execute(query.format(sql.Identifier(schema))).fetchall()

    try:
        with PostgresEventStore(dsn, schema=schema) as pg_store:
            _run_projection(travel, pg_store, pg_rows)
    finally:
        drop_schema(dsn, schema)


def _run_projection(
    travel: SimpleNamespace, store: EventStore, rows: Callable[[], list[tuple[Any, ...]]]
) -> None:
    service = travel.service.TravelService(store)
    stops = [travel.types.Stop(name="A", minutes=1), travel.types.Stop(name="B", minutes=2)]
    leg = travel.types.Leg(stops=stops)
    service.dispatch(travel.commands.PlanTrip(trip_id=TRIP, legs=[leg], labels={}))
    service.dispatch(travel.commands.FinishTrip(trip_id=TRIP))
    # One event a page: the second handler reads the row back from the table.
    assert service.projections(page_size=1).catch_up() == 2
    ((key, stored_stops, stored_counts, status),) = rows()

    def parsed(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    assert (str(key), status) == (str(TRIP), "done")
    assert parsed(stored_stops) == ["A", "B", "end"]
    assert parsed(stored_counts) == {"A": [2], "end": [2, 0]}


def test_saga_state_round_trips_through_its_json(travel: SimpleNamespace) -> None:
    state = travel.tour.TourState(trip_id=TRIP, visited=["A"], marks={"A": [1, 2]})
    text = state.model_dump_json(by_alias=True)
    assert json.loads(text) == {"trip_id": str(TRIP), "visited": ["A"], "marks": {"A": [1, 2]}}
    back = travel.tour.TourState.model_validate_json(text)
    assert back == state and type(back.marks) is FrozenDict and back.marks["A"] == (1, 2)


# -- evolve ------------------------------------------------------------------------------


def test_generated_evolve_refuses_invalid_values_naming_the_field(
    travel: SimpleNamespace,
) -> None:
    state = travel.state(legs=[], status="planned", budget=Decimal(1))
    assert state.evolve(status=travel.types.TripStatus.DONE).status == "done"
    for changes, loc in [
        ({"status": "bogus"}, ("status",)),
        ({"budget": Decimal(-1)}, ("budget",)),
        ({"legs": [{"stops": [{"name": "A", "minutes": -1}]}]}, ("legs", 0, "stops", 0, "minutes")),
        ({"statuz": "done"}, ("statuz",)),
    ]:  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            state.evolve(**changes)
        assert caught.value.title == "TripState"
        assert [e["loc"] for e in caught.value.errors()] == [loc]
    assert state.status == "planned"


# -- type checkers ---------------------------------------------------------------------

# Each line marked `# error` must be reported, and no other line.
USER_CODE = """\
from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from travel.aggregates.trip import TripState
from travel.projections.trips import TripsBase, TripsRow
from travel.sagas.tour import TourState
from travel.types import Leg, Stop, TripStatus


def ok(state: TripState, leg: Leg, row: TripsRow, tour: TourState, rows: TripsBase) -> None:
    state.evolve(status=TripStatus.DONE, budget=Decimal(1), seats={"1A": "Ada"})
    state.evolve(late=None)
    leg.evolve(tags={"a": 1}, stops=(Stop(name="x", minutes=1),), grid=({"g": (1,)},))
    row.evolve(counts={"a": (1, 2)})
    tour.evolve(visited=("a",))
    Leg(stops=(), tags={"a": 1})
    found: TripsRow | None = rows.rows.get(UUID(int=1))
    rows.rows.put(row)
    updated: TripsRow = rows.rows.update(UUID(int=1), status="x", counts={"a": (1,)})
    rows.rows.delete(UUID(int=1))
    print(found, updated, leg.tags["a"], state.legs[0])


def bad(state: TripState, leg: Leg, row: TripsRow, rows: TripsBase) -> None:
    state.evolve(statuz=TripStatus.DONE)  # error
    state.evolve(status="bogus")  # error
    state.evolve(budget="1")  # error
    leg.evolve(stops=[Stop(name="x", minutes=1)])  # error
    leg.stops.append(Stop(name="x", minutes=1))  # error
    leg.tags["x"] = 1  # error
    leg.tags.update({"x": 1})  # error
    row.evolve(status=1)  # error
    rows.rows.update("not a UUID", status="x")  # error
    rows.rows.update(UUID(int=1), statuz="x")  # error
    rows.rows.get("not a UUID")  # error
    Leg(stops=[Stop(name="x", minutes=1)])  # error
"""


def _expected_lines() -> set[int]:
    return {n for n, line in enumerate(USER_CODE.splitlines(), 1) if line.endswith("# error")}


def _reported(output: str, path: Path, pattern: str) -> set[int]:
    found = set()
    for line in output.splitlines():
        if match := re.match(pattern, line):
            assert Path(match["file"]).name == path.name, line  # nothing in generated code
            found.add(int(match["line"]))
    return found


def test_mypy_accepts_typed_changes_and_rejects_misspelt_fields_and_wrong_types(
    generated: Path, tmp_path: Path
) -> None:
    user = tmp_path / "user_code.py"
    user.write_text(USER_CODE, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", str(user), str(generated / "travel")],
        env={**os.environ, "MYPYPATH": str(generated)},
        cwd=tmp_path,  # plain mypy --strict: not this project's settings (pydantic's plugin)
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    pattern = r"(?P<file>[^:]+):(?P<line>\d+): error:"
    assert _reported(result.stdout, user, pattern) == _expected_lines(), (
        result.stdout + result.stderr
    )


PYRIGHT = shutil.which("pyright", path=str(Path(sys.executable).parent))


def test_pyright_strict_agrees(generated: Path, tmp_path: Path) -> None:
    # pyright comes with the dev group (`make test` installs it): missing, this fails.
    assert PYRIGHT is not None, "pyright is not installed: pip install --group dev"
    user = tmp_path / "user_code.py"
    user.write_text(USER_CODE, encoding="utf-8")
    settings = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "extraPaths": [str(generated)],
        "include": [str(user), str(generated / "travel" / "types.py"),
                    str(generated / "travel" / "aggregates"),
                    str(generated / "travel" / "projections"), str(generated / "travel" / "sagas")],
    }  # fmt: skip
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(settings), encoding="utf-8")
    result = subprocess.run(
        [PYRIGHT, "--pythonpath", sys.executable, "--project", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    pattern = r"\s*(?P<file>/[^:]+):(?P<line>\d+):\d+ - error:"
    assert _reported(result.stdout, user, pattern) == _expected_lines(), result.stdout


# -- FrozenDict itself -------------------------------------------------------------------


def test_frozen_dict_is_a_dict_for_reading_and_copies_to_plain_dicts() -> None:
    from pydantic import TypeAdapter

    frozen = FrozenDict({"b": 2, "a": 1})
    assert isinstance(frozen, dict) and frozen == {"a": 1, "b": 2}
    assert hash(frozen) == hash(FrozenDict({"a": 1, "b": 2}))  # order does not count
    assert repr(frozen) == "FrozenDict({'b': 2, 'a': 1})"
    for copied in (frozen.copy(), frozen | {"c": 3}, {"c": 3} | frozen, dict(frozen)):
        assert type(copied) is dict
    assert type(FrozenDict.fromkeys("ab", 0)) is FrozenDict
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(frozen, protocol=protocol))
        assert type(back) is FrozenDict and back == frozen
    with pytest.raises(TypeError, match="unhashable"):
        hash(FrozenDict({"a": [1]}))  # hashable only when its values are
    adapter = TypeAdapter(FrozenDict[str, int])
    assert type(adapter.validate_python({"a": "1"})) is FrozenDict
    assert adapter.validate_json('{"a": 1}') == {"a": 1}
    assert adapter.dump_json(frozen) == b'{"b":2,"a":1}'
    assert adapter.json_schema() == TypeAdapter(dict[str, int]).json_schema()
