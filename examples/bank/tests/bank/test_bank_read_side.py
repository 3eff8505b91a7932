"""The read side on every store (conftest.py): the MoneyTransfer saga moving real money
between accounts, and the AccountBalances read model read through AccountBalancesQuery.

The same tests run on the memory store (fast), a SQLite file and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from bank.commands.account import CloseAccount, DepositMoney, OpenAccount
from bank.commands.transfer import FailTransfer, RequestTransfer
from bank.domain.money_transfer import MoneyTransfer
from bank.events.account import AccountClosed, AccountOpened, MoneyDeposited, MoneyWithdrawn
from bank.projections.account_balances import AccountBalancesFields as F
from bank.projections.account_balances import AccountBalancesQuery, AccountBalancesRow
from bank.service import BankService
from bank.types import Money, TransferStatus

from esgen.runtime import (
    Command,
    Event,
    EventStore,
    ExpectedVersion,
    NewEvent,
    SagaRunner,
    progress_storage,
)
from esgen.runtime.testing import ManualClock

ADA = UUID("a0000000-0000-4000-8000-000000000001")
GRACE = UUID("a0000000-0000-4000-8000-000000000002")


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@pytest.fixture
def bank(store: EventStore, clock: ManualClock) -> BankService:
    """Ada with 100 EUR, Grace with nothing, and the saga deployed before either."""
    service = BankService(store, clock=clock)
    service.sagas()  # deployed before any event: it follows everything from here on
    service.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
    service.dispatch(DepositMoney(account_id=ADA, amount=eur("100")))
    service.dispatch(OpenAccount(account_id=GRACE, owner="Grace", currency="EUR"))
    return service


def saga_runner(bank: BankService) -> SagaRunner[MoneyTransfer, UUID]:
    (runner,) = bank.sagas()
    return runner


def transfer(bank: BankService, amount: str, *, source: UUID = ADA, target: UUID = GRACE) -> UUID:
    """Request a transfer and let the saga run it to its end."""
    transfer_id = uuid4()
    bank.dispatch(
        RequestTransfer(
            transfer_id=transfer_id,
            source_account=source,
            target_account=target,
            amount=eur(amount),
        )
    )
    saga_runner(bank).catch_up()
    return transfer_id


def saga(bank: BankService, transfer_id: UUID) -> MoneyTransfer:
    instance = saga_runner(bank).instance(transfer_id)
    assert instance is not None, f"no MoneyTransfer saga for {transfer_id}"
    return instance


def balance(bank: BankService, account: UUID) -> Decimal:
    return bank.account_repository.load(account).state.balance.amount


def balances(bank: BankService) -> AccountBalancesQuery:
    """The read model, caught up with every event so far."""
    bank.projections().catch_up()
    return AccountBalancesQuery(bank.store)


def names(commands: Sequence[Command]) -> list[str]:
    return [type(command).__name__ for command in commands]


# -- the MoneyTransfer saga ---------------------------------------------------------


def test_a_transfer_moves_the_money_and_completes(bank: BankService) -> None:
    transfer_id = transfer(bank, "30")
    assert (balance(bank, ADA), balance(bank, GRACE)) == (Decimal(70), Decimal(30))
    assert bank.transfer_repository.load(transfer_id).state.status is TransferStatus.COMPLETED
    instance = saga(bank, transfer_id)
    assert instance.status == "completed"
    assert names(instance.steps) == ["WithdrawMoney", "DepositMoney", "CompleteTransfer"]
    read = balances(bank)
    assert [(row.owner, row.balance) for row in read.list(order_by=F.owner.asc())] == [
        ("Ada", Decimal(70)),
        ("Grace", Decimal(30)),
    ]


def test_a_rejected_deposit_refunds_the_source(bank: BankService) -> None:
    bank.dispatch(CloseAccount(account_id=GRACE, reason="moved away"))
    transfer_id = transfer(bank, "30")
    assert balance(bank, ADA) == Decimal(100), "the withdrawal was refunded"
    assert bank.transfer_repository.load(transfer_id).state.status is TransferStatus.FAILED
    instance = saga(bank, transfer_id)
    assert instance.status == "compensated"
    assert instance.state.failure == "deposit rejected: the account is closed"
    assert names(instance.steps) == ["WithdrawMoney", "DepositMoney", "FailTransfer"]
    assert names(instance.compensated) == ["RefundMoney"]
    history = [e.event_type for e in bank.store.read_stream(f"Account-{ADA}")]
    assert history[-2:] == ["MoneyWithdrawn", "MoneyRefunded"]
    assert balances(bank).get(ADA) == AccountBalancesRow(
        account_id=ADA, owner="Ada", balance=Decimal(100), currency="EUR", status="open"
    )


def test_a_refused_deposit_marks_the_transfer_failed_and_refunds(bank: BankService) -> None:
    nobody = UUID(int=99)  # no such account: the deposit command is refused
    transfer_id = transfer(bank, "10", target=nobody)
    assert balance(bank, ADA) == Decimal(100), "the withdrawal was refunded"
    # on_deposit_money_refused recorded why and sent FailTransfer.
    assert bank.transfer_repository.load(transfer_id).state.status is TransferStatus.FAILED
    instance = saga(bank, transfer_id)
    assert instance.status == "failed"
    assert instance.reason is not None and instance.reason.startswith("deposit refused: ")
    assert instance.state.failure == instance.reason
    assert names(instance.steps) == ["WithdrawMoney", "FailTransfer"]
    assert names(instance.compensated) == ["RefundMoney"]
    history = [e.event_type for e in bank.store.read_stream(f"Transfer-{transfer_id}")]
    assert history == ["TransferRequested", "TransferFailed"]


def test_a_refused_withdrawal_marks_the_transfer_failed(bank: BankService) -> None:
    nobody = UUID(int=98)  # no such account: the withdrawal command is refused
    transfer_id = transfer(bank, "5", source=nobody)
    assert bank.transfer_repository.load(transfer_id).state.status is TransferStatus.FAILED
    instance = saga(bank, transfer_id)
    assert instance.status == "failed"
    assert instance.reason is not None and instance.reason.startswith("withdrawal refused: ")
    assert instance.steps[-1] == FailTransfer(transfer_id=transfer_id, reason=instance.reason)
    assert instance.compensated == []  # the refused withdrawal is no step to undo
    assert balance(bank, GRACE) == Decimal(0)


def test_an_overdraft_fails_the_transfer_without_moving_money(bank: BankService) -> None:
    transfer_id = transfer(bank, "500")
    assert (balance(bank, ADA), balance(bank, GRACE)) == (Decimal(100), Decimal(0))
    assert bank.transfer_repository.load(transfer_id).state.status is TransferStatus.FAILED
    instance = saga(bank, transfer_id)
    assert instance.status == "failed"
    assert instance.state.failure == (
        "withdrawal rejected: insufficient funds: balance 100, asked for 500"
    )
    # The refund is asked for; the account, having withdrawn nothing, refunds nothing.
    assert names(instance.compensated) == ["RefundMoney"]
    assert "MoneyRefunded" not in [e.event_type for e in bank.store.read_stream(f"Account-{ADA}")]
    assert balances(bank).count(F.balance.eq(Decimal(100))) == 1


def test_a_transfer_waiting_past_its_deadline_is_compensated(
    bank: BankService, clock: ManualClock
) -> None:
    runner = saga_runner(bank)
    transfer_id = uuid4()
    bank.dispatch(
        RequestTransfer(
            transfer_id=transfer_id, source_account=ADA, target_account=GRACE, amount=eur("20")
        )
    )
    # The saga handles the request only: the withdrawal it sends is recorded after it.
    runner.catch_up(until=bank.store.head_position())
    assert saga(bank, transfer_id).status == "running"
    assert balance(bank, ADA) == Decimal(80)
    clock.advance(timedelta(minutes=59))
    assert runner.expire() == 0
    clock.advance(timedelta(minutes=2))
    assert runner.expire() == 1
    instance = saga(bank, transfer_id)
    assert instance.status == "timed_out"
    assert names(instance.compensated) == ["RefundMoney"]
    assert balance(bank, ADA) == Decimal(100), "the withdrawal was refunded"
    runner.catch_up()  # events of a timed-out instance change nothing any more
    assert saga(bank, transfer_id).status == "timed_out"
    assert balance(bank, GRACE) == Decimal(0)


def test_redelivery_sends_no_command_twice(bank: BankService) -> None:
    transfer(bank, "30")
    head = bank.store.head_position()
    # The checkpoint set back, as a crash between commit and acknowledgement could leave it:
    # every event comes again, and the saga recognises each one.
    with progress_storage(bank.store).unit() as unit:
        unit.set_checkpoint("saga:MoneyTransfer", 1, 0, active=True)
    assert saga_runner(bank).catch_up() == 0
    assert bank.store.head_position() == head, "no command was sent again"
    assert (balance(bank, ADA), balance(bank, GRACE)) == (Decimal(70), Decimal(30))


# -- the AccountBalances read model -----------------------------------------------


def open_with(store: EventStore, owner: str, balance: str) -> UUID:
    """An account whose history leaves it at `balance`, recorded as it stands: the
    projection shows what was recorded, overdrafts an older system allowed included."""
    account = uuid4()
    amount = Decimal(balance)
    events: list[Event] = [AccountOpened(owner=owner, currency="EUR")]
    if amount > 0:
        events.append(MoneyDeposited(amount=eur(balance)))
    elif amount < 0:
        events.append(MoneyWithdrawn(amount=eur(str(-amount))))
    recorded = [NewEvent.from_event(event) for event in events]
    store.append(f"Account-{account}", recorded, ExpectedVersion.NO_STREAM)
    return account


# Sorted as text, the largest would be 98765432109876543210.99, 3.00, 20.00, 1E+3, 100.00,
# and -0.25 would come before -400.00: the query API orders them as numbers.
MIXED = {
    "Alan": ["-400.00", "20.00"],
    "Barbara": ["3.00", "0.5"],
    "Edsger": ["100.00", "-0.25"],
    "Grace": ["98765432109876543210.99"],
    "Ada": ["0", "1E+3"],
}


@pytest.fixture
def mixed(store: EventStore) -> dict[UUID, tuple[str, Decimal]]:
    return {
        open_with(store, owner, amount): (owner, Decimal(amount))
        for owner, amounts in MIXED.items()
        for amount in amounts
    }


def test_the_largest_balances_order_numerically(
    bank: BankService, mixed: dict[UUID, tuple[str, Decimal]]
) -> None:
    read = balances(bank)
    expected = sorted([b for _, b in mixed.values()] + [Decimal(100), Decimal(0)], reverse=True)
    top = read.list(order_by=F.balance.desc(), limit=3)
    assert [row.balance for row in top] == expected[:3]
    assert top[0].owner == "Grace" and top[0].balance == Decimal("98765432109876543210.99")
    everyone = read.list(order_by=F.balance.asc())
    assert [row.balance for row in everyone] == sorted(expected)
    assert [row.balance for row in everyone][:2] == [Decimal("-400.00"), Decimal("-0.25")]
    between = read.list(*F.balance.between(Decimal("0.5"), Decimal(100)), order_by=F.balance.asc())
    assert [row.balance for row in between] == [Decimal("0.5"), Decimal(3), Decimal(20),
                                                 Decimal(100), Decimal(100)]  # fmt: skip
    # Equality is Decimal's: 1E+3 and 1000.00 are the same amount.
    assert [row.owner for row in read.list(F.balance.eq(Decimal("1000.00")))] == ["Ada"]


def test_the_accounts_of_an_owner(
    bank: BankService, mixed: dict[UUID, tuple[str, Decimal]]
) -> None:
    read = balances(bank)
    adas = read.list(F.owner.eq("Ada"), order_by=F.balance.desc())
    assert [row.balance for row in adas] == [Decimal(1000), Decimal(100), Decimal(0)]
    assert {row.account_id for row in adas} == {ADA} | {
        account for account, (owner, _) in mixed.items() if owner == "Ada"
    }
    several = read.list(F.owner.in_(["Alan", "Edsger"]), order_by=F.balance.asc(), limit=2)
    assert [(row.owner, row.balance) for row in several] == [
        ("Alan", Decimal("-400.00")),
        ("Edsger", Decimal("-0.25")),
    ]
    assert read.exists(F.owner.eq("Barbara"))
    assert not read.exists(F.owner.eq("Nobody"))


def test_counts(bank: BankService, mixed: dict[UUID, tuple[str, Decimal]]) -> None:
    bank.dispatch(CloseAccount(account_id=GRACE, reason="moved away"))
    read = balances(bank)
    assert read.count() == len(mixed) + 2
    assert read.count(F.balance.lt(Decimal(0))) == 2  # overdrawn
    assert read.count(F.owner.eq("Ada"), F.balance.gt(Decimal(0))) == 2
    assert read.count(F.status.eq("closed")) == 1
    assert read.count(F.status.ne("closed")) == len(mixed) + 1


def test_paging_through_the_largest_balances(
    bank: BankService, mixed: dict[UUID, tuple[str, Decimal]]
) -> None:
    read = balances(bank)
    pages = [read.list(order_by=F.balance.desc(), limit=4, offset=offset) for offset in (0, 4, 8)]
    assert [len(page) for page in pages] == [4, 4, len(mixed) + 2 - 8]
    assert [row for page in pages for row in page] == read.list(order_by=F.balance.desc())


def test_a_rebuild_agrees_with_the_live_read_model(bank: BankService) -> None:
    transfer(bank, "30")
    bank.dispatch(CloseAccount(account_id=GRACE, reason="moved away"))
    transfer(bank, "10")  # rejected by the closed account, and refunded
    runner = bank.projections()
    runner.catch_up()
    read = AccountBalancesQuery(bank.store)
    live = read.list(order_by=F.owner.asc())
    assert live == [
        AccountBalancesRow(
            account_id=ADA, owner="Ada", balance=Decimal(70), currency="EUR", status="open"
        ),
        AccountBalancesRow(
            account_id=GRACE, owner="Grace", balance=Decimal(30), currency="EUR", status="closed"
        ),
    ]
    runner.rebuild("account_balances")
    assert read.list(order_by=F.owner.asc()) == live
    assert read.list(order_by=F.balance.desc(), limit=1) == live[:1]


def test_the_read_model_closes_an_account(bank: BankService, store: EventStore) -> None:
    closed = open_with(store, "Alan", "5")
    store.append(f"Account-{closed}", [NewEvent.from_event(AccountClosed(reason="moved away"))], 2)
    read = balances(bank)
    row = read.get(closed)
    assert row is not None and (row.status, row.balance) == ("closed", Decimal(5))
    assert read.get(uuid4()) is None
