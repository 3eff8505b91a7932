"""The MoneyTransfer saga: withdraw from the source, deposit to the target, and refund
the source when the deposit is rejected (for example, the target account is closed).

Whatever stops it (a rejected or refused withdrawal or deposit), the transfer is marked
failed (FailTransfer) and the saga's state records why.
"""

from __future__ import annotations

from uuid import UUID

from typing_extensions import override

from ..commands.account import DepositMoney, RefundMoney, WithdrawMoney
from ..commands.transfer import CompleteTransfer, FailTransfer
from ..events.account import (
    DepositRejected,
    MoneyDeposited,
    MoneyWithdrawn,
    WithdrawalRejected,
)
from ..events.transfer import TransferRequested
from ..sagas.money_transfer import MoneyTransferBase, MoneyTransferState


class MoneyTransfer(MoneyTransferBase):
    """Withdraw from the source, deposit to the target; refund if the deposit fails."""

    @override
    def on_transfer_requested(self, event: TransferRequested) -> None:
        self.state = MoneyTransferState(
            source_account=event.source_account,
            target_account=event.target_account,
            amount=event.amount,
        )
        self.send_withdraw_money(
            WithdrawMoney(
                account_id=event.source_account,
                amount=event.amount,
                transfer_id=event.transfer_id,
            )
        )

    @override
    def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:
        self.send_deposit_money(
            DepositMoney(
                account_id=self.state.target_account,
                amount=self.state.amount,
                transfer_id=event.transfer_id,
            )
        )

    @override
    def on_withdrawal_rejected(self, event: WithdrawalRejected) -> None:
        # Nothing was taken: the compensation asks for a refund the account ignores.
        self._give_up(f"withdrawal rejected: {event.reason}")

    @override
    def on_money_deposited(self, event: MoneyDeposited) -> None:
        self.send_complete_transfer(CompleteTransfer(transfer_id=self._transfer_id))
        self.complete()

    @override
    def on_deposit_rejected(self, event: DepositRejected) -> None:
        # A failure event: the refund of the withdrawal follows from the compensation.
        reason = f"deposit rejected: {event.reason}"
        self.state = self.state.evolve(failure=reason)
        self.send_fail_transfer(self._fail(reason))

    @override
    def on_withdraw_money_refused(self, command: WithdrawMoney, error: Exception) -> None:
        # The source account refused outright (say, it does not exist): nothing was taken.
        self._give_up(f"withdrawal refused: {error}")

    @override
    def on_deposit_money_refused(self, command: DepositMoney, error: Exception) -> None:
        # The target account refused outright (say, it does not exist): failing runs the
        # compensations, so the money withdrawn goes back to the source.
        self._give_up(f"deposit refused: {error}")

    @override
    def compensate_withdraw_money(self, sent: WithdrawMoney) -> RefundMoney | None:
        # Always ask: the account refunds only what it withdrew for this transfer, so
        # this is safe even when the withdrawal was rejected.
        assert sent.transfer_id is not None  # every withdrawal this saga sends has one
        return RefundMoney(
            account_id=sent.account_id, amount=sent.amount, transfer_id=sent.transfer_id
        )

    @property
    def _transfer_id(self) -> UUID:
        return self.correlation_value

    def _give_up(self, reason: str) -> None:
        """Record why, mark the transfer failed, and fail (the compensations run)."""
        self.state = self.state.evolve(failure=reason)
        self.send_fail_transfer(self._fail(reason))
        self.fail(reason)

    def _fail(self, reason: str) -> FailTransfer:
        return FailTransfer(transfer_id=self._transfer_id, reason=reason)
