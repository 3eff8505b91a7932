"""The bank example at work (`make demo`): commands on a SQLite event store, and reading back.

Opens accounts, deposits, withdraws, is refused an overdraft, reads events that older
code stored in older versions (through a derived and a hand-written upcaster), asks what
an account looked like at an earlier time, runs two transfers through the MoneyTransfer
saga (one completes, one is compensated), rebuilds the balances projection, and moves
money between two accounts in one unit of work.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import assert_never, cast
from uuid import UUID

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "src"))

from bank.aggregates.account import AccountState  # noqa: E402
from bank.commands.account import DepositMoney, OpenAccount, WithdrawMoney  # noqa: E402
from bank.commands.transfer import RequestTransfer  # noqa: E402
from bank.events.account import MoneyWithdrawn, WithdrawalRejected  # noqa: E402
from bank.service import BankService, BankUnitOfWork  # noqa: E402
from bank.types import Money  # noqa: E402

from esgen.runtime import ExpectedVersion, NewEvent, SQLiteEventStore, command_context  # noqa: E402

ADA = UUID("a0000000-0000-4000-8000-000000000001")
GRACE = UUID("a0000000-0000-4000-8000-000000000002")
ALAN = UUID("a0000000-0000-4000-8000-000000000003")
TO_ALAN = UUID("b0000000-0000-4000-8000-000000000001")
TO_GRACE = UUID("b0000000-0000-4000-8000-000000000002")


class StepClock:
    """A clock that moves one minute per event, so times in the story are readable."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def main() -> None:
    folder = HERE / "demo-out"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    clock = StepClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    store = SQLiteEventStore(folder / "bank.sqlite", clock=clock)
    bank = BankService(store, clock=clock)
    (saga_runner,) = bank.sagas()  # deployed first: it follows every event from now on
    print(f"Event store: {store_path(folder)} (SQLite, WAL)\n")

    print("1. Events stored long ago by older code, in older versions:")
    old = [
        NewEvent("AccountOpened", 1, '{"owner": "Grace"}'),
        NewEvent("MoneyDeposited", 1, '{"amount": {"amount": "250", "currency": "EUR"}}'),
        NewEvent("AccountClosed", 1, "{}"),
    ]
    store.append(f"Account-{GRACE}", old, ExpectedVersion.NO_STREAM)
    for new_event in old:
        print(f"   stored {new_event.event_type} v{new_event.event_version} {new_event.data}")

    print("\n2. Commands on Ada's account:")
    with command_context(user="teller-7"):
        for command in (
            OpenAccount(account_id=ADA, owner="Ada", currency="EUR"),
            DepositMoney(account_id=ADA, amount=eur("100.00")),
            WithdrawMoney(account_id=ADA, amount=eur("30.00")),
            WithdrawMoney(account_id=ADA, amount=eur("500.00")),
        ):
            result = bank.dispatch(command)
            for event in result.events:
                print(f"   {type(command).__name__:14} -> {event!r}")
    ada = bank.account_repository.load(ADA)
    print(
        f"   Ada's balance: {ada.state.balance.amount} {ada.state.balance.currency} "
        f"(the 500.00 overdraft was rejected)"
    )

    print("\n3. Grace's old events read back as the latest versions:")
    for entry in bank.account_repository.history(GRACE):
        stored = entry.recorded
        print(
            f"   stored v{stored.event_version} {stored.event_type:14} -> read as {entry.event!r}"
        )
    grace = bank.account_repository.load(GRACE)
    print(
        f"   Grace's account: {grace.state.status.value}, "
        f"{grace.state.balance.amount} {grace.state.balance.currency}"
    )

    print("\n4. Ada's account as of an earlier time, and each step of its history:")
    history = bank.account_repository.history(ADA)
    after_deposit = history[1].recorded.recorded_at
    earlier = bank.account_repository.load_at(ADA, at=after_deposit)
    print(
        f"   at {after_deposit:%H:%M} the balance was {earlier.state.balance.amount}; "
        f"now it is {ada.state.balance.amount}"
    )
    for entry in history:
        recorded = entry.recorded
        user = recorded.metadata.get("user")
        state = cast(AccountState, entry.state)
        print(
            f"   v{recorded.stream_version} {recorded.recorded_at:%H:%M} "
            f"{recorded.event_type:18} by {user}: balance {state.balance.amount}"
        )

    print("\n5. Two transfers through the MoneyTransfer saga:")
    bank.dispatch(OpenAccount(account_id=ALAN, owner="Alan", currency="EUR"))
    for transfer_id, target, amount in ((TO_ALAN, ALAN, "25.00"), (TO_GRACE, GRACE, "10.00")):
        request = RequestTransfer(
            transfer_id=transfer_id, source_account=ADA, target_account=target, amount=eur(amount)
        )
        bank.dispatch(request)
    saga_runner.catch_up()
    for transfer_id, label in ((TO_ALAN, "Ada -> Alan 25.00"), (TO_GRACE, "Ada -> Grace 10.00")):
        saga = saga_runner.instance(transfer_id)
        assert saga is not None
        steps = ", ".join(type(c).__name__ for c in saga.steps)
        undone = ", ".join(type(c).__name__ for c in saga.compensated) or "nothing"
        print(f"   {label}: {saga.status}; sent {steps}; compensated with {undone}")
        if saga.reason:
            print(f"      why: {saga.reason}")
    for who, account in (("Ada", ADA), ("Alan", ALAN), ("Grace", GRACE)):
        state = bank.account_repository.load(account).state
        print(f"   {who}: {state.balance.amount} {state.balance.currency} ({state.status.value})")

    print("\n6. The account_balances read model, live and after a rebuild:")
    projections = bank.projections()
    projections.catch_up()
    live = read_model(folder)
    for row in live:
        print(f"   {row}")
    projections.rebuild("account_balances")
    rebuilt = read_model(folder)
    verdict = "identical to the live one" if rebuilt == live else "DIFFERENT"
    print(f"   rebuilt from all {store.head_position()} events: {verdict}")

    print("\n7. Alan pays Ada 5.00 back: both accounts change in one unit of work:")
    paid = bank.unit_of_work(lambda work: pay_back(work, eur("5.00")))
    streams = ", ".join(r.stream_id.partition("-")[0] for r in paid.appended)
    print(f"   {paid.value}: {len(paid.events)} events in one append ({streams})")
    for who, account in (("Ada", ADA), ("Alan", ALAN)):
        state = bank.account_repository.load(account).state
        print(f"   {who}: {state.balance.amount} {state.balance.currency}")
    store.close()


def pay_back(work: BankUnitOfWork, amount: Money) -> str:
    """Withdraw from Alan and deposit to Ada, or neither: the events of both commands are
    appended together when this returns, and a concurrent change to either account runs it
    again on fresh state."""
    for event in work.dispatch(WithdrawMoney(account_id=ALAN, amount=amount)):
        match event:
            case MoneyWithdrawn():
                work.dispatch(DepositMoney(account_id=ADA, amount=amount))
                return "paid"
            case WithdrawalRejected():
                return f"not paid: {event.reason}"
            case _:
                assert_never(event)
    return "nothing happened"


def read_model(folder: Path) -> list[tuple[object, ...]]:
    """The read model as any SQL client sees it."""
    with sqlite3.connect(folder / "bank.sqlite") as conn:
        query = "SELECT owner, balance, currency, status FROM account_balances ORDER BY owner"
        return conn.execute(query).fetchall()


def store_path(folder: Path) -> str:
    return str((folder / "bank.sqlite").relative_to(HERE))


if __name__ == "__main__":
    main()
