"""Projections on SQLite: catch-up, live following, crashes, concurrent runners, rebuilds."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, Field, ValidationError

from esgen.runtime import (
    Column,
    Event,
    EventStore,
    ExpectedVersion,
    FrozenDict,
    FrozenMap,
    NewEvent,
    Projection,
    ProjectionNeedsRebuild,
    ProjectionRunner,
    RecordedEvent,
    Rows,
    SQLiteEventStore,
    TableSpec,
    ValueObject,
)
from esgen.runtime._readmodel import TableBackend
from esgen.runtime.testing._domain import (
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    make_registry,
)


class BalanceRow(ValueObject):
    account: str
    owner: str
    balance: int
    events: int = 0


class Balances(Projection[BalanceRow]):
    name: ClassVar[str] = "balances"
    table: ClassVar[TableSpec] = TableSpec(
        "balances",
        key="account",
        columns=(
            Column("account", "text"),
            Column("owner", "text"),
            Column("balance", "integer"),
            Column("events", "integer"),
        ),
    )
    row_type: ClassVar[type[BaseModel]] = BalanceRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_opened",
        MoneyDeposited: "on_deposited",
        MoneyWithdrawn: "on_withdrawn",
    }
    delay: float = 0.0

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        key = self.aggregate_id(recorded)
        self.rows.put(BalanceRow(account=key, owner=event.owner, balance=0, events=1))

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self._add(recorded, event.amount)

    def on_withdrawn(self, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._add(recorded, -event.amount)

    def _add(self, recorded: RecordedEvent, amount: int) -> None:
        if self.delay:
            time.sleep(self.delay)
        row = self.rows.get(self.aggregate_id(recorded))
        assert row is not None
        self.rows.put(
            row.model_copy(update={"balance": row.balance + amount, "events": row.events + 1})
        )


def fill(store: EventStore, accounts: int, deposits: int, start: int = 0) -> None:
    for n in range(start, start + accounts):
        events = [NewEvent.from_event(AccountOpened(owner=f"owner{n}", currency="EUR"))]
        events += [NewEvent.from_event(MoneyDeposited(amount=1)) for _ in range(deposits)]
        store.append(f"Account-{n}", events, ExpectedVersion.NO_STREAM)


def balances(path: Path) -> dict[str, tuple[int, int]]:
    """The read model as any SQL client sees it, through the `balances` view."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT account, balance, events FROM balances").fetchall()
    return {account: (balance, events) for account, balance, events in rows}


def test_catch_up_applies_every_event_once_and_keeps_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=30, deposits=10)
    runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=64)
    assert runner.catch_up() == 30 * 11
    assert balances(path) == {str(n): (10, 11) for n in range(30)}
    (status,) = runner.status()
    assert status.position == status.head == store.head_position() and status.behind == 0
    assert runner.catch_up() == 0  # nothing new: nothing applied again
    fill(store, accounts=2, deposits=3, start=30)
    assert runner.catch_up() == 8
    assert balances(path)["31"] == (3, 4)


def test_old_versions_reach_handlers_as_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    store.append("Account-old", [NewEvent("AccountOpened", 1, '{"owner": "Ada"}')], 0)
    ProjectionRunner(store, make_registry(), [Balances()]).catch_up()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT owner FROM balances").fetchall() == [("Ada",)]


def test_run_follows_new_events_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    runner = ProjectionRunner(store, make_registry(), [Balances()])
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        writer = SQLiteEventStore(path)
        fill(writer, accounts=3, deposits=2)
        deadline = time.monotonic() + 10
        while balances(path) != {str(n): (2, 3) for n in range(3)}:
            assert time.monotonic() < deadline, balances(path)
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


CRASHING_RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from test_runtime_projection import Balances
from esgen.runtime import ProjectionRunner, SQLiteEventStore
from esgen.runtime.testing._domain import make_registry
Balances.delay = 0.002
store = SQLiteEventStore({path!r})
runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=50)
print("started", flush=True)
runner.catch_up()
"""


def test_a_runner_killed_mid_page_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=20, deposits=30)
    code = CRASHING_RUNNER.format(tests=str(Path(__file__).parent), path=str(path))
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "started\n"
    time.sleep(0.6)  # some pages committed, one half-way through its handlers
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = balances(path)
    assert 0 < sum(events for _, events in partial.values()) < 20 * 31, "kill came too late"
    runner = ProjectionRunner(SQLiteEventStore(path), make_registry(), [Balances()])
    runner.catch_up()
    assert balances(path) == {str(n): (30, 31) for n in range(20)}


def test_two_runners_at_once_apply_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    fill(SQLiteEventStore(path), accounts=20, deposits=20)
    runners = [
        ProjectionRunner(SQLiteEventStore(path), make_registry(), [Balances()], page_size=25)
        for _ in range(2)
    ]
    threads = [threading.Thread(target=r.catch_up) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert balances(path) == {str(n): (20, 21) for n in range(20)}


def test_rebuild_replays_into_a_new_generation_while_the_old_one_serves(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=10, deposits=20)
    runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=20)
    runner.catch_up()
    live = balances(path)
    seen_during_rebuild: list[dict[str, tuple[int, int]]] = []

    def progress(name: str, position: int, head: int) -> None:
        # Readers keep the complete old read model while the new one fills.
        seen_during_rebuild.append(balances(path))

    assert runner.rebuild("balances", progress) == 10 * 21
    assert len(seen_during_rebuild) > 3
    assert all(view == live for view in seen_during_rebuild)
    assert balances(path) == live
    (status,) = runner.status()
    assert status.generation == 2 and status.behind == 0
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "balances__g2" in tables and "balances__g1" not in tables


def test_events_recorded_during_a_rebuild_are_in_the_rebuilt_model(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=5, deposits=10)
    runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=10)
    runner.catch_up()
    writer = SQLiteEventStore(path)
    pages = 0

    def progress(name: str, position: int, head: int) -> None:
        nonlocal pages
        pages += 1
        if pages == 2:  # another process writes while the rebuild runs
            fill(writer, accounts=1, deposits=4, start=5)

    runner.rebuild("balances", progress)
    assert balances(path)["5"] == (4, 5)
    assert runner.catch_up() == 0


class Interrupted(Exception):
    pass


def test_an_interrupted_rebuild_started_again_counts_every_event_once(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=6, deposits=10)
    runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=10)
    runner.catch_up()
    live = balances(path)

    def interrupt(name: str, position: int, head: int) -> None:
        if position > 20:
            raise Interrupted

    with contextlib.suppress(Interrupted):
        runner.rebuild("balances", interrupt)
    (status,) = runner.status()
    assert status.generation == 1 and status.rebuilding is not None
    assert status.rebuilding[0] == 2 and 0 < status.rebuilding[1] < status.head
    runner.rebuild("balances")
    assert balances(path) == live
    (status,) = runner.status()
    assert status.generation == 2 and status.rebuilding is None


class DatedRow(ValueObject):
    day: datetime
    count: int


class ByDay(Projection[DatedRow]):
    name: ClassVar[str] = "by_day"
    table: ClassVar[TableSpec] = TableSpec(
        "by_day", key="day", columns=(Column("day", "text"), Column("count", "integer"))
    )
    row_type: ClassVar[type[BaseModel]] = DatedRow
    handlers: ClassVar[Mapping[type[Event], str]] = {MoneyDeposited: "on_deposited"}

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        day = datetime(2026, 1, 1, tzinfo=UTC)  # every deposit on one day: one row
        row = self.rows.get(day)
        if row is None:
            self.rows.put(DatedRow(day=day, count=1))
        else:
            self.rows.update(day, count=row.count + 1)


def test_keys_of_any_type_find_their_row_whatever_the_page_size(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=3, deposits=3)
    ProjectionRunner(store, make_registry(), [ByDay()], page_size=2).catch_up()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT day, count FROM by_day").fetchall() == [
            ("2026-01-01T00:00:00Z", 9)
        ]


def test_a_changed_read_model_asks_for_a_rebuild_and_the_others_go_on(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=2, deposits=1)
    ProjectionRunner(store, make_registry(), [Balances(), ByDay()]).catch_up()

    class WiderRow(BalanceRow):
        note: str | None = None

    class WiderBalances(Balances):
        row_type: ClassVar[type[BaseModel]] = WiderRow

        def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
            key = self.aggregate_id(recorded)
            self.rows.put(WiderRow(account=key, owner=event.owner, balance=0, events=1))

        table: ClassVar[TableSpec] = TableSpec(
            "balances",
            key="account",
            columns=(*Balances.table.columns, Column("note", "text", nullable=True)),
        )

    fill(store, accounts=1, deposits=1, start=2)
    runner = ProjectionRunner(store, make_registry(), [WiderBalances(), ByDay()])
    assert runner.needing_rebuild() == ["balances"]
    assert [s.needs_rebuild for s in runner.status()] == [True, False]
    with pytest.raises(ProjectionNeedsRebuild, match="esgen projections rebuild balances"):
        runner.catch_up()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count FROM by_day").fetchall() == [(3,)]  # the other went on
    runner.rebuild("balances")
    assert runner.needing_rebuild() == []
    assert runner.catch_up() == 0


class Overdrawn(Exception):
    pass


class StrictBalances(Balances):
    def on_withdrawn(self, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        row = self.rows.get(self.aggregate_id(recorded))
        if row is not None and row.balance < event.amount:
            raise Overdrawn(f"{row.account} has {row.balance}")  # the line `where` names
        self._add(recorded, -event.amount)


def test_a_handler_s_error_is_recorded_with_the_line_of_the_user_s_code(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.sqlite")
    fill(store, accounts=2, deposits=1)
    store.append("Account-1", [NewEvent.from_event(MoneyWithdrawn(amount=5))], 2)
    runner = ProjectionRunner(store, make_registry(), [StrictBalances()])
    with pytest.raises(Overdrawn):
        runner.catch_up()
    (status,) = runner.status()
    assert status.problem is not None
    line = next(
        n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "the line `where` names" in text
    )  # fmt: skip
    where = status.problem.where
    assert where is not None and where.endswith(
        f"test_runtime_projection.py:{line} in on_withdrawn"
    )
    assert Path(where.partition(":")[0]).resolve() == Path(__file__).resolve()
    assert status.problem.describe() == (
        "Overdrawn: 1 has 1 (on MoneyWithdrawn v1 at position 5, version 3 of stream 'Account-1')"
    )


# -- typed rows: the update generated projections use, and rows with collections --------


class TripRow(ValueObject):
    account: str
    stops: tuple[str, ...] = ()
    counts: FrozenMap[str, tuple[int, ...]] = FrozenDict()
    from_: str = Field(default="", validation_alias="from", serialization_alias="from")


class TripRows(Rows[TripRow, str], row_type=TripRow):
    """What a generated projection declares: rows of one row type, keyed by str."""


class Trips(Projection[TripRow]):
    name: ClassVar[str] = "trips"
    table: ClassVar[TableSpec] = TableSpec(
        "trips",
        key="account",
        columns=(
            Column("account", "text"),
            Column("stops", "json"),
            Column("counts", "json"),
            Column("from", "text"),
        ),
    )
    row_type: ClassVar[type[BaseModel]] = TripRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_opened",
        MoneyDeposited: "on_deposited",
    }
    seen: ClassVar[list[type[object]]] = []

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        self.seen.append(type(self.rows))
        self.rows.put(TripRow(account=self.aggregate_id(recorded), from_=event.owner))

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        key = self.aggregate_id(recorded)
        row = TripRows.of(self.rows).get(key)
        assert row is not None and type(row.stops) is tuple and type(row.counts) is FrozenDict
        counts = {**row.counts, str(event.amount): (*row.counts.get(str(event.amount), ()), 1)}
        self.rows.update(key, stops=[*row.stops, f"+{event.amount}"], counts=counts)


def test_rows_with_tuples_and_frozen_maps_store_and_load(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    fill(store, accounts=2, deposits=3)
    # One event a page: each update reads its row back from the table.
    assert ProjectionRunner(store, make_registry(), [Trips()], page_size=1).catch_up() == 8
    assert set(Trips.seen) == {TripRows}  # what the runner builds is the typed subclass
    with sqlite3.connect(path) as conn:
        rows = conn.execute('SELECT account, stops, counts, "from" FROM trips').fetchall()
    assert sorted(rows) == [
        (str(n), '["+1","+1","+1"]', '{"1":[1,1,1]}', f"owner{n}") for n in range(2)
    ]


class _Table(TableBackend):
    """Rows kept in a dict, as the SQL backends keep them: JSON columns as text."""

    def __init__(self) -> None:
        self.stored: dict[Any, tuple[Any, ...]] = {}
        self.names = [c.name for c in Trips.table.columns]

    def select(self, key: Any) -> Mapping[str, Any] | None:
        values = self.stored.get(key)
        return None if values is None else dict(zip(self.names, values, strict=True))

    def select_all(self) -> Iterator[Mapping[str, Any]]:
        return (dict(zip(self.names, v, strict=True)) for v in self.stored.values())

    def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.stored.update((row[0], row) for row in rows)

    def delete(self, keys: Sequence[Any]) -> None:
        for key in keys:
            self.stored.pop(key, None)


def test_update_validates_only_the_changes_and_refuses_bad_values() -> None:
    rows = Rows(Trips.table, TripRow, _Table())
    assert type(rows) is TripRows
    rows.put(TripRow(account="a"))
    updated = rows.update("a", stops=["x"], counts={"k": [1]})
    assert updated.stops == ("x",) and updated.counts == {"k": (1,)}
    assert rows.get("a") is updated
    with pytest.raises(ValidationError) as caught:
        rows.update("a", counts={"k": ["not a number"]})
    assert caught.value.title == "TripRow"
    assert [e["loc"] for e in caught.value.errors()] == [("counts", "k", 0)]
    with pytest.raises(ValidationError, match="stopz"):
        rows.update("a", stopz=())
    assert rows.get("a") is updated  # nothing changed by a refused update
    with pytest.raises(KeyError, match="no row with account = 'b'"):
        rows.update("b", stops=())
    with pytest.raises(TypeError, match="keywords"):
        rows.update("a", ("x",))


def test_update_takes_a_field_by_attribute_or_by_column() -> None:
    rows = Rows(Trips.table, TripRow, _Table())
    rows.put(TripRow(account="a"))
    assert rows.update("a", from_="attribute").from_ == "attribute"
    assert rows.update("a", **{"from": "column"}).from_ == "column"


def test_rows_of_a_row_type_without_a_typed_class_stay_plain() -> None:
    class PlainRow(BaseModel):  # a hand-written row, not a ValueObject
        account: str
        total: int = 0

    spec = TableSpec("plain", key="account", columns=(Column("account", "text"),))
    rows: Rows[PlainRow] = Rows(spec, PlainRow, _Table())
    assert type(rows) is Rows
    rows.put(PlainRow(account="a"))
    assert rows.update("a", total="5").total == 5  # validated whole, as before
    with pytest.raises(ValidationError):
        rows.update("a", total="x")
    with pytest.raises(TypeError, match="TripRows expected, got Rows"):
        TripRows.of(rows)
