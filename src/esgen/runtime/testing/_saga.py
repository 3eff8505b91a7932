"""Given / when / then for sagas, without a store: which commands a workflow sends.

    SagaScenario(MoneyTransfer, "t-1").given(TransferRequested(...)) \\
        .when(DepositRejected(...)) \\
        .then_sends(FailTransfer(...)) \\
        .then_compensates(RefundMoney(...))

Commands sent in `given` count as steps taken (their compensations may run later);
`failing=` makes the named command classes fail when sent, as a refused command would.
"""

from __future__ import annotations

from typing import Any, Generic, Self, TypeVar, cast

from esgen.runtime import Command, Event, Saga
from esgen.runtime._saga import CorrT, SagaFactory, react, time_out
from esgen.runtime.testing._scenario import default_id

__all__ = ["SagaScenario"]

SagaT = TypeVar("SagaT", bound=Saga[Any, Any])


class SagaScenario(Generic[SagaT, CorrT]):
    """`correlation_value` defaults to a fixed value of the saga's correlation type."""

    def __init__(
        self, saga_class: SagaFactory[SagaT, CorrT], correlation_value: CorrT | None = None
    ) -> None:
        cls = cast("type[SagaT]", saga_class)
        if correlation_value is None:
            correlation_value = default_id(cls.correlation_type)
        self.saga: SagaT = cls(correlation_value)
        self._sent: list[Command] = []
        self._failing: tuple[type[Command], ...] = ()
        self._ran = False
        self._started = False
        self._compensations_from = 0

    def _dispatch(self, command: Any) -> None:
        if isinstance(command, self._failing):
            raise RuntimeError(f"{type(command).__name__} refused (failing= in the scenario)")
        self._sent.append(command)

    def given(self, *events: Event) -> Self:
        for event in events:
            self._react(event)
        self._sent.clear()
        return self

    def when(self, event: Event, *, failing: tuple[type[Command], ...] = ()) -> Self:
        self._failing, self._ran = failing, True
        self._compensations_from = len(self.saga.compensated)
        self._react(event)
        return self

    def _react(self, event: Event) -> None:
        # As the runner does: an instance that ended, or that started already, ignores
        # further events, and a second starting event.
        starting = isinstance(event, self.saga.starts_with)
        if not self._started and not starting:
            name = self.saga.starts_with.__name__
            raise AssertionError(f"an instance starts with {name}: give it first (.given(...))")
        if self.saga.status != "running" or (starting and self._started):
            return
        self._started = True
        react(self.saga, event, self._dispatch)

    def when_deadline_passes(self, *, failing: tuple[type[Command], ...] = ()) -> Self:
        self._failing, self._ran = failing, True
        self._compensations_from = len(self.saga.compensated)
        time_out(self.saga, self._dispatch)
        return self

    def then_sends(self, *commands: Command) -> Self:
        """Assert the commands the step sent (compensations excluded), in order."""
        self._check_ran()
        undo = self.saga.compensated[self._compensations_from :]
        sent = [c for c in self._sent if not any(c is u for u in undo)]
        if sent != list(commands):
            raise AssertionError(
                f"sent commands differ\n  expected: {list(commands)!r}\n  sent:     {sent!r}"
            )
        return self

    def then_compensates(self, *commands: Command) -> Self:
        """Assert the compensating commands the step sent, in order (newest step first)."""
        self._check_ran()
        undo = self.saga.compensated[self._compensations_from :]
        if undo != list(commands):
            raise AssertionError(
                f"compensations differ\n  expected: {list(commands)!r}\n  sent:     {undo!r}"
            )
        return self

    def then_status(self, status: str) -> SagaT:
        self._check_ran()
        if self.saga.status != status:
            raise AssertionError(
                f"expected status {status!r}, got {self.saga.status!r} ({self.saga.reason})"
            )
        return self.saga

    def _check_ran(self) -> None:
        if not self._ran:
            raise AssertionError("call .when(event) (or .when_deadline_passes()) first")
