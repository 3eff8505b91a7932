"""Projections and sagas on PostgreSQL: read models, checkpoints and saga state commit in
the same transaction as on SQLite; live runners wake on LISTEN/NOTIFY. Needs a server:
see postgres_env.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from psycopg import sql

from esgen.runtime import PostgresEventStore, ProjectionRunner, RecordedEvent, progress_storage
from esgen.runtime.testing._domain import MoneyDeposited, make_registry

from .postgres_env import Proxy, connect, drop_schema, new_schema, require_postgres
from .test_runtime_projection import Balances, fill

DSN = require_postgres()
EXAMPLES = Path(__file__).parent.parent.parent / "examples"


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(DSN, name)


@pytest.fixture
def store(schema: str) -> Iterator[PostgresEventStore]:
    with PostgresEventStore(DSN, schema=schema) as store:
        yield store


def balances(schema: str) -> dict[str, tuple[int, int]]:
    with connect(DSN) as conn:
        query = sql.SQL("SELECT account, balance, events FROM {}.balances").format(
            sql.Identifier(schema)
        )
        rows = conn.execute(query).fetchall()
    return {str(a): (int(b), int(e)) for a, b, e in rows}


def test_catch_up_and_rebuild_on_postgres(store: PostgresEventStore, schema: str) -> None:
    fill(store, accounts=12, deposits=9)
    runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=25)
    assert runner.catch_up() == 12 * 10
    expected = {str(n): (9, 10) for n in range(12)}
    assert balances(schema) == expected
    seen: list[dict[str, tuple[int, int]]] = []
    runner.rebuild("balances", lambda *_: seen.append(balances(schema)))
    assert seen and all(view == expected for view in seen)
    assert balances(schema) == expected
    (status,) = runner.status()
    assert (status.generation, status.behind) == (2, 0)


class Gone(Exception):
    pass


def test_an_error_the_store_cannot_record_is_raised_as_it_was(
    schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        Proxy(DSN) as proxy,
        PostgresEventStore(proxy.dsn, schema=schema, pool_timeout=2, connect_timeout=2) as store,
    ):
        fill(store, accounts=1, deposits=1)

        class Vanishing(Balances):
            def on_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
                proxy.stop()  # the server is gone: the problem cannot be stored either
                raise Gone("handler failed")

        runner = ProjectionRunner(store, make_registry(), [Vanishing()])
        with caplog.at_level("WARNING", "esgen.runtime"), pytest.raises(Gone) as caught:
            runner.catch_up()
    assert str(caught.value) == "handler failed" and len(caught.value.__notes__) == 1
    assert "projection balances: its error could not be recorded" in caplog.text


def test_two_runners_on_postgres_apply_each_event_once(
    store: PostgresEventStore, schema: str
) -> None:
    fill(store, accounts=10, deposits=20)
    runners = [
        ProjectionRunner(
            PostgresEventStore(DSN, schema=schema), make_registry(), [Balances()], page_size=20
        )
        for _ in range(2)
    ]
    threads = [threading.Thread(target=r.catch_up) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert balances(schema) == {str(n): (20, 21) for n in range(10)}


KILLED_RUNNER = """
import sys
sys.path.insert(0, {root!r})
from tests.runtime.test_runtime_projection import Balances
from esgen.runtime import PostgresEventStore, ProjectionRunner
from esgen.runtime.testing._domain import make_registry
Balances.delay = 0.003
store = PostgresEventStore({dsn!r}, schema={schema!r})
runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=50)
print("started", flush=True)
runner.catch_up()
"""


def test_a_runner_killed_mid_page_on_postgres_applies_nothing_twice(
    store: PostgresEventStore, schema: str
) -> None:
    fill(store, accounts=10, deposits=40)
    root = str(Path(__file__).parent.parent.parent)
    code = textwrap.dedent(KILLED_RUNNER.format(root=root, dsn=DSN, schema=schema))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "started\n"
    time.sleep(0.8)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    total = sum(events for _, events in balances(schema).values()) if _has_view(schema) else 0
    assert total < 10 * 41, "the kill came too late to test anything"
    ProjectionRunner(store, make_registry(), [Balances()]).catch_up()
    assert balances(schema) == {str(n): (40, 41) for n in range(10)}


def _has_view(schema: str) -> bool:
    with connect(DSN) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f"{schema}.balances",)).fetchone()
    return row is not None and row[0] is not None


def test_a_following_runner_sees_new_events(store: PostgresEventStore, schema: str) -> None:
    runner = ProjectionRunner(store, make_registry(), [Balances()])
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 5.0})
    thread.start()
    try:
        with PostgresEventStore(DSN, schema=schema) as writer:
            fill(writer, accounts=3, deposits=2)
        deadline = time.monotonic() + 60
        while balances(schema) != {str(n): (2, 3) for n in range(3)}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)


def test_the_bank_saga_and_projection_on_postgres(store: PostgresEventStore, schema: str) -> None:
    sys.path.insert(0, str(EXAMPLES / "bank" / "src"))
    from bank.commands.account import CloseAccount, DepositMoney, OpenAccount
    from bank.commands.transfer import RequestTransfer
    from bank.service import BankService
    from bank.types import Money

    def eur(amount: str) -> Money:
        return Money(amount=Decimal(amount), currency="EUR")

    ada, grace, alan = UUID(int=1), UUID(int=2), UUID(int=3)
    bank = BankService(store)
    (runner,) = bank.sagas()  # deployed first
    for account, owner in ((ada, "Ada"), (grace, "Grace"), (alan, "Alan")):
        bank.dispatch(OpenAccount(account_id=account, owner=owner, currency="EUR"))
    bank.dispatch(DepositMoney(account_id=ada, amount=eur("100")))
    bank.dispatch(CloseAccount(account_id=grace, reason="moved away"))
    ok, refunded = uuid4(), uuid4()
    for transfer_id, target in ((ok, alan), (refunded, grace)):
        bank.dispatch(
            RequestTransfer(
                transfer_id=transfer_id, source_account=ada, target_account=target, amount=eur("30")
            )
        )
    runner.catch_up()
    assert runner.instance(ok).status == "completed"
    assert runner.instance(refunded).status == "compensated"
    assert bank.account_repository.load(ada).state.balance == eur("70")
    projections = bank.projections()
    projections.catch_up()
    query = sql.SQL("SELECT owner, balance FROM {}.account_balances ORDER BY owner").format(
        sql.Identifier(schema)
    )
    with connect(DSN) as conn:
        live = conn.execute(query).fetchall()
    # numeric on PostgreSQL: exact, compared as numbers, read by any SQL client as such.
    assert live == [("Ada", Decimal(70)), ("Alan", Decimal(30)), ("Grace", Decimal(0))]
    from bank.projections.account_balances import AccountBalancesFields as F
    from bank.projections.account_balances import AccountBalancesQuery

    balances = AccountBalancesQuery(store)
    largest = balances.list(order_by=F.balance.desc(), limit=2)
    assert [(row.owner, row.balance) for row in largest] == [("Ada", 70), ("Alan", 30)]
    projections.rebuild("account_balances")
    with connect(DSN) as conn:
        assert conn.execute(query).fetchall() == live
    assert balances.list(order_by=F.balance.desc(), limit=2) == largest


def test_the_command_line_on_postgres_never_creates_a_store(
    store: PostgresEventStore, schema: str
) -> None:
    from click.testing import CliRunner

    from esgen.cli import main

    mistyped = f"{schema}_typo"
    old = Path.cwd()
    os.chdir(EXAMPLES / "bank")
    try:
        runner = CliRunner()
        good = runner.invoke(main, ["projections", "status", "--store", DSN, "--schema", schema])
        typo = runner.invoke(main, ["projections", "status", "--store", DSN, "--schema", mistyped])
    finally:
        os.chdir(old)
    assert good.exit_code == 0, good.output
    assert "account_balances" in good.output
    assert typo.exit_code == 2
    assert f"schema {mistyped!r} holds no esgen event store" in typo.output
    with connect(DSN) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
            (mistyped,),
        ).fetchone()
    assert found == (0,), "the mistyped schema was not created"


def test_status_answers_while_a_page_holds_the_checkpoint(
    store: PostgresEventStore, schema: str
) -> None:
    """A page locks its projection's checkpoint row until it commits (FOR UPDATE, so two
    runners never apply one event); a health check reads past that lock at once."""
    fill(store, accounts=2, deposits=4)
    runner = ProjectionRunner(store, make_registry(), [Balances()], page_size=25)
    storage = progress_storage(store)
    answered: list[list[int]] = []
    looked = threading.Thread(
        target=lambda: answered.append([s.position for s in runner.status()]), daemon=True
    )
    with storage.unit() as unit:
        unit.generations("balances")  # what a page does first: the row is now locked
        looked.start()
        looked.join(60)  # a hang detector, not a measurement: it must not wait for the commit
        assert answered == [[0]], "status waited for the page holding the checkpoint"
