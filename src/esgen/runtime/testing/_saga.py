"""Given / when / then for sagas, without a store: which commands a workflow sends.

    SagaScenario(MoneyTransfer, "t-1").given(TransferRequested(...)) \\
        .when(DepositRejected(...)) \\
        .then_sends(FailTransfer(...)) \\
        .then_compensates(RefundMoney(...))

Commands sent in `given` count as steps taken (their compensations may run later);
`failing=` makes the named command classes fail when sent, as a refused command would,
so the saga's refusal hook runs (`on_<command>_refused`; by default the workflow fails
and compensates). Give it a mapping, `failing={WithdrawMoney: InsufficientFunds()}`, to
choose the error the hook receives; an error that is no refusal (a RuntimeError, say: see
`esgen.runtime._saga.is_refusal`) propagates, as it would stall the instance in a runner.

The scenario does not look at correlations: every event given is the instance's, so the
events of a saga that correlates on an aggregate id need no field naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Self, TypeAlias, TypeVar, cast

from esgen.runtime import Command, Event, Saga
from esgen.runtime._saga import CorrT, SagaFactory, SagaStatus, react, time_out
from esgen.runtime.testing._scenario import default_id

__all__ = ["SagaScenario"]

SagaT = TypeVar("SagaT", bound=Saga[Any, Any])

Failing: TypeAlias = tuple[type[Command], ...] | Mapping[type[Command], Exception]
"""Command classes refused when sent, or each with the error its refusal raises."""


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
        self._failing: Mapping[type[Command], Exception | None] = {}
        self._ran = False
        self._started = False
        self._compensations_from = 0

    def _dispatch(self, command: Any) -> None:
        for refused, error in self._failing.items():
            if isinstance(command, refused):
                name = type(command).__name__
                raise error or ValueError(f"{name} refused (failing= in the scenario)")
        self._sent.append(command)

    def _refusing(self, failing: Failing) -> None:
        if isinstance(failing, Mapping):
            self._failing = dict(failing)
        else:
            self._failing = dict.fromkeys(failing)

    def given(self, *events: Event) -> Self:
        for event in events:
            self._react(event)
        self._sent.clear()
        return self

    def when(self, event: Event, *, failing: Failing = ()) -> Self:
        """Handle `event`; the commands of the classes in `failing` are refused."""
        self._refusing(failing)
        self._ran = True
        self._compensations_from = len(self.saga.compensated)
        self._react(event)
        return self

    def _react(self, event: Event) -> None:
        # As the runner does: an instance that ended, or that started already, ignores
        # further events, and a second starting event.
        saga = self.saga
        if event.event_type not in type(saga)._handles():
            handled = ", ".join(sorted(type(saga)._handles()))
            raise AssertionError(
                f"{saga.name} does not handle {type(event).__name__} (it handles: {handled}); "
                "the runner never delivers it to an instance"
            )
        starting = isinstance(event, self.saga.starts_with)
        if not self._started and not starting:
            name = self.saga.starts_with.__name__
            raise AssertionError(f"an instance starts with {name}: give it first (.given(...))")
        if self.saga.status != "running" or (starting and self._started):
            return
        self._started = True
        react(self.saga, event, self._dispatch)

    def when_deadline_passes(self, *, failing: Failing = ()) -> Self:
        """The instance's deadline passes; as the runner, only for a saga that declares a
        `timeout` and an instance that started and is still running."""
        saga = self.saga
        if saga.timeout is None:
            raise AssertionError(f"{saga.name} declares no timeout: its deadline never passes")
        if not self._started:
            name = saga.starts_with.__name__
            raise AssertionError(f"an instance starts with {name}: give it first (.given(...))")
        if saga.status != "running":
            raise AssertionError(
                f"the instance ended ({saga.status}): the runner runs no deadline for it"
            )
        self._refusing(failing)
        self._ran = True
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

    def then_status(self, status: SagaStatus) -> SagaT:
        """Assert the instance's status; returns the saga, to look further at it."""
        self._check_ran()
        if self.saga.status != status:
            raise AssertionError(
                f"expected status {status!r}, got {self.saga.status!r} ({self.saga.reason})"
            )
        return self.saga

    def then_state(self, expected: Any) -> Self:
        """Assert the saga's state after the step (compared by value)."""
        self._check_ran()
        state = self.saga.state_or_none
        if state != expected:
            raise AssertionError(f"state differs\n  expected: {expected!r}\n  state:    {state!r}")
        return self

    def _check_ran(self) -> None:
        if not self._ran:
            raise AssertionError("call .when(event) (or .when_deadline_passes()) first")
