"""Projections on every backend that keeps read models: the runner's guarantees (each
event applied once, a failed page leaves nothing, rebuilds behind a live generation,
layout changes refused) and reading the read model through `ReadModel` outside handlers
and `Rows.list/count` inside them. Written against the ports and the public API only."""

from __future__ import annotations

import threading
from collections.abc import Mapping
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
    RecordedEvent,
    TableSpec,
    TransactionalStore,
    ValueObject,
)
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

    def __init__(self, *, factor: int = 1, fail_on: int | None = None) -> None:
        super().__init__()
        self.factor = factor
        self.fail_on = fail_on
        """A deposit of this amount makes the handler fail, after the page's rows reached
        the table (`count` flushes them), as a bug half-way through a page would."""

    def on_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        key = self.aggregate_id(recorded)
        self.rows.put(TallyRow(account=key, owner=event.owner, balance=0, events=1))

    def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        if event.amount == self.fail_on:
            assert self.rows.count() > 0  # the page's rows are in the table now
            raise Broken(f"deposit of {event.amount}")
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

    def test_an_interrupted_rebuild_started_again_counts_each_event_once(
        self, progress: EventStore
    ) -> None:
        store = progress
        fill(store, accounts=3, deposits=9)
        runner = ProjectionRunner(store, make_registry(), [Tallies()], page_size=5)
        runner.catch_up()
        live = tallies(store)

        def interrupt(name: str, position: int, head: int) -> None:
            if position > 10:
                raise Broken("interrupted")

        with pytest.raises(Broken):
            runner.rebuild("tallies", interrupt)
        (status,) = runner.status()
        assert status.generation == 1 and status.rebuilding is not None
        assert tallies(store) == live
        runner.rebuild("tallies")
        assert tallies(store) == live
        (status,) = runner.status()
        assert (status.generation, status.rebuilding) == (2, None)

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
