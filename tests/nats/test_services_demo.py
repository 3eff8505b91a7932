"""`make demo-services`: the bank and its statements as separate processes over NATS.

Run on a private nats-server (ESGEN_NATS_SERVERS), so the test neither depends on nor
disturbs the machine's shared one; the demo itself checks that every movement reached the
statements exactly once, in order, with balances that agree with the bank's, across a
SIGKILL of the consumer process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from servers import NatsServer

STATEMENTS = Path(__file__).resolve().parents[2] / "examples" / "statements"


def test_the_two_service_demo_tells_its_story(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats").start()
    try:
        result = subprocess.run(
            [sys.executable, "demo.py"],
            cwd=STATEMENTS,
            env={**os.environ, "ESGEN_NATS_SERVERS": server.url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "DepositMoney  Ada   -> MoneyDeposited (published; position 3)" in out
    assert "WithdrawMoney Grace -> WithdrawalRejected (not published; position 6)" in out
    assert "4 movements arrived in" in out
    assert "Ada  : +100.00, -30.00, +12.50 -> balance 82.50 EUR" in out
    assert "every movement exactly once (6), in order; balances agree with the bank" in out
    assert "Ada  : +100.00, -30.00, +12.50, -2.50 -> balance 80.00 EUR" in out
    assert "Grace: +40.00, +7.00 -> balance 47.00 EUR" in out
    assert "Both services stopped" in out
