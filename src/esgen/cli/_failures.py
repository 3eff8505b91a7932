"""How a runner's error ends a read-side command: a short block that names the runner, the
error, the event it happened on (the runtime's notes) and the line of the user's code;
the traceback only with -v. Exit 1.
"""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

from esgen.cli._common import EXIT_ERROR, shown_where

if TYPE_CHECKING:
    from esgen.cli._feedback import Feedback

__all__ = ["runner_failed"]


def runner_failed(feedback: Feedback, runner: str, exc: BaseException) -> NoReturn:
    """`runner` says what stopped: "projection AccountBalances", "saga MoneyTransfer"."""
    from esgen.runtime import Problem

    where = Problem.of(exc, None, datetime.now(UTC)).where
    where = None if where is None else shown_where(where)
    message = str(exc)
    headline = f"{runner} stopped: {type(exc).__name__}" + (f": {message}" if message else "")
    notes = [str(note) for note in getattr(exc, "__notes__", ())]
    # The traceback starts at the command that caught the error: no click frames in it.
    trace = "".join(traceback.format_exception(exc)) if feedback.verbose else None
    if feedback.json:
        feedback.emit("error", "failed", headline, runner=runner, error=type(exc).__name__,
                      notes=notes, where=where, traceback=trace)  # fmt: skip
        sys.exit(EXIT_ERROR)
    lines = [headline, *notes]
    if where is not None:
        lines.append(f"at {where}")
    if trace is None:
        lines.append("(run with -v for the traceback)")
    else:
        feedback._write(trace.rstrip("\n"))
    feedback.error(lines)
    sys.exit(EXIT_ERROR)
