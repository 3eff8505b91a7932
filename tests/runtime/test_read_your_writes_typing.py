"""Read-your-writes as user code types it, against the bank example's generated service and
query: `result.position` / `result.token` of `dispatch` and `unit_of_work`, and
`<Name>Query.wait_for(...)` returning the query itself, pass mypy --strict and pyright
strict with no template change; misuse fails both, on the line it is written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness import EXAMPLES, run_pyright

GENERATED = EXAMPLES / "bank" / "src"

USAGE = """\
from __future__ import annotations

from decimal import Decimal
from typing import assert_type
from uuid import UUID

from esgen.runtime import EventStore, ReadModelBehind, parse_consistency_token
from bank.commands.account import DepositMoney
from bank.projections.account_balances import AccountBalancesQuery, AccountBalancesRow
from bank.service import BankService, BankUnitOfWork
from bank.types import Money


def deposit(bank: BankService, account: UUID) -> str | None:
    money = Money(amount=Decimal("1"), currency="EUR")
    result = bank.dispatch(DepositMoney(account_id=account, amount=money))
    assert_type(result.position, int | None)
    assert_type(result.token, str | None)
    if result.token is not None:
        assert_type(parse_consistency_token(result.token), int)
    return result.token


def both(bank: BankService, account: UUID) -> int | None:
    def work(unit: BankUnitOfWork) -> str:
        money = Money(amount=Decimal("1"), currency="EUR")
        unit.dispatch(DepositMoney(account_id=account, amount=money))
        return "done"

    result = bank.unit_of_work(work)
    assert_type(result.token, str | None)
    return result.position


def read_own_write(store: EventStore, token: str, account: UUID) -> AccountBalancesRow | None:
    query = AccountBalancesQuery(store)
    assert_type(query.wait_for(token, timeout=2.0), AccountBalancesQuery)
    try:
        return query.wait_for(token, timeout=2.0).get(account)
    except ReadModelBehind as behind:
        print(behind.projection, behind.wanted, behind.reached)
        return None


def wait_on_runner(bank: BankService, position: int) -> None:
    bank.projections().wait_for(position, timeout=1.5, projections=["account_balances"])
"""

# Each line marked `# wrong` must be refused by both checkers, and no other line.
MISUSE = """\
from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from esgen.runtime import EventStore
from bank.commands.account import DepositMoney
from bank.projections.account_balances import AccountBalancesQuery
from bank.service import BankService
from bank.types import Money


def misuse(bank: BankService, store: EventStore, account: UUID) -> None:
    money = Money(amount=Decimal("1"), currency="EUR")
    result = bank.dispatch(DepositMoney(account_id=account, amount=money))
    position: int = result.position  # wrong: None when nothing was recorded
    token: str = result.token  # wrong: None when nothing was recorded
    AccountBalancesQuery(store).wait_for(1.5, timeout=1.0)  # wrong: a position is an int
    AccountBalancesQuery(store).wait_for(position)  # wrong: the timeout is required
    print(token)
"""

WRONG = [i for i, line in enumerate(MISUSE.splitlines(), 1) if "# wrong" in line]


def _mypy(files: list[Path], cache: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
         *map(str, files)],
        env={**os.environ, "MYPYPATH": str(GENERATED)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "user" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_read_your_writes_passes_mypy_strict_and_misuse_fails_on_its_line(
    tmp_path: Path,
) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    misuse = _write(tmp_path, "misuse.py", MISUSE)
    output = _mypy([usage, misuse], tmp_path / "cache")
    assert not re.search(r"usage\.py:\d+: error", output), output
    lines = {int(n) for n in re.findall(r"^[^\n]*misuse\.py:(\d+): error:", output, re.M)}
    assert sorted(lines) == WRONG, output


def test_read_your_writes_passes_pyright_strict_and_misuse_fails_on_its_line(
    tmp_path: Path,
) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    _write(tmp_path, "misuse.py", MISUSE)
    result = run_pyright([usage.parent], tmp_path, extra_paths=[GENERATED])
    assert result.files >= 2, result.report
    assert not re.search(r"usage\.py:\d+:\d+: error", result.report), result.report
    lines = {int(n) for n in re.findall(r"misuse\.py:(\d+):\d+: error:", result.report)}
    assert sorted(lines) == WRONG, result.report
