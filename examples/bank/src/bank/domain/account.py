"""The Account aggregate: what its commands decide, and how its events change its state.

Money arrives and leaves as events; a withdrawal the balance cannot cover, or a deposit
to a closed account, is recorded as a rejection (so a transfer waiting on it can react)
rather than raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

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
from ..types import AccountStatus, Money


class AccountError(ValueError):
    """A command that makes no sense for this account; nothing is recorded."""


class Account(AccountBase):
    """A customer's account, holding money in one currency."""

    # -- decisions ------------------------------------------------------------------

    def handle_open_account(self, command: OpenAccount) -> Sequence[AccountOpened]:
        if self.exists:
            raise AccountError(f"account {self.id} is already open")
        return [AccountOpened(owner=command.owner, currency=command.currency)]

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

    def handle_refund_money(self, command: RefundMoney) -> Sequence[MoneyRefunded]:
        # Idempotent: only money withdrawn for that transfer, and only once.
        withdrawn = self.state.transfer_withdrawals.get(str(command.transfer_id))
        if withdrawn is None:
            return []
        return [MoneyRefunded(amount=withdrawn, transfer_id=command.transfer_id)]

    def handle_close_account(self, command: CloseAccount) -> Sequence[AccountClosed]:
        if self.state.status is AccountStatus.CLOSED:
            raise AccountError(f"account {self.id} is already closed")
        return [AccountClosed(reason=command.reason)]

    def _check_currency(self, amount: Money) -> None:
        # `self.state` raises AggregateNotCreated for an account never opened.
        if amount.currency != self.state.balance.currency:
            raise AccountError(
                f"account {self.id} holds {self.state.balance.currency}, not {amount.currency}"
            )

    # -- how events change the state ------------------------------------------------

    def apply_account_opened(self, event: AccountOpened) -> AccountState:
        return AccountState(
            owner=event.owner,
            balance=Money(amount=Decimal(0), currency=event.currency),
            status=AccountStatus.OPEN,
        )

    def apply_money_deposited(self, event: MoneyDeposited) -> AccountState:
        return self._add(event.amount.amount)

    def apply_deposit_rejected(self, event: DepositRejected) -> AccountState:
        return self.state

    def apply_money_withdrawn(self, event: MoneyWithdrawn) -> AccountState:
        state = self._add(-event.amount.amount)
        if event.transfer_id is None:
            return state
        withdrawals = {**state.transfer_withdrawals, str(event.transfer_id): event.amount}
        return state.model_copy(update={"transfer_withdrawals": withdrawals})

    def apply_withdrawal_rejected(self, event: WithdrawalRejected) -> AccountState:
        return self.state

    def apply_money_refunded(self, event: MoneyRefunded) -> AccountState:
        state = self._add(event.amount.amount)
        withdrawals = dict(state.transfer_withdrawals)
        withdrawals.pop(str(event.transfer_id), None)
        return state.model_copy(update={"transfer_withdrawals": withdrawals})

    def apply_account_closed(self, event: AccountClosed) -> AccountState:
        return self.state.model_copy(update={"status": AccountStatus.CLOSED})

    def _add(self, delta: Decimal) -> AccountState:
        balance = self.state.balance
        new_balance = Money(amount=balance.amount + delta, currency=balance.currency)
        return self.state.model_copy(update={"balance": new_balance})
