"""AsyncRepository and handle_command_async on both asynchronous stores: they load and save
event for event as Repository and handle_command do, and many tasks handling commands on one
aggregate lose no update."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar
from uuid import uuid4

import pytest
from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    AggregateNotFound,
    AppendResult,
    AsyncEventStore,
    AsyncPostgresEventStore,
    AsyncRepository,
    AsyncSnapshotStore,
    AsyncSQLiteEventStore,
    AsyncUnitOfWork,
    ConcurrencyError,
    Event,
    EventRegistry,
    ExpectedVersion,
    NewEvent,
    Personal,
    RecordedEvent,
    Repository,
    Snapshot,
    SQLiteEventStore,
    StreamAppend,
    command_context,
    handle_command,
    handle_command_async,
    run_in_unit_of_work_async,
)
from esgen.runtime._ports import StoredData, TimedStoredData
from esgen.runtime.testing import ManualClock
from esgen.runtime.testing._domain import (
    Account,
    Deposit,
    OpenWallet,
    Wallet,
    make_registry,
    make_wallet_registry,
)

from .postgres_env import available_dsn, drop_schema, new_schema

Opener = Callable[[ManualClock], Awaitable[AsyncEventStore]]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "sqlite":
        path = tmp_path / "events.db"

        async def open_sqlite(clock: ManualClock) -> AsyncEventStore:
            return await AsyncSQLiteEventStore.open(path, clock=clock)

        yield open_sqlite
        return
    dsn = available_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL server (see postgres_env.py)")
    schema = new_schema()

    async def open_postgres(clock: ManualClock) -> AsyncEventStore:
        return await AsyncPostgresEventStore.open(dsn, schema=schema, clock=clock)

    yield open_postgres
    drop_schema(dsn, schema)


def _run(opener: Opener, work: Callable[[AsyncEventStore], Awaitable[None]]) -> None:
    async def main() -> None:
        async with await opener(ManualClock()) as store:
            await work(store)

    asyncio.run(main())


def test_save_and_load_as_the_synchronous_repository_does(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        accounts = AsyncRepository(Account, store, make_registry())
        account = accounts.new("acc-1")
        account.open("ann")
        account.deposit(30)
        result = await accounts.save(account)
        assert result is not None and result.stream_version == 2
        assert await accounts.save(account) is None  # nothing pending
        loaded = await accounts.load("acc-1")
        assert (loaded.version, loaded.state.balance, loaded.state.owner) == (2, 30, "ann")
        with pytest.raises(AggregateNotFound):
            await accounts.load("acc-2")
        fresh = await accounts.load_or_new("acc-2")
        assert fresh.version == 0
        # A stale copy conflicts and writes nothing; its events stay pending.
        stale = await accounts.load("acc-1")
        loaded.deposit(1)
        await accounts.save(loaded)
        stale.deposit(2)
        with pytest.raises(ConcurrencyError):
            await accounts.save(stale)
        assert len(stale.pending_events) == 1
        assert (await accounts.load("acc-1")).state.balance == 31

    _run(opener, work)


def test_old_versions_are_upcast_and_loads_page_through_long_streams(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        # Version 1 of AccountOpened, as an earlier release stored it.
        await store.append("Account-old", [NewEvent("AccountOpened", 1, '{"owner": "bo"}')], 0)
        deposits = [NewEvent("MoneyDeposited", 1, '{"amount": 1}')] * 2500
        await store.append("Account-old", deposits, 1)
        accounts = AsyncRepository(Account, store, make_registry())
        account = await accounts.load("old")
        assert (account.state.currency, account.state.balance, account.version) == (
            "EUR",
            2500,
            2501,
        )

    _run(opener, work)


def test_snapshots_ride_along_and_are_used(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        accounts = AsyncRepository(Account, store, make_registry(), snapshot_every=3)
        account = accounts.new("acc-s")
        account.open("cy")
        for amount in (1, 2, 3):
            account.deposit(amount)
        await accounts.save(account)
        assert isinstance(store, AsyncSQLiteEventStore | AsyncPostgresEventStore)
        snapshot = await store.load_snapshot("Account-acc-s")
        assert snapshot is not None and snapshot.version == 4
        assert json.loads(snapshot.state)["balance"] == 6
        loaded = await accounts.load("acc-s")
        assert (loaded.version, loaded.state.balance) == (4, 6)
        # The same store read synchronously gives the same aggregate.
        sync_store = store.sync_store
        same = await asyncio.to_thread(
            Repository(Account, sync_store, make_registry()).load, "acc-s"
        )
        assert same.state == loaded.state and same.version == loaded.version

    _run(opener, work)


def test_many_tasks_handling_commands_on_one_aggregate_lose_no_update(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        accounts = AsyncRepository(Account, store, make_registry())
        await handle_command_async(accounts, "shared", lambda a: a.open("dee"))

        async def deposit(amount: int) -> int:
            result = await handle_command_async(
                accounts, "shared", lambda a: a.deposit(amount), max_attempts=100
            )
            return result.attempts

        await asyncio.gather(*(deposit(n) for n in range(1, 21)))
        account = await accounts.load("shared")
        assert account.state.balance == sum(range(1, 21))
        assert account.version == 21

    _run(opener, work)


def test_commands_with_creation_rules_times_and_one_context(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        wallets = AsyncRepository(Wallet, store, make_wallet_registry())
        wallet_id = uuid4()
        open_wallet = OpenWallet(wallet_id=wallet_id, owner="eve")
        opened = await handle_command_async(
            wallets, wallet_id, lambda w: w.execute(open_wallet), command=open_wallet
        )
        assert opened.position is not None and opened.token is not None
        with pytest.raises(AggregateNotFound):
            other = uuid4()
            await handle_command_async(
                wallets,
                other,
                lambda w: w.execute(Deposit(wallet_id=other, amount=1)),
                must_exist=True,
            )
        with command_context() as context:
            deposited = await handle_command_async(
                wallets, wallet_id, lambda w: w.execute(Deposit(wallet_id=wallet_id, amount=5))
            )
        wallet = deposited.aggregate
        assert wallet.state.balance == 5
        # The time the event was recorded is known after the load, with no further read.
        loaded = await wallets.load(wallet_id)
        assert loaded.event_time == loaded.state.changed_at
        assert isinstance(store, AsyncSQLiteEventStore | AsyncPostgresEventStore)
        records = await store.read_stream(wallets.stream_id(wallet_id))
        assert records[0].metadata["command"] == "OpenWallet"
        assert records[-1].correlation_id == context.correlation_id

    _run(opener, work)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with (
        SQLiteEventStore(tmp_path / "events.db") as store,
        pytest.raises(TypeError, match="needs an AsyncEventStore"),
    ):
        AsyncRepository(Account, store, make_registry())  # type: ignore[arg-type]

    async def main() -> None:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:
            accounts = AsyncRepository(Account, store, make_registry())
            with pytest.raises(ValueError, match="max_attempts"):
                await handle_command_async(accounts, "x", lambda a: a.open("f"), max_attempts=0)

    asyncio.run(main())


def test_a_unit_of_work_appends_its_aggregates_together_and_retries(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        accounts = AsyncRepository(Account, store, make_registry())
        for name in ("from", "to"):
            await handle_command_async(accounts, name, lambda a: a.open("gil"))
        await handle_command_async(accounts, "from", lambda a: a.deposit(100))
        runs = 0

        async def transfer(unit: AsyncUnitOfWork) -> int:
            nonlocal runs
            runs += 1
            source = await unit.load(accounts, "from")
            assert await unit.load(accounts, "from") is source  # one object per stream
            target = await unit.load_or_new(accounts, "to")
            if runs == 1:  # another writer moves "to" on between this load and the commit
                await handle_command_async(accounts, "to", lambda a: a.deposit(1))
            source.withdraw(40)
            target.deposit(40)
            return source.state.balance

        result = await run_in_unit_of_work_async(store, transfer)
        assert (result.value, result.attempts, runs) == (60, 2, 2)
        assert [r.stream_id for r in result.appended] == ["Account-from", "Account-to"]
        assert result.position == await store.head_position()
        assert (await accounts.load("from")).state.balance == 60
        assert (await accounts.load("to")).state.balance == 41
        events = await store.read_stream("Account-to")
        assert (
            events[-1].correlation_id
            == (await store.read_stream("Account-from"))[-1].correlation_id
        )  # one command context for the whole unit of work

    _run(opener, work)


def test_a_unit_of_work_names_each_command_and_refuses_foreign_repositories(
    opener: Opener, tmp_path: Path
) -> None:
    async def work(store: AsyncEventStore) -> None:
        wallets = AsyncRepository(Wallet, store, make_wallet_registry())
        first, second = uuid4(), uuid4()
        unit = AsyncUnitOfWork(store)
        await unit.execute(wallets, first, OpenWallet(wallet_id=first, owner="hal"))
        await unit.execute(wallets, second, OpenWallet(wallet_id=second, owner="ida"))
        await unit.execute(wallets, first, Deposit(wallet_id=first, amount=3), must_exist=True)
        assert len(unit.pending_events) == 3
        results = await unit.commit()
        assert [r.stream_version for r in results] == [2, 1]
        assert await unit.commit() == []  # nothing pending any more
        records = await store.read_stream(wallets.stream_id(first))
        assert [r.metadata["command"] for r in records] == ["OpenWallet", "Deposit"]

        with SQLiteEventStore(tmp_path / "sync.db") as sync_store:
            synchronous = Repository(Wallet, sync_store, make_wallet_registry())
            with pytest.raises(TypeError, match="expected an AsyncRepository"):
                await AsyncUnitOfWork(store).load(synchronous, first)  # type: ignore[arg-type]
        async with await AsyncSQLiteEventStore.open(tmp_path / "other.db") as other:
            elsewhere = AsyncRepository(Wallet, other, make_wallet_registry())
            with pytest.raises(ValueError, match="one unit of work appends to one store"):
                await AsyncUnitOfWork(store).load_or_new(elsewhere, first)

    _run(opener, work)


# -- what the review of the first version found ---------------------------------------------


def test_two_dispatches_of_one_unit_at_once_both_land(opener: Opener) -> None:
    # `asyncio.gather` inside a work function: both load the stream at once; the unit keeps
    # one object for it, so neither command's events are lost.
    async def work(store: AsyncEventStore) -> None:
        accounts = AsyncRepository(Account, store, make_registry())
        await handle_command_async(accounts, "g", lambda a: a.open("jo"))

        async def deposit(unit: AsyncUnitOfWork, amount: int) -> None:
            (await unit.load(accounts, "g")).deposit(amount)

        async def both(unit: AsyncUnitOfWork) -> None:
            await asyncio.gather(deposit(unit, 10), deposit(unit, 20))
            assert len(unit.aggregates) == 1

        result = await run_in_unit_of_work_async(store, both)
        assert len(result.events) == 2
        assert (await accounts.load("g")).state.balance == 30

    _run(opener, work)


class _Conflicting(AsyncEventStore):
    """A real store whose first append is preceded by a rival's: the first attempt of a
    command always conflicts."""

    def __init__(self, store: AsyncEventStore) -> None:
        self.store = store
        self.rivals = 1

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | ExpectedVersion,
        *,
        snapshot: Snapshot | None = None,
    ) -> AppendResult:
        if self.rivals:
            self.rivals -= 1
            await self.store.append(
                stream_id, [NewEvent("MoneyDeposited", 1, '{"amount": 5}')], expected_version
            )
        return await self.store.append(stream_id, events, expected_version, snapshot=snapshot)

    async def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return await self.store.append_streams(appends)

    async def read_stream(self, stream_id: str, **kwargs: Any) -> list[RecordedEvent]:
        return await self.store.read_stream(stream_id, **kwargs)

    async def read_stream_data(self, stream_id: str, **kwargs: Any) -> Sequence[StoredData]:
        return await self.store.read_stream_data(stream_id, **kwargs)

    async def read_stream_data_timed(
        self, stream_id: str, **kwargs: Any
    ) -> Sequence[TimedStoredData]:
        return await self.store.read_stream_data_timed(stream_id, **kwargs)

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        return await self.store.read_all(after, limit)

    async def stream_version(self, stream_id: str) -> int:
        return await self.store.stream_version(stream_id)

    async def head_position(self) -> int:
        return await self.store.head_position()


def test_a_conflict_is_decided_again_on_fresh_state(opener: Opener) -> None:
    async def work(store: AsyncEventStore) -> None:
        await AsyncRepository(Account, store, make_registry()).save(
            _opened(AsyncRepository(Account, store, make_registry()), "c")
        )
        rival = _Conflicting(store)
        accounts = AsyncRepository(Account, rival, make_registry())
        seen: list[int] = []

        def deposit(account: Account) -> None:
            seen.append(account.state.balance)
            account.deposit(1)

        result = await handle_command_async(accounts, "c", deposit)
        assert (result.attempts, seen) == (2, [0, 5])  # decided again after the rival's 5
        assert (await accounts.load("c")).state.balance == 6
        with pytest.raises(ConcurrencyError, match="gave up after 1 attempt"):
            rival.rivals = 1
            await handle_command_async(accounts, "c", lambda a: a.deposit(1), max_attempts=1)

    _run(opener, work)


def _opened(accounts: AsyncRepository[Account, str], name: str) -> Account:
    account = accounts.new(name)
    account.open("kim")
    return account


def test_a_snapshot_is_read_and_one_kept_elsewhere_is_saved_there(
    opener: Opener, tmp_path: Path
) -> None:
    async def work(store: AsyncEventStore) -> None:
        assert isinstance(store, AsyncSQLiteEventStore | AsyncPostgresEventStore)
        accounts = AsyncRepository(Account, store, make_registry(), snapshot_every=2)
        account = _opened(accounts, "t")
        account.deposit(4)
        await accounts.save(account)
        kept = await store.load_snapshot("Account-t")
        assert kept is not None
        # A snapshot says what the state is: a load that reads it shows this one.
        forged = json.dumps({**json.loads(kept.state), "balance": 999})
        await store.save_snapshot(
            Snapshot(kept.stream_id, kept.version, kept.fingerprint, forged, kept.taken_at)
        )
        assert (await accounts.load("t")).state.balance == 999
        async with await AsyncSQLiteEventStore.open(tmp_path / "snapshots.db") as elsewhere:
            apart = AsyncRepository(
                Account, store, make_registry(), snapshots=elsewhere, snapshot_every=1
            )
            other = _opened(apart, "u")
            await apart.save(other)
            assert await store.load_snapshot("Account-u") is None
            assert (await elsewhere.load_snapshot("Account-u")) is not None
            assert (await apart.load("u")).version == 1

    _run(opener, work)


def test_a_cancelled_commit_leaves_nothing_pending(opener: Opener) -> None:
    class SlowSnapshots(AsyncSnapshotStore):
        async def load_snapshot(self, stream_id: str) -> Snapshot | None:
            return None

        async def save_snapshot(self, snapshot: Snapshot) -> None:
            await asyncio.sleep(60)

    async def work(store: AsyncEventStore) -> None:
        snapping = AsyncRepository(
            Account, store, make_registry(), snapshots=SlowSnapshots(), snapshot_every=1
        )
        plain = AsyncRepository(Account, store, make_registry())
        unit = AsyncUnitOfWork(store)
        (await unit.load_or_new(snapping, "a")).open("a")
        (await unit.load_or_new(plain, "b")).open("b")
        commit = asyncio.create_task(unit.commit())
        while not await store.stream_version("Account-b"):
            await asyncio.sleep(0.01)  # appended; now waiting on the snapshot
        commit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await commit
        assert unit.pending_events == ()  # written once: nothing left to append again
        assert await unit.commit() == []

    _run(opener, work)


def test_what_an_async_repository_cannot_do_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:
            with (
                SQLiteEventStore(tmp_path / "sync.db") as sync_store,
                pytest.raises(TypeError, match="AsyncSnapshotStore"),
            ):
                AsyncRepository(Account, store, make_registry(), snapshots=sync_store)  # type: ignore[arg-type]
            accounts = AsyncRepository(Account, store, make_registry())

            async def decide(account: Account) -> None:
                account.open("lu")

            with pytest.raises(TypeError, match="decide returned an awaitable"):
                await handle_command_async(accounts, "x", decide)  # type: ignore[arg-type]
            assert await store.head_position() == 0
        with (
            SQLiteEventStore(tmp_path / "sync.db") as sync_store,
            pytest.raises(TypeError, match="decide returned an awaitable"),
        ):
            handle_command(Repository(Account, sync_store, make_registry()), "x", decide)  # type: ignore[arg-type]

    asyncio.run(main())


class _SignedUpV1(Event):
    event_type = "SignedUp"
    event_version = 1
    name: Annotated[str, Personal(erased="<erased>")]


class _SignedUp(Event):  # the personal field dropped in version 2
    event_type = "SignedUp"
    event_version = 2
    plan: str


class _UserState(BaseModel):
    model_config = ConfigDict(frozen=True)
    plan: str


class _User(Aggregate[_UserState]):
    aggregate_type = "User"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {_SignedUp: "_signed_up"}

    def _signed_up(self, event: _SignedUp) -> _UserState:
        return _UserState(plan=event.plan)


def test_an_aggregate_whose_older_events_held_personal_data_is_refused(tmp_path: Path) -> None:
    # Stored events of version 1 may be sealed: opening them needs keys.
    registry = EventRegistry([_SignedUpV1, _SignedUp])
    registry.register_upcaster("SignedUp", 1, lambda data: {"plan": "basic"})

    async def main() -> None:
        async with await AsyncSQLiteEventStore.open(tmp_path / "events.db") as store:
            with pytest.raises(TypeError, match="personal data"):
                AsyncRepository(_User, store, registry)

    asyncio.run(main())
