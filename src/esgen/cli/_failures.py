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

__all__ = ["explain", "runner_failed"]

_LOCKED = (
    "another process is writing to this store (an esgen command or the application); "
    "try again when it is done"
)


def explain(exc: BaseException) -> str:
    """The error's message, with what it means when SQLite's lock was not had in time (a
    store error caused by SQLITE_BUSY or SQLITE_LOCKED), or where the master key was to
    come from when personal data could not be read."""
    from esgen.runtime import KeyUnavailable

    message = str(exc)
    if isinstance(exc, KeyUnavailable):
        from esgen.cli._store import key_hint

        return key_hint(message)
    return f"{message}: {_LOCKED}" if _locked(exc) else message


def _locked(exc: BaseException) -> bool:
    import sqlite3

    from esgen.runtime import BackendError

    if not isinstance(exc, BackendError):
        return False
    cause = exc.__cause__ or exc.__context__
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, sqlite3.OperationalError):
            name = getattr(cause, "sqlite_errorname", "") or ""
            return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
        cause = cause.__cause__ or cause.__context__
    return False


def runner_failed(feedback: Feedback, runner: str, exc: BaseException) -> NoReturn:
    """`runner` says what stopped: "projection AccountBalances", "saga MoneyTransfer"."""
    from esgen.runtime import KeyUnavailable, Problem

    if isinstance(exc, KeyUnavailable):
        # Not a bug in the user's code: where it was raised and the traceback say nothing
        # the line does not (the master key to give).
        headline = f"{runner} stopped: {explain(exc)}"
        if feedback.json:
            feedback.emit("error", "failed", headline, runner=runner, error=type(exc).__name__)
        else:
            feedback.error([headline])
        sys.exit(EXIT_ERROR)
    where = shown_where(Problem.of(exc, None, datetime.now(UTC)).where)
    message = explain(exc)
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
