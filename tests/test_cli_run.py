"""The read-side commands as an operator runs them: the installed `esgen` in a subprocess,
on a copy of the bank example and a SQLite store (PostgreSQL for --pg-schema), with the
project's own code edited where a test needs a bug or a pause.

A run is stopped halfway without timing anything: the copied projection touches a marker
file at a chosen position and then waits; the test sends the signal once the marker is
there, so the page in progress is the one interrupted.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import EXAMPLES

ESGEN = Path(sys.executable).parent / "esgen"
TIMEOUT = 120  # seconds any one command may take: a hang fails, it is no measurement

# Accounts with one opening and DEPOSITS deposits each, appended straight to the store:
# every event is one the AccountBalances projection handles.
SEED = """
import sys
from decimal import Decimal
from uuid import UUID
from esgen.runtime import NewEvent, SQLiteEventStore, PostgresEventStore
from bank.events.account import AccountOpened, MoneyDeposited
from bank.types import Money

where, accounts, deposits, first = sys.argv[1], *map(int, sys.argv[2:5])
if where.startswith("postgresql://"):
    dsn, _, schema = where.rpartition("#")
    store = PostgresEventStore(dsn, schema=schema)
else:
    store = SQLiteEventStore(where)
one = Money(amount=Decimal(1), currency="EUR")
for i in range(first, first + accounts):
    events = [AccountOpened(owner=f"owner {i}", currency="EUR")]
    events += [MoneyDeposited(amount=one) for _ in range(deposits)]
    store.append(f"Account-{UUID(int=i + 1)}", [NewEvent.from_event(e) for e in events], 0)
store.close()
"""

# Two accounts and TRANSFERS transfers between them, the sagas deployed first so that
# they follow every event (unless "undeployed").
TRANSFERS = """
import sys
from decimal import Decimal
from uuid import UUID
from esgen.runtime import SQLiteEventStore
from bank.commands.account import DepositMoney, OpenAccount
from bank.commands.transfer import RequestTransfer
from bank.service import BankService
from bank.types import Money

store = SQLiteEventStore(sys.argv[1])
bank = BankService(store)
if sys.argv[3:] != ["undeployed"]:
    bank.sagas()
ada, grace = UUID(int=1), UUID(int=2)
eur = lambda amount: Money(amount=Decimal(amount), currency="EUR")
bank.dispatch(OpenAccount(account_id=ada, owner="Ada", currency="EUR"))
bank.dispatch(DepositMoney(account_id=ada, amount=eur("100")))
bank.dispatch(OpenAccount(account_id=grace, owner="Grace", currency="EUR"))
for n in range(int(sys.argv[2])):
    bank.dispatch(RequestTransfer(
        transfer_id=UUID(int=100 + n), source_account=ada, target_account=grace, amount=eur("5")
    ))
store.close()
"""

BALANCES = """
import sys
from esgen.runtime import SQLiteEventStore
from bank.projections.account_balances import AccountBalancesQuery

store = SQLiteEventStore(sys.argv[1])
for row in AccountBalancesQuery(store).list():
    print(row.owner, row.balance)
store.close()
"""

# Copied into the projection's handler: at position BANK_TEST_PAUSE_AT, say so through
# the marker file, then wait for the signal.
PAUSE = """
        import os, pathlib, time
        if recorded.position == int(os.environ.get("BANK_TEST_PAUSE_AT", "0")):
            pathlib.Path(os.environ["BANK_TEST_MARKER"]).touch()
            time.sleep(600)
"""


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    """The bank example with its generated code, as a project of its own."""
    root = tmp_path / "bank"
    for part in ("schemas", "src"):
        shutil.copytree(
            EXAMPLES / "bank" / part, root / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(EXAMPLES / "bank" / "pyproject.toml", root)
    return root


def env(bank: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(bank / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def python(bank: Path, script: str, *args: object) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env(bank),
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def esgen(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ESGEN), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200", **extra},
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )


def seeded(bank: Path, accounts: int, deposits: int, name: str = "bank.sqlite") -> Path:
    store = bank / name
    python(bank, SEED, store, accounts, deposits, 0)
    return store


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is no longer in {path}"
    path.write_text(text.replace(old, new, 1))


class Running:
    """An esgen command left running, its standard error read line by line."""

    def __init__(self, cwd: Path, *args: str, **extra: str) -> None:
        self.process = subprocess.Popen(
            [str(ESGEN), *args],
            cwd=cwd,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, pattern: str) -> re.Match[str]:
        """The next line of standard error that matches, waiting for it."""
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            assert line is not None, f"ended before a line matching {pattern!r}: {self.seen}"
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, signum: int) -> tuple[int, str, list[str]]:
        """Send `signum`; the exit code, standard output and the rest of standard error."""
        self.process.send_signal(signum)
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()  # until it ends; standard error is the reader's
        self.process.wait(timeout=TIMEOUT)
        rest = []
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        return self.process.returncode, stdout, rest


def wait_for(marker: Path, running: Running) -> None:
    """Until the paused handler has touched `marker` (or the command ended)."""
    deadline = threading.Event()
    for _ in range(TIMEOUT * 20):
        if marker.exists():
            return
        if running.process.poll() is not None:
            break
        deadline.wait(0.05)
    running.process.kill()
    raise AssertionError(f"the handler never paused; stderr: {running.process.stderr}")


# -- from anywhere ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SCHEMA_DIR", "--config"])
def test_every_run_command_works_from_outside_the_project(
    bank: Path, tmp_path: Path, how: str
) -> None:
    store = bank / "bank.sqlite"
    python(bank, TRANSFERS, store, 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project = (
        [str(bank / "schemas")]
        if how == "SCHEMA_DIR"
        else ["--config", str(bank / "pyproject.toml")]
    )
    where = ["--store", str(store)]
    ran = {
        " ".join(command): esgen(elsewhere, *command[:2], *project, *command[2:], *where)
        for command in (
            ["sagas", "run"],
            ["sagas", "status"],
            ["sagas", "retry", "--stalled"],
            ["projections", "catch-up"],
            ["projections", "status"],
            ["projections", "rebuild", "account_balances"],
        )
    }
    for command, result in ran.items():
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert "sagas handled" in ran["sagas run"].stdout
    assert "MoneyTransfer: at " in ran["sagas status"].stdout
    assert "no stalled instance to retry" in ran["sagas retry --stalled"].stdout
    assert "projections are up to date" in ran["projections catch-up"].stdout
    assert "account_balances" in ran["projections status"].stdout
    assert "account_balances rebuilt from" in ran["projections rebuild account_balances"].stdout
    assert python(bank, BALANCES, store).split("\n")[:2] == ["Ada 95", "Grace 5"]


def test_out_names_the_generated_code_and_a_folder_outside_is_refused_plainly(
    bank: Path, tmp_path: Path
) -> None:
    store = seeded(bank, 1, 1)
    moved = tmp_path / "generated"
    shutil.move(bank / "src", moved)
    schemas = str(bank / "schemas")
    missing = esgen(tmp_path, "projections", "status", schemas, "--store", str(store))
    assert missing.returncode == 2
    assert "no generated bank.service in bank/src: run esgen generate" in missing.stderr
    found = esgen(
        tmp_path, "projections", "status", schemas, "--out", str(moved), "--store", str(store)
    )
    assert found.returncode == 0, found.stderr
    # Without SCHEMA_DIR or --config, from a folder with no project, the error says which
    # of the two to give; every run command takes them now.
    lost = esgen(tmp_path, "projections", "status", "--store", str(store))
    assert lost.returncode == 2
    assert "schema folder 'schemas' does not exist; pass SCHEMA_DIR" in lost.stderr


# -- sagas: a bug, the fix, the retry -------------------------------------------------------


def test_a_saga_bug_stalls_its_instances_until_they_are_retried_after_the_fix(
    bank: Path,
) -> None:
    store = bank / "bank.sqlite"
    where = ["--store", str(store)]
    handler = bank / "src" / "bank" / "domain" / "money_transfer.py"
    correct = handler.read_text()
    edit(
        handler,
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n        1 / 0  # the bug\n",
    )
    bug = correct[: correct.index("def on_money_withdrawn")].count("\n") + 2
    python(bank, TRANSFERS, store, 3)
    ids = [f"00000000-0000-0000-0000-0000000000{n:02x}" for n in (100, 101, 102)]

    ran = esgen(bank, "sagas", "run", *where)
    assert ran.returncode == 4, ran.stderr
    assert "sagas handled" in ran.stdout
    assert "esgen: error: 3 saga instance(s) stalled in this run" in ran.stderr
    for transfer in ids:
        assert f"MoneyTransfer {transfer}: ZeroDivisionError: " in ran.stderr, ran.stderr
    assert f"at src/bank/domain/money_transfer.py:{bug} in on_money_withdrawn" in ran.stderr
    assert "(on MoneyWithdrawn v1 at position " in ran.stderr

    text = esgen(bank, "sagas", "status", *where)
    assert text.returncode == 0, text.stderr
    assert "stalled 3" in text.stdout and "stalled (3):" in text.stdout
    assert text.stdout.count("ZeroDivisionError") == 3
    assert " since 20" in text.stdout  # when it stalled

    health = json.loads(esgen(bank, "sagas", "status", "--json", *where).stdout)
    (saga,) = health["sagas"]
    assert saga["name"] == "MoneyTransfer" and saga["counts"]["stalled"] == 3
    assert sorted(i["correlation"] for i in saga["stalled"]) == ids
    problem = saga["stalled"][0]["problem"]
    assert problem["error"] == "ZeroDivisionError"
    assert problem["event_type"] == "MoneyWithdrawn" and isinstance(problem["position"], int)
    assert problem["stream_id"].startswith("Account-") and problem["at"]
    assert problem["where"].endswith(f"money_transfer.py:{bug} in on_money_withdrawn")

    # Retried before the fix: still stalled, one attempt more, exit 4.
    again = esgen(bank, "sagas", "retry", "-q", ids[0], *where)
    assert again.returncode == 4, again.stderr
    (told,) = again.stderr.splitlines()  # why it exits 4, even with -q
    assert told.startswith(
        f"esgen: error: still stalled: MoneyTransfer {ids[0]}: ZeroDivisionError"
    )
    assert told.endswith("(2 attempts)")

    handler.write_text(correct)
    one = esgen(bank, "sagas", "retry", ids[0], *where)
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == f"esgen: MoneyTransfer {ids[0]}: running"
    rest = esgen(bank, "sagas", "retry", "--failed", *where)  # the flag's old name still works
    assert rest.returncode == 0, rest.stderr
    # The one stalled longest first.
    assert rest.stdout.splitlines() == [f"esgen: MoneyTransfer {t}: running" for t in ids[1:]]
    finished = esgen(bank, "sagas", "run", *where)
    assert finished.returncode == 0, finished.stderr

    after = json.loads(esgen(bank, "sagas", "status", "--json", *where).stdout)["sagas"][0]
    assert after["counts"]["stalled"] == 0 and after["counts"]["completed"] == 3
    assert after["stalled"] == [] and after["behind"] == 0
    assert esgen(bank, "projections", "catch-up", *where).returncode == 0
    assert python(bank, BALANCES, store).split("\n")[:2] == ["Ada 85", "Grace 15"]


def test_looking_at_sagas_decides_nothing_about_where_they_start(bank: Path) -> None:
    store = bank / "bank.sqlite"
    where = ["--store", str(store)]
    python(bank, TRANSFERS, store, 2, "undeployed")  # history the sagas never saw

    looked = json.loads(esgen(bank, "sagas", "status", "--json", *where).stdout)["sagas"][0]
    assert looked["position"] == looked["head"] and looked["counts"]["running"] == 0
    assert esgen(bank, "sagas", "retry", "--stalled", *where).returncode == 0

    ran = esgen(bank, "sagas", "run", "--from-beginning", *where)
    assert ran.returncode == 0, ran.stderr
    after = json.loads(esgen(bank, "sagas", "status", "--json", *where).stdout)["sagas"][0]
    assert after["counts"]["completed"] == 2, after


def test_a_follower_tells_stalls_as_they_happen_and_lists_them_when_stopped(
    bank: Path,
) -> None:
    store = bank / "bank.sqlite"
    edit(
        bank / "src" / "bank" / "domain" / "money_transfer.py",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n        1 / 0  # the bug\n",
    )
    python(bank, TRANSFERS, store, 2)
    running = Running(
        bank, "sagas", "run", "--follow", "--log-format", "json", "--store", str(store)
    )
    told = [json.loads(running.line(r'"event": "stalled"').string) for _ in range(2)]
    assert sorted(line["correlation"] for line in told) == [
        "00000000-0000-0000-0000-000000000064",
        "00000000-0000-0000-0000-000000000065",
    ]
    assert told[0]["problem"]["error"] == "ZeroDivisionError" and told[0]["level"] == "warning"
    code, _, rest = running.stop(signal.SIGTERM)
    assert code == 4, "stalled instances, even when stopped on purpose"
    stopped, listed = (json.loads(line) for line in rest[-2:])
    assert stopped["event"] == "stopped"
    assert listed["event"] == "error" and len(listed["stalled"]) == 2


def test_retry_says_what_it_cannot_do(bank: Path) -> None:
    store = bank / "bank.sqlite"
    python(bank, TRANSFERS, store, 1)
    where = ["--store", str(store)]
    assert esgen(bank, "sagas", "run", *where).returncode == 0
    neither = esgen(bank, "sagas", "retry", *where)
    assert neither.returncode == 2
    assert "give the IDs of the instances to retry, or --stalled" in neither.stderr
    unknown = esgen(bank, "sagas", "retry", "00000000-0000-0000-0000-000000000999", *where)
    assert unknown.returncode == 2
    assert "esgen: error: no saga instance '00000000-0000-0000-0000-000000000999'" in (
        unknown.stderr
    )
    done = esgen(bank, "sagas", "retry", "00000000-0000-0000-0000-000000000064", *where)
    assert done.returncode == 1
    # Why, once, as an error, even with -q.
    quiet = esgen(bank, "sagas", "retry", "00000000-0000-0000-0000-000000000064", "-q", *where)
    for result in (done, quiet):
        assert result.returncode == 1
        assert result.stderr == (
            "esgen: error: MoneyTransfer 00000000-0000-0000-0000-000000000064 is completed: "
            "only a stalled instance can be retried\n"
        )
    wrong = esgen(bank, "sagas", "status", "--saga", "MoneyTransfr", *where)
    assert wrong.returncode == 2 and "did you mean 'MoneyTransfer'?" in wrong.stderr


# -- interrupted runs ---------------------------------------------------------------------


def paused(bank: Path) -> None:
    edit(
        bank / "src" / "bank" / "domain" / "account_balances.py",
        "    def on_money_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:\n",
        "    def on_money_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:\n"
        + PAUSE,
    )


def balances(bank: Path, store: Path) -> list[str]:
    return python(bank, BALANCES, store).splitlines()


@pytest.mark.parametrize(
    ("signum", "code", "how"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped")],
    ids=["SIGINT", "SIGTERM"],
)
def test_an_interrupted_rebuild_goes_on_where_it_was_and_ends_as_a_full_one(
    bank: Path, tmp_path: Path, signum: int, code: int, how: str
) -> None:
    """SIGTERM without --follow (a Job's deadline, `timeout`) is told as Ctrl-C is."""
    store = seeded(bank, 30, 99)  # 3000 events; the runner's pages are of 1000
    paused(bank)
    where = ["--store", str(store)]
    marker = tmp_path / "paused"
    running = Running(
        bank, "projections", "rebuild", *where,
        BANK_TEST_PAUSE_AT="1500", BANK_TEST_MARKER=str(marker),
    )  # fmt: skip
    wait_for(marker, running)
    returned, _, rest = running.stop(signum)
    assert returned == code
    assert rest == [
        f"esgen: {how}: account_balances rebuild committed up to position 1000 of 3000; "
        "`esgen projections rebuild account_balances` continues from there (--restart starts "
        "afresh)"
    ], running.seen + rest

    status = esgen(bank, "projections", "status", *where)
    assert "rebuild of generation 2 unfinished at 1000" in status.stdout
    resumed = esgen(bank, "projections", "rebuild", *where)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines() == [
        "esgen: continuing the rebuild of account_balances from position 1000 (--restart "
        "starts afresh)",
        "esgen: account_balances rebuilt from 2000 event(s)",
    ]
    expected = [f"owner {i} 99" for i in range(30)]
    assert sorted(balances(bank, store)) == sorted(expected)
    full = esgen(bank, "projections", "rebuild", "--restart", *where)
    assert full.stdout.splitlines() == ["esgen: account_balances rebuilt from 3000 event(s)"]
    assert sorted(balances(bank, store)) == sorted(expected)


def test_an_interrupted_rebuild_whose_handler_was_fixed_since_starts_afresh(
    bank: Path, tmp_path: Path
) -> None:
    store = seeded(bank, 30, 99)
    paused(bank)
    where = ["--store", str(store)]
    marker = tmp_path / "paused"
    running = Running(
        bank, "projections", "rebuild", *where,
        BANK_TEST_PAUSE_AT="1500", BANK_TEST_MARKER=str(marker),
    )  # fmt: skip
    wait_for(marker, running)
    code, _, _ = running.stop(signal.SIGINT)
    assert code == 130
    # The fix: the pages the old handler committed must not be kept.
    handlers = bank / "src" / "bank" / "domain" / "account_balances.py"
    edit(handlers, PAUSE, "")
    again = esgen(bank, "projections", "rebuild", *where)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "esgen: starting the rebuild of account_balances afresh: code changed since the "
        "unfinished one began",
        "esgen: account_balances rebuilt from 3000 event(s)",
    ]
    assert sorted(balances(bank, store)) == sorted(f"owner {i} 99" for i in range(30))


def test_the_health_views_answer_while_a_runner_is_in_the_middle_of_a_page(
    bank: Path, tmp_path: Path
) -> None:
    store = seeded(bank, 3, 9)  # 30 events
    where = ["--store", str(store)]
    assert esgen(bank, "sagas", "run", *where).returncode == 0  # its tables and checkpoint
    paused(bank)
    marker = tmp_path / "paused"
    running = Running(
        bank, "projections", "catch-up", *where,
        BANK_TEST_PAUSE_AT="5", BANK_TEST_MARKER=str(marker),
    )  # fmt: skip
    wait_for(marker, running)  # its page holds the store's write lock (and, on PostgreSQL,
    # its checkpoint row): a look must neither wait for it nor fail
    try:
        projections = esgen(bank, "projections", "status", "--json", *where)
        sagas = esgen(bank, "sagas", "status", "--json", *where)
    finally:
        running.stop(signal.SIGINT)
    assert projections.returncode == 0, projections.stderr
    (balances,) = json.loads(projections.stdout)["projections"]
    assert balances["position"] == 0 and balances["head"] == 30  # the page is not committed
    assert sagas.returncode == 0, sagas.stderr
    assert json.loads(sagas.stdout)["sagas"][0]["head"] == 30


def test_an_interrupted_follow_says_what_it_kept_and_the_next_run_does_the_rest(
    bank: Path, tmp_path: Path
) -> None:
    store = seeded(bank, 30, 99)
    paused(bank)
    where = ["--store", str(store)]
    marker = tmp_path / "paused"
    running = Running(
        bank, "projections", "catch-up", "--follow", *where,
        BANK_TEST_PAUSE_AT="1500", BANK_TEST_MARKER=str(marker),
    )  # fmt: skip
    wait_for(marker, running)
    code, _, rest = running.stop(signal.SIGINT)
    assert code == 130
    assert rest[-1] == (
        "esgen: interrupted: projections committed account_balances at 1000 of 3000; "
        "`esgen projections catch-up` continues from there"
    ), running.seen + rest
    assert not any("Traceback" in line or "Aborted" in line for line in running.seen + rest)
    after = esgen(bank, "projections", "catch-up", *where)
    assert after.stdout.splitlines() == [
        "esgen: 2000 event(s) applied; projections are up to date"
    ], after.stderr


# -- a projection's bug -------------------------------------------------------------------


def test_a_projection_bug_names_the_event_and_the_users_line(bank: Path) -> None:
    store = seeded(bank, 1, 1)
    handler = bank / "src" / "bank" / "domain" / "account_balances.py"
    text = handler.read_text()
    line = (
        text[: text.index("        self.rows.put(\n            AccountBalancesRow(")].count("\n")
        + 1
    )
    edit(
        handler,
        "        self.rows.put(\n            AccountBalancesRow(",
        "        1 / 0\n        self.rows.put(\n            AccountBalancesRow(",
    )
    short = esgen(bank, "projections", "catch-up", "--store", str(store))
    assert short.returncode == 1
    lines = short.stderr.splitlines()
    assert lines[0] == (
        "esgen: error: projection account_balances stopped: ZeroDivisionError: division by zero"
    )
    assert re.fullmatch(
        r"  account_balances: handling AccountOpened \(event [0-9a-f-]+\) at position 1, "
        r"version 1 of stream 'Account-00000000-0000-0000-0000-000000000001'",
        lines[1],
    ), lines
    assert lines[2:] == [
        f"  at src/bank/domain/account_balances.py:{line} in on_account_opened",
        "  (run with -v for the traceback)",
    ]
    verbose = esgen(bank, "projections", "catch-up", "-v", "--store", str(store))
    assert verbose.returncode == 1
    assert verbose.stderr.startswith("Traceback (most recent call last):")
    assert "1 / 0" in verbose.stderr and "ZeroDivisionError: division by zero" in verbose.stderr
    assert f"{os.sep}click{os.sep}" not in verbose.stderr, "no click frames"
    assert verbose.stderr.splitlines()[-3] == lines[0]
    # The status says it too, until a page goes through.
    status = esgen(bank, "projections", "status", "--store", str(store))
    assert "stopped " in status.stdout and "ZeroDivisionError: division by zero" in status.stdout
    health = json.loads(
        esgen(bank, "projections", "status", "--json", "--store", str(store)).stdout
    )
    (item,) = health["projections"]
    assert item["problem"]["error"] == "ZeroDivisionError" and item["behind"] == 2
    assert os.path.isabs(item["problem"]["where"].rpartition(":")[0])  # stored whole
    # A rebuild's error is kept apart, and the text view shows it too, the file relative.
    rebuilt = esgen(bank, "projections", "rebuild", "--store", str(store))
    assert rebuilt.returncode == 1
    status = esgen(bank, "projections", "status", "--store", str(store))
    (told,) = [line for line in status.stdout.splitlines() if "rebuild stopped " in line]
    assert "ZeroDivisionError: division by zero" in told, status.stdout
    assert told.endswith(f" at src/bank/domain/account_balances.py:{line} in on_account_opened")


# -- following ----------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_follow_tells_each_page_and_stops_on_sigterm(bank: Path, log_format: str) -> None:
    store = seeded(bank, 1, 29)  # 30 events
    running = Running(
        bank, "projections", "catch-up", "--follow", "--log-format", log_format,
        "--store", str(store),
    )  # fmt: skip
    if log_format == "text":
        first = running.line(r"^\S+Z account_balances \+(\d+) at (\d+)/(\d+) \((\d+) behind\)")
        assert first.groups() == ("30", "30", "30", "0")
        python(bank, SEED, store, 2, 4, 1)  # 10 more, appended while it follows
        # In one page or two: the two accounts are two appends, and the follower may wake
        # between them.
        told, position = 0, 30
        while position < 40:
            more = running.line(r"^\S+Z account_balances \+(\d+) at (\d+)/(\d+)")
            told, position = told + int(more[1]), int(more[2])
        assert (told, position) == (10, 40)
        code, stdout, rest = running.stop(signal.SIGTERM)
        assert code == 0
        assert stdout == "esgen: 30 event(s) applied; projections are up to date\n"
        assert rest == [
            "esgen: stopped: projections committed account_balances at 40 of 40; "
            "`esgen projections catch-up` continues from there"
        ]
        return
    first = json.loads(running.line(r'"event": "page"').string)
    assert first["runner"] == "account_balances" and first["events"] == 30
    assert (first["position"], first["head"], first["behind"]) == (30, 30, 0)
    assert first["level"] == "info" and first["time"].endswith("Z") and "rate" in first
    python(bank, SEED, store, 2, 4, 1)
    told, position = 0, 30
    while position < 40:  # in one page or two, as above
        more = json.loads(running.line(r'"event": "page"').string)
        told, position = told + more["events"], more["position"]
    assert (told, position) == (10, 40)
    code, stdout, rest = running.stop(signal.SIGTERM)
    assert code == 0 and stdout == "", "JSON lines leave standard output to data"
    lines = [json.loads(line) for line in running.seen + rest]
    events = [line["event"] for line in lines]
    assert events[:2] == ["page", "done"] and events[-1] == "stopped"
    assert set(events[2:-1]) == {"page"} and len(events) in (4, 5)
    assert lines[1]["message"] == "30 event(s) applied; projections are up to date"


def test_quiet_says_nothing_but_errors(bank: Path) -> None:
    store = seeded(bank, 1, 29)
    quiet = esgen(bank, "projections", "catch-up", "-q", "--store", str(store))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    quiet = esgen(bank, "projections", "rebuild", "-q", "--store", str(store))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    quiet = esgen(bank, "sagas", "run", "-q", "--store", str(store))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    failing = esgen(bank, "projections", "status", "-q", "--store", str(bank / "none.db"))
    assert failing.returncode == 2 and "no event store at" in failing.stderr


# -- the PostgreSQL schema ------------------------------------------------------------------


def test_the_old_schema_option_still_works_with_a_warning(bank: Path) -> None:
    store = seeded(bank, 1, 1)
    old = esgen(bank, "projections", "status", "--schema", "public", "--store", str(store))
    assert old.returncode == 0, old.stderr
    assert old.stderr == (
        "esgen: warning: --schema is now --pg-schema (the PostgreSQL schema of the store's "
        "tables; SCHEMA_DIR is the schema folder): use --pg-schema\n"
    )
    quiet = esgen(bank, "projections", "status", "-q", "--schema", "public", "--store", str(store))
    assert quiet.returncode == 0 and quiet.stderr == ""
    logged = esgen(
        bank, "projections", "catch-up", "--log-format", "json", "--schema", "public",
        "--store", str(store),
    )  # fmt: skip
    assert logged.returncode == 0, logged.stderr
    lines = [json.loads(line) for line in logged.stderr.splitlines()]
    assert lines[0]["event"] == "deprecated" and lines[0]["level"] == "warning"
    assert lines[0]["message"].startswith("--schema is now --pg-schema")
    both = esgen(
        bank, "projections", "status", "--schema", "a", "--pg-schema", "b", "--store", str(store)
    )
    assert both.returncode == 2 and "give the PostgreSQL schema once" in both.stderr


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    from runtime.postgres_env import available_dsn, drop_schema, new_schema

    dsn = available_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL server (see tests/runtime/postgres_env.py)")
    schema = new_schema()
    yield dsn, schema
    drop_schema(dsn, schema)


def test_pg_schema_names_the_postgresql_schema(bank: Path, pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    python(bank, SEED, f"{dsn}#{schema}", 2, 4, 0)
    status = esgen(bank, "projections", "status", "--pg-schema", schema, "--store", dsn)
    assert status.returncode == 0, status.stderr
    assert re.search(r"account_balances +generation 0 +at 0 of 10 +\(10 behind", status.stdout)
    assert "not built in this store yet" in status.stdout  # a look builds nothing
    caught = esgen(bank, "projections", "catch-up", "--pg-schema", schema, "--store", dsn)
    assert caught.stdout == "esgen: 10 event(s) applied; projections are up to date\n"
    other = esgen(bank, "projections", "status", "--pg-schema", "nowhere", "--store", dsn)
    assert other.returncode == 2
    assert "PostgreSQL schema 'nowhere' holds no esgen event store" in other.stderr


# -- the same shape for the project commands ---------------------------------------------


@pytest.mark.parametrize("how", ["SCHEMA_DIR", "--config"])
def test_the_project_commands_take_the_project_the_same_way(tmp_path: Path, how: str) -> None:
    bank = tmp_path / "bank"
    shutil.copytree(
        EXAMPLES / "bank",
        bank,
        ignore=shutil.ignore_patterns("__pycache__", "demo-out", ".esgen*", "*.sqlite"),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project = (
        [str(bank / "schemas")]
        if how == "SCHEMA_DIR"
        else ["--config", str(bank / "pyproject.toml")]
    )
    for command in (["generate", "--check"], ["docs", "--check"], ["lock", "--check"], ["compat"]):
        result = esgen(elsewhere, command[0], *project, *command[1:])
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_a_config_that_is_none_is_one_line(bank: Path) -> None:
    (bank / "other.toml").write_text("[project]\nname = 'x'\n")
    for config, expected in (
        ("missing.yaml", "configuration file missing.yaml does not exist; give an esgen.yaml, "
         "or a pyproject.toml with a [tool.esgen] table"),
        ("other.toml", "other.toml has no [tool.esgen] table; add one (it may be empty: every "
         "setting has a default), or give an esgen.yaml"),
    ):  # fmt: skip
        for command in (["generate"], ["projections", "status", "--store", "x.db"]):
            result = esgen(bank, *command, "--config", config)
            assert (result.returncode, result.stderr) == (2, f"esgen: error: {expected}\n")


# -- what the first argument is, and a Ctrl-C before anything runs ---------------------------


def test_a_folder_named_like_a_projection_is_not_taken_for_the_schema_folder(
    bank: Path,
) -> None:
    store = seeded(bank, 1, 1)
    (bank / "account_balances").mkdir()  # say, where someone keeps its exports
    (bank / "account_balances" / "notes.txt").write_text("not a schema")
    rebuilt = esgen(bank, "projections", "rebuild", "account_balances", "--store", str(store))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout == "esgen: account_balances rebuilt from 2 event(s)\n"
    # A folder holding schema files is one, even without a `/`.
    named = esgen(
        bank, "projections", "rebuild", "schemas", "account_balances", "--store", str(store)
    )
    assert named.returncode == 0, named.stderr


def test_ctrl_c_while_the_command_line_loads_is_one_line(tmp_path: Path) -> None:
    # Whatever the import is interrupted in, here a module named `click` found first.
    (tmp_path / "click.py").write_text("raise KeyboardInterrupt\n")
    ran = esgen(tmp_path, "projections", "status", PYTHONPATH=str(tmp_path))
    assert (ran.returncode, ran.stdout, ran.stderr) == (130, "", "esgen: interrupted\n")


def test_verbose_shows_the_traceback_of_a_stalled_instance_once(bank: Path) -> None:
    store = bank / "bank.sqlite"
    edit(
        bank / "src" / "bank" / "domain" / "money_transfer.py",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n        1 / 0  # the bug\n",
    )
    python(bank, TRANSFERS, store, 1)
    ran = esgen(bank, "sagas", "run", "-v", "--store", str(store))
    assert ran.returncode == 4, ran.stderr
    assert ran.stderr.count("Traceback (most recent call last)") == 1, ran.stderr
    assert "1 / 0  # the bug" in ran.stderr
    assert ran.stderr.count("ZeroDivisionError: division by zero") == 2  # traceback, list
    quiet = esgen(bank, "sagas", "retry", "--stalled", "--store", str(store))
    assert quiet.returncode == 4 and "Traceback" not in quiet.stderr + quiet.stdout


def test_ctrl_c_during_sagas_run_lists_the_instances_it_stalled(bank: Path, tmp_path: Path) -> None:
    store = bank / "bank.sqlite"
    marker = tmp_path / "paused"
    edit(
        bank / "src" / "bank" / "domain" / "money_transfer.py",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n",
        "def on_money_withdrawn(self, event: MoneyWithdrawn) -> None:\n"
        "        import os, pathlib, time\n"
        "        if event.transfer_id.int == 100:\n"
        "            1 / 0  # the bug\n"
        "        pathlib.Path(os.environ['BANK_TEST_MARKER']).touch()\n"
        "        time.sleep(600)\n",
    )
    python(bank, TRANSFERS, store, 2)
    running = Running(bank, "sagas", "run", "--store", str(store), BANK_TEST_MARKER=str(marker))
    wait_for(marker, running)
    code, _, rest = running.stop(signal.SIGINT)
    assert code == 130
    seen = running.seen + rest
    assert "esgen: error: 1 saga instance(s) stalled in this run; fix the error, then " in (
        "\n".join(seen)
    ), seen
    assert any(
        "MoneyTransfer 00000000-0000-0000-0000-000000000064: ZeroDivisionError" in line
        for line in seen
    ), seen
    assert seen[-1].startswith("esgen: interrupted: sagas committed MoneyTransfer at "), seen
