"""Read-your-writes on memory, SQLite and PostgreSQL, with the bank example's generated code:
a command's result gives the position (and token) of what it recorded; read models wait
until their projection has processed it, also when the runner is another process; a wait
that runs out raises `ReadModelBehind`; what would never catch up is refused at once; the
lag of the read side is reported in events and seconds, by the API and the command line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote
from uuid import UUID

import pytest
from harness import EXAMPLES
from hypothesis import given
from hypothesis import strategies as st

from esgen.runtime import (
    EventStore,
    InvalidConsistencyToken,
    MemoryEventStore,
    Problem,
    ProjectionNeedsRebuild,
    ReadModelBehind,
    ReadModelNotFound,
    SQLiteEventStore,
    TableSpec,
    consistency_token,
    handle_command,
    parse_consistency_token,
    progress_storage,
)
from esgen.runtime._consistency import MAX_POSITION
from esgen.runtime.testing import ManualClock

from .postgres_env import available_dsn, drop_schema, new_schema

BANK = EXAMPLES / "bank"
sys.path.insert(0, str(BANK / "src"))

from bank.commands.account import DepositMoney, OpenAccount, WithdrawMoney  # noqa: E402
from bank.domain.account_balances import AccountBalances  # noqa: E402
from bank.projections.account_balances import AccountBalancesQuery  # noqa: E402
from bank.service import BankService, BankUnitOfWork  # noqa: E402
from bank.types import Money  # noqa: E402

ADA, ALAN = UUID(int=1), UUID(int=2)
NAME = "account_balances"
# Long enough never to run out on a loaded machine; a wait that should not happen fails
# the test by raising ReadModelBehind instead of returning (nothing here is timed).
PATIENT = 60.0


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@dataclass
class Backend:
    kind: str
    store: EventStore
    where: str  # how another process opens the same store ("" for memory)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    if request.param == "memory":
        yield Backend("memory", MemoryEventStore(clock=clock), "")
    elif request.param == "sqlite":
        path = tmp_path / "bank.sqlite"
        store = SQLiteEventStore(path, clock=clock)
        yield Backend("sqlite", store, str(path))
        store.close()
    else:
        dsn = available_dsn()
        if dsn is None:
            pytest.skip("no PostgreSQL server (see tests/runtime/postgres_env.py)")
        from esgen.runtime import PostgresEventStore

        schema = new_schema()
        store = PostgresEventStore(dsn, schema=schema, clock=clock)
        yield Backend("postgres", store, f"{dsn}#{schema}")
        store.close()
        drop_schema(dsn, schema)


@pytest.fixture
def bank(backend: Backend) -> BankService:
    return BankService(backend.store)


def balance_of(store: EventStore, account: UUID) -> Decimal | None:
    row = AccountBalancesQuery(store).get(account)
    return None if row is None else row.balance


# -- what a command returns ------------------------------------------------------------


def test_dispatch_returns_the_position_and_token_of_what_it_recorded(bank: BankService) -> None:
    opened = bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    assert opened.position == bank.store.head_position() == 1
    deposit = bank.dispatch(DepositMoney(account_id=ADA, amount=eur("10")))
    assert deposit.position == bank.store.head_position() == 2
    assert deposit.token == consistency_token(2) == "p1.2"
    assert parse_consistency_token(deposit.token) == deposit.position
    # A command that decides nothing records nothing: no position to wait for.
    idle = handle_command(bank.account_repository, ADA, lambda account: None)
    assert idle.appended is None and idle.position is None and idle.token is None


def test_a_unit_of_work_returns_the_highest_position_it_appended(bank: BankService) -> None:
    bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    bank.dispatch(OpenAccount(account_id=ALAN, owner="Alan", currency="EUR"))
    bank.dispatch(DepositMoney(account_id=ALAN, amount=eur("10")))

    def pay(work: BankUnitOfWork) -> None:
        work.dispatch(WithdrawMoney(account_id=ALAN, amount=eur("4")))
        work.dispatch(DepositMoney(account_id=ADA, amount=eur("4")))

    paid = bank.unit_of_work(pay)
    assert [r.position for r in paid.appended] == [4, 5]
    assert paid.position == 5 == bank.store.head_position()
    assert paid.token == "p1.5"
    nothing = bank.unit_of_work(lambda work: None)
    assert nothing.appended == [] and nothing.position is None and nothing.token is None


# -- waiting ---------------------------------------------------------------------------


def test_a_read_waits_for_a_runner_following_in_a_thread(bank: BankService) -> None:
    runner = bank.projections()
    bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    result = bank.dispatch(DepositMoney(account_id=ADA, amount=eur("25")))
    assert result.token is not None
    assert balance_of(bank.store, ADA) is None  # no runner has run yet
    stop = threading.Event()
    follower = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 0.01})
    follower.start()
    try:
        row = AccountBalancesQuery(bank.store).wait_for(result.token, timeout=PATIENT).get(ADA)
        assert row is not None and row.balance == Decimal("25")
        later = bank.dispatch(WithdrawMoney(account_id=ADA, amount=eur("5")))
        assert later.position is not None
        bank.projections().wait_for(later.position, timeout=PATIENT)
        assert balance_of(bank.store, ADA) == Decimal("20")
    finally:
        stop.set()
        follower.join()


# The child: follows the bank's projections until its stdin closes; says "ready" once the
# read model exists in the store (so the parent's wait is not refused as ReadModelNotFound).
CHILD = textwrap.dedent(
    """
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    from esgen.runtime import SQLiteEventStore
    from bank.service import BankService

    where = sys.argv[2]
    if where.startswith("postgresql://"):
        from esgen.runtime import PostgresEventStore
        dsn, _, schema = where.rpartition("#")
        store = PostgresEventStore(dsn, schema=schema)
    else:
        store = SQLiteEventStore(where)
    runner = BankService(store).projections()
    stop = threading.Event()
    follower = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 0.01})
    follower.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    follower.join()
    store.close()
    print("stopped", flush=True)
    """
)


def test_a_read_waits_for_a_runner_in_another_process(backend: Backend) -> None:
    if backend.kind == "memory":
        pytest.skip("a memory store lives in one process")
    bank = BankService(backend.store)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(BANK / "src"), backend.where],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
        query = AccountBalancesQuery(backend.store)
        total = Decimal(0)
        for amount in ("10", "20", "30"):
            result = bank.dispatch(DepositMoney(account_id=ADA, amount=eur(amount)))
            total += Decimal(amount)
            assert result.token is not None
            row = query.wait_for(result.token, timeout=PATIENT).get(ADA)
            assert row is not None and row.balance == total  # each read sees its write
        # The runner API waits the same way, whoever does the work.
        with_runner = bank.projections()
        last = bank.dispatch(WithdrawMoney(account_id=ADA, amount=eur("60")))
        assert last.position is not None
        with_runner.wait_for(last.position, timeout=PATIENT, projections=[NAME])
        assert balance_of(backend.store, ADA) == Decimal("0")
    finally:
        out, err = child.communicate(input="", timeout=PATIENT)
    assert child.returncode == 0, err
    assert out == "stopped\n", out + err


def test_a_wait_that_runs_out_raises_read_model_behind(bank: BankService) -> None:
    runner = bank.projections()  # the read model exists, but nothing runs it
    bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    result = bank.dispatch(DepositMoney(account_id=ADA, amount=eur("25")))
    assert result.position == 2 and result.token is not None
    with pytest.raises(ReadModelBehind) as caught:
        AccountBalancesQuery(bank.store).wait_for(result.token, timeout=0.05)
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert (error.projection, error.wanted, error.reached, error.timeout) == (NAME, 2, 0, 0.05)
    assert error.problem is None
    assert "read model 'account_balances' has processed events up to position 0, not yet 2" in (
        str(error)
    )
    assert "is its projection runner running" in str(error)
    # Half-way: the runner stopped after the first event, on an error it recorded.
    runner.catch_up()
    bank.dispatch(DepositMoney(account_id=ADA, amount=eur("1")))
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with progress_storage(bank.store).unit() as unit:
        unit.set_problem(NAME, Problem(at, "ZeroDivisionError", "division by zero").dumps())
    with pytest.raises(ReadModelBehind) as caught:
        runner.wait_for(3, timeout=0)
    assert (caught.value.wanted, caught.value.reached) == (3, 2)
    assert caught.value.problem == "ZeroDivisionError: division by zero"
    assert "it stopped on an error: ZeroDivisionError: division by zero" in str(caught.value)


def test_what_would_never_catch_up_is_refused_at_once(bank: BankService) -> None:
    """Each of these would wait its whole (long) timeout if it were waited for; a wait
    raises ReadModelBehind, so waiting fails the test too."""
    store = bank.store
    result = bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    query = AccountBalancesQuery(store)
    # No runner ever ran here: the read model does not exist (and looking created nothing).
    with pytest.raises(ReadModelNotFound, match="account_balances"):
        query.wait_for(1, timeout=PATIENT)
    if isinstance(store, SQLiteEventStore):
        with store.read_transaction() as conn:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'esgen_proj%'")
            assert tables.fetchall() == []
    runner = bank.projections()
    runner.catch_up()
    # A position this store never reached: the token came from another store.
    with pytest.raises(InvalidConsistencyToken, match=r"beyond this store's last event \(1\)"):
        query.wait_for("p1.2", timeout=PATIENT)
    with pytest.raises(InvalidConsistencyToken, match="not issued by this store"):
        runner.wait_for(99, timeout=PATIENT)
    # Garbage from a client, whatever the store.
    with pytest.raises(InvalidConsistencyToken, match="not a consistency token: 'abc'"):
        query.wait_for("abc", timeout=PATIENT)
    # A read model whose fields changed since its table was built.
    changed = TableSpec(NAME, AccountBalances.table.key, AccountBalances.table.columns[:-1])

    class Changed(AccountBalancesQuery):
        table: ClassVar[TableSpec] = changed

    class ChangedProjection(AccountBalances):
        table: ClassVar[TableSpec] = changed

    with pytest.raises(ProjectionNeedsRebuild, match="account_balances"):
        Changed(store).wait_for(result.token or "", timeout=PATIENT)
    from bank.registry import REGISTRY

    from esgen.runtime import ProjectionRunner
    from esgen.runtime._progress_store import looking

    with looking():  # a look: this runner must not touch the store's tables
        stale = ProjectionRunner(store, REGISTRY, [ChangedProjection()])
    with pytest.raises(ProjectionNeedsRebuild, match="account_balances"):
        stale.wait_for(1, timeout=PATIENT)
    # A projection this runner does not have.
    with pytest.raises(ValueError, match=r"no projection named nowhere here \(known: account"):
        runner.wait_for(1, timeout=PATIENT, projections=["nowhere"])


def test_nothing_recorded_is_waited_for_by_no_one(bank: BankService) -> None:
    """Position 0 (what a client without a token asks for) returns at once, even where the
    read model does not exist yet: there is nothing to wait for."""
    query = AccountBalancesQuery(bank.store)
    assert query.wait_for(0, timeout=0) is query
    assert query.wait_for("p1.0", timeout=0) is query
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        query.wait_for(0, timeout=float("nan"))
    with pytest.raises(ValueError, match="a position is an int from 0"):
        query.wait_for(-1, timeout=1)
    with pytest.raises(TypeError, match="a position is an int"):
        query.wait_for(True, timeout=1)


def test_during_a_rebuild_the_live_generation_counts(bank: BankService) -> None:
    runner = bank.projections()
    result = bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    runner.catch_up()
    # A rebuild under way, its new generation still at the start: readers see the live
    # generation, which has processed the command.
    with progress_storage(bank.store).unit() as unit:
        unit.set_checkpoint(NAME, 2, 0, active=False)
        unit.create_table(AccountBalances.table, 2)
    assert result.token is not None
    AccountBalancesQuery(bank.store).wait_for(result.token, timeout=0)
    runner.wait_for(result.token, timeout=0)
    status = runner.status()[0]
    assert status.rebuilding == (2, 0) and status.behind == 0


# -- tokens ----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=MAX_POSITION))
def test_tokens_round_trip(position: int) -> None:
    token = consistency_token(position)
    assert parse_consistency_token(token) == position
    assert quote(token, safe="") == token  # as it is in a URL, a query string, a header


@given(
    st.one_of(
        st.text(max_size=40),
        # Near misses: leading zeros, too many digits, other digits, other versions.
        st.from_regex(r"[pP][0-9]\.[0-9\u0660-\u0669+-]{0,24}", fullmatch=True),
    )
)
def test_any_other_text_is_refused_as_a_token(text: str) -> None:
    try:
        position = parse_consistency_token(text)
    except InvalidConsistencyToken as exc:
        assert "not a consistency token" in str(exc)
    else:
        assert consistency_token(position) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "p1.",
        "p1",
        "42",
        "p1.-1",
        "p1.+1",
        "p1.01",
        "p1.1.2",
        "P1.1",
        "p2.1",
        " p1.1",
        "p1.1\n",
        "p1.1_000",
        "p1.\u0663",  # an Arabic-Indic digit three: int() would take it
        f"p1.{2**63}",
        "p1." + "9" * 10_000,
    ],
)
def test_bad_tokens_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidConsistencyToken) as caught:
        parse_consistency_token(text)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("not a consistency token: ")
    assert "like 'p1.42'" in str(caught.value)
    assert len(str(caught.value)) < 200  # a huge token is not echoed whole


def test_positions_that_are_not_positions_have_no_token() -> None:
    for bad in (-1, 2**63):
        with pytest.raises(ValueError, match="a position is an int from 0"):
            consistency_token(bad)
    with pytest.raises(TypeError):
        consistency_token(True)
    with pytest.raises(InvalidConsistencyToken, match="a consistency token is text"):
        parse_consistency_token(42)  # type: ignore[arg-type]


# -- lag -------------------------------------------------------------------------------


def test_status_reports_lag_in_events_and_seconds(backend: Backend) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    bank = BankService(backend.store, clock=clock)
    bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))  # 12:00:00
    bank.dispatch(DepositMoney(account_id=ADA, amount=eur("1")))  # 12:00:01
    from bank.registry import REGISTRY

    from esgen.runtime import ProjectionRunner

    clock.set(datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC))
    runner = ProjectionRunner(backend.store, REGISTRY, [AccountBalances()], clock=clock)
    (status,) = runner.status()
    assert (status.position, status.head, status.behind) == (0, 2, 2)
    assert status.lag_seconds == 90.0  # since the oldest event not handled
    assert status.to_json()["behind"] == 2 and status.to_json()["lag_seconds"] == 90.0
    runner.catch_up()
    (status,) = runner.status()
    assert (status.behind, status.lag_seconds) == (0, 0.0)


def test_projections_status_prints_lag_in_events_and_seconds(tmp_path: Path) -> None:
    project = tmp_path / "bank"
    shutil.copytree(BANK, project, ignore=shutil.ignore_patterns("demo-out", "__pycache__"))
    path = project / "bank.sqlite"
    # Recorded a day and more ago, so the real clock of the command puts them far behind.
    clock = ManualClock(datetime.now(UTC) - timedelta(days=2))
    store = SQLiteEventStore(path, clock=clock)
    bank = BankService(store, clock=clock)
    for command in (
        OpenAccount(account_id=ADA, owner="Ada", currency="EUR"),
        DepositMoney(account_id=ADA, amount=eur("1")),
        DepositMoney(account_id=ADA, amount=eur("2")),
    ):
        bank.dispatch(command)
    bank.projections()  # built, not run: 3 events behind
    store.close()
    esgen = Path(sys.executable).parent / "esgen"
    args: list[Any] = [esgen, "projections", "status", "--store", path]
    text = subprocess.run(args, cwd=project, capture_output=True, text=True, check=False)
    assert text.returncode == 0, text.stderr
    line = next(line for line in text.stdout.splitlines() if line.startswith(NAME))
    assert "at 0 of 3  (3 behind, lag 2 d " in line, line
    raw = subprocess.run([*args, "--json"], cwd=project, capture_output=True, text=True)
    assert raw.returncode == 0, raw.stderr
    (item,) = json.loads(raw.stdout)["projections"]
    assert item["behind"] == 3 and item["lag_seconds"] >= 2 * 86400


def test_a_token_from_an_http_header_may_come_as_bytes(bank: BankService) -> None:
    """ASGI servers hand header values over as bytes: those of a token wait like it, and
    bytes that are no token are refused as one (a 400, not a 500)."""
    bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    result = bank.dispatch(DepositMoney(account_id=ADA, amount=eur("25")))
    assert result.token is not None
    bank.projections().catch_up()
    query = AccountBalancesQuery(bank.store)
    row = query.wait_for(result.token.encode("ascii"), timeout=PATIENT).get(ADA)
    assert row is not None and row.balance == Decimal("25")
    with pytest.raises(InvalidConsistencyToken, match="not a consistency token"):
        query.wait_for(b"p1.\xff", timeout=PATIENT)


def test_one_projection_name_is_not_read_as_its_letters(bank: BankService) -> None:
    with pytest.raises(TypeError, match=r"write \['account_balances'\]"):
        bank.projections().wait_for(0, timeout=PATIENT, projections="account_balances")
