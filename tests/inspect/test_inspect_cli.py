"""`esgen inspect` as an operator runs it against a store that is in use: read-only, one
clear line for a question with no answer, and events no code can decode shown as they are."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from harness import EXAMPLES
from inspect_run import inspect as esgen
from runtime.postgres_env import available_dsn, drop_schema, new_schema

from esgen.runtime import NewEvent, SQLiteEventStore, command_context
from esgen.runtime.testing import ManualClock

sys.path.insert(0, str(EXAMPLES / "bank" / "src"))

from bank.commands.account import DepositMoney, OpenAccount
from bank.service import BankService
from bank.types import Money

ADA = UUID(int=1)
ADA_STREAM = f"Account-{ADA}"


def fill(service: BankService) -> None:
    with command_context(actor="teller-1"):
        service.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
        service.dispatch(
            DepositMoney(account_id=ADA, amount=Money(amount=Decimal("5"), currency="EUR"))
        )


@pytest.fixture
def store(tmp_path: Path) -> str:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    path = tmp_path / "bank.sqlite"
    with SQLiteEventStore(path, clock=clock) as opened:
        service = BankService(opened, clock=clock)
        fill(service)
        opened.append(
            ADA_STREAM,
            [NewEvent("MoneyDeposited", 1, '{"amount": "<b>lots</b>"}')],
            opened.stream_version(ADA_STREAM),
        )
    return str(path)


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("events", "Account-nobody"), "no stream 'Account-nobody' in the store"),
        (("state", "Account-00000000-0000-0000-0000-000000000009"), "no stream"),
        (("history", "Ledger-1"), "no stream 'Ledger-1' in the store; stream ids look like"),
        (("trace", "no-such-id"), "no event has 'no-such-id' as its correlation id"),
        (("state", ADA_STREAM, "--at", "2026-03-01T11:59:00Z"), "did not exist yet at"),
        (("replay", ADA_STREAM, "--until", "9"), "version 3 (MoneyDeposited v1) cannot be decoded"),
        (("streams", "--aggregate", "Acount"), "no aggregate type 'Acount'"),
    ],
)
def test_no_answer_is_one_line_and_exit_1(store: str, args: tuple[str, ...], said: str) -> None:
    command, *rest = args
    line = one_error_line(esgen(command, "--store", store, *rest), 1)
    assert said in line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("state", ADA_STREAM, "--at", "yesterday"), "--at 'yesterday': not a time"),
        (("state", ADA_STREAM, "--at", "2026-03-01", "--version", "1"), "not both"),
        (("events",), "give one STREAM (got 0)"),
        (("audit",), "give --actor or --correlation"),
        (("audit", "--actor", "a", "--since", "2026-03-02", "--until", "2026-03-01"), "before"),
    ],
)
def test_bad_questions_are_usage_errors(store: str, args: tuple[str, ...], said: str) -> None:
    command, *rest = args
    result = esgen(command, "--store", store, *rest)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    line = one_error_line(esgen("streams", "--store", str(missing)), 2)
    assert "no event store" in line
    assert not missing.exists()


def test_an_undecodable_event_is_listed_with_its_payload(store: str) -> None:
    listed = esgen("events", "--store", store, ADA_STREAM)
    assert listed.returncode == 0, listed.stderr
    assert "MoneyDeposited (v1, cannot be decoded)" in listed.stdout
    assert 'stored: {"amount": "<b>lots</b>"}' in listed.stdout
    history = esgen("history", "--store", store, ADA_STREAM)
    assert history.returncode == 1
    assert "cannot decode" in history.stdout
    assert "version 3 cannot be decoded: the states after it cannot be computed" in history.stderr
    state = esgen("state", "--store", store, ADA_STREAM)
    assert state.returncode == 1 and "MoneyDeposited" in state.stderr
    earlier = esgen("state", "--store", store, ADA_STREAM, "--version", "2")
    assert earlier.returncode == 0 and '"amount": "5"' in earlier.stdout


def test_inspect_never_writes_and_runs_while_a_writer_holds_the_lock(store: str) -> None:
    before = hashlib.sha256(Path(store).read_bytes()).hexdigest()
    writer = sqlite3.connect(store)
    writer.execute("BEGIN IMMEDIATE")  # the application in the middle of an append
    try:
        for args in (("streams",), ("events", ADA_STREAM), ("audit", "--actor", "teller-1")):
            result = esgen(args[0], "--store", store, *args[1:])
            assert result.returncode == 0, result.stderr
    finally:
        writer.rollback()
        writer.close()
    assert hashlib.sha256(Path(store).read_bytes()).hexdigest() == before
    assert not Path(store + "-journal").exists()


def test_trace_html_to_a_missing_folder_writes_nothing(store: str, tmp_path: Path) -> None:
    events = esgen("events", "--store", store, "--json", ADA_STREAM)
    import json

    correlation = json.loads(events.stdout.splitlines()[0])["correlation_id"]
    target = tmp_path / "missing" / "trace.html"
    line = one_error_line(esgen("trace", "--store", store, correlation, "--html", str(target)), 1)
    assert "cannot write" in line and "does not exist" in line
    assert not target.parent.exists()


def test_postgresql_store_is_inspected_read_only() -> None:
    dsn = available_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL server")
    from esgen.runtime import PostgresEventStore

    schema = new_schema()
    try:
        with PostgresEventStore(dsn, schema=schema) as opened:
            fill(BankService(opened))
        result = esgen("audit", "--store", dsn, "--pg-schema", schema, "--actor", "teller-1")
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 2
        missing = esgen("streams", "--store", dsn, "--pg-schema", schema + "_none")
        assert missing.returncode == 2, missing.stderr
    finally:
        drop_schema(dsn, schema)
