"""The Transfer aggregate: the record of one movement of money between two accounts.

The money itself moves on the accounts, driven by the MoneyTransfer saga; a transfer
only knows it was requested, and how it ended.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.transfer import TransferBase, TransferState
from ..commands.transfer import CompleteTransfer, FailTransfer, RequestTransfer
from ..events.transfer import TransferCompleted, TransferFailed, TransferRequested
from ..types import TransferStatus


class TransferError(ValueError):
    """A command that makes no sense for this transfer; nothing is recorded."""


class Transfer(TransferBase):
    """Moving money from one account to another."""

    @override
    def handle_request_transfer(self, command: RequestTransfer) -> Sequence[TransferRequested]:
        if command.source_account == command.target_account:
            raise TransferError("a transfer needs two different accounts")
        if command.amount.amount <= 0:
            raise TransferError("a transfer moves a positive amount")
        return [
            TransferRequested(
                transfer_id=command.transfer_id,
                source_account=command.source_account,
                target_account=command.target_account,
                amount=command.amount,
            )
        ]

    @override
    def handle_complete_transfer(self, command: CompleteTransfer) -> Sequence[TransferCompleted]:
        self._check_open()
        return [TransferCompleted(transfer_id=self.id)]

    @override
    def handle_fail_transfer(self, command: FailTransfer) -> Sequence[TransferFailed]:
        self._check_open()
        return [TransferFailed(transfer_id=self.id, reason=command.reason)]

    def _check_open(self) -> None:
        if self.state.status is not TransferStatus.REQUESTED:
            raise TransferError(f"transfer {self.id} already ended ({self.state.status})")

    @override
    def apply_transfer_requested(self, event: TransferRequested) -> TransferState:
        return TransferState(
            source_account=event.source_account,
            target_account=event.target_account,
            amount=event.amount,
            status=TransferStatus.REQUESTED,
        )

    @override
    def apply_transfer_completed(self, event: TransferCompleted) -> TransferState:
        return self.state.evolve(status=TransferStatus.COMPLETED)

    @override
    def apply_transfer_failed(self, event: TransferFailed) -> TransferState:
        return self.state.evolve(status=TransferStatus.FAILED)
