"""Small domains for the runtime's own tests.

- A bank account with str ids, which the contract suite writes and reads, with two
  versions of one event type so that upcasting on read is exercised on every backend.
- A wallet with UUID ids, commands, declared creation and times (`now()`, `event_time`),
  as generated code builds aggregates.
- A sensor with float readings, finite ones and ones that may be NaN or infinite
  (`NanFloat`), for what stores refuse and what they give back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, overload
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from esgen.runtime import Aggregate, Command, Event, EventRegistry, NanFloat, ValueObject

__all__ = [
    "Account",
    "AccountOpened",
    "AccountOpenedV1",
    "AccountState",
    "CloseWallet",
    "Deposit",
    "DepositRefused",
    "Deposited",
    "InsufficientFunds",
    "Measured",
    "MeasuredFreely",
    "MoneyDeposited",
    "MoneyWithdrawn",
    "OpenWallet",
    "Sensor",
    "SensorState",
    "Wallet",
    "WalletClosed",
    "WalletOpened",
    "WalletState",
    "make_registry",
    "make_sensor_registry",
    "make_wallet_registry",
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


# -- the wallet: UUID ids, commands, declared creation, times ------------------------------


class OpenWallet(Command):
    command_type = "OpenWallet"
    wallet_id: UUID
    owner: str


class Deposit(Command):
    command_type = "Deposit"
    wallet_id: UUID
    amount: int


class CloseWallet(Command):
    command_type = "CloseWallet"
    wallet_id: UUID


class WalletOpened(Event):
    event_type = "WalletOpened"
    event_version = 1
    owner: str


class Deposited(Event):
    event_type = "Deposited"
    event_version = 1
    amount: int
    decided_at: datetime


class DepositRefused(Event):
    event_type = "DepositRefused"
    event_version = 1
    amount: int
    reason: str


class WalletClosed(Event):
    event_type = "WalletClosed"
    event_version = 1


class WalletState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    owner: str
    balance: int = 0
    opened_at: datetime
    changed_at: datetime
    """The recorded time of the last event applied (event_time)."""
    closed: bool = False


class Wallet(Aggregate[WalletState, UUID]):
    aggregate_type = "Wallet"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        WalletOpened: "_opened",
        Deposited: "_deposited",
        DepositRefused: "_refused",
        WalletClosed: "_closed",
    }
    command_methods: ClassVar[Mapping[type[Command], str]] = {
        OpenWallet: "open",
        Deposit: "deposit",
        CloseWallet: "close",
    }
    command_emits: ClassVar[Mapping[type[Command], tuple[type[Event], ...]]] = {
        OpenWallet: (WalletOpened,),
        Deposit: (Deposited, DepositRefused),
        CloseWallet: (WalletClosed,),
    }
    creation_commands: ClassVar[frozenset[type[Command]]] = frozenset({OpenWallet})

    # Typed views of execute, one per command (as a generated base can declare them):
    # what a command returns, and so CommandResult.events, is its own union of events.
    @overload
    def execute(self, command: OpenWallet) -> tuple[WalletOpened]: ...
    @overload
    def execute(self, command: Deposit) -> tuple[Deposited | DepositRefused, ...]: ...
    @overload
    def execute(self, command: CloseWallet) -> tuple[WalletClosed]: ...
    @overload
    def execute(self, command: Command) -> tuple[Event, ...]: ...
    def execute(self, command: Command) -> tuple[Event, ...]:
        return super().execute(command)

    # No "does it exist" checks: creation_commands makes execute check that.
    def open(self, command: OpenWallet) -> tuple[WalletOpened]:
        return (WalletOpened(owner=command.owner),)

    def deposit(self, command: Deposit) -> tuple[Deposited | DepositRefused, ...]:
        if self.state.closed or command.amount <= 0:
            reason = "closed" if self.state.closed else "not positive"
            return (DepositRefused(amount=command.amount, reason=reason),)
        return (Deposited(amount=command.amount, decided_at=self.now()),)

    def close(self, command: CloseWallet) -> tuple[WalletClosed]:
        return (WalletClosed(),)

    def _opened(self, event: WalletOpened) -> WalletState:
        when = self.event_time
        return WalletState(owner=event.owner, opened_at=when, changed_at=when)

    def _deposited(self, event: Deposited) -> WalletState:
        return self.state.model_copy(
            update={"balance": self.state.balance + event.amount, "changed_at": self.event_time}
        )

    def _refused(self, event: DepositRefused) -> WalletState:
        return self.state.model_copy(update={"changed_at": self.event_time})

    def _closed(self, event: WalletClosed) -> WalletState:
        return self.state.model_copy(update={"closed": True, "changed_at": self.event_time})


def make_wallet_registry() -> EventRegistry:
    registry = EventRegistry([WalletOpened, Deposited, DepositRefused, WalletClosed])
    registry.check()
    return registry


# -- the sensor: finite floats, and floats that may be NaN or infinite ---------------------


class Measured(Event):
    event_type = "Measured"
    event_version = 1
    value: float


class MeasuredFreely(Event):
    event_type = "MeasuredFreely"
    event_version = 1
    value: NanFloat
    history: tuple[NanFloat, ...] = ()


class SensorState(ValueObject):
    last: float = 0.0
    free: NanFloat = 0.0
    history: tuple[NanFloat, ...] = ()


class Sensor(Aggregate[SensorState]):
    aggregate_type = "Sensor"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        Measured: "_measured",
        MeasuredFreely: "_measured_freely",
    }

    def measure(self, value: float) -> None:
        self.record(Measured(value=value))

    def measure_freely(self, value: float, history: tuple[float, ...] = ()) -> None:
        self.record(MeasuredFreely(value=value, history=history))

    def _measured(self, event: Measured) -> SensorState:
        state = self.state_or_none or SensorState()
        # model_construct, as an apply method trusting its input may: nothing checks the
        # value here, so only the store's guard stands between a NaN and the snapshot.
        return SensorState.model_construct(last=event.value, free=state.free, history=state.history)

    def _measured_freely(self, event: MeasuredFreely) -> SensorState:
        state = self.state_or_none or SensorState()
        # What a generated `evolve(free=..., history=...)` does.
        return state._evolve({"free": event.value, "history": event.history})


def make_sensor_registry() -> EventRegistry:
    registry = EventRegistry([Measured, MeasuredFreely])
    registry.check()
    return registry
