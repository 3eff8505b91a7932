"""A clock tests control, for stores, repositories and scenarios (they take any `Clock`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["ManualClock"]


class ManualClock:
    """Returns `now` and then moves it on by `step`; move it yourself with `advance` / `set`.

    The default step of one second gives every append a distinct, predictable time.
    """

    def __init__(
        self,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now = now + self.step
        return now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now.isoformat()}, step={self.step})"
