"""`esgen relay run` and `esgen relay status --json` end to end, in subprocesses, on the
bank example and a private nats-server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import relay_support as s
from servers import NatsServer

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank"
ESGEN = [sys.executable, "-m", "esgen"]

_WRITE = """
import sys
sys.path.insert(0, "src")
from decimal import Decimal
from uuid import UUID
from bank.commands.account import DepositMoney, OpenAccount, WithdrawMoney
from bank.service import BankService
from bank.types import Money
from esgen.runtime import SQLiteEventStore

with SQLiteEventStore(sys.argv[1]) as store:
    service = BankService(store)
    for n in range(3):
        account = UUID(int=n + 1)
        service.dispatch(OpenAccount(account_id=account, owner=f"o{n}", currency="EUR"))
        for _ in range(4):
            money = Money(amount=Decimal(5), currency="EUR")
            service.dispatch(DepositMoney(account_id=account, amount=money))
        service.dispatch(WithdrawMoney(account_id=account, amount=money))
"""


def _esgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ESGEN, *args], cwd=BANK, capture_output=True, text=True, timeout=120)


def test_relay_run_and_status(tmp_path: Path) -> None:
    db = tmp_path / "bank.db"
    subprocess.run([sys.executable, "-c", _WRITE, str(db)], cwd=BANK, check=True, timeout=120)
    server = NatsServer(tmp_path / "nats").start()
    try:
        before = _esgen("relay", "status", "--store", str(db), "--json")
        assert before.returncode == 0, before.stderr
        status = json.loads(before.stdout)["relay"]
        assert (status["name"], status["position"], status["behind"]) == ("relay:bank", 0, 18)

        ran = _esgen("relay", "run", "--store", str(db), "--servers", server.url,
                     "--partitions", "4")  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert "15 event(s) published" in ran.stdout + ran.stderr

        after = json.loads(_esgen("relay", "status", "--store", str(db), "--json").stdout)
        assert after["relay"]["behind"] == 0 and after["relay"]["problem"] is None

        messages = s.read_stream(server.url, "ESGEN_BANK")
        assert len(messages) == 15  # 12 deposits and 3 withdrawals; openings are private
        assert {m.subject.split(".")[-1] for m in messages} == {"MoneyDeposited", "MoneyWithdrawn"}
        assert all(m.subject.startswith("esgen.bank.") for m in messages)
        assert {int(m.subject.split(".")[2]) for m in messages} <= set(range(4))
        s.check_order(messages)
    finally:
        server.stop()


def test_relay_run_refuses_a_bad_server_list(tmp_path: Path) -> None:
    db = tmp_path / "bank.db"
    subprocess.run([sys.executable, "-c", _WRITE, str(db)], cwd=BANK, check=True, timeout=120)
    ran = _esgen("relay", "run", "--store", str(db), "--servers", " , ")
    assert ran.returncode != 0
    assert "no NATS server given" in ran.stderr
