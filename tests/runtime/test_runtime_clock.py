"""Time in aggregates: `now()` for command handlers (the repository's clock), and
`event_time` for apply methods (the recorded time of the event being applied)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest
from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    AggregateNotCreated,
    Clock,
    Event,
    EventStore,
    MemoryEventStore,
    Repository,
    SQLiteEventStore,
    UnhandledEvent,
    handle_command,
)
from esgen.runtime.testing import AggregateScenario, ManualClock
from esgen.runtime.testing._domain import (
    Deposit,
    Deposited,
    DepositRefused,
    OpenWallet,
    Wallet,
    WalletClosed,
    WalletOpened,
    WalletState,
    make_wallet_registry,
)

WALLET = UUID("0b5f8e3c-1d2a-4f6b-9c8d-7e6f5a4b3c2d")
OPEN = OpenWallet(wallet_id=WALLET, owner="ann")
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
STORE_T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    # The store keeps its own time, apart from the aggregates' clock, so the tests can
    # tell which one a time came from.
    clock = ManualClock(STORE_T0, timedelta(minutes=1))
    if request.param == "memory":
        yield MemoryEventStore(clock=clock)
    elif request.param == "sqlite":
        yield SQLiteEventStore(tmp_path / "events.db", clock=clock)
    else:
        yield from postgres_store(clock)


def postgres_store(clock: Clock) -> Iterator[EventStore]:
    """A store in a schema of its own on the test server (skipped when there is none)."""
    from .postgres_env import postgres_event_store

    yield from postgres_event_store(clock=clock)


def _repo(store: EventStore, snapshot_every: int | None = None) -> Repository[Wallet, UUID]:
    clock = ManualClock(T0, timedelta(hours=1))
    registry = make_wallet_registry()
    return Repository(Wallet, store, registry, clock=clock, snapshot_every=snapshot_every)


def _deposit(amount: int) -> Deposit:
    return Deposit(wallet_id=WALLET, amount=amount)


def _send(repo: Repository[Wallet, UUID], command: OpenWallet | Deposit) -> None:
    handle_command(repo, WALLET, lambda wallet: wallet.execute(command))


# -- now() -------------------------------------------------------------------------------


def test_aggregates_built_by_a_repository_read_its_clock(store: EventStore) -> None:
    clock = ManualClock(T0, timedelta(0))
    repo = Repository(Wallet, store, make_wallet_registry(), clock=clock)
    assert repo.clock is clock
    assert repo.load_or_new(WALLET).now() == T0
    handle_command(repo, WALLET, lambda w: w.execute(OPEN))
    clock.set(T0 + timedelta(days=2))
    assert repo.load(WALLET).now() == T0 + timedelta(days=2)
    assert repo.new(WALLET).now() == T0 + timedelta(days=2)


def test_an_aggregate_built_directly_reads_the_system_clock_in_utc() -> None:
    before = datetime.now(UTC)
    now = Wallet(WALLET).now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC and before <= now <= after


def test_now_is_in_utc_whatever_zone_the_clock_gives() -> None:
    paris = timezone(timedelta(hours=2))
    wallet = Wallet(WALLET, clock=lambda: datetime(2025, 6, 1, 14, 0, tzinfo=paris))
    assert wallet.now() == T0 and wallet.now().tzinfo is UTC
    naive = Wallet(WALLET, clock=lambda: datetime(2025, 6, 1, 12, 0))
    with pytest.raises(ValueError, match="Wallet's clock time must be timezone-aware"):
        naive.now()


def test_one_command_happens_at_one_moment() -> None:
    # A clock that moves on at every reading: all readings within one execute agree, and
    # are when its events are recorded.
    clock = ManualClock(T0, timedelta(seconds=1))
    moments: list[datetime] = []

    class Watching(Wallet):
        def deposit(self, command: Deposit) -> tuple[Deposited, ...]:
            moments.extend([self.now(), self.now()])
            return (
                Deposited(amount=command.amount, decided_at=self.now()),
                Deposited(amount=1, decided_at=self.now()),
            )

    wallet = Watching(WALLET, clock=clock)
    wallet.execute(OPEN)
    wallet.execute(_deposit(5))
    (_, first, second) = wallet.pending_events
    assert isinstance(first, Deposited) and isinstance(second, Deposited)
    assert moments[0] == moments[1] == first.decided_at == second.decided_at
    assert wallet.state.changed_at == moments[0]
    assert wallet._pending_times == [T0, moments[0], moments[0]]
    assert moments[0] == T0 + timedelta(seconds=1)
    assert wallet.now() == moments[0] + timedelta(seconds=1)  # outside execute: the clock


# -- event_time when recording -------------------------------------------------------------


def test_new_events_are_applied_at_the_time_the_aggregate_records_them() -> None:
    clock = ManualClock(T0, timedelta(hours=1))
    wallet = Wallet(WALLET, clock=clock)
    wallet.execute(OPEN)
    assert wallet.state.opened_at == wallet.state.changed_at == T0
    wallet.record(Deposited(amount=1, decided_at=T0))
    wallet.record(Deposited(amount=2, decided_at=T0))  # one clock reading per record
    assert wallet.state.changed_at == wallet.event_time == T0 + timedelta(hours=2)
    assert wallet._pending_times == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]


def test_a_failed_apply_leaves_the_event_time_as_it_was() -> None:
    class Stray(Event):
        event_type = "Stray"
        event_version = 1

    clock = ManualClock(T0, timedelta(hours=1))
    wallet = Wallet(WALLET, clock=clock)
    with pytest.raises(AggregateNotCreated):
        wallet.record(Deposited(amount=1, decided_at=T0))  # its apply method reads .state
    with pytest.raises(AggregateNotCreated, match="no event time"):
        _ = wallet.event_time
    wallet.execute(OPEN)
    with pytest.raises(UnhandledEvent):
        wallet.record(Stray())
    assert wallet.event_time == T0 + timedelta(hours=1)
    assert wallet._pending_times == [T0 + timedelta(hours=1)]


def test_saving_clears_the_recording_times_with_the_events(store: EventStore) -> None:
    repo = _repo(store)
    wallet = repo.new(WALLET)
    wallet.execute(OPEN)
    wallet.execute(_deposit(2))
    assert len(wallet._pending_times) == 2
    repo.save(wallet)
    assert wallet._pending_times == [] and wallet.pending_events == ()


# -- event_time when replaying ---------------------------------------------------------------


def _stored_times(store: EventStore) -> list[datetime]:
    return [r.recorded_at for r in store.read_stream(f"Wallet-{WALLET}")]


def test_replayed_events_are_applied_at_their_stored_time(store: EventStore) -> None:
    repo = _repo(store)
    _send(repo, OPEN)
    _send(repo, _deposit(3))
    _send(repo, _deposit(-1))  # refused: still an event
    opened, deposited, refused = _stored_times(store)
    wallet = repo.load(WALLET)
    assert wallet.state.opened_at == opened
    assert wallet.state.changed_at == refused and wallet.event_time == refused
    assert wallet.event_time.tzinfo is not None and wallet.event_time.utcoffset() == timedelta(0)
    assert deposited < refused


def test_sqlite_times_are_parsed_only_when_read(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    repo = _repo(store)
    _send(repo, OPEN)
    _send(repo, _deposit(3))

    class Untimed(Wallet):
        def _deposited(self, event: Deposited) -> WalletState:  # reads no event_time
            return self.state.model_copy(update={"balance": self.state.balance + event.amount})

    untimed = Repository(Untimed, store, make_wallet_registry()).load(WALLET)
    assert isinstance(untimed._event_time, str)  # the stored text, as SQLite returned it
    last = _stored_times(store)[-1]
    assert untimed.event_time == last and isinstance(untimed._event_time, datetime)


def test_history_and_load_at_replay_with_stored_times(store: EventStore) -> None:
    repo = _repo(store)
    _send(repo, OPEN)
    _send(repo, _deposit(1))
    _send(repo, _deposit(2))
    times = _stored_times(store)
    states = [WalletState.model_validate(entry.state) for entry in repo.history(WALLET)]
    assert [state.changed_at for state in states] == times
    assert all(state.opened_at == times[0] for state in states)
    at_two = repo.load_at(WALLET, version=2)
    assert at_two.state.changed_at == at_two.event_time == times[1]
    as_of = repo.load_at(WALLET, at=times[1] + timedelta(seconds=1))
    assert as_of.version == 2 and as_of.state.changed_at == times[1]


def test_after_a_snapshot_later_events_still_get_their_times(store: EventStore) -> None:
    repo = _repo(store, snapshot_every=2)
    _send(repo, OPEN)
    _send(repo, _deposit(1))  # snapshot at version 2
    snapshot_only = repo.load(WALLET)
    assert snapshot_only.version == 2
    with pytest.raises(AggregateNotCreated, match="no event time"):
        _ = snapshot_only.event_time  # the snapshot keeps the state, not the event's time
    _send(repo, _deposit(2))
    times = _stored_times(store)
    wallet = repo.load(WALLET)
    assert wallet.state.changed_at == wallet.event_time == times[2]
    assert wallet.state.opened_at == times[0]  # from the snapshot's state
    assert repo.load_at(WALLET, at=times[2]).state.changed_at == times[2]


# -- the scenario fixture ------------------------------------------------------------------


def test_the_scenario_clock_times_given_events_and_commands() -> None:
    clock = ManualClock(T0, timedelta(minutes=5))
    scenario = AggregateScenario(Wallet, WALLET, clock=clock)
    scenario.given(WalletOpened(owner="ann"), Deposited(amount=2, decided_at=T0))
    assert scenario.aggregate.state.opened_at == T0
    assert scenario.aggregate.state.changed_at == T0 + timedelta(minutes=5)
    wallet = scenario.when(_deposit(3)).then(
        Deposited(amount=3, decided_at=T0 + timedelta(minutes=10))
    )
    assert wallet.state.changed_at == T0 + timedelta(minutes=10)
    default = AggregateScenario(Wallet).given(WalletOpened(owner="ann"))
    assert isinstance(default.clock, ManualClock)
    assert default.aggregate.state.opened_at == datetime(2024, 1, 1, tzinfo=UTC)


# -- loads fetch the stored times only for classes that read them -------------------------


class TallyState(BaseModel):
    model_config = ConfigDict(frozen=True)
    total: int = 0
    stamped: datetime | None = None


class Tally(Aggregate[TallyState, UUID]):
    """The wallet's events, applied by code that names no `event_time`."""

    aggregate_type = "Wallet"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        WalletOpened: "_opened",
        Deposited: "_deposited",
        DepositRefused: "_ignored",
        WalletClosed: "_ignored",
    }

    def _opened(self, event: WalletOpened) -> TallyState:
        return TallyState()

    def _deposited(self, event: Deposited) -> TallyState:
        return TallyState(total=self.state.total + event.amount)

    def _ignored(self, event: Event) -> TallyState:
        return self.state


def _stamp(aggregate: Tally) -> datetime:
    # Out of the class's sight: a module function reading the time.
    return aggregate.event_time


class StampedTally(Tally):
    def _deposited(self, event: Deposited) -> TallyState:
        return TallyState(total=self.state.total + event.amount, stamped=_stamp(self))


class CountingReads(MemoryEventStore):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.timed = self.untimed = 0

    def read_stream_data(self, *args: Any, **kwargs: Any) -> Any:
        self.untimed += 1
        return super().read_stream_data(*args, **kwargs)

    def read_stream_data_timed(self, *args: Any, **kwargs: Any) -> Any:
        self.timed += 1
        return super().read_stream_data_timed(*args, **kwargs)


def test_a_class_whose_code_reads_no_event_time_loads_without_the_times(tmp_path: Path) -> None:
    for store in (SQLiteEventStore(tmp_path / "events.db"), CountingReads(ManualClock())):
        repo = _repo(store)
        _send(repo, OPEN)
        _send(repo, _deposit(3))
        assert Wallet._reads_event_time and not Tally._reads_event_time
        if isinstance(store, CountingReads):
            store.untimed = store.timed = 0  # the wallet's own loads read the times
        tally = Repository(Tally, store, make_wallet_registry()).load(WALLET)
        assert tally.state.total == 3
        # Asked after the load, the time of the last event comes from the store.
        assert tally.event_time == _stored_times(store)[-1]
        if isinstance(store, CountingReads):
            assert (store.untimed, store.timed) == (1, 0)


def test_event_time_read_where_the_scan_cannot_see_loads_again_with_the_times() -> None:
    store = CountingReads(ManualClock())
    repo = _repo(store)
    _send(repo, OPEN)
    _send(repo, _deposit(3))
    _send(repo, _deposit(4))
    assert not StampedTally._reads_event_time  # the read is in a module function
    store.untimed = store.timed = 0  # the wallet's own loads read the times
    tallies = Repository(StampedTally, store, make_wallet_registry())
    tally = tallies.load(WALLET)
    assert tally.state == TallyState(total=7, stamped=_stored_times(store)[-1])
    assert (store.untimed, store.timed) == (1, 1)  # started without, finished with
    assert StampedTally._reads_event_time and not Tally._reads_event_time
    tallies.load(WALLET)
    assert (store.untimed, store.timed) == (1, 2)  # and from then on, with them at once
    at_two = tallies.load_at(WALLET, version=2)
    assert at_two.state == TallyState(total=3, stamped=_stored_times(store)[1])
