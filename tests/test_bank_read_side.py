"""The bank example's saga and projection on a SQLite file: the command line, and what the
example's own store-parametrised tests (examples/bank/tests/bank/test_bank_read_side.py,
run by test_examples.py) do not cover."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from harness import EXAMPLES
from pydantic import ValidationError

from esgen.runtime import NewEvent, SQLiteEventStore, UnknownEventType, command_context
from esgen.runtime.testing import ManualClock

sys.path.insert(0, str(EXAMPLES / "bank" / "src"))

from bank.commands.account import DepositMoney, OpenAccount
from bank.commands.transfer import RequestTransfer
from bank.projections.account_balances import AccountBalancesFields as F
from bank.projections.account_balances import AccountBalancesQuery
from bank.service import BankService
from bank.types import Money

ADA, GRACE = UUID(int=1), UUID(int=2)


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def bank(tmp_path: Path, clock: ManualClock) -> Iterator[BankService]:
    store = SQLiteEventStore(tmp_path / "bank.sqlite", clock=clock)
    service = BankService(store, clock=clock)
    service.sagas()  # deployed before any event: they follow everything from here on
    service.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    service.dispatch(DepositMoney(account_id=ADA, amount=eur("100")))
    service.dispatch(OpenAccount(account_id=GRACE, owner="Grace", currency="EUR"))
    yield service
    store.close()


def balance(bank: BankService, account: UUID) -> Decimal:
    return bank.account_repository.load(account).state.balance.amount


def transfer(bank: BankService, amount: str, target: UUID = GRACE) -> UUID:
    transfer_id = uuid4()
    request = RequestTransfer(
        transfer_id=transfer_id, source_account=ADA, target_account=target, amount=eur(amount)
    )
    bank.dispatch(request)
    for runner in bank.sagas():
        runner.catch_up()
    return transfer_id


def saga(bank: BankService, transfer_id: UUID) -> Any:
    (runner,) = bank.sagas()
    return runner.instance(transfer_id)


def test_commands_from_a_saga_carry_correlation_and_causation(bank: BankService) -> None:
    transfer_id = uuid4()
    with command_context(correlation_id="request-42", user="web"):
        bank.dispatch(
            RequestTransfer(
                transfer_id=transfer_id, source_account=ADA, target_account=GRACE, amount=eur("5")
            )
        )
    for runner in bank.sagas():
        runner.catch_up()
    events = bank.store.read_all(limit=1000)
    requested = next(e for e in events if e.event_type == "TransferRequested")
    withdrawn = next(e for e in events if e.event_type == "MoneyWithdrawn")
    deposited = next(
        e for e in events if e.event_type == "MoneyDeposited" and e.stream_id == f"Account-{GRACE}"
    )
    assert (
        requested.correlation_id
        == withdrawn.correlation_id
        == deposited.correlation_id
        == "request-42"
    )
    assert withdrawn.causation_id == str(requested.event_id)
    assert deposited.causation_id == str(withdrawn.event_id)


def test_the_command_line_runs_the_contexts_projections_and_sagas(
    bank: BankService, tmp_path: Path
) -> None:
    from click.testing import CliRunner
    from harness import chdir

    from esgen.cli import main

    bank.dispatch(
        RequestTransfer(
            transfer_id=uuid4(), source_account=ADA, target_account=GRACE, amount=eur("1")
        )
    )
    store = str(tmp_path / "bank.sqlite")
    logger = logging.getLogger("esgen.runtime")
    logging_before = (logger.handlers[:], logger.level, logger.propagate)
    with chdir(EXAMPLES / "bank"):
        runner = CliRunner()
        sagas = runner.invoke(main, ["sagas", "run", "-v", "--store", store])
        saga_status = runner.invoke(main, ["sagas", "status", "--json", "--store", store])
        status = runner.invoke(main, ["projections", "status", "--store", store])
        catch_up = runner.invoke(main, ["projections", "catch-up", "--store", store])
        rebuild = runner.invoke(
            main, ["projections", "rebuild", "account_balances", "--store", store]
        )
        unknown = runner.invoke(main, ["projections", "rebuild", "nope", "--store", store])
        missing = runner.invoke(
            main, ["projections", "status", "--store", str(tmp_path / "no.sqlite")]
        )
    assert sagas.exit_code == 0 and "sagas handled 3 event(s)" in sagas.output, sagas.output
    (transfers,) = json.loads(saga_status.stdout)["sagas"]
    assert transfers["counts"]["completed"] == 1 and transfers["behind"] == 0
    assert (logger.handlers, logger.level, logger.propagate) == logging_before, (
        "the commands leave the runtime's logging as they found it"
    )
    assert (
        status.exit_code == 0
        and "account_balances" in status.output
        # Looking builds nothing: the first catch-up makes the table.
        and "not built in this store yet" in status.output
    )
    assert catch_up.exit_code == 0 and "projections are up to date" in catch_up.output
    assert rebuild.exit_code == 0 and "account_balances rebuilt from" in rebuild.output
    assert unknown.exit_code == 2 and "no projection 'nope'" in unknown.output
    assert missing.exit_code == 2 and "no event store at" in missing.output
    rows = AccountBalancesQuery(bank.store).list(order_by=F.owner.asc())
    assert [(row.owner, row.balance) for row in rows] == [
        ("Ada", Decimal(99)),
        ("Grace", Decimal(1)),
    ]


def test_the_command_line_never_makes_another_database_a_store(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from harness import chdir

    from esgen.cli import main

    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    outside = tmp_path / "no-project"
    outside.mkdir()
    runner = CliRunner()
    with chdir(EXAMPLES / "bank"):
        status = runner.invoke(main, ["projections", "status", "--store", str(other)])
        sagas = runner.invoke(main, ["sagas", "run", "--store", str(other)])
    with chdir(outside):
        lost = runner.invoke(main, ["projections", "status", "--store", str(other)])
    assert status.exit_code == 2 and "holds no esgen event store" in status.output
    assert sagas.exit_code == 2 and "holds no esgen event store" in sagas.output
    assert lost.exit_code == 2 and "schema folder 'schemas' does not exist" in lost.output
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["customers"], "nothing was added to the database"


def test_a_saga_deployed_onto_history_does_not_replay_it(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SQLiteEventStore(tmp_path / "late.sqlite", clock=clock)
    bank = BankService(store, clock=clock)
    bank.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    bank.dispatch(DepositMoney(account_id=ADA, amount=eur("100")))
    bank.dispatch(OpenAccount(account_id=GRACE, owner="Grace", currency="EUR"))
    bank.dispatch(
        RequestTransfer(
            transfer_id=uuid4(), source_account=ADA, target_account=GRACE, amount=eur("30")
        )
    )
    (runner,) = bank.sagas()  # deployed after the request: history is not acted on
    assert runner.catch_up() == 0
    assert balance(bank, ADA) == Decimal(100)
    (replaying,) = BankService(SQLiteEventStore(tmp_path / "late.sqlite", clock=clock)).sagas()
    assert replaying.catch_up() == 0, "the checkpoint is kept: start= only counts the first time"
    store.close()


def test_a_second_starting_event_does_not_restart_the_saga(bank: BankService) -> None:
    from bank.events.transfer import TransferRequested

    transfer_id = transfer(bank, "10")
    before = bank.store.head_position()
    bank.store.append(
        "Duplicate-1",
        [
            NewEvent.from_event(
                TransferRequested(
                    transfer_id=transfer_id,
                    source_account=ADA,
                    target_account=GRACE,
                    amount=eur("10"),
                )
            )
        ],
        0,
    )
    for runner in bank.sagas():
        runner.catch_up()
    assert bank.store.head_position() == before + 1, "no command was sent again"


def _validation_error() -> Exception:
    try:
        Money.model_validate({"amount": "lots", "currency": "EUR"})
    except ValidationError as exc:
        return exc
    raise AssertionError("'lots' is no amount")


@pytest.mark.parametrize(
    "error",
    [
        NotImplementedError("Account.handle_deposit_money"),
        KeyError("balance"),
        UnknownEventType("event type 'MoneyDeposited' is stored at version 9"),
        _validation_error(),
    ],
    ids=["unwritten handler", "bug", "unreadable event", "invalid state"],
)
def test_an_error_that_is_no_refusal_stalls_the_transfer_until_it_is_retried(
    bank: BankService, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    from bank.domain.account import Account

    def broken(self: Account, command: DepositMoney) -> Any:
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(Account, "handle_deposit_money", broken)
        transfer_id = uuid4()
        bank.dispatch(
            RequestTransfer(
                transfer_id=transfer_id, source_account=ADA, target_account=GRACE, amount=eur("5")
            )
        )
        (runner,) = bank.sagas()
        runner.catch_up()  # no error: the transfer waits, the others would go on
        (stall,) = runner.take_stalls()
        assert stall.correlation == str(transfer_id) and stall.problem is not None
        assert stall.problem.error.endswith(type(error).__name__)
        assert stall.problem.event_type == "MoneyWithdrawn"
        instance = saga(bank, transfer_id)
        assert instance.status == "stalled", instance.reason
        assert not instance.compensated, "a bug is no refusal: nothing is undone"
        assert balance(bank, ADA) == Decimal(95) and balance(bank, GRACE) == Decimal(0)
        again = runner.retry(transfer_id)  # not fixed yet
        assert again.status == "stalled" and again.problem is not None
        assert again.problem.attempts == 2
        assert balance(bank, GRACE) == Decimal(0)
    # Once the code is fixed, the same event is handled again and the transfer completes.
    # The deposit is sent now; the runner then handles the MoneyDeposited it recorded.
    (runner,) = bank.sagas()
    assert runner.retry(transfer_id).status == "running"
    runner.catch_up()
    assert saga(bank, transfer_id).status == "completed"
    assert balance(bank, ADA) == Decimal(95) and balance(bank, GRACE) == Decimal(5)
