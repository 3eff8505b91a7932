"""Scenarios of the MoneyTransfer saga: one per event it handles, and its deadline."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest
from bank.commands.account import DepositMoney, RefundMoney, WithdrawMoney
from bank.commands.transfer import CompleteTransfer, FailTransfer
from bank.domain.account import AccountError
from bank.domain.money_transfer import MoneyTransfer
from bank.events.account import (
    DepositRejected,
    MoneyDeposited,
    MoneyWithdrawn,
    WithdrawalRejected,
)
from bank.events.transfer import TransferRequested
from bank.sagas.money_transfer import MoneyTransferState
from bank.types import Money

from esgen.runtime.testing import SagaScenario

TRANSFER = UUID("00000000-0000-4000-8000-0000000000c1")
SOURCE = UUID("00000000-0000-4000-8000-0000000000d1")
TARGET = UUID("00000000-0000-4000-8000-0000000000d2")
TEN = Money(amount=Decimal(10), currency="EUR")
REQUESTED = TransferRequested(
    transfer_id=TRANSFER, source_account=SOURCE, target_account=TARGET, amount=TEN
)
WITHDRAW = WithdrawMoney(account_id=SOURCE, amount=TEN, transfer_id=TRANSFER)
WITHDRAWN = MoneyWithdrawn(amount=TEN, transfer_id=TRANSFER)
STARTED = MoneyTransferState(source_account=SOURCE, target_account=TARGET, amount=TEN)


def transfer() -> SagaScenario[MoneyTransfer, UUID]:
    return SagaScenario(MoneyTransfer, TRANSFER)


def test_money_transfer_on_transfer_requested() -> None:
    transfer().when(REQUESTED).then_sends(WITHDRAW).then_state(STARTED).then_status("running")


def test_money_transfer_on_money_withdrawn() -> None:
    (
        transfer()
        .given(REQUESTED)
        .when(WITHDRAWN)
        .then_sends(DepositMoney(account_id=TARGET, amount=TEN, transfer_id=TRANSFER))
        .then_status("running")
    )


def test_money_transfer_on_withdrawal_rejected() -> None:
    reason = "withdrawal rejected: insufficient funds"
    saga = (
        transfer()
        .given(REQUESTED)
        .when(WithdrawalRejected(amount=TEN, reason="insufficient funds", transfer_id=TRANSFER))
        .then_sends(FailTransfer(transfer_id=TRANSFER, reason=reason))
        .then_compensates(RefundMoney(account_id=SOURCE, amount=TEN, transfer_id=TRANSFER))
        .then_state(STARTED.evolve(failure=reason))
        .then_status("failed")
    )
    assert saga.reason == reason


def test_money_transfer_on_money_deposited() -> None:
    (
        transfer()
        .given(REQUESTED, WITHDRAWN)
        .when(MoneyDeposited(amount=TEN, transfer_id=TRANSFER))
        .then_sends(CompleteTransfer(transfer_id=TRANSFER))
        .then_status("completed")
    )


def test_money_transfer_on_deposit_rejected_refunds_the_source() -> None:
    (
        transfer()
        .given(REQUESTED, WITHDRAWN)
        .when(DepositRejected(amount=TEN, reason="the account is closed", transfer_id=TRANSFER))
        .then_sends(
            FailTransfer(transfer_id=TRANSFER, reason="deposit rejected: the account is closed")
        )
        .then_compensates(RefundMoney(account_id=SOURCE, amount=TEN, transfer_id=TRANSFER))
        .then_state(STARTED.evolve(failure="deposit rejected: the account is closed"))
        .then_status("compensated")
    )


def test_a_refused_deposit_fails_the_transfer_and_refunds_the_source() -> None:
    closed = AccountError("account closed")
    reason = "deposit refused: account closed"
    (
        transfer()
        .given(REQUESTED)
        .when(WITHDRAWN, failing={DepositMoney: closed})
        .then_sends(FailTransfer(transfer_id=TRANSFER, reason=reason))
        .then_compensates(RefundMoney(account_id=SOURCE, amount=TEN, transfer_id=TRANSFER))
        .then_state(STARTED.evolve(failure=reason))
        .then_status("failed")
    )


def test_a_refused_withdrawal_fails_the_transfer() -> None:
    reason = "withdrawal refused: WithdrawMoney refused (failing= in the scenario)"
    (
        transfer()
        .when(REQUESTED, failing=(WithdrawMoney,))
        .then_sends(FailTransfer(transfer_id=TRANSFER, reason=reason))
        .then_compensates()  # nothing was withdrawn, so nothing to refund
        .then_state(STARTED.evolve(failure=reason))
        .then_status("failed")
    )


def test_a_transfer_that_takes_too_long_is_compensated() -> None:
    (
        transfer()
        .given(REQUESTED, WITHDRAWN)
        .when_deadline_passes()
        .then_compensates(RefundMoney(account_id=SOURCE, amount=TEN, transfer_id=TRANSFER))
        .then_status("timed_out")
    )


def test_a_completed_transfer_has_no_deadline_to_pass() -> None:
    # As the runner: only running instances time out, so no refund can follow completion.
    completed = transfer().given(
        REQUESTED, WITHDRAWN, MoneyDeposited(amount=TEN, transfer_id=TRANSFER)
    )
    with pytest.raises(AssertionError, match=r"the instance ended \(completed\)"):
        completed.when_deadline_passes()
