"""What the read-side commands say while they work: a progress line on long runs, a line
per page (or per interval) under --follow, JSON lines for services, the interruption line.

Text goes to standard error but for the summaries, which are the commands' output; with
`--log-format json` every line is a JSON object on standard error (keys in
docs/operations.md) and standard output is left to data (`status --json`).

Plain click and the standard library. `rich` would draw nicer bars, but the `cli` extra
is what service images install, where nobody watches a bar: one line redrawn in place is
all an operator at a terminal needs, and it costs no dependency (see docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from esgen.cli._common import EXIT_INTERRUPTED, EXIT_TERMINATED

if TYPE_CHECKING:
    from esgen.cli._options import FeedbackArgs

__all__ = ["Feedback", "StopRequested", "Tracker", "stop_on_sigterm"]

# Without a terminal (a log file, a container's output), a progress line at most this
# often; on a terminal the line is redrawn at most every REDRAW, and only after FIRST, so
# a short run shows none.
PLAIN_INTERVAL = 5.0
REDRAW = 0.1
FIRST = 0.5
# Under --follow, a runner's pages within this many seconds of its last line are summed up
# in its next line, so a busy runner writes one line per interval, not one per page.
FOLLOW_INTERVAL = 2.0


class StopRequested(BaseException):
    """Raised from the progress callback after a committed page when a stop was asked
    for (SIGTERM under --follow): the runner ends there, nothing half done. Not an
    Exception, so that no handler of errors takes it for one."""


class _Signals:
    terminated = False  # the KeyboardInterrupt being handled came from SIGTERM


@contextmanager
def stop_on_sigterm(stop: threading.Event | None) -> Iterator[None]:
    """While following: SIGTERM (a service being stopped) sets `stop`, so the runners end
    after the page they are on rather than in the middle of it. Otherwise (`stop` None: a
    rebuild run as a Job, under `timeout`) SIGTERM interrupts the run as Ctrl-C does: the
    page in progress rolls back, and the command says what it kept (exit 143)."""

    def handle(signum: int, frame: object) -> None:
        if stop is not None:
            stop.set()
            return
        _Signals.terminated = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Feedback:
    def __init__(
        self,
        args: FeedbackArgs,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: bool = True,
    ) -> None:
        self.quiet = args.quiet
        self.verbose = args.verbose
        self.json = args.log_format == "json"
        self._stream = stream or sys.stderr
        self.terminal = self._stream.isatty() and not self.json
        self._clock = clock
        self._lock = threading.Lock()  # sagas under --follow report from several threads
        self._drawn = False  # a progress line is on the terminal, to be cleared first
        if log:
            _RuntimeLog.install(self)

    # -- lines ------------------------------------------------------------------------

    def say(self, message: str, event: str = "done", **fields: Any) -> None:
        """A summary of what a command did: its output in text, an info line in JSON."""
        if self.quiet:
            return
        if self.json:
            self.emit("info", event, message, **fields)
        else:
            self._write(f"esgen: {message}", err=False)

    def warn(self, message: str, event: str = "warning", **fields: Any) -> None:
        if self.quiet:
            return
        if self.json:
            self.emit("warning", event, message, **fields)
        else:
            self._write(f"esgen: warning: {message}")

    def interrupted(self, message: str, *, how: str = "interrupted", **fields: Any) -> None:
        """What was committed when a run was stopped (`how`: interrupted by Ctrl-C,
        stopped by SIGTERM), and where the next one resumes. Ctrl-C is said even with -q,
        as errors are: the person who pressed it wants to know what was kept."""
        if self.quiet and how != "interrupted":
            return
        if self.json:
            self.emit("warning", how, message, **fields)
        else:
            self._write(f"esgen: {how}: {message}")

    def stopped(self, message: str, **fields: Any) -> NoReturn:
        """End a run that Ctrl-C (exit 130) or SIGTERM without --follow (exit 143)
        interrupted, with the line saying what was committed; said even with -q."""
        if _Signals.terminated:
            how, code = "stopped", EXIT_TERMINATED
        else:
            how, code = "interrupted", EXIT_INTERRUPTED
        if self.json:
            self.emit("warning", how, message, **fields)
        else:
            self._write(f"esgen: {how}: {message}")
        sys.exit(code)

    def error(self, lines: list[str], **fields: Any) -> None:
        """An error: its first line after `esgen: error:`, the others indented."""
        if self.json:
            self.emit("error", "error", lines[0], **fields)
            return
        self._write(f"esgen: error: {lines[0]}")
        for line in lines[1:]:
            self._write(f"  {line}")

    def emit(self, level: str, event: str, message: str | None, **fields: Any) -> None:
        record = {"time": _now(), "level": level, "event": event, **fields}
        if message is not None:
            record["message"] = message
        self._write(json.dumps(record, ensure_ascii=False, default=str))

    def _write(self, text: str, *, err: bool = True) -> None:
        with self._lock:
            self._clear()
            click.echo(text, file=self._stream if err else sys.stdout)

    def _clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = False

    # -- runners ----------------------------------------------------------------------

    def tracker(
        self,
        label: str,
        starts: Mapping[str, int],
        head: int,
        *,
        follow: bool = False,
        stop: threading.Event | None = None,
        on_page: Callable[[str], None] | None = None,
        unit: str = "events",
        fixed_total: bool = False,
    ) -> Tracker:
        return Tracker(
            self, label, starts, head, follow=follow, stop=stop, on_page=on_page, unit=unit,
            fixed_total=fixed_total,
        )  # fmt: skip


class _RuntimeLog(logging.Handler):
    """The runtime's log lines (a rebuild switched over, a problem that could not be
    stored), and other libraries' (psycopg's pool), as the command's own: prefixed or as
    JSON, silenced by -q, INFO only with -v. Stalled saga instances are told by the
    commands (take_stalls); of their records only the traceback is written, with -v."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(logging.INFO if feedback.verbose else logging.WARNING)
        self._feedback = feedback

    @classmethod
    def install(cls, feedback: Feedback) -> None:
        """For the command being run; undone when it ends, so that a command run inside
        another program (a test) leaves its logging as it was."""
        context = click.get_current_context(silent=True)
        if context is None:  # not a command being run: leave the program's logging alone
            return
        root, runtime = logging.getLogger(), logging.getLogger("esgen.runtime")
        # On the root logger, so that every library's records come here and none reaches
        # Python's last-resort handler, which prints them bare (even with -q, where this
        # handler drops them).
        handler = logging.NullHandler() if feedback.quiet else cls(feedback)
        level = runtime.level
        root.addHandler(handler)
        if feedback.verbose and not feedback.quiet:
            runtime.setLevel(logging.INFO)

        def undo() -> None:
            root.removeHandler(handler)
            runtime.setLevel(level)

        context.call_on_close(undo)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "esgen_stall", False):
            # The command tells the stall itself (take_stalls), once; -v adds its traceback.
            if self._feedback.verbose and record.exc_info:
                trace = "".join(traceback.format_exception(*record.exc_info)).rstrip()
                if self._feedback.json:
                    self._feedback.emit("error", "traceback", None, traceback=trace)
                else:
                    self._feedback._write(trace)
            return
        message = record.getMessage()
        if record.exc_info and self._feedback.verbose:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        level = record.levelname.lower()
        if self._feedback.json:
            self._feedback.emit(level, "log", message, logger=record.name)
        else:
            prefix = "" if record.levelno < logging.WARNING else f"{level}: "
            self._feedback._write(f"esgen: {prefix}{message}")


@dataclass
class _Window:
    """A runner's pages not yet told under --follow."""

    position: int
    events: int = 0
    since: float | None = None  # when its first page started, if known
    told: float = float("-inf")  # when its last line was written
    last: float | None = None  # when its last page was committed
    caught_up: bool = False  # its last page reached the head: the runner waited after it


class Tracker:
    """The progress callback (name, position reached, head) given to the runners: keeps
    what each has committed, for the progress line, the --follow lines and the
    interruption line."""

    def __init__(
        self,
        feedback: Feedback,
        label: str,
        starts: Mapping[str, int],
        head: int,
        *,
        follow: bool,
        stop: threading.Event | None,
        on_page: Callable[[str], None] | None,
        unit: str = "events",
        fixed_total: bool = False,
    ) -> None:
        self._feedback = feedback
        self._unit = unit
        self.label = label
        self.starts = dict(starts)
        self.positions = dict(starts)
        self.head = head
        # Sagas move the head themselves (the commands they send): their total and ETA are
        # against the head seen when the run started, which is what they were asked to do.
        self._target = head if fixed_total else None
        self._follow = follow
        self._stop = stop
        self._on_page = on_page
        self._began = feedback._clock()
        self._shown = float("-inf")
        self._windows = {name: _Window(position) for name, position in starts.items()}

    def __call__(self, name: str, position: int, head: int) -> None:
        feedback = self._feedback
        now = feedback._clock()
        with feedback._lock:
            self.positions[name] = position
            self.starts.setdefault(name, position)
            self.head = max(self.head, head)
        if self._follow:
            self._page(name, position, head, now)
        else:
            self._progress(now)
        if self._on_page is not None:
            self._on_page(name)
        if self._stop is not None and self._stop.is_set():
            raise StopRequested

    # -- counts -----------------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(max(0, p - self.starts.get(n, p)) for n, p in self.positions.items())

    @property
    def total(self) -> int:
        if self._target is None:
            return sum(max(0, self.head - self.starts.get(n, 0)) for n in self.positions)
        target = self._target
        # Past the first head (the events the sagas appended themselves): done is the total.
        return max(self.done, sum(max(0, target - self.starts.get(n, 0)) for n in self.positions))

    def settle(self, positions: Mapping[str, int]) -> None:
        """Where the runners are as read back from the store: an interruption can land
        between a page's commit and its progress call, which then never told it."""
        with self._feedback._lock:
            for name, position in positions.items():
                if name in self.positions:
                    self.positions[name] = max(self.positions[name], position)

    @property
    def behind(self) -> int:
        return sum(max(0, self.head - p) for p in self.positions.values())

    def committed(self) -> str:
        """Where each runner is, as the interruption line says it."""
        at = ", ".join(f"{name} at {p}" for name, p in self.positions.items())
        return f"{at} of {self.head}" if at else f"nothing, head at {self.head}"

    # -- the progress line --------------------------------------------------------------

    def _progress(self, now: float) -> None:
        feedback = self._feedback
        if feedback.quiet:
            return
        elapsed = now - self._began
        if feedback.terminal:
            if elapsed < FIRST or now - self._shown < REDRAW:
                return
        elif elapsed < PLAIN_INTERVAL or now - self._shown < PLAIN_INTERVAL:
            return
        self._shown = now
        done, total, behind = self.done, self.total, self.behind
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = max(0, total - done) / rate if rate > 0 else None
        if feedback.json:
            feedback.emit("info", "progress", None, label=self.label, done=done, total=total,
                          behind=behind, rate=round(rate, 1),
                          eta_seconds=None if eta is None else round(eta))  # fmt: skip
            return
        percent = min(100, 100 * done // total) if total else 100
        parts = [
            f"{done:,}/{total:,} {self._unit}",
            f"{percent}%",
            f"{rate:,.0f} {self._unit}/s",
            f"ETA {_duration(eta)}",
            f"{behind:,} behind",
        ]
        with feedback._lock:
            if feedback.terminal:
                # A line as wide as the terminal wraps, and the carriage return then
                # redraws only its last row (the column at the edge wraps on some).
                line = _fit(self.label, parts, _width(feedback._stream) - 1)
                feedback._stream.write(f"\r\x1b[K{line}")
                feedback._stream.flush()
                feedback._drawn = True
            else:
                click.echo(f"{self.label}: {'  '.join(parts)}", file=feedback._stream)

    def finish(self) -> None:
        """Clear the progress line, or tell the --follow pages not yet told."""
        feedback = self._feedback
        with feedback._lock:
            feedback._clear()
        if self._follow:
            for name, window in self._windows.items():
                if window.events:
                    self._tell(name, window, self.positions[name], self.head, feedback._clock())

    # -- --follow -----------------------------------------------------------------------

    def _page(self, name: str, position: int, head: int, now: float) -> None:
        window = self._windows.setdefault(name, _Window(position))
        # A page right after the previous one: the runner was busy, and the time between
        # them is what this page took. After a pause (the previous page reached the head,
        # and the runner waited for events) it is not known, nor is the window's rate.
        busy = (
            window.last is not None
            and not window.caught_up
            and now - window.last <= FOLLOW_INTERVAL
        )
        if window.events == 0:
            window.since = window.last if busy else None
        elif not busy:
            window.since = None
        window.events += position - window.position
        window.position = position
        window.last = now
        window.caught_up = position >= head
        if position >= head or now - window.told >= FOLLOW_INTERVAL:
            self._tell(name, window, position, head, now)

    def _tell(self, name: str, window: _Window, position: int, head: int, now: float) -> None:
        events, window.events, window.told = window.events, 0, now
        if self._feedback.quiet or events <= 0:
            return
        seconds = None if window.since is None else now - window.since
        rate = None if not seconds else round(events / seconds, 1)
        behind = max(0, head - position)
        feedback = self._feedback
        if feedback.json:
            feedback.emit("info", "page", None, runner=name, events=events, position=position,
                          head=head, behind=behind, rate=rate)  # fmt: skip
            return
        speed = "" if rate is None else f"  {rate:,.0f} events/s"
        feedback._write(f"{_now()} {name} +{events} at {position}/{head} ({behind} behind){speed}")


def _fit(label: str, parts: list[str], width: int) -> str:
    """The progress line in `width` columns: `parts` in the order they matter (counts,
    %, rate, ETA, then the rest); the parts after the ETA go first, then the label
    shortens, then the line is cut."""
    while len(parts) > 4 and len(label) + 2 + len("  ".join(parts)) > width:
        parts = parts[:-1]
    body = "  ".join(parts)
    room = width - len(body) - 2
    if len(label) > room:
        label = label[: room - 3] + "..." if room >= 10 else ""
    line = f"{label}: {body}" if label else body
    return line[:width]


def _width(stream: TextIO) -> int:
    """The columns of the terminal `stream` writes to."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # no file descriptor: as the environment says
        return shutil.get_terminal_size().columns


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02}:{secs:02}"
    return f"{days} d {clock}" if days else clock


def lag_text(seconds: float) -> str:
    """How long ago the oldest event not handled yet was recorded, as a person reads it."""
    return f"{seconds:.1f} s" if seconds < 60 else _duration(seconds)
