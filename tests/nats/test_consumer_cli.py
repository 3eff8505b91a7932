"""`esgen relay run` and `esgen consumers run|status` end to end, in subprocesses, on copies
of the bank and statements examples and a private nats-server: every deposit and
withdrawal lands once in the statements read model with the right running balance,
through one durable or through partitions shared by two runs; the broker options are
the same on both sides, and a partition that is not one is refused (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import relay_support as s
from servers import NatsServer, nats_server_binary

from esgen.runtime import SQLiteEventStore
from esgen.runtime._integration import H_MSG_ID

pytestmark = pytest.mark.skipif(nats_server_binary() is None, reason="nats-server missing")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ESGEN = [sys.executable, "-m", "esgen"]
TIMEOUT = 120
PARTITIONS = "4"

# Runs in the bank's copy: the commands of a plan, through the bank's generated service.
_WRITE = """
import json, sys
from decimal import Decimal
from uuid import UUID
from bank.commands.account import DepositMoney, OpenAccount, WithdrawMoney
from bank.service import BankService
from bank.types import Money
from esgen.runtime import SQLiteEventStore

store_path, opened, plan = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
with SQLiteEventStore(store_path) as store:
    service = BankService(store)
    for n in opened:
        service.dispatch(OpenAccount(account_id=UUID(int=n), owner=f"o{n}", currency="EUR"))
    for n, direction, amount in plan:
        money = Money(amount=Decimal(amount), currency="EUR")
        command = DepositMoney if direction == "deposit" else WithdrawMoney
        service.dispatch(command(account_id=UUID(int=n), amount=money))
"""

# Runs in the statements' copy: the read model's rows, through its generated query class.
_READ = """
import json, sys
from esgen.runtime import SQLiteEventStore
from statements.consumers.account_statements import AccountStatementsQuery

with SQLiteEventStore(sys.argv[1]) as store:
    rows = AccountStatementsQuery(store).list()
    print(json.dumps([row.model_dump(mode="json") for row in rows]))
"""


@dataclass
class Projects:
    bank: Path
    statements: Path
    server: NatsServer
    bank_store: Path

    def write(self, opened: list[int], plan: list[tuple[int, str, int]]) -> None:
        _python(self.bank, _WRITE, self.bank_store, json.dumps(opened), json.dumps(plan))

    def relay(self) -> subprocess.CompletedProcess[str]:
        return _esgen(self.bank, "relay", "run", "--store", str(self.bank_store),
                      "--servers", self.server.url, "--partitions", PARTITIONS)  # fmt: skip

    def consumers(self, command: str, store: Path, *args: str,
                  **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """`esgen consumers COMMAND` on `store`, with this broker unless the arguments or
        the environment name one, and the relay's partition count."""
        given = "--servers" in args or "ESGEN_NATS_SERVERS" in env
        servers = () if given else ("--servers", self.server.url)
        return _esgen(self.statements, "consumers", command, "--store", str(store), *servers,
                      "--partitions", PARTITIONS, *args, **env)  # fmt: skip

    def rows(self, store: Path) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(_python(self.statements, _READ, store))
        return rows


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[Projects]:
    """The two examples side by side, as statements' schema expects (`../../bank/schemas`),
    a bank store, and a private broker."""
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite", "*.db", ".esgen*", "demo-out")
    for name in ("bank", "statements"):
        shutil.copytree(EXAMPLES / name, tmp_path / name, ignore=ignore)
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield Projects(tmp_path / "bank", tmp_path / "statements", server, tmp_path / "bank.db")
    finally:
        server.kill()


def _env(src: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    env.pop("ESGEN_NATS_SERVERS", None)  # the machine's setting is not this test's broker
    env.update(extra)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(src), os.environ.get("PYTHONPATH")) if p
        )
    return env


def _python(project: Path, script: str, *args: object) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], cwd=project, env=_env(project / "src"),
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _esgen(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ESGEN, *args], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip


def _statements_store(path: Path) -> Path:
    """The statements context's own store, made as its application would make it."""
    SQLiteEventStore(path).close()
    return path


def _expected(
    plans: list[list[tuple[int, str, int]]],
) -> dict[UUID, list[tuple[int, str, Decimal, Decimal]]]:
    """Per account, its movements in order: (sequence, direction, amount, balance after)."""
    found: dict[UUID, list[tuple[int, str, Decimal, Decimal]]] = {}
    for plan in plans:
        for n, direction, amount in plan:
            lines = found.setdefault(UUID(int=n), [])
            before = lines[-1][3] if lines else Decimal(0)
            signed = amount if direction == "deposit" else -amount
            lines.append((len(lines) + 1, direction, Decimal(amount), before + signed))
    return found


def _statements(rows: list[dict[str, Any]]) -> dict[UUID, list[tuple[int, str, Decimal, Decimal]]]:
    found: dict[UUID, list[tuple[int, str, Decimal, Decimal]]] = {}
    for row in sorted(rows, key=lambda r: (r["account_id"], r["sequence"])):
        found.setdefault(UUID(row["account_id"]), []).append(
            (row["sequence"], row["direction"], Decimal(row["amount"]),
             Decimal(row["balance_after"]))
        )  # fmt: skip
    return found


def _plan(accounts: int, rounds: int, first: int = 0) -> list[tuple[int, str, int]]:
    """Interleaved accounts: a deposit, then (every other round) a smaller withdrawal, so
    balances never go below zero and each row's balance depends on every row before it."""
    plan: list[tuple[int, str, int]] = []
    for r in range(first, first + rounds):
        for n in range(1, accounts + 1):
            plan.append((n, "deposit", 10 * n + r))
            if r % 2:
                plan.append((n, "withdrawal", n + r))
    return plan


def _status(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)["consumers"]
    assert isinstance(item, dict)
    return item


def test_consumers_run_feeds_the_read_model_once_with_running_balances(
    projects: Projects, tmp_path: Path
) -> None:
    first = _plan(accounts=5, rounds=4)
    projects.write(list(range(1, 6)), first)
    relayed = projects.relay()
    assert relayed.returncode == 0, relayed.stderr
    store = _statements_store(tmp_path / "statements.db")

    before = _status(projects.consumers("status", store, "--json"))
    assert (before["name"], before["handled"], before["pending"]) == ("account_statements", 0, None)
    assert before["durables"] == ["esgen-statements-account_statements-bank-all"]
    assert "not created on the broker yet" in before["broker"]

    ran = projects.consumers("run", store)
    assert ran.returncode == 0, ran.stderr
    assert f"{len(first)} message(s) handled" in ran.stdout + ran.stderr
    assert _statements(projects.rows(store)) == _expected([first])

    # More commands, relayed and consumed by new processes: they go on from where the
    # durable and the checkpoint are, and the balances go on from the rows before.
    second = _plan(accounts=5, rounds=3, first=4)
    projects.write([], second)
    assert projects.relay().returncode == 0
    again = projects.consumers("run", store)
    assert again.returncode == 0, again.stderr
    assert f"{len(second)} message(s) handled" in again.stdout + again.stderr
    rows = projects.rows(store)
    assert len({row["entry_id"] for row in rows}) == len(rows) == len(first) + len(second)
    assert _statements(rows) == _expected([first, second])
    # Every published event, each as one row under its own id.
    messages = s.read_stream(projects.server.url, "ESGEN_BANK")
    assert {m.headers[H_MSG_ID] for m in messages} == {row["entry_id"] for row in rows}

    # The servers from the environment, as a deployment sets them once for all commands.
    after = _status(projects.consumers("status", store, "--json",
                                       ESGEN_NATS_SERVERS=projects.server.url))  # fmt: skip
    assert (after["handled"], after["pending"], after["problem"], after["broker"]) == (
        len(first) + len(second), 0, None, None,
    )  # fmt: skip
    assert after["last_handled"] is not None
    text = projects.consumers("status", store)
    assert text.returncode == 0, text.stderr
    assert "account_statements" in text.stdout and "0 pending" in text.stdout


def test_partitions_shared_by_two_runs_give_the_same_read_model(
    projects: Projects, tmp_path: Path
) -> None:
    plan = _plan(accounts=8, rounds=3)
    projects.write(list(range(1, 9)), plan)
    assert projects.relay().returncode == 0
    messages = s.read_stream(projects.server.url, "ESGEN_BANK")
    partition_of = {m.headers[H_MSG_ID]: int(m.subject.split(".")[2]) for m in messages}
    low = {entry for entry, k in partition_of.items() if k in (0, 1)}
    assert low and len(low) < len(plan)  # both halves have accounts: the split means something
    store = _statements_store(tmp_path / "statements.db")

    ran = projects.consumers("run", store, "--partition", "0", "--partition", "1")
    assert ran.returncode == 0, ran.stderr
    assert f"{len(low)} message(s) handled" in ran.stdout + ran.stderr
    assert {row["entry_id"] for row in projects.rows(store)} == low

    # The other half, by another process: partition 1 named again is the same durable,
    # with nothing left for it.
    rest = projects.consumers("run", store, "--partition", "2", "--partition", "3",
                              "--partition", "1", "--partition", "2")  # fmt: skip
    assert rest.returncode == 0, rest.stderr
    assert f"{len(plan) - len(low)} message(s) handled" in rest.stdout + rest.stderr
    assert _statements(projects.rows(store)) == _expected([plan])

    every = [arg for k in range(4) for arg in ("--partition", str(k))]
    status = _status(projects.consumers("status", store, "--json", *every))
    assert status["durables"] == [
        f"esgen-statements-account_statements-bank-p{k}" for k in range(4)
    ]
    assert (status["handled"], status["pending"], status["broker"]) == (len(plan), 0, None)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--partition", "4"),
            "--partition 4: the upstreams are published in 4 partitions "
            "(--partitions 4), numbered 0 to 3",
        ),
        (
            ("--partition", "1", "--partition", "-1"),
            "--partition -1: the upstreams are published in 4 partitions",
        ),
        (("--partition", "x"), "'x' is not a valid integer"),
        (("--partitions", "0"), "0 is not in the range x>=1"),
        (("--servers", " , "), "no NATS server given"),
        (("--prefix", "a b"), "prefix 'a b' cannot be a NATS subject token"),
    ],
)
def test_bad_broker_options_are_refused_before_anything_runs(
    projects: Projects, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    store = _statements_store(tmp_path / "statements.db")
    for command in ("run", "status"):
        done = projects.consumers(command, store, *args)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_status_answers_from_the_store_when_the_broker_cannot_be_reached(
    projects: Projects, tmp_path: Path
) -> None:
    from servers import free_port

    store = _statements_store(tmp_path / "statements.db")
    nowhere = f"nats://127.0.0.1:{free_port()}"
    done = projects.consumers("status", store, "--json", "--servers", nowhere)
    status = _status(done)  # one try, then the answer: no waiting for a broker
    assert (status["handled"], status["pending"]) == (0, None)
    assert status["broker"] == f"the broker ({nowhere}) cannot be reached"
    assert done.stderr.count("unreachable") == 1, done.stderr


def test_sigterm_stops_a_follow_still_waiting_for_the_broker(
    projects: Projects, tmp_path: Path
) -> None:
    """The first catch-up of --follow waits for a broker that is down; SIGTERM (a service
    being stopped) ends it there, as the help says, with exit 0."""
    import signal
    import time

    from servers import free_port

    store = _statements_store(tmp_path / "statements.db")
    nowhere = f"nats://127.0.0.1:{free_port()}"
    command = [*ESGEN, "consumers", "run", "--follow", "--store", str(store),
               "--servers", nowhere, "--partitions", PARTITIONS]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=projects.statements, env=_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # the outage's line: it is waiting now
        assert "unreachable" in first, first
        time.sleep(0.5)  # into the backoff between attempts
        process.send_signal(signal.SIGTERM)
        try:
            _, rest = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("esgen consumers run --follow went on 30 s after SIGTERM")
        code = process.returncode
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, rest
    assert "esgen: stopped: 0 message(s) handled" in rest, rest
    assert "caught up" not in rest and "Traceback" not in rest, rest
