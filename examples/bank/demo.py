"""The bank example at work (`make demo`): commands on a SQLite event store, and reading back.

Opens accounts, deposits, withdraws, is refused an overdraft, reads events that older
code stored in older versions (through a derived and a hand-written upcaster), asks what
an account looked like at an earlier time, runs two transfers through the MoneyTransfer
saga (one completes, one is compensated), rebuilds the balances projection, moves
money between two accounts in one unit of work, reads the balances through the
typed query API (the largest balances, the accounts of an owner), reads its own write
while a projection runner follows in the background (waiting with the command's token),
and ends with the `esgen inspect` commands that show what it did.

`python demo.py [FOLDER]` writes the store to FOLDER (default: demo-out next to it).
"""

from __future__ import annotations

import shutil
import sys
import threading
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
from bank.projections.account_balances import AccountBalancesFields as F  # noqa: E402
from bank.projections.account_balances import AccountBalancesQuery, AccountBalancesRow  # noqa: E402
from bank.service import BankService, BankUnitOfWork  # noqa: E402
from bank.types import Money  # noqa: E402

from esgen.runtime import (  # noqa: E402
    ExpectedVersion,
    NewEvent,
    SQLiteEventStore,
    TraceCommand,
    command_context,
)

ADA = UUID("a0000000-0000-4000-8000-000000000001")
GRACE = UUID("a0000000-0000-4000-8000-000000000002")
ALAN = UUID("a0000000-0000-4000-8000-000000000003")
ADA_SAVINGS = UUID("a0000000-0000-4000-8000-000000000004")
TO_ALAN = UUID("b0000000-0000-4000-8000-000000000001")
TO_GRACE = UUID("b0000000-0000-4000-8000-000000000002")
# The ids of the two requests that asked for the transfers, as a web API would pass them on
# (a request id header): every event that follows from one request carries it.
TO_ALAN_REQUEST = UUID("c0000000-0000-4000-8000-000000000001")
TO_GRACE_REQUEST = UUID("c0000000-0000-4000-8000-000000000002")


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
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "demo-out"
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
    for transfer_id, target, amount, request_id in (
        (TO_ALAN, ALAN, "25.00", TO_ALAN_REQUEST),
        (TO_GRACE, GRACE, "10.00", TO_GRACE_REQUEST),
    ):
        request = RequestTransfer(
            transfer_id=transfer_id, source_account=ADA, target_account=target, amount=eur(amount)
        )
        with command_context(correlation_id=request_id, user="ada"):
            bank.dispatch(request)
    saga_runner.catch_up()
    for transfer_id, label in ((TO_ALAN, "Ada -> Alan 25.00"), (TO_GRACE, "Ada -> Grace 10.00")):
        saga = saga_runner.instance(transfer_id)
        assert saga is not None
        steps = ", ".join(type(c).__name__ for c in saga.steps)
        undone = ", ".join(type(c).__name__ for c in saga.compensated) or "nothing"
        print(f"   {label}: {saga.status}; sent {steps}; compensated with {undone}")
        if saga.state.failure:
            print(f"      why: {saga.state.failure}")
    for who, account in (("Ada", ADA), ("Alan", ALAN), ("Grace", GRACE)):
        state = bank.account_repository.load(account).state
        print(f"   {who}: {state.balance.amount} {state.balance.currency} ({state.status.value})")

    print("\n6. The account_balances read model, live and after a rebuild:")
    projections = bank.projections()
    projections.catch_up()
    balances = AccountBalancesQuery(store)
    live = balances.list(order_by=F.owner.asc())
    for row in live:
        print(f"   {describe(row)}")
    projections.rebuild("account_balances")
    rebuilt = balances.list(order_by=F.owner.asc())
    verdict = "identical to the live one" if rebuilt == live else "DIFFERENT"
    print(f"   rebuilt from all {store.head_position()} events: {verdict}")

    print("\n7. Alan pays Ada 5.00 back: both accounts change in one unit of work:")
    paid = bank.unit_of_work(lambda work: pay_back(work, eur("5.00")))
    streams = ", ".join(r.stream_id.partition("-")[0] for r in paid.appended)
    print(f"   {paid.value}: {len(paid.events)} events in one append ({streams})")
    for who, account in (("Ada", ADA), ("Alan", ALAN)):
        state = bank.account_repository.load(account).state
        print(f"   {who}: {state.balance.amount} {state.balance.currency}")

    print("\n8. Ada opens a savings account; the balances read through AccountBalancesQuery:")
    bank.dispatch(OpenAccount(account_id=ADA_SAVINGS, owner="Ada", currency="EUR"))
    bank.dispatch(DepositMoney(account_id=ADA_SAVINGS, amount=eur("500.00")))
    projections.catch_up()
    print("   the largest balances:  balances.list(order_by=F.balance.desc(), limit=3)")
    for row in balances.list(order_by=F.balance.desc(), limit=3):
        print(f"      {describe(row)}")
    adas = balances.list(F.owner.eq("Ada"), order_by=F.balance.desc())
    print("   Ada's accounts:  balances.list(F.owner.eq('Ada'), order_by=F.balance.desc())")
    for row in adas:
        print(f"      {describe(row)}")
    total = sum(row.balance for row in adas)
    opened, accounts = balances.count(F.status.eq("open")), balances.count()
    print(f"   Ada holds {total} EUR in {len(adas)} accounts; {opened} of {accounts} are open")

    print("\n9. Read your own write while a projection runner follows in the background:")
    read_your_write(bank, balances)

    print("\n10. What happened to the transfer to Grace, traced through the saga:")
    for line in trace_lines(bank, str(TO_GRACE_REQUEST)):
        print(f"   {line}")
    store.close()
    print_inspect_commands(folder)


def trace_lines(bank: BankService, correlation_id: str) -> list[str]:
    """The conversation of one request as `esgen inspect trace` prints it, from the
    Python API: each command, who or which saga sent it, and the events it recorded."""
    trace = bank.inspect().trace(correlation_id)
    lines: list[str] = []

    def command(node: TraceCommand, depth: int) -> None:
        sender = f"saga {node.saga}" if node.saga else (node.actor or "?")
        lines.append(f"{'   ' * depth}{', '.join(node.commands) or 'command'} (by {sender})")
        for event in node.children:
            view = event.view
            lines.append(f"{'   ' * depth} -> {view.event_type} on {view.stream_id.split('-')[0]}")
            for child in event.children:
                command(child, depth + 1)

    for root in trace.roots:
        command(root, 0)
    return lines


def print_inspect_commands(folder: Path) -> None:
    """How to look into the store afterwards, read-only (also while an application runs)."""
    store = shown(folder / "bank.sqlite")
    ada = f"Account-{ADA}"
    print(
        "\nInspect what the demo did, read-only (in examples/bank; esgen is in the "
        "virtual environment: ../../.venv/bin/esgen):"
    )
    for command in (
        "streams",
        f"events {ada}",
        f"history {ada}",
        f"state {ada} --at 2026-01-05T09:04:00Z",
        f"replay {ada} --until 5 --pdb",
        f"trace {TO_GRACE_REQUEST} --html {shown(folder / 'transfer.html')}",
        "audit --actor teller-7",
    ):
        name, _, rest = command.partition(" ")
        print(f"   esgen inspect {name} --store {store} {rest}".rstrip())


def read_your_write(bank: BankService, balances: AccountBalancesQuery) -> None:
    """What a web API does: the command's result gives a token (sent to the client in a
    header); the next read waits until the read model has processed it, then reads."""
    stop = threading.Event()
    follower = threading.Thread(
        target=bank.projections().run, args=(stop,), kwargs={"poll_interval": 0.01}
    )
    follower.start()
    try:
        result = bank.dispatch(DepositMoney(account_id=ALAN, amount=eur("7.00")))
        assert result.token is not None
        print(f"   DepositMoney -> position {result.position}, token {result.token!r}")
        row = balances.wait_for(result.token, timeout=30.0).get(ALAN)
        assert row is not None
        print(f"   balances.wait_for(token, timeout=30.0).get(ALAN): {describe(row)}")
    finally:
        stop.set()
        follower.join()


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


def describe(row: AccountBalancesRow) -> str:
    return f"{row.owner:6} {row.balance:>7} {row.currency} ({row.status})"


def store_path(folder: Path) -> str:
    return shown(folder / "bank.sqlite")


def shown(path: Path) -> str:
    """A path as the reader types it from this folder (absolute when outside it)."""
    try:
        return str(path.resolve().relative_to(HERE.resolve())) or "."
    except ValueError:
        return str(path.resolve())


if __name__ == "__main__":
    main()
