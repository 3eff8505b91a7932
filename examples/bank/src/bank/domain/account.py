"""The Account aggregate: what its commands decide, and how its events change its state.

Money arrives and leaves as events; a withdrawal the balance cannot cover, or a deposit
to a closed account, is recorded as a rejection (so a transfer waiting on it can react)
rather than raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from typing_extensions import override

from ..aggregates.account import AccountBase, AccountState
from ..commands.account import (
    CloseAccount,
    DepositMoney,
    OpenAccount,
    RefundMoney,
    WithdrawMoney,
)
from ..events.account import (
    AccountClosed,
    AccountOpened,
    DepositRejected,
    MoneyDeposited,
    MoneyRefunded,
    MoneyWithdrawn,
    WithdrawalRejected,
)
from ..types import AccountStatus, Money, TransferWithdrawal


class AccountError(ValueError):
    """A command that makes no sense for this account; nothing is recorded."""


class Account(AccountBase):
    """A customer's account, holding money in one currency."""

    # -- decisions ------------------------------------------------------------------

    # OpenAccount `creates` the account (schemas/bank.yaml): the runtime refuses it on an
    # account that exists, and every other command on one that does not, before these run.
    @override
    def handle_open_account(self, command: OpenAccount) -> Sequence[AccountOpened]:
        return [AccountOpened(owner=command.owner, currency=command.currency)]

    @override
    def handle_deposit_money(
        self, command: DepositMoney
    ) -> Sequence[MoneyDeposited | DepositRejected]:
        self._check_currency(command.amount)
        if self.state.status is AccountStatus.CLOSED:
            return [
                DepositRejected(
                    amount=command.amount,
                    reason="the account is closed",
                    transfer_id=command.transfer_id,
                )
            ]
        return [MoneyDeposited(amount=command.amount, transfer_id=command.transfer_id)]

    @override
    def handle_withdraw_money(
        self, command: WithdrawMoney
    ) -> Sequence[MoneyWithdrawn | WithdrawalRejected]:
        self._check_currency(command.amount)
        reason = None
        if self.state.status is AccountStatus.CLOSED:
            reason = "the account is closed"
        elif command.amount.amount > self.state.balance.amount:
            reason = (
                f"insufficient funds: balance {self.state.balance.amount}, "
                f"asked for {command.amount.amount}"
            )
        if reason is not None:
            rejected = WithdrawalRejected(
                amount=command.amount, reason=reason, transfer_id=command.transfer_id
            )
            return [rejected]
        return [MoneyWithdrawn(amount=command.amount, transfer_id=command.transfer_id)]

    @override
    def handle_refund_money(self, command: RefundMoney) -> Sequence[MoneyRefunded]:
        # Idempotent: only money withdrawn for that transfer, and only once.
        for withdrawal in self.state.transfer_withdrawals:
            if withdrawal.transfer_id == command.transfer_id:
                return [MoneyRefunded(amount=withdrawal.amount, transfer_id=command.transfer_id)]
        return []

    @override
    def handle_close_account(self, command: CloseAccount) -> Sequence[AccountClosed]:
        if self.state.status is AccountStatus.CLOSED:
            raise AccountError(f"account {self.id} is already closed")
        return [AccountClosed(reason=command.reason)]

    def _check_currency(self, amount: Money) -> None:
        if amount.currency != self.state.balance.currency:
            raise AccountError(
                f"account {self.id} holds {self.state.balance.currency}, not {amount.currency}"
            )

    # -- how events change the state ------------------------------------------------

    @override
    def apply_account_opened(self, event: AccountOpened) -> AccountState:
        return AccountState(
            owner=event.owner,
            balance=Money(amount=Decimal(0), currency=event.currency),
            status=AccountStatus.OPEN,
        )

    @override
    def apply_money_deposited(self, event: MoneyDeposited) -> AccountState:
        return self.state.evolve(balance=self._added(event.amount.amount))

    @override
    def apply_deposit_rejected(self, event: DepositRejected) -> AccountState:
        return self.state

    @override
    def apply_money_withdrawn(self, event: MoneyWithdrawn) -> AccountState:
        balance = self._added(-event.amount.amount)
        if event.transfer_id is None:
            return self.state.evolve(balance=balance)
        withdrawal = TransferWithdrawal(transfer_id=event.transfer_id, amount=event.amount)
        withdrawals = (*self.state.transfer_withdrawals, withdrawal)
        return self.state.evolve(balance=balance, transfer_withdrawals=withdrawals)

    @override
    def apply_withdrawal_rejected(self, event: WithdrawalRejected) -> AccountState:
        return self.state

    @override
    def apply_money_refunded(self, event: MoneyRefunded) -> AccountState:
        withdrawals = tuple(
            w for w in self.state.transfer_withdrawals if w.transfer_id != event.transfer_id
        )
        return self.state.evolve(
            balance=self._added(event.amount.amount), transfer_withdrawals=withdrawals
        )

    @override
    def apply_account_closed(self, event: AccountClosed) -> AccountState:
        return self.state.evolve(status=AccountStatus.CLOSED)

    def _added(self, delta: Decimal) -> Money:
        return self.state.balance.evolve(amount=self.state.balance.amount + delta)
