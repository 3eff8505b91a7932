"""Sagas on every backend that keeps their state: state stored and restored, each event
handled once, a failed page taking back the commands it sent (their events included),
and deadlines on a clock the test moves. Written against the ports and the public API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import ClassVar

import pytest

from esgen.runtime import (
    Aggregate,
    BackendError,
    Command,
    Event,
    EventRegistry,
    EventStore,
    NewEvent,
    Repository,
    Saga,
    SagaRunner,
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

    def dispatch(self, command: object) -> object:
        assert isinstance(command, Fill | Drain)
        pot = command.pot
        result = handle_command(self.repository, pot, lambda p: p.execute(command))
        self.sent.append(command)
        if self.fail_after:
            self.fail_after = False
            raise BackendError("the connection was lost after the append")
        return result

    def amount(self, pot: str) -> int:
        return self.repository.load(pot).state.amount


def _event(event: Event) -> list[NewEvent]:
    return [NewEvent.from_event(event)]


class SagaContract(StoreFixtures):
    """What every backend that keeps saga state does with sagas."""

    @staticmethod
    def _runner(store: EventStore, pots: _Pots, clock: ManualClock) -> SagaRunner[Funding, str]:
        # The store's clock: deadlines count from the times events were recorded at.
        return SagaRunner(
            Funding, store, _registry(), pots.dispatch, clock=clock, start="beginning"
        )

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
