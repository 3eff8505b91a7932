"""Sagas on every backend that keeps their state: state stored and restored, each event
handled once, a failed page taking back the commands it sent (their events included),
deadlines on a clock the test moves, and an instance whose code fails stalled alone,
its later events kept, until a retry after the fix. Written against the ports and the
public API."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest

from esgen.runtime import (
    Aggregate,
    AggregateAlreadyExists,
    AggregateNotCreated,
    AggregateNotFound,
    BackendError,
    Command,
    Event,
    EventRegistry,
    EventStore,
    NewEvent,
    Problem,
    ProjectionNeedsRebuild,
    ReadModelNotFound,
    ReadOnlyStore,
    Repository,
    Saga,
    SagaError,
    SagaInstance,
    SagaInstanceNotFound,
    SagaRunner,
    SagaStatus,
    UnstorableValue,
    ValueObject,
    handle_command,
    progress_storage,
)
from esgen.runtime.testing._clock import ManualClock
from esgen.runtime.testing._fixtures import StoreFixtures

__all__ = ["SagaContract"]


# -- a pot that money is put into and taken out of -------------------------------------


class Fill(Command):
    command_type = "Fill"
    pot: str
    amount: int


class Drain(Command):
    command_type = "Drain"
    pot: str
    amount: int


class Filled(Event):
    event_type = "Filled"
    event_version = 1
    amount: int


class Drained(Event):
    event_type = "Drained"
    event_version = 1
    amount: int


class PotState(ValueObject):
    amount: int = 0


class Pot(Aggregate[PotState]):
    aggregate_type = "Pot"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {Filled: "_filled", Drained: "_drained"}
    command_methods: ClassVar[Mapping[type[Command], str]] = {Fill: "fill", Drain: "drain"}

    def fill(self, command: Fill) -> tuple[Filled]:
        return (Filled(amount=command.amount),)

    def drain(self, command: Drain) -> tuple[Drained]:
        return (Drained(amount=command.amount),)

    def _filled(self, event: Filled) -> PotState:
        return PotState(amount=(self.state_or_none or PotState()).amount + event.amount)

    def _drained(self, event: Drained) -> PotState:
        return PotState(amount=self.state.amount - event.amount)


# -- the workflow: fill a pot, undone when cancelled or when time runs out ---------------


class FundingRequested(Event):
    event_type = "FundingRequested"
    event_version = 1
    funding: str
    pot: str
    amount: int


class FundingConfirmed(Event):
    event_type = "FundingConfirmed"
    event_version = 1
    funding: str


class FundingCancelled(Event):
    event_type = "FundingCancelled"
    event_version = 1
    funding: str


class FundingState(ValueObject):
    pot: str
    amount: int
    confirmations: int = 0


class Funding(Saga[FundingState]):
    name = "Funding"
    starts_with = FundingRequested
    correlation = "funding"
    state_type = FundingState
    handlers: ClassVar[Mapping[type[Event], str]] = {
        FundingRequested: "on_requested",
        FundingConfirmed: "on_confirmed",
        FundingCancelled: "on_cancelled",
    }
    fails_on = frozenset({FundingCancelled})
    sends = frozenset({Fill, Drain})
    compensations: ClassVar[Mapping[type[Command], str]] = {Fill: "undo_fill"}
    timeout = timedelta(hours=1)

    def on_requested(self, event: FundingRequested) -> None:
        self.state = FundingState(pot=event.pot, amount=event.amount)
        self.send(Fill(pot=event.pot, amount=event.amount))

    def on_confirmed(self, event: FundingConfirmed) -> None:
        self.state = self.state.model_copy(update={"confirmations": 1})
        self.complete()

    def on_cancelled(self, event: FundingCancelled) -> None:
        pass

    def undo_fill(self, command: Fill) -> Drain:
        return Drain(pot=command.pot, amount=command.amount)


class Fragile(Funding):
    """Funding with bugs a test switches on, and off again as its fix: ("requested",
    funding), ("confirmed", funding) or ("undo", pot) raise from that handler or
    compensation."""

    name = "Fragile"
    bugs: ClassVar[set[tuple[str, str]]] = set()
    detail: ClassVar[str] = ""  # added to the bug's message

    def on_requested(self, event: FundingRequested) -> None:
        self._bug("requested", event.funding)
        super().on_requested(event)

    def on_confirmed(self, event: FundingConfirmed) -> None:
        self._bug("confirmed", event.funding)
        super().on_confirmed(event)

    def undo_fill(self, command: Fill) -> Drain:
        self._bug("undo", command.pot)
        return super().undo_fill(command)

    def _bug(self, where: str, key: str) -> None:
        if (where, key) in self.bugs:
            raise ZeroDivisionError(f"a bug in {where} for {key}{self.detail}")


def _registry() -> EventRegistry:
    registry = EventRegistry(
        [Filled, Drained, FundingRequested, FundingConfirmed, FundingCancelled]
    )
    registry.check()
    return registry


class _Pots:
    """The command side the saga dispatches to; `fail_after` makes the next dispatch fail
    once its events are appended, as a store failing mid-page would."""

    def __init__(self, store: EventStore, registry: EventRegistry) -> None:
        self.repository = Repository(Pot, store, registry)
        self.sent: list[Command] = []
        self.fail_after = False
        self.unreadable: set[str] = set()
        """Pots whose commands fail with pydantic's ValidationError once their events are
        appended, as when an aggregate's stored events no longer validate into its state."""
        self.raising: dict[str, Exception] = {}
        """Pots whose commands raise that error instead of being executed."""

    def dispatch(self, command: object) -> object:
        assert isinstance(command, Fill | Drain)
        pot = command.pot
        if pot in self.raising:
            raise self.raising[pot]
        result = handle_command(self.repository, pot, lambda p: p.execute(command))
        self.sent.append(command)
        if self.fail_after:
            self.fail_after = False
            raise BackendError("the connection was lost after the append")
        if pot in self.unreadable:
            PotState.model_validate({"amount": "plenty"})
        return result

    def amount(self, pot: str) -> int:
        return self.repository.load(pot).state.amount


# What a command's error is: a refusal fails the workflow (for good), anything else stalls
# the instance (to be retried), and the store's own errors stop the runner.


class _Closed(ValueError):
    """A domain's refusal, the usual way."""


class _NoCredit(Exception):
    """A domain's refusal of its own, deriving from no builtin category."""


class _LimitsMissing(RuntimeError):
    """A user's own error in a builtin category of bugs and environments."""


def _bytes_error() -> Exception:
    try:
        b"\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


_REFUSALS: dict[str, Callable[[], Exception]] = {
    "ValueError": lambda: ValueError("the pot is closed"),
    "a ValueError of the user's": lambda: _Closed("the pot is closed"),
    "an Exception of the user's": lambda: _NoCredit("no credit left"),
    "AggregateAlreadyExists": lambda: AggregateAlreadyExists("Pot", "p", "Pot-p", "Open"),
    "AggregateNotFound": lambda: AggregateNotFound("Pot", "p", "Pot-p"),
}
_NOT_REFUSALS: dict[str, Callable[[], Exception]] = {
    "RuntimeError": lambda: RuntimeError("event loop is closed"),
    "a RuntimeError of the user's": lambda: _LimitsMissing("limits.json is missing"),
    "OSError": lambda: FileNotFoundError(2, "No such file or directory"),
    "LookupError": lambda: LookupError("no such rate"),
    "UnicodeDecodeError": _bytes_error,
    "ProjectionNeedsRebuild": lambda: ProjectionNeedsRebuild(["tallies"]),
    "ReadModelNotFound": lambda: ReadModelNotFound("tallies"),
    "AggregateNotCreated": lambda: AggregateNotCreated("Pot 'p' has no state yet"),
    "UnstorableValue": lambda: UnstorableValue("Pot", "amount", float("nan")),
    "sqlite3.Error": lambda: sqlite3.OperationalError("database is locked"),
    "json.JSONDecodeError": lambda: json.JSONDecodeError("Expecting value", "", 0),
}


def _event(event: Event) -> list[NewEvent]:
    return [NewEvent.from_event(event)]


def _one(runner: SagaRunner[Fragile, str], status: SagaStatus, correlation: str) -> SagaInstance:
    (found,) = [i for i in runner.instances(status) if i.correlation == correlation]
    return found


class SagaContract(StoreFixtures):
    """What every backend that keeps saga state does with sagas."""

    @staticmethod
    def _runner(store: EventStore, pots: _Pots, clock: ManualClock) -> SagaRunner[Funding, str]:
        # The store's clock: deadlines count from the times events were recorded at.
        return SagaRunner(
            Funding, store, _registry(), pots.dispatch, clock=clock, start="beginning"
        )

    @pytest.fixture
    def fragile(self) -> Iterator[type[Fragile]]:
        Fragile.bugs.clear()
        yield Fragile
        Fragile.bugs.clear()
        Fragile.detail = ""

    @staticmethod
    def _fragile(
        store: EventStore, pots: _Pots, clock: ManualClock, page_size: int = 500
    ) -> SagaRunner[Fragile, str]:
        return SagaRunner(Fragile, store, _registry(), pots.dispatch, clock=clock,
                          start="beginning", page_size=page_size)  # fmt: skip

    def test_saga_state_is_stored_and_restored(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        assert runner.catch_up() == 1
        assert pots.amount("p") == 5
        # A runner started afresh finds the instance in the store.
        again = self._runner(store, pots, clock)
        instance = again.instance("f1")
        assert instance is not None and instance.status == "running"
        assert instance.state == FundingState(pot="p", amount=5)
        assert instance.steps == [Fill(pot="p", amount=5)]
        store.append("Funding-f1", _event(FundingConfirmed(funding="f1")), 1)
        assert again.catch_up() == 1
        done = runner.instance("f1")
        assert done is not None and done.status == "completed"
        assert done.state.confirmations == 1
        assert runner.instance("f2") is None

    def test_a_failure_event_runs_the_compensations(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        store.append("Funding-f1", _event(FundingCancelled(funding="f1")), 1)
        assert runner.catch_up() == 2
        assert pots.sent == [Fill(pot="p", amount=5), Drain(pot="p", amount=5)]
        assert pots.amount("p") == 0
        instance = runner.instance("f1")
        assert instance is not None and instance.status == "compensated"
        assert instance.compensated == [Drain(pot="p", amount=5)]

    def test_an_event_delivered_twice_is_handled_once(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        assert runner.catch_up() == 1
        head = store.head_position()
        # The checkpoint set back, as a crash between commit and report could leave it:
        # the event comes again, and the saga must not send its command again.
        with progress_storage(store).unit() as unit:
            unit.set_checkpoint("saga:Funding", 1, 0, active=True)
        assert runner.catch_up() == 0
        assert pots.sent == [Fill(pot="p", amount=5)]
        assert store.head_position() == head and pots.amount("p") == 5

    def test_a_failed_page_takes_back_commands_state_and_checkpoint(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="a", amount=2)), 0)
        store.append("Funding-f2", _event(FundingRequested(funding="f2", pot="b", amount=3)), 0)
        head = store.head_position()
        pots.fail_after = True  # the first Fill appends its event, then the store fails
        with pytest.raises(BackendError, match="connection was lost"):
            runner.catch_up()
        assert len(pots.sent) == 1
        # Nothing half-written: no Filled event, no saga state, no dedupe mark, no checkpoint.
        assert store.head_position() == head
        assert store.stream_version("Pot-a") == 0
        assert runner.instance("f1") is None
        assert runner.catch_up() == 2  # done once, now
        assert pots.sent == [Fill(pot="a", amount=2), Fill(pot="a", amount=2),
                             Fill(pot="b", amount=3)]  # fmt: skip
        assert (pots.amount("a"), pots.amount("b")) == (2, 3)
        assert store.stream_version("Pot-a") == 1
        instance = runner.instance("f1")
        assert instance is not None and instance.steps == [Fill(pot="a", amount=2)]
        assert runner.catch_up() == 0

    def test_deadlines_pass_on_the_saga_clock(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress  # records events on `clock` too
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=4)), 0)
        clock.advance(timedelta(minutes=30))
        store.append("Funding-f2", _event(FundingRequested(funding="f2", pot="q", amount=1)), 0)
        assert runner.catch_up() == 2
        assert runner.expire() == 0
        clock.advance(timedelta(minutes=45))  # f1 is past its hour, f2 is not
        assert runner.expire() == 1
        expired = runner.instance("f1")
        assert expired is not None and expired.status == "timed_out"
        assert expired.compensated == [Drain(pot="p", amount=4)]
        assert pots.amount("p") == 0
        assert runner.expire() == 0  # only running instances time out
        waiting = runner.instance("f2")
        assert waiting is not None and waiting.status == "running"
        clock.advance(timedelta(hours=1))
        assert runner.catch_up() == 0  # catch_up runs due deadlines too
        timed_out = runner.instance("f2")
        assert timed_out is not None and timed_out.status == "timed_out"
        assert pots.amount("q") == 0

    # -- an instance whose code fails stalls alone, and is retried after the fix ------------

    def test_a_handler_bug_stalls_only_its_instance(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        for funding, pot in (("f1", "a"), ("f2", "b"), ("f3", "c")):
            store.append(f"Funding-{funding}", _event(FundingRequested(funding=funding, pot=pot,
                                                                       amount=2)), 0)  # fmt: skip
        for funding in ("f1", "f2", "f3"):
            store.append(f"Funding-{funding}", _event(FundingConfirmed(funding=funding)), 1)
        failing = store.read_stream("Funding-f2")[1]
        fragile.bugs.add(("confirmed", "f2"))
        # One page: the bug in its middle leaves the events before and after it handled.
        assert runner.catch_up() == 5
        assert [i.correlation for i in runner.instances("completed")] == ["f3", "f1"]
        stalled = runner.instance("f2")
        assert stalled is not None and stalled.status == "stalled"
        assert stalled.state == FundingState(pot="b", amount=2)  # as before the failed event
        assert (pots.amount("a"), pots.amount("b"), pots.amount("c")) == (2, 2, 2)
        (instance,) = runner.take_stalls()
        assert instance.correlation == "f2" and instance.status == "stalled"
        problem = instance.problem
        assert problem is not None and problem.error == "ZeroDivisionError"
        assert problem.message == "a bug in confirmed for f2" and problem.attempts == 1
        assert (problem.event_type, problem.position) == ("FundingConfirmed", failing.position)
        assert (problem.stream_id, problem.stream_version) == ("Funding-f2", 2)
        assert runner.take_stalls() == []
        status = runner.status()
        assert status.problem is None, "a stalled instance does not stop the runner"
        assert status.counts["completed"] == 2 and status.counts["stalled"] == 1
        assert status.counts["failed"] == 0
        ended = _one(runner, "completed", "f1").ended
        assert ended is not None and ended["event_type"] == "FundingConfirmed"
        assert ended["position"] == store.read_stream("Funding-f1")[1].position
        fragile.bugs.clear()  # the fix, deployed
        retried = runner.retry("f2")
        assert retried.status == "completed" and retried.problem is None
        assert retried.ended is not None and retried.ended["position"] == failing.position
        assert runner.status().counts["stalled"] == 0

    def test_a_validation_error_in_a_command_stalls_and_does_not_fail(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        pots.unreadable.add("b")
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="a", amount=1)), 0)
        store.append("Funding-f2", _event(FundingRequested(funding="f2", pot="b", amount=3)), 0)
        assert runner.catch_up() == 1
        stalled = runner.instance("f2")
        assert stalled is not None and stalled.status == "stalled"
        assert stalled.compensated == [] and stalled.reason is None
        assert store.stream_version("Pot-b") == 0, "the append before the error was taken back"
        (instance,) = runner.instances("stalled")
        assert instance.problem is not None
        assert instance.problem.error.endswith("ValidationError")
        assert instance.problem.event_type == "FundingRequested"
        running = runner.instance("f1")
        assert running is not None and running.status == "running"
        pots.unreadable.clear()
        assert runner.retry("f2").status == "running"
        assert pots.amount("b") == 3
        assert [i.correlation for i in runner.instances("running")] == ["f2", "f1"]

    def test_a_stalled_start_parks_later_events_and_retry_handles_them_in_order(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        fragile.bugs.add(("requested", "f1"))
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        assert runner.catch_up() == 0
        stalled = runner.instance("f1")
        assert stalled is not None and stalled.status == "stalled"
        assert stalled.state_or_none is None and stalled.steps == []
        store.append("Funding-f1", _event(FundingConfirmed(funding="f1")), 1)
        assert runner.catch_up() == 0
        (instance,) = runner.instances("stalled")
        assert instance.parked == 1 and instance.problem is not None
        assert instance.problem.event_type == "FundingRequested"
        assert pots.sent == [] and store.stream_version("Pot-p") == 0
        fragile.bugs.clear()
        retried = runner.retry("f1")
        # The start first (Fill sent), then the confirmation parked behind it.
        assert retried.status == "completed" and retried.parked == 0
        done = runner.instance("f1")
        assert done is not None and done.state == FundingState(pot="p", amount=5,
                                                               confirmations=1)  # fmt: skip
        assert pots.sent == [Fill(pot="p", amount=5)] and pots.amount("p") == 5
        with pytest.raises(SagaError, match="f1 is completed: only a stalled instance"):
            runner.retry("f1")

    def test_retry_handles_the_failed_event_before_the_parked_ones(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        fragile.bugs.add(("confirmed", "f1"))
        store.append("Funding-f1", _event(FundingConfirmed(funding="f1")), 1)
        store.append("Funding-f1", _event(FundingCancelled(funding="f1")), 2)
        runner.catch_up()
        assert _one(runner, "stalled", "f1").parked == 1
        fragile.bugs.clear()
        # Confirmed first: the workflow completes, and the cancellation after it is ignored
        # (handled the other way round, it would have compensated).
        assert runner.retry("f1").status == "completed"
        # Filled once, never drained (the failed page's Fill was taken back with it).
        assert pots.amount("p") == 5 and store.stream_version("Pot-p") == 1

    def test_a_retry_that_fails_again_keeps_nothing_and_counts_attempts(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        pots.unreadable.add("p")
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        runner.catch_up()
        head = store.head_position()
        for attempts in (2, 3):
            again = runner.retry("f1")
            assert again.status == "stalled" and again.problem is not None
            assert again.problem.attempts == attempts
            assert again.problem.error.endswith("ValidationError")
            assert store.head_position() == head and store.stream_version("Pot-p") == 0
        pots.unreadable.clear()
        assert runner.retry("f1").status == "running"
        assert pots.amount("p") == 5 and store.stream_version("Pot-p") == 1

    def test_retry_refuses_an_unknown_or_unstalled_instance(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        runner.catch_up()
        with pytest.raises(SagaInstanceNotFound, match="Funding has no instance 'f9'"):
            runner.retry("f9")
        with pytest.raises(SagaError, match="Funding f1 is running: only a stalled instance"):
            runner.retry("f1")
        assert runner.parse_correlation("f1") == "f1"
        assert runner.retry_stalled() == []
        assert pots.sent == [Fill(pot="p", amount=5)]

    def test_a_deadline_that_raises_stalls_its_instance(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=4)), 0)
        store.append("Funding-f2", _event(FundingRequested(funding="f2", pot="q", amount=1)), 0)
        runner.catch_up()
        fragile.bugs.add(("undo", "p"))  # the compensation f1's deadline runs has a bug
        clock.advance(timedelta(hours=2))
        assert runner.expire() == 1  # f2's deadline ran; f1's stalled
        timed_out = runner.instance("f2")
        assert timed_out is not None and timed_out.status == "timed_out"
        (stall,) = runner.take_stalls()
        assert stall.correlation == "f1" and stall.problem is not None
        assert stall.problem.position is None and stall.problem.message == "a bug in undo for p"
        assert pots.amount("p") == 4
        assert runner.expire() == 0, "a stalled instance's deadline waits for its retry"
        store.append("Funding-f1", _event(FundingConfirmed(funding="f1")), 1)
        runner.catch_up()
        assert _one(runner, "stalled", "f1").parked == 1
        fragile.bugs.clear()
        # The deadline first: the confirmation after it finds the workflow over.
        (retried,) = runner.retry_stalled()
        assert retried.status == "timed_out"
        assert retried.ended is not None and retried.ended["deadline"] is True
        assert pots.amount("p") == 0

    def test_status_counts_instances_and_tells_the_lag(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        empty = runner.status()
        assert (empty.name, empty.position, empty.head, empty.lag_seconds) == ("Funding", 0, 0, 0.0)
        assert set(empty.counts) == {"running", "completed", "failed", "compensated",
                                     "timed_out", "stalled"}  # fmt: skip
        assert not any(empty.counts.values())
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        first = store.read_all(limit=1)[0]
        clock.advance(timedelta(minutes=2))
        behind = runner.status()
        # The runner's clock was read once, for this status, a step before its `now`.
        expected = (clock.now - clock.step - first.recorded_at).total_seconds()
        assert behind.lag_seconds == expected and expected >= 120
        assert (behind.position, behind.head, behind.behind) == (0, 1, 1)
        assert behind.to_json()["lag_seconds"] == expected
        assert runner.catch_up() == 1
        caught_up = runner.status()
        assert caught_up.lag_seconds == 0.0 and caught_up.behind == 0
        assert caught_up.counts["running"] == 1
        (instance,) = runner.instances("running", limit=1)
        assert instance.correlation == "f1" and instance.started_at == first.recorded_at
        assert instance.ended is None and instance.problem is None
        with pytest.raises(ValueError, match="'lost' is not a saga status"):
            runner.instances("lost")  # type: ignore[arg-type]

    def test_a_store_failure_stops_the_runner_and_is_its_problem_until_it_moves(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="a", amount=2)), 0)
        pots.fail_after = True
        with pytest.raises(BackendError, match="connection was lost"):
            runner.catch_up()
        problem = runner.status().problem
        assert problem is not None and problem.error == "esgen.runtime._errors.BackendError"
        assert problem.event_type == "FundingRequested" and problem.position == 1
        assert runner.instances("stalled") == [] and runner.take_stalls() == []
        # A new runner (another process) sees it too.
        again = self._runner(store, pots, clock)
        assert again.status().problem == problem
        assert again.catch_up() == 1
        assert runner.status().problem is None

    def test_redelivery_after_a_stall_sends_no_command_twice(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        fragile.bugs.add(("confirmed", "f1"))
        store.append("Funding-f1", _event(FundingConfirmed(funding="f1")), 1)
        store.append("Funding-f2", _event(FundingRequested(funding="f2", pot="q", amount=1)), 0)
        store.append("Funding-f1", _event(FundingCancelled(funding="f1")), 2)
        runner.catch_up()

        def redeliver() -> None:
            head = store.head_position()
            with progress_storage(store).unit() as unit:
                unit.set_checkpoint("saga:Fragile", 1, 0, active=True)
            assert runner.catch_up() == 0
            assert store.head_position() == head

        redeliver()
        # Neither the failed event nor the parked cancellation is kept twice.
        assert _one(runner, "stalled", "f1").parked == 1
        fragile.bugs.clear()
        assert runner.retry("f1").status == "completed"
        redeliver()
        assert (pots.amount("p"), pots.amount("q")) == (5, 1)
        assert store.stream_version("Pot-p") == 1 and store.stream_version("Pot-q") == 1
        done = runner.instance("f1")
        assert done is not None and done.status == "completed"

    def test_progress_is_reported_after_each_committed_page(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock, page_size=2)
        for funding in ("f1", "f2", "f3"):
            store.append(f"Funding-{funding}", _event(FundingRequested(funding=funding, pot="p",
                                                                       amount=1)), 0)  # fmt: skip
        fragile.bugs.add(("requested", "f2"))
        reported: list[tuple[str, int, int]] = []

        def report(name: str, position: int, head: int) -> None:
            reported.append((name, position, head))

        runner.catch_up(progress=report)
        positions = [position for _, position, _ in reported]
        assert positions == sorted(set(positions)) and positions[-1] == store.head_position()
        assert {name for name, _, _ in reported} == {"Fragile"}
        assert all(position <= head for _, position, head in reported)
        # Page [1, 2] fails on f2: [1] commits alone, f2 stalls alone, then [3, 4] and [5].
        assert positions == [1, 2, 4, 5]
        assert _one(runner, "stalled", "f2").problem is not None

    def test_an_error_message_no_store_takes_as_text_still_stalls(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        fragile.bugs.add(("requested", "f1"))
        fragile.detail = ": \x00 \ud800"  # NUL and a lone surrogate, as user data may hold
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        runner.catch_up()
        (stalled,) = runner.instances("stalled")
        assert stalled.problem is not None
        assert stalled.problem.message == "a bug in requested for f1: \x00 \ud800"

    # -- what counts as a refusal ------------------------------------------------------------

    @pytest.mark.parametrize("kind", sorted(_REFUSALS))
    def test_a_refusal_fails_the_workflow(
        self, progress: EventStore, clock: ManualClock, kind: str
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        pots.raising["p"] = error = _REFUSALS[kind]()
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        assert runner.catch_up() == 1
        failed = runner.instance("f1")
        assert failed is not None and failed.status == "failed"
        assert failed.reason == f"Fill failed: {error}"
        assert store.stream_version("Pot-p") == 0 and pots.sent == []

    @pytest.mark.parametrize("kind", sorted(_NOT_REFUSALS))
    def test_an_error_that_is_no_refusal_stalls_until_retried(
        self, progress: EventStore, clock: ManualClock, kind: str
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        pots.raising["p"] = error = _NOT_REFUSALS[kind]()
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        assert runner.catch_up() == 0
        (stalled,) = runner.instances("stalled")
        assert stalled.correlation == "f1" and stalled.reason is None
        assert stalled.problem is not None and stalled.problem.message.startswith(str(error))
        assert runner.status().problem is None and store.stream_version("Pot-p") == 0
        del pots.raising["p"]  # fixed
        assert runner.retry("f1").status == "running"
        assert pots.amount("p") == 5

    def test_a_read_only_store_behind_a_command_stops_the_runner(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        pots.raising["p"] = ReadOnlyStore("append to stream 'Pot-p': opened read-only")
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        with pytest.raises(ReadOnlyStore):
            runner.catch_up()
        assert runner.instance("f1") is None and runner.instances("stalled") == []
        problem = runner.status().problem
        assert problem is not None and problem.error.endswith("ReadOnlyStore")
        del pots.raising["p"]
        assert runner.catch_up() == 1 and runner.status().problem is None

    # -- a deadline that passes while an instance is stalled ---------------------------------

    @pytest.mark.parametrize(
        ("confirmed_after", "status", "sent"),
        [
            # Confirmed after the deadline: it had timed out by then, as it would have.
            (timedelta(minutes=120), "timed_out", ["Fill", "Drain"]),
            # Confirmed before it, and retried after it: the confirmation came first.
            (timedelta(minutes=30), "completed", ["Fill"]),
        ],
    )
    def test_retry_runs_a_deadline_that_passed_where_a_runner_would_have(
        self,
        progress: EventStore,
        clock: ManualClock,
        fragile: type[Fragile],
        confirmed_after: timedelta,
        status: str,
        sent: list[str],
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        fragile.bugs.add(("requested", "f1"))
        started = clock.now
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        runner.catch_up()
        clock.set(started + confirmed_after)
        store.append("Funding-f1", _event(FundingConfirmed(funding="f1")), 1)
        clock.set(started + timedelta(minutes=150))
        runner.catch_up()  # its deadline passed: a stalled instance's waits for the retry
        assert _one(runner, "stalled", "f1").parked == 1 and pots.sent == []
        fragile.bugs.clear()
        (retried,) = runner.retry_stalled()
        assert retried.status == status
        assert [type(c).__name__ for c in pots.sent] == sent
        assert retried.ended is not None
        assert retried.ended.get("deadline", False) is (status == "timed_out")

    def test_a_retry_before_the_deadline_leaves_it_to_come(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._fragile(store, pots, clock)
        fragile.bugs.add(("requested", "f1"))
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        runner.catch_up()
        fragile.bugs.clear()
        clock.advance(timedelta(minutes=59))
        assert runner.retry("f1").status == "running"
        clock.advance(timedelta(minutes=2))
        assert runner.expire() == 1
        assert [type(c).__name__ for c in pots.sent] == ["Fill", "Drain"]

    # -- an event no instance can have is skipped, not stopped on --------------------------

    @pytest.mark.parametrize("funding", ["bad\x00id", ""])
    def test_an_event_whose_correlation_no_instance_can_have_is_skipped(
        self,
        progress: EventStore,
        clock: ManualClock,
        caplog: pytest.LogCaptureFixture,
        funding: str,
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-x", _event(FundingRequested(funding=funding, pot="p", amount=1)), 0)
        store.append("Funding-ok", _event(FundingRequested(funding="ok", pot="q", amount=1)), 0)
        store.append("Funding-x", _event(FundingConfirmed(funding=funding)), 1)
        with caplog.at_level(logging.WARNING, logger="esgen.runtime"):
            assert runner.catch_up() == 1
        ok = runner.instance("ok")
        assert ok is not None and ok.status == "running" and pots.sent == [Fill(pot="q", amount=1)]
        status = runner.status()
        assert (status.position, status.head) == (4, 4)
        # The runner's problem says which event was skipped (the last one) and why.
        problem = status.problem
        assert problem is not None and (problem.position, problem.event_type) == (
            3, "FundingConfirmed")  # fmt: skip
        assert problem.message.startswith(
            "Funding skipped this event: its 'funding' is the correlation of no instance "
            "that can exist ("
        )
        warned = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert [w.split(" (on ")[-1].split(" at ")[0] for w in warned] == [
            "FundingRequested v1", "FundingConfirmed v1"]  # fmt: skip
        # A later pass that goes well leaves it behind, as it does an error that stopped it.
        assert runner.catch_up() == 0 and runner.status().problem is None

    # -- the runner's problem is cleared when it recovers -----------------------------------

    def test_a_pass_with_nothing_new_clears_the_problem_of_an_earlier_one(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        assert runner.catch_up() == 1
        # As a run that failed reading the next page (a dropped connection) left it.
        earlier = Problem.of(BackendError("the connection was lost"), None, clock())
        with progress_storage(store).unit() as unit:
            unit.set_problem("saga:Funding", earlier.dumps())
        assert runner.status().problem == earlier
        assert runner.catch_up() == 0
        assert runner.status().problem is None

    def test_a_deadline_that_runs_after_failing_clears_the_problem(
        self, progress: EventStore, clock: ManualClock
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        store.append("Funding-f1", _event(FundingRequested(funding="f1", pot="p", amount=5)), 0)
        runner.catch_up()
        clock.advance(timedelta(hours=2))
        pots.fail_after = True  # the deadline's Drain, then the store fails
        with pytest.raises(BackendError):
            runner.expire()
        problem = runner.status().problem
        assert problem is not None and problem.position is None
        assert runner.expire() == 1
        assert runner.status().problem is None

    # -- times in UTC, whatever the runner's clock ------------------------------------------

    def test_times_are_utc_and_retry_takes_the_longest_stalled_first(
        self, progress: EventStore, clock: ManualClock, fragile: type[Fragile]
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        # The runner's clock two hours east of UTC, on the same instant as the store's.
        east = ManualClock(clock.now.astimezone(timezone(timedelta(hours=2))))
        runner = SagaRunner(Fragile, store, _registry(), pots.dispatch, clock=east,
                            start="beginning")  # fmt: skip
        fragile.bugs.update({("requested", "y"), ("requested", "x")})

        def happen(funding: str, event: Event, version: int) -> None:
            store.append(f"Funding-{funding}", _event(event), version)
            east.set(clock.now)
            runner.catch_up()

        happen("y", FundingRequested(funding="y", pot="y", amount=1), 0)  # y stalls
        happen("y", FundingConfirmed(funding="y"), 1)  # y parks one
        happen("x", FundingRequested(funding="x", pot="x", amount=1), 0)  # x stalls
        assert [i.correlation for i in runner.instances("stalled")] == ["x", "y"]
        happen("y", FundingCancelled(funding="y"), 2)  # y parks another: updated last
        assert [i.correlation for i in runner.instances("stalled")] == ["y", "x"]
        fragile.bugs.clear()
        # y stalled first, so it is retried first, though x's last update is older.
        assert [(i.correlation, i.status) for i in runner.retry_stalled()] == [
            ("y", "completed"), ("x", "running")]  # fmt: skip
        (done,) = runner.instances("completed")
        assert done.ended is not None
        assert datetime.fromisoformat(done.ended["at"]).utcoffset() == timedelta(0)
        assert done.ended["at"].endswith("+00:00")
        assert done.started_at.tzinfo is not None
        assert done.started_at.utcoffset() == UTC.utcoffset(None)

    # -- listings ------------------------------------------------------------------------------

    @pytest.mark.parametrize("limit", [-1, 2.5, True, "2"])
    def test_a_listing_limit_that_is_no_count_is_refused(
        self, progress: EventStore, clock: ManualClock, limit: object
    ) -> None:
        store = progress
        pots = _Pots(store, _registry())
        runner = self._runner(store, pots, clock)
        for funding in ("a", "b", "c"):
            store.append(f"Funding-{funding}", _event(FundingRequested(funding=funding, pot="p",
                                                                       amount=1)), 0)  # fmt: skip
        runner.catch_up()
        message = f"limit must be a non-negative int or None (got {limit!r})"
        with pytest.raises(
            ValueError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"
        ):
            runner.instances("running", limit=limit)  # type: ignore[arg-type]
        assert [i.correlation for i in runner.instances("running", limit=2)] == ["c", "b"]
        assert runner.instances("running", limit=0) == []
