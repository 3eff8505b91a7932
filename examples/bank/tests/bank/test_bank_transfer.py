"""Scenarios of the Transfer aggregate: one per command."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from bank.commands.transfer import CompleteTransfer, FailTransfer, RequestTransfer
from bank.domain.transfer import Transfer, TransferError
from bank.events.transfer import TransferCompleted, TransferFailed, TransferRequested
from bank.types import Money

from esgen.runtime.testing import AggregateScenario

TRANSFER = UUID("00000000-0000-4000-8000-0000000000a1")
SOURCE = UUID("00000000-0000-4000-8000-0000000000b1")
TARGET = UUID("00000000-0000-4000-8000-0000000000b2")
TEN = Money(amount=Decimal(10), currency="EUR")
REQUESTED = TransferRequested(
    transfer_id=TRANSFER, source_account=SOURCE, target_account=TARGET, amount=TEN
)


def test_request_transfer() -> None:
    (
        AggregateScenario(Transfer, TRANSFER)
        .given()
        .when(
            RequestTransfer(
                transfer_id=TRANSFER, source_account=SOURCE, target_account=TARGET, amount=TEN
            )
        )
        .then(REQUESTED)
    )


def test_a_transfer_to_the_same_account_is_refused() -> None:
    (
        AggregateScenario(Transfer, TRANSFER)
        .when(
            RequestTransfer(
                transfer_id=TRANSFER, source_account=SOURCE, target_account=SOURCE, amount=TEN
            )
        )
        .then_raises(TransferError, "two different accounts")
    )


def test_complete_transfer() -> None:
    (
        AggregateScenario(Transfer, TRANSFER)
        .given(REQUESTED)
        .when(CompleteTransfer(transfer_id=TRANSFER))
        .then(TransferCompleted(transfer_id=TRANSFER))
    )


def test_fail_transfer() -> None:
    (
        AggregateScenario(Transfer, TRANSFER)
        .given(REQUESTED)
        .when(FailTransfer(transfer_id=TRANSFER, reason="target account closed"))
        .then(TransferFailed(transfer_id=TRANSFER, reason="target account closed"))
    )


def test_an_ended_transfer_cannot_end_again() -> None:
    (
        AggregateScenario(Transfer, TRANSFER)
        .given(REQUESTED, TransferCompleted(transfer_id=TRANSFER))
        .when(FailTransfer(transfer_id=TRANSFER, reason="late"))
        .then_raises(TransferError, "already ended")
    )
