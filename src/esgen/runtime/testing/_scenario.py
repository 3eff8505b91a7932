"""Given / when / then for aggregates, without a store: for unit tests of domain rules.

    AggregateScenario(Account).given(AccountOpened(owner="ann", currency="EUR")) \\
        .when(DepositMoney(account_id=..., amount=5)) \\
        .then(MoneyDeposited(amount=5))

`when` takes a command (run through the aggregate's `execute`, as the generated command
dispatcher does) or any callable taking the aggregate.

Failures are plain AssertionErrors, so any test runner reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, cast
from uuid import UUID

from esgen.runtime import Aggregate, Clock, Command, Event
from esgen.runtime._ids import IdT
from esgen.runtime._repository import AggregateFactory
from esgen.runtime.testing._clock import ManualClock

__all__ = ["AggregateScenario", "default_id"]

AggT = TypeVar("AggT", bound=Aggregate[Any, Any])

_DEFAULT_IDS: dict[type, object] = {
    UUID: UUID("00000000-0000-4000-8000-000000000001"),
    int: 1,
    str: "test",
}


def default_id(id_type: type) -> Any:
    """The id a fixture uses when the test gives none: fixed, so failures repeat."""
    return _DEFAULT_IDS[id_type]


class AggregateScenario(Generic[AggT, IdT]):
    """`aggregate_id` defaults to a fixed id of the aggregate's id type; `clock` (a
    `ManualClock` from 2024-01-01 unless given) is what `now()` reads, and gives the
    events of `given` their times (`event_time` in apply methods)."""

    def __init__(
        self,
        aggregate_class: AggregateFactory[AggT, IdT],
        aggregate_id: IdT | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        cls = cast("type[AggT]", aggregate_class)
        self.clock: Clock = ManualClock() if clock is None else clock
        if aggregate_id is None:
            aggregate_id = default_id(cls.id_type)
        self.aggregate: AggT = cls(aggregate_id, clock=self.clock)
        self._error: BaseException | None = None
        self._ran = False

    def given(self, *events: Event) -> Self:
        """Apply past events, as if loaded: they are not pending. Each is recorded at the
        clock's next time."""
        aggregate = self.aggregate
        for event in events:
            aggregate._event_time = self.clock()
            aggregate._state = aggregate._apply_function(event)(aggregate, event)
            aggregate._version += 1
        return self

    def when(self, command: Command | Callable[[AggT], object]) -> Self:
        """Run the command; an exception is kept for `then_raises` rather than raised."""
        self._ran = True
        try:
            if isinstance(command, Command):
                self.aggregate.execute(command)
            else:
                command(self.aggregate)
        except Exception as exc:
            self._error = exc
        return self

    def then(self, *expected: Event) -> AggT:
        """Assert the command succeeded and recorded exactly these events, in this order."""
        if not self._ran:
            raise AssertionError("call .when(command) before .then(...)")
        if self._error is not None:
            raise AssertionError(
                f"expected events {list(expected)!r}, but the command raised {self._error!r}"
            ) from self._error
        recorded = list(self.aggregate.pending_events)
        if recorded != list(expected):
            raise AssertionError(
                f"recorded events differ\n  expected: {list(expected)!r}\n  recorded: {recorded!r}"
            )
        return self.aggregate

    def then_raises(self, error: type[BaseException], match: str | None = None) -> BaseException:
        """Assert the command raised `error` (with `match` in its message) and recorded nothing."""
        if not self._ran:
            raise AssertionError("call .when(command) before .then_raises(...)")
        if self._error is None:
            raise AssertionError(
                f"expected {error.__name__}, but the command recorded "
                f"{list(self.aggregate.pending_events)!r}"
            )
        if not isinstance(self._error, error):
            raise AssertionError(f"expected {error.__name__}, got {self._error!r}") from self._error
        if match is not None and match not in str(self._error):
            raise AssertionError(f"expected {match!r} in the message of {self._error!r}")
        if self.aggregate.pending_events:
            raise AssertionError(
                f"the command raised but recorded {list(self.aggregate.pending_events)!r}"
            )
        return self._error
