"""Projections on every backend that keeps read models: the runner's guarantees (each
event applied once, a failed page leaves nothing but its recorded problem, rebuilds behind
a live generation that continue where an interrupted one stopped when run by the same code,
layout changes refused), what `status()` reports (lag, the live generation's and the
rebuild's problems, apart) and reading the read model through `ReadModel`
outside handlers and `Rows.list/count` inside them. Written against the ports and the
public API only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    BackendError,
    Column,
    Event,
    EventStore,
    ExpectedVersion,
    Field,
    NewEvent,
    Projection,
    ProjectionNeedsRebuild,
    ProjectionRunner,
    ReadModel,
    ReadModelNotFound,
    RebuildStart,
    RecordedEvent,
    TableSpec,
    TransactionalStore,
    ValueObject,
)
from esgen.runtime.testing._clock import ManualClock
from esgen.runtime.testing._domain import (
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    make_registry,
)
from esgen.runtime.testing._fixtures import StoreFixtures

__all__ = ["ProjectionContract"]


class TallyRow(ValueObject):
    account: str
    owner: str
    balance: int
    events: int = 0


TALLY_TABLE = TableSpec(
    "tallies",
    key="account",
    columns=(
        Column("account", "text"),
        Column("owner", "text"),
        Column("balance", "integer"),
        Column("events", "integer"),
    ),
)


class Broken(Exception):
    """What a handler raises on purpose, half-way through a page."""


class Tallies(Projection[TallyRow]):
    name: ClassVar[str] = "tallies"
    table: ClassVar[TableSpec] = TALLY_TABLE
    row_type: ClassVar[type[BaseModel]] = TallyRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_opened",
        MoneyDeposited: "on_deposited",
        MoneyWithdrawn: "on_withdrawn",
    }

    def __init__(
        self, *, factor: int = 1, fail_on: int | None = None, interrupt_on: int | None = None
    ) -> None:
        super().__init__()
        self.factor = factor
        self.fail_on = fail_on
        """A deposit of this amount makes the handler fail, after the page's rows reached
        the table (`count` flushes them), as a bug half-way through a page would."""
        self.interrupt_on = interrupt_on
        """A deposit of this amount raises KeyboardInterrupt, as Ctrl-C in a handler does."""

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        key = self.aggregate_id(recorded)
        self.rows.put(TallyRow(account=key, owner=event.owner, balance=0, events=1))

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        if event.amount == self.fail_on:
            assert self.rows.count() > 0  # the page's rows are in the table now
            raise Broken(f"deposit of {event.amount}")
        if event.amount == self.interrupt_on:
            raise KeyboardInterrupt
        self._add(recorded, event.amount * self.factor)

    def on_withdrawn(self, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._add(recorded, -event.amount * self.factor)

    def _add(self, recorded: RecordedEvent, amount: int) -> None:
        row = self.rows.get(self.aggregate_id(recorded))
        assert row is not None
        self.rows.update(row.account, balance=row.balance + amount, events=row.events + 1)


class TallyFields:
    account: ClassVar[Field[TallyRow, str]] = Field("account")
    owner: ClassVar[Field[TallyRow, str]] = Field("owner")
    balance: ClassVar[Field[TallyRow, int]] = Field("balance")
    events: ClassVar[Field[TallyRow, int]] = Field("events")


class TallyQuery(ReadModel[TallyRow, str]):
    table: ClassVar[TableSpec] = TALLY_TABLE
    row_type: ClassVar[type[BaseModel]] = TallyRow


# The same read model with one more field: its stored table must be rebuilt first.
class WiderTallyRow(TallyRow):
    note: str | None = None


WIDER_TABLE = TableSpec(
    "tallies",
    key="account",
    columns=(*TALLY_TABLE.columns, Column("note", "text", nullable=True)),
)


class WiderTallies(Tallies):
    table: ClassVar[TableSpec] = WIDER_TABLE
    row_type: ClassVar[type[BaseModel]] = WiderTallyRow

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        key = self.aggregate_id(recorded)
        self.rows.put(
            WiderTallyRow(account=key, owner=event.owner, balance=0, events=1, note="wide")
        )


class RevisedTallies(Tallies):
    """Tallies as changed after a rebuild was interrupted: the same read model, filled by
    other code (deposits count twice)."""

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self._add(recorded, event.amount * 2)


class WiderTallyQuery(ReadModel[WiderTallyRow, str]):
    table: ClassVar[TableSpec] = WIDER_TABLE
    row_type: ClassVar[type[BaseModel]] = WiderTallyRow


# -- what handlers see of their own page -----------------------------------------------


class RankRow(ValueObject):
    account: str
    rank: int
    seen: int
    """How many accounts the handler found open (`count`), its own page's included."""


RANK_TABLE = TableSpec(
    "ranks",
    key="account",
    columns=(Column("account", "text"), Column("rank", "integer"), Column("seen", "integer")),
)


class RankFields:
    rank: ClassVar[Field[RankRow, int]] = Field("rank")


class RankQuery(ReadModel[RankRow, str]):
    table: ClassVar[TableSpec] = RANK_TABLE
    row_type: ClassVar[type[BaseModel]] = RankRow


class Ranks(Projection[RankRow]):
    """Ranks accounts in the order they opened, from the rows already there; a withdrawal
    removes the account, and the handlers after it must not find it."""

    name: ClassVar[str] = "ranks"
    table: ClassVar[TableSpec] = RANK_TABLE
    row_type: ClassVar[type[BaseModel]] = RankRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "on_opened",
        MoneyWithdrawn: "on_withdrawn",
    }

    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self.outside: list[int] = []
        self._query = RankQuery(store)

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        present = self.rows.list(order_by=RankFields.rank.desc())
        rank = present[0].rank + 1 if present else 1
        seen = self.rows.count(RankFields.rank.lt(rank))
        assert seen == len(present)
        self.rows.put(RankRow(account=self.aggregate_id(recorded), rank=rank, seen=seen))
        # A ReadModel queried on the runner's thread joins its transaction: it sees what
        # the page flushed so far (the row just put is flushed by the next count or list).
        self.outside.append(self._query.count())

    def on_withdrawn(self, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self.rows.delete(self.aggregate_id(recorded))


def _interrupt_after(position: int) -> Callable[[str, int, int], None]:
    """A progress callback that stops a rebuild once a page past `position` committed."""

    def interrupt(name: str, reached: int, head: int) -> None:
        if reached > position:
            raise Broken("interrupted")

    return interrupt


def fill(store: EventStore, accounts: int, deposits: int, start: int = 0) -> None:
    for n in range(start, start + accounts):
        events = [NewEvent.from_event(AccountOpened(owner=f"owner{n}", currency="EUR"))]
        events += [NewEvent.from_event(MoneyDeposited(amount=1)) for _ in range(deposits)]
        store.append(f"Account-{n}", events, ExpectedVersion.NO_STREAM)


def tallies(store: EventStore) -> dict[str, tuple[int, int]]:
    return {r.account: (r.balance, r.events) for r in TallyQuery(store).list()}


class ProjectionContract(StoreFixtures):
    """What every backend that keeps read models does with projections and their queries."""

    def test_catch_up_applies_each_event_once(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=7, deposits=5)
        runner = ProjectionRunner(store, make_registry(), [Tallies()], page_size=8)
        assert runner.catch_up() == 7 * 6
        assert tallies(store) == {str(n): (5, 6) for n in range(7)}
        (status,) = runner.status()
        assert status.position == status.head == store.head_position()
        assert status.behind == 0 and status.generation == 1
        assert runner.catch_up() == 0
        fill(store, accounts=1, deposits=2, start=7)
        store.append("Account-0", [NewEvent.from_event(MoneyWithdrawn(amount=3))], 6)
        assert runner.catch_up() == 4
        assert tallies(store) == {**{str(n): (5, 6) for n in range(1, 7)},
                                  "0": (2, 7), "7": (2, 3)}  # fmt: skip
        # Another runner over the same store starts from the stored checkpoint.
        assert ProjectionRunner(store, make_registry(), [Tallies()]).catch_up() == 0

    def test_two_runners_at_once_apply_each_event_once(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=6, deposits=12)
        registry = make_registry()
        runners = [ProjectionRunner(store, registry, [Tallies()], page_size=10) for _ in range(2)]
        handled: list[int] = []
        threads = [
            threading.Thread(target=lambda r=runner: handled.append(r.catch_up()))
            for runner in runners
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sum(handled) == 6 * 13
        assert tallies(store) == {str(n): (12, 13) for n in range(6)}

    def test_a_handler_failing_mid_page_leaves_rows_and_checkpoint_untouched(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=3, deposits=2)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        before = tallies(store)
        position = store.head_position()
        fill(store, accounts=2, deposits=1, start=3)
        store.append("Account-0", [NewEvent.from_event(MoneyDeposited(amount=13))], 3)
        fill(store, accounts=1, deposits=1, start=5)
        failing = ProjectionRunner(store, registry, [Tallies(fail_on=13)], page_size=100)
        for _ in range(2):  # the page stays unapplied, as often as it is tried
            with pytest.raises(Broken):
                failing.catch_up()
            (status,) = failing.status()
            assert status.position == position
            assert tallies(store) == before
        fixed = ProjectionRunner(store, registry, [Tallies()], page_size=100)
        assert fixed.catch_up() == 2 * 2 + 1 + 2
        assert tallies(store) == {"0": (15, 4), "1": (2, 3), "2": (2, 3),
                                  "3": (1, 2), "4": (1, 2), "5": (1, 2)}  # fmt: skip

    def test_rebuild_fills_a_new_generation_while_queries_see_the_old_one(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=4, deposits=9)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        live = tallies(store)
        # The rebuilt model differs from the live one, so a query reading the generation
        # being filled would show it.
        runner = ProjectionRunner(store, registry, [Tallies(factor=10)], page_size=7)
        seen: list[dict[str, tuple[int, int]]] = []
        assert runner.rebuild("tallies", lambda *_: seen.append(tallies(store))) == 4 * 10
        assert len(seen) > 3 and all(view == live for view in seen)
        assert tallies(store) == {str(n): (90, 10) for n in range(4)}
        (status,) = runner.status()
        assert (status.generation, status.behind, status.rebuilding) == (2, 0, None)
        assert runner.catch_up() == 0

    def test_events_recorded_during_a_rebuild_reach_the_rebuilt_model(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=3, deposits=6)
        runner = ProjectionRunner(store, make_registry(), [Tallies()], page_size=5)
        runner.catch_up()
        pages = 0

        def progress_made(name: str, position: int, head: int) -> None:
            nonlocal pages
            pages += 1
            if pages == 2:
                fill(store, accounts=1, deposits=4, start=3)

        runner.rebuild("tallies", progress_made)
        assert tallies(store)["3"] == (4, 5)
        assert runner.catch_up() == 0

    def test_an_interrupted_rebuild_continues_from_its_last_page(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=3, deposits=9)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        live = tallies(store)
        runner = ProjectionRunner(store, registry, [Tallies(factor=10)], page_size=5)
        with pytest.raises(Broken):
            runner.rebuild("tallies", _interrupt_after(10))
        (status,) = runner.status()
        assert status.generation == 1 and status.rebuilding == (2, 15)
        assert tallies(store) == live
        fill(store, accounts=1, deposits=2, start=3)  # recorded in between: handled too
        head = store.head_position()
        # Only the events after the partial generation's checkpoint are handled again.
        assert runner.rebuild("tallies") == head - 15
        assert runner.last_rebuild == RebuildStart(15, "resumed")
        resumed = tallies(store)
        assert resumed == {**{str(n): (90, 10) for n in range(3)}, "3": (20, 3)}
        (status,) = runner.status()
        assert (status.generation, status.rebuilding, status.behind) == (2, None, 0)
        # The same as a rebuild from the first event.
        assert runner.rebuild("tallies") == head
        assert runner.last_rebuild == RebuildStart(None, "no earlier rebuild")
        assert tallies(store) == resumed
        assert runner.catch_up() == 0

    def test_a_restarted_rebuild_starts_afresh(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=3, deposits=9)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        live = tallies(store)
        # Interrupted while built by other handlers (factor 10), as before a fix.
        with pytest.raises(Broken):
            ProjectionRunner(store, registry, [Tallies(factor=10)], page_size=5).rebuild(
                "tallies", _interrupt_after(10)
            )
        fixed = ProjectionRunner(store, registry, [Tallies()], page_size=5)
        assert fixed.rebuild("tallies", restart=True) == store.head_position()
        assert fixed.last_rebuild == RebuildStart(None, "restart requested")
        assert tallies(store) == live  # nothing of the interrupted generation is left
        (status,) = fixed.status()
        assert (status.generation, status.rebuilding) == (2, None)

    def test_an_interrupted_rebuild_of_another_layout_starts_afresh(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=3, deposits=9)
        registry = make_registry()
        narrow = ProjectionRunner(store, registry, [Tallies()], page_size=5)
        narrow.catch_up()
        with pytest.raises(Broken):
            narrow.rebuild("tallies", _interrupt_after(10))
        wide = ProjectionRunner(store, registry, [WiderTallies()], page_size=5)
        assert wide.rebuild("tallies") == store.head_position()
        assert wide.last_rebuild == RebuildStart(None, "fields changed")
        rows = WiderTallyQuery(store).list()
        assert [(r.account, r.balance, r.events, r.note) for r in rows] == [
            (str(n), 9, 10, "wide") for n in range(3)
        ]
        assert wide.needing_rebuild() == []

    def test_an_interrupted_rebuild_started_by_other_code_starts_afresh(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=3, deposits=9)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        with pytest.raises(Broken):
            ProjectionRunner(store, registry, [Tallies(factor=10)], page_size=5).rebuild(
                "tallies", _interrupt_after(10)
            )
        # The code was fixed since: its pages must not be kept, though the layout is the same.
        revised = ProjectionRunner(store, registry, [RevisedTallies()], page_size=5)
        (status,) = revised.status()
        assert status.rebuilding == (2, 15) and not status.needs_rebuild
        assert revised.rebuild("tallies") == store.head_position()
        assert revised.last_rebuild == RebuildStart(None, "code changed")
        assert tallies(store) == {str(n): (18, 10) for n in range(3)}
        # Interrupted by the revised code, continued by it.
        with pytest.raises(Broken):
            revised.rebuild("tallies", _interrupt_after(10))
        assert revised.rebuild("tallies") == store.head_position() - 15
        assert revised.last_rebuild == RebuildStart(15, "resumed")
        assert tallies(store) == {str(n): (18, 10) for n in range(3)}

    def test_a_failing_page_is_the_projection_s_problem_until_it_commits(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=2, deposits=2)
        store.append("Account-1", [NewEvent.from_event(MoneyDeposited(amount=13))], 3)
        (bad,) = store.read_all(after=6, limit=1)
        fill(store, accounts=1, deposits=1, start=2)
        registry = make_registry()
        clock = ManualClock(datetime(2030, 5, 1, tzinfo=UTC), step=timedelta(0))
        failing = ProjectionRunner(store, registry, [Tallies(fail_on=13)], clock=clock)
        with pytest.raises(Broken, match="deposit of 13") as caught:
            failing.catch_up()
        # The handler's own exception, with one note naming the event.
        assert len(caught.value.__notes__) == 1 and "position 7" in caught.value.__notes__[0]
        (status,) = failing.status()
        problem = status.problem
        assert problem is not None
        assert problem.error.endswith(".Broken")
        assert problem.message == f"deposit of 13\n{caught.value.__notes__[0]}"
        assert (problem.position, problem.event_type, problem.event_version) == (
            7, "MoneyDeposited", 1
        )  # fmt: skip
        assert (problem.stream_id, problem.stream_version) == ("Account-1", 4)
        assert problem.event_id == str(bad.event_id)
        assert (problem.at, problem.attempts) == (datetime(2030, 5, 1, tzinfo=UTC), 1)
        assert status.position == 0 and status.to_json()["problem"] == problem.to_json()
        with pytest.raises(Broken):
            failing.catch_up()  # the same event again: counted
        (status,) = failing.status()
        assert status.problem is not None and status.problem.attempts == 2
        # A fixed runner's next page commits, and with it the problem is gone.
        fixed = ProjectionRunner(store, registry, [Tallies()])
        assert fixed.catch_up() == store.head_position()
        assert [item.problem for item in fixed.status()] == [None]
        assert tallies(store)["1"] == (15, 4)

    def test_a_failing_rebuild_page_or_switch_is_recorded(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=3, deposits=4)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        runner = ProjectionRunner(store, registry, [Tallies(fail_on=13)], page_size=4)

        def deposit_13_at_the_end(name: str, position: int, head: int) -> None:
            # After the rebuild's last page, before its switch-over: that transaction
            # handles this event, and fails on it.
            if position == head == 15:
                store.append("Account-2", [NewEvent.from_event(MoneyDeposited(amount=13))], 5)

        with pytest.raises(Broken):
            runner.rebuild("tallies", deposit_13_at_the_end)
        (status,) = runner.status()
        problem = status.rebuild_problem
        assert problem is not None and problem.position == 16 and status.problem is None
        assert status.to_json()["rebuild_problem"] == problem.to_json()
        assert status.rebuilding == (2, 15) and status.generation == 1
        with pytest.raises(Broken):
            runner.rebuild("tallies")  # now it fails on a page of its own
        (status,) = runner.status()
        problem = status.rebuild_problem
        assert problem is not None
        assert (problem.position, problem.attempts) == (16, 2)
        assert problem.describe().startswith("Broken: deposit of 13 (on MoneyDeposited")
        fixed = ProjectionRunner(store, registry, [Tallies()], page_size=4)
        assert fixed.rebuild("tallies") == 1
        (status,) = fixed.status()
        assert (status.generation, status.problem, status.rebuild_problem) == (2, None, None)
        assert tallies(store)["2"] == (17, 6)

    def test_the_live_generation_s_problem_and_the_rebuild_s_are_kept_apart(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=2, deposits=4)
        store.append("Account-1", [NewEvent.from_event(MoneyDeposited(amount=13))], 5)
        registry = make_registry()
        live = ProjectionRunner(store, registry, [Tallies()], page_size=4)
        live.catch_up()
        # New code with a bug on an old event: the rebuild fails on it.
        buggy = ProjectionRunner(store, registry, [Tallies(fail_on=13)], page_size=4)
        with pytest.raises(Broken):
            buggy.rebuild("tallies")
        (status,) = live.status()
        assert status.problem is None
        assert status.rebuild_problem is not None and status.rebuild_problem.position == 11
        # The live generation's next catch-up (nothing to do, or a page of new events)
        # says nothing of the rebuild: its problem stays.
        assert live.catch_up() == 0
        fill(store, accounts=1, deposits=0, start=2)
        assert live.catch_up() == 1
        (status,) = live.status()
        assert status.rebuild_problem is not None and status.rebuild_problem.position == 11

        # The live generation stuck on a new event; a rebuild's pages do not clear that.
        store.append("Account-2", [NewEvent.from_event(MoneyDeposited(amount=99))], 1)
        stuck = ProjectionRunner(store, registry, [Tallies(fail_on=99)], page_size=4)
        with pytest.raises(Broken):
            stuck.catch_up()
        with pytest.raises(Broken):
            stuck.rebuild("tallies", _interrupt_after(4), restart=True)
        (status,) = stuck.status()
        assert status.problem is not None and status.problem.position == 13
        # Starting afresh dropped the failed rebuild's pages, and its problem with them.
        assert status.rebuild_problem is None and status.rebuilding == (2, 8)
        assert status.position == 12
        # A fixed runner's rebuild replaces the stuck generation: neither problem is left.
        fixed = ProjectionRunner(store, registry, [Tallies()], page_size=4)
        assert fixed.rebuild("tallies") == 13 - 8
        (status,) = fixed.status()
        assert (status.generation, status.position, status.behind) == (2, 13, 0)
        assert (status.problem, status.rebuild_problem) == (None, None)

    def test_a_page_failing_outside_handlers_is_recorded_without_an_event(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=1, deposits=0)
        runner = ProjectionRunner(store, make_registry(), [Careless()])
        with pytest.raises(BackendError) as caught:
            runner.catch_up()
        (status,) = runner.status()
        assert status.problem is not None and status.problem.position is None
        assert status.problem.event_id is None and status.problem.error.endswith("BackendError")
        assert status.problem.message.startswith(str(caught.value))

    def test_an_interrupt_is_not_a_problem(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=1, deposits=1)
        store.append("Account-0", [NewEvent.from_event(MoneyDeposited(amount=99))], 2)
        runner = ProjectionRunner(store, make_registry(), [Tallies(interrupt_on=99)])
        with pytest.raises(KeyboardInterrupt):
            runner.catch_up()
        (status,) = runner.status()
        assert (status.position, status.problem) == (0, None)

    def test_status_reports_how_long_ago_the_oldest_unhandled_event_was_recorded(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=2, deposits=3)
        clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC), step=timedelta(0))
        runner = ProjectionRunner(store, make_registry(), [Tallies()], page_size=4, clock=clock)

        def lag_after(position: int) -> float:
            (oldest,) = store.read_all(after=position, limit=1)
            return (clock.now - oldest.recorded_at).total_seconds()

        (status,) = runner.status()
        assert status.lag_seconds == lag_after(0) > 0
        pages = 0

        def stop_after_one_page(name: str, position: int, head: int) -> None:
            nonlocal pages
            pages += 1
            if pages == 1:
                raise Broken("stop")

        with pytest.raises(Broken):
            runner.catch_up(stop_after_one_page)
        (status,) = runner.status()
        # The next event was appended after the first page's: a shorter lag.
        assert status.position == 4 and status.lag_seconds == lag_after(4) < lag_after(0)
        runner.catch_up()
        (status,) = runner.status()
        assert status.to_json() == {
            "name": "tallies",
            "generation": 1,
            "position": 8,
            "head": 8,
            "behind": 0,
            "lag_seconds": 0.0,
            "needs_rebuild": False,
            "rebuilding": None,
            "problem": None,
            "rebuild_problem": None,
        }
        clock.set(datetime(2000, 1, 1, tzinfo=UTC))  # a clock behind the store's: no lag
        fill(store, accounts=1, deposits=0, start=2)
        (status,) = runner.status()
        assert (status.behind, status.lag_seconds) == (1, 0.0)

    def test_a_changed_layout_asks_for_a_rebuild(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=2, deposits=1)
        registry = make_registry()
        ProjectionRunner(store, registry, [Tallies()]).catch_up()
        fill(store, accounts=1, deposits=1, start=2)
        runner = ProjectionRunner(store, registry, [WiderTallies()])
        assert runner.needing_rebuild() == ["tallies"]
        with pytest.raises(ProjectionNeedsRebuild, match="tallies"):
            runner.catch_up()
        with pytest.raises(ProjectionNeedsRebuild, match="tallies"):
            WiderTallyQuery(store).list()
        with pytest.raises(ProjectionNeedsRebuild):
            WiderTallyQuery(store).get("0")
        assert tallies(store) == {"0": (1, 2), "1": (1, 2)}  # the old query still reads
        runner.rebuild("tallies")
        assert runner.needing_rebuild() == []
        wide = WiderTallyQuery(store).list()
        assert [(r.account, r.note) for r in wide] == [("0", "wide"), ("1", "wide"), ("2", "wide")]
        with pytest.raises(ProjectionNeedsRebuild):
            TallyQuery(store).count()

    def test_a_read_model_no_runner_created_is_not_found(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=1, deposits=1)
        query = TallyQuery(store)
        with pytest.raises(ReadModelNotFound, match="'tallies' does not exist") as caught:
            query.list()
        assert caught.value.name == "tallies"
        with pytest.raises(ReadModelNotFound):
            query.get("0")
        with pytest.raises(ReadModelNotFound):
            query.count()
        with pytest.raises(ReadModelNotFound):
            query.exists()
        ProjectionRunner(store, make_registry(), [Tallies()])  # creates the table: empty
        assert query.list() == [] and query.count() == 0 and not query.exists()

    def test_read_models_are_queried_outside_handlers(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=5, deposits=0)
        for n in range(5):
            deposits = [NewEvent.from_event(MoneyDeposited(amount=n * 10)) for _ in range(n)]
            store.append(f"Account-{n}", deposits, 1)
        ProjectionRunner(store, make_registry(), [Tallies()]).catch_up()
        query, F = TallyQuery(store), TallyFields
        row = query.get("3")
        assert row == TallyRow(account="3", owner="owner3", balance=90, events=4)
        assert query.get("nobody") is None
        top = query.list(order_by=F.balance.desc(), limit=2)
        assert [r.account for r in top] == ["4", "3"]
        assert [r.account for r in query.list(F.balance.gt(0), F.events.le(3))] == ["1", "2"]
        assert [r.account for r in query.list(order_by=F.balance.desc(), offset=3)] == ["1", "0"]
        assert query.count() == 5 and query.count(F.balance.eq(0)) == 1
        assert query.exists(F.owner.eq("owner2")) and not query.exists(F.owner.eq("x"))
        assert [r.account for r in query.list(F.account.in_(["0", "4", "x"]))] == ["0", "4"]

    def test_handlers_list_and_count_their_own_page_s_changes(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=3, deposits=0)
        store.append("Account-1", [NewEvent.from_event(MoneyWithdrawn(amount=0))], 1)
        fill(store, accounts=2, deposits=0, start=3)
        projection = Ranks(store)
        runner = ProjectionRunner(store, make_registry(), [projection], page_size=100)
        runner.catch_up()  # one page: nothing committed before the last event
        rows = RankQuery(store).list(order_by=RankFields.rank.asc())
        assert [(r.account, r.rank, r.seen) for r in rows] == [
            ("0", 1, 0), ("2", 3, 2), ("3", 4, 2), ("4", 5, 3)
        ]  # fmt: skip
        assert projection.outside == [0, 1, 2, 2, 3]

    def test_a_store_transaction_is_all_or_nothing(self, progress: EventStore) -> None:
        store = progress
        transactional = cast(TransactionalStore[Any], store)
        with pytest.raises(Broken), transactional.transaction():
            fill(store, accounts=1, deposits=1)
            with transactional.transaction():  # a nested block joins the outer one
                fill(store, accounts=1, deposits=1, start=1)
            raise Broken("undo")
        assert store.head_position() == 0 and store.stream_version("Account-0") == 0
        with transactional.transaction():
            fill(store, accounts=1, deposits=1)
        assert store.head_position() == 2

    def test_other_threads_never_see_a_transaction_s_changes_before_it_commits(
        self, progress: EventStore
    ) -> None:
        store = progress
        transactional = cast(TransactionalStore[Any], store)
        seen: list[int] = []
        appended = threading.Event()

        def read() -> None:
            appended.wait(10)
            seen.append(store.head_position())  # before the block ends, or after it

        reader = threading.Thread(target=read)
        reader.start()
        with pytest.raises(Broken), transactional.transaction():
            fill(store, accounts=1, deposits=3)
            appended.set()
            reader.join(0.2)  # give the reader its chance to look inside the block
            raise Broken("undo")
        reader.join(10)
        assert seen == [0]

    def test_a_null_in_a_column_that_is_not_nullable_is_refused(self, progress: EventStore) -> None:
        store = progress
        fill(store, accounts=1, deposits=0)
        runner = ProjectionRunner(store, make_registry(), [Careless()])
        with pytest.raises(BackendError):
            runner.catch_up()
        (status,) = runner.status()
        assert status.position == 0
        assert CarelessQuery(store).count() == 0


class CarelessRow(ValueObject):
    account: str
    note: str | None = None


CARELESS_TABLE = TableSpec(
    "careless", key="account", columns=(Column("account", "text"), Column("note", "text"))
)


class Careless(Projection[CarelessRow]):
    """Its table says `note` is never null; its row type lets it be."""

    name: ClassVar[str] = "careless"
    table: ClassVar[TableSpec] = CARELESS_TABLE
    row_type: ClassVar[type[BaseModel]] = CarelessRow
    handlers: ClassVar[Mapping[type[Event], str]] = {AccountOpened: "on_opened"}

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        self.rows.put(CarelessRow(account=self.aggregate_id(recorded)))


class CarelessQuery(ReadModel[CarelessRow, str]):
    table: ClassVar[TableSpec] = CARELESS_TABLE
    row_type: ClassVar[type[BaseModel]] = CarelessRow
