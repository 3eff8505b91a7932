"""Read-model queries on SQL stores: the cases each backend's test module runs.

`QueryCases` is subclassed once per backend (`test_readmodel_sqlite.py`,
`test_readmodel_postgres.py`), which says how to make a store and how to look at its
indexes behind its back. Rows are written by a real projection from real events; queries
go through `ReadModel` (outside handlers) and `Rows` (inside them), and every result is
checked against the same rows filtered and sorted in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import AwareDatetime, BaseModel

from esgen.runtime import (
    Column,
    Condition,
    Event,
    EventRegistry,
    EventStore,
    ExpectedVersion,
    Field,
    Index,
    NewEvent,
    Projection,
    ProjectionNeedsRebuild,
    ProjectionRunner,
    ReadModelNotFound,
    RecordedEvent,
    Rows,
    TableSpec,
    UnstorableValue,
    ValueObject,
)
from esgen.runtime._progress_store import progress_storage
from esgen.runtime._views import ReadModel

__all__ = ["QueryCases"]


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "Closed"
    FROZEN = "Éta"  # non-ASCII: after every ASCII value in code point order
    ZETA = "zeta"


class AccountWritten(Event):
    event_type = "AccountWritten"
    event_version = 1
    account: str
    owner: str
    balance: Decimal
    opened: AwareDatetime
    status: Status
    vip: bool
    nickname: str | None = None
    score: float | None = None
    limit: Decimal | None = None
    closed: AwareDatetime | None = None


class AccountRemoved(Event):
    event_type = "AccountRemoved"
    event_version = 1
    account: str


class AccountRow(ValueObject):
    account: str
    owner: str
    balance: Decimal
    opened: AwareDatetime
    status: Status
    vip: bool
    nickname: str | None = None
    score: float | None = None
    limit: Decimal | None = None
    closed: AwareDatetime | None = None
    generation_tag: str = ""


COLUMNS = (
    Column("account", "text"),
    Column("owner", "text"),
    Column("balance", "decimal"),
    Column("opened", "timestamp"),
    Column("status", "text"),
    Column("vip", "boolean"),
    Column("nickname", "text", nullable=True),
    Column("score", "real", nullable=True),
    Column("limit", "decimal", nullable=True),  # an SQL keyword: names are always quoted
    Column("closed", "timestamp", nullable=True),
    Column("generation_tag", "text"),
)
SPEC = TableSpec(
    "accounts", key="account", columns=COLUMNS, indexes=(Index(("owner",)), Index(("balance",)))
)


class F:
    account = Field[AccountRow, str]("account")
    owner = Field[AccountRow, str]("owner")
    balance = Field[AccountRow, Decimal]("balance")
    opened = Field[AccountRow, datetime]("opened")
    status = Field[AccountRow, Status]("status")
    vip = Field[AccountRow, bool]("vip")
    nickname = Field[AccountRow, str | None]("nickname")
    score = Field[AccountRow, float | None]("score")
    limit = Field[AccountRow, Decimal | None]("limit")
    closed = Field[AccountRow, datetime | None]("closed")


class Accounts(ReadModel[AccountRow, str]):
    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = AccountRow


class AccountsProjection(Projection[AccountRow]):
    name: ClassVar[str] = "accounts"
    table: ClassVar[TableSpec] = SPEC
    row_type: ClassVar[type[BaseModel]] = AccountRow
    handlers: ClassVar[Mapping[type[Event], str]] = {
        AccountWritten: "on_written",
        AccountRemoved: "on_removed",
    }

    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self.tag = tag
        self.seen: list[Any] = []
        self.probe: Callable[[AccountsProjection], Any] | None = None

    def on_written(self, event: AccountWritten, recorded: RecordedEvent) -> None:
        data = event.model_dump()
        self.rows.put(AccountRow(**data, generation_tag=self.tag))
        if self.probe is not None:
            self.seen.append(self.probe(self))

    def on_removed(self, event: AccountRemoved, recorded: RecordedEvent) -> None:
        self.rows.delete(event.account)


def registry() -> EventRegistry:
    return EventRegistry([AccountWritten, AccountRemoved])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def row(account: str, **fields: Any) -> AccountRow:
    values: dict[str, Any] = {
        "owner": "alice",
        "balance": Decimal("0"),
        "opened": at("2026-12-05T09:03:00+00:00"),
        "status": Status.OPEN,
        "vip": False,
    }
    values.update(fields)
    return AccountRow(account=account, **values)


# Decimals as the issue found them wrongly ordered, fractional and large ones, one value
# written with two scales (ties: the key decides), zero and -0; times at several offsets
# (09:00+02:00 is before 08:30Z); text in upper and lower case and beyond ASCII.
ROWS = [
    row("a01", owner="alice", balance=Decimal("100.00"), status=Status.OPEN, vip=True,
        opened=at("2026-12-05T09:00:00+02:00"), nickname="Al", score=1.5,
        limit=Decimal("1000.00"), closed=None),
    row("a02", owner="Bob", balance=Decimal("20.00"), status=Status.CLOSED,
        opened=at("2026-12-05T08:30:00+00:00"), nickname=None, score=None,
        limit=None, closed=at("2026-12-06T00:00:00-05:00")),
    row("a03", owner="Émile", balance=Decimal("3.00"), status=Status.FROZEN, vip=True,
        opened=at("2026-12-05T08:59:59.999999+00:00"), nickname="émile", score=-2.0,
        limit=Decimal("-5"), closed=at("2026-12-06T04:59:59+00:00")),
    row("a04", owner="zoë", balance=Decimal("-400.00"), status=Status.ZETA,
        opened=at("2026-12-04T23:00:00-10:00"), nickname="Zed", score=0.0,
        limit=Decimal("0.001")),
    row("a05", owner="alice", balance=Decimal("1E+20"), status=Status.OPEN,
        opened=at("2027-01-01T00:00:00+14:00"), nickname="", score=1e300),
    row("a06", owner="Zed", balance=Decimal("0.001"), status=Status.OPEN, vip=True,
        opened=at("2026-12-05T07:00:00+00:00"), limit=Decimal("1000.0")),
    row("a07", owner="alice", balance=Decimal("-0.5"), status=Status.CLOSED,
        opened=at("2026-12-05T07:00:00+00:00"), nickname="al"),
    row("a08", owner="ålborg", balance=Decimal("0"), status=Status.OPEN,
        opened=at("2026-12-05T09:03:00+00:00")),
    row("a09", owner="Bob", balance=Decimal("-0"), status=Status.ZETA,
        opened=at("2026-12-05T09:03:00.000001+00:00")),
    row("a10", owner="bob", balance=Decimal("20.0"), status=Status.OPEN, vip=True,
        opened=at("1999-12-31T23:59:59+00:00"), score=-1e-300),
    row("a11", owner="alice", balance=Decimal("-400.000"), status=Status.FROZEN,
        opened=at("2026-12-05T11:00:00+02:00"), nickname="Al"),
    row("a12", owner="carol", balance=Decimal("99999999999999999999.99"), vip=True,
        opened=at("2026-12-05T12:00:00+00:00"), limit=Decimal("1E+3")),
]  # fmt: skip


def python_query(
    rows: Sequence[AccountRow],
    where: Sequence[Callable[[AccountRow], bool]] = (),
    order: Sequence[tuple[str, bool]] = (),
) -> list[str]:
    """The keys of the rows matching `where`, ordered as `_query` says: each order's
    value, None after every value ascending and before every value descending, then key."""
    found = sorted((r for r in rows if all(w(r) for w in where)), key=lambda r: r.account)
    for attribute, descending in reversed(order):
        found.sort(
            key=lambda r: (getattr(r, attribute) is None, getattr(r, attribute)),
            reverse=descending,
        )
    return [r.account for r in found]


def keys(rows: Sequence[AccountRow]) -> list[str]:
    return [r.account for r in rows]


class QueryCases:
    """The cases; a subclass provides `make_store` and `index_names`."""

    def make_store(self, tmp_path: Path) -> EventStore:
        raise NotImplementedError

    def reopen(self, store: EventStore, **options: Any) -> EventStore:
        """Another store object on the same database."""
        raise NotImplementedError

    def index_name(self, spec: TableSpec, index: Index, physical: str) -> str:
        """The name the backend gives `index` of `spec` on table `physical`."""
        return index.name(physical)

    def index_names(self, store: EventStore, table: str) -> set[str]:
        """The names of the indexes on a physical table, primary key aside."""
        raise NotImplementedError

    def add_index_by_hand(self, store: EventStore, table: str, name: str, column: str) -> None:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        store = self.make_store(tmp_path)
        try:
            yield store
        finally:
            store.close()

    @staticmethod
    def write(store: EventStore, rows: Sequence[AccountRow]) -> None:
        for item in rows:
            data = item.model_dump(exclude={"generation_tag"})
            store.append(
                f"Account-{item.account}",
                [NewEvent.from_event(AccountWritten(**data))],
                ExpectedVersion.ANY,
            )

    @pytest.fixture
    def filled(self, store: EventStore) -> EventStore:
        self.write(store, ROWS)
        ProjectionRunner(store, registry(), [AccountsProjection()]).catch_up()
        return store

    # -- values come back as written ----------------------------------------------------

    def test_rows_come_back_as_written(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        for expected in ROWS:
            got = accounts.get(expected.account)
            assert got == expected
        assert accounts.get("nobody") is None
        # The scale of a decimal is kept: 100.00 is not 100.
        first = accounts.get("a01")
        assert first is not None
        assert str(first.balance) == "100.00" and str(first.limit) == "1000.00"
        assert str(accounts.get("a11").balance) == "-400.000"  # type: ignore[union-attr]
        assert accounts.list(order_by=F.account.asc()) == ROWS

    # -- ordering -----------------------------------------------------------------------

    def test_decimals_order_as_numbers(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        largest = accounts.list(order_by=F.balance.desc())
        assert keys(largest) == python_query(ROWS, order=[("balance", True)])
        balances = [str(r.balance) for r in largest]
        # The case: 100.00 before 20.00 before 3.00, -400.00 last.
        assert balances.index("100.00") < balances.index("20.00") < balances.index("3.00")
        assert balances.index("-400.00") > balances.index("3.00")
        assert keys(accounts.list(order_by=F.balance.asc())) == python_query(
            ROWS, order=[("balance", False)]
        )
        # Equal values with other scales (20.00, 20.0; -400.00, -400.000; 0, -0) tie:
        # the key decides, as it does for any tie.
        assert [r.account for r in largest if r.balance == 20] == ["a02", "a10"]
        assert keys(accounts.list(order_by=F.limit.desc())) == python_query(
            ROWS, order=[("limit", True)]
        )

    def test_times_order_as_instants_whatever_the_offset(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        for descending in (False, True):
            order = F.opened.desc() if descending else F.opened.asc()
            assert keys(accounts.list(order_by=order)) == python_query(
                ROWS, order=[("opened", descending)]
            )
            closed = F.closed.desc() if descending else F.closed.asc()
            assert keys(accounts.list(order_by=closed)) == python_query(
                ROWS, order=[("closed", descending)]
            )
        # 09:00+02:00 is 07:00Z: before 08:30Z.
        assert keys(accounts.list(F.opened.lt(at("2026-12-05T08:00:00+00:00")))) == python_query(
            ROWS, [lambda r: r.opened < at("2026-12-05T08:00:00+00:00")]
        )
        noon_in_tokyo = at("2026-12-05T18:03:00+09:00")  # 09:03Z
        assert keys(accounts.list(F.opened.eq(noon_in_tokyo))) == ["a08"]
        got = accounts.get("a02")
        assert got is not None and got.closed == at("2026-12-06T05:00:00+00:00")

    def test_text_orders_by_code_point_case_and_all(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        for descending in (False, True):
            order = F.owner.desc() if descending else F.owner.asc()
            assert keys(accounts.list(order_by=order)) == python_query(
                ROWS, order=[("owner", descending)]
            )
            nickname = F.nickname.desc() if descending else F.nickname.asc()
            assert keys(accounts.list(order_by=nickname)) == python_query(
                ROWS, order=[("nickname", descending)]
            )
        owners = [r.owner for r in accounts.list(order_by=F.owner.asc())]
        positions = [owners.index(o) for o in ("Bob", "Zed", "alice", "zoë", "Émile", "ålborg")]
        assert positions == sorted(positions)  # code points: upper case, lower, then beyond
        # Case matters in comparisons too: "Bob" is not "bob".
        assert keys(accounts.list(F.owner.eq("bob"))) == ["a10"]
        assert keys(accounts.list(F.owner.ge("a"), order_by=F.owner.asc())) == python_query(
            ROWS, [lambda r: r.owner >= "a"], [("owner", False)]
        )

    def test_enums_and_booleans(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        assert keys(accounts.list(F.status.eq(Status.FROZEN))) == ["a03", "a11"]
        assert keys(accounts.list(F.status.in_([Status.CLOSED, Status.ZETA]))) == python_query(
            ROWS, [lambda r: r.status in (Status.CLOSED, Status.ZETA)]
        )
        assert keys(accounts.list(order_by=F.status.asc())) == python_query(
            ROWS, order=[("status", False)]
        )
        assert keys(accounts.list(F.vip.eq(True))) == python_query(ROWS, [lambda r: r.vip])
        assert keys(accounts.list(F.vip.ne(True))) == python_query(ROWS, [lambda r: not r.vip])
        assert keys(accounts.list(order_by=[F.vip.desc(), F.balance.asc()])) == python_query(
            ROWS, order=[("vip", True), ("balance", False)]
        )

    def test_several_orders_then_the_key(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        orders = [F.owner.asc(), F.nickname.desc(), F.opened.asc()]
        assert keys(accounts.list(order_by=orders)) == python_query(
            ROWS, order=[("owner", False), ("nickname", True), ("opened", False)]
        )
        assert keys(accounts.list(order_by=F.account.desc())) == sorted(keys(ROWS), reverse=True)

    # -- filters --------------------------------------------------------------------------

    def test_comparisons_on_decimals(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        cases: list[tuple[Condition[AccountRow], Callable[[AccountRow], bool]]] = []
        for value in ("20", "20.000", "-400", "0", "-0.00", "3.00", "1E+20", "-1000", "0.0005"):
            v = Decimal(value)
            cases += [
                (F.balance.eq(v), lambda r, v=v: r.balance == v),
                (F.balance.ne(v), lambda r, v=v: r.balance != v),
                (F.balance.lt(v), lambda r, v=v: r.balance < v),
                (F.balance.le(v), lambda r, v=v: r.balance <= v),
                (F.balance.gt(v), lambda r, v=v: r.balance > v),
                (F.balance.ge(v), lambda r, v=v: r.balance >= v),
                (F.limit.ne(v), lambda r, v=v: r.limit != v),
                (F.limit.lt(v), lambda r, v=v: r.limit is not None and r.limit < v),
                (F.limit.ge(v), lambda r, v=v: r.limit is not None and r.limit >= v),
            ]
        for condition, predicate in cases:
            assert keys(accounts.list(condition)) == python_query(ROWS, [predicate]), condition
            assert accounts.count(condition) == len(python_query(ROWS, [predicate]))
        between = F.balance.between(Decimal("-1"), Decimal("100"))
        assert keys(accounts.list(*between)) == python_query(
            ROWS, [lambda r: Decimal(-1) <= r.balance <= 100]
        )
        listed = [Decimal("20"), Decimal("-400.0000"), Decimal("7")]
        assert keys(accounts.list(F.balance.in_(listed))) == ["a02", "a04", "a10", "a11"]

    def test_nulls(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        no_nickname = python_query(ROWS, [lambda r: r.nickname is None])
        assert keys(accounts.list(F.nickname.is_null())) == no_nickname
        assert keys(accounts.list(F.nickname.eq(None))) == no_nickname
        assert keys(accounts.list(F.nickname.is_not_null())) == python_query(
            ROWS, [lambda r: r.nickname is not None]
        )
        # ne keeps the nulls (None != "Al"); the empty string is a value, not a null.
        assert keys(accounts.list(F.nickname.ne("Al"))) == python_query(
            ROWS, [lambda r: r.nickname != "Al"]
        )
        assert "a05" in keys(accounts.list(F.nickname.eq("")))
        # Comparisons never match a null.
        assert keys(accounts.list(F.score.lt(1.0))) == python_query(
            ROWS, [lambda r: r.score is not None and r.score < 1.0]
        )
        assert keys(accounts.list(F.closed.ge(at("2000-01-01T00:00:00Z")))) == python_query(
            ROWS, [lambda r: r.closed is not None]
        )
        # in: None in (None, "Al") as in Python.
        assert keys(accounts.list(F.nickname.in_([None, "Al"]))) == python_query(
            ROWS, [lambda r: r.nickname in (None, "Al")]
        )
        assert keys(accounts.list(F.nickname.in_([None]))) == no_nickname
        for descending in (False, True):
            order = F.score.desc() if descending else F.score.asc()
            assert keys(accounts.list(order_by=order)) == python_query(
                ROWS, order=[("score", descending)]
            )

    def test_in_with_nothing_matches_nothing(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        assert accounts.list(F.owner.in_([])) == []
        assert accounts.count(F.balance.in_([])) == 0
        assert not accounts.exists(F.status.in_(()))

    def test_in_with_tens_of_thousands_of_values(self, filled: EventStore) -> None:
        """More values than a statement may have parameters (65535 on PostgreSQL)."""
        accounts = Accounts(filled)
        wanted = {"a01", "a05"}
        listed = [f"x{i}" for i in range(70_000)] + sorted(wanted)
        assert keys(accounts.list(F.account.in_(listed))) == sorted(wanted)
        assert accounts.count(F.account.in_(listed)) == len(wanted)
        balances = [Decimal(i) / 100 for i in range(70_000)]
        assert accounts.count(F.balance.in_(balances)) == len(
            python_query(ROWS, [lambda r: r.balance in set(balances)])
        )

    def test_paging_is_stable(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        order = [F.owner.asc()]  # owners repeat: the key breaks the ties
        expected = python_query(ROWS, order=[("owner", False)])
        pages = [accounts.list(order_by=order, limit=5, offset=n) for n in range(0, 15, 5)]
        assert [k for page in pages for k in keys(page)] == expected
        assert keys(accounts.list(order_by=order, offset=10)) == expected[10:]
        assert accounts.list(order_by=order, limit=0) == []
        alices = F.owner.eq("alice")
        assert (
            keys(accounts.list(alices, order_by=F.balance.desc(), limit=2, offset=1))
            == (python_query(ROWS, [lambda r: r.owner == "alice"], [("balance", True)])[1:3])
        )
        assert accounts.count() == len(ROWS)
        assert accounts.count(alices, F.vip.eq(True)) == 1
        assert accounts.exists(alices) and not accounts.exists(F.owner.eq("nobody"))

    def test_deleted_rows_are_gone(self, filled: EventStore) -> None:
        filled.append(
            "Account-a01",
            [NewEvent.from_event(AccountRemoved(account="a01"))],
            ExpectedVersion.ANY,
        )
        ProjectionRunner(filled, registry(), [AccountsProjection()]).catch_up()
        accounts = Accounts(filled)
        assert accounts.get("a01") is None
        assert "a01" not in keys(accounts.list(F.owner.eq("alice")))

    # -- values a column cannot hold ------------------------------------------------------

    def huge_decimal(self) -> Decimal:
        """A decimal this backend refuses to store."""
        raise NotImplementedError

    def test_a_decimal_beyond_the_column_is_refused_by_name(self, store: EventStore) -> None:
        runner = ProjectionRunner(store, registry(), [AccountsProjection()])
        self.write(store, [row("ok", balance=Decimal(1)), row("big", balance=self.huge_decimal())])
        # Refused by one rule on every backend, before any backend sees the row.
        refused = r"AccountRow\.balance is Decimal\(.+\): a read-model decimal column holds"
        with pytest.raises(UnstorableValue, match=refused) as caught:
            runner.catch_up()
        assert "nothing was written" in str(caught.value)
        with pytest.raises(UnstorableValue):
            runner.catch_up()  # the page is refused whole, again
        assert Accounts(store).count() == 0

    # -- inside handlers ------------------------------------------------------------------

    def test_filters_inside_a_handler_see_the_units_changes(self, store: EventStore) -> None:
        projection = AccountsProjection()
        projection.probe = lambda p: (
            keys(p.rows.list(F.owner.eq("alice"), order_by=F.balance.desc())),
            p.rows.count(F.vip.eq(True)),
        )
        runner = ProjectionRunner(store, registry(), [projection], page_size=1000)
        self.write(store, ROWS[:5])
        runner.catch_up()
        alices: list[AccountRow] = []
        for n, item in enumerate(ROWS[:5]):
            alices += [item] if item.owner == "alice" else []
            listed, vips = projection.seen[n]
            assert listed == python_query(alices, order=[("balance", True)])
            assert vips == sum(r.vip for r in ROWS[: n + 1])

    def test_a_query_in_a_handler_joins_its_transaction(self, store: EventStore) -> None:
        """ReadModel from inside a handler (as a saga or another projection would): it sees
        the rows the unit flushed but did not commit, and its read leaves the unit whole."""
        projection = AccountsProjection()

        def probe(p: AccountsProjection) -> Any:
            p.rows.flush()
            return keys(Accounts(store).list(order_by=F.account.asc()))

        projection.probe = probe
        runner = ProjectionRunner(store, registry(), [projection])
        self.write(store, ROWS[:3])
        runner.catch_up()
        assert projection.seen == [["a01"], ["a01", "a02"], ["a01", "a02", "a03"]]
        assert keys(Accounts(store).list()) == ["a01", "a02", "a03"]

    def test_a_query_in_a_transaction_block_sees_its_changes(self, filled: EventStore) -> None:
        storage = progress_storage(filled)
        accounts = Accounts(filled)
        with storage.unit() as unit:
            rows = Rows(SPEC, AccountRow, unit.table(SPEC, 1))
            rows.put(row("new", owner="Bob"))
            rows.flush()
            assert accounts.count(F.owner.eq("Bob")) == 3  # joined: sees the new row
            assert accounts.get("new") is not None
        assert accounts.count() == len(ROWS) + 1  # and the block still commits
        with pytest.raises(RuntimeError, match="undone"), storage.unit() as unit:
            rows = Rows(SPEC, AccountRow, unit.table(SPEC, 1))
            rows.delete("new")
            rows.flush()
            assert accounts.get("new") is None
            raise RuntimeError("undone")
        assert accounts.get("new") is not None

    # -- what readers never see -------------------------------------------------------------

    def test_a_read_model_no_runner_created_is_not_found(self, store: EventStore) -> None:
        with pytest.raises(ReadModelNotFound, match="'accounts' does not exist"):
            Accounts(store).get("a01")

        class Others(AccountsProjection):
            name: ClassVar[str] = "others"
            table: ClassVar[TableSpec] = TableSpec("others", key="account", columns=COLUMNS)

        ProjectionRunner(store, registry(), [Others()])  # a runner of another read model
        with pytest.raises(ReadModelNotFound):
            Accounts(store).list(F.owner.eq("alice"))
        with pytest.raises(ReadModelNotFound):
            Accounts(store).count()

    def test_a_read_model_built_with_other_fields_needs_a_rebuild(self, filled: EventStore) -> None:
        class Wider(ReadModel[AccountRow, str]):
            table: ClassVar[TableSpec] = TableSpec(
                "accounts", key="account", columns=(*COLUMNS, Column("extra", "text"))
            )
            row_type: ClassVar[type[BaseModel]] = AccountRow

        with pytest.raises(ProjectionNeedsRebuild, match="accounts"):
            Wider(filled).get("a01")
        with pytest.raises(ProjectionNeedsRebuild):
            Wider(filled).list()
        assert Accounts(filled).count() == len(ROWS)  # the read model itself is fine

    def test_queries_during_a_rebuild_see_the_old_generation(self, filled: EventStore) -> None:
        accounts = Accounts(filled)
        rebuilt = AccountsProjection(tag="v2")
        runner = ProjectionRunner(filled, registry(), [rebuilt], page_size=3)
        seen: list[set[str]] = []

        def progress(name: str, position: int, head: int) -> None:
            seen.append({r.generation_tag for r in accounts.list()})
            assert accounts.count() == len(ROWS)

        runner.rebuild("accounts", progress)
        assert len(seen) >= 3 and all(tags == {""} for tags in seen)
        assert {r.generation_tag for r in accounts.list()} == {"v2"}

    def test_readers_racing_rebuilds_never_fail(self, filled: EventStore) -> None:
        """Each switch-over drops the table a reader may have just looked up; readers on
        other threads go on reading whole generations, without an error."""
        stores = [self.reopen(filled) for _ in range(3)]
        runner = ProjectionRunner(stores[0], registry(), [AccountsProjection()], page_size=4)
        done = threading.Event()
        errors: list[BaseException] = []
        reads = [0, 0]

        def read(n: int) -> None:
            accounts = Accounts(stores[n + 1])
            expected = keys(ROWS)
            try:
                while not done.is_set() or reads[n] < 20:
                    assert keys(accounts.list(order_by=F.account.asc())) == expected
                    assert accounts.count(F.owner.eq("alice")) == 4
                    assert accounts.get("a05") is not None
                    reads[n] += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(8):
                runner.rebuild("accounts")
        finally:
            done.set()
            for thread in threads:
                thread.join()
            for store in stores:
                store.close()
        assert errors == []
        assert (
            ProjectionRunner(filled, registry(), [AccountsProjection()]).status()[0].generation == 9
        )

    # -- indexes ----------------------------------------------------------------------------

    def test_indexes_are_created_added_and_dropped_without_rebuild(self, store: EventStore) -> None:
        self.write(store, ROWS)
        ProjectionRunner(store, registry(), [AccountsProjection()]).catch_up()
        physical = "accounts__g1"
        declared = {self.index_name(SPEC, i, physical) for i in SPEC.indexes}
        assert self.index_names(store, physical) == declared
        self.add_index_by_hand(store, physical, "accounts_by_hand", "nickname")

        more = (Index(("status", "opened")), Index(("vip", "balance", "limit")))
        wider = TableSpec(SPEC.name, SPEC.key, SPEC.columns, indexes=(SPEC.indexes[1], *more))
        assert wider.layout == SPEC.layout  # indexes are not part of the layout
        projection = AccountsProjection()
        projection.table = wider
        runner = ProjectionRunner(store, registry(), [projection])
        expected = {self.index_name(wider, i, physical) for i in wider.indexes}
        expected |= {"accounts_by_hand"}
        assert self.index_names(store, physical) == expected
        assert runner.status()[0].generation == 1  # no rebuild
        accounts = Accounts(store)
        assert keys(accounts.list(F.status.eq(Status.OPEN), order_by=F.opened.asc())) == (
            python_query(ROWS, [lambda r: r.status == Status.OPEN], [("opened", False)])
        )

        projection.table = TableSpec(SPEC.name, SPEC.key, SPEC.columns)
        ProjectionRunner(store, registry(), [projection])
        assert self.index_names(store, physical) == {"accounts_by_hand"}

        # A rebuild's new generation gets the indexes declared then.
        projection.table = wider
        ProjectionRunner(store, registry(), [projection]).rebuild("accounts")
        assert self.index_names(store, "accounts__g2") == {
            self.index_name(wider, i, "accounts__g2") for i in wider.indexes
        }
        assert keys(accounts.list(order_by=F.balance.desc())) == python_query(
            ROWS, order=[("balance", True)]
        )

    def test_a_generation_built_with_other_fields_keeps_its_indexes_until_rebuilt(
        self, store: EventStore
    ) -> None:
        """An index on a field the stored generation lacks cannot be made there: the
        runner still starts, reports the rebuild needed, and the rebuild makes it."""
        self.write(store, ROWS)
        ProjectionRunner(store, registry(), [AccountsProjection()]).catch_up()

        class ExtraRow(AccountRow):
            extra: str | None = None

        class Extra(AccountsProjection):
            row_type: ClassVar[type[BaseModel]] = ExtraRow
            table: ClassVar[TableSpec] = TableSpec(
                SPEC.name,
                SPEC.key,
                (*COLUMNS, Column("extra", "text", nullable=True)),
                indexes=(Index(("extra",)),),
            )

            def on_written(self, event: AccountWritten, recorded: RecordedEvent) -> None:
                self.rows.put(ExtraRow(**event.model_dump(), extra="x"))

        runner = ProjectionRunner(store, registry(), [Extra()])
        assert self.index_names(store, "accounts__g1") == {
            self.index_name(SPEC, i, "accounts__g1") for i in SPEC.indexes
        }
        with pytest.raises(ProjectionNeedsRebuild):
            runner.catch_up()
        runner.rebuild("accounts")
        assert self.index_names(store, "accounts__g2") == {
            self.index_name(Extra.table, Index(("extra",)), "accounts__g2")
        }

    def test_an_index_on_an_unknown_column_is_refused(self, store: EventStore) -> None:
        projection = AccountsProjection()
        projection.table = TableSpec(
            SPEC.name, SPEC.key, SPEC.columns, indexes=(Index(("owner", "nope")),)
        )
        with pytest.raises(ValueError, match=r"has no column 'nope'"):
            ProjectionRunner(store, registry(), [projection])
