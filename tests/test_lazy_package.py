"""A generated package (and the runtime) imports a name's module on first use, and type
checkers still see every name (and only those): on the bank example, in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import EXAMPLES

BANK_SRC = EXAMPLES / "bank" / "src"


def python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(BANK_SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_importing_the_package_builds_no_model() -> None:
    python(
        "import sys, bank\n"
        "loaded = [m for m in sys.modules if m.startswith('bank.') or m.startswith('pydantic')]\n"
        "assert not loaded, loaded\n"
    )


def test_a_name_loads_its_own_aggregate_only() -> None:
    python(
        "import sys\n"
        "from bank import MoneyDeposited\n"
        "assert MoneyDeposited.__module__ == 'bank.events.account'\n"
        "assert 'bank.events.transfer' not in sys.modules\n"
        "assert 'bank.commands.account' not in sys.modules\n"
        "import bank\n"
        "assert bank.MoneyDeposited is MoneyDeposited\n"
        "assert 'MoneyDeposited' in vars(bank)  # found once, kept\n"
    )


def test_the_context_union_is_the_union_type_checkers_read() -> None:
    python(
        "from typing import Union, get_args\n"
        "import bank, bank.events\n"
        "from bank.events.account import AccountEvent\n"
        "from bank.events.transfer import TransferEvent\n"
        "assert bank.BankEvent == Union[AccountEvent, TransferEvent]\n"
        "assert bank.events.BankEvent is bank.BankEvent\n"
        "assert get_args(bank.BankCommand)\n"
    )


def test_submodules_are_attributes_of_the_package_as_an_eager_init_made_them() -> None:
    python(
        "from __future__ import annotations\n"
        "from decimal import Decimal\n"
        "import bank\n"
        "from pydantic import BaseModel\n"
        "assert bank.types.Money is bank.Money\n"
        "assert bank.events.BankEvent is bank.BankEvent\n"
        "assert bank.commands.BankCommand is bank.BankCommand\n"
        "assert bank.events.account.AccountEvent is not None\n"
        "class Holder(BaseModel):\n"
        "    money: bank.types.Money\n"
        "print(Holder(money={'amount': '1', 'currency': 'EUR'}))\n"
    )


def test_every_listed_name_resolves_and_others_are_attribute_errors() -> None:
    python(
        "import bank\n"
        "names = list(bank.__all__)\n"
        "assert set(names) <= set(dir(bank))\n"
        "namespace = {}\n"
        "exec('from bank import *', namespace)\n"
        "assert all(name in namespace for name in names)\n"
        "try:\n"
        "    bank.MoneyDepositd\n"
        "except AttributeError as error:\n"
        "    assert \"module 'bank' has no attribute 'MoneyDepositd'\" in str(error), error\n"
        "else:\n"
        "    raise AssertionError('a misspelt name resolved')\n"
    )


def test_type_checkers_see_the_names_not_a_module_getattr(tmp_path: Path) -> None:
    # A module-level __getattr__ visible to mypy would make any misspelt name an Any.
    user = tmp_path / "user.py"
    user.write_text(
        "import bank\n"
        "from bank import MoneyDeposited\n"
        "from esgen.runtime import Evnet\n\n"
        "ok: type[MoneyDeposited] = bank.MoneyDeposited\n"
        "money: type[bank.types.Money] = bank.Money\n"
        "typo = bank.MoneyDepositd\n"
    )
    env = {**os.environ, "MYPYPATH": str(BANK_SRC)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "c"), str(user)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Module has no attribute "MoneyDepositd"' in result.stdout, result.stdout
    assert 'Module "esgen.runtime" has no attribute "Evnet"' in result.stdout, result.stdout
    assert result.stdout.count("error:") == 2, result.stdout
