"""The text SQLite stores for each event's time: the writer's time (else the store's
clock), in fixed-width UTC ISO 8601, never before the event before it. The store formats a
save's times reusing the text up to the second; these check it against isoformat itself,
across second, minute, day and year boundaries, shared and repeated moments, times that
go back, and times in other zones."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from esgen.runtime import NewEvent, SQLiteEventStore

CLOCK = datetime(2025, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)

# Offsets from the clock's time, in microseconds: most within a second or two of it (so
# several land in one second and others just across it), some far away.
_NEAR = st.integers(min_value=-2_000_000, max_value=2_000_000)
_FAR = st.integers(min_value=-(10**14), max_value=10**12)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@st.composite
def _times(draw: st.DrawFn) -> list[datetime | None]:
    """Each event's own time or None (the store's clock); some share one datetime object."""
    times: list[datetime | None] = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        choice = draw(st.sampled_from(["near", "far", "none", "same", "equal"]))
        if choice in ("same", "equal") and times and times[-1] is not None:
            last = times[-1]
            # The very object again, or an equal one made apart from it.
            times.append(last if choice == "same" else last + timedelta(0))
        elif choice == "none":
            times.append(None)
        else:
            offset = draw(_NEAR if choice == "near" else _FAR)
            moment = CLOCK + timedelta(microseconds=offset)
            times.append(moment.astimezone(draw(_ZONES)))
    return times


def _stored_texts(store: SQLiteEventStore, stream_id: str) -> list[str]:
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute(
            "SELECT recorded_at FROM esgen_events WHERE stream_id = ? ORDER BY stream_version",
            (stream_id,),
        ).fetchall()
    return [text for (text,) in rows]


def _head_text(store: SQLiteEventStore) -> str:
    with sqlite3.connect(store.path) as conn:
        row = conn.execute(
            "SELECT recorded_at FROM esgen_events ORDER BY position DESC LIMIT 1"
        ).fetchone()
    return "" if row is None else str(row[0])


@settings(max_examples=200, deadline=None)
@given(before=st.none() | _NEAR, times=_times())
def test_each_time_is_stored_as_isoformat_writes_it_and_never_goes_back(
    before: int | None, times: list[datetime | None]
) -> None:
    # A store of its own per example: one far-future time left by an earlier example would
    # clamp every later one to it, and the formatting would go unchecked.
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteEventStore(Path(folder) / "events.db", clock=lambda: CLOCK)
        if before is not None:  # an event before, a little before or after the clock
            earlier = CLOCK + timedelta(microseconds=before)
            store.append("before", [NewEvent("Thing", 1, "{}", None, None, earlier)], 0)
        head = _head_text(store)
        store.append("s", [NewEvent("Thing", 1, "{}", None, None, m) for m in times], 0)
        expected = []
        last = head
        for moment in times:
            text = (CLOCK if moment is None else moment.astimezone(UTC)).isoformat(
                timespec="microseconds"
            )
            last = max(text, last)
            expected.append(last)
        assert _stored_texts(store, "s") == expected
        store.close()
    assert all(len(text) == len("2025-12-31T23:59:59.999000+00:00") for text in expected)


def test_times_in_one_second_and_across_it(tmp_path: Path) -> None:
    # A by-hand case of what the property covers: the text reused up to the second must not
    # leak into the next second, minute, day or year, nor into one that came before.
    store = SQLiteEventStore(tmp_path / "events.db", clock=lambda: CLOCK)
    base = datetime(2025, 12, 31, 23, 59, 59, 999_998, tzinfo=UTC)
    moments = [base + timedelta(microseconds=n) for n in (0, 1, 2, 3, 1_000_002)]
    store.append("a", [NewEvent("Thing", 1, "{}", None, None, m) for m in moments], 0)
    later = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    store.append("b", [NewEvent("Thing", 1, "{}", None, None, m) for m in (later, base)], 0)
    assert _stored_texts(store, "a") + _stored_texts(store, "b") == [
        "2025-12-31T23:59:59.999998+00:00",
        "2025-12-31T23:59:59.999999+00:00",
        "2026-01-01T00:00:00.000000+00:00",
        "2026-01-01T00:00:00.000001+00:00",
        "2026-01-01T00:00:01.000000+00:00",
        "2026-01-01T00:00:05.000000+00:00",
        "2026-01-01T00:00:05.000000+00:00",  # base is earlier: held at the time before
    ]
    store.close()
