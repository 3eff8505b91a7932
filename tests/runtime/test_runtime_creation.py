"""Declared creation: which commands create an aggregate, checked by `execute` before the
handler runs, on every local backend and when two creators race."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Mapping
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import ClassVar
from uuid import UUID

import pytest

from esgen.runtime import (
    AggregateAlreadyExists,
    AggregateDefinitionError,
    AggregateNotFound,
    Clock,
    Command,
    ConcurrencyError,
    EventStore,
    MemoryEventStore,
    Repository,
    SQLiteEventStore,
    handle_command,
    utc_now,
)
from esgen.runtime.testing import AggregateScenario, ManualClock
from esgen.runtime.testing._domain import (
    CloseWallet,
    Deposit,
    Deposited,
    OpenWallet,
    Wallet,
    WalletClosed,
    WalletOpened,
    WalletState,
    make_wallet_registry,
)

WALLET = UUID("0b5f8e3c-1d2a-4f6b-9c8d-7e6f5a4b3c2d")
OPEN = OpenWallet(wallet_id=WALLET, owner="ann")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
    elif request.param == "sqlite":
        yield SQLiteEventStore(tmp_path / "events.db")
    else:
        yield from postgres_store(utc_now)


def postgres_store(clock: Clock) -> Iterator[EventStore]:
    """A store in a schema of its own on the test server (skipped when there is none)."""
    from .postgres_env import postgres_event_store

    yield from postgres_event_store(clock=clock)


@pytest.fixture
def repo(store: EventStore) -> Repository[Wallet, UUID]:
    return Repository(Wallet, store, make_wallet_registry(), clock=ManualClock())


def test_a_creating_command_creates(repo: Repository[Wallet, UUID], store: EventStore) -> None:
    result = handle_command(repo, WALLET, lambda w: w.execute(OPEN))
    assert result.events == (WalletOpened(owner="ann"),) and result.attempts == 1
    assert store.stream_version(f"Wallet-{WALLET}") == 1


def test_another_command_on_an_aggregate_that_does_not_exist_is_not_found(
    repo: Repository[Wallet, UUID], store: EventStore
) -> None:
    with pytest.raises(AggregateNotFound) as caught:
        handle_command(repo, WALLET, lambda w: w.execute(Deposit(wallet_id=WALLET, amount=5)))
    error = caught.value
    assert error.aggregate_id == WALLET and error.stream_id == f"Wallet-{WALLET}"
    assert str(error) == (
        f"Wallet {WALLET} does not exist (stream 'Wallet-{WALLET}'): Deposit needs one that "
        "exists (OpenWallet creates it)"
    )
    assert store.head_position() == 0


def test_a_creating_command_on_an_aggregate_that_exists_is_refused(
    repo: Repository[Wallet, UUID], store: EventStore
) -> None:
    handle_command(repo, WALLET, lambda w: w.execute(OPEN))
    with pytest.raises(AggregateAlreadyExists) as caught:
        handle_command(repo, WALLET, lambda w: w.execute(OPEN))
    error = caught.value
    assert (error.aggregate_id, error.stream_id, error.command) == (
        WALLET,
        f"Wallet-{WALLET}",
        "OpenWallet",
    )
    assert f"Wallet {WALLET} already exists" in str(error) and isinstance(error, ValueError)
    assert store.head_position() == 1


def test_the_check_comes_before_the_handler_and_leaves_the_aggregate_as_it_was() -> None:
    calls: list[Command] = []

    class Counting(Wallet):
        def open(self, command: OpenWallet) -> tuple[WalletOpened]:
            calls.append(command)
            return super().open(command)

    wallet = Counting(WALLET)
    with pytest.raises(AggregateNotFound):
        wallet.execute(CloseWallet(wallet_id=WALLET))
    wallet.execute(OPEN)
    with pytest.raises(AggregateAlreadyExists):
        wallet.execute(OPEN)
    assert calls == [OPEN] and wallet.version == 1 and len(wallet.pending_events) == 1


def test_creation_commands_merge_over_the_class_hierarchy() -> None:
    class Reopen(Command):
        command_type = "Reopen"
        wallet_id: UUID

    class ReopenableWallet(Wallet):
        command_methods: ClassVar[Mapping[type[Command], str]] = {Reopen: "reopen"}
        creation_commands: ClassVar[frozenset[type[Command]]] = frozenset({Reopen})

        def reopen(self, command: Reopen) -> tuple[WalletOpened]:
            return (WalletOpened(owner="again"),)

    assert ReopenableWallet._creation == {OpenWallet, Reopen}
    assert Wallet._creation == {OpenWallet}
    fresh = ReopenableWallet(WALLET)
    fresh.execute(Reopen(wallet_id=WALLET))
    with pytest.raises(AggregateAlreadyExists, match="Reopen creates it"):
        fresh.execute(Reopen(wallet_id=WALLET))
    with pytest.raises(AggregateNotFound, match=r"\(OpenWallet or \S*Reopen creates it\)"):
        ReopenableWallet(WALLET).execute(Deposit(wallet_id=WALLET, amount=1))


def test_without_creation_commands_every_command_runs_as_before() -> None:
    class Lenient(Wallet):
        pass

    Lenient._creation = frozenset()  # as an aggregate that declares none
    wallet = Lenient(WALLET)
    with pytest.raises(LookupError, match="has no state yet"):  # the handler reads .state
        wallet.execute(Deposit(wallet_id=WALLET, amount=1))
    wallet.execute(OPEN)
    wallet.execute(OPEN)  # nothing stops a second creation: the handler would have to
    assert wallet.version == 2


def test_creation_commands_must_be_handled_command_classes() -> None:
    with pytest.raises(AggregateDefinitionError, match="creation_commands must hold Command"):

        class Broken(Wallet):
            creation_commands: ClassVar[frozenset[type[Command]]] = frozenset({int})  # type: ignore[arg-type]

    class Unhandled(Command):
        command_type = "Unhandled"

    class Forgetful(Wallet):
        creation_commands: ClassVar[frozenset[type[Command]]] = frozenset({Unhandled})

    with pytest.raises(AggregateDefinitionError, match=r"lists .*Unhandled, which command_methods"):
        Forgetful(WALLET)


def test_the_scenario_fixture_reports_creation_errors() -> None:
    AggregateScenario(Wallet, WALLET).when(Deposit(wallet_id=WALLET, amount=1)).then_raises(
        AggregateNotFound, match="Deposit needs one that exists"
    )
    AggregateScenario(Wallet, WALLET).given(WalletOpened(owner="ann")).when(OPEN).then_raises(
        AggregateAlreadyExists
    )
    wallet = (
        AggregateScenario(Wallet, WALLET)
        .given(WalletOpened(owner="ann"), WalletClosed())
        .when(Deposit(wallet_id=WALLET, amount=1))
        .aggregate
    )
    assert wallet.state.closed


def test_two_creators_race_and_the_loser_is_told_it_exists(tmp_path: Path) -> None:
    # Two processes' worth of state: two stores on one SQLite file, two aggregate instances
    # of one id, both deciding on "no such wallet"; the second appends after the first.
    path = tmp_path / "events.db"
    winner_repo = Repository(Wallet, SQLiteEventStore(path), make_wallet_registry())
    loser_repo = Repository(Wallet, SQLiteEventStore(path), make_wallet_registry())
    seen: list[bool] = []

    def decide(wallet: Wallet) -> tuple[WalletOpened]:
        seen.append(wallet.exists)
        if len(seen) == 1:
            # The winner opens the wallet after the loser loaded it, before it appends.
            rival = winner_repo.load_or_new(WALLET)
            rival.execute(OpenWallet(wallet_id=WALLET, owner="grace"))
            winner_repo.save(rival)
        return wallet.execute(OPEN)

    with pytest.raises(AggregateAlreadyExists) as caught:
        handle_command(loser_repo, WALLET, decide)
    # First attempt: decided on an empty wallet, its append conflicted; the retry reloaded
    # the winner's wallet, where opening is refused for good (not retried again).
    assert seen == [False, True]
    assert not isinstance(caught.value, ConcurrencyError)
    assert loser_repo.load(WALLET).state.owner == "grace"
    assert loser_repo.store.stream_version(f"Wallet-{WALLET}") == 1


def open_wallet_worker(
    path: str, owner: str, start: Barrier, results: Queue[tuple[str, str]]
) -> None:
    """In a child process: open the wallet once every rival is ready; report the outcome."""
    store = SQLiteEventStore(Path(path))
    repo = Repository(Wallet, store, make_wallet_registry())
    command = OpenWallet(wallet_id=WALLET, owner=owner)
    try:
        start.wait(timeout=120)
        handle_command(repo, WALLET, lambda wallet: wallet.execute(command))
    except AggregateAlreadyExists:
        results.put((owner, "exists"))
    except Exception as exc:
        results.put((owner, f"error: {exc!r}"))
    else:
        results.put((owner, "created"))
    finally:
        store.close()


def test_processes_racing_to_create_one_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SQLiteEventStore(path).close()  # the schema, before the rivals start
    context = multiprocessing.get_context("spawn")
    owners = [f"owner-{i}" for i in range(4)]
    start = context.Barrier(len(owners))
    results: Queue[tuple[str, str]] = context.Queue()
    processes = [
        context.Process(target=open_wallet_worker, args=(str(path), owner, start, results))
        for owner in owners
    ]
    for process in processes:
        process.start()
    try:
        outcomes = dict(results.get(timeout=120) for _ in owners)
    finally:
        for process in processes:
            process.join(timeout=120)
    assert sorted(outcomes.values()) == ["created", "exists", "exists", "exists"], outcomes
    (winner,) = [owner for owner, outcome in outcomes.items() if outcome == "created"]
    store = SQLiteEventStore(path)
    assert [r.event_type for r in store.read_stream(f"Wallet-{WALLET}")] == ["WalletOpened"]
    assert Repository(Wallet, store, make_wallet_registry()).load(WALLET).state.owner == winner


def test_the_race_without_a_retry_is_a_conflict(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first = Repository(Wallet, SQLiteEventStore(path), make_wallet_registry())
    second = Repository(Wallet, SQLiteEventStore(path), make_wallet_registry())
    a, b = first.load_or_new(WALLET), second.load_or_new(WALLET)
    a.execute(OPEN)
    b.execute(OpenWallet(wallet_id=WALLET, owner="grace"))
    first.save(a)
    with pytest.raises(ConcurrencyError):
        second.save(b)
    assert b.pending_events == (WalletOpened(owner="grace"),)


def test_deposits_after_creation(repo: Repository[Wallet, UUID]) -> None:
    handle_command(repo, WALLET, lambda w: w.execute(OPEN))
    result = handle_command(repo, WALLET, lambda w: w.execute(Deposit(wallet_id=WALLET, amount=5)))
    (event,) = result.events
    assert isinstance(event, Deposited) and result.aggregate.state.balance == 5
    assert isinstance(result.aggregate.state, WalletState)
