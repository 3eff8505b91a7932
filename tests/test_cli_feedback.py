"""What the read-side commands say, tested on the feedback itself: a stream that is (or is
not) a terminal, a clock the test moves, the runtime's own errors on a real SQLite file."""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest

from esgen.cli._common import shown_where
from esgen.cli._failures import explain
from esgen.cli._feedback import Feedback, Tracker
from esgen.cli._options import FeedbackArgs


class Terminal(io.StringIO):
    """What a terminal is sent; its width is the environment's (COLUMNS), as for a
    stream without a file descriptor."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feedback(stream: io.StringIO, clock: Clock) -> Feedback:
    return Feedback(FeedbackArgs(), stream=stream, clock=clock)


def drawn(stream: io.StringIO) -> str:
    """The progress line as it stands on the terminal."""
    return stream.getvalue().split("\r\x1b[K")[-1]


def test_the_progress_line_fits_the_terminal_with_counts_rate_and_eta_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stream, clock = Terminal(), Clock()
    tracker = feedback(stream, clock).tracker("rebuilding account_balances", {"b": 0}, 400_000)
    clock.now = 4.0
    tracker("b", 162_000, 400_000)
    line = drawn(stream)
    assert len(line) < 80, line  # the last column would wrap on some terminals
    assert line == (
        "rebuilding accoun...: 162,000/400,000 events  40%  40,500 events/s  ETA 0:00:06"
    ), line
    monkeypatch.setenv("COLUMNS", "200")
    clock.now = 5.0
    tracker("b", 200_000, 400_000)
    assert drawn(stream) == (
        "rebuilding account_balances: 200,000/400,000 events  50%  40,000 events/s  "
        "ETA 0:00:05  200,000 behind"
    )
    monkeypatch.setenv("COLUMNS", "40")
    clock.now = 6.0
    tracker("b", 240_000, 400_000)
    assert drawn(stream) == "240,000/400,000 events  60%  40,000 eve"  # 39 columns


def test_a_sagas_total_and_eta_are_against_the_head_seen_when_the_run_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    stream, clock = Terminal(), Clock()
    said = feedback(stream, clock)
    tracker = said.tracker("running sagas", {"s": 0}, 1000, fixed_total=True)
    clock.now = 1.0
    tracker("s", 500, 1400)  # its commands appended 400 events meanwhile
    assert drawn(stream).startswith(
        "running sagas: 500/1,000 events  50%  500 events/s  ETA 0:00:01"
    )
    clock.now = 2.0
    tracker("s", 1200, 1600)
    assert drawn(stream).startswith("running sagas: 1,200/1,200 events  100%")
    assert "ETA 0:00:00" in drawn(stream)


def test_under_follow_a_page_after_a_pause_gets_no_rate() -> None:
    stream, clock = io.StringIO(), Clock()
    tracker = feedback(stream, clock).tracker("following", {"p": 0}, 10, follow=True)
    tracker("p", 10, 10)  # caught up: the runner waits for events
    clock.now = 1.5  # within the interval, but the time was spent waiting
    tracker("p", 13, 13)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith(" p +3 at 13/13 (0 behind)"), lines
    # Busy pages, one right after the other: their rate is known.
    clock.now = 10.0
    tracker("p", 1013, 3013)  # the first after a pause: its start is not known
    clock.now = 11.0
    tracker("p", 2013, 3013)
    clock.now = 12.0
    tracker("p", 3013, 3013)
    last = stream.getvalue().splitlines()[-1]
    assert last.endswith(" p +2000 at 3013/3013 (0 behind)  1,000 events/s"), last


def test_an_interruption_line_counts_what_the_store_says_was_committed() -> None:
    tracker = Tracker(
        feedback(io.StringIO(), Clock()), "catching up", {"a": 0, "b": 0}, 3000,
        follow=False, stop=None, on_page=None,
    )  # fmt: skip
    tracker("a", 1000, 3000)
    tracker.settle({"a": 2000, "b": 1000, "unknown": 5})  # a page committed, never told
    assert tracker.committed() == "a at 2000, b at 1000 of 3000"


def test_where_is_shown_relative_to_the_current_folder_when_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "src" / "bank" / "domain.py"
    assert shown_where(f"{inside}:38 in on_deposit") == "src/bank/domain.py:38 in on_deposit"
    outside = f"{os.sep}elsewhere{os.sep}x.py:3 in f"
    assert shown_where(outside) == outside
    assert shown_where("src/x.py:3 in f") == "src/x.py:3 in f"
    assert shown_where(None) is None


def test_a_store_locked_by_another_writer_says_what_that_means(tmp_path: Path) -> None:
    from esgen.runtime import BackendError, NewEvent, SQLiteEventStore

    path = tmp_path / "store.sqlite"
    SQLiteEventStore(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing, holding the lock
    store = SQLiteEventStore(path, busy_timeout=0.05)
    try:
        with pytest.raises(BackendError) as raised:
            store.append("Account-1", [NewEvent("Opened", 1, "{}", {})], 0)
    finally:
        store.close()
        other.rollback()
        other.close()
    assert explain(raised.value).endswith(
        ": another process is writing to this store (an esgen command or the application); "
        "try again when it is done"
    )
    assert explain(BackendError("disk full")) == "disk full"


def test_other_librarys_warnings_are_the_commands_lines_while_it_runs() -> None:
    import json
    import logging

    import click

    stream = io.StringIO()
    pool = logging.getLogger("psycopg.pool")
    handlers = list(logging.getLogger().handlers)
    with click.Context(click.Command("status")):
        Feedback(FeedbackArgs(log_format="json"), stream=stream)
        pool.warning("discarding closed connection: %s", "<conn>")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["level"], record["event"], record["logger"]) == (
        "warning",
        "log",
        "psycopg.pool",
    )
    # (esgen's PostgreSQL store may have added how repeats are counted)
    assert record["message"].startswith("discarding closed connection: <conn>")
    assert logging.getLogger().handlers == handlers  # undone when the command ended
    with click.Context(click.Command("status")):
        Feedback(FeedbackArgs(quiet=True), stream=stream)
        pool.warning("not said with -q")
    assert "not said" not in stream.getvalue()
