"""The AccountBalances projection: one row per account with its current balance."""

from __future__ import annotations

from decimal import Decimal

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.account import (
    AccountClosed,
    AccountOpened,
    MoneyDeposited,
    MoneyRefunded,
    MoneyWithdrawn,
)
from ..projections.account_balances import AccountBalancesBase, AccountBalancesRow


class AccountBalances(AccountBalancesBase):
    """The balance of every account, for the account overview screen."""

    @override
    def on_account_opened(self, event: AccountOpened, recorded: RecordedEvent) -> None:
        self.rows.put(
            AccountBalancesRow(
                account_id=self.aggregate_id(recorded),
                owner=event.owner,
                balance=Decimal(0),
                currency=event.currency,
                status="open",
            )
        )

    @override
    def on_money_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self._add(recorded, event.amount.amount)

    @override
    def on_money_withdrawn(self, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._add(recorded, -event.amount.amount)

    @override
    def on_money_refunded(self, event: MoneyRefunded, recorded: RecordedEvent) -> None:
        self._add(recorded, event.amount.amount)

    @override
    def on_account_closed(self, event: AccountClosed, recorded: RecordedEvent) -> None:
        self.rows.update(self.aggregate_id(recorded), status="closed")

    def _add(self, recorded: RecordedEvent, delta: Decimal) -> None:
        row = self.rows.get(self.aggregate_id(recorded))
        if row is not None:
            self.rows.put(row.evolve(balance=row.balance + delta))
