"""NaN and ±Infinity on every backend: refused by name before anything is written where a
float field does not allow them, and given back as themselves where it does (NanFloat).

JSON would hold them as null, which never decodes again: a stream, snapshot, saga or read
model with one would stop its readers for good.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from esgen.runtime import (
    Column,
    Event,
    EventRegistry,
    EventStore,
    NanFloat,
    NewEvent,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    Repository,
    Saga,
    SagaRunner,
    SnapshotStore,
    TableSpec,
    UnstorableValue,
    ValueObject,
)
from esgen.runtime.testing._domain import (
    Measured,
    MeasuredFreely,
    Sensor,
    SensorState,
    make_sensor_registry,
)
from esgen.runtime.testing._fixtures import StoreFixtures, active_rows

__all__ = ["FloatValuesContract"]

NON_FINITE = [math.nan, math.inf, -math.inf]


def _amplified(value: float) -> float:
    """Arithmetic in a handler that leaves the finite numbers: 10.0 -> inf, -10.0 -> -inf,
    0.0 -> NaN (inf - inf); 1e-308 -> about 1.0."""
    return value * 1e308 if value else math.inf - math.inf


# What each reading becomes through `_amplified`.
AMPLIFIED = [0.0, 10.0, -10.0]


class ReadingRow(ValueObject):
    sensor: str
    value: float = 0.0
    free: NanFloat = 0.0
    series: tuple[NanFloat, ...] = ()


class Readings(Projection[ReadingRow]):
    name: ClassVar[str] = "readings"
    table: ClassVar[TableSpec] = TableSpec(
        "readings",
        key="sensor",
        columns=(
            Column("sensor", "text"),
            Column("value", "real"),
            Column("free", "real"),
            Column("series", "json"),
        ),
    )
    row_type: ClassVar[type[BaseModel]] = ReadingRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        Measured: "on_measured",
        MeasuredFreely: "on_measured_freely",
    }

    def on_measured(self, event: Measured, recorded: RecordedEvent) -> None:
        # Unchecked (model_construct), as a handler trusting its arithmetic may build it.
        value = _amplified(event.value)
        self.rows.put(ReadingRow.model_construct(sensor=recorded.stream_id, value=value))

    def on_measured_freely(self, event: MeasuredFreely, recorded: RecordedEvent) -> None:
        row = ReadingRow(sensor=recorded.stream_id, free=event.value, series=event.history)
        self.rows.put(row)


class Sensed(Event):
    event_type = "Sensed"
    event_version = 1
    sensor: str
    value: float


class SensedFreely(Event):
    event_type = "SensedFreely"
    event_version = 1
    sensor: str
    value: NanFloat


class WatchState(BaseModel):
    # Written by hand with pydantic's defaults, which take NaN and would write it as null.
    threshold: float


class FreeWatchState(ValueObject):
    threshold: NanFloat


class Watch(Saga[WatchState]):
    name = "Watch"
    starts_with = Sensed
    correlation = "sensor"
    state_type = WatchState
    handlers: ClassVar[Mapping[type[Event], str]] = {Sensed: "on_sensed"}

    def on_sensed(self, event: Sensed) -> None:
        self.state = WatchState(threshold=_amplified(event.value))


class FreeWatch(Saga[FreeWatchState]):
    name = "FreeWatch"
    starts_with = SensedFreely
    correlation = "sensor"
    state_type = FreeWatchState
    handlers: ClassVar[Mapping[type[Event], str]] = {SensedFreely: "on_sensed"}

    def on_sensed(self, event: SensedFreely) -> None:
        self.state = FreeWatchState(threshold=event.value)


def _all_rows(store: EventStore) -> dict[str, ReadingRow]:
    rows: list[ReadingRow] = active_rows(store, Readings)
    return {row.sensor: row for row in rows}


def _saga_runner(saga: type[Saga[Any]], store: EventStore) -> SagaRunner[Any]:
    registry = EventRegistry([Sensed, SensedFreely])
    return SagaRunner(saga, store, registry, _no_commands, start="beginning")


def _no_commands(command: object) -> object:
    raise AssertionError(f"no saga here sends commands (got {command!r})")


class FloatValuesContract(StoreFixtures):
    """What every backend does with non-finite floats."""

    @pytest.fixture
    def sensors(self, store: EventStore) -> Repository[Sensor]:
        return Repository(Sensor, store, make_sensor_registry())

    # -- events ---------------------------------------------------------------------------

    @pytest.mark.parametrize("value", NON_FINITE)
    def test_a_non_finite_float_is_refused_when_the_event_is_made(self, value: float) -> None:
        with pytest.raises(ValidationError) as caught:
            Measured(value=value)
        assert caught.value.errors()[0]["loc"] == ("value",)
        assert caught.value.title == "Measured"

    @pytest.mark.parametrize("value", NON_FINITE)
    def test_a_non_finite_float_that_bypassed_validation_is_never_stored(
        self, sensors: Repository[Sensor], store: EventStore, value: float
    ) -> None:
        sensor = Sensor("s1")
        sensor.measure(1.5)
        sensors.save(sensor)
        sensor.record(Measured.model_construct(value=value))
        with pytest.raises(UnstorableValue, match=r"Measured\.value is ") as caught:
            sensors.save(sensor)
        assert (caught.value.model, caught.value.field) == ("Measured", "value")
        assert isinstance(caught.value, ValueError)
        assert store.stream_version("Sensor-s1") == 1
        with pytest.raises(UnstorableValue, match=r"Measured\.value"):
            NewEvent.from_event(Measured.model_construct(value=value))

    def test_evolve_refuses_a_non_finite_float_naming_the_field(self) -> None:
        state = SensorState()
        with pytest.raises(ValidationError) as caught:
            state._evolve({"last": math.nan})
        assert caught.value.errors()[0]["loc"] == ("last",)
        with pytest.raises(ValidationError):
            ReadingRow(sensor="s")._evolve({"value": math.inf})

    def test_allowed_non_finite_floats_round_trip(
        self, sensors: Repository[Sensor], store: EventStore
    ) -> None:
        sensor = Sensor("s1")
        sensor.measure_freely(math.nan, (math.inf, -math.inf, 2.5))
        sensor.measure_freely(-math.inf)
        sensors.save(sensor)
        loaded = sensors.load("s1")
        assert math.isinf(loaded.state.free) and loaded.state.free < 0
        sensor_events = [r.data for r in store.read_stream("Sensor-s1")]
        first = MeasuredFreely.model_validate_json(sensor_events[0])
        assert math.isnan(first.value)
        assert first.history == (math.inf, -math.inf, 2.5)

    # -- snapshots ------------------------------------------------------------------------

    @pytest.mark.parametrize("value", NON_FINITE)
    def test_a_state_with_a_non_finite_float_is_never_snapshotted(
        self, store: EventStore, snapshots: SnapshotStore, value: float
    ) -> None:
        sensors = Repository(Sensor, store, make_sensor_registry(), snapshot_every=1)
        sensor = Sensor("s1")
        sensor.measure(1.0)
        sensors.save(sensor)
        sensor.record(Measured(value=2.0))
        # The state as an apply method may leave it when it builds it unchecked.
        sensor._state = SensorState.model_construct(last=value)
        with pytest.raises(UnstorableValue, match=r"SensorState\.last"):
            sensors.save(sensor)
        assert store.stream_version("Sensor-s1") == 1
        snapshot = snapshots.load_snapshot("Sensor-s1")
        assert snapshot is not None and snapshot.version == 1

    def test_a_snapshot_with_allowed_non_finite_floats_loads_as_itself(
        self, store: EventStore, snapshots: SnapshotStore
    ) -> None:
        sensors = Repository(Sensor, store, make_sensor_registry(), snapshot_every=1)
        sensor = Sensor("s1")
        sensor.measure_freely(math.nan, (math.inf, -math.inf))
        sensors.save(sensor)
        snapshot = snapshots.load_snapshot("Sensor-s1")
        assert snapshot is not None
        state = SensorState.model_validate_json(snapshot.state)
        assert math.isnan(state.free) and state.history == (math.inf, -math.inf)
        loaded = sensors.load("s1")
        assert math.isnan(loaded.state.free)

    # -- saga state and read-model rows (stores that keep progress) ------------------------

    @staticmethod
    def _append(store: EventStore, stream: str, *events: Event) -> None:
        store.append(stream, [NewEvent.from_event(e) for e in events], 0)

    @pytest.mark.parametrize("value", AMPLIFIED)
    def test_a_row_with_a_non_finite_float_is_never_stored(
        self, progress: EventStore, value: float
    ) -> None:
        store = progress
        runner = ProjectionRunner(store, make_sensor_registry(), [Readings()])
        self._append(store, "s1", Measured(value=1e-308))
        assert runner.catch_up() == 1
        self._append(store, "s2", Measured(value=value))
        with pytest.raises(UnstorableValue, match=r"ReadingRow\.value is ") as caught:
            runner.catch_up()
        assert caught.value.field == "value"
        rows = _all_rows(store)
        assert set(rows) == {"s1"} and math.isfinite(rows["s1"].value)
        (status,) = runner.status()
        assert status.position == 1

    def test_rows_with_allowed_non_finite_floats_read_back_as_themselves(
        self, progress: EventStore
    ) -> None:
        store = progress
        runner = ProjectionRunner(store, make_sensor_registry(), [Readings()])
        self._append(store, "s1", MeasuredFreely(value=math.nan, history=(math.inf, -math.inf)))
        self._append(store, "s2", MeasuredFreely(value=-math.inf))
        self._append(store, "s3", MeasuredFreely(value=math.inf))
        assert runner.catch_up() == 3
        rows = _all_rows(store)
        assert math.isnan(rows["s1"].free) and rows["s1"].series == (math.inf, -math.inf)
        assert rows["s2"].free == -math.inf and rows["s3"].free == math.inf

    @pytest.mark.parametrize("value", AMPLIFIED)
    def test_a_saga_state_with_a_non_finite_float_is_never_stored(
        self, progress: EventStore, value: float
    ) -> None:
        store = progress
        runner = _saga_runner(Watch, store)
        self._append(store, "w1", Sensed(sensor="a", value=1e-308))
        runner.catch_up()
        self._append(store, "w2", Sensed(sensor="b", value=value))
        runner.catch_up()  # a state no store keeps stalls its own instance, and only it
        (stalled,) = runner.instances("stalled")
        assert stalled.problem is not None and stalled.problem.error.endswith("UnstorableValue")
        assert "WatchState.threshold is " in stalled.problem.message
        unstored = runner.instance("b")
        assert unstored is not None and unstored.state_or_none is None
        stored = runner.instance("a")
        assert stored is not None and math.isfinite(stored.state.threshold)

    def test_a_saga_state_with_allowed_non_finite_floats_reads_back(
        self, progress: EventStore
    ) -> None:
        store = progress
        runner = _saga_runner(FreeWatch, store)
        self._append(store, "w1", SensedFreely(sensor="a", value=math.nan))
        self._append(store, "w2", SensedFreely(sensor="b", value=-math.inf))
        runner.catch_up()
        a, b = runner.instance("a"), runner.instance("b")
        assert a is not None and math.isnan(a.state.threshold)
        assert b is not None and b.state.threshold == -math.inf
