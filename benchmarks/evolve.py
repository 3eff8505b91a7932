"""Benchmark: the next state of an aggregate, by `evolve` and by `model_copy(update=...)`.

Run: .venv/bin/python benchmarks/evolve.py [--repeat N] [--number N]

The state is the bank example's AccountState, written as esgen generates it: an owner,
a Money balance (a Decimal amount, min 0, and a pattern-checked currency), a status enum
and a map of Money by transfer id. Each case changes the same fields both ways:
  - model_copy(update=...): pydantic's copy, which checks nothing;
  - evolve(...): the generated typed method, which checks every changed value (a value
    of the field's exact type, or a collection of such, is taken as it is; any other
    goes through the field's validator, as in the last case);
  - model_validate: what checking by revalidating the whole state would cost.
Prints the median time per call of each, and evolve's time as a share of model_copy's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict, Unpack

from pydantic import Field

from esgen.runtime import FrozenDict, FrozenMap, ValueObject


class Money(ValueObject):
    amount: Decimal = Field(ge=0)
    currency: str = Field(pattern="^[A-Z]{3}$")


class AccountStatus(StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class AccountState(ValueObject):
    owner: str
    balance: Money
    status: AccountStatus
    transfer_withdrawals: FrozenMap[str, Money] = Field(default=FrozenDict())

    class Changes(TypedDict, total=False):
        owner: str
        balance: Money
        status: AccountStatus
        transfer_withdrawals: FrozenMap[str, Money]

    def evolve(self, **changes: Unpack[AccountState.Changes]) -> AccountState:
        return self._evolve(changes)


def _time_ns(call: Callable[[], object], number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        call()
    return (time.perf_counter_ns() - start) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--number", type=int, default=5_000)
    args = parser.parse_args()

    state = AccountState(
        owner="Ada",
        balance=Money(amount=Decimal("100.00"), currency="EUR"),
        status=AccountStatus.OPEN,
        transfer_withdrawals={"t1": Money(amount=Decimal(5), currency="EUR")},
    )
    balance = Money(amount=Decimal("90.00"), currency="EUR")
    withdrawals = {**state.transfer_withdrawals, "t2": balance}
    cases: list[tuple[str, dict[str, object]]] = [
        ("balance (a Money)", {"balance": balance}),
        ("balance and status", {"balance": balance, "status": AccountStatus.FROZEN}),
        ("withdrawals (a dict)", {"transfer_withdrawals": withdrawals}),
        # Text for an enum field: evolve converts it through the field's validator;
        # model_copy would store the str itself (or "bogus") unchecked.
        ("status as text", {"status": "frozen"}),
    ]
    print(f"median ns per call, {args.repeat} rounds of {args.number:,} calls")
    print(f"{'change':<22}{'model_copy':>12}{'evolve':>10}{'validate':>10}{'evolve/copy':>13}")
    for label, changes in cases:

        def copy(changes: dict[str, object] = changes) -> object:
            return state.model_copy(update=changes)

        def evolve(changes: dict[str, object] = changes) -> object:
            return state.evolve(**changes)  # type: ignore[arg-type]

        def validate(changes: dict[str, object] = changes) -> object:
            return AccountState.model_validate({**state.__dict__, **changes})

        evolve()  # the field validators are built on first use
        # Interleaved round by round, so that a slower stretch of a shared machine hits
        # all three alike.
        calls = {"copy": copy, "evolve": evolve, "validate": validate}
        measured: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.repeat):
            for name, call in calls.items():
                measured[name].append(_time_ns(call, args.number))
        copy_ns, evolve_ns, validate_ns = (statistics.median(measured[n]) for n in calls)
        print(
            f"{label:<22}{copy_ns:>12,.0f}{evolve_ns:>10,.0f}{validate_ns:>10,.0f}"
            f"{evolve_ns / copy_ns:>13.2f}"
        )


if __name__ == "__main__":
    main()
