"""A small bank-account domain the contract suite writes and reads, with two versions of
one event type so that upcasting on read is exercised against every backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from esgen.runtime import Aggregate, Event, EventRegistry

__all__ = [
    "Account",
    "AccountOpened",
    "AccountOpenedV1",
    "AccountState",
    "InsufficientFunds",
    "MoneyDeposited",
    "MoneyWithdrawn",
    "make_registry",
]


class AccountOpenedV1(Event):
    event_type = "AccountOpened"
    event_version = 1
    owner: str


class AccountOpened(Event):
    event_type = "AccountOpened"
    event_version = 2
    owner: str
    currency: str


class MoneyDeposited(Event):
    event_type = "MoneyDeposited"
    event_version = 1
    amount: int


class MoneyWithdrawn(Event):
    event_type = "MoneyWithdrawn"
    event_version = 1
    amount: int


class AccountState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    owner: str
    currency: str
    balance: int = 0


class InsufficientFunds(ValueError):
    pass


class Account(Aggregate[AccountState]):
    aggregate_type = "Account"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        AccountOpened: "_opened",
        MoneyDeposited: "_deposited",
        MoneyWithdrawn: "_withdrawn",
    }

    def open(self, owner: str, currency: str = "EUR") -> None:
        if self.exists:
            raise ValueError(f"account {self.id!r} is already open")
        self.record(AccountOpened(owner=owner, currency=currency))

    def deposit(self, amount: int) -> None:
        self.record(MoneyDeposited(amount=amount))

    def withdraw(self, amount: int) -> None:
        if amount > self.state.balance:
            raise InsufficientFunds(f"balance {self.state.balance} < {amount}")
        self.record(MoneyWithdrawn(amount=amount))

    def _opened(self, event: AccountOpened) -> AccountState:
        return AccountState(owner=event.owner, currency=event.currency)

    def _deposited(self, event: MoneyDeposited) -> AccountState:
        return self.state.model_copy(update={"balance": self.state.balance + event.amount})

    def _withdrawn(self, event: MoneyWithdrawn) -> AccountState:
        return self.state.model_copy(update={"balance": self.state.balance - event.amount})


def _opened_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


def make_registry() -> EventRegistry:
    registry = EventRegistry([AccountOpenedV1, AccountOpened, MoneyDeposited, MoneyWithdrawn])
    registry.register_upcaster("AccountOpened", 1, _opened_v1_to_v2)
    registry.check()
    return registry
