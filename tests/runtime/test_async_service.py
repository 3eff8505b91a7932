"""The generated asyncio service, on the bank example: `AsyncBankService.dispatch` and its
units of work on both asynchronous stores, beside the synchronous `BankService` on the same
database; and what user code writes against it passes mypy --strict and pyright strict,
while misuse fails on its line."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from harness import EXAMPLES, run_pyright

from esgen.runtime import (
    AsyncEventStore,
    AsyncPostgresEventStore,
    AsyncReadModel,
    AsyncSQLiteEventStore,
    BackendError,
    ConcurrencyError,
    InvalidConsistencyToken,
    ReadModelBehind,
    consistency_token,
)

from .postgres_env import available_dsn, drop_schema, new_schema

BANK = EXAMPLES / "bank"
GENERATED = BANK / "src"
sys.path.insert(0, str(GENERATED))

from bank.commands.account import DepositMoney, OpenAccount, WithdrawMoney  # noqa: E402
from bank.commands.transfer import RequestTransfer  # noqa: E402
from bank.events.account import MoneyDeposited, WithdrawalRejected  # noqa: E402
from bank.projections.account_balances import AccountBalancesQuery  # noqa: E402
from bank.service import AsyncBankService, AsyncBankUnitOfWork, BankService  # noqa: E402
from bank.types import Money  # noqa: E402

Opener = Callable[[], Awaitable[AsyncEventStore]]


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "sqlite":
        path = tmp_path / "bank.sqlite"

        async def open_sqlite() -> AsyncEventStore:
            return await AsyncSQLiteEventStore.open(path)

        yield open_sqlite
        return
    dsn = available_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL server (see tests/runtime/postgres_env.py)")
    schema = new_schema()

    async def open_postgres() -> AsyncEventStore:
        return await AsyncPostgresEventStore.open(dsn, schema=schema)

    yield open_postgres
    drop_schema(dsn, schema)


def test_dispatch_and_units_of_work_as_the_synchronous_service(opener: Opener) -> None:
    async def main() -> None:
        async with await opener() as store:
            bank = AsyncBankService(store)
            ada, alan = uuid4(), uuid4()
            opened = await bank.dispatch(OpenAccount(account_id=ada, owner="Ada", currency="EUR"))
            assert opened.aggregate.state is not None and opened.token is not None
            deposited = await bank.dispatch(DepositMoney(account_id=ada, amount=eur("50")))
            assert [type(e) for e in deposited.events] == [MoneyDeposited]
            refused = await bank.dispatch(WithdrawMoney(account_id=ada, amount=eur("80")))
            assert [type(e) for e in refused.events] == [WithdrawalRejected]

            async def open_and_fund(unit: AsyncBankUnitOfWork) -> str:
                await unit.dispatch(OpenAccount(account_id=alan, owner="Alan", currency="EUR"))
                await unit.dispatch(DepositMoney(account_id=alan, amount=eur("5")))
                await unit.dispatch(DepositMoney(account_id=ada, amount=eur("1")))
                account = await unit.load_account(ada)
                return account.state.owner if account.state else ""

            result = await bank.unit_of_work(open_and_fund)
            assert result.value == "Ada" and len(result.events) == 3
            assert [r.stream_version for r in result.appended] == [2, 4]
            assert result.position == await store.head_position()

            # Many requests on one account at once: each retries on a conflict (at least
            # one of them wins each round), and every deposit lands once.
            patient = AsyncBankService(store, max_attempts=8)
            await asyncio.gather(
                *(
                    patient.dispatch(DepositMoney(account_id=alan, amount=eur("1")))
                    for _ in range(8)
                )
            )
            account = await bank.account_repository.load(alan)
            assert account.state is not None and account.state.balance == eur("13")

            # The synchronous service reads the same database alike.
            sync_store = getattr(store, "sync_store")  # noqa: B009 (both stores have one)
            same = await asyncio.to_thread(BankService(sync_store).account_repository.load, alan)
            assert same.state == account.state and same.version == account.version

    asyncio.run(main())


def test_a_transfer_request_and_a_unit_that_gives_up_after_max_attempts(opener: Opener) -> None:
    async def main() -> None:
        async with await opener() as store:
            bank = AsyncBankService(store, max_attempts=1)
            ada = uuid4()
            await bank.dispatch(OpenAccount(account_id=ada, owner="Ada", currency="EUR"))
            transfer = await bank.dispatch(
                RequestTransfer(
                    transfer_id=uuid4(), source_account=ada, target_account=uuid4(), amount=eur("1")
                )
            )
            assert transfer.aggregate.version == 1

            async def racing(unit: AsyncBankUnitOfWork) -> None:
                await unit.dispatch(DepositMoney(account_id=ada, amount=eur("1")))
                # Another request moves the account on before this unit commits.
                await bank.dispatch(DepositMoney(account_id=ada, amount=eur("2")))

            with pytest.raises(ConcurrencyError, match="gave up after 1 attempt"):
                await bank.unit_of_work(racing)

    asyncio.run(main())


# -- as user code types it ---------------------------------------------------------------

USAGE = """\
from __future__ import annotations

from decimal import Decimal
from typing import assert_type
from uuid import UUID

from esgen.runtime import AsyncPostgresEventStore, AsyncReadModel, CommandResult
from bank.commands.account import DepositMoney, OpenAccount
from bank.projections.account_balances import AccountBalancesQuery, AccountBalancesRow
from bank.domain.account import Account
from bank.events.account import AccountOpened, DepositRejected, MoneyDeposited
from bank.service import AsyncBankService, AsyncBankUnitOfWork
from bank.types import Money


async def open_account(bank: AsyncBankService, account: UUID) -> str | None:
    result = await bank.dispatch(OpenAccount(account_id=account, owner="Ada", currency="EUR"))
    assert_type(result, CommandResult[Account, tuple[AccountOpened, ...], AccountOpened])
    return result.token


async def deposit(bank: AsyncBankService, account: UUID) -> int | None:
    money = Money(amount=Decimal("1"), currency="EUR")
    result = await bank.dispatch(DepositMoney(account_id=account, amount=money))
    assert_type(result.events, tuple[MoneyDeposited | DepositRejected, ...])
    return result.position


async def both(bank: AsyncBankService, account: UUID) -> int:
    async def work(unit: AsyncBankUnitOfWork) -> int:
        money = Money(amount=Decimal("1"), currency="EUR")
        events = await unit.dispatch(DepositMoney(account_id=account, amount=money))
        assert_type(events, tuple[MoneyDeposited | DepositRejected, ...])
        loaded = await unit.load_account(account)
        assert_type(loaded, Account)
        return len(events)

    result = await bank.unit_of_work(work)
    assert_type(result.value, int)
    return result.value


async def service(dsn: str) -> AsyncBankService:
    return AsyncBankService(await AsyncPostgresEventStore.open(dsn, schema="bank"))


async def read_own_write(
    store: AsyncPostgresEventStore, token: str, account: UUID
) -> AccountBalancesRow | None:
    balances = AsyncReadModel(AccountBalancesQuery, store)
    assert_type(await balances.wait_for(token, timeout=2.0), AsyncReadModel[AccountBalancesRow, UUID])
    return await (await balances.wait_for(token, timeout=2.0)).get(account)
"""

# Each line marked `# wrong` must be refused by both checkers, and no other line.
MISUSE = """\
from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from esgen.runtime import PostgresEventStore
from bank.commands.account import DepositMoney
from bank.service import AsyncBankService, AsyncBankUnitOfWork
from bank.types import Money


async def misuse(bank: AsyncBankService, store: PostgresEventStore, account: UUID) -> None:
    money = Money(amount=Decimal("1"), currency="EUR")
    command = DepositMoney(account_id=account, amount=money)
    print(bank.dispatch(command).position)  # wrong: dispatch must be awaited
    AsyncBankService(store)  # wrong: a synchronous store

    def work(unit: AsyncBankUnitOfWork) -> int:
        return 1

    await bank.unit_of_work(work)  # wrong: the work function must be a coroutine
"""

WRONG = [i for i, line in enumerate(MISUSE.splitlines(), 1) if "# wrong" in line]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "user" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_user_code_passes_mypy_strict_and_misuse_fails_on_its_line(tmp_path: Path) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    misuse = _write(tmp_path, "misuse.py", MISUSE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         str(usage), str(misuse)],
        env={**os.environ, "MYPYPATH": str(GENERATED)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert not re.search(r"usage\.py:\d+: error", output), output
    lines = {int(n) for n in re.findall(r"^[^\n]*misuse\.py:(\d+): error:", output, re.M)}
    assert sorted(lines) == WRONG, output


def test_user_code_passes_pyright_strict_and_misuse_fails_on_its_line(tmp_path: Path) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    _write(tmp_path, "misuse.py", MISUSE)
    result = run_pyright([usage.parent], tmp_path, extra_paths=[GENERATED])
    assert result.files >= 2, result.report
    assert not re.search(r"usage\.py:\d+:\d+: error", result.report), result.report
    lines = {int(n) for n in re.findall(r"misuse\.py:(\d+):\d+: error:", result.report)}
    assert sorted(lines) == WRONG, result.report


def test_read_your_writes_through_the_async_read_model(opener: Opener) -> None:
    async def main() -> None:
        async with await opener() as store:
            bank = AsyncBankService(store)
            sync_store = getattr(store, "sync_store")  # noqa: B009 (both stores have one)
            runner = BankService(sync_store).projections()
            await asyncio.to_thread(runner.catch_up)  # the read model exists from here on
            balances = AsyncReadModel(AccountBalancesQuery, store)
            ada = uuid4()
            opened = await bank.dispatch(OpenAccount(account_id=ada, owner="Ada", currency="EUR"))
            assert opened.token is not None
            with pytest.raises(ReadModelBehind):
                await balances.wait_for(opened.token, timeout=0.2)  # no runner has run
            with pytest.raises(InvalidConsistencyToken):
                await balances.wait_for(consistency_token(10**6), timeout=1)

            # Thirty requests wait for the same write; none holds a thread while waiting,
            # so other work in threads still runs at once.
            async def read() -> Decimal | None:
                row = await (await balances.wait_for(opened.token or "", timeout=60)).get(ada)
                return None if row is None else row.balance

            readers = [asyncio.create_task(read()) for _ in range(30)]
            await asyncio.sleep(0.2)
            assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 5) == "free"
            await asyncio.to_thread(runner.catch_up)
            assert await asyncio.gather(*readers) == [Decimal("0")] * 30
            assert await balances.count() == 1 and await balances.exists()
            assert [row.owner for row in await balances.list(limit=5)] == ["Ada"]

    asyncio.run(main())


def test_a_query_under_way_is_waited_for_by_closing(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esgen.runtime import Rows

    slow_get = Rows.get

    def get(self: Rows[Any, Any], key: Any) -> Any:
        time.sleep(0.3)  # a slow read, so that closing comes while it runs
        return slow_get(self, key)

    async def main() -> None:
        store = await opener()
        bank = AsyncBankService(store)
        ada = uuid4()
        await bank.dispatch(OpenAccount(account_id=ada, owner="Ada", currency="EUR"))
        sync_store = getattr(store, "sync_store")  # noqa: B009 (both stores have one)
        await asyncio.to_thread(BankService(sync_store).projections().catch_up)
        balances = AsyncReadModel(AccountBalancesQuery, store)
        monkeypatch.setattr(Rows, "get", get)
        reading = asyncio.create_task(balances.get(ada))
        await asyncio.sleep(0.1)
        await store.aclose()
        assert reading.done()  # closing waited for it
        row = await reading
        assert row is not None and row.owner == "Ada"
        with pytest.raises(BackendError, match="closed"):
            await balances.count()

    asyncio.run(main())


def test_a_wait_ends_at_its_timeout_while_threads_are_busy(opener: Opener) -> None:
    async def main() -> float:
        async with await opener() as store:
            bank = AsyncBankService(store)
            sync_store = getattr(store, "sync_store")  # noqa: B009 (both stores have one)
            await asyncio.to_thread(BankService(sync_store).projections().catch_up)
            opened = await bank.dispatch(
                OpenAccount(account_id=uuid4(), owner="Ada", currency="EUR")
            )
            balances = AsyncReadModel(AccountBalancesQuery, store)
            started = asyncio.get_running_loop().time()
            waiting = asyncio.create_task(balances.wait_for(opened.token or "", timeout=0.3))
            await asyncio.sleep(0.05)  # its first look is made; now every thread is busy
            busy = [asyncio.to_thread(time.sleep, 2) for _ in range(12)]  # 2 rounds of 6
            blockers = asyncio.gather(*busy)
            with pytest.raises(ReadModelBehind):
                await waiting
            waited = asyncio.get_running_loop().time() - started
            await blockers
            return waited

    assert asyncio.run(main()) < 1.5  # not the 2 to 4 s the threads stay busy
