"""Scenarios of the Account aggregate: one per command, and its hand-written upcaster."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from bank.commands.account import (
    CloseAccount,
    DepositMoney,
    OpenAccount,
    RefundMoney,
    WithdrawMoney,
)
from bank.domain.account import Account, AccountError
from bank.domain.upcasting.account_closed_v1 import NOT_RECORDED
from bank.events.account import (
    AccountClosed,
    AccountOpened,
    DepositRejected,
    MoneyDeposited,
    MoneyRefunded,
    MoneyWithdrawn,
    WithdrawalRejected,
)
from bank.registry import REGISTRY
from bank.types import AccountStatus, Money

from esgen.runtime import AggregateAlreadyExists, AggregateNotFound
from esgen.runtime.testing import AggregateScenario, UpcasterScenario

ACCOUNT = UUID("00000000-0000-4000-8000-000000000001")
TRANSFER = UUID("00000000-0000-4000-8000-000000000002")
OPENED = AccountOpened(owner="Ada", currency="EUR")


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def test_open_account() -> None:
    (
        AggregateScenario(Account)
        .given()
        .when(OpenAccount(account_id=ACCOUNT, owner="Ada", currency="EUR"))
        .then(AccountOpened(owner="Ada", currency="EUR"))
    )


def test_open_account_twice_is_refused() -> None:
    (
        AggregateScenario(Account)
        .given(OPENED)
        .when(OpenAccount(account_id=ACCOUNT, owner="Ada", currency="EUR"))
        .then_raises(AggregateAlreadyExists, "OpenAccount creates it")
    )


def test_deposit_money() -> None:
    account = (
        AggregateScenario(Account)
        .given(OPENED)
        .when(DepositMoney(account_id=ACCOUNT, amount=eur("10.50")))
        .then(MoneyDeposited(amount=eur("10.50")))
    )
    assert account.state.balance == eur("10.50")


def test_deposit_to_a_closed_account_is_rejected_not_raised() -> None:
    (
        AggregateScenario(Account)
        .given(OPENED, AccountClosed(reason="moved away"))
        .when(DepositMoney(account_id=ACCOUNT, amount=eur("5"), transfer_id=TRANSFER))
        .then(
            DepositRejected(amount=eur("5"), reason="the account is closed", transfer_id=TRANSFER)
        )
    )


def test_deposit_in_another_currency_is_refused() -> None:
    wrong = Money(amount=Decimal(1), currency="USD")
    (
        AggregateScenario(Account)
        .given(OPENED)
        .when(DepositMoney(account_id=ACCOUNT, amount=wrong))
        .then_raises(AccountError, "holds EUR, not USD")
    )


def test_deposit_to_an_account_never_opened_is_refused() -> None:
    (
        AggregateScenario(Account)
        .given()
        .when(DepositMoney(account_id=ACCOUNT, amount=eur("1")))
        .then_raises(AggregateNotFound, "OpenAccount creates it")
    )


def test_withdraw_money() -> None:
    account = (
        AggregateScenario(Account)
        .given(OPENED, MoneyDeposited(amount=eur("30")))
        .when(WithdrawMoney(account_id=ACCOUNT, amount=eur("12.25")))
        .then(MoneyWithdrawn(amount=eur("12.25")))
    )
    assert account.state.balance == eur("17.75")


def test_an_overdraft_is_rejected() -> None:
    (
        AggregateScenario(Account)
        .given(OPENED, MoneyDeposited(amount=eur("5")))
        .when(WithdrawMoney(account_id=ACCOUNT, amount=eur("6")))
        .then(
            WithdrawalRejected(
                amount=eur("6"), reason="insufficient funds: balance 5, asked for 6"
            )
        )
    )


def test_refund_money() -> None:
    withdrawn = MoneyWithdrawn(amount=eur("5"), transfer_id=TRANSFER)
    account = (
        AggregateScenario(Account)
        .given(OPENED, MoneyDeposited(amount=eur("5")), withdrawn)
        .when(RefundMoney(account_id=ACCOUNT, amount=eur("5"), transfer_id=TRANSFER))
        .then(MoneyRefunded(amount=eur("5"), transfer_id=TRANSFER))
    )
    assert account.state.balance == eur("5")
    assert account.state.transfer_withdrawals == ()


def test_a_refund_without_a_withdrawal_or_twice_records_nothing() -> None:
    refund = RefundMoney(account_id=ACCOUNT, amount=eur("5"), transfer_id=TRANSFER)
    AggregateScenario(Account).given(OPENED).when(refund).then()
    withdrawn = MoneyWithdrawn(amount=eur("5"), transfer_id=TRANSFER)
    refunded = MoneyRefunded(amount=eur("5"), transfer_id=TRANSFER)
    deposited = MoneyDeposited(amount=eur("5"))
    AggregateScenario(Account).given(OPENED, deposited, withdrawn, refunded).when(refund).then()


def test_close_account() -> None:
    account = (
        AggregateScenario(Account)
        .given(OPENED)
        .when(CloseAccount(account_id=ACCOUNT, reason="customer request"))
        .then(AccountClosed(reason="customer request"))
    )
    assert account.state.status is AccountStatus.CLOSED


def test_upcast_account_closed_v1() -> None:
    UpcasterScenario(REGISTRY).given("AccountClosed", 1, {}).then(
        AccountClosed(reason=NOT_RECORDED)
    )


def test_upcast_account_opened_v1_gains_the_euro() -> None:
    UpcasterScenario(REGISTRY).given("AccountOpened", 1, {"owner": "Ada"}).then(
        AccountOpened(owner="Ada", currency="EUR")
    )
