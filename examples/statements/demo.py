"""Two services over NATS JetStream (`make demo-services`): the bank and its statements.

The bank records commands in its own SQLite store; `esgen relay run` (a process of its
own) publishes the events the bank declares in `publishes:` to JetStream; `esgen consumers
run` (another process, the statements service) feeds them to the AccountStatements
consumer, which keeps its own read model in its own store. The demo then kills the
consumer with SIGKILL while the bank goes on, starts it again, and checks that every
movement reached the statements exactly once, with balances that agree with the bank's.

Runs against the NATS server at ESGEN_NATS_SERVERS (default nats://127.0.0.1:4222), under
the subject prefix `esgendemo`, whose streams it empties first: it never touches the
streams of another prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

HERE = Path(__file__).parent
BANK_DIR = HERE.parent / "bank"
sys.path.insert(0, str(HERE / "src"))
sys.path.insert(0, str(BANK_DIR / "src"))

from bank.commands.account import DepositMoney, OpenAccount, WithdrawMoney  # noqa: E402
from bank.service import BankService  # noqa: E402
from bank.types import Money  # noqa: E402
from statements.consumers.account_statements import AccountStatementsFields as F  # noqa: E402
from statements.consumers.account_statements import AccountStatementsQuery  # noqa: E402

from esgen.runtime import ReadModelNotFound, SQLiteEventStore  # noqa: E402
from esgen.runtime.nats import Wire, dead_letter_stream  # noqa: E402

PREFIX = "esgendemo"
ADA = UUID("a0000000-0000-4000-8000-000000000001")
GRACE = UUID("a0000000-0000-4000-8000-000000000002")
NAMES = {ADA: "Ada", GRACE: "Grace"}
WAIT = 60.0  # seconds for the statements to show what the bank published


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def main() -> int:
    servers = os.environ.get("ESGEN_NATS_SERVERS", "nats://127.0.0.1:4222")
    if not reachable(servers):
        print(
            f"No NATS server answers at {servers}. Start one with JetStream "
            "(`nats-server -js`, Debian package nats-server) or set ESGEN_NATS_SERVERS.",
            file=sys.stderr,
        )
        return 1
    out = HERE / "demo-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    asyncio.run(empty_streams(servers))
    bank_store = SQLiteEventStore(out / "bank.sqlite")
    # The statements service's own store; the consumer runner builds its read model there.
    statements_store = SQLiteEventStore(out / "statements.sqlite")
    bank = BankService(bank_store)
    broker = ["--servers", servers, "--prefix", PREFIX]
    print(f"Two services over NATS JetStream at {servers}, subjects {PREFIX}.bank.>")

    relay = start(out, "relay", BANK_DIR, ["relay", "run", "--follow", *broker], "bank.sqlite")
    consumers = start_consumers(out, broker)
    print(f"   bank:       {shown(out / 'bank.sqlite')}, relay: esgen relay run --follow")
    print(f"   statements: {shown(out / 'statements.sqlite')}, esgen consumers run --follow")
    try:
        print("\n1. The bank records commands; its store is the outbox the relay publishes:")
        expected = 0
        for command in (
            OpenAccount(account_id=ADA, owner="Ada", currency="EUR"),
            OpenAccount(account_id=GRACE, owner="Grace", currency="EUR"),
            DepositMoney(account_id=ADA, amount=eur("100.00")),
            DepositMoney(account_id=GRACE, amount=eur("40.00")),
            WithdrawMoney(account_id=ADA, amount=eur("30.00")),
            WithdrawMoney(account_id=GRACE, amount=eur("500.00")),
            DepositMoney(account_id=ADA, amount=eur("12.50")),
        ):
            result = bank.dispatch(command)
            (event,) = result.events
            published = type(event).__name__ in ("MoneyDeposited", "MoneyWithdrawn")
            expected += published
            note = "published" if published else "not published"
            print(
                f"   {type(command).__name__:13} {NAMES[command.account_id]:5} -> "
                f"{type(event).__name__} ({note}; position {result.position})"
            )
        print("\n2. The statements service, in another process, receives what was published:")
        waited = wait_for_rows(statements_store, expected, relay, consumers)
        print(f"   {expected} movements arrived in {waited:.1f} s")
        show_statements(statements_store)

        print("\n3. The consumer is killed (SIGKILL) while the bank goes on; then it restarts:")
        consumers.kill()
        consumers.wait()
        for command in (
            DepositMoney(account_id=GRACE, amount=eur("7.00")),
            WithdrawMoney(account_id=ADA, amount=eur("2.50")),
        ):
            bank.dispatch(command)
            expected += 1
        print("   killed; the bank recorded 2 more movements meanwhile")
        consumers = start_consumers(out, broker)
        wait_for_rows(statements_store, expected, relay, consumers)
        check_against_bank(statements_store, bank, expected)
        show_statements(statements_store)

        print("\n4. Their health, as monitoring reads it:")
        for args, folder in (
            (["relay", "status"], BANK_DIR),
            (["consumers", "status", *broker], HERE),
        ):
            store = out / ("bank.sqlite" if folder == BANK_DIR else "statements.sqlite")
            shown_status = esgen(folder, [*args, "--store", str(store)])
            for line in shown_status.splitlines():
                print(f"   {line}")
    finally:
        for process in (relay, consumers):
            stop(process)
        bank_store.close()
        statements_store.close()
    print("\nBoth services stopped (SIGTERM); the relay and the consumer resume where they left.")
    return 0


def reachable(servers: str) -> bool:
    first = urlsplit(servers.split(",")[0].strip())
    try:
        with socket.create_connection((first.hostname or "127.0.0.1", first.port or 4222), 2):
            return True
    except OSError:
        return False


async def empty_streams(servers: str) -> None:
    """Start from nothing: the streams of the demo's prefix (and their durable consumers)
    from an earlier run are deleted."""
    import nats
    from nats.js.errors import NotFoundError

    client = await nats.connect(servers=servers.split(","))
    try:
        js = client.jetstream()
        for name in (Wire("bank", PREFIX).stream, dead_letter_stream("statements", PREFIX)):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await client.close()


def esgen_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "esgen", *args]


def esgen(folder: Path, args: list[str]) -> str:
    done = subprocess.run(
        esgen_command(args), cwd=folder, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or done.stderr.strip()


def start(out: Path, name: str, folder: Path, args: list[str], store: str) -> subprocess.Popen[str]:
    log = (out / f"{name}.log").open("a")
    return subprocess.Popen(
        esgen_command([*args, "--store", str(out / store)]),
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_consumers(out: Path, broker: list[str]) -> subprocess.Popen[str]:
    return start(
        out, "consumers", HERE, ["consumers", "run", "--follow", *broker], "statements.sqlite"
    )


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def count_rows(store: SQLiteEventStore) -> int:
    try:
        return AccountStatementsQuery(store).count()
    except ReadModelNotFound:  # the consumer runner has not built its read model yet
        return 0


def wait_for_rows(
    store: SQLiteEventStore,
    expected: int,
    relay: subprocess.Popen[str],
    consumers: subprocess.Popen[str],
) -> float:
    started = time.monotonic()
    while (found := count_rows(store)) < expected:
        for process, name in ((relay, "relay"), (consumers, "consumers")):
            if process.poll() is not None:
                log = (HERE / "demo-out" / f"{name}.log").read_text()
                raise SystemExit(f"the {name} process ended ({process.returncode}):\n{log}")
        if time.monotonic() - started > WAIT:
            raise SystemExit(
                f"after {WAIT:.0f} s the statements hold {found} of {expected} movements; "
                f"see {shown(HERE / 'demo-out')}/relay.log and consumers.log"
            )
        time.sleep(0.05)
    return time.monotonic() - started


def show_statements(store: SQLiteEventStore) -> None:
    query = AccountStatementsQuery(store)
    for account, name in NAMES.items():
        rows = query.list(F.account_id.eq(account), order_by=F.sequence.asc())
        moves = ", ".join(
            f"{'+' if row.direction.value == 'deposit' else '-'}{row.amount}" for row in rows
        )
        balance = rows[-1].balance_after if rows else Decimal(0)
        print(f"   {name:5}: {moves} -> balance {balance} EUR")


def check_against_bank(store: SQLiteEventStore, bank: BankService, expected: int) -> None:
    query = AccountStatementsQuery(store)
    rows = query.list()
    if len(rows) != expected:
        raise SystemExit(f"the statements hold {len(rows)} movements, not {expected}")
    for account, name in NAMES.items():
        mine = query.list(F.account_id.eq(account), order_by=F.sequence.asc())
        sequences = [row.sequence for row in mine]
        if sequences != list(range(1, len(mine) + 1)):
            raise SystemExit(f"{name}'s movements are out of order or repeated: {sequences}")
        balance = bank.account_repository.load(account).state.balance.amount
        if mine[-1].balance_after != balance:
            raise SystemExit(f"{name}: statement says {mine[-1].balance_after}, bank {balance}")
    print(f"   every movement exactly once ({expected}), in order; balances agree with the bank")


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
