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
from typing import Any, Generic, Self, TypeVar

from esgen.runtime import Aggregate, Command, Event

__all__ = ["AggregateScenario"]

AggT = TypeVar("AggT", bound=Aggregate[Any])


class AggregateScenario(Generic[AggT]):
    def __init__(self, aggregate_class: type[AggT], aggregate_id: str = "test") -> None:
        self.aggregate = aggregate_class(aggregate_id)
        self._error: BaseException | None = None
        self._ran = False

    def given(self, *events: Event) -> Self:
        """Apply past events, as if loaded: they are not pending."""
        aggregate = self.aggregate
        for event in events:
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
