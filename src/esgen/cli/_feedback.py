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
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import click

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


@contextmanager
def stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """While following: SIGTERM (a service being stopped) sets `stop`, so the runners end
    after the page they are on rather than in the middle of it."""

    def handle(signum: int, frame: object) -> None:
        stop.set()

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
    ) -> None:
        self.quiet = args.quiet
        self.verbose = args.verbose
        self.json = args.log_format == "json"
        self._stream = stream or sys.stderr
        self.terminal = self._stream.isatty() and not self.json
        self._clock = clock
        self._lock = threading.Lock()  # sagas under --follow report from several threads
        self._drawn = False  # a progress line is on the terminal, to be cleared first
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
    ) -> Tracker:
        return Tracker(
            self, label, starts, head, follow=follow, stop=stop, on_page=on_page, unit=unit
        )


class _RuntimeLog(logging.Handler):
    """The runtime's log lines (a rebuild switched over, a problem that could not be
    stored) as the command's own: prefixed or as JSON, silenced by -q, INFO only with -v.
    Stalled saga instances are left out: the commands list them in full."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(logging.INFO if feedback.verbose else logging.WARNING)
        self._feedback = feedback

    @classmethod
    def install(cls, feedback: Feedback) -> None:
        """For the command being run; undone when it ends, so that a command run inside
        another program (a test) leaves its logging as it was."""
        logger = logging.getLogger("esgen.runtime")
        # A handler of its own also keeps Python's last-resort handler from printing the
        # runtime's warnings bare; with -q, one that drops them.
        handler = logging.NullHandler() if feedback.quiet else cls(feedback)
        level = logger.level
        logger.addHandler(handler)
        if feedback.verbose and not feedback.quiet:
            logger.setLevel(logging.INFO)

        def undo() -> None:
            logger.removeHandler(handler)
            logger.setLevel(level)

        context = click.get_current_context(silent=True)
        if context is not None:
            context.call_on_close(undo)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "esgen_stall", False):
            return  # the command tells stalls itself (take_stalls), once each
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
    ) -> None:
        self._feedback = feedback
        self._unit = unit
        self.label = label
        self.starts = dict(starts)
        self.positions = dict(starts)
        self.head = head
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
        return sum(max(0, self.head - self.starts.get(n, 0)) for n in self.positions)

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
        eta = (total - done) / rate if rate > 0 else None
        if feedback.json:
            feedback.emit("info", "progress", None, label=self.label, done=done, total=total,
                          behind=behind, rate=round(rate, 1),
                          eta_seconds=None if eta is None else round(eta))  # fmt: skip
            return
        percent = 100 * done // total if total else 100
        line = (
            f"{self.label}: {done:,}/{total:,} {self._unit}  {percent}%  "
            f"{rate:,.0f} {self._unit}/s  {behind:,} behind  ETA {_duration(eta)}"
        )
        with feedback._lock:
            if feedback.terminal:
                feedback._stream.write(f"\r\x1b[K{line}")
                feedback._stream.flush()
                feedback._drawn = True
            else:
                click.echo(line, file=feedback._stream)

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
        if window.events == 0:
            # A page right after the previous one: the runner was busy, and the time
            # between them is what this page took. After a pause it is not known.
            recent = window.last is not None and now - window.last <= FOLLOW_INTERVAL
            window.since = window.last if recent else None
        window.events += position - window.position
        window.position = position
        window.last = now
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
